"""`council bench collie`: quality, fluency, tokens and cost on the COLLIE tasks DisCIPL used.

The 562 `wiki` tasks of types c04, c05, c06a, c07 (sentences) and c08–c12 (paragraphs), `--limit
K` per type for a quick run, answered by each method through the same runner the service uses
(`CouncilRunner.run_task`):
- `smc`: Council, library planner (or the LLM planner when `planner.base_url` is configured:
  the method is then named `smc-llm`) + SMC with `particles` particles;
- `follower`: the follower alone, greedy;
- `best-of-n`: N follower samples, the likeliest that passes the recognised constraints, with N
  chosen per task so its follower tokens match what SMC spent on that task (same budget);
- `planner`: the planner model alone, when an endpoint is configured.

Each answer is judged by COLLIE's own constraint. Fluency is the mean per-token
log-likelihood of the answers under a *judge* model that is not the follower (Gemma-3-270M
base by default, `bench/local_model.py`), next to the same score for COLLIE's human
references. Cost per 100 tasks uses the configured prices (`prices:` in the config).

Output: one JSON line per (task, method) in `--out` (resumable), a summary JSON with a table
per type and overall, and a section appended to `bench/report.md` with two plots.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable

from pydantic import BaseModel

from bench.measure import read_rows

# The project's shared folder sits beside the checkout (or is named by $COUNCIL_SHARED).
DATA = Path(os.environ.get("COUNCIL_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data/collie/collie.jsonl"
TYPES = ("c04", "c05", "c06a", "c07", "c08", "c09", "c10", "c11", "c12")
FOLLOWER_TOKENS = 160  # room for a paragraph when the follower writes freely
MAX_BEST_OF = 64


class CollieLine(BaseModel):
    id: str
    type: str
    method: str
    text: str
    passed: bool
    follower_tokens: int
    planner_tokens: int
    usd: float
    seconds: float
    samples: int = 1
    fluency: float | None = None
    error: str | None = None
    # Which planner wrote the SMC program: "llm", or "library"/"generic" after an LLM fallback.
    planner_path: str | None = None


def load(path: Path = DATA, limit: int | None = None, types: tuple[str, ...] = TYPES) -> list[dict]:
    """The wiki tasks of the given types, at most `limit` of each, in file order."""
    from bench.evaluate import load_tasks

    return load_tasks(path, limit, set(types), "wiki")


def passes(task: dict, text: str) -> bool:
    """Whether `text` answers the COLLIE task, by COLLIE's own check (an empty text does not)."""
    from bench.evaluate import judge
    from planner.parse import parse_request

    return bool(text) and bool(judge(task, text, parse_request(task["prompt"]).verifier()))


async def answer(runner, task: dict, method: str, particles: int, samples: int, seed: int) -> CollieLine:
    from council_sdk.types import TaskRequest

    strategy = {"smc": "council-smc", "smc-llm": "council-smc"}.get(method, method)
    request = TaskRequest(prompt=task["prompt"], strategy=strategy, particles=particles, seed=seed,
                          samples=samples, temperature=1.0, max_tokens=FOLLOWER_TOKENS)
    started = time.monotonic()
    try:
        result = await runner.run_task(request)
        text, led, error = result.text, result.ledger, None
        path = result.planner.path if result.planner else None
    except Exception as exc:  # noqa: BLE001 - one failed task must not stop the run
        text, led, error, path = "", None, f"{type(exc).__name__}: {exc}"[:500], None
    return CollieLine(
        id=task["id"], type=task["type"], method=method, text=text,
        passed=passes(task, text),
        follower_tokens=led.follower_tokens if led else 0,
        planner_tokens=(led.planner_prompt_tokens + led.planner_completion_tokens) if led else 0,
        usd=led.usd if led else 0.0, seconds=time.monotonic() - started, samples=samples, error=error,
        planner_path=path)


def methods_for(runner) -> tuple[str, ...]:
    if runner.big is None:
        return ("smc", "follower", "best-of-n")
    return ("smc-llm" if runner.llm else "smc", "follower", "best-of-n", "planner")


