"""`council-cascade`: the follower answers first; its own confidence decides (Coco).

Confidence comes from the follower's own greedy answer, by `confidence_by`: the mean token
log-prob (default), the lowest token log-prob (one unsure token is enough), or minus the mean
entropy of its next-token distributions (how spread the model was, whatever it picked); all
three are reported. Below `threshold` (defaults in `DEFAULT_CONFIDENCE`; calibrate with
`council calibrate-cascade`) the planner model answers instead, told the follower's answer
as an *exclusion hint* (it was judged unreliable) and given a compressed prompt: filler
phrases and repeated whitespace dropped, the ratio reported.
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


async def cascade(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    prompt = task.prompt or ""
    first = await ctx.sample(task, prompt, 0.0, task.seed)
    measures = confidence_measures(first)
    by = task.confidence_by
    confidence = measures[by]
    ctx.emit("progress", message=f"follower answered, {by} confidence {confidence:.3f}")
    threshold = DEFAULT_CONFIDENCE[by] if task.threshold is None else task.threshold
    answer, escalated, why, ratio = first.text.strip(), False, None, None
    if confidence < threshold:
        why = f"{by} confidence {confidence:.3f} below {threshold:.3f}"
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
                  escalation=why, confidence=confidence, confidence_measures=measures,
                  compression_ratio=ratio)
