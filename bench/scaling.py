"""`council bench scaling`: a discrete-event simulation of the SMC scheduler on R replicas.

What a round costs is measured on this machine first (`calibrate`), then `simulate` replays
the scheduler's loop (cluster/scheduler.py) for R = 1 … 64 replicas and N up to 1,024
particles, one event per replica call:

1. *advance*: every replica steps its particles at once; its call ends after the Ray round
   trip plus its engine step at that batch (`step_s(b)`, measured in-process at several
   batches, interpolated; batches above the engine's `max_batch_size` run as several
   forwards). The round waits for the slowest replica.
2. *scheduler*: weights, ESS, bookkeeping: measured per particle.
3. *resampling*, in a share of rounds (`resample_rate`, from a real COLLIE trace or given):
   weights drawn from a Dirichlet(1) (ESS ≈ N/2, the default threshold), systematic
   resampling as the scheduler does, each child cloned on its parent's replica.
4. *migration*: the scheduler's rebalancing rule (move one particle from the busiest to the
   idlest replica while loads differ by more than `imbalance`), then one export and one
   import call per (source, destination) pair, all pairs at once (`sequential_migration`
   models the scheduler before it moved pairs concurrently); a moved particle's tokens are
   recomputed by its new replica on the next step (the KV cache does not travel), which
   lengthens that replica's next call.

Each replica is one device like this machine (both cores). The model is checked against real
runs at R = 1 and R = 2 here; at R = 2 the two replicas share the machine, so that check uses
the step curve measured with one core.

    council bench scaling --json bench/results/scaling.json
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

BATCHES = (1, 4, 16, 32, 64)


@dataclass
class Calibration:
    step_s: dict[int, float]             # one replica's advance at batch b, in-process (full machine)
    step_s_half: dict[int, float]        # the same on half the cores (two replicas on this machine)
    call_s: float                        # a Ray actor round trip beyond the work itself
    scheduler_s_per_particle: float
    resample_s_per_particle: float       # systematic resampling + cloning a particle's state
    migrate_s_per_particle: float        # export + import of a particle's state
    prefill_s_per_token: float           # recomputing a moved particle's tokens
    max_batch: int = 64


def step_time(curve: dict[int, float], b: int, max_batch: int) -> float:
    """Interpolated step latency at batch b (linear beyond the last point)."""
    if b <= 0:
        return 0.0
    if b > max_batch:  # the engine splits it into forwards of at most max_batch
        full, rest = divmod(b, max_batch)
        return full * step_time(curve, max_batch, max_batch) + step_time(curve, rest, max_batch)
    xs = sorted(curve)
    ys = [curve[x] for x in xs]
    if b >= xs[-1]:
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2]) if len(xs) > 1 else 0.0
        return ys[-1] + slope * (b - xs[-1])
    return float(np.interp(b, xs, ys))


def rebalance(load: list[int], imbalance: int) -> dict[tuple[int, int], int]:
    """The scheduler's rule: one particle at a time from the busiest to the idlest replica."""
    load, moves = list(load), {}
    while True:
        src = max(range(len(load)), key=load.__getitem__)
        dst = min(range(len(load)), key=load.__getitem__)
        if load[src] - load[dst] <= imbalance:
            return moves
        load[src] -= 1
        load[dst] += 1
        moves[(src, dst)] = moves.get((src, dst), 0) + 1


