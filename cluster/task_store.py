"""TaskStore: the service's tasks, kept outside every runner that runs them.

It holds what a task *is* — its request and owner, status, event log (what SSE streams) and
its last round checkpoint — and the one admission bound (`planner.max_concurrency` running,
`server.max_queued` waiting, per tenant too: `cluster/tasks.py`'s `TaskRegistry`). It runs
nothing itself: a task that gets a slot is *dispatched* to a runner (`dispatch(Assignment)`,
a Serve handle call in the service), which reports back with `progress(task, attempt, events,
checkpoint)` as it goes and returns the result.

A runner that dies (its call fails as an actor death) or goes silent past its lease
(`lease_s` without a `progress`) loses the task: the store dispatches it again, with the last
checkpoint, so the next runner continues from the last round instead of starting over, and
a `resumed` event says so. Reports from a superseded attempt are refused, which tells its
runner to stop. After `MAX_ATTEMPTS` the task fails as unavailable, `retryable: true`.

Cancelling a running task cancels its runner's call, but a remote call's cancel only asks: the
runner's run unwinds afterwards, and that is when it drops the task's particles from the
follower replicas. So a runner says `released(task, attempt)` once its run is over, and a
cancel that reached a runner (one that has reported) waits for that, up to `RELEASE_WAIT_S`:
a cancelled task's particles are free by the time the cancel answers.

Everything is written through to a key-value store (`KV`): Ray's internal KV (GCS) in the
service, a dict in the tests. A restarted store actor `load()`s it back: finished tasks stay
readable, and tasks that were queued or running are dispatched again from their checkpoint.

    store = TaskStore(cfg, dispatch=lambda a: runner.run_task.remote(a), kv=RayKV("council"))
    store.load()
    status = store.submit(TaskRequest(prompt="Write 8 words."), tenant="alpha")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Awaitable, Callable, Protocol

from council_sdk.types import CouncilResult, RoundTrace, TaskEvent, TaskRequest, TaskStatus
from pydantic import BaseModel, Field

from cluster.config import ANONYMOUS, CouncilConfig
from cluster.metrics import WorkCounter
from cluster.tasks import TaskRecord, TaskRegistry, Unavailable

log = logging.getLogger(__name__)

LEASE_S = 30.0  # a runner that reports nothing for this long has lost its task
MAX_ATTEMPTS = 3  # runners a task may go through before it fails as unavailable
RELEASE_WAIT_S = 10.0  # a cancel waits this long for the runner to let go of the task


class Assignment(BaseModel):
    """What a runner is given: the task, which attempt at it this is, and where to go on from."""

    task_id: str
    attempt: int
    tenant: str
    request: TaskRequest
    checkpoint: str | None = None  # a `cluster.runner.TaskCheckpoint` as JSON
    trace: list[RoundTrace] = Field(default_factory=list, description="The rounds reported so far.")


class RunnerLost(RuntimeError):
    """The runner of a task died, or stopped reporting within its lease."""


Dispatch = Callable[[Assignment], Awaitable[CouncilResult]]


class KV(Protocol):
    def put(self, key: str, value: bytes) -> None: ...

    def get(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str) -> list[str]: ...


class MemoryKV:
    """A KV in this process (the tests; a store that need not survive its process)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def put(self, key: str, value: bytes) -> None:
        self.data[key] = bytes(value)

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        return [k for k in self.data if k.startswith(prefix)]


class RayKV:
    """Ray's internal KV (kept by the GCS, so it outlives every actor), in a namespace of its own."""

    def __init__(self, namespace: str):
        from ray.experimental import internal_kv

        self._kv, self._ns = internal_kv, namespace

    def put(self, key: str, value: bytes) -> None:
        self._kv._internal_kv_put(key, value, overwrite=True, namespace=self._ns)

    def get(self, key: str) -> bytes | None:
        return self._kv._internal_kv_get(key, namespace=self._ns)

    def delete(self, key: str) -> None:
        self._kv._internal_kv_del(key, namespace=self._ns)

    def keys(self, prefix: str) -> list[str]:
        return [k.decode() for k in self._kv._internal_kv_list(prefix, namespace=self._ns)]


