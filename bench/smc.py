"""`council bench smc`: SMC throughput across the follower pool, against the raw engine limit.

One run, same model and dtype for every figure:
- raw:  plain transformers decode at batch = particles (forward + log-softmax, no Council
        code), from bench/engine.py, measured in this process;
- smc:  `council run`'s path (scheduler -> FollowerReplica actors -> particle host -> engine)
        with the same number of particles, on 1 and on 2 replicas; every particle generates
        exactly `steps` tokens (EOS masked out), so the batch never shrinks. Each round is one
        Ray round trip per replica.

Reported: tokens/s, ratio to raw, and the scheduler's own time per round (resampling,
migration, bookkeeping; the replicas' work excluded).

    council bench smc --json bench/results/smc.json
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import torch

from actors.engines.torch_engine import load_hf_model, pick_device, pick_dtype
from actors.engines.torch_thread import on_torch_thread
from bench.engine import raw_decode, shared_prompt
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


async def _smc_run(replicas: int, particles: int, steps: int, prompt: str, dtype: str, model: str) -> dict:
    from actors.follower import FollowerActor
    from cluster.pool import FollowerPool
    from cluster.scheduler import InferenceConfig, ProgramSpec, Scheduler

    cpus = max(1, (os.cpu_count() or 1) // replicas)
    cfg = CouncilConfig.from_dict({
        "engine": {"model": model, "dtype": dtype, "max_batch_size": max(64, particles)},
        "pool": {"replicas": replicas, "num_cpus": cpus},
    })
    pool = await FollowerPool(FollowerActor, cfg).start(monitor=False)
    try:
        spec = ProgramSpec(source=FIXED_LENGTH_PROGRAM.format(steps=steps), prompt=prompt)
        icfg = InferenceConfig(particles=particles, seed=0)
        # The warm-up draws other tokens (another seed): the same seed would leave the timed
        # run's first particles in the engine's cache, and flatter it.
        warm = spec.model_copy(update={"seed": 1})
        await Scheduler(warm, icfg.model_copy(update={"particles": 4, "seed": 1}), pool.replica_handles).run()
        start = time.perf_counter()
        result = await Scheduler(spec, icfg, pool.replica_handles).run()
        wall = time.perf_counter() - start
    finally:
        await pool.shutdown()
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
    }


def run_smc_bench(
    json_path: Path | None = None, particles: int = 32, steps: int = 32, dtype: str = "auto",
    model: str = "smollm2",
) -> dict:
    from cluster.runtime import connect_ray

    config = EngineConfig(model=model, dtype=dtype)
    device = pick_device(config)
    torch_dtype = pick_dtype(config, device)
    hf_model, tokenizer, name = on_torch_thread(load_hf_model, config, device, torch_dtype)
    prompt = shared_prompt(tokenizer)
    prompt_ids = tokenizer(prompt)["input_ids"]
    dtype_name = str(torch_dtype).removeprefix("torch.")
    print(f"model {name}, {dtype_name}; {particles} particles x {steps} tokens; "
          f"prompt {len(prompt_ids)} tokens")
    raw = on_torch_thread(raw_decode, hf_model, prompt_ids, particles, steps)
    print(f"  raw transformers batch {particles}: {raw:7.1f} tok/s")
    del hf_model  # the replicas load their own copies

    connect_ray(num_cpus=os.cpu_count() or 1)
    runs = {}
    for replicas in (1, 2):
        runs[replicas] = asyncio.run(_smc_run(replicas, particles, steps, prompt, dtype_name, model))
        r = runs[replicas]
        print(f"  SMC, {replicas} replica(s):   {r['tokens_per_s']:7.1f} tok/s   "
              f"vs raw {r['tokens_per_s'] / raw:.2f}   round {r['round_ms']:.1f} ms, "
              f"scheduler {r['scheduler_ms_per_round']:.2f} ms/round, "
              f"{r['resampled_rounds']} resamplings, {r['migrations']} migrations")
    report = {
        "benchmark": "smc",
        "model": name,
        "dtype": dtype_name,
        "particles": particles,
        "steps": steps,
        "prompt": prompt,
        "cpu_threads": torch.get_num_threads(),
        "raw_tokens_per_s": raw,
        "smc": {str(k): v for k, v in runs.items()},
        "smc_vs_raw": {str(k): v["tokens_per_s"] / raw for k, v in runs.items()},
    }
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2))
        print(f"wrote {json_path}")
    return report
