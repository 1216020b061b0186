"""`council bench cli`: what a user waits for at the command line, cold and warm.

All in one run, alternating, median of `--runs`:
- a follower's model load, from its GGUF (dequantized by transformers) and from the dense
  copy the first load keeps (`actors/engines/model_source.py`);
- `council run --local` (starts Ray and a pool, answers, stops them) against `council run`
  with a `council up` server found through its record: each whole process's wall time, the
  job's own `wall_time_s` from its JSON, and what the process adds on top of the job;
- through the warm server (SDK, SSE): seconds per COLLIE sentence and paragraph task at the
  default particle count (p50, p95) and the time to the first progress event.

    council bench cli --runs 3 --collie 6 --json bench/results/cli.json
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import free_port, percentile

QUESTION = "What is the capital of France?"
CONSTRAINED = "Write a sentence with exactly 8 words about the sea."


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _council(*args: str, env: dict, timeout: float = 900) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "council_cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    return time.monotonic() - started, done


def model_loads(runs: int) -> dict:
    """Seconds to load the embedded follower from its GGUF and from its dense copy, alternating
    (each in a fresh process, as a replica does)."""
    code = ("import time, torch; from actors.engines.torch_engine import load_hf_model; "
            "from cluster.config import EngineConfig; t = time.monotonic(); "
            "load_hf_model(EngineConfig(), 'cpu', torch.bfloat16); print(time.monotonic() - t)")
    seconds: dict[str, list[float]] = {"gguf": [], "dense_copy": []}
    for _ in range(runs):
        for kind in seconds:
            env = {**os.environ, "COUNCIL_DENSE_CACHE": "0" if kind == "gguf" else "1"}
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                                  timeout=600)
            if done.returncode == 0:
                seconds[kind].append(float(done.stdout.strip().splitlines()[-1]))
    out = {kind: _median(v) for kind, v in seconds.items()}
    out["speedup"] = out["gguf"] / out["dense_copy"] if out["gguf"] and out["dense_copy"] else None
    return out


def runs_cold_and_warm(runs: int, env: dict) -> dict:
    """`council run --local` against `council run` on the warm server, alternating."""
    rows: dict[str, list[dict]] = {"cold": [], "warm": []}
    for i in range(runs):
        prompt = (QUESTION, CONSTRAINED)[i % 2]
        for kind in ("cold", "warm"):
            args = ["run", prompt, "--json", "--seed", str(i)] + (["--local"] if kind == "cold" else [])
            wall, done = _council(*args, env=env)
            if done.returncode != 0:
                rows[kind].append({"prompt": prompt, "error": done.stderr.strip()[-300:]})
                continue
            job = json.loads(done.stdout)["wall_time_s"]
            rows[kind].append({"prompt": prompt, "wall_s": wall, "job_s": job, "overhead_s": wall - job})
    summary = {}
    for kind, got in rows.items():
        ok = [r for r in got if "error" not in r]
        summary[kind] = {"runs": len(got), "errors": len(got) - len(ok),
                         "wall_s": _median([r["wall_s"] for r in ok]), "job_s": _median([r["job_s"] for r in ok]),
                         "overhead_s": _median([r["overhead_s"] for r in ok]), "rows": got}
    return summary


def latency(url: str, per_group: int) -> dict:
    """COLLIE sentence and paragraph tasks through the warm server at the default particle
    count: seconds each (p50, p95) and seconds to the first progress event."""
    from bench.collie import load
    from council_sdk import Council

    tasks = load(limit=max(1, per_group // 4 + 1))
    groups = {"sentence": [t for t in tasks if "paragraph" not in t["prompt"]][:per_group],
              "paragraph": [t for t in tasks if "paragraph" in t["prompt"]][:per_group]}
    out = {}
    with Council(url, timeout=900) as client:
        for group, chosen in groups.items():
            totals, firsts, errors, passed = [], [], 0, 0
            for task in chosen:
                started, first = time.monotonic(), None
                try:
                    for event in client.stream(task["prompt"], strategy="council-auto"):
                        if first is None and event.type in ("planned", "round", "progress"):
                            first = time.monotonic() - started
                        if event.terminal:
                            errors += event.type != "finished"
                            passed += bool(event.result and event.result.passed)
                            break
                except Exception:  # noqa: BLE001 - a failed task is counted, not fatal
                    errors += 1
                    continue
                totals.append(time.monotonic() - started)
                firsts.append(first if first is not None else totals[-1])
            out[group] = {"tasks": len(chosen), "errors": errors, "passed": passed,
                          "p50_s": percentile(totals, 0.5),
                          "p95_s": percentile(totals, 0.95), "first_progress_p50_s": percentile(firsts, 0.5)}
    return out


def run(json_path: Path | None, runs: int = 3, collie: int = 6) -> dict:
    port = free_port()
    home = Path(tempfile.mkdtemp(prefix="council-bench-cli-"))
    env = {**{k: v for k, v in os.environ.items() if k not in ("COUNCIL_SERVER", "COUNCIL_API_KEYS")},
           "COUNCIL_HOME": str(home)}
    report: dict = {"runs": runs, "machine_cpus": os.cpu_count()}
    report["model_load_s"] = model_loads(runs)
    up_s, up = _council("up", "--port", str(port), env=env)
    if up.returncode != 0:
        raise SystemExit(f"council up failed: {up.stderr.strip()[-500:]}")
    try:
        report["council_up_s"] = up_s
        report["council_run"] = runs_cold_and_warm(runs, env)
        if collie:
            report["latency_through_the_server"] = latency(f"http://127.0.0.1:{port}", collie)
    finally:
        _council("down", env=env)
    cold, warm = report["council_run"]["cold"], report["council_run"]["warm"]
    loads = report["model_load_s"]
    print(f"model load: GGUF {loads['gguf']:.1f} s, dense copy {loads['dense_copy']:.2f} s "
          f"({loads['speedup']:.0f}x)")
    print(f"council up: {up_s:.1f} s")
    for name, row in (("cold (--local)", cold), ("warm (council up)", warm)):
        if row["wall_s"] is not None:
            print(f"council run {name:18s}: wall {row['wall_s']:.1f} s, job {row['job_s']:.1f} s, "
                  f"overhead {row['overhead_s']:.1f} s ({row['errors']} errors)")
    for group, row in report.get("latency_through_the_server", {}).items():
        if row["p50_s"] is not None:
            print(f"COLLIE {group:9s} through the server: p50 {row['p50_s']:.1f} s, p95 {row['p95_s']:.1f} s, "
                  f"first progress {row['first_progress_p50_s']:.2f} s ({row['tasks']} tasks, {row['passed']} passed, "
                  f"{row['errors']} errors)")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2))
        print(f"wrote {json_path}")
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="council bench cli", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--collie", type=int, default=6, help="COLLIE tasks per group (0: none).")
    parser.add_argument("--json", type=Path, default=Path("bench/results/cli.json"))
    args = parser.parse_args(argv)
    run(args.json, args.runs, args.collie)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