class WriteBehind:
    """A KV whose writes run on one thread of their own, in order, so the store's event loop
    never waits on the GCS for an event or a checkpoint (a synchronous write per event made
    the store the service's bottleneck under load). Reads see every earlier write; `flush`
    waits for all writes so far — a submission is answered only once it is written."""

    def __init__(self, kv: KV):
        self._kv = kv
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="task-store-kv")
        self._last: Future | None = None

    def _write(self, fn, *args) -> None:
        self._last = self._writer.submit(fn, *args)
        self._last.add_done_callback(_log_failed_write)

    def put(self, key: str, value: bytes) -> None:
        self._write(self._kv.put, key, value)

    def delete(self, key: str) -> None:
        self._write(self._kv.delete, key)

    def get(self, key: str) -> bytes | None:
        self._drain()
        return self._kv.get(key)

    def keys(self, prefix: str) -> list[str]:
        self._drain()
        return self._kv.keys(prefix)

    async def flush(self) -> None:
        if self._last is not None:
            await asyncio.wrap_future(self._last)

    def _drain(self) -> None:
        if self._last is not None:
            self._last.result()


def _log_failed_write(done: Future) -> None:
    if done.exception() is not None:
        log.error("task store: a write to the KV failed: %s", done.exception())


class StoredTask(TaskStatus):
    """A task record as the KV keeps it: its status, and what it takes to run it again (its
    events and checkpoint are keys of their own)."""

    tenant: str
    request: TaskRequest
    idempotency_key: str | None = None
    attempts: int = 0


