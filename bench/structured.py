"""`council bench structured`: structured output on the corpus in bench/data/structured/.

Methods, on the same follower (SmolLM2-135M by default) and machine, each task in turn:

- `unconstrained`: the structured program's prompt (the request plus the format
  instruction), sampled with no grammar (the generic program, one particle);
- `masked`: the grammar's masks, one particle, no weights: what engine-style guided decoding
  (vLLM / SGLang `structured_outputs`) does;
- `smc`: Council's structured program (the grammar potential, N particles, resampling);
- `outlines` (the peer, where it installs): outlines' own masked decoding on the same model
  loaded by transformers, same prompt and temperature.

Per method: schema-valid rate (jsonschema / re.fullmatch, apart from the matcher), the
share of answers that are valid and pass the task's semantic checks (`checks.py`: an age
in range, an end date after the start…), the Gemma-3-270M judge's mean log-likelihood per
token of each valid answer after its request, tokens/s. Then, on small enumerable grammars, KL and total
variation of masked decoding and of SMC to the exact constrained distribution
(`bench/structured_exact.py`), and the mask's cost per token as a ratio to an
unconstrained decode step at batch 1, 8 and 32. Prints a table and writes JSON.

    python -m bench.structured --tasks 40 --particles 8 --out bench/results/structured.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).with_name("data") / "structured"
sys.path.insert(0, str(DATA))

from checks import run_check  # noqa: E402  (bench/data/structured/checks.py)

from planner.grammar import GrammarSpec, llg_tokenizer  # noqa: E402

METHODS = ("unconstrained", "masked", "smc")
MAX_TOKENS = 320  # per particle: an answer of the corpus is under ~120


def load(limit: int | None = None) -> list[dict]:
    tasks = [json.loads(line) for line in (DATA / "tasks.jsonl").read_text().splitlines() if line.strip()]
    if limit is not None and limit < len(tasks):
        # An even spread over the file, so schemas and regexes both appear.
        step = len(tasks) / limit
        tasks = [tasks[int(i * step)] for i in range(limit)]
    return tasks


def grammar_of(task: dict) -> GrammarSpec:
    return GrammarSpec(json_schema=task["schema"]) if task["kind"] == "json_schema" else GrammarSpec(regex=task["regex"])


def semantic(task: dict, text: str) -> bool | None:
    """Whether a valid answer passes the task's checks (None: it has none)."""
    if not task.get("checks"):
        return None
    value = json.loads(text) if task["kind"] == "json_schema" else text
    return all(run_check(value, check) for check in task["checks"])


async def run_task(task: dict, method: str, replicas, particles: int, seed: int) -> dict:
    from cluster.protocol import ProgramSpec
    from cluster.scheduler import InferenceConfig, Scheduler
    from planner.library import generic_program, plan_structured

    grammar = grammar_of(task)
    planned = plan_structured(task["request"], grammar, max_tokens=MAX_TOKENS)
    if method == "unconstrained":
        source, n = generic_program(MAX_TOKENS), 1
    else:
        source, n = planned.source, (1 if method == "masked" else particles)
    started = time.perf_counter()
    result = await Scheduler(ProgramSpec(source=source, prompt=planned.prompt, seed=seed),
                             InferenceConfig(particles=n, seed=seed, max_rounds=planned.rounds), lambda: replicas).run()
    wall = time.perf_counter() - started
    text = result.text.strip() if method == "unconstrained" else result.text
    ok, _ = grammar.verify(text)
    return {"id": task["id"], "method": method, "valid": ok, "semantic": semantic(task, text) if ok else False,
            "tokens": result.follower_tokens, "wall_s": wall, "text": text[:300]}


class OutlinesPeer:
    """The peer: outlines (masked decoding through its own outlines-core index) on the same
    follower loaded by plain transformers, same prompt and temperature; None if outlines is
    not installed (`pip install outlines`)."""

    def __init__(self, model_name: str):
        import outlines

        from bench.local_model import LocalLM

        self.lm = LocalLM(model_name)
        self.model = outlines.from_transformers(self.lm.model, self.lm.tokenizer)

    @classmethod
    def maybe(cls, model_name: str) -> "OutlinesPeer | None":
        try:
            return cls(model_name)
        except ImportError:
            return None

    def run(self, task: dict, prompt: str, temperature: float, seed: int) -> dict:
        import torch
        from outlines.types import JsonSchema, Regex

        grammar = grammar_of(task)
        kind = JsonSchema(json.dumps(task["schema"])) if task["kind"] == "json_schema" else Regex(task["regex"])
        text = self.lm.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                     add_generation_prompt=True)
        torch.manual_seed(seed)
        started = time.perf_counter()
        out = self.model(text, kind, max_new_tokens=MAX_TOKENS, do_sample=True, temperature=temperature)
        wall = time.perf_counter() - started
        ok, _ = grammar.verify(out)
        tokens = len(self.lm.tokenizer.encode(out, add_special_tokens=False))
        return {"id": task["id"], "method": "outlines", "valid": ok, "semantic": semantic(task, out) if ok else False,
                "tokens": tokens, "wall_s": wall, "text": out[:300]}


