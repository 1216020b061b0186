"""Natural-language request -> ConstraintSpec.

Recognises COLLIE's phrasing and the everyday ways people say the same things: "exactly 12
words", "twelve words long", "no more than 80 characters", "the 6th word should be 'river'",
"word 6 must be river", "don't use the word 'is'", "3 sentences, each ending with …", "every
sentence starts with 'He'", "use the words 'sun', 'sea'", "words of at most 6 letters".
What it does not recognise is left to the program's prompt; `parse_request(...).describe()`
lists what was recognised. A JSON object is taken as a spec directly.
"""

from __future__ import annotations

import json
import re

from pydantic import ValidationError

from planner.spec import ConstraintSpec, Count

NUMBER_WORDS = {
    "zero": 0, "one": 1, "a single": 1, "single": 1, "two": 2, "three": 3, "four": 4,
    "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11,
    "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90, "hundred": 100,
}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "last": -1,
}
_TENS = r"(?:twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)"
NUM = (
    rf"(?:\d+|{_TENS}(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?|"
    r"a single|single|zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|hundred)"
)
ORD = r"(?:\d+(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth)"
QUOTED = r"""['"‘’“”]([^'"‘’“”]+)['"‘’“”]"""
EXACT = r"(?:exactly|precisely|just|only)"
LEAST = r"(?:at least|no (?:less|fewer) than|a minimum of|minimum of|min(?:imum)?\.?|more than)"
MOST = r"(?:at most|no more than|not more than|a maximum of|maximum of|max(?:imum)?\.?|under|fewer than|less than|up to)"


def number(text: str) -> int:
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    if text in NUMBER_WORDS:
        return NUMBER_WORDS[text]
    parts = re.split(r"[- ]", text)
    return sum(NUMBER_WORDS[p] for p in parts)


def ordinal(text: str) -> int:
    text = text.strip().lower()
    m = re.match(r"(\d+)", text)
    return int(m.group(1)) if m else ORDINALS[text]


def quoted_items(text: str) -> list[str]:
    """Items written in quotes: 'a', 'b' and 'c'. An apostrophe inside an item (d'Or) is kept:
    an item closes only at a quote followed by a separator or the end."""
    items = re.findall(
        r"""['"‘“](.+?)['"’”](?=\s*(?:,|;|\.|\)|\band\b|\bor\b|\brespectively\b|$))""", text
    )
    return [i.strip() for i in items]


def _quoted_or_bare(text: str) -> list[str]:
    found = quoted_items(text)
    if found:
        return [w.strip() for w in found]
    return [w.strip(" .,;") for w in re.split(r",|\band\b|\bor\b", text) if w.strip(" .,;")]


def _count(qualifier: str | None, value: str, bound: str | None = None) -> Count:
    """A Count from "at least 12", "exactly twelve", "between 12 and 18"..."""
    n = number(value)
    q = (qualifier or "").lower().strip()
    if bound is not None:
        return Count(at_least=n, at_most=number(bound))
    if re.fullmatch(LEAST, q):
        return Count(at_least=n + 1 if q.startswith("more than") else n)
    if re.fullmatch(MOST, q):
        strict = q.startswith(("under", "fewer than", "less than"))
        return Count(at_most=n - 1 if strict else n)
    return Count(exactly=n)


def _matched_count(m: re.Match) -> Count:
    """The Count a RANGE-or-QUAL match describes."""
    if m.group("lo") or m.group("lo2"):
        return Count(at_least=number(m.group("lo") or m.group("lo2")),
                     at_most=number(m.group("hi") or m.group("hi2")))
    return _count(m.group("q"), m.group("n"))


def _merge(old: Count | None, new: Count) -> Count:
    if old is None:
        return new
    data = old.model_dump(exclude_none=True)
    data.update(new.model_dump(exclude_none=True))
    return Count(**data)


QUAL = rf"(?P<q>{EXACT}|{LEAST}|{MOST})?\s*"
# Phrases that make "N characters" a bound on each word, not on the text.
WORD_LENGTH = (
    r"(?:all|every|each) words? (?:must |should )?(?:having|have|has|with|be)|words of|words with|"
    r"no words? (?:longer|more) than"
)
RANGE = rf"(?:between\s+(?P<lo>{NUM})\s+and\s+(?P<hi>{NUM})|(?P<lo2>{NUM})\s*(?:-|to|–)\s*(?P<hi2>{NUM}))"


