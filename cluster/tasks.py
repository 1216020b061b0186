"""Tasks: requests with an id, an owner, a lifecycle, a progress log and admission control.

The service's task store (`cluster/task_store.py`) keeps one `TaskRegistry`, and so does the
single-actor PlannerActor; direct runs take the same slots (`slot()`). A task belongs to the tenant that submitted it
(the API key's tenant, `anonymous` without keys); every read, wait, stream or cancel names
the tenant, and a task of another tenant is an `UnknownTask`, exactly like an id that never
existed. A task is queued, runs when one of `max_running` slots frees (and its tenant has
fewer than `max_running_per_tenant` running), and ends succeeded, failed or cancelled; every
step is a `TaskEvent` that readers can wait for (`events(id, after=seq)`), which is how the
service streams progress. Admission is bounded: a task that cannot start at once is refused
with `QueueFull` (the service answers 429) when `max_queued` tasks already wait, or
`max_queued_per_tenant` of its tenant's. Cancelling a task cancels its coroutine; the
scheduler's cleanup then frees its particles on every replica.

Errors that reach a client say one plain sentence (`public_message`): a Ray wrapper is
unwrapped to its cause, pydantic's report is flattened, and a failure that is nobody's
fault but ours says only that, its detail going to the server log.

    registry = TaskRegistry(run, max_running=8, max_queued=64)
    record = registry.submit(TaskRequest(prompt="..."), tenant="alpha")
    events = await registry.events(record.id, after=0, timeout=10, tenant="alpha")
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import sys
import time
import uuid
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterator

from council_sdk.types import CouncilResult, TaskError, TaskEvent, TaskRequest, TaskStatus
from pydantic import ValidationError

from cluster.config import ANONYMOUS
from cluster.protocol import NoReplicaLeft
from planner.llm import PlannerFailed
from planner.sandbox import ProgramError, WorkersUnavailable

log = logging.getLogger(__name__)

Emit = Callable[..., None]
RunTask = Callable[["TaskRecord", Emit], Awaitable[CouncilResult]]  # the record, and how to report progress


class QueueFull(RuntimeError):
    """Admission refused (HTTP 429): `message` is one sentence for the client, `code` says
    which bound it hit."""

    def __init__(self, message: str, code: str = "queue_full"):
        super().__init__(message)
        self.message, self.code = message, code


class UnknownTask(KeyError):
    """No such task, or not one of the caller's tenant (the two are told apart by nobody)."""


class IdempotencyConflict(ValueError):
    """An Idempotency-Key reused for a different request (HTTP 422)."""


class Unavailable(RuntimeError):
    """The task could not be run for now (its runner died and it could not be resumed):
    a 503-class failure, retryable."""


# -- errors as a client hears them ------------------------------------------------------------

_PYDANTIC_HEAD = re.compile(r"\d+ validation errors? for [\w.\[\], ]+\n")
_PYDANTIC_NOTE = re.compile(r"\s*\[type=[^\]]*\]")
_PYDANTIC_URL = re.compile(r"\s*For further information visit \S+")
_TRACEBACK = "Traceback (most recent call last)"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PID = re.compile(r"\s*\((?:pid|ip)=[^)]*\)")
_REAL_FRAME = re.compile(r'^\s*File "(?!<)[^"]*"')  # a frame of a real file (not "<program>")
_RAY_HEADER = re.compile(r"^ray::\S+")  # how Ray's traceback text begins
_ERROR_LINE = re.compile(r"^[\w.]+(?:\([\w.]+\))?: ")  # "QueueFull: ...", "RayTaskError(X): ..."


def unwrap(exc: BaseException) -> BaseException:
    """The exception an actor raised, not Ray's wrapper around it (whose `str` is a whole
    traceback). Without Ray imported nothing can be wrapped."""
    ray_exceptions = sys.modules.get("ray.exceptions")
    while (ray_exceptions is not None and isinstance(exc, ray_exceptions.RayTaskError)
           and isinstance(getattr(exc, "cause", None), BaseException) and exc.cause is not exc):
        exc = exc.cause
    return exc


