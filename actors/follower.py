"""FollowerReplica: one engine behind an async Ray actor.

Ray runs all of an async actor's calls on one event loop, so every concurrent caller (each
particle, each request) lands in the same engine autobatch. The pool (`cluster/pool.py`)
starts these with the resources from config and replaces them when they die.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Sequence

import numpy as np
import psutil
import ray
from pydantic import BaseModel

from actors.engines import create_engine
from actors.engines.base import EngineStats, GenerateRequest, GenerateResult, ScoreRequest, ScoreResult, score
from actors.particle_host import ParticleHost
from cluster.config import EngineConfig
from cluster.protocol import ParticleState, ProgramSpec


class ReplicaStats(BaseModel):
    replica_id: str
    smc_requests: int = 0
    pid: int
    host: str
    uptime_s: float
    rss_bytes: int
    engine: EngineStats


class FollowerReplica:
    def __init__(self, engine_config: EngineConfig | dict, replica_id: str):
        self.replica_id = replica_id
        self.config = EngineConfig.model_validate(engine_config)
        self._started = time.time()
        self.engine = create_engine(self.config)
        self._host: ParticleHost | None = None  # built on first SMC use (vocabulary masks)

    async def ready(self) -> str:
        """Returns once the engine is loaded (the constructor did that)."""
        return self.replica_id

    async def ping(self) -> bool:
        return True

    async def next_token_logprobs(self, token_ids: Sequence[int]) -> np.ndarray:
        return await self.engine.next_token_logprobs(token_ids)

    async def batch_next_token_logprobs(self, batch: Sequence[Sequence[int]]) -> list[np.ndarray]:
        return await self.engine.batch_next_token_logprobs(batch)

    async def generate(self, request: GenerateRequest | dict) -> GenerateResult:
        return await self.engine.generate(GenerateRequest.model_validate(request))

    async def score(self, request: ScoreRequest | dict) -> ScoreResult:
        return await score(self.engine, ScoreRequest.model_validate(request))

    # -- particles of SMC requests (driven by cluster/scheduler.py) --------------------------
    def _particles(self) -> ParticleHost:
        if self._host is None:
            self._host = ParticleHost(self.engine)
        return self._host

    async def spawn(self, req: str, spec: ProgramSpec, ids: list[int]) -> list[ParticleState]:
        return await self._particles().spawn(req, ProgramSpec.model_validate(spec), ids)

    async def advance(self, req: str, ids: list[int], save: bool = False) -> list[ParticleState]:
        return await self._particles().advance(req, ids, save)

    async def clone(self, req: str, plan: dict[int, list[int]]) -> None:
        await self._particles().clone(req, plan)

    async def export(self, req: str, ids: list[int]) -> list[bytes]:
        return await self._particles().export(req, ids)

    async def import_(self, req: str, spec: ProgramSpec, blobs: list[bytes], ids: list[int] | None = None) -> None:
        await self._particles().import_(req, ProgramSpec.model_validate(spec), blobs, ids)

    async def drop(self, req: str, ids: list[int] | None = None) -> None:
        await self._particles().drop(req, ids)

    async def stats(self) -> ReplicaStats:
        return ReplicaStats(
            replica_id=self.replica_id,
            pid=os.getpid(),
            host=socket.gethostname(),
            uptime_s=time.time() - self._started,
            rss_bytes=psutil.Process().memory_info().rss,
            smc_requests=self._host.active_requests() if self._host else 0,
            engine=self.engine.stats(),
        )


# The class the pool starts; resources and placement are applied with `.options()` there.
FollowerActor = ray.remote(max_restarts=0)(FollowerReplica)
