"""Distributed SMC in one process: the scheduler over in-process replicas (no Ray), on real
engines. Exactness against an enumerated posterior, R=1 vs R=2, resampling, migration, methods."""

import asyncio
import math

import numpy as np
import pytest

from actors.engines.torch_engine import TorchEngine
from actors.particle_host import LocalReplica, ParticleHost
from cluster.config import EngineConfig
from cluster.protocol import ProgramSpec
from cluster.scheduler import InferenceConfig, Scheduler
from planner.library import generic_program
from planner.sandbox import ProgramError

pytestmark = pytest.mark.slow

TWO_WORDS = '''
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat=False)
        self.allowed = lm.vocab.from_ids(ALLOWED)

    async def step(self):
        await self.observe(self.context.mask_dist(self.allowed), True)
        await self.sample(self.context.next_token())
        if self.context.token_count == 2:
            await self.observe(self.context.mask_dist(self.allowed), True)
            self.finish()
'''
PROMPT = "My favourite word is"


@pytest.fixture(scope="module")
def exact_setup():
    """SmolLM2 in float32, a program over 4 words, and its posterior by enumeration."""
    engine = TorchEngine.load(EngineConfig(dtype="float32"))
    tok = engine.tokenizer
    allowed = [tok(w, add_special_tokens=False)["input_ids"][0] for w in (" cat", " dog", " river", " sea")]
    base = tok(PROMPT, add_special_tokens=False)["input_ids"]

    async def enumerate_posterior():
        lp0 = await engine.next_token_logprobs(base)
        joint = {}
        for a in allowed:
            lp1 = await engine.next_token_logprobs(base + [a])
            for b in allowed:
                lp2 = await engine.next_token_logprobs(base + [a, b])
                joint[tok.decode([a, b])] = math.exp(lp0[a] + lp1[b] + np.logaddexp.reduce(lp2[allowed]))
        return joint

    joint = asyncio.run(enumerate_posterior())
    z = sum(joint.values())
    replicas = [LocalReplica(f"r{i}", ParticleHost(engine)) for i in range(2)]
    source = TWO_WORDS.replace("ALLOWED", str(allowed))
    return replicas, source, {k: v / z for k, v in joint.items()}, math.log(z)


def run_smc(replicas, source, **cfg):
    seed = cfg.pop("seed", 0)
    spec = ProgramSpec(source=source, prompt=PROMPT, seed=seed)
    return asyncio.run(Scheduler(spec, InferenceConfig(seed=seed, **cfg), lambda: replicas).run())


def tv(result, exact):
    post = {e.text: e.probability for e in result.posterior}
    return 0.5 * sum(abs(post.get(k, 0.0) - p) for k, p in exact.items())


def test_posterior_and_marginal_likelihood_converge_to_the_exact_values(exact_setup):
    replicas, source, exact, log_z = exact_setup
    small = [run_smc(replicas, source, particles=16, seed=s) for s in range(4)]
    large = [run_smc(replicas, source, particles=256, seed=s) for s in range(4)]
    assert np.mean([tv(r, exact) for r in large]) < 0.05
    assert np.mean([tv(r, exact) for r in large]) < np.mean([tv(r, exact) for r in small])
    assert abs(np.mean([r.log_ml for r in large]) - log_z) < 0.05
    assert all(r.stopped == "finished" and r.rounds == 2 for r in large)


def test_one_and_two_replicas_give_the_same_answer(exact_setup):
    replicas, source, exact, _ = exact_setup
    one = run_smc(replicas[:1], source, particles=64, seed=5, ess_threshold=1.0)
    two = run_smc(replicas, source, particles=64, seed=5, ess_threshold=1.0)
    # Each particle's randomness is its own (seeded by id), so placement cannot change it.
    assert [(e.text, round(e.probability, 9)) for e in one.posterior] == [
        (e.text, round(e.probability, 9)) for e in two.posterior
    ]
    assert set(two.trace[0].particles_per_replica) == {"r0", "r1"}


