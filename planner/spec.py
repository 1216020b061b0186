"""ConstraintSpec: what a request asks of the text, as data.

The library planner fills one from a request (`planner/parse.py`) or takes one given as JSON;
the program writer (`planner/library.py`) turns it into an inference program, and `verifier()`
turns it into COLLIE-semantics checks (`planner/constraints.py`) for the program's `check()`
and for evaluation.

    spec = ConstraintSpec(unit="sentence", words=Count(exactly=12), word_positions={6: "river"})
    spec.verifier()("...")  -> bool
"""

from __future__ import annotations

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

    @model_validator(mode="after")
    def _sane(self) -> "ConstraintSpec":
        if any(k < 1 for k in self.word_positions):
            raise ValueError("word positions are 1-based")
        if self.sentence_last_words and self.sentences and self.sentences.exactly is not None:
            if len(self.sentence_last_words) != self.sentences.exactly:
                raise ValueError("one last word is needed per sentence")
        return self

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
        if self.sentence_first_word:
            pairs.append((Check(input_level="sentence", target_level="word", relation="==",
                                reduction="all", transform=Transform(kind="each_position", position=0)),
                          self.sentence_first_word))
        if self.sentence_last_words:
            pairs.append((Check(input_level="sentence", target_level="word", relation="==",
                                reduction="all", transform=Transform(kind="each_position", position=-1)),
                          list(self.sentence_last_words)))
        if self.max_word_chars is not None:
            pairs.append((Check(input_level="word", target_level="character", relation="<=",
                                reduction="all", transform=Transform(kind="each_count")),
                          self.max_word_chars))
        return Verifier(checks=[c for c, _ in pairs], targets=[t for _, t in pairs])
