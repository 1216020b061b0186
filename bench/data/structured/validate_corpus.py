#!/usr/bin/env python
"""Validate bench/data/structured/tasks.jsonl and print feature counts.

Run from the repository root:  python bench/data/structured/validate_corpus.py
Optional argument: path to another tasks file.  Exit status is 1 if any line is invalid.

For every line it checks the fields, then
  * json_schema: the schema is a valid draft 2020-12 schema (jsonschema check_schema),
    "example" validates (Draft202012Validator + Draft202012Validator.FORMAT_CHECKER, a
    FormatChecker; a bare FormatChecker() would judge "time" by draft 3 rules), llguidance compiles the
    schema (LLMatcher.validate_grammar(...) == ""), and llguidance's matcher, driven by a
    byte-level tokenizer, accepts json.dumps(example) -- which also confirms the example
    lists properties in schema order, as constrained decoding emits them;
  * regex: no ^/$ anchors, re.fullmatch(regex, example), llguidance compiles the regex and
    its matcher accepts the example;
  * house rules that keep answers short for a small model: free-text strings have
    maxLength, arrays have maxItems (<= 5 unless items are scalars), schema patterns are
    anchored with ^...$ (JSON Schema patterns are unanchored searches), the example is short;
  * every check is well formed, its path(s) resolve in the example, and it passes there.
"""
from __future__ import annotations

import collections
import json
import os
import re
import sys

import jsonschema
import llguidance

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from checks import make_validator, resolve, run_check, validate_check_spec  # noqa: E402

TASKS = os.path.join(HERE, "tasks.jsonl")
ID_RE = re.compile(r"[a-z0-9]+(_[a-z0-9]+)*")
MAX_EXAMPLE_CHARS = 480  # compact JSON; roughly 120 tokens of a small-model BPE vocabulary


class _ByteTokenizer:
    """One token per byte plus an EOS token; enough to drive an LLMatcher."""

    def __init__(self):
        self.tokens = [bytes([i]) for i in range(256)] + [b"<eos>"]
        self.eos_token_id = 256
        self.bos_token_id = None
        self.special_token_ids = [256]

    def __call__(self, s):
        return list(s.encode("utf-8") if isinstance(s, str) else s)


_TOK = llguidance.LLTokenizer(llguidance.TokenizerWrapper(_ByteTokenizer()))


def llg_accepts(grammar: str, text: str) -> str:
    """'' if the llguidance matcher accepts exactly `text`, else an error message."""
    m = llguidance.LLMatcher(_TOK, grammar, log_level=0)
    if m.is_error():
        return m.get_error()[:300]
    if not m.consume_tokens(list(text.encode("utf-8"))):
        return "rejected: " + m.get_error().split("\n")[0][:300]
    if not m.is_accepting():
        return "matcher not in an accepting state at end of example"
    return ""


# ---------------------------------------------------------------- schema walking

def _deref(schema, root):
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 10:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            break
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        schema = node
        seen += 1
    return schema


def _is_object(s):
    return isinstance(s, dict) and (s.get("type") == "object" or "properties" in s)


def _subschemas(s):
    """(role, child) pairs of a schema node."""
    for k, v in (s.get("properties") or {}).items():
        yield "property", v
    if isinstance(s.get("items"), dict):
        yield "items", s["items"]
    for v in s.get("prefixItems") or []:
        yield "items", v
    for key in ("anyOf", "oneOf", "allOf"):
        for v in s.get(key) or []:
            yield key, v
    if isinstance(s.get("additionalProperties"), dict):
        yield "additional", s["additionalProperties"]


