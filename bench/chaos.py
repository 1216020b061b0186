"""`council bench chaos`: a bounded load on 127.0.0.1 while processes of the service are killed.

One Serve app on a local Ray (SmolLM2 followers unless `--model`), and for each fault of the
schedule a batch of tasks (`--tasks`, `--concurrency` at a time) during which that fault is
injected at a random moment (seeded): SIGKILL of one follower replica, of every follower
replica, of the runner replica, of the pool controller, of the task store, of the ingress.
Each task is submitted with an Idempotency-Key (and resubmitted on a 5xx or a refused
connection, as a client would) and followed until it ends.

Per fault it reports: tasks answered, of them resumed by another runner; failed with a
retryable error; lost (accepted, then gone or never finished); HTTP 5xx answers other than a
retryable 503; particles continued vs lost (from the tasks' round events); seconds until
every killed process had a successor serving and /healthz reported every replica live; and
whether a new request was answered after.

    council bench chaos --tasks 12 --concurrency 6 --json bench/results/chaos.json
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
import uuid
from pathlib import Path

from bench.measure import free_port

APP = "council-chaos"
FAULTS = ("follower", "all_followers", "runner", "controller", "store", "ingress")


def pid_of(ray, actor) -> int:
    """The process id of an actor (to SIGKILL it, as a crash would)."""
    return ray.get(actor.__ray_call__.remote(lambda self: os.getpid()), timeout=60)


def serve_replica_pids(ray, app: str, deployment: str) -> list[int]:
    """The process ids of a Serve deployment's replicas."""
    names = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
             if a["namespace"] == "serve" and f"{app}#{deployment}#" in a["name"]]
    return [pid_of(ray, ray.get_actor(n, namespace="serve")) for n in names]


def _replaced(ray, fault: str, victims: list[int], replicas: int) -> bool:
    """Every killed process has a successor serving in its place (a health check alone is
    fooled until the death is noticed)."""
    from actors.pool_controller import controller_name
    from actors.task_store import store_of
    from cluster.pool import NAMESPACE

    try:
        controller = ray.get_actor(controller_name(APP), namespace=NAMESPACE)
        if fault in ("follower", "all_followers"):
            pids = [r["pid"] for r in ray.get(controller.replica_stats.remote(), timeout=10)]
            return len(pids) == replicas and not set(pids) & set(victims)
        if fault in ("runner", "ingress"):
            pids = serve_replica_pids(ray, APP, "CouncilRunner" if fault == "runner" else "CouncilIngress")
            return bool(pids) and not set(pids) & set(victims)
        actor = controller if fault == "controller" else store_of(APP)
        return pid_of(ray, actor) not in victims
    except Exception:  # noqa: BLE001 - not answering yet
        return False


def _victims(ray, fault: str) -> list[int]:
    from actors.pool_controller import controller_name
    from actors.task_store import store_of
    from cluster.pool import NAMESPACE

    controller = ray.get_actor(controller_name(APP), namespace=NAMESPACE)
    if fault in ("follower", "all_followers"):
        pids = [r["pid"] for r in ray.get(controller.replica_stats.remote(), timeout=60)]
        return pids[:1] if fault == "follower" else pids
    if fault == "runner":
        return serve_replica_pids(ray, APP, "CouncilRunner")[:1]
    if fault == "ingress":
        return serve_replica_pids(ray, APP, "CouncilIngress")[:1]
    if fault == "controller":
        return [pid_of(ray, controller)]
    return [pid_of(ray, store_of(APP))]


async def _healthy(http, replicas: int) -> bool:
    try:
        health = (await http.get("/healthz", timeout=5)).json()
        return health.get("status") == "ok" and health.get("replicas_live", 0) >= replicas
    except Exception:  # noqa: BLE001 - not answering is not healthy
        return False


async def _one_task(http, body: dict, tally: dict, deadline: float) -> dict:
    """Submit (idempotently, retrying what a client would retry) and follow one task."""
    key, task_id = uuid.uuid4().hex, None
    while task_id is None and time.monotonic() < deadline:
        try:
            reply = await http.post("/v1/tasks", json=body, headers={"idempotency-key": key}, timeout=30)
        except Exception:  # noqa: BLE001 - connection refused while the ingress restarts
            await asyncio.sleep(0.5)
            continue
        if reply.status_code == 202:
            task_id = reply.json()["id"]
            tally["accepted"] += 1
        elif reply.status_code in (429, 503):
            if reply.status_code == 503:
                tally["retryable_503"] += 1
            await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
        else:
            tally["http_5xx" if reply.status_code >= 500 else "http_4xx"] += 1
            await asyncio.sleep(0.5)
    if task_id is None:
        return {"outcome": "lost", "why": "never accepted"}
    while time.monotonic() < deadline:
        try:
            reply = await http.get(f"/v1/tasks/{task_id}", timeout=30)
        except Exception:  # noqa: BLE001 - the ingress restarting
            await asyncio.sleep(0.5)
            continue
        if reply.status_code == 200:
            status = reply.json()
            if status["status"] == "succeeded":
                return {"outcome": "answered", "id": task_id}
            if status["status"] in ("failed", "cancelled"):
                error = status.get("error") or {}
                return {"outcome": "retryable" if error.get("retryable") else "failed", "id": task_id,
                        "why": error.get("message")}
        elif reply.status_code == 404:
            return {"outcome": "lost", "id": task_id, "why": "404 after it was accepted"}
        elif reply.status_code >= 500 and reply.status_code != 503:
            tally["http_5xx"] += 1
        await asyncio.sleep(0.3)
    return {"outcome": "lost", "id": task_id, "why": "did not finish in time"}


