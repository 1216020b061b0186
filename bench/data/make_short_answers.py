"""Builds bench/data/short_answers.jsonl: arithmetic and unit-conversion questions with exact
answers, for `council bench strategies` (deterministic: `python bench/data/make_short_answers.py`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

UNITS = [  # (from, to, factor)
    ("kilometres", "metres", 1000), ("metres", "centimetres", 100), ("kilograms", "grams", 1000),
    ("hours", "minutes", 60), ("minutes", "seconds", 60), ("litres", "millilitres", 1000),
    ("feet", "inches", 12), ("dozen", "items", 12), ("days", "hours", 24), ("weeks", "days", 7),
]


def questions(n_each: int = 50, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n_each):
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        out.append({"kind": "add", "question": f"What is {a} + {b}? Answer with the number only.", "answer": str(a + b)})
        a, b = sorted((rng.randint(2, 99), rng.randint(2, 99)), reverse=True)
        out.append({"kind": "subtract", "question": f"What is {a} - {b}? Answer with the number only.", "answer": str(a - b)})
        a, b = rng.randint(2, 12), rng.randint(2, 12)
        out.append({"kind": "multiply", "question": f"What is {a} times {b}? Answer with the number only.", "answer": str(a * b)})
        a, b = rng.randint(2, 20), rng.randint(11, 99)
        out.append({"kind": "multiply2", "question": f"What is {a} * {b}? Answer with the number only.", "answer": str(a * b)})
        src, dst, factor = UNITS[i % len(UNITS)]
        k = rng.randint(2, 15)
        out.append({"kind": "convert", "question": f"How many {dst} are in {k} {src}? Answer with the number only.",
                    "answer": str(k * factor)})
        x = rng.randint(1, 9) * 10
        out.append({"kind": "percent", "question": f"What is {x}% of 200? Answer with the number only.",
                    "answer": str(2 * x)})
    for i, q in enumerate(out):
        q["id"] = f"sa-{i:04d}"
    return out


if __name__ == "__main__":
    path = Path(__file__).with_name("short_answers.jsonl")
    rows = questions()
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"wrote {len(rows)} questions to {path}")
