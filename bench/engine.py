"""`council bench engine`: follower-engine throughput on the real model, in one run.

Three measurements of decode throughput (tokens/s), all on the same weights and dtype:

- raw:     plain transformers forward + log-softmax, batch B, one KV cache per batch, no
           sampling and no Council code: the physical limit of this machine for this model.
- engine:  TorchEngine, C concurrent `generate` callers sharing a 60-token prompt; every step
           of every caller goes through the autobatcher and the prefix KV trie, and each
           caller samples its own token (that cost is counted against the engine).
- actor:   the same C callers as remote `generate` calls on one FollowerReplica Ray actor,
           issued from this driver process.

efficiency = engine tokens/s / raw tokens/s at the same batch size (target >= 0.8 at 32); the
three alternate, `repeats` rounds, and the medians are reported.
Timings cover decode only: each measurement first computes the shared prompt once. All
torch work runs on the one torch thread (actors/engines/torch_thread.py), raw included.

    council bench engine --json bench/results/engine.json
"""

from __future__ import annotations

import asyncio
import json
import platform
import time
from collections import defaultdict
from pathlib import Path
from statistics import median

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


async def engine_decode(engine, prompt: str, callers: int, steps: int, seed_base: int = 0) -> tuple[float, int]:
    """tokens/s of `callers` concurrent generate() calls, after the shared prompt is cached.
    Each repeat passes its own `seed_base`, so no run finds its tokens in the prefix cache."""
    warm = GenerateRequest(prompt=prompt, chat=False, max_tokens=1, temperature=0.0)
    await engine.generate(warm)
    reqs = [
        GenerateRequest(prompt=prompt, chat=False, max_tokens=steps, temperature=1.0, seed=seed_base + i)
        for i in range(callers)
    ]
    start = time.perf_counter()
    results = await asyncio.gather(*(engine.generate(r) for r in reqs))
    elapsed = time.perf_counter() - start
    tokens = sum(r.completion_tokens for r in results)
    return tokens / elapsed, tokens


class ActorDecode:
    """The same callers as remote `generate` calls on one FollowerReplica Ray actor."""

    def __init__(self, engine_config: EngineConfig, prompt: str, threads: int):
        import ray

        from actors.follower import FollowerActor
        from cluster.runtime import connect_ray

        connect_ray(num_cpus=max(threads, 1))
        self.ray, self.prompt = ray, prompt
        self.actor = FollowerActor.options(num_cpus=threads).remote(engine_config.model_dump(), "bench")
        ray.get(self.actor.ready.remote())
        warm = GenerateRequest(prompt=prompt, chat=False, max_tokens=1, temperature=0.0)
        ray.get(self.actor.generate.remote(warm))

    async def decode(self, callers: int, steps: int, seed_base: int) -> float:
        reqs = [GenerateRequest(prompt=self.prompt, chat=False, max_tokens=steps, temperature=1.0, seed=seed_base + i)
                for i in range(callers)]
        start = time.perf_counter()
        results = await asyncio.gather(*(self.actor.generate.remote(r) for r in reqs))
        return sum(r.completion_tokens for r in results) / (time.perf_counter() - start)

    def close(self) -> None:
        self.ray.kill(self.actor)


def run_engine_bench(
    json_path: Path | None = None,
    decode_tokens: int = 32,
    batch_sizes: list[int] = (1, 8, 32, 64),
    caller_counts: list[int] = (8, 32, 64),
    dtype: str = "auto",
    with_actor: bool = True,
    repeats: int = 3,
) -> dict:
    """Raw, engine and actor measurements alternate, `repeats` rounds of each (this machine's
    speed drifts from minute to minute: measured one after the other, each figure would be
    of another machine); reported are the medians and each ratio's median over the rounds."""
    config = EngineConfig(dtype=dtype, max_batch_size=max([*caller_counts, 1]))
    device = pick_device(config)
    torch_dtype = pick_dtype(config, device)
    threads = on_torch_thread(torch.get_num_threads)
    model, tokenizer, name = on_torch_thread(load_hf_model, config, device, torch_dtype)
    prompt = shared_prompt(tokenizer)
    prompt_ids = tokenizer(prompt)["input_ids"]
    print(f"model {name} on {device}, {str(torch_dtype)[6:]}, {threads} threads; "
          f"prompt {len(prompt_ids)} tokens, {decode_tokens} decode steps, {repeats} alternating rounds")

    engine = TorchEngine(model, tokenizer, config, name=name)
    actor = ActorDecode(config, prompt, threads) if with_actor else None
    runs: dict[str, dict[int, list[float]]] = {"raw": defaultdict(list), "engine": defaultdict(list),
                                               "actor": defaultdict(list)}
    ratios: dict[str, dict[int, list[float]]] = {"engine": defaultdict(list), "actor": defaultdict(list)}
    try:
        for rnd in range(repeats):
            for b in sorted(set(batch_sizes) | set(caller_counts)):
                raw = on_torch_thread(raw_decode, model, prompt_ids, b, decode_tokens)
                runs["raw"][b].append(raw)
                if b not in caller_counts:
                    continue
                seed_base = 1000 * (rnd + 1)
                eng, _ = asyncio.run(engine_decode(engine, prompt, b, decode_tokens, seed_base))
                runs["engine"][b].append(eng)
                ratios["engine"][b].append(eng / raw)
                if actor is not None:
                    act = asyncio.run(actor.decode(b, decode_tokens, seed_base))
                    runs["actor"][b].append(act)
                    ratios["actor"][b].append(act / raw)
            print(f"  round {rnd + 1}: " + ", ".join(
                f"{b}: raw {runs['raw'][b][-1]:.0f} engine {runs['engine'][b][-1]:.0f}"
                + (f" actor {runs['actor'][b][-1]:.0f}" if actor is not None else "") for b in caller_counts))
    finally:
        if actor is not None:
            actor.close()
    med = {kind: {b: median(v) for b, v in by.items()} for kind, by in runs.items()}
    ratio = {kind: {b: median(v) for b, v in by.items()} for kind, by in ratios.items()}
    for b, v in med["raw"].items():
        print(f"  raw transformers   batch {b:3d}: {v:7.1f} tok/s")
    for c in caller_counts:
        print(f"  TorchEngine      callers {c:3d}: {med['engine'][c]:7.1f} tok/s   "
              f"efficiency {ratio['engine'][c]:.2f}"
              + (f"   FollowerReplica {med['actor'][c]:7.1f} tok/s, vs raw {ratio['actor'][c]:.2f}"
                 if actor is not None else ""))
    stats = engine.stats()
    print(f"  prefix-cache hit rate {stats.prefix_hit_rate:.3f}, mean batch "
          f"{stats.mean_batch_size:.1f}")

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
        "repeats": repeats,
        "raw_tokens_per_s": med["raw"],
        "engine_tokens_per_s": med["engine"],
        "actor_tokens_per_s": med["actor"],
        "efficiency": ratio["engine"],
        "actor_vs_raw": ratio["actor"],
        "runs": {kind: dict(by) for kind, by in runs.items()},
        "prefix_hit_rate": stats.prefix_hit_rate,
        "mean_batch_size": stats.mean_batch_size,
    }
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(report, indent=2))
        print(f"wrote {json_path}")
    return report
