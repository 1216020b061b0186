"""FollowerPool: the follower replicas' control plane — start, watch, replace, scale, publish.

The pool never imports an actor class: the layer above hands it one (any Ray actor class
whose constructor takes `(engine_config, replica_id)` and that has `ready()` and `ping()`).
Replicas are placed in one placement group, a bundle each ({CPU, GPU} from config, SPREAD
across nodes by default); a replacement is started in the dead replica's bundle, so a restart
never competes with other work for resources; a replica added by scaling gets a group of its
own.

Two ways to own it:

- **In one process** (the CLI, the tests): `FollowerPool(cls, cfg)`; the replicas die with it.
- **Detached** (the service): `FollowerPool(cls, cfg, name="council")` inside the
  `PoolController` actor. Replicas and placement groups are then detached and named
  (`council-follower-<slot>.<generation>`, `council-pg`, `council-pg-<slot>`), so they outlive
  the controller, and a restarted controller *adopts* them (`start` finds the live named
  replicas and the groups) instead of starting a second pool whose resources the first
  still holds.

Whoever routes calls reads a versioned `ReplicaTable` (`table(known_version)` answers when
the version moves past the one the caller has: a long poll, like Serve's `LongPollHost`) and
reports failures back (`report_failure(slot, generation, why)`), which marks the replica
down and starts its replacement once, however many callers report it. The health monitor
pings every live replica on its own. The pool also routes calls itself (`cluster/routing.py`)
for the in-process case.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from cluster.autoscale import ScalePolicy
from cluster.config import CouncilConfig
from cluster.routing import NoLiveReplicaError, Replica, ReplicaRouter, cause_of
from cluster.task_store import RayKV

log = logging.getLogger(__name__)

NAMESPACE = "council"  # where the detached pool's named actors live
LOAD_FRESH_S = 5.0  # a load report older than this no longer counts (its reporter is gone)

__all__ = ["FollowerPool", "NoLiveReplicaError", "PoolStartError", "ReplicaEntry", "ReplicaTable"]


class PoolStartError(RuntimeError):
    pass


class _PoolHistory:
    """What a detached pool's table must not lose with its owner: each slot's generation
    (a replica that died with the owner leaves no name to find) and the counts. Kept in
    Ray's internal KV (the GCS outlives every actor); an in-process pool keeps none."""

    def __init__(self, name: str | None):
        self._key = f"{name}-pool-history" if name else None
        self._kv = RayKV(NAMESPACE) if name else None

    def load(self) -> dict:
        raw = self._kv.get(self._key) if self._kv else None
        return json.loads(raw) if raw else {}

    def save(self, pool: "FollowerPool") -> None:
        if self._kv:
            history = {"generations": {str(r.index): r.generation for r in pool.replicas},
                       "restarts": pool.restarts, "scaled_up": pool.scaled_up, "scaled_down": pool.scaled_down}
            self._kv.put(self._key, json.dumps(history).encode())

    def forget(self) -> None:
        if self._kv:
            self._kv.delete(self._key)


@dataclass(eq=False)
class _Slot(Replica):
    """The owner's view of one replica slot: a Replica plus its restart and its own group."""

    restarting: asyncio.Task | None = field(default=None, repr=False, compare=False)
    pg: PlacementGroup | None = field(default=None, repr=False, compare=False)  # added replicas


@dataclass(frozen=True)
class ReplicaEntry:
    """One row of the published table (plain data and an actor handle: it crosses actors)."""

    index: int
    generation: int
    handle: Any
    alive: bool
    draining: bool


@dataclass(frozen=True)
class ReplicaTable:
    version: int
    replicas: tuple[ReplicaEntry, ...]
    restarting: int = 0
    restarts: int = 0
    scaled_up: int = 0
    scaled_down: int = 0
    started: bool = False  # the first start (or adoption) is over
    epoch: str = ""  # this owner's life: versions count from 0 again after a restart

    @property
    def live(self) -> int:
        return sum(1 for r in self.replicas if r.alive)