def parse_request(request: str) -> ConstraintSpec:
    """The spec a request asks for (a JSON object is read as a spec)."""
    stripped = request.strip()
    if stripped.startswith("{"):
        try:
            return ConstraintSpec.model_validate(json.loads(stripped))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"invalid constraint spec: {exc}") from None
    text = " ".join(request.split())
    low = text.lower()
    spec: dict = {}

    unit = "text"
    if re.search(r"\bparagraph|\bpassage|\bsentences\b", low):
        unit = "paragraph"
    elif re.search(r"\bsentence\b", low):
        unit = "sentence"
    spec["unit"] = unit

    # -- per-sentence word counts ("all sentences having at least 12 words", "each sentence
    # 10-15 words", "every sentence should have between 8 and 12 words")
    per_sentence = None
    for m in re.finditer(
        rf"(?:all sentences|each sentence|every sentence|each of (?:them|the sentences))\b[^.;]*?"
        rf"(?:{RANGE}|{QUAL}(?P<n>{NUM}))\s+words",
        low,
    ):
        per_sentence = _merge(per_sentence, _matched_count(m))
        low = low[: m.start()] + " " * (m.end() - m.start()) + low[m.end():]
    if per_sentence:
        spec["words_per_sentence"] = per_sentence

    # -- counts of characters / words / sentences
    for noun, key in (("characters?|letters?|chars?", "characters"), ("words?", "words"),
                      ("sentences?", "sentences"), ("paragraphs?", "paragraphs"),
                      ("lines?", "lines")):
        count = None
        pattern = (rf"(?:{RANGE}|{QUAL}(?P<n>{NUM}))(?:[- ]|\s+)(?:{noun})\b")
        for m in re.finditer(pattern, low):
            before = low[max(0, m.start() - 25): m.start()]
            if key == "characters" and re.search(r"(?:word|words)\s+(?:having|with|of)?\s*$", before):
                continue
            if key == "characters" and re.search(rf"(?:{WORD_LENGTH})\s*(?:{MOST})?\s*$", before):
                continue
            count = _merge(count, _matched_count(m))
        if key == "words":
            m = re.search(rf"(?P<n>{NUM})[- ]words? long", low)
            if m and count is None:
                count = Count(exactly=number(m.group("n")))
        if key == "sentences" and unit == "sentence" and count == Count(exactly=1):
            count = None  # "one sentence" names the unit; it is not a count constraint
        if key == "paragraphs" and count == Count(exactly=1):
            count = None  # likewise "a paragraph"
        if count is not None:
            spec[key] = count

    # -- maximum word length ("all words having at most 6 characters", "no word longer than 6
    # letters", "words of at most 6 letters")
    m = re.search(
        rf"(?:{WORD_LENGTH})\s*(?:{MOST})?\s*(?P<n>{NUM})\s*"
        r"(?:characters?|letters?|chars?)",
        low,
    )
    if m:
        spec["max_word_chars"] = number(m.group("n"))
        spec.pop("characters", None) if _only_word_length_chars(low) else None

    # -- words at positions
    positions: dict[int, str] = {}
    m = re.search(
        rf"(?:the\s+)?(?P<ords>{ORD}(?:\s*(?:,|and)\s*{ORD})*)\s+words?\s+(?:to be|should be|must be|is|are|being|=)\s+(?P<words>.+?)(?:\s+respectively|;|\.(?:\s|$)|$)",
        text, re.I,
    )
    if m and re.search(r"sentences?\s+having\s+(?:the\s+)?$", text[: m.start("ords")], re.I):
        m = None  # "all sentences having the 1st word to be" is about every sentence
    if m:
        ords = [ordinal(o) for o in re.findall(ORD, m.group("ords"), re.I)]
        words = _quoted_or_bare(m.group("words"))
        if len(ords) == len(words):
            positions.update({o: w for o, w in zip(ords, words)})
    for m in re.finditer(rf"word\s+(?:number\s+)?(?P<n>\d+)\s+(?:must be|should be|is|=|has to be)\s+(?:{QUOTED}|(?P<bare>[A-Za-z'-]+))", text, re.I):
        positions[int(m.group("n"))] = (m.group(2) or m.group("bare")).strip()
    if positions:
        spec["word_positions"] = positions

    # -- sentences' first / last words
    first, last = _edge_words(text, "sentence", also_last=r"|each ending with(?: the words?)?")
    if first:
        spec["sentence_first_word"] = first
    if last:
        spec["sentence_last_words"] = last

    _parse_lines(text, spec)
    budget = _parse_budget(text)
    if budget:
        spec["budget"] = budget
        m = re.search(r"\bfor (?P<topic>(?:a |an |the |my |our )?[a-z][a-z -]{2,40}?)"
                      r"(?= that| which| with| totall| adding| costing| summing| in total|,|\.|$)", text)
        if m and not re.match(rf"{NUM}\b", m.group("topic")):
            spec["topic"] = m.group("topic")
        spec.pop("lines", None) if spec.get("lines") == Count(exactly=budget["items"]) else None

    # -- words to include / avoid
    exclude: list[str] = []
    for m in re.finditer(
        rf"(?:not containing|without(?: using)?|don'?t use|do not use|avoid(?:ing)?|never use|must not contain|no use of)\s+(?:the\s+)?(?:words?\s+)?(?P<words>(?:{QUOTED}(?:\s*(?:,|and|or)\s*)?)+)",
        text, re.I,
    ):
        exclude += quoted_items(m.group("words"))
    if exclude:
        spec["exclude"] = [w.strip() for w in exclude]
    include: list[str] = []
    for m in re.finditer(
        rf"(?<!not )(?:containing|contains|include|including|includes|use|using|with|mention(?:ing)?)\s+(?:all of\s+)?(?:the\s+)?(?:words?|terms?)\s+(?P<words>(?:{QUOTED}(?:\s*(?:,|and)\s*)?)+)",
        text, re.I,
    ):
        before = text[max(0, m.start() - 5): m.start()].lower()
        if "not" in before or "n't" in before:
            continue
        include += quoted_items(m.group("words"))
    include = [w.strip() for w in include if w.strip() not in exclude]
    if include:
        spec["include"] = include

    m = re.search(r"\babout\s+(?P<topic>[^.,;:\n]{3,60})", text, re.I)
    if m:
        spec["topic"] = m.group("topic").strip()
    return ConstraintSpec.model_validate(spec)


