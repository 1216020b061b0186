"""`council eval`: answer a file of tasks, check each answer, write JSON lines, summarise.

Task lines carry `id` and `prompt` (or `request`). COLLIE lines also carry `type`,
`constraint` and `targets`: the answer is judged by COLLIE's own constraint. Paraphrase lines
(`bench/data/paraphrase/`) carry `family`, the intended `spec` (null: nobody can check it) and
`topic_words`: the answer is judged by the intended spec, never by what the planner read.
Other lines are judged by the constraints the planner recognised.

Every line records what the product *claimed* (`claimed`: the result's `passed`, true / false /
null) beside the independent judgement (`passed`), so the summary counts false claims (claimed
true, fails the independent check), not-understood requests and answers on topic. Resumable:
ids already in the output are skipped.

Strategies: `smc` (library planner + SMC over the pool) and `follower` (the follower alone:
plain generation from the prompt, no program), the baseline.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, Field

from bench.measure import read_rows
from bench.paraphrase import on_topic, split_of
from cluster.protocol import ProgramSpec
from cluster.scheduler import InferenceConfig, Scheduler
from planner.claims import judge as claim_of
from planner.constraints import parse_collie
from planner.library import generic_program, plan
from planner.spec import ConstraintSpec


class EvalLine(BaseModel):
    id: str
    type: str | None = None
    text: str
    passed: bool | None = Field(description="The independent check (COLLIE's constraint or the intended "
                                "spec); None: the request has no checkable constraint (unsupported).")
    claimed: bool | None = Field(None, description="What the product said: the result's `passed`.")
    not_understood: list[str] = Field(default_factory=list)
    on_topic: bool | None = None
    constraints: list[str]
    tokens: int
    seconds: float
    error: str | None = None

    @property
    def false_claim(self) -> bool:
        return self.claimed is True and self.passed is not True


def load_tasks(path: Path, limit_per_type: int | None = None, types: set[str] | None = None,
               source: str | None = None, split: str | None = None) -> list[dict]:
    tasks, per_type = [], defaultdict(int)
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    if split is not None:
        # A per-type limit then takes requests from many phrasing templates, not the first one.
        lines.sort(key=lambda line: hashlib.sha1(line.encode()).hexdigest())
    for line in lines:
        task = json.loads(line)
        if "prompt" not in task and "request" in task:
            task["prompt"] = task["request"]
        if "id" not in task or "prompt" not in task:
            raise ValueError(f"task line without id/prompt: {line[:80]}")
        task.setdefault("type", task.get("family"))
        kind = task.get("type")
        if types and kind not in types:
            continue
        if source and task.get("source") != source:
            continue
        if split and split_of(task) != split:
            continue
        if split not in (None, "tune", "heldout"):
            raise ValueError(f"unknown split {split!r} (tune | heldout)")
        if limit_per_type is not None and per_type[kind] >= limit_per_type:
            continue
        per_type[kind] += 1
        tasks.append(task)
    return tasks


def judge(task: dict, text: str, spec_check) -> bool | None:
    """The independent check of an answer: COLLIE's own constraint, the intended spec of a
    paraphrase line (None when it has none that can be checked), else the planner's reading."""
    if "constraint" in task and "targets" in task:
        return parse_collie(task["constraint"], task["targets"])(text)
    if "spec" in task:
        if task["spec"] is None:
            return None
        return bool(text) and ConstraintSpec.model_validate(task["spec"]).verifier()(text)
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
    independent = judge(task, text, planned.spec.verifier()) if text else (None if task.get("spec", 0) is None else False)
    claimed = claim_of(planned.reading, text).passed
    return EvalLine(
        id=task["id"], type=task.get("type"), text=text, passed=independent, claimed=claimed,
        not_understood=planned.reading.not_understood,
        on_topic=on_topic(text, task.get("topic_words") or []),
        constraints=planned.recognised, tokens=tokens,
        seconds=time.monotonic() - started, error=error,
    )


async def run_eval(tasks: list[dict], out: Path, strategy: str, replicas: Callable,
                   particles: int, seed: int, progress: Callable[[EvalLine], None]) -> list[EvalLine]:
    done = {row.id: row for row in read_rows(out, EvalLine)}
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


def _stats(rs: list[EvalLine]) -> dict:
    checkable = [r for r in rs if r.passed is not None]
    topical = [r for r in rs if r.on_topic is not None]
    return {
        "tasks": len(rs),
        "pass_rate": sum(bool(r.passed) for r in checkable) / len(checkable) if checkable else None,
        "false_claims": sum(r.false_claim for r in rs),
        "claimed_pass": sum(r.claimed is True for r in rs),
        "not_understood_rate": sum(bool(r.not_understood) for r in rs) / len(rs) if rs else 0.0,
        "on_topic_rate": sum(bool(r.on_topic) for r in topical) / len(topical) if topical else None,
        "seconds_per_task": sum(r.seconds for r in rs) / len(rs) if rs else 0.0,
        "tokens_per_task": sum(r.tokens for r in rs) / len(rs) if rs else 0.0,
    }


def summarise(rows: list[EvalLine]) -> dict:
    """Per type (COLLIE type or paraphrase family) and overall: pass rate over the checkable
    answers, false claims, not-understood rate, on-topic rate, cost."""
    by_type: dict[str, list[EvalLine]] = defaultdict(list)
    for r in rows:
        by_type[r.type or "-"].append(r)
    table = {kind: _stats(rs) for kind, rs in sorted(by_type.items())}
    table["overall"] = _stats(rows)
    return table
