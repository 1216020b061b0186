"""`council bench trace`: one SMC run drawn as particles × rounds.

Each column is a round, each row a particle slot (particles in order), the shade its
normalised weight before that round's resampling; rounds that resampled are marked. The run
is one COLLIE task, planned by the library and run on one in-process replica.

    council bench trace --task wiki_c07/0 --png bench/results/smc_trace.png
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path


def plot_trace(trace: list, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = max((len(t.weights) for t in trace), default=0)
    grid = np.full((rows, len(trace)), np.nan)
    for col, t in enumerate(trace):
        grid[:len(t.weights), col] = t.weights
    fig, ax = plt.subplots(figsize=(max(6, len(trace) * 0.12), 4))
    shown = ax.imshow(grid, aspect="auto", cmap="Greys", vmin=0, vmax=np.nanmax(grid) if grid.size else 1,
                      interpolation="nearest")
    for col, t in enumerate(trace):
        if t.resampled:
            ax.axvline(col, color="tab:red", linewidth=0.8, alpha=0.7)
    ax.set_xlabel("round (red: resampled after it)")
    ax.set_ylabel("particle")
    ax.set_title(title, fontsize=9)
    fig.colorbar(shown, ax=ax, label="normalised weight")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(task_id: str, png: Path, particles: int = 16, seed: int = 0, tasks_path: Path | None = None,
        engine=None, json_path: Path | None = None, report_path: Path | None = None) -> dict:
    from actors.engines.torch_engine import TorchEngine
    from actors.particle_host import LocalReplica, ParticleHost
    from bench.collie import DATA
    from cluster.config import CouncilConfig, EngineConfig
    from cluster.runner import CouncilRunner, RunRequest
    from cluster.scheduler import InferenceConfig

    tasks = [json.loads(line) for line in (tasks_path or DATA).read_text().splitlines() if line.strip()]
    task = next((t for t in tasks if t["id"] == task_id), None)
    if task is None:
        raise ValueError(f"no task {task_id!r}")
    engine = engine or TorchEngine.load(EngineConfig())
    replicas = [LocalReplica("r0", ParticleHost(engine))]
    runner = CouncilRunner(CouncilConfig(), lambda: replicas)
    result = asyncio.run(runner.run(RunRequest(prompt=task["prompt"],
                                               inference=InferenceConfig(particles=particles, seed=seed))))
    title = f"{task_id}: {len(result.trace)} rounds, {sum(t.resampled for t in result.trace)} resamplings\n" \
            f"{result.text[:70]}"
    plot_trace(result.trace, png, title)
    summary = {"task": task_id, "particles": particles, "rounds": len(result.trace),
               "resampled_rounds": sum(t.resampled for t in result.trace), "text": result.text,
               "passed_check": result.passed_check, "png": str(png),
               "ess": [round(t.ess, 3) for t in result.trace]}
    print(f"{task_id}: {summary['rounds']} rounds, {summary['resampled_rounds']} resamplings -> {png}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2))
    if report_path:
        from bench.report import append

        append(f"SMC trace: {task_id}", f"{particles} particles, {summary['rounds']} rounds, "
               f"{summary['resampled_rounds']} resamplings; answer (passes: {summary['passed_check']}): "
               f"“{result.text}”", [png], report_path)
    return summary
