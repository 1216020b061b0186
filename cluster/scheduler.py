"""Distributed SMC: particles on many replicas, weighed and resampled globally.

The scheduler only talks to `ReplicaHandle`s (spawn / advance / clone / export / import /
drop); it never sees an engine, and replicas never see global weights. One round:

1. every replica advances its unfinished particles by one `step()` (concurrently);
2. weights are normalised over all N particles and the ESS computed; a particle lost with a
   dead replica has weight zero;
3. below `ess_threshold * N` (or after a loss) ancestors are drawn; children are cloned on their
   parent's replica, particles without offspring dropped; all weights reset to the mean;
4. particles migrate between replicas only when the load differs by more than a bound
   (state = program attributes + token ids; the target rebuilds KV from its prefix cache).

A replica can die at any point of a round. Every step also returns each particle's state as
`export` would ship it (`advance(save=True)`, on unless `checkpoint` is off), so a particle
whose replica died is *restored* on another live replica from that state and takes its step
again there (`_heal`); a clone inherits its parent's saved state. Only a particle with nothing
saved is lost (weight zero). With no replica alive the scheduler waits for one to come back,
up to `replica_wait_s`, before it gives up with NoReplicaLeft.

Replicas report each particle's own accumulated weight; the scheduler keeps a per-particle
offset so that resetting weights never needs a round trip.

Methods: `smc` (the above), `is` (never resample), `rs` (independent batches until a particle
finishes and passes check()), `steer` (each particle extended to K children, best N kept).

With a `twist` (`cluster/twist.py`: a second model scoring the particles' text), each round's
new whole words are scored under it after the step and the score goes into the particle's
offset, before the ESS is taken; a clone inherits what its parent was scored for.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Awaitable, Callable, Literal

import numpy as np
from council_sdk.types import CouncilResult, PosteriorEntry, RoundTrace
from pydantic import BaseModel, ConfigDict, Field

from cluster.protocol import NoReplicaLeft, ParticleState, ProgramSpec, ReplicaHandle, ReplicaLost
from cluster.resampling import Resampler, effective_sample_size, normalize_log_weights, resample
from cluster.twist import Twist, scored_part
from planner.sandbox import ProgramError


class InferenceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: Literal["smc", "is", "rs", "steer"] = "smc"
    particles: int = Field(16, ge=1, le=256)
    ess_threshold: float = Field(0.5, ge=0.0, le=1.0)
    resampler: Resampler = "systematic"
    max_rounds: int = Field(256, ge=1)
    max_tokens: int = Field(1_000_000, ge=1, description="Follower tokens for the whole request.")
    max_wall_s: float = Field(600.0, gt=0)
    steer_children: int = Field(2, ge=2, le=16, description="`steer`: children per particle.")
    rs_batches: int = Field(8, ge=1, description="`rs`: most batches of N particles.")
    imbalance: int = Field(2, ge=1, description="Migrate when replica loads differ by more.")
    checkpoint: bool = Field(True, description="Save every particle's state each step, so that a "
                             "particle whose replica dies is continued elsewhere rather than lost.")
    replica_wait_s: float = Field(0.0, ge=0, description="How long to wait for a follower replica "
                                  "when none is alive (a pool restarting), before failing.")
    seed: int = 0


# -- the scheduler ---------------------------------------------------------------------------


MAX_STEP_TRIES = 4  # a step retried on another replica after its replica died, at most
GONE = "gone:"  # a particle's replica in a resumed run: restored before its next step


class SavedParticle(BaseModel):
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    state: ParticleState
    offset: float
    saved: bytes | None
    stepped: bool
    twist: float = 0.0
    twisted: str = ""


class SchedulerCheckpoint(BaseModel):
    """Everything a round boundary of one request holds, so that another process (a runner
    that takes over a task whose runner died) continues the run from there. The rounds'
    trace is not in it (it grows with every round, and a checkpoint is sent every round):
    whoever resumes passes the trace back from the round events it kept."""

    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    spec: ProgramSpec
    config: InferenceConfig
    next_id: int
    rng: dict
    particles: list[SavedParticle]
    rounds: int  # rounds done (the trace's length)
    tokens: int
    restored: int
    elapsed_s: float


@dataclass
class _Particle:
    replica: str  # "" once lost for good
    state: ParticleState
    offset: float = 0.0  # scheduler-side weight correction (resets after resampling)
    saved: bytes | None = None  # its state as of `state`, to restore it elsewhere
    stepped: bool = False  # it took a step (so it cannot simply be spawned afresh)
    twist: float = 0.0  # the twist's weighted score of `twisted`, already in `offset`
    twisted: str = ""  # the text the twist scored last

    @property
    def log_weight(self) -> float:
        return self.state.log_weight + self.offset

    @property
    def active(self) -> bool:
        return not self.state.finished and self.state.error is None


class Scheduler:
    """Runs one request. `replicas()` returns the live handles (it may change between rounds)."""

    def __init__(
        self,
        spec: ProgramSpec,
        config: InferenceConfig,
        replicas: Callable[[], list[ReplicaHandle]],
        on_round: Callable[[RoundTrace], Awaitable[None] | None] | None = None,
        twist: Twist | None = None,
    ):
        self.spec = spec
        self.config = config
        self._replicas = replicas
        self._on_round = on_round
        self._twist = twist
        self.req = f"req-{uuid.uuid4().hex[:12]}"
        self._next_id = 0
        self._rng = np.random.default_rng(config.seed)
        self.particles: dict[int, _Particle] = {}
        self.trace: list[RoundTrace] = []
        self.tokens = 0
        self.restored = 0  # particles continued on another replica after theirs died
        self._touched: set[str] = set()  # replicas that may hold state for this request
        self._dead: set[str] = set()  # replicas seen dying (a router may not know yet)
        self._round_lost = self._round_restored = 0
        self._resumed = False
        self._last_round = 0  # the last round recorded (a resumed run starts after its checkpoint's)
        self._started = 0.0
        self._elapsed_before = 0.0  # run time of the process(es) this run was resumed from

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    # -- checkpoints -------------------------------------------------------------------------
    def checkpoint(self) -> SchedulerCheckpoint | None:
        """The run as of the last round (None for `rs`, whose batches start over anyway)."""
        if self.config.method == "rs":
            return None
        return SchedulerCheckpoint(
            spec=self.spec, config=self.config, next_id=self._next_id, rng=self._rng.bit_generator.state,
            particles=[SavedParticle(state=p.state, offset=p.offset, saved=p.saved, stepped=p.stepped,
                                     twist=p.twist, twisted=p.twisted)
                       for p in self.particles.values() if p.replica],
            rounds=self._last_round, tokens=self.tokens, restored=self.restored,
            elapsed_s=self._elapsed_before + (time.monotonic() - self._started if self._started else 0.0),
        )

    @classmethod
    def resume(cls, checkpoint: SchedulerCheckpoint, replicas: Callable[[], list[ReplicaHandle]],
               on_round: Callable[[RoundTrace], Awaitable[None] | None] | None = None,
               trace: list[RoundTrace] = (), twist: Twist | None = None) -> "Scheduler":
        """A scheduler that goes on from `checkpoint`: its particles are restored on the live
        replicas from their saved states before the next round. `trace` is the rounds so far
        (the round events kept with the checkpoint); rounds it lacks are left out of the
        result's trace, never invented."""
        self = cls(checkpoint.spec, checkpoint.config, replicas, on_round, twist)
        self._next_id = checkpoint.next_id
        self._rng.bit_generator.state = checkpoint.rng
        by_round = {t.round: t for t in trace if t.round <= checkpoint.rounds}
        self.trace = [by_round[r] for r in sorted(by_round)]
        self._last_round = checkpoint.rounds
        self.tokens, self.restored = checkpoint.tokens, checkpoint.restored
        self._elapsed_before = checkpoint.elapsed_s
        for saved in checkpoint.particles:
            self.particles[saved.state.pid] = _Particle(f"{GONE}{self.req}", saved.state, saved.offset,
                                                        saved.saved, saved.stepped, saved.twist, saved.twisted)
        self._dead.add(f"{GONE}{self.req}")
        self._resumed = True
        return self

    # -- entry point -------------------------------------------------------------------------
    async def run(self) -> CouncilResult:
        self._started = started = time.monotonic() - self._elapsed_before
        try:
            if self.config.method == "rs":
                stopped = await self._run_rejection(started)
            else:
                if not self._resumed:
                    await self._spawn(self.config.particles)
                stopped = await self._run_rounds(started)
        finally:
            await self._drop_everywhere()
        return self._result(stopped, time.monotonic() - started)

    # -- the round loop ----------------------------------------------------------------------
    async def _run_rounds(self, started: float) -> str:
        cfg = self.config
        for rnd in range(self._last_round + 1, cfg.max_rounds + 1):
            if not any(p.active for p in self.particles.values()):
                return "finished"
            if cfg.method == "steer":
                await self._branch(cfg.steer_children)
            lost = await self._advance()
            if lost and all(not p.replica for p in self.particles.values()):
                # Every particle died with its replica: start over on whatever is live now
                # (a replacement, say); with nothing live, _spawn says so.
                self.particles.clear()
                await self._spawn(cfg.particles)
            await self._apply_twist()
            t0 = time.monotonic()
            resampled = False
            if cfg.method == "steer":
                await self._keep_best(cfg.particles)
            ess = self._ess()  # recorded as it was before any resampling
            weights = self._normalised_weights()
            still_active = any(p.active for p in self.particles.values())
            # After the last step the weighted population *is* the answer: resampling it
            # would only add noise (llamppl resamples here too; we do not).
            if cfg.method in ("smc", "is") and still_active:
                if lost or (cfg.method == "smc" and ess < cfg.ess_threshold * len(self.particles)):
                    await self._resample()
                    resampled = True
            migrations = await self._rebalance() if still_active else 0
            await self._record(rnd, ess, resampled, lost, migrations, time.monotonic() - t0, weights)
            if self.tokens >= cfg.max_tokens:
                return "max_tokens"
            if time.monotonic() - started > cfg.max_wall_s:
                return "wall_clock"
        return "finished" if not any(p.active for p in self.particles.values()) else "max_rounds"

    async def _run_rejection(self, started: float) -> str:
        cfg = self.config
        for batch in range(cfg.rs_batches):
            await self._spawn(cfg.particles)
            for _ in range(cfg.max_rounds):
                if not any(p.active for p in self.particles.values()):
                    break
                lost = await self._advance()
                await self._record(len(self.trace) + 1, self._ess(), False, lost, 0, 0.0)
                if self.tokens >= cfg.max_tokens or time.monotonic() - started > cfg.max_wall_s:
                    return "max_tokens" if self.tokens >= cfg.max_tokens else "wall_clock"
            if self._accepted():
                return "accepted"
            if batch < cfg.rs_batches - 1:  # keep the last batch for the fallback answer
                await self._drop_everywhere()
                self.particles.clear()
        return "exhausted"

    def _accepted(self) -> list[_Particle]:
        return [
            p for p in self.particles.values()
            if p.state.finished and p.state.passes_check and math.isfinite(p.log_weight)
        ]

    # -- replica operations ------------------------------------------------------------------
    def _live(self) -> dict[str, ReplicaHandle]:
        """The live replicas, by id (maybe none: `_wait_for_replicas` waits for one)."""
        return {h.replica_id: h for h in self._replicas() if h.replica_id not in self._dead}

    def _accepting(self) -> dict[str, ReplicaHandle]:
        """Live replicas that take new particles (a draining one only finishes its own)."""
        return {rid: h for rid, h in self._live().items() if getattr(h, "accepting", True)}

    async def _wait_for_replicas(self) -> dict[str, ReplicaHandle]:
        """The accepting live replicas; with none, wait up to `replica_wait_s` for one."""
        deadline = time.monotonic() + self.config.replica_wait_s
        while True:
            accepting = self._accepting()
            if accepting:
                return accepting
            if time.monotonic() >= deadline:
                raise NoReplicaLeft("no follower replica is alive to run the particles (waited "
                                    f"{self.config.replica_wait_s:g}s for one to come back)")
            await asyncio.sleep(0.25)

    def _replica_died(self, rid: str) -> None:
        self._dead.add(rid)
        self._touched.discard(rid)

    async def _gather(self, calls: dict[str, Awaitable]) -> dict[str, object]:
        """Run one call per replica at once; a ReplicaLost marks its replica dead (its
        particles are restored by the next `_heal`), anything else is raised."""
        results = await asyncio.gather(*calls.values(), return_exceptions=True)
        out = {}
        for rid, res in zip(calls, results):
            if isinstance(res, ReplicaLost):
                self._replica_died(rid)
            elif isinstance(res, BaseException):
                raise res
            else:
                out[rid] = res
        return out

    async def _spawn(self, n: int) -> None:
        """Start n fresh particles, dealt round-robin over the live replicas; a replica that
        dies meanwhile has its share started on the others (a fresh particle is the same
        wherever it starts)."""
        pending = [self._new_id() for _ in range(n)]
        for _ in range(MAX_STEP_TRIES):
            live = await self._wait_for_replicas()
            groups = {rid: pending[i :: len(live)] for i, rid in enumerate(live)}
            groups = {rid: g for rid, g in groups.items() if g}
            self._touched.update(groups)  # dropped at the end whatever happens to the spawn
            # A ProgramError (say, in __init__) fails the request as it is.
            done = await self._gather({rid: live[rid].spawn(self.req, self.spec, g) for rid, g in groups.items()})
            for rid, states in done.items():
                for state in states:
                    self.particles[state.pid] = _Particle(rid, state)
            self._raise_program_errors()
            pending = [pid for pid in pending if pid not in self.particles]
            if not pending:
                return
        if not self.particles:
            raise NoReplicaLeft("every replica failed while starting the particles")

    async def _advance(self) -> int:
        """One step for every active particle; a particle whose replica dies meanwhile is
        restored on another and takes its step there. Returns how many were lost."""
        self._round_lost = self._round_restored = 0
        pending = {pid for pid, p in self.particles.items() if p.active}
        for _ in range(MAX_STEP_TRIES):
            await self._heal()
            pending = {pid for pid in pending if self.particles[pid].active}
            if not pending:
                break
            live = self._live()
            by_replica: dict[str, list[int]] = defaultdict(list)
            for pid in sorted(pending):
                by_replica[self.particles[pid].replica].append(pid)
            done = await self._gather({rid: live[rid].advance(self.req, ids, self.config.checkpoint)
                                       for rid, ids in by_replica.items() if rid in live})
            for states in done.values():
                for state in states:
                    p = self.particles[state.pid]
                    self.tokens += max(0, state.tokens - p.state.tokens)
                    p.saved, p.state = state.saved, state.model_copy(update={"saved": None})
                    p.stepped = True
                    pending.discard(state.pid)
            if not pending:
                break
        else:
            for pid in pending:  # replicas kept dying under them
                self._lose(pid)
        self._raise_program_errors()
        return self._round_lost

    async def _heal(self) -> None:
        """Put every particle whose replica died back on a live one: from its saved state,
        or (never stepped) spawned afresh under its id; with neither it is lost."""
        for _ in range(MAX_STEP_TRIES):
            alive = self._live()  # a replica gone from the pool's table is dead to this run too
            self._dead.update(p.replica for p in self.particles.values() if p.replica and p.replica not in alive)
            orphans = [pid for pid, p in self.particles.items() if p.replica and p.replica in self._dead]
            if not orphans:
                return
            live = await self._wait_for_replicas()
            load = {rid: 0 for rid in live}
            for p in self.particles.values():
                if p.replica in load:
                    load[p.replica] += 1
            plans: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))  # restore, respawn
            for pid in orphans:
                p = self.particles[pid]
                if p.saved is None and p.stepped:
                    self._lose(pid)
                    continue
                target = min(load, key=load.get)
                load[target] += 1
                plans[target][0 if p.saved is not None else 1].append(pid)

            async def place(rid: str, restore: list[int], respawn: list[int]) -> list[ParticleState]:
                handle = live[rid]
                if restore:
                    await handle.import_(self.req, self.spec, [self.particles[pid].saved for pid in restore], restore)
                return await handle.spawn(self.req, self.spec, respawn) if respawn else []

            self._touched.update(plans)
            done = await self._gather({rid: place(rid, *plan) for rid, plan in plans.items()})
            for rid, respawned in done.items():
                restore, respawn = plans[rid]
                for pid in restore + respawn:
                    self.particles[pid].replica = rid
                for state in respawned:
                    self.particles[state.pid].state = state
                self.restored += len(restore) + len(respawn)
                self._round_restored += len(restore) + len(respawn)
        for pid, p in self.particles.items():  # still orphaned after every try
            if p.replica in self._dead:
                self._lose(pid)

    def _lose(self, pid: int) -> None:
        """A particle gone for good: weight zero (it gets no offspring)."""
        p = self.particles[pid]
        p.state = p.state.model_copy(update={"log_weight": -math.inf, "finished": True})
        p.offset, p.replica, p.saved = 0.0, "", None
        self._round_lost += 1

    def _raise_program_errors(self) -> None:
        for p in self.particles.values():
            if p.state.error:
                raise ProgramError(p.state.error)

    # -- weights and resampling --------------------------------------------------------------
    async def _apply_twist(self) -> None:
        """Score what is new in each live particle's text under the twist; the change goes
        into its offset (a particle with weight zero is not scored: nothing would change)."""
        if self._twist is None:
            return
        todo = []
        for p in self.particles.values():
            if not p.replica or p.state.error or not math.isfinite(p.log_weight):
                continue
            text = scored_part(p.state.text, p.state.finished)
            if text != p.twisted:
                todo.append((p, text))
        if not todo:
            return
        scores = await self._twist.extend([(p.twisted, p.twist, text) for p, text in todo])
        for (p, text), score in zip(todo, scores):
            p.offset += score - p.twist
            p.twist, p.twisted = score, text

    def _log_weights(self) -> tuple[list[int], np.ndarray]:
        pids = list(self.particles)
        return pids, np.array([self.particles[p].log_weight for p in pids])

    def _normalised_weights(self) -> list[float]:
        lw = self._log_weights()[1]
        if not len(lw) or not np.isfinite(lw).any():
            return [0.0] * len(lw)
        return [round(float(w), 6) for w in normalize_log_weights(lw)]

    def _ess(self) -> float:
        return effective_sample_size(self._log_weights()[1])

    async def _resample(self) -> None:
        pids, lw = self._log_weights()
        if not np.isfinite(lw).any():
            raise ProgramError(
                "every particle has weight zero (each violated a condition or was lost)"
            )
        n = self.config.particles
        ancestors = resample(self.config.resampler, normalize_log_weights(lw), n, self._rng)
        mean = float(np.logaddexp.reduce(lw[np.isfinite(lw)]) - math.log(len(lw)))
        counts = np.bincount(ancestors, minlength=len(pids))
        survivors: dict[int, _Particle] = {}
        clones: dict[str, dict[int, list[int]]] = defaultdict(dict)
        drops: dict[str, list[int]] = defaultdict(list)
        for pid, count in zip(pids, counts):
            parent = self.particles[pid]
            if count == 0:
                if parent.replica:
                    drops[parent.replica].append(pid)
                continue
            survivors[pid] = parent
            children = [self._new_id() for _ in range(count - 1)]
            if children:
                clones[parent.replica][pid] = children
            for child in children:
                survivors[child] = self._child(parent, child)
        for p in survivors.values():
            p.offset = mean - p.state.log_weight
        live = self._live()

        async def apply(rid: str) -> None:
            if drops.get(rid):
                await live[rid].drop(self.req, drops[rid])
            if clones.get(rid):
                await live[rid].clone(self.req, clones[rid])

        self.particles = survivors
        await self._gather({rid: apply(rid) for rid in set(drops) | set(clones) if rid in live})

    @staticmethod
    def _child(parent: _Particle, child: int) -> _Particle:
        """A clone's record: its parent's state, and its parent's saved state to restore from."""
        return _Particle(parent.replica, parent.state.model_copy(update={"pid": child}), parent.offset,
                         parent.saved, parent.stepped, parent.twist, parent.twisted)

    async def _branch(self, k: int) -> None:
        """steer: every active particle gets k-1 clones beside it (weights unchanged)."""
        plans: dict[str, dict[int, list[int]]] = defaultdict(dict)
        for pid, p in list(self.particles.items()):
            if p.active:
                children = [self._new_id() for _ in range(k - 1)]
                plans[p.replica][pid] = children
                for child in children:
                    self.particles[child] = self._child(p, child)
        live = self._live()
        await self._gather({r: live[r].clone(self.req, plan) for r, plan in plans.items() if r in live})

    async def _keep_best(self, n: int) -> None:
        """steer: keep the n highest-weight particles, drop the rest where they live."""
        ranked = sorted(self.particles.items(), key=lambda kv: kv[1].log_weight, reverse=True)
        drops: dict[str, list[int]] = defaultdict(list)
        for pid, p in ranked[n:]:
            if p.replica:
                drops[p.replica].append(pid)
        self.particles = dict(ranked[:n])
        live = self._live()
        await self._gather({r: live[r].drop(self.req, ids) for r, ids in drops.items() if r in live})

    # -- load balance --------------------------------------------------------------------------
    async def _rebalance(self) -> int:
        """Move active particles from the busiest to the idlest replica while loads differ by
        more than `imbalance` (and use replicas that joined, e.g. a replacement)."""
        live = self._live()
        accepting = list(self._accepting())
        if not accepting:
            return 0
        load = {rid: 0 for rid in live}
        for p in self.particles.values():
            if p.active and p.replica in load:
                load[p.replica] += 1
        moves: dict[tuple[str, str], list[int]] = defaultdict(list)
        moving: set[int] = set()
        # A draining replica (being retired) hands all its particles on.
        for pid, p in self.particles.items():
            if p.active and p.replica in load and p.replica not in accepting:
                dst = min(accepting, key=load.get)
                moves[(p.replica, dst)].append(pid)
                moving.add(pid)
                load[p.replica] -= 1
                load[dst] += 1
        while True:
            src = max(accepting, key=load.get)
            dst = min(accepting, key=load.get)
            if load[src] - load[dst] <= self.config.imbalance:
                break
            pid = next(
                pid for pid, p in self.particles.items()
                if p.active and p.replica == src and pid not in moving
            )
            moving.add(pid)
            moves[(src, dst)].append(pid)
            load[src] -= 1
            load[dst] += 1
        # Every (source, destination) pair moves at once: one after another, the pairs' Ray
        # round trips added up and dominated rounds at 8+ replicas (see bench/scaling.py).
        # A replica that dies meanwhile leaves the particles on it (export failed: restored
        # from their saved state) or, if the destination died, in hand: their exported state
        # is the freshest there is, and `_heal` places them from it.
        async def move(src: str, dst: str, ids: list[int]) -> None:
            try:
                blobs = await live[src].export(self.req, ids)
            except ReplicaLost:
                self._replica_died(src)
                return
            for pid, blob in zip(ids, blobs):
                self.particles[pid].replica, self.particles[pid].saved = dst, blob
            self._touched.add(dst)
            try:
                await live[dst].import_(self.req, self.spec, blobs)
            except ReplicaLost:
                self._replica_died(dst)

        await asyncio.gather(*(move(src, dst, ids) for (src, dst), ids in moves.items()))
        return sum(len(ids) for ids in moves.values())

    # -- bookkeeping -----------------------------------------------------------------------
    async def _record(
        self, rnd: int, ess: float, resampled: bool, lost: int, migrations: int, sched_s: float,
        weights: list[float] | None = None,
    ) -> None:
        per_replica: dict[str, int] = defaultdict(int)
        for p in self.particles.values():
            if p.replica:
                per_replica[p.replica] += 1
        best = max(self.particles.values(), key=lambda p: p.log_weight, default=None)
        entry = RoundTrace(
            round=rnd,
            ess=ess,
            resampled=resampled,
            active=sum(p.active for p in self.particles.values()),
            lost=lost,
            restored=self._round_restored,
            migrations=migrations,
            particles_per_replica=dict(per_replica),
            best_text=best.state.text[-200:] if best else "",
            scheduler_ms=sched_s * 1000,
            weights=weights if weights is not None else self._normalised_weights(),
        )
        self.trace.append(entry)
        self._last_round = rnd
        if self._on_round is not None:
            maybe = self._on_round(entry)
            if asyncio.iscoroutine(maybe):
                await maybe

    async def _drop_everywhere(self) -> None:
        try:
            live = {h.replica_id: h for h in self._replicas()}
        except Exception:
            return
        await asyncio.gather(
            *(live[r].drop(self.req) for r in self._touched if r in live), return_exceptions=True
        )

    def _result(self, stopped: str, wall: float) -> CouncilResult:
        pids, lw = self._log_weights()
        weights = normalize_log_weights(lw) if len(lw) else np.zeros(0)
        posterior: dict[str, list] = {}
        for pid, w in zip(pids, weights):
            st = self.particles[pid].state
            if st.finished and st.error is None and w > 0:
                entry = posterior.setdefault(st.text, [0.0, st.passes_check])
                entry[0] += float(w)
        finite = lw[np.isfinite(lw)]
        log_ml = float(np.logaddexp.reduce(finite) - math.log(len(lw))) if len(finite) else -math.inf
        ranked = sorted(self.particles.values(), key=lambda p: p.log_weight, reverse=True)
        passing = [p for p in ranked if p.state.finished and p.state.passes_check and math.isfinite(p.log_weight)]
        finished = [p for p in ranked if p.state.finished and math.isfinite(p.log_weight)]
        best = (passing or finished or ranked or [None])[0]
        return CouncilResult(
            text=best.state.text if best else "",
            passed_check=bool(passing),
            method=self.config.method,
            particles=self.config.particles,
            posterior=sorted(
                (PosteriorEntry(text=t, probability=v[0], passes_check=v[1]) for t, v in posterior.items()),
                key=lambda e: -e.probability,
            ),
            log_ml=log_ml,
            prompt_tokens=max((p.state.prompt_tokens for p in self.particles.values()), default=0),
            rounds=self._last_round,
            stopped=stopped,
            follower_tokens=self.tokens,
            wall_time_s=wall,
            trace=self.trace,
            program=self.spec.source,
        )
