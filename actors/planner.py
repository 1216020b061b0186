"""PlannerActor: the one actor that owns planning and runs each request's strategy.

It starts the follower pool, then serves `run(RunRequest)` calls concurrently (Ray runs an
async actor's calls on one event loop), at most `planner.max_concurrency` at a time; the rest
wait their turn in order. The LLM planner's outages never fail a request the fallback chain
can answer (see `planner/planning.py`).

    planner = PlannerActor.options(name="council-planner").remote(cfg.model_dump())
    ray.get(planner.start.remote())
    result = ray.get(planner.run.remote(RunRequest(prompt="Write an acrostic for HOPE.")))
"""

from __future__ import annotations

import asyncio

import ray
from council_sdk.types import CouncilResult, Health

from actors.follower import FollowerActor
from cluster.config import CouncilConfig
from cluster.pool import FollowerPool
from cluster.runner import CouncilRunner, RunRequest


class CouncilPlanner:
    def __init__(self, config: CouncilConfig | dict):
        self.config = CouncilConfig.model_validate(config)
        self.pool = FollowerPool(FollowerActor, self.config)
        self.runner = CouncilRunner(self.config, self.pool.replica_handles)
        self._slots = asyncio.Semaphore(self.config.planner.max_concurrency)
        self._started = False
        self._starting = asyncio.Lock()
        self.served = 0

    async def start(self) -> Health:
        """Start the follower pool (idempotent); returns once every replica is ready."""
        async with self._starting:
            if not self._started:
                await self.pool.start(monitor=True)
                self._started = True
        return await self.health()

    async def run(self, request: RunRequest | dict) -> CouncilResult:
        request = RunRequest.model_validate(request)
        await self.start()
        async with self._slots:
            result = await self.runner.run(request)
        self.served += 1
        return result

    async def health(self) -> Health:
        return Health(status="ok" if self.pool.live() else "starting",
                      replicas_live=len(self.pool.live()), replicas=self.config.pool.replicas)

    async def shutdown(self) -> None:
        await self.pool.shutdown()


# The planner itself needs no CPU of its own: the followers do the work. max_concurrency is
# Ray's cap on queued calls; the semaphore above is the real limit on running requests.
PlannerActor = ray.remote(num_cpus=0, max_concurrency=10_000, max_restarts=0)(CouncilPlanner)