def schema_features(root):
    f = collections.Counter()
    problems = []
    if "$defs" in root:
        f["$defs"] += 1
    top = _deref(root, root)
    t = top.get("type")
    if "anyOf" in top or "oneOf" in top:
        f["top_level_union"] += 1
    elif t == "array":
        f["top_level_array"] += 1
    elif not _is_object(top):
        f["top_level_non_object"] += 1
        if "enum" in top:
            f["top_level_enum"] += 1
        if t == "string":
            f["top_level_string"] += 1

    def walk(s, seen_refs):
        if not isinstance(s, dict):
            return
        if "$ref" in s:
            f["$ref"] += 1
            ref = s["$ref"]
            if ref in seen_refs:
                return
            s = _deref(s, root)
            seen_refs = seen_refs | {ref}
        t = s.get("type")
        if "enum" in s:
            f["enum"] += 1
        if "const" in s:
            f["const"] += 1
        if "anyOf" in s:
            f["anyOf"] += 1
        if "oneOf" in s:
            f["oneOf"] += 1
        if t == "boolean":
            f["boolean"] += 1
        if t == "string" or (t is None and ("pattern" in s or "format" in s)):
            if "pattern" in s:
                f["pattern"] += 1
                p = s["pattern"]
                if not (p.startswith("^") and p.endswith("$")):
                    problems.append(f"schema pattern {p!r} should be anchored with ^...$")
            if "format" in s:
                f["format"] += 1
                f["format:" + s["format"]] += 1
            if "minLength" in s or "maxLength" in s:
                f["string_length"] += 1
            if not any(k in s for k in ("maxLength", "pattern", "format", "enum", "const")):
                problems.append("free-text string without maxLength: " + json.dumps(s)[:80])
        if t in ("integer", "number"):
            if any(k in s for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
                f["number_range"] += 1
                f[t + "_range"] += 1
            if "exclusiveMinimum" in s or "exclusiveMaximum" in s:
                f["exclusive_bound"] += 1
        if t == "array":
            f["array"] += 1
            if "minItems" in s or "maxItems" in s:
                f["array_min_max_items"] += 1
            items = _deref(s.get("items", {}), root)
            if _is_object(items):
                f["array_of_objects"] += 1
            scalar = isinstance(items, dict) and items.get("type") in ("string", "integer", "number", "boolean") \
                and not (items.get("type") == "string" and items.get("maxLength", 0) > 40)
            if "maxItems" not in s:
                problems.append("array without maxItems")
            elif s["maxItems"] > 5 and not scalar:
                problems.append(f"array maxItems {s['maxItems']} > 5 with non-tiny items")
        if _is_object(s):
            f["object"] += 1
            for child in (s.get("properties") or {}).values():
                c = _deref(child, root)
                branches = [c] + [_deref(b, root) for b in (c.get("anyOf") or []) + (c.get("oneOf") or [])]
                if any(_is_object(b) for b in branches):
                    f["nested_object"] += 1
            props = s.get("properties") or {}
            req = set(s.get("required") or [])
            if set(props) - req:
                f["optional_fields"] += 1
            if req - set(props):
                problems.append(f"required names not in properties: {sorted(req - set(props))}")
            if s.get("additionalProperties") is False:
                f["additionalProperties_false"] += 1
            else:
                f["object_open"] += 1
            if len(props) > 8:
                problems.append(f"object with {len(props)} properties (> 8)")
        for _, child in _subschemas(s):
            walk(child, seen_refs)

    walk(root, frozenset())
    f["max_object_depth"] = _obj_depth(root, root, frozenset())
    return f, problems


def _obj_depth(s, root, seen):
    """Levels of object nesting; arrays and anyOf/oneOf are transparent."""
    if not isinstance(s, dict):
        return 0
    if "$ref" in s:
        if s["$ref"] in seen:
            return 0
        seen = seen | {s["$ref"]}
        s = _deref(s, root)
    below = max((_obj_depth(c, root, seen) for _, c in _subschemas(s)), default=0)
    return below + (1 if _is_object(s) else 0)


# ---------------------------------------------------------------- per line

def validate_line(obj):
    errs = []
    if not isinstance(obj, dict):
        return ["line is not a JSON object"], None
    kind = obj.get("kind")
    if kind not in ("json_schema", "regex"):
        return [f"bad kind {kind!r}"], None
    want = {"id", "kind", "request", "example", "checks", "schema" if kind == "json_schema" else "regex"}
    if set(obj) != want:
        errs.append(f"fields {sorted(obj)} != {sorted(want)}")
    tid = obj.get("id")
    if not isinstance(tid, str) or not ID_RE.fullmatch(tid) or len(tid) > 40:
        errs.append(f"bad id {tid!r}")
    req = obj.get("request")
    if not isinstance(req, str) or len(req.strip()) < 15:
        errs.append("request missing or too short")
    if "example" not in obj:
        return errs + ["no example"], None
    ex = obj["example"]
    feats = None

    if kind == "json_schema":
        schema = obj.get("schema")
        if not isinstance(schema, dict):
            return errs + ["schema is not an object"], None
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            return errs + [f"invalid schema: {e.message}"], None
        # Draft202012Validator with the draft's own FormatChecker (see checks.make_validator)
        v = make_validator(schema)
        for e in v.iter_errors(ex):
            errs.append(f"example invalid at /{'/'.join(map(str, e.path))}: {e.message}")
        g = llguidance.LLMatcher.grammar_from_json_schema(schema)
        gerr = llguidance.LLMatcher.validate_grammar(g)
        if gerr:
            errs.append("llguidance rejects schema: " + gerr[:300])
        else:
            text = json.dumps(ex, ensure_ascii=False)
            a = llg_accepts(g, text)
            if a:
                hint = " (object keys must follow the schema's property order)" if isinstance(ex, (dict, list)) else ""
                errs.append("llguidance matcher rejects example" + hint + ": " + a)
        compact = json.dumps(ex, ensure_ascii=False, separators=(",", ":"))
        if len(compact) > MAX_EXAMPLE_CHARS:
            errs.append(f"example too long ({len(compact)} chars)")
        feats, probs = schema_features(schema)
        errs += probs
    else:
        rx = obj.get("regex")
        if not isinstance(rx, str) or not rx:
            return errs + ["regex missing"], None
        if rx.startswith("^") or rx.endswith("$"):
            errs.append("regex must not be anchored with ^ or $")
        try:
            if not isinstance(ex, str) or re.fullmatch(rx, ex) is None:
                errs.append(f"example {ex!r} does not fullmatch regex")
        except re.error as e:
            errs.append(f"python re error: {e}")
        g = llguidance.LLMatcher.grammar_from_regex(rx)
        gerr = llguidance.LLMatcher.validate_grammar(g)
        if gerr:
            errs.append("llguidance rejects regex: " + gerr[:300])
        elif isinstance(ex, str):
            a = llg_accepts(g, ex)
            if a:
                errs.append("llguidance matcher rejects example: " + a)
        feats = collections.Counter(regex=1)

    checks = obj.get("checks")
    if not isinstance(checks, list):
        errs.append("checks is not a list")
        checks = []
    for i, c in enumerate(checks):
        spec = validate_check_spec(c)
        if spec:
            errs += [f"check {i}: {m}" for m in spec]
            continue
        if not resolve(ex, c["path"]):
            errs.append(f"check {i}: path {c['path']!r} resolves to nothing in example")
        if c["check"] == "less_than" and not resolve(ex, c["other"]):
            errs.append(f"check {i}: other {c['other']!r} resolves to nothing in example")
        if not run_check(ex, c):
            errs.append(f"check {i} fails on example: {json.dumps(c)}")
        if feats is not None:
            feats["check:" + c["check"]] += 1
    return errs, feats


FEATURE_ORDER = [
    "object", "nested_object", "array", "array_min_max_items", "array_of_objects", "enum", "const",
    "pattern", "format", "format:date", "format:date-time", "format:email", "format:time",
    "string_length", "number_range", "integer_range", "number_range_float", "exclusive_bound",
    "boolean", "anyOf", "oneOf", "optional_fields", "additionalProperties_false_all",
    "additionalProperties_false_some", "$defs", "$ref", "top_level_array", "top_level_non_object",
    "top_level_enum", "top_level_string", "top_level_union", "object_depth>=3", "has_open_object",
]


def main(path=TASKS):
    ids = collections.Counter()
    n_bad = 0
    per_schema = collections.Counter()   # how many schemas use each feature
    check_counts = collections.Counter()
    kinds = collections.Counter()
    longest = (0, "")
    no_checks = 0
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    for ln, line in enumerate(lines, 1):
        if not line.strip():
            print(f"line {ln}: blank line")
            n_bad += 1
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            print(f"line {ln}: not JSON: {e}")
            n_bad += 1
            continue
        errs, feats = validate_line(obj)
        tid = obj.get("id") if isinstance(obj, dict) else None
        ids[tid] += 1
        if ids[tid] > 1:
            errs.append(f"duplicate id {tid!r}")
        if errs:
            n_bad += 1
            for e in errs:
                print(f"line {ln} [{tid}]: {e}")
            continue
        kinds[obj["kind"]] += 1
        no_checks += not obj["checks"]
        for k, v in feats.items():
            if k.startswith("check:"):
                check_counts[k[6:]] += v
        if obj["kind"] == "json_schema":
            c = len(json.dumps(obj["example"], ensure_ascii=False, separators=(",", ":")))
            longest = max(longest, (c, tid))
            present = {k for k, v in feats.items() if v and not k.startswith("check:")}
            if feats["number_range"] > feats["integer_range"]:
                present.add("number_range_float")
            if feats["object"]:
                if feats["object_open"] == 0:
                    present.add("additionalProperties_false_all")
                elif feats["additionalProperties_false"]:
                    present.add("additionalProperties_false_some")
            if feats["max_object_depth"] >= 3:
                present.add("object_depth>=3")
            if feats["object_open"]:
                present.add("has_open_object")
            for k in present:
                per_schema[k] += 1
    total = len(lines)
    print(f"\n{total} lines: {total - n_bad} valid, {n_bad} invalid")
    print(f"json_schema tasks: {kinds['json_schema']}   regex tasks: {kinds['regex']}")
    print("\nschemas using each feature:")
    for k in FEATURE_ORDER:
        print(f"  {k:34s} {per_schema[k]}")
    print("\nchecks by kind (all tasks): " + ", ".join(f"{k}={v}" for k, v in sorted(check_counts.items())))
    print(f"tasks with no checks: {no_checks}")
    print(f"longest json example: {longest[0]} chars compact ({longest[1]})")
    if n_bad == 0:
        print("\nALL LINES VALID")
    return 0 if n_bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:2]))
