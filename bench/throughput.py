"""`council bench throughput`: Council's SMC against the raw engine, llamppl and genlm-control.

Same model (SmolLM2-135M-Instruct), same program (every particle samples `steps` tokens), same
particle count, in one run:
- raw transformers decode at batch = particles: the physical limit here (`bench/engine.py`);
- Council SMC on 1 and 2 replicas (`bench/smc.py`);
- llamppl's `smc_standard` with its CPU transformers backend, as shipped and at its best
  (`bench/llamppl_smc.py`), in llamppl's own virtual environment (`scripts/install_llamppl.sh`;
  its dependencies are heavy and pinned differently), on the same weights exported once as an
  ordinary Hugging Face directory;
- genlm-control's SMC (`direct_token_sampler(PromptedLLM)` with EOS masked out), as shipped and at
  its best (`bench/genlm_smc.py --task fixed`), likewise in its own virtual environment
  (`scripts/install_genlm.sh`) on the same directory.

Ratios printed: Council / raw, Council / llamppl and Council / genlm-control. The goal is ≥ 0.8 of raw.

    council bench throughput --json bench/results/throughput.json
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.report import append, table

ROOT = Path(__file__).resolve().parents[1]
LLAMPPL_PYTHON = ROOT / ".venv-llamppl" / "bin" / "python"
GENLM_PYTHON = ROOT / ".venv-genlm" / "bin" / "python"


def _venv_python(env_var: str, default: Path) -> Path | None:
    given = os.environ.get(env_var)
    path = Path(given) if given else default
    return path if path.is_file() else None


def llamppl_python() -> Path | None:
    return _venv_python("COUNCIL_LLAMPPL_PYTHON", LLAMPPL_PYTHON)


def genlm_python() -> Path | None:
    return _venv_python("COUNCIL_GENLM_PYTHON", GENLM_PYTHON)


def hf_directory(model: str) -> Path:
    """`model` as an ordinary Hugging Face directory under the cache, exported once: what the
    peers' loaders read (they take no GGUF)."""
    from actors.engines.model_source import cache_root, export_hf_directory

    directory = cache_root() / f"hf-{Path(model).name}"
    if not (directory / "config.json").is_file():
        export_hf_directory(model, directory)
    return directory


