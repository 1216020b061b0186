"""`council-vote`: K follower samples agree, or the planner model decides.

Short answers are reduced to what they say (`base.answer_key`: the number's value, or the
words that neither echo the question nor are filler, so "The capital is Paris." and "Paris"
agree) and counted; the largest group wins (ties: the group whose members the follower found
likelier). Agreement is the winning share.

Free text rarely repeats word for word (normalised answers of over 8 words, the median), so it
is weighed by *mutual likelihood*: the follower reads one candidate as "another answer" and
scores each of the others after it (`mean_lp(i | j)`, mean token log-prob). A candidate
that the others make likely is what they agree on: the winner is the one with the highest
mean support from the others, and agreement is how predictable the rest are once it is
seen, the mean over the others of exp(mean_lp(j | winner)): near 1 when they say the same
thing, near the follower's per-token probability of unrelated text when they do not.

Across several pools (different models), the samples are drawn in turn from each (each
pool's first draw greedy), and every candidate is read by every model. For short answers each
model scores what each distinct answer says (its span, "Rome") as its reply and turns the
total log-probs (a string's probability compares across tokenizers) into a posterior over the
candidates, so one judge's figures meet only its own; the models that did *not* propose an
answer give it their shares: one vote between them, on top of the samples' votes. For free
text, mutual likelihood scores each candidate after each other one under every model, per
character (a per-token figure would not compare), averaged.

Below `threshold` (default 0.6) the planner model sees the question and every candidate and
answers.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections import defaultdict

from council_sdk.types import CouncilResult, GenerateResult, TaskRequest

from cluster.strategies.base import (
    NeedsPlannerModel, PlannerFailed, StrategyContext, answer_key, answer_span, logprob_per_char, mean_logprob,
    result,
)

DEFAULT_AGREEMENT = 0.6
FREE_TEXT_WORDS = 8


async def vote(task: TaskRequest, ctx: StrategyContext) -> CouncilResult:
    started = time.monotonic()
    prompt = task.prompt or ""
    pools = ctx.pool_names
    origin = [pools[i % len(pools)] for i in range(task.samples)]  # each pool in turn
    # Each pool's first draw is greedy, its single best guess; the rest sample. A 135M model
    # at temperature 0.8 rarely says the same thing twice in five draws, so without its mode
    # the vote is often among five strays.
    heat = [0.0 if i < len(pools) else task.temperature for i in range(task.samples)]
    samples = await asyncio.gather(*(ctx.sample(task, prompt, heat[i], task.seed + i, pool=origin[i])
                                     for i in range(task.samples)))
    ctx.emit("progress", message=f"{len(samples)} follower samples from {', '.join(pools)}")
    # The median, not the mean: one rambling sample does not make a short answer free text.
    free_text = statistics.median(len(answer_key(s.text, prompt).split()) for s in samples) > FREE_TEXT_WORDS
    if free_text:
        answer, posterior, agreement, answered_by = await _mutual_likelihood(prompt, samples, origin, ctx)
        votes = None
    else:
        answer, posterior, agreement, votes, answered_by = await _majority(prompt, samples, origin, ctx)
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
            escalated, answered_by = True, "planner"
            ctx.emit("progress", message=f"escalated: {why}")
        except (PlannerFailed, NeedsPlannerModel) as exc:
            why += f"; the planner model failed ({exc}), so the followers' answer stands"
    return result("council-vote", answer, ctx.ledger, started, len(samples), posterior=posterior,
                  votes=votes, escalated=escalated, escalation=why, confidence=agreement,
                  answered_by=answered_by)


async def _cross_shares(prompt: str, spans: list[str], producers: list[set[str]],
                        ctx: StrategyContext) -> list[float]:
    """The other models' one vote, split over the distinct answers. Every pool reads every
    answer's span (`answer_span`: "Rome", not "The capital of Italy is Rome.", whose echo of
    the question is likely whatever the answer) as its reply to the question; the total
    log-prob of a string is comparable across tokenizers, and renormalised over the
    candidates it is that judge's posterior over them. An answer's share is the mean of the
    posteriors that the pools which did *not* propose it give it (all pools, when each
    proposed it). Judges differ in scale (a base model is less sure of everything than an
    instruct one), so raw log-probs from different judges never meet."""
    pools = ctx.pool_names
    jobs = [(p, i) for p in pools for i in range(len(spans)) if spans[i]]
    scored = await asyncio.gather(*(ctx.score(prompt, spans[i], pool=p) for p, i in jobs))
    total_lp = {(p, i): -math.inf for p in pools for i in range(len(spans))}  # an echo: no share
    total_lp.update({(p, i): sum(out.token_logprobs) if out.token_logprobs else -math.inf
                     for (p, i), out in zip(jobs, scored)})
    given: dict[str, list[float]] = {}
    for p in pools:
        top = max(total_lp[(p, i)] for i in range(len(spans)))
        if top == -math.inf:  # nothing this judge could read
            given[p] = [0.0] * len(spans)
            continue
        weights = [math.exp(total_lp[(p, i)] - top) for i in range(len(spans))]
        mass = sum(weights)
        given[p] = [w / mass for w in weights]
    shares = []
    for i, made in enumerate(producers):
        judges = [p for p in pools if p not in made] or pools
        shares.append(sum(given[p][i] for p in judges) / len(judges))
    total = sum(shares)
    return [x / total for x in shares] if total > 0 else [0.0] * len(shares)


async def _majority(prompt: str, samples: list[GenerateResult], origin: list[str], ctx: StrategyContext):
    groups: dict[str, list[int]] = defaultdict(list)
    for i, s in enumerate(samples):
        groups[answer_key(s.text, prompt)].append(i)
    keys = list(groups)
    best = {k: max(groups[k], key=lambda i: mean_logprob(samples[i])) for k in keys}  # each group's text
    if len(ctx.pool_names) > 1 and any(samples[best[k]].text.strip() for k in keys):
        spans = [answer_span(samples[best[k]].text, prompt) for k in keys]
        cross = await _cross_shares(prompt, spans, [{origin[i] for i in groups[k]} for k in keys], ctx)
        shares = dict(zip(keys, cross))
        ctx.emit("progress", message="the other models' vote: " + ", ".join(
            f"{k!r} {c:.2f}" for k, c in zip(keys, cross)))
    else:  # one model: a tie goes to the group whose best member the follower found likelier
        shares = {k: 1e-6 * math.exp(mean_logprob(samples[best[k]])) for k in keys}
    mass = {k: len(groups[k]) + shares[k] for k in keys}
    total = sum(mass.values())
    winner = max(mass, key=mass.get)
    chosen = best[winner]
    return samples[chosen].text.strip(), {k: m / total for k, m in mass.items()}, mass[winner] / total, \
        {k: len(v) for k, v in groups.items()}, origin[chosen]


def context_with(prompt: str, other: str) -> str:
    """The prompt a candidate is scored under: the question and one other candidate."""
    return f"{prompt}\n\nAnother answer to this was:\n{other}\n\nGive your own answer."


async def _mutual_likelihood(prompt: str, samples: list[GenerateResult], origin: list[str],
                             ctx: StrategyContext) -> tuple[str, dict[str, float], float, str]:
    made: dict[str, str] = {}
    for s, pool in zip(samples, origin):
        made.setdefault(s.text.strip(), pool)
    texts = [t for t in made if t]
    if len(texts) < 2:  # one distinct answer: nothing to disagree with
        text = texts[0] if texts else ""
        return text, {text: 1.0}, 1.0, made.get(text, origin[0])
    pools = ctx.pool_names
    # One model: its mean token log-prob. Several: every pool reads every pair, per character
    # (comparable across tokenizers), averaged over the pools, so that every candidate has
    # the same judges.
    pairs = [(i, j) for i in range(len(texts)) for j in range(len(texts)) if i != j]
    jobs = [(i, j, p) for i, j in pairs for p in pools]
    scored = await asyncio.gather(*(ctx.score(context_with(prompt, texts[j]), texts[i], pool=p) for i, j, p in jobs))
    readings: dict[tuple[int, int], list[float]] = defaultdict(list)
    for (i, j, _), out in zip(jobs, scored):
        readings[(i, j)].append(mean_logprob(out) if len(pools) == 1 else logprob_per_char(out, texts[i]))
    support = defaultdict(dict)  # support[i][j] = mean_lp(i | j)
    for (i, j), values in readings.items():
        support[i][j] = sum(values) / len(values)
    strength = {i: sum(row.values()) / len(row) for i, row in support.items()}
    winner = max(strength, key=strength.get)
    agreement = sum(math.exp(support[j][winner]) for j in support if j != winner) / (len(texts) - 1)
    top = max(strength.values())
    weights = {texts[i]: math.exp(v - top) for i, v in strength.items()}
    total = sum(weights.values())
    ctx.emit("progress", message=f"mutual likelihood over {len(texts)} candidates, agreement {agreement:.2f}")
    return texts[winner], {t: w / total for t, w in weights.items()}, agreement, made[texts[winner]]
