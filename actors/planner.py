"""PlannerActor: plans and runs each request's strategy over the follower pool.

The pool itself belongs to the detached `PoolController` (`actors/pool_controller.py`); the
planner follows its replica table (`cluster/pool_client.py`), reports the load it carries
(the controller scales on it) and the failures it meets. So a planner that dies and is
restarted by Ray (`max_restarts=-1`) finds the same pool, and a pool replica that dies is the
controller's to replace. The planner serves requests concurrently (Ray runs an async actor's
calls on one event loop): `run(RunRequest)` answers directly; `submit(TaskRequest)` queues a
task (`cluster/tasks.py`) whose progress can be read with `events` and which `cancel` stops,
freeing its particles on every replica. Each task belongs to the `tenant` that submitted it
(the service passes the API key's tenant to every call; `anonymous` by default), and the
registry answers UnknownTask for another tenant's. At most `planner.max_concurrency`
requests run at once (`server.max_running_per_key` of one tenant); `server.max_queued` more
may wait (`server.max_queued_per_key` of one tenant), beyond that `submit` raises QueueFull,
as `generate` does beyond `server.max_generate` calls in flight (`server.max_generate_per_key`
of one tenant). The LLM planner's outages never fail a request the fallback chain can answer
(`planner/planning.py`).

    planner = PlannerActor.options(name="council-planner").remote(cfg)
    ray.get(planner.start.remote())
    result = ray.get(planner.run.remote(RunRequest(prompt="Write an acrostic for HOPE.")))
"""

from __future__ import annotations

import asyncio
import logging

import ray
from council_sdk.types import CouncilResult, Health, TaskEvent, TaskRequest, TaskStatus

from actors.pool_controller import controllers_for, stop_controllers
from cluster.config import ANONYMOUS, CouncilConfig
from cluster.metrics import WorkCounter, WorkStats
from cluster.pool_client import PoolClient
from cluster.pools import Pools, UnknownPool, pools_health
from cluster.runner import CouncilRunner, RunRequest, check_runnable
from cluster.tasks import Emit, Gate, TaskRegistry

log = logging.getLogger(__name__)


LOAD_REPORT_S = 1.0


