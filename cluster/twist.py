"""A second model's opinion of SMC particles: an ensemble across tokenizers, by text.

One pool's model proposes the tokens (the particles run on its replicas); another pool's model
scores each particle's text as it grows, and the scheduler multiplies that score into the
particle's weight (a *twist*). Only whole words are scored while a particle runs: a word cut in
the middle is tokenised differently by the two models, and its piece has no sensible
likelihood under the other one. The twist telescopes: each round adds the log-prob of the
words that are new since the last, given the ones before, so a finished particle carries
`weight * log p_twist(its text)` in all. The target is the program's target times
`p_twist(text) ** weight`: a product of experts, as in LLaMPPL's twisted SMC, with the second
expert found through text rather than shared token ids.

    twist = TextTwist(pools.followers(["gemma"])["gemma"], prompt, weight=1.0)
    Scheduler(spec, config, replicas, twist=twist)
"""

from __future__ import annotations

import asyncio
import re
from typing import Protocol

from council_sdk.types import ScoreRequest

from cluster.strategies.base import Followers

_LAST_WORD = re.compile(r"\s*\S*\Z")


def scored_part(text: str, finished: bool) -> str:
    """What of a particle's text the twist scores: all of it once finished, else its whole
    words (the text up to the last whitespace, which ends the word before it)."""
    return text.rstrip() if finished else _LAST_WORD.sub("", text)


class Twist(Protocol):
    async def extend(self, items: list[tuple[str, float, str]]) -> list[float]:
        """For each (scored text, its weighted score, text now): the weighted score of the text
        now."""
        ...


class TextTwist:
    """A pool's model as a twist: `weight * log p(text | prompt)`, grown a few words at a
    time (each round scores only the new words, reading the old ones as context, so the
    twist model's prefix cache holds the rest)."""

    def __init__(self, followers: Followers, prompt: str, weight: float = 1.0):
        self.followers = followers
        self.prompt = prompt
        self.weight = weight
        self.tokens = 0  # tokens scored, for the ledger

    async def extend(self, items: list[tuple[str, float, str]]) -> list[float]:
        return list(await asyncio.gather(*(self._one(*item) for item in items)))

    async def _one(self, before: str, score: float, now: str) -> float:
        if not now.strip():
            return 0.0
        if before and now.startswith(before):
            context, new = before, now[len(before):]
        else:  # a text that changed under it (or the first words): scored afresh
            context, new, score = "", now, 0.0
        if not new.strip():
            return score
        out = await self.followers.score(ScoreRequest(prompt=self.prompt, context=context, continuation=new))
        self.tokens += len(out.token_logprobs)
        return score + self.weight * sum(out.token_logprobs)
