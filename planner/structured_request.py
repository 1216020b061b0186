"""Structured output asked for in words: "reply with a JSON object with keys name and age".

An API client sets `response_format`; a person writes it in the request. This finds the
second kind and returns the same `GrammarSpec` the first would give, plus the clause it read,
so the result can say what was understood. It reads only the format (JSON, its keys, a
JSON list of N items); everything else in the request stays the request.

    found = grammar_in_words("Give me JSON with the fields title, year and genre.")
    found.grammar.json_schema["required"] == ["title", "year", "genre"]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planner.grammar import GrammarSpec
from planner.phrases import UNITS

# A value a key may hold when the request names the key only: text, a number, a truth value
# or a short list of texts (bounded, so that generation ends).
ANY_VALUE = {"anyOf": [{"type": "string", "maxLength": 120}, {"type": "number"}, {"type": "boolean"},
                       {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 8}]}

_JSON = re.compile(r"\bjson\b", re.I)
# The words that only name the format, removed before the rest of the request is read.
format_words = re.compile(r"\b(?:(?:as|in|with|into)\s+)?(?:(?:a|an|the|valid|only|one)\s+)*json(?:\s+(?:object|array|list|"
                          r"format|document|value|only|reply|response|answer))?(?:\s+only)?\b", re.I)
_KEY = r"[\"'“‘«]?[A-Za-z_][A-Za-z0-9_\- ]{0,30}?[\"'”’»]?(?:\s*\([A-Za-z0-9 ,/.-]{1,40}\))?"
_KEYS = re.compile(
    r"\b(?:keys?|fields?|properties|property|attributes?|entries|members)\b\s*(?:called|named|:|—|-)?\s*"
    rf"(?P<list>{_KEY}(?:\s*(?:,|;|\band\b|\bor\b|&|\+)\s*(?:and\s+)?{_KEY}){{0,11}})"
    r"(?=\s*(?:$|[.!?)—–]|\s-\s|,?\s+(?:for|about|of|describing|that|which|with|from|where|in|on|to|so)\b))",
    re.I)
# "a title key and an author key": each name before its noun
_NAMED = re.compile(r"[\"'“‘]?\b([A-Za-z_][A-Za-z0-9_]*)[\"'”’]?\s+(?:key|field|property|attribute)\b", re.I)
_ARRAY = re.compile(r"\bjson\s+(?:array|list)\s+of\s+(?P<n>\w+\s+)?(?P<what>\w+)", re.I)
_LIST_SPLIT = re.compile(r"\s*(?:,|;|\band\b|\bor\b|&|\+)\s*", re.I)
_QUOTES = "\"'“”‘’«»"


@dataclass(frozen=True)
class FoundFormat:
    grammar: GrammarSpec
    clause: str  # the words it came from


def grammar_in_words(request: str) -> FoundFormat | None:
    if not _JSON.search(request):
        return None
    array = _ARRAY.search(request)
    if array:
        word = (array["n"] or "").strip().lower()
        n = int(word) if word.isdigit() else UNITS.get(word)
        items = {"type": "integer"} if array["what"].lower().startswith(("integer", "number")) else \
            {"type": "string", "maxLength": 120}
        schema: dict = {"type": "array", "items": items, "maxItems": 20}
        if n:
            schema.update(minItems=n, maxItems=n)
        return FoundFormat(GrammarSpec(json_schema=schema), array.group(0))
    named = [m for m in _NAMED.finditer(request) if m[1].lower() not in ("a", "an", "the", "one", "each", "json")]
    if len(named) >= 2:
        names = list(dict.fromkeys(m[1] for m in named))
        clause = request[named[0].start():named[-1].end()]
        return FoundFormat(GrammarSpec(json_schema=_object(names)), clause)
    keys = _KEYS.search(request)
    if keys:
        typed: dict[str, dict] = {}
        for item in _LIST_SPLIT.split(_TYPE_NOTE.sub(lambda m: m.group(0).replace(",", "/"), keys["list"])):
            note = _TYPE_NOTE.search(item)
            name = _TYPE_NOTE.sub("", item).strip().strip(_QUOTES).strip()
            name = re.sub(r"^(?:the|a|an)\s+", "", name, flags=re.I).strip().replace(" ", "_")
            if name and name not in typed:
                typed[name] = _value_of(note.group(1)) if note else ANY_VALUE
        if typed:
            return FoundFormat(GrammarSpec(json_schema=_object(list(typed), typed)), keys.group(0))
    mention = _JSON.search(request)
    return FoundFormat(GrammarSpec(json_object=True), mention.group(0))


_TYPE_NOTE = re.compile(r"\s*\(([A-Za-z0-9 ,/.-]{1,40})\)")
# "name (string)", "age (a number)", "tags (list of strings)": a value's type in words.
_TYPES = (("list", {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 8}),
          ("array", {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 8}),
          ("integer", {"type": "integer"}), ("int", {"type": "integer"}), ("whole", {"type": "integer"}),
          ("number", {"type": "number"}), ("float", {"type": "number"}), ("decimal", {"type": "number"}),
          ("bool", {"type": "boolean"}), ("true/false", {"type": "boolean"}), ("yes/no", {"type": "boolean"}),
          ("date", {"type": "string", "format": "date"}), ("string", {"type": "string", "maxLength": 120}),
          ("text", {"type": "string", "maxLength": 120}))


_RANGE = re.compile(r"(-?\d+(?:\.\d+)?)\s*(?:to|-|–|and)\s*(-?\d+(?:\.\d+)?)")


def _value_of(note: str) -> dict:
    words = note.lower()
    schema = next((schema for word, schema in _TYPES if word in words), ANY_VALUE)
    bounds = _RANGE.search(words)
    if bounds and schema in (ANY_VALUE, {"type": "number"}, {"type": "integer"}):
        low, high = sorted(float(b) for b in bounds.groups())
        kind = "integer" if low.is_integer() and high.is_integer() and schema.get("type") != "number" else "number"
        cast = int if kind == "integer" else float
        schema = {"type": kind, "minimum": cast(low), "maximum": cast(high)}
    return schema


def _object(names: list[str], values: dict[str, dict] | None = None) -> dict:
    values = values or {}
    return {"type": "object", "properties": {n: values.get(n, ANY_VALUE) for n in names}, "required": names,
            "additionalProperties": False}
