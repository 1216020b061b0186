"""PoolClient: a runner's view of the follower pool that a `PoolController` owns.

It keeps the controller's `ReplicaTable` current with a long poll (the controller answers
when the table's version moves, or every 30 s), routes calls over it (`cluster/routing.py`)
and reports the failures it sees back to the controller, which replaces the replica. Between
the report and the next table, the failed replica is already out of this client's view, so
a request never retries on it twice.

The controller can die and be restarted by Ray meanwhile: the poll then fails, is retried
with backoff, and the last table keeps serving (its replicas are detached, so they are very
likely still there).

    client = PoolClient(controller, cfg.pool)
    await client.start()
    handles = client.replica_handles()
"""

from __future__ import annotations

import asyncio
import logging

from ray.exceptions import RayActorError, RayTaskError

from cluster.config import PoolConfig
from cluster.pool import ReplicaTable
from cluster.routing import Replica, ReplicaRouter, cause_of

log = logging.getLogger(__name__)

POLL_TIMEOUT_S = 30.0


class PoolClient(ReplicaRouter):
    def __init__(self, controller, pool_config: PoolConfig):
        super().__init__()
        self._controller = controller
        self.pool_config = pool_config
        self.table: ReplicaTable | None = None
        self._replicas_now: list[Replica] = []
        self._by_slot: dict[tuple[int, int], Replica] = {}
        self._failed: set[tuple[int, int]] = set()  # reported by us, until the table agrees
        self._poller: asyncio.Task | None = None
        self._first = asyncio.Event()

    async def start(self, timeout_s: float | None = None) -> "PoolClient":
        """Begin following the table; returns once one has arrived."""
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll())
        await asyncio.wait_for(self._first.wait(), timeout_s)
        return self

    async def wait_started(self, timeout_s: float) -> ReplicaTable:
        """The table once the controller's pool has started (every replica was launched)."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        await self.start(timeout_s)
        while not (self.table and self.table.started):
            if asyncio.get_running_loop().time() > deadline:
                raise asyncio.TimeoutError("the follower pool did not start in time")
            await asyncio.sleep(0.05)
        return self.table

    def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None

    async def _poll(self) -> None:
        delay = 0.1
        while True:
            try:
                known = self.table.version if self.table else -1
                epoch = self.table.epoch if self.table else None
                table = await self._controller.table.remote(known, POLL_TIMEOUT_S, epoch)
                delay = 0.1
            except (RayActorError, RayTaskError) as exc:  # restarting: keep the last table
                log.warning("the pool controller is unavailable (%s); retrying in %.1fs", cause_of(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            if self.table is not None and self.table.started and not table.started:
                # A controller that was just restarted and has not adopted its replicas yet
                # knows less than we do: keep routing on the last table until it has.
                await asyncio.sleep(0.1)
                continue
            if self.table is None or (table.epoch, table.version) != (self.table.epoch, self.table.version):
                self._apply(table)

    def _apply(self, table: ReplicaTable) -> None:
        """Replicas as routers hold them: the same object for the same slot and generation,
        so calls in flight keep counting against it."""
        # A replica we reported stays out of our view while the table still calls it live.
        self._failed &= {(e.index, e.generation) for e in table.replicas if e.alive}
        by_slot: dict[tuple[int, int], Replica] = {}
        for entry in table.replicas:
            key = (entry.index, entry.generation)
            replica = self._by_slot.get(key) or Replica(entry.index, entry.handle, entry.generation)
            replica.handle = entry.handle
            replica.draining = entry.draining
            replica.alive = entry.alive and key not in self._failed
            by_slot[key] = replica
        self._by_slot = by_slot
        self._replicas_now = list(by_slot.values())
        self.table = table
        self._first.set()

    # -- routing ------------------------------------------------------------------------------
    def _replicas(self) -> list[Replica]:
        return self._replicas_now

    async def _lost(self, replica: Replica, error: BaseException, handle=None) -> None:
        if handle is not None and handle is not replica.handle:
            return
        key = (replica.index, replica.generation)
        if key in self._failed:
            return
        replica.alive = False
        self._failed.add(key)
        log.warning("%s failed (%s); reporting it to the pool controller", replica.instance_id, cause_of(error))
        try:
            await asyncio.wait_for(
                self._controller.report_failure.remote(replica.index, replica.generation, cause_of(error)), 10.0)
        except (RayActorError, RayTaskError, asyncio.TimeoutError) as exc:
            # The controller's own health checks find the replica as well.
            log.warning("could not report %s to the pool controller: %s", replica.instance_id, cause_of(exc))

    def _down_message(self) -> str:
        table = self.table
        if table is None:
            return "the follower pool is not ready yet; try again shortly"
        return (f"no follower replica is alive ({len(table.replicas)} configured, "
                f"{table.restarting} restarting); try again shortly")
