"""`council bench throughput`: Council's SMC against the raw engine and against llamppl.

Same model (SmolLM2-135M-Instruct), same program (every particle samples `steps` tokens), same
particle count, in one run:
- raw transformers decode at batch = particles: the physical limit here (`bench/engine.py`);
- Council SMC on 1 and 2 replicas (`bench/smc.py`);
- llamppl's `smc_standard` with its CPU transformers backend, as shipped and at its best
  (`bench/llamppl_smc.py`), in llamppl's own virtual environment (`scripts/install_llamppl.sh`;
  its dependencies are heavy and pinned differently), on the same weights exported once as an
  ordinary Hugging Face directory.

Ratios printed: Council / raw and Council / llamppl. The goal is ≥ 0.8 of raw.

    council bench throughput --json bench/results/throughput.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.report import append, table

ROOT = Path(__file__).resolve().parents[1]
LLAMPPL_PYTHON = ROOT / ".venv-llamppl" / "bin" / "python"


def llamppl_python() -> Path | None:
    given = os.environ.get("COUNCIL_LLAMPPL_PYTHON")
    path = Path(given) if given else LLAMPPL_PYTHON
    return path if path.is_file() else None


def run_llamppl(python: Path, model_dir: Path, prompt: str, particles: int, steps: int, mode: str,
                dtype: str, timeout_s: float) -> dict:
    prompt_file = model_dir / "bench_prompt.txt"
    prompt_file.write_text(prompt)
    cmd = [str(python), str(ROOT / "bench" / "llamppl_smc.py"), "--model-dir", str(model_dir),
           "--prompt-file", str(prompt_file), "--particles", str(particles), "--steps", str(steps),
           "--mode", mode, "--dtype", dtype]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "error": f"ran over {timeout_s:g} s"}
    if done.returncode != 0:
        return {"mode": mode, "error": done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(json_path: Path | None, particles: int = 32, steps: int = 32, llamppl_modes=("shipped", "best"),
        model: str = "smollm2", timeout_s: float = 1800, report_path: Path | None = None,
        repeats: int = 3) -> dict:
    from actors.engines.model_source import export_hf_directory
    from bench.smc import run_smc_bench

    report = run_smc_bench(None, particles=particles, steps=steps, model=model, repeats=repeats)
    python = llamppl_python()
    report["llamppl"] = {}
    if python is None:
        report["llamppl"]["skipped"] = ("llamppl is not installed: run scripts/install_llamppl.sh "
                                        "(or set COUNCIL_LLAMPPL_PYTHON)")
        print(f"  llamppl: {report['llamppl']['skipped']}")
    else:
        cache = Path(os.environ.get("COUNCIL_CACHE", "~/.cache/council")).expanduser() / f"hf-{Path(model).name}"
        if not (cache / "config.json").is_file():
            export_hf_directory(model, cache)
        for mode in llamppl_modes:
            row = run_llamppl(python, cache, report["prompt"], particles, steps, mode, report["dtype"], timeout_s)
            report["llamppl"][mode] = row
            if "error" in row:
                print(f"  llamppl {mode}: {row['error']}")
            else:
                print(f"  llamppl smc_standard, {mode:7s}: {row['tokens_per_s']:7.1f} tok/s ({row['dtype']}, "
                      f"batch {row['batch_size']})")
    # Each replica count against the raw runs that alternated with its own runs.
    ratios = {f"council_{r}_vs_raw": report["smc_vs_raw"][r] for r in report["smc"]}
    for mode, row in report["llamppl"].items():
        if isinstance(row, dict) and row.get("tokens_per_s"):
            for r in report["smc"]:
                ratios[f"council_{r}_vs_llamppl_{mode}"] = report["smc"][r]["tokens_per_s"] / row["tokens_per_s"]
    report["ratios"] = ratios
    report["benchmark"] = "throughput"
    for name, value in ratios.items():
        print(f"  {name}: {value:.2f}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
        print(f"wrote {json_path}")
    if report_path:
        append("Throughput", section(report), report=report_path)
    return report


def section(report: dict) -> str:
    raw = report["raw_tokens_per_s"]
    rows = [["raw transformers decode", f"{raw:.1f}", report["dtype"], "1.00", ""]]
    for r, run in report["smc"].items():
        rows.append([f"Council SMC, {r} replica(s)", f"{run['tokens_per_s']:.1f}", report["dtype"],
                     f"{report['smc_vs_raw'][r]:.2f}", f"raw {run['raw_tokens_per_s']:.0f} in the same runs"])
    for mode, row in report["llamppl"].items():
        if mode == "skipped":
            rows.append(["llamppl smc_standard", "–", "", "", row])
        elif "error" in row:
            rows.append([f"llamppl smc_standard, {mode}", "–", "", "", row["error"]])
        else:
            rows.append([f"llamppl smc_standard, {mode}", f"{row['tokens_per_s']:.1f}", row["dtype"],
                         f"{row['tokens_per_s'] / raw:.2f}", f"batch {row['batch_size']}"])
    ratios = ", ".join(f"{k} {v:.2f}" for k, v in report["ratios"].items())
    return (f"Model {report['model']}, {report['particles']} particles × {report['steps']} tokens, "
            f"{report['cpu_threads']} CPU threads; raw and Council medians of {report['repeats']} alternating "
            "runs (llamppl: one run each).\n\n"
            + table(["contender", "tokens/s", "dtype", "vs raw", "note"], rows) + f"\n\nRatios: {ratios}.")


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
