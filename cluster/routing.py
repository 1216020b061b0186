"""Calls to follower replicas: the least busy live one, a watchdog per call, retry on death.

Both sides of the pool route the same way: the controller's own `FollowerPool` (in the CLI and
the tests, where one process owns the replicas) and a `PoolClient` (a runner's view of the
table the `PoolController` publishes). They differ only in where the replicas come from and
whom a failure is reported to, so they share this base and implement `_replicas()` and
`_lost()`.

A call that hits a dead or hung replica reports it and is retried on another live replica, so
callers see an answer, not the failure; only when no replica is alive does a call fail, with
`NoLiveReplicaError`. Every call has a deadline (`pool.call_timeout_s`, plus
`pool.token_timeout_s` per token a `generate` may produce), so one stuck engine cannot hang
a request for ever.
"""

from __future__ import annotations

import asyncio
import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from ray.exceptions import RayActorError, RayTaskError

from council_sdk.types import GenerateRequest, GenerateResult, ScoreRequest, ScoreResult

from cluster.config import PoolConfig
from cluster.protocol import ForwardingReplicaHandle, ReplicaLost
from planner.sandbox import ProgramError, WorkersUnavailable


class NoLiveReplicaError(RuntimeError):
    """Every follower replica is down (replacements may be starting)."""


@dataclass(eq=False)  # a slot is itself, not its fields
class Replica:
    """One replica slot as a router sees it; `handle` and `generation` change on replacement."""

    index: int
    handle: Any = None
    generation: int = 0  # how many times this slot was (re)started
    alive: bool = False
    draining: bool = False  # being retired: finishes its particles, takes no new work
    inflight: int = field(default=0, compare=False)

    @property
    def replica_id(self) -> str:
        return f"follower-{self.index}"

    @property
    def instance_id(self) -> str:
        """The slot and its generation: a replacement is another replica to the scheduler."""
        return f"{self.replica_id}.{self.generation}"


class ReplicaRouter:
    """Routing over `_replicas()`; failures go to `_lost()` (see the module docstring)."""

    pool_config: PoolConfig

    def __init__(self) -> None:
        self._rr = itertools.count()

    def _replicas(self) -> list[Replica]:
        raise NotImplementedError

    async def _lost(self, replica: Replica, error: BaseException, handle=None) -> None:
        """`replica` (as it was when `handle` was its handle) failed `error`."""
        raise NotImplementedError

    def _down_message(self) -> str:
        return "no follower replica is alive; try again shortly"

    # -- views ------------------------------------------------------------------------------
    def live(self) -> list[Replica]:
        return [r for r in self._replicas() if r.alive]

    def pick(self) -> Replica:
        """The live replica with the fewest calls in flight (round-robin among equals)."""
        live = [r for r in self.live() if not r.draining]
        if not live:
            raise NoLiveReplicaError(self._down_message())
        start = next(self._rr) % len(live)
        ring = live[start:] + live[:start]
        return min(ring, key=lambda r: r.inflight)

    async def pick_waiting(self) -> Replica:
        """`pick`, but with no replica alive wait up to `pool.replica_wait_s` for one (the
        pool may be replacing them) before NoLiveReplicaError."""
        deadline = asyncio.get_running_loop().time() + self.pool_config.replica_wait_s
        while True:
            try:
                return self.pick()
            except NoLiveReplicaError:
                if asyncio.get_running_loop().time() >= deadline:
                    raise
            await asyncio.sleep(0.25)

    def replica_handles(self) -> list["RayReplicaHandle"]:
        """The live replicas as the SMC scheduler's ReplicaHandles."""
        return [RayReplicaHandle(self, r) for r in self.live()]

    def call_timeout(self, method: str, args: tuple) -> float:
        """How long one call may take: a `generate` of N tokens gets N token deadlines more."""
        timeout = self.pool_config.call_timeout_s
        request = args[0] if args else None
        if method == "generate" and isinstance(request, GenerateRequest):
            timeout += self.pool_config.token_timeout_s * request.max_tokens
        return timeout

    # -- calls ------------------------------------------------------------------------------
    async def call(self, method: str, *args, replica: Replica | None = None) -> Any:
        """Call `method` on a replica; on replica death or a hang retry on another live one."""
        timeout = self.call_timeout(method, args)
        for attempt in range(len(self._replicas()) + 1):
            target = replica if (replica is not None and attempt == 0 and replica.alive) else await self.pick_waiting()
            handle = target.handle
            target.inflight += 1
            try:
                return await asyncio.wait_for(getattr(handle, method).remote(*args), timeout)
            except asyncio.TimeoutError:
                await self._lost(target, TimeoutError(f"{method} took over {timeout:g}s"), handle)
            except RayActorError as exc:
                await self._lost(target, exc, handle)
            finally:
                target.inflight -= 1
        raise NoLiveReplicaError(self._down_message())

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """One follower sample from any live replica (the strategies' `Followers`)."""
        return await self.call("generate", request)

    async def score(self, request: ScoreRequest) -> ScoreResult:
        return await self.call("score", request)


_ERROR_LINE = re.compile(r"^[\w.]*(Error|Exception|Exit|Interrupt)\b.*:\s")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RayReplicaHandle(ForwardingReplicaHandle):
    """`cluster.protocol.ReplicaHandle` over one follower actor.

    The id carries the replica's generation, so the scheduler never mistakes a replacement
    (which holds none of the request's particles) for the replica that died."""

    def __init__(self, router: ReplicaRouter, replica: Replica):
        self._router = router
        self._replica = replica
        self._handle = replica.handle
        self.replica_id = replica.instance_id

    @property
    def accepting(self) -> bool:
        return not self._replica.draining

    async def _call(self, method: str, *args):
        timeout = self._router.pool_config.call_timeout_s
        try:
            return await asyncio.wait_for(getattr(self._handle, method).remote(*args), timeout)
        except asyncio.TimeoutError:
            error = TimeoutError(f"{method} took over {timeout:g}s")
            await self._router._lost(self._replica, error, self._handle)
            raise ReplicaLost(f"{self.replica_id} hung: {error}") from None
        except RayActorError as exc:
            await self._router._lost(self._replica, exc, self._handle)
            raise ReplicaLost(f"{self.replica_id} died: {cause_of(exc)}") from None
        except RayTaskError as exc:
            if isinstance(exc.cause, ProgramError):  # the program's fault: say it plainly
                raise ProgramError(str(exc.cause)) from None
            if isinstance(exc.cause, WorkersUnavailable):
                raise WorkersUnavailable(str(exc.cause)) from None
            raise


def cause_of(exc: BaseException) -> str:
    """The root error of a Ray failure (`ModelNotFoundError: ...`), not Ray's wrapper text."""
    lines = [_ANSI.sub("", line).strip() for line in str(exc).strip().splitlines()]
    for line in reversed(lines):
        if _ERROR_LINE.match(line):
            return line
    return lines[0] if lines and lines[0] else type(exc).__name__
