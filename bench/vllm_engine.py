"""`council bench vllm`: the vLLM follower's full-vocabulary scoring, batched against vLLM's own
per-request log-probs.

One engine (the exported SmolLM2 in vLLM, loaded once) answers `particles` concurrent callers,
each extending its own copy of one shared prompt (~60 tokens) for `steps` tokens: it asks for
the next-token log-probs, samples a token from them with numpy (seeded per caller) and appends
it, as SMC particles do. Two routes, alternating `repeats` times (this machine drifts):

- per_request: `VLLMEngine.next_token_logprobs_unbatched`, vLLM's `logprobs=-1` output, a
  dict of one `Logprob` object per vocabulary entry per call;
- batched: `VLLMEngine.next_token_logprobs`, each engine step's rows copied out at once by the
  `CaptureLogprobs` logits processor into shared memory.

Reported: tokens/s of each (medians), their ratio, the vLLM steps the batched route took per
token (how vLLM's scheduler grouped the concurrent requests), and how far the two routes' rows
for the prompt lie apart.

    council bench vllm --particles 32 --steps 16 --json bench/results/vllm_engine.json

Needs vLLM in the running interpreter (on CPU: the venv of README's "vLLM engine" section).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Awaitable, Callable, Sequence

import numpy as np

from bench.measure import write_report

ROUTES = {"per_request": "logprobs=-1 dicts", "batched": "logits processor"}
DEFAULT_JSON = Path("bench/results/vllm_engine.json")

Scorer = Callable[[Sequence[int]], Awaitable[np.ndarray]]


def _model_dir(model: str, scratch: str) -> str:
    """`model` as a plain Hugging Face directory: as given when it is one, else exported."""
    if (Path(model) / "config.json").is_file():
        return model
    from actors.engines.model_source import export_hf_directory

    return str(export_hf_directory(model, Path(scratch) / "model"))


def _scorer(engine, route: str) -> Scorer:
    return engine.next_token_logprobs_unbatched if route == "per_request" else engine.next_token_logprobs


def _sample(rng: np.random.Generator, row: np.ndarray) -> int:
    p = np.exp(row.astype(np.float64) - row.max())
    return int(rng.choice(len(p), p=p / p.sum()))


async def _particle(score: Scorer, prompt: list[int], steps: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    seq = list(prompt)
    for _ in range(steps):
        seq.append(_sample(rng, await score(seq)))


async def _timed(engine, route: str, prompt: list[int], particles: int, steps: int) -> dict:
    """One run of `particles` concurrent callers for `steps` tokens each."""
    score = _scorer(engine, route)
    steps_before = engine.stats().batches
    start = time.perf_counter()
    await asyncio.gather(*(_particle(score, prompt, steps, seed) for seed in range(particles)))
    wall = time.perf_counter() - start
    run = {"wall_s": wall, "tokens_per_s": particles * steps / wall}
    if route == "batched":  # CaptureLogprobs counts the engine steps that scored
        run["vllm_steps_per_token"] = (engine.stats().batches - steps_before) / steps
    return run


async def _measure(engine, prompt: list[int], particles: int, steps: int, repeats: int) -> dict:
    rows = {route: await _scorer(engine, route)(prompt) for route in ROUTES}  # also the warm-up
    finite = np.isfinite(rows["per_request"])
    runs: dict[str, list[dict]] = {route: [] for route in ROUTES}
    for _ in range(repeats):
        for route in ROUTES:
            runs[route].append(await _timed(engine, route, prompt, particles, steps))
    summary = {route: {"tokens_per_s": median(r["tokens_per_s"] for r in got), "runs": got}
               for route, got in runs.items()}
    summary["batched"]["vllm_steps_per_token"] = median(r["vllm_steps_per_token"] for r in runs["batched"])
    summary["speedup"] = summary["batched"]["tokens_per_s"] / summary["per_request"]["tokens_per_s"]
    summary["max_abs_row_diff"] = float(np.abs(rows["batched"][finite] - rows["per_request"][finite]).max())
    return summary


async def _load_and_measure(model_dir: str, particles: int, steps: int, repeats: int,
                            enforce_eager: bool | None, block_size: int | None) -> dict:
    from actors.engines.vllm_engine import VLLMEngine, vllm_is_cpu_build
    from bench.engine import shared_prompt
    from cluster.config import EngineConfig

    eager = vllm_is_cpu_build() if enforce_eager is None else enforce_eager
    config = EngineConfig(kind="vllm", model=model_dir, max_model_len=1024, max_batch_size=max(64, particles),
                          enforce_eager=eager, block_size=block_size)
    engine = VLLMEngine.load(config)
    try:
        prompt = engine.tokenizer(shared_prompt(engine.tokenizer))["input_ids"]
        measured = await _measure(engine, prompt, particles, steps, repeats)
        stats = engine.stats()
    finally:
        await engine.close()
    return {"device": stats.device, "dtype": stats.dtype, "enforce_eager": eager, "block_size": engine.block_size,
            "prompt_tokens": len(prompt), **measured}


def _print(report: dict) -> None:
    print(f"vLLM {report['vllm']} on {report['device']} ({report['dtype']}), model {report['model']}; "
          f"{report['particles']} callers sharing a {report['prompt_tokens']}-token prompt, {report['steps']} tokens "
          f"each, {report['repeats']} alternating runs; KV block size {report['block_size']}")
    for route, how in ROUTES.items():
        got = report[route]
        runs = ", ".join(f"{r['tokens_per_s']:.1f}" for r in got["runs"])
        extra = f"; {got['vllm_steps_per_token']:.2f} vLLM steps per token" if route == "batched" else ""
        print(f"  {route:11s} {'(' + how + ')':19s} {got['tokens_per_s']:8.1f} tokens/s  (runs {runs}){extra}")
    print(f"  batched / per_request: x{report['speedup']:.2f}; "
          f"max |row difference| on the prompt {report['max_abs_row_diff']:.2g}")


def run(json_path: Path | None = DEFAULT_JSON, particles: int = 32, steps: int = 16, repeats: int = 3,
        model: str = "smollm2", enforce_eager: bool | None = None, block_size: int | None = None) -> dict:
    """Measure both routes on one engine; print the figures and write them to `json_path`.

    `model`: a Hugging Face directory, or a model name to export to one first ('smollm2').
    `enforce_eager`: None is eager on vLLM's CPU build (its graph compile takes minutes on a
    small machine) and CUDA graphs on GPU. `block_size`: vLLM's KV block size (None: the engine's default, 32 on CPU)."""
    import vllm

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with tempfile.TemporaryDirectory(prefix="council-bench-vllm-") as scratch:
        model_dir = _model_dir(model, scratch)
        measured = asyncio.run(_load_and_measure(model_dir, particles, steps, repeats, enforce_eager, block_size))
    report = {"benchmark": "vllm_engine", "vllm": vllm.__version__, "model": model, "particles": particles,
              "steps": steps, "repeats": repeats, "machine_cpus": os.cpu_count(), **measured}
    _print(report)
    if json_path is not None:
        write_report(Path(json_path), report)
    return report
