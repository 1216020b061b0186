"""The words of the request grammar: numbers, ordinals, relations, scopes, measures, values.

`planner/parse.py` composes these into clauses (*scope* × *measure* × *relation* × *values*);
this module only knows what each word means. A request is first `normalise`d: quoted values
become placeholders (so a comma or a number inside quotes is never read as grammar), number
words become digits ("twenty-one" -> 21, "third" -> 3rd), list enumerators ("1)") go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from planner.spec import Count

UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
        "seventy": 70, "eighty": 80, "ninety": 90}
ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20,
}
_UNIT = "|".join(sorted(UNITS, key=len, reverse=True))
_TEN = "|".join(TENS)
_ORD = "|".join(sorted(ORDINAL_WORDS, key=len, reverse=True))
_SMALL = rf"(?:(?:{_TEN})(?:[- ](?:one|two|three|four|five|six|seven|eight|nine))?|(?:{_UNIT}))"
NUMBER_WORD = re.compile(
    rf"\b(?:(?:a|one|two|three|four|five|six|seven|eight|nine)\s+hundred(?:(?:\s+and)?[\s-]+{_SMALL})?"
    rf"|{_SMALL}|a dozen|half a dozen)\b", re.I)
ORDINAL_WORD = re.compile(
    rf"\b(?:(?P<ten>twenty|thirty)[- ](?P<unit>{_ORD})|(?P<ord>{_ORD}))\b", re.I)

# Common misspellings of the grammar's own words (not of values: those stay as written).
TYPOS = {
    "evry": "every", "everey": "every", "wrods": "words", "wrod": "word", "sentances": "sentences",
    "sentance": "sentence", "sentense": "sentence", "sentenses": "sentences", "senence": "sentence",
    "charachters": "characters", "charcters": "characters", "caracters": "characters",
    "exacly": "exactly", "excatly": "exactly", "exactley": "exactly", "atleast": "at least",
    "atmost": "at most", "paragrahs": "paragraphs", "paragrah": "paragraph", "syllabels": "syllables",
    "sylables": "syllables", "sylable": "syllable", "rhymng": "rhyming", "ryming": "rhyming",
    "wirte": "write", "wrtie": "write", "wrte": "write", "writ": "write", "lenght": "length",
    "begining": "beginning", "containg": "containing", "inclde": "include", "includ": "include",
    "wihout": "without", "witout": "without", "dont": "don't", "doesnt": "doesn't", "cant": "can't",
    "shouldnt": "shouldn't", "mustnt": "mustn't", "teh": "the", "abuot": "about", "abt": "about",
    "sentnces": "sentences", "sentnce": "sentence", "charecters": "characters", "charecter": "character",
    "less then": "less than", "more then": "more than", "fewer then": "fewer than", "longer then": "longer than",
}

# Quoted values: a quote that opens at a word boundary and closes before one (an apostrophe
# inside a word, "Rex's", is not a quote).
QUOTE = re.compile(r"""(?<![\w])(?:'((?:[^'\n]|'(?=\w))+?)'|"([^"\n]+?)"|‘([^’\n]+?)’|“([^”\n]+?)”)(?![\w])""")
PLACEHOLDER = re.compile(r"«(\d+)»")


@dataclass
class Prepared:
    """A request made ready for the grammar: `text` (lower-case, placeholders for quotes,
    digits for numbers), `quotes` (the quoted values, as written)."""

    text: str
    quotes: list[str] = field(default_factory=list)

    def value(self, token: str) -> str:
        """A value as the user wrote it: a quote's contents, or the bare word."""
        m = PLACEHOLDER.fullmatch(token.strip())
        return self.quotes[int(m.group(1))].strip() if m else token.strip()


_PRONOUN_ONE = re.compile(r"(?:\b(?:the|each|every|no|any|this|that|which|last|next|other|another|single|"
                          r"a|first|final|only)|\d+(?:st|nd|rd|th))\s+$")


def _number_word(m: re.Match) -> str:
    if m.group(0).lower() == "one" and (_PRONOUN_ONE.search(m.string[:m.start()].lower())
                                        or re.match(r"\s+(?:of|another|by one)\b", m.string[m.end():].lower())):
        return m.group(0)  # "the second one", "each one", "one of them": a pronoun, not a number
    words = m.group(0).lower().replace("-", " ").split()
    if words[-1] == "dozen":
        return "6" if words[0] == "half" else "12"
    total, current = 0, 0
    for w in words:
        if w == "hundred":
            current = max(current, 1) * 100
        elif w in TENS:
            current += TENS[w]
        elif w in UNITS:
            current += UNITS[w]
        elif w == "a":
            current += 1
    return str(total + current)