class FollowerPool(ReplicaRouter):
    def __init__(self, actor_cls, config: CouncilConfig, name: str | None = None):
        super().__init__()
        self._actor_cls = actor_cls
        self.config = config
        self.pool_config = config.pool
        self.name = name
        self.replicas: list[_Slot] = [_Slot(i) for i in range(config.pool.replicas)]
        self._pg: PlacementGroup | None = None
        self._tasks: list[asyncio.Task] = []  # the monitor and the scaler
        self.restarts = 0
        self.scaled_up = 0
        self.scaled_down = 0
        self.started = False
        self.version = 0
        self.epoch = uuid.uuid4().hex[:12]
        self._moved = asyncio.Event()  # set (and replaced) whenever the table changes
        self._loads: dict[str, tuple[float, int]] = {}  # reporter -> (when, load)
        self._history = _PoolHistory(name)

    # -- names of the detached pool's parts ------------------------------------------------------
    def _actor_name(self, slot: _Slot, generation: int) -> str:
        return f"{self.name}-follower-{slot.index}.{generation}"

    def _group_name(self, slot: _Slot | None = None) -> str:
        return f"{self.name}-pg" if slot is None else f"{self.name}-pg-{slot.index}"

    # -- life cycle -------------------------------------------------------------------------
    def _bundle(self) -> dict[str, float]:
        pool = self.config.pool
        return {k: v for k, v in (("CPU", pool.num_cpus), ("GPU", pool.num_gpus)) if v > 0}

    async def _placement_group(self, count: int, name: str | None) -> PlacementGroup | None:
        pool, bundle = self.config.pool, self._bundle()
        if not bundle:
            return None
        options = {"name": name, "lifetime": "detached"} if name else {}
        pg = placement_group([bundle] * count, strategy=pool.placement_strategy, **options)
        try:
            await asyncio.wait_for(pg.ready(), pool.startup_timeout_s)
        except asyncio.TimeoutError:
            remove_placement_group(pg)
            raise PoolStartError(
                f"cannot place {count} follower replica(s) of {bundle} each within "
                f"{pool.startup_timeout_s:.0f}s; the cluster offers {ray.cluster_resources()}"
            ) from None
        return pg

    async def start(self, monitor: bool = True) -> "FollowerPool":
        """Start the replicas (a detached pool first adopts what a previous owner left)."""
        adopted = await self._adopt() if self.name else False
        if not adopted:
            self._pg = await self._placement_group(self.config.pool.replicas, self._group_name() if self.name else None)
        await asyncio.gather(*(self._launch(r) for r in self.replicas if not r.alive))
        self.started = True
        self._publish()
        if monitor:
            self._tasks.append(asyncio.create_task(self._monitor_loop()))
            if self.config.pool.elastic:
                self._tasks.append(asyncio.create_task(self._autoscale()))
        return self

    async def shutdown(self) -> None:
        for task in self._tasks:
            task.cancel()
        for r in self.replicas:
            if r.restarting is not None:
                r.restarting.cancel()
            if r.handle is not None:
                ray.kill(r.handle)
            r.alive = False
            if r.pg is not None:
                remove_placement_group(r.pg)
        if self._pg is not None:
            remove_placement_group(self._pg)
            self._pg = None
        self._publish()
        self._history.forget()  # a pool of this name started later starts its own history

    async def _launch(self, replica: _Slot) -> None:
        options: dict[str, Any] = {
            "num_cpus": self.config.pool.num_cpus,
            "num_gpus": self.config.pool.num_gpus,
        }
        group = replica.pg or (self._pg if replica.index < self.config.pool.replicas else None)
        if group is not None:
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=group,
                placement_group_bundle_index=0 if replica.pg is not None else replica.index,
            )
        if self.name:
            options.update(name=self._actor_name(replica, replica.generation + 1), namespace=NAMESPACE,
                           lifetime="detached")
        handle = self._actor_cls.options(**options).remote(
            self.config.engine.model_dump(), replica.replica_id
        )
        try:
            await asyncio.wait_for(handle.ready.remote(), self.config.pool.startup_timeout_s)
        except asyncio.TimeoutError:
            ray.kill(handle)
            raise PoolStartError(
                f"{replica.replica_id} did not become ready within "
                f"{self.config.pool.startup_timeout_s:.0f}s"
            ) from None
        except RayActorError as exc:
            ray.kill(handle)  # a named actor that failed must free its name
            raise PoolStartError(f"{replica.replica_id} failed to start: {cause_of(exc)}") from None
        replica.handle, replica.alive = handle, True
        # Counted with the launch, in the same saved table: a slot's second and later
        # replicas are restarts, whoever started them (this owner, or the next one adopting).
        self.restarts += replica.generation > 0
        replica.generation += 1
        self._publish()

    async def _adopt(self) -> bool:
        """Take over the replicas and groups a previous owner of this name left running
        (true if its placement group was found: the pool then exists and is only refilled)."""
        try:
            self._pg = ray.util.get_placement_group(self._group_name())
        except ValueError:
            self._pg = None
        found: dict[int, list[tuple[int, str]]] = {}
        pattern = re.compile(re.escape(f"{self.name}-follower-") + r"(\d+)\.(\d+)$")
        for entry in ray.util.list_named_actors(all_namespaces=True):
            match = pattern.match(entry["name"]) if entry.get("namespace") == NAMESPACE else None
            if match:
                found.setdefault(int(match[1]), []).append((int(match[2]), entry["name"]))
        if self._pg is None and not found:
            return False
        history = self._history.load()
        slots = {r.index: r for r in self.replicas}
        for index, generation in history.get("generations", {}).items():
            # A replica that died with the previous owner has no name left to find; its slot
            # keeps its generation, so the next one is a restart under a new name. (An added
            # slot found empty is dropped, as below; the scaler adds one again if needed.)
            if int(index) < self.config.pool.replicas or int(index) in found:
                slots.setdefault(int(index), _Slot(int(index))).generation = generation
        self.restarts = history.get("restarts", 0)
        self.scaled_up = history.get("scaled_up", 0)
        self.scaled_down = history.get("scaled_down", 0)
        for index, named in sorted(found.items()):
            named.sort(reverse=True)
            for _, stale in named[1:]:  # an older generation left behind by a crash: free it
                _kill_named(stale)
            generation, actor_name = named[0]
            slot = slots.get(index) or _Slot(index)
            slot.generation = max(slot.generation, generation)
            if index >= self.config.pool.replicas:
                try:
                    slot.pg = ray.util.get_placement_group(self._group_name(slot))
                except ValueError:
                    _kill_named(actor_name)  # an added replica without its group: not ours to keep
                    continue
            try:
                handle = ray.get_actor(actor_name, namespace=NAMESPACE)
                await asyncio.wait_for(handle.ping.remote(), self.config.pool.health_check_timeout_s)
            except (ValueError, RayActorError, GetTimeoutError, asyncio.TimeoutError):
                _kill_named(actor_name)
                slot.alive = False
            else:
                slot.handle, slot.alive = handle, True
            slots[index] = slot
        self.replicas = sorted(slots.values(), key=lambda r: r.index)
        if self._pg is None and self._bundle():
            self._pg = await self._placement_group(self.config.pool.replicas, self._group_name())
        self._free_orphan_groups()
        live = [r.replica_id for r in self.replicas if r.alive]
        log.warning("pool %s adopted %d live replica(s) %s; starting the rest", self.name, len(live), live)
        return True

    def _free_orphan_groups(self) -> None:
        """Remove this pool's added-replica groups that no slot uses (their replica was
        retired or lost while no owner was there to free them)."""
        used = {self._group_name(r) for r in self.replicas if r.pg is not None}
        prefix = f"{self.name}-pg-"
        for info in ray.util.placement_group_table().values():
            name = info.get("name") or ""
            if name.startswith(prefix) and name not in used and info.get("state") != "REMOVED":
                remove_placement_group(PlacementGroup(ray.PlacementGroupID(bytes.fromhex(info["placement_group_id"]))))

    # -- the published table -------------------------------------------------------------------
    def _publish(self) -> None:
        self._history.save(self)
        self.version += 1
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    def snapshot(self) -> ReplicaTable:
        return ReplicaTable(
            version=self.version,
            replicas=tuple(ReplicaEntry(r.index, r.generation, r.handle, r.alive, r.draining)
                           for r in self.replicas),
            restarting=sum(1 for r in self.replicas if r.restarting is not None),
            restarts=self.restarts, scaled_up=self.scaled_up, scaled_down=self.scaled_down,
            started=self.started, epoch=self.epoch,
        )

    async def table(self, known_version: int = -1, timeout_s: float = 30.0,
                    known_epoch: str | None = None) -> ReplicaTable:
        """The table once its version differs from `known_version` (at once if the caller's
        table is from another life of the owner, `known_epoch`), or after `timeout_s`."""
        if self.version == known_version and known_epoch in (None, self.epoch):
            moved = self._moved
            try:
                await asyncio.wait_for(moved.wait(), timeout_s)
            except asyncio.TimeoutError:
                pass
        return self.snapshot()

    # -- views ------------------------------------------------------------------------------
    def _replicas(self) -> list[Replica]:
        return self.replicas

    async def stats(self) -> list[dict]:
        """Each live replica's own report (queue depth, tokens, cache hit rate, memory)."""
        live = self.live()
        reports = await asyncio.gather(
            *(r.handle.stats.remote() for r in live), return_exceptions=True
        )
        out = []
        for r, rep in zip(live, reports):
            if isinstance(rep, BaseException):
                await self._lost(r, rep)
                continue
            out.append({"generation": r.generation, "inflight": r.inflight, **rep.model_dump()})
        return out

    # -- elasticity -------------------------------------------------------------------------
    def report_load(self, source: str, load: int) -> None:
        """`source` (a runner) has `load` requests queued or running; the scaler sums the
        fresh reports."""
        self._loads[source] = (time.monotonic(), int(load))

    def load(self) -> int:
        now = time.monotonic()
        self._loads = {k: v for k, v in self._loads.items() if now - v[0] < LOAD_FRESH_S}
        return sum(load for _, load in self._loads.values())

    async def _autoscale(self, period_s: float = 1.0) -> None:
        """Grow or shrink the pool with the reported load (see cluster/autoscale.py)."""
        policy = ScalePolicy.from_pool(self.config.pool)
        while True:
            await asyncio.sleep(period_s)
            live = len([r for r in self.live() if not r.draining])
            step = policy.decide(self.load(), live)
            try:
                if step > 0:
                    await self.scale_up()
                elif step < 0:
                    await self.retire()
            except Exception as exc:  # noqa: BLE001 - a failed step is retried next period
                log.warning("autoscaling step %+d failed: %s", step, exc)

    async def scale_up(self) -> Replica:
        """Add one replica (in a placement group of its own)."""
        replica = _Slot(max((r.index for r in self.replicas), default=-1) + 1)
        replica.pg = await self._placement_group(1, self._group_name(replica) if self.name else None)
        try:
            await self._launch(replica)
        except PoolStartError:
            if replica.pg is not None:
                remove_placement_group(replica.pg)
            raise
        self.replicas.append(replica)
        self.scaled_up += 1
        self._publish()
        log.info("pool grew to %d replicas (%s added)", len(self.replicas), replica.replica_id)
        return replica

    async def retire(self, replica: _Slot | None = None) -> Replica | None:
        """Drain one replica (the least busy) and remove it: it takes no new particles, the
        scheduler moves its particles to the others, and once none is left it is stopped."""
        candidates = [r for r in self.live() if not r.draining]
        if len(candidates) <= 1:
            return None
        replica = replica or min(candidates, key=lambda r: (r.inflight, -r.index))
        replica.draining = True
        self._publish()
        deadline = asyncio.get_running_loop().time() + self.config.pool.drain_timeout_s
        while replica.alive and asyncio.get_running_loop().time() < deadline:
            try:
                stats = await replica.handle.stats.remote()
                if stats.smc_requests == 0 and replica.inflight == 0:
                    break
            except RayActorError:
                break
            await asyncio.sleep(0.5)
        self.replicas.remove(replica)
        replica.alive = False
        ray.kill(replica.handle)
        if replica.pg is not None:
            remove_placement_group(replica.pg)
        self.scaled_down += 1
        self._publish()
        log.info("pool shrank to %d replicas (%s retired)", len(self.replicas), replica.replica_id)
        return replica

    # -- failures ---------------------------------------------------------------------------
    async def report_failure(self, index: int, generation: int, why: str) -> bool:
        """A router found replica `index` of `generation` dead or hung: replace it (once).
        Returns whether that replica was still taken to be live."""
        slot = next((r for r in self.replicas if r.index == index), None)
        if slot is None or slot.generation != generation:
            return False  # retired, or already replaced
        was_live = slot.alive
        await self._lost(slot, RuntimeError(why), slot.handle)
        return was_live

    async def _lost(self, replica: Replica, error: BaseException, handle=None) -> None:
        """Mark `replica` down and start its replacement (once, however many report it)."""
        if handle is not None and handle is not replica.handle:
            return  # the failed handle was already replaced
        assert isinstance(replica, _Slot)
        if not replica.alive and replica.restarting is not None:
            return
        log.warning("%s is down (%s); replacing it", replica.replica_id, cause_of(error))
        replica.alive = False
        replica.restarting = asyncio.create_task(self._replace(replica))
        self._publish()

    async def _replace(self, replica: _Slot) -> None:
        if replica.handle is not None:
            ray.kill(replica.handle)  # a hung replica must release its bundle (and its name)
        delay = 1.0
        while True:
            try:
                await self._launch(replica)
                log.warning("%s replaced (generation %d)", replica.replica_id, replica.generation)
                break
            except PoolStartError as exc:
                log.error("restarting %s failed: %s; retrying in %.0fs", replica.replica_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        replica.restarting = None
        self._publish()

    async def check_health(self) -> list[str]:
        """Ping every live replica; returns the ids found dead (their replacement is started)."""
        live = self.live()
        timeout = self.config.pool.health_check_timeout_s

        async def probe(r: Replica):
            try:
                await asyncio.wait_for(r.handle.ping.remote(), timeout)
                return None
            except (RayActorError, GetTimeoutError, asyncio.TimeoutError) as exc:
                return exc

        results = await asyncio.gather(*(probe(r) for r in live))
        dead = []
        for r, err in zip(live, results):
            if err is not None:
                await self._lost(r, err if err.args else TimeoutError("ping timed out"))
                dead.append(r.replica_id)
        return dead

    async def wait_all_alive(self, timeout: float) -> None:
        """Wait until every slot has a live replica (after failures), or raise TimeoutError."""
        async def settled():
            while not all(r.alive for r in self.replicas):
                await asyncio.sleep(0.1)

        await asyncio.wait_for(settled(), timeout)

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.pool.health_check_interval_s)
            try:
                await self.check_health()
            except Exception:  # the monitor must outlive any one bad probe
                log.exception("health check failed")

    def _down_message(self) -> str:
        starting = sum(1 for r in self.replicas if r.restarting is not None)
        return (
            f"no follower replica is alive ({len(self.replicas)} configured, "
            f"{starting} restarting); try again shortly"
        )


def _kill_named(name: str) -> None:
    try:
        ray.kill(ray.get_actor(name, namespace=NAMESPACE))
    except ValueError:
        pass  # already gone
