"""What a result may claim: `passed` is true only when every constraint-like part of the request
was understood *and* the answer meets them all, checked here, apart from the program that wrote
it (a program's own `check()` can be wrong, or absent, or written by an LLM).

    verdict = judge(reading, text)
    verdict.passed        -> True | False | None
    verdict.reason        -> "not understood: 'in French'" / "fails: exactly 10 words"
"""

from __future__ import annotations

from pydantic import BaseModel

from planner.constraints import sentences
from planner.parse import Reading
from planner.spec import unmet


class Verdict(BaseModel):
    passed: bool | None
    reason: str | None = None


def judge(reading: Reading, text: str) -> Verdict:
    if reading.not_understood:
        return Verdict(passed=None, reason="part of the request was not understood, so nothing was verified ("
                       + "; ".join(f"'{s}'" for s in reading.not_understood) + ")")
    if not text.strip():
        return Verdict(passed=False, reason="the answer is empty")
    failed = unmet(reading.spec, text)
    spec = reading.spec
    if spec.unit == "sentence" and spec.sentences is None and not spec.in_lines and len(sentences(text)) != 1:
        failed.append("one sentence")  # "write a sentence": the unit is a constraint too
    if failed:
        return Verdict(passed=False, reason="the answer fails: " + "; ".join(failed))
    return Verdict(passed=True)