LETTERS = rf"(?:{QUOTED}|(?P<bare>[A-Za-z]+))"
ACROSTIC = [
    rf"acrostic(?:\s+poem)?\s+(?:of|for|on|spelling|using|with|about)\s+(?:the\s+(?:word|name)\s+)?{LETTERS}",
    rf"(?:one|a|each)\s+line\s+(?:per|for each|for every)\s+letter\s+(?:of|in)\s+(?:the\s+(?:word|name)\s+)?{LETTERS}",
    rf"first letters?\s+of\s+(?:the|each|every)\s+lines?\s+(?:should |must )?(?:spells?|spell|reads?|read|form)\s+(?:out\s+)?{LETTERS}",
    rf"lines?\s+(?:should |must )?(?:starts?|begins?|starting|beginning)\s+with\s+(?:the\s+)?letters?\s+(?:of|in|from)\s+(?:the\s+(?:word|name)\s+)?{LETTERS}",
    rf"{LETTERS}\s+as\s+an\s+acrostic",
]


def _parse_lines(text: str, spec: dict) -> None:
    """Acrostics and each line's first / last words."""
    for pattern in ACROSTIC:
        m = re.search(pattern, text, re.I)
        if m:
            word = (m.group(1) or m.group("bare")).replace(" ", "")
            if word.isalpha():
                spec["acrostic"] = word.upper()
                if spec.get("lines") and not spec["lines"].ok(len(word)):
                    spec.pop("lines")
                break
    first, last = _edge_words(text, "line")
    if first:
        spec["line_first_word"] = first
    count = spec.get("lines")
    if len(last) == 1 and count is not None and count.exactly:
        last = last * count.exactly  # "each line ends with 'night'"
    if last:
        spec["line_last_words"] = last


def _edge_words(text: str, unit: str, also_last: str = "") -> tuple[str | None, list[str]]:
    """The word every `unit` (sentence, line) starts with, and the words they end with."""
    first = re.search(
        rf"(?:all|every|each) {unit}s? (?:having the (?:1st|first) word to be|"
        rf"(?:should |must |has to )?(?:start|begin)s? with(?: the word)?)\s+{QUOTED}",
        text, re.I,
    )
    last = re.search(
        rf"(?:{unit}s? having the last word to be|(?:each|every|the) {unit}s? (?:should |must )?"
        rf"(?:ending|ends?) with(?: the words?)?|{unit}s? ending (?:in|with)(?: the words?)?{also_last})"
        r"\s+(?P<words>.+?)(?:\s*,?\s*respectively|\.\s|\.$|$)",
        text, re.I,
    )
    return (first.group(1).strip() if first else None,
            _quoted_or_bare(text[last.start("words"):]) if last else [])


CURRENCY = {"$": "$", "€": "€", "£": "£", "dollar": "$", "euro": "€", "pound": "£"}
ITEMS = r"(?:items?|things?|products?|gifts?|purchases?|expenses?|ingredients?|entries|costs?|lines?)"


def _parse_budget(text: str) -> dict | None:
    """An item list with a total: "4 items for a picnic that add up to $50"."""
    total = re.search(
        r"(?:add(?:s|ing)? up to|sum(?:s|ming)? (?:up )?to|total(?:s|ling|ing|led)?(?: of)?|"
        r"budget(?: is)? of|budget:|(?:spend|spending) (?:exactly )?|in total of|come to|costing)\s+"
        r"(?:exactly\s+)?(?P<cur>[$€£])?\s*(?P<amt>\d[\d,]*)(?:\.00)?\s*(?P<unit>dollars?|euros?|pounds?)?",
        text, re.I,
    )
    items = re.search(rf"(?P<n>{NUM})\s+(?:[a-z-]+\s+)?{ITEMS}\b", text, re.I)
    if not (total and items):
        return None
    symbol = total.group("cur") or CURRENCY.get((total.group("unit") or "$").lower().rstrip("s"), "$")
    return {"items": number(items.group("n").lower()), "total": float(total.group("amt").replace(",", "")),
            "currency": symbol}


def _only_word_length_chars(low: str) -> bool:
    """True when every 'N characters' in the request is about word length."""
    mentions = re.findall(r"(?:characters?|letters?|chars?)\b", low)
    word_length = re.findall(rf"(?:{WORD_LENGTH})[^.;]*?(?:characters?|letters?|chars?)\b", low)
    return len(mentions) == len(word_length)