class TaskStore:
    def __init__(self, config: CouncilConfig, dispatch: Dispatch, kv: KV | None = None,
                 lease_s: float = LEASE_S):
        server = config.server
        self._dispatch = dispatch
        self.kv = kv if kv is not None else MemoryKV()
        self.lease_s = lease_s
        self.work = WorkCounter()
        self.registry = TaskRegistry(
            self._run, max_running=config.planner.max_concurrency, max_queued=server.max_queued,
            on_end=self._ended, on_event=self._recorded,
            max_running_per_tenant=server.max_running_per_key,
            max_queued_per_tenant=server.max_queued_per_key,
            on_forget=self._forget,
        )
        self._attempts: dict[str, int] = {}
        self._leases: dict[str, tuple[int, float]] = {}  # task -> (attempt, when it expires)
        self._checkpoints: dict[str, str] = {}
        # task -> (the attempt that has reported, set once that attempt's run is over)
        self._released: dict[str, tuple[int, asyncio.Event]] = {}

    # -- persistence -----------------------------------------------------------------------------
    def load(self) -> int:
        """Take back every task the KV holds (after a restart); returns how many."""
        stored = []
        for key in self.kv.keys("t:"):
            raw = self.kv.get(key)
            if raw is not None:
                stored.append(StoredTask.model_validate_json(raw))
        for task in sorted(stored, key=lambda t: t.created):
            events = sorted((TaskEvent.model_validate_json(raw) for key in self.kv.keys(f"e:{task.id}:")
                             if (raw := self.kv.get(key)) is not None), key=lambda e: e.seq)
            record = TaskRecord(id=task.id, request=task.request, tenant=task.tenant, created=task.created,
                                status=task.status, started=task.started, finished=task.finished,
                                result=task.result, error=task.error, events=events,
                                idempotency_key=task.idempotency_key)
            self._attempts[task.id] = task.attempts
            checkpoint = self.kv.get(f"c:{task.id}")
            if checkpoint is not None:
                self._checkpoints[task.id] = checkpoint.decode()
            self.registry.restore(record)
        if stored:
            log.warning("task store: %d task(s) taken back, %d to run again", len(stored),
                        sum(1 for t in stored if t.status in ("queued", "running")))
        return len(stored)

    def _save(self, record: TaskRecord) -> None:
        stored = StoredTask(**record.view().model_dump(), tenant=record.tenant, request=record.request,
                            idempotency_key=record.idempotency_key, attempts=self._attempts.get(record.id, 0))
        self.kv.put(f"t:{record.id}", stored.model_dump_json().encode())

    def _recorded(self, record: TaskRecord, event: TaskEvent) -> None:
        self.kv.put(f"e:{record.id}:{event.seq:08d}", event.model_dump_json().encode())
        if event.type in ("queued", "running", "resumed") or event.terminal:
            self._save(record)

    def _ended(self, record: TaskRecord) -> None:
        self.work.task_ended(record.request.strategy, record.status, record.result)
        self._checkpoints.pop(record.id, None)
        self._leases.pop(record.id, None)
        self._released.pop(record.id, None)
        self.kv.delete(f"c:{record.id}")

    def _forget(self, record: TaskRecord) -> None:
        self._attempts.pop(record.id, None)
        for key in [f"t:{record.id}", f"c:{record.id}", *self.kv.keys(f"e:{record.id}:")]:
            self.kv.delete(key)

    # -- the client's side -------------------------------------------------------------------------
    def submit(self, request: TaskRequest, task_id: str | None = None, tenant: str = ANONYMOUS,
               idempotency_key: str | None = None) -> TaskStatus:
        """Queue a task (QueueFull beyond the bounds; the same task again for a repeated
        `idempotency_key` or a repeated `task_id` of the same submission, which is what a
        retried call after a restart of this store looks like)."""
        if task_id is not None:
            existing = self.registry.find(task_id)
            if existing is not None and existing.tenant == tenant and existing.request == request:
                return existing.view()
        return self.registry.submit(request, task_id, tenant, idempotency_key).view()

    async def flush(self) -> None:
        """Every write so far is in the KV (when the KV writes behind)."""
        flush = getattr(self.kv, "flush", None)
        if flush is not None:
            await flush()

    # -- the runner's side -------------------------------------------------------------------------
    def progress(self, task_id: str, attempt: int, events: list[tuple[str, dict]] = (),
                 checkpoint: str | None = None) -> bool:
        """A runner's report: its events in order and its latest checkpoint. Renews its lease;
        False when the task is no longer this attempt's (the runner must stop)."""
        lease = self._leases.get(task_id)
        record = self.registry.find(task_id)
        if lease is None or lease[0] != attempt or record is None or record.done:
            return False
        self._leases[task_id] = (attempt, time.monotonic() + self.lease_s)
        if self._released.get(task_id, (None,))[0] != attempt:
            self._released[task_id] = (attempt, asyncio.Event())
        for kind, data in events:
            self.registry.emit(record, kind, **data)
        if checkpoint is not None:
            self._checkpoints[task_id] = checkpoint
            self.kv.put(f"c:{task_id}", checkpoint.encode())
        return True

    def released(self, task_id: str, attempt: int) -> None:
        """A runner's last word on an attempt: its run is over, and what it held (the task's
        particles on the follower replicas) is let go."""
        entry = self._released.get(task_id)
        if entry is not None and entry[0] == attempt:
            entry[1].set()

    async def _run(self, record: TaskRecord, emit) -> CouncilResult:
        while True:
            attempt = self._attempts.get(record.id, 0) + 1
            if attempt > MAX_ATTEMPTS:
                raise Unavailable(f"the task lost {MAX_ATTEMPTS} runners in a row and was given up; "
                                  "submit it again")
            self._attempts[record.id] = attempt
            checkpoint = self._checkpoints.get(record.id)
            if attempt > 1:
                emit("resumed", message=f"attempt {attempt}: " + (
                    "continuing from its last checkpoint" if checkpoint else "starting again"))
            self._save(record)
            self._leases[record.id] = (attempt, time.monotonic() + self.lease_s)
            trace = [e.round for e in record.events if e.type == "round" and e.round is not None] if checkpoint else []
            call = asyncio.ensure_future(self._dispatch(Assignment(
                task_id=record.id, attempt=attempt, tenant=record.tenant, request=record.request,
                checkpoint=checkpoint, trace=trace)))
            try:
                return await self._watch(record.id, call)
            except RunnerLost as exc:
                log.warning("task %s: %s; dispatching it again", record.id, exc)
            except asyncio.CancelledError:
                await _stop(call)
                entry = self._released.get(record.id)
                if entry is not None and entry[0] == attempt:  # the run began: wait for it to let go
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(entry[1].wait(), RELEASE_WAIT_S)
                raise
            finally:
                await _stop(call)  # cancelled, or its runner gone quiet

    async def _watch(self, task_id: str, call: asyncio.Future) -> CouncilResult:
        """The runner's answer, unless its lease runs out first (RunnerLost)."""
        while True:
            remaining = self._leases[task_id][1] - time.monotonic()
            if remaining <= 0:
                raise RunnerLost(f"its runner reported nothing for {self.lease_s:g}s")
            done, _ = await asyncio.wait([call], timeout=remaining)
            if done:
                try:
                    return call.result()
                except BaseException as exc:
                    if _runner_died(exc):
                        raise RunnerLost(f"its runner died ({type(exc).__name__})") from None
                    raise

    # -- reading -----------------------------------------------------------------------------------
    def depth(self) -> dict[str, int]:
        return self.registry.depth()


