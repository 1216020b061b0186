"""`council eval`: answer a file of tasks, check each answer, write JSON lines, summarise.

Task lines carry `id` and `prompt` (other fields ignored; COLLIE lines also carry `type`,
`constraint` and `targets`, and then the answer is judged by COLLIE's own constraint, else by
the constraints the planner recognised). Output lines carry `id`, `text`, `passed`,
`constraints` (recognised), `tokens`, `seconds`. Resumable: ids already in the output are
skipped.

Strategies: `smc` (library planner + SMC over the pool) and `follower` (the follower alone:
plain generation from the prompt, no program), the baseline.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from cluster.protocol import ProgramSpec
from cluster.scheduler import InferenceConfig, Scheduler
from planner.constraints import parse_collie
from planner.library import generic_program, plan


class EvalLine(BaseModel):
    id: str
    type: str | None = None
    text: str
    passed: bool
    constraints: list[str]
    tokens: int
    seconds: float
    error: str | None = None


def load_tasks(path: Path, limit_per_type: int | None = None, types: set[str] | None = None,
               source: str | None = None) -> list[dict]:
    tasks, per_type = [], defaultdict(int)
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        task = json.loads(line)
        if "id" not in task or "prompt" not in task:
            raise ValueError(f"task line without id/prompt: {line[:80]}")
        kind = task.get("type")
        if types and kind not in types:
            continue
        if source and task.get("source") != source:
            continue
        if limit_per_type is not None and per_type[kind] >= limit_per_type:
            continue
        per_type[kind] += 1
        tasks.append(task)
    return tasks


def judge(task: dict, text: str, spec_check) -> bool:
    if "constraint" in task and "targets" in task:
        return parse_collie(task["constraint"], task["targets"])(text)
    return spec_check(text)


async def answer(task: dict, strategy: str, replicas: Callable, particles: int, seed: int) -> EvalLine:
    started = time.monotonic()
    planned = plan(task["prompt"])
    if strategy == "follower":
        source, prompt = generic_program(max_tokens=160), task["prompt"]
        config = InferenceConfig(particles=1, seed=seed)
    else:
        source, prompt = planned.source, planned.prompt
        config = InferenceConfig(particles=particles, seed=seed, max_rounds=planned.rounds)
    try:
        result = await Scheduler(ProgramSpec(source=source, prompt=prompt, seed=seed), config, replicas).run()
        text, tokens, error = result.text, result.follower_tokens, None
    except Exception as exc:  # one bad task must not stop the run
        text, tokens, error = "", 0, f"{type(exc).__name__}: {exc}"[:500]
    return EvalLine(
        id=task["id"], type=task.get("type"), text=text,
        passed=bool(text) and judge(task, text, planned.spec.verifier()),
        constraints=planned.recognised, tokens=tokens,
        seconds=time.monotonic() - started, error=error,
    )


async def run_eval(tasks: list[dict], out: Path, strategy: str, replicas: Callable,
                   particles: int, seed: int, progress: Callable[[EvalLine], None]) -> list[EvalLine]:
    done = {}
    if out.exists():
        for line in out.read_text().splitlines():
            if line.strip():
                row = EvalLine.model_validate_json(line)
                done[row.id] = row
    out.parent.mkdir(parents=True, exist_ok=True)
    results = [done[t["id"]] for t in tasks if t["id"] in done]
    with out.open("a") as sink:
        for task in tasks:
            if task["id"] in done:
                continue
            row = await answer(task, strategy, replicas, particles, seed)
            sink.write(row.model_dump_json() + "\n")
            sink.flush()
            results.append(row)
            progress(row)
    return results


def summarise(rows: list[EvalLine]) -> dict:
    by_type: dict[str, list[EvalLine]] = defaultdict(list)
    for r in rows:
        by_type[r.type or "-"].append(r)
    table = {
        kind: {
            "tasks": len(rs),
            "pass_rate": sum(r.passed for r in rs) / len(rs),
            "seconds_per_task": sum(r.seconds for r in rs) / len(rs),
            "tokens_per_task": sum(r.tokens for r in rs) / len(rs),
        }
        for kind, rs in sorted(by_type.items())
    }
    table["overall"] = {
        "tasks": len(rows),
        "pass_rate": sum(r.passed for r in rows) / len(rows) if rows else 0.0,
        "seconds_per_task": sum(r.seconds for r in rows) / len(rows) if rows else 0.0,
        "tokens_per_task": sum(r.tokens for r in rows) / len(rows) if rows else 0.0,
    }
    return table