def judge_quality(rows: list[dict], tasks: list[dict], judge_model: str = "gemma3-270m") -> None:
    """Gemma-3-270M's mean log-likelihood per token of each valid answer after its request
    (a model that is not the follower: do the values make sense for what was asked?)."""
    from bench.local_model import LocalLM

    judge = LocalLM(judge_model)
    requests = {t["id"]: t["request"] for t in tasks}
    for row in rows:
        if row["valid"] and row["text"]:
            # The space before the answer belongs to its first token (with it at the end of
            # the head, "Assistant: EXC" would tokenize across the seam and score nothing).
            answer = " " + row["text"]
            n = max(1, len(judge.tokenizer.encode(answer, add_special_tokens=False)))
            row["judge_lp"] = judge.continuation_logprob(f"User: {requests[row['id']]}\nAssistant:", answer) / n
        else:
            row["judge_lp"] = None


async def exactness(engine, replicas, particles: int) -> list[dict]:
    """Masked decoding and SMC against the exact constrained distribution."""
    from actors.engines.base import encode_prompt
    from bench.structured_exact import enumerate_grammar, kl, total_variation
    from cluster.protocol import ProgramSpec
    from cluster.scheduler import InferenceConfig, Scheduler
    from council_sdk.types import GenerateRequest
    from planner.library import plan_structured

    cases = [
        ("What is the capital of France? Answer in one word.", GrammarSpec(choice=("Paris", "Lyon", "Marseille", "Nice"))),
        ("Is the sky blue? Answer yes or no.", GrammarSpec(regex="(yes|no)")),
        ("What number comes after 2?", GrammarSpec(regex="[0-9]")),
        ("Pick a primary colour.", GrammarSpec(json_schema={"type": "object", "properties": {
            "colour": {"enum": ["red", "yellow", "blue"]}}, "required": ["colour"], "additionalProperties": False})),
    ]
    out = []
    for prompt, grammar in cases:
        planned = plan_structured(prompt, grammar, max_tokens=30, temperature=1.0)  # the exact p is at T=1
        ids = encode_prompt(engine.tokenizer, GenerateRequest(prompt=planned.prompt, chat=True))
        exact, masked = await enumerate_grammar(engine, ids, grammar)
        runs = [await Scheduler(ProgramSpec(source=planned.source, prompt=planned.prompt, seed=s),
                                InferenceConfig(particles=particles, seed=s, max_rounds=planned.rounds),
                                lambda: replicas).run() for s in range(3)]
        top = max(r.log_ml for r in runs)
        z = sum(math.exp(r.log_ml - top) for r in runs)
        smc: dict[str, float] = {}
        for r in runs:
            for e in r.posterior:
                smc[e.text] = smc.get(e.text, 0.0) + e.probability * math.exp(r.log_ml - top) / z
        out.append({"prompt": prompt, "grammar": grammar.describe(), "kl_masked": kl(exact, masked),
                    "tv_masked": total_variation(masked, exact), "tv_smc": total_variation(smc, exact),
                    "kl_smc": kl(exact, {k: max(v, 1e-12) for k, v in smc.items()}) if smc else math.inf,
                    "smc_particles": particles * 3})
    return out


