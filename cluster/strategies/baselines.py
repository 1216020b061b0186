"""Baselines for honest comparison: the follower alone, the planner model alone, best-of-N."""

from __future__ import annotations

import asyncio
import time

from council_sdk.types import CouncilResult, TaskRequest

from cluster.strategies.base import StrategyContext, mean_logprob, normalise, result
from planner.parse import parse_request


async def follower_only(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    out = await ctx.sample(task, task.prompt or "", 0.0, task.seed)
    return result("follower", out.text.strip(), ctx.ledger, started, 1, confidence=mean_logprob(out))


async def planner_only(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    answer = await ctx.ask_planner([{"role": "user", "content": task.prompt or ""}])
    return result("planner", answer, ctx.ledger, started, 0, escalated=True, escalation="planner-only baseline",
                  answered_by="planner")


async def best_of_n(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    """N samples; the likeliest that passes the request's recognised constraints (if any)."""
    started = time.monotonic()
    prompt = task.prompt or ""
    samples = await asyncio.gather(*(ctx.sample(task, prompt, task.temperature, task.seed + i)
                                     for i in range(task.samples)))
    spec = parse_request(prompt)
    verify = None if spec.is_empty() else spec.verifier()
    passing = [s for s in samples if verify is None or verify(s.text.strip())]
    best = max(passing or samples, key=mean_logprob)
    votes: dict[str, int] = {}
    for s in samples:
        votes[normalise(s.text)] = votes.get(normalise(s.text), 0) + 1
    out = result("best-of-n", best.text.strip(), ctx.ledger, started, len(samples), votes=votes,
                 confidence=mean_logprob(best))
    out.passed_check = bool(passing) if verify is not None else True
    out.constraints = spec.describe()
    return out
