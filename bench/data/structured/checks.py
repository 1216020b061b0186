"""Semantic checks for the structured-output benchmark corpus (tasks.jsonl).

A task's ``checks`` field is a list of objects such as::

    {"path": "age", "check": "range", "min": 0, "max": 120}
    {"path": "days.*.low_c", "check": "less_than", "other": "days.*.high_c"}

Paths are dotted, JSON-pointer-like: ``""`` is the whole value, ``"owner.name"``
walks object keys, ``"items.0.price"`` indexes an array, and ``"*"`` fans out over
every element of an array (or every value of an object).

Check kinds (``min``/``max`` may be ``null`` for "unbounded"; bounds are inclusive):

* ``range``      -- a number (not a boolean) in [min, max]
* ``nonempty``   -- a string with a non-space character, or a non-empty array/object
* ``length``     -- length of a string (characters) or array in [min, max]
* ``regex``      -- ``re.fullmatch(pattern, value)`` on a string
* ``one_of``     -- the value equals one of ``values`` (type-aware: ``1`` != ``true``)
* ``words``      -- number of whitespace-separated words of a string in [min, max]
* ``date_range`` -- an ISO date ``YYYY-MM-DD`` (or the date part of a date-time)
                    within [min, max]
* ``less_than``  -- this value is strictly less than the value at path ``other``;
                    both numbers, or both ISO dates, both ISO date-times, or both
                    times ``HH:MM[:SS]``.  If ``other`` resolves to one value every
                    value is compared with it; if it resolves to as many values as
                    ``path`` they are paired element-wise (so ``"a.*.x"`` vs
                    ``"a.*.y"`` compares within each element); otherwise it fails.

Semantics: ``run_check(answer, check)`` resolves ``check["path"]`` in ``answer`` and
passes when every resolved value passes.  A path that resolves to nothing (an
optional field left out, a wildcard over an empty array) passes vacuously -- schema
validity is judged separately.  Any value of the wrong type fails, never raises.

Public API: ``resolve(value, path) -> list``, ``check_value(item, check, root)``,
``run_check(value, check) -> bool``, ``validate_check_spec(check) -> list[str]``, and
``make_validator(schema)`` -- the jsonschema validator to judge answers with.

Note on formats: use ``Draft202012Validator.FORMAT_CHECKER`` (what ``make_validator``
does), not a bare ``jsonschema.FormatChecker()``: the bare one mixes all drafts and its
"time" checker is draft 3's ``HH:MM:SS``, which rejects RFC 3339 times such as
``02:00:00Z`` that draft 2020-12 (and llguidance) require.
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Any, List, Optional

__all__ = ["CHECK_KINDS", "resolve", "check_value", "run_check", "validate_check_spec", "make_validator"]

CHECK_KINDS = {
    "range": {"min", "max"},
    "nonempty": set(),
    "length": {"min", "max"},
    "regex": {"pattern"},
    "one_of": {"values"},
    "words": {"min", "max"},
    "date_range": {"min", "max"},
    "less_than": {"other"},
}

_MISSING = object()


def _split(path: str) -> List[str]:
    return [p for p in path.split(".")] if path else []


def resolve(value: Any, path: str) -> List[Any]:
    """Return the list of values that ``path`` points at inside ``value``.

    ``""`` -> ``[value]``; keys index objects, integers index arrays (negative
    indices are not supported), ``*`` expands every element of an array or every
    value of an object.  Segments that do not exist are dropped silently.
    """
    current = [value]
    for seg in _split(path):
        nxt = []
        for v in current:
            if seg == "*":
                if isinstance(v, list):
                    nxt.extend(v)
                elif isinstance(v, dict):
                    nxt.extend(v.values())
            elif isinstance(v, dict):
                if seg in v:
                    nxt.append(v[seg])
            elif isinstance(v, list):
                if seg.isdigit() and int(seg) < len(v):
                    nxt.append(v[int(seg)])
        current = nxt
    return current


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _in_bounds(x: Any, lo: Any, hi: Any) -> bool:
    if lo is not None and x < lo:
        return False
    if hi is not None and x > hi:
        return False
    return True


_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?")


def _parse_date(s: Any) -> Optional[_dt.date]:
    """Date of an ISO date or of the date part of an ISO date-time."""
    if not isinstance(s, str) or len(s) < 10 or not _DATE_RE.fullmatch(s[:10]):
        return None
    if len(s) > 10 and s[10] not in "Tt ":
        return None
    try:
        return _dt.date.fromisoformat(s[:10])
    except ValueError:
        return None


def _orderable(x: Any):
    """Map a value to (kind, comparable) for less_than, or None."""
    if _is_number(x):
        return ("number", x)
    if not isinstance(x, str):
        return None
    if _DATE_RE.fullmatch(x):
        d = _parse_date(x)
        return ("date", d) if d else None
    if _parse_date(x) is not None:
        s = x[:-1] + "+00:00" if x[-1:] in "Zz" else x
        try:
            t = _dt.datetime.fromisoformat(s)
        except ValueError:
            return None
        return ("datetime_aware" if t.tzinfo else "datetime", t)
    if _TIME_RE.fullmatch(x):
        parts = [int(p) for p in x.split(":")]
        return ("time", parts[0] * 3600 + parts[1] * 60 + (parts[2] if len(parts) > 2 else 0))
    return None


def _same(a: Any, b: Any) -> bool:
    """Type-aware JSON equality (True != 1, 1 == 1.0)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