def public_message(exc: BaseException, fallback: str = "the request failed") -> str:
    """What `exc` says, fit for a response body: no Ray traceback, no file path of ours, no
    pid, no pydantic URL."""
    exc = unwrap(exc)
    if isinstance(exc, QueueFull):
        return exc.message
    if isinstance(exc, ValidationError):
        text = describe_errors(exc.errors())
    else:
        text = str(exc)
    return clean_message(text) or fallback


_UNION_BRANCH = re.compile(r"\[|^(str|int|float|bool|dict|list|none|bytes)$")  # `list[ContentPart]`
_PLAIN_NAME = re.compile(r"[\w.-]{1,64}")


def field_path(loc) -> str:
    """A pydantic error's location as `messages.0.content`: the body prefix and union branch
    names left out, and a field name the client made up quoted (it may hold anything)."""
    parts = []
    for p in loc:
        if p == "body" or (isinstance(p, str) and _UNION_BRANCH.search(p)):
            continue
        text = str(p)
        parts.append(text if _PLAIN_NAME.fullmatch(text) else json.dumps(text[:64]))
    return ".".join(parts)


def describe_errors(errors: list[dict]) -> str:
    """pydantic's errors as `field: message; field: message` (the field as dotted path). A
    value that matched no branch of a union gets one line, for the deepest branch it reached,
    without pydantic's names of the branches (`str`, `list[ContentPart]`)."""
    found: list[tuple[str, str]] = []
    for err in errors:
        where = field_path(err.get("loc", ()))
        message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        if (where, message) not in found:
            found.append((where, message))
    deepest = [(w, m) for w, m in found if not any(o != w and o.startswith(f"{w}.") for o, _ in found)]
    kept, seen = [], set()
    for where, message in deepest:
        if where not in seen or not where:
            seen.add(where)
            kept.append(f"{where}: {message}" if where else message)
    return clean_message("; ".join(kept))


def clean_message(text: str) -> str:
    """Strip what a client must not see from an error text; keep what it can act on (a
    program's own frames, `File "<program>"`, stay: they are the client's code)."""
    text = _ANSI.sub("", text)
    lines = text.splitlines()
    ours = next((i for i, line in enumerate(lines) if line.startswith(_TRACEBACK)
                 or _RAY_HEADER.match(line) or _REAL_FRAME.match(line)), None)
    if ours is not None:  # a traceback of ours: what came before it, else its last line
        before = "\n".join(lines[:ours]).strip()
        last = next((line.strip() for line in reversed(lines[ours:])
                     if line.strip() and not line[:1].isspace()), "")
        text = before or (last.split(": ", 1)[1] if _ERROR_LINE.match(last) else "")
    text = _PYDANTIC_URL.sub("", text)
    head = _PYDANTIC_HEAD.search(text)
    if head:  # "N validation errors for X\nloc\n  msg [type=...]" -> "loc: msg; ..."
        parts, where = [], None
        for line in text[head.end():].splitlines():
            if not line.strip():
                continue
            if line[:1].isspace():
                message = _PYDANTIC_NOTE.sub("", line).strip().removeprefix("Value error, ")
                parts.append(f"{where}: {message}" if where else message)
                where = None
            else:
                where = line.strip()
        text = text[: head.start()] + "; ".join(parts)
    text = _PYDANTIC_NOTE.sub("", text)
    return _PID.sub("", text).strip()


INTERNAL_MESSAGE = "the task failed on an internal error; the server log has the details"


def classify(exc: BaseException) -> TaskError:
    """What went wrong, as the client should hear it (an internal error says only that)."""
    exc = unwrap(exc)
    if isinstance(exc, (ValueError, ProgramError)):
        return TaskError(kind="bad_request", message=public_message(exc, "the request is invalid"))
    if isinstance(exc, (NoReplicaLeft, PlannerFailed, WorkersUnavailable, Unavailable)):
        return TaskError(kind="unavailable", message=public_message(exc, "the service is unavailable"),
                         retryable=True)
    return TaskError(kind="internal", message=INTERNAL_MESSAGE)


