"""Wire types of the Council HTTP API. The server imports these, so the contract has one
definition."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def _check_unicode(value: Any, where: str = "", depth: int = 0) -> None:
    """Text must be encodable: JSON's "\\ud800" decodes to a lone surrogate, which no
    tokenizer, log or response can carry, so it is refused at the edge, naming the field."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where or 'the body'}: text must be valid Unicode "
                             "(it holds a lone surrogate)") from None
    elif depth < 64 and isinstance(value, dict):
        for k, v in value.items():
            _check_unicode(k, where, depth + 1)
            _check_unicode(v, f"{where}.{_key(k)}" if where else _key(k), depth + 1)
    elif depth < 64 and isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_unicode(v, f"{where}.{i}" if where else str(i), depth + 1)


def _key(key: Any) -> str:
    """A field name as a path names it: a made-up one quoted, so that whatever it holds (a
    newline, say) stays inside the one-line message."""
    text = str(key)
    return text if text.isidentifier() and len(text) <= 64 else json.dumps(text[:64])


class WireModel(BaseModel):
    """A request body: its text is checked to be valid Unicode before anything else."""

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        _check_unicode(data)
        return data


class Message(WireModel):
    role: Literal["system", "user", "assistant"]
    content: str


class GenerateRequest(WireModel):
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
    pool: str | None = Field(None, max_length=64, description="The follower pool that samples (None: the default pool).")

    @model_validator(mode="after")
    def _one_input(self) -> "GenerateRequest":
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("give exactly one of `prompt` or `messages`")
        return self


class GenerateResult(BaseModel):
    text: str
    token_ids: list[int]
    token_logprobs: list[float] = Field(description="Log-prob of each sampled token.")
    token_entropies: list[float] = Field(
        default_factory=list,
        description="Entropy (nats) of the model's next-token distribution at each step, at "
                    "temperature 1; engines that see only the top tokens report their share.")
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int


