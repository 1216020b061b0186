"""PlannerActor: the one actor that owns planning and runs each request's strategy.

It starts the follower pool, then serves requests concurrently (Ray runs an async actor's
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

from actors.follower import FollowerActor
from cluster.autoscale import ScalePolicy
from cluster.config import ANONYMOUS, CouncilConfig
from cluster.metrics import WorkCounter, WorkStats
from cluster.pool import FollowerPool
from cluster.runner import CouncilRunner, RunRequest, check_runnable
from cluster.tasks import Emit, Gate, TaskRegistry

log = logging.getLogger(__name__)


class CouncilPlanner:
    def __init__(self, config: CouncilConfig | dict):
        self.config = CouncilConfig.model_validate(config)
        self.pool = FollowerPool(FollowerActor, self.config)
        self.runner = CouncilRunner(self.config, self.pool.replica_handles,
                                    followers=self.pool)
        self._slots = asyncio.Semaphore(self.config.planner.max_concurrency)
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
        self._scaler: asyncio.Task | None = None

    async def start(self) -> Health:
        """Start the follower pool (idempotent); returns once every replica is ready."""
        async with self._starting:
            if not self._started:
                await self.pool.start(monitor=True)
                self._started = True
                if self.config.pool.elastic:
                    self._scaler = asyncio.create_task(self._autoscale())
        return await self.health()

    # -- direct calls ------------------------------------------------------------------------
    async def run(self, request: RunRequest | dict) -> CouncilResult:
        request = RunRequest.model_validate(request)
        await self.start()
        self._direct += 1
        try:
            async with self._slots:
                return await self.runner.run(request)
        finally:
            self._direct -= 1

    # -- tasks -------------------------------------------------------------------------------
    async def submit(self, request: TaskRequest | dict, task_id: str | None = None,
                     tenant: str = ANONYMOUS) -> TaskStatus:
        """Queue a task of `tenant` (raises QueueFull when the queue is at its bound)."""
        request = TaskRequest.model_validate(request)
        check_runnable(request)  # a request that cannot run is refused now, not queued
        return self.tasks.submit(request, task_id, tenant).view()

    async def _run_task(self, request: TaskRequest, emit: Emit) -> CouncilResult:
        await self.start()
        return await self.runner.run_task(request, emit)

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
    async def health(self) -> Health:
        live = len(self.pool.live())
        depth = self.tasks.depth()
        return Health(status="ok" if live else "starting", replicas_live=live,
                      replicas=len(self.pool.replicas), queued=depth["queued"],
                      running=depth["running"])

    async def stats(self) -> WorkStats:
        health = await self.health()
        return self.work.snapshot(queued=health.queued, running=health.running,
                                  replicas_live=health.replicas_live, replicas=health.replicas,
                                  scaled_up=self.pool.scaled_up, scaled_down=self.pool.scaled_down,
                                  generating=self.generating.total,
                                  tenants=self.tasks.depth_by_tenant())

    async def replica_stats(self) -> list:
        """Each replica's stats (how many requests still hold particles there, among others)."""
        return await self.pool.stats()

    async def generate(self, request, tenant: str = ANONYMOUS):
        """Plain sampling from the pool (`POST /v1/generate`); raises QueueFull beyond
        `server.max_generate` calls in flight (`server.max_generate_per_key` of one tenant)."""
        with self.generating.enter(tenant):
            await self.start()
            return await self.pool.generate(request)

    async def _autoscale(self, period_s: float = 1.0) -> None:
        """Grow or shrink the pool with the load (see cluster/autoscale.py)."""
        policy = ScalePolicy.from_pool(self.config.pool)
        while True:
            await asyncio.sleep(period_s)
            depth = self.tasks.depth()
            live = len([r for r in self.pool.live() if not r.draining])
            step = policy.decide(depth["queued"] + depth["running"] + self._direct, live)
            try:
                if step > 0:
                    await self.pool.scale_up()
                elif step < 0:
                    await self.pool.retire()
            except Exception as exc:  # noqa: BLE001 - a failed step is retried next period
                log.warning("autoscaling step %+d failed: %s", step, exc)

    async def shutdown(self) -> None:
        if self._scaler is not None:
            self._scaler.cancel()
        await self.pool.shutdown()


# The planner itself needs no CPU of its own: the followers do the work. max_concurrency is
# Ray's cap on concurrent calls; the registry and the semaphore above are the real limits.
PlannerActor = ray.remote(num_cpus=0, max_concurrency=10_000, max_restarts=0)(CouncilPlanner)
