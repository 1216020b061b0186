"""Merge concurrent async callers into batches for one blocking worker function.

Callers `await batcher.submit(item)`. A single loop collects items: it flushes when
`max_batch` are queued, when as many are queued as are expected back (the previous batch plus
those that queued while it ran: the steady state of N callers stepping in lock-step), or when
no new item has arrived for `wait_ms`. The batch runs in one dedicated thread, so the event loop keeps
accepting calls (and the next batch fills) while the model computes, and the model is only
ever touched by that one thread (pass the process's torch thread: see torch_thread.py).

`run_batch(items)` returns one result per item; an item's result may be an Exception
instance, which is raised to that caller alone.

Callers may say who they are through `caller_group` (a context variable, so the engines'
signatures stay as they are): the particle host sets it to the confined worker a request's
particles run in. A worker sends all its particles' requests at once, after sampling every
one of them from the last batch, so two workers' requests arrive a worker's whole phase apart,
longer than any gap rule; without knowing who is still out, the first worker's requests left
alone and the two took turns, each computed at half size. So while a group of the last batch
has sent nothing yet, the loop waits for it up to `PATIENCE` of the last batch's compute time:
a batch computed apart costs most of another forward. Measured by `council bench concurrent`
(one replica, 32 particles in all): two requests of 16 ran at 0.81x the tokens/s of one
request of 32 with the gap rule alone and 1.14x waiting for groups (1.15x against 0.78x with
the library's program for a COLLIE-style request).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence


caller_group: contextvars.ContextVar = contextvars.ContextVar("caller_group", default=None)


class AutoBatcher:
    MAX_WAIT_FACTOR = 25  # never hold a batch longer than 25 gaps
    PATIENCE = 0.5  # of the last batch's compute time, waiting for a group of it to come back

    def __init__(
        self,
        run_batch: Callable[[list[Any]], Sequence[Any]],
        max_batch: int,
        wait_ms: float,
        executor: ThreadPoolExecutor | None = None,
    ):
        self._run_batch = run_batch
        self.max_batch = max_batch
        self.wait_s = wait_ms / 1000.0
        self._queue: deque[tuple[Any, asyncio.Future, Any]] = deque()  # (item, caller, its group)
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="autobatch")
        self._expected = 1
        self._last_groups: set = set()  # caller groups in the last batch
        self._compute_s = 0.0  # the last batch's
        self.wait_for_groups = True  # off: the gap rule alone, as before groups (for `council bench concurrent`)
        self.batches = 0
        self.items = 0
        self.busy_s = 0.0  # time spent computing batches: what a round's other work is measured against

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._arrived = asyncio.Event()
            self._task = loop.create_task(self._loop())
        future = loop.create_future()
        self._queue.append((item, future, caller_group.get()))
        self._arrived.set()
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            # Wait for company until `expected` callers are queued, or until none has
            # arrived for `wait_s` (the gap rule: callers returning from the last batch come
            # back one after another as each samples its token, so a fixed deadline from the
            # first arrival would split them), or for at most `MAX_WAIT_FACTOR * wait_s`.
            # While a caller group of the last batch has not come back at all, the gap rule is
            # suspended: it waits for that group, up to PATIENCE of a batch's compute time.
            hard_deadline = loop.time() + self.MAX_WAIT_FACTOR * self.wait_s
            patient_until = loop.time() + min(self.MAX_WAIT_FACTOR * self.wait_s,
                                              max(self.wait_s, self.PATIENCE * self._compute_s))
            while len(self._queue) < min(self.max_batch, self._expected):
                # The queue holds what arrived since the last batch was taken (and what it had
                # no room for), so it says which of that batch's groups have come back.
                if self.wait_for_groups and self._last_groups - {group for _, _, group in self._queue}:
                    remaining = patient_until - loop.time()
                else:
                    remaining = min(self.wait_s, hard_deadline - loop.time())
                if remaining <= 0:
                    break
                self._arrived.clear()
                try:
                    await asyncio.wait_for(self._arrived.wait(), remaining)
                except asyncio.TimeoutError:
                    break
            batch = []
            while self._queue and len(batch) < self.max_batch:
                item, future, group = self._queue.popleft()
                if not future.done():  # a cancelled caller needs no compute
                    batch.append((item, future, group))
            self._last_groups = {group for _, _, group in batch if group is not None}
            if not batch:
                continue
            self.batches += 1
            self.items += len(batch)
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, [item for item, _, _ in batch]
                )
            except Exception as exc:  # the whole batch failed: every caller hears why
                results = [exc] * len(batch)
            self._compute_s = time.perf_counter() - started
            self.busy_s += self._compute_s
            # Callers of this batch will come back, and so will those that queued meanwhile.
            self._expected = max(1, len(batch) + len(self._queue))
            for (_, future, _), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        for _, future, _ in self._queue:
            if not future.done():
                future.set_exception(RuntimeError("engine closed"))
        self._queue.clear()
        if self._owns_executor:
            self._executor.shutdown(wait=False)
