"""`council bench concurrent`: SMC tokens/s on one replica, one request against several at once.

(The module is not named `concurrent`: the peers' scripts run from `bench/`, where that name
would hide the standard library's `concurrent` package.)

One replica in this process (the engine and its particle host; no Ray), SmolLM2, the same
particle total in every mode: one request of all of them, or k requests of a k-th each, run
at once. Each request's particles run in their own confined worker, which sends all its
particles' next-token requests together after sampling every one of them from the last
batch; the engine's autobatch should still compute all the requests' particles in one batch.
The k-request modes run twice: with the autobatch waiting for every worker (caller group) of
the last batch, as it does, and with the gap rule alone, as it did before
(`AutoBatcher.wait_for_groups`).

The program is the fixed-length one of `council bench smc`, or with `request` the library
planner's program for it (word building, counting and checks in every step). Modes alternate
`repeats` times after a warm-up (this machine drifts) and medians are compared; each reports
its engine batches' mean size.

    council bench concurrent --json bench/results/concurrent.json
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from statistics import median

from bench.measure import write_report


async def _measure(particles: int, steps: int, repeats: int, counts: list[int], model: str,
                   request: str | None) -> dict:
    from actors.engines import create_engine
    from actors.particle_host import LocalReplica, ParticleHost
    from bench.engine import shared_prompt
    from bench.smc import FIXED_LENGTH_PROGRAM
    from cluster.config import EngineConfig
    from cluster.protocol import ProgramSpec
    from cluster.scheduler import InferenceConfig, Scheduler

    engine = create_engine(EngineConfig(model=model, max_batch_size=max(64, particles)))
    if request is None:
        spec = ProgramSpec(source=FIXED_LENGTH_PROGRAM.format(steps=steps), prompt=shared_prompt(engine.tokenizer))
        rounds = steps + 1
    else:
        from planner.library import plan

        planned = plan(request)
        spec, rounds = ProgramSpec(source=planned.source, prompt=planned.prompt), planned.rounds
    host = ParticleHost(engine)
    replica = LocalReplica("r0", host)
    batcher = engine._batcher
    modes = {"1 request": (1, True)}
    for k in counts:
        modes[f"{k} requests"] = (k, True)
        modes[f"{k} requests, gap rule only"] = (k, False)

    async def run(requests: int, groups: bool, seed: int) -> tuple[float, float]:
        batcher.wait_for_groups = groups
        b0, i0 = batcher.batches, batcher.items
        start = time.perf_counter()
        results = await asyncio.gather(*(
            Scheduler(spec.model_copy(update={"seed": seed + j}),
                      InferenceConfig(particles=particles // requests, seed=seed + j, max_rounds=rounds),
                      lambda: [replica]).run()
            for j in range(requests)))
        wall = time.perf_counter() - start
        return sum(r.follower_tokens for r in results) / wall, (batcher.items - i0) / max(1, batcher.batches - b0)

    try:
        for requests, groups in modes.values():  # warm-up: first batch shapes, the zygote
            await run(requests, groups, 10_000)
        runs = {name: [] for name in modes}
        batch = {name: [] for name in modes}
        for i in range(repeats):
            for name, (requests, groups) in modes.items():
                tps, mean_batch = await run(requests, groups, 100 * (i + 1))
                runs[name].append(tps)
                batch[name].append(mean_batch)
    finally:
        batcher.wait_for_groups = True
        await host.close()
        await engine.close()
    base = median(runs["1 request"])
    return {name: {"tokens_per_s": median(v), "runs_tokens_per_s": v, "vs_one_request": median(v) / base,
                   "mean_batch": median(batch[name])} for name, v in runs.items()}


def run(json_path: Path | None = None, particles: int = 32, steps: int = 32, repeats: int = 3,
        counts: tuple[int, ...] = (2, 4), model: str = "smollm2", request: str | None = None) -> dict:
    modes = asyncio.run(_measure(particles, steps, repeats, list(counts), model, request))
    what = f"{steps} tokens each" if request is None else f"the library's program for {request!r}"
    print(f"one replica, {particles} particles in all, {what}, medians of {repeats} alternating runs")
    for name, row in modes.items():
        print(f"  {name:28s} {row['tokens_per_s']:7.1f} tok/s   x{row['vs_one_request']:.2f}   "
              f"mean batch {row['mean_batch']:.1f}")
    report = {"benchmark": "concurrent", "model": model, "particles": particles, "steps": steps,
              "request": request, "repeats": repeats, "cpus": os.cpu_count(), "modes": modes}
    if json_path:
        write_report(json_path, report)
    return report