async def run_tasks(runner, tasks: list[dict], out: Path, particles: int, seed: int,
                    progress: Callable[[CollieLine], None] = lambda line: None) -> list[CollieLine]:
    """Every method on every task (resumable: (id, method) pairs already in `out` are kept)."""
    done = {(row.id, row.method): row for row in read_rows(out, CollieLine)}
    out.parent.mkdir(parents=True, exist_ok=True)
    methods = methods_for(runner)
    rows = []
    with out.open("a") as sink:
        for task in tasks:
            per_method = {}
            for method in methods:
                if (task["id"], method) in done:
                    row = done[(task["id"], method)]
                else:
                    samples = 1
                    if method == "best-of-n":  # the same follower-token budget as SMC spent
                        smc = next(r for m, r in per_method.items() if m.startswith("smc"))
                        one = max(1, per_method["follower"].follower_tokens)
                        samples = max(1, min(MAX_BEST_OF, round(smc.follower_tokens / one)))
                    row = await answer(runner, task, method, particles, samples, seed)
                    sink.write(row.model_dump_json() + "\n")
                    sink.flush()
                    progress(row)
                per_method[method] = row
                rows.append(row)
    return rows


def add_fluency(rows: list[CollieLine], judge) -> None:
    """Fill `fluency` on every row that has an answer and no score yet."""
    todo = [r for r in rows if r.text and r.fluency is None]
    for r, score in zip(todo, judge.mean_logprobs([r.text for r in todo])):
        r.fluency = score


def reference_fluency(tasks: list[dict], judge) -> dict[str, list[float]]:
    scores = judge.mean_logprobs([t["reference"] for t in tasks])
    by_type: dict[str, list[float]] = defaultdict(list)
    for t, s in zip(tasks, scores):
        by_type[t["type"]].append(s)
    return by_type


def repetition(text: str, n: int = 3) -> float | None:
    """Share of the text's word n-grams that already occurred earlier in it: 0 for text that
    never repeats itself, towards 1 for a loop. Read next to fluency: the judge's mean
    log-prob rewards repetition (a phrase seen once is predictable the second time)."""
    words = re.findall(r"\w+", text.lower())
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    return 1 - len(set(grams)) / len(grams) if grams else None


def _mean(xs) -> float | None:
    xs = [x for x in xs if x is not None and math.isfinite(x)]
    return sum(xs) / len(xs) if xs else None


