"""ConstraintSpec: what a request asks of the text, as data.

The library planner fills one from a request (`planner/parse.py`) or takes one given as JSON;
the program writer (`planner/library.py`) turns it into an inference program, and `verifier()`
turns it into COLLIE-semantics checks (`planner/constraints.py`) for the program's `check()`
and for evaluation.

    spec = ConstraintSpec(unit="sentence", words=Count(exactly=12), word_positions={6: "river"})
    spec.verifier()("...")  -> bool
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from planner.constraints import Check, Transform, Verifier


class Count(BaseModel):
    """exactly / at least / at most (any combination that makes sense)."""

    model_config = ConfigDict(extra="forbid")

    exactly: int | None = Field(None, ge=0)
    at_least: int | None = Field(None, ge=0)
    at_most: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _consistent(self) -> "Count":
        if self.exactly is None and self.at_least is None and self.at_most is None:
            raise ValueError("a count needs exactly, at_least or at_most")
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least {self.at_least} is above at_most {self.at_most}")
        return self

    def low(self) -> int:
        return self.exactly if self.exactly is not None else (self.at_least or 0)

    def high(self) -> int | None:
        return self.exactly if self.exactly is not None else self.at_most

    def ok(self, n: int) -> bool:
        return (
            (self.exactly is None or n == self.exactly)
            and (self.at_least is None or n >= self.at_least)
            and (self.at_most is None or n <= self.at_most)
        )

    def describe(self, noun: str) -> str:
        if self.exactly is not None:
            return f"exactly {self.exactly} {noun}"
        parts = []
        if self.at_least is not None:
            parts.append(f"at least {self.at_least}")
        if self.at_most is not None:
            parts.append(f"at most {self.at_most}")
        return " and ".join(parts) + f" {noun}"

    def checks(self, base: dict) -> list[tuple[Check, Any]]:
        out = []
        for value, op in ((self.exactly, "=="), (self.at_least, ">="), (self.at_most, "<=")):
            if value is not None:
                out.append((Check(relation=op, **base), value))
        return out


class Budget(BaseModel):
    """An item list with a numeric total: `items` lines, each ending in an amount, the amounts
    adding up to `total` ("4 things for a picnic, $50 in all")."""

    model_config = ConfigDict(extra="forbid")

    items: int = Field(ge=1, le=20)
    total: float = Field(gt=0, le=1_000_000)
    currency: str = Field("$", max_length=3)
    bound: Literal["exactly", "at_most", "under"] = Field(
        "exactly", description="How the amounts relate to the total: sum == total, <= total, < total.")
    bullet: Literal["-", "1.", ""] = Field("-", description="What starts each line: a dash, a "
                                           "number (1. 2. 3.) or nothing.")

    @model_validator(mode="after")
    def _whole(self) -> "Budget":
        if self.total != int(self.total):
            raise ValueError("a budget total is a whole number")
        room = self.total - 1 if self.bound == "under" else self.total
        if room < self.items:
            raise ValueError(f"a total of {self.total:g} cannot cover {self.items} items")
        return self

    def relation(self) -> str:
        return {"exactly": "==", "at_most": "<=", "under": "<"}[self.bound]

    def describe(self) -> str:
        how = {"exactly": "adding up to", "at_most": "costing at most", "under": "costing under"}
        return f"{self.items} items {how[self.bound]} {self.currency}{self.total:g}"


class ConstraintSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: Literal["sentence", "paragraph", "text"] = "text"
    topic: str | None = Field(None, description="What the text is about, when the request says.")
    characters: Count | None = None
    words: Count | None = None
    sentences: Count | None = None
    words_per_sentence: Count | None = None
    word_positions: dict[int, str] = Field(default_factory=dict, description="1-based position -> word")
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    sentence_first_word: str | None = Field(None, description="Every sentence starts with it.")
    sentence_last_words: list[str] = Field(default_factory=list, description="Sentence i ends with word i.")
    max_word_chars: int | None = Field(None, ge=1)
    paragraphs: Count | None = None
    lines: Count | None = None
    acrostic: str | None = Field(None, description="Line i starts with letter i (\"HOPE\").")
    line_first_word: str | None = Field(None, description="Every line starts with it.")
    line_last_words: list[str] = Field(default_factory=list, description="Line i ends with word i.")
    budget: Budget | None = None
    # -- beyond COLLIE: what people ask for in their own words
    genre: str | None = Field(None, description="What kind of text (poem, haiku, tweet…), for the prompt.")
    words_per_line: Count | None = None
    sentences_per_paragraph: Count | None = None
    sentence_starts: dict[int, str] = Field(
        default_factory=dict, description="Sentence i (1-based; -1 the last) starts with the word.")
    sentence_ends: dict[int, str] = Field(
        default_factory=dict, description="Sentence i (1-based; -1 the last) ends with the word.")
    avoid_letters: list[str] = Field(default_factory=list, description="Letters the text never uses (a lipogram).")
    word_initial: str | None = Field(None, description="Every word starts with this letter (alliteration).")
    line_syllables: list[int] = Field(default_factory=list, description="Syllables of line i (haiku: 5, 7, 5).")
    rhyme_scheme: str | None = Field(None, description="Line ends rhyme where letters match (AABB, ABAB).")
    hashtags: list[str] = Field(default_factory=list, description="Hashtags the text includes (no '#').")
    mentions: list[str] = Field(default_factory=list, description="@-mentions the text includes (no '@').")

    @model_validator(mode="after")
    def _sane(self) -> "ConstraintSpec":
        if any(k < 1 for k in self.word_positions):
            raise ValueError("word positions are 1-based")
        if self.sentence_last_words and self.sentences and self.sentences.exactly is not None:
            if len(self.sentence_last_words) != self.sentences.exactly:
                raise ValueError("one last word is needed per sentence")
        if self.acrostic is not None:
            if not self.acrostic.isalpha() or len(self.acrostic) > 40:
                raise ValueError("an acrostic is 1 to 40 letters")
            self.acrostic = self.acrostic.upper()
            if self.lines and not self.lines.ok(len(self.acrostic)):
                raise ValueError(f"an acrostic of {self.acrostic} has {len(self.acrostic)} lines")
        if self.line_last_words and self.lines and self.lines.exactly is not None:
            if len(self.line_last_words) != self.lines.exactly:
                raise ValueError("one last word is needed per line")
        if self.budget is not None and self.lines and not self.lines.ok(self.budget.items):
            raise ValueError("a budget puts one item on each line")
        for name in ("sentence_starts", "sentence_ends"):
            for k in getattr(self, name):
                if k == 0 or k < -1:
                    raise ValueError(f"{name} are numbered from 1 (or -1 for the last sentence)")
                n = self.sentences.high() if self.sentences else (1 if self.unit == "sentence" else None)
                if n is not None and k > n:
                    raise ValueError(f"sentence {k} is asked for, but the text has {n} sentence(s)")
        self.avoid_letters = sorted({c.lower() for c in self.avoid_letters})
        if any(len(c) != 1 or not c.isalpha() for c in self.avoid_letters):
            raise ValueError("letters to avoid are single letters")
        if self.word_initial is not None:
            if len(self.word_initial) != 1 or not self.word_initial.isalpha():
                raise ValueError("every word starts with one letter")
            self.word_initial = self.word_initial.lower()
        if any(n < 1 or n > 40 for n in self.line_syllables):
            raise ValueError("a line has 1 to 40 syllables")
        if self.rhyme_scheme is not None:
            self.rhyme_scheme = self.rhyme_scheme.upper()
            if not self.rhyme_scheme.isalpha() or len(self.rhyme_scheme) > 40:
                raise ValueError("a rhyme scheme is 1 to 40 letters, one per line (AABB)")
        n_lines = {len(x) for x in (self.acrostic or "", self.line_syllables, self.rhyme_scheme or "",
                                    self.line_last_words) if x}
        if len(n_lines) > 1:
            raise ValueError("the acrostic, syllables, rhyme scheme and line ends give different line counts")
        if n_lines and self.lines and not self.lines.ok(n_lines.pop()):
            raise ValueError("the line count does not match the lines described")
        self.hashtags = [t.lstrip("#") for t in self.hashtags]
        self.mentions = [t.lstrip("@") for t in self.mentions]
        if any(not re.fullmatch(r"\w+", t) for t in self.hashtags + self.mentions):
            raise ValueError("a hashtag or mention is letters, digits and underscores")
        self._contradictions()
        return self

    def _contradictions(self) -> None:
        """A word the text must use that another constraint forbids."""
        forced = (list(self.include) + list(self.word_positions.values()) + list(self.sentence_ends.values())
                  + list(self.sentence_starts.values()) + list(self.sentence_last_words)
                  + list(self.line_last_words)
                  + [w for w in (self.sentence_first_word, self.line_first_word) if w])
        for word in forced:
            low = word.lower()
            if low in {w.lower() for w in self.exclude}:
                raise ValueError(f"'{word}' is both required and forbidden")
            banned = [c for c in self.avoid_letters if c in low]
            if banned:
                raise ValueError(f"'{word}' is required but uses the letter '{banned[0]}', which is forbidden")
            if self.word_initial and not low.startswith(self.word_initial):
                raise ValueError(f"'{word}' is required but does not start with '{self.word_initial}'")
            if self.max_word_chars is not None and len(word) > self.max_word_chars:
                raise ValueError(f"'{word}' is required but is longer than {self.max_word_chars} characters")

    @property
    def in_lines(self) -> bool:
        """Whether the text is laid out in lines (a poem, an acrostic, a list)."""
        return bool(self.lines or self.acrostic or self.line_first_word or self.line_last_words
                    or self.budget or self.line_syllables or self.rhyme_scheme or self.words_per_line)

    def is_empty(self) -> bool:
        return self.describe() == []

    def describe(self) -> list[str]:
        """The recognised constraints, in words (shown to the user with the answer)."""
        out = []
        for count, noun in ((self.characters, "characters"), (self.words, "words"),
                            (self.sentences, "sentences")):
            if count is not None:
                out.append(count.describe(noun))
        if self.words_per_sentence is not None:
            out.append(self.words_per_sentence.describe("words in every sentence"))
        for pos, word in sorted(self.word_positions.items()):
            out.append(f"word {pos} is '{word}'")
        if self.include:
            out.append("uses " + ", ".join(f"'{w}'" for w in self.include))
        if self.exclude:
            out.append("avoids " + ", ".join(f"'{w}'" for w in self.exclude))
        if self.sentence_first_word:
            out.append(f"every sentence starts with '{self.sentence_first_word}'")
        if self.sentence_last_words:
            out.append("sentences end with " + ", ".join(f"'{w}'" for w in self.sentence_last_words))
        if self.max_word_chars is not None:
            out.append(f"no word longer than {self.max_word_chars} characters")
        for count, noun in ((self.paragraphs, "paragraphs"), (self.lines, "lines")):
            if count is not None:
                out.append(count.describe(noun))
        if self.acrostic:
            out.append(f"lines start with the letters of {self.acrostic}")
        if self.line_first_word:
            out.append(f"every line starts with '{self.line_first_word}'")
        if self.line_last_words:
            out.append("lines end with " + ", ".join(f"'{w}'" for w in self.line_last_words))
        if self.budget:
            out.append(self.budget.describe())
        if self.words_per_line is not None:
            out.append(self.words_per_line.describe("words in every line"))
        if self.sentences_per_paragraph is not None:
            out.append(self.sentences_per_paragraph.describe("sentences in every paragraph"))
        for name, verb in (("sentence_starts", "starts"), ("sentence_ends", "ends")):
            for i, word in sorted(getattr(self, name).items()):
                which = "the last sentence" if i == -1 else f"sentence {i}"
                out.append(f"{which} {verb} with '{word}'")
        if self.avoid_letters:
            out.append("never uses the letter" + ("s " if len(self.avoid_letters) > 1 else " ")
                       + ", ".join(f"'{c}'" for c in self.avoid_letters))
        if self.word_initial:
            out.append(f"every word starts with '{self.word_initial}'")
        if self.line_syllables:
            out.append("lines of " + "-".join(map(str, self.line_syllables)) + " syllables")
        if self.rhyme_scheme:
            out.append(f"line ends rhyme as {self.rhyme_scheme}")
        if self.hashtags:
            out.append("includes " + " ".join(f"#{t}" for t in self.hashtags))
        if self.mentions:
            out.append("mentions " + " ".join(f"@{t}" for t in self.mentions))
        return out

    def verifier(self) -> Verifier:
        """The spec as COLLIE-semantics checks."""
        pairs: list[tuple[Check, Any]] = []
        count = Transform(kind="count")
        if self.characters:
            pairs += self.characters.checks({"target_level": "character", "transform": count})
        if self.words:
            pairs += self.words.checks({"target_level": "word", "transform": count})
        if self.sentences:
            pairs += self.sentences.checks({"target_level": "sentence", "transform": count})
        if self.words_per_sentence:
            pairs += [
                (c.model_copy(update={"reduction": "all"}), t)
                for c, t in self.words_per_sentence.checks({
                    "input_level": "sentence", "target_level": "word",
                    "transform": Transform(kind="each_count"),
                })
            ]
        if self.word_positions:
            positions = sorted(self.word_positions)
            # One position is checked as a scalar: COLLIE unwraps a one-item target list but
            # not a one-item value list, so [word] would never equal [word].
            where = [p - 1 for p in positions] if len(positions) > 1 else positions[0] - 1
            wanted = [self.word_positions[p] for p in positions]
            pairs.append((
                Check(target_level="word", relation="==",
                      transform=Transform(kind="position", position=where)),
                wanted if len(wanted) > 1 else wanted[0],
            ))
        if self.include:
            pairs.append((Check(target_level="word", transform=Transform(kind="each"), relation="in"),
                          list(self.include)))
        if self.exclude:
            pairs.append((Check(target_level="word", transform=Transform(kind="each"),
                                relation="not in"), list(self.exclude)))
        for level in ("sentence", "line"):
            first = getattr(self, f"{level}_first_word")
            last = getattr(self, f"{level}_last_words")
            if first:
                pairs.append((_each_word_at(level, 0), first))
            if last:
                pairs.append((_each_word_at(level, -1), list(last)))
        if self.max_word_chars is not None:
            pairs.append((Check(input_level="word", target_level="character", relation="<=",
                                reduction="all", transform=Transform(kind="each_count")),
                          self.max_word_chars))
        for n, level in ((self.paragraphs, "paragraph"), (self.lines, "line")):
            if n:
                pairs += n.checks({"target_level": level, "transform": count})
        if self.acrostic:
            pairs.append((Check(input_level="line", target_level="character", relation="==",
                                transform=Transform(kind="each_position", position=0)),
                          list(self.acrostic.lower())))
        if self.budget:
            pairs.append((Check(target_level="line", relation="==", transform=count),
                          self.budget.items))
            pairs.append((Check(target_level="line", relation=self.budget.relation(),
                                transform=Transform(kind="number_sum")), self.budget.total))
        if self.words_per_line:
            pairs += [(c.model_copy(update={"reduction": "all"}), t) for c, t in self.words_per_line.checks(
                {"input_level": "line", "target_level": "word", "transform": Transform(kind="each_count")})]
        if self.sentences_per_paragraph:
            pairs += [(c.model_copy(update={"reduction": "all"}), t) for c, t in self.sentences_per_paragraph.checks(
                {"input_level": "paragraph", "target_level": "sentence", "transform": Transform(kind="each_count")})]
        for name, side in (("sentence_starts", 0), ("sentence_ends", -1)):
            for i, word in sorted(getattr(self, name).items()):
                where = [i - 1 if i > 0 else -1, side]
                pairs.append((Check(input_level="sentence", target_level="word", relation="==",
                                    transform=Transform(kind="at", position=where)), word))
        if self.avoid_letters:
            pairs.append((Check(target_level="character", transform=Transform(kind="each"),
                                relation="not in"), list(self.avoid_letters)))
        if self.word_initial:
            pairs.append((Check(input_level="word", target_level="character", relation="==", reduction="all",
                                transform=Transform(kind="each_position", position=0)), self.word_initial))
        if self.line_syllables:
            pairs.append((Check(input_level="line", target_level="word", relation="==", reduction="all",
                                transform=Transform(kind="each_syllables")), list(self.line_syllables)))
        if self.rhyme_scheme:
            pairs.append((Check(input_level="line", target_level="word", relation="rhymes",
                                transform=Transform(kind="each_position", position=-1)), self.rhyme_scheme))
        if self.hashtags:
            pairs.append((Check(transform=Transform(kind="tags", position=0), relation="in"),
                          [f"#{t.lower()}" for t in self.hashtags]))
        if self.mentions:
            pairs.append((Check(transform=Transform(kind="tags", position=1), relation="in"),
                          [f"@{t.lower()}" for t in self.mentions]))
        return Verifier(checks=[c for c, _ in pairs], targets=[t for _, t in pairs])


def _each_word_at(level: str, position: int) -> Check:
    """Every `level` unit (sentence, line) has a given word at `position` (0 first, -1 last)."""
    return Check(input_level=level, target_level="word", relation="==", reduction="all",
                 transform=Transform(kind="each_position", position=position))


def unmet(spec: ConstraintSpec, text: str) -> list[str]:
    """The spec's constraints (in words) that `text` fails, one field at a time."""
    out = []
    for name in ConstraintSpec.model_fields:
        if name in ("unit", "topic", "genre"):
            continue
        value = getattr(spec, name)
        if value in (None, [], {}):
            continue
        part = ConstraintSpec.model_construct(**{**ConstraintSpec().model_dump(), "unit": spec.unit,
                                                 name: value, "sentences": spec.sentences,
                                                 "lines": spec.lines})
        one = ConstraintSpec.model_construct(**{**ConstraintSpec().model_dump(), name: value})
        if not part.verifier()(text):
            out += one.describe() or [name]
    return list(dict.fromkeys(out))
