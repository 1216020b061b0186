"""The replica protocol: what the SMC scheduler and a follower replica say to each other.

A `ReplicaHandle` is one replica as the scheduler sees it; `ForwardingReplicaHandle` routes its
six operations through one call (Ray actor, confined worker host, in-process replica). A
`ProgramSpec` is what is run, a `ParticleState` what a replica reports of each particle after
a step, and `ReplicaLost` what a handle raises when its replica is gone (its particles with
it, unless the scheduler kept a checkpoint of them).

`cluster/` imports no actor class: the layers above implement these handles.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from planner.sandbox import SandboxLimits


class ProgramSpec(BaseModel):
    """A program to run and the task it is given."""

    model_config = ConfigDict(frozen=True)

    source: str
    prompt: str
    seed: int = 0
    limits: SandboxLimits = Field(default_factory=SandboxLimits)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]


class ParticleState(BaseModel):
    pid: int
    log_weight: float
    finished: bool
    text: str
    tokens: int
    prompt_tokens: int = 0  # of its contexts' prompts
    passes_check: bool | None = None
    error: str | None = None
    # The particle as `export` would ship it, taken right after this step when the scheduler
    # asked (`advance(save=True)`): what it is restored from if its replica dies.
    saved: bytes | None = None


class ReplicaLost(RuntimeError):
    """The replica died (or hung and was given up); its particles there are gone."""


class NoReplicaLeft(RuntimeError):
    pass


class ReplicaHandle(Protocol):
    replica_id: str
    # False while the replica drains before it is retired: the scheduler then places no new
    # particles there and moves its particles off.
    accepting: bool

    async def spawn(self, req: str, spec: ProgramSpec, ids: list[int]) -> list[ParticleState]: ...

    async def advance(self, req: str, ids: list[int], save: bool = False) -> list[ParticleState]: ...

    async def clone(self, req: str, plan: dict[int, list[int]]) -> None: ...

    async def export(self, req: str, ids: list[int]) -> list[bytes]: ...

    async def import_(self, req: str, spec: ProgramSpec, blobs: list[bytes],
                      ids: list[int] | None = None) -> None:
        """Take particles `export`ed elsewhere; `ids` renames them (a clone restored from its
        parent's saved state gets its own id and its own randomness)."""

    async def drop(self, req: str, ids: list[int] | None = None) -> None: ...


class ForwardingReplicaHandle:
    """A ReplicaHandle whose six operations all go through one `_call(method, *args)`."""

    replica_id: str
    accepting: bool = True

    async def _call(self, method: str, *args):
        raise NotImplementedError

    async def spawn(self, req, spec, ids):
        return await self._call("spawn", req, spec, ids)

    async def advance(self, req, ids, save=False):
        return await self._call("advance", req, ids, save)

    async def clone(self, req, plan):
        await self._call("clone", req, plan)

    async def export(self, req, ids):
        return await self._call("export", req, ids)

    async def import_(self, req, spec, blobs, ids=None):
        await self._call("import_", req, spec, blobs, ids)

    async def drop(self, req, ids=None):
        await self._call("drop", req, ids)
