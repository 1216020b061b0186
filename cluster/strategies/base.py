"""What a strategy works with, and the pieces the strategies share."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
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
    followers: Followers | None         # the request's first pool (None: give `pools`)
    big: ChatModel | None               # the planner model, when one is configured
    ledger: CostLedger
    emit: Callable[..., None] = lambda kind, **data: None
    # Every pool the request uses, in order (the first is `followers`): a vote draws from all
    # of them, a cascade climbs them. Empty: `followers` alone, as the pool `default`.
    pools: dict[str, Followers] = field(default_factory=dict)
    # council-cascade: each pool's own escalation threshold (mean token log-prob).
    thresholds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.pools:
            self.pools = {"default": self.followers}
        self.followers = next(iter(self.pools.values()))

    @property
    def pool_names(self) -> list[str]:
        return list(self.pools)

    async def sample(self, task: TaskRequest, prompt: str, temperature: float, seed: int,
                     max_tokens: int | None = None, pool: str | None = None) -> GenerateResult:
        """One follower answer from `pool` (default: the first)."""
        pool = pool or self.pool_names[0]
        out = await self.pools[pool].generate(GenerateRequest(
            prompt=prompt, max_tokens=max_tokens or task.max_tokens, temperature=temperature, seed=seed))
        self.ledger.followers(out.completion_tokens, pool)
        self.ledger.follower_prompt(out.prompt_tokens)
        return out

    async def score(self, prompt: str, continuation: str, pool: str | None = None) -> ScoreResult:
        """`pool`'s log-probs of `continuation` after `prompt` (prompt tokens are not
        generated, so only the continuation counts in the ledger)."""
        pool = pool or self.pool_names[0]
        out = await self.pools[pool].score(ScoreRequest(prompt=prompt, continuation=continuation))
        self.ledger.followers(len(out.token_logprobs), pool)
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


# Words that carry no answer: articles, copulas, hedges. With the question's own words they
# are dropped from a short answer before answers are compared, so that "The capital of France
# is Paris." and "Paris" are one answer (as SQuAD's answer normalisation drops articles).
_FILLER_WORDS = frozenset("""a an the is are was were be it it's its this that these those of course
answer answers i think believe would say probably maybe well so yes called named""".split())


def _said_words(text: str, question: str) -> list[str]:
    """The words of `text` that neither echo the question nor are filler, as written."""
    asked = set(re.findall(r"[\w']+", question.casefold()))
    return [w for w in re.findall(r"[\w']+", text)
            if w.casefold() not in asked and w.casefold() not in _FILLER_WORDS]


def _is_number(line: str) -> bool:
    return bool(re.fullmatch(r"-?\d+(?:\.\d+)?", line))


def answer_key(answer: str, question: str = "") -> str:
    """What a short answer says, for counting votes: its number's value when it holds one
    (as `normalise`), else the words of its first line that neither echo the question nor
    are filler; the normalised line when nothing else is left."""
    line = normalise(answer)
    if not line or _is_number(line):
        return line
    return " ".join(_said_words(line, question)) or line


def answer_span(answer: str, question: str = "") -> str:
    """The words of a short answer that `answer_key` keeps, as written (case and accents
    kept, so a model can read them): "The capital of Italy is Rome." -> "Rome", "43 + 21 =
    64" -> "64". What another model scores when it judges the answer, rather than the whole
    sentence, whose echo of the question is predictable whatever the answer. Empty when the
    answer only echoes the question ("Canada." to "What is the capital of Canada?"): it says
    nothing to judge."""
    line = normalise(answer)
    if not line or _is_number(line):
        return line
    return " ".join(_said_words(answer.strip().splitlines()[0], question))


def mean_logprob(sample: GenerateResult | ScoreResult) -> float:
    lps = sample.token_logprobs
    return sum(lps) / len(lps) if lps else -math.inf


def logprob_per_char(scored: ScoreResult, text: str) -> float:
    """Log-prob per character of `text`: comparable across models whose tokenizers cut the
    same text into different tokens (a per-token mean is not)."""
    return sum(scored.token_logprobs) / max(1, len(text)) if scored.token_logprobs else -math.inf


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


__all__ = ["PlannerFailed", "NeedsPlannerModel", "StrategyContext", "normalise", "answer_key", "answer_span",
           "mean_logprob",
           "logprob_per_char", "result"]
