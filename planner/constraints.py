"""Verifiers with COLLIE's exact semantics (Yao et al., 2023), usable on any text.

A COLLIE constraint is a small tree: split the text into *input units* (none, words,
sentences, paragraphs), split each into *target units* (characters, words, sentences),
*transform* them (count, take a position, or keep each), compare with a target through a
*relation* (==, <=, >=, in, not in…) and, for per-unit results, *reduce* (all, any). This
module implements that semantics once (`Check.holds`) and reads COLLIE's own description of a
task's tree (`parse_collie`), so every type c01–c14 is checked the way COLLIE checks it:

- words: NLTK `word_tokenize` with tokens that are substrings of `string.punctuation`
  dropped; sentences: NLTK Punkt; paragraphs: split on a blank line; every unit is then
  stripped of surrounding whitespace and periods;
- literals compared lower-cased with surrounding punctuation and spaces removed.

NLTK's trained Punkt model cannot be downloaded here, so sentences come from an untrained
`PunktSentenceTokenizer()` and words from `word_tokenize(..., preserve_line=True)`.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel

Level = Literal["character", "word", "sentence", "paragraph", "line"]
PARAGRAPH_BREAK = "\n\n"
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")


# Abbreviations after which the trained English Punkt model (what COLLIE used) does not end a
# sentence. The untrained tokenizer we can have offline knows none and would split at "U.S."
# or "Jan."; this set was checked against COLLIE's 1,108 sentence- and paragraph-level
# references, keeping only entries that bring our splits closer to COLLIE's (e.g. "No." and
# "Apr." are left out: the trained model does end sentences there in that data).
ABBREVIATIONS = {
    "a.d", "a.m", "adm", "approx", "aug", "ave", "b.c", "blvd", "ca", "calif", "co", "col",
    "conn", "corp", "dec", "dept", "dr", "e.g", "e.u", "est", "etc", "feb", "fig", "fla", "ft",
    "gen", "ill", "inc", "jan", "jr", "jul", "jun", "l.a", "lt", "ltd", "maj", "mar", "mass",
    "mr", "mrs", "ms", "mt", "n.y", "nov", "oct", "p.m", "pa", "ph.d", "pp", "pres", "prof", "r",
    "rd", "rep", "rev", "sen", "sep", "sept", "sr", "st", "u.c", "u.k", "u.n", "u.s", "univ",
    "v", "va", "wash",
}


@lru_cache(maxsize=1)
def _sentence_splitter():
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    params = PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def _raw_units(text: str, level: Level) -> list[str]:
    if level == "character":
        return list(text)
    if level == "word":
        from nltk.tokenize import word_tokenize

        # `not in string.punctuation` is a substring test in COLLIE: kept as is.
        return [w for w in word_tokenize(text, preserve_line=True) if w not in string.punctuation]
    if level == "sentence":
        return _sentence_splitter().tokenize(text)
    if level == "paragraph":
        return text.split(PARAGRAPH_BREAK)
    if level == "line":  # not a COLLIE level: lines of a poem or a list; blank lines skipped
        return [line for line in text.split("\n") if line.strip()]
    raise ValueError(f"unknown level {level!r}")


def units(text, level: Level | None):
    """Split text (or, recursively, a list of texts) into stripped units of `level`."""
    if level is None:
        return text
    if isinstance(text, list):
        return [units(t, level) for t in text]
    return [u.strip().strip(".") for u in _raw_units(text, level)]


def words(text: str) -> list[str]:
    return units(text, "word")


def sentences(text: str) -> list[str]:
    return units(text, "sentence")


def _patch(literal):
    """COLLIE's literal normalisation: lower-case, strip punctuation and spaces (unless that
    leaves nothing)."""
    if isinstance(literal, list):
        return [_patch_one(x) for x in literal]
    return _patch_one(literal)


def _patch_one(literal):
    if not isinstance(literal, str):
        return literal
    stripped = literal.lower().strip(string.punctuation + " ")
    return literal if stripped == "" else stripped


_COMPARE = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _relate(op: str, value, target) -> bool:
    value, target = _patch(value), _patch(target)
    if op in _COMPARE:
        if isinstance(target, list) and len(target) == 1:
            target = target[0]
        try:
            return _COMPARE[op](value, target)
        except TypeError:  # e.g. a missing position (None) compared with a number
            return False
    if op == "in":
        return all(t in value for t in target) if isinstance(target, list) else target in value
    if op == "not in":
        return not any(t in value for t in target) if isinstance(target, list) else target not in value
    if op == "rhymes":  # not COLLIE: line ends against a rhyme scheme ("AABB")
        from planner.phonetics import scheme_holds

        return isinstance(value, list) and scheme_holds(value, str(target))
    raise ValueError(f"unknown relation {op!r}")


def _position(items: list, i: int):
    if not items or i >= len(items) or i < -len(items):
        return None
    return items[i]


def _number_sum(lines: list[str]) -> float | None:
    """The sum of each line's last number ("- Bread: $4.50" -> 4.5); None if a line has none."""
    total = 0.0
    for line in lines:
        found = NUMBER.findall(line)
        if not found:
            return None
        total += float(found[-1].replace(",", ""))
    return round(total, 2)


