"""The Ray Serve application: `serve run serve_app:app`, or `council serve`.

Two deployments composed by a handle, and two detached actors that own the state:

    client → CouncilIngress (HTTP only: auth, validation, the generate gate, SSE)
               ├─ tasks ──► TaskStoreActor   (<app>-tasks: tasks, events, checkpoints, admission)
               │                └─ dispatch ──► CouncilRunner × N (plans, runs strategies / SMC)
               └─ generate ──────────────────► CouncilRunner ──► follower replicas
             PoolController per follower pool (<app>-pool, <app>.<pool>-pool: its replicas, health,
               scaling; runners follow each pool's table)

Any one of these processes can die: Serve replaces ingress and runner replicas, Ray restarts
the two actors (which take back their state), and a task whose runner died is continued by
another from its last round. The endpoints:

    GET  /healthz                    open: replicas and queue
    GET  /metrics                    open: Prometheus text
    GET  /v1/models                  the strategies, as OpenAI models
    POST /v1/chat/completions        OpenAI-compatible (`stream: true` as SSE chunks); `model`
                                     is the strategy (council-auto: the config's routes choose;
                                     council-smc, council-vote, …); an extra `pool` names the pool(s)
    POST /v1/tasks                   native: prompt or spec; `wait: true` answers inline
    GET  /v1/tasks/{id}              status and result
    GET  /v1/tasks/{id}/events       SSE progress: queued, planned, round…, finished
    DELETE /v1/tasks/{id}            cancel (frees the particles on every replica)
    POST /v1/generate                plain sampling from a follower pool (`pool`; default pool)

Every error has OpenAI's shape, `{"error": {"message", "type", "param", "code"}}`: one plain
sentence (never a traceback, a path, a pid or a pydantic URL) and a code; a client mistake is
a 4xx, never a 500. Config comes from the YAML file named by $COUNCIL_CONFIG (optional) and
`COUNCIL_*` variables; API keys from `server.api_keys`, `server.tenants` or $COUNCIL_API_KEYS.
Each key is a tenant: its tasks are invisible to every other key (404, as for an unknown id),
and `server.max_*_per_key` bound what one tenant may have running, queued or generating.

    curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"model": "council-auto", "messages": [{"role": "user", "content": "Write 8 words."}]}'
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
from pydantic import ValidationError
from ray import serve
from sse_starlette.sse import EventSourceResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from council_sdk.types import (
    AVAILABLE_STRATEGIES, ChatCompletionRequest, ErrorBody, ErrorDetail,
    GenerateRequest, GenerateResult, Health, TaskRequest, TaskStatus,
)

from actors.pool_controller import controllers_for, stop_controllers
from actors.task_store import store_for, store_of, stop_store
from cluster.config import ANONYMOUS, CouncilConfig
from cluster.metrics import CONTENT_TYPE, ServiceMetrics
from cluster.pool_client import PoolClient
from cluster.pools import Pools, UnknownPool
from cluster.routing import NoLiveReplicaError
from cluster.runner import CouncilRunner as RequestRunner
from cluster.runner import TaskCheckpoint
from cluster.task_store import LEASE_S, Assignment, ProgressReporter
from cluster.tasks import (
    Gate, IdempotencyConflict, QueueFull, UnknownTask, describe_errors, field_path, new_task_id, public_message,
    unwrap,
)
from planner.grammar import GrammarError, from_guided, from_response_format, to_response_format
from planner.sandbox import ProgramError

# Under Serve's logger, so the access log (one JSON line per request, with the tenant, never
# the key) reaches the replica's log file, logs/serve/replica_<app>_CouncilIngress_<id>.log.
log = logging.getLogger("ray.serve.council")
OPEN_PATHS = {"/healthz", "/metrics"}
# How a client's leaving shows up in a handler: Serve cancels the handler's asyncio task, and
# Ray also cancels the actor calls the request made, so whichever lands first is raised.
CLIENT_GONE = (asyncio.CancelledError, ray.exceptions.TaskCancelledError)

TASK_ERROR_STATUS = {"bad_request": 400, "unavailable": 503, "internal": 500, "cancelled": 409}
TASK_ERROR_CODE = {"bad_request": "invalid_request", "unavailable": "unavailable",
                   "internal": "internal_error", "cancelled": "cancelled"}
HTTP_ERROR_CODE = {404: "not_found", 405: "method_not_allowed"}

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
    where = field_path(first.get("loc", ()))
    return error_response(422, describe_errors(errors) or "the request is invalid", param=where or None,
                          code="invalid_value")


@api.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException):
    type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
    return error_response(exc.status_code, str(exc.detail), type_,
                          code=HTTP_ERROR_CODE.get(exc.status_code, "http_error"))


@api.exception_handler(Exception)
async def _unexpected(request: Request, exc: Exception):
    rid = getattr(request.state, "request_id", "-")
    log.exception("unhandled error in request %s", rid)
    return error_response(500, f"internal error (request id {rid})", "server_error", code="internal_error")


def planner_error(exc: BaseException, task_id: Optional[str] = None, bad_request: int = 400) -> Optional[ApiError]:
    """The answer for a task store or runner call that raised `exc` (Ray's wrapper or not),
    or None when it is not one the service answers plainly."""
    cause = unwrap(exc)
    if isinstance(cause, IdempotencyConflict):
        return ApiError(422, str(cause), param="idempotency-key", code="idempotency_conflict")
    if isinstance(cause, QueueFull):
        return ApiError(429, cause.message, "rate_limit_error", code=cause.code, headers={"Retry-After": "1"})
    if isinstance(cause, UnknownTask):  # also another tenant's task: the very same answer
        missing = task_id if task_id is not None else cause.args[0]
        return ApiError(404, f"no task {missing!r}", "not_found_error", code="task_not_found")
    if isinstance(cause, NoLiveReplicaError):
        return ApiError(503, public_message(cause, "no follower replica is alive; try again shortly"),
                        "server_error", code="no_live_replica", headers={"Retry-After": "5"})
    if isinstance(cause, (ValueError, ProgramError)):  # e.g. a program that cannot run
        return ApiError(bad_request, public_message(cause, "the request is invalid"),
                        code="invalid_request" if bad_request == 400 else "invalid_value")
    if isinstance(cause, ray.exceptions.RayActorError):
        log.error("a service actor is unavailable: %s", cause)
        return ApiError(503, "the service is restarting a part of itself; retry shortly", "server_error",
                        code="unavailable", headers={"Retry-After": "5"})
    return None


def task_error(error) -> ApiError:
    """A task's error (`TaskStatus.error`) as an answer."""
    type_ = "invalid_request_error" if error.kind == "bad_request" else "server_error"
    return ApiError(TASK_ERROR_STATUS[error.kind], error.message, type_, code=TASK_ERROR_CODE[error.kind])


def _unknown_strategy(name: str, param: str) -> ApiError:
    return ApiError(404, f"no {param} {name!r}; available: {list(AVAILABLE_STRATEGIES)}",
                    "invalid_request_error", param=param, code="model_not_found")


def _serve_request_id() -> Optional[str]:
    try:
        return serve.context._get_serve_request_context().request_id or None
    except Exception:  # noqa: BLE001 - outside a Serve request: no id of Serve's
        return None


def _tenant(request: Request) -> str:
    """The tenant `_edge` found for the request (a request without one never gets here)."""
    tenant = getattr(request.state, "tenant", None)
    if tenant is None:
        raise ApiError(401, "a valid API key is required (Authorization: Bearer …)",
                       "authentication_error", code="invalid_api_key")
    return tenant


def _usage(result) -> dict:
    """OpenAI's usage: what the planner and the followers read in, everything generated out."""
    led = result.ledger
    prompt = (led.planner_prompt_tokens + led.follower_prompt_tokens) if led else result.prompt_tokens
    completion = (led.planner_completion_tokens if led else 0) + result.follower_tokens
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def structured_output(chat: ChatCompletionRequest):
    """The grammar a chat request asks for: `response_format`, or vLLM's `guided_*` /
    `structured_outputs` extras (not both). GrammarError, one sentence, if it is unusable."""
    # Above the deployments: defined below them, the ingress replica could not find it (NameError).
    from_format = from_response_format(chat.response_format)
    from_extras = from_guided(chat.model_extra or {})
    if from_format is not None and from_extras is not None:
        raise GrammarError("give response_format or a guided_* / structured_outputs field, not both.")
    grammar = from_format or from_extras
    if grammar is not None:
        grammar.check()
    return grammar


def _council_block(task_id: str, result) -> dict:
    """What an OpenAI-shaped answer carries beyond OpenAI's fields: what was understood and verified."""
    return {"task_id": task_id, "passed": result.passed, "passed_reason": result.passed_reason,
            "understood": [u.model_dump() for u in result.understood],
            "not_understood": result.not_understood, "passed_check": result.passed_check,
            "constraints": result.constraints, "escalated": result.escalated,
            "planner": result.planner.model_dump() if result.planner else None,
            "ledger": result.ledger.model_dump() if result.ledger else None,
            "route": result.route.model_dump() if result.route else None, "answered_by": result.answered_by}


def _load_config(config: Optional[dict]) -> CouncilConfig:
    if config is not None:
        return CouncilConfig.from_dict(config)
    return CouncilConfig.load(os.environ.get("COUNCIL_CONFIG"))


# Helpers above this line: Serve pickles the deployment class where it is defined, so names
# it uses must already exist.
@serve.deployment(name="CouncilRunner", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=10_000)
class Runner:
    """Plans and runs requests: the tasks the store dispatches (reporting progress and a
    checkpoint per round back to it) and `/v1/generate`. It holds nothing a restart loses:
    the pool is the controller's, the tasks the store's."""

    def __init__(self, config: Optional[dict] = None):
        self.config = _load_config(config)
        self.app_name = serve.get_replica_context().app_name
        self.pools = {name: PoolClient(controller, self.config.pools[name].pool)
                      for name, controller in controllers_for(self.config, self.app_name).items()}
        self.runner = RequestRunner(self.config, pools=Pools.of_routers(self.pools, self.config.default_pool))

    async def _follow_pools(self) -> None:
        await asyncio.gather(*(client.start() for client in self.pools.values()))

    async def run_task(self, assignment: Assignment):
        await self._follow_pools()
        store = store_of(self.app_name)
        run = asyncio.current_task()
        reporter = ProgressReporter(
            lambda events, checkpoint: store.progress.remote(assignment.task_id, assignment.attempt, events,
                                                             checkpoint),
            heartbeat_s=LEASE_S / 3, on_lost=run.cancel)
        resume = None
        if assignment.checkpoint:
            resume = TaskCheckpoint.model_validate_json(assignment.checkpoint)
            resume.trace = assignment.trace
        try:
            return await self.runner.run_task(assignment.request, reporter.emit, resume=resume,
                                              on_checkpoint=reporter.checkpoint)
        finally:
            try:
                await reporter.close()
            finally:
                # The run is over and its particles dropped: a cancel waiting on it may answer.
                # A notice that cannot be sent (the store restarting) must not fail the run: the
                # cancel then answers after its bounded wait.
                try:
                    store.released.remote(assignment.task_id, assignment.attempt)
                except Exception as exc:  # noqa: BLE001
                    log.warning("could not tell the task store that %s has let go: %s", assignment.task_id, exc)

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        await self._follow_pools()
        pool = request.pool or self.config.default_pool
        if pool not in self.pools:
            raise UnknownPool(f"there is no follower pool named {pool!r}; the pools are {', '.join(self.pools)}")
        return await self.pools[pool].generate(request)


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)
@serve.ingress(api)
class CouncilIngress:
    def __init__(self, config: Optional[dict] = None, runner=None):
        self.config = _load_config(config)
        self.tenants = {key.encode(): name for key, name in self.config.server.key_tenants().items()}
        if not self.tenants:
            log.warning("no API keys configured: serving without authentication, localhost only")
        self.metrics = ServiceMetrics()
        # The app's name also names its detached actors: two apps never share a pool or tasks.
        self.app_name = serve.get_replica_context().app_name
        self.runner = runner
        self.store = store_for(self.config, self.app_name, runner)
        self.generating = Gate(self.config.server.max_generate, self.config.server.max_generate_per_key)
        for controller in controllers_for(self.config, self.app_name).values():
            controller.start.remote()  # the pools start now, not on the first request

        # Auth, body cap, request id, access log and HTTP metrics for every request.
        @api.middleware("http")
        async def _edge(request: Request, call_next):
            return await self._edge(request, call_next)

    async def _edge(self, request: Request, call_next):
        # Serve's own id (the client's x-request-id when it sent one), which Serve's proxy
        # also puts on the response: setting the header here too sent it twice.
        rid = _serve_request_id() or uuid.uuid4().hex[:16]
        request.state.request_id = rid
        started = time.monotonic()
        request.state.tenant = tenant = self._tenant_of(request)
        response = self._refuse(request, tenant)
        if response is None:
            try:
                response = await call_next(request)
            except ray.exceptions.TaskCancelledError:
                # The client left and Serve cancelled the calls its request made: there is
                # nobody to answer, and nothing went wrong on our side.
                response = error_response(499, "the client closed the request", code="client_closed")
        endpoint = request.scope.get("route").path if request.scope.get("route") else "other"
        seconds = time.monotonic() - started
        self.metrics.observe(endpoint, response.status_code, seconds)
        log.info(json.dumps({"request_id": rid, "tenant": tenant, "method": request.method,
                             "path": request.url.path, "status": response.status_code,
                             "ms": round(seconds * 1000, 1)}))
        return response

    def _tenant_of(self, request: Request) -> Optional[str]:
        """The tenant of the request's key (`anonymous` when the server has no keys); None
        without a valid key. Every key is compared, in constant time each."""
        if not self.tenants:
            return ANONYMOUS
        given = request.headers.get("authorization", "")
        token = (given[7:].strip() if given.lower().startswith("bearer ") else "").encode()
        found = None
        for key, name in self.tenants.items():
            if hmac.compare_digest(token, key):
                found = name
        return found

    def _refuse(self, request: Request, tenant: Optional[str]) -> Optional[Response]:
        """A 401, 411 or 413 before the body is read, else None."""
        if tenant is None and request.url.path not in OPEN_PATHS:
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
        return await self._call("health")

    @api.get("/metrics")
    async def metrics(self) -> Response:
        work = await self._call("stats", self.generating.total)
        return Response(self.metrics.render(work), media_type=CONTENT_TYPE)

    # -- the native tasks API ------------------------------------------------------------------
    @api.post("/v1/tasks", response_model=TaskStatus)
    async def create_task(self, task: TaskRequest, request: Request):
        if task.strategy not in AVAILABLE_STRATEGIES:
            raise _unknown_strategy(task.strategy, "strategy")
        status = await self._submit(task, request)
        if not task.wait:
            return JSONResponse(status.model_dump(mode="json"), status_code=202)
        status = await self._wait(status.id, request)
        if status.error is not None:
            raise task_error(status.error)
        return status

    @api.get("/v1/tasks/{task_id}", response_model=TaskStatus)
    async def get_task(self, task_id: str, request: Request) -> TaskStatus:
        return await self._call("status", task_id, tenant=_tenant(request), task_id=task_id)

    @api.delete("/v1/tasks/{task_id}", response_model=TaskStatus)
    async def cancel_task(self, task_id: str, request: Request) -> TaskStatus:
        return await self._call("cancel", task_id, tenant=_tenant(request), task_id=task_id)

    @api.get("/v1/tasks/{task_id}/events")
    async def task_events(self, task_id: str, request: Request):
        tenant = _tenant(request)
        await self._call("status", task_id, tenant=tenant, task_id=task_id)  # a 404 now, not inside the stream
        after = request.headers.get("last-event-id", "0") or "0"
        if not after.isdigit():
            raise ApiError(400, "the Last-Event-ID header must be a whole number", param="last-event-id",
                           code="invalid_header")

        async def stream():
            seen = int(after)
            try:
                while True:
                    events = await self._call("events", task_id, seen, 10.0, tenant=tenant, task_id=task_id)
                    if not events and await self._finished(task_id, tenant):
                        return  # resumed past the last event of a finished task: nothing will come
                    for ev in events:
                        seen = ev.seq
                        yield {"event": ev.type, "id": str(ev.seq), "data": ev.model_dump_json()}
                        if ev.terminal:
                            return
            except ray.exceptions.TaskCancelledError:
                return  # the reader left (Serve cancelled the call it was waiting on): the stream is over

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
            grammar = structured_output(chat)
        except GrammarError as exc:
            raise ApiError(400, str(exc), param="response_format", code="invalid_response_format") from None
        try:
            prompt = chat.prompt()
            extra = chat.model_extra or {}
            temperature = extra.get("temperature")
            twist = {k: extra[k] for k in ("twist_pool", "twist_weight") if k in extra}
            task = TaskRequest(prompt=prompt, strategy=chat.model, seed=chat.seed or 0,
                               pool=extra.get("pool"), **twist,
                               max_tokens=chat.max_completion_tokens or chat.max_tokens or 64,
                               response_format=to_response_format(grammar) if grammar else None,
                               **({"temperature": temperature} if grammar and temperature is not None else {}))
        except ValidationError as exc:  # e.g. a message longer than a prompt may be
            message = describe_errors(exc.errors()).replace("prompt:", "messages:", 1)
            raise ApiError(400, message, param="messages", code="invalid_messages") from None
        except ValueError as exc:
            raise ApiError(400, str(exc), param="messages", code="invalid_messages") from None
        status = await self._submit(task, request)
        created = int(time.time())
        cid = f"chatcmpl-{status.id.removeprefix('task-')}"
        if chat.stream:
            include_usage = bool((chat.stream_options or {}).get("include_usage"))
            return EventSourceResponse(self._chat_stream(status.id, cid, chat.model, created, include_usage,
                                                         request), ping=10, sep="\n")
        status = await self._wait(status.id, request)
        if status.error is not None:
            raise task_error(status.error)
        result = status.result
        return {
            "id": cid, "object": "chat.completion", "created": created, "model": chat.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": result.text}}],
            "usage": _usage(result),
            "council": _council_block(status.id, result),
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
        tenant = _tenant(request)
        try:
            while True:
                events = await self._call("events", task_id, seen, 10.0, tenant=tenant, task_id=task_id)
                for ev in events:
                    seen = ev.seq
                    if ev.type == "round":
                        # Progress as an SSE comment: OpenAI clients skip it, curl shows it.
                        yield {"comment": f"round {ev.round.round} ESS {ev.round.ess:.1f}"}
                    elif ev.type == "finished":
                        yield chunk({"content": ev.result.text})
                        last = chunk({}, "stop", _usage(ev.result) if include_usage else None)
                        # What was verified travels on the last chunk (OpenAI clients keep unknown fields).
                        body = json.loads(last["data"])
                        body["council"] = _council_block(task_id, ev.result)
                        yield {"data": json.dumps(body)}
                        yield {"data": "[DONE]"}
                        return
                    elif ev.terminal:
                        message = ev.error.message if ev.error else f"the task was {ev.type}"
                        code = TASK_ERROR_CODE[ev.error.kind] if ev.error else ev.type
                        yield {"data": ErrorBody(error=ErrorDetail(message=message, type="server_error",
                                                                   code=code)).model_dump_json()}
                        return
        except CLIENT_GONE:
            self.store.abandon.remote(task_id, tenant=tenant)  # the client went away: free the particles
            raise

    # -- plain sampling -------------------------------------------------------------------------
    @api.post("/v1/generate", response_model=GenerateResult)
    async def generate(self, body: GenerateRequest, request: Request) -> GenerateResult:
        try:
            with self.generating.enter(_tenant(request)):
                for attempt in (1, 2):  # a runner that died under the call: once more, on another
                    try:
                        return await self.runner.generate.remote(body)
                    except ray.exceptions.RayActorError:
                        if attempt == 2:
                            raise
        except CLIENT_GONE:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped below, or the 500 handler's
            # A ValueError here is e.g. a prompt longer than the engine accepts: the body's fault.
            error = planner_error(exc, None, 422)
            if error is None:
                raise
            raise error from None

    # -- helpers --------------------------------------------------------------------------------
    async def _finished(self, task_id: str, tenant: str) -> bool:
        status = await self._call("status", task_id, tenant=tenant, task_id=task_id)
        return status.status not in ("queued", "running")

    async def _call(self, method: str, *args, task_id: Optional[str] = None, bad_request: int = 400, **kwargs):
        """A task store call; its refusals and failures become plain answers."""
        try:
            return await getattr(self.store, method).remote(*args, **kwargs)
        except CLIENT_GONE:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped below, or the 500 handler's
            error = planner_error(exc, task_id, bad_request)
            if error is None:
                raise
            raise error from None

    async def _submit(self, task: TaskRequest, request: Request) -> TaskStatus:
        # The id is chosen here, so a client that leaves while the submission is on its way
        # can still have its task cancelled.
        task_id, tenant = new_task_id(), _tenant(request)
        key = request.headers.get("idempotency-key")
        if key is not None and not (0 < len(key) <= 255 and key.isascii() and key.isprintable()):
            raise ApiError(400, "the Idempotency-Key header must be 1 to 255 printable ASCII characters",
                           param="idempotency-key", code="invalid_header")
        try:
            return await self._call("submit", task, task_id, tenant=tenant, idempotency_key=key)
        except CLIENT_GONE:
            self.store.abandon.remote(task_id, tenant=tenant)
            raise

    async def _wait(self, task_id: str, request: Request) -> TaskStatus:
        """The task's end; if the client disconnects first, the task is cancelled."""
        tenant = _tenant(request)
        try:
            return await self._call("wait", task_id, self.config.server.wait_timeout_s, tenant=tenant,
                                    task_id=task_id)
        except CLIENT_GONE:
            log.info("client went away: cancelling %s", task_id)
            self.store.abandon.remote(task_id, tenant=tenant)
            raise
        except (asyncio.TimeoutError, ray.exceptions.GetTimeoutError):
            self.store.cancel.remote(task_id, tenant=tenant)
            raise ApiError(504, f"the task ran over {self.config.server.wait_timeout_s:g} s and was "
                           "cancelled", "server_error", code="timeout") from None


def build_app(config: Optional[dict] = None):
    """The application: the ingress composed with the runners (sized by `runners`)."""
    runners = _load_config(config).runners
    if runners.max_replicas is not None and runners.max_replicas > runners.replicas:
        options = {"autoscaling_config": {"min_replicas": runners.replicas, "max_replicas": runners.max_replicas,
                                          "target_ongoing_requests": runners.target_ongoing_requests}}
    else:
        options = {"num_replicas": runners.replicas}
    return CouncilIngress.bind(config, Runner.options(**options).bind(config))


def stop_app(name: str) -> None:
    """Delete the Serve app `name`, then its task store and follower pool (detached: they
    outlive the app's replicas on purpose, so they have to be stopped on purpose)."""
    serve.delete(name)
    stop_store(name)
    stop_controllers(name)


app = build_app()
