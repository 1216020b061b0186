"""Clients for a Council service: `Council` (blocking) and `AsyncCouncil` (asyncio).

    from council_sdk import Council

    with Council("http://127.0.0.1:8000", api_key="...") as council:
        result = council.run("Write a sentence with exactly 12 words.", particles=16)
        print(result.text, result.constraints, result.ledger.usd)

        for event in council.stream("Write an acrostic for HOPE."):
            print(event.type, event.round.ess if event.round else "")

        task = council.submit({"words": {"exactly": 9}})      # a spec instead of a prompt
        council.cancel(task.id)

Errors are typed (`AuthenticationError`, `BadRequestError`, `NotFoundError`,
`RateLimitError`, `ServiceUnavailableError`, `ServerError`, all `CouncilError`); 429 and 503
are retried with backoff, honouring `Retry-After`.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
import uuid
from typing import Any, AsyncIterator, Generic, Iterable, Iterator, TypeVar

import httpx
from pydantic import BaseModel

from council_sdk.types import (
    CouncilResult, GenerateRequest, GenerateResult, Health, JsonSchemaFormat, ResponseFormat, TaskEvent,
    TaskRequest, TaskStatus,
)

T = TypeVar("T", bound=BaseModel)

RETRY_STATUSES = (429, 503)
# A proxy's answer when the process behind it died mid-request: retried too, but only for a
# request that is safe to send twice (a read, a cancel, a submission with its Idempotency-Key).
RETRY_IF_SAFE = (500, 502, 504)


class CouncilError(Exception):
    """The service answered with an error; `status` is the HTTP status."""

    def __init__(self, status: int, message: str, type: str | None = None, code: str | None = None):
        super().__init__(f"{status}: {message}")
        self.status, self.message, self.type, self.code = status, message, type, code


class AuthenticationError(CouncilError):
    """401: no API key, or a wrong one."""


class BadRequestError(CouncilError):
    """400, 411, 413, 422: the request itself is wrong; the message says how."""


class NotFoundError(CouncilError):
    """404: no such task, route or model."""


class RateLimitError(CouncilError):
    """429: the service's queue is full (retried automatically first)."""


class ServiceUnavailableError(CouncilError):
    """503: no follower replica is alive (retried automatically first)."""


class ServerError(CouncilError):
    """5xx: the service failed."""


def _error_for(reply: httpx.Response) -> CouncilError:
    try:
        body = reply.json()
        err = body.get("error") if isinstance(body, dict) else None
        message = err.get("message") if isinstance(err, dict) else body.get("detail", reply.text)
        type_, code = (err.get("type"), err.get("code")) if isinstance(err, dict) else (None, None)
    except ValueError:
        message, type_, code = reply.text, None, None
    status = reply.status_code
    cls = {401: AuthenticationError, 404: NotFoundError, 429: RateLimitError,
           503: ServiceUnavailableError}.get(status)
    if cls is None:
        cls = BadRequestError if 400 <= status < 500 else ServerError
    return cls(status, str(message), type_, code)


def _retry_delay(reply: httpx.Response, attempt: int) -> float:
    after = reply.headers.get("retry-after")
    try:
        if after is not None:
            return min(60.0, float(after))
    except ValueError:
        pass
    return min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2)


def _once() -> dict:
    """Headers that make one submission idempotent: its retries carry the same key, so the
    server answers them with the task the first one created instead of running it again."""
    return {"Idempotency-Key": uuid.uuid4().hex}


def _task(prompt: str | dict | None, spec: dict | None, options: dict) -> dict:
    """A TaskRequest body: a dict given as `prompt` is taken as a spec; `response_format` may
    be a pydantic model class (its JSON Schema is sent)."""
    if isinstance(prompt, dict):
        prompt, spec = None, prompt
    if "response_format" in options:
        options = {**options, "response_format": response_format_of(options["response_format"])}
    return TaskRequest(prompt=prompt, spec=spec, **options).model_dump(exclude_none=True, by_alias=True)


def response_format_of(given: Any) -> ResponseFormat | None:
    """A `ResponseFormat` from one, from its dict, or from a pydantic model class (strict, as
    openai-python's `parse` makes it: no property beyond the model's own)."""
    if given is None or isinstance(given, ResponseFormat):
        return given
    if isinstance(given, type) and issubclass(given, BaseModel):
        schema = _strict(given.model_json_schema())
        return ResponseFormat(type="json_schema", json_schema=JsonSchemaFormat(name=given.__name__[:64], schema=schema,
                                                                               strict=True))
    return ResponseFormat.model_validate(given)


