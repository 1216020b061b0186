"""The inference-program API on a real engine (tiny random Llama behind SmolLM2's tokenizer)."""

import asyncio
import copy
import math

import numpy as np
import pytest

from actors.engines.torch_engine import TorchEngine
from bench.worker_ipc import InProcessLM
from cluster.config import EngineConfig
from planner import program as api
from planner.masks import Vocabulary
from planner.program import LMContext, Model
from planner.state import StateError, check_state, dump_state, load_state


@pytest.fixture(scope="module")
def lm(tiny_model, smollm2_tokenizer):
    engine = TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32"))
    lm = InProcessLM(engine, Vocabulary.from_tokenizer(engine.tokenizer, engine.vocab_size, engine.eos_token_ids))
    return lm


def run(coro):
    return asyncio.run(coro)


def test_next_token_extends_the_context_and_scores(lm):
    ctx = LMContext(lm, "Once upon a time", chat=False)
    start = len(ctx.tokens)

    async def go():
        api.current_rng.set(np.random.default_rng(0))
        token, logp = await ctx.next_token().sample()
        return token, logp

    token, logp = run(go())
    assert len(ctx.tokens) == start + 1 and ctx.token_count == 1
    assert token.token_id == ctx.tokens[-1] and str(token) == lm.vocab.strings[token.token_id]
    full = run(lm._next_token_logprobs(ctx.tokens[:-1]))
    assert logp == pytest.approx(float(full[token.token_id]), abs=1e-5)


def test_observing_a_mask_scores_its_mass_and_restricts_the_next_token(lm):
    ctx = LMContext(lm, "Hello", chat=False)
    allowed = lm.vocab.max_chars(2)

    class Program(Model):
        async def step(self):
            await self.observe(ctx.mask_dist(allowed), True)
            self.token = await self.sample(ctx.next_token())

    model = Program()
    lp = run(lm._next_token_logprobs(ctx.tokens))
    for seed in range(20):
        api.current_rng.set(np.random.default_rng(seed))
        model.weight = 0.0
        ctx.tokens = ctx.tokens[: ctx.prompt_len]
        run(model.step())
        assert model.token.token_id in allowed  # always inside the mask
        assert len(str(model.token)) <= 2
    expected = float(np.logaddexp.reduce(lp[allowed._bits]))
    assert model.weight == pytest.approx(expected, abs=1e-4)


def test_condition_and_twist(lm):
    m = Model()
    m.twist(1.5)
    assert m.weight == 1.5
    m.finish()  # finishing removes the twist
    assert m.weight == 0.0 and m.done_stepping()
    m2 = Model()
    m2.condition(False)
    assert m2.weight == -math.inf and m2.finished


def test_next_word_returns_one_word(lm):
    ctx = LMContext(lm, "The", chat=False)
    api.current_rng.set(np.random.default_rng(3))
    words = [run(ctx.next_word()) for _ in range(5)]
    assert all(" " not in w for w in words)
    assert ctx.token_count >= 5


def test_hint_changes_the_prompt_only_before_generation(lm):
    ctx = LMContext(lm, "Write a line.", chat=True)
    before = len(ctx.tokens)
    ctx.hint("Use the word river.")
    assert len(ctx.tokens) > before and "river" in lm.decode(ctx.tokens)
    api.current_rng.set(np.random.default_rng(0))
    run(ctx.next_token().sample())
    with pytest.raises(RuntimeError, match="before the first token"):
        ctx.hint("too late")


def test_clones_are_independent_and_migration_keeps_state(lm):
    class Program(Model):
        def __init__(self):
            super().__init__()
            self.context = LMContext(lm, "A", chat=False)
            self.notes = ["x"]

    parent = Program()
    child = copy.deepcopy(parent)
    child.context.tokens.append(5)
    child.notes.append("y")
    assert parent.context.tokens != child.context.tokens and parent.notes == ["x"]
    assert child.context.lm is parent.context.lm  # the follower is shared, not copied

    state = load_state(dump_state(vars(child), lm), lm)  # what export/import ship
    assert state["context"].tokens == child.context.tokens
    assert state["context"].lm is lm  # re-attached to the local follower
    assert state["notes"] == ["x", "y"]


def test_particle_state_must_be_plain_data(lm):
    ctx = LMContext(lm, "A", chat=False)
    fine = {"n": 3, "big": 2**200, "t": (1, "a", None), "s": {1, 2}, "d": {1: [1.5, "x"]},
            "ctx": ctx, "mask": lm.vocab.max_chars(3), "lm": lm, "vocab": lm.vocab}
    back = load_state(dump_state(fine, lm), lm)
    assert back["big"] == 2**200 and back["t"] == (1, "a", None) and back["s"] == {1, 2}
    assert back["d"] == {1: [1.5, "x"]} and back["mask"] == lm.vocab.max_chars(3) and back["lm"] is lm
    deep = []
    for _ in range(100):
        deep = [deep]
    for bad, why in ((lambda: 0, "function"), (np.zeros(3), "ndarray"), (deep, "nested"),
                     ([0] * 300_000, "values"), (Model(), "Model")):
        with pytest.raises(StateError, match=why):
            check_state({"x": bad}, lm)
    with pytest.raises(StateError):
        load_state(b"\xc1 not msgpack", lm)


def test_masks_select_what_they_say(lm):
    v = lm.vocab
    punct = v.punctuation()
    assert all(not s.strip().isalnum() for s in np.array(v.strings)[punct._bits][:200])
    words = v.words(["river"])
    assert any(v.strings[i].strip() == "river" for i in np.flatnonzero(words._bits))
    banned = v.banned_words(["the"])
    assert all(v.strings[i].strip().lower() == "the" for i in np.flatnonzero((~banned)._bits))
    assert all(i in v.eos() for i in v.eos_ids)
    lengths = v.token_length(1, 3)
    assert all(1 <= len(v.strings[i].strip()) <= 3 for i in np.flatnonzero(lengths._bits)[:500])
    assert len(words & lengths) <= len(words) and len(words | lengths) >= len(lengths)
    assert len(words - words) == 0 and len(~v.eos()) == v.size - len(v.eos_ids)