@dataclass
class TaskRecord:
    id: str
    request: TaskRequest
    tenant: str = ANONYMOUS
    created: float = field(default_factory=time.time)
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    result: CouncilResult | None = None
    error: TaskError | None = None
    events: list[TaskEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    job: asyncio.Task | None = None
    slot: asyncio.Future | None = None  # resolved when the task may start
    holds_slot: bool = False
    idempotency_key: str | None = None

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def view(self) -> TaskStatus:
        return TaskStatus(id=self.id, status=self.status, strategy=self.request.strategy,
                          created=self.created, started=self.started, finished=self.finished,
                          result=self.result, error=self.error)


def new_task_id() -> str:
    return f"task-{uuid.uuid4().hex[:16]}"


class Gate:
    """Calls in flight, bounded in all and per tenant; beyond a bound `enter` raises
    QueueFull (`POST /v1/generate`, which has no queue: a call runs or is refused)."""

    def __init__(self, limit: int, per_tenant: int | None = None, what: str = "generate calls",
                 code: str = "generate_limit"):
        self.limit, self.per_tenant, self.what, self.code = limit, per_tenant, what, code
        self.in_flight: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.in_flight.values())

    @contextlib.contextmanager
    def enter(self, tenant: str = ANONYMOUS) -> Iterator[None]:
        if self.total >= self.limit:
            raise QueueFull(f"{self.limit} {self.what} are already in flight; retry shortly", self.code)
        if self.per_tenant is not None and self.in_flight[tenant] >= self.per_tenant:
            raise QueueFull(f"this API key already has {self.per_tenant} {self.what} in flight; "
                            "retry when one has finished", f"key_{self.code}")
        self.in_flight[tenant] += 1
        try:
            yield
        finally:
            self.in_flight[tenant] -= 1
            if not self.in_flight[tenant]:
                del self.in_flight[tenant]