def _strict(schema: Any) -> Any:
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


class Parsed(BaseModel, Generic[T]):
    """`parse()`'s answer: the result, and its text as the model class (None unless it passed
    the server's check against the schema)."""

    result: CouncilResult
    parsed: T | None = None


def _parsed(result: CouncilResult, model: type[T]) -> Parsed[T]:
    value = model.model_validate_json(result.text) if result.passed else None
    return Parsed[model](result=result, parsed=value)


class _SSE:
    """Server-sent events from lines: `feed` returns a TaskEvent when a blank line ends one."""

    def __init__(self):
        self.data: list[str] = []

    def feed(self, line: str) -> TaskEvent | None:
        line = line.rstrip("\r")
        if not line:
            if not self.data:
                return None
            data, self.data = "\n".join(self.data), []
            return TaskEvent.model_validate_json(data)
        if line.startswith(":"):
            return None  # a comment (keep-alive, progress)
        field, _, value = line.partition(":")
        if field == "data":
            self.data.append(value[1:] if value.startswith(" ") else value)
        return None  # `event:` and `id:` repeat what the data says


def _events(lines: Iterable[str]) -> Iterator[TaskEvent]:
    sse = _SSE()
    for line in lines:
        event = sse.feed(line)
        if event is not None:
            yield event
            if event.terminal:
                return


class _Base:
    def __init__(self, base_url: str, api_key: str | None, timeout: float, max_retries: int):
        api_key = api_key or os.environ.get("COUNCIL_API_KEY")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url, self.timeout, self.max_retries = base_url.rstrip("/"), timeout, max_retries

    def _retry_delay(self, reply: httpx.Response, attempt: int, safe: bool = False) -> float | None:
        """None when the reply succeeded; seconds to wait before retrying a 429 / 503 (or,
        `safe` to send twice, a 500 / 502 / 504); else the error, raised."""
        if reply.is_success:
            return None
        retryable = reply.status_code in RETRY_STATUSES or (safe and reply.status_code in RETRY_IF_SAFE)
        if not retryable or attempt >= self.max_retries:
            raise _error_for(reply)
        return _retry_delay(reply, attempt)

    @staticmethod
    def _safe(method: str, kwargs: dict) -> bool:
        return method != "POST" or "Idempotency-Key" in (kwargs.get("headers") or {})

    def _retry_lost(self, method: str, kwargs: dict, attempt: int, exc: httpx.TransportError) -> float:
        """A connection that failed (the service restarting a process): seconds to wait before
        sending again, for a request that is safe to send twice; else the error, raised."""
        if not self._safe(method, kwargs) or attempt >= self.max_retries or isinstance(exc, httpx.TimeoutException):
            raise exc
        return min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random() / 2)


