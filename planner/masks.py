"""Token masks: sets of vocabulary entries, as opaque `Mask` handles over the vocabulary.

A program restricts the next token with `await self.observe(ctx.mask_dist(mask), True)`.
Masks are built from the decoded text of every token, computed once per tokenizer by
`Vocabulary` and cached per argument, so building one inside `step()` is cheap.

A program never holds the boolean array itself: a numpy array is a door to the host (`tofile`,
`dump`, a writeable flag to flip), so `Mask` keeps it private and offers only set algebra
(`&`, `|`, `~`, `-`), membership (`token_id in mask`) and `len(mask)`.

    vocab.max_chars(5)              tokens of at most 5 characters (leading space included)
    vocab.punctuation()             tokens that are only punctuation (and whitespace)
    vocab.token_length(1, 3)        tokens of 1..3 characters, whitespace ignored
    vocab.words(["river", "sea"])   tokens that spell a prefix of one of the words
    vocab.banned_words(["is"])      every token except those that spell a banned word
    vocab.eos()                     end-of-sequence tokens
    vocab.alpha_word_starts()       " river": a space then letters
    vocab.alpha_continuations()     "er": letters continuing a word
    vocab.capital_word_starts()     "The", " He": a capitalised word's first token
    vocab.word_starts()             tokens that begin a new word (whitespace first) or EOS
    vocab.initial("h")              tokens whose first letter is h or H (acrostics)
"""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Iterable

import numpy as np

PUNCTUATION = set(string.punctuation) | {"…", "—", "–", "“", "”", "‘", "’"}


class Mask:
    """An immutable set of token ids (a boolean array over the vocabulary, kept private)."""

    __slots__ = ("_bits",)

    def __init__(self, bits: np.ndarray):
        # Callers hand over a fresh array; from here on it is shared, never edited in place.
        bits.flags.writeable = False
        object.__setattr__(self, "_bits", bits)

    def __setattr__(self, name, value):
        raise AttributeError("a Mask cannot be changed; combine masks with &, |, ~ or -")

    __delattr__ = __setattr__

    def _other(self, other) -> np.ndarray:
        if not isinstance(other, Mask):
            raise TypeError(f"a Mask combines with another Mask, not {type(other).__name__}")
        if len(other._bits) != len(self._bits):
            raise ValueError("masks over different vocabularies")
        return other._bits

    def __and__(self, other) -> "Mask":
        return Mask(self._bits & self._other(other))

    def __or__(self, other) -> "Mask":
        return Mask(self._bits | self._other(other))

    def __sub__(self, other) -> "Mask":
        return Mask(self._bits & ~self._other(other))

    def __invert__(self) -> "Mask":
        return Mask(~self._bits)

    def __contains__(self, token_id) -> bool:
        i = int(token_id)
        return 0 <= i < len(self._bits) and bool(self._bits[i])

    def __len__(self) -> int:
        return int(np.count_nonzero(self._bits))

    def __eq__(self, other) -> bool:
        return isinstance(other, Mask) and np.array_equal(self._bits, other._bits)

    __hash__ = None

    def __repr__(self) -> str:
        return f"Mask({len(self)} of {len(self._bits)} tokens)"

    def __deepcopy__(self, memo):
        return self  # immutable

    def __copy__(self):
        return self


