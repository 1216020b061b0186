"""`council bench checkpoint`: what saving every particle each step costs (what lets a dead
replica's particles, or a dead runner's task, continue elsewhere).

One pool of follower replicas (SmolLM2 unless `--model`), the fixed-length program of
`council bench smc`, and runs that alternate `inference.checkpoint` on and off (this machine
drifts, so each figure is a median of alternating runs). A run with checkpoints also builds
the task checkpoint the runner sends the task store after every round and serialises it to
JSON, as the service does, so its cost is in the figure; the store's own write is not.

    council bench checkpoint --json bench/results/checkpoint.json
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from statistics import median

from bench.smc import FIXED_LENGTH_PROGRAM


async def _runs(replicas: int, particles: int, steps: int, repeats: int, model: str) -> dict:
    from council_sdk.types import PlannerReport

    from actors.follower import FollowerActor
    from cluster.config import CouncilConfig
    from cluster.pool import FollowerPool
    from cluster.protocol import ProgramSpec
    from cluster.runner import TaskCheckpoint
    from cluster.scheduler import InferenceConfig, Scheduler
    from planner.planning import PlannedProgram

    cfg = CouncilConfig.from_dict({"engine": {"model": model, "max_batch_size": max(64, particles)},
                                   "pool": {"replicas": replicas, "num_cpus": max(1, (os.cpu_count() or 1) // replicas)}})
    pool = await FollowerPool(FollowerActor, cfg).start(monitor=False)
    source = FIXED_LENGTH_PROGRAM.format(steps=steps)
    planned = PlannedProgram(source=source, prompt="Once upon a time", report=PlannerReport(path="given"))
    figures: dict[str, list] = {"on": [], "off": [], "bytes": [], "serialise_ms": []}
    try:
        for i in range(1 + 2 * repeats):
            mode = "on" if i % 2 else "off"
            spec = ProgramSpec(source=source, prompt="Once upon a time", seed=i)
            scheduler = None
            sizes, spent = [], []

            def on_round(trace):
                if mode == "on":
                    t0 = time.perf_counter()
                    text = TaskCheckpoint(planned=planned, scheduler=scheduler.checkpoint()).model_dump_json()
                    spent.append(time.perf_counter() - t0)
                    sizes.append(len(text))

            icfg = InferenceConfig(particles=particles, seed=i, checkpoint=mode == "on")
            scheduler = Scheduler(spec, icfg, pool.replica_handles, on_round)
            t0 = time.perf_counter()
            result = await scheduler.run()
            wall = time.perf_counter() - t0
            if i:  # the first run warms up
                figures[mode].append(result.follower_tokens / wall)
                if mode == "on":
                    figures["bytes"].append(median(sizes))
                    figures["serialise_ms"].append(1000 * median(spent))
    finally:
        await pool.shutdown()
    on, off = median(figures["on"]), median(figures["off"])
    return {"replicas": replicas, "particles": particles, "tokens": steps,
            "tokens_per_s_checkpoint": on, "tokens_per_s_without": off, "ratio": on / off,
            "runs_on": figures["on"], "runs_off": figures["off"],
            "checkpoint_bytes_per_round": median(figures["bytes"]),
            "serialise_ms_per_round": median(figures["serialise_ms"])}


def run(json_path: Path | None = None, replicas: int = 2, particles: int = 32, steps: int = 32,
        repeats: int = 3, model: str = "smollm2") -> dict:
    from cluster.runtime import connect_ray

    connect_ray(num_cpus=os.cpu_count() or 1)
    report = asyncio.run(_runs(replicas, particles, steps, repeats, model))
    print(f"{replicas} replica(s), {particles} particles x {steps} tokens, {repeats} alternating runs each: "
          f"with checkpoints {report['tokens_per_s_checkpoint']:.1f} tok/s, without "
          f"{report['tokens_per_s_without']:.1f} tok/s, ratio {report['ratio']:.3f}; task checkpoint "
          f"{report['checkpoint_bytes_per_round'] / 1024:.1f} KiB per round, serialised in "
          f"{report['serialise_ms_per_round']:.2f} ms")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
    return report
