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


# -- program-guided inference (SMC and friends) ------------------------------------------


class PosteriorEntry(BaseModel):
    text: str
    probability: float = Field(description="Normalised weight summed over particles with this text.")
    passes_check: bool | None = None


class RoundTrace(BaseModel):
    round: int
    ess: float
    resampled: bool
    active: int = Field(description="Particles still stepping after this round.")
    lost: int = Field(0, description="Particles lost with a dead replica this round.")
    migrations: int = 0
    particles_per_replica: dict[str, int]
    best_text: str = ""
    scheduler_ms: float = Field(0.0, description="Time spent in the scheduler itself.")


class Ledger(BaseModel):
    """What a request cost: planner and follower tokens, and dollars at the configured prices."""

    planner_calls: int = 0
    planner_prompt_tokens: int = 0
    planner_completion_tokens: int = 0
    follower_tokens: int = 0
    usd: float = 0.0


class PlanAttempt(BaseModel):
    """One call to an LLM planner and what became of its program."""

    attempt: int
    ok: bool
    error: str | None = Field(None, description="Why the program (or the call) was rejected.")
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0


class PlannerReport(BaseModel):
    """Which planner wrote the program that ran, and why that one."""

    path: Literal["llm", "library", "generic", "given"] = Field(
        description="llm: the LLM planner; library: the offline planner; generic: plain "
        "generation; given: a program supplied with the request.")
    reason: str | None = Field(None, description="Why the chain fell back, when it did.")
    model: str | None = None
    attempts: list[PlanAttempt] = Field(default_factory=list)
    cached: bool = False
    seconds: float = 0.0


class CouncilResult(BaseModel):
    """One answer from a council, with how it was reached."""

    text: str
    passed_check: bool = Field(description="False: no finished particle passed the program's check().")
    method: str
    particles: int
    posterior: list[PosteriorEntry]
    log_ml: float = Field(description="Log marginal-likelihood estimate (log mean final weight).")
    rounds: int
    stopped: Literal["finished", "max_rounds", "max_tokens", "wall_clock", "accepted", "exhausted"]
    follower_tokens: int
    wall_time_s: float
    trace: list[RoundTrace] = Field(default_factory=list)
    program: str | None = None
    constraints: list[str] = Field(
        default_factory=list, description="The constraints the planner recognised in the request."
    )
    planner: PlannerReport | None = None
    ledger: Ledger | None = None
