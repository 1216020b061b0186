"""When the follower pool grows or shrinks: a small policy over the load the planner sees.

Load is the number of requests queued or running. The pool grows by one replica when the
load per live replica stays above `target_load_per_replica` for `scale_up_after_s`, and
shrinks by one after `scale_down_idle_s` with no load at all, never leaving
[min_replicas, max_replicas]. One decision per call; the caller (the PlannerActor) acts on it
and asks again later, so a burst grows the pool step by step. On KubeRay the Ray autoscaler
then adds or removes the GPU nodes the replicas ask for.

    policy = ScalePolicy.from_pool(cfg.pool)
    step = policy.decide(load=12, live=2)   # +1, -1 or 0
"""

from __future__ import annotations

import time
from typing import Callable

from cluster.config import PoolConfig


class ScalePolicy:
    def __init__(self, min_replicas: int, max_replicas: int, target_load: float,
                 up_after_s: float, idle_s: float, clock: Callable[[], float] = time.monotonic):
        self.min, self.max, self.target = min_replicas, max_replicas, target_load
        self.up_after_s, self.idle_s, self.clock = up_after_s, idle_s, clock
        self._high_since: float | None = None
        self._idle_since: float | None = None

    @classmethod
    def from_pool(cls, pool: PoolConfig, clock: Callable[[], float] = time.monotonic) -> "ScalePolicy":
        return cls(pool.min_replicas or pool.replicas, pool.max_replicas or pool.replicas,
                   pool.target_load_per_replica, pool.scale_up_after_s, pool.scale_down_idle_s, clock)

    def decide(self, load: int, live: int) -> int:
        now = self.clock()
        if live < self.min:
            return +1
        if live > self.max:
            return -1
        high = load > self.target * live
        self._high_since = _since(self._high_since, now) if high and live < self.max else None
        self._idle_since = _since(self._idle_since, now) if load == 0 and live > self.min else None
        if self._high_since is not None and now - self._high_since >= self.up_after_s:
            self._high_since = None
            return +1
        if self._idle_since is not None and now - self._idle_since >= self.idle_s:
            self._idle_since = None
            return -1
        return 0


def _since(started: float | None, now: float) -> float:
    return now if started is None else started