def run_json_script(cmd: list[str], timeout_s: float) -> dict:
    """Run a bench script in another interpreter; its last stdout line is a JSON row. A failure
    or a timeout comes back as {"error"}."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"ran over {timeout_s:g} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1][:300] if done.stderr.strip() else "failed"}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": f"no JSON row on stdout: {done.stdout.strip()[-300:]!r}"}


def run_peer_script(python: Path, script: str, model_dir: Path, prompt: str, particles: int, steps: int,
                    mode: str, dtype: str, timeout_s: float, extra: tuple[str, ...] = ()) -> dict:
    """Run a peer's bench script (bench/<script>) in its own interpreter, the prompt in a private
    temporary folder (the model directory is shared by every bench that reads it). A failure or a
    timeout comes back as {"mode", "error"}."""
    with tempfile.TemporaryDirectory(prefix="council-peer-") as tmp:
        prompt_file = Path(tmp) / "prompt.txt"
        prompt_file.write_text(prompt)
        row = run_json_script([str(python), str(ROOT / "bench" / script), "--model-dir", str(model_dir),
                               "--prompt-file", str(prompt_file), "--particles", str(particles),
                               "--steps", str(steps), "--mode", mode, "--dtype", dtype, *extra], timeout_s)
    return {"mode": mode, **row} if "error" in row else row


def run_llamppl(python: Path, model_dir: Path, prompt: str, particles: int, steps: int, mode: str,
                dtype: str, timeout_s: float) -> dict:
    return run_peer_script(python, "llamppl_smc.py", model_dir, prompt, particles, steps, mode, dtype, timeout_s)


def run_genlm(python: Path, model_dir: Path, prompt: str, particles: int, steps: int, mode: str,
              dtype: str, timeout_s: float) -> dict:
    return run_peer_script(python, "genlm_smc.py", model_dir, prompt, particles, steps, mode, dtype, timeout_s,
                           extra=("--task", "fixed"))


# Peers run in their own virtual environments: report key, table label, package, interpreter, runner,
# installer, the variable that points at another interpreter.
PEERS = (
    ("llamppl", "llamppl smc_standard", "llamppl", llamppl_python, run_llamppl, "scripts/install_llamppl.sh",
     "COUNCIL_LLAMPPL_PYTHON"),
    ("genlm", "genlm-control SMC", "genlm-control", genlm_python, run_genlm, "scripts/install_genlm.sh",
     "COUNCIL_GENLM_PYTHON"),
)


def run(json_path: Path | None, particles: int = 32, steps: int = 32, llamppl_modes=("shipped", "best"),
        model: str = "smollm2", timeout_s: float = 1800, report_path: Path | None = None,
        repeats: int = 3, genlm_modes=None) -> dict:
    """`genlm_modes` None runs genlm-control in the same modes as llamppl. Every installed
    peer mode runs once per round of the 1-replica series (raw decode, then the peers, then
    Council SMC), so each is a median of `repeats` runs that alternated with the others."""
    from bench.smc import run_smc_bench

    modes = {"llamppl": tuple(llamppl_modes),
             "genlm": tuple(llamppl_modes if genlm_modes is None else genlm_modes)}
    installed, peer_runs, skipped = {}, {}, {}
    for key, label, package, find_python, run_peer, installer, env_var in PEERS:
        python = find_python()
        if python is None:
            skipped[key] = f"{package} is not installed: run {installer} (or set {env_var})"
            print(f"  {key}: {skipped[key]}")
            continue
        installed[key] = (python, run_peer, label)
        peer_runs[key] = {mode: [] for mode in modes[key]}
    model_dir = hf_directory(model) if any(modes[key] for key in installed) else None

    def peers_once(prompt: str, dtype: str) -> None:
        for key, (python, run_peer, label) in installed.items():
            for mode in modes[key]:
                row = run_peer(python, model_dir, prompt, particles, steps, mode, dtype, timeout_s)
                peer_runs[key][mode].append(row)
                if "error" in row:
                    print(f"  {key} {mode}: {row['error']}")
                else:
                    print(f"  {label}, {mode:7s}: {row['tokens_per_s']:7.1f} tok/s ({row['dtype']}, "
                          f"batch {row['batch_size']})")

    report = run_smc_bench(None, particles=particles, steps=steps, model=model, repeats=repeats,
                           alongside=peers_once if installed else None)
    for key, *_ in PEERS:
        report[key] = ({"skipped": skipped[key]} if key in skipped
                       else {mode: _median_row(rows) for mode, rows in peer_runs[key].items()})
    # Each replica count against the raw runs that alternated with its own runs.
    ratios = {f"council_{r}_vs_raw": report["smc_vs_raw"][r] for r in report["smc"]}
    for key, *_ in PEERS:
        for mode, row in report[key].items():
            if isinstance(row, dict) and row.get("tokens_per_s"):
                for r in report["smc"]:
                    ratios[f"council_{r}_vs_{key}_{mode}"] = report["smc"][r]["tokens_per_s"] / row["tokens_per_s"]
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


def _median_row(rows: list[dict]) -> dict:
    """The run with the median tokens/s, with every run's figure; an error when none ran."""
    ok = sorted((r for r in rows if "error" not in r), key=lambda r: r["tokens_per_s"])
    if not ok:
        return rows[-1] if rows else {"error": "no run"}
    return {**ok[len(ok) // 2], "runs_tokens_per_s": [r["tokens_per_s"] for r in ok],
            "errors": len(rows) - len(ok)}


def section(report: dict) -> str:
    raw = report["raw_tokens_per_s"]
    rows = [["raw transformers decode", f"{raw:.1f}", report["dtype"], "1.00", ""]]
    for r, run in report["smc"].items():
        rows.append([f"Council SMC, {r} replica(s)", f"{run['tokens_per_s']:.1f}", report["dtype"],
                     f"{report['smc_vs_raw'][r]:.2f}", f"raw {run['raw_tokens_per_s']:.0f} in the same runs"])
    for key, label, *_ in PEERS:
        for mode, row in report.get(key, {}).items():
            if mode == "skipped":
                rows.append([label, "–", "", "", row])
            elif "error" in row:
                rows.append([f"{label}, {mode}", "–", "", "", row["error"]])
            else:
                rows.append([f"{label}, {mode}", f"{row['tokens_per_s']:.1f}", row["dtype"],
                             f"{row['tokens_per_s'] / raw:.2f}", f"batch {row['batch_size']}"])
    ratios = ", ".join(f"{k} {v:.2f}" for k, v in report["ratios"].items())
    return (f"Model {report['model']}, {report['particles']} particles × {report['steps']} tokens, "
            f"{report['cpu_threads']} CPU threads; raw and Council medians of {report['repeats']} alternating "
            "runs (llamppl and genlm-control alternating with them in the 1-replica series).\n\n"
            + table(["contender", "tokens/s", "dtype", "vs raw", "note"], rows) + f"\n\nRatios: {ratios}.")


if __name__ == "__main__":
    run(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
