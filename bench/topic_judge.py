"""Does an answer stay on its request's topic? A likelihood judge with a model that is not the
follower (Gemma-3-270M, `bench/local_model.py`): an answer is on topic when the judge finds it
likelier after its own request than after an unrelated one,

    log p(answer | "Request: <its request>\\nAnswer:")  >  log p(answer | "Request: <another>\\nAnswer:")

The unrelated request is another line of the same file with a different topic, chosen by a
fixed rotation (deterministic, no tuning). Beside it, the word measure of `council eval` (the
answer mentions one of the topic's words) is reported on the same answers.

    council bench topic --results bench/results/paraphrase_heldout_generated.jsonl \\
        --tasks bench/data/paraphrase/generated.jsonl
"""

from __future__ import annotations

import json
from pathlib import Path

PROMPT = "Request: {request}\nAnswer:"


def judge(results: Path, tasks: Path, out: Path | None = None, model: str = "gemma3-270m",
          limit: int | None = None) -> dict:
    from bench.local_model import LocalLM

    by_id = {}
    for line in tasks.read_text().splitlines():
        if line.strip():
            task = json.loads(line)
            by_id[task["id"]] = task
    rows = []
    for line in results.read_text().splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        task = by_id.get(row["id"])
        if task and row.get("text") and task.get("topic_words"):
            rows.append((row, task))
    rows = rows[:limit] if limit else rows
    if len(rows) < 2:
        raise ValueError("need at least two answered requests with a topic")
    lm = LocalLM(model)
    verdicts = []
    for i, (row, task) in enumerate(rows):
        # the first request further on (cyclically) whose topic shares no word with this one
        mine = {w.lower() for w in task["topic_words"]}
        other = next(t for k in range(1, len(rows)) for _, t in [rows[(i + k) % len(rows)]]
                     if not mine & {w.lower() for w in t.get("topic_words", [])})
        answer = " " + row["text"].strip()
        own = lm.continuation_logprob(PROMPT.format(request=task.get("request") or task.get("prompt")), answer)
        unrelated = lm.continuation_logprob(PROMPT.format(request=other.get("request") or other.get("prompt")), answer)
        verdicts.append({"id": row["id"], "own": own, "unrelated": unrelated, "on_topic_judge": own > unrelated,
                         "on_topic_words": row.get("on_topic")})
    n = len(verdicts)
    words = [v["on_topic_words"] for v in verdicts if v["on_topic_words"] is not None]
    summary = {
        "answers": n,
        "judge_model": model,
        "on_topic_judge": sum(v["on_topic_judge"] for v in verdicts) / n,
        "on_topic_words": sum(words) / len(words) if words else None,
        "mean_margin_nats": sum(v["own"] - v["unrelated"] for v in verdicts) / n,
        "results": str(results),
    }
    print(f"{n} answers: on topic by the {model} judge {summary['on_topic_judge']:.3f}, "
          f"by topic words {summary['on_topic_words']:.3f}, mean margin {summary['mean_margin_nats']:.2f} nats")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": summary, "verdicts": verdicts}, indent=2))
    return summary
