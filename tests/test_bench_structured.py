"""The structured-output corpus: enough schemas and regexes, each compiles for generation,
its example verifies, and its semantic checks pass on the example and can fail."""

import json

from bench.structured import grammar_of, load, semantic


def test_the_corpus_compiles_and_every_example_verifies():
    tasks = load()
    assert sum(t["kind"] == "json_schema" for t in tasks) >= 100 and sum(t["kind"] == "regex" for t in tasks) >= 30
    for task in tasks:
        grammar = grammar_of(task)
        grammar.check()  # the bounded generation grammar compiles too
        example = json.dumps(task["example"]) if task["kind"] == "json_schema" else task["example"]
        assert grammar.verify(example)[0], task["id"]
        assert semantic(task, example) in (True, None), task["id"]


def test_a_semantic_check_fails_a_nonsense_value():
    task = next(t for t in load() if any(c["check"] == "range" for c in t.get("checks", []))
                and t["kind"] == "json_schema")
    check = next(c for c in task["checks"] if c["check"] == "range")
    value = json.loads(json.dumps(task["example"]))
    *parents, leaf = check["path"].split(".")
    target = value
    for key in parents:
        target = target[int(key)] if isinstance(target, list) else target[key]
    target[leaf] = (check["max"] + 1000) if check.get("max") is not None else check["min"] - 1000
    assert semantic(task, json.dumps(value)) is False