class CouncilPlanner:
    def __init__(self, config: CouncilConfig | dict, app: str = "council"):
        self.config = CouncilConfig.model_validate(config)
        self.app = app
        self.controllers = controllers_for(self.config, app)
        self.clients = {name: PoolClient(c, self.config.pools[name].pool) for name, c in self.controllers.items()}
        self.controller = self.controllers[self.config.default_pool]
        self.runner = CouncilRunner(self.config, pools=Pools.of_routers(self.clients, self.config.default_pool))
        self.work = WorkCounter()
        server = self.config.server
        self.tasks = TaskRegistry(
            self._run_task, max_running=self.config.planner.max_concurrency,
            max_queued=server.max_queued,
            on_end=lambda r: self.work.task_ended(r.request.strategy, r.status, r.result),
            max_running_per_tenant=server.max_running_per_key,
            max_queued_per_tenant=server.max_queued_per_key,
        )
        self.generating = Gate(server.max_generate, server.max_generate_per_key)
        self._started = False
        self._starting = asyncio.Lock()
        self._direct = 0  # `run` calls in flight (tasks are counted by the registry)
        self._reporter: asyncio.Task | None = None

    async def start(self) -> Health:
        """Follow the pool (idempotent); returns once every replica was started."""
        async with self._starting:
            if not self._started:
                # Raises PoolStartError if a replica cannot start.
                await asyncio.gather(*(c.start.remote() for c in self.controllers.values()))
                await asyncio.gather(*(client.wait_started(self.config.pools[name].pool.startup_timeout_s)
                                       for name, client in self.clients.items()))
                self._started = True
                self._reporter = asyncio.create_task(self._report_load())
        return await self.health()

    # -- direct calls ------------------------------------------------------------------------
    async def run(self, request: RunRequest | dict) -> CouncilResult:
        request = RunRequest.model_validate(request)
        await self.start()
        self._direct += 1
        try:
            async with self.tasks.slot():  # the tasks' bound: together never over max_concurrency
                return await self.runner.run(request)
        finally:
            self._direct -= 1

    # -- tasks -------------------------------------------------------------------------------
    async def submit(self, request: TaskRequest | dict, task_id: str | None = None,
                     tenant: str = ANONYMOUS) -> TaskStatus:
        """Queue a task of `tenant` (raises QueueFull when the queue is at its bound)."""
        request = TaskRequest.model_validate(request)
        check_runnable(request, self.config)  # a request that cannot run is refused now, not queued
        return self.tasks.submit(request, task_id, tenant).view()

    async def _run_task(self, record, emit: Emit) -> CouncilResult:
        await self.start()
        return await self.runner.run_task(record.request, emit)

    # Every call below answers UnknownTask for a task that is not `tenant`'s.
    async def status(self, task_id: str, tenant: str = ANONYMOUS) -> TaskStatus:
        return self.tasks.get(task_id, tenant).view()

    async def wait(self, task_id: str, timeout: float | None = None, tenant: str = ANONYMOUS) -> TaskStatus:
        return (await self.tasks.wait(task_id, timeout, tenant)).view()

    async def events(self, task_id: str, after: int = 0, timeout: float = 15.0,
                     tenant: str = ANONYMOUS) -> list[TaskEvent]:
        return await self.tasks.events(task_id, after, timeout, tenant)

    async def abandon(self, task_id: str, tenant: str = ANONYMOUS) -> None:
        """The client went away: cancel the task, even one whose submission is still on its way."""
        self.tasks.abandon(task_id, tenant)

    async def cancel(self, task_id: str, tenant: str = ANONYMOUS) -> TaskStatus:
        record = self.tasks.cancel(task_id, tenant)
        if record.job is not None:
            await asyncio.wait([record.job], timeout=30)  # particles freed before we answer
        return record.view()

    # -- health ------------------------------------------------------------------------------
    async def _tables(self) -> dict:
        for client in self.clients.values():
            if client.table is None:
                await client.start()  # the table, whether or not the pool has finished starting
        return {name: client.table for name, client in self.clients.items()}

    async def health(self) -> Health:
        depth = self.tasks.depth()
        return pools_health(self.config, await self._tables(), depth["queued"], depth["running"])

    async def stats(self) -> WorkStats:
        depth = self.tasks.depth()
        return self.work.snapshot(await self._tables(), queued=depth["queued"], running=depth["running"],
                                  generating=self.generating.total, tenants=self.tasks.depth_by_tenant())

    async def replica_stats(self) -> list:
        """Each replica's stats (how many requests still hold particles there, among others)."""
        return await self.controller.replica_stats.remote()

    async def generate(self, request, tenant: str = ANONYMOUS):
        """Plain sampling from the pool (`POST /v1/generate`); raises QueueFull beyond
        `server.max_generate` calls in flight (`server.max_generate_per_key` of one tenant)."""
        with self.generating.enter(tenant):
            await self.start()
            pool = getattr(request, "pool", None) or self.config.default_pool
            if pool not in self.clients:
                raise UnknownPool(f"there is no follower pool named {pool!r}; the pools are {', '.join(self.clients)}")
            return await self.clients[pool].generate(request)

    async def _report_load(self) -> None:
        """Tell the controller how many requests this planner carries (it scales on the sum)."""
        source = f"planner-{id(self):x}"
        while True:
            depth = self.tasks.depth()
            for controller in self.controllers.values():
                controller.report_load.remote(source, depth["queued"] + depth["running"] + self._direct)
            await asyncio.sleep(LOAD_REPORT_S)

    async def shutdown(self) -> None:
        """Stop the pool with its controller (the service is going away, not restarting)."""
        if self._reporter is not None:
            self._reporter.cancel()
        for client in self.clients.values():
            client.close()
        await asyncio.get_running_loop().run_in_executor(None, stop_controllers, self.app)


# The planner itself needs no CPU of its own: the followers do the work. max_concurrency is
# Ray's cap on concurrent calls; the registry's slots are the real limit.
# Restarted when it dies: the pool is not its to lose (the tasks it ran still are, for now).
PlannerActor = ray.remote(num_cpus=0, max_concurrency=10_000, max_restarts=-1)(CouncilPlanner)
