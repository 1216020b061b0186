"""Tasks: requests with an id, a lifecycle, a progress log and admission control.

The PlannerActor keeps one `TaskRegistry`. A task is queued, runs when one of `max_running`
slots frees, and ends succeeded, failed or cancelled; every step is a `TaskEvent` that
readers can wait for (`events(id, after=seq)`), which is how the service streams progress.
Admission is bounded: with `max_queued` tasks already waiting, `submit` raises `QueueFull`
(the service answers 429). Cancelling a task cancels its coroutine; the scheduler's cleanup
then frees its particles on every replica.

    registry = TaskRegistry(run, max_running=8, max_queued=64)
    record = registry.submit(TaskRequest(prompt="..."))
    events = await registry.events(record.id, after=0, timeout=10)
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from council_sdk.types import CouncilResult, TaskError, TaskEvent, TaskRequest, TaskStatus

from cluster.scheduler import NoReplicaLeft
from planner.llm import PlannerFailed
from planner.sandbox import ProgramError

Emit = Callable[..., None]
RunTask = Callable[[TaskRequest, Emit], Awaitable[CouncilResult]]


class QueueFull(RuntimeError):
    """Admission refused: too many tasks are waiting."""

    def __init__(self, waiting: int):
        super().__init__(f"the queue is full ({waiting} tasks waiting); retry shortly")
        self.waiting = waiting


class UnknownTask(KeyError):
    pass


@dataclass
class TaskRecord:
    id: str
    request: TaskRequest
    created: float = field(default_factory=time.time)
    status: str = "queued"
    started: float | None = None
    finished: float | None = None
    result: CouncilResult | None = None
    error: TaskError | None = None
    events: list[TaskEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    job: asyncio.Task | None = None

    @property
    def done(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def view(self) -> TaskStatus:
        return TaskStatus(id=self.id, status=self.status, strategy=self.request.strategy,
                          created=self.created, started=self.started, finished=self.finished,
                          result=self.result, error=self.error)


def classify(exc: BaseException) -> TaskError:
    """What went wrong, as the client should hear it."""
    if isinstance(exc, (ValueError, ProgramError)):
        return TaskError(kind="bad_request", message=str(exc))
    if isinstance(exc, (NoReplicaLeft, PlannerFailed)):
        return TaskError(kind="unavailable", message=str(exc))
    return TaskError(kind="internal", message=f"{type(exc).__name__}: {exc}")


def new_task_id() -> str:
    return f"task-{uuid.uuid4().hex[:16]}"


class TaskRegistry:
    def __init__(self, run: RunTask, max_running: int, max_queued: int, keep_finished: int = 1000,
                 on_end: Callable[[TaskRecord], None] | None = None):
        self._run = run
        self._on_end = on_end
        self._slots = asyncio.Semaphore(max_running)
        self.max_queued = max_queued
        self.keep_finished = keep_finished
        self._tasks: OrderedDict[str, TaskRecord] = OrderedDict()
        self._abandoned: OrderedDict[str, None] = OrderedDict()  # cancelled before they arrived

    # -- lifecycle ---------------------------------------------------------------------------
    def submit(self, request: TaskRequest, task_id: str | None = None) -> TaskRecord:
        """Queue a task under `task_id` (from `new_task_id`, chosen by the caller) or a new id."""
        waiting = self.depth()["queued"]
        if waiting >= self.max_queued:
            raise QueueFull(waiting)
        record = TaskRecord(id=task_id or new_task_id(), request=request)
        if record.id in self._tasks:
            raise ValueError(f"task id {record.id!r} is taken")
        if self._abandoned.pop(record.id, False) is None:
            # Its client left before the submission arrived: record it, run nothing.
            self._tasks[record.id] = record
            self._end(record, "cancelled", TaskError(kind="cancelled", message="the client went away before it started"))
            return record
        self._tasks[record.id] = record
        self._emit(record, "queued")
        record.job = asyncio.get_running_loop().create_task(self._drive(record))
        self._forget_old()
        return record

    async def _drive(self, record: TaskRecord) -> None:
        try:
            async with self._slots:
                record.status, record.started = "running", time.time()
                self._emit(record, "running")
                record.result = await self._run(record.request, lambda kind, **data: self._emit(record, kind, **data))
            self._end(record, "succeeded")
        except asyncio.CancelledError:
            self._end(record, "cancelled", TaskError(kind="cancelled", message="the task was cancelled"))
        except Exception as exc:  # noqa: BLE001 - every failure becomes the task's error
            self._end(record, "failed", classify(exc))
        await self._notify(record)

    def _end(self, record: TaskRecord, status: str, error: TaskError | None = None) -> None:
        """Mark a task ended, once (a task cancelled before it started ends here too)."""
        if record.done:
            return
        record.status, record.error, record.finished = status, error, time.time()
        self._emit(record, {"succeeded": "finished"}.get(status, status),
                   result=record.result, error=error)
        if self._on_end is not None:
            self._on_end(record)

    def abandon(self, task_id: str) -> None:
        """Cancel a task whose client went away, even if its submission has not arrived yet."""
        if task_id in self._tasks:
            self.cancel(task_id)
            return
        self._abandoned[task_id] = None
        while len(self._abandoned) > 10_000:
            self._abandoned.popitem(last=False)

    def cancel(self, task_id: str) -> TaskRecord:
        record = self.get(task_id)
        if not record.done and record.job is not None:
            record.job.cancel()
            if record.status == "queued":  # it may never start, so it never sees the cancel
                self._end(record, "cancelled", TaskError(kind="cancelled", message="the task was cancelled"))
        return record

    # -- reading -----------------------------------------------------------------------------
    def get(self, task_id: str) -> TaskRecord:
        if task_id not in self._tasks:
            raise UnknownTask(task_id)
        return self._tasks[task_id]

    async def events(self, task_id: str, after: int = 0, timeout: float = 15.0) -> list[TaskEvent]:
        """Events with seq > `after`; waits up to `timeout` for one if there is none yet."""
        record = self.get(task_id)
        async with record.changed:
            try:
                await asyncio.wait_for(
                    record.changed.wait_for(lambda: len(record.events) > after or record.done), timeout)
            except asyncio.TimeoutError:
                pass
        return record.events[after:]

    async def wait(self, task_id: str, timeout: float | None = None) -> TaskRecord:
        record = self.get(task_id)
        if record.job is not None and not record.done:
            await asyncio.wait_for(asyncio.shield(record.job), timeout)
        return record

    def depth(self) -> dict[str, int]:
        running = sum(1 for r in self._tasks.values() if r.status == "running")
        queued = sum(1 for r in self._tasks.values() if r.status == "queued")
        return {"queued": queued, "running": running}

    # -- internals ---------------------------------------------------------------------------
    def _emit(self, record: TaskRecord, kind: str, **data: Any) -> None:
        record.events.append(TaskEvent(task_id=record.id, seq=len(record.events) + 1, type=kind,
                                       time=time.time(), **data))
        asyncio.get_running_loop().create_task(self._notify(record))

    @staticmethod
    async def _notify(record: TaskRecord) -> None:
        async with record.changed:
            record.changed.notify_all()

    def _forget_old(self) -> None:
        finished = [k for k, r in self._tasks.items() if r.done]
        for key in finished[: max(0, len(finished) - self.keep_finished)]:
            del self._tasks[key]
