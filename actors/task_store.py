"""TaskStoreActor: the detached, restartable actor that keeps the service's tasks.

A thin Ray shell around `cluster/task_store.py`'s `TaskStore`: detached and named per app
(`<app>-tasks`), restarted by Ray when it dies (`max_restarts=-1`, calls in flight retried),
its state written through to Ray's internal KV and read back by the next instance. It
dispatches each task to the app's `CouncilRunner` Serve deployment through a handle, and
reports the load it carries to the pool controller, which scales on it.
"""

from __future__ import annotations

import asyncio
import logging

import ray
from council_sdk.types import CouncilResult, Health, TaskEvent, TaskRequest, TaskStatus

from actors.pool_controller import controllers_for
from cluster.config import ANONYMOUS, CouncilConfig
from cluster.metrics import WorkStats
from cluster.pool import NAMESPACE
from cluster.pools import pools_health
from cluster.runner import check_runnable
from cluster.task_store import Assignment, RayKV, TaskStore, WriteBehind

log = logging.getLogger(__name__)

LOAD_REPORT_S = 1.0


class TaskStoreImpl:
    def __init__(self, config: CouncilConfig | dict, app: str, runner):
        self.config = CouncilConfig.model_validate(config)
        self.app = app
        self._runner = runner  # the app's CouncilRunner deployment (a Serve handle)
        self._controllers = controllers_for(self.config, app)
        self.store = TaskStore(self.config, self._dispatch, WriteBehind(RayKV(f"council-{app}")))
        self._loaded = False
        self._reporter: asyncio.Task | None = None

    def _ready(self) -> TaskStore:
        """The store, with what a previous life of this actor left taken back (first call)."""
        if not self._loaded:
            self._loaded = True
            self.store.load()
            self._reporter = asyncio.get_running_loop().create_task(self._report_load())
        return self.store

    async def _dispatch(self, assignment: Assignment) -> CouncilResult:
        response = self._runner.run_task.remote(assignment)
        try:
            return await response
        except asyncio.CancelledError:
            response.cancel()  # the task was cancelled, or its runner lost its lease
            raise

    async def _report_load(self) -> None:
        while True:
            depth = self.store.depth()
            # Every pool scales on the whole queue: which pool a queued task needs is known
            # only once its route is chosen.
            for controller in self._controllers.values():
                controller.report_load.remote(f"{self.app}-tasks", depth["queued"] + depth["running"])
            await asyncio.sleep(LOAD_REPORT_S)

    # -- clients (the ingress) ------------------------------------------------------------------
    async def submit(self, request: TaskRequest, task_id: str | None = None, tenant: str = ANONYMOUS,
                     idempotency_key: str | None = None) -> TaskStatus:
        check_runnable(request, self.config)  # a request that cannot run is refused now, not queued
        status = self._ready().submit(request, task_id, tenant, idempotency_key)
        await self.store.flush()  # accepted means written: a crash after the 202 loses nothing
        return status

    async def status(self, task_id: str, tenant: str = ANONYMOUS) -> TaskStatus:
        return self._ready().registry.get(task_id, tenant).view()

    async def wait(self, task_id: str, timeout: float | None = None, tenant: str = ANONYMOUS) -> TaskStatus:
        return (await self._ready().registry.wait(task_id, timeout, tenant)).view()

    async def events(self, task_id: str, after: int = 0, timeout: float = 15.0,
                     tenant: str = ANONYMOUS) -> list[TaskEvent]:
        return await self._ready().registry.events(task_id, after, timeout, tenant)

    async def abandon(self, task_id: str, tenant: str = ANONYMOUS) -> None:
        self._ready().registry.abandon(task_id, tenant)

    async def cancel(self, task_id: str, tenant: str = ANONYMOUS) -> TaskStatus:
        record = self._ready().registry.cancel(task_id, tenant)
        if record.job is not None:
            await asyncio.wait([record.job], timeout=30)  # particles freed before we answer
        return record.view()

    async def _tables(self) -> dict:
        tables = await asyncio.gather(*(c.table.remote(-1, 0) for c in self._controllers.values()))
        return dict(zip(self._controllers, tables))

    async def health(self) -> Health:
        depth = self._ready().depth()
        return pools_health(self.config, await self._tables(), depth["queued"], depth["running"])

    async def stats(self, generating: int = 0) -> WorkStats:
        store = self._ready()
        depth = store.depth()
        return store.work.snapshot(await self._tables(), queued=depth["queued"], running=depth["running"],
                                   generating=generating, tenants=store.registry.depth_by_tenant())

    # -- runners -------------------------------------------------------------------------------
    async def progress(self, task_id: str, attempt: int, events: list = (), checkpoint: str | None = None) -> bool:
        return self._ready().progress(task_id, attempt, list(events), checkpoint)

    async def released(self, task_id: str, attempt: int) -> None:
        self._ready().released(task_id, attempt)

    async def ping(self) -> bool:
        return True


# Detached and named: it belongs to no process that can die. No CPU of its own.
TaskStoreActor = ray.remote(num_cpus=0, max_concurrency=10_000, max_restarts=-1,
                            max_task_retries=-1)(TaskStoreImpl)


def store_name(app: str) -> str:
    return f"{app}-tasks"


def store_for(config: CouncilConfig, app: str, runner):
    """The task store of `app`, created on first use."""
    return TaskStoreActor.options(name=store_name(app), namespace=NAMESPACE, lifetime="detached",
                                  get_if_exists=True).remote(config, app, runner)


def store_of(app: str):
    """The task store of `app`, which exists (a runner reporting to it)."""
    return ray.get_actor(store_name(app), namespace=NAMESPACE)


def stop_store(app: str) -> bool:
    """Stop `app`'s task store and forget its tasks; returns whether there was one."""
    try:
        store = ray.get_actor(store_name(app), namespace=NAMESPACE)
    except ValueError:
        return False
    ray.kill(store, no_restart=True)
    kv = RayKV(f"council-{app}")
    for prefix in ("t:", "e:", "c:"):
        for key in kv.keys(prefix):
            kv.delete(key)
    return True
