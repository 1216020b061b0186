"""The Ray Serve application: `serve run serve_app:app`, or `council serve`.

A FastAPI ingress in front of the PlannerActor (which owns the follower pool):

    GET  /healthz                    open: replicas and queue
    GET  /metrics                    open: Prometheus text
    GET  /v1/models                  the strategies, as OpenAI models
    POST /v1/chat/completions        OpenAI-compatible (`stream: true` as SSE chunks); `model`
                                     is the strategy (council-smc, council-vote, …)
    POST /v1/tasks                   native: prompt or spec; `wait: true` answers inline
    GET  /v1/tasks/{id}              status and result
    GET  /v1/tasks/{id}/events       SSE progress: queued, planned, round…, finished
    DELETE /v1/tasks/{id}            cancel (frees the particles on every replica)
    POST /v1/generate                plain sampling from the follower pool

Every error has OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`; a client
mistake is a 4xx with a message, never a 500. Config comes from the YAML file named by
$COUNCIL_CONFIG (optional) and `COUNCIL_*` variables; API keys from `server.api_keys` or
$COUNCIL_API_KEYS.

    curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"model": "council-smc", "messages": [{"role": "user", "content": "Write 8 words."}]}'
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run time.
import asyncio
import hmac
import json
import logging
import os
import time
import uuid
from typing import Optional

import ray
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from council_sdk.types import (
    AVAILABLE_STRATEGIES, ChatCompletionRequest, ErrorBody, ErrorDetail,
    GenerateRequest, GenerateResult, Health, TaskRequest, TaskStatus,
)

from actors.planner import PlannerActor
from cluster.config import CouncilConfig
from cluster.metrics import CONTENT_TYPE, ServiceMetrics
from cluster.pool import NoLiveReplicaError
from cluster.tasks import QueueFull, UnknownTask, new_task_id

log = logging.getLogger("council.http")
OPEN_PATHS = {"/healthz", "/metrics"}
# How a client's leaving shows up in a handler: Serve cancels the handler's asyncio task, and
# Ray also cancels the actor calls the request made, so whichever lands first is raised.
CLIENT_GONE = (asyncio.CancelledError, ray.exceptions.TaskCancelledError)

TASK_ERROR_STATUS = {"bad_request": 400, "unavailable": 503, "internal": 500, "cancelled": 409}
PLANNER_NAME = "council-planner"

api = FastAPI(title="Council", version="0.1.0")


class ApiError(Exception):
    """An error answer: status, message and OpenAI's error type."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: Optional[str] = None, code: Optional[str] = None, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type_, param, code
        self.headers = headers or {}


def error_response(status: int, message: str, type_: str = "invalid_request_error",
                   param: Optional[str] = None, code: Optional[str] = None,
                   headers: Optional[dict] = None) -> JSONResponse:
    body = ErrorBody(error=ErrorDetail(message=message, type=type_, param=param, code=code))
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


@api.exception_handler(ApiError)
async def _api_error(request: Request, exc: ApiError):
    return error_response(exc.status, exc.message, exc.type, exc.param, exc.code, exc.headers)


@api.exception_handler(RequestValidationError)
async def _invalid(request: Request, exc: RequestValidationError):
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return error_response(400, "the request body is not valid JSON", code="invalid_json")
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    messages = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}" for e in errors)
    return error_response(422, messages, param=where or None, code="invalid_value")


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException):
    type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return error_response(exc.status_code, str(exc.detail), type_)


@api.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception):
    rid = getattr(request.state, "request_id", "-")
    log.exception("unhandled error in request %s", rid)
    return error_response(500, f"internal error (request id {rid})", "server_error")


def _unknown_strategy(name: str, param: str) -> ApiError:
    return ApiError(404, f"no {param} {name!r}; available: {list(AVAILABLE_STRATEGIES)}",
                    "invalid_request_error", param=param, code="model_not_found")


def _usage(result) -> dict:
    """OpenAI's usage: the planner's prompt tokens in, everything generated out."""
    led = result.ledger
    prompt = led.planner_prompt_tokens if led else 0
    completion = (led.planner_completion_tokens if led else 0) + result.follower_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


