"""Grammars for structured output: JSON Schema, JSON, regular expressions, choices, Lark.

One `GrammarSpec` (pydantic, the shape every API turns a `response_format` / `guided_*` into)
is compiled by **llguidance** (Earley parsing over a lexer, in Rust; ~36 µs a token, mask and
accept, for SmolLM2's 49k vocabulary: `python -m bench.grammar_libs`) into a grammar text, checked once on the trusted side
(`check`: size, compile time, unsupported features, a grammar that admits nothing → a
`GrammarError`, one plain sentence for a 400), and then matched token by token in the
particle's process (`Matcher`, held by an `LMContext`, see `planner/program.py`).

JSON is compiled to one canonical layout (`", "` between items, `": "` after keys, no other
whitespace): how chat models write JSON, and one string per value, so the constrained
distribution is over values rather than over spacing.

    spec = GrammarSpec(json_schema={"type": "object", ...})
    spec.check()                       # GrammarError if it cannot be used
    spec.verify('{"name": "Ann"}')     # (ok, reason): jsonschema / regex.fullmatch / membership
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

MAX_GRAMMAR_CHARS = 32_000  # of a schema / regex / Lark text, serialised
MAX_CHOICES = 256
COMPILE_BUDGET_S = 2.0  # wall time to build the first matcher (compile + first mask)
VERIFY_TIMEOUT_S = 1.0  # for a client's regular expression run on an answer
JSON_LAYOUT = {"item_separator": ", ", "key_separator": ": ", "whitespace_flexible": False}

Kind = Literal["json_schema", "json_object", "regex", "choice", "lark"]


class GrammarError(ValueError):
    """A grammar that cannot be used: `str()` is one plain sentence for the client."""


def _limits():
    import llguidance

    # Lower fuel than llguidance's defaults: a request's grammar runs next to other tenants'.
    return llguidance.LLParserLimits(initial_lexer_fuel=500_000, step_lexer_fuel=100_000,
                                     max_grammar_size=200_000, step_max_items=20_000)


class GrammarSpec(BaseModel):
    """What the answer must match. Exactly one of the fields is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    json_schema: dict[str, Any] | None = None
    json_object: bool = False  # any JSON object (OpenAI's {"type": "json_object"})
    regex: str | None = None
    choice: tuple[str, ...] | None = None
    lark: str | None = None

    @model_validator(mode="after")
    def _one(self) -> "GrammarSpec":
        given = [k for k in ("json_schema", "regex", "choice", "lark") if getattr(self, k) is not None]
        given += ["json_object"] if self.json_object else []
        if len(given) != 1:
            raise ValueError("a grammar needs exactly one of json_schema, json_object, regex, choice or lark")
        if self.choice is not None:
            if not self.choice or len(self.choice) > MAX_CHOICES:
                raise ValueError(f"choice needs 1 to {MAX_CHOICES} options")
            if any(not c for c in self.choice):
                raise ValueError("choice options must be non-empty strings")
        if len(self.source) > MAX_GRAMMAR_CHARS:
            raise ValueError(f"the grammar is over {MAX_GRAMMAR_CHARS} characters")
        return self

    @property
    def kind(self) -> Kind:
        for k in ("json_schema", "regex", "choice", "lark"):
            if getattr(self, k) is not None:
                return k  # type: ignore[return-value]
        return "json_object"

    @property
    def source(self) -> str:
        """The grammar as the client wrote it (serialised): what size limits count."""
        if self.json_schema is not None:
            return json.dumps(self.json_schema)  # key order kept: it is the order fields are written in
        return {"regex": self.regex, "lark": self.lark,
                "choice": json.dumps(list(self.choice or ())), "json_object": "{}"}[self.kind] or ""

    @property
    def key(self) -> str:
        """A short stable name for this grammar (caches, logs)."""
        return hashlib.sha256(f"{self.kind}:{self.source}".encode()).hexdigest()[:16]

    def describe(self) -> str:
        if self.kind == "json_schema":
            return "JSON matching the schema"
        return {"json_object": "a JSON object", "regex": f"text matching /{self.regex}/",
                "choice": "one of " + ", ".join(repr(c) for c in (self.choice or ())[:8]),
                "lark": "text in the Lark grammar"}[self.kind]

    def text(self) -> str:
        """The llguidance grammar text."""
        return grammar_text(self.kind, self.source)

    def check(self) -> float:
        """Raise GrammarError unless this grammar compiles within budget and admits some text;
        returns the compile time in seconds."""
        return check_grammar(self.kind, self.source)

    def verify(self, text: str) -> tuple[bool | None, str]:
        """Whether `text` matches, checked independently of the matcher that wrote it."""
        return verify(self, text)