class Transform(BaseModel):
    """count | position (one index or a list) | each (identity per unit) | each_count |
    each_position (one index in every unit); not COLLIE: number_sum (the sum of each unit's
    last number, for item lists with a total), at ([unit, item]), each_syllables, tags."""

    kind: Literal["count", "position", "each", "each_count", "each_position", "number_sum",
                  "at", "each_syllables", "tags"]
    position: int | list[int] | None = None

    def apply(self, x):
        if self.kind == "count":
            return len(x)
        if self.kind == "position":
            if isinstance(self.position, list):
                return [_position(x, i) for i in self.position]
            return _position(x, self.position)
        if self.kind == "each":
            return list(x)
        if self.kind == "each_count":
            return [len(u) for u in x]
        if self.kind == "number_sum":
            return _number_sum(x)
        if self.kind == "at":  # not COLLIE: word j of unit i ([i, j]), e.g. the last word of sentence 2
            i, j = self.position
            unit = _position(x, i)
            return None if unit is None else _position(unit, j)
        if self.kind == "each_syllables":  # not COLLIE: syllables of each unit's words
            from planner.phonetics import line_syllables

            return [line_syllables(u) for u in x]
        if self.kind == "tags":  # not COLLIE: the text's #hashtags (0) or @mentions (1)
            sign = "#" if self.position == 0 else "@"
            return [t.lower() for t in re.findall(rf"(?<![\w{sign}]){sign}\w+", x)]
        return [_position(u, self.position) for u in x]  # each_position


class Check(BaseModel):
    """One COLLIE constraint node."""

    input_level: Level | None = None
    target_level: Level | None = None
    transform: Transform
    relation: str
    reduction: Literal["all", "any"] | None = None

    def holds(self, text: str, target: Any) -> bool:
        x = self.transform.apply(units(units(text, self.input_level), self.target_level))
        if self.reduction is None:
            return _relate(self.relation, x, target)
        targets = target if isinstance(target, list) else [target] * len(x)
        if len(targets) != len(x):
            return False
        results = [_relate(self.relation, xi, ti) for xi, ti in zip(x, targets)]
        return all(results) if self.reduction == "all" else any(results)


class Verifier(BaseModel):
    """All of `checks` must hold; `targets[i]` is the target of `checks[i]`."""

    checks: list[Check]
    targets: list[Any]

    def __call__(self, text: str) -> bool:
        return all(c.holds(text, t) for c, t in zip(self.checks, self.targets))

    def failures(self, text: str) -> list[int]:
        """Indices of the checks that fail (for messages and for steering)."""
        return [i for i, (c, t) in enumerate(zip(self.checks, self.targets)) if not c.holds(text, t)]


# -- COLLIE's own description of a task ------------------------------------------------------

_NODE = re.compile(
    r"Constraint\(\s*(?:InputLevel\((?P<input>\w+)\)|None),\s*TargetLevel\((?P<target>\w+)\),\s*"
    r"Transformation\((?P<transform>.*?)\),\s*Relation\((?P<relation>[^)]*)\),\s*"
    r"Reduction\((?P<reduction>\w+)\)\s*\)",
    re.S,
)


def _parse_transform(text: str) -> Transform:
    text = text.strip()
    if text == "Count()":
        return Transform(kind="count")
    if text == "ForEach(...)":
        return Transform(kind="each")
    if text == "ForEach(Count())":
        return Transform(kind="each_count")
    m = re.fullmatch(r"ForEach\(Position\((-?\d+)\)\)", text)
    if m:
        return Transform(kind="each_position", position=int(m.group(1)))
    m = re.fullmatch(r"Position\((\[[-\d, ]*\]|-?\d+)\)", text)
    if m:
        raw = m.group(1)
        pos = [int(v) for v in raw.strip("[]").split(",")] if raw.startswith("[") else int(raw)
        return Transform(kind="position", position=pos)
    raise ValueError(f"unsupported COLLIE transformation {text!r}")


def _level(name: str | None) -> Level | None:
    return None if name in (None, "None") else name  # type: ignore[return-value]


def parse_collie(constraint: str, targets: Any) -> Verifier:
    """A Verifier from a COLLIE task's `constraint` text and `targets`."""
    checks = [
        Check(
            input_level=_level(m.group("input")),
            target_level=_level(m.group("target")),
            transform=_parse_transform(m.group("transform")),
            relation=m.group("relation").strip(),
            reduction=None if m.group("reduction") == "None" else m.group("reduction"),
        )
        for m in _NODE.finditer(constraint)
    ]
    if not checks:
        raise ValueError("no COLLIE constraint found in the description")
    if constraint.lstrip().startswith("All("):
        if not isinstance(targets, list) or len(targets) != len(checks):
            # COLLIE's `All` pairs checks with targets positionally; several `not in` checks
            # share one flat list (c09: [count, word, word, word]).
            raise ValueError("targets do not match the constraint's checks")
        return Verifier(checks=checks, targets=list(targets))
    return Verifier(checks=checks, targets=[targets])
