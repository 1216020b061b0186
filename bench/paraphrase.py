"""The paraphrase corpus: requests in people's own words, each with the spec it intends
(`bench/data/paraphrase/`, format in CONVENTIONS.md), split *by phrasing template* so the
figures measure generalisation, not memory.

- `generated.jsonl`: from `bench/paraphrase_templates.py` (families × phrasings × values ×
  topics). Templates are split by a hash of their id: `tune` (two thirds, the only part looked
  at while the parser was written) and `heldout` (never looked at while tuning).
- `handwritten.jsonl`: written by hand, the way people type (typos, questions, several
  constraints in one request); all of it is held out.
- `tune_extra.jsonl`: more phrasings written by hand to tune on (all of it `tune`).

The three were written by people (helpers) who never saw the parser.

`council bench paraphrase` prints parse accuracy per family and split (the spec read equals the
intended one, and a request nobody can check is reported not understood); `council eval
--tasks bench/data/paraphrase/…` answers them end to end.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from planner.parse import read_request
from planner.spec import ConstraintSpec

DATA = Path(__file__).parent / "data" / "paraphrase"
FILES = ("generated.jsonl", "handwritten.jsonl", "tune_extra.jsonl", "tune_extra2.jsonl", "tune_extra3.jsonl")


def split_of(row: dict) -> str:
    template = row.get("template", "hw")
    if template == "hw":
        return "heldout"
    if template.startswith("tune2/"):  # written to tune on
        return "tune"
    digest = int(hashlib.sha1(template.encode()).hexdigest(), 16)
    return "heldout" if digest % 3 == 0 else "tune"


def load(files: tuple[str, ...] = FILES) -> list[dict]:
    rows = []
    for name in files:
        path = DATA / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                row["split"] = split_of(row)
                row["source"] = name.split(".")[0]
                rows.append(row)
    return rows


def _count(c: Any) -> tuple | None:
    if c is None:
        return None
    d = c if isinstance(c, dict) else c.model_dump()
    return (d.get("exactly"), d.get("at_least"), d.get("at_most"))


def canonical(spec: ConstraintSpec | dict | None) -> dict | None:
    """A spec in one form for comparison: equivalent readings (the last word of a one-sentence
    text as a position, a sentence end or a list) compare equal; topic, genre and unit are left
    out (judged apart)."""
    if spec is None:
        return None
    s = spec if isinstance(spec, ConstraintSpec) else ConstraintSpec.model_validate(spec)
    n = s.sentences.exactly if s.sentences and s.sentences.exactly is not None else (
        1 if s.unit == "sentence" and s.sentences is None else None)
    out: dict[str, Any] = {}
    for key in ("characters", "words", "sentences", "words_per_sentence", "paragraphs", "lines",
                "words_per_line", "sentences_per_paragraph"):
        value = _count(getattr(s, key))
        if value is not None:
            out[key] = value
    if out.get("sentences") == (1, None, None):
        out.pop("sentences")
    if out.get("paragraphs") == (1, None, None):
        out.pop("paragraphs")
    low = lambda w: w.lower().strip(" .,!?;:'\"")  # noqa: E731
    positions = {k: low(v) for k, v in s.word_positions.items()}
    ends = {k: low(v) for k, v in s.sentence_ends.items()}
    starts = {k: low(v) for k, v in s.sentence_starts.items()}
    for i, w in enumerate(s.sentence_last_words, 1):
        ends[i] = low(w)
    if -1 in positions:
        ends.setdefault(-1, positions.pop(-1))
    if n is not None and -1 in ends:
        ends.setdefault(n, ends.pop(-1))
    if 1 in starts:
        positions.setdefault(1, starts.pop(1))
    if s.sentence_first_word:
        if n == 1:
            positions.setdefault(1, low(s.sentence_first_word))
        else:
            out["sentence_first_word"] = low(s.sentence_first_word)
    if positions:
        out["word_positions"] = dict(sorted(positions.items()))
    if ends:
        out["sentence_ends"] = dict(sorted(ends.items()))
    if starts:
        out["sentence_starts"] = dict(sorted(starts.items()))
    for key in ("include", "exclude", "hashtags", "mentions", "avoid_letters"):
        values = getattr(s, key)
        if values:
            out[key] = sorted({low(v) for v in values})
    for key in ("max_word_chars", "word_initial", "rhyme_scheme", "acrostic"):
        value = getattr(s, key)
        if value is not None:
            out[key] = value.lower() if isinstance(value, str) else value
    if s.line_syllables:
        out["line_syllables"] = list(s.line_syllables)
    if s.line_first_word:
        out["line_first_word"] = low(s.line_first_word)
    if s.line_last_words:
        out["line_last_words"] = [low(w) for w in s.line_last_words]
    implied = {len(x) for x in (s.acrostic or "", s.line_syllables, s.rhyme_scheme or "", s.line_last_words) if x}
    if implied and out.get("lines") == (next(iter(implied)), None, None):
        out.pop("lines")
    if s.budget is not None:
        out["budget"] = s.budget.model_dump()
    return out


def parse_correct(row: dict) -> tuple[bool, dict]:
    """Whether the request was read as intended; and what was read."""
    try:
        reading = read_request(row["request"])
    except ValueError as exc:
        return False, {"error": str(exc)}
    got = {"spec": canonical(reading.spec), "not_understood": reading.not_understood}
    if row.get("spec") is None:  # nobody can check it: the right reading is "not understood"
        return bool(reading.not_understood), got
    return (not reading.not_understood and got["spec"] == canonical(row["spec"])), got


def parse_accuracy(rows: list[dict]) -> dict:
    table: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        ok, _ = parse_correct(row)
        for split in (row["split"], "all"):
            table[split][row["family"]].append(ok)
            table[split]["overall"].append(ok)
    return {split: {fam: {"n": len(v), "accuracy": round(sum(v) / len(v), 4)} for fam, v in sorted(fams.items())}
            for split, fams in table.items()}


def misses(rows: list[dict], split: str = "tune", family: str | None = None) -> list[dict]:
    """The requests of one split read wrongly (to tune on: call it with split="tune" only)."""
    out = []
    for row in rows:
        if row["split"] != split or (family and row["family"] != family):
            continue
        ok, got = parse_correct(row)
        if not ok:
            out.append({"request": row["request"], "want": canonical(row["spec"]) if row.get("spec") else None, **got})
    return out


def on_topic(text: str, topic_words: list[str]) -> bool | None:
    """Whether an answer mentions the request's topic: one of its content words, or a word
    sharing its first five letters ("rains" for "rain", "gardening" for "garden")."""
    words = [w for w in topic_words if len(w) > 2]
    if not words:
        return None
    said = re.findall(r"[a-z]+", text.lower())
    for want in words:
        want = want.lower()
        for w in said:
            if w == want or (len(want) >= 4 and w.startswith(want[:max(4, min(5, len(want)))])) \
                    or (len(w) >= 4 and want.startswith(w) and len(w) >= len(want) - 2):
                return True
    return False


def main(out: Path | None = None) -> dict:
    rows = load()
    result = parse_accuracy(rows)
    for split in ("tune", "heldout", "all"):
        if split not in result:
            continue
        fams = result[split]
        print(f"{split}: {fams['overall']['n']} requests, parse accuracy {fams['overall']['accuracy']:.3f}")
        for fam, v in fams.items():
            if fam != "overall":
                print(f"    {fam:20s} {v['n']:4d}  {v['accuracy']:.3f}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