def _ordinal_word(m: re.Match) -> str:
    n = ORDINAL_WORDS[(m.group("ord") or m.group("unit")).lower()]
    if m.group("ten"):
        n += TENS[m.group("ten").lower()]
    suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10 if n % 100 not in (11, 12, 13) else 0, "th")
    return f"{n}{suffix}"


def normalise(request: str) -> Prepared:
    quotes: list[str] = []

    def hold(m: re.Match) -> str:
        quotes.append(next(g for g in m.groups() if g is not None))
        return f"«{len(quotes) - 1}»"

    text = re.sub(r"(?m)^\s*(?:\d{1,2}[).]|[-*•])\s+", " ", request)  # list enumerators
    text = re.sub(r"(?:(?<=^)|(?<=[\s.;:,]))\d{1,2}\)\s+", " ", text)
    text = text.replace("’", "'").replace("‘", "'") if not re.search(r"‘[^’]+’", text) else text
    text = QUOTE.sub(hold, text)
    text = re.sub(r"(?i)\bw/o\b", "without", text)
    text = re.sub(r"(?i)\bw/(?=\s)", "with", text)
    for typo, word in TYPOS.items():
        text = re.sub(rf"(?i)\b{typo}\b", word, text)
    text = re.sub(r"(?<![.;:,!?])[ \t]*\n+", " ; ", text.strip())  # a line break ends a clause
    text = " ".join(text.split()).lower()
    text = ORDINAL_WORD.sub(_ordinal_word, text)
    text = NUMBER_WORD.sub(_number_word, text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    return Prepared(text=text, quotes=quotes)


# -- relations --------------------------------------------------------------------------------

# Each relation word and what "N" becomes under it. The order matters: longer phrases first.
RELATIONS: list[tuple[str, str]] = [
    (r"(?:must not|mustn'?t|doesn'?t|does not|should not|shouldn'?t|can'?t|cannot|may not|won'?t|not to|"
     r"do not|don'?t|never) (?:exceed|go over|go beyond|be over|be more than|be longer than|run over|pass)|"
     r"no (?:more|longer|greater) than|not (?:more|longer) than|not exceeding|not to exceed|"
     r"not over|no over|never more than|at most|at the most|up to|a maximum of|maximum of|"
     r"maximum|max\.?|tops|within|or (?:fewer|less|under|shorter)", "le"),
    (r"no (?:less|fewer|shorter) than|not (?:less|fewer|shorter) than|at least|at the least|"
     r"a minimum of|minimum of|minimum|min\.?|or more|or longer|or above|or over|plus|\+", "ge"),
    (r"(?:fewer|less|shorter|lower) than|under|below|beneath|short of", "lt"),
    (r"(?:may|can|should|will|must|is allowed to|are allowed to)?\s*(?:exceed|exceeds|go over|goes over|be over|be more than|"
     r"be longer than|have more than|has more than|contain more than|run over|run longer than)|"
     r"(?:more|longer|greater|higher) than|over|above|exceeding|upwards of", "gt"),
    (r"exactly|precisely|just|only|a total of|in total|total|exact", "eq"),
]
RELATION = "|".join(f"(?:{words})" for words, _ in RELATIONS)
# A relation written after the number: "10 words or fewer", "12 words max".
SUFFIX_RELATION = r"exactly|precisely|or (?:fewer|less|under|shorter)|or more|or longer|or above|or over|max(?:imum)?|tops|at most|at least|minimum|min|plus|\+"


def relation_of(words: str | None) -> str:
    words = (words or "").strip()
    if not words:
        return "eq"
    for pattern, rel in RELATIONS:
        if re.fullmatch(pattern, words):
            return rel
    return "eq"


def count_of(rel: str, n: int, negated: bool = False) -> Count:
    """A Count from a relation and a number. `negated`: the relation holds of none ("no
    sentence longer than 12 words" is every sentence at most 12)."""
    if negated:
        rel = {"le": "gt", "ge": "lt", "lt": "ge", "gt": "le"}.get(rel, rel)
        if rel == "eq":
            raise ValueError("no unit may have exactly N")
    if rel == "le":
        return Count(at_most=n)
    if rel == "ge":
        return Count(at_least=n)
    if rel == "lt":
        if n < 1:
            raise ValueError(f"fewer than {n} is impossible")
        return Count(at_most=n - 1)
    if rel == "gt":
        return Count(at_least=n + 1)
    return Count(exactly=n)


def merge(old: Count | None, new: Count) -> Count:
    if old is None:
        return new
    data = old.model_dump(exclude_none=True)
    data.update(new.model_dump(exclude_none=True))
    if "exactly" in data and ("at_least" in data or "at_most" in data):
        exact = data.pop("exactly") if old.exactly is not None and new.exactly is None else None
        if exact is not None and Count(**data).ok(exact):
            data = {"exactly": exact}
    return Count(**data)


# -- measures and scopes ------------------------------------------------------------------------

MEASURES = {
    "word": r"words?|wrods?|wordss?",
    "character": r"characters?|charact[ae]rs?|chars?|letters?",
    "sentence": r"sentences?|sentance?s?|sentenses?",
    "line": r"lines?|verses?",
    "paragraph": r"paragraphs?|paragrahs?|paras?",
    "syllable": r"syllables?|sylables?",
}
MEASURE = "|".join(f"(?P<m_{k}>{v})" for k, v in MEASURES.items())
UNIT_NOUN = r"(?:sentences?|sentance?s?|lines?|paragraphs?|words?|verses?)"


def measure_of(m: re.Match) -> str:
    return next(k for k in MEASURES if m.group(f"m_{k}"))


def noun_unit(noun: str) -> str:
    for k, v in MEASURES.items():
        if re.fullmatch(v, noun):
            return k
    return noun


# Words that make a leftover span look like a constraint: a clause holding one of these that no
# rule read is reported as not understood.
_MEASURE_AFTER = (r"(?:words?|letters?|characters?|chars?|sentences?|lines?|paragraphs?|syllables?|items?|"
                  r"things?|times|hashtags?|emojis?|commas?|verses?|stanzas?|points?|bullets?|%|percent)")
CUES = re.compile(
    rf"\d+(?:[- ]|\s+(?:\w+\s+){{0,2}}?){_MEASURE_AFTER}\b|(?:{RELATION})\s+\d|\d+\s+or\s+(?:more|fewer|less)|"
    r"«\d+»|\b(?:\d+(?:st|nd|rd|th)\s+(?:word|line|sentence|letter|paragraph|syllable))\b|"
    r"\b(?:without|never|avoid|avoiding|no)\s+(?:(?:the|any|a|using|saying|mentioning|use|say|mention|ever)\s+)*(?:words?|letters?|«)|"
    r"\bletters?\s+(?:«\d+»|[a-z]\b|of\b|in\b)|\bthe\s+letters?\b|"
    r"\b(?:words?|characters?|chars?|lines?|sentences?|paragraphs?|syllables?|"
    r"start|starts|starting|begin|begins|beginning|end|ends|ending|rhymes?|rhyming|"
    r"each|every|total|under|exactly|precisely|json|yaml|xml|csv|html|markdown|bold|"r"italics?|capital letters?|all capitals|in capitals|uppercase|upper case|lower ?case|all caps|caps lock|hashtags?|emojis?|items?|list|bullets?|"
    r"numbered|at least|at most|no more|fewer|less than|more than|longer|shorter|maximum|minimum|"
    r"limit|count|vowels?|consonants?|comma|commas|punctuation|question marks?|exclamation|"
    r"french|spanish|german|italian|japanese|chinese|latin|language|tense|passive|alphabetical|"
    r"swedish|dutch|polish|turkish|portuguese|russian|arabic|hindi|korean|greek|hebrew|danish|"
    r"norwegian|finnish|czech|hungarian|romanian|ukrainian|vietnamese|thai|indonesian|swahili|"
    r"welsh|irish|gaelic|esperanto|klingon|elvish|emoji|pig latin|"
    r"\w+(?:ish|ese|ian|ic) (?:only|language)|(?:1st|2nd|3rd|first|second|third)[- ]person|point of view|"
    r"perspective|pov|tone|voice|formal|informal|style of|in the style|slang|dialect|accent|"
    r"block letters|block capitals|lowercase|title case|sentence case|capitali[sz]e\w*|"
    r"present tense|past tense|future tense|"
    r"reverse|backwards|palindrome|anagram|format|columns?|table|title|heading|sonnet|stanzas?|"
    r"in it|in there|has to be|have to be|one of them|acrostic|haiku|limerick|alliterat\w*|lipogram|respectively|spell|spells|spelling|spelled|spelt|appears?|required|make sure|forget|"
    r"must|need to be|needs to be|in there|use:|use|using|include|includes|including|contain|contains|"
    r"containing|mention|mentions|mentioning|feature|featuring|incorporate|incorporating)\b|[#@]\w|[$€£]")
