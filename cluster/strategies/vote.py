"""`council-vote`: K follower samples agree, or the planner model decides.

Short answers are normalised (`base.normalise`) and counted; the largest group wins (ties:
the group whose members the follower found likelier). Agreement is the winning share; below
`threshold` (default 0.6) the planner model sees the question and every candidate and answers.
Free text rarely repeats exactly, so long answers (over 8 words on average) are weighed by the
follower's own likelihood instead: each candidate counts exp(mean token log-prob), and
agreement is the winner's share of that mass.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict

from council_sdk.types import CouncilResult, TaskRequest

from cluster.strategies.base import NeedsPlannerModel, PlannerFailed, StrategyContext, mean_logprob, normalise, result

DEFAULT_AGREEMENT = 0.6


async def vote(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    prompt = task.prompt or ""
    samples = await asyncio.gather(*(ctx.sample(task, prompt, task.temperature, task.seed + i)
                                     for i in range(task.samples)))
    ctx.emit("progress", message=f"{len(samples)} follower samples")
    free_text = sum(len(s.text.split()) for s in samples) / len(samples) > 8
    groups: dict[str, list] = defaultdict(list)
    for s in samples:
        groups[s.text.strip() if free_text else normalise(s.text)].append(s)
    if free_text:
        mass = {k: sum(math.exp(mean_logprob(s)) for s in v) for k, v in groups.items()}
    else:
        mass = {k: len(v) + 1e-6 * max(math.exp(mean_logprob(s)) for s in v) for k, v in groups.items()}
    total = sum(mass.values()) or 1.0
    winner = max(mass, key=mass.get)
    agreement = mass[winner] / total
    answer = max(groups[winner], key=mean_logprob).text.strip()
    votes = {k: len(v) for k, v in groups.items()}
    threshold = DEFAULT_AGREEMENT if task.threshold is None else task.threshold
    escalated, why = False, None
    if agreement < threshold:
        why = f"agreement {agreement:.2f} below {threshold:.2f}"
        listed = "\n".join(f"- {s.text.strip()}" for s in samples)
        try:
            answer = await ctx.ask_planner([
                {"role": "system", "content": "Small models answered the question below and "
                 "disagree. Give the correct answer only, as briefly as the question allows."},
                {"role": "user", "content": f"Question: {prompt}\n\nTheir answers:\n{listed}"},
            ])
            escalated = True
            ctx.emit("progress", message=f"escalated: {why}")
        except (PlannerFailed, NeedsPlannerModel) as exc:
            why += f"; the planner model failed ({exc}), so the followers' answer stands"
    return result("council-vote", answer, ctx.ledger, started, len(samples),
                  posterior={k: m / total for k, m in mass.items()}, votes=votes,
                  escalated=escalated, escalation=why, confidence=agreement)
