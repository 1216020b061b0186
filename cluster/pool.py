"""FollowerPool: start R follower replicas, watch them, replace the dead, route calls.

The pool never imports an actor class: the layer above hands it one (any Ray actor class
whose constructor takes `(engine_config, replica_id)` and that has `ready()` and `ping()`).
Replicas are placed in one placement group, a bundle each ({CPU, GPU} from config, SPREAD
across nodes by default); a replacement is started in the dead replica's bundle, so a restart
never competes with other work for resources.

Failure handling, in one place: a call that hits a dead replica (or a health check that
fails or times out) marks it down, starts its replacement in the background, and the call is
retried on another live replica, so callers see an answer, not the failure. Only when no
replica is alive does a call fail, with `NoLiveReplicaError`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from council_sdk.types import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult

from cluster.config import CouncilConfig
from cluster.scheduler import ForwardingReplicaHandle, ReplicaLost
from planner.sandbox import ProgramError, WorkersUnavailable

log = logging.getLogger(__name__)


class NoLiveReplicaError(RuntimeError):
    """Every follower replica is down (replacements may be starting)."""


class PoolStartError(RuntimeError):
    pass


@dataclass
class Replica:
    """The pool's view of one replica slot (bundle); `handle` changes on replacement."""

    index: int
    handle: Any = None
    generation: int = 0  # how many times this slot was (re)started
    alive: bool = False
    inflight: int = 0
    restarting: asyncio.Task | None = field(default=None, repr=False)
    draining: bool = False  # being retired: finishes its particles, takes no new work
    pg: PlacementGroup | None = field(default=None, repr=False)  # own group (added replicas)

    @property
    def replica_id(self) -> str:
        return f"follower-{self.index}"


