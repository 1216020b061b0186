"""`council bench engine`: follower-engine throughput on the real model, in one run.

Three measurements of decode throughput (tokens/s), all on the same weights and dtype:

- raw:     plain transformers forward + log-softmax, batch B, one KV cache per batch, no
           sampling and no Council code: the physical limit of this machine for this model.
- engine:  TorchEngine, C concurrent `generate` callers sharing a 60-token prompt; every step
           of every caller goes through the autobatcher and the prefix KV trie, and each
           caller samples its own token (that cost is counted against the engine).
- actor:   the same C callers as remote `generate` calls on one FollowerReplica Ray actor,
           issued from this driver process.

efficiency = engine tokens/s / raw tokens/s at the same batch size (target >= 0.8 at 32).
Timings cover decode only: each measurement first computes the shared prompt once. All
torch work runs on the one torch thread (actors/engines/torch_thread.py), raw included.

    council bench engine --json bench/results/engine.json
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from pathlib import Path

import torch

from actors.engines.base import GenerateRequest
from actors.engines.torch_engine import (
    TorchEngine,
    cpu_has_fast_bf16,
    load_hf_model,
    pick_device,
    pick_dtype,
)
from actors.engines.torch_thread import on_torch_thread
from cluster.config import EngineConfig

PROMPT_TOKENS = 60
PROMPT_TEXT = (
    "The river wound slowly through the valley, past the old mill and the stone bridge where "
    "the children of the village used to gather on summer evenings to watch the swallows skim "
    "the water and to tell each other stories about the people who had lived there long ago, "
    "before the railway came and the town grew up around the station."
)


def shared_prompt(tokenizer) -> str:
    """Text that tokenizes to (about) PROMPT_TOKENS tokens."""
    ids = tokenizer(PROMPT_TEXT)["input_ids"][:PROMPT_TOKENS]
    return tokenizer.decode(ids, skip_special_tokens=True)


@torch.inference_mode()
def raw_decode(model, prompt_ids: list[int], batch: int, steps: int) -> float:
    """tokens/s of plain transformers decode at `batch` (timed after the prefill).

    The fed tokens are drawn up front: torch.multinomial over a 49k vocabulary costs ~58 ms
    per step at batch 64 here, which would flatter every ratio against this baseline. The
    log-softmax that a sampler (or a particle) needs is kept.
    """
    gen = torch.Generator().manual_seed(0)
    feed = torch.randint(100, model.config.vocab_size, (steps, batch, 1), generator=gen)
    out = model(torch.tensor([prompt_ids] * batch), use_cache=True)
    # transformers 5.24 renamed `past_key_values` to `cache` (the old name goes in 5.40).
    name = "cache" if "cache" in out else "past_key_values"
    cache = out[name]
    start = time.perf_counter()
    for step in range(steps):
        out = model(feed[step], use_cache=True, **{name: cache})
        cache = out[name]
        torch.log_softmax(out.logits[:, -1].float(), -1)
    return batch * steps / (time.perf_counter() - start)


async def engine_decode(engine, prompt: str, callers: int, steps: int) -> tuple[float, int]:
    """tokens/s of `callers` concurrent generate() calls, after the shared prompt is cached."""
    warm = GenerateRequest(prompt=prompt, chat=False, max_tokens=1, temperature=0.0)
    await engine.generate(warm)
    reqs = [
        GenerateRequest(prompt=prompt, chat=False, max_tokens=steps, temperature=1.0, seed=i)
        for i in range(callers)
    ]
    start = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(r) for r in reqs))
    elapsed = time.perf_counter() - start
    tokens = sum(r.completion_tokens for r in results)
    return tokens / elapsed, tokens


async def actor_decode(engine_config: EngineConfig, prompt: str, counts: list[int], steps: int,
                       threads: int) -> dict[int, float]:
    import ray

    from actors.follower import FollowerActor
    from cluster.runtime import connect_ray

    connect_ray(num_cpus=max(threads, 1))
    actor = FollowerActor.options(num_cpus=threads).remote(engine_config.model_dump(), "bench")
    await actor.ready.remote()
    out = {}
    try:
        warm = GenerateRequest(prompt=prompt, chat=False, max_tokens=1, temperature=0.0)
        await actor.generate.remote(warm)
        for callers in counts:
            reqs = [
                GenerateRequest(prompt=prompt, chat=False, max_tokens=steps, temperature=1.0, seed=i)
                for i in range(callers)
            ]
            start = time.perf_counter()
            results = await asyncio.gather(*(actor.generate.remote(r) for r in reqs))
            elapsed = time.perf_counter() - start
            out[callers] = sum(r.completion_tokens for r in results) / elapsed
    finally:
        ray.kill(actor)
    return out


def run_engine_bench(
    json_path: Path | None = None,
    decode_tokens: int = 32,
    batch_sizes: list[int] = (1, 8, 32, 64),
    caller_counts: list[int] = (8, 32, 64),
    dtype: str = "auto",
    with_actor: bool = True,
) -> dict:
    config = EngineConfig(dtype=dtype, max_batch_size=max([*caller_counts, 1]))
    device = pick_device(config)
    torch_dtype = pick_dtype(config, device)
    threads = on_torch_thread(torch.get_num_threads)
    model, tokenizer, name = on_torch_thread(load_hf_model, config, device, torch_dtype)
    prompt = shared_prompt(tokenizer)
    prompt_ids = tokenizer(prompt)["input_ids"]
    print(f"model {name} on {device}, {str(torch_dtype)[6:]}, {threads} threads; "
          f"prompt {len(prompt_ids)} tokens, {decode_tokens} decode steps")

    raw = {}
    for b in sorted(set(batch_sizes) | set(caller_counts)):
        raw[b] = on_torch_thread(raw_decode, model, prompt_ids, b, decode_tokens)
        print(f"  raw transformers   batch {b:3d}: {raw[b]:7.1f} tok/s")

    engine = TorchEngine(model, tokenizer, config, name=name)
    eng = {}
    for c in caller_counts:
        eng[c], _ = asyncio.run(engine_decode(engine, prompt, c, decode_tokens))
        print(f"  TorchEngine      callers {c:3d}: {eng[c]:7.1f} tok/s   "
              f"efficiency {eng[c] / raw[c]:.2f}")
    stats = engine.stats()
    print(f"  prefix-cache hit rate {stats.prefix_hit_rate:.3f}, mean batch "
          f"{stats.mean_batch_size:.1f}")

    actor = {}
    if with_actor:
        del engine  # free the driver's copy before the actor loads its own
        actor = asyncio.run(actor_decode(config, prompt, list(caller_counts), decode_tokens, threads))
        for c, v in actor.items():
            print(f"  FollowerReplica  callers {c:3d}: {v:7.1f} tok/s   "
                  f"vs raw {v / raw[c]:.2f}")

    report = {
        "benchmark": "engine",
        "model": name,
        "device": device,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "threads": threads,
        "cpu_fast_bf16": cpu_has_fast_bf16(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "prompt_tokens": len(prompt_ids),
        "decode_tokens": decode_tokens,
        "raw_tokens_per_s": raw,
        "engine_tokens_per_s": eng,
        "actor_tokens_per_s": actor,
        "efficiency": {c: eng[c] / raw[c] for c in eng},
        "actor_vs_raw": {c: actor[c] / raw[c] for c in actor},
        "prefix_hit_rate": stats.prefix_hit_rate,
        "mean_batch_size": stats.mean_batch_size,
    }
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2))
        print(f"wrote {json_path}")
    return report

