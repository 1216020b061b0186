"""`council-signal`: the planner model writes a short reasoning signal, the follower answers
(DUET). The signal is capped at `signal_tokens` (default 64) planner output tokens, so the
expensive model writes a plan, not the answer."""

from __future__ import annotations

import time

from council_sdk.types import CouncilResult, TaskRequest

from cluster.strategies.base import StrategyContext, result


async def signal(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    prompt = task.prompt or ""
    hint = await ctx.ask_planner([
        {"role": "system", "content": "Write a short reasoning signal for a small model that "
         "will answer: the key steps or facts, in a few words. Do not write the final answer."},
        {"role": "user", "content": prompt},
    ], max_tokens=task.signal_tokens)
    ctx.emit("progress", message="planner signal written")
    answer = await ctx.sample(task, f"{prompt}\n\nHint: {hint}", 0.0, task.seed)
    return result("council-signal", answer.text.strip(), ctx.ledger, started, 1, signal=hint)
