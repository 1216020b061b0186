"""The Engine protocol every follower backend implements, and the types that cross it.

An engine answers two kinds of question:
- *scoring*: the full-vocabulary next-token log-probabilities after a token sequence (what
  SMC particles, token masks and twisting need), one sequence or a batch at a time;
- *sampling*: plain generation from a prompt.

Engines know nothing of Ray or HTTP; `actors/follower.py` puts one behind an actor. The
request and result types are the SDK's wire types, so HTTP, actor calls and engines share one
definition.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from council_sdk.types import GenerateRequest, GenerateResult, Message, ScoreRequest, ScoreResult
from pydantic import BaseModel

__all__ = ["Engine", "EngineFollowers", "EngineStats", "GenerateRequest", "GenerateResult", "Message", "ScoreRequest",
           "ScoreResult", "encode_prompt", "score", "top_k_entropy"]

# Engines that return only the top log-probs per step (vLLM) report the entropy of these.
ENTROPY_TOP_K = 20


class EngineStats(BaseModel):
    """Counters since start. `prefix_hit_rate` = cached tokens / tokens asked about."""

    kind: str
    model: str
    device: str
    dtype: str
    requests: int = 0
    batches: int = 0
    mean_batch_size: float = 0.0
    busy_s: float | None = None  # seconds spent computing batches; None where the engine cannot tell (vLLM steps in its own process)
    queue_depth: int = 0
    tokens_computed: int = 0
    tokens_cached: int = 0
    prefix_hit_rate: float = 0.0
    logprob_cache_hits: int = 0
    kv_slots_used: int = 0
    kv_slots_total: int = 0
    evictions: int = 0
    generated_tokens: int = 0


# A base model (Gemma-3-270M) has no chat template: a chat turn becomes a plain transcript,
# the way base models are usually prompted, and its answer ends where it would start the
# next turn itself.
TRANSCRIPT_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}
TRANSCRIPT_NEXT_TURN = "\nUser:"


def transcript(messages: list[Message]) -> str:
    """Chat messages as a base model reads them: `User: …` turns, then `Assistant:`."""
    turns = [f"{TRANSCRIPT_ROLES[m.role]}: {m.content.strip()}" for m in messages]
    return "\n".join(turns) + "\nAssistant:"


def chat_stops(tokenizer, request: GenerateRequest) -> list[str]:
    """Where a chat answer ends beyond the request's own stops: on a tokenizer without a
    template, where the model starts the next transcript turn."""
    if (request.messages is not None or request.chat) and not getattr(tokenizer, "chat_template", None):
        return [*request.stop, TRANSCRIPT_NEXT_TURN]
    return list(request.stop)


def encode_prompt(tokenizer, request: GenerateRequest) -> list[int]:
    """Token ids for a request: chat template for messages (or a prompt when `chat` is on),
    a plain transcript when the tokenizer has no template, plain encoding when `chat` is off."""
    messages = request.messages
    if messages is None and request.chat:
        messages = [Message(role="user", content=request.prompt)]
    if messages is None:
        return tokenizer(request.prompt)["input_ids"]
    if not getattr(tokenizer, "chat_template", None):
        return tokenizer(transcript(messages))["input_ids"]
    text = tokenizer.apply_chat_template(
        [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def top_k_entropy(logprobs) -> float:
    """-sum p log p over the given tokens: the full entropy when given the whole vocabulary,
    the top tokens' share of it otherwise."""
    return -sum(math.exp(lp) * lp for lp in logprobs if lp > -math.inf)


class EngineFollowers:
    """One local engine as the strategies' follower pool (the CLI's local runs and tests)."""

    def __init__(self, engine: "Engine"):
        self.engine = engine

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        return await self.engine.generate(request)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        return await score(self.engine, request)


async def score(engine: "Engine", request: ScoreRequest) -> ScoreResult:
    """Log-prob of each continuation token after the prompt, from the engine's next-token
    distributions: one batched call over every prefix, so the torch engine's prefix cache
    computes the prompt once."""
    prompt_ids = encode_prompt(engine.tokenizer, GenerateRequest(prompt=request.prompt, chat=request.chat))
    cont = engine.tokenizer(request.continuation, add_special_tokens=False)["input_ids"]
    if request.context:
        # The reply tokenised whole, as the model would have read it; the scored tokens are
        # those past the context's own tokens (where the two tokenisations part, a token
        # that straddles the seam is scored with the continuation).
        head = engine.tokenizer(request.context, add_special_tokens=False)["input_ids"]
        whole = engine.tokenizer(request.context + request.continuation, add_special_tokens=False)["input_ids"]
        k = next((i for i, (a, b) in enumerate(zip(head, whole)) if a != b), min(len(head), len(whole)))
        prompt_ids, cont = prompt_ids + whole[:k], whole[k:]
    if not cont:
        raise ValueError("the continuation has no tokens")
    prefixes = [prompt_ids + cont[:i] for i in range(len(cont))]
    dists = await engine.batch_next_token_logprobs(prefixes)
    return ScoreResult(token_logprobs=[float(d[t]) for d, t in zip(dists, cont)])


@runtime_checkable
class Engine(Protocol):
    """What a follower replica needs from a language-model backend."""

    @property
    def tokenizer(self): ...  # a Hugging Face tokenizer

    @property
    def vocab_size(self) -> int: ...

    @property
    def eos_token_ids(self) -> frozenset[int]: ...

    def encode_prompt(self, request: GenerateRequest) -> list[int]: ...

    async def next_token_logprobs(self, token_ids: Sequence[int]) -> np.ndarray:
        """log p(next token | token_ids) over the whole vocabulary, float32 [vocab]."""
        ...

    async def batch_next_token_logprobs(
        self, batch: Sequence[Sequence[int]]
    ) -> list[np.ndarray]: ...

    async def generate(self, request: GenerateRequest) -> GenerateResult: ...

    def stats(self) -> EngineStats: ...

    async def close(self) -> None: ...