def test_resampling_conserves_n_and_migration_keeps_every_particle_once(exact_setup):
    replicas, _, _, _ = exact_setup
    source = generic_program(max_tokens=6, chat=False)
    # Weights that differ a lot (a random score each step) force resampling every round.
    source = source.replace(
        "        token = await self.sample(self.context.next_token())",
        "        token = await self.sample(self.context.next_token())\n"
        "        self.score(3.0 * len(str(token)))",
    )
    spec = ProgramSpec(source=source, prompt="Rivers", seed=1)
    sched = Scheduler(spec, InferenceConfig(particles=24, seed=1, imbalance=1), lambda: replicas)
    seen = []

    async def on_round(trace):
        held = [pid for r in replicas for pid in await r.host.held(sched.req)]
        seen.append((trace, held))

    sched._on_round = on_round
    result = asyncio.run(sched.run())
    assert any(t.resampled for t, _ in seen)
    assert any(t.migrations > 0 for t, _ in seen)  # resampling unbalanced the two replicas
    for trace, held in seen:
        assert len(held) == len(set(held)) == 24  # every particle exactly once, N conserved
        assert sum(trace.particles_per_replica.values()) == 24
    assert result.follower_tokens > 0 and result.text
    assert all(not r.host.active_requests() for r in replicas)  # finished requests leave nothing behind


def test_a_draining_replica_hands_its_particles_on_and_gets_no_new_ones(exact_setup):
    engine = exact_setup[0][0].host.engine
    replicas = [LocalReplica(f"d{i}", ParticleHost(engine)) for i in range(2)]
    spec = ProgramSpec(source=generic_program(max_tokens=6, chat=False), prompt="Rivers", seed=2)
    sched = Scheduler(spec, InferenceConfig(particles=8, seed=2), lambda: replicas)
    per_round = []

    def on_round(trace):
        per_round.append(dict(trace.particles_per_replica))
        replicas[1].accepting = False  # retiring d1 from the first round on

    sched._on_round = on_round
    result = asyncio.run(sched.run())
    assert per_round[0]["d1"] > 0  # it had particles before it started draining
    assert all(r.get("d1", 0) == 0 for r in per_round[1:])  # moved off after one round
    assert sum(per_round[-1].values()) == 8 and result.text  # none lost
    retired = Scheduler(spec, InferenceConfig(particles=8, seed=3), lambda: replicas)
    retired._on_round = lambda t: per_round.append(dict(t.particles_per_replica))
    asyncio.run(retired.run())
    assert per_round[-1].get("d1", 0) == 0  # a new request never lands on it


@pytest.mark.parametrize("method", ["is", "rs", "steer"])
def test_other_inference_methods(exact_setup, method):
    replicas, source, exact, _ = exact_setup
    result = run_smc(replicas, source, particles=32, method=method, seed=3)
    assert result.text.strip() and result.posterior
    assert result.text in exact
    if method == "is":
        assert not any(t.resampled for t in result.trace)
    if method == "rs":
        assert result.stopped == "accepted"


def test_a_program_that_raises_in_step_fails_clearly(exact_setup):
    replicas, _, _, _ = exact_setup
    source = (
        "class Program(Model):\n"
        "    def __init__(self, lm, prompt):\n"
        "        super().__init__()\n"
        "\n"
        "    async def step(self):\n"
        "        x = [1][5]\n"
    )
    with pytest.raises(ProgramError, match="IndexError") as info:
        run_smc(replicas, source, particles=4)
    assert 'File "<program>", line 6' in str(info.value)
    assert all(not r.host.active_requests() for r in replicas)  # nothing left behind on the replicas


def test_a_run_resumed_from_its_checkpoint_in_another_scheduler_completes(exact_setup):
    """A runner that dies after round 3: another one, from the checkpoint alone (the JSON the
    task store keeps), restores the particles on the replicas and finishes the run."""
    from cluster.scheduler import SchedulerCheckpoint

    replicas, _, _, _ = exact_setup
    spec = ProgramSpec(source=generic_program(12, chat=False), prompt="Once upon a time", seed=3)
    saved = {}

    async def scenario():
        first = Scheduler(spec, InferenceConfig(particles=6, seed=3), lambda: replicas[:1])

        def stop_after_round_3(trace):
            if trace.round == 3:
                saved["json"] = first.checkpoint().model_dump_json()
                raise asyncio.CancelledError  # the runner is gone

        first._on_round = stop_after_round_3
        with pytest.raises(asyncio.CancelledError):
            await first.run()
        held = [await r.host.held(first.req) for r in replicas]
        checkpoint = SchedulerCheckpoint.model_validate_json(saved["json"])
        second = Scheduler.resume(checkpoint, lambda: replicas, trace=first.trace)  # on both replicas now
        return held, await second.run(), second

    held, result, second = asyncio.run(scenario())
    assert held == [[], []]  # the first run's particles were dropped as it ended
    assert [t.round for t in result.trace[:4]] == [1, 2, 3, 4]
    assert result.trace[3].restored == 6 and not any(t.lost for t in result.trace)
    assert result.stopped == "finished" and result.text and result.rounds == len(result.trace)
    assert sum(1 for t in result.trace if t.round > 3) >= 1