def summarise(rows: list[CollieLine], references: dict[str, list[float]],
              reference_texts: dict[str, list[str]] | None = None) -> dict:
    """{type or 'overall': {method: figures}}, the human references' fluency and repetition
    under 'reference'."""
    reference_texts = reference_texts or {}
    groups: dict[str, dict[str, list[CollieLine]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r.type][r.method].append(r)
        groups["overall"][r.method].append(r)
    table: dict = {}
    for kind in [t for t in TYPES if t in groups] + ["overall"]:
        table[kind] = {}
        for method, rs in groups[kind].items():
            table[kind][method] = {
                "tasks": len(rs),
                "pass_rate": sum(r.passed for r in rs) / len(rs),
                "fluency": _mean(r.fluency for r in rs),
                "repetition": _mean(repetition(r.text) for r in rs if r.text),
                "follower_tokens_per_task": sum(r.follower_tokens for r in rs) / len(rs),
                "planner_tokens_per_task": sum(r.planner_tokens for r in rs) / len(rs),
                "seconds_per_task": sum(r.seconds for r in rs) / len(rs),
                "usd_per_100_tasks": 100 * sum(r.usd for r in rs) / len(rs),
                "errors": sum(r.error is not None for r in rs),
            }
            if method == "smc-llm":  # how often the LLM's program ran (else the library's did)
                table[kind][method]["llm_program_share"] = sum(r.planner_path == "llm" for r in rs) / len(rs)
        refs = references.get(kind) if kind != "overall" else [s for v in references.values() for s in v]
        texts = reference_texts.get(kind) if kind != "overall" else [t for v in reference_texts.values() for t in v]
        table[kind]["reference"] = {"tasks": len(refs or texts or []), "fluency": _mean(refs or []),
                                    "repetition": _mean(repetition(t) for t in texts or [])}
    return table


def plot(summary: dict, out_dir: Path, name: str = "collie") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = [k for k in summary if k != "overall"]
    methods = [m for m in summary["overall"] if m != "reference"]
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(methods))
    for i, m in enumerate(methods):
        ax.bar([k + i * width for k in range(len(kinds))],
               [summary[k].get(m, {}).get("pass_rate", 0) for k in kinds], width, label=m)
    ax.set_xticks([k + 0.4 - width / 2 for k in range(len(kinds))], kinds)
    ax.set_ylabel("pass rate (COLLIE verifier)")
    ax.set_ylim(0, 1.05)
    ax.legend()
    ax.set_title("COLLIE wiki: pass rate per type")
    fig.tight_layout()
    pass_png = out_dir / f"{name}_pass_rate.png"
    fig.savefig(pass_png, dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for m in methods:
        points = [(summary[k][m]["pass_rate"], summary[k][m]["fluency"]) for k in kinds
                  if m in summary[k] and summary[k][m]["fluency"] is not None]
        if points:
            ax.scatter(*zip(*points), label=m)
    ref = summary["overall"]["reference"]["fluency"]
    if ref is not None:
        ax.axhline(ref, color="grey", linestyle="--", label="human references")
    ax.set_xlabel("pass rate")
    ax.set_ylabel("fluency (judge mean token log-prob)")
    ax.set_title("fluency vs pass rate (one point per type)")
    ax.legend()
    fig.tight_layout()
    fluency_png = out_dir / f"{name}_fluency.png"
    fig.savefig(fluency_png, dpi=120)
    plt.close(fig)
    return [pass_png, fluency_png]


def report_section(summary: dict, meta: dict) -> str:
    from bench.report import table

    rows = []
    for kind, methods in summary.items():
        for m, f in methods.items():
            if m == "reference":
                rows.append([kind, "human reference", f["tasks"], "–", _fmt(f["fluency"]),
                             _fmt(f.get("repetition"), 3), "", "", "", ""])
            else:
                rows.append([kind, m, f["tasks"], f"{f['pass_rate']:.2f}", _fmt(f["fluency"]), _fmt(f.get("repetition"), 3),
                             f"{f['follower_tokens_per_task']:.0f}", f"{f['planner_tokens_per_task']:.0f}",
                             f"{f['seconds_per_task']:.1f}", f"{f['usd_per_100_tasks']:.4f}"])
    head = (f"Follower {meta.get('follower', '?')}, planner {meta.get('planner', 'library')}, "
            f"{meta.get('particles', '?')} particles, judge "
            f"{meta['judge']} (fluency: mean token log-prob under it; repetition: share of word "
            f"trigrams seen earlier in the same text), limit {meta['limit']} per type, "
            f"{meta['machine']}.")
    llm = summary.get("overall", {}).get("smc-llm")
    if llm:
        head += (f" The LLM planner's program ran on {llm['llm_program_share']:.0%} of the smc-llm tasks; "
                 "on the rest it was rejected and the library's program ran.")
    return head + "\n\n" + table(["type", "method", "tasks", "pass rate", "fluency", "repetition", "follower tok/task",
                                   "planner tok/task", "s/task", "$/100 tasks"], rows)


def _fmt(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def summarise_file(out: Path, tasks_path: Path, limit: int | None, types: tuple[str, ...],
                   judge: str | None, summary_path: Path | None, report: Path | None,
                   meta: dict | None = None) -> dict:
    """Judge fluency (once per answer, kept in `out`), summarise, write the JSON and the
    report section with its plots."""
    tasks = load(tasks_path, limit, types)
    wanted = {t["id"] for t in tasks}
    rows = read_rows(out, CollieLine)
    rows = [r for r in rows if r.id in wanted]
    references: dict[str, list[float]] = {}
    if judge:
        from bench.local_model import LocalLM

        lm = LocalLM(judge)
        add_fluency(rows, lm)
        references = reference_fluency(tasks, lm)
        out.write_text("".join(r.model_dump_json() + "\n" for r in rows))  # now with fluency
    reference_texts: dict[str, list[str]] = defaultdict(list)
    for t in tasks:
        reference_texts[t["type"]].append(t["reference"])
    summary = summarise(rows, references, reference_texts)
    meta = {"when": time.strftime("%Y-%m-%d %H:%M"), "judge": judge or "none", "limit": limit,
            "machine": "2 CPU cores, no GPU", "methods": sorted({r.method for r in rows}), **(meta or {})}
    result = {"meta": meta, "summary": summary}
    if report:
        from bench.report import append

        # Plots are named after the summary (collie_bench.json: collie_pass_rate.png, ...).
        name = summary_path.stem.replace("_bench", "") if summary_path else "collie"
        drawn = plot(summary, report.parent / "results", name)
        append("COLLIE wiki", report_section(summary, meta), drawn, report)
        result["pictures"] = [str(p) for p in drawn]
    if summary_path:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        summary_path.write_text(json.dumps(result, indent=2))
    return result