class FollowerPool:
    def __init__(self, actor_cls, config: CouncilConfig):
        self._actor_cls = actor_cls
        self.config = config
        self.replicas = [Replica(i) for i in range(config.pool.replicas)]
        self._pg: PlacementGroup | None = None
        self._monitor: asyncio.Task | None = None
        self._rr = itertools.count()
        self.restarts = 0
        self.scaled_up = 0
        self.scaled_down = 0

    # -- life cycle -------------------------------------------------------------------------
    def _bundle(self) -> dict[str, float]:
        pool = self.config.pool
        return {k: v for k, v in (("CPU", pool.num_cpus), ("GPU", pool.num_gpus)) if v > 0}

    async def _placement_group(self, count: int) -> PlacementGroup | None:
        pool, bundle = self.config.pool, self._bundle()
        if not bundle:
            return None
        pg = placement_group([bundle] * count, strategy=pool.placement_strategy)
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
        self._pg = await self._placement_group(self.config.pool.replicas)
        await asyncio.gather(*(self._launch(r) for r in self.replicas))
        if monitor:
            self._monitor = asyncio.create_task(self._monitor_loop())
        return self

    async def shutdown(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
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

    async def _launch(self, replica: Replica) -> None:
        options: dict[str, Any] = {
            "num_cpus": self.config.pool.num_cpus,
            "num_gpus": self.config.pool.num_gpus,
        }
        if replica.pg is not None or self._pg is not None:
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=replica.pg or self._pg,
                placement_group_bundle_index=0 if replica.pg is not None else replica.index,
            )
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
            raise PoolStartError(f"{replica.replica_id} failed to start: {_cause(exc)}") from None
        replica.handle, replica.alive = handle, True
        replica.generation += 1

    # -- views ------------------------------------------------------------------------------
    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def pick(self) -> Replica:
        """The live replica with the fewest calls in flight (round-robin among equals)."""
        live = [r for r in self.live() if not r.draining]
        if not live:
            raise NoLiveReplicaError(self._down_message())
        start = next(self._rr)
        ring = live[start % len(live) :] + live[: start % len(live)]
        return min(ring, key=lambda r: r.inflight)

    async def stats(self) -> list[dict]:
        """Each live replica's own report (queue depth, tokens, cache hit rate, memory)."""
        live = self.live()
        reports = await asyncio.gather(
            *(r.handle.stats.remote() for r in live), return_exceptions=True
        )
        out = []
        for r, rep in zip(live, reports):
            if isinstance(rep, BaseException):
                await self.report_failure(r, rep)
                continue
            out.append({"generation": r.generation, "inflight": r.inflight, **rep.model_dump()})
        return out

    def replica_handles(self) -> list["RayReplicaHandle"]:
        """The live replicas as the SMC scheduler's ReplicaHandles."""
        return [RayReplicaHandle(self, r) for r in self.live()]

    # -- elasticity -------------------------------------------------------------------------
    async def scale_up(self) -> Replica:
        """Add one replica (in a placement group of its own)."""
        replica = Replica(max((r.index for r in self.replicas), default=-1) + 1)
        replica.pg = await self._placement_group(1)
        try:
            await self._launch(replica)
        except PoolStartError:
            if replica.pg is not None:
                remove_placement_group(replica.pg)
            raise
        self.replicas.append(replica)
        self.scaled_up += 1
        log.info("pool grew to %d replicas (%s added)", len(self.replicas), replica.replica_id)
        return replica

    async def retire(self, replica: Replica | None = None) -> Replica | None:
        """Drain one replica (the least busy) and remove it: it takes no new particles, the
        scheduler moves its particles to the others, and once none is left it is stopped."""
        candidates = [r for r in self.live() if not r.draining]
        if len(candidates) <= 1:
            return None
        replica = replica or min(candidates, key=lambda r: (r.inflight, -r.index))
        replica.draining = True
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
        log.info("pool shrank to %d replicas (%s retired)", len(self.replicas), replica.replica_id)
        return replica

    # -- calls ------------------------------------------------------------------------------
    async def call(self, method: str, *args, replica: Replica | None = None, **kwargs) -> Any:
        """Call `method` on a replica; on replica death retry on another live one."""
        attempts = len(self.replicas) + 1
        for attempt in range(attempts):
            target = replica if (replica is not None and attempt == 0) else self.pick()
            if not target.alive:
                target = self.pick()
            handle = target.handle
            target.inflight += 1
            try:
                return await getattr(handle, method).remote(*args, **kwargs)
            except RayActorError as exc:
                await self.report_failure(target, exc, handle)
            finally:
                target.inflight -= 1
        raise NoLiveReplicaError(self._down_message())

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """One follower sample from any live replica (the strategies' `Followers`)."""
        return await self.call("generate", request)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        return await self.call("score", request)

    async def report_failure(self, replica: Replica, error: BaseException, handle=None) -> None:
        """Mark `replica` down and start its replacement (once, however many report it)."""
        if handle is not None and handle is not replica.handle:
            return  # the failed handle was already replaced
        if not replica.alive and replica.restarting is not None:
            return
        log.warning("%s is down (%s); replacing it", replica.replica_id, _cause(error))
        replica.alive = False
        replica.restarting = asyncio.create_task(self._replace(replica))

    async def _replace(self, replica: Replica) -> None:
        if replica.handle is not None:
            ray.kill(replica.handle)  # a hung replica must release its bundle
        delay = 1.0
        while True:
            try:
                await self._launch(replica)
                self.restarts += 1
                log.warning("%s replaced (generation %d)", replica.replica_id, replica.generation)
                break
            except PoolStartError as exc:
                log.error("restarting %s failed: %s; retrying in %.0fs", replica.replica_id, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        replica.restarting = None

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
                await self.report_failure(r, err if err.args else TimeoutError("ping timed out"))
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


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b.*:\s")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RayReplicaHandle(ForwardingReplicaHandle):
    """`cluster.scheduler.ReplicaHandle` over one follower actor.

    The id carries the replica's generation, so the scheduler never mistakes a replacement
    (which holds none of the request's particles) for the replica that died."""

    def __init__(self, pool: FollowerPool, replica: Replica):
        self._pool = pool
        self._replica = replica
        self._handle = replica.handle
        self.replica_id = f"{replica.replica_id}.{replica.generation}"

    @property
    def accepting(self) -> bool:
        return not self._replica.draining

    async def _call(self, method: str, *args):
        timeout = self._pool.config.pool.call_timeout_s
        try:
            return await asyncio.wait_for(getattr(self._handle, method).remote(*args), timeout)
        except asyncio.TimeoutError:
            error = TimeoutError(f"{method} took over {timeout:g}s")
            await self._pool.report_failure(self._replica, error, self._handle)
            raise ReplicaLost(f"{self.replica_id} hung: {error}") from None
        except RayActorError as exc:
            await self._pool.report_failure(self._replica, exc, self._handle)
            raise ReplicaLost(f"{self.replica_id} died: {_cause(exc)}") from None
        except RayTaskError as exc:
            if isinstance(exc.cause, ProgramError):  # the program's fault: say it plainly
                raise ProgramError(str(exc.cause)) from None
            if isinstance(exc.cause, WorkersUnavailable):
                raise WorkersUnavailable(str(exc.cause)) from None
            raise


def _cause(exc: BaseException) -> str:
    """The root error of a Ray failure (`ModelNotFoundError: ...`), not Ray's wrapper text."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).strip().splitlines()]
    for line in reversed(lines):
        if _ERROR_LINE.match(line):
            return line
    return lines[0] if lines and lines[0] else type(exc).__name__