class TaskRegistry:
    def __init__(self, run: RunTask, max_running: int, max_queued: int, keep_finished: int = 1000,
                 on_end: Callable[[TaskRecord], None] | None = None,
                 max_running_per_tenant: int | None = None, max_queued_per_tenant: int | None = None,
                 on_event: Callable[[TaskRecord, TaskEvent], None] | None = None,
                 on_forget: Callable[[TaskRecord], None] | None = None):
        self._run = run
        self._on_end = on_end
        self._on_event = on_event  # every event, as it is recorded (the store persists them)
        self._on_forget = on_forget  # a finished task dropped to keep `keep_finished`
        self.max_running, self.max_queued = max_running, max_queued
        self.max_running_per_tenant = max_running_per_tenant
        self.max_queued_per_tenant = max_queued_per_tenant
        self.keep_finished = keep_finished
        self._tasks: OrderedDict[str, TaskRecord] = OrderedDict()
        self._abandoned: OrderedDict[str, str] = OrderedDict()  # cancelled before they arrived -> tenant
        # Slots: tasks waiting for one in arrival order, and who holds them.
        self._waiting: OrderedDict[str, TaskRecord] = OrderedDict()
        self._holding: Counter[str] = Counter()
        self._by_key: OrderedDict[tuple[str, str], str] = OrderedDict()  # (tenant, key) -> task id

    # -- lifecycle ---------------------------------------------------------------------------
    def submit(self, request: TaskRequest, task_id: str | None = None,
               tenant: str = ANONYMOUS, idempotency_key: str | None = None) -> TaskRecord:
        """Queue a task of `tenant` under `task_id` (from `new_task_id`, chosen by the caller)
        or a new id; raises QueueFull when it cannot start and may not wait. A submission
        with the `idempotency_key` of an earlier one of the same tenant is that task, not a
        new one (a client retrying after a lost answer never runs its request twice)."""
        if idempotency_key is not None:
            earlier = self._tasks.get(self._by_key.get((tenant, idempotency_key), ""))
            if earlier is not None:
                if earlier.request != request:
                    raise IdempotencyConflict("this Idempotency-Key was already used for a different request")
                return earlier
        record = TaskRecord(id=task_id or new_task_id(), request=request, tenant=tenant,
                            idempotency_key=idempotency_key)
        if record.id in self._tasks:
            raise ValueError(f"task id {record.id!r} is taken")
        if self._abandoned.get(record.id) == tenant:
            # Its client left before the submission arrived: record it, run nothing.
            del self._abandoned[record.id]
            self._tasks[record.id] = record
            self._end(record, "cancelled", TaskError(kind="cancelled", message="the client went away before it started"))
            return record
        if not self._may_start(tenant):
            self._admit_to_queue(tenant)
        self._tasks[record.id] = record
        if idempotency_key is not None:
            self._by_key[(tenant, idempotency_key)] = record.id
            while len(self._by_key) > 10_000:
                self._by_key.popitem(last=False)
        self._emit(record, "queued")
        self._start(record)
        self._forget_old()
        return record

    def _start(self, record: TaskRecord) -> None:
        """Queue `record` for a slot and begin its coroutine."""
        record.slot = asyncio.get_running_loop().create_future()
        self._waiting[record.id] = record
        self._grant()
        record.job = asyncio.get_running_loop().create_task(self._drive(record))
        record.job.add_done_callback(lambda _job: self._leave(record))

    def restore(self, record: TaskRecord) -> None:
        """Take back a task recorded before a restart of whoever holds this registry: a
        finished one is kept for reading; one that was queued or running queues again (ahead
        of new work, bounds notwithstanding: it was admitted once) and its run resumes."""
        self._tasks[record.id] = record
        self._tasks.move_to_end(record.id, last=False)
        if record.idempotency_key is not None:
            self._by_key[(record.tenant, record.idempotency_key)] = record.id
        if not record.done:
            record.status = "queued"
            self._start(record)

    @contextlib.asynccontextmanager
    async def slot(self, tenant: str = ANONYMOUS):
        """Hold one running slot for work that is not a task (a direct `run`): the same bound
        as tasks, so direct calls and tasks together never run more than `max_running`."""
        record = TaskRecord(id=f"direct-{uuid.uuid4().hex[:12]}", request=None, tenant=tenant)
        record.slot = asyncio.get_running_loop().create_future()
        self._waiting[record.id] = record
        self._grant()
        try:
            await record.slot
            yield
        finally:
            record.slot.cancel()
            self._leave(record)

    def _admit_to_queue(self, tenant: str) -> None:
        waiting = len(self._waiting)
        if waiting >= self.max_queued:
            raise QueueFull(f"the queue is full ({waiting} tasks waiting); retry shortly")
        if self.max_queued_per_tenant is not None:
            mine = sum(1 for r in self._waiting.values() if r.tenant == tenant)
            if mine >= self.max_queued_per_tenant:
                raise QueueFull(f"the queue is full for this API key ({mine} of its tasks waiting); "
                                "retry when one has started", "key_queue_full")

    async def _drive(self, record: TaskRecord) -> None:
        try:
            await record.slot
            record.status, record.started = "running", time.time()
            self._emit(record, "running")
            record.result = await self._run(record, lambda kind, **data: self._emit(record, kind, **data))
            self._end(record, "succeeded")
        except asyncio.CancelledError:
            self._end(record, "cancelled", TaskError(kind="cancelled", message="the task was cancelled"))
        except Exception as exc:  # noqa: BLE001 - every failure becomes the task's error
            error = classify(exc)
            if error.kind == "internal":
                log.error("task %s failed: %s", record.id, exc, exc_info=exc)
            self._end(record, "failed", error)
        await self._notify(record)

    # -- slots -------------------------------------------------------------------------------
    def _may_start(self, tenant: str) -> bool:
        if sum(self._holding.values()) >= self.max_running:
            return False
        return self.max_running_per_tenant is None or self._holding[tenant] < self.max_running_per_tenant

    def _grant(self) -> None:
        """Start waiting tasks in arrival order, skipping a tenant at its running bound."""
        for record in list(self._waiting.values()):
            if sum(self._holding.values()) >= self.max_running:
                return
            if not self._may_start(record.tenant):
                continue
            del self._waiting[record.id]
            if record.slot.done():  # cancelled while waiting
                continue
            record.holds_slot = True
            self._holding[record.tenant] += 1
            record.slot.set_result(None)

    def _leave(self, record: TaskRecord) -> None:
        """The task's coroutine is over (however it ended, even cancelled before it began)."""
        self._waiting.pop(record.id, None)
        if record.holds_slot:
            record.holds_slot = False
            self._holding[record.tenant] -= 1
            if not self._holding[record.tenant]:
                del self._holding[record.tenant]
        self._grant()

    def _end(self, record: TaskRecord, status: str, error: TaskError | None = None) -> None:
        """Mark a task ended, once (a task cancelled before it started ends here too)."""
        if record.done:
            return
        record.status, record.error, record.finished = status, error, time.time()
        self._emit(record, {"succeeded": "finished"}.get(status, status),
                   result=record.result, error=error)
        if self._on_end is not None:
            self._on_end(record)

    def abandon(self, task_id: str, tenant: str = ANONYMOUS) -> None:
        """Cancel a task whose client went away, even if its submission has not arrived yet."""
        if task_id in self._tasks:
            with contextlib.suppress(UnknownTask):  # another tenant's: not ours to cancel
                self.cancel(task_id, tenant)
            return
        self._abandoned[task_id] = tenant
        while len(self._abandoned) > 10_000:
            self._abandoned.popitem(last=False)

    def cancel(self, task_id: str, tenant: str = ANONYMOUS) -> TaskRecord:
        record = self.get(task_id, tenant)
        if not record.done and record.job is not None:
            record.job.cancel()
            if record.status == "queued":  # it may never start, so it never sees the cancel
                self._end(record, "cancelled", TaskError(kind="cancelled", message="the task was cancelled"))
                self._leave(record)  # its place or slot is free now, not when the coroutine ends
        return record

    # -- reading -----------------------------------------------------------------------------
    def find(self, task_id: str) -> TaskRecord | None:
        """The task whoever's it is (for the service's own bookkeeping, never a client)."""
        return self._tasks.get(task_id)

    def get(self, task_id: str, tenant: str = ANONYMOUS) -> TaskRecord:
        """The task, if it is `tenant`'s; another tenant's task is as unknown as no task."""
        record = self._tasks.get(task_id)
        if record is None or record.tenant != tenant:
            raise UnknownTask(task_id)
        return record

    async def events(self, task_id: str, after: int = 0, timeout: float = 15.0,
                     tenant: str = ANONYMOUS) -> list[TaskEvent]:
        """Events with seq > `after`; waits up to `timeout` for one if there is none yet."""
        record = self.get(task_id, tenant)
        async with record.changed:
            try:
                await asyncio.wait_for(
                    record.changed.wait_for(lambda: len(record.events) > after or record.done), timeout)
            except asyncio.TimeoutError:
                pass
        return record.events[after:]

    async def wait(self, task_id: str, timeout: float | None = None,
                   tenant: str = ANONYMOUS) -> TaskRecord:
        record = self.get(task_id, tenant)
        if record.job is not None and not record.done:
            await asyncio.wait_for(asyncio.shield(record.job), timeout)
        return record

    def depth(self) -> dict[str, int]:
        running = sum(1 for r in self._tasks.values() if r.status == "running")
        queued = sum(1 for r in self._tasks.values() if r.status == "queued")
        return {"queued": queued, "running": running}

    def depth_by_tenant(self) -> dict[str, dict[str, int]]:
        """Queued and running tasks of each tenant that has any."""
        out: dict[str, dict[str, int]] = {}
        for r in self._tasks.values():
            if r.status in ("queued", "running"):
                counts = out.setdefault(r.tenant, {"queued": 0, "running": 0})
                counts[r.status] += 1
        return out

    # -- internals ---------------------------------------------------------------------------
    def emit(self, record: TaskRecord, kind: str, **data: Any) -> None:
        """Record a progress event of a running task (a runner's report, relayed)."""
        self._emit(record, kind, **data)

    def _emit(self, record: TaskRecord, kind: str, **data: Any) -> None:
        event = TaskEvent(task_id=record.id, seq=len(record.events) + 1, type=kind, time=time.time(), **data)
        record.events.append(event)
        if self._on_event is not None:
            self._on_event(record, event)
        asyncio.get_running_loop().create_task(self._notify(record))

    @staticmethod
    async def _notify(record: TaskRecord) -> None:
        async with record.changed:
            record.changed.notify_all()

    def _forget_old(self) -> None:
        finished = [k for k, r in self._tasks.items() if r.done]
        for key in finished[: max(0, len(finished) - self.keep_finished)]:
            record = self._tasks.pop(key)
            if self._on_forget is not None:
                self._on_forget(record)
