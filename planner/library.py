"""The offline (library) planner: request -> ConstraintSpec -> inference program source.

No large model needed: `parse_request` recognises the constraints, and the program comes from
templates (`planner/programs/`), as *source*, so it goes through the same sandbox and
scheduler as a program an LLM planner writes. A request with no recognised constraint gets
the plain-generation program.
"""

from __future__ import annotations

import json
import re
from importlib import resources

from pydantic import BaseModel, Field

from planner.grammar import GrammarSpec
from planner.parse import Reading, read_request
from planner.spec import ConstraintSpec
from planner.structured_request import ANY_VALUE

GENERIC_PROGRAM = '''\
class Program(Model):
    """Plain generation: the follower's own distribution, up to {max_tokens} tokens
    (and, when a single sentence was asked for, up to its first sentence end)."""

    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat={chat})

    async def step(self):
        token = await self.sample(self.context.next_token())
        one_sentence = {one_sentence} and self.context.token_count > 3
        if one_sentence and str(token).strip()[-1:] in (".", "!", "?"):
            self.finish()
        elif token.is_eos or self.context.token_count >= {max_tokens}:
            self.finish()
'''


def generic_program(max_tokens: int = 64, chat: bool = True, one_sentence: bool = False) -> str:
    """Source of the plain-generation program (through the sandbox like any other).
    `chat=False` gives the prompt to the follower as raw text to continue."""
    return GENERIC_PROGRAM.format(max_tokens=int(max_tokens), chat=bool(chat),
                                  one_sentence=bool(one_sentence))


# The follower's distribution is sharpened a little: a 135M model at temperature 1 invents
# words ("patchawl") often enough to reach the answer; at 0.7 far less.
PROPOSAL_TEMPERATURE = 0.7


class Plan(BaseModel):
    """What the planner decided: the program, the follower's prompt, and why."""

    source: str
    prompt: str
    spec: ConstraintSpec
    reading: Reading
    recognised: list[str]
    template: str
    rounds: int = Field(256, description="Rounds the program may need (one word per round).")


def plan(request: str, max_tokens: int = 64) -> Plan:
    return plan_reading(read_request(request), request, max_tokens)


def plan_reading(reading: Reading, request: str, max_tokens: int = 64) -> Plan:
    """The program for a request as read (by the parser, or by a planner model's spec)."""
    spec = reading.spec
    if spec.is_empty():
        source = generic_program(max_tokens, one_sentence=spec.unit == "sentence")
        return Plan(source=source, prompt=request, spec=spec, reading=reading, recognised=[], template="generic")
    if spec.budget is not None:
        b = spec.budget
        data = {"items": b.items, "total": b.total, "currency": b.currency, "bound": b.bound,
                "bullet": b.bullet, "topic_words": topic_words(spec), "constraints": spec.model_dump(exclude_none=True, exclude={"topic", "genre"})}
        return Plan(source=_program("item_list", data), prompt=budget_prompt(spec), spec=spec,
                    reading=reading, recognised=spec.describe(), template="item_list", rounds=b.items + 16)
    data = program_parameters(spec)
    words = sum(high for _, high in data["lengths"])
    if data["chars"]:
        words = data["chars"]  # at least one character per word
    return Plan(source=_program("word_builder", data),
                prompt=follower_prompt(spec, data["n_sentences"]), spec=spec, reading=reading,
                recognised=spec.describe(), template="word_builder",
                rounds=max(256, words + data["n_sentences"] + 16))


# The grammar's weight makes SMC target the follower's distribution (at this temperature)
# given the format. 1.0 is the model itself; 0.7, the library's proposal temperature, gives
# a 135M follower's values far more sense ("Palmadaea alba" for a dog's name at 1.0). A
# request's own `temperature` overrides it.
STRUCTURED_TEMPERATURE = 0.7
STRUCTURED_MAX_TOKENS = 512


def plan_structured(request: str, grammar: GrammarSpec, reading: Reading | None = None,
                    max_tokens: int = STRUCTURED_MAX_TOKENS, temperature: float | None = None) -> Plan:
    """The structured-output program: `grammar` (from `response_format`, `guided_*`, or the
    request's own words) constrains every token; the follower is told the format too, as
    any client of a chat model would, since a masked model that was not told writes worse
    values."""
    data = {"grammar": grammar_arguments(grammar), "max_tokens": int(max_tokens)}
    temp = STRUCTURED_TEMPERATURE if temperature is None else max(0.05, float(temperature))
    source = _program("structured", data).replace(f"TEMP = {PROPOSAL_TEMPERATURE}", f"TEMP = {temp}")
    reading = reading or Reading(spec=ConstraintSpec())
    return Plan(source=source, prompt=f"{request}\n\n{format_instruction(grammar)}", spec=reading.spec,
                reading=reading, recognised=[grammar.describe()], template="structured", rounds=max_tokens + 2)


