"""`council-cascade`: the follower answers first; its own confidence decides (Coco).

Confidence comes from the follower's own greedy answer, by `confidence_by`: the mean token
log-prob (default), the lowest token log-prob (one unsure token is enough), or minus the mean
entropy of its next-token distributions (how spread the model was, whatever it picked); all
three are reported. Below `threshold` (defaults in `DEFAULT_CONFIDENCE`; calibrate with
`council calibrate-cascade`) the planner model answers instead, told the follower's answer
as an *exclusion hint* (it was judged unreliable) and given a compressed prompt: filler
phrases and repeated whitespace dropped, the ratio reported.

With several pools the cascade climbs them in order (small → larger follower → planner
model): each pool answers only when the one before it was unsure, and each has its own
threshold (`confidence_threshold` in its pool config, for the mean log-prob), since models
differ in how sure they sound. When no pool is sure and no planner model can answer, the
surest follower answer stands.
"""

from __future__ import annotations

import math
import re
import time

from council_sdk.types import CouncilResult, GenerateResult, TaskRequest

from cluster.strategies.base import NeedsPlannerModel, PlannerFailed, StrategyContext, mean_logprob, result

DEFAULT_CONFIDENCE = {"mean-logprob": -0.5, "min-logprob": -3.0, "neg-entropy": -0.8}
FILLER = re.compile(
    r"\b(?:please|kindly|thank you|thanks|could you|can you|would you|i was wondering if|"
    r"i would like to know|i want to know|tell me|just|basically|actually|really)\b[,]?\s*",
    re.I)


def confidence_measures(sample: GenerateResult) -> dict[str, float]:
    lps, ents = sample.token_logprobs, sample.token_entropies
    return {"mean-logprob": mean_logprob(sample),
            "min-logprob": min(lps, default=-math.inf),
            "neg-entropy": -sum(ents) / len(ents) if ents else -math.inf}


def compress(prompt: str) -> str:
    """The prompt without politeness and filler, for the expensive model."""
    text = FILLER.sub("", prompt)
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:] if text else prompt


def _threshold(task: TaskRequest, ctx: StrategyContext, pool: str) -> float:
    if task.threshold is not None:
        return task.threshold
    if task.confidence_by == "mean-logprob" and pool in ctx.thresholds:
        return ctx.thresholds[pool]
    return DEFAULT_CONFIDENCE[task.confidence_by]


async def cascade(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    prompt = task.prompt or ""
    by = task.confidence_by
    tried: list[tuple[str, GenerateResult, dict[str, float], float]] = []  # pool, answer, measures, threshold
    for pool in ctx.pool_names:
        answer = await ctx.sample(task, prompt, 0.0, task.seed, pool=pool)
        measures = confidence_measures(answer)
        threshold = _threshold(task, ctx, pool)
        tried.append((pool, answer, measures, threshold))
        ctx.emit("progress", message=f"{pool} answered, {by} confidence {measures[by]:.3f}")
        if measures[by] >= threshold:
            break
    pool, first, measures, threshold = tried[-1]
    confidence = measures[by]
    unsure = [f"{p} {by} confidence {m[by]:.3f} below {t:.3f}" for p, _, m, t in tried if m[by] < t]
    answer, escalated, why, ratio, answered_by = first.text.strip(), False, None, None, pool
    if confidence < threshold:
        # No follower was sure: the surest stands unless the planner model answers.
        pool, first, measures, threshold = max(tried, key=lambda t: t[2][by])
        answer, answered_by = first.text.strip(), pool
        why = "; ".join(unsure)
        short = compress(prompt)
        ratio = len(short) / max(1, len(prompt))
        try:
            answer = await ctx.ask_planner([
                {"role": "system", "content": "Answer the question correctly and briefly."},
                {"role": "user", "content": f"{short}\n\n(A smaller model answered "
                 f"\"{first.text.strip()}\"; that answer is unreliable: do not just repeat it.)"},
            ])
            escalated, answered_by = True, "planner"
            ctx.emit("progress", message=f"escalated: {why}")
        except (PlannerFailed, NeedsPlannerModel) as exc:
            why += f"; the planner model failed ({exc}), so {pool}'s answer stands"
    elif unsure:
        why = "; ".join(unsure) + f"; {pool} was sure"
    return result("council-cascade", answer, ctx.ledger, started, len(tried), escalated=escalated,
                  escalation=why, confidence=confidence, confidence_measures=measures,
                  compression_ratio=ratio, answered_by=answered_by)
