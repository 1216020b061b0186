"""`council bench council`: the mixed set, its checks, the oracle, and a short run on two tiny
pools end to end."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import pytest

from bench.council import (
    KINDS, SYSTEMS, Item, Row, escalation_curves, grade, load_set, oracle, paired_votes, run_all, summarise,
    verdicts,
)


def test_the_set_has_every_kind_and_over_300_requests():
    items = load_set()
    counts = Counter(i.kind for i in items)
    assert len(items) >= 300 and set(counts) == set(KINDS) and min(counts.values()) >= 60
    assert len({i.id for i in items}) == len(items)
    sample = load_set(per_kind=3)
    assert Counter(i.kind for i in sample) == {k: 3 for k in KINDS}
    assert {i.id[:4] for i in sample if i.kind == "short-answer"} == {"fact", "sa-0"}  # both sources


def test_each_reference_passes_its_own_check():
    # What the oracle answers is right by the bench's own checks, so the checks can pass.
    items = load_set()
    for item in items:
        assert grade(item, item.reference), (item.id, item.reference)
    short = next(i for i in items if i.id == "fact-000")
    assert grade(short, "The capital of France is Paris.") and not grade(short, "Lyon")
    assert not grade(next(i for i in items if i.kind == "open"), "")


def test_the_oracle_answers_the_request_it_is_asked_about():
    items = load_set(per_kind=4)
    respond = oracle(items)
    target = items[5]
    text, (prompt_tokens, completion_tokens) = respond({"messages": [
        {"role": "user", "content": f"Question: {target.prompt}\n\nTheir answers:\n- something else"}]})
    assert text == target.reference and prompt_tokens > 0 and completion_tokens > 0


def test_verdicts_follow_the_figures():
    def entry(strategy, accuracy, usd, short=None, pools=("a",)):
        return {"strategy": strategy, "accuracy": accuracy, "usd_per_request": usd, "pools": list(pools),
                "by_kind": {"short-answer": {"accuracy": accuracy if short is None else short}}}

    summary = {"vote@a": entry("council-vote", 0.6, 2.0, 0.5), "vote@a+b": entry("council-vote", 0.7, 3.0, 0.8, ("a", "b")),
               "smc@a": entry("council-smc", 0.5, 1.0), "council-auto": entry("council-auto", 0.7, 1.5),
               "planner": entry("planner", 1.0, 0.1)}
    v = verdicts(summary)
    assert v["best_fixed"] == "vote@a+b" and v["auto_at_least_as_accurate_as_best_fixed"]
    assert v["auto_cheaper_than_best_fixed"] and v["auto_on_cost_quality_frontier"]  # the oracle is left out
    assert v["cross_model_vote_beats_single_model_votes"]


def test_paired_votes_count_what_one_gets_right_and_the_other_wrong():
    def row(i, system, correct):
        return Row(id=f"q{i}", kind="short-answer", system=system, correct=correct)

    cross = [True] * 9 + [False] * 3   # right on q0-q8
    single = [False] * 8 + [True] * 4  # right on q8-q11
    rows = [row(i, "vote@smol+gemma", c) for i, c in enumerate(cross)]
    rows += [row(i, "vote@smol", c) for i, c in enumerate(single)]
    rows.append(Row(id="c0", kind="constrained", system="vote@smol", correct=True))  # not a short answer
    split = paired_votes(rows, SYSTEMS)["vote@smol+gemma vs vote@smol"]
    assert (split["requests"], split["wins"], split["losses"]) == (12, 8, 3)
    assert split["sign_test_p"] == pytest.approx(2 * (1 + 11 + 55 + 165) / 2**11)  # P(X <= 3), X ~ Bin(11, 1/2)
    assert paired_votes(rows[:12], SYSTEMS)["vote@smol+gemma vs vote@smol"]["requests"] == 0


def test_escalation_curves_send_the_least_sure_to_the_planner():
    def row(i, confidence, correct):
        return Row(id=f"q{i}", kind="short-answer", system="vote@smol", correct=correct, confidence=confidence)

    # Sure and right, sure and wrong, and two unsure answers tied at 0.2 (one right).
    rows = [row(0, 0.9, True), row(1, 0.8, False), row(2, 0.2, True), row(3, 0.2, False)]
    curve = escalation_curves(rows, SYSTEMS)["vote@smol"]["accuracy_by_escalation"]
    assert curve["0.0"] == pytest.approx(2 / 4)  # the votes' own answers
    assert curve["0.5"] == pytest.approx(3 / 4)  # the two unsure go to the planner
    assert curve["0.2"] == pytest.approx((0.8 + 1 + 1.2 * 0.5) / 4)  # 0.8 of the tie escalated
    assert curve["0.8"] == pytest.approx((3.2 + 0.8 * 1) / 4)  # then the sure and wrong one, in part
    assert curve["1.0"] == 1.0
    assert list(escalation_curves(rows, [s for s in SYSTEMS if s[1] != "council-vote"])) == []


@pytest.mark.slow
def test_a_short_run_on_two_pools_writes_rows_and_a_summary(tmp_path, tiny_model, smollm2_tokenizer):
    from actors.engines.torch_engine import TorchEngine
    from bench.council import make_runner
    from cluster.config import EngineConfig

    engine = TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32", kv_cache_tokens=4096))
    runner = make_runner(None, {"smol": engine, "gemma": engine})
    items = [i for i in load_set(per_kind=1) if i.kind in ("short-answer", "open")]
    systems = [s for s in SYSTEMS if s[0] in ("follower@smol", "vote@smol+gemma", "council-auto")]
    out = tmp_path / "rows.jsonl"
    rows = asyncio.run(run_all(runner, items, systems, out, particles=2, chunk=2, progress=lambda line: None))
    assert len(rows) == len(items) * len(systems) and all(r.error is None for r in rows)
    assert len(out.read_text().splitlines()) == len(rows)
    again = asyncio.run(run_all(runner, items, systems, out, particles=2, chunk=2, progress=lambda line: None))
    assert [r.model_dump() for r in again] == [r.model_dump() for r in rows]  # resumed, nothing re-run
    summary = summarise(rows, systems)
    auto = summary["council-auto"]
    assert auto["routes"]["short-answer"] == ["council-vote@smol+gemma"]
    assert summary["vote@smol+gemma"]["follower_tokens"] > 0
    json.dumps(summary)  # plain data
    assert isinstance(Row.model_validate(rows[0].model_dump()), Row) and isinstance(items[0], Item)


def test_the_vote_ceiling_counts_what_some_pool_gets_right_and_what_the_judges_pick():
    from council_sdk.types import GenerateResult, ScoreResult

    from bench.vote_ceiling import measure

    items = [Item(id="q1", kind="short-answer", prompt="What is the capital of Peru?", answers=["Lima"],
                  reference="Lima"),
             Item(id="q2", kind="short-answer", prompt="What is the capital of Chile?", answers=["Santiago"],
                  reference="Santiago"),
             Item(id="q3", kind="short-answer", prompt="What is 2 + 2?", answers=["4"], reference="4")]
    said = {("a", "q1"): "Lima", ("b", "q1"): "Cusco", ("a", "q2"): "Valparaiso", ("b", "q2"): "Santiago",
            ("a", "q3"): "5", ("b", "q3"): "5"}
    # Both judges find "Lima" likelier than "Cusco", and "Valparaiso" likelier than "Santiago".
    likely = {"Lima": -1.0, "Cusco": -5.0, "Valparaiso": -1.0, "Santiago": -5.0}

    class Ctx:
        pool_names = ["a", "b"]

        async def sample(self, task, prompt, temperature, seed, pool=None):
            item = next(i for i in items if i.prompt == prompt)
            return GenerateResult(text=said[(pool, item.id)], token_ids=[1], token_logprobs=[-0.1],
                                  finish_reason="stop", prompt_tokens=1, completion_tokens=1)

        async def score(self, prompt, continuation, pool=None):
            return ScoreResult(token_logprobs=[likely[continuation]])

    report = asyncio.run(measure(Ctx(), items))
    assert report["greedy_accuracy"] == {"a": pytest.approx(1 / 3), "b": pytest.approx(1 / 3)}
    assert report["ceiling"] == pytest.approx(2 / 3)  # q1 (a) and q2 (b); q3 neither
    assert report["judges"]["a vs b"] == {"disagreements": 2, "judges_right": 1, "judges_accuracy": 0.5}
