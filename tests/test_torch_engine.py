"""TorchEngine correctness on a tiny random Llama (float32): the prefix KV trie and the
autobatcher must give exactly what a plain full forward gives."""

import asyncio
import random

import numpy as np
import pytest
import torch

from actors.engines.base import GenerateRequest
from actors.engines.sampling import SampleSpec, sample_rows
from actors.engines.torch_engine import SequenceError, TorchEngine
from cluster.config import EngineConfig

V = 49152


def reference(model, seq):
    with torch.no_grad():
        logits = model(torch.tensor([seq])).logits[0, -1].float()
    return torch.log_softmax(logits, -1).numpy()


def families(seed=0, count=40):
    """Sequences sharing prefixes of many lengths, diverging mid-prefix, some duplicated."""
    rnd = random.Random(seed)
    trunk = [rnd.randrange(V) for _ in range(48)]
    seqs = []
    for _ in range(count):
        cut = rnd.randrange(1, len(trunk))
        seqs.append(trunk[:cut] + [rnd.randrange(V) for _ in range(rnd.randrange(0, 24))])
    seqs += seqs[:4]  # exact repeats in the same batch
    return seqs


def engine(model, **kw):
    return TorchEngine(model, None, EngineConfig(dtype="float32", **kw))


@pytest.mark.parametrize("lp_cache", [0, 64])
def test_cached_logprobs_equal_uncached_including_after_eviction(tiny_model, lp_cache):
    eng = engine(tiny_model, kv_cache_tokens=256, max_batch_size=16, logprob_cache_entries=lp_cache)
    seqs = families()
    refs = [reference(tiny_model, s) for s in seqs]

    async def rounds():
        worst = 0.0
        for _ in range(3):  # later rounds hit the cache, and the small cache forces eviction
            outs = await asyncio.gather(*(eng.next_token_logprobs(s) for s in seqs))
            worst = max(worst, max(float(np.abs(o - r).max()) for o, r in zip(outs, refs)))
        return worst

    worst = asyncio.run(rounds())
    stats = eng.stats()
    assert worst < 1e-4
    assert stats.evictions > 0
    assert stats.tokens_cached > 0
    assert stats.kv_slots_used <= 256


def test_step_by_step_decode_matches_full_forward(tiny_model):
    eng = engine(tiny_model)
    rnd = random.Random(1)
    seq = [rnd.randrange(V) for _ in range(10)]

    async def run():
        worst = 0.0
        for _ in range(20):
            lp = await eng.next_token_logprobs(seq)
            worst = max(worst, float(np.abs(lp - reference(tiny_model, seq)).max()))
            seq.append(int(np.argmax(lp)))
        return worst

    assert asyncio.run(run()) < 1e-4
    assert eng.stats().tokens_computed == 10 + 19  # the prompt once, then one token a step


