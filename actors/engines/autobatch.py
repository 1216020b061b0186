"""Merge concurrent async callers into batches for one blocking worker function.

Callers `await batcher.submit(item)`. A single loop collects items: it flushes when
`max_batch` are queued, when as many are queued as are expected back (the previous batch plus
those that queued while it ran: the steady state of N callers stepping in lock-step), or when
no new item has arrived for `wait_ms`. The batch runs in one dedicated thread, so the event loop keeps
accepting calls (and the next batch fills) while the model computes, and the model is only
ever touched by that one thread (pass the process's torch thread: see torch_thread.py).

`run_batch(items)` returns one result per item; an item's result may be an Exception
instance, which is raised to that caller alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence


class AutoBatcher:
    MAX_WAIT_FACTOR = 25  # never hold a batch longer than 25 gaps

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
        self._queue: deque[tuple[Any, asyncio.Future]] = deque()
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="autobatch")
        self._expected = 1
        self.batches = 0
        self.items = 0

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    async def submit(self, item: Any) -> Any:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._arrived = asyncio.Event()
            self._task = loop.create_task(self._loop())
        future = loop.create_future()
        self._queue.append((item, future))
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
            hard_deadline = loop.time() + self.MAX_WAIT_FACTOR * self.wait_s
            while len(self._queue) < min(self.max_batch, self._expected):
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
                item, future = self._queue.popleft()
                if not future.done():  # a cancelled caller needs no compute
                    batch.append((item, future))
            if not batch:
                continue
            self.batches += 1
            self.items += len(batch)
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, [item for item, _ in batch]
                )
            except Exception as exc:  # the whole batch failed: every caller hears why
                results = [exc] * len(batch)
            # Callers of this batch will come back, and so will those that queued meanwhile.
            self._expected = max(1, len(batch) + len(self._queue))
            for (_, future), result in zip(batch, results):
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
        for _, future in self._queue:
            if not future.done():
                future.set_exception(RuntimeError("engine closed"))
        self._queue.clear()
        if self._owns_executor:
            self._executor.shutdown(wait=False)
