"""`council bench peers` without genlm-control: the COLLIE constraints as bench/genlm_smc.py's JSON
spec, checked in plain Python the way its genlm-control potential checks them. The complete check
is COLLIE's own judgement; the prefix check is sound (it never rejects a prefix of a text COLLIE
accepts, bytes included) and rejects prefixes that show a text dead."""

import random

import pytest

from bench.evaluate import judge
from bench.genlm_smc import (collie_words, decode_prefix, ending_words, satisfies, spec_complete, spec_prefix,
                             word_regex)
from bench.peers import COLLIE_TYPES, Row, collie_spec, load_tasks, passed, render, summarise


@pytest.fixture(scope="module")
def sentence_tasks(collie_tasks):
    tasks = [t for t in collie_tasks if t["source"] == "wiki" and t["type"] in COLLIE_TYPES]
    assert {t["type"] for t in tasks} == set(COLLIE_TYPES)
    return tasks


def _judge(task, text):
    return bool(judge(task, text, None))


def test_every_sentence_level_task_has_a_spec(sentence_tasks):
    specs = {t["type"]: collie_spec(t) for t in sentence_tasks}
    assert set(specs["c04"]) == {"min_chars", "max_chars"}
    assert set(specs["c05"]) == {"min_words", "max_words", "word_at"}
    assert set(specs["c06a"]) == {"min_words", "max_word_chars"}
    assert set(specs["c07"]) == {"contains"}
    assert all(collie_spec(t) for t in sentence_tasks)


def test_the_complete_check_is_collies_judgement(sentence_tasks):
    rng = random.Random(0)
    texts = [t["reference"] for t in sentence_tasks]
    both = 0
    for task in rng.sample(sentence_tasks, 40):
        spec = collie_spec(task)
        for text in rng.sample(texts, 10) + [task["reference"], task["reference"] + " And more words.",
                                             task["reference"][:-6], task["reference"].lower()]:
            assert spec_complete(spec, text) == _judge(task, text), (task["id"], text)
            both += _judge(task, text)
    assert both >= 30  # the references mostly pass their own task


def test_no_prefix_of_an_accepted_reference_is_rejected(sentence_tasks):
    # The references pass their task by construction, but for two c05 ones (COLLIE's words
    # differ from the count in the prompt there): those are left out.
    rng = random.Random(1)
    accepted = [t for t in sentence_tasks if _judge(t, t["reference"])]
    assert len(accepted) >= len(sentence_tasks) - 3
    picked = [task for kind in COLLIE_TYPES for task in rng.sample([t for t in accepted if t["type"] == kind], 3)]
    for task in picked:
        spec, data = collie_spec(task), task["reference"].encode()
        for j in range(len(data) + 1):
            assert spec_prefix(spec, *decode_prefix(data[:j])), (task["id"], data[:j])


def test_no_prefix_of_a_tricky_passing_text_is_rejected():
    """Strings built from NLTK's corner cases (quotes, brackets and other separators, final periods,
    contractions that split words, non-ASCII, incomplete UTF-8), each with a spec it passes by
    construction."""
    rng = random.Random(7)
    alphabet = ["a", "Ab", "can", "not", "n", "n't", "'", '"', ".", "(", ")", " ", " ", "\n", ",", ":", "'s",
                "...", "x7", "abcdefgh", "wouldn", "gon", "na", "'t", "is", "``", "’", "»", "--", "U.S", "é", ";",
                "[", "]", "?", "–", '("', ';"', ".)", "\u00a0"]
    for _ in range(400):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12)))
        words = collie_words(text)
        if words:
            picked = sorted(rng.sample(range(len(words)), min(2, len(words))))
            spec = rng.choice([
                {"min_chars": len(text), "max_chars": len(text)},
                {"min_words": len(words), "max_words": len(words), "word_at": {str(i): words[i] for i in picked}},
                {"min_words": len(words), "max_word_chars": max(len(w) for w in words)},
                {"contains": [words[i] for i in picked]},
            ])
        else:
            spec = {"max_words": 0}
        assert spec_complete(spec, text)
        # The words a prefix has if it ends there, read from its cached committed part and the rest.
        assert all(ending_words(text[:j]) == collie_words(text[:j]) for j in range(len(text) + 1)), text
        data = text.encode()
        for j in range(len(data)):
            assert spec_prefix(spec, *decode_prefix(data[:j])), (text, spec, data[:j])