class ScoreRequest(WireModel):
    """How likely the follower finds `continuation` after `prompt` and `context` (the prompt is
    wrapped in the chat template when `chat` is on, as for generation; `context` is the start
    of the reply, read but not scored)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str
    continuation: str = Field(min_length=1)
    context: str = ""
    chat: bool = True


class ScoreResult(BaseModel):
    token_logprobs: list[float] = Field(description="Log-prob of each continuation token.")


class PoolHealth(BaseModel):
    """One follower pool: its model and replicas."""

    model: str
    replicas_live: int
    replicas: int


class Health(BaseModel):
    status: str = Field(description="ok: every pool has a live replica; starting: some pool has none yet.")
    replicas_live: int = Field(description="Live follower replicas, all pools together.")
    replicas: int
    queued: int = Field(0, description="Tasks waiting for a slot.")
    running: int = 0
    pools: dict[str, PoolHealth] = Field(default_factory=dict, description="Each follower pool by name.")


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
    lost: int = Field(0, description="Particles lost with a dead replica this round (none was "
                      "saved to continue from).")
    restored: int = Field(0, description="Particles whose replica died this round, continued on "
                          "another from their last saved state.")
    migrations: int = 0
    particles_per_replica: dict[str, int]
    best_text: str = ""
    scheduler_ms: float = Field(0.0, description="Time spent in the scheduler itself.")
    weights: list[float] = Field(
        default_factory=list, description="Normalised particle weights before this round's "
        "resampling, in particle order (what a trace picture shades).")


class Ledger(BaseModel):
    """What a request cost: planner and follower tokens, and dollars at the configured prices."""

    planner_calls: int = 0
    planner_prompt_tokens: int = 0
    planner_completion_tokens: int = 0
    follower_prompt_tokens: int = Field(0, description="The prompt as the followers read it (counted once).")
    follower_tokens: int = 0
    follower_tokens_by_pool: dict[str, int] = Field(
        default_factory=dict, description="The follower tokens of each pool that answered.")
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


class UnderstoodClause(BaseModel):
    """A part of the request and the constraint it was read as."""

    clause: str
    constraint: str


class Route(BaseModel):
    """How a request was routed: its kind, the strategy and pools it got, and why."""

    kind: Literal["constrained", "structured", "short-answer", "open"]
    kind_reason: str = Field(description="Why the request is of that kind.")
    strategy: str
    pools: list[str] = Field(description="The follower pools used, in order (SMC: one).")
    rule: int | None = Field(None, description="The index of the config's `routes.rules` entry that "
                             "matched; None when the request named its strategy and pools itself.")
    reason: str = Field(description="The choice in one sentence.")


class CouncilResult(BaseModel):
    """One answer from a council, with how it was reached."""

    text: str
    passed: bool | None = Field(
        None, description="True: every constraint-like part of the request was understood and the "
        "answer meets them all (checked apart from the program); False: it fails one; None: not "
        "verified, `passed_reason` says why (a part was not understood, or nothing was checked).")
    passed_reason: str | None = Field(None, description="Why `passed` is False or None.")
    understood: list[UnderstoodClause] = Field(
        default_factory=list, description="The request's clauses and what each became.")
    not_understood: list[str] = Field(
        default_factory=list, description="Parts of the request that look like constraints but "
        "were not understood (or could not be met as read): none of them was checked.")
    passed_check: bool = Field(description="False: no finished particle passed the program's check().")
    method: str
    particles: int
    posterior: list[PosteriorEntry]
    log_ml: float = Field(description="Log marginal-likelihood estimate (log mean final weight).")
    prompt_tokens: int = Field(0, description="The prompt's tokens as the followers read it (once, "
                               "however many particles read it).")
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
    strategy: str = "council-smc"
    escalated: bool = Field(False, description="The planner model answered instead of the followers.")
    escalation: str | None = Field(None, description="Why it escalated (or why it could not).")
    votes: dict[str, int] | None = Field(None, description="vote / best-of-n: normalised answer -> count.")
    confidence: float | None = Field(
        None, description="cascade: the follower's confidence (`confidence_by`); vote: agreement.")
    confidence_measures: dict[str, float] | None = Field(
        None, description="cascade: every confidence measure of the follower's answer.")
    signal: str | None = Field(None, description="signal: the planner's reasoning signal.")
    compression_ratio: float | None = Field(None, description="cascade: escalated prompt / original.")
    route: Route | None = Field(None, description="Which strategy and follower pools answered, and why.")
    answered_by: str | None = Field(
        None, description="The pool whose follower answer was returned, or `planner` when the planner "
        "model answered (cascade and vote escalations).")
    twisted_by: str | None = Field(
        None, description="council-smc with twist_pool: the pool whose model also weighed the "
        "particles; `log_ml` and `posterior` are then of the program's target times that model's "
        "likelihood (to the power twist_weight).")


# -- the native tasks API ------------------------------------------------------------------

STRATEGIES = ("council-auto", "council-smc", "council-vote", "council-cascade", "council-signal",
              "follower", "planner", "best-of-n")
MAX_POOLS_PER_REQUEST = 8
AVAILABLE_STRATEGIES = STRATEGIES
MAX_PROMPT_CHARS = 100_000

TaskState = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JsonSchemaFormat(BaseModel):
    """OpenAI's `response_format.json_schema` block."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field("response", max_length=64)
    description: str | None = None
    schema_: dict[str, Any] = Field(alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """What the answer must be: OpenAI's `response_format`, plus `regex`, `choice` and `grammar`
    (Lark). Every finished answer matches it; `passed` says whether it was checked to."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema", "regex", "choice", "grammar"]
    json_schema: JsonSchemaFormat | None = None
    regex: str | None = None
    choice: list[str] | None = None
    grammar: str | None = None

    @model_validator(mode="after")
    def _its_field(self) -> "ResponseFormat":
        needs = {"json_schema": self.json_schema, "regex": self.regex, "choice": self.choice, "grammar": self.grammar}
        if self.type in needs and needs[self.type] is None:
            raise ValueError(f"response_format type {self.type!r} needs its `{self.type}` field")
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True)


class TaskRequest(WireModel):
    """`POST /v1/tasks`: a request in words (`prompt`) or as a constraint spec (`spec`)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, min_length=1, max_length=MAX_PROMPT_CHARS)
    spec: dict | None = Field(None, description="A structured constraint spec instead of a prompt.")
    strategy: str = Field("council-smc", description="council-auto (the routes in the config choose) | "
                          "council-smc | council-vote | council-cascade | council-signal | follower | "
                          "planner | best-of-n")
    pool: str | list[str] | None = Field(
        None, description="The follower pool to use, or for a vote or cascade several (a vote draws "
        "from all, a cascade climbs them in order); None: the config's routes choose.")
    particles: int = Field(16, ge=1, le=256)
    method: Literal["smc", "is", "rs", "steer"] = "smc"
    max_tokens: int = Field(64, ge=1, le=4096, description="Answer length when no constraint is recognised.")
    max_rounds: int | None = Field(None, ge=1, le=4096)
    max_follower_tokens: int | None = Field(None, ge=1, le=10_000_000, description="Budget for the whole task.")
    max_wall_s: float = Field(600.0, gt=0, le=3600)
    seed: int = 0
    program: str | None = Field(None, max_length=100_000, description="Run this program instead of planning.")
    include_program: bool = False
    samples: int = Field(5, ge=1, le=64, description="vote / best-of-n: follower samples.")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="vote / best-of-n: sampling temperature; "
                               "with response_format, the followers' temperature (when given).")
    threshold: float | None = Field(
        None, description="vote: agreement below which it escalates (default 0.6); cascade: "
        "confidence below which it escalates (default -0.5 for mean-logprob, -3.0 for "
        "min-logprob, -0.8 for neg-entropy).")
    confidence_by: Literal["mean-logprob", "min-logprob", "neg-entropy"] = Field(
        "mean-logprob", description="cascade: the follower's confidence: mean or lowest token "
        "log-prob of its answer, or minus the mean entropy of its next-token distributions.")
    signal_tokens: int = Field(64, ge=1, le=1024, description="signal: cap on the planner's signal.")
    wait: bool = Field(False, description="Answer inline instead of returning the task's id.")
    response_format: ResponseFormat | None = Field(
        None, description="council-smc: structured output (JSON Schema, JSON, regex, choice, Lark grammar).")
    twist_pool: str | None = Field(
        None, min_length=1, description="council-smc: weigh the particles by this pool's model too "
        "(an ensemble: one model proposes, the other scores each particle's whole words by text), "
        "so the answer is drawn from the product of the two models' likelihoods.")
    twist_weight: float = Field(1.0, gt=0.0, le=4.0, description="council-smc with twist_pool: the "
                                "exponent on the twist model's likelihood.")

    @model_validator(mode="after")
    def _one_input(self) -> "TaskRequest":
        if (self.prompt is None) == (self.spec is None):
            raise ValueError("give exactly one of `prompt` or `spec`")
        pools = self.pools()
        if pools is not None and not 1 <= len(pools) <= MAX_POOLS_PER_REQUEST:
            raise ValueError(f"pool: give 1 to {MAX_POOLS_PER_REQUEST} pool names")
        if pools is not None and len(set(pools)) != len(pools):
            raise ValueError("pool: a pool is named twice")
        if self.twist_pool is not None and self.method == "rs":
            raise ValueError("twist_pool weighs particles, and method 'rs' does not use weights: "
                             "use smc, is or steer")
        return self

    def pools(self) -> list[str] | None:
        """The pools the request named, as a list (None: it named none)."""
        if self.pool is None:
            return None
        return [self.pool] if isinstance(self.pool, str) else list(self.pool)


