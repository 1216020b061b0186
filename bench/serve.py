"""`council bench serve`: what HTTP + Ray Serve add, and how many requests per second it sustains.

One process starts a local Ray, the Serve app (SmolLM2 follower, library planner) on
127.0.0.1 and measures, for the same request:

- latency through HTTP (`POST /v1/tasks`, `wait: true`) against calling the PlannerActor
  directly (`run.remote`), p50 / p99 and their ratio, sequentially;
- sustained requests/s at concurrency 1, 8 and 32 (a bounded number of requests per level),
  with the count of errors (0 expected below the admission bound).

Two requests: `tiny` (a given one-step program: almost pure overhead) and `small` (a 6-word
sentence from the library planner, 4 particles).

    council bench serve --json bench/results/serve.json
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from pathlib import Path

from bench.measure import free_port, percentile

TINY_PROGRAM = """
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt)

    async def step(self):
        await self.sample(self.context.next_token())
        self.finish()
"""
REQUESTS = {
    "tiny": {"prompt": "Say one word.", "program": TINY_PROGRAM, "particles": 2},
    "small": {"prompt": "Write a sentence with exactly 6 words.", "particles": 4},
}


def _percentiles(ms: list[float]) -> dict:
    return {"p50_ms": statistics.median(ms), "p99_ms": percentile(ms, 0.99), "n": len(ms)}


async def _latency(base_url: str, config, body: dict, n: int) -> dict:
    """Each request twice, interleaved: over HTTP (ingress, task store, a runner replica) and
    run in this process on the same follower pool (the runner's own work, no service)."""
    import httpx

    from council_sdk.types import TaskRequest

    from actors.pool_controller import controller_for
    from cluster.pool_client import PoolClient
    from cluster.runner import CouncilRunner, run_request

    pool = await PoolClient(controller_for(config, "council-bench"), config.pool).start()
    runner = CouncilRunner(config, pool.replica_handles, followers=pool)

    direct, http = [], []
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        # Interleaved, so drift on a noisy machine hits both alike, with seeds of their own:
        # the same seed twice would hand the second path the first one's cached KV.
        for i in range(n):
            t0 = time.perf_counter()
            await runner.run(run_request(TaskRequest(**body, seed=2 * i)))
            direct.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            reply = await client.post("/v1/tasks", json={**body, "seed": 2 * i + 1, "wait": True})
            reply.raise_for_status()
            http.append((time.perf_counter() - t0) * 1000)
    d, h = _percentiles(direct), _percentiles(http)
    return {"direct": d, "http": h, "p50_ratio": h["p50_ms"] / d["p50_ms"], "p99_ratio": h["p99_ms"] / d["p99_ms"],
            "overhead_p50_ms": h["p50_ms"] - d["p50_ms"]}


async def _throughput(base_url: str, body: dict, concurrency: int, total: int) -> dict:
    import httpx

    errors: dict[str, int] = {}
    next_seed = iter(range(total))

    async def worker(client):
        for seed in next_seed:
            try:
                reply = await client.post("/v1/tasks", json={**body, "seed": seed, "wait": True})
                if reply.status_code != 200:
                    errors[str(reply.status_code)] = errors.get(str(reply.status_code), 0) + 1
            except httpx.HTTPError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    async with httpx.AsyncClient(base_url=base_url, timeout=600,
                                 limits=httpx.Limits(max_connections=concurrency)) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
    return {"concurrency": concurrency, "requests": total, "seconds": seconds,
            "requests_per_s": total / seconds, "errors": errors, "error_count": sum(errors.values())}


def run(out: Path | None, latency_n: int = 20, levels: tuple[int, ...] = (1, 8, 32),
        per_level: int = 64) -> dict:
    import ray
    from ray import serve

    from cluster.runtime import connect_ray
    from actors.pool_controller import controller_for
    from cluster.config import CouncilConfig
    from serve_app import build_app, stop_app

    connect_ray(num_cpus=os.cpu_count() or 2)
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    config = CouncilConfig.from_dict({"pool": {"replicas": 1}, "planner": {"max_concurrency": 32},
                                      "server": {"max_queued": 256}})
    serve.run(build_app(config.model_dump()), name="council-bench", route_prefix="/")
    base_url = f"http://127.0.0.1:{port}"
    ray.get(controller_for(config, "council-bench").start.remote())
    report: dict = {"device": "cpu", "latency": {}, "throughput": {}}
    try:
        for name, body in REQUESTS.items():
            asyncio.run(_latency(base_url, config, body, 3))  # warm-up: the prompt's KV, connections
            lat = asyncio.run(_latency(base_url, config, body, latency_n))
            report["latency"][name] = lat
            print(f"{name:5s} direct p50 {lat['direct']['p50_ms']:7.1f} ms p99 {lat['direct']['p99_ms']:7.1f} ms | "
                  f"http p50 {lat['http']['p50_ms']:7.1f} ms p99 {lat['http']['p99_ms']:7.1f} ms | "
                  f"ratio p50 {lat['p50_ratio']:.2f} p99 {lat['p99_ratio']:.2f}")
            report["throughput"][name] = []
            for c in levels:
                row = asyncio.run(_throughput(base_url, body, c, max(per_level, c)))
                report["throughput"][name].append(row)
                print(f"{name:5s} concurrency {c:3d}: {row['requests_per_s']:6.2f} req/s "
                      f"({row['requests']} requests, {row['error_count']} errors)")
    finally:
        stop_app("council-bench")
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))
    return report
