"""`council-vote`: K follower samples agree, or the planner model decides.

Short answers are normalised (`base.normalise`) and counted; the largest group wins (ties:
the group whose members the follower found likelier). Agreement is the winning share.

Free text rarely repeats word for word (normalised answers of over 8 words on average), so it
is weighed by *mutual likelihood*: the follower reads one candidate as "another answer" and
scores each of the others after it (`mean_lp(i | j)`, mean token log-prob). A candidate
that the others make likely is what they agree on: the winner is the one with the highest
mean support from the others, and agreement is how predictable the rest are once it is
seen, the mean over the others of exp(mean_lp(j | winner)): near 1 when they say the same
thing, near the follower's per-token probability of unrelated text when they do not.

Below `threshold` (default 0.6) the planner model sees the question and every candidate and
answers.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import defaultdict

from council_sdk.types import CouncilResult, GenerateResult, TaskRequest

from cluster.strategies.base import NeedsPlannerModel, PlannerFailed, StrategyContext, mean_logprob, normalise, result

DEFAULT_AGREEMENT = 0.6
FREE_TEXT_WORDS = 8


async def vote(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    prompt = task.prompt or ""
    samples = await asyncio.gather(*(ctx.sample(task, prompt, task.temperature, task.seed + i)
                                     for i in range(task.samples)))
    ctx.emit("progress", message=f"{len(samples)} follower samples")
    free_text = sum(len(normalise(s.text).split()) for s in samples) / len(samples) > FREE_TEXT_WORDS
    if free_text:
        answer, posterior, agreement = await _mutual_likelihood(prompt, samples, ctx)
        votes = None
    else:
        answer, posterior, agreement, votes = _majority(samples)
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
    return result("council-vote", answer, ctx.ledger, started, len(samples), posterior=posterior,
                  votes=votes, escalated=escalated, escalation=why, confidence=agreement)


def _majority(samples: list[GenerateResult]) -> tuple[str, dict[str, float], float, dict[str, int]]:
    groups: dict[str, list] = defaultdict(list)
    for s in samples:
        groups[normalise(s.text)].append(s)
    mass = {k: len(v) + 1e-6 * max(math.exp(mean_logprob(s)) for s in v) for k, v in groups.items()}
    total = sum(mass.values())
    winner = max(mass, key=mass.get)
    answer = max(groups[winner], key=mean_logprob).text.strip()
    return answer, {k: m / total for k, m in mass.items()}, mass[winner] / total, \
        {k: len(v) for k, v in groups.items()}


def context_with(prompt: str, other: str) -> str:
    """The prompt a candidate is scored under: the question and one other candidate."""
    return f"{prompt}\n\nAnother answer to this was:\n{other}\n\nGive your own answer."


async def _mutual_likelihood(prompt: str, samples: list[GenerateResult],
                             ctx: StrategyContext) -> tuple[str, dict[str, float], float]:
    texts = list(dict.fromkeys(s.text.strip() for s in samples if s.text.strip()))
    if len(texts) < 2:  # one distinct answer: nothing to disagree with
        text = texts[0] if texts else ""
        return text, {text: 1.0}, 1.0
    pairs = [(i, j) for i in range(len(texts)) for j in range(len(texts)) if i != j]
    scored = await asyncio.gather(*(ctx.score(context_with(prompt, texts[j]), texts[i]) for i, j in pairs))
    support = defaultdict(dict)  # support[i][j] = mean_lp(i | j)
    for (i, j), out in zip(pairs, scored):
        support[i][j] = mean_logprob(out)
    strength = {i: sum(row.values()) / len(row) for i, row in support.items()}
    winner = max(strength, key=strength.get)
    agreement = sum(math.exp(support[j][winner]) for j in support if j != winner) / (len(texts) - 1)
    top = max(strength.values())
    weights = {texts[i]: math.exp(v - top) for i, v in strength.items()}
    total = sum(weights.values())
    ctx.emit("progress", message=f"mutual likelihood over {len(texts)} candidates, agreement {agreement:.2f}")
    return texts[winner], {t: w / total for t, w in weights.items()}, agreement
