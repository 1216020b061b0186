"""The Engine protocol every follower backend implements, and the types that cross it.

An engine answers two kinds of question:
- *scoring*: the full-vocabulary next-token log-probabilities after a token sequence (what
  SMC particles, token masks and twisting need), one sequence or a batch at a time;
- *sampling*: plain generation from a prompt.

Engines know nothing of Ray or HTTP; `actors/follower.py` puts one behind an actor.
"""

from __future__ import annotations

from typing import Literal, Protocol, Sequence, runtime_checkable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class Message(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerateRequest(BaseModel):
    """Plain sampling. Give `prompt` (raw text, or a user turn when `chat` is on) or `messages`."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = None
    messages: list[Message] | None = None
    chat: bool = Field(True, description="Wrap `prompt` in the model's chat template.")
    max_tokens: int = Field(64, ge=1, le=8192)
    temperature: float = Field(0.7, ge=0.0, le=5.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: list[str] = Field(default_factory=list, max_length=16)
    seed: int | None = None

    @model_validator(mode="after")
    def _one_input(self) -> "GenerateRequest":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        return self


class GenerateResult(BaseModel):
    text: str
    token_ids: list[int]
    token_logprobs: list[float] = Field(description="Log-prob of each sampled token.")
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int


class EngineStats(BaseModel):
    """Counters since start. `prefix_hit_rate` = cached tokens / tokens asked about."""

    kind: str
    model: str
    device: str
    dtype: str
    requests: int = 0
    batches: int = 0
    mean_batch_size: float = 0.0
    queue_depth: int = 0
    tokens_computed: int = 0
    tokens_cached: int = 0
    prefix_hit_rate: float = 0.0
    logprob_cache_hits: int = 0
    kv_slots_used: int = 0
    kv_slots_total: int = 0
    evictions: int = 0
    generated_tokens: int = 0


def encode_prompt(tokenizer, request: GenerateRequest) -> list[int]:
    """Token ids for a request: chat template for messages (or a prompt when `chat` is on and
    the tokenizer has a template), plain encoding otherwise."""
    messages = request.messages
    if messages is None and request.chat and getattr(tokenizer, "chat_template", None):
        messages = [Message(role="user", content=request.prompt)]
    if messages is not None:
        text = tokenizer.apply_chat_template(
            [m.model_dump() for m in messages], tokenize=False, add_generation_prompt=True
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(request.prompt)["input_ids"]


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
