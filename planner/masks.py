"""Token masks: sets of vocabulary entries, as boolean arrays over the vocabulary.

A program restricts the next token with `await self.observe(ctx.mask_dist(mask), True)`.
Masks are built from the decoded text of every token, computed once per tokenizer by
`Vocabulary` and cached per argument, so building one inside `step()` is cheap.

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


class Vocabulary:
    def __init__(self, token_strings: list[str], eos_token_ids: Iterable[int]):
        self.strings = token_strings
        self.size = len(token_strings)
        self.eos_ids = frozenset(int(t) for t in eos_token_ids)
        self._stripped = [s.strip() for s in token_strings]
        self._lower = [s.lower() for s in self._stripped]

    @classmethod
    def from_tokenizer(cls, tokenizer, size: int, eos_token_ids: Iterable[int]) -> "Vocabulary":
        # Decoding token by token keeps each token's leading space ("Ġriver" -> " river").
        strings = tokenizer.batch_decode([[i] for i in range(size)])
        return cls(strings, eos_token_ids)

    def _mask(self, predicate) -> np.ndarray:
        out = np.fromiter((predicate(i) for i in range(self.size)), dtype=bool, count=self.size)
        out.flags.writeable = False  # shared by every particle: never edited in place
        return out

    @lru_cache(maxsize=64)
    def max_chars(self, n: int) -> np.ndarray:
        return self._mask(lambda i: i not in self.eos_ids and len(self.strings[i]) <= n)

    @lru_cache(maxsize=8)
    def punctuation(self) -> np.ndarray:
        return self._mask(
            lambda i: bool(self._stripped[i]) and all(c in PUNCTUATION for c in self._stripped[i])
        )

    @lru_cache(maxsize=64)
    def token_length(self, low: int, high: int) -> np.ndarray:
        return self._mask(lambda i: i not in self.eos_ids and low <= len(self._stripped[i]) <= high)

    @lru_cache(maxsize=64)
    def _words(self, words: tuple[str, ...]) -> np.ndarray:
        prefixes = {w.lower()[:k] for w in words for k in range(1, len(w) + 1)}
        return self._mask(lambda i: self._lower[i] in prefixes)

    def words(self, words: Iterable[str]) -> np.ndarray:
        return self._words(tuple(sorted(set(words))))

    @lru_cache(maxsize=64)
    def _banned(self, words: tuple[str, ...]) -> np.ndarray:
        banned = {w.lower() for w in words}
        return self._mask(lambda i: self._lower[i] not in banned)

    def banned_words(self, words: Iterable[str]) -> np.ndarray:
        return self._banned(tuple(sorted(set(words))))

    @lru_cache(maxsize=4)
    def eos(self) -> np.ndarray:
        return self._mask(lambda i: i in self.eos_ids)

    @lru_cache(maxsize=4)
    def word_starts(self) -> np.ndarray:
        return self._mask(
            lambda i: i in self.eos_ids
            or (bool(self.strings[i]) and (self.strings[i][0].isspace() or self.strings[i][0] in PUNCTUATION))
        )

    @lru_cache(maxsize=4)
    def alpha_word_starts(self) -> np.ndarray:
        """Tokens that start a new alphabetic word: a space, then letters only (" river")."""
        return self._mask(lambda i: len(self.strings[i]) > 1 and self.strings[i][0] == " "
                          and self.strings[i][1:].isalpha() and self.strings[i][1:].isascii())

    @lru_cache(maxsize=4)
    def alpha_continuations(self) -> np.ndarray:
        """Tokens that continue a word: lower-case letters only, no leading space ("er" in
        " riv|er"); a capital inside a word ("afterHeel") is almost always a broken word."""
        return self._mask(lambda i: self.strings[i].isalpha() and self.strings[i].isascii()
                          and self.strings[i].islower())

    @lru_cache(maxsize=4)
    def capital_word_starts(self) -> np.ndarray:
        """Tokens that start a capitalised word, with or without a leading space ("The", " He")."""
        def capital(i: int) -> bool:
            t = self.strings[i][1:] if self.strings[i].startswith(" ") else self.strings[i]
            return len(t) > 0 and t.isalpha() and t.isascii() and t[0].isupper() and (len(t) == 1 or t[1:].islower())
        return self._mask(capital)

    @lru_cache(maxsize=32)
    def initial(self, letter: str) -> np.ndarray:
        """Tokens that start a word with `letter` (either case), with or without a space."""
        letter = letter.lower()
        return self._mask(lambda i: self._lower[i][:1] == letter and self._stripped[i][:1].isalpha()
                          and i not in self.eos_ids)

    def __deepcopy__(self, memo):
        return self  # read-only and large: shared, never copied into a particle

    def __reduce__(self):
        return (_local_vocabulary, ())  # a migrated particle uses the target replica's copy

    def from_ids(self, ids: Iterable[int]) -> np.ndarray:
        out = np.zeros(self.size, dtype=bool)
        out[list(ids)] = True
        return out


def _local_vocabulary() -> "Vocabulary":
    from planner.program import process_lm

    return process_lm().vocab