class Vocabulary:
    def __init__(self, token_strings: list[str], eos_token_ids: Iterable[int]):
        self.strings = tuple(token_strings)
        self.size = len(token_strings)
        self.eos_ids = frozenset(int(t) for t in eos_token_ids)
        self._stripped = [s.strip() for s in token_strings]
        self._lower = [s.lower() for s in self._stripped]

    @classmethod
    def from_tokenizer(cls, tokenizer, size: int, eos_token_ids: Iterable[int]) -> "Vocabulary":
        # Decoding token by token keeps each token's leading space ("Ġriver" -> " river").
        strings = tokenizer.batch_decode([[i] for i in range(size)])
        return cls(strings, eos_token_ids)

    def _mask(self, predicate) -> Mask:
        return Mask(np.fromiter((predicate(i) for i in range(self.size)), dtype=bool, count=self.size))

    @lru_cache(maxsize=64)
    def max_chars(self, n: int) -> Mask:
        return self._mask(lambda i: i not in self.eos_ids and len(self.strings[i]) <= n)

    @lru_cache(maxsize=8)
    def punctuation(self) -> Mask:
        return self._mask(
            lambda i: bool(self._stripped[i]) and all(c in PUNCTUATION for c in self._stripped[i])
        )

    @lru_cache(maxsize=64)
    def token_length(self, low: int, high: int) -> Mask:
        return self._mask(lambda i: i not in self.eos_ids and low <= len(self._stripped[i]) <= high)

    @lru_cache(maxsize=64)
    def _words(self, words: tuple[str, ...]) -> Mask:
        prefixes = {w.lower()[:k] for w in words for k in range(1, len(w) + 1)}
        return self._mask(lambda i: self._lower[i] in prefixes)

    def words(self, words: Iterable[str]) -> Mask:
        return self._words(tuple(sorted(set(words))))

    @lru_cache(maxsize=64)
    def _banned(self, words: tuple[str, ...]) -> Mask:
        banned = {w.lower() for w in words}
        return self._mask(lambda i: self._lower[i] not in banned)

    def banned_words(self, words: Iterable[str]) -> Mask:
        return self._banned(tuple(sorted(set(words))))

    @lru_cache(maxsize=4)
    def eos(self) -> Mask:
        return self._mask(lambda i: i in self.eos_ids)

    @lru_cache(maxsize=4)
    def word_starts(self) -> Mask:
        return self._mask(
            lambda i: i in self.eos_ids
            or (bool(self.strings[i]) and (self.strings[i][0].isspace() or self.strings[i][0] in PUNCTUATION))
        )

    @lru_cache(maxsize=4)
    def alpha_word_starts(self) -> Mask:
        """Tokens that start a new alphabetic word: a space, then letters only (" river")."""
        return self._mask(lambda i: len(self.strings[i]) > 1 and self.strings[i][0] == " "
                          and self.strings[i][1:].isalpha() and self.strings[i][1:].isascii())

    @lru_cache(maxsize=4)
    def alpha_continuations(self) -> Mask:
        """Tokens that continue a word: lower-case letters only, no leading space ("er" in
        " riv|er"); a capital inside a word ("afterHeel") is almost always a broken word."""
        return self._mask(lambda i: self.strings[i].isalpha() and self.strings[i].isascii()
                          and self.strings[i].islower())

    @lru_cache(maxsize=4)
    def capital_word_starts(self) -> Mask:
        """Tokens that start a capitalised word, with or without a leading space ("The", " He")."""
        def capital(i: int) -> bool:
            t = self.strings[i][1:] if self.strings[i].startswith(" ") else self.strings[i]
            return len(t) > 0 and t.isalpha() and t.isascii() and t[0].isupper() and (len(t) == 1 or t[1:].islower())
        return self._mask(capital)

    @lru_cache(maxsize=32)
    def initial(self, letter: str) -> Mask:
        """Tokens that start a word with `letter` (either case), with or without a space."""
        letter = letter.lower()
        return self._mask(lambda i: self._lower[i][:1] == letter and self._stripped[i][:1].isalpha()
                          and i not in self.eos_ids)

    @lru_cache(maxsize=16)
    def max_syllables(self, n: int) -> Mask:
        """Tokens whose letters make at most `n` syllables (as a word). A word's first token
        rarely has more syllables than the word, so a line with `n` syllables left need not
        start a word like " morning" with one left: the particle would die once it ended."""
        from planner.phonetics import syllables

        return self._mask(lambda i: i not in self.eos_ids and syllables(self._stripped[i]) <= n)

    @lru_cache(maxsize=16)
    def _without(self, letters: str) -> Mask:
        return self._mask(lambda i: not any(c in self._lower[i] for c in letters))

    def without_letters(self, letters: Iterable[str]) -> Mask:
        """Tokens that use none of `letters` (either case): a lipogram's vocabulary."""
        return self._without("".join(sorted({c.lower() for c in letters})))

    def __deepcopy__(self, memo):
        return self  # read-only and large: shared, never copied into a particle

    def from_ids(self, ids: Iterable[int]) -> Mask:
        out = np.zeros(self.size, dtype=bool)
        picked = [int(i) for i in ids]
        if any(not 0 <= i < self.size for i in picked):
            raise ValueError(f"token ids must lie in [0, {self.size})")
        out[picked] = True
        return Mask(out)
