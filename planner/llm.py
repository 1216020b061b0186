"""The LLM planner: a large model writes the inference program, over the OpenAI API.

Any OpenAI-compatible server will do (a hosted model, `vllm serve`, Ray Serve LLM). The
system prompt (`planner/prompts/`) documents the program API and shows worked programs; the
reply's code is validated in the sandbox and dry-run for one step (`dry_run`, given by the
layer that owns replicas); a rejected program goes back to the model with the error, as
DisCIPL does, up to `repair_attempts` times.

    planner = LLMPlanner(LLMPlannerConfig(base_url="http://127.0.0.1:8001/v1", model="m"))
    written = await planner.write_program("Write a haiku about rivers.")
    written.source, written.attempts, written.usage

Outages (timeouts, 5xx, 429) are retried with backoff by the OpenAI client itself
(`api_retries`); when they persist `PlannerFailed` says what happened in one line, and the
caller falls back (`planner/planning.py`).
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import OrderedDict
from functools import lru_cache
from importlib import resources
from typing import Awaitable, Callable, Literal

from council_sdk.types import PlanAttempt
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from planner.library import budget_prompt, generic_program, plan
from planner.sandbox import ProgramError, check_program

# A dry run: (program source, follower prompt) -> None if its first step ran, else the error.
DryRun = Callable[[str, str], Awaitable[str | None]]

API_KEY_VARIABLES = ("COUNCIL_PLANNER_API_KEY", "OPENAI_API_KEY")


class LLMPlannerConfig(BaseModel):
    """Where the planner model is and how to call it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    base_url: str | None = Field(None, description="OpenAI-compatible endpoint; None: api.openai.com.")
    model: str = "gpt-4o"
    api_key: SecretStr | None = Field(
        None, description="Else $COUNCIL_PLANNER_API_KEY, else $OPENAI_API_KEY.")
    timeout_s: float = Field(30.0, gt=0, description="Per API call.")
    temperature: float = Field(0.2, ge=0.0, le=2.0)
    max_tokens: int = Field(3000, ge=64, le=32768, description="Longest reply (the program).")
    repair_attempts: int = Field(3, ge=0, le=10, description="Retries after a rejected program.")
    api_retries: int = Field(2, ge=0, le=10, description="Retries of a failed call (429, 5xx, timeout), with backoff.")
    cache_size: int = Field(256, ge=0, description="Programs kept per normalised request.")
    output: Literal["program", "spec"] = Field(
        "program", description="program: the model writes the inference program; spec: it reads the "
        "request into a ConstraintSpec and the library's templates write the program.")

    def resolved_api_key(self) -> str:
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        for name in API_KEY_VARIABLES:
            if os.environ.get(name):
                return os.environ[name]
        # Local servers (vllm serve, a Ray Serve deployment) accept any key.
        return "not-needed"


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, other: "Usage") -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


class WrittenProgram(BaseModel):
    """A program the LLM planner wrote and the sandbox accepted."""

    source: str
    prompt: str = Field(description="The follower prompt the program is given.")
    usage: Usage
    attempts: list[PlanAttempt]
    cached: bool = False
    seconds: float = 0.0


class PlannerFailed(RuntimeError):
    """No acceptable program came back; `reason` is one line for the result."""

    def __init__(self, reason: str, attempts: list[PlanAttempt], usage: Usage):
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.usage = usage


# -- the prompt ------------------------------------------------------------------------------

EXAMPLE_REQUESTS = {
    # Rendered from the library planner's templates, so they are known to run.
    "generic": "Tell me something about the sea. (No constraint: plain generation.)",
    "item_list": "List 3 things for a picnic that add up to $30.",
}


@lru_cache(maxsize=1)
def system_prompt() -> str:
    """The API documentation followed by worked example programs."""
    files = resources.files("planner.prompts")
    parts = [files.joinpath("system.md").read_text().rstrip()]
    examples = [
        (EXAMPLE_REQUESTS["generic"], generic_program(max_tokens=64)),
        (None, files.joinpath("examples/fixed_word.py").read_text()),
        (None, files.joinpath("examples/avoid_words.py").read_text()),
        (EXAMPLE_REQUESTS["item_list"], plan(EXAMPLE_REQUESTS["item_list"]).source),
    ]
    for i, (request, source) in enumerate(examples, 1):
        head = f"\n\n### Example {i}\n"
        if request:
            head += f"Request: {request}\n"
        parts.append(f"{head}```python\n{source.rstrip()}\n```")
    return "\n".join(parts) + "\n"


def example_programs() -> dict[str, tuple[str, str]]:
    """name -> (source, follower prompt) of every example in the system prompt (for tests)."""
    files = resources.files("planner.prompts")
    item_list = plan(EXAMPLE_REQUESTS["item_list"])
    return {
        "generic": (generic_program(max_tokens=64), EXAMPLE_REQUESTS["generic"]),
        "fixed_word": (files.joinpath("examples/fixed_word.py").read_text(), "Write one sentence."),
        "avoid_words": (files.joinpath("examples/avoid_words.py").read_text(), "Write two sentences."),
        "item_list": (item_list.source, budget_prompt(item_list.spec)),
    }


def user_message(request: str) -> str:
    return (
        f"Request: {request}\n\nWrite the program for this request. Its `prompt` argument is "
        "the request; give the follower a short plain instruction in LMContext instead if that "
        "helps. Reply with one ```python block."
    )


def repair_message(error: str) -> str:
    return (
        f"That program was rejected:\n{error}\n\nFix it and reply with the whole corrected "
        "program in one ```python block."
    )


_CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def extract_code(reply: str) -> str:
    """The program in a reply: the fenced block that defines a class (else the longest block,
    else the whole reply)."""
    blocks = _CODE_BLOCK.findall(reply or "")
    if not blocks:
        return (reply or "").strip()
    with_class = [b for b in blocks if re.search(r"^\s*class\s+\w+", b, re.M)]
    return max(with_class or blocks, key=len).strip()


def normalise(request: str) -> str:
    return " ".join(request.lower().split())


# -- the planner -----------------------------------------------------------------------------


class ChatModel:
    """The big model behind the planner, for any chat call (programs, escalations, signals).
    Errors come back as PlannerFailed with a one-line reason."""

    def __init__(self, config: LLMPlannerConfig, client=None):
        from openai import AsyncOpenAI

        self.config = config
        self.client = client or AsyncOpenAI(
            base_url=config.base_url,
            api_key=config.resolved_api_key(),
            timeout=config.timeout_s,
            max_retries=config.api_retries,  # the client backs off on 429 / 5xx / timeouts
        )

    async def complete(self, messages: list[dict], max_tokens: int | None = None,
                       temperature: float | None = None) -> tuple[str, Usage]:
        import openai

        cfg = self.config
        try:
            response = await self.client.chat.completions.create(
                model=cfg.model, messages=messages,
                temperature=cfg.temperature if temperature is None else temperature,
                max_tokens=max_tokens or cfg.max_tokens,
            )
        except openai.APITimeoutError:
            raise PlannerFailed(f"planner timed out after {cfg.timeout_s:g} s", [], Usage()) from None
        except openai.RateLimitError:
            raise PlannerFailed("planner rate-limited (HTTP 429) after "
                                f"{cfg.api_retries} retries", [], Usage()) from None
        except openai.APIStatusError as exc:
            raise PlannerFailed(f"planner API returned HTTP {exc.status_code}: "
                                f"{_first_line(str(exc.message))}", [], Usage()) from None
        except openai.APIConnectionError as exc:
            raise PlannerFailed(f"planner unreachable at {cfg.base_url or 'api.openai.com'}: "
                                f"{_first_line(str(exc))}", [], Usage()) from None
        if not response.choices:
            raise PlannerFailed("planner returned no choices", [], Usage())
        text = response.choices[0].message.content or ""
        used = Usage()
        if response.usage is not None:
            used = Usage(prompt_tokens=response.usage.prompt_tokens or 0,
                         completion_tokens=response.usage.completion_tokens or 0)
        return text, used


class LLMPlanner:
    def __init__(self, config: LLMPlannerConfig, dry_run: DryRun | None = None, client=None):
        self.config = config
        self.dry_run = dry_run
        self.chat = ChatModel(config, client)
        self._cache: OrderedDict[str, WrittenProgram] = OrderedDict()
        self._inflight: dict[str, asyncio.Future] = {}

    async def write_program(self, request: str) -> WrittenProgram:
        """A sandbox-approved program for `request`, or PlannerFailed."""
        key = normalise(request)
        if key in self._cache:
            self._cache.move_to_end(key)
            hit = self._cache[key]
            return hit.model_copy(update={"cached": True, "usage": Usage(), "seconds": 0.0})
        if key in self._inflight:  # the same request planned concurrently: plan it once
            await asyncio.shield(self._inflight[key])
            return await self.write_program(request)
        done = asyncio.get_running_loop().create_future()
        self._inflight[key] = done
        try:
            written = await self._write(request)
            if self.config.cache_size:
                self._cache[key] = written
                while len(self._cache) > self.config.cache_size:
                    self._cache.popitem(last=False)
            return written
        finally:
            del self._inflight[key]
            done.set_result(None)

    async def _write(self, request: str) -> WrittenProgram:
        started = time.monotonic()
        messages = [
            {"role": "system", "content": system_prompt()},
            {"role": "user", "content": user_message(request)},
        ]
        usage, attempts = Usage(), []
        for attempt in range(1, self.config.repair_attempts + 2):
            t0 = time.monotonic()
            try:
                reply, used = await self.chat.complete(messages)
            except PlannerFailed as exc:
                attempts.append(PlanAttempt(attempt=attempt, ok=False, error=exc.reason,
                                            seconds=time.monotonic() - t0))
                raise PlannerFailed(exc.reason, attempts, usage) from None
            usage.add(used)
            source = extract_code(reply)
            error = await self._reject(source, request)
            attempts.append(PlanAttempt(
                attempt=attempt, ok=error is None, error=error, seconds=time.monotonic() - t0,
                prompt_tokens=used.prompt_tokens, completion_tokens=used.completion_tokens,
            ))
            if error is None:
                return WrittenProgram(source=source, prompt=request, usage=usage,
                                      attempts=attempts, seconds=time.monotonic() - started)
            messages += [{"role": "assistant", "content": reply},
                         {"role": "user", "content": repair_message(error)}]
        raise PlannerFailed(
            f"no valid program after {len(attempts)} attempts (last: {_first_line(attempts[-1].error)})",
            attempts, usage,
        )

    async def _reject(self, source: str, request: str) -> str | None:
        """Why a program is not acceptable (sandbox, then a one-step dry run), or None."""
        try:
            check_program(source)
        except ProgramError as exc:
            return str(exc)
        if self.dry_run is not None:
            return await self.dry_run(source, request)
        return None


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0][:200] if (text or "").strip() else ""