def simulate(cal: Calibration, replicas: int, particles: int, rounds: int = 64, resample_rate: float = 0.3,
             imbalance: int = 2, seed: int = 0, half_cores: bool = False,
             sequential_migration: bool = False) -> dict:
    from cluster.resampling import systematic

    rng = np.random.default_rng(seed)
    curve = cal.step_s_half if half_cores else cal.step_s
    owner = np.arange(particles) * replicas // particles  # particle -> replica, spread evenly
    extra = np.zeros(replicas)  # recompute owed by each replica on its next step
    clock = spent_work = spent_sched = spent_resample = spent_migrate = 0.0
    migrations = 0
    for rnd in range(1, rounds + 1):
        # 1. advance: one call per replica, all in flight together; the round waits for the last.
        load = np.bincount(owner, minlength=replicas)
        ends = [cal.call_s + step_time(curve, int(load[r]), cal.max_batch) + extra[r] for r in range(replicas)]
        extra[:] = 0
        spent_work += max(ends)
        # 2. the scheduler's own bookkeeping
        spent_sched += cal.scheduler_s_per_particle * particles
        # 3. resampling: children stay on their parent's replica
        if rnd < rounds and rng.random() < resample_rate:
            weights = rng.dirichlet(np.ones(particles))
            owner = np.sort(owner[systematic(weights, particles, rng)])
            spent_resample += cal.resample_s_per_particle * particles
            # 4. migration back to balance, pair by pair
            moves = rebalance(list(np.bincount(owner, minlength=replicas)), imbalance)
            pair_s = [2 * cal.call_s + n * cal.migrate_s_per_particle for n in moves.values()]
            spent_migrate += (sum(pair_s) if sequential_migration else max(pair_s, default=0.0))
            for (src, dst), n in moves.items():
                movable = np.flatnonzero(owner == src)[:n]
                owner[movable] = dst
                extra[dst] += n * rnd * cal.prefill_s_per_token
                migrations += n
        clock = spent_work + spent_sched + spent_resample + spent_migrate
    tokens = particles * rounds
    return {"replicas": replicas, "particles": particles, "rounds": rounds,
            "tokens_per_s": tokens / clock, "round_ms": 1000 * clock / rounds,
            "share_engine_and_calls": spent_work / clock, "share_scheduler": spent_sched / clock,
            "share_resampling": spent_resample / clock, "share_migration": spent_migrate / clock,
            "migrations_per_round": migrations / rounds}


# -- calibration on this machine ---------------------------------------------------------------


async def _local_round_s(engine, particles: int, steps: int, prompt: str, seed: int) -> tuple[float, float]:
    """(seconds per round, scheduler seconds per round) of the fixed-length program in-process.

    Every call needs its own `seed`: particles of an earlier run with the same seed would draw
    the same tokens, and the engine would answer them from its cache."""
    from actors.particle_host import LocalReplica, ParticleHost
    from bench.smc import FIXED_LENGTH_PROGRAM
    from cluster.protocol import ProgramSpec
    from cluster.scheduler import InferenceConfig, Scheduler

    replicas = [LocalReplica("r0", ParticleHost(engine))]
    def spec(s: int) -> ProgramSpec:  # the particles' draws are seeded by the spec
        return ProgramSpec(source=FIXED_LENGTH_PROGRAM.format(steps=steps), prompt=prompt, seed=s)

    await Scheduler(spec(seed + 1), InferenceConfig(particles=particles, seed=seed + 1), lambda: replicas).run()
    started = time.perf_counter()
    result = await Scheduler(spec(seed), InferenceConfig(particles=particles, seed=seed), lambda: replicas).run()
    wall = time.perf_counter() - started
    rounds = max(1, result.rounds)
    return wall / rounds, sum(t.scheduler_ms for t in result.trace) / 1000 / rounds


async def _state_costs(engine, prompt: str, n: int = 64) -> tuple[float, float]:
    """Per particle: (systematic resampling + clone, export + import), in-process."""
    from actors.particle_host import ParticleHost
    from bench.smc import FIXED_LENGTH_PROGRAM
    from cluster.resampling import systematic
    from cluster.protocol import ProgramSpec

    host = ParticleHost(engine)
    spec = ProgramSpec(source=FIXED_LENGTH_PROGRAM.format(steps=64), prompt=prompt)
    await host.spawn("cal", spec, list(range(n)))
    for _ in range(16):
        await host.advance("cal", list(range(n)))
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    parents = systematic(rng.dirichlet(np.ones(n)), n, rng)
    plan: dict[int, list[int]] = {}
    for child, parent in enumerate(parents):
        plan.setdefault(int(parent), []).append(n + child)
    await host.clone("cal", plan)
    resample = (time.perf_counter() - started) / n
    started = time.perf_counter()
    blobs = await host.export("cal", list(range(n, 2 * n)))
    await host.import_("cal", spec, blobs)
    migrate = (time.perf_counter() - started) / n
    await host.drop("cal")
    return resample, migrate


