"""What a strategy works with, and the pieces the strategies share."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from council_sdk.types import (
    CouncilResult, GenerateRequest, GenerateResult, PosteriorEntry, ScoreRequest, ScoreResult, TaskRequest,
)

from cluster.ledger import CostLedger
from planner.llm import ChatModel, PlannerFailed


class Followers(Protocol):
    """What the strategies need from the follower pool (the pool routes each call to a live
    replica; a local engine serves them in the CLI and the tests)."""

    async def generate(self, request: GenerateRequest) -> GenerateResult: ...

    async def score(self, request: ScoreRequest) -> ScoreResult: ...


class NeedsPlannerModel(ValueError):
    """The strategy needs the planner model and none is configured (a client error: 400)."""


@dataclass
class StrategyContext:
    followers: Followers
    big: ChatModel | None               # the planner model, when one is configured
    ledger: CostLedger
    emit: Callable[..., None] = lambda kind, **data: None

    async def sample(self, task: TaskRequest, prompt: str, temperature: float, seed: int,
                     max_tokens: int | None = None) -> GenerateResult:
        out = await self.followers.generate(GenerateRequest(
            prompt=prompt, max_tokens=max_tokens or task.max_tokens, temperature=temperature, seed=seed))
        self.ledger.followers(out.completion_tokens)
        self.ledger.follower_prompt(out.prompt_tokens)
        return out

    async def score(self, prompt: str, continuation: str) -> ScoreResult:
        """The follower's log-probs of `continuation` after `prompt` (prompt tokens are not
        generated, so only the continuation counts in the ledger)."""
        out = await self.followers.score(ScoreRequest(prompt=prompt, continuation=continuation))
        self.ledger.followers(len(out.token_logprobs))
        return out

    async def ask_planner(self, messages: list[dict], max_tokens: int | None = None) -> str:
        """The planner model's answer (its tokens go to the ledger); PlannerFailed on outage."""
        if self.big is None:
            raise NeedsPlannerModel("this strategy needs a planner model: set planner.base_url "
                                    "and planner.model (an OpenAI-compatible endpoint)")
        text, usage = await self.big.complete(messages, max_tokens=max_tokens, temperature=0.0)
        self.ledger.planner(usage.prompt_tokens, usage.completion_tokens)
        return text.strip()


def normalise(answer: str) -> str:
    """A short answer as votes compare it: its first line, case-folded and trimmed of
    punctuation, or, when it holds numbers, the last one's value ("7 + 5 = 12.0" -> "12")."""
    line = answer.strip().splitlines()[0] if answer.strip() else ""
    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", line)
    if numbers:
        value = float(numbers[-1].replace(",", ""))
        return str(int(value)) if value.is_integer() else f"{value:g}"
    return re.sub(r"\s+", " ", line.casefold()).strip(" .,!?;:'\"")


def mean_logprob(sample: GenerateResult | ScoreResult) -> float:
    lps = sample.token_logprobs
    return sum(lps) / len(lps) if lps else -math.inf


def result(strategy: str, text: str, ledger: CostLedger, started: float, samples: int,
           posterior: dict[str, float] | None = None, **extra) -> CouncilResult:
    led = ledger.snapshot()
    entries = [PosteriorEntry(text=t, probability=p) for t, p in sorted(
        (posterior or {text: 1.0}).items(), key=lambda kv: -kv[1])]
    return CouncilResult(
        text=text, passed_check=True, method=strategy, strategy=strategy, particles=samples,
        posterior=entries, log_ml=0.0, rounds=1, stopped="finished",
        follower_tokens=led.follower_tokens, prompt_tokens=led.follower_prompt_tokens,
        wall_time_s=time.monotonic() - started, ledger=led, **extra)


__all__ = ["PlannerFailed", "NeedsPlannerModel", "StrategyContext", "normalise", "mean_logprob", "result"]
