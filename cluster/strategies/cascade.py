"""`council-cascade`: the follower answers first; its own confidence decides (Coco).

Confidence is the mean log-prob of the follower's greedy answer tokens (the minimum is
reported too). Below `threshold` (default -0.5, calibrate with `council calibrate-cascade`)
the planner model answers instead, told the follower's answer as an *exclusion hint* (it was
judged unreliable) and given a compressed prompt: filler phrases and repeated whitespace
dropped, the ratio reported.
"""

from __future__ import annotations

import re
import time

from council_sdk.types import CouncilResult, TaskRequest

from cluster.strategies.base import NeedsPlannerModel, PlannerFailed, StrategyContext, mean_logprob, result

DEFAULT_CONFIDENCE = -0.5
FILLER = re.compile(
    r"\b(?:please|kindly|thank you|thanks|could you|can you|would you|i was wondering if|"
    r"i would like to know|i want to know|tell me|just|basically|actually|really)\b[,]?\s*",
    re.I)


def compress(prompt: str) -> str:
    """The prompt without politeness and filler, for the expensive model."""
    text = FILLER.sub("", prompt)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:] if text else prompt


async def cascade(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    prompt = task.prompt or ""
    first = await ctx.sample(task, prompt, 0.0, task.seed)
    confidence = mean_logprob(first)
    lowest = min(first.token_logprobs, default=float("-inf"))
    ctx.emit("progress", message=f"follower answered, confidence {confidence:.3f}")
    threshold = DEFAULT_CONFIDENCE if task.threshold is None else task.threshold
    answer, escalated, why, ratio = first.text.strip(), False, None, None
    if confidence < threshold:
        why = f"confidence {confidence:.3f} below {threshold:.3f} (lowest token {lowest:.2f})"
        short = compress(prompt)
        ratio = len(short) / max(1, len(prompt))
        try:
            answer = await ctx.ask_planner([
                {"role": "system", "content": "Answer the question correctly and briefly."},
                {"role": "user", "content": f"{short}\n\n(A smaller model answered "
                 f"\"{first.text.strip()}\"; that answer is unreliable: do not just repeat it.)"},
            ])
            escalated = True
            ctx.emit("progress", message=f"escalated: {why}")
        except (PlannerFailed, NeedsPlannerModel) as exc:
            why += f"; the planner model failed ({exc}), so the follower's answer stands"
    return result("council-cascade", answer, ctx.ledger, started, 1, escalated=escalated,
                  escalation=why, confidence=confidence, compression_ratio=ratio)
