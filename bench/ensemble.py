"""`council bench ensemble`: SMC particles proposed by SmolLM2 and weighed by Gemma too
(`twist_pool`, `cluster/twist.py`), against SmolLM2 alone, on COLLIE wiki tasks.

Systems (each task answered by all of them in turn, the order rotating from task to task so
that drift in this machine's speed falls on all alike):
- `smc@smol`: the library's program, N particles on SmolLM2;
- `smc@smol+twist@gemma`: the same, each particle's whole words also scored under Gemma-3-270M
  (weight 1: the product of the two models);
- `smc@smol x2`: plain SMC with twice the particles, a larger budget of the same kind, to read
  the twist's price against.

Reported per system: COLLIE pass rate; fluency as mean token log-prob of the answer under *each*
model (Gemma is the twist, so its fluency measures what the twist optimises and is not an
independent judge; SmolLM2 proposed every answer, so it is not one either: this machine has no
third model, and both are shown for that reason); repetition (share of repeated word 3-grams);
follower tokens of the proposer and of the twist; seconds per task.

    council bench ensemble --per-type 3          # bench/results/ensemble.json
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from pydantic import BaseModel

from bench.measure import read_rows, write_report

SYSTEMS = ("smc@smol", "smc@smol+twist@gemma", "smc@smol x2")


class Row(BaseModel):
    id: str
    type: str
    system: str
    text: str = ""
    passed: bool = False
    proposer_tokens: int = 0
    twist_tokens: int = 0
    seconds: float = 0.0
    error: str | None = None
    fluency_smol: float | None = None
    fluency_gemma: float | None = None


async def _answer(runner, task: dict, system: str, particles: int, seed: int) -> Row:
    from council_sdk.types import TaskRequest

    from bench.collie import passes

    request = TaskRequest(prompt=task["prompt"], strategy="council-smc", pool="smol", seed=seed,
                          particles=particles * (2 if system.endswith("x2") else 1),
                          twist_pool="gemma" if "twist" in system else None)
    started = time.monotonic()
    try:
        result = await runner.run_task(request)
    except Exception as exc:  # noqa: BLE001 - one failed task is reported, not fatal
        return Row(id=task["id"], type=task["type"], system=system, error=f"{type(exc).__name__}: {exc}"[:300],
                   seconds=time.monotonic() - started)
    by_pool = result.ledger.follower_tokens_by_pool if result.ledger else {}
    return Row(id=task["id"], type=task["type"], system=system, text=result.text,
               passed=passes(task, result.text),
               proposer_tokens=by_pool.get("smol", 0), twist_tokens=by_pool.get("gemma", 0),
               seconds=time.monotonic() - started)


async def run_all(runner, tasks: list[dict], out: Path, particles: int, progress=print) -> list[Row]:
    done = {(r.id, r.system): r for r in read_rows(out, Row)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as sink:
        for k, task in enumerate(tasks):
            order = SYSTEMS[k % len(SYSTEMS):] + SYSTEMS[:k % len(SYSTEMS)]
            for system in order:
                if (task["id"], system) in done:
                    continue
                row = await _answer(runner, task, system, particles, seed=k)
                sink.write(row.model_dump_json() + "\n")
                sink.flush()
                done[(task["id"], system)] = row
                progress(f"{k + 1}/{len(tasks)} {task['type']:>10s} {system:22s} passed={row.passed} "
                         f"{row.seconds:5.1f} s  {row.text[:60]!r}")
    return [done[(t["id"], s)] for t in tasks for s in SYSTEMS if (t["id"], s) in done]


def add_fluency(rows: list[Row], out: Path) -> None:
    """Both models' mean token log-prob of every answer (kept in `out`, so asked once)."""
    from bench.local_model import LocalLM

    for field, name in (("fluency_smol", "smollm2"), ("fluency_gemma", "gemma3-270m")):
        todo = [r for r in rows if r.text.strip() and getattr(r, field) is None]
        if todo:
            lm = LocalLM(name)
            for r, score in zip(todo, lm.mean_logprobs([r.text for r in todo])):
                setattr(r, field, score)
            del lm
    out.write_text("".join(r.model_dump_json() + "\n" for r in rows))


def summarise(rows: list[Row]) -> dict:
    from bench.collie import _mean, repetition

    out = {}
    for system in SYSTEMS:
        mine = [r for r in rows if r.system == system]
        if not mine:
            continue
        n = len(mine)
        out[system] = {
            "tasks": n, "pass_rate": sum(r.passed for r in mine) / n,
            "fluency_smol": _mean(r.fluency_smol for r in mine),
            "fluency_gemma": _mean(r.fluency_gemma for r in mine),
            "repetition": _mean(repetition(r.text) for r in mine),
            "proposer_tokens": sum(r.proposer_tokens for r in mine) / n,
            "twist_tokens": sum(r.twist_tokens for r in mine) / n,
            "seconds": sum(r.seconds for r in mine) / n,
            "errors": sum(r.error is not None for r in mine),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    from bench.collie import load as load_collie
    from bench.council import make_runner
    from bench.report import table

    parser = argparse.ArgumentParser(prog="council bench ensemble", description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=3, help="COLLIE wiki tasks of each of the 9 types.")
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--rows", type=Path, default=Path("bench/results/ensemble.jsonl"))
    parser.add_argument("--json", type=Path, default=Path("bench/results/ensemble.json"))
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args(argv)

    tasks = load_collie(limit=args.per_type)
    tasks.sort(key=lambda t: (int(t["id"].split("/")[-1]), t["id"]))  # every type early
    started = time.monotonic()
    if args.summarise_only:
        ids = {t["id"] for t in tasks}
        rows = [r for r in read_rows(args.rows, Row) if r.id in ids]
    else:
        from actors.engines.torch_engine import TorchEngine
        from bench.council import MODELS
        from cluster.config import EngineConfig

        engines = {name: TorchEngine.load(EngineConfig(model=model)) for name, model in MODELS.items()}
        runner = make_runner(None, engines)
        rows = asyncio.run(run_all(runner, tasks, args.rows, args.particles))
        del runner, engines
    add_fluency(rows, args.rows)
    summary = summarise(rows)
    report = {"tasks": len(tasks), "per_type": args.per_type, "particles": args.particles,
              "twist_weight": 1.0, "wall_s": time.monotonic() - started, "systems": summary,
              "note": "fluency_gemma is under the twist model itself; fluency_smol under the proposer"}
    print(table(["system", "tasks", "pass rate", "fluency (smol)", "fluency (gemma)", "repetition",
                 "proposer tok", "twist tok", "s / task", "errors"],
                [[s, v["tasks"], f"{v['pass_rate']:.2f}", *(f"{x:.3f}" if x is not None else "–" for x in
                  (v["fluency_smol"], v["fluency_gemma"], v["repetition"])),
                  f"{v['proposer_tokens']:.0f}", f"{v['twist_tokens']:.0f}", f"{v['seconds']:.1f}", v["errors"]]
                 for s, v in summary.items()]))
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
