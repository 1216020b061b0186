"""Distributed SMC on a local Ray: replicas die mid-request, the request still completes."""

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest
import ray

from actors.follower import FollowerActor, FollowerReplica
from cluster.config import CouncilConfig
from cluster.pool import FollowerPool
from cluster.protocol import NoReplicaLeft, ProgramSpec
from cluster.scheduler import InferenceConfig, Scheduler
from planner.library import generic_program

pytestmark = pytest.mark.slow


def pool_config(model_dir, replicas=2):
    return CouncilConfig.from_dict(
        {
            "engine": {"model": model_dir, "dtype": "float32"},
            "pool": {"replicas": replicas, "num_cpus": 1, "health_check_interval_s": 0.5},
        }
    )


def run_killing(model_dir, particles, at_round, victims, monitor, **inference):
    """Run the generic program on a fresh 2-replica pool, ray.kill-ing `victims(pool)` when
    round `at_round` is recorded."""

    async def scenario():
        pool = await FollowerPool(FollowerActor, pool_config(model_dir)).start(monitor=monitor)
        try:
            spec = ProgramSpec(source=generic_program(25, chat=False), prompt="Once upon a time", seed=0)

            def kill(trace):
                if trace.round == at_round:
                    for replica in victims(pool):
                        ray.kill(replica.handle)

            config = InferenceConfig(particles=particles, seed=0, **inference)
            return await Scheduler(spec, config, pool.replica_handles, kill).run()
        finally:
            await pool.shutdown()

    return asyncio.run(scenario())


def test_a_replica_killed_mid_run_has_its_particles_continued_on_the_survivor(ray_local, tiny_model_dir):
    result = run_killing(tiny_model_dir, 16, 3, lambda pool: pool.replicas[:1], monitor=True)
    hit = [t for t in result.trace if t.restored]
    assert hit and hit[0].restored == 8  # half the particles were on the victim
    assert not any(t.lost for t in result.trace)  # every one continued from its saved state
    assert not hit[0].resampled or hit[0].ess < 8  # no resampling forced by a loss
    assert sum(hit[0].particles_per_replica.values()) == 16
    assert result.stopped == "finished" and result.text and len(result.posterior) > 0


def test_without_checkpoints_a_dead_replicas_particles_are_lost_and_refilled(ray_local, tiny_model_dir):
    result = run_killing(tiny_model_dir, 16, 3, lambda pool: pool.replicas[:1], monitor=True, checkpoint=False)
    lost_rounds = [t for t in result.trace if t.lost]
    assert lost_rounds and lost_rounds[0].lost == 8  # half the particles were on the victim
    assert lost_rounds[0].resampled  # survivors refilled the population
    assert sum(lost_rounds[0].particles_per_replica.values()) == 16  # all on the survivor
    assert len(lost_rounds[0].particles_per_replica) == 1
    assert result.stopped == "finished" and result.text


def stuck_replica_class():
    """A follower whose engine gets stuck on command: `advance` never returns, while the
    actor keeps answering health pings (so only the call watchdog can tell). Defined in a
    function so that Ray ships the class by value (workers cannot import this test module)."""

    class StuckReplica(FollowerReplica):
        stuck = False

        async def get_stuck(self) -> None:
            self.stuck = True

        async def advance(self, req, ids, save=False):
            if self.stuck:
                await asyncio.sleep(3600)
            return await super().advance(req, ids, save)

    return ray.remote(max_restarts=0)(StuckReplica)


def test_a_replica_stuck_mid_run_is_replaced_and_the_request_completes(ray_local, tiny_model_dir):
    config = pool_config(tiny_model_dir)

    async def scenario():
        pool = await FollowerPool(stuck_replica_class(), config).start(monitor=True)
        try:
            spec = ProgramSpec(source=generic_program(25, chat=False), prompt="Once upon a time", seed=0)
            # Warm both replicas (their program workers' zygotes start on a first request, which
            # on a loaded machine can take longer than the tight deadline below), then tighten it.
            await Scheduler(spec, InferenceConfig(particles=8, seed=1, max_rounds=2), pool.replica_handles).run()
            pool.pool_config = pool.pool_config.model_copy(update={"call_timeout_s": 3.0})
            stuck = pool.replicas[0].handle

            async def on_round(trace):
                if trace.round == 2:
                    await stuck.get_stuck.remote()

            result = await Scheduler(spec, InferenceConfig(particles=8, seed=0), pool.replica_handles,
                                     on_round).run()
            await pool.wait_all_alive(120)
            return result, pool.restarts, stuck is not pool.replicas[0].handle
        finally:
            await pool.shutdown()

    result, restarts, replaced = asyncio.run(scenario())
    hit = [t for t in result.trace if t.restored]
    assert hit and hit[0].restored == 4 and hit[0].round == 3  # its half, in the round it hung
    assert not any(t.lost for t in result.trace)
    assert result.stopped == "finished" and result.text
    assert restarts == 1 and replaced


def test_every_replica_killed_at_once_the_request_waits_for_the_pool_and_continues(ray_local, tiny_model_dir):
    result = run_killing(tiny_model_dir, 8, 2, lambda pool: pool.replicas, monitor=True, replica_wait_s=120)
    hit = [t for t in result.trace if t.restored]
    assert hit and hit[0].restored == 8 and not any(t.lost for t in result.trace)
    assert result.stopped == "finished" and result.text


def test_when_no_replica_is_left_the_request_fails_clearly(ray_local, tiny_model_dir):
    with pytest.raises(NoReplicaLeft, match="no follower replica is alive"):
        run_killing(tiny_model_dir, 8, 2, lambda pool: pool.replicas, monitor=False)


RIVER_PROGRAM = textwrap.dedent('''
    class Program(Model):
        """Exactly 10 words, the 4th being "river"."""

        def __init__(self, lm, prompt):
            super().__init__()
            self.context = LMContext(lm, prompt)
            self.count = 0

        async def step(self):
            ctx = self.context
            vocab = ctx.lm.vocab
            if self.count == 3:
                for t in ctx.lm.encode(" river"):
                    await self.observe(ctx.next_token(), t)
            else:
                await self.observe(ctx.mask_dist(vocab.alpha_word_starts()), True)
                await self.sample(ctx.next_token())
                for _ in range(4):
                    more = await self.sample(ctx.mask_dist(vocab.alpha_continuations()))
                    if not more:
                        break
                    await self.sample(ctx.next_token())
            self.count += 1
            if self.count == 10:
                await self.observe(ctx.next_token(), ctx.lm.encode(".")[0])
                self.finish()

        def check(self, text):
            words = text.replace(".", " ").split()
            return len(words) == 10 and words[3] == "river"
''')


def test_council_run_with_a_program_file_on_smollm2(tmp_path):
    program = tmp_path / "river.py"
    program.write_text(RIVER_PROGRAM)
    run = subprocess.run(
        [sys.executable, "-m", "council_cli", "run", "Write a sentence about a walk.",
         "--program", str(program), "--particles", "8", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout)
    words = result["text"].replace(".", " ").split()
    assert result["passed_check"] is True
    assert len(words) == 10 and words[3] == "river", result["text"]
    assert result["rounds"] == 10 and result["follower_tokens"] > 0


def test_council_run_rejects_a_hostile_program_file(tmp_path):
    program = tmp_path / "evil.py"
    program.write_text("import os\nclass Program(Model):\n    pass\n")
    run = subprocess.run(
        [sys.executable, "-m", "council_cli", "run", "hi", "--program", str(program)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 2
    assert "imports are not allowed" in run.stderr and "Traceback" not in run.stderr
