#!/usr/bin/env bash
# llamppl for `council bench throughput`, in its own virtual environment (.venv-llamppl):
# it pulls genlm-backend, numba, bitsandbytes, ipykernel and pre-commit, none of which Council
# needs. --system-site-packages lets it reuse the torch and transformers already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m venv --system-site-packages .venv-llamppl
.venv-llamppl/bin/python -m pip install "llamppl==0.2.3"
echo "llamppl ready: $(pwd)/.venv-llamppl/bin/python"
