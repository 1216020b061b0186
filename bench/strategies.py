"""`council bench strategies`: every council and baseline on a labelled short-answer set.

The set (`bench/data/short_answers.jsonl`, 300 arithmetic and unit-conversion questions with
exact answers) is answered by each strategy with the real SmolLM2 follower in this process.
The *planner model* sits behind a local OpenAI-compatible server (`bench/openai_stub.py`) and
is one of:
- `--big oracle` (default): a scripted oracle that answers escalations with the right answer
  and writes signals that restate the operation without its result. No model much bigger
  than the follower runs on this machine, so planner-side accuracy is an upper bound; what is
  measured honestly is the follower side, how often each strategy escalates, and the tokens
  spent (the oracle's tokens estimated at 4 characters per token);
- `--big gemma3-270m`: a real local model (Gemma-3-270M base from PyPI, `bench/local_model.py`),
  with real answers and real token counts; it is only twice the follower's size, so this
  shows how the strategies behave when the big side is weak too.

Reported per strategy: accuracy, escalation rate, planner prompt / completion tokens and
follower tokens per question, seconds per question. The cascade's accuracy-vs-cost curve over
thresholds, for each confidence measure (mean and lowest token log-prob, minus the mean
entropy), is saved as a PNG; `calibrate()` picks the threshold for a target accuracy.

    council bench strategies --limit 120 --json bench/results/strategies.json
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path

DATA = Path(__file__).with_name("data") / "short_answers.jsonl"
ALL = ("follower", "best-of-n", "council-vote", "council-cascade", "council-signal", "planner")


def load(path: Path = DATA, limit: int | None = None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def oracle(answers: dict[str, str]):
    """The scripted planner model: right answers to escalations, answer-free signals."""

    def respond(body: dict):
        messages = body.get("messages", [])
        asked = messages[-1]["content"] if messages else ""
        prompt_tokens = sum(_tokens(m.get("content") or "") for m in messages)
        question = next((q for q in answers if q.split("?")[0] in asked), None)
        if "reasoning signal" in (messages[0].get("content") or ""):
            text = "Work it out step by step: " + (question.split("?")[0] if question else "the question")
        else:
            text = answers.get(question, "I do not know.")
        return text, (prompt_tokens, _tokens(text))

    return respond


def correct(answer: str, gold: str) -> bool:
    from cluster.strategies.base import normalise

    return normalise(answer) == normalise(gold)


async def _answer_all(runner, rows, strategy: str, **options) -> list:
    from council_sdk.types import TaskRequest

    async def one(i, row):
        return await runner.run_task(TaskRequest(prompt=row["question"], strategy=strategy, seed=i,
                                                 max_tokens=24, **options))

    out = []
    for start in range(0, len(rows), 16):  # 16 at a time: they share the engine's autobatch
        # A question whose strategy fails (the planner model unreachable, say) counts as
        # wrong and is reported; it does not end the bench.
        out += await asyncio.gather(*(one(start + i, r) for i, r in enumerate(rows[start:start + 16])),
                                    return_exceptions=True)
    return out


def summarise(rows, results, seconds: float) -> dict:
    n = len(rows)
    errors = [r for r in results if isinstance(r, BaseException)]
    answered = [(r, row) for r, row in zip(results, rows) if not isinstance(r, BaseException)]
    results = [r for r, _ in answered]
    return {
        "questions": n,
        "errors": len(errors),
        "first_error": f"{type(errors[0]).__name__}: {errors[0]}"[:300] if errors else None,
        "accuracy": sum(correct(r.text, row["answer"]) for r, row in answered) / n,
        "escalation_rate": sum(r.escalated for r in results) / n,
        # Wanted to escalate but the planner model failed (the followers' answer stood).
        "escalation_failures": sum(bool(r.escalation and "failed" in r.escalation) for r in results) / n,
        "planner_prompt_tokens": sum(r.ledger.planner_prompt_tokens for r in results) / n,
        "planner_completion_tokens": sum(r.ledger.planner_completion_tokens for r in results) / n,
        "follower_tokens": sum(r.ledger.follower_tokens for r in results) / n,
        "seconds_per_question": seconds / n,
    }


def cascade_curve(confidences: list[float], follower_right: list[bool], escalation_tokens: float,
                  planner_right: list[bool] | None = None) -> list[dict]:
    """Accuracy and planner tokens per question for thresholds across the confidences seen;
    an escalated question counts as right when the planner model got it right (`planner_right`,
    measured), or always (None: the oracle)."""
    planner_right = planner_right or [True] * len(confidences)
    points = sorted(set(confidences)) + [math.inf]
    curve = []
    for t in [-math.inf] + points:
        escalate = [c < t for c in confidences]
        acc = sum(big if e else ok for e, ok, big in zip(escalate, follower_right, planner_right)) / len(confidences)
        rate = sum(escalate) / len(confidences)
        curve.append({"threshold": t, "accuracy": acc, "escalation_rate": rate,
                      "planner_tokens": rate * escalation_tokens})
    return curve


def calibrate(confidences: list[float], follower_right: list[bool], target: float) -> float:
    """The lowest threshold at which the answers the follower keeps are right at least
    `target` of the time (so the fewest questions escalate)."""
    for t in sorted(set(confidences)):
        kept = [ok for c, ok in zip(confidences, follower_right) if c >= t]
        if kept and sum(kept) / len(kept) >= target:
            return t
    return math.inf


def plot_curve(curves: dict[str, list[dict]], follower_accuracy: float, path: Path,
               planner_accuracy: float = 1.0) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, curve in curves.items():
        ax.plot([p["escalation_rate"] for p in curve], [p["accuracy"] for p in curve], marker=".",
                markersize=3, label=f"confidence: {name}")
    ax.axhline(follower_accuracy, color="grey", linestyle="--", label="follower alone")
    # Escalating a random share of questions: what a confidence measure has to beat.
    ax.plot([0, 1], [follower_accuracy, planner_accuracy], color="grey", linestyle=":", label="random escalation")
    ax.set_xlabel("escalation rate (share of questions the planner model answers)")
    ax.set_ylabel("accuracy")
    ax.set_title("cascade: accuracy vs cost over confidence thresholds")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def section(report: dict) -> str:
    from bench.report import table

    rows = [[name, f"{r['accuracy']:.3f}", f"{r['escalation_rate']:.2f}",
             f"{r['planner_prompt_tokens']:.0f} + {r['planner_completion_tokens']:.1f}", f"{r['follower_tokens']:.1f}",
             r.get("errors", 0)] for name, r in report["strategies"].items()]
    thresholds = ", ".join(f"{k} {v:.3f}" for k, v in report.get("calibrated_thresholds_for_0.9", {}).items())
    return (f"Planner model: {report['big_model']}; follower {report['follower']}; "
            f"{next(iter(report['strategies'].values()))['questions']} questions.\n\n"
            + table(["strategy", "accuracy", "escalated", "planner tokens / q", "follower tokens / q", "errors"], rows)
            + f"\n\nCascade thresholds for 0.9 accuracy on kept answers: {thresholds}.")


def run(out: Path | None, limit: int = 120, strategies: tuple[str, ...] = ALL,
        plot: Path | None = None, engine=None, big: str = "oracle", report_path: Path | None = None) -> dict:
    from actors.engines.base import EngineFollowers
    from actors.engines.torch_engine import TorchEngine
    from bench.openai_stub import ScriptedOpenAI
    from cluster.config import CouncilConfig, EngineConfig
    from cluster.runner import CouncilRunner

    rows = load(limit=limit)
    engine = engine or TorchEngine.load(EngineConfig())
    if big == "oracle":
        described = "scripted oracle (bench/openai_stub.py): right answers, estimated tokens"
        responder = oracle({r["question"]: r["answer"] for r in rows})
    else:
        from bench.local_model import LocalLM

        described = f"{big} (real local model, bench/local_model.py, greedy)"
        responder = LocalLM(big).responder()
    report: dict = {"big_model": described, "follower": "SmolLM2-135M-Instruct", "strategies": {}}
    with ScriptedOpenAI() as server:
        server.respond_with(responder)
        # A local model answers one request at a time, so a burst of escalations queues: wait.
        cfg = CouncilConfig.from_dict({"planner": {"base_url": server.base_url, "model": big,
                                                   "timeout_s": 900, "api_retries": 0}})
        runner = CouncilRunner(cfg, lambda: [], followers=EngineFollowers(engine))
        for name in strategies:
            t0 = time.perf_counter()
            results = asyncio.run(_answer_all(runner, rows, name, samples=5))
            report["strategies"][name] = summarise(rows, results, time.perf_counter() - t0)
            row = report["strategies"][name]
            print(f"{name:16s} accuracy {row['accuracy']:.3f}  escalated {row['escalation_rate']:.2f}  "
                  f"planner {row['planner_prompt_tokens']:.0f}+{row['planner_completion_tokens']:.1f} tok/q  "
                  f"follower {row['follower_tokens']:.1f} tok/q  {row['seconds_per_question']:.2f} s/q")
        # The curves need the follower's own answer for every question (one pass that never
        # escalates) and, for a real big model, its answer to every escalation (one that always does).
        follower = asyncio.run(_answer_all(runner, rows, "council-cascade", threshold=-1e9))
        right = [correct(r.text, row["answer"]) for r, row in zip(follower, rows)]
        if big == "oracle":
            planner_right, per_escalation = None, sum(_tokens(r["question"]) + 40 for r in rows) / len(rows)
        else:
            escalated = asyncio.run(_answer_all(runner, rows, "council-cascade", threshold=1e9))
            escalated = [None if isinstance(r, BaseException) else r for r in escalated]
            planner_right = [r is not None and correct(r.text, row["answer"]) for r, row in zip(escalated, rows)]
            per_escalation = sum(r.ledger.planner_prompt_tokens + r.ledger.planner_completion_tokens
                                 for r in escalated if r is not None) / len(rows)
            report["planner_alone_on_escalations"] = sum(planner_right) / len(rows)
        curves, report["cascade_curves"], report["calibrated_thresholds_for_0.9"] = {}, {}, {}
        for by in ("mean-logprob", "min-logprob", "neg-entropy"):
            confidences = [r.confidence_measures[by] for r in follower]
            curves[by] = cascade_curve(confidences, right, per_escalation, planner_right)
            report["cascade_curves"][by] = [
                {**p, "threshold": p["threshold"] if math.isfinite(p["threshold"]) else None} for p in curves[by]]
            report["calibrated_thresholds_for_0.9"][by] = calibrate(confidences, right, 0.9)
    if plot:
        plot_curve(curves, sum(right) / len(right), plot,
                   1.0 if planner_right is None else sum(planner_right) / len(planner_right))
        report["plot"] = str(plot)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, default=lambda x: None))
    if report_path:
        from bench.report import append

        append(f"Strategies, planner model {big}", section(report), [plot] if plot else [], report_path)
    return report
