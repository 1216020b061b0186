"""Hostile programs through the service: every attack in tests/attacks.py runs under key A
while key B's requests (with a secret in their prompt) run beside them on the same two
replicas of the real SmolLM2. Each attack must end contained: its task fails with a clear
client error naming what stopped it (or, for the few that can only touch their own worker,
finishes), no file appears on the host, B's secret shows up nowhere in A's results, B's
answers are normal, and no replica had to be replaced."""

import glob
import re
import threading
import time
import uuid

import httpx
import pytest

from attacks import ATTACKS, MARK

pytestmark = pytest.mark.slow

KEY_A, KEY_B = "attacker-key", "victim-key"
AUTH_A = {"Authorization": f"Bearer {KEY_A}"}
AUTH_B = {"Authorization": f"Bearer {KEY_B}"}
RUN = uuid.uuid4().hex[:8]
SECRET = f"SECRET-{uuid.uuid4().hex[:12]}"
LEAKS = ("Traceback (most recent", "ray.", "pydantic.dev", "/site-packages/", "/work/")
VICTIM = f'''
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, "The password is {SECRET}. Now write about rivers:", chat=False)

    async def step(self):
        await self.observe(self.context.mask_dist(self.context.lm.vocab.alpha_word_starts()), True)
        await self.sample(self.context.next_token())
        if self.context.token_count >= 6:
            self.finish()

    def check(self, text):
        return len(text.split()) == 6
'''


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def service(ray_local):
    from ray import serve

    from actors.pool_controller import controller_name
    from cluster.pool import NAMESPACE
    from serve_app import build_app, stop_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = {
        "pool": {"replicas": 2, "num_cpus": 1},
        "planner": {"max_concurrency": 6},
        "server": {"api_keys": [KEY_A, KEY_B], "max_queued": 128},
        "sandbox": {"step_timeout_s": 2.0, "step_ops": 200_000, "memory_mb": 256, "cpu_s": 60},
    }
    serve.run(build_app(config), name="council-attacks", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while httpx.get(f"{url}/healthz").json()["replicas_live"] < 2:
        assert time.monotonic() < deadline, "the follower pool did not start"
        time.sleep(1)
    yield url, ray_local.get_actor(controller_name("council-attacks"), namespace=NAMESPACE)
    stop_app("council-attacks")  # its pool too: that is detached
    serve.shutdown()


def replica_pids(planner, ray) -> set[int]:
    return {s["pid"] if isinstance(s, dict) else s.pid for s in ray.get(planner.replica_stats.remote())}


def wait_done(url: str, auth: dict, task_id: str, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(f"{url}/v1/tasks/{task_id}", headers=auth, timeout=30).json()
        if status["status"] in ("succeeded", "failed", "cancelled"):
            return status
        assert time.monotonic() < deadline, f"task {task_id} did not end"
        time.sleep(0.3)


def victim_loop(url: str, stop: threading.Event, results: list) -> None:
    """Key B's requests, one after another, for as long as the attacks run (bounded)."""
    with httpx.Client(base_url=url, headers=AUTH_B, timeout=120) as http:
        for i in range(40):
            if stop.is_set() and i >= 3:
                return
            body = ({"prompt": "Write about rivers.", "program": VICTIM, "particles": 4, "seed": i, "wait": True}
                    if i % 2 == 0 else {"prompt": "Write a sentence with exactly 8 words.", "wait": True})
            response = http.post("/v1/tasks", json=body)
            results.append((response.status_code, response.json()))


def test_hostile_programs_are_contained_and_the_other_tenant_is_served(service, ray_local):
    url, planner = service
    before = replica_pids(planner, ray_local)
    stop, victims = threading.Event(), []
    beside = threading.Thread(target=victim_loop, args=(url, stop, victims))
    beside.start()
    submitted = {}
    try:
        with httpx.Client(base_url=url, headers=AUTH_A, timeout=60) as http:
            for attack in ATTACKS:
                path = f"/tmp/council-attack-{RUN}-{attack.name}"
                response = http.post("/v1/tasks", json={"prompt": "Write about rivers.", "program": attack.source(path), "particles": 2})
                assert response.status_code == 202, (attack.name, response.text)
                submitted[attack.name] = response.json()["id"]
        ended = {name: wait_done(url, AUTH_A, task) for name, task in submitted.items()}
    finally:
        stop.set()
        beside.join(timeout=600)

    problems = []
    for attack in ATTACKS:
        status = ended[attack.name]
        text = repr(status)
        if SECRET in text:
            problems.append(f"{attack.name}: the victim's secret leaked")
        if attack.outcome == "runs":
            if status["status"] != "succeeded" or MARK in (status["result"] or {}).get("text", ""):
                problems.append(f"{attack.name}: expected a harmless run, got {status['status']}: {status['error']}")
            continue
        error = status["error"] or {}
        message = error.get("message", "")
        if status["status"] != "failed" or error.get("kind") != "bad_request":
            problems.append(f"{attack.name}: expected a client error, got {status['status']} {error}")
        elif not re.search(attack.why, message, re.I):
            problems.append(f"{attack.name}: message does not say why ({attack.why!r}): {message[-300:]}")
        if any(leak in message for leak in LEAKS):
            problems.append(f"{attack.name}: the message leaks internals: {message[-300:]}")
    assert not problems, "\n".join(problems)

    assert not glob.glob(f"/tmp/council-attack-{RUN}-*"), "an attack wrote a file on the host"
    assert len(victims) >= 3
    for code, body in victims:
        assert code == 200, body
        assert body["result"]["passed_check"] is True, body["result"]
        assert MARK not in body["result"]["text"]
    assert replica_pids(planner, ray_local) == before, "a replica died or was replaced"
    health = httpx.get(f"{url}/healthz").json()
    assert health["replicas_live"] == 2 and health["running"] == 0

