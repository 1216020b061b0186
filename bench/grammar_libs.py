"""Why llguidance: the grammar libraries side by side on SmolLM2's tokenizer.

For each library that is installed (llguidance is a dependency; xgrammar is not, it needs
`pip install xgrammar apache-tvm-ffi`), on the same JSON Schema and the same answer: compile
time, the per-token cost of a mask plus accepting the token (alternating, medians), and
whether schemas it cannot honour are refused rather than silently loosened (a loosened
grammar lets an invalid answer through).

    python -m bench.grammar_libs --out bench/results/grammar_libs.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 40}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 20}, "maxItems": 4}},
    "required": ["name", "age", "tags"], "additionalProperties": False}
ANSWER = '{"name": "Ada Lovelace", "age": 36, "tags": ["maths", "poetry"]}'
# Schemas a library must refuse or honour: `not` (a keyword few implement) and an
# unsatisfiable string.
HARD = {"not": {"type": "object", "properties": {"a": {"not": {"type": "string"}}}, "required": ["a"]},
        "unsatisfiable": {"type": "string", "minLength": 5, "maxLength": 2}}
FORBIDDEN = '{"a": "x"}'  # a string where `not` forbids one


class Llguidance:
    name = "llguidance"

    def __init__(self, tok, size):
        import llguidance

        self.llg = llguidance
        self.tok = llguidance.LLTokenizer(tok.backend_tokenizer.to_str(), n_vocab=size, eos_token=[tok.eos_token_id])

    def compile(self, schema):
        from planner.grammar import JSON_LAYOUT

        text = self.llg.LLMatcher.grammar_from_json_schema(schema, defaults=JSON_LAYOUT)
        error = self.llg.LLMatcher.validate_grammar(text, self.tok)
        if error:
            raise ValueError(error)
        return self.llg.LLMatcher(self.tok, text)

    def walk(self, compiled, ids) -> float:
        import llguidance.numpy as lnp

        m, bits = compiled.deep_copy(), lnp.allocate_token_bitmask(1, self.tok.vocab_size)
        started = time.perf_counter()
        for t in ids:
            lnp.fill_next_token_bitmask(m, bits, 0)
            m.consume_token(t)
        assert not m.is_error()
        return (time.perf_counter() - started) / len(ids)


class Xgrammar:
    name = "xgrammar"

    def __init__(self, tok, size):
        import xgrammar

        self.xgr = xgrammar
        self.compiler = xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(tok, vocab_size=size))
        self.size = size

    def compile(self, schema):
        return self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=False, separators=(", ", ": "))

    def walk(self, compiled, ids) -> float:
        m, bits = self.xgr.GrammarMatcher(compiled), self.xgr.allocate_token_bitmask(1, self.size)
        started = time.perf_counter()
        for t in ids:
            m.fill_next_token_bitmask(bits)
            assert m.accept_token(t)
        return (time.perf_counter() - started) / len(ids)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", default="bench/results/grammar_libs.json")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    from actors.engines.model_source import resolve_model

    source = resolve_model("smollm2")
    tok = AutoTokenizer.from_pretrained(source.directory, **source.from_pretrained_kwargs())
    size = 49152
    ids = tok.encode(ANSWER, add_special_tokens=False)
    libs, missing = [], []
    for cls in (Llguidance, Xgrammar):
        try:
            libs.append(cls(tok, size))
        except ImportError as exc:
            missing.append(f"{cls.name}: {exc}")
    report = {"answer_tokens": len(ids), "libraries": {}, "not_installed": missing}
    compiled = {}
    for lib in libs:
        started = time.perf_counter()
        compiled[lib.name] = lib.compile(SCHEMA)
        report["libraries"][lib.name] = {"compile_s": time.perf_counter() - started, "us_per_token": []}
    for _ in range(args.repeats):  # alternating
        for lib in libs:
            report["libraries"][lib.name]["us_per_token"].append(lib.walk(compiled[lib.name], ids) * 1e6)
    for lib in libs:
        row = report["libraries"][lib.name]
        row["us_per_token"] = float(np.median(row["us_per_token"]))
        row["hard_schemas"] = {}
        for name, schema in HARD.items():
            try:
                grammar = lib.compile(schema)
            except Exception as exc:  # noqa: BLE001 - each library raises its own kind
                row["hard_schemas"][name] = "refused: " + str(exc).strip().splitlines()[0][:120]
                continue
            row["hard_schemas"][name] = "accepted"
            if name == "not":  # does the grammar let through an answer the schema forbids?
                try:
                    lib.walk(grammar, tok.encode(FORBIDDEN, add_special_tokens=False))
                    row["hard_schemas"][name] = f"accepted, and lets {FORBIDDEN} through"
                except AssertionError:
                    row["hard_schemas"][name] = "accepted, and enforced"
        print(f"{lib.name:<11} compile {row['compile_s'] * 1000:.0f} ms   {row['us_per_token']:.0f} us/token (mask + "
              f"accept)   not: {row['hard_schemas']['not'][:50]}   unsatisfiable: "
              f"{row['hard_schemas']['unsatisfiable'][:40]}")
    for line in missing:
        print(f"not installed: {line}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
