"""Ensembles inside SMC: a second pool's model weighs the particles by their text (a twist)."""

from __future__ import annotations

import asyncio
import math

import pytest

from cluster.config import CouncilConfig
from cluster.twist import scored_part


@pytest.mark.parametrize("text, finished, part", [
    ("The cat sa", False, "The cat"),
    ("The cat ", False, "The cat"),
    ("The", False, ""),
    ("", False, ""),
    ("The cat sa", True, "The cat sa"),
    ("The cat\n", True, "The cat"),
])
def test_a_running_particle_is_scored_on_its_whole_words(text, finished, part):
    assert scored_part(text, finished) == part


@pytest.fixture(scope="module")
def tiny_engine(tiny_model, smollm2_tokenizer):
    from actors.engines.torch_engine import TorchEngine
    from cluster.config import EngineConfig

    return TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32", kv_cache_tokens=4096),
                       name="tiny")


def _total(engine, prompt: str, text: str, context: str = "") -> float:
    from actors.engines.base import ScoreRequest, score

    return sum(asyncio.run(score(engine, ScoreRequest(prompt=prompt, context=context, continuation=text)))
               .token_logprobs)


def test_a_score_given_context_is_the_rest_of_the_whole_texts_score(smollm2_engine):
    prompt = "Describe the weather."
    whole = _total(smollm2_engine, prompt, "It is cold and grey today")
    head = _total(smollm2_engine, prompt, "It is cold")
    rest = _total(smollm2_engine, prompt, " and grey today", context="It is cold")
    assert head + rest == pytest.approx(whole, abs=1e-3)


def _scheduler(tiny_engine, twist, method="is", particles=4):
    from actors.particle_host import LocalReplica, ParticleHost
    from cluster.protocol import ProgramSpec
    from cluster.scheduler import InferenceConfig, Scheduler
    from planner.planning import make_program

    planned = asyncio.run(make_program("Write a sentence of exactly 5 words about rain.", None, 24))
    replicas = [LocalReplica("t0", ParticleHost(tiny_engine))]
    spec = ProgramSpec(source=planned.source, prompt=planned.prompt, seed=3)
    return planned, Scheduler(spec, InferenceConfig(method=method, particles=particles, seed=3),
                              lambda: replicas, twist=twist)


def test_the_twist_telescopes_to_the_twist_models_score_of_each_answer(tiny_engine, smollm2_engine):
    """Without resampling (`is`), a particle's weight is its program weight plus
    weight * log p_twist(text), the sum of the per-round scores of its new words."""
    from actors.engines.base import EngineFollowers
    from cluster.twist import TextTwist

    planned, _ = _scheduler(tiny_engine, None)
    twist = TextTwist(EngineFollowers(smollm2_engine), planned.prompt, weight=0.5)
    _, scheduler = _scheduler(tiny_engine, twist)
    result = asyncio.run(scheduler.run())
    assert result.rounds > 1 and twist.tokens > 0
    finished = [p for p in scheduler.particles.values() if p.state.finished and p.state.text.strip()]
    assert finished
    for p in finished:
        assert p.twisted == p.state.text.rstrip()
        expected = 0.5 * _total(smollm2_engine, planned.prompt, p.twisted)
        assert p.twist == pytest.approx(expected, abs=2e-3)
        assert p.offset == pytest.approx(p.twist)  # `is` never resets the offset
    saved = {s.state.pid: s for s in scheduler.checkpoint().particles}
    assert all(saved[p.state.pid].twist == p.twist for p in finished)


def test_a_runner_twists_by_a_second_pool_and_bills_it(tiny_engine, smollm2_engine):
    from council_sdk.types import TaskRequest

    from actors.engines.base import EngineFollowers
    from actors.particle_host import LocalReplica, ParticleHost
    from cluster.pools import Pools, PoolView, UnknownPool
    from cluster.runner import CouncilRunner, check_runnable

    hosts = {"tiny": [LocalReplica("t0", ParticleHost(tiny_engine))],
             "smol": [LocalReplica("s0", ParticleHost(smollm2_engine))]}
    engines = {"tiny": tiny_engine, "smol": smollm2_engine}
    pools = Pools({n: PoolView(lambda n=n: hosts[n], EngineFollowers(engines[n])) for n in hosts}, "tiny")
    cfg = CouncilConfig.from_dict({"pools": {"tiny": {}, "smol": {}}})
    runner = CouncilRunner(cfg, pools=pools)
    task = TaskRequest(prompt="Write a sentence of exactly 4 words.", pool="tiny", twist_pool="smol", particles=4)
    result = asyncio.run(runner.run_task(task))
    assert result.twisted_by == "smol" and result.answered_by == "tiny"
    assert set(result.ledger.follower_tokens_by_pool) == {"tiny", "smol"}
    assert math.isfinite(result.log_ml)
    plain = asyncio.run(runner.run_task(task.model_copy(update={"twist_pool": None})))
    assert plain.twisted_by is None and set(plain.ledger.follower_tokens_by_pool) == {"tiny"}

    with pytest.raises(UnknownPool, match="twist_pool"):
        check_runnable(task.model_copy(update={"twist_pool": "nope"}), cfg)
    with pytest.raises(ValueError, match="council-vote"):
        check_runnable(TaskRequest(prompt="What is 2+2?", strategy="council-vote", twist_pool="smol"), cfg)
    with pytest.raises(ValueError, match="'rs' does not use weights"):
        TaskRequest(prompt="x", method="rs", twist_pool="smol")
