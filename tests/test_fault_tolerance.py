"""Any one process of the service can die mid-request and nothing is lost: a real Serve app on
127.0.0.1 (tiny model, 2 follower replicas), a task in flight, and one process SIGKILLed at a
time — a runner replica, the task store, the pool controller, every follower replica, the
ingress. Each task is answered (a runner's task resumed from its checkpoint), and the service
answers new requests afterwards."""

import os
import signal
import socket
import time

import httpx
import pytest

from bench import chaos
from bench.chaos import pid_of

pytestmark = pytest.mark.slow

APP = "council-ft"
ROUNDS = 300  # long enough to be killed in the middle of


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_local, tiny_model_dir):
    from ray import serve

    from serve_app import build_app, stop_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = {
        "engine": {"model": tiny_model_dir, "dtype": "float32", "kv_cache_tokens": 8192},
        "pool": {"replicas": 2, "num_cpus": 1, "health_check_interval_s": 0.5, "replica_wait_s": 120},
        "planner": {"max_concurrency": 4},
    }
    serve.run(build_app(config), name=APP, route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, replicas=2)
    yield url
    stop_app(APP)
    serve.shutdown()


def wait_healthy(url: str, replicas: int = 1, timeout: float = 300) -> float:
    """Seconds until /healthz says ok with `replicas` live."""
    t0 = time.monotonic()
    while True:
        try:
            health = httpx.get(f"{url}/healthz", timeout=10).json()
            if health.get("status") == "ok" and health.get("replicas_live", 0) >= replicas:
                return time.monotonic() - t0
        except (httpx.HTTPError, ValueError):
            pass
        assert time.monotonic() - t0 < timeout, "the service did not become healthy"
        time.sleep(0.5)


def serve_replica_pids(ray, deployment: str) -> list[int]:
    return chaos.serve_replica_pids(ray, APP, deployment)


def submit(url: str, rounds: int = ROUNDS) -> str:
    from conftest import ENDLESS_PROGRAM

    body = {"prompt": "Go on.", "program": ENDLESS_PROGRAM, "particles": 4, "max_rounds": rounds}
    reply = httpx.post(f"{url}/v1/tasks", json=body, timeout=60)
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


def wait_round(url: str, task_id: str, at_least: int) -> None:
    """Returns as soon as the task's event stream reports round `at_least`."""
    import json

    with httpx.stream("GET", f"{url}/v1/tasks/{task_id}/events", timeout=120) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                event = json.loads(line[5:])
                if event["type"] == "round" and event["round"]["round"] >= at_least:
                    return
                assert event["type"] not in ("finished", "failed", "cancelled"), event
    raise AssertionError(f"{task_id} did not reach round {at_least}")


def get_events(url: str, task_id: str) -> list[dict]:
    """Every event so far (the stream read until it pauses)."""
    import json

    events = []
    try:
        with httpx.stream("GET", f"{url}/v1/tasks/{task_id}/events", timeout=httpx.Timeout(10, read=1.5)) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
    except httpx.ReadTimeout:
        pass
    return events


def wait_done(url: str, task_id: str, timeout: float = 300) -> dict:
    t0 = time.monotonic()
    while True:
        try:
            reply = httpx.get(f"{url}/v1/tasks/{task_id}", timeout=30)
            assert reply.status_code in (200, 503), reply.text  # 503 only while an actor restarts
            if reply.status_code == 200 and reply.json()["status"] not in ("queued", "running"):
                return reply.json()
        except httpx.HTTPError:
            pass
        assert time.monotonic() - t0 < timeout, f"{task_id} did not finish"
        time.sleep(0.5)


def answered(status: dict, rounds: int = ROUNDS) -> None:
    assert status["status"] == "succeeded", status
    assert status["result"]["rounds"] == rounds and status["result"]["follower_tokens"] > 0


def new_request_answered(url: str) -> None:
    """After the fault, the service answers new work (a short task)."""
    answered(wait_done(url, submit(url, rounds=5)), rounds=5)


def test_a_runner_killed_mid_task_has_its_task_resumed_from_the_checkpoint(ray_local, service):
    task = submit(service)
    wait_round(service, task, 5)
    (pid,) = serve_replica_pids(ray_local, "CouncilRunner")
    os.kill(pid, signal.SIGKILL)
    status = wait_done(service, task)
    answered(status)
    events = get_events(service, task)
    resumed = [e for e in events if e["type"] == "resumed"]
    assert resumed and "checkpoint" in resumed[0]["message"]
    rounds = [e["round"]["round"] for e in events if e["type"] == "round"]
    assert rounds[-1] == ROUNDS and set(rounds) == set(range(1, ROUNDS + 1))  # continued, not started over
    assert sum(e["round"]["restored"] for e in events if e["type"] == "round") == 4
    wait_healthy(service, replicas=2)
    new_request_answered(service)


def test_the_task_store_killed_mid_task_comes_back_with_every_task(ray_local, service):
    from actors.task_store import store_of

    done_before = submit(service, rounds=5)
    answered(wait_done(service, done_before), rounds=5)
    task = submit(service)
    wait_round(service, task, 5)
    os.kill(pid_of(ray_local, store_of(APP)), signal.SIGKILL)
    answered(wait_done(service, task))  # dispatched again from its checkpoint, or still running
    answered(wait_done(service, done_before), rounds=5)  # the finished one is still there
    new_request_answered(service)


def test_the_pool_controller_killed_mid_task_loses_nothing(ray_local, service):
    from actors.pool_controller import controller_name
    from cluster.pool import NAMESPACE

    controller = ray_local.get_actor(controller_name(APP), namespace=NAMESPACE)
    before = {r["pid"] for r in ray_local.get(controller.replica_stats.remote())}
    task = submit(service)
    wait_round(service, task, 5)
    os.kill(pid_of(ray_local, controller), signal.SIGKILL)
    answered(wait_done(service, task))
    assert {r["pid"] for r in ray_local.get(controller.replica_stats.remote(), timeout=120)} == before
    new_request_answered(service)


def test_every_follower_killed_at_once_the_task_waits_and_continues(ray_local, service):
    from actors.pool_controller import controller_name
    from cluster.pool import NAMESPACE

    controller = ray_local.get_actor(controller_name(APP), namespace=NAMESPACE)
    task = submit(service)
    wait_round(service, task, 5)
    for replica in ray_local.get(controller.replica_stats.remote()):
        os.kill(replica["pid"], signal.SIGKILL)
    queued = submit(service, rounds=5)  # arrives while no replica is alive: waits instead of failing
    answered(wait_done(service, task))
    answered(wait_done(service, queued), rounds=5)
    rounds = [e["round"] for e in get_events(service, task) if e["type"] == "round"]
    assert sum(r["restored"] for r in rounds) == 4 and not any(r["lost"] for r in rounds)


def test_the_ingress_killed_is_replaced_and_tasks_stay_readable(ray_local, service):
    task = submit(service, rounds=5)
    answered(wait_done(service, task), rounds=5)
    (pid,) = serve_replica_pids(ray_local, "CouncilIngress")
    os.kill(pid, signal.SIGKILL)
    wait_healthy(service, replicas=2, timeout=120)
    answered(wait_done(service, task), rounds=5)
    new_request_answered(service)