async def _events(http, task_id: str) -> list[dict]:
    events = []
    try:
        async with http.stream("GET", f"/v1/tasks/{task_id}/events", timeout=30) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data:"):
                    events.append(json.loads(line[5:]))
                    if events[-1]["type"] in ("finished", "failed", "cancelled"):
                        break
    except Exception:  # noqa: BLE001 - counted as no events
        pass
    return events


async def _phase(url: str, ray, fault: str, tasks: int, concurrency: int, replicas: int,
                 body: dict, rng: random.Random, timeout_s: float) -> dict:
    import httpx

    tally = {"http_5xx": 0, "http_4xx": 0, "retryable_503": 0, "accepted": 0}
    limit = asyncio.Semaphore(concurrency)
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url) as http:
        async def guarded():
            async with limit:
                return await _one_task(http, body, tally, deadline)

        jobs = [asyncio.create_task(guarded()) for _ in range(tasks)]
        while tally["accepted"] < min(tasks, concurrency) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # the first wave is in: the fault strikes work in flight
        await asyncio.sleep(rng.uniform(0.2, 2.0))  # at a random moment of it
        victims = await asyncio.get_running_loop().run_in_executor(None, _victims, ray, fault)
        killed_at = time.monotonic()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        loop = asyncio.get_running_loop()
        while time.monotonic() < deadline:
            if (await loop.run_in_executor(None, _replaced, ray, fault, victims, replicas)
                    and await _healthy(http, replicas)):
                break
            await asyncio.sleep(0.25)
        to_healthy = time.monotonic() - killed_at
        results = await asyncio.gather(*jobs)
        restored = lost_particles = resumed = 0
        for r in results:
            if r.get("id"):
                events = await _events(http, r["id"])
                resumed += any(e["type"] == "resumed" for e in events)
                rounds = [e["round"] for e in events if e["type"] == "round"]
                restored += sum(t.get("restored", 0) for t in rounds)
                lost_particles += sum(t.get("lost", 0) for t in rounds)
        after = await _one_task(http, body, tally, time.monotonic() + 120)
    counts = {k: sum(1 for r in results if r["outcome"] == k) for k in ("answered", "retryable", "failed", "lost")}
    return {"fault": fault, "killed": len(victims), "tasks": tasks, **counts, "resumed": resumed,
            "http_5xx": tally["http_5xx"], "retryable_503": tally["retryable_503"],
            "particles_continued": restored, "particles_lost": lost_particles,
            "seconds_to_healthy": round(to_healthy, 2), "answers_after": after["outcome"] == "answered",
            "why": sorted({r["why"] for r in results if r.get("why")})}


def run(json_path: Path | None = None, tasks: int = 12, concurrency: int = 6, faults: tuple[str, ...] = FAULTS,
        seed: int = 0, model: str | None = None, replicas: int = 2, timeout_s: float = 600.0) -> dict:
    from ray import serve

    from cluster.runtime import connect_ray
    from serve_app import build_app, stop_app

    connect_ray(num_cpus=max(os.cpu_count() or 2, replicas + 1))
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = {"pool": {"replicas": replicas, "num_cpus": 1, "health_check_interval_s": 1.0},
              "planner": {"max_concurrency": concurrency}, "server": {"max_queued": 4 * tasks}}
    if model:
        config["engine"] = {"model": model}
    serve.run(build_app(config), name=APP, route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    body = {"prompt": "Write a sentence with exactly 12 words.", "particles": 4}
    rng = random.Random(seed)
    import ray

    rows = []
    try:
        asyncio.run(_wait_healthy(url, replicas))
        for fault in faults:
            row = asyncio.run(_phase(url, ray, fault, tasks, concurrency, replicas, body, rng, timeout_s))
            rows.append(row)
            print(f"{row['fault']:14s} killed {row['killed']}: answered {row['answered']}/{row['tasks']} "
                  f"(resumed {row['resumed']}), retryable {row['retryable']}, failed {row['failed']}, "
                  f"lost {row['lost']}, 5xx {row['http_5xx']}, 503 {row['retryable_503']}; particles "
                  f"continued {row['particles_continued']} lost {row['particles_lost']}; healthy after "
                  f"{row['seconds_to_healthy']:.1f}s; answers after: {row['answers_after']}", flush=True)
    finally:
        stop_app(APP)
        serve.shutdown()
    total = {k: sum(r[k] for r in rows) for k in ("tasks", "answered", "retryable", "failed", "lost", "http_5xx")}
    print(f"all faults: {total}")
    report = {"tasks_per_fault": tasks, "concurrency": concurrency, "replicas": replicas, "seed": seed,
              "model": model or "SmolLM2-135M-Instruct (embedded)", "faults": rows, "total": total}
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
    return report


async def _wait_healthy(url: str, replicas: int, timeout_s: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=url) as http:
        while not await _healthy(http, replicas):
            if time.monotonic() > deadline:
                raise RuntimeError("the service did not become healthy")
            await asyncio.sleep(0.5)
