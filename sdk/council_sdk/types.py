"""Wire types of the Council HTTP API. The server imports these, so the contract has one
definition."""

from __future__ import annotations

from typing import Literal

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


class Health(BaseModel):
    status: str
    replicas_live: int
    replicas: int