class Council(_Base):
    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 900.0, max_retries: int = 5):
        super().__init__(base_url, api_key, timeout, max_retries)
        self._http = httpx.Client(base_url=self.base_url, headers=self.headers, timeout=timeout)

    # -- tasks -------------------------------------------------------------------------------
    def run(self, prompt: str | dict | None = None, *, spec: dict | None = None, **options: Any) -> CouncilResult:
        """Answer a request and wait for it; options are TaskRequest's fields."""
        body = {**_task(prompt, spec, options), "wait": True}
        return TaskStatus.model_validate(self._send("POST", "/v1/tasks", json=body, headers=_once())).result

    def submit(self, prompt: str | dict | None = None, *, spec: dict | None = None, **options: Any) -> TaskStatus:
        body = _task(prompt, spec, options)
        return TaskStatus.model_validate(self._send("POST", "/v1/tasks", json=body, headers=_once()))

    def parse(self, prompt: str, response_format: type[T], **options: Any) -> Parsed[T]:
        """Answer with an instance of a pydantic model class (structured output, like
        openai-python's `parse`): `council.parse("Make up a person.", Person).parsed`."""
        return _parsed(self.run(prompt, response_format=response_format, **options), response_format)

    def get(self, task_id: str) -> TaskStatus:
        return TaskStatus.model_validate(self._send("GET", f"/v1/tasks/{task_id}"))

    def cancel(self, task_id: str) -> TaskStatus:
        return TaskStatus.model_validate(self._send("DELETE", f"/v1/tasks/{task_id}"))

    def events(self, task_id: str) -> Iterator[TaskEvent]:
        """A task's progress, from its first event to its last (finished, failed, cancelled)."""
        with self._http.stream("GET", f"/v1/tasks/{task_id}/events", timeout=None) as reply:
            if not reply.is_success:
                reply.read()
                raise _error_for(reply)
            yield from _events(reply.iter_lines())

    def stream(self, prompt: str | dict | None = None, *, spec: dict | None = None, **options: Any) -> Iterator[TaskEvent]:
        """Submit a request and yield its progress; the last event carries the result."""
        yield from self.events(self.submit(prompt, spec=spec, **options).id)

    # -- the rest ----------------------------------------------------------------------------
    def generate(self, prompt: str | None = None, **options: Any) -> GenerateResult:
        """Plain sampling from the follower pool; options are GenerateRequest's fields."""
        body = GenerateRequest(prompt=prompt, **options).model_dump(exclude_none=True)
        return GenerateResult.model_validate(self._send("POST", "/v1/generate", json=body))

    def health(self) -> Health:
        return Health.model_validate(self._send("GET", "/healthz"))

    def _send(self, method: str, path: str, **kwargs) -> Any:
        for attempt in itertools.count():
            try:
                reply = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                time.sleep(self._retry_lost(method, kwargs, attempt, exc))
                continue
            delay = self._retry_delay(reply, attempt, self._safe(method, kwargs))
            if delay is None:
                return reply.json()
            time.sleep(delay)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "Council":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class AsyncCouncil(_Base):
    def __init__(self, base_url: str = "http://127.0.0.1:8000", api_key: str | None = None,
                 timeout: float = 900.0, max_retries: int = 5):
        super().__init__(base_url, api_key, timeout, max_retries)
        self._http = httpx.AsyncClient(base_url=self.base_url, headers=self.headers, timeout=timeout)

    async def run(self, prompt: str | dict | None = None, *, spec: dict | None = None, **options: Any) -> CouncilResult:
        body = {**_task(prompt, spec, options), "wait": True}
        return TaskStatus.model_validate(await self._send("POST", "/v1/tasks", json=body, headers=_once())).result

    async def submit(self, prompt: str | dict | None = None, *, spec: dict | None = None, **options: Any) -> TaskStatus:
        body = _task(prompt, spec, options)
        return TaskStatus.model_validate(await self._send("POST", "/v1/tasks", json=body, headers=_once()))

    async def parse(self, prompt: str, response_format: type[T], **options: Any) -> Parsed[T]:
        return _parsed(await self.run(prompt, response_format=response_format, **options), response_format)

    async def get(self, task_id: str) -> TaskStatus:
        return TaskStatus.model_validate(await self._send("GET", f"/v1/tasks/{task_id}"))

    async def cancel(self, task_id: str) -> TaskStatus:
        return TaskStatus.model_validate(await self._send("DELETE", f"/v1/tasks/{task_id}"))

    async def events(self, task_id: str) -> AsyncIterator[TaskEvent]:
        async with self._http.stream("GET", f"/v1/tasks/{task_id}/events", timeout=None) as reply:
            if not reply.is_success:
                await reply.aread()
                raise _error_for(reply)
            sse = _SSE()
            async for line in reply.aiter_lines():
                event = sse.feed(line)
                if event is not None:
                    yield event
                    if event.terminal:
                        return

    async def stream(self, prompt: str | dict | None = None, *, spec: dict | None = None, **options: Any) -> AsyncIterator[TaskEvent]:
        status = await self.submit(prompt, spec=spec, **options)
        async for event in self.events(status.id):
            yield event

    async def health(self) -> Health:
        return Health.model_validate(await self._send("GET", "/healthz"))

    async def _send(self, method: str, path: str, **kwargs) -> Any:
        for attempt in itertools.count():
            try:
                reply = await self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                await asyncio.sleep(self._retry_lost(method, kwargs, attempt, exc))
                continue
            delay = self._retry_delay(reply, attempt, self._safe(method, kwargs))
            if delay is None:
                return reply.json()
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> "AsyncCouncil":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()