def test_dead_prefixes_and_failing_texts_are_rejected(sentence_tasks):
    c05 = next(t for t in sentence_tasks if t["id"] == "wiki_c05/0")  # 11 words; 'Series', 'and', '4'
    spec = collie_spec(c05)
    assert spec_prefix(spec, "University of Pennsylvania Ser")
    assert not spec_prefix(spec, "University of Pennsylvania Press ")   # word 4 is not 'Series'
    assert not spec_prefix(spec, "University of Pennsylvania Pr")       # nor can it become it
    assert not spec_prefix(spec, "One two three Series five six seven and nine ten 4 twelve")
    assert not spec_complete(spec, "University of Pennsylvania Series in Philology.")
    c04 = {"min_chars": 20, "max_chars": 20}
    assert spec_prefix(c04, "Twenty chars exactly") and spec_complete(c04, "Twenty chars exactly")
    assert not spec_prefix(c04, "Twenty chars exactly!") and not spec_complete(c04, "Too short.")
    c06a = {"min_words": 3, "max_word_chars": 5}
    assert spec_prefix(c06a, "A short one") and not spec_prefix(c06a, "A longer ")
    assert not spec_prefix(c06a, "A tremendously")  # a run this long stays too long
    assert not spec_complete(c06a, "Too few.")
    c07 = {"contains": ["river", "bridge"]}
    assert spec_prefix(c07, "Anything at all ") and not spec_complete(c07, "The river ran.")
    assert spec_complete(c07, "The river ran under the bridge.")
    assert not spec_prefix(spec, "Here is a [sentence]:more_and_more")  # 'sentence' is word 4, done
    assert decode_prefix(b"\xff") is None and decode_prefix("é".encode()[:1]) == ("", 1)


def test_the_regex_task_and_the_table():
    tasks = load_tasks(2, ("regex", "c05"))
    assert [t["type"] for t in tasks] == ["regex", "c05", "regex", "c05"]
    regex = tasks[0]
    assert regex["regex"] == word_regex(8, 12)
    good = "The river wound slowly past the old mill and bridge."
    assert satisfies(good, 8, 12) and passed(regex, good)
    assert not passed(regex, "Too short.") and not passed(regex, "")
    rows = [Row(id="regex/0", type="regex", system="council", text=good, passed=True, tokens=30, seconds=2.0),
            Row(id="regex/0", type="regex", system="genlm", text="", passed=False, tokens=10, seconds=1.0,
                process_s=9.0),
            Row(id="regex/1", type="regex", system="genlm", error="ran over 5 s")]
    summary = summarise(rows)
    assert summary["regex"]["council"]["tokens_per_s"] == 15.0 and summary["regex"]["council"]["pass_rate"] == 1.0
    assert summary["overall"]["genlm"]["errors"] == 1 and summary["overall"]["genlm"]["tokens_per_s"] == 10.0
    assert "| regex | genlm-control AWRS SMC | 2 | 0.00 | 10.0 |" in render(summary, None)
    assert "skipped: not installed" in render(summarise(rows[:1]), "not installed")


def test_without_genlm_control_council_rows_run_and_resume(tmp_path):
    """run_all with no genlm-control: Council's rows only (a stand-in runner), written as they
    come and kept on a second run; the warm-up answers one task of each kind, untimed."""
    import asyncio
    from types import SimpleNamespace

    from bench.peers import run_all

    class Runner:
        def __init__(self):
            self.requests = []

        async def run_task(self, request):
            self.requests.append(request)
            return SimpleNamespace(text="The river wound slowly past the old mill and bridge.", follower_tokens=24,
                                   passed=None, stopped="finished", rounds=24)

    tasks = load_tasks(1, ("regex", "c07"))
    runner, out = Runner(), tmp_path / "rows.jsonl"
    rows = asyncio.run(run_all(runner, tasks, out, particles=2, max_tokens=16, genlm=None, progress=lambda _: None))
    assert [(r.type, r.system) for r in rows] == [("regex", "council"), ("c07", "council")]
    assert rows[0].passed and rows[0].tokens == 24 and rows[0].seconds >= 0
    regex = [r for r in runner.requests if r.response_format is not None]
    assert len(runner.requests) == 4 and len(regex) == 2  # two warm-ups, two tasks
    assert regex[-1].max_rounds == 18 and regex[-1].response_format.regex == tasks[0]["regex"]
    again = asyncio.run(run_all(runner, tasks, out, particles=2, max_tokens=16, genlm=None, progress=lambda _: None))
    assert len(runner.requests) == 4 and [r.model_dump() for r in again] == [r.model_dump() for r in rows]