def grammar_arguments(grammar: GrammarSpec) -> dict:
    """`LMContext.grammar`'s keyword arguments for `grammar`, as plain data."""
    if grammar.json_object:
        return {"json_object": True}
    value = getattr(grammar, grammar.kind)
    return {grammar.kind: list(value) if grammar.kind == "choice" else value}


def format_instruction(grammar: GrammarSpec) -> str:
    schema = grammar.json_schema or {}
    if grammar.kind == "json_schema" and schema.get("properties") and all(
            v == ANY_VALUE for v in schema["properties"].values()):  # keys named in words only
        return "Reply with a JSON object only, with the keys " + ", ".join(schema["properties"]) + "."
    if grammar.kind == "json_schema":
        return "Reply with JSON only, matching this JSON Schema:\n" + json.dumps(schema)
    if grammar.kind == "json_object":
        return "Reply with a JSON object only."
    if grammar.kind == "choice":
        return "Reply with exactly one of: " + ", ".join(grammar.choice or ()) + "."
    if grammar.kind == "regex":
        return "Reply with the answer only, in this format (a regular expression): " + (grammar.regex or "")
    return "Reply with the answer only, in the format this grammar describes:\n" + (grammar.lark or "")


def _program(template: str, data: dict) -> str:
    """A template's source with its parameters above it (`SPEC`, `TEMP`)."""
    text = resources.files("planner.programs").joinpath(f"{template}.py").read_text()
    return f"SPEC = {data!r}\nTEMP = {PROPOSAL_TEMPERATURE}\n\n{text}"


CURRENCY_NAMES = {"$": "dollars", "€": "euros", "£": "pounds"}


def budget_prompt(spec: ConstraintSpec) -> str:
    b = spec.budget
    assert b is not None
    what = f" for {spec.topic}" if spec.topic else ""
    return (f"Write a list of {b.items} things to buy{what}, one per line, "
            f"each with its price in {CURRENCY_NAMES.get(b.currency, b.currency)}.")


def segment_count(spec: ConstraintSpec) -> int:
    """How many sentences (or lines) the text is planned to have."""
    if spec.in_lines:
        for given in (spec.acrostic, spec.line_last_words, spec.line_syllables, spec.rhyme_scheme):
            if given:
                return len(given)
        return spec.lines.low() or 1 if spec.lines else 4
    if spec.sentence_last_words:
        return len(spec.sentence_last_words)
    if spec.sentences is not None:
        return spec.sentences.low() or max([1, *spec.sentence_ends, *spec.sentence_starts])
    if spec.paragraphs is not None:
        per = spec.sentences_per_paragraph.low() if spec.sentences_per_paragraph else 0
        return (per or 3) * (spec.paragraphs.low() or 1)
    given = max([0, *spec.sentence_ends, *spec.sentence_starts])
    if given > 1:
        return given
    return 3 if spec.unit == "paragraph" else 1


def paragraph_breaks(spec: ConstraintSpec, n: int) -> list[int]:
    """Sentence indices after which a paragraph ends (sentences shared out evenly)."""
    if spec.paragraphs is None or spec.in_lines:
        return []
    p = max(1, min(n, spec.paragraphs.low() or 1))
    return [round(n * (i + 1) / p) - 1 for i in range(p - 1)]


