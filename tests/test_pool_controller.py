"""The pool's control plane on a local Ray: its controller and a planner are SIGKILLed and the
pool is neither lost nor started twice."""

import os
import signal
import time

import pytest

from cluster.config import CouncilConfig
from cluster.pool import NAMESPACE

pytestmark = pytest.mark.slow


def tiny_config(model_dir, replicas=2):
    return CouncilConfig.from_dict({
        "engine": {"model": model_dir, "dtype": "float32", "kv_cache_tokens": 4096},
        "pool": {"replicas": replicas, "num_cpus": 1, "health_check_interval_s": 0.5},
    })


def pid_of(ray, actor) -> int:
    return ray.get(actor.__ray_call__.remote(lambda self: os.getpid()), timeout=60)


def named_followers(ray, app: str) -> list[str]:
    return sorted(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["namespace"] == NAMESPACE and a["name"].startswith(f"{app}-follower-"))


def live_groups(ray, app: str) -> list[str]:
    return sorted(info["name"] for info in ray.util.placement_group_table().values()
                  if (info.get("name") or "").startswith(f"{app}-pg") and info["state"] != "REMOVED")


def sigkill_and_wait_restart(ray, actor, old_pid: int) -> int:
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:
        try:
            new_pid = pid_of(ray, actor)
            if new_pid != old_pid:
                return new_pid
        except ray.exceptions.RayActorError:
            pass
        assert time.monotonic() < deadline, "the actor was not restarted"
        time.sleep(0.5)


def test_a_killed_controller_comes_back_and_adopts_its_replicas(ray_local, tiny_model_dir):
    from actors.pool_controller import controller_for, stop_controller

    ray, app = ray_local, "ctl-test"
    controller = controller_for(tiny_config(tiny_model_dir), app)
    try:
        first = ray.get(controller.start.remote(), timeout=300)
        assert first.live == 2
        before = {(e.index, e.generation, e.handle._actor_id.hex()) for e in first.replicas}
        assert named_followers(ray, app) == [f"{app}-follower-0.1", f"{app}-follower-1.1"]
        assert live_groups(ray, app) == [f"{app}-pg"]

        sigkill_and_wait_restart(ray, controller, pid_of(ray, controller))
        again = ray.get(controller.start.remote(), timeout=300)
        after = {(e.index, e.generation, e.handle._actor_id.hex()) for e in again.replicas}
        assert after == before  # the same actors, not a second pool
        assert named_followers(ray, app) == [f"{app}-follower-0.1", f"{app}-follower-1.1"]
        assert live_groups(ray, app) == [f"{app}-pg"]

        # The restarted controller watches its adopted replicas: one killed is replaced.
        version = again.version
        ray.kill(again.replicas[0].handle)
        deadline = time.monotonic() + 120
        while True:
            table = ray.get(controller.table.remote(version, 5.0), timeout=60)
            version = table.version
            row = next(e for e in table.replicas if e.index == 0)
            if row.alive and row.generation == 2:
                break
            assert time.monotonic() < deadline, "the dead replica was not replaced"
        assert named_followers(ray, app) == [f"{app}-follower-0.2", f"{app}-follower-1.1"]
        assert table.restarts == 1

        # The count is history, not this life's: a third controller still reports it, and a
        # replica lost while no controller was there is counted when it is started again.
        victim = next(e for e in table.replicas if e.index == 1).handle
        sigkill_and_wait_restart(ray, controller, pid_of(ray, controller))  # its pool is not started yet
        ray.kill(victim)
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(victim.ping.remote(), timeout=60)
        third = ray.get(controller.start.remote(), timeout=300)
        assert third.live == 2 and third.restarts == 2
        assert named_followers(ray, app) == [f"{app}-follower-0.2", f"{app}-follower-1.2"]
    finally:
        assert stop_controller(app)
    assert named_followers(ray, app) == [] and live_groups(ray, app) == []


def test_a_killed_planner_is_restarted_and_serves_on_the_same_pool(ray_local, tiny_model_dir):
    from actors.planner import PlannerActor
    from cluster.runner import RunRequest
    from cluster.scheduler import InferenceConfig

    ray, app = ray_local, "planner-test"
    planner = PlannerActor.remote(tiny_config(tiny_model_dir, replicas=1), app)
    try:
        assert ray.get(planner.start.remote(), timeout=300).replicas_live == 1
        request = RunRequest(prompt="Write 5 words.", inference=InferenceConfig(particles=2, seed=1))
        assert ray.get(planner.run.remote(request), timeout=300).follower_tokens > 0
        followers = named_followers(ray, app)

        sigkill_and_wait_restart(ray, planner, pid_of(ray, planner))
        health = ray.get(planner.start.remote(), timeout=300)
        assert health.status == "ok" and health.replicas_live == 1
        assert ray.get(planner.run.remote(request), timeout=300).follower_tokens > 0
        assert named_followers(ray, app) == followers  # the pool was found, not started again
        assert live_groups(ray, app) == [f"{app}-pg"]
    finally:
        ray.get(planner.shutdown.remote(), timeout=120)
        ray.kill(planner)
    assert named_followers(ray, app) == [] and live_groups(ray, app) == []
