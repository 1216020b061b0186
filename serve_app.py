"""The Ray Serve application: `serve run serve_app:app`.

For now it exposes the follower pool itself (plain sampling); the planner, strategies and the
OpenAI-compatible API arrive with later issues. Config comes from the YAML file named by
$COUNCIL_CONFIG (optional) and `COUNCIL_*` variables, as everywhere else.

    curl -s localhost:8000/healthz
    curl -s localhost:8000/v1/generate -d '{"prompt": "Name a river.", "max_tokens": 16}'
"""


# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at run time.
import asyncio
import os
from typing import Optional

from fastapi import FastAPI, HTTPException
from ray import serve

from council_sdk.types import GenerateRequest, GenerateResult, Health

from actors.follower import FollowerActor
from cluster.config import CouncilConfig
from cluster.pool import FollowerPool, NoLiveReplicaError

api = FastAPI(title="Council", version="0.1.0")


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
@serve.ingress(api)
class CouncilIngress:
    def __init__(self, config: Optional[dict] = None):
        self.config = (
            CouncilConfig.from_dict(config)
            if config is not None
            else CouncilConfig.load(os.environ.get("COUNCIL_CONFIG"))
        )
        self._pool: Optional[FollowerPool] = None
        self._starting = asyncio.Lock()

    async def pool(self) -> FollowerPool:
        # Started on first use: Serve constructs deployments synchronously, the pool is async.
        async with self._starting:
            if self._pool is None:
                self._pool = await FollowerPool(FollowerActor, self.config).start()
        return self._pool

    @api.get("/healthz", response_model=Health)
    async def healthz(self) -> Health:
        live = len(self._pool.live()) if self._pool else 0
        return Health(status="ok", replicas_live=live, replicas=self.config.pool.replicas)

    @api.post("/v1/generate", response_model=GenerateResult)
    async def generate(self, request: GenerateRequest) -> GenerateResult:
        pool = await self.pool()
        try:
            return await pool.call("generate", request)
        except NoLiveReplicaError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from None
        except ValueError as exc:  # e.g. a prompt longer than the engine accepts
            raise HTTPException(status_code=422, detail=str(exc)) from None


app = CouncilIngress.bind()