def _lengths(spec: ConstraintSpec, n: int) -> list[list[int]]:
    """Each sentence's (line's) [fewest, most] words."""
    per = spec.words_per_line if spec.in_lines else spec.words_per_sentence
    if spec.words is not None and spec.words.exactly is not None and n > 1:
        # An exact total over several sentences: shared out, each sentence exact.
        q, r = divmod(spec.words.exactly, n)
        return [[q + (i < r)] * 2 for i in range(n)]
    if spec.words is not None and n == 1:
        low = spec.words.low() or 6
        high = spec.words.high() or low + 6
    elif per is not None:
        low = per.low() or 4
        high = per.high() or low + 8
    elif spec.words is not None:
        low = max(3, (spec.words.low() + n - 1) // n)
        high = spec.words.high() // n if spec.words.high() is not None else low + 10
        low = min(low, high)
    elif spec.in_lines:
        low, high = 3, 10
    else:
        # Room enough that the follower ends a sentence where it wants to: a sentence cut
        # at the limit ("…, this sentence uses a humble.") reads worse than a long one.
        low, high = (6, 22) if n > 1 else (8, 26)
    if spec.characters is not None and spec.characters.high() is not None:
        high = max(1, min(high, (spec.characters.high() + 1) // (4 * n)))
        low = min(low, high)
    needed = max([len(spec.include) + 4, *spec.word_positions.keys(), 1])
    low = max(low, min(needed, high))
    return [[low, high]] * n


def program_parameters(spec: ConstraintSpec) -> dict:
    """The template's SPEC: sentence plan and constraints as plain data."""
    n = segment_count(spec)
    chars = spec.characters.exactly if spec.characters and spec.characters.exactly else None
    firsts: list[str | None] = [spec.line_first_word or spec.sentence_first_word] * n
    lasts: list[str | None] = [None] * n
    for i, word in enumerate(spec.line_last_words or spec.sentence_last_words):
        if i < n:
            lasts[i] = word
    for i, word in spec.sentence_starts.items():
        firsts[n - 1 if i == -1 else min(i, n) - 1] = word
    for i, word in spec.sentence_ends.items():
        lasts[n - 1 if i == -1 else min(i, n) - 1] = word
    positions = {p: w for p, w in spec.word_positions.items() if p > 0}
    if -1 in spec.word_positions:
        lasts[-1] = spec.word_positions[-1]
    return {
        "n_sentences": n,
        "lines": spec.in_lines,
        "breaks": paragraph_breaks(spec, n),
        "initials": list(spec.acrostic or ""),
        "lengths": _lengths(spec, n),
        "positions": dict(sorted(positions.items())),
        "include": list(spec.include),
        "exclude": list(spec.exclude),
        "first_words": firsts,
        "last_words": lasts if any(lasts) else [],
        "max_word_chars": spec.max_word_chars,
        "chars": chars,
        "max_chars": spec.characters.high() if spec.characters and not chars else None,
        "avoid_letters": "".join(spec.avoid_letters),
        "word_initial": spec.word_initial,
        "syllables": list(spec.line_syllables),
        "rhyme": spec.rhyme_scheme or "",
        "tags": [f"#{t}" for t in spec.hashtags] + [f"@{t}" for t in spec.mentions],
        "topic_words": topic_words(spec),
        "constraints": spec.model_dump(exclude_none=True, exclude={"topic", "genre"}),
    }


def topic_words(spec: ConstraintSpec) -> list[str]:
    """The content words of the request's topic: an answer that mentions none is off topic."""
    if not spec.topic:
        return []
    words = re.findall(r"[A-Za-z]+", spec.topic)
    banned = {w.lower() for w in spec.exclude}
    return [w for w in words if is_content_word(w) and len(w) > 2 and not any(c in w.lower() for c in spec.avoid_letters)
            and (spec.word_initial is None or w.lower().startswith(spec.word_initial))
            and (spec.max_word_chars is None or len(w) <= spec.max_word_chars) and w.lower() not in banned][:6]


def follower_prompt(spec: ConstraintSpec, n_sentences: int) -> str:
    """A short instruction a small model can follow; the program enforces the rest."""
    genre = spec.genre if spec.genre and spec.genre not in ("text", "answer", "response", "list") else None
    if spec.in_lines:
        what = f"a {genre or 'short poem'} of {n_sentences} lines" if genre != "haiku" else "a haiku"
    elif n_sentences == 1:
        what = f"a {genre} of one sentence" if genre else "one sentence"
    elif spec.paragraphs and (spec.paragraphs.low() or 1) > 1:
        what = f"{spec.paragraphs.low()} short paragraphs"
    else:
        what = f"a paragraph of {n_sentences} sentences"
    text = f"Write {what}"
    if spec.topic:
        text += f" about {spec.topic}"
    elif spec.acrostic:
        text += f" about {spec.acrostic.lower()}"  # the word an acrostic spells is its theme
    words = spec.include + list(spec.word_positions.values()) + spec.sentence_last_words
    listed = list(dict.fromkeys(w for w in words if is_content_word(w)))
    if listed and not spec.topic:
        # "about …" rather than "using the words …": a 135M follower tends to copy an
        # instruction's wording into its answer, and a topic is what it follows best. Only
        # content words make a topic: "a sentence about of, the and 27" derails it.
        text += " about " + (", ".join(listed[:-1]) + " and " + listed[-1] if len(listed) > 1 else listed[0])
    return text + "."


FUNCTION_WORDS = frozenset("""
a about above after again against all also an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers him his how i if in into is it its itself just like may
me might more most much must my no nor not now of off on once only or other our out over own
same she should so some such than that the their them then there these they this those
through to too under until up upon very was we were what when where which while who whom why
will with would you your yours
""".split())


def is_content_word(word: str) -> bool:
    """Whether a word can be a topic: not a function word, not a bare number."""
    return word.lower() not in FUNCTION_WORDS and any(c.isalpha() for c in word)