# Helpers above this line: Serve pickles the deployment class where it is defined, so names
# it uses must already exist.
@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)
@serve.ingress(api)
class CouncilIngress:
    def __init__(self, config: Optional[dict] = None):
        self.config = (
            CouncilConfig.from_dict(config)
            if config is not None
            else CouncilConfig.load(os.environ.get("COUNCIL_CONFIG"))
        )
        self.keys = self.config.server.keys()
        if not self.keys:
            log.warning("no API keys configured: serving without authentication, localhost only")
        self.metrics = ServiceMetrics()
        self.planner = PlannerActor.options(name=PLANNER_NAME, get_if_exists=True).remote(self.config)
        self.planner.start.remote()  # the pool starts now, not on the first request

        # Auth, body cap, request id, access log and HTTP metrics for every request.
        @api.middleware("http")
        async def _edge(request: Request, call_next):
            return await self._edge(request, call_next)

    async def _edge(self, request: Request, call_next):
        rid = request.headers.get("x-request-id") or uuid.uuid4().hex[:16]
        request.state.request_id = rid
        started = time.monotonic()
        response = self._refuse(request)
        if response is None:
            response = await call_next(request)
        response.headers["x-request-id"] = rid
        endpoint = request.scope.get("route").path if request.scope.get("route") else "other"
        seconds = time.monotonic() - started
        self.metrics.observe(endpoint, response.status_code, seconds)
        log.info(json.dumps({"request_id": rid, "method": request.method, "path": request.url.path,
                             "status": response.status_code, "ms": round(seconds * 1000, 1)}))
        return response

    def _refuse(self, request: Request) -> Optional[Response]:
        """A 401 or 413 before the body is read, else None."""
        if self.keys and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            token = given[7:].strip() if given.lower().startswith("bearer ") else ""
            if not any(hmac.compare_digest(token, k) for k in self.keys):
                return error_response(401, "a valid API key is required (Authorization: Bearer …)",
                                      "authentication_error", code="invalid_api_key")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.config.server.max_body_bytes:
            return error_response(413, f"the request body is over {self.config.server.max_body_bytes} bytes",
                                  code="body_too_large")
        if request.method in ("POST", "PUT") and not length:
            return error_response(411, "a Content-Length header is required", code="length_required")
        return None

    # -- open endpoints ---------------------------------------------------------------------
    @api.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        return await self.planner.health.remote()

    @api.get("/metrics")
    async def metrics(self) -> Response:
        work = await self.planner.stats.remote()
        return Response(self.metrics.render(work), media_type=CONTENT_TYPE)

    # -- the native tasks API ------------------------------------------------------------------
    @api.post("/v1/tasks", response_model=TaskStatus)
    async def create_task(self, task: TaskRequest, request: Request):
        if task.strategy not in AVAILABLE_STRATEGIES:
            raise _unknown_strategy(task.strategy, "strategy")
        status = await self._submit(task)
        if not task.wait:
            return JSONResponse(status.model_dump(mode="json"), status_code=202)
        status = await self._wait(status.id, request)
        if status.error is not None:
            raise ApiError(TASK_ERROR_STATUS[status.error.kind], status.error.message,
                           "server_error" if status.error.kind != "bad_request" else "invalid_request_error")
        return status

    @api.get("/v1/tasks/{task_id}", response_model=TaskStatus)
    async def get_task(self, task_id: str) -> TaskStatus:
        return await self._task_call("status", task_id)

    @api.delete("/v1/tasks/{task_id}", response_model=TaskStatus)
    async def cancel_task(self, task_id: str) -> TaskStatus:
        return await self._task_call("cancel", task_id)

    @api.get("/v1/tasks/{task_id}/events")
    async def task_events(self, task_id: str, request: Request):
        await self._task_call("status", task_id)  # a 404 now, not inside the stream
        after = int(request.headers.get("last-event-id", "0") or 0)

        async def stream():
            seen = after
            while True:
                events = await self.planner.events.remote(task_id, seen, 10.0)
                for ev in events:
                    seen = ev.seq
                    yield {"event": ev.type, "id": str(ev.seq), "data": ev.model_dump_json()}
                    if ev.terminal:
                        return

        return EventSourceResponse(stream(), ping=10)

    # -- the OpenAI-compatible API -------------------------------------------------------------
    @api.get("/v1/models")
    async def models(self) -> dict:
        return {"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "council"}
            for name in AVAILABLE_STRATEGIES]}

    @api.post("/v1/chat/completions")
    async def chat_completions(self, chat: ChatCompletionRequest, request: Request):
        if chat.model not in AVAILABLE_STRATEGIES:
            raise _unknown_strategy(chat.model, "model")
        try:
            prompt = chat.prompt()
        except ValueError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        task = TaskRequest(prompt=prompt, strategy=chat.model, seed=chat.seed or 0,
                           max_tokens=chat.max_completion_tokens or chat.max_tokens or 64)
        status = await self._submit(task)
        created = int(time.time())
        cid = f"chatcmpl-{status.id.removeprefix('task-')}"
        if chat.stream:
            include_usage = bool((chat.stream_options or {}).get("include_usage"))
            return EventSourceResponse(self._chat_stream(status.id, cid, chat.model, created, include_usage,
                                                         request), ping=10, sep="\n")
        status = await self._wait(status.id, request)
        if status.error is not None:
            raise ApiError(TASK_ERROR_STATUS[status.error.kind], status.error.message, "server_error")
        result = status.result
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": chat.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": result.text}}],
            "usage": _usage(result),
            "council": {"task_id": status.id, "passed_check": result.passed_check,
                        "constraints": result.constraints, "escalated": result.escalated,
                        "planner": result.planner.model_dump() if result.planner else None,
                        "ledger": result.ledger.model_dump() if result.ledger else None},
        }

    async def _chat_stream(self, task_id, cid, model, created, include_usage, request):
        def chunk(delta, finish=None, usage=None):
            body = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
            if usage is not None:
                body["usage"] = usage
            return {"data": json.dumps(body)}

        yield chunk({"role": "assistant", "content": ""})
        seen = 0
        try:
            while True:
                events = await self.planner.events.remote(task_id, seen, 10.0)
                for ev in events:
                    seen = ev.seq
                    if ev.type == "round":
                        # Progress as an SSE comment: OpenAI clients skip it, curl shows it.
                        yield {"comment": f"round {ev.round.round} ESS {ev.round.ess:.1f}"}
                    elif ev.type == "finished":
                        yield chunk({"content": ev.result.text})
                        yield chunk({}, "stop", _usage(ev.result) if include_usage else None)
                        yield {"data": "[DONE]"}
                        return
                    elif ev.terminal:
                        message = ev.error.message if ev.error else ev.type
                        yield {"data": ErrorBody(error=ErrorDetail(message=message, type="server_error"))
                               .model_dump_json()}
                        return
        except CLIENT_GONE:
            self.planner.abandon.remote(task_id)  # the client went away: free the particles
            raise

    # -- plain sampling -------------------------------------------------------------------------
    @api.post("/v1/generate", response_model=GenerateResult)
    async def generate(self, request: GenerateRequest) -> GenerateResult:
        try:
            return await self.planner.generate.remote(request)
        except NoLiveReplicaError as exc:
            raise ApiError(503, str(exc), "server_error") from None
        except ValueError as exc:  # e.g. a prompt longer than the engine accepts
            raise ApiError(422, str(exc)) from None

    # -- helpers --------------------------------------------------------------------------------
    async def _submit(self, task: TaskRequest) -> TaskStatus:
        # The id is chosen here, so a client that leaves while the submission is on its way
        # can still have its task cancelled.
        task_id = new_task_id()
        try:
            return await self.planner.submit.remote(task, task_id)
        except CLIENT_GONE:
            self.planner.abandon.remote(task_id)
            raise
        except QueueFull as exc:
            raise ApiError(429, str(exc), "rate_limit_error", code="queue_full",
                           headers={"Retry-After": "1"}) from None
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    async def _wait(self, task_id: str, request: Request) -> TaskStatus:
        """The task's end; if the client disconnects first, the task is cancelled."""
        try:
            return await self.planner.wait.remote(task_id, self.config.server.wait_timeout_s)
        except CLIENT_GONE:
            log.info("client went away: cancelling %s", task_id)
            self.planner.abandon.remote(task_id)
            raise
        except (asyncio.TimeoutError, ray.exceptions.GetTimeoutError):
            self.planner.cancel.remote(task_id)
            raise ApiError(504, f"the task ran over {self.config.server.wait_timeout_s:g} s and was "
                           "cancelled", "server_error") from None

    async def _task_call(self, method: str, task_id: str) -> TaskStatus:
        try:
            return await getattr(self.planner, method).remote(task_id)
        except UnknownTask:
            raise ApiError(404, f"no task {task_id!r}", "not_found_error") from None


app = CouncilIngress.bind()
