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
from actors.engines.base import EngineStats, GenerateRequest, GenerateResult
from cluster.config import EngineConfig


class ReplicaStats(BaseModel):
    replica_id: str
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

    async def stats(self) -> ReplicaStats:
        return ReplicaStats(
            replica_id=self.replica_id,
            pid=os.getpid(),
            host=socket.gethostname(),
            uptime_s=time.time() - self._started,
            rss_bytes=psutil.Process().memory_info().rss,
            engine=self.engine.stats(),
        )


# The class the pool starts; resources and placement are applied with `.options()` there.
FollowerActor = ray.remote(max_restarts=0)(FollowerReplica)
