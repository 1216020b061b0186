#!/usr/bin/env bash
# genlm-control for `council bench throughput`, in its own virtual environment (.venv-genlm):
# it pulls genlm-backend, genlm-grammar, genlm-bytes, numba, bitsandbytes, arsenal, pandas…,
# none of which Council needs. --system-site-packages lets it reuse the torch and transformers
# already installed; the constraints below keep pip from replacing them (genlm-backend 0.3.1
# asks only for transformers>=5,<6 and any torch, which the system copies satisfy).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m venv --system-site-packages .venv-genlm
constraints="$(mktemp)"
trap 'rm -f "$constraints"' EXIT
python - >"$constraints" <<'PY'
from importlib.metadata import version
for name in ("torch", "transformers", "tokenizers", "huggingface-hub", "numpy"):
    try:
        print(f"{name}=={version(name)}")
    except Exception:
        pass
PY
.venv-genlm/bin/python -m pip install -c "$constraints" "genlm-control==0.4.1" "genlm-backend==0.3.1"
echo "genlm-control ready: $(pwd)/.venv-genlm/bin/python"