@pytest.mark.parametrize("family", ["qwen2", "qwen3"])
def test_other_llama_families_decode_exactly(family):
    """Qwen2 (biased q/k/v: the bias rides in the joined projection) and Qwen3 (q and k
    normalised per head, so rotary runs on q and k apart) take the slot model's other
    projection and rotary paths. Prompt, then decode rows two at a time sharing a prefix,
    each within 1e-4 of a full forward."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen3Config, Qwen3ForCausalLM

    from actors.engines.slot_model import Row, SlotKVModel

    torch.manual_seed(0)
    shape = dict(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=2)
    model = (Qwen2ForCausalLM(Qwen2Config(**shape)) if family == "qwen2"
             else Qwen3ForCausalLM(Qwen3Config(**shape, head_dim=16))).eval()
    rnd = random.Random(4)
    seq = [rnd.randrange(512) for _ in range(20)]
    with torch.no_grad():
        full = torch.log_softmax(model(torch.tensor([seq])).logits[0].float(), -1)
    slots = SlotKVModel(model, 256)
    worst = float((slots.forward([Row([], seq[:12], list(range(12)), [11])])[0] - full[11]).abs().max())
    path = list(range(12))
    for i in range(12, 20):
        out = slots.forward([Row(list(path), [seq[i]], [i], [0]), Row(list(path), [seq[i]], [100 + i], [0])])
        path.append(i)
        worst = max(worst, float((out - full[i]).abs().max()))
    assert worst < 1e-4


@pytest.mark.parametrize("prompt_slots", ["one run", "scattered"])
def test_particles_sharing_a_prompt_decode_exactly(tiny_model, prompt_slots):
    """Decode rows with a long common prefix take the shared-prefix attention (the prefix's
    keys read once for the batch); each row must still get exactly its full forward."""
    from actors.engines.slot_model import Row, SlotKVModel

    rnd = random.Random(3)
    slots = SlotKVModel(tiny_model, 512)
    prompt = [rnd.randrange(V) for _ in range(70)]
    prompt_at = list(range(70)) if prompt_slots == "one run" else rnd.sample(range(100, 400), 70)
    slots.forward([Row([], prompt, prompt_at, [69])])
    seqs = [list(prompt) for _ in range(6)]
    paths = [list(prompt_at) for _ in range(6)]
    free = iter(range(400, 512))
    worst = 0.0
    for step in range(5):
        rows = []
        for seq, path in zip(seqs, paths):
            seq.append(rnd.randrange(V))
            rows.append(Row(list(path), [seq[-1]], [next(free)], [0]))
            path.append(rows[-1].new_slots[0])
        assert slots._shared_prefix(rows) is not None
        out = slots.forward(rows).numpy()
        worst = max(worst, max(float(np.abs(o - reference(tiny_model, s)).max()) for o, s in zip(out, seqs)))
    assert worst < 1e-4


def test_batched_results_equal_one_by_one(tiny_model):
    seqs = families(seed=2, count=30)
    batched, single = engine(tiny_model, max_batch_size=64), engine(tiny_model)

    async def together():
        return await batched.batch_next_token_logprobs(seqs)

    async def one_by_one():
        return [await single.next_token_logprobs(s) for s in seqs]

    a, b = asyncio.run(together()), asyncio.run(one_by_one())
    assert max(float(np.abs(x - y).max()) for x, y in zip(a, b)) < 1e-5
    assert batched.stats().mean_batch_size > 10
    assert single.stats().mean_batch_size == 1


def test_returned_arrays_do_not_alias_the_cache(tiny_model):
    eng = engine(tiny_model, logprob_cache_entries=8)
    seq = [5, 6, 7]

    async def run():
        first = await eng.next_token_logprobs(seq)
        expected = first.copy()
        with pytest.raises(ValueError, match="read-only"):
            first[:] = 0.0  # a caller masking the array in place is stopped
        again = await eng.next_token_logprobs(seq)
        return expected, again

    expected, again = asyncio.run(run())
    assert eng.stats().logprob_cache_hits == 1
    np.testing.assert_array_equal(expected, again)


def test_bad_sequences_fail_alone(tiny_model):
    eng = engine(tiny_model, max_model_len=64)

    async def run():
        return await asyncio.gather(
            eng.next_token_logprobs([]),
            eng.next_token_logprobs([V + 5]),
            eng.next_token_logprobs([-1, 3]),
            eng.next_token_logprobs(list(range(65))),
            eng.next_token_logprobs([1, 2, 3]),
            return_exceptions=True,
        )

    empty, too_big_id, negative, too_long, good = asyncio.run(run())
    assert isinstance(empty, SequenceError) and "empty" in str(empty)
    assert isinstance(too_big_id, SequenceError) and "token ids" in str(too_big_id)
    assert isinstance(negative, SequenceError)
    assert isinstance(too_long, SequenceError) and "max_model_len" in str(too_long)
    assert good.shape == (V,)


def test_generate_is_seeded_and_honours_limits(tiny_model, smollm2_tokenizer):
    eng = TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32"))
    req = GenerateRequest(prompt="Once upon a time", max_tokens=12, temperature=1.0, seed=3)

    async def run():
        return await asyncio.gather(eng.generate(req), eng.generate(req), eng.generate(
            req.model_copy(update={"seed": 4})))

    a, b, c = asyncio.run(run())
    assert a.token_ids == b.token_ids and a.text == b.text
    assert a.token_ids != c.token_ids
    assert a.completion_tokens == len(a.token_ids) <= 12
    assert a.prompt_tokens == len(eng.encode_prompt(req))
    assert len(a.token_logprobs) == a.completion_tokens and all(lp <= 0 for lp in a.token_logprobs)


def test_greedy_generation_and_stop_strings(tiny_model, smollm2_tokenizer):
    eng = TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32"))
    req = GenerateRequest(prompt="hello", chat=False, max_tokens=16, temperature=0.0)

    async def greedy_ids():
        ids = eng.encode_prompt(req)
        out = []
        for _ in range(16):
            tok = int(np.argmax(await eng.next_token_logprobs(ids + out)))
            if tok in eng.eos_token_ids:
                break
            out.append(tok)
        return out

    full = asyncio.run(eng.generate(req))
    assert full.token_ids == asyncio.run(greedy_ids())
    assert len(full.text) > 4
    stop = full.text[len(full.text) // 2 :][:3]
    cut = asyncio.run(eng.generate(req.model_copy(update={"stop": [stop]})))
    assert cut.finish_reason == "stop"
    assert stop not in cut.text and full.text.startswith(cut.text)


def draw(lp, temperature, top_p, n, seed=0):
    rng = np.random.default_rng(seed)
    specs = [SampleSpec(temperature, top_p, rng.random()) for _ in range(n)]
    tokens, logps = sample_rows(torch.tensor(lp).repeat(n, 1), specs)
    assert torch.allclose(logps, torch.tensor(lp)[tokens])  # the model's own log-prob
    return tokens.numpy()


def test_sampling_statistics_greedy_and_nucleus():
    lp = np.array([np.log(0.5), np.log(0.3), np.log(0.2), -np.inf], dtype=np.float32)
    counts = np.bincount(draw(lp, 1.0, 1.0, 20000), minlength=4)
    np.testing.assert_allclose(counts / counts.sum(), [0.5, 0.3, 0.2, 0.0], atol=0.015)
    assert set(draw(lp, 0.0, 1.0, 50)) == {0}  # temperature 0: greedy
    assert set(draw(lp, 1.0, 0.4, 200)) == {0}  # nucleus 0.4: only the top token
    assert set(draw(lp, 1.0, 0.75, 500)) == {0, 1}  # 0.5 < 0.75: the crossing token is kept
    hot = np.bincount(draw(lp, 2.0, 1.0, 20000), minlength=4) / 20000
    cold = np.bincount(draw(lp, 0.5, 1.0, 20000), minlength=4) / 20000
    assert hot[2] > 0.2 + 0.03 and cold[2] < 0.2 - 0.05  # temperature flattens / sharpens


def test_a_mixed_batch_samples_each_row_by_its_own_spec():
    lp = torch.log_softmax(torch.randn(3, 50), -1)
    specs = [SampleSpec(0.0, 1.0, 0.5), SampleSpec(1.0, 1.0, 0.999999), SampleSpec(1.0, 1.0, 0.0)]
    tokens, _ = sample_rows(lp, specs)
    assert tokens[0] == lp[0].argmax()
    assert tokens[1] == torch.nonzero(lp[1].exp() > 0).max()  # u -> 1 picks the last token
    assert tokens[2] == 0  # u = 0 picks the first token with mass