class TaskError(BaseModel):
    kind: Literal["bad_request", "unavailable", "internal", "cancelled"]
    message: str
    retryable: bool = Field(False, description="Submitting the same request again may succeed "
                            "(the service was unavailable, not the request wrong).")


class TaskStatus(BaseModel):
    id: str
    status: TaskState
    strategy: str
    created: float
    started: float | None = None
    finished: float | None = None
    result: CouncilResult | None = None
    error: TaskError | None = None


class TaskEvent(BaseModel):
    """One step of a task's progress (`GET /v1/tasks/{id}/events`, SSE)."""

    task_id: str
    seq: int
    type: Literal["queued", "running", "planned", "round", "resampled", "progress", "resumed",
                  "finished", "failed", "cancelled"]
    time: float
    planner: PlannerReport | None = None
    constraints: list[str] | None = None
    round: RoundTrace | None = None
    result: CouncilResult | None = None
    error: TaskError | None = None
    message: str | None = Field(None, description="progress: what the strategy just did.")

    @property
    def terminal(self) -> bool:
        return self.type in ("finished", "failed", "cancelled")


# -- errors, in OpenAI's shape --------------------------------------------------------------


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


# -- the OpenAI-compatible API ---------------------------------------------------------------


class ContentPart(BaseModel):
    """One part of a message's content (OpenAI's `{"type": "text", "text": ...}`); parts of
    other types (images, audio) are accepted and skipped."""

    model_config = ConfigDict(extra="allow")

    type: str = "text"
    text: str | None = None


class ChatMessage(WireModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: keep the text ones
            return "".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatCompletionRequest(WireModel):
    """The fields Council reads; OpenAI's other parameters are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str
    messages: list[ChatMessage] = Field(min_length=1, max_length=256)
    stream: bool = False
    stream_options: dict | None = None
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096)
    n: int = Field(1, ge=1, le=1, description="One answer per request.")
    seed: int | None = None
    response_format: dict | None = Field(None, description="text | json_object | json_schema (OpenAI), "
                                         "or regex | choice | grammar; vLLM's guided_* extras work too.")

    def prompt(self) -> str:
        """The request the council answers: the last user message, after any system text."""
        users = [m for m in self.messages if m.role == "user"]
        if not users:
            raise ValueError("messages: at least one user message is needed")
        system = " ".join(m.text() for m in self.messages if m.role in ("system", "developer")).strip()
        last = users[-1].text().strip()
        if not last:
            raise ValueError("messages: the last user message is empty")
        return f"{system}\n\n{last}" if system else last