@lru_cache(maxsize=256)
def grammar_text(kind: str, source: str) -> str:
    import llguidance

    if kind == "json_schema":
        return llguidance.LLMatcher.grammar_from_json_schema(json.dumps(bounded(json.loads(source))),
                                                             defaults=JSON_LAYOUT)
    if kind == "json_object":
        return llguidance.LLMatcher.grammar_from_json_schema('{"type": "object"}', defaults=JSON_LAYOUT)
    if kind == "regex":
        return llguidance.LLMatcher.grammar_from_regex(source)
    if kind == "choice":
        options = json.loads(source)
        return llguidance.LLMatcher.grammar_from_lark("start: " + " | ".join(json.dumps(o) for o in options))
    if kind == "lark":
        return llguidance.LLMatcher.grammar_from_lark(source)
    raise GrammarError(f"unknown grammar kind {kind!r}")


LABELS = {"json_schema": "JSON schema", "json_object": "JSON object format", "regex": "regular expression",
          "choice": "choice list", "lark": "grammar"}


# Generation, not validation, is bounded: a free string, or a date-time's fractional seconds,
# lets a small model run on to its token limit ("18.2338856624998…") and never finish. The
# grammar generated from is a sub-language of the schema (every answer still matches it, and
# is checked against the schema as given); the bounds are far above what values need.
MAX_FREE_STRING = 400
_CLOCK = r"([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_DATE = r"[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
_FORMAT_PATTERNS = {"date-time": f"^{_DATE}T{_CLOCK}$", "time": f"^{_CLOCK}$"}


def bounded(schema: Any) -> Any:
    """`schema` with every unbounded free string given a maxLength and the open-ended
    formats given a pattern (a sub-language: see above)."""
    if isinstance(schema, list):
        return [bounded(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (bounded(v) if k not in ("enum", "const", "default", "examples") else v) for k, v in schema.items()}
    types = out.get("type")
    if types == "string" or (isinstance(types, list) and "string" in types):
        fmt = out.get("format")
        if fmt in _FORMAT_PATTERNS and "pattern" not in out:
            out["pattern"] = _FORMAT_PATTERNS[fmt]
            del out["format"]
        elif not any(k in out for k in ("maxLength", "enum", "const", "pattern", "format")):
            out["maxLength"] = MAX_FREE_STRING
    return out


def _sentence(message: str) -> str:
    """llguidance's error as one sentence (it may carry a multi-line trace)."""
    lines = [line.strip() for line in message.splitlines() if line.strip()] or ["it is not valid"]
    first = re.sub(r"^(error:|Error:)\s*", "", lines[0]).rstrip(":. ")
    if lines[0].rstrip().endswith(":") and len(lines) > 1:  # "regex parse error:" then the detail
        first = f"{first}: {lines[-1].rstrip('.')}"
    return re.sub(r"\s+", " ", first)[:300]


_CHECKED: dict[tuple[str, str], float] = {}


def check_grammar(kind: str, source: str) -> float:
    key = (kind, source)
    if key in _CHECKED:
        return _CHECKED[key]
    import llguidance

    if kind == "json_schema":
        _check_schema(json.loads(source))
    started = time.perf_counter()
    try:
        text = grammar_text(kind, source)
    except (ValueError, TypeError) as exc:
        raise GrammarError(f"the {LABELS[kind]} could not be read: {_sentence(str(exc))}.") from None
    # Without a tokenizer: the trusted side holds none. An unsatisfiable schema is refused
    # here by llguidance all the same; a matcher that fails later, in the worker, raises.
    error = llguidance.LLMatcher.validate_grammar(text, None, limits=_limits())
    if error and not error.startswith("WARNING"):
        raise GrammarError(f"the {LABELS[kind]} is not supported: {_sentence(error)}.")
    took = time.perf_counter() - started
    if took > COMPILE_BUDGET_S:
        raise GrammarError(f"the {LABELS[kind]} is too complex: compiling it took {took:.1f} s "
                           f"(the limit is {COMPILE_BUDGET_S:.0f} s).")
    if len(_CHECKED) > 1024:
        _CHECKED.clear()
    _CHECKED[key] = took
    return took


def _check_schema(schema: dict) -> None:
    from jsonschema import Draft202012Validator, SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "the top level"
        raise GrammarError(f"the JSON schema is invalid at {where}: {exc.message}.") from None


class _Unverified(Exception):
    """A check that could not finish (a client's pattern ran out of time)."""


def _timed_pattern(validator, pattern, instance, schema):
    """jsonschema's `pattern`, with the `regex` engine's clock (see `verify`)."""
    import regex
    from jsonschema import ValidationError

    if not validator.is_type(instance, "string"):
        return
    try:
        found = regex.search(pattern, instance, timeout=VERIFY_TIMEOUT_S)
    except TimeoutError:
        raise _Unverified(f"the pattern {pattern!r} could not be checked within {VERIFY_TIMEOUT_S:g} s") from None
    if found is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@lru_cache(maxsize=128)
def _validator(source: str):
    from jsonschema import Draft202012Validator, validators

    checker = validators.extend(Draft202012Validator, {"pattern": _timed_pattern})
    # The 2020-12 format checker: a bare FormatChecker() judges "time" by draft-3 rules.
    return checker(json.loads(source), format_checker=Draft202012Validator.FORMAT_CHECKER)


def verify(spec: GrammarSpec, text: str) -> tuple[bool | None, str]:
    """(ok, reason) for `text` against `spec`, without llguidance for JSON, regex and choice
    (jsonschema with format checks, `regex.fullmatch`, membership), so a matcher bug cannot
    certify its own output. ok is None when it could not be checked (the reason says why)."""
    if spec.kind in ("json_schema", "json_object"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            return False, f"the answer is not valid JSON ({exc.msg} at character {exc.pos})"
        if spec.kind == "json_object":
            return (True, "a JSON object") if isinstance(value, dict) else (False, "the answer is JSON but not an object")
        try:
            errors = sorted(_validator(spec.source).iter_errors(value), key=lambda e: [str(p) for p in e.path])
        except _Unverified as exc:
            return None, str(exc)
        error = next(iter(errors), None)
        if error is not None:
            where = "/".join(str(p) for p in error.path) or "the top level"
            return False, f"the JSON does not match the schema at {where}: {error.message}"
        return True, "the JSON matches the schema"
    if spec.kind == "regex":
        import regex

        # The client's pattern runs on the model's text: a backtracking engine with a clock,
        # since "(a+)+b" on a long answer would otherwise hold the runner for ever.
        try:
            ok = regex.fullmatch(spec.regex or "", text, timeout=VERIFY_TIMEOUT_S) is not None
        except TimeoutError:
            return None, f"the pattern could not be checked within {VERIFY_TIMEOUT_S:g} s"
        except regex.error:
            return None, "the regular expression cannot be checked by Python's regex"
        return (True, "the text matches the pattern") if ok else (False, "the text does not match the pattern")
    if spec.kind == "choice":
        ok = text in (spec.choice or ())
        return (True, "the answer is one of the choices") if ok else (False, "the answer is not one of the choices")
    return _verify_lark(spec, text)


def _verify_lark(spec: GrammarSpec, text: str) -> tuple[bool, str]:
    """A Lark grammar has no second implementation here: the matcher reads the answer's bytes."""
    import llguidance

    tok = _byte_tokenizer()
    matcher = llguidance.LLMatcher(tok, spec.text(), log_level=0, limits=_limits())
    ok = matcher.consume_tokens(tok.tokenize_str(text)) and matcher.is_accepting()
    return (True, "the text is in the grammar") if ok else (False, "the text is not in the grammar")


@lru_cache(maxsize=1)
def _byte_tokenizer():
    import llguidance

    # llguidance's byte-level test tokenizer: one token per byte, so any text tokenizes.
    return llguidance.LLTokenizer("byte")


# -- the particle side ---------------------------------------------------------------------


@lru_cache(maxsize=4)
def _tokenizer(tokenizer_json: str, vocab_size: int, eos_ids: tuple[int, ...]):
    import llguidance

    return llguidance.LLTokenizer(tokenizer_json, n_vocab=vocab_size, eos_token=list(eos_ids))


_BY_TOKENIZER: dict[tuple[int, int, tuple[int, ...]], tuple[Any, Any]] = {}


def llg_tokenizer(tokenizer, vocab_size: int, eos_ids) -> Any:
    """The llguidance tokenizer for a `tokenizers.Tokenizer` (built once per process, ~0.2 s;
    the zygote builds it before it forks, so workers start with it). Found by the tokenizer
    object first: serialising it for the cache key costs ~13 ms, and every context's first
    grammar and every shipped particle with one asks."""
    eos = tuple(sorted(int(i) for i in eos_ids))
    key = (id(tokenizer), int(vocab_size), eos)
    held = _BY_TOKENIZER.get(key)
    if held is None or held[0] is not tokenizer:  # the object itself is kept: an id can be reused
        held = _BY_TOKENIZER[key] = (tokenizer, _tokenizer(tokenizer.to_str(), int(vocab_size), eos))
    return held[1]


_TEMPLATES: dict[tuple[int, str], Any] = {}


class Matcher:
    """The grammar's state along one context's tokens from `start` (a generated-token
    offset). It follows the context lazily: `mask(tokens)` first consumes whatever was
    appended since, so sampling, observing, cloning and shipping a context need no hook.
    Shipped as (grammar, start) and rebuilt from the tokens on arrival."""

    __slots__ = ("spec", "start", "_tokenizer", "_matcher", "_consumed", "_mask")

    def __init__(self, spec: GrammarSpec, tokenizer, start: int):
        self.spec, self.start, self._tokenizer = spec, int(start), tokenizer
        self._matcher = None
        self._consumed = 0
        self._mask: tuple[int, np.ndarray] | None = None

    def _fresh(self):
        import llguidance

        key = (id(self._tokenizer), self.spec.text())
        template = _TEMPLATES.get(key)
        if template is None:
            if len(_TEMPLATES) > 64:
                _TEMPLATES.clear()
            template = llguidance.LLMatcher(self._tokenizer, key[1], log_level=0, limits=_limits())
            if template.is_error():
                raise GrammarError(f"the {LABELS[self.spec.kind]} is not supported: "
                                   f"{_sentence(template.get_error())}.")
            _TEMPLATES[key] = template
        return template.deep_copy()

    def _sync(self, generated: list[int]) -> None:
        if self._matcher is None or self._consumed > len(generated) - self.start:
            self._matcher, self._consumed = self._fresh(), 0  # rebuilt (after a load, or a rewind)
        new = generated[self.start + self._consumed:]
        if new:
            self._matcher.consume_tokens(new)
            self._consumed += len(new)

    def mask(self, generated: list[int], size: int) -> np.ndarray:
        """The tokens the grammar allows next, as a boolean array of `size` (read-only)."""
        self._sync(generated)
        if self._mask is not None and self._mask[0] == self._consumed:
            return self._mask[1]
        if self._matcher.is_error():
            bits = np.zeros(size, dtype=bool)
        else:
            packed = np.frombuffer(self._matcher.compute_bitmask(), dtype=np.uint8)
            bits = np.unpackbits(packed, bitorder="little", count=size).astype(bool)
        bits.flags.writeable = False
        self._mask = (self._consumed, bits)
        return bits

    def accepting(self, generated: list[int]) -> bool:
        self._sync(generated)
        return bool(self._matcher.is_accepting()) and not self._matcher.is_error()

    def __deepcopy__(self, memo):
        clone = Matcher(self.spec, self._tokenizer, self.start)
        if self._matcher is not None:
            clone._matcher, clone._consumed, clone._mask = self._matcher.deep_copy(), self._consumed, self._mask
        return clone


# -- what the APIs send ---------------------------------------------------------------------


def _spec(**fields) -> GrammarSpec:
    from pydantic import ValidationError

    try:
        return GrammarSpec(**fields)
    except ValidationError as exc:
        raise GrammarError(exc.errors()[0]["msg"].removeprefix("Value error, ") + ".") from None


def from_response_format(fmt: dict | None) -> GrammarSpec | None:
    """OpenAI's `response_format` (plus Council's own `regex`, `choice`, `grammar` types):
    {"type": "text"} | {"type": "json_object"} |
    {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": true}} |
    {"type": "regex", "regex": "..."} | {"type": "choice", "choice": [...]} | {"type": "grammar", "grammar": "<lark>"}"""
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise GrammarError("response_format must be an object with a type.")
    kind = fmt.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return _spec(json_object=True)
    if kind == "json_schema":
        block = fmt.get("json_schema")
        schema = block.get("schema") if isinstance(block, dict) else None
        if not isinstance(schema, dict):
            raise GrammarError("response_format json_schema needs a json_schema object with a schema object in it.")
        return _spec(json_schema=schema)
    if kind == "regex" and isinstance(fmt.get("regex"), str):
        return _spec(regex=fmt["regex"])
    if kind == "choice" and isinstance(fmt.get("choice"), list):
        return _spec(choice=tuple(str(c) for c in fmt["choice"]))
    if kind == "grammar" and isinstance(fmt.get("grammar"), str):
        return _spec(lark=fmt["grammar"])
    raise GrammarError(f"response_format type {kind!r} is not supported; use text, json_object, json_schema, "
                       f"regex, choice or grammar (each with its field).")


GUIDED = {"guided_json": "json", "guided_regex": "regex", "guided_choice": "choice", "guided_grammar": "grammar"}


def from_guided(body: dict) -> GrammarSpec | None:
    """vLLM's extras: `guided_json` / `guided_regex` / `guided_choice` / `guided_grammar`, or
    the newer `structured_outputs: {json | regex | choice | grammar | json_object}`."""
    given = {GUIDED[k]: body[k] for k in GUIDED if body.get(k) is not None}
    block = body.get("structured_outputs")
    if block is not None:
        if not isinstance(block, dict):
            raise GrammarError("structured_outputs must be an object.")
        given.update({k: v for k, v in block.items() if k in ("json", "regex", "choice", "grammar", "json_object")
                      and v not in (None, False)})
    if not given:
        return None
    if len(given) > 1:
        raise GrammarError(f"give one structured-output constraint, not {len(given)} ({', '.join(sorted(given))}).")
    kind, value = next(iter(given.items()))
    if kind == "json":
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise GrammarError("guided_json is not valid JSON.") from None
        if not isinstance(value, dict):
            raise GrammarError("guided_json must be a JSON schema object.")
        return _spec(json_schema=value)
    if kind == "json_object":
        return _spec(json_object=True)
    if kind == "choice":
        if not isinstance(value, list):
            raise GrammarError("guided_choice must be a list of strings.")
        return _spec(choice=tuple(str(c) for c in value))
    if not isinstance(value, str):
        raise GrammarError(f"guided_{kind} must be a string.")
    if kind == "grammar" and "::=" in value:  # GBNF / EBNF, as vLLM's xgrammar backend takes
        from llguidance.gbnf_to_lark import gbnf_to_lark

        try:
            value = gbnf_to_lark(value)
        except Exception as exc:  # noqa: BLE001 - its parser's message, as one sentence
            raise GrammarError(f"guided_grammar could not be read: {_sentence(str(exc))}.") from None
    return _spec(**{"regex" if kind == "regex" else "lark": value})


def to_response_format(spec: GrammarSpec) -> dict:
    """The `response_format` (Council's wire form) that stands for `spec`."""
    if spec.kind == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": spec.json_schema}}
    if spec.kind == "json_object":
        return {"type": "json_object"}
    if spec.kind == "lark":
        return {"type": "grammar", "grammar": spec.lark}
    return {"type": spec.kind, spec.kind: list(spec.choice or ()) if spec.kind == "choice" else spec.regex}
