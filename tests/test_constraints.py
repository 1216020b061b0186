"""COLLIE-exact verifiers, checked on all 2,080 COLLIE tasks: each human reference must pass
its own constraint, except the listed ones, each with its reason."""

from planner.constraints import parse_collie, sentences, words

# COLLIE split sentences with NLTK's trained English Punkt model, which cannot be downloaded
# here; our offline splitter (untrained Punkt + an abbreviation list) draws some boundaries
# differently: at a closing quote after "!" / "?", after an initial, inside a list of titles.
PUNKT = "sentence boundary differs from NLTK's trained Punkt model (not available offline)"
# NLTK 3.10's word tokenizer splits "8–2" at the en dash; the NLTK COLLIE used kept it whole.
EN_DASH = "word tokenizer version: an en dash is its own token in NLTK 3.10"
KNOWN_DIFFERENCES = {
    **{i: PUNKT for i in (
        "ccnews_c09/5", "ccnews_c09/23", "ccnews_c09/28", "ccnews_c09/34", "ccnews_c09/53",
        "ccnews_c09/55", "ccnews_c09/57", "ccnews_c09/58", "ccnews_c09/67", "ccnews_c10/94",
        "ccnews_c12/33", "ccnews_c12/58", "ccnews_c12/61", "ccnews_c12/64", "ccnews_c14/0",
        "ccnews_c14/29", "ccnews_c14/46", "ccnews_c14/72", "guten_c09/18", "guten_c09/87",
        "guten_c10/45", "guten_c10/53", "guten_c12/2", "guten_c12/18", "guten_c12/47",
        "guten_c14/0", "guten_c14/27", "wiki_c09/19", "wiki_c09/59", "wiki_c09/90",
        "wiki_c10/26", "wiki_c12/70", "wiki_c14/82",
    )},
    "wiki_c05/61": EN_DASH,
    "wiki_c05/86": EN_DASH,
}


def test_every_reference_passes_its_own_constraint(collie_tasks):
    tasks = collie_tasks
    assert len(tasks) == 2080
    assert {t["type"] for t in tasks} == {
        "c01", "c02", "c03", "c04", "c05", "c06a", "c07", "c08", "c09", "c10", "c11", "c12", "c14"
    }
    failing = {t["id"] for t in tasks if not parse_collie(t["constraint"], t["targets"])(t["reference"])}
    assert failing == set(KNOWN_DIFFERENCES)  # no new failure, and no stale exception


def test_verifiers_reject_wrong_texts(collie_tasks):
    tasks = {t["id"]: t for t in collie_tasks}

    def verifier(task_id):
        t = tasks[task_id]
        return parse_collie(t["constraint"], t["targets"])

    c04 = tasks["ccnews_c04/0"]  # exactly 82 characters
    assert verifier("ccnews_c04/0")(c04["reference"])
    assert not verifier("ccnews_c04/0")(c04["reference"] + " ")
    c05 = verifier("ccnews_c05/0")  # 17 words; words 4, 8, 11 given
    assert not c05("One two three aids five six seven positioners nine ten nests.")
    c07 = verifier("ccnews_c07/0")  # contains 'Nugent', 'is', 'witness'
    assert c07("Nugent is a witness.") and c07("NUGENT, is the witness!")
    assert not c07("Nugent was a witness.")
    c09 = verifier("ccnews_c09/0")  # 3 sentences, no 'be', 'this', 'is'
    assert c09("We ran. They swam. It rained.")
    assert not c09("We ran. This swam. It rained.") and not c09("We ran. They swam.")


def test_units_follow_collie():
    assert words("Hello, world. It's Dr. Smith's car!") == ["Hello", "world", "It", "'s", "Dr", "Smith", "'s", "car"]
    assert sentences("He left the U.S. in Jan. 2019. Then he came back!") == [
        "He left the U.S. in Jan. 2019", "Then he came back!"
    ]
