"""The elastic pool's policy (pure, a fake clock) and the pool growing and shrinking on Ray
with CPU replicas."""

import time

import pytest

from cluster.autoscale import ScalePolicy
from cluster.config import PoolConfig


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_the_policy_grows_on_sustained_load_and_shrinks_when_idle():
    clock = Clock()
    policy = ScalePolicy(min_replicas=1, max_replicas=3, target_load=2, up_after_s=5, idle_s=30, clock=clock)
    assert policy.decide(load=5, live=1) == 0  # high, but not for long yet
    clock.t = 4
    assert policy.decide(load=5, live=1) == 0
    clock.t = 5
    assert policy.decide(load=5, live=1) == +1
    clock.t = 6
    assert policy.decide(load=3, live=2) == 0  # 3 <= 2 * 2: enough replicas
    clock.t = 7
    assert policy.decide(load=9, live=3) == 0  # at max_replicas
    clock.t = 8
    assert policy.decide(load=0, live=3) == 0
    clock.t = 37
    assert policy.decide(load=1, live=3) == 0  # any load resets the idle timer
    clock.t = 38
    assert policy.decide(load=0, live=3) == 0
    clock.t = 68
    assert policy.decide(load=0, live=3) == -1
    assert policy.decide(load=0, live=1) == 0  # at min_replicas


def test_a_short_spike_does_not_grow_the_pool_and_bounds_are_restored():
    clock = Clock()
    policy = ScalePolicy.from_pool(PoolConfig(replicas=2, min_replicas=2, max_replicas=4,
                                              target_load_per_replica=1, scale_up_after_s=3), clock)
    assert policy.decide(load=10, live=2) == 0
    clock.t = 2
    assert policy.decide(load=1, live=2) == 0  # the spike ended
    clock.t = 4
    assert policy.decide(load=10, live=2) == 0  # a new spike starts its own timer
    assert policy.decide(load=0, live=1) == +1  # below min (a replica died): back up
    assert policy.decide(load=0, live=5) == -1  # above max





@pytest.mark.slow
def test_the_pool_grows_under_load_and_retires_a_replica_when_idle(ray_local, tiny_model_dir, endless_program):
    from council_sdk.types import TaskRequest

    from actors.planner import PlannerActor
    from cluster.config import CouncilConfig

    ray = ray_local
    cfg = CouncilConfig.from_dict({
        "engine": {"model": tiny_model_dir, "dtype": "float32"},
        "pool": {"replicas": 1, "min_replicas": 1, "max_replicas": 2, "num_cpus": 1,
                 "target_load_per_replica": 1, "scale_up_after_s": 0.5, "scale_down_idle_s": 2},
    })
    actor = PlannerActor.remote(cfg)
    try:
        ray.get(actor.start.remote(), timeout=300)
        long = [ray.get(actor.submit.remote(TaskRequest(prompt="go", program=endless_program, particles=8,
                                                        max_rounds=4096, seed=i)))
                for i in range(3)]
        deadline = time.monotonic() + 120
        while ray.get(actor.health.remote()).replicas_live < 2:
            assert time.monotonic() < deadline, "the pool did not grow"
            time.sleep(0.5)
        # Rebalancing spreads the running particles onto the new replica (within a few rounds;
        # a loaded machine takes longer than the 3 s once waited here).
        deadline = time.monotonic() + 30
        while True:
            busy = [r["smc_requests"] for r in ray.get(actor.replica_stats.remote())]
            if (len(busy) == 2 and all(n > 0 for n in busy)) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(busy) == 2 and all(n > 0 for n in busy)
        for task in long:
            assert ray.get(actor.cancel.remote(task.id)).status == "cancelled"
        # while the pool shrinks, work still arrives and is answered
        finite = ray.get(actor.submit.remote(TaskRequest(prompt="Write 6 words.", particles=4)))
        assert ray.get(actor.wait.remote(finite.id, 120)).status == "succeeded"
        deadline = time.monotonic() + 120
        while ray.get(actor.health.remote()).replicas != 1:
            assert time.monotonic() < deadline, "the idle pool did not shrink"
            time.sleep(0.5)
        stats = ray.get(actor.stats.remote())
        assert (stats.scaled_up, stats.scaled_down) == (1, 1)
        assert stats.tasks.get("council-smc/cancelled") == 3 and stats.tasks.get("council-smc/succeeded") == 1
    finally:
        ray.get(actor.shutdown.remote(), timeout=60)
        ray.kill(actor)
