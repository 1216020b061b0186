"""The follower pools a runner can use, by name.

A pool is one model on its own replicas. The runner needs two things of each: its replicas as
the SMC scheduler's `ReplicaHandle`s, and sampling and scoring for the other strategies
(`Followers`). A `ReplicaRouter` (a service runner's `PoolClient`, the CLI's `FollowerPool`)
gives both; tests give local replicas and a local engine.

    pools = Pools.of_routers({"smol": smol_client, "gemma": gemma_client}, default="smol")
    pools["gemma"].replica_handles(), pools.followers(["smol", "gemma"])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from council_sdk.types import Health, PoolHealth

from cluster.config import DEFAULT_POOL, CouncilConfig
from cluster.protocol import ReplicaHandle
from cluster.strategies.base import Followers


class UnknownPool(ValueError):
    """A request named a pool this service does not have (a client error: 400)."""


@dataclass(frozen=True)
class PoolView:
    replica_handles: Callable[[], list[ReplicaHandle]]
    followers: Followers | None = None


class Pools:
    def __init__(self, views: Mapping[str, PoolView], default: str):
        if default not in views:
            raise ValueError(f"the default pool {default!r} is not among {list(views)}")
        self._views = dict(views)
        self.default = default

    @classmethod
    def of_routers(cls, routers: Mapping[str, object], default: str) -> "Pools":
        return cls({name: PoolView(r.replica_handles, r) for name, r in routers.items()}, default)

    @classmethod
    def single(cls, replicas: Callable[[], list[ReplicaHandle]], followers: Followers | None = None,
               name: str = DEFAULT_POOL) -> "Pools":
        return cls({name: PoolView(replicas, followers)}, name)

    @property
    def names(self) -> list[str]:
        return list(self._views)

    def __contains__(self, name: str) -> bool:
        return name in self._views

    def __getitem__(self, name: str) -> PoolView:
        self.check([name])
        return self._views[name]

    def check(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self._views:
                raise UnknownPool(f"there is no follower pool named {name!r}; the pools are "
                                  f"{', '.join(self._views)}")

    def followers(self, names: Iterable[str]) -> dict[str, Followers]:
        """Sampling and scoring of each named pool, in order (ValueError if one has none)."""
        out = {}
        for name in names:
            view = self[name]
            if view.followers is None:
                raise ValueError(f"pool {name!r} offers no follower sampling in this runner")
            out[name] = view.followers
        return out


def pools_health(config: CouncilConfig, tables: Mapping[str, object], queued: int = 0, running: int = 0) -> Health:
    """The service's health from each pool's `ReplicaTable` (None: not known yet)."""
    pools = {name: PoolHealth(model=config.pools[name].engine.model if name in config.pools else "?",
                              replicas_live=t.live if t is not None else 0,
                              replicas=len(t.replicas) if t is not None
                              else config.pools[name].pool.replicas)
             for name, t in tables.items()}
    ready = bool(pools) and all(p.replicas_live > 0 for p in pools.values())
    return Health(status="ok" if ready else "starting",
                  replicas_live=sum(p.replicas_live for p in pools.values()),
                  replicas=sum(p.replicas for p in pools.values()), queued=queued, running=running, pools=pools)
