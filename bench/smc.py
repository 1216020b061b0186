"""`council bench smc`: SMC throughput across the follower pool, against the raw engine limit.

One run, same model and dtype for every figure:
- raw:  plain transformers decode at batch = particles (forward + log-softmax, no Council
        code), from bench/engine.py, measured in this process;
- smc:  `council run`'s path (scheduler -> FollowerReplica actors -> particle host -> engine)
        with the same number of particles, on 1 and on 2 replicas; every particle generates
        exactly `steps` tokens (EOS masked out), so the batch never shrinks. Each round is one
        Ray round trip per replica.

This machine's speed drifts by tens of percent from minute to minute (a shared VM), so one
run of each would compare two different machines: per replica count, after a warm-up at the
full particle count, raw and SMC runs alternate `repeats` times and the medians are compared.

Reported: tokens/s, ratio to raw, and the scheduler's own time per round (resampling,
migration, bookkeeping; the replicas' work excluded).

    council bench smc --json bench/results/smc.json
"""

from __future__ import annotations

import asyncio
import os
import time
from statistics import median
from pathlib import Path

import torch

from actors.engines.torch_engine import load_hf_model, pick_device, pick_dtype
from actors.engines.torch_thread import on_torch_thread
from bench.engine import raw_decode, shared_prompt
from bench.measure import write_report
from cluster.config import CouncilConfig, EngineConfig

FIXED_LENGTH_PROGRAM = '''\
class Program(Model):
    """Exactly {steps} tokens of the follower's text (EOS masked out)."""

    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat=False)

    async def step(self):
        await self.observe(self.context.mask_dist(~self.context.lm.vocab.eos()), True)
        await self.sample(self.context.next_token())
        if self.context.token_count >= {steps}:
            self.finish()
'''