async def _stop(call: asyncio.Future) -> None:
    if not call.done():
        call.cancel()
        await asyncio.wait([call], timeout=10)


def _runner_died(exc: BaseException) -> bool:
    """An actor death (the runner's replica) rather than the task's own failure."""
    import sys

    ray_exceptions = sys.modules.get("ray.exceptions")
    return ray_exceptions is not None and isinstance(exc, ray_exceptions.RayActorError)


class ProgressReporter:
    """A runner's side of `progress`: its events and latest checkpoint, sent in order by one
    sender with at most one call in flight (so a slow store never slows the rounds, and only
    the newest checkpoint travels); a heartbeat renews the lease when there is nothing to
    say. When the store answers that the task is no longer this attempt's, `on_lost` runs.

        reporter = ProgressReporter(lambda ev, cp: store.progress.remote(tid, attempt, ev, cp), 10, task.cancel)
    """

    def __init__(self, send: Callable[[list, str | None], Awaitable[bool]], heartbeat_s: float,
                 on_lost: Callable[[], None]):
        self._send, self._heartbeat_s, self._on_lost = send, heartbeat_s, on_lost
        self._events: list[tuple[str, dict]] = []
        self._checkpoint = None
        self._wake = asyncio.Event()
        self._closing = False
        self._sender = asyncio.get_running_loop().create_task(self._loop())

    def emit(self, kind: str, **data) -> None:
        self._events.append((kind, data))
        self._wake.set()

    def checkpoint(self, checkpoint: BaseModel) -> None:
        self._checkpoint = checkpoint  # serialised when sent: a newer one may replace it first
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self._heartbeat_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            events, self._events = self._events, []
            checkpoint, self._checkpoint = self._checkpoint, None
            try:
                kept = await self._send(events, checkpoint.model_dump_json() if checkpoint is not None else None)
            except Exception as exc:  # noqa: BLE001 - no store to report to: nobody wants the run
                log.warning("progress could not be reported (%s); stopping the run", exc)
                kept = False
            if not kept:
                self._on_lost()
                return
            if self._closing and not self._events and self._checkpoint is None:
                return

    async def close(self) -> None:
        """Send what is left, then stop (before the runner answers, so that every event is
        recorded ahead of the result)."""
        self._closing = True
        self._wake.set()
        try:
            await asyncio.shield(self._sender)
        except asyncio.CancelledError:
            self._sender.cancel()
            raise