def calibrate(particles: int, steps: int, model: str = "smollm2") -> tuple[Calibration, dict]:
    """Measure every cost on this machine; also the real R = 1 and R = 2 runs to check against."""
    import torch

    from actors.engines.torch_engine import TorchEngine
    from actors.engines.torch_thread import on_torch_thread
    from bench.engine import shared_prompt
    from bench.smc import _smc_runs
    from cluster.config import EngineConfig
    from cluster.runtime import connect_ray

    engine = TorchEngine.load(EngineConfig(model=model, max_batch_size=max(BATCHES)))
    prompt = shared_prompt(engine.tokenizer)
    cores = on_torch_thread(torch.get_num_threads)
    curves: dict[int, dict[int, float]] = {}
    scheduler = {}
    for threads in (cores, max(1, cores // 2)):
        on_torch_thread(torch.set_num_threads, threads)
        curves[threads] = {}
        for b in BATCHES:
            round_s, sched_s = asyncio.run(_local_round_s(engine, b, 8, prompt, seed=10_000 * threads + 2 * b))
            curves[threads][b] = round_s - sched_s
            scheduler[b] = sched_s / b
        print(f"  step latency, {threads} thread(s): " +
              ", ".join(f"b={b} {1000 * s:.1f} ms" for b, s in curves[threads].items()))
    on_torch_thread(torch.set_num_threads, cores)
    resample_s, migrate_s = asyncio.run(_state_costs(engine, prompt))
    ids = engine.tokenizer(prompt)["input_ids"]
    asyncio.run(engine.next_token_logprobs(ids + [1] * 8))
    started = time.perf_counter()
    fresh = ids + list(range(100, 164))  # 64 tokens the cache has not seen
    asyncio.run(engine.next_token_logprobs(fresh))
    prefill_per_token = (time.perf_counter() - started) / 64
    del engine

    connect_ray()
    measured = {}
    for r in (1, 2):
        measured[r] = asyncio.run(_smc_runs(r, particles, steps, prompt, "auto", model))[0][0]
    # The Ray round trip: the real single-replica round beyond the in-process one.
    local_round = curves[cores][particles] if particles in curves[cores] else step_time(curves[cores], particles, 64)
    call_s = max(0.0, measured[1]["round_ms"] / 1000 - local_round - scheduler.get(particles, 0) * particles)
    cal = Calibration(step_s=curves[cores], step_s_half=curves[max(1, cores // 2)], call_s=call_s,
                      scheduler_s_per_particle=float(np.median(list(scheduler.values()))),
                      resample_s_per_particle=resample_s, migrate_s_per_particle=migrate_s,
                      prefill_s_per_token=prefill_per_token)
    return cal, measured


def plot(curves: dict, measured: dict, checks: dict, path: Path, before: dict | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for n, rows in curves.items():
        rs = [row["replicas"] for row in rows]
        left.plot(rs, [row["tokens_per_s"] for row in rows], marker="o", markersize=3, label=f"simulated, N={n}")
        right.plot(rs, [row["efficiency"] for row in rows], marker="o", markersize=3, label=f"N={n}")
    for n, rows in (before or {}).items():
        left.plot([row["replicas"] for row in rows], [row["tokens_per_s"] for row in rows], linestyle="--",
                  color="grey", label=f"N={n}, pairs migrated in sequence")
    left.scatter([1, 2], [measured[1]["tokens_per_s"], measured[2]["tokens_per_s"]], color="black", zorder=5,
                 label=f"measured here, N={checks['particles']}")
    left.scatter([1, 2], [checks["predicted"]["1"], checks["predicted"]["2"]], marker="x", color="tab:red",
                 zorder=5, label="simulated for this machine")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("replicas")
        ax.legend(fontsize=7)
    left.set_yscale("log")
    left.set_ylabel("tokens/s")
    right.set_ylabel("efficiency (speed-up / replicas)")
    right.set_ylim(0, 1.05)
    fig.suptitle("SMC throughput vs replicas (one replica per device like this machine)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(json_path: Path | None, png: Path | None, particles: int = 32, steps: int = 32,
        resample_rate: float = 0.3, replicas: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64),
        sizes: tuple[int, ...] = (64, 256, 1024), model: str = "smollm2", report_path: Path | None = None) -> dict:
    cal, measured = calibrate(particles, steps, model)
    # The check: this machine's own R = 1 and R = 2 (no resampling: the measured program has none).
    predicted = {"1": simulate(cal, 1, particles, steps, 0.0)["tokens_per_s"],
                 "2": simulate(cal, 2, particles, steps, 0.0, half_cores=True)["tokens_per_s"]}
    checks = {"particles": particles, "steps": steps, "predicted": predicted,
              "measured": {str(r): m["tokens_per_s"] for r, m in measured.items()},
              "error": {r: predicted[r] / measured[int(r)]["tokens_per_s"] - 1 for r in predicted}}
    print(f"  check: R=1 simulated {predicted['1']:.0f} vs measured {measured[1]['tokens_per_s']:.0f} tok/s; "
          f"R=2 simulated {predicted['2']:.0f} vs measured {measured[2]['tokens_per_s']:.0f} tok/s")
    curves = {}
    for n in sizes:
        rows = [simulate(cal, r, n, 64, resample_rate) for r in replicas if r <= n]
        for row in rows:
            row["efficiency"] = row["tokens_per_s"] / (rows[0]["tokens_per_s"] * row["replicas"])
        curves[n] = rows
        print(f"  N={n:5d}: " + ", ".join(f"R={row['replicas']} {row['tokens_per_s']:.0f} tok/s "
                                         f"({row['efficiency']:.2f})" for row in rows))
    # The same largest pool with migrations one pair after another, as the scheduler did before.
    n = max(sizes)
    before = [simulate(cal, r, n, 64, resample_rate, sequential_migration=True) for r in replicas if r <= n]
    print(f"  N={n:5d}, pairs migrated in sequence: " +
          ", ".join(f"R={row['replicas']} {row['tokens_per_s']:.0f}" for row in before))
    report = {"benchmark": "scaling", "calibration": asdict(cal), "resample_rate": resample_rate,
              "checks": checks, "curves": {str(n): rows for n, rows in curves.items()},
              "sequential_migration": {str(n): before}}
    if png:
        plot(curves, measured, checks, png, before={n: before})
        report["png"] = str(png)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2, default=lambda x: None))
        print(f"wrote {json_path}")
    if report_path:
        from bench.report import append

        append("Scaling (simulated)", section(report), [png] if png else [], report_path)
    return report


def section(report: dict) -> str:
    from bench.report import table

    c = report["checks"]
    cal = report["calibration"]
    head = (f"Calibrated here: step {1000 * min(cal['step_s'].values()):.1f}–{1000 * max(cal['step_s'].values()):.1f} ms "
            f"(batch {min(cal['step_s'])}–{max(cal['step_s'])}), Ray call {1000 * cal['call_s']:.1f} ms, migration "
            f"{1e6 * cal['migrate_s_per_particle']:.0f} µs/particle + recompute {1e3 * cal['prefill_s_per_token']:.2f} "
            f"ms/token; resampling in {report['resample_rate']:.0%} of rounds. Check against real runs "
            f"({c['particles']} particles × {c['steps']} tokens): R=1 simulated {c['predicted']['1']:.0f} vs measured "
            f"{c['measured']['1']:.0f} tok/s, R=2 simulated {c['predicted']['2']:.0f} vs measured "
            f"{c['measured']['2']:.0f} tok/s.")
    rows = [[n, r["replicas"], f"{r['tokens_per_s']:.0f}", f"{r['efficiency']:.2f}", f"{r['share_resampling']:.3f}",
             f"{r['share_migration']:.3f}", f"{r['migrations_per_round']:.1f}"]
            for n, curve in report["curves"].items() for r in curve]
    return head + "\n\n" + table(["particles", "replicas", "tokens/s", "efficiency", "time resampling",
                                   "time migrating", "migrations/round"], rows)