def check_value(item: Any, check: dict, root: Any = None, other: Any = _MISSING) -> bool:
    """Apply one check to one already-resolved value.

    ``root`` is only needed by ``less_than`` when ``other`` is not given.
    """
    kind = check.get("check")
    try:
        if kind == "range":
            return _is_number(item) and _in_bounds(item, check.get("min"), check.get("max"))
        if kind == "nonempty":
            if isinstance(item, str):
                return item.strip() != ""
            if isinstance(item, (list, dict)):
                return len(item) > 0
            return False
        if kind == "length":
            if not isinstance(item, (str, list)):
                return False
            return _in_bounds(len(item), check.get("min"), check.get("max"))
        if kind == "regex":
            return isinstance(item, str) and re.fullmatch(check["pattern"], item) is not None
        if kind == "one_of":
            return any(_same(item, v) for v in check["values"])
        if kind == "words":
            return isinstance(item, str) and _in_bounds(len(item.split()), check.get("min"), check.get("max"))
        if kind == "date_range":
            d = _parse_date(item)
            if d is None:
                return False
            lo, hi = check.get("min"), check.get("max")
            return _in_bounds(d, _dt.date.fromisoformat(lo) if lo else None,
                              _dt.date.fromisoformat(hi) if hi else None)
        if kind == "less_than":
            if other is _MISSING:
                others = resolve(root, check["other"])
                if len(others) != 1:
                    return len(others) == 0
                other = others[0]
            a, b = _orderable(item), _orderable(other)
            if a is None or b is None or a[0] != b[0]:
                return False
            return a[1] < b[1]
    except (TypeError, ValueError, re.error, KeyError):
        return False
    return False


def run_check(value: Any, check: dict) -> bool:
    """Evaluate one check object (with its ``path``) against a whole answer ``value``."""
    items = resolve(value, check.get("path", ""))
    if check.get("check") == "less_than":
        others = resolve(value, check.get("other", ""))
        if not items or not others:
            return True
        if len(others) == 1:
            pairs = [(it, others[0]) for it in items]
        elif len(others) == len(items):
            pairs = list(zip(items, others))
        else:
            return False
        return all(check_value(a, check, value, other=b) for a, b in pairs)
    return all(check_value(it, check, value) for it in items)


def validate_check_spec(check: Any) -> List[str]:
    """Return a list of problems with a check object's shape (empty when well-formed)."""
    errs: List[str] = []
    if not isinstance(check, dict):
        return ["check is not an object"]
    kind = check.get("check")
    if kind not in CHECK_KINDS:
        return [f"unknown check kind {kind!r}"]
    if not isinstance(check.get("path"), str):
        errs.append("path missing or not a string")
    allowed = CHECK_KINDS[kind] | {"path", "check"}
    extra = set(check) - allowed
    if extra:
        errs.append(f"unexpected keys {sorted(extra)} for {kind}")
    need = CHECK_KINDS[kind]
    missing = need - set(check)
    if missing:
        errs.append(f"missing keys {sorted(missing)} for {kind}")
    if kind in ("range",):
        for k in ("min", "max"):
            if k in check and check[k] is not None and not _is_number(check[k]):
                errs.append(f"{k} must be a number or null")
    if kind in ("length", "words"):
        for k in ("min", "max"):
            if k in check and check[k] is not None and (not isinstance(check[k], int) or isinstance(check[k], bool)):
                errs.append(f"{k} must be an int or null")
    if kind == "date_range":
        for k in ("min", "max"):
            v = check.get(k)
            if v is not None:
                try:
                    _dt.date.fromisoformat(v)
                    if not _DATE_RE.fullmatch(v):
                        raise ValueError
                except (TypeError, ValueError):
                    errs.append(f"{k} must be YYYY-MM-DD or null")
    if kind == "regex":
        try:
            re.compile(check.get("pattern", ""))
        except (re.error, TypeError) as e:
            errs.append(f"bad pattern: {e}")
    if kind == "one_of" and not isinstance(check.get("values"), list):
        errs.append("values must be a list")
    if kind == "less_than" and not isinstance(check.get("other"), str):
        errs.append("other must be a path string")
    if kind in ("range", "length", "words", "date_range"):
        if check.get("min") is None and check.get("max") is None:
            errs.append("both min and max are null")
        elif check.get("min") is not None and check.get("max") is not None and check["min"] > check["max"]:
            errs.append("min > max")
    return errs


def make_validator(schema: dict):
    """A jsonschema Draft 2020-12 validator for ``schema`` with that draft's format checker."""
    import jsonschema  # imported lazily so the checks work without jsonschema installed

    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