async def mask_overhead(engine, repeats: int = 5) -> list[dict]:
    """Per-token cost of the grammar's mask (llguidance, one matcher per particle: consume the
    token, compute the mask, unpack it) against one decode step of the engine for the same
    batch (distinct sequences, each one token longer than at the last step, as in decoding;
    the engine's prefix cache serves the rest as it would in a run). Alternating, medians."""
    from planner.grammar import Matcher

    tok = llg_tokenizer(engine.tokenizer.backend_tokenizer, engine.vocab_size, engine.eos_token_ids)
    spec = GrammarSpec(json_schema={"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 40}, "age": {"type": "integer"}, "tags": {
            "type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4}},
        "required": ["name", "age", "tags"], "additionalProperties": False})
    answer = engine.tokenizer.encode('{"name": "Ada Lovelace", "age": 36, "tags": ["maths", "poetry"]}',
                                     add_special_tokens=False)
    rng = np.random.default_rng(0)
    rows = []
    for batch in (1, 8, 32):
        mask_s, step_s = [], []
        for r in range(repeats):
            matchers = [Matcher(spec, tok, 0) for _ in range(batch)]
            started = time.perf_counter()
            for k in range(len(answer)):
                for m in matchers:
                    m.mask(answer[:k], engine.vocab_size)
            mask_s.append((time.perf_counter() - started) / len(answer))
            # Fresh sequences each repeat (random lead tokens), so no step is a cache hit.
            seqs = [list(rng.integers(100, 40_000, size=24)) + answer[:4] for _ in range(batch)]
            await engine.batch_next_token_logprobs(seqs)  # the prefill, not timed
            started = time.perf_counter()
            for k in range(4, 12):
                seqs = [s + [answer[k]] for s in seqs]
                await engine.batch_next_token_logprobs(seqs)
            step_s.append((time.perf_counter() - started) / 8)
        mask, step = float(np.median(mask_s)), float(np.median(step_s))
        rows.append({"batch": batch, "mask_ms": mask * 1000, "step_ms": step * 1000, "overhead": mask / step})
    return rows


async def main_async(args) -> dict:
    from actors.engines.torch_engine import TorchEngine
    from actors.particle_host import LocalReplica, ParticleHost
    from cluster.config import EngineConfig

    engine = TorchEngine.load(EngineConfig(model=args.model))
    replicas = [LocalReplica("r0", ParticleHost(engine))]
    tasks = load(args.tasks)
    peer = OutlinesPeer.maybe(args.model) if args.peer else None
    methods = METHODS + (("outlines",) if peer else ())
    rows = []
    for i, task in enumerate(tasks):
        for method in methods:  # alternating per task: the machine drifts
            if method == "outlines":
                from planner.library import STRUCTURED_TEMPERATURE, plan_structured

                prompt = plan_structured(task["request"], grammar_of(task)).prompt
                row = peer.run(task, prompt, STRUCTURED_TEMPERATURE, seed=i)
            else:
                row = await run_task(task, method, replicas, args.particles, seed=i)
            rows.append(row)
            print(f"{task['id']:<28} {method:<14} valid={row['valid']!s:<5} semantic={row['semantic']!s:<5} "
                  f"{row['wall_s']:.1f}s", flush=True)
    if args.judge:
        judge_quality(rows, tasks)
    summary = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        judged = [r for r in mine if r["semantic"] is not None or not r["valid"]]
        scored = [r["judge_lp"] for r in mine if r.get("judge_lp") is not None]
        summary[method] = {
            "tasks": len(mine), "valid_rate": sum(r["valid"] for r in mine) / len(mine),
            "semantic_rate": sum(bool(r["semantic"]) for r in judged) / max(1, len(judged)),
            "judge_mean_logprob": float(np.mean(scored)) if scored else None,
            "tokens_per_s": sum(r["tokens"] for r in mine) / max(1e-9, sum(r["wall_s"] for r in mine)),
        }
    exact = await exactness(engine, replicas, args.exact_particles)
    overhead = await mask_overhead(engine)
    report = {"model": args.model, "particles": args.particles, "tasks": len(tasks), "summary": summary,
              "exactness": exact, "mask_overhead": overhead, "rows": rows}
    print("\nmethod          valid  sensible  judge lp/token  tokens/s")
    for method, s in summary.items():
        lp = "-" if s["judge_mean_logprob"] is None else f"{s['judge_mean_logprob']:.2f}"
        print(f"{method:<15} {s['valid_rate']:.2f}   {s['semantic_rate']:.2f}      {lp:<15} {s['tokens_per_s']:.1f}")
    print("\nexact distribution      KL(p||masked)  TV masked  TV smc")
    for e in exact:
        print(f"{e['prompt'][:22]:<23} {e['kl_masked']:.3f}          {e['tv_masked']:.3f}      {e['tv_smc']:.3f}")
    print("\nbatch  mask ms/token  decode step ms  overhead")
    for o in overhead:
        print(f"{o['batch']:<6} {o['mask_ms']:.3f}          {o['step_ms']:.1f}           {o['overhead']:.1%}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--tasks", type=int, default=None, help="an even spread of this many tasks (default: all)")
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--exact-particles", type=int, default=64)
    parser.add_argument("--out", default="bench/results/structured.json")
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="skip outlines even if installed")
    parser.add_argument("--no-judge", dest="judge", action="store_false", help="skip the Gemma judge")
    args = parser.parse_args(argv)
    report = asyncio.run(main_async(args))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