async def _smc_runs(replicas: int, particles: int, steps: int, prompt: str, dtype: str, model: str,
                    repeats: int = 1, measure_raw=None) -> tuple[list[dict], list[float]]:
    """`repeats` timed SMC runs on one pool, each preceded by a raw decode measurement
    (`measure_raw()`, when given)."""
    from actors.follower import FollowerActor
    from cluster.pool import FollowerPool
    from cluster.protocol import ProgramSpec
    from cluster.scheduler import InferenceConfig, Scheduler

    cpus = max(1, (os.cpu_count() or 1) // replicas)
    cfg = CouncilConfig.from_dict({
        "engine": {"model": model, "dtype": dtype, "max_batch_size": max(64, particles)},
        "pool": {"replicas": replicas, "num_cpus": cpus},
    })
    pool = await FollowerPool(FollowerActor, cfg).start(monitor=False)
    runs, raws = [], []
    try:
        spec = ProgramSpec(source=FIXED_LENGTH_PROGRAM.format(steps=steps), prompt=prompt)
        # The warm-up runs at full size (first-time costs of a batch shape are not throughput)
        # and draws other tokens: each run has its own seed, so no run finds its particles'
        # tokens already in the engine's cache.
        for seed in range(1 + repeats):
            icfg = InferenceConfig(particles=particles, seed=seed)
            if seed and measure_raw is not None:
                raws.append(measure_raw())
            busy_before = await _engine_busy_s(pool)
            start = time.perf_counter()
            result = await Scheduler(spec.model_copy(update={"seed": seed}), icfg, pool.replica_handles).run()
            wall = time.perf_counter() - start
            if seed:
                runs.append(_figures(result, wall, await _engine_busy_s(pool) - busy_before))
    finally:
        await pool.shutdown()
    return runs, raws


async def _engine_busy_s(pool) -> float:
    """Seconds the replicas' engines have spent computing batches (summed over replicas; the
    torch engine's, which this bench runs, counts them)."""
    stats = await asyncio.gather(*(r.handle.stats.remote() for r in pool.live()))
    return sum(s.engine.busy_s or 0.0 for s in stats)


def _figures(result, wall: float, busy_s: float) -> dict:
    rounds = max(1, result.rounds)
    return {
        "tokens": result.follower_tokens,
        "wall_s": wall,
        "tokens_per_s": result.follower_tokens / wall,
        "rounds": result.rounds,
        "resampled_rounds": sum(t.resampled for t in result.trace),
        "migrations": sum(t.migrations for t in result.trace),
        "scheduler_ms_per_round": sum(t.scheduler_ms for t in result.trace) / rounds,
        "round_ms": wall * 1000 / rounds,
        # Engine compute per round (summed over replicas): the rest of a round is the workers'
        # sampling, the frames and Ray.
        "engine_ms_per_round": busy_s * 1000 / rounds,
    }


def run_smc_bench(
    json_path: Path | None = None, particles: int = 32, steps: int = 32, dtype: str = "auto",
    model: str = "smollm2", repeats: int = 3, alongside=None,
) -> dict:
    """`alongside(prompt, dtype)`, when given, runs after each raw measurement of the 1-replica
    series, so what it times (the peers of `council bench throughput`) alternates with raw
    decode and Council SMC too."""
    from cluster.runtime import connect_ray

    config = EngineConfig(model=model, dtype=dtype)
    device = pick_device(config)
    torch_dtype = pick_dtype(config, device)
    hf_model, tokenizer, name = on_torch_thread(load_hf_model, config, device, torch_dtype)
    prompt = shared_prompt(tokenizer)
    prompt_ids = tokenizer(prompt)["input_ids"]
    dtype_name = str(torch_dtype).removeprefix("torch.")
    print(f"model {name}, {dtype_name}; {particles} particles x {steps} tokens; "
          f"prompt {len(prompt_ids)} tokens; {repeats} alternating runs of raw and SMC per replica count")

    def measure_raw() -> float:
        return on_torch_thread(raw_decode, hf_model, prompt_ids, particles, steps)

    def measure_raw_and_alongside() -> float:
        tokens_per_s = measure_raw()
        alongside(prompt, dtype_name)
        return tokens_per_s

    measure_raw()  # warm-up
    connect_ray(num_cpus=os.cpu_count() or 1)
    runs, raw_by_replicas = {}, {}
    for replicas in (1, 2):
        between = measure_raw_and_alongside if alongside is not None and replicas == 1 else measure_raw
        smc, raws = asyncio.run(_smc_runs(replicas, particles, steps, prompt, dtype_name, model, repeats,
                                          between))
        raw = raw_by_replicas[replicas] = median(raws)
        middle = sorted(smc, key=lambda r: r["tokens_per_s"])[len(smc) // 2]
        runs[replicas] = {**middle, "tokens_per_s": median([r["tokens_per_s"] for r in smc]),
                          "runs_tokens_per_s": [r["tokens_per_s"] for r in smc],
                          "raw_tokens_per_s": raw, "raw_runs_tokens_per_s": raws}
        r = runs[replicas]
        print(f"  raw transformers batch {particles}: {raw:7.1f} tok/s (median of {', '.join(f'{x:.0f}' for x in raws)})")
        print(f"  SMC, {replicas} replica(s):   {r['tokens_per_s']:7.1f} tok/s   vs raw {r['tokens_per_s'] / raw:.2f}   "
              f"round {r['round_ms']:.1f} ms (engine {r['engine_ms_per_round']:.1f}), scheduler {r['scheduler_ms_per_round']:.2f} ms/round, "
              f"{r['resampled_rounds']} resamplings, {r['migrations']} migrations")
    report = {
        "benchmark": "smc",
        "model": name,
        "dtype": dtype_name,
        "particles": particles,
        "steps": steps,
        "repeats": repeats,
        "prompt": prompt,
        "cpu_threads": torch.get_num_threads(),
        "raw_tokens_per_s": median([x for r in runs.values() for x in r["raw_runs_tokens_per_s"]]),
        "smc": {str(k): v for k, v in runs.items()},
        "smc_vs_raw": {str(k): v["tokens_per_s"] / raw_by_replicas[k] for k, v in runs.items()},
    }
    if json_path:
        write_report(Path(json_path), report)
    return report
