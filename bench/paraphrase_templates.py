"""Paraphrase corpus generator: user requests written from phrasing templates, each with the
ConstraintSpec it intends (see bench/data/paraphrase/CONVENTIONS.md for the line format and the
readings every spec here follows).

The corpus is written independently of the request parser it is meant to test: every spec is
derived here from the values a template put into its sentence, by CONVENTIONS.md's readings
("under N" -> at_most N-1, "more than N" -> at_least N+1, ...).

    generate(seed=0) -> list[dict]        # corpus lines: id, request, family, template, spec,
                                          # topic, topic_words
    python -m bench.paraphrase_templates  # writes bench/data/paraphrase/generated.jsonl

Decisions where CONVENTIONS.md leaves room:
- `unit` is always written (sentence / paragraph / text), though it is not compared.
- When a line count is already implied by an acrostic, a syllable list, a rhyme scheme or line
  end words, `lines` is *not* added even if the request states the count ("a 4-line poem
  rhyming ABAB" -> rhyme_scheme "ABAB" only), following the table's own examples; `lines` is
  written only when it is the constraint carrying the count (a plain "poem of 6 lines", or a
  count next to words-per-line / first-word-per-line).
- A negated bound on every sentence keeps its plain meaning: "no sentence longer than N",
  "none of them over N" -> words_per_sentence at_most N; "each under N" -> at_most N-1.
- A request without a subject has topic "" and topic_words [].
- Budget `bullet` is written only when the request names a list format; otherwise the model's
  default "-" applies.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Callable

OUT_PATH = Path(__file__).resolve().parent / "data" / "paraphrase" / "generated.jsonl"

# --------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------

# (topic phrase as it appears in the request, content words an on-topic answer mentions)
TOPICS: list[tuple[str, list[str]]] = [
    ("autumn leaves", ["autumn", "leaves"]),
    ("a rainy Monday morning", ["rainy", "Monday", "morning"]),
    ("my grandmother's kitchen", ["grandmother", "kitchen"]),
    ("the beach at sunset", ["beach", "sunset"]),
    ("learning to ride a bike", ["learning", "ride", "bike"]),
    ("a busy train station", ["busy", "train", "station"]),
    ("my favourite café", ["favourite", "café"]),
    ("my favorite coffee shop", ["favorite", "coffee", "shop"]),
    ("the neighbourhood park", ["neighbourhood", "park"]),
    ("a neighborhood block party", ["neighborhood", "block", "party"]),
    ("baking bread", ["baking", "bread"]),
    ("a first day at school", ["first", "day", "school"]),
    ("the night sky", ["night", "sky"]),
    ("a lighthouse keeper", ["lighthouse", "keeper"]),
    ("a marathon runner", ["marathon", "runner"]),
    ("gardening in spring", ["gardening", "spring"]),
    ("a snowy mountain village", ["snowy", "mountain", "village"]),
    ("street food in Bangkok", ["street", "food", "Bangkok"]),
    ("the London Underground", ["London", "Underground"]),
    ("a road trip across Texas", ["road", "trip", "Texas"]),
    ("a quiet library", ["quiet", "library"]),
    ("my cat", ["cat"]),
    ("a golden retriever puppy", ["golden", "retriever", "puppy"]),
    ("playing chess", ["playing", "chess"]),
    ("knitting a scarf", ["knitting", "scarf"]),
    ("a farmers' market", ["farmers", "market"]),
    ("the ocean", ["ocean"]),
    ("a thunderstorm", ["thunderstorm"]),
    ("a school bus driver", ["school", "bus", "driver"]),
    ("a retired teacher", ["retired", "teacher"]),
    ("a nurse on the night shift", ["nurse", "night", "shift"]),
    ("camping by a lake", ["camping", "lake"]),
    ("a birthday party", ["birthday", "party"]),
    ("moving to a new city", ["moving", "new", "city"]),
    ("a broken umbrella", ["broken", "umbrella"]),
    ("morning coffee", ["morning", "coffee"]),
    ("a jazz club", ["jazz", "club"]),
    ("learning the guitar", ["learning", "guitar"]),
    ("a football match", ["football", "match"]),
    ("soccer practice", ["soccer", "practice"]),
    ("riding the subway", ["riding", "subway"]),
    ("a colourful kite", ["colourful", "kite"]),
    ("a colorful parade", ["colorful", "parade"]),
    ("an old bookshop", ["old", "bookshop"]),
    ("a small fishing boat", ["small", "fishing", "boat"]),
    ("the desert at night", ["desert", "night"]),
    ("a hot air balloon", ["hot", "air", "balloon"]),
    ("my best friend", ["best", "friend"]),
    ("a grumpy neighbor", ["grumpy", "neighbor"]),
    ("a kind neighbour", ["kind", "neighbour"]),
    ("Paris in winter", ["Paris", "winter"]),
    ("a bakery at dawn", ["bakery", "dawn"]),
    ("a yoga class", ["yoga", "class"]),
    ("a lost wallet", ["lost", "wallet"]),
    ("a vegetable garden", ["vegetable", "garden"]),
    ("a family picnic", ["family", "picnic"]),
    ("a long flight", ["long", "flight"]),
    ("bird watching", ["bird", "watching"]),
    ("a science museum", ["science", "museum"]),
    ("pizza night", ["pizza", "night"]),
    ("a fire station", ["fire", "station"]),
    ("an airport at midnight", ["airport", "midnight"]),
    ("a village pub", ["village", "pub"]),
    ("a summer holiday", ["summer", "holiday"]),
    ("a summer vacation", ["summer", "vacation"]),
    ("an apartment balcony", ["apartment", "balcony"]),
    ("a flat in Manchester", ["flat", "Manchester"]),
    ("painting with watercolors", ["painting", "watercolors"]),
    ("painting with watercolours", ["painting", "watercolours"]),
    ("a rock concert", ["rock", "concert"]),
    ("a carpenter", ["carpenter"]),
    ("a beekeeper", ["beekeeper"]),
    ("a snowman", ["snowman"]),
    ("a sunflower field", ["sunflower", "field"]),
    ("a fox in the city", ["fox", "city"]),
    ("cooking pasta", ["cooking", "pasta"]),
    ("a train journey through Scotland", ["train", "journey", "Scotland"]),
    ("a lazy Sunday", ["lazy", "Sunday"]),
    ("the first snow", ["first", "snow"]),
    ("a swimming pool", ["swimming", "pool"]),
    ("an old clock tower", ["old", "clock", "tower"]),
    ("my dog", ["dog"]),
    ("a big city", ["big", "city"]),
    ("hiking", ["hiking"]),
    ("a hot bath", ["hot", "bath"]),
    ("our trip to Iceland", ["trip", "Iceland"]),
    ("fishing at dawn", ["fishing", "dawn"]),
    ("a quiet Sunday morning", ["quiet", "Sunday", "morning"]),
]

# Topics for alliteration: every content word starts with the letter.
ALLIT_TOPICS: dict[str, list[tuple[str, list[str]]]] = {
    "s": [("sunny Saturdays", ["sunny", "Saturdays"]), ("sailing ships", ["sailing", "ships"]),
          ("summer sunsets", ["summer", "sunsets"]), ("silly snakes", ["silly", "snakes"]),
          ("snowy streets", ["snowy", "streets"]), ("strawberry smoothies", ["strawberry", "smoothies"])],
    "b": [("busy bakeries", ["busy", "bakeries"]), ("blue butterflies", ["blue", "butterflies"]),
          ("big brown bears", ["big", "brown", "bears"]), ("bouncing balls", ["bouncing", "balls"]),
          ("birthday balloons", ["birthday", "balloons"])],
    "p": [("purple penguins", ["purple", "penguins"]), ("pirates", ["pirates"]),
          ("pizza parties", ["pizza", "parties"]), ("playful puppies", ["playful", "puppies"]),
          ("picnics in the park", ["picnics", "park"])],
    "m": [("misty mountains", ["misty", "mountains"]), ("Monday mornings", ["Monday", "mornings"]),
          ("mischievous monkeys", ["mischievous", "monkeys"]), ("marching music", ["marching", "music"]),
          ("midnight movies", ["midnight", "movies"])],
    "c": [("curious cats", ["curious", "cats"]), ("cozy cabins", ["cozy", "cabins"]),
          ("chocolate cake", ["chocolate", "cake"]), ("crowded cafés", ["crowded", "cafés"]),
          ("country cottages", ["country", "cottages"])],
    "t": [("tiny turtles", ["tiny", "turtles"]), ("tall trees", ["tall", "trees"]),
          ("travelling by train", ["travelling", "train"]), ("tea time", ["tea", "time"]),
          ("tropical thunderstorms", ["tropical", "thunderstorms"])],
    "f": [("funny frogs", ["funny", "frogs"]), ("fresh flowers", ["fresh", "flowers"]),
          ("foggy forests", ["foggy", "forests"]), ("flying foxes", ["flying", "foxes"]),
          ("family feasts", ["family", "feasts"])],
    "w": [("windy weather", ["windy", "weather"]), ("wild wolves", ["wild", "wolves"]),
          ("winter woods", ["winter", "woods"]), ("waterfalls", ["waterfalls"]),
          ("wooden wagons", ["wooden", "wagons"])],
    "l": [("lazy lions", ["lazy", "lions"]), ("lemonade", ["lemonade"]),
          ("little lambs", ["little", "lambs"]), ("lonely lighthouses", ["lonely", "lighthouses"]),
          ("local libraries", ["local", "libraries"])],
    "d": [("dancing dogs", ["dancing", "dogs"]), ("dinosaurs", ["dinosaurs"]), ("dragons", ["dragons"]),
          ("desert dunes", ["desert", "dunes"]), ("delicious doughnuts", ["delicious", "doughnuts"])],
    "h": [("happy hippos", ["happy", "hippos"]), ("hiking in the hills", ["hiking", "hills"]),
          ("horses", ["horses"]), ("honey", ["honey"]), ("haunted houses", ["haunted", "houses"])],
    "g": [("green gardens", ["green", "gardens"]), ("giant giraffes", ["giant", "giraffes"]),
          ("golden grapes", ["golden", "grapes"]), ("grumpy goats", ["grumpy", "goats"]),
          ("gentle grandparents", ["gentle", "grandparents"])],
    "r": [("rainy rooftops", ["rainy", "rooftops"]), ("red roses", ["red", "roses"]),
          ("racing rabbits", ["racing", "rabbits"]), ("rivers", ["rivers"]),
          ("rusty robots", ["rusty", "robots"])],
}

# (acrostic word, a topic that goes with it, its content words)
ACROSTICS: list[tuple[str, str, list[str]]] = [
    ("CAT", "my cat", ["cat"]), ("SUN", "a summer morning", ["summer", "morning"]),
    ("SEA", "the ocean", ["ocean"]), ("HOPE", "a new beginning", ["new", "beginning"]),
    ("STAR", "the night sky", ["night", "sky"]), ("MOON", "a quiet night", ["quiet", "night"]),
    ("RAIN", "a stormy afternoon", ["stormy", "afternoon"]), ("SNOW", "the first snow", ["first", "snow"]),
    ("TREE", "an old oak", ["old", "oak"]), ("HOME", "my hometown", ["hometown"]),
    ("BOOK", "a quiet library", ["quiet", "library"]), ("RIVER", "a walk by the water", ["walk", "water"]),
    ("LIGHT", "a lighthouse", ["lighthouse"]), ("DREAM", "sleeping late", ["sleeping", "late"]),
    ("PEACE", "a calm lake", ["calm", "lake"]), ("MUSIC", "a jazz club", ["jazz", "club"]),
    ("BEACH", "a summer holiday", ["summer", "holiday"]), ("SPRING", "gardening in spring", ["gardening", "spring"]),
    ("GARDEN", "my grandmother's garden", ["grandmother", "garden"]), ("FRIEND", "my best friend", ["best", "friend"]),
    ("AUTUMN", "autumn leaves", ["autumn", "leaves"]), ("WINTER", "a snowy village", ["snowy", "village"]),
    ("SUMMER", "a beach day", ["beach", "day"]), ("CANDLE", "a power cut", ["power", "cut"]),
    ("KITCHEN", "baking bread", ["baking", "bread"]), ("HARVEST", "a farmers' market", ["farmers", "market"]),
    ("COFFEE", "morning coffee", ["morning", "coffee"]), ("PUPPY", "a new puppy", ["new", "puppy"]),
    ("OCEAN", "sailing", ["sailing"]), ("FAMILY", "a family picnic", ["family", "picnic"]),
    ("SCHOOL", "a first day at school", ["first", "day", "school"]), ("TRAIN", "a long train ride", ["long", "train", "ride"]),
    ("FLOWER", "a sunflower field", ["sunflower", "field"]), ("CLOUD", "a windy day", ["windy", "day"]),
    ("BREAD", "a bakery at dawn", ["bakery", "dawn"]), ("SMILE", "my best friend", ["best", "friend"]),
]

# (topic phrase after "for", content words, whether "gifts" fits)
BUDGET_TOPICS: list[tuple[str, list[str], bool]] = [
    ("a picnic", ["picnic"], False), ("a camping trip", ["camping", "trip"], False),
    ("my sister's birthday", ["sister", "birthday"], True), ("a new home office", ["home", "office"], False),
    ("a beach day", ["beach", "day"], False), ("a family barbecue", ["family", "barbecue"], False),
    ("a school art class", ["school", "art", "class"], False), ("a weekend in Rome", ["weekend", "Rome"], False),
    ("a dinner party", ["dinner", "party"], False), ("a baby shower", ["baby", "shower"], True),
    ("my dad's retirement", ["dad", "retirement"], True), ("a gardening project", ["gardening", "project"], False),
    ("a road trip", ["road", "trip"], False), ("a Halloween party", ["Halloween", "party"], False),
    ("a new puppy", ["puppy"], False), ("a student flat", ["student", "flat"], False),
    ("a hiking trip", ["hiking", "trip"], False), ("my best friend's wedding", ["friend", "wedding"], True),
    ("a movie night", ["movie", "night"], False), ("my mum's birthday", ["mum", "birthday"], True),
    ("my mom's birthday", ["mom", "birthday"], True), ("a teacher's leaving present", ["teacher"], True),
    ("a baking weekend", ["baking", "weekend"], False), ("a ski trip", ["ski", "trip"], False),
]

POSITION_WORDS = ["river", "quietly", "always", "blue", "never", "suddenly", "little", "today", "warm",
                  "slowly", "together", "bright", "old", "happy", "small", "golden", "soft", "still",
                  "green", "sometimes", "cold", "gently"]
START_WORDS = ["Yesterday", "Every", "Sometimes", "Nobody", "After", "When", "My", "Tonight", "Honestly",
               "Outside", "Once", "Maybe", "Before", "Somewhere", "Our", "Today", "Last"]
END_WORDS = ["tonight", "again", "home", "forever", "together", "outside", "today", "slowly", "everywhere",
             "tomorrow", "soon", "alone", "away", "there", "now", "inside", "quietly"]
SENTENCE_FIRST = ["I", "We", "The", "It", "Then", "She", "They", "Sometimes", "Every", "Today", "Nobody"]
LINE_FIRST = ["I", "We", "Remember", "Maybe", "Sometimes", "Here", "When", "Someday", "Listen", "Love", "Still"]
LINE_LAST = ["night", "home", "rain", "light", "again", "away", "sea", "sky", "day", "now", "you"]
INCLUDE_WORDS = ["window", "yellow", "whisper", "bicycle", "lantern", "pocket", "thunder", "honey", "mirror",
                 "ladder", "ribbon", "candle", "orange", "piano", "feather", "silver", "puzzle", "compass",
                 "blanket", "marble", "pebble", "velvet", "cinnamon", "kettle", "violin", "meadow",
                 "anchor", "postcard", "jar", "cloud", "bridge", "shadow", "moss", "clock", "map", "key",
                 "stone", "hat", "owl", "drum", "fog", "salt", "mug", "kite"]
EXCLUDE_WORDS = ["very", "really", "nice", "good", "beautiful", "amazing", "thing", "just", "stuff", "great",
                 "lovely", "awesome", "perfect", "fun", "big", "love", "like", "things", "totally",
                 "literally", "cute", "bad", "happy", "sad"]
LIPO_LETTERS = ["e", "a", "o", "i", "u", "s", "t"]
HASHTAGS = ["MondayMotivation", "weekend", "TBT", "blessed", "foodie", "travel", "NoFilter", "goals",
            "summer", "instagood", "LocalLove", "SmallBusiness", "ThrowbackThursday", "GoodVibes",
            "nature", "photography", "fitness", "bookworm", "coffeetime", "FamilyTime"]
MENTIONS = ["sarah_j", "TheCoffeeShop", "mike_runs", "citylibrary", "GreenGardenCo", "annabakes",
            "TomHikes", "local_zoo", "DrPatel", "the_daily_paw", "JamieCooks", "parkrun_uk"]

# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
         "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD = ["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
        "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth",
        "seventeenth", "eighteenth", "nineteenth", "twentieth"]


def number_word(n: int, british: bool = False) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        t, o = divmod(n, 10)
        return _TENS[t] + ("-" + _ONES[o] if o else "")
    if n < 1000:
        h, rest = divmod(n, 100)
        head = _ONES[h] + " hundred"
        if not rest:
            return head
        return head + (" and " if british else " ") + number_word(rest)
    if n == 1000:
        return "one thousand"
    raise ValueError(n)


def fmt(n: int, style: str) -> str:
    """style: 'd' digits, 'w' words, 'wb' words the British way (one hundred and twenty)."""
    if style == "d":
        return str(n)
    return number_word(n, british=(style == "wb"))


def ordinal(n: int, words: bool) -> str:
    if words:
        return _ORD[n]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def article(s: str) -> str:
    """'a' or 'an' before a number written as digits or words (an 8-word, an eleven-word)."""
    if s[0].isdigit():
        return "an" if s.startswith("8") or s in ("11", "18") else "a"
    return "an" if s[0].lower() in "aeiou" else "a"


def cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def quoter(r: random.Random, styles: str = "'\"“") -> Callable[[str], str]:
    """One quoting style per request: 'x', "x", “x” or bare x (style ' ' in styles)."""
    s = r.choice(styles)
    if s == " ":
        return lambda w: w
    if s == "“":
        return lambda w: f"“{w}”"
    return lambda w: f"{s}{w}{s}"


def join_and(items: list[str], oxford: bool = False, conj: str = "and") -> str:
    if len(items) == 1:
        return items[0]
    if len(items) == 2:
        return f"{items[0]} {conj} {items[1]}"
    return ", ".join(items[:-1]) + ("," if oxford else "") + f" {conj} {items[-1]}"


def pick_topic(r: random.Random, ok: Callable[[list[str]], bool] | None = None) -> tuple[str, list[str]]:
    pool = [t for t in TOPICS if ok is None or ok(t[1])]
    return r.choice(pool)


def no_letters(letters) -> Callable[[list[str]], bool]:
    return lambda words: all(not (set(w.lower()) & set(letters)) for w in words)


def max_len(n: int) -> Callable[[list[str]], bool]:
    return lambda words: all(len(w) <= n for w in words)


def pick_words(r: random.Random, pool: list[str], k: int, avoid: set[str] = frozenset(),
               ok: Callable[[str], bool] | None = None) -> list[str]:
    cands = [w for w in pool if w.lower() not in avoid and (ok is None or ok(w))]
    return r.sample(cands, k)


def lower_set(words) -> set[str]:
    return {w.lower() for w in words}


# --------------------------------------------------------------------------------------------
# Count phrases: the readings of CONVENTIONS.md, applied when a phrase is written
# --------------------------------------------------------------------------------------------

# Context "in": after in / using / of / with / has / contains ("in no more than 30 words").
# Context "be": after "be" / "is" ("it should be under 30 words").
# Context "post": right after a noun ("a paragraph no longer than 30 words").
PHRASES: dict[str, dict[str, list[str]]] = {
    "in": {
        "exactly": ["exactly {n}", "precisely {n}", "just {n}", "{n}"],
        "at_least": ["at least {n}", "no fewer than {n}", "a minimum of {n}", "{n} or more", "{n} {noun} or more"],
        "at_most": ["at most {n}", "no more than {n}", "up to {n}", "a maximum of {n}", "{n} or fewer",
                    "{n} {noun} or fewer"],
        "under": ["under {n}", "fewer than {n}", "less than {n}"],
        "over": ["more than {n}", "over {n}"],
        "between": ["between {a} and {b}", "{a} to {b}", "{a}-{b}"],
    },
    "be": {
        "exactly": ["exactly {n}", "precisely {n}", "just {n}"],
        "at_least": ["at least {n}", "no fewer than {n}", "a minimum of {n}", "{n} {noun} or more"],
        "at_most": ["at most {n}", "no more than {n}", "a maximum of {n}", "{n} {noun} or fewer",
                    "no longer than {n}"],
        "under": ["under {n}", "fewer than {n}", "less than {n}", "shorter than {n}", "below {n}"],
        "over": ["more than {n}", "over {n}", "longer than {n}", "above {n}"],
        "between": ["between {a} and {b}", "{a} to {b}", "{a}-{b}"],
    },
    "post": {
        "at_most": ["no longer than {n}", "not exceeding {n}"],
        "under": ["under {n}", "shorter than {n}"],
        "over": ["longer than {n}", "over {n}"],
    },
}
ALL_KINDS = ["exactly", "at_least", "at_most", "under", "over", "between"]


def _values(r: random.Random, kind: str, lo: int, hi: int, step: int) -> tuple[dict, dict]:
    """Pick the numbers a phrase shows (n or a, b) and the Count they mean, the Count within
    [lo, hi]; shown numbers are at least 2 so that the noun stays plural."""
    def grid(a: int, b: int) -> list[int]:
        vals = [v for v in range(max(a, 2), b + 1) if v % step == 0]
        return vals or [v for v in range(max(a, 2), b + 1)]

    if kind == "exactly":
        n = r.choice(grid(lo, hi))
        return {"n": n}, {"exactly": n}
    if kind == "at_least":
        n = r.choice(grid(lo, hi))
        return {"n": n}, {"at_least": n}
    if kind == "at_most":
        n = r.choice(grid(lo, hi))
        return {"n": n}, {"at_most": n}
    if kind == "under":
        n = r.choice(grid(lo + 1, hi + 1))
        return {"n": n}, {"at_most": n - 1}
    if kind == "over":
        n = r.choice(grid(lo - 1, hi - 1))
        return {"n": n}, {"at_least": n + 1}
    if kind == "between":
        gap = max(2, (hi - lo) // 6)
        a = r.choice(grid(lo, hi - gap))
        b = r.choice(grid(a + gap, hi))
        return {"a": a, "b": b}, {"at_least": a, "at_most": b}
    raise ValueError(kind)


def count_phrase(r: random.Random, kinds: list[str], lo: int, hi: int, noun: str, ctx: str = "in",
                 num: str = "d", step: int = 1) -> tuple[str, dict]:
    """A bound phrase with its noun ("no more than 30 words") and the Count it reads as."""
    kinds = [k for k in kinds if k in PHRASES[ctx]]
    kind = r.choice(kinds)
    vals, count = _values(r, kind, lo, hi, step)
    phrases = PHRASES[ctx][kind]
    if not noun:  # "whose word count is ___": no length words
        phrases = [p for p in phrases if "{noun}" not in p and "longer" not in p and "shorter" not in p]
    p = r.choice(phrases)
    style = "d" if p == "{a}-{b}" else num
    shown = {k: fmt(v, style) for k, v in vals.items()}
    text = p.format(noun=noun, **shown)
    if noun and "{noun}" not in p:
        text = f"{text} {noun}"
    return text, count


def numstyle(r: random.Random, words_share: float = 0.4) -> str:
    return "w" if r.random() < words_share else "d"


# --------------------------------------------------------------------------------------------
# Template registry
# --------------------------------------------------------------------------------------------

TEMPLATES: list[tuple[str, str, Callable[[random.Random], dict]]] = []


def template(tid: str):
    family, name = tid.split("/")

    def deco(fn):
        TEMPLATES.append((family, name, fn))
        return fn
    return deco


def out(request: str, spec: dict | None, topic: tuple[str, list[str]] | None) -> dict:
    phrase, words = topic if topic else ("", [])
    return {"request": request, "spec": spec, "topic": phrase, "topic_words": list(words)}


# ============================================================================================
# word_count
# ============================================================================================

@template("word_count/imperative_in")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 8, 60, "words", "in", numstyle(r), step=r.choice([1, 5]))
    verb = r.choice(["Write about", "Describe", "Tell me about"])
    return out(f"{verb} {t[0]} in {text}.", {"unit": "text", "words": c}, t)


@template("word_count/polite_question")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 10, 60, "words", "be", "d", step=r.choice([1, 5]))
    ask = r.choice(["Could you", "Would you", "Can you please"])
    return out(f"{ask} write a short paragraph about {t[0]} that is {text}?", {"unit": "paragraph", "words": c}, t)


@template("word_count/hyphen_sentence")
def _(r):
    t = pick_topic(r)
    n = r.randint(6, 25)
    shown = fmt(n, numstyle(r, 0.5))
    lead = r.choice(["Give me", "Write", "I need", "Compose"])
    return out(f"{lead} {article(shown)} {shown}-word sentence about {t[0]}.", {"unit": "sentence", "words": {"exactly": n}}, t)


@template("word_count/constraint_first")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 10, 60, "words", "in", numstyle(r), step=5)
    frame = r.choice(["In {c}, describe {t}.", "Using {c}, write about {t}.", "In {c}, tell me about {t}."])
    return out(frame.format(c=text, t=t[0]), {"unit": "text", "words": c}, t)


@template("word_count/make_sure")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 10, 60, "words", "be", numstyle(r, 0.3))
    lead = r.choice(["Write something about {t}.", "Describe {t}.", "Write a short text on {t}."])
    tail = r.choice(["Make sure it is {c}.", "Make sure it's {c}.", "Please make sure the text is {c}."])
    return out(f"{lead.format(t=t[0])} {tail.format(c=text)}", {"unit": "text", "words": c}, t)


@template("word_count/keep_it")
def _(r):
    t = pick_topic(r)
    form, delta = r.choice([("under {n} words", 1), ("below {n} words", 1), ("to {n} words or fewer", 0),
                            ("to no more than {n} words", 0), ("to a maximum of {n} words", 0),
                            ("shorter than {n} words", 1), ("no longer than {n} words", 0),
                            ("to at most {n} words", 0)])
    n = r.randint(15, 60)
    shown = fmt(n, numstyle(r, 0.3))
    lead = r.choice(["Describe {t}, but keep it", "Write a description of {t} and keep it",
                     "Tell me about {t}; keep it"])
    return out(f"{lead.format(t=t[0])} {form.format(n=shown)}.", {"unit": "text", "words": {"at_most": n - delta}}, t)


@template("word_count/relative_clause")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 15, 60, "", "be", "d", step=5)
    lead = r.choice(["I'd like a paragraph about {t} whose word count is {c}.",
                     "I need a paragraph on {t} whose word count is {c}.",
                     "Please give me a paragraph about {t} whose total word count is {c}."])
    return out(lead.format(t=t[0], c=text), {"unit": "paragraph", "words": c}, t)


@template("word_count/colon_spec")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["exactly", "at_most", "under", "between", "at_least"], 10, 60, "words", "in",
                           "d", step=5)
    if text.split()[0].isdigit() and text.endswith("words") and len(text.split()) == 2:
        text = "exactly " + text  # "Length: 30 words." would do too, but keep it unambiguous
    label = r.choice(["Topic: {t}. Length: {c}.", "Subject: {t}\nLength: {c}", "Topic - {t}; length: {c}."])
    return out(label.format(t=t[0], c=text), {"unit": "text", "words": c}, t)


@template("word_count/number_words_question")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["exactly", "at_most", "at_least", "under", "over"], 8, 60, "words", "in", "w")
    ask = r.choice(["Can you describe {t} using {c}?", "Could you sum up {t} in {c}?",
                    "Can you write about {t} in {c}?"])
    return out(ask.format(t=t[0], c=text), {"unit": "text", "words": c}, t)


@template("word_count/at_least_paragraph")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["at_least", "over"], 15, 50, "words", "in", numstyle(r, 0.3), step=5)
    tail = r.choice([", please.", ".", " for me."])
    return out(f"Write a paragraph of {text} about {t[0]}{tail}", {"unit": "paragraph", "words": c}, t)


@template("word_count/it_should")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 20, 60, "words", "be", numstyle(r, 0.3), step=5)
    kind = r.choice(["a short story", "a short blog post", "a diary entry", "a short review"])
    return out(f"Write {kind} about {t[0]}. It should be {text}.", {"unit": "text", "words": c}, t)


@template("word_count/summarise_post")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["at_most", "under"], 15, 60, "words", "post", numstyle(r, 0.3), step=5)
    verb = r.choice(["summarise", "summarize"])
    lead = r.choice([f"Please {verb} {{t}} in a paragraph {{c}}.", f"Could you {verb} {{t}} in a paragraph {{c}}?"])
    return out(lead.format(t=t[0], c=text), {"unit": "paragraph", "words": c}, t)


# ============================================================================================
# char_count
# ============================================================================================

@template("char_count/imperative_in")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 40, 150, "characters", "in", "d", step=10)
    return out(f"Write a sentence about {t[0]} in {text}.", {"unit": "sentence", "characters": c}, t)


@template("char_count/tweet_question")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 40, 200, "characters", "be", "d", step=10)
    ask = r.choice(["Can you write a tweet about {t} that's {c}?", "Could you draft a tweet on {t} that is {c}?"])
    return out(ask.format(t=t[0], c=text), {"unit": "text", "characters": c}, t)


@template("char_count/caption_shorter")
def _(r):
    t = pick_topic(r)
    word = r.choice(["shorter than", "under", "less than", "fewer than"])
    n = r.choice(range(30, 151, 10))
    lead = r.choice(["Write a caption for a photo of {t}, {w} {n} characters.",
                     "Give me a photo caption for {t} that is {w} {n} characters."])
    return out(lead.format(t=t[0], w=word, n=n), {"unit": "text", "characters": {"at_most": n - 1}}, t)


@template("char_count/constraint_first")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 60, 200, "characters", "in", "d", step=10)
    frame = r.choice(["Using {c}, describe {t}.", "In {c}, tell me about {t}.", "With {c}, write about {t}."])
    return out(frame.format(c=text, t=t[0]), {"unit": "text", "characters": c}, t)


@template("char_count/make_sure_has")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 40, 150, "characters", "in", "d", step=10)
    lead = r.choice(["Describe {t} in one sentence, and make sure it has {c}.",
                     "Write one sentence about {t}. Make sure it has {c}."])
    return out(lead.format(t=t[0], c=text), {"unit": "sentence", "characters": c}, t)


@template("char_count/character_count_is")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 20, 100, "", "be", "d", step=5)
    kind = r.choice(["a slogan", "a tagline", "a motto"])
    return out(f"I need {kind} for {t[0]} whose character count is {text}.", {"unit": "text", "characters": c}, t)


@template("char_count/summarise_british")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["exactly", "at_most", "under", "between"], 60, 200, "characters", "in", "d", step=10)
    lead = r.choice(["Please summarise {t} in {c}.", "Kindly summarise {t} in {c}, ta.",
                     "Could you summarise {t} in {c}, please?"])
    return out(lead.format(t=t[0], c=text), {"unit": "text", "characters": c}, t)


@template("char_count/must_not_exceed")
def _(r):
    t = pick_topic(r)
    n = r.choice(range(40, 201, 10))
    lead = r.choice(["Write a short message about {t}. It must not exceed {n} characters.",
                     "Write a note about {t}; the text must not exceed {n} characters.",
                     "Describe {t} in a text that doesn't exceed {n} characters."])
    return out(lead.format(t=t[0], n=n), {"unit": "text", "characters": {"at_most": n}}, t)


@template("char_count/number_words")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["at_most", "at_least", "under", "exactly"], 30, 200, "characters", "in",
                           r.choice(["w", "wb"]), step=10)
    kind = r.choice(["a short note", "a message", "a text"])
    return out(f"Write {kind} of {text} about {t[0]}.", {"unit": "text", "characters": c}, t)


@template("char_count/at_least")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["at_least", "over"], 20, 150, "characters", "in", "d", step=10)
    return out(f"Write a description of {t[0]} with {text}.", {"unit": "text", "characters": c}, t)


@template("char_count/between_long")
def _(r):
    t = pick_topic(r)
    a = r.choice(range(40, 150, 10))
    b = r.choice(range(a + 20, 201, 10))
    rng_text = r.choice([f"between {a} and {b}", f"{a}-{b}", f"{a} to {b}"])
    kind = r.choice(["a product-style blurb", "an advert", "a short review"])
    return out(f"Write {kind} about {t[0]} that is {rng_text} characters long.",
               {"unit": "text", "characters": {"at_least": a, "at_most": b}}, t)


# ============================================================================================
# sentence_count
# ============================================================================================

@template("sentence_count/imperative_digits")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 2, 6, "sentences", "in", "d")
    return out(f"Write {text} about {t[0]}.", {"unit": "paragraph", "sentences": c}, t)


@template("sentence_count/question_words")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 6)
    how = r.choice(["{n}", "exactly {n}", "precisely {n}"]).format(n=number_word(n))
    ask = r.choice(["Could you describe {t} in {c} sentences?", "Can you tell me about {t} in {c} sentences?"])
    return out(ask.format(t=t[0], c=how), {"unit": "paragraph", "sentences": {"exactly": n}}, t)


@template("sentence_count/paragraph_of")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["exactly", "at_most", "at_least", "between"], 2, 6, "sentences", "in", numstyle(r))
    verb = r.choice(["made up of", "consisting of"])
    return out(f"Write a paragraph about {t[0]} {verb} {text}.", {"unit": "paragraph", "sentences": c}, t)


@template("sentence_count/constraint_first")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 2, 6, "sentences", "in", numstyle(r))
    verb = r.choice(["tell me about", "describe", "write about"])
    return out(f"In {text}, {verb} {t[0]}.", {"unit": "paragraph", "sentences": c}, t)


@template("sentence_count/it_should_have")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ALL_KINDS, 2, 6, "sentences", "in", numstyle(r))
    lead = r.choice(["Write about {t}.", "Write a short piece on {t}.", "Tell me about {t}."])
    return out(f"{lead.format(t=t[0])} It should have {text}.", {"unit": "paragraph", "sentences": c}, t)


@template("sentence_count/make_sure_contains")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["exactly", "at_most", "at_least", "between", "under"], 2, 6, "sentences", "in",
                           numstyle(r))
    return out(f"Write a short text about {t[0]}, and make sure it contains {text}.",
               {"unit": "paragraph", "sentences": c}, t)


@template("sentence_count/keep_to")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 6)
    shown = fmt(n, numstyle(r))
    form = r.choice(["to {n} sentences or fewer", "to no more than {n} sentences", "to at most {n} sentences",
                     "to a maximum of {n} sentences"])
    lead = r.choice(["Describe {t}, but keep it", "Write about {t} and keep it"])
    return out(f"{lead.format(t=t[0])} {form.format(n=shown)}.", {"unit": "paragraph", "sentences": {"at_most": n}}, t)


@template("sentence_count/between_range")
def _(r):
    t = pick_topic(r)
    a = r.randint(2, 4)
    b = r.randint(a + 1, 6)
    form = r.choice([f"between {a} and {b}", f"{a} to {b}", f"{a}-{b}",
                     f"between {number_word(a)} and {number_word(b)}"])
    prep = r.choice(["on", "about"])
    return out(f"Write {form} sentences {prep} {t[0]}.",
               {"unit": "paragraph", "sentences": {"at_least": a, "at_most": b}}, t)


@template("sentence_count/at_least")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 5)
    shown = fmt(n, numstyle(r))
    form = r.choice(["at least {n} sentences", "{n} or more sentences", "no fewer than {n} sentences",
                     "a minimum of {n} sentences"]).format(n=shown)
    lead = r.choice(["Give me {c} about {t}.", "I want {c} about {t}.", "Please write {c} about {t}."])
    return out(lead.format(c=form, t=t[0]), {"unit": "paragraph", "sentences": {"at_least": n}}, t)


@template("sentence_count/ought_british")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 6)
    lead = r.choice(["Please write a brief passage about {t}; it ought to be {n} sentences long.",
                     "Could you pen a brief passage on {t}? It ought to run to {n} sentences."])
    return out(lead.format(t=t[0], n=fmt(n, r.choice(["w", "d"]))), {"unit": "paragraph", "sentences": {"exactly": n}}, t)


# ============================================================================================
# per_sentence_words
# ============================================================================================

@template("per_sentence_words/no_sentence_longer")
def _(r):
    t = pick_topic(r)
    n = r.randint(6, 20)
    lead = r.choice(["Write a paragraph about {t} where no sentence is longer than {n} words.",
                     "Write about {t} in a paragraph in which no sentence is longer than {n} words."])
    return out(lead.format(t=t[0], n=fmt(n, numstyle(r, 0.3))),
               {"unit": "paragraph", "words_per_sentence": {"at_most": n}}, t)


@template("per_sentence_words/each_under")
def _(r):
    t = pick_topic(r)
    k = r.randint(2, 5)
    n = r.randint(7, 16)
    return out(f"Write {fmt(k, numstyle(r))} sentences about {t[0]}, each under {n} words.",
               {"unit": "paragraph", "sentences": {"exactly": k}, "words_per_sentence": {"at_most": n - 1}}, t)


@template("per_sentence_words/none_over")
def _(r):
    t = pick_topic(r)
    k = r.randint(2, 5)
    n = r.randint(6, 15)
    tail = r.choice(["none of them over {n} words", "and none of them over {n} words"]).format(n=n)
    sep = "," if not tail.startswith("and") else ""
    return out(f"Describe {t[0]} in {fmt(k, numstyle(r))} sentences{sep} {tail}.",
               {"unit": "paragraph", "sentences": {"exactly": k}, "words_per_sentence": {"at_most": n}}, t)


@template("per_sentence_words/each_exactly")
def _(r):
    t = pick_topic(r)
    n = r.randint(5, 12)
    lead = r.choice(["Tell me about {t} in sentences of exactly {n} words each.",
                     "Write about {t} using sentences that are exactly {n} words each."])
    return out(lead.format(t=t[0], n=fmt(n, numstyle(r))),
               {"unit": "paragraph", "words_per_sentence": {"exactly": n}}, t)


@template("per_sentence_words/keep_every")
def _(r):
    t = pick_topic(r)
    n = r.randint(6, 18)
    form = r.choice(["to {n} words or fewer", "to {n} words at most", "to no more than {n} words"])
    return out(f"Write a short paragraph on {t[0]} and keep every sentence {form.format(n=n)}.",
               {"unit": "paragraph", "words_per_sentence": {"at_most": n}}, t)


@template("per_sentence_words/question_none_longer")
def _(r):
    t = pick_topic(r)
    n = r.randint(6, 15)
    ask = r.choice(["Can you write about {t} in short sentences, none longer than {n} words?",
                    "Could you describe {t} with short sentences, none of them longer than {n} words?"])
    return out(ask.format(t=t[0], n=fmt(n, numstyle(r))),
               {"unit": "paragraph", "words_per_sentence": {"at_most": n}}, t)


@template("per_sentence_words/each_at_least")
def _(r):
    t = pick_topic(r)
    k = r.randint(2, 4)
    n = r.randint(5, 12)
    return out(f"Write {fmt(k, numstyle(r))} sentences about {t[0]}, each at least {n} words long.",
               {"unit": "paragraph", "sentences": {"exactly": k}, "words_per_sentence": {"at_least": n}}, t)


@template("per_sentence_words/maximum_british")
def _(r):
    t = pick_topic(r)
    n = r.randint(6, 18)
    lead = r.choice(["Please write a paragraph about {t}; each sentence should have a maximum of {n} words.",
                     "Please write a paragraph about {t}, and mind that each sentence has a maximum of {n} words."])
    return out(lead.format(t=t[0], n=n), {"unit": "paragraph", "words_per_sentence": {"at_most": n}}, t)


@template("per_sentence_words/each_between")
def _(r):
    t = pick_topic(r)
    k = r.randint(2, 5)
    a = r.randint(4, 10)
    b = r.randint(a + 2, a + 8)
    return out(f"Write about {t[0]} in {fmt(k, numstyle(r))} sentences, each between {a} and {b} words long.",
               {"unit": "paragraph", "sentences": {"exactly": k},
                "words_per_sentence": {"at_least": a, "at_most": b}}, t)


@template("per_sentence_words/constraint_first")
def _(r):
    t = pick_topic(r)
    n = r.randint(6, 16)
    lead = r.choice(["With no sentence over {n} words, describe {t}.",
                     "Keeping every sentence to {n} words or fewer, write about {t}."])
    return out(lead.format(t=t[0], n=fmt(n, numstyle(r, 0.3))),
               {"unit": "paragraph", "words_per_sentence": {"at_most": n}}, t)


@template("per_sentence_words/every_sentence_fewer")
def _(r):
    t = pick_topic(r)
    n = r.randint(7, 16)
    mod = r.choice(["must have", "should have", "has to have"])
    return out(f"Write a short text about {t[0]}. Every sentence {mod} fewer than {n} words.",
               {"unit": "paragraph", "words_per_sentence": {"at_most": n - 1}}, t)


# ============================================================================================
# word_position
# ============================================================================================

def _pos_word(r, t):
    return pick_words(r, POSITION_WORDS, 1, lower_set(t[1]))[0]


@template("word_position/ordinal_digits_quoted")
def _(r):
    t = pick_topic(r)
    k, w, q = r.randint(2, 8), _pos_word(r, t), quoter(r)
    return out(f"Write a sentence about {t[0]} in which the {ordinal(k, False)} word is {q(w)}.",
               {"unit": "sentence", "word_positions": {str(k): w}}, t)


@template("word_position/ordinal_words_unquoted")
def _(r):
    t = pick_topic(r)
    k, w = r.randint(2, 8), _pos_word(r, t)
    return out(f"Write a sentence about {t[0]} where the {ordinal(k, True)} word is {w}.",
               {"unit": "sentence", "word_positions": {str(k): w}}, t)


@template("word_position/with_count_hyphen")
def _(r):
    t = pick_topic(r)
    n = r.randint(8, 20)
    k, w, q = r.randint(2, n), _pos_word(r, t), quoter(r)
    return out(f"Write {article(str(n))} {n}-word sentence about {t[0]} whose {ordinal(k, False)} word is {q(w)}.",
               {"unit": "sentence", "words": {"exactly": n}, "word_positions": {str(k): w}}, t)


@template("word_position/make_sure")
def _(r):
    t = pick_topic(r)
    k, w, q = r.randint(2, 8), _pos_word(r, t), quoter(r)
    return out(f"Describe {t[0]} in one sentence. Make sure the {ordinal(k, r.random() < 0.5)} word is {q(w)}.",
               {"unit": "sentence", "word_positions": {str(k): w}}, t)


@template("word_position/question_as_word")
def _(r):
    t = pick_topic(r)
    k, w, q = r.randint(2, 8), _pos_word(r, t), quoter(r)
    ask = r.choice(["Can you give me a sentence about {t} with {w} as the {k} word?",
                    "Could you write a sentence on {t} that has {w} as its {k} word?"])
    return out(ask.format(t=t[0], w=q(w), k=ordinal(k, r.random() < 0.5)),
               {"unit": "sentence", "word_positions": {str(k): w}}, t)


@template("word_position/word_number_first")
def _(r):
    t = pick_topic(r)
    k, w, q = r.randint(2, 8), _pos_word(r, t), quoter(r)
    return out(f"Using {q(w)} as word number {k}, write a sentence about {t[0]}.",
               {"unit": "sentence", "word_positions": {str(k): w}}, t)


@template("word_position/position_n")
def _(r):
    t = pick_topic(r)
    k, w = r.randint(2, 8), _pos_word(r, t)
    q = quoter(r, "' ")
    return out(f"Write a sentence about {t[0]}, and put the word {q(w)} in position {k}.",
               {"unit": "sentence", "word_positions": {str(k): w}}, t)


@template("word_position/two_positions")
def _(r):
    t = pick_topic(r)
    k1, k2 = sorted(r.sample(range(2, 9), 2))
    w1, w2 = pick_words(r, POSITION_WORDS, 2, lower_set(t[1]))
    q = quoter(r)
    words = r.random() < 0.5
    return out(f"Write a sentence about {t[0]} where the {ordinal(k1, words)} word is {q(w1)} and the "
               f"{ordinal(k2, words)} word is {q(w2)}.",
               {"unit": "sentence", "word_positions": {str(k1): w1, str(k2): w2}}, t)


@template("word_position/with_count_words")
def _(r):
    t = pick_topic(r)
    n = r.randint(8, 15)
    k, w = r.randint(2, n), _pos_word(r, t)
    return out(f"Write a sentence of exactly {number_word(n)} words about {t[0]}; its {ordinal(k, True)} word "
               f"must be {w}.", {"unit": "sentence", "words": {"exactly": n}, "word_positions": {str(k): w}}, t)


@template("word_position/it_should")
def _(r):
    t = pick_topic(r)
    k, w, q = r.randint(2, 8), _pos_word(r, t), quoter(r)
    lead = r.choice(["I'd like a sentence on {t}. Its {k} word should be {w}.",
                     "I'd like one sentence about {t}, please. The {k} word should be {w}."])
    return out(lead.format(t=t[0], k=ordinal(k, r.random() < 0.6), w=q(w)),
               {"unit": "sentence", "word_positions": {str(k): w}}, t)


# ============================================================================================
# first_last_word
# ============================================================================================

@template("first_last_word/starts_with")
def _(r):
    t = pick_topic(r)
    w, q = r.choice(START_WORDS), quoter(r)
    return out(f"Write a sentence about {t[0]} that starts with {q(w)}.",
               {"unit": "sentence", "word_positions": {"1": w}}, t)


@template("first_last_word/begins_question")
def _(r):
    t = pick_topic(r)
    w = r.choice(START_WORDS)
    ask = r.choice(["Can you write a sentence about {t} beginning with the word {w}?",
                    "Could you give me a sentence on {t} that begins with the word {w}?"])
    return out(ask.format(t=t[0], w=w), {"unit": "sentence", "word_positions": {"1": w}}, t)


@template("first_last_word/first_word_is")
def _(r):
    t = pick_topic(r)
    w, q = r.choice(START_WORDS), quoter(r)
    tail = r.choice(["the first word must be {w}", "its first word has to be {w}", "the first word should be {w}"])
    return out(f"Describe {t[0]} in one sentence; {tail.format(w=q(w))}.",
               {"unit": "sentence", "word_positions": {"1": w}}, t)


@template("first_last_word/ends_with")
def _(r):
    t = pick_topic(r)
    w, q = r.choice(END_WORDS), quoter(r)
    return out(f"Write a sentence about {t[0]} that ends with the word {q(w)}.",
               {"unit": "sentence", "sentence_ends": {"-1": w}}, t)


@template("first_last_word/last_word")
def _(r):
    t = pick_topic(r)
    w = r.choice(END_WORDS)
    lead = r.choice(["Give me a short paragraph about {t} where the last word is {w}.",
                     "Write a short paragraph about {t}; the very last word should be {w}."])
    return out(lead.format(t=t[0], w=w), {"unit": "paragraph", "sentence_ends": {"-1": w}}, t)


@template("first_last_word/nth_sentence_ends")
def _(r):
    t = pick_topic(r)
    k = r.randint(2, 5)
    j = r.randint(1, k) if k > 2 else 2
    w, q = r.choice(END_WORDS), quoter(r)
    which = r.choice([f"the {ordinal(j, True)} sentence ends with {q(w)}", f"sentence {j} ends in {q(w)}"])
    return out(f"Write {fmt(k, numstyle(r))} sentences about {t[0]}; {which}.",
               {"unit": "paragraph", "sentences": {"exactly": k}, "sentence_ends": {str(j): w}}, t)


@template("first_last_word/sentence_n_starts")
def _(r):
    t = pick_topic(r)
    k = r.randint(2, 5)
    j = r.randint(2, k)
    w, q = r.choice(START_WORDS), quoter(r)
    which = r.choice([f"Sentence {j} starts with {q(w)}.", f"The {ordinal(j, True)} sentence should start with {q(w)}."])
    return out(f"Write {fmt(k, numstyle(r))} sentences about {t[0]}. {which}",
               {"unit": "paragraph", "sentences": {"exactly": k}, "sentence_starts": {str(j): w}}, t)


@template("first_last_word/every_sentence_starts")
def _(r):
    t = pick_topic(r)
    w, q = r.choice(SENTENCE_FIRST), quoter(r)
    lead = r.choice(["Write a short paragraph about {t} in which every sentence begins with {w}.",
                     "Write about {t} so that every sentence starts with {w}."])
    return out(lead.format(t=t[0], w=q(w)), {"unit": "paragraph", "sentence_first_word": w}, t)


@template("first_last_word/start_and_end")
def _(r):
    t = pick_topic(r)
    a, b, q = r.choice(START_WORDS), r.choice(END_WORDS), quoter(r)
    return out(f"Write a sentence about {t[0]} that starts with {q(a)} and ends with {q(b)}.",
               {"unit": "sentence", "word_positions": {"1": a}, "sentence_ends": {"-1": b}}, t)


@template("first_last_word/make_sure_end")
def _(r):
    t = pick_topic(r)
    w, q = r.choice(END_WORDS), quoter(r)
    lead = r.choice(["Tell me about {t}, and make sure your text ends with the word {w}.",
                     "Write a little about {t}. Make sure the last word is {w}."])
    return out(lead.format(t=t[0], w=q(w)), {"unit": "text", "sentence_ends": {"-1": w}}, t)


# ============================================================================================
# include
# ============================================================================================

def _inc(r, t, k):
    return pick_words(r, INCLUDE_WORDS, k, lower_set(t[1]))


@template("include/uses_quoted")
def _(r):
    t = pick_topic(r)
    ws, q = _inc(r, t, 2), quoter(r)
    return out(f"Write a sentence about {t[0]} that uses the words {q(ws[0])} and {q(ws[1])}.",
               {"unit": "sentence", "include": ws}, t)


@template("include/include_unquoted_list")
def _(r):
    t = pick_topic(r)
    ws = _inc(r, t, 3)
    return out(f"Write a short paragraph about {t[0]}. Include the words {join_and(ws)}.",
               {"unit": "paragraph", "include": ws}, t)


@template("include/mention_question")
def _(r):
    t = pick_topic(r)
    ws = _inc(r, t, 1)
    ask = r.choice(["Could you write something about {t} that mentions the word {w}?",
                    "Can you write a few words on {t} that mention {w}?"])
    return out(ask.format(t=t[0], w=ws[0]), {"unit": "text", "include": ws}, t)


@template("include/make_sure")
def _(r):
    t = pick_topic(r)
    ws, q = _inc(r, t, 1), quoter(r)
    return out(f"Describe {t[0]}, and make sure you use the word {q(ws[0])}.", {"unit": "text", "include": ws}, t)


@template("include/constraint_first")
def _(r):
    t = pick_topic(r)
    k = r.choice([2, 3])
    ws, q = _inc(r, t, k), quoter(r)
    return out(f"Using the words {join_and([q(w) for w in ws])}, write a short text about {t[0]}.",
               {"unit": "text", "include": ws}, t)


@template("include/must_contain")
def _(r):
    t = pick_topic(r)
    ws, q = _inc(r, t, 1), quoter(r)
    lead = r.choice(["Your text about {t} must contain the word {w}.",
                     "Whatever you write about {t}, it must contain the word {w}."])
    return out(lead.format(t=t[0], w=q(ws[0])), {"unit": "text", "include": ws}, t)


@template("include/oxford_list")
def _(r):
    t = pick_topic(r)
    ws = _inc(r, t, 3)
    return out(f"Tell a short story about {t[0]} that includes {join_and(ws, oxford=True)}.",
               {"unit": "text", "include": ws}, t)


@template("include/it_should")
def _(r):
    t = pick_topic(r)
    ws, q = _inc(r, t, 2), quoter(r)
    return out(f"Write a paragraph about {t[0]}. It should include the words {q(ws[0])} and {q(ws[1])}.",
               {"unit": "paragraph", "include": ws}, t)


@template("include/somewhere")
def _(r):
    t = pick_topic(r)
    ws = _inc(r, t, 1)
    lead = r.choice(["Somewhere in your description of {t}, use the word {w}.",
                     "Somewhere in a short description of {t}, use the word {w}."])
    return out(lead.format(t=t[0], w=ws[0]), {"unit": "text", "include": ws}, t)


@template("include/polite_with_in_it")
def _(r):
    t = pick_topic(r)
    ws = _inc(r, t, 2)
    return out(f"Please write a sentence on {t[0]} with the words {ws[0]} and {ws[1]} in it.",
               {"unit": "sentence", "include": ws}, t)


# ============================================================================================
# exclude
# ============================================================================================

def _exc(r, t, k):
    return pick_words(r, EXCLUDE_WORDS, k, lower_set(t[1]))


@template("exclude/dont_use")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 1), quoter(r)
    return out(f"Write a sentence about {t[0]}, but don't use the word {q(ws[0])}.",
               {"unit": "sentence", "exclude": ws}, t)


@template("exclude/avoid_pair")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 2), quoter(r)
    return out(f"Describe {t[0]} and avoid the words {q(ws[0])} and {q(ws[1])}.", {"unit": "text", "exclude": ws}, t)


@template("exclude/without_using")
def _(r):
    t = pick_topic(r)
    ws = _exc(r, t, 1)
    return out(f"Write a paragraph about {t[0]} without using the word {ws[0]}.",
               {"unit": "paragraph", "exclude": ws}, t)


@template("exclude/never_say")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 1), quoter(r)
    return out(f"Tell me about {t[0]}, and never say {q(ws[0])}.", {"unit": "text", "exclude": ws}, t)


@template("exclude/constraint_first")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 2), quoter(r)
    return out(f"Without using the words {q(ws[0])} or {q(ws[1])}, describe {t[0]}.",
               {"unit": "text", "exclude": ws}, t)


@template("exclude/question_without")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 1), quoter(r)
    return out(f"Can you write about {t[0]} without the word {q(ws[0])}?", {"unit": "text", "exclude": ws}, t)


@template("exclude/make_sure_absent")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 1), quoter(r)
    tail = r.choice(["Make sure the word {w} doesn't appear.", "Make sure the word {w} does not appear anywhere."])
    return out(f"Write a short text about {t[0]}. {tail.format(w=q(ws[0]))}", {"unit": "text", "exclude": ws}, t)


@template("exclude/banned_list")
def _(r):
    t = pick_topic(r)
    ws = _exc(r, t, 3)
    return out(f"Write a sentence about {t[0]}. Banned words: {', '.join(ws)}.", {"unit": "sentence", "exclude": ws}, t)


@template("exclude/it_should_not")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 1), quoter(r)
    return out(f"I'd like a paragraph about {t[0]}; it should not contain the word {q(ws[0])}.",
               {"unit": "paragraph", "exclude": ws}, t)


@template("exclude/please_do_not")
def _(r):
    t = pick_topic(r)
    ws, q = _exc(r, t, 1), quoter(r)
    lead = r.choice(["Please do not use the word {w} in your description of {t}.",
                     "Please refrain from using the word {w} in your description of {t}."])
    return out(lead.format(w=q(ws[0]), t=t[0]), {"unit": "text", "exclude": ws}, t)


# ============================================================================================
# word_length
# ============================================================================================

def _wl(r, lo=5, hi=9):
    n = r.randint(lo, hi)
    return n, pick_topic(r, max_len(n))


@template("word_length/no_word_longer")
def _(r):
    n, t = _wl(r)
    return out(f"Write a sentence about {t[0]} in which no word is longer than {n} letters.",
               {"unit": "sentence", "max_word_chars": n}, t)


@template("word_length/words_of_at_most")
def _(r):
    n, t = _wl(r)
    return out(f"Describe {t[0]} using only words of at most {fmt(n, numstyle(r))} letters.",
               {"unit": "text", "max_word_chars": n}, t)


@template("word_length/question_over")
def _(r):
    n, t = _wl(r)
    return out(f"Can you write about {t[0]} with no word over {n} letters?", {"unit": "text", "max_word_chars": n}, t)


@template("word_length/make_sure_or_fewer")
def _(r):
    n, t = _wl(r)
    return out(f"Write a paragraph about {t[0]}. Make sure every word has {fmt(n, numstyle(r))} letters or fewer.",
               {"unit": "paragraph", "max_word_chars": n}, t)


@template("word_length/constraint_first")
def _(r):
    n, t = _wl(r)
    return out(f"Using words no longer than {n} letters, write a sentence about {t[0]}.",
               {"unit": "sentence", "max_word_chars": n}, t)


@template("word_length/shorter_than")
def _(r):
    n, t = _wl(r, 6, 10)
    t = pick_topic(r, max_len(n - 1))
    return out(f"Write a sentence about {t[0]} where every word is shorter than {n} letters.",
               {"unit": "sentence", "max_word_chars": n - 1}, t)


@template("word_length/number_words")
def _(r):
    n, t = _wl(r)
    return out(f"Tell me about {t[0]} in words of {number_word(n)} letters or fewer.",
               {"unit": "text", "max_word_chars": n}, t)


@template("word_length/maximum_label")
def _(r):
    n, t = _wl(r)
    return out(f"Write a short text about {t[0]}; the maximum word length is {n} letters.",
               {"unit": "text", "max_word_chars": n}, t)


@template("word_length/keep_each_characters")
def _(r):
    n, t = _wl(r)
    return out(f"Write a sentence about {t[0]}, and keep each word to at most {n} characters.",
               {"unit": "sentence", "max_word_chars": n}, t)


@template("word_length/it_should_more_than")
def _(r):
    n, t = _wl(r)
    return out(f"Describe {t[0]}. It should use no word with more than {n} letters.",
               {"unit": "text", "max_word_chars": n}, t)


# ============================================================================================
# acrostic
# ============================================================================================

@template("acrostic/acrostic_of")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    return out(f"Write an acrostic poem of {w} about {tp}.", {"unit": "text", "acrostic": w}, (tp, tw))


@template("acrostic/first_letters_spell")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    t = r.choice([(tp, tw), pick_topic(r)])
    lead = r.choice(["Write a poem about {t} whose first letters spell {w}.",
                     "Write a short poem about {t} where the first letters of the lines spell {w}."])
    return out(lead.format(t=t[0], w=w), {"unit": "text", "acrostic": w}, t)


@template("acrostic/question_word_topic")
def _(r):
    w = r.choice(ACROSTICS)[0]
    ask = r.choice(["Could you write an acrostic poem for the word {w}?", "Can you make an acrostic on {w}?",
                    "Would you write me an acrostic using the word {w}?"])
    return out(ask.format(w=w), {"unit": "text", "acrostic": w}, (w.lower(), [w.lower()]))


@template("acrostic/hyphenated_letters")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    t = r.choice([(tp, tw), pick_topic(r)])
    letters = r.choice(["-", ", ", " "]).join(w)
    return out(f"Write a short poem about {t[0]} where the lines start with the letters {letters}.",
               {"unit": "text", "acrostic": w}, t)


@template("acrostic/n_line_spells_down")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    n = fmt(len(w), numstyle(r, 0.5))
    return out(f"Make {article(n)} {n}-line acrostic about {tp} that spells {w} down the left side.",
               {"unit": "text", "acrostic": w}, (tp, tw))


@template("acrostic/constraint_first")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    t = r.choice([(tp, tw), pick_topic(r)])
    return out(f"Spelling out {w} with the first letter of each line, write a poem about {t[0]}.",
               {"unit": "text", "acrostic": w}, t)


@template("acrostic/colon_fields")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    q = quoter(r)
    form = r.choice(["Acrostic poem, word: {w}, topic: {t}.", "Acrostic poem. Word: {w}. Topic: {t}."])
    return out(form.format(w=q(w), t=tp), {"unit": "text", "acrostic": w}, (tp, tw))


@template("acrostic/lowercase_casual")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    form = r.choice(["write an acrostic using the word {w} about {t}", "acrostic for {w} pls, about {t}"])
    return out(form.format(w=w.lower(), t=tp), {"unit": "text", "acrostic": w}, (tp, tw))


@template("acrostic/make_sure")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    t = r.choice([(tp, tw), pick_topic(r)])
    return out(f"Write a poem about {t[0]}, and make sure the first letters of the lines spell out {w}.",
               {"unit": "text", "acrostic": w}, t)


@template("acrostic/polite_each_line")
def _(r):
    w, tp, tw = r.choice(ACROSTICS)
    return out(f"Please write me an acrostic for {w}; each line should be about {tp}.",
               {"unit": "text", "acrostic": w}, (tp, tw))


# ============================================================================================
# lipogram
# ============================================================================================

def _lip(r, letters=None):
    letter = letters or r.choice(LIPO_LETTERS)
    return letter, pick_topic(r, no_letters(letter))


@template("lipogram/without_letter")
def _(r):
    c, t = _lip(r)
    return out(f"Write a sentence about {t[0]} without the letter {c}.", {"unit": "sentence", "avoid_letters": [c]}, t)


@template("lipogram/never_use_quoted")
def _(r):
    c, t = _lip(r)
    q = quoter(r)
    return out(f"Write a short paragraph about {t[0]} and never use the letter {q(c)}.",
               {"unit": "paragraph", "avoid_letters": [c]}, t)


@template("lipogram/named_uppercase")
def _(r):
    c, t = _lip(r)
    return out(f"Write a lipogram about {t[0]} that avoids the letter {c.upper()}.",
               {"unit": "text", "avoid_letters": [c]}, t)


@template("lipogram/question_even_once")
def _(r):
    c, t = _lip(r)
    q = quoter(r)
    return out(f"Can you describe {t[0]} without using the letter {q(c)} even once?",
               {"unit": "text", "avoid_letters": [c]}, t)


@template("lipogram/constraint_first")
def _(r):
    c, t = _lip(r)
    return out(f"Without using the letter {c}, tell me about {t[0]}.", {"unit": "text", "avoid_letters": [c]}, t)


@template("lipogram/make_sure")
def _(r):
    c, t = _lip(r)
    q = quoter(r)
    return out(f"Describe {t[0]}. Make sure the letter {q(c)} doesn't appear anywhere.",
               {"unit": "text", "avoid_letters": [c]}, t)


@template("lipogram/no_letter_in_it")
def _(r):
    c, t = _lip(r)
    q = quoter(r, "'\"")
    return out(f"Write a sentence about {t[0]} with no {q(c)} in it.", {"unit": "sentence", "avoid_letters": [c]}, t)


@template("lipogram/two_letters")
def _(r):
    a, b = r.sample(["e", "a", "o", "i", "u"], 2)
    t = pick_topic(r, no_letters(a + b))
    form = r.choice(["without the letters {a} and {b}", "without the letters {a} or {b}",
                     "never using the letters {a} and {b}"])
    return out(f"Write about {t[0]} {form.format(a=a, b=b)}.", {"unit": "text", "avoid_letters": sorted([a, b])}, t)


@template("lipogram/it_should_not")
def _(r):
    c, t = _lip(r)
    return out(f"Write a short text about {t[0]}. It should not use the letter {c} at all.",
               {"unit": "text", "avoid_letters": [c]}, t)


@template("lipogram/vowel_named")
def _(r):
    c, t = _lip(r, r.choice(["e", "a", "o", "i", "u"]))
    q = quoter(r, "'\" ")
    return out(f"Write a sentence about {t[0]} that never uses the vowel {q(c)}.",
               {"unit": "sentence", "avoid_letters": [c]}, t)


# ============================================================================================
# alliteration
# ============================================================================================

def _allit(r):
    letter = r.choice(sorted(ALLIT_TOPICS))
    return letter, r.choice(ALLIT_TOPICS[letter])


@template("alliteration/every_word_starts")
def _(r):
    c, t = _allit(r)
    q = quoter(r)
    return out(f"Write a sentence about {t[0]} in which every word starts with {q(c)}.",
               {"unit": "sentence", "word_initial": c}, t)


@template("alliteration/alliterative_with")
def _(r):
    c, t = _allit(r)
    form = r.choice(["Write an alliteration with {c} about {t}.", "Write an alliteration with the letter {C} about {t}."])
    return out(form.format(c=c, C=c.upper(), t=t[0]), {"unit": "text", "word_initial": c}, t)


@template("alliteration/tongue_twister")
def _(r):
    c, t = _allit(r)
    return out(f"Give me a tongue twister about {t[0]} where each word begins with {c.upper()}.",
               {"unit": "text", "word_initial": c}, t)


@template("alliteration/no_topic")
def _(r):
    c = r.choice(sorted(ALLIT_TOPICS))
    q = quoter(r, "'\" ")
    form = r.choice(["Write a sentence where every single word starts with the letter {c}.",
                     "Write a sentence in which every word starts with the letter {c}."])
    return out(form.format(c=q(c)), {"unit": "sentence", "word_initial": c}, None)


@template("alliteration/question_only_words")
def _(r):
    c, t = _allit(r)
    q = quoter(r)
    return out(f"Can you write something about {t[0]} using only words that begin with {q(c)}?",
               {"unit": "text", "word_initial": c}, t)


@template("alliteration/make_sure_all")
def _(r):
    c, t = _allit(r)
    return out(f"Describe {t[0]} in one sentence, and make sure all the words start with {c}.",
               {"unit": "sentence", "word_initial": c}, t)


@template("alliteration/constraint_first")
def _(r):
    c, t = _allit(r)
    q = quoter(r, "'\" ")
    return out(f"Using only words starting with {q(c)}, write about {t[0]}.", {"unit": "text", "word_initial": c}, t)


@template("alliteration/it_should")
def _(r):
    c, t = _allit(r)
    return out(f"Write a short sentence about {t[0]}. Every word in it should start with the letter {c.upper()}.",
               {"unit": "sentence", "word_initial": c}, t)


@template("alliteration/challenge_label")
def _(r):
    c, t = _allit(r)
    q = quoter(r)
    return out(f"Alliteration challenge: every word must start with {q(c)}. Topic: {t[0]}.",
               {"unit": "text", "word_initial": c}, t)


@template("alliteration/no_topic_question")
def _(r):
    c = r.choice(sorted(ALLIT_TOPICS))
    q = quoter(r)
    form = r.choice(["Could you make up a sentence using only words that start with {c}?",
                     "Can you come up with a sentence whose words all begin with {c}?"])
    return out(form.format(c=q(c)), {"unit": "sentence", "word_initial": c}, None)


# ============================================================================================
# syllables
# ============================================================================================

@template("syllables/haiku")
def _(r):
    t = pick_topic(r)
    return out(r.choice(["Write a haiku about {t}.", "Write a haiku on {t}."]).format(t=t[0]),
               {"unit": "text", "line_syllables": [5, 7, 5]}, t)


@template("syllables/haiku_polite")
def _(r):
    t = pick_topic(r)
    ask = r.choice(["Could you please compose a haiku on {t}?", "Would you be so kind as to write a haiku about {t}?",
                    "I'd love a haiku about {t}, if you don't mind."])
    return out(ask.format(t=t[0]), {"unit": "text", "line_syllables": [5, 7, 5]}, t)


@template("syllables/lines_of_listed")
def _(r):
    t = pick_topic(r)
    pat = [r.randint(3, 9) for _ in range(3)]
    return out(f"Write a three-line poem about {t[0]} with lines of {pat[0]}, {pat[1]} and {pat[2]} syllables.",
               {"unit": "text", "line_syllables": pat}, t)


@template("syllables/n_lines_of_m")
def _(r):
    t = pick_topic(r)
    n, m = r.randint(2, 6), r.randint(4, 10)
    style = numstyle(r)
    return out(f"Write {fmt(n, style)} lines of {fmt(m, style)} syllables each about {t[0]}.",
               {"unit": "text", "line_syllables": [m] * n}, t)


@template("syllables/syllable_pattern")
def _(r):
    t = pick_topic(r)
    pat = [r.randint(3, 9) for _ in range(r.randint(3, 5))]
    sep = r.choice(["-", ", "])
    return out(f"Write a poem about {t[0]} whose syllable pattern is {sep.join(map(str, pat))}.",
               {"unit": "text", "line_syllables": pat}, t)


@template("syllables/haiku_form_first")
def _(r):
    t = pick_topic(r)
    form = r.choice(["In haiku form (5-7-5), describe {t}.", "In the form of a haiku, describe {t}."])
    return out(form.format(t=t[0]), {"unit": "text", "line_syllables": [5, 7, 5]}, t)


@template("syllables/each_line_spelled")
def _(r):
    t = pick_topic(r)
    pat = [r.randint(3, 9) for _ in range(3)]
    w = [number_word(x) for x in pat]
    return out(f"Write a poem about {t[0]} in three lines: the first with {w[0]} syllables, the second with "
               f"{w[1]}, and the third with {w[2]}.", {"unit": "text", "line_syllables": pat}, t)


@template("syllables/couplet_question")
def _(r):
    t = pick_topic(r)
    m = r.randint(5, 10)
    return out(f"Can you write a couplet about {t[0]} where each line has exactly {m} syllables?",
               {"unit": "text", "line_syllables": [m, m]}, t)


@template("syllables/haiku_casual")
def _(r):
    t = pick_topic(r)
    form = r.choice(["haiku about {t} pls", "gimme a haiku abt {t}", "need a quick haiku re: {t}"])
    return out(form.format(t=t[0]), {"unit": "text", "line_syllables": [5, 7, 5]}, t)


@template("syllables/make_sure_every_line")
def _(r):
    t = pick_topic(r)
    n, m = r.randint(2, 6), r.randint(4, 10)
    return out(f"Write a {number_word(n)}-line poem about {t[0]}, and make sure every line has {number_word(m)} "
               f"syllables.", {"unit": "text", "line_syllables": [m] * n}, t)


# ============================================================================================
# rhyme
# ============================================================================================

SCHEMES = {2: ["AA"], 3: ["AAA", "ABA", "AAB"], 4: ["AABB", "ABAB", "ABBA", "ABCB", "AAAA"],
           5: ["AABBA", "ABABB", "ABAAB"], 6: ["AABBCC", "ABABCC", "ABCABC"], 7: ["ABABBCC"],
           8: ["AABBCCDD", "ABABCDCD"]}


def couplets(n: int) -> str:
    return "".join(chr(65 + i // 2) for i in range(n))


@template("rhyme/couplets_n_lines")
def _(r):
    t = pick_topic(r)
    n = fmt(r.choice([2, 4, 6, 8]), numstyle(r, 0.5))
    return out(f"Write {article(n)} {n}-line poem about {t[0]} in rhyming couplets.",
               {"unit": "text", "rhyme_scheme": couplets(int(n) if n.isdigit() else _ONES.index(n))}, t)


@template("rhyme/abab_quatrain_words")
def _(r):
    t = pick_topic(r)
    s = r.choice(["ABAB", "AABB", "ABBA"])
    return out(f"Write a four-line poem about {t[0]} with an {s} rhyme scheme.", {"unit": "text", "rhyme_scheme": s}, t)


@template("rhyme/that_rhymes")
def _(r):
    t = pick_topic(r)
    s = r.choice(SCHEMES[r.choice([4, 4, 5, 6])])
    return out(f"Write a poem about {t[0]} that rhymes {s}.", {"unit": "text", "rhyme_scheme": s}, t)


@template("rhyme/lines_1_and_2")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Write two lines about {t}; lines 1 and 2 rhyme.",
                     "Write two lines about {t} where lines 1 and 2 rhyme."])
    return out(form.format(t=t[0]), {"unit": "text", "rhyme_scheme": "AA"}, t)


@template("rhyme/question_following")
def _(r):
    t = pick_topic(r)
    s = r.choice(SCHEMES[r.choice([3, 4, 5, 6, 8])])
    return out(f"Could you write a short poem about {t[0]} following the rhyme scheme {s}?",
               {"unit": "text", "rhyme_scheme": s}, t)


@template("rhyme/quatrain_rhyming")
def _(r):
    t = pick_topic(r)
    s = r.choice(SCHEMES[4])
    return out(f"Write a quatrain about {t[0]} rhyming {s}.", {"unit": "text", "rhyme_scheme": s}, t)


@template("rhyme/every_line_rhymes")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 4)
    return out(f"Write a {number_word(n)}-line poem about {t[0]} where every line rhymes.",
               {"unit": "text", "rhyme_scheme": "A" * n}, t)


@template("rhyme/constraint_first")
def _(r):
    t = pick_topic(r)
    s = r.choice(SCHEMES[r.choice([4, 5, 6])])
    form = r.choice(["With a rhyme scheme of {s}, write a poem about {t}.",
                     "Using the rhyme scheme {s}, write a poem about {t}."])
    return out(form.format(s=s, t=t[0]), {"unit": "text", "rhyme_scheme": s}, t)


@template("rhyme/single_couplet")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Write a rhyming couplet about {t}.", "Give me a rhyming couplet on {t}."])
    return out(form.format(t=t[0]), {"unit": "text", "rhyme_scheme": "AA"}, t)


@template("rhyme/alternate_lines")
def _(r):
    t = pick_topic(r)
    return out(f"Write a four-line poem about {t[0]} where lines 1 and 3 rhyme and lines 2 and 4 rhyme.",
               {"unit": "text", "rhyme_scheme": "ABAB"}, t)


# ============================================================================================
# hashtags
# ============================================================================================

def _tags(r, k):
    return r.sample(HASHTAGS, k)


@template("hashtags/tweet_with")
def _(r):
    t = pick_topic(r)
    a, b = _tags(r, 2)
    return out(f"Write a tweet about {t[0]} with the hashtags #{a} and #{b}.", {"unit": "text", "hashtags": [a, b]}, t)


@template("hashtags/include_tag")
def _(r):
    t = pick_topic(r)
    a, = _tags(r, 1)
    return out(f"Write a short post about {t[0]} and include #{a}.", {"unit": "text", "hashtags": [a]}, t)


@template("hashtags/question_uses")
def _(r):
    t = pick_topic(r)
    a, = _tags(r, 1)
    return out(f"Can you draft a tweet about {t[0]} that uses the hashtag #{a}?", {"unit": "text", "hashtags": [a]}, t)


@template("hashtags/mention")
def _(r):
    t = pick_topic(r)
    m = r.choice(MENTIONS)
    return out(f"Write a tweet about {t[0]} that mentions @{m}.", {"unit": "text", "mentions": [m]}, t)


@template("hashtags/tag_and_hashtag")
def _(r):
    t = pick_topic(r)
    m, (a,) = r.choice(MENTIONS), _tags(r, 1)
    return out(f"Write a post about {t[0]}, tag @{m} and add #{a}.", {"unit": "text", "hashtags": [a], "mentions": [m]}, t)


@template("hashtags/caption_three")
def _(r):
    t = pick_topic(r)
    tags = _tags(r, 3)
    shown = join_and([f"#{x}" for x in tags], oxford=r.random() < 0.5)
    return out(f"Write an Instagram caption about {t[0]}; add the hashtags {shown}.",
               {"unit": "text", "hashtags": tags}, t)


@template("hashtags/constraint_first")
def _(r):
    t = pick_topic(r)
    a, = _tags(r, 1)
    return out(f"Using the hashtag #{a}, write a tweet about {t[0]}.", {"unit": "text", "hashtags": [a]}, t)


@template("hashtags/make_sure")
def _(r):
    t = pick_topic(r)
    a, b = _tags(r, 2)
    return out(f"Post idea: {t[0]}. Make sure to include #{a} and #{b}.", {"unit": "text", "hashtags": [a, b]}, t)


@template("hashtags/thank_you_to")
def _(r):
    t = pick_topic(r)
    m = r.choice(MENTIONS)
    return out(f"Write a thank-you tweet to @{m} about {t[0]}.", {"unit": "text", "mentions": [m]}, t)


@template("hashtags/british_remember")
def _(r):
    t = pick_topic(r)
    a, = _tags(r, 1)
    return out(f"Please write a social media post about {t[0]}, and remember to add the hashtag #{a}. Cheers!",
               {"unit": "text", "hashtags": [a]}, t)


# ============================================================================================
# budget
# ============================================================================================

def _budget_topic(r):
    tp, tw, gifts = r.choice(BUDGET_TOPICS)
    noun = r.choice(["items", "things"] + (["gifts", "gifts"] if gifts else ["purchases", "supplies"]))
    return (tp, tw), noun


def _total(r, items):
    return r.choice([v for v in range(10, 1001, 5) if v >= items * 5 and (v <= 200 or v % 50 == 0)])


def _cur(r, british=False):
    return r.choice(["£", "£", "€"]) if british else r.choice(["$", "$", "€", "£"])


def _bud(items, total, cur, bound, bullet=None):
    b = {"items": items, "total": total, "currency": cur, "bound": bound}
    if bullet is not None:
        b["bullet"] = bullet
    return {"unit": "text", "budget": b}


@template("budget/add_up_exactly")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    return out(f"List {fmt(n, numstyle(r, 0.3))} {noun} for {t[0]} that add up to exactly {cur}{total}.",
               _bud(n, total, cur, "exactly"), t)


@template("budget/totalling_british")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r, True)
    form = r.choice(["totalling no more than", "totalling at most", "totalling a maximum of"])
    return out(f"Give me {fmt(n, numstyle(r, 0.3))} {noun} to buy for {t[0]}, {form} {cur}{total}.",
               _bud(n, total, cur, "at_most"), t)


@template("budget/costing_under")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    form = r.choice(["costing under {c} in total", "costing less than {c} altogether",
                     "that come to under {c} in total"])
    return out(f"Suggest {fmt(n, numstyle(r, 0.3))} {noun} for {t[0]} {form.format(c=f'{cur}{total}')}.",
               _bud(n, total, cur, "under"), t)


@template("budget/colon_lines")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    fmt_txt = r.choice([f"each line written as 'name: {cur}price'", f"one per line as \"name: {cur}price\" with no dash"])
    return out(f"Make a shopping list for {t[0]} with {n} items adding up to {cur}{total}, {fmt_txt}.",
               _bud(n, total, cur, "exactly", ""), t)


@template("budget/numbered_list")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    return out(f"Write a numbered list of {n} {noun} for {t[0]}, in the form '1. name - {cur}price', that add up "
               f"to exactly {cur}{total}.", _bud(n, total, cur, "exactly", "1."), t)


@template("budget/question_at_most")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    form = r.choice(["that cost at most {c} altogether", "costing no more than {c} in total",
                     "that cost up to {c} in total"])
    return out(f"Can you pick {fmt(n, numstyle(r, 0.4))} {noun} for {t[0]} {form.format(c=f'{cur}{total}')}?",
               _bud(n, total, cur, "at_most"), t)


@template("budget/constraint_first")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    return out(f"Spending exactly {cur}{total} in total, list {fmt(n, numstyle(r, 0.4))} {noun} I need for {t[0]}.",
               _bud(n, total, cur, "exactly"), t)


@template("budget/it_should_less_than")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    return out(f"List {n} {noun} for {t[0]}. Their prices should add up to less than {cur}{total}.",
               _bud(n, total, cur, "under"), t)


@template("budget/totaling_american")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total = _total(r, n)
    form = r.choice(["totaling at most", "totaling no more than"])
    return out(f"I need {fmt(n, numstyle(r, 0.5))} {noun} for {t[0]}, {form} ${total}.",
               _bud(n, total, "$", "at_most"), t)


@template("budget/cost_exactly_together")
def _(r):
    t, noun = _budget_topic(r)
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    form = r.choice(["that cost exactly {c} together", "that together cost exactly {c}"])
    return out(f"Pick {fmt(n, numstyle(r, 0.4))} {noun} for {t[0]} {form.format(c=f'{cur}{total}')}.",
               _bud(n, total, cur, "exactly"), t)


# ============================================================================================
# paragraphs
# ============================================================================================

@template("paragraphs/n_paragraphs")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 4)
    return out(f"Write {n} paragraphs about {t[0]}.", {"unit": "paragraph", "paragraphs": {"exactly": n}}, t)


@template("paragraphs/question_words")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 4)
    return out(f"Could you write {number_word(n)} paragraphs on {t[0]}?",
               {"unit": "paragraph", "paragraphs": {"exactly": n}}, t)


@template("paragraphs/each_of_m_sentences")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 3)
    m = r.randint(1, 6 // n)
    style = numstyle(r)
    noun = "sentence" if m == 1 else "sentences"
    form = r.choice(["each of {m} {s}", "of {m} {s} each", "each with {m} {s}"])
    return out(f"Write {fmt(n, style)} paragraphs about {t[0]}, {form.format(m=fmt(m, style), s=noun)}.",
               {"unit": "paragraph", "paragraphs": {"exactly": n}, "sentences_per_paragraph": {"exactly": m}}, t)


@template("paragraphs/no_more_than")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 4)
    form = r.choice(["no more than {n} paragraphs", "at most {n} paragraphs", "{n} paragraphs or fewer"])
    return out(f"Describe {t[0]} in {form.format(n=fmt(n, numstyle(r)))}.",
               {"unit": "paragraph", "paragraphs": {"at_most": n}}, t)


@template("paragraphs/at_least")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 3)
    form = r.choice(["at least {n} paragraphs", "{n} or more paragraphs", "no fewer than {n} paragraphs"])
    return out(f"Write {form.format(n=fmt(n, numstyle(r)))} about {t[0]}.",
               {"unit": "paragraph", "paragraphs": {"at_least": n}}, t)


@template("paragraphs/make_sure_split")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 4)
    return out(f"Write about {t[0]} and make sure the text is split into {fmt(n, numstyle(r))} paragraphs.",
               {"unit": "paragraph", "paragraphs": {"exactly": n}}, t)


@template("paragraphs/constraint_first")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 3)
    m = r.randint(2, 6 // n)
    return out(f"In {number_word(n)} paragraphs of {number_word(m)} sentences each, tell me about {t[0]}.",
               {"unit": "paragraph", "paragraphs": {"exactly": n}, "sentences_per_paragraph": {"exactly": m}}, t)


@template("paragraphs/each_between")
def _(r):
    t = pick_topic(r)
    n = 2
    a = r.randint(1, 2)
    b = r.randint(a + 1, 3)
    return out(f"Write {fmt(n, numstyle(r))} paragraphs about {t[0]}; each paragraph should have between {a} and "
               f"{b} sentences.", {"unit": "paragraph", "paragraphs": {"exactly": n},
                                   "sentences_per_paragraph": {"at_least": a, "at_most": b}}, t)


@template("paragraphs/it_should_long")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 4)
    lead = r.choice(["Tell me about {t}.", "Write a short essay on {t}.", "Describe {t}."])
    return out(f"{lead.format(t=t[0])} It should be {fmt(n, numstyle(r, 0.6))} paragraphs long.",
               {"unit": "paragraph", "paragraphs": {"exactly": n}}, t)


@template("paragraphs/between")
def _(r):
    t = pick_topic(r)
    a = r.randint(2, 3)
    b = r.randint(a + 1, 4)
    form = r.choice([f"between {a} and {b}", f"{a} to {b}", f"{a}-{b}"])
    return out(f"Write {form} paragraphs about {t[0]}.",
               {"unit": "paragraph", "paragraphs": {"at_least": a, "at_most": b}}, t)


# ============================================================================================
# lines
# ============================================================================================

@template("lines/poem_of_n_lines")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 8)
    return out(f"Write a poem of {fmt(n, numstyle(r))} lines about {t[0]}.", {"unit": "text", "lines": {"exactly": n}}, t)


@template("lines/n_line_poem")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 8)
    s = fmt(n, numstyle(r, 0.6))
    return out(f"Write {article(s)} {s}-line poem about {t[0]}.", {"unit": "text", "lines": {"exactly": n}}, t)


@template("lines/at_most_lines")
def _(r):
    t = pick_topic(r)
    text, c = count_phrase(r, ["at_most", "under"], 3, 8, "lines", "in", numstyle(r))
    return out(f"Write a poem about {t[0]} in {text}.", {"unit": "text", "lines": c}, t)


@template("lines/words_per_line")
def _(r):
    t = pick_topic(r)
    n, m = r.randint(2, 8), r.randint(3, 8)
    form = r.choice(["where each line has {m} words", "in which every line has exactly {m} words",
                     "with {m} words in each line"])
    return out(f"Write {article(str(n))} {n}-line poem about {t[0]} {form.format(m=m)}.",
               {"unit": "text", "lines": {"exactly": n}, "words_per_line": {"exactly": m}}, t)


@template("lines/line_first_word")
def _(r):
    t = pick_topic(r)
    n, w, q = r.randint(3, 8), r.choice(LINE_FIRST), quoter(r)
    return out(f"Write a poem of {fmt(n, numstyle(r))} lines about {t[0]} in which every line starts with {q(w)}.",
               {"unit": "text", "lines": {"exactly": n}, "line_first_word": w}, t)


@template("lines/line_last_word")
def _(r):
    t = pick_topic(r)
    n, w, q = r.randint(2, 6), r.choice(LINE_LAST), quoter(r)
    return out(f"Write a {fmt(n, numstyle(r, 0.5))}-line poem about {t[0]} where each line ends with the word "
               f"{q(w)}.",
               {"unit": "text", "line_last_words": [w] * n}, t)


@template("lines/question_short_lines")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 8)
    return out(f"Can you write {fmt(n, numstyle(r))} short lines about {t[0]}?", {"unit": "text", "lines": {"exactly": n}}, t)


@template("lines/constraint_first")
def _(r):
    t = pick_topic(r)
    n = r.randint(2, 8)
    form = r.choice(["In exactly {n} lines, describe {t}.", "In exactly {n} lines, write about {t}."])
    return out(form.format(n=fmt(n, numstyle(r)), t=t[0]), {"unit": "text", "lines": {"exactly": n}}, t)


@template("lines/every_line_begins")
def _(r):
    t = pick_topic(r)
    w, q = r.choice(LINE_FIRST), quoter(r)
    return out(f"Write a list poem about {t[0]}; every line should begin with {q(w)}.",
               {"unit": "text", "line_first_word": w}, t)


@template("lines/lines_between")
def _(r):
    t = pick_topic(r)
    a = r.randint(2, 5)
    b = r.randint(a + 1, 8)
    return out(f"Write a poem about {t[0]} with between {a} and {b} lines.",
               {"unit": "text", "lines": {"at_least": a, "at_most": b}}, t)


@template("lines/words_per_line_at_most")
def _(r):
    t = pick_topic(r)
    n, m = r.randint(2, 8), r.randint(4, 8)
    form = r.choice(["and no more than {m} words per line", "and at most {m} words in each line"])
    return out(f"Write a poem about {t[0]} with {n} lines {form.format(m=m)}.",
               {"unit": "text", "lines": {"exactly": n}, "words_per_line": {"at_most": m}}, t)


# ============================================================================================
# combo: 2-3 constraints of different families in one request
# ============================================================================================

BASE_FAMILIES = {
    "sentence": ["word_count", "char_count", "word_position", "first_last_word", "include", "exclude",
                 "word_length", "lipogram", "alliteration"],
    "paragraph": ["word_count", "sentence_count", "per_sentence_words", "first_last_word", "include", "exclude",
                  "word_length", "lipogram", "paragraphs"],
    "poem": ["acrostic", "rhyme", "syllables", "lines", "include", "exclude", "word_length"],
    "tweet": ["hashtags", "char_count", "word_count", "include", "exclude"],
    "list": ["budget", "include", "exclude"],
}
REQUIRED = {"tweet": {"hashtags"}, "list": {"budget"}, "poem": {"acrostic", "rhyme", "syllables", "lines"}}
CONFLICTS = [{"char_count", "word_count"}, {"word_position", "first_last_word"}, {"alliteration", "include"},
             {"alliteration", "first_last_word"}, {"alliteration", "word_position"},
             {"alliteration", "lipogram"}, {"paragraphs", "sentence_count"}, {"paragraphs", "per_sentence_words"},
             {"per_sentence_words", "word_count"}, {"paragraphs", "first_last_word"}]
ORDER = ["budget", "acrostic", "rhyme", "syllables", "lipogram", "word_length", "alliteration", "lines",
         "word_position", "first_last_word", "include", "exclude", "hashtags", "sentence_count",
         "per_sentence_words", "paragraphs", "word_count", "char_count"]


class Impossible(Exception):
    pass


def _word_ok(w: str, ctx: dict) -> bool:
    lw = w.lower()
    if set(lw) & ctx["avoid"]:
        return False
    if ctx["maxlen"] is not None and len(lw) > ctx["maxlen"]:
        return False
    if ctx["initial"] and not lw.startswith(ctx["initial"]):
        return False
    return lw not in ctx["used"]


def _choose(r, pool, k, ctx):
    cands = [w for w in pool if _word_ok(w, ctx)]
    if len(cands) < k:
        raise Impossible
    ws = r.sample(cands, k)
    ctx["used"] |= lower_set(ws)
    return ws


def _frag(spec, mod, pred, inf, imp):
    return {"spec": spec, "mod": mod, "pred": pred, "inf": inf, "imp": imp}


def c_budget(r, ctx, q):
    t, noun = _budget_topic(r)
    ctx["topic"] = t
    n = r.randint(2, 6)
    total, cur = _total(r, n), _cur(r)
    bound, phrase = r.choice([("exactly", "that add up to exactly"), ("exactly", "that cost exactly"),
                              ("at_most", "totalling no more than"), ("at_most", "costing at most"),
                              ("under", "costing under"), ("under", "that come to less than")])
    ctx["base_text"] = f"a list of {fmt(n, numstyle(r, 0.3))} {noun} for {t[0]} {phrase} {cur}{total}"
    ctx["used"] |= lower_set(t[1])
    return _frag({"budget": {"items": n, "total": total, "currency": cur, "bound": bound}}, "", "", "", "")


def c_acrostic(r, ctx, q):
    w, tp, tw = r.choice(ACROSTICS)
    ctx["nlines"] = len(w)
    ctx["acro_topic"] = (tp, tw)
    return _frag({"acrostic": w}, f"whose first letters spell {w}", f"spells {w} with the first letters of its lines",
                 f"spell {w} with the first letters of its lines", f"make the first letters of the lines spell {w}")


def c_rhyme(r, ctx, q):
    n = ctx["nlines"]
    s = r.choice(SCHEMES[n])
    if r.random() < 0.5:
        return _frag({"rhyme_scheme": s}, f"with the rhyme scheme {s}", f"follows the rhyme scheme {s}",
                     f"follow the rhyme scheme {s}", f"use the rhyme scheme {s}")
    return _frag({"rhyme_scheme": s}, f"rhyming {s}", f"rhymes {s}", f"rhyme {s}", f"make it rhyme {s}")


def c_syllables(r, ctx, q):
    n = ctx["nlines"]
    if ctx["families"] & {"acrostic", "rhyme"}:
        s = r.randint(5, 9)
        return _frag({"line_syllables": [s] * n}, f"with {s} syllables in every line", f"has {s} syllables in every line",
                     f"have {s} syllables in every line", f"give every line {s} syllables")
    if n == 3:
        pat = [5, 7, 5] if r.random() < 0.5 else [r.randint(3, 9) for _ in range(3)]
        p = f"{pat[0]}, {pat[1]} and {pat[2]} syllables"
        return _frag({"line_syllables": pat}, f"with lines of {p}", f"has lines of {p}", f"have lines of {p}",
                     f"give the lines {p}")
    s = r.randint(4, 9)
    p = f"{n} lines of {s} syllables each"
    return _frag({"line_syllables": [s] * n}, f"with {p}", f"has {p}", f"have {p}", f"write {p}")


def c_lines(r, ctx, q):
    fams = ctx["families"]
    options = []
    if "acrostic" not in fams:
        options.append("first")
    if "syllables" not in fams:
        options.append("wpl")
    if not fams & {"acrostic", "rhyme", "syllables"}:
        options += ["count", "last"]
    if not options:
        raise Impossible
    kind = r.choice(options)
    if kind == "first":
        w = q(_choose(r, LINE_FIRST, 1, ctx)[0])
        spec = {"line_first_word": w.strip("'\"“”")}
        return _frag(spec, f"where every line starts with {w}", f"starts every line with {w}",
                     f"start every line with {w}", f"start every line with {w}")
    if kind == "wpl":
        m = r.randint(3, 7)
        if r.random() < 0.5:
            return _frag({"words_per_line": {"exactly": m}}, f"with exactly {m} words in each line",
                         f"has exactly {m} words in each line", f"have exactly {m} words in each line",
                         f"put exactly {m} words in each line")
        return _frag({"words_per_line": {"at_most": m}}, f"with no more than {m} words in each line",
                     f"has no more than {m} words in each line", f"have no more than {m} words in each line",
                     f"put no more than {m} words in each line")
    if kind == "count":
        n = r.randint(3, 8)
        return _frag({"lines": {"exactly": n}}, f"of exactly {n} lines", f"has exactly {n} lines",
                     f"have exactly {n} lines", f"write exactly {n} lines")
    n = r.randint(2, 5)
    w0 = _choose(r, LINE_LAST, 1, ctx)[0]
    w = q(w0)
    return _frag({"line_last_words": [w0] * n}, f"with {n} lines that all end with the word {w}",
                 f"has {n} lines that all end with the word {w}", f"have {n} lines that all end with the word {w}",
                 f"write {n} lines and end each one with the word {w}")


def c_lipogram(r, ctx, q):
    c = r.choice(LIPO_LETTERS)
    ctx["avoid"].add(c)
    shown = r.choice([c, c.upper(), q(c)])
    if r.random() < 0.5:
        return _frag({"avoid_letters": [c]}, f"without the letter {shown}", f"never uses the letter {shown}",
                     f"never use the letter {shown}", f"don't use the letter {shown}")
    return _frag({"avoid_letters": [c]}, f"without using the letter {shown}", f"avoids the letter {shown}",
                 f"avoid the letter {shown}", f"avoid the letter {shown}")


def c_word_length(r, ctx, q):
    n = r.randint(6, 9)
    ctx["maxlen"] = n
    if r.random() < 0.5:
        return _frag({"max_word_chars": n}, f"with no word longer than {n} letters", f"has no word longer than {n} letters",
                     f"have no word longer than {n} letters", f"use no word longer than {n} letters")
    return _frag({"max_word_chars": n}, f"using only words of at most {n} letters",
                 f"uses only words of {n} letters or fewer", f"use only words of {n} letters or fewer",
                 f"keep every word to {n} letters or fewer")


def c_alliteration(r, ctx, q):
    c = r.choice(sorted(ALLIT_TOPICS))
    ctx["initial"] = c
    ctx["max_words"] = 12
    s = q(c)
    return _frag({"word_initial": c}, f"in which every word starts with {s}", f"uses only words that start with {s}",
                 f"use only words that start with {s}", f"start every word with {s}")


def c_word_position(r, ctx, q):
    k = r.randint(2, 5)
    w = _choose(r, POSITION_WORDS, 1, ctx)[0]
    ctx["min_words"] = k + 2
    o = ordinal(k, r.random() < 0.5)
    return _frag({"word_positions": {str(k): w}}, f"with {q(w)} as its {o} word", f"has {q(w)} as its {o} word",
                 f"have {q(w)} as its {o} word", f"make the {o} word {q(w)}")


def c_first_last(r, ctx, q):
    kinds = ["start", "end"] + (["every"] if ctx["base"] == "paragraph" else [])
    kind = r.choice(kinds)
    if kind == "start":
        w = _choose(r, START_WORDS, 1, ctx)[0]
        return _frag({"word_positions": {"1": w}}, f"that starts with {q(w)}", f"starts with {q(w)}",
                     f"start with {q(w)}", f"start with the word {q(w)}")
    if kind == "end":
        w = _choose(r, END_WORDS, 1, ctx)[0]
        return _frag({"sentence_ends": {"-1": w}}, f"that ends with the word {q(w)}", f"ends with the word {q(w)}",
                     f"end with the word {q(w)}", f"end with the word {q(w)}")
    w = _choose(r, SENTENCE_FIRST, 1, ctx)[0]
    return _frag({"sentence_first_word": w}, f"in which every sentence starts with {q(w)}",
                 f"starts every sentence with {q(w)}", f"start every sentence with {q(w)}",
                 f"start every sentence with {q(w)}")


def c_include(r, ctx, q):
    k = r.choice([1, 1, 2, 2, 3])
    ws = _choose(r, INCLUDE_WORDS, k, ctx)
    shown = join_and([q(w) for w in ws])
    noun = "word" if k == 1 else "words"
    verb = r.choice(["use", "include"])
    return _frag({"include": ws}, f"that uses the {noun} {shown}", f"{verb}s the {noun} {shown}",
                 f"{verb} the {noun} {shown}", f"{verb} the {noun} {shown}")


def c_exclude(r, ctx, q):
    k = r.choice([1, 1, 2])
    ws = _choose(r, EXCLUDE_WORDS, k, ctx)
    noun = "word" if k == 1 else "words"
    if r.random() < 0.5:
        shown = join_and([q(w) for w in ws])
        return _frag({"exclude": ws}, f"without the {noun} {shown}", f"doesn't use the {noun} {shown}",
                     f"not use the {noun} {shown}", f"don't use the {noun} {shown}")
    shown = join_and([q(w) for w in ws], conj="or")
    return _frag({"exclude": ws}, f"without using the {noun} {shown}", f"never uses the {noun} {shown}",
                 f"never use the {noun} {shown}", f"avoid the {noun} {shown}")


def c_hashtags(r, ctx, q):
    kind = r.choice(["one", "two", "mention"])
    if kind == "one":
        a, = _tags(r, 1)
        return _frag({"hashtags": [a]}, f"with the hashtag #{a}", f"includes the hashtag #{a}",
                     f"include the hashtag #{a}", f"add the hashtag #{a}")
    if kind == "two":
        a, b = _tags(r, 2)
        return _frag({"hashtags": [a, b]}, f"with the hashtags #{a} and #{b}", f"includes #{a} and #{b}",
                     f"include #{a} and #{b}", f"add #{a} and #{b}")
    m = r.choice(MENTIONS)
    return _frag({"mentions": [m]}, f"that mentions @{m}", f"mentions @{m}", f"mention @{m}", f"tag @{m}")


def c_sentence_count(r, ctx, q):
    text, c = count_phrase(r, ["exactly", "at_most", "between", "at_least"], 2, 6, "sentences", "in", numstyle(r))
    return _frag({"sentences": c}, f"in {text}", f"has {text}", f"have {text}", f"write {text}")


def c_per_sentence(r, ctx, q):
    n = r.randint(8, 16)
    if r.random() < 0.5:
        return _frag({"words_per_sentence": {"at_most": n}}, f"with no sentence longer than {n} words",
                     f"has no sentence longer than {n} words", f"have no sentence longer than {n} words",
                     f"keep every sentence to {n} words or fewer")
    return _frag({"words_per_sentence": {"at_most": n - 1}}, f"with every sentence under {n} words",
                 f"keeps every sentence under {n} words", f"keep every sentence under {n} words",
                 f"keep every sentence under {n} words")


def c_paragraphs(r, ctx, q):
    n = r.randint(2, 3)
    ctx["min_words"] = max(ctx.get("min_words", 0), 30)
    s = fmt(n, numstyle(r))
    return _frag({"paragraphs": {"exactly": n}}, f"in {s} paragraphs", f"is split into {s} paragraphs",
                 f"be split into {s} paragraphs", f"split it into {s} paragraphs")


def c_word_count(r, ctx, q):
    lo, hi = {"sentence": (6, 25), "paragraph": (20, 60), "tweet": (10, 40)}[ctx["base"]]
    hi = min(hi, ctx.get("max_words", hi))
    lo = max(lo if "max_words" not in ctx else 5, ctx.get("min_words", 0))
    text, c = count_phrase(r, ["exactly", "at_most", "under", "between", "at_least"], lo, hi, "words", "in",
                           numstyle(r, 0.3))
    return _frag({"words": c}, f"with {text}", f"has {text}", f"have {text}", f"use {text}")


def c_char_count(r, ctx, q):
    lo, hi = {"sentence": (40, 150), "tweet": (80, 200)}[ctx["base"]]
    text, c = count_phrase(r, ["at_most", "under", "between", "at_least"], lo, hi, "characters", "in", "d", step=10)
    return _frag({"characters": c}, f"with {text}", f"has {text}", f"have {text}", f"use {text}")


COMBO_MAKERS = {"budget": c_budget, "acrostic": c_acrostic, "rhyme": c_rhyme, "syllables": c_syllables,
                "lines": c_lines, "lipogram": c_lipogram, "word_length": c_word_length,
                "alliteration": c_alliteration, "word_position": c_word_position, "first_last_word": c_first_last,
                "include": c_include, "exclude": c_exclude, "hashtags": c_hashtags,
                "sentence_count": c_sentence_count, "per_sentence_words": c_per_sentence,
                "paragraphs": c_paragraphs, "word_count": c_word_count, "char_count": c_char_count}
UNIT = {"sentence": "sentence", "paragraph": "paragraph", "poem": "text", "tweet": "text", "list": "text"}


def _pick_families(r, base) -> list[str]:
    allowed = BASE_FAMILIES[base]
    for _ in range(200):
        k = 3 if r.random() < 0.3 else 2
        fams = set(r.sample(allowed, k))
        req = REQUIRED.get(base)
        if req and not fams & req:
            continue
        if any(c <= fams for c in CONFLICTS):
            continue
        if fams & {"alliteration", "lipogram", "word_length"} and len(fams & {"alliteration", "lipogram",
                                                                               "word_length"}) > 1:
            continue  # one letter/length restriction at a time keeps topics plentiful
        return sorted(fams, key=ORDER.index)
    raise Impossible


def build_combo(r: random.Random, bases: list[str] | None = None) -> tuple[str, list[dict], dict, tuple]:
    """Base noun phrase ("a sentence about X"), fragments, merged spec, topic."""
    base = r.choice(bases or ["sentence", "sentence", "paragraph", "paragraph", "poem", "poem", "tweet", "list"])
    fams = _pick_families(r, base)
    q = quoter(r, "'\"“ ")
    ctx = {"base": base, "families": set(fams), "avoid": set(), "maxlen": None, "initial": None, "used": set()}
    if base == "poem":
        ctx["nlines"] = r.choice([2, 3, 3, 4, 4, 4, 5, 6])
    frags, spec = [], {"unit": UNIT[base]}
    topic = None
    for fam in fams:
        if topic is None and fam in ("word_position", "first_last_word", "include", "exclude", "hashtags",
                                     "sentence_count", "per_sentence_words", "paragraphs", "word_count",
                                     "char_count") and base != "list":
            topic = _combo_topic(r, ctx)
        f = COMBO_MAKERS[fam](r, ctx, q)
        f["family"] = fam
        for key, val in f["spec"].items():
            if key in spec:
                raise Impossible
            spec[key] = val
        frags.append(f)
    if base == "list":
        topic = ctx["topic"]
        base_text = ctx["base_text"]
        frags = [f for f in frags if f["family"] != "budget"]
    else:
        if topic is None:
            topic = _combo_topic(r, ctx)
        base_text = _base_text(r, base, topic, fams)
    return base_text, frags, spec, topic


def _combo_topic(r, ctx):
    if ctx["initial"]:
        if r.random() < 0.2:
            t = None
        else:
            t = r.choice(ALLIT_TOPICS[ctx["initial"]])
    else:
        def ok(ws):
            return (not any(set(w.lower()) & ctx["avoid"] for w in ws)
                    and (ctx["maxlen"] is None or all(len(w) <= ctx["maxlen"] for w in ws)))
        if "acro_topic" in ctx and ok(ctx["acro_topic"][1]) and r.random() < 0.6:
            t = ctx["acro_topic"]
        else:
            t = pick_topic(r, ok)
    if t:
        ctx["used"] |= lower_set(t[1])
    ctx["topic_set"] = True
    return t or ("", [])


def _base_text(r, base, topic, fams):
    about = f" about {topic[0]}" if topic[0] else ""
    if base == "sentence":
        return r.choice(["a sentence", "one sentence", "a single sentence"]) + about
    if base == "paragraph":
        if "paragraphs" in fams:
            return r.choice(["a short text", "a piece", "a short essay"]) + about
        if not about:
            return "a short paragraph"
        return r.choice([f"a short paragraph{about}", f"a short text{about}", f"a brief description of {topic[0]}"])
    if base == "poem":
        return r.choice(["a poem", "a short poem"]) + about
    return r.choice(["a tweet", "a short social media post"]) + about


def _combo_template(joiner):
    def fn(r):
        for _ in range(50):
            try:
                base_text, frags, spec, topic = build_combo(r)
            except Impossible:
                continue
            if not frags:
                continue
            request = joiner(r, base_text, frags)
            if request:
                return out(request, spec, topic if topic and topic[0] else None)
        raise RuntimeError("no combo could be built")
    return fn


def _j_with_and(r, base, frags):
    return f"Write {base} {join_and([f['mod'] for f in frags])}."


def _j_make_sure(r, base, frags):
    lead = r.choice(["Write {b}, and make sure it {p}.", "Write {b}. Make sure it {p}."])
    return lead.format(b=base, p=join_and([f["pred"] for f in frags], oxford=True))


def _j_numbered_rules(r, base, frags):
    style = r.choice(["{i})", "({i})", "Rule {i}:"])
    rules = " ".join(f"{style.format(i=i + 1)} {cap(f['imp'])}." for i, f in enumerate(frags))
    return f"Write {base}. {rules}" if style.startswith("Rule") else f"Write {base}. Rules: {rules}"


def _j_bullets(r, base, frags):
    mark = "*" if any(f["family"] == "budget" for f in frags) or base.startswith("a list") else r.choice(["-", "*"])
    lines = "\n".join(f"{mark} {cap(f['imp'])}" for f in frags)
    return f"Write {base}, following these rules:\n{lines}"


def _j_separate(r, base, frags):
    parts = [cap(f["imp"]) + "." for f in frags[:-1]]
    also = r.choice(["Also, ", "And ", "Oh, and "])
    parts.append(also + frags[-1]["imp"] + ".")
    return f"Write {base}. " + " ".join(parts)


def _j_semicolons(r, base, frags):
    return cap(base) + "; " + "; ".join(f["imp"] for f in frags) + "."


def _j_question(r, base, frags):
    ask = r.choice(["Could you write", "Can you write", "Would you write"])
    return f"{ask} {base} that {join_and([f['pred'] for f in frags])}?"


def _j_it_should(r, base, frags):
    if len(frags) == 2:
        tail = f"It should {frags[0]['inf']}, and it should also {frags[1]['inf']}."
    else:
        tail = "It should " + join_and([f["inf"] for f in frags], oxford=True) + "."
    return f"I need {base}. {tail}"


def _j_rules_first(r, base, frags):
    rules = join_and([f["imp"] for f in frags], oxford=True)
    lead = r.choice(["Here are the rules: {x}. Now write {b}.", "Two things first: {x}. Then write {b}."])
    if len(frags) == 3:
        lead = lead.replace("Two things first", "Three things first")
    return lead.format(x=rules, b=base)


def _j_parenthetical(r, base, frags):
    return f"Write {base} ({'; '.join(f['imp'] for f in frags)})."


for _name, _joiner in [("with_and", _j_with_and), ("make_sure", _j_make_sure), ("numbered_rules", _j_numbered_rules),
                       ("bullets", _j_bullets), ("separate_sentences", _j_separate), ("semicolons", _j_semicolons),
                       ("question", _j_question), ("it_should", _j_it_should), ("rules_first", _j_rules_first),
                       ("parenthetical", _j_parenthetical)]:
    template(f"combo/{_name}")(_combo_template(_joiner))


# ============================================================================================
# unsupported (spec null): constraints Council cannot check
# ============================================================================================

LANGUAGES = ["French", "Spanish", "German", "Italian", "Portuguese", "Japanese", "Dutch", "Swedish", "Polish",
             "Turkish"]


@template("unsupported/language")
def _(r):
    t = pick_topic(r)
    kind = r.choice(["a short paragraph", "a sentence", "a short poem", "a few words"])
    return out(f"Write {kind} about {t[0]} in {r.choice(LANGUAGES)}.", None, t)


@template("unsupported/language_reply")
def _(r):
    t = pick_topic(r)
    lang = r.choice(LANGUAGES)
    form = r.choice(["Tell me about {t}, but answer in {l}, please.", "Can you describe {t}? Reply only in {l}.",
                     "Describe {t}; the whole answer has to be in {l}."])
    return out(form.format(t=t[0], l=lang), None, t)


@template("unsupported/all_caps")
def _(r):
    t = pick_topic(r)
    how = r.choice(["in all caps", "entirely in capital letters", "in UPPERCASE", "using only capital letters",
                    "in block capitals"])
    kind = r.choice(["a sentence", "a short paragraph", "a slogan", "a message"])
    return out(f"Write {kind} about {t[0]} {how}.", None, t)


@template("unsupported/json")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Describe {t} as a JSON object.", "Give me a JSON object describing {t}.",
                     "Return a description of {t} as valid JSON.", "Output facts about {t} in JSON format."])
    return out(form.format(t=t[0]), None, t)


@template("unsupported/past_tense")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Write a paragraph about {t} using only the past tense.",
                     "Tell a story about {t}, all in the past tense.",
                     "Describe {t}, keeping every verb in the past tense."])
    return out(form.format(t=t[0]), None, t)


@template("unsupported/emoji")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Write a tweet about {t} with lots of emojis.",
                     "Write a post about {t} and put an emoji after every sentence.",
                     "Describe {t} using emojis only.", "Write something fun about {t}, full of emoji."])
    return out(form.format(t=t[0]), None, t)


@template("unsupported/markdown")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Write a short note about {t} in Markdown, with a heading and bold text.",
                     "Format a description of {t} as a Markdown table.",
                     "Write about {t} using Markdown headings.", "Describe {t} and put the key phrase in bold."])
    return out(form.format(t=t[0]), None, t)


@template("unsupported/lowercase")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Write about {t} using only lowercase letters.", "Describe {t} with no capital letters at all.",
                     "Write a sentence about {t} entirely in lower case."])
    return out(form.format(t=t[0]), None, t)


@template("unsupported/grammatical_person")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Write a paragraph about {t} in the first person.",
                     "Describe {t} in the second person, speaking directly to the reader.",
                     "Write about {t} from a third-person point of view."])
    return out(form.format(t=t[0]), None, t)


@template("unsupported/future_tense_british")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Please write about {t}, keeping everything in the future tense throughout.",
                     "Could you describe {t} in the future tense, please? Cheers.",
                     "Write a short piece on {t}; stick to the future tense throughout, ta."])
    return out(form.format(t=t[0]), None, t)


@template("unsupported/data_formats")
def _(r):
    t = pick_topic(r)
    fmt_ = r.choice(["YAML", "XML", "CSV", "HTML"])
    form = r.choice(["Write a description of {t} as {f}.", "Give me facts about {t} formatted as {f}.",
                     "Describe {t} and format the answer in {f}."])
    return out(form.format(t=t[0], f=fmt_), None, t)


@template("unsupported/passive_voice")
def _(r):
    t = pick_topic(r)
    form = r.choice(["Describe {t} using only the passive voice.", "Write about {t}, every sentence in the passive voice.",
                     "Write a paragraph about {t} without using the active voice."])
    return out(form.format(t=t[0]), None, t)


# ============================================================================================
# Generation and validation
# ============================================================================================

def generate(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    lines: list[dict] = []
    seen: set[str] = set()
    for family, name, fn in TEMPLATES:
        want = rng.randint(8, 12)
        made = 0
        for _ in range(want * 40):
            if made == want:
                break
            item = fn(rng)
            key = " ".join(item["request"].lower().split())
            if key in seen:
                continue
            seen.add(key)
            made += 1
            lines.append({"id": f"gen-{family}-{name}-{made:02d}", "request": item["request"], "family": family,
                          "template": f"{family}/{name}", "spec": item["spec"], "topic": item["topic"],
                          "topic_words": item["topic_words"]})
        if made < 8:
            raise RuntimeError(f"{family}/{name}: only {made} distinct requests")
    return lines


def _count_range(c: dict | None) -> tuple[int, int | None]:
    if c is None:
        return 0, None
    lo = c.get("exactly", c.get("at_least", 0))
    hi = c.get("exactly", c.get("at_most"))
    return lo, hi


def validate(lines: list[dict]) -> list[str]:
    """Problems found (empty when all is well)."""
    from planner.spec import ConstraintSpec

    problems = []
    ids = Counter(x["id"] for x in lines)
    problems += [f"duplicate id {i}" for i, n in ids.items() if n > 1]
    reqs = Counter(" ".join(x["request"].lower().split()) for x in lines)
    problems += [f"duplicate request {q!r}" for q, n in reqs.items() if n > 1]
    fams = Counter()
    per_template = Counter(x["template"] for x in lines)
    for tid, n in per_template.items():
        if not 8 <= n <= 12:
            problems.append(f"{tid}: {n} requests")
    for tid in per_template:
        fams[tid.split("/")[0]] += 1
    for fam, n in fams.items():
        if n < 8:
            problems.append(f"{fam}: only {n} templates")
    if len(lines) < 1500:
        problems.append(f"only {len(lines)} lines")
    for x in lines:
        spec, where = x["spec"], x["id"]
        if set(x) != {"id", "request", "family", "template", "spec", "topic", "topic_words"}:
            problems.append(f"{where}: keys {sorted(x)}")
        if (spec is None) != (x["family"] == "unsupported"):
            problems.append(f"{where}: spec null iff unsupported")
        if spec is None:
            continue
        if "topic" in spec or "genre" in spec:
            problems.append(f"{where}: spec has topic/genre")
        try:
            m = ConstraintSpec.model_validate(spec)
        except Exception as e:  # noqa: BLE001
            problems.append(f"{where}: invalid spec {spec}: {e}")
            continue
        if m.is_empty():
            problems.append(f"{where}: empty spec")
        # values a small model can satisfy
        lo, hi = _count_range(spec.get("sentences"))
        if spec.get("sentences") and (hi is None and lo > 6 or hi is not None and hi > 6):
            problems.append(f"{where}: too many sentences")
        for key, (a, b) in (("words", (5, 60)), ("characters", (20, 200)), ("lines", (1, 8))):
            if key in spec:
                lo, hi = _count_range(spec[key])
                if lo < (a if lo else 0) or (hi if hi is not None else lo) > b:
                    problems.append(f"{where}: {key} {spec[key]} outside {a}-{b}")
        if "acrostic" in spec and not 3 <= len(spec["acrostic"]) <= 7:
            problems.append(f"{where}: acrostic length")
        if "budget" in spec:
            b = spec["budget"]
            if not (2 <= b["items"] <= 6 and 10 <= b["total"] <= 1000 and b["currency"] in "$€£"):
                problems.append(f"{where}: budget values {b}")
        if "words" in spec and "word_positions" in spec:
            hi = _count_range(spec["words"])[1]
            if hi is not None and max(int(k) for k in spec["word_positions"]) > hi:
                problems.append(f"{where}: word position beyond word count")
        if "rhyme_scheme" in spec and "lines" in spec:
            problems.append(f"{where}: lines given next to a rhyme scheme")
        tw = [w.lower() for w in x["topic_words"]]
        for c in spec.get("avoid_letters", []):
            if any(c in w for w in tw):
                problems.append(f"{where}: topic word uses avoided letter {c}")
        if spec.get("word_initial") and any(not w.startswith(spec["word_initial"]) for w in tw):
            problems.append(f"{where}: topic words do not alliterate")
        if spec.get("max_word_chars") and any(len(w) > spec["max_word_chars"] for w in tw):
            problems.append(f"{where}: topic word longer than max_word_chars")
        if set(tw) & lower_set(spec.get("exclude", [])):
            problems.append(f"{where}: a topic word is excluded")
        if x["topic"] and x["topic"].lower() not in x["request"].lower():
            problems.append(f"{where}: topic phrase not in request")
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    seed = int(argv[0]) if argv else 0
    lines = generate(seed)
    problems = validate(lines)
    for p in problems:
        print("PROBLEM:", p)
    OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    with OUT_PATH.open("w", encoding="utf-8") as fh:
        for x in lines:
            fh.write(json.dumps(x, ensure_ascii=False) + "\n")
    fam = Counter(x["family"] for x in lines)
    tpl = Counter(x["template"] for x in lines)
    n_tpl = Counter(t.split("/")[0] for t in tpl)
    print(f"wrote {len(lines)} lines to {OUT_PATH}")
    print("\nper family (lines, templates):")
    for f in sorted(fam):
        print(f"  {f:20s} {fam[f]:5d} {n_tpl[f]:4d}")
    print("\nper template:")
    for t in sorted(tpl):
        print(f"  {t:48s} {tpl[t]:3d}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
