"""PoolController: the detached, restartable actor that owns the follower replicas.

The control plane of the follower pool, shaped like Serve's controller: it holds the one
`FollowerPool` (`cluster/pool.py`) of the service — replicas, placement groups, health
checks, replacement, the scale policy — and publishes its `ReplicaTable`, which every runner
follows with a long poll (`cluster/pool_client.py`). It serves no request itself, so a
runner's crash never touches it, and its own crash (SIGKILL, OOM, a lost node) loses nothing:
Ray restarts it (`max_restarts=-1`), the calls that were in flight are retried
(`max_task_retries=-1`), and the new instance adopts the detached named replicas and groups
its previous life left instead of starting a second pool.

    controller = controller_for(cfg, "council")
    table = ray.get(controller.table.remote(-1, 0))

Each named follower pool of the config has its own controller (`controller_for(cfg, app,
"gemma")`), so one pool's crash, restart or scaling never touches another's. The pool named
`default` keeps the names a single-pool service always had (`council-pool`,
`council-follower-0.0`); another pool's actors carry its name (`council.gemma-pool`).
"""

from __future__ import annotations

import asyncio
import logging

import ray

from actors.follower import FollowerActor
from cluster.config import DEFAULT_POOL, CouncilConfig
from cluster.pool import NAMESPACE, FollowerPool, ReplicaTable

log = logging.getLogger(__name__)


class PoolControllerImpl:
    def __init__(self, config: CouncilConfig | dict, name: str):
        self.config = CouncilConfig.model_validate(config)
        self.pool = FollowerPool(FollowerActor, self.config, name=name)
        self._starting: asyncio.Task | None = None

    def _start(self) -> asyncio.Task:
        """The pool's start (or adoption), begun by the first call of this life; a start that
        failed (a replica that cannot start) is begun again by the next call."""
        if self._starting is None or (self._starting.done() and self._starting.exception() is not None):
            self._starting = asyncio.get_running_loop().create_task(self.pool.start(monitor=True))
        return self._starting

    async def start(self) -> ReplicaTable:
        """Returns once every replica was started (or adopted); raises PoolStartError if one
        could not be."""
        await asyncio.shield(self._start())
        return self.pool.snapshot()

    async def table(self, known_version: int = -1, timeout_s: float = 30.0,
                    known_epoch: str | None = None) -> ReplicaTable:
        self._start()
        return await self.pool.table(known_version, timeout_s, known_epoch)

    async def report_failure(self, index: int, generation: int, why: str) -> bool:
        self._start()
        return await self.pool.report_failure(index, generation, why)

    async def report_load(self, source: str, load: int) -> None:
        self._start()
        self.pool.report_load(source, load)

    async def replica_stats(self) -> list[dict]:
        return await self.pool.stats()

    async def ping(self) -> bool:
        return True

    async def shutdown(self) -> None:
        """Stop every replica and free the groups (the controller itself is killed next)."""
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        await self.pool.shutdown()


# No CPU of its own; calls are few (a long poll per runner, failure reports). Detached and
# named, so that it belongs to no process that can die, and restarted for ever.
PoolController = ray.remote(num_cpus=0, max_concurrency=1000, max_restarts=-1,
                            max_task_retries=-1)(PoolControllerImpl)


def pool_instance(app: str, pool: str = DEFAULT_POOL) -> str:
    """The name `pool`'s actors of `app` are called by (a dot cannot be in a pool's name)."""
    return app if pool == DEFAULT_POOL else f"{app}.{pool}"


def controller_name(app: str, pool: str = DEFAULT_POOL) -> str:
    return f"{pool_instance(app, pool)}-pool"


def controller_for(config: CouncilConfig, app: str = "council", pool: str | None = None):
    """The controller of `app`'s pool `pool` (default: the config's default pool), created on
    first use (any process may ask)."""
    pool = pool or config.default_pool
    return PoolController.options(name=controller_name(app, pool), namespace=NAMESPACE, lifetime="detached",
                                  get_if_exists=True).remote(config.for_pool(pool), pool_instance(app, pool))


def controllers_for(config: CouncilConfig, app: str = "council") -> dict:
    """Every pool's controller, by pool name, in the config's order."""
    return {name: controller_for(config, app, name) for name in config.pools}


def running_pools(app: str) -> list[str]:
    """The pools of `app` whose controllers are running, found by name."""
    found = []
    for entry in ray.util.list_named_actors(all_namespaces=True):
        name = entry.get("name", "") if isinstance(entry, dict) else entry
        if isinstance(entry, dict) and entry.get("namespace") != NAMESPACE:
            continue
        if name == controller_name(app):
            found.append(DEFAULT_POOL)
        elif name.startswith(f"{app}.") and name.endswith("-pool"):
            found.append(name[len(app) + 1:-len("-pool")])
    return found


def stop_controllers(app: str = "council", timeout_s: float = 60.0) -> list[str]:
    """Stop every pool of `app` (whatever config started them); returns their names."""
    return [pool for pool in running_pools(app) if stop_controller(app, timeout_s, pool)]


def stop_controller(app: str = "council", timeout_s: float = 60.0, pool: str = DEFAULT_POOL) -> bool:
    """Stop `app`'s pool `pool` and its controller, if there is one; returns whether there was."""
    try:
        controller = ray.get_actor(controller_name(app, pool), namespace=NAMESPACE)
    except ValueError:
        return False
    try:
        ray.get(controller.shutdown.remote(), timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - killed below all the same
        log.warning("the pool controller of %s did not shut down cleanly: %s", app, exc)
    ray.kill(controller, no_restart=True)
    return True
