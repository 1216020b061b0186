"""Natural-language request -> what it asks (`Reading`): a ConstraintSpec, what each clause
became, and what was *not* understood.

A request is read as clauses composed from a small grammar (`planner/phrases.py`):

    [scope]      × [relation]   × [value]   × [measure]
    each sentence  at most        12          words        -> words_per_sentence <= 12
    no sentence    longer than    12          words        -> words_per_sentence <= 12
    the text       shorter than   50          characters   -> characters <= 49
    the 3rd        word is        'green'                  -> word_positions {3: green}
    the second     ends in        'sun'                    -> sentence_ends {2: sun}

plus the families that are not counts (words to use or avoid, letters to avoid, alliteration,
acrostics, syllables and haiku, rhymes, hashtags, item lists with a total). Every rule that
reads a clause *consumes* it; whatever is left is the topic, and a left-over span that still
looks like a constraint (a number, a quoted word, "letters", "rhyme", "JSON"…) is reported in
`not_understood`, so the answer's `passed` can never claim a constraint nobody checked. A reading
that is impossible or contradicts another is dropped and reported the same way, with why.

    reading = read_request("Four sentences about space, none of them longer than 8 words.")
    reading.spec.words_per_sentence  -> Count(at_most=8)
    reading.not_understood           -> []

A JSON object is taken as a spec directly.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from planner.phrases import (
    CUES, MEASURE, RELATION, SUFFIX_RELATION, Prepared, count_of, measure_of, merge,
    normalise, noun_unit, relation_of,
)
from planner.spec import Budget, ConstraintSpec, Count


class Understood(BaseModel):
    clause: str = Field(description="The words of the request, as read (numbers as digits).")
    constraint: str = Field(description="What they became.")


class Reading(BaseModel):
    """What a request asks, and how much of it was understood."""

    spec: ConstraintSpec
    understood: list[Understood] = Field(default_factory=list)
    not_understood: list[str] = Field(
        default_factory=list, description="Spans that look like constraints but no rule read them, "
        "or whose reading was impossible (with why).")
    notes: list[str] = Field(default_factory=list, description="Readings chosen where the request "
                             "was ambiguous.")


def parse_request(request: str) -> ConstraintSpec:
    """The spec a request asks for (a JSON object is read as a spec)."""
    return read_request(request).spec


def read_request(request: str) -> Reading:
    stripped = request.strip()
    if stripped.startswith("{"):
        try:
            spec = ConstraintSpec.model_validate(json.loads(stripped))
        except (json.JSONDecodeError, ValidationError) as exc:
            raise ValueError(f"invalid constraint spec: {exc}") from None
        return Reading(spec=spec, understood=[Understood(clause="(a JSON spec)", constraint=c)
                                              for c in spec.describe()])
    return _Reader(request).read()


# -- the grammar's pieces -----------------------------------------------------------------------

ORD = r"(?:\d+(?:st|nd|rd|th)|last|final|penultimate)"
VALUE = r"(?:«\d+»|[a-z0-9][\w'-]*)"
COPULA = (r"(?:(?:should|must|has to|have to|needs to|need to|will|shall|ought to|is to|are to|"
          r"can|could|would)\s+)?(?:be|is|are|being|to be|=|:|equals?|reads?|read|say|says)")
START = r"(?:starts?|begins?|opens?|starting|beginning|opening|kicks? off|leads? off|start off|begin with)"
END = r"(?:ends?|finish(?:es)?|ending|finishing|closes?|closing|concludes?|concluding|wraps? up|terminates?)"
STOP_WORDS = frozenset("""
a an the in on at of for to from by with about into onto it its is are be was were that which
who this these those and or but so as than then please thanks thank you me my your our their
his her them they we i he she some any each every all no not one per make write keep use have
ensure give let put start begin end include mention also too very really just only
respectively there here
""".split())
# Words a bare list of values ("the words copper, violin and tide") stops at: a preposition or a
# conjunction ends the list, and a verb after "and" opens a clause of its own.
BARE_STOPS = frozenset("""
a an the in on at of for to from by with about into onto that which who this these those and or
but so as than then please thanks if when while where it its is are be was were respectively
there here each every all any no not his her their my your our them him me us some much many
being getting going
""".split())
VERBS = frozenset("""
has have is are be use uses using make makes keep keeps start starts begin begins end ends avoid
avoids include includes contain contains rhyme rhymes mention mentions write give put add split
let ensure tag stay stays follow follows spell spells finish finishes close open try need needs
must should appear appears be come comes go goes sit sits show shows land lands fall falls shout thank
feature features""".split())
SCOPE_PRE = re.compile(
    r"\b(?P<q>each|every|all|both|any|no|none|not one|not a single|neither|nor)\b"
    r"(?:\s+(?:of\s+)?(?:the|your|my|these|those|its|them|which|it|of))*(?:\s+(?:single|one|last))?"
    r"(?:\s+(?P<noun>sentences?|sentance?s?|lines?|paragraphs?|words?|verses?|ones?))?")
SCOPE_POST = re.compile(
    r"^\s*(?:(?:in|for|per|of|on)\s+)?(?:each|every|a|per|every single)\s+(?P<noun>sentences?|lines?|paragraphs?|words?|verses?)\b"
    r"|^\s*(?P<each>each|apiece|per piece|in each|for each|every time)\b")
NEGATORS = {"no", "none", "not one", "not a single", "neither", "nor"}
ITEM_NOUNS = (
    r"items?|things?|products?|gifts?|presents?|snacks?|tools?|books?|ingredients?|expenses?|"
    r"purchases?|toys?|dishes?|supplies|souvenirs?|treats?|games?|foods?|drinks?|meals?|"
    r"groceries|outfits?|clothes|pieces?|accessories|gadgets?|plants?|flowers?|decorations?|"
    r"activities|ideas?|options?|entries|costs?|tickets?|apps?|subscriptions?|courses?|"
    r"lessons?|parts?|materials?|stuff|goods|essentials|picks|suggestions|recommendations|"
    r"products|services|bills|expenditures|rewards|prizes|favou?rs|desserts|plates|bottles|"
    r"wines|beers|cakes|candles|cards|novels|albums|records|shirts|shoes|bags|tours|trips")
MONEY = (r"(?P<cur>[$€£])\s?(?P<amt>\d+(?:\.\d\d)?)|(?P<amt2>\d+(?:\.\d\d)?)\s*(?P<cur2>[$€£])"
         r"|(?P<amt3>\d+(?:\.\d\d)?)\s*(?P<unit>dollars?|bucks|usd|euros?|eur|pounds?|quid|gbp)\b")
CURRENCY = {"dollar": "$", "buck": "$", "usd": "$", "euro": "€", "eur": "€", "pound": "£",
            "quid": "£", "gbp": "£"}
GENRES = (r"sentences?|sentance|paragraphs?|passage|poem|poems|haiku|haikus|limerick|tweet|"
          r"story|short story|description|slogan|tagline|caption|bio|review|email|e-mail|message|"
          r"note|toast|riddle|joke|list|text|answer|response|post|ad|advert|advertisement|blurb|"
          r"summary|verse|couplet|card|speech|motto|quote|greeting|invitation|reply|"
          r"statement|announcement|product description|title|thank-you note|wish|piece|rhyme|song|lyrics?")
FILLERS = re.compile(
    r"\b(?:please|pls|plz|thanks|thank you|thx|could you|can you|would you|will you|would you mind|"
    r"i need|i want|i'd like|i would like|i'm looking for|help me|for me|kindly|just|quickly|"
    r"write|writes|wrote|give me|give|generate|compose|create|draft|make|produce|craft|come up with|"
    r"suggest|list|provide|prepare|put together|jot down|tell me|show me|send me|share|"
    r"some|something|hey|hi|hello|ok|okay|now|maybe|possibly|short|brief|little|quick|nice|simple|"
    r"cute|funny|lovely|good|new|a|an|the|one|that|which|is|it|and|also|then|so|me|us|"
    r"what|who|where|when|why|how|whats|what's|do|does|did|are|was|were|i|you|we|my|your)\b")


@dataclass
class _Record:
    """One clause read: its span, what it became, and the spec fields it set."""

    span: tuple[int, int]
    clause: str
    constraint: str
    updates: dict[str, Any] = field(default_factory=dict)


class _Reader:
    def __init__(self, request: str):
        self.original = request
        self.prep: Prepared = normalise(request)
        self.text = self.prep.text            # as read: numbers as digits, quotes as «k»
        self.work = self.text                 # consumed spans blanked out
        self.records: list[_Record] = []
        self.notes: list[str] = []
        self.refused: list[str] = []
        self.unit = "text"
        self.genre: str | None = None
        self.topic_hint: str | None = None       # an item list's things ("3 gifts" -> "gifts"), when no "about"
        self.plural: list[tuple[int, str]] = []   # (position, unit) of plural unit counts, for "them"

    # -- bookkeeping ------------------------------------------------------------------------
    def consume(self, start: int, end: int) -> None:
        self.work = self.work[:start] + "\x00" * (end - start) + self.work[end:]

    def take(self, start: int, end: int, constraint: str, **updates) -> None:
        self.records.append(_Record((start, end), self.text[start:end].strip(), constraint, updates))
        self.consume(start, end)

    def value(self, token: str) -> str:
        return self.prep.value(token)

    def clause_bounds(self, start: int, end: int) -> tuple[int, int]:
        """The comma/semicolon clause around a span."""
        left = max(self.text.rfind(c, 0, start) for c in ",;.!?:\n()")
        rights = [i for i in (self.text.find(c, end) for c in ",;.!?\n()") if i != -1]
        return left + 1, (min(rights) if rights else len(self.text))

    def read_values(self, pos: int, k: int | None = None, bare: bool = True,
                    explicit: bool = False) -> tuple[list[str], int]:
        """Values from `pos` on: quoted ones, or bare words when `bare`, separated by commas,
        "and", "or", "&" (k of them when k is given). Returns (values, end position). Bare
        words stop at a word that opens a clause of its own ("… and has 20 words")."""
        values, end = [], pos
        item = re.compile(r"\s*(?:(?P<q>«\d+»)|(?:(?:the|a|an)\s+)?(?P<w>[a-z0-9#@][\w'-]*))")
        sep = re.compile(r"\s*(?:,\s*(?:and|or|&)?|and|or|&|/|\+)\s*")
        p, quoted = pos, False
        while k is None or len(values) < k:
            m = item.match(self.work, p)
            if not m:
                break
            if m.group("w"):
                word = m.group("w")
                if m.group(0).strip() != word and not values:
                    break  # an article before the first value: "avoid the sea" is no list
                named = explicit and not values and word not in ("and", "or")  # "the word every"
                if not named and (not bare or quoted or word in BARE_STOPS or word in VERBS):
                    break
                nxt = re.match(r"\s*([a-z][\w'-]*)", self.work[m.end():])
                if values and k is None and nxt and nxt.group(1) not in BARE_STOPS and nxt.group(1) != "respectively":
                    break  # "…, too cliche", "…, everyone says": a new clause, not a list item
            else:
                quoted = True
            values.append(self.value(m.group("q") or m.group("w")))
            end = m.end()
            s = sep.match(self.work, end)
            if not s:
                break
            p = s.end()
        m = re.match(r"\s*,?\s*respectively\b", self.work[end:])
        if m:
            end += m.end()
        return values, end

    # -- reading ---------------------------------------------------------------------------
    def read(self) -> Reading:
        for rule in (self.framing, self.notes_on_counting, self.hashtags, self.budget, self.acrostic,
                     self.syllables, self.rhyme, self.lipogram, self.alliteration, self.positions,
                     self.value_first_positions, self.verb_first_edges, self.edges, self.word_length, self.counts, self.exclude, self.include,
                     self.count_nouns, self.units):
            rule()
        self.glue()
        topic = self.topic()
        spec, understood = self.assemble(topic)
        return Reading(spec=spec, understood=understood, not_understood=self.refused + self.leftovers(),
                       notes=list(dict.fromkeys(self.notes)))

    def framing(self) -> None:
        """Words that frame a list of rules but are none ("Rules: (1) … (2) …")."""
        for m in re.finditer(r"\b(?:here (?:are|is) (?:the|my|some|your)\s+)?(?:(?:\d+|a|my|the|some|just|only)\s+)?(?:rules?|requirements?|constraints?|conditions?|instructions?|catch|twist|restrictions?|challenge)(?:\s+\d+)?\s*:"
                             r"|\(\d{1,2}\)|\b(?:\d+|a few|some|a couple of) (?:things|rules) (?:1st|first)\s*:"
                             r"|\b(?:then|now|after that)\s+(?=write|give|make|compose|create|draft|list)", self.work):
            self.consume(m.start(), m.end())

    def notes_on_counting(self) -> None:
        for m in re.finditer(r"\b(?:include|including|count|counting|with)\s+(?:the\s+)?(?:whitespace|spaces?)"
                             r"(?:\s+(?:into|in|as part of)\s+(?:your|the)\s+(?:character|char)\s+count)?", self.work):
            self.take(m.start(), m.end(), "spaces count as characters")
        for m in re.finditer(r"\b(?:spaces|whitespace|punctuation)\s+(?:included|count|counts|counted)\b", self.work):
            self.take(m.start(), m.end(), "spaces count as characters")

    def hashtags(self) -> None:
        tags, people = [], []
        for m in re.finditer(r"(?:\b(?:the\s+)?hashtags?\s+)?(?<![\w#])#(?!\d+\b)(\w+)", self.work):
            tags.append(m.group(1))
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:the\s+)?hashtags?\s+(?!«)", self.work):
            values, end = self.read_values(m.end())
            if values:
                tags += [v.lstrip("#") for v in values]
                self.consume(m.start(), end)
        for m in re.finditer(r"(?:\b(?:tag|tagging|mention|mentioning|mentions|shout-?out to)\s+)?(?<![\w@])@(\w+)", self.work):
            people.append(m.group(1))
            self.consume(m.start(), m.end())
        m = re.search(r"\b(?:hashtags?|tags?)\s+«\d+»", self.work)
        if m:
            values, end = self.read_values(m.start() + m.group(0).index("«"))
            tags += [v.lstrip("#") for v in values]
            self.consume(m.start(), end)
        tags = [self.cased("#", t) for t in tags]
        people = [self.cased("@", t) for t in people]
        for m in re.finditer(r"\b(?:these|the following|those|some|the|two|2|three|3)?\s*(?:hashtags?|tags|mentions?|handles?)\s*(?:it\s+)?(?:with\s+|should be\s+|is\s+|are\s+|:\s*)?(?=\x00)", self.work):
            self.consume(m.start(), m.end())
        if tags:
            self.records.append(_Record((0, 0), " ".join("#" + t for t in tags),
                                        "includes " + " ".join("#" + t for t in tags), {"hashtags": tags}))
        if people:
            self.records.append(_Record((0, 0), " ".join("@" + t for t in people),
                                        "mentions " + " ".join("@" + t for t in people), {"mentions": people}))
        for m in re.finditer(r"\b(?:with|include|including|add|adding|use|using|and|plus)\s+(?:the\s+)?(?:a\s+)?(?=\x00)", self.work):
            self.consume(m.start(), m.end())

    def cased(self, sign: str, tag: str) -> str:
        """A hashtag or handle as the user wrote it (#MondayMotivation, not #mondaymotivation)."""
        m = re.search(rf"{re.escape(sign)}({re.escape(tag)})(?!\w)", self.original, re.I)
        return m.group(1) if m else tag

    def budget(self) -> None:
        money = list(re.finditer(MONEY, self.work))
        if not money:
            return
        found = list(re.finditer(rf"\b(?P<n>\d+)\s+(?:[a-z'-]+\s+){{0,3}}?(?P<noun>{ITEM_NOUNS})\b(?!\s*(?:1st|first)\s*:)", self.work))
        if not found:
            found = list(re.finditer(r"\b(?P<n>\d+)\s+(?P<noun>of\s+them)\b", self.work))
        if not found:  # any plural noun counted near an amount: "3 houseplants", "6 stocking fillers"
            found = [f for f in re.finditer(r"\b(?P<n>\d+)\s+(?:[a-z'-]+\s+){0,2}?(?P<noun>[a-z]{3,}(?:s|es))\b", self.work)
                     if not re.fullmatch(r"words?|lines?|sentences?|characters?|letters?|syllables?|paragraphs?|"
                                         r"dollars?|euros?|pounds?|bucks|quid|years?|days?|hours?|minutes?|times|"
                                         r"percent|cents?|pence|people|persons|guests", f.group("noun"))]
        if not found:
            return
        m = money[-1] if len(money) > 1 and not re.search(r"total|sum|add|altogether|together", self.work[:money[0].start()]) else money[0]
        items = min(found, key=lambda f: abs(f.start() - m.start()))
        amount = float(m.group("amt") or m.group("amt2") or m.group("amt3"))
        cur = m.group("cur") or m.group("cur2") or CURRENCY.get((m.group("unit") or "dollar").rstrip("s"), "$")
        before = self.work[max(0, m.start() - 45): m.start()]
        after = self.work[m.end(): m.end() + 20]
        bound = "exactly"
        if re.search(r"(?:add(?:s|ing)? up to|adds? to|sum(?:s|ming)?(?: up)? to|come to|coming to|total(?:ling|ing|s|led)?(?: of)?|exactly|precisely)\s*$", before):
            pass
        elif re.search(r"(?:under|less than|below|cheaper than|lower than|beneath)\s*(?:a total of\s*)?$", before):
            bound = "under"
        elif re.search(r"(?:at most|no more than|not more than|up to|max(?:imum)?(?: of)?|within|not exceed(?:ing)?|"
                       r"on a budget of|within a budget of|don'?t exceed|without going over)\s*(?:a total of\s*)?$", before) \
                or re.match(r"\s*(?:or less|max|at most|or under|tops)\b", after):
            bound = "at_most"
        n = int(items.group("n"))
        bullet = "-"
        fmt = None
        for q in re.finditer(r"«(\d+)»|\b(?:format(?:ted)?\s*(?::|as|like)|(?:write|list|put|give|show)\s+(?:each\s+(?:one|item|line|thing)\s+)?(?:as|like))\s*(?P<bare>[^,.;\n«]*?(?:price|cost|amount|[$€£])\w*)", self.work):
            shown = self.prep.quotes[int(q.group(1))] if q.group(1) else q.group("bare")
            if re.search(r"price|cost|amount|[$€£]|\bx+\b", shown, re.I) and re.search(r"name|item|thing|gift|\w+", shown, re.I):
                fmt = q
                bullet = "1." if re.match(r"\s*\d[.)]", shown) else "-" if re.match(r"\s*[-*•]", shown) else ""
        if re.search(r"\bnumbered\b", self.work):
            bullet = "1."
        elif re.search(r"\b(?:no|without)\s+(?:dashes|bullets|bullet points)\b", self.work):
            bullet = ""
        try:
            budget = Budget(items=n, total=amount, currency=cur, bound=bound, bullet=bullet)
        except ValidationError as exc:
            self.refused.append(f"{self.text[items.start():m.end()]} ({_reason(exc)})")
            self.consume(items.start(), items.end())
            self.consume(m.start(), m.end())
            return
        self.records.append(_Record((items.start(), m.end()), f"{self.text[items.start():items.end()]} … "
                                    f"{self.text[m.start():m.end()]}", budget.describe(), {"budget": budget}))
        self.topic_hint = self.text[items.start():items.end()]
        self.topic_hint = re.sub(r"^\d+\s+", "", self.topic_hint)
        self.consume(items.start(), items.start() + len(items.group("n")))
        self.consume(items.start("noun"), items.end("noun"))
        tail = re.match(r"\s+(?:to (?:buy|get|pick|bring|pack|order|purchase))\b", self.work[items.end("noun"):])
        if tail:
            self.consume(items.end("noun"), items.end("noun") + tail.end())
        self.consume(m.start(), m.end())
        for pat in (r"(?:that\s+|which\s+)?(?:(?:together|in total|altogether|add(?:s|ing)? up to|sum(?:s|ming)?(?: up)? to|"
                    r"total(?:s|ling|ing|led|ed)?(?: of| at)?|come to|coming to|cost(?:s|ing)?(?: a total of| exactly| in total| altogether)?|"
                    r"for a total of|a total of|budget(?: of| is|:)?|spend(?:ing)?(?: exactly)?|worth|priced at|"
                    r"under|less than|below|cheaper than|at most|no more than|not more than|up to|max(?:imum)?(?: of)?|within|"
                    r"not exceed(?:ing)?|on a budget of|don'?t exceed|without going over|exactly|precisely)\s*)+(?=\x00)",
                    r"(?<=\x00)\s*(?:in total|total|altogether|or less|max|at most|or under|tops|combined|overall|all together|exactly)\b",
                    r"\b(?:one|1|each) (?:per|on (?:a|its own|each)) line\b|\bon separate lines\b|\bone per line\b|\beach on (?:its own|a new|a separate) line\b",
                    r"\b(?:(?:each|every) (?:line|item|entry) (?:(?:is |should be |must be )?(?:written|formatted|laid out) )?)?(?:in the format|formatted as|in the form|like|as|format:?|using the format)\s+(?=«)",
                    r"\b(?:a\s+)?(?:numbered|bulleted|bullet)\s+(?:list|points?)\b|\bwith (?:their |the |a )?prices?\b|\bwith (?:their |the |a )?costs?\b|\bprices? (?:for|of) each\b|\bwith (?:the )?amounts?\b",
                    r"\(\s*1\.?\s*,\s*2\.?\s*(?:,\s*3\.?\s*)?(?:,?\s*(?:\.\.\.|…|etc\.?))?\s*\)",
                    r"\b(?:items?|budget|total|things)\s*:\s*(?=\x00|\d)",
                    r"\b(?:(?:make|have|let)\s+)?(?:the\s+)?(?:prices?|costs?|amounts?)\s+(?:should\s+|must\s+)?(?:add up to|sum to|total|come to)\s+exactly\s+(?:the budget|that(?: much| amount)?|it)\b"
                    r"|\b(?:that\s+)?(?:cost|costs|add up to|total|come to)?\s*exactly\s+(?:that much|that amount|the budget|this amount)(?:\s+(?:together|in total|altogether))?\b",
                    r"(?:\b(?:whose|with a|with|the|a|for a|and a|that|which)\s+)?(?:total|sum|combined cost|overall cost|grand total)(?:\s+(?:is|of|cost|price|comes to|must be|should be|stays))?\s*(?=\x00)"):
            for mm in re.finditer(pat, self.work):
                self.consume(mm.start(), mm.end())
        if fmt is not None:
            self.consume(fmt.start(), fmt.end())

    ACROSTIC_MENTION = re.compile(
        r"\bacrostic|\b(?:1st|first|initial|starting|opening)\s+(?:letters?|leters)\b[^.;]{0,40}?\b(?:spell|spells|spelling|read|reads|form|gives)"
        r"|\b(?:spell|spells|spelling)\b[^.;]{0,60}?\b(?:1st|first|initial)\s+(?:letters?|leters)|\bdown\s+the\s+(?:left\s+)?(?:side|margin)"
        r"|\blines?\b[^.;]{0,30}?\b(?:start|begin|starting|beginning)s?\s+with\s+(?:the|a)\s+letters?\s+(?:of|in|from)"
        r"|\bspell(?:s|ing)?\s+(?:out\s+)?(?:my|his|her|the|our|their|your)\s+(?:\w+\s+)?(?:name|word)"
        r"|\binitials\s+of\s+(?:each|every|the)\s+lines?|\bletters?\s+of\s+(?:her|his|my|their|the|your|our)\s+(?:\w+\s+)?name")

    def acrostic(self) -> None:
        """An acrostic: where the request says so, the word to spell is the one the user marked
        (in capitals, quotes or spaced letters, or the name they give), else the one the
        patterns find after "of", "for", "spelling"…"""
        mention = self.ACROSTIC_MENTION.search(self.work)
        marked = self.marked_word() if mention else None
        self._acrostic_by_pattern()
        chosen = next((r for r in self.records if "acrostic" in r.updates), None)
        if marked is None or (chosen is None and not mention):
            return
        word, spans = marked
        if chosen is not None:
            if chosen.updates["acrostic"].lower() == word.lower():
                for a, b in spans:
                    self.consume(a, b)
                self.acrostic_glue()
                return
            self.records.remove(chosen)  # the patterns found another word than the one marked
        start = min(a for a, _ in spans)
        end = max(b for _, b in spans)
        self.records.append(_Record((start, end), word, f"lines start with the letters of {word.upper()}",
                                    {"acrostic": word.upper()}))
        for a, b in spans:
            self.consume(a, b)
        self.genre = self.genre or "acrostic poem"
        self.acrostic_glue()

    def marked_word(self) -> tuple[str, list[tuple[int, int]]] | None:
        """The word a user marked to be spelled: one word in capitals, or in quotes, or given
        letter by letter ("S-T-A-R", "K I W I"), or a name they give ("my name is Omar")."""
        caps = [w for w in re.findall(r"\b[A-Z]{2,12}\b", self.original)
                if not _is_scheme(w) and w not in ("OK", "TV", "USA", "UK", "PS", "LOL", "PLS", "AM", "PM")]
        if len(set(caps)) == 1:
            low = caps[0].lower()
            spans = [mm.span() for mm in re.finditer(rf"\b{low}\b", self.work)]
            if spans:
                return caps[0], spans
        seq = re.search(r"(?<![\w'])(?P<s>[a-z](?:(?:\s*[,.-]\s*|\s+)[a-z](?![\w'])){2,11})", self.work)
        if seq:
            word = re.sub(r"[^a-z]", "", seq.group("s"))
            return word.upper(), [seq.span("s")]
        quoted = [q for q in re.finditer(r"«(\d+)»", self.work) if self.prep.quotes[int(q.group(1))].isalpha()
                  and 2 <= len(self.prep.quotes[int(q.group(1))]) <= 12]
        if len(quoted) == 1:
            return self.prep.quotes[int(quoted[0].group(1))], [quoted[0].span()]
        m = re.search(r"\b(?:my|her|his|our|their)\s+(?:\w+'?s\s+)?name(?:\s+is|'s|\s*,|\s*:|\s+it'?s)?\s*,?\s*(?:it'?s\s+)?([A-Z][a-z]{1,11})\b"
                      r"|\b(?:named|called)\s+([A-Z][a-z]{1,11})\b", self.original)
        if m:
            name = m.group(1) or m.group(2)
            spans = [mm.span() for mm in re.finditer(rf"\b{name.lower()}\b", self.work)]
            if spans:
                return name, spans
        return None

    def acrostic_glue(self) -> None:
        """The words around an acrostic's word that only say where it goes."""
        for m in re.finditer(
                r"\b(?:using|with|of|for|from|in|spelling|spell|spells|use|is)\s+(?:out\s+)?(?:the\s+)?(?:letters?\s+(?:of|in)\s+)?"
                r"(?:(?:my|our|his|her|their|the|a|your)\s+)?(?:[a-z]+'s\s+|[a-z]+s'\s+)?(?:[a-z]+\s+)?(?:name|word|letters|colour|color)\b(?:\s+of\s+(?:my|our|his|her|their|the)\s+[a-z]+)?\s*(?:is\s+|:\s*|,\s*)?(?:it'?s\s+)?(?=\x00)"
                r"|(?<=\x00)\s*,?\s*(?:going|running|written|reading)?\s*(?:down|vertically)(?:\s+the\s+(?:left\s+)?(?:side|margin|edge))?"
                r"|\b(?:as\s+)?the\s+(?:1st|first|initial|starting)\s+(?:letters?|leters)\s+of\s+(?:each|every|the|its)\s+lines?"
                r"|\bwith\s+the\s+(?:1st|first|initial)\s+letters?\s+of\s+(?:each|every|the)\s+lines?(?:\s+spelling)?"
                r"|\b(?:each|every)\s+line\s+(?:starting|beginning|starts|begins)\s+with\s+a\s+letter\s+of\s+(?:her|his|my|their|the|your|our)\s+name"
                r"|\b(?:the\s+)?initials\s+of\s+(?:each|every|the)\s+lines?\s*:?"
                r"|\b(?:one\s+of\s+those\s+poems\s+)?where\s+the\s+lines\s+start\s+with\s+the\s+letters\s+of\s+a\s+word"
                r"|\b(?:the\s+)?(?:vertical|hidden)\s+word\b|\bletters\b(?=\s*\x00)|\bword\b(?=\s*\x00)|"
                r"\b(?:the\s+)?(?:word|name)\s+(?:is|will be|should be|:)\s*:?\s*(?=\x00)|\b(?:make|write|do|get)\s+(?:me\s+)?(?:an?\s+)?acrostic(?:\s+poem)?\b"
                r"|\b(?:an?\s+)?acrostic(?:\s+poem)?\b", self.work):
            self.consume(m.start(), m.end())

    def _acrostic_by_pattern(self) -> None:
        letters = r"(?:(?P<seq>[a-z](?:(?:\s*,\s*|\s+|\s*-\s*|\.\s*)(?:and\s+)?[a-z](?![\w'])){1,15})\.?(?![\w'])|(?P<v>«\d+»|[a-z]+))"
        patterns = [
            rf"acrostic(?:\s+poem)?\s+(?:of|for|on|spelling(?:\s+out)?|using|with|that spells(?:\s+out)?)\s+(?:the\s+)?(?:(?:word|name|letters?)\s+)?(?:(?:of|in)\s+)?(?:the\s+(?:word|name)\s+)?{letters}",
            rf"(?:1|a|each|every)\s+line\s+(?:per|for each|for every|for every single)\s+letter\s+(?:of|in)\s+(?:the\s+(?:word|name)\s+)?{letters}",
            rf"(?:the\s+)?1st letters?\s+(?:of\s+)?(?:the|each|every|all)?\s*(?:the\s+)?lines?\s+(?:should |must |will |to )?(?:spells?|spell|reads?|read|form|make)\s+(?:out\s+)?(?:the\s+(?:word|name)\s+)?{letters}",
            rf"lines?\s+(?:should |must |that |which |will )?(?:starts?|begins?|starting|beginning)\s+with\s+(?:the\s+)?letters?\s+(?:(?:of|in|from)\s+)?(?:the\s+(?:word|name)\s+)?{letters}",
            rf"{letters}\s+as\s+an\s+acrostic",
            rf"acrostic\s+(?:poem\s+)?(?:where|in which|whose|that|which)\s+[^.;]*?(?:spell|spells|read|reads)\s+(?:out\s+)?{letters}",
            rf"(?:spells?|spelling)\s+(?:out\s+)?{letters}\s+(?:down|with|using|in|through|along)\s+(?:the\s+)?(?:side|left side|left|1st letters?|initials|initial letters?|first letters?|starting letters?|opening letters?)(?:\s+of\s+(?:each|every|the|its|your|all)\s+(?:the\s+)?lines?)?",
            rf"acrostic[^«.;]{{0,30}}?[.,;:]?\s*(?:word|name|letters|spelling)\s*(?::|is|=|-)\s*{letters}",
            r"acrostic\s+(?:poem\s+)?(?P<v2>«\d+»)",
            rf"(?:each|every|all)\s+(?:the\s+)?lines?\s+(?:must |should |will |to |has to |have to )?(?:starts?|begins?|opens?)\s+with\s+(?:a|the|one)\s+letters?\s+(?:of|from|in)\s+(?:the\s+(?:word|name)\s+)?{letters}(?:,?\s+in\s+order)?",
            rf"(?:with\s+)?{letters}\s+(?:running\s+|written\s+)?down\s+the\s+(?:left\s+)?(?:side|margin|edge)",
            rf"acrostic(?:\s+poem)?\s*(?::|-|,)\s*(?:spelling\s+(?:out\s+)?|for\s+|word\s*:?\s*)?{letters}",
            rf"(?:(?:whose|with|where the|the|its)\s+)?(?:1st|initial|first|starting|opening)\s+letters?\s+(?:should\s+|will\s+|must\s+)?(?:spell|spells|read|reads|form|forms)\s+(?:out\s+)?{letters}",
            r"lines?\b[^.;«]{0,30}?\b(?:start|begin|starts|begins|starting|beginning)\s+with\s+(?:the\s+letters\s+)?(?P<seq2>[a-z](?:(?:\s*,\s*|\s+|\s*-\s*)(?:and\s+)?[a-z](?![\w'])){2,15})",
            rf"(?:each|every)\s+line'?s\s+(?:1st|first|initial|starting|opening)\s+letters?\s+(?:should\s+|must\s+|will\s+)?(?:spell|spells|read|reads|form|forms|make)\s+(?:out\s+)?{letters}",
            rf"reading\s+down\s+the\s+(?:1st|first|initial)\s+letters?\s+(?:gives|spells|reads|shows)\s+{letters}",
            rf"(?:use|using)\s+the\s+letters\s+(?:of\s+)?{letters}\s+to\s+(?:start|begin)\s+(?:each|every|the)\s+lines?",
            rf"{letters}\s+(?:can|should|must|will)\s+be\s+read\s+(?:vertically|down(?:wards)?)\s+(?:in|from|using)\s+the\s+(?:1st|first|initial)\s+letters",
            rf"(?<=acrostic)[^.;«]{{0,40}}?[.;,]\s*the\s+(?:word|name)\s+(?:is|will be|should be|:)\s*{letters}",
            r"(?<!\d-)(?<!\d )(?P<v3>«\d+»|[a-z]+)\s+acrostic",
        ]
        for pattern in patterns:
            m = re.search(pattern, self.work)
            if not m:
                continue
            if m.groupdict().get("seq") or m.groupdict().get("seq2"):
                seq = m.groupdict().get("seq") or m.groupdict().get("seq2")
                word = re.sub(r"[^a-z]|\band\b", "", seq.replace(" and ", " "))
            else:
                token = next((m.group(g) for g in ("v", "v2", "v3") if g in m.groupdict() and m.group(g)), None)
                if token is None:
                    continue
                word = self.value(token).replace(" ", "").replace("-", "").replace(".", "").replace(",", "")
            if not word.isalpha() or word.lower() in STOP_WORDS | {"poem", "poetry", "line", "lines", "short", "little", "fun", "an"}:
                continue
            self.take(m.start(), m.end(), f"lines start with the letters of {word.upper()}", acrostic=word.upper())
            self.genre = self.genre or "acrostic poem"
            for again in patterns:  # the same acrostic said twice ("… the letters of SUN")
                for mm in re.finditer(again, self.work):
                    self.consume(mm.start(), mm.end())
            for mm in re.finditer(r"\b(?:an?\s+)?acrostic(?:\s+poem)?\b", self.work):
                self.consume(mm.start(), mm.end())
            return
        # "line one starts with S, line two starts with T, …": one letter per line, in order
        per = list(re.finditer(r"\b(?:line\s+(?P<n>\d+)|the\s+(?P<o>\d+(?:st|nd|rd|th))\s+line)\s+(?:should\s+|must\s+|will\s+)?(?:starts?|begins?)\s+with\s+(?:the\s+letter\s+|an?\s+)?(?P<c>«\d+»|[a-z])(?![\w'])", self.work))
        if len(per) >= 2:
            got = {int(m.group("n") or re.match(r"\d+", m.group("o")).group(0)): self.value(m.group("c")) for m in per}
            if sorted(got) == list(range(1, len(got) + 1)) and all(len(c) == 1 for c in got.values()):
                word = "".join(got[i] for i in sorted(got)).upper()
                start, end = per[0].start(), per[-1].end()
                self.records.append(_Record((start, end), self.text[start:end], f"lines start with the letters of {word}", {"acrostic": word}))
                for m in per:
                    self.consume(m.start(), m.end())
                return
        m = re.search(r"\bacrostic\b", self.work)
        if m:
            self.genre = self.genre or "acrostic poem"
            # "an acrostic poem for my son, LEO": the word written in capitals is the one to spell
            caps = [w for w in re.findall(r"\b[A-Z]{2,10}\b", self.original) if not _is_scheme(w) and w not in ("OK", "TV", "USA", "UK")]
            if len(caps) == 1:
                low = caps[0].lower()
                mm = re.search(rf"\b{low}\b", self.work)
                if mm:
                    self.take(mm.start(), mm.end(), f"lines start with the letters of {caps[0]}", acrostic=caps[0])
                    for mm in re.finditer(r"\b(?:an?\s+)?acrostic(?:\s+poem)?\b", self.work):
                        self.consume(mm.start(), mm.end())

    def syllables(self) -> None:
        seq_n = r"\d+(?:\s*(?:[-/,+]|,?\s*and|then)\s*\d+){1,7}"
        seq = None
        for pattern in (
            rf"(?:(?:give|make|with)\s+)?(?:the\s+)?(?:(?:\d+\s+)?lines?\s+(?:of|with|having|have|has|that have)?\s*)?\(?(?P<seq>{seq_n})\s*(?:syllables?|sylables?)\)?"
            r"(?:\s+(?:per|in each|for each|on each|each)\s+line|\s+lines?)?",
            rf"\b(?:with\s+)?(?:a\s+)?(?:syllables?|sylables?)(?:\s+(?:per line|pattern|counts?|structure|scheme|per each line))?\s*(?::|=|of|is)?\s*(?P<seq>{seq_n})\b",
            rf"\b(?:in\s+)?(?:a\s+)?\(?(?P<seq>{seq_n})\)?\s*(?:(?:form|pattern|structure|format|shape|poem|syllable\s+\w+)\b|(?=haik|tanka))",
            r"\b(?P<seq>\d+\s+(?:syllables?|sylables?)(?:\s*(?:,|and|then|, then|followed by|, and then)\s*\d+(?!\w)(?:\s+(?:syllables?|sylables?))?){1,7})",
        ):
            seq = re.search(pattern, self.work)
            if seq:
                break
        if seq:
            counts = [int(x) for x in re.findall(r"\d+", seq.group("seq"))]
            if re.search(r"\bhaik|\btanka", self.work):
                self.genre = "tanka" if re.search(r"\btanka", self.work) else "haiku"
            self.take(seq.start(), seq.end(), "lines of " + "-".join(map(str, counts)) + " syllables",
                      line_syllables=counts)
        for form, counts in (("haik(?:u|us|oo|ou)", [5, 7, 5]), ("tankas?", [5, 7, 5, 7, 7])):
            m = re.search(rf"\b{form}\b", self.work)
            if not m:
                continue
            self.genre = "tanka" if counts == [5, 7, 5, 7, 7] else "haiku"
            for mm in re.finditer(r"\(\s*[\d\s/,+-]+\)|\b(?:in\s+)?(?:the\s+)?(?:traditional\s+|classic\s+)?(?:haiku\s+|tanka\s+)?(?:form|format|style|pattern|structure)\b", self.work):
                if not seq:
                    self.consume(mm.start(), mm.end())
            if not seq:
                name = "a haiku" if counts == [5, 7, 5] else "a tanka"
                self.take(m.start(), m.end(), f"{name}: lines of " + "-".join(map(str, counts)) + " syllables",
                          line_syllables=counts)
                seq = m
            else:
                self.consume(m.start(), m.end())
        per_line: dict[int, int] = {}
        last_end = None
        item = re.compile(rf"(?:the\s+)?(?:(?P<ord>{ORD})(?:\s+line)?|line\s+(?P<n>\d+))\s*(?::|-|,|=)?\s*(?:should |must |will |needs to |has to )?"
                          r"(?:have|has|with|of|is|be|gets|get|contains?|having)?\s*(?P<k>\d+)(?P<syl>\s*(?:syllables?|sylables?))?(?:\s+long)?\b")
        for mm in item.finditer(self.work):
            near = last_end is not None and mm.start() - last_end < 40
            if not mm.group("syl") and not near:
                continue
            i = _ordinal(mm.group("ord")) if mm.group("ord") else int(mm.group("n"))
            if i is None:
                continue
            per_line[i] = int(mm.group("k"))
            last_end = mm.end()
            self.consume(mm.start(), mm.end())
        if per_line:
            top = max(per_line)
            if -1 in per_line or set(per_line) != set(range(1, top + 1)):
                self.refused.append("syllables for some lines but not all")
            else:
                counts = [per_line[i] for i in range(1, top + 1)]
                self.records.append(_Record((0, 0), "per-line syllables", "lines of " + "-".join(map(str, counts)) + " syllables",
                                            {"line_syllables": counts}))

    def rhyme(self) -> None:
        """Rhymes, composed: an explicit scheme ("ABAB", "rhyme scheme: aabb"), a named form
        (couplets, a limerick), a pattern ("every other line", "all lines"), or groups of lines
        ("lines 1 and 3 rhyme", "line 2 rhymes with line 4", "the first two lines rhyme")."""
        w = self.work
        for m in re.finditer(r"«\d+»|\b[a-h]{2,12}\b", w):
            token = self.value(m.group(0)).lower() if m.group(0).startswith("«") else m.group(0)
            if not _is_scheme(token):
                continue
            context = self.text[max(0, m.start() - 40): m.end() + 30]
            if not re.search(r"rhym|scheme|pattern|poem|lines?\b|verse|quatrain|stanza|couplet|limerick|sonnet|song", context):
                continue
            head = re.search(r"(?:\b(?:a|an|the|in|with|using|follows?|following|that follows|rhymed|rhyming|rhymes?)\s+)*(?:(?:rhyme|rhyming)\s+)?(?:scheme|pattern)?\s*(?:of\s+|is\s+|like\s+|:\s*)?$", w[:m.start()])
            start = head.start() if head and head.group(0).strip() else m.start()
            tail = re.match(r"\s*(?:(?:rhyme|rhyming)\s+)?(?:scheme|pattern|rhymes?)?\b", w[m.end():])
            end = m.end() + (tail.end() if tail else 0)
            self.take(start, end, f"line ends rhyme as {token.upper()}", rhyme_scheme=token.upper())
            self.consume_rhyme_words()
            return
        m = re.search(r"\blimericks?\b", w)
        if m:
            self.genre = "limerick"
            self.take(m.start(), m.end(), "a limerick: 5 lines rhyming AABBA", rhyme_scheme="AABBA")
            self.consume_rhyme_words()
            return
        m = re.search(r"\b(?:(?P<n>\d+)\s+)?rh?ym(?:ing|ed|ng|in)\s+couplets?\b|\b(?:(?P<n2>\d+)\s+)?couplets?\s+(?:that|which)\s+rhymes?\b", w)
        if m:
            n = int(m.group("n") or m.group("n2") or 0)
            plural = m.group(0).rstrip().endswith("s") and not m.group(0).rstrip().endswith("rhymes")
            pairs = n or (None if plural else 1)
            self.take(m.start(), m.end(), "rhyming couplets", rhyme=("pairs", {"couplets": pairs}))
            self.consume_rhyme_words()
            return
        groups = self.rhyme_groups()
        if groups:
            return
        patterns = [
            (r"\b(?:every|each)\s+(?:2|pair of|couple of)\s+lines?\s+(?:should |must )?rhym\w*\b"
             r"|\blines?\s+(?:should |must )?rhymes?\s+in\s+pairs\b|\b(?:each|every)\s+couplet\s+(?:should |must )?rhymes?\b|\bpairs? of rhyming lines\b", "pairs"),
            (r"\b(?:every\s+other|alternate|alternating)\s+lines?\s+(?:should |must )?rhym\w*\b|\balternat\w+\s+rhymes?\b", "alternate"),
            (r"\b(?:all|every|each)\s+(?:single\s+)?(?:of\s+the\s+)?(?:\d+\s+)?lines?\s+(?:should |must |have to |need to |will )?(?:ends?\s+(?:in|with)\s+(?:a\s+)?(?:words?\s+(?:that|which)\s+)?)?rhym\w*(?:\s+words?)?(?:\s+with\s+(?:each other|one another|the others|every other line))?\b"
             r"|\ball\s+(?:the\s+)?(?:\d+\s+)?lines?\s+(?:end\s+in\s+)?rhym\w*\b|\bmonorhyme\b|\ball\s+rhyming\b", "all"),
            (r"\b(?:that|which|and|should|must|to|it|both)?\s*(?:lines?\s+)?(?:rhymes?|rhyming|rhymed)\b(?:\s+with\s+(?:each other|one another|the others))?", "some"),
        ]
        for pattern, kind in patterns:
            mm = re.search(pattern, w)
            if not mm:
                continue
            self.take(mm.start(), mm.end(), "", rhyme=(kind, {}))
            self.consume_rhyme_words()
            return

    def rhyme_groups(self) -> bool:
        """Lines named as rhyming together: "lines 1 and 3 rhyme, and so do 2 and 4", "line 1
        rhymes with line 2", "the 2nd and 4th lines rhyme", "rhymes: 1 with 4, 2 with 3"."""
        num = r"(?:\d+(?:st|nd|rd|th)?)"
        group = rf"{num}(?:\s*(?:,|and|&)\s*{num})+"
        found: list[tuple[int, int, list[int]]] = []
        pats = [
            rf"\blines?\s+(?P<g>{group})\s+(?:should\s+|must\s+|will\s+|have to\s+|need to\s+)?(?:all\s+)?(?:rhym\w*|do)\b",
            rf"\b(?:the\s+|only\s+the\s+|with\s+(?:only\s+)?the\s+)?(?P<g>{group})\s+lines?\s+(?:should\s+|must\s+|will\s+)?(?:rhym\w*|do)\b",
            rf"\bline\s+(?P<a>{num})\s+(?:should\s+|must\s+)?rhymes?\s+with\s+line\s+(?P<b>{num})\b",
            rf"(?:\brhym\w*\s*:?\s*|,\s*|\(\s*|\band\s+)(?P<a2>{num})\s+with\s+(?P<b2>{num})\b",
            rf"\b(?:and\s+)?so\s+do\s+(?:lines?\s+)?(?P<g2>{group})\b|\b(?:and\s+)?(?:lines?\s+)?(?P<g3>{group})\s+(?:rhym\w*|do too|as well)\b",
            r"\bthe\s+(?P<which>1st|first|last)\s+(?P<k>\d+)\s+lines?\s+(?:should\s+|must\s+)?rhym\w*\b",
            r"\bthe\s+(?P<side>outer|inner|middle|outside|inside)\s+(?:2\s+)?lines?\s+(?:should\s+|must\s+)?rhym\w*(?:\s+with\s+each\s+other)?\b",
        ]
        for pat in pats:
            for m in re.finditer(pat, self.work):
                d = m.groupdict()
                if d.get("side"):
                    found.append((m.start(), m.end(), [("outer" if d["side"] in ("outer", "outside") else "inner", 2)]))
                    self.consume(m.start(), m.end())
                    continue
                if d.get("which"):
                    found.append((m.start(), m.end(), [("first" if d["which"] in ("1st", "first") else "last", int(d["k"]))]))
                    self.consume(m.start(), m.end())
                    continue
                text = d.get("g") or d.get("g2") or d.get("g3")
                if text:
                    idx = [int(re.match(r"\d+", x).group(0)) for x in re.findall(num, text)]
                else:
                    idx = [int(re.match(r"\d+", d.get("a") or d.get("a2")).group(0)),
                           int(re.match(r"\d+", d.get("b") or d.get("b2")).group(0))]
                found.append((m.start(), m.end(), idx))
                self.consume(m.start(), m.end())
        if not found:
            return False
        start = min(f[0] for f in found)
        end = max(f[1] for f in found)
        self.records.append(_Record((start, end), self.text[start:end].strip(), "", {"rhyme": ("groups", {"groups": [f[2] for f in found]})}))
        self.consume_rhyme_words()
        for m in re.finditer(r"\b(?:where\s+|with\s+)?(?:every\s+other|alternate|alternating|each pair of|every 2)\s+lines?\b", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\band\s+(?:the\s+)?(?:3rd|third|\d+(?:st|nd|rd|th)?)(?:\s+line)?\s+(?:doesn'?t|does not|need not|needn'?t)(?:\s+need to)?(?:\s+rhyme)?\b", self.work):
            self.consume(m.start(), m.end())
        return True

    def consume_rhyme_words(self) -> None:
        for m in re.finditer(r"\b(?:that\s+|which\s+|and\s+|both\s+)?(?:lines?\s+)?(?:rhym(?:e|es|ing|ed))\b(?:\s+(?:with\s+(?:each other|one another|the others)|words?))?", self.work):
            if re.search(r"\d+\s+$", self.work[:m.start()]):
                continue  # "2 rhyming lines": a count, read later
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:an?\s+)?(?:[a-z]+\s+)?stanza\b", self.work):
            self.consume(m.start(), m.end())

    def lipogram(self) -> None:
        neg = (r"(?:without|with no|with 0|no|never|avoid(?:ing|s)?|don'?t|do not|doesn'?t|does not|not|excluding|exclude|"
               r"leave out|leaving out|lacking|free of|zero|skip(?:ping)?|must not|mustn'?t|can'?t|cannot|"
               r"shouldn'?t|should not|won'?t|banning|ban)(?:\s+(?:ever\s+)?(?:using|use|uses|used|containing|"
               r"contain|contains|including|include|includes|having|have|has|typing|writing|with))?")
        letters = r"(?P<v>(?:«\d+»|[a-z])(?:\s*(?:,|and|or|&|/)\s*(?:«\d+»|[a-z]))*)"
        patterns = [
            rf"\b(?:{neg})\s+(?:(?:the|any|a single|a|even 1)\s+)?(?:letters?|characters?|vowels?)\s+{letters}(?:'?s)?(?!\w)(?:\s+(?:even once|at all|anywhere|ever|whatsoever|in it|in the text))?",
            rf"\b(?:{neg})\s+(?:(?:any|a single)\s+)?(?P<v2>«\d+»|[a-z])'?s\b",
            rf"\b(?:the\s+)?(?:letters?|vowels?)\s+{letters}\s+(?:must not|should not|shouldn'?t|can'?t|cannot|may not|mustn'?t|is not allowed to|are not allowed to|never|does not|doesn'?t|do not|don'?t|won'?t)\s+(?:ever\s+)?(?:appear|be used|show up|occur|be in it|be anywhere)\b",
            rf"\blipogram\s+(?:in|without|avoiding|of|on|that avoids|with no|lacking)\s+(?:the\s+)?(?:letters?\s+)?{letters}\b",
            r"\b(?P<v3>[a-z])-less\b",
            r"\bno\s+(?P<v4>«\d+»)\s*s?\b",
        ]
        found: list[str] = []
        for pattern in patterns:
            for m in re.finditer(pattern, self.work):
                raw = next(m.group(g) for g in ("v", "v2", "v3", "v4") if g in m.groupdict() and m.group(g))
                tokens = re.findall(r"«\d+»|\b[a-z]\b", raw)
                values = [self.value(t).lower() for t in tokens]
                if not values or any(len(v) != 1 or not v.isalpha() for v in values):
                    continue
                if pattern.endswith(r"s?\b") and "v4" in m.groupdict() and m.group("v4") is None and len(values[0]) != 1:
                    continue
                found += values
                self.take(m.start(), m.end(), "never uses the letter" + ("s " if len(values) > 1 else " ")
                          + ", ".join(f"'{v}'" for v in values), avoid_letters=values)
        if re.search(r"\blipogram\b", self.work) and found:
            self.consume(*re.search(r"\blipogram\b", self.work).span())

    def alliteration(self) -> None:
        # A letter: named ("the letter b", "'b'"), or a lone letter where a clause ends ("with b.")
        letter = (r"(?:(?:the\s+)?(?:same\s+)?letters?\s*[,:]?\s+(?:an?\s+)?(?P<v>«\d+»|[a-z])(?:'s)?(?!\w)|(?:an?\s+)?(?P<vq>«\d+»)(?:'s)?|"
                  r"(?:an?\s+)?(?P<vb>[a-z])(?=\s*(?:[,.;:!?()-]|$|\s+(?:words?|sounds?|only|please|about|for|and|in|to|on)\b)))(?:\s+sound)?")
        every = r"(?:every|each|each and every|all(?:\s+the|\s+of\s+the)?|all\s+your)"
        patterns = [
            rf"\b{every}\s+(?:single\s+)?(?:one\s+of\s+the\s+)?words?\s+(?:[^.;«\x00]{{0,40}}?\s+)?(?:should\s+|must\s+|has to\s+|have to\s+|needs? to\s+|will\s+|to\s+|in it\s+)?(?:start|begin|starts|begins|starting|beginning|open|opens)\s+with\s+(?:the\s+same\s+letter\s*[,:]?\s+)?{letter}",
            rf"\b(?:start|begin|starting|beginning)\s+{every}\s+(?:single\s+)?words?\s+with\s+{letter}",
            rf"\b(?:only|just|exclusively)\s+(?:use\s+|using\s+)?words\s+(?:that\s+)?(?:start|begin|starting|beginning)\s+with\s+{letter}",
            rf"\bwords?\s+(?:starting|beginning)\s+with\s+{letter}\s+only\b",
            r"\b(?:only|just)\s+(?:«\d+»|(?P<vw>[a-z]))(?:-|\s+)words\b",
            rf"\balliterat\w*\b[^.;«]{{0,40}}?\b(?:with|on|using(?:\s+only)?|of|around|in)\s+{letter}",
            rf"\balliterat\w*\s+(?:sentence|poem|line|text|tongue twister|phrase)?\s*,?\s*{letter}",
            rf"\b(?:with\s+)?(?:all|every)\s+words?\s+(?:starting|beginning)\s+with\s+{letter}",
            rf"\bwords\s+(?:that\s+)?all\s+(?:start|begin)\s+with\s+{letter}",
            rf"\b{letter}\s+alliteration\b",
            rf"(?<=words)[,;]?\s*(?:and\s+)?(?:all|each|every one)\s+(?:of\s+them\s+)?(?:must\s+|should\s+|will\s+)?(?:beginning|starting|begin|start|begins|starts)\s+with\s+{letter}",
            rf"\b(?:all|each|every one)\s+of\s+them\s+(?:must\s+|should\s+|will\s+|has to\s+|have to\s+)?(?:begin|start|begins|starts)\s+with\s+{letter}",
        ]
        for pattern in patterns:
            m = re.search(pattern, self.work)
            if not m:
                continue
            token = next((m.group(g) for g in ("v", "vq", "vb", "vw") if g in m.groupdict() and m.group(g)), None)
            if token is None and "«" in m.group(0):
                token = re.search(r"«\d+»", m.group(0)).group(0)
            v = self.value(token).lower() if token else ""
            if len(v) == 1 and v.isalpha():
                self.take(m.start(), m.end(), f"every word starts with '{v}'", word_initial=v)
                for mm in re.finditer(r"(?<=\x00)\s*(?:on|for|in)\s+(?:every|each|all)\s+(?:single\s+)?(?:the\s+)?words?\b", self.work):
                    self.consume(mm.start(), mm.end())
                for mm in re.finditer(r"\b(?:an?\s+)?alliterat\w*(?:\s+(?:challenge|sentence|poem|line|text|phrase|tongue twister))?\b|\btongue twister\b", self.work):
                    self.consume(mm.start(), mm.end())
                return
        m = re.search(r"\balliterat\w*\b", self.work)
        if m:
            return  # left over: an alliteration without a letter is not something we check

    def positions(self) -> None:
        w = self.work
        head = re.compile(
            rf"(?:\b(?:whose|with|where|and|its|the|make|let|have|having|set)\s+)*(?:the\s+)?(?P<ords>{ORD}(?:\s*(?:,|and|&)\s*(?:the\s+)?{ORD})*)\s+(?:words?|wrods?)"
            rf"(?:\s+of\s+(?:the|each|every|your|this|my|that)\s+(?:(?P<sord>{ORD})\s+)?(?P<snoun>sentences?|lines?|text|answer|response|poem|tweet|reply|paragraph)\b)?"
            rf"\s*(?:(?:{COPULA})\s+|(?:as|being)\s+|,\s*(?=«)|(?=«))")
        for m in head.finditer(w):
            if self.work[m.start():m.end()].count("\x00"):
                continue
            ords = [_ordinal(o) for o in re.findall(ORD, m.group("ords"))]
            if None in ords:
                continue
            values, end = self.read_values(m.end(), k=len(ords))
            if len(values) != len(ords) or end == m.end():
                continue
            snoun, sord = m.group("snoun"), m.group("sord")
            pre = self.text[max(0, m.start("ords") - 40): m.start("ords")]
            every = snoun and re.match(r"(each|every)", self.text[m.start("ords"):m.end()].split(" of ")[-1]) \
                or re.search(r"\b(?:all|each|every)\s+(?:of\s+the\s+)?sentences?\s+(?:having|with|where|whose)\s*(?:the\s*)?$", pre)
            plural = re.search(r"\b(?P<noun>sentences|lines)\s+(?:having|with|where|whose)\s*(?:the\s*)?$", pre)
            if plural and not every and ords == [-1] and re.match(r"\s*,?\s*respectively", self.work[end:]) is None:
                more, end2 = self.read_values(m.end())
                if len(more) > 1:
                    values, end = more, end2
            if plural and not every and ords == [-1] and len(values) > 1 or \
                    plural and not every and ords == [-1] and self.text[end - 12:end].endswith("respectively"):
                kind = noun_unit(plural.group("noun"))
                self.take(m.start(), end, f"{kind}s end with " + ", ".join(f"'{v}'" for v in values),
                          ends_list=(kind, values))
                continue
            self.position_values(m.start(), end, ords, values, snoun, sord, bool(every))
        for m in re.finditer(rf"\bword\s+(?:number\s+|no\.?\s+|#)?(?P<n>\d+)\s*(?:(?:{COPULA})\s*|as\s+)?", w):
            values, end = self.read_values(m.end(), k=1)
            if values and self.work[m.start():end].count("\x00") == 0:
                self.position_values(m.start(), end, [int(m.group("n"))], values, None, None, False)
        for m in re.finditer(rf"\b(?:(?:use|put|place|have|make|with|using|include|insert|set)\s+)?(?:the\s+word\s+)?(?P<v>{VALUE})\s+(?:as|in|at|for|into)\s+(?:the\s+|its\s+)?(?:(?P<o>{ORD})\s+(?:word|position|place|spot|slot)|(?:position|place|spot|slot)\s+(?:number\s+|no\.?\s+|#)?(?P<n>\d+)|word\s+(?:number\s+|no\.?\s+|#)?(?P<n2>\d+))\b", w):
            if m.group("v") in STOP_WORDS or m.group("v") in VERBS or m.group("v") in ("word", "words") or self.work[m.start():m.end()].count("\x00"):
                continue
            i = _ordinal(m.group("o")) if m.group("o") else int(m.group("n") or m.group("n2"))
            if i is not None:
                self.position_values(m.start(), m.end(), [i], [self.value(m.group("v"))], None, None, False)

    def value_first_positions(self) -> None:
        """"'toast' should be word number 5", "make 'blue' the 2nd word", "'soft' is the 5th word
        and 'roof' the 9th", "in position 6 put 'garden'"."""
        where = (rf"(?:the\s+)?(?:(?P<o>{ORD})(?:\s+(?:word|one|position|place|spot))?|word\s+(?:number\s+|no\.?\s+|#)?(?P<n>\d+)"
                 rf"|(?:in\s+|at\s+)?position\s+(?:number\s+|#)?(?P<n2>\d+))(?!\s*(?:line|sentence|paragraph|letter|syllable))")
        pats = [
            rf"\bmake\s+the\s+(?P<o>{ORD})\s+word\s+(?:into\s+|be\s+)?(?P<v>«\d+»|[a-z][\w'-]*)",
            r"\bthe\s+word\s+(?:in|at)\s+position\s+(?:number\s+|#)?(?P<n>\d+)\s+(?:being|is|should be|must be|=|:)\s*(?P<v>«\d+»|[a-z][\w'-]*)",
            rf"(?<=\x00)\s*,?\s*(?:and|,)\s+the\s+(?P<o>{ORD})\s+(?:one\s+|word\s+)?(?:{COPULA})\s+(?P<v>«\d+»|[a-z][\w'-]*)",
            rf"(?:(?<=\s)|^)(?:the\s+word\s+)?(?P<v>«\d+»|[a-z][\w'-]*)\s+(?:should|must|has to|needs to|will|is to|ought to)?\s*(?:to be|be|is|comes?|appears?(?:\s+as)?|goes|sits?|falls?|lands?)\s+(?:as\s+|in\s+|at\s+)?{where}\b",
            rf"\b(?:make|let|have|put|place|set)\s+(?:the\s+word\s+)?(?P<v>«\d+»|[a-z][\w'-]*)\s+(?:as\s+|in\s+|at\s+|be\s+)?{where}\b",
            r"\b(?:(?:in|at)\s+)?position\s+(?:number\s+|#)?(?P<n3>\d+),?\s*(?:put|place|use|have|goes|is|comes|:|=|should be|must be)?\s*(?:the\s+word\s+)?(?P<v>«\d+»|[a-z][\w'-]*)",
            rf"(?<=\x00)\s*,?\s*(?:and|,)\s+(?P<v>«\d+»)\s+(?:as\s+)?{where}\b",
        ]
        if re.search(r"\b\d+\s+words\b", self.text):  # "ten words; the fourth is river"
            pats.append(rf"\bthe\s+(?P<o>{ORD})\s+(?:one\s+)?(?:{COPULA})\s+(?P<v>«\d+»|[a-z][\w'-]*)")
        for pat in pats:
            for m in re.finditer(pat, self.work):
                if self.work[m.start():m.end()].count("\x00") or m.group("v") in STOP_WORDS or m.group("v") in VERBS:
                    continue
                d = m.groupdict()
                i = _ordinal(d.get("o")) if d.get("o") else int(d.get("n") or d.get("n2") or d.get("n3"))
                if i is None:
                    continue
                self.position_values(m.start(), m.end(), [i], [self.value(m.group("v"))], None, None, False)

    def position_values(self, start, end, ords, values, snoun, sord, every) -> None:
        if every:
            if ords == [1] and (snoun is None or snoun.startswith("sentence")):
                self.take(start, end, f"every sentence starts with '{values[0]}'", sentence_first_word=values[0])
            elif ords == [-1] and (snoun is None or snoun.startswith("sentence")):
                self.take(start, end, f"every sentence ends with '{values[0]}'", every_end=("sentence", values[0]))
            elif ords == [1] and snoun.startswith("line"):
                self.take(start, end, f"every line starts with '{values[0]}'", line_first_word=values[0])
            elif ords == [-1] and snoun.startswith("line"):
                self.take(start, end, f"every line ends with '{values[0]}'", every_end=("line", values[0]))
            else:
                self.refused.append(f"{self.text[start:end].strip()} (a word at a position in every sentence is not supported)")
                self.consume(start, end)
            return
        if snoun and (snoun.startswith("sentence") or snoun.startswith("line")) and sord:
            k = _ordinal(sord)
            kind = "sentence" if snoun.startswith("sentence") else "line"
            if ords == [1]:
                self.take(start, end, f"{kind} {k} starts with '{values[0]}'", edge=(kind, "start", k, values[0]))
            elif ords == [-1]:
                self.take(start, end, f"{kind} {k} ends with '{values[0]}'", edge=(kind, "end", k, values[0]))
            else:
                self.refused.append(f"{self.text[start:end].strip()} (a word at a position inside one sentence is not supported)")
                self.consume(start, end)
            return
        pos = {}
        for o, v in zip(ords, values):
            if o == -1:
                self.take(start, end, f"the last word is '{v}'", edge=("text", "end", -1, v))
                continue
            pos[o] = v
        if pos:
            desc = ", ".join(f"word {o} is '{v}'" for o, v in sorted(pos.items()))
            self.take(start, end, desc, word_positions=pos)

    def edges(self) -> None:
        pattern = re.compile(
            rf"\b(?P<verb>{START}|{END})\s+(?:off\s+)?(?:with|in|on|by|using)\s+(?:(?:the|a)\s+(?:single\s+)?(?:words?|term)\s*:?\s*)?(?=(?P<val>«\d+»|[a-z0-9][\w'-]*))")
        for m in pattern.finditer(self.work):
            if self.work[m.start():m.end()].count("\x00"):
                continue
            start_verb = bool(re.match(START, m.group("verb")))
            values, end = self.read_values(m.end(), k=None, explicit=bool(re.search(r"\b(?:word|term)\s*:?\s*$", m.group(0))))
            if not values:
                continue
            first = re.match(r"\s*([a-z]+)", self.work[m.end():])
            last_word = re.match(r"\s*(?:a|an|the)\s*(?:[.;,!?)]|$)", self.work[m.end():])
            if last_word:  # "every sentence has to start with The": the article is the word
                values, end = [self.work[m.end():].split()[0].strip(".;,!?)")], m.end() + len(last_word.group(0).rstrip(".;,!?) "))
                values = [re.search(rf"\b{values[0]}\b", self.original, re.I).group(0) if re.search(rf"\b{values[0]}\b", self.original, re.I) else values[0]]
            elif first and first.group(1) in ("a", "an", "the", "some", "capital", "question", "exclamation", "period",
                                            "full", "rhyme", "rhyming", "letter", "letters", "vowel", "number",
                                            "emoji", "hashtag"):
                continue  # "end with a question", "start with a capital letter": not a word
            c0, _ = self.clause_bounds(m.start(), m.end())
            pre = self.text[c0:m.start()]
            scope = self.edge_scope(pre, m.start())
            kind, which = scope
            if kind is None:
                continue
            if len(values) > 1 and which in ("every", "text") and (
                    self.text[end - 12:end].endswith("respectively") or re.search(r"\b(?:sentences|lines)\b", pre)):
                which = "respectively"
                kind = "line" if re.search(r"\blines\b", pre) or (kind != "sentence" and self.antecedent(m.start()) == "line") else "sentence"
            if len(values) > 1 and which != "respectively":
                values = values[:1]
                vend = self.read_values(m.end(), k=1)[1]
                end = vend
            side = "start" if start_verb else "end"
            s0 = self.scope_start if self.scope_start is not None else m.start()
            if which == "every":
                if side == "start":
                    field_ = "sentence_first_word" if kind == "sentence" else "line_first_word"
                    self.take(s0, end, f"every {kind} starts with '{values[0]}'", **{field_: values[0]})
                else:
                    self.take(s0, end, f"every {kind} ends with '{values[0]}'", every_end=(kind, values[0]))
            elif which == "respectively":
                if side == "end":
                    self.take(s0, end, f"{kind}s end with " + ", ".join(f"'{v}'" for v in values),
                              ends_list=(kind, values))
                else:
                    self.take(s0, end, f"{kind}s start with " + ", ".join(f"'{v}'" for v in values),
                              starts_list=(kind, values))
            else:
                self.take(s0, end, f"{'the text' if kind == 'text' else f'{kind} {which}'} {side}s with '{values[0]}'",
                          edge=(kind, side, which, values[0]))

    def verb_first_edges(self) -> None:
        """"start every line with X", "end each sentence in X", "begin your sentence with X":
        the verb before its scope."""
        for m in re.finditer(r"\b(?P<verb>start|begin|open|end|finish|close|conclude)\s+(?:your|the|this|my|it|that)\s*(?:sentence|text|answer|reply|response|poem|tweet|message|paragraph|story|description|line)?\s+(?:with|in|on|using)\s+(?:the\s+word\s+)?", self.work):
            values, end = self.read_values(m.end(), k=1, explicit=True)
            if not values:
                continue
            if re.match(r"start|begin|open", m.group("verb")):
                self.take(m.start(), end, f"the text starts with '{values[0]}'", edge=("text", "start", "text", values[0]))
            else:
                self.take(m.start(), end, f"the text ends with '{values[0]}'", edge=("text", "end", "text", values[0]))
        for m in re.finditer(r"\b(?P<verb>start|starts|starting|begin|begins|beginning|open|opens|end|ends|ending|finish|finishes|close|closes)\s+"
                             r"(?:every|each|all(?:\s+the)?|all\s+of\s+the)\s+(?:single\s+)?(?P<noun>sentences?|lines?|verses?)\s+(?:with|in|on|using)\s+(?:the\s+word\s+)?", self.work):
            values, end = self.read_values(m.end(), k=1)
            if not values:
                continue
            kind = noun_unit(m.group("noun").rstrip("s") + "s")
            kind = "line" if kind == "line" else "sentence"
            if re.match(r"start|begin|open", m.group("verb")):
                field_ = "sentence_first_word" if kind == "sentence" else "line_first_word"
                self.take(m.start(), end, f"every {kind} starts with '{values[0]}'", **{field_: values[0]})
            else:
                self.take(m.start(), end, f"every {kind} ends with '{values[0]}'", every_end=(kind, values[0]))

    def edge_scope(self, pre: str, at: int):
        """Who starts/ends with the word: ("sentence"|"line"|"text"|"word", "every"|"respectively"|index)."""
        self.scope_start = None
        low = pre.lower()
        m = re.search(rf"(?:\b(?:each|every|all|both)\b(?:\s+(?:of\s+)?(?:the|them|your|these))?\s*(?P<noun>sentences?|sentance?s?|lines?|verses?|words?|ones?)?|\b(?:they|these|those)\s+(?:all|each|both)|\ball\s+of\s+them|\beach\s+(?:one|of them))[^,;]*?(?:{COPULA}|should|must|has to|have to|need to|needs to|will|to|that|which)?\s*$", low)
        noun = None
        if m:
            noun = m.group("noun") if m.groupdict().get("noun") else None
            self.scope_start = at - (len(low) - m.start())
            unit = noun_unit(noun.rstrip("s") + "s") if noun and not noun.startswith("one") else self.antecedent(at)
            unit = {"sentence": "sentence", "line": "line", "word": "word"}.get(unit or "", None)
            if unit is None:
                return (None, None)
            if unit == "word":
                return (None, None)  # "every word starts with…": alliteration, read elsewhere
            return (unit, "every")
        m = re.search(rf"\b(?:the\s+)?(?P<ord>{ORD})\s*(?P<noun>sentences?|lines?|verses?|ones?)?\s*(?:(?:{COPULA})|should|must|has to|needs to|will|to|one)?\s*$"
                      rf"|\b(?P<noun2>sentences?|lines?)\s+(?:number\s+)?(?P<n>\d+)\s*(?:should|must|has to|needs to|will|to)?\s*$", low)
        if m:
            k = _ordinal(m.group("ord")) if m.group("ord") else int(m.group("n"))
            noun = m.group("noun") or m.group("noun2")
            unit = noun_unit(noun.rstrip("s") + "s") if noun and not noun.startswith("one") else self.antecedent(at)
            if unit not in ("sentence", "line") or k is None:
                return (None, None)
            self.scope_start = at - (len(low) - m.start())
            return (unit, k)
        m = re.search(r"\b(?:sentences?|lines?)\b[^,;]*?\s*$", low)
        if m and re.search(r"respectively", self.work[at:at + 120]):
            noun = re.search(r"(sentences?|lines?)", m.group(0)).group(1)
            self.scope_start = at - (len(low) - m.start())
            return (noun_unit(noun.rstrip("s") + "s"), "respectively")
        if re.search(r"respectively", self.work[at:at + 120]):
            unit = self.antecedent(at)
            if unit in ("sentence", "line"):
                return (unit, "respectively")
        # No scope word: the sentence / text / line in question as a whole.
        return ("text", "text")

    def antecedent(self, at: int) -> str | None:
        """The plural unit "them"/"each" refers to: the last unit counted before `at`."""
        before = [u for p, u in self.plural if p < at]
        if before:
            return before[-1]
        m = None
        for m in re.finditer(r"\b(sentences|lines|paragraphs|verses)\b", self.text[:at]):
            pass
        if m:
            return noun_unit(m.group(1))
        if re.search(r"\b(poem|haiku|limerick|acrostic|list)\b", self.text):
            return "line"
        return None

    def exclude(self) -> None:
        # Verbs after which a bare word is the word to avoid ("don't mention books"); after
        # "without" or "no" only a quoted word or "the word X" is ("a world without rain" is a topic).
        plain = (r"avoid(?:ing|s)?|never\s+(?:ever\s+)?(?:use|uses|say|says|mention|mentions|write|writes|include|includes)|"
                 r"(?:don'?t|do not|doesn'?t|does not|must not|mustn'?t|should ?n[o']t|shouldn'?t|cannot|can'?t|may not|won'?t|please don'?t|you can'?t|you cannot)\s+(?:ever\s+)?(?:use|say|mention|include|contain|write|have|put)|"
                 r"(?:i\s+)?don'?t want(?:\s+to\s+(?:see|read|hear|use))?|refrain from(?:\s+(?:using|saying|mentioning|writing))?|"
                 r"not\s+(?:use|using|containing|contain|include|including|mentioning)|excluding|exclude|leave out|leaving out|steer clear of|"
                 r"skip|ban|banning|omit(?:ting)?|minus|except for|other than|"
                 r"(?:no|not a single|not one)\s+(?:line|sentence|word|part|verse)\s+(?:may|can|should|must|will|is allowed to)\s+(?:contain|include|use|have|say|mention)")
        labels = (r"(?:forbidden|banned|excluded|prohibited|taboo|no-go|disallowed)\s+(?:words?|terms?)(?:\s*:|\s+(?:are|is|include))|"
                  r"(?:words?|terms?)\s+to\s+(?:avoid|skip|leave out|exclude|ban)\s*:|off[- ]limits\s*:|not allowed\s*:|banned\s*:|"
                  r"forbidden\s*:|exclude\s*:|avoid\s*:|don'?t use\s*:")
        quoted_only = r"without(?:\s+ever)?(?:\s+(?:using|saying|mentioning|writing|including|the use of))?|no|with no"
        for group, bare_ok in ((labels, True), (plain, True), (quoted_only, False)):
            for m in re.finditer(rf"\b(?:{group})(?!\w)\s*(?:(?:any|the|a|even)\s+)?(?:(?P<noun>words?|terms?|phrases?)\s*:?\s*(?:like\s+|such as\s+)?)?(?=[«a-z0-9])", self.work):
                if self.work[m.start():m.end()].count("\x00"):
                    continue
                if not m.group("noun") and "«" not in self.work[m.end():m.end() + 3] and \
                        re.search(r"\b(?:who|that|which|to)\s+(?:\w+\s+){0,2}$", self.text[max(0, m.start() - 30):m.start()]):
                    continue  # "a boy who tries to avoid his homework": the story's, not a rule
                bare = bare_ok or bool(m.group("noun"))
                values, end = self.read_values(m.end(), bare=bare, explicit=bool(m.group("noun")) or group is labels)
                if not values:
                    continue
                self.take(m.start(), end, "avoids " + ", ".join(f"'{v}'" for v in values), exclude=values)
        vals = r"(?:«\d+»|[a-z][\w'-]*)(?:\s*(?:,|and|or)\s*(?:«\d+»|[a-z][\w'-]*))*"
        for m in re.finditer(rf"(?:\bthe\s+(?:words?|terms?)\s+(?P<v>{vals})|(?P<q>«\d+»(?:\s*(?:,|and|or)\s*«\d+»)*))\s+"
                             r"(?:(?:must|should|can|may|will|is|are|does|do)(?:\s+not|n'?t)\s+(?:ever\s+)?|never\s+|is not allowed to\s+|are not allowed to\s+)"
                             r"(?:appears?|be used|show up|shows up|occurs?|be in it|be included|be mentioned|gets? used|is used|feature)\b"
                             r"|(?:\bthe\s+(?:words?|terms?)\s+(?P<v2>" + vals + r")|(?P<q2>«\d+»(?:\s*(?:,|and|or)\s*«\d+»)*))\s+(?:is|are)\s+(?:banned|forbidden|not allowed|off limits|off-limits|prohibited|out)\b"
                             rf"|\bkeep\s+(?:the\s+(?:words?|terms?)\s+)?(?P<v3>{vals})\s+out(?:\s+of\s+(?:it|the text|the answer|your answer|this|the poem|the story))?\b"
                             r"|\bno\s+(?P<v4>«\d+»|[a-z][\w'-]*)\s+(?:in it|allowed|anywhere|at all|whatsoever)\b"
                             r"|(?:^|(?<=[.;:,!?])\s*)(?P<v5>[a-z][\w'-]*)\s+(?:is|are)\s+(?:off limits|off-limits|banned|forbidden|not allowed|prohibited)\b", self.work):
            if self.work[m.start():m.end()].count("\x00"):
                continue
            raw = next(m.group(g) for g in ("v", "q", "v2", "q2", "v3", "v4", "v5") if m.group(g))
            if raw.startswith("«"):
                values = [self.value(t) for t in re.findall(r"«\d+»", raw)]
            else:
                values = [self.value(t) for t in re.split(r"\s*(?:,|\band\b|\bor\b)\s*", raw) if t and t not in STOP_WORDS]
            if not values:
                continue
            negative = not re.search(r"\b(?:must|should|will|can|may|is|are|does|do)\s+(?!not|n'?t|never)(?:ever\s+)?(?:appears?|be used|show up)", m.group(0))
            if negative:
                self.take(m.start(), m.end(), "avoids " + ", ".join(f"'{v}'" for v in values), exclude=values)

    def include(self) -> None:
        self.include_forms()
        self._include_verbs()

    def _include_verbs(self) -> None:
        verbs = (r"use|uses|using|include|includes|including|contain|contains|containing|mention|mentions|mentioning|"
                 r"feature|features|featuring|incorporate|incorporates|incorporating|work in|working in|put in|fit in|"
                 r"with|have|has|having|add|adding|insert|inserting|needs?|must have|should have")
        for m in re.finditer(rf"\b(?:{verbs})\s+(?:(?:all|each|both|every one|every single one|any)\s+of\s+)?(?:the\s+)?(?:following\s+|(?:\d+\s+)?)?"
                             rf"(?:(?P<noun>words?|wrods?|terms?|keywords?|names?)\s*:?\s*(?:like\s+)?|(?=«)|(?=[a-z]))", self.work):
            if self.work[m.start():m.end()].count("\x00"):
                continue
            before = self.text[max(0, m.start() - 16): m.start()]
            if re.search(r"\b(?:not|n't|never|no|from|avoid|without|stop)\s*$", before):
                continue
            verb = m.group(0).split()[0]
            bare = bool(m.group("noun")) or verb.startswith(("mention", "includ", "contain"))
            values, end = self.read_values(m.end(), bare=bare)
            if not values:
                continue
            self.take(m.start(), end, "uses " + ", ".join(f"'{v}'" for v in values), include=values)
    def include_forms(self) -> None:
        """"'carrot' and 'compass' need to be in there", "make sure mist appears", "work X into",
        "required words: a, b", "it must contain X"."""
        vals = r"(?:«\d+»|[a-z][\w'-]*)(?:\s*(?:,|and|&)\s*(?:«\d+»|[a-z][\w'-]*))*"
        post = (r"(?:must|should|has to|have to|need to|needs to|will|shall|is to|are to)\s+(?:all\s+)?(?:also\s+)?"
                r"(?:appear|be used|be in it|be in there|be included|show up|be mentioned|feature|be there|occur|be in the (?:text|answer|poem|story|list))\b")
        for m in re.finditer(rf"(?:\bthe\s+(?:words?|terms?)\s+)?(?P<v>«\d+»(?:\s*(?:,|and|&)\s*«\d+»)*)\s+{post}"
                             rf"|(?:^|(?<=[;:.,!?])\s*|\b(?:and|but|also)\s+)(?:the\s+words?\s+)?(?P<b>[a-z][\w'-]*(?:\s*(?:,|and)\s*[a-z][\w'-]*)*)\s+{post}"
                             rf"|\bmake\s+sure\s+(?:that\s+)?(?:you\s+)?(?:(?:use|include|mention)\s+)?(?:the\s+words?\s+)?(?P<s>{vals})(?:\s+(?:appears?|is used|are used|shows? up|is in it|are in it|is included|are included|gets? mentioned|is mentioned))?(?=\s*[,.;:!?)]|\s*$|\s+(?:and|in|somewhere|too|as well)\b)"
                             rf"|\b(?:work|fit|weave|slip|get|put|pop|stick|squeeze|throw)\s+(?:the\s+words?\s+)?(?P<w>{vals})\s+(?:into|in(?:\s+(?:there|it|somewhere))?)\b"
                             rf"|\b(?:required|must-have|mandatory|key|target)\s+(?:words?|terms?)\s*:\s*(?P<r>{vals})"
                             rf"|\b(?:words?\s+to\s+(?:use|include)|use|include)\s*:\s*(?P<u>{vals})"
                             rf"|\b(?:don'?t|do not|never)\s+forget\s+to\s+(?:use|include|mention)\s+(?:the\s+words?\s+)?(?P<f>{vals})"
                             rf"|\b(?:it|the text|your text|the answer|the poem|the story|each one|all of them)(?:\s+about\s+[^,.;«]{{1,40}}?)?\s+(?:must|should|has to|needs to|will)\s+(?:also\s+)?(?:contain|include|use|mention|feature|have)\s+(?:the\s+words?\s+)?(?P<c>{vals})", self.work):
            if self.work[m.start():m.end()].count("\x00"):
                continue
            raw = next(m.group(g) for g in ("v", "b", "s", "w", "r", "u", "f", "c") if m.group(g))
            if raw.startswith("«"):
                values = [self.value(t) for t in re.findall(r"«\d+»", raw)]
            else:
                values = [self.value(t) for t in re.split(r"\s*(?:,|\band\b|&)\s*", raw) if t and t not in STOP_WORDS]
            if values:
                self.take(m.start(), m.end(), "uses " + ", ".join(f"'{v}'" for v in values), include=values)

    def word_length(self) -> None:
        for m in re.finditer(rf"\b(?:the\s+)?(?:maximum|max|longest|biggest|highest)\s+word\s+length\s+(?:is|of|should be|must be|:|=|allowed is)?\s*(?:(?:{RELATION})\s+)?(?P<n>\d+)\s*(?:letters?|characters?|chars?)?"
                             rf"|\bword\s+length\s+(?:of|is|should be|must be|:|=)?\s*(?P<rel>{RELATION})\s+(?P<n2>\d+)\s*(?:letters?|characters?|chars?)?", self.work):
            n = int(m.group("n") or m.group("n2"))
            rel = relation_of(m.group("rel")) if m.group("rel") else "le"
            try:
                count = count_of(rel if rel != "eq" else "le", n)
            except ValueError:
                continue
            if count.at_most is not None and count.at_least is None:
                self.take(m.start(), m.end(), f"no word longer than {count.at_most} characters", max_word_chars=count.at_most)
        rel = rf"(?P<rel>{RELATION})"
        pats = [
            rf"\b(?:(?P<q>no|none of the|not a single|not one|all|every|each|all the|all of the|only|use|using|with)\s+)?(?:single\s+)?words?\s+(?:should\s+|must\s+|may\s+|can\s+|will\s+)?(?:be\s+|is\s+|are\s+|having\s+|have\s+|has\s+|with\s+|of\s+|that are\s+|that is\s+|containing\s+|to\s+|at\s+)?{rel}?\s*(?P<n>\d+)\s*(?:{MEASURE})(?:\s+(?:long|in length))?(?:\s+(?P<suf>{SUFFIX_RELATION})\b)?",
            rf"\b(?:(?P<q>no|none of the|not a single|not one|all|every|each)\s+)?words?\s+(?:should\s+|must\s+|may\s+|can\s+)?(?:be\s+|is\s+|are\s+)?(?P<rel2>longer|more|shorter|fewer|less)\s+than\s+(?P<n2>\d+)\s*(?:{MEASURE})",
        ]
        for pat in pats:
            for m in re.finditer(pat, self.work):
                if m.groupdict().get("n2"):
                    n, rel_words, meas = int(m.group("n2")), m.group("rel2") + " than", measure_of(m)
                else:
                    n, meas = int(m.group("n")), measure_of(m)
                    rel_words = m.group("rel") or m.group("suf")
                if meas != "character":
                    continue
                q = (m.group("q") or "").strip()
                try:
                    count = count_of(relation_of(rel_words), n, negated=q in NEGATORS or q.startswith("none") or q.startswith("not"))
                except ValueError:
                    continue
                if count.at_most is not None and count.exactly is None and count.at_least is None:
                    self.take(m.start(), m.end(), f"no word longer than {count.at_most} characters", max_word_chars=count.at_most)
                else:
                    self.refused.append(f"{self.text[m.start():m.end()].strip()} (only a longest word length is supported)")
                    self.consume(m.start(), m.end())

    def counts(self) -> None:
        pat = re.compile(
            rf"(?:(?P<rel>{RELATION})\s+)?(?:(?:between|from)\s+(?P<lo>\d+)\s*(?:-|–|to|and)\s*(?P<hi>\d+)|(?P<lo2>\d+)\s*(?:-|–|to)\s*(?P<hi2>\d+)|(?P<n>\d+))"
            rf"(?:\s+(?P<mid>{SUFFIX_RELATION}))?(?:\s*-\s*|\s+)(?:(?:short|long|brief|little|simple|rhyming|full|complete|separate|distinct|different|whole|single|new|good|nice)\s+){{0,2}}(?:{MEASURE})\b(?:[- ]long|\s+in length)?(?:\s+(?P<total>in total|total|altogether|overall|combined|all together))?(?:\s+(?P<suf>{SUFFIX_RELATION})\b)?")
        inverse = re.compile(
            rf"\b(?P<mw>word|character|char|letter|sentence|line|syllable)\s+(?P<kind>count|limit|length|total)\s*(?:of|:|is|=|must be|should be|needs to be|has to be|to be|at)?\s*"
            rf"(?:(?:between|from)\s+(?P<lo>\d+)\s*(?:-|–|to|and)\s*(?P<hi>\d+)|(?P<lo2>\d+)\s*(?:-|–|to)\s*(?P<hi2>\d+)|(?:(?P<rel>{RELATION})\s+)?(?P<n>\d+)(?:\s+(?P<suf>{SUFFIX_RELATION})\b)?)")
        for m in inverse.finditer(self.work):
            meas = noun_unit(m.group("mw") + "s")
            if m.group("lo") or m.group("lo2"):
                lo, hi = sorted((int(m.group("lo") or m.group("lo2")), int(m.group("hi") or m.group("hi2"))))
                self.count(m.start(), m.end(), meas, Count(at_least=lo, at_most=hi), "range")
                continue
            rel = relation_of(m.group("rel") or m.group("suf"))
            if m.group("kind") == "limit" and rel == "eq":
                rel = "le"
            self.count(m.start(), m.end(), meas, count_of(rel, int(m.group("n"))), rel)
        two = re.compile(rf"(?P<r1>{RELATION})\s+(?P<n1>\d+)\s*(?:,\s*)?(?:and|but|yet)\s+(?P<r2>{RELATION})\s+(?P<n2>\d+)\s*(?:{MEASURE})\b")
        for m in two.finditer(self.work):
            try:
                count = merge(count_of(relation_of(m.group("r1")), int(m.group("n1"))),
                              count_of(relation_of(m.group("r2")), int(m.group("n2"))))
            except ValueError:
                continue
            self.count(m.start(), m.end(), measure_of(m), count, "range")
        for m in pat.finditer(self.work):
            if self.work[m.start():m.end()].count("\x00"):
                continue
            meas = measure_of(m)
            if m.group("lo") or m.group("lo2"):
                lo, hi = int(m.group("lo") or m.group("lo2")), int(m.group("hi") or m.group("hi2"))
                if lo > hi:
                    lo, hi = hi, lo
                count, rel = Count(at_least=lo, at_most=hi), "range"
            else:
                rel = relation_of(m.group("rel") or m.group("mid") or m.group("suf"))
                count = None
            self.count(m.start(), m.end(), meas, count, rel, int(m.group("n")) if m.group("n") else None,
                       total=bool(m.group("total")))
        # "more than 15 words but fewer than 35": the second bound's measure is the first's
        for rec in list(self.records):
            fields = [k for k in rec.updates if k in ("words", "characters", "sentences", "lines", "paragraphs",
                                                       "words_per_sentence", "words_per_line")]
            if not fields:
                continue
            m = re.match(rf"\s*,?\s*(?:but|and|yet|though)\s+(?P<rel>{RELATION})\s+(?P<n>\d+)\b(?!\s*(?:{MEASURE}))", self.work[rec.span[1]:])
            if m:
                try:
                    count = count_of(relation_of(m.group("rel")), int(m.group("n")))
                except ValueError:
                    continue
                a, b = rec.span[1], rec.span[1] + m.end()
                self.take(a, b, _describe_field(fields[0], count), **{fields[0]: count})
        # "a sentence longer than 10 words" / "none of them longer than 8 words"
        adj = re.compile(rf"\b(?P<adj>longer|shorter|more|fewer|less|over|under)\s+than\s+(?P<n>\d+)\s*(?:{MEASURE})")
        for m in adj.finditer(self.work):
            if self.work[m.start():m.end()].count("\x00"):
                continue
            self.count(m.start(), m.end(), measure_of(m), None, relation_of(m.group("adj") + " than"), int(m.group("n")))

    def count(self, start, end, meas, count, rel, n=None, total=False) -> None:
        c0, c1 = self.clause_bounds(start, end)
        pre, post = self.text[c0:start], self.text[end:c1]
        cut = None
        for cut in re.finditer(r"\b(?:and|but|then|plus|also)\s+(?!has\b|have\b|is\b|are\b|contains?\b|uses\b|should\b|must\b|needs?\b|will\b|shall\b|each\b|every\b|all\b|none\b|no\b)", pre):
            pass
        if cut is not None:
            c0, pre = c0 + cut.end(), pre[cut.end():]
        if re.search(r"\b(?:who|that|which|whose)\s+(?:\w+\s+){0,2}?(?:says?|said|speaks?|spoke|knows?|knew|learns?|learned|"
                     r"hands?\s+down|handed\s+down|reads?|hears?|heard|sings?|sang|remembers?|forgets?|forgot|receives?|"
                     r"sends?|sent|gets?|got|finds?|found|loses?|lost|carries|carry)\s+(?:only\s+|just\s+)?$", pre):
            return  # "a parrot that can only say one word": the count is the story's, not the text's
        scope, negated, s0 = None, False, start
        m = None
        for cand in SCOPE_PRE.finditer(pre):
            if cand.group("noun") is None and cand.group("q") in ("no", "nor", "any"):
                continue  # "no 'stars'": a determiner, not a scope
            if len(pre) - cand.end() > 30:
                continue  # too far to be the count's scope
            m = cand
        if m and not total:
            q = m.group("q")
            noun = m.group("noun")
            if noun and noun.startswith("one"):
                noun = None
            scope = noun_unit(noun.rstrip("s") + "s") if noun else self.antecedent(start)
            negated = q in NEGATORS
            if q in ("both",) and not noun:
                scope = self.antecedent(start)
            s0 = c0 + m.start()
        if scope is None and not total:
            mu = re.search(r"\b(?P<noun>sentences|lines|paragraphs|verses)\s+(?:(?:that are|which are|each|all)\s+)?(?:of|with|having|containing|that have|no|not)?\s*$", pre)
            if mu and noun_unit(mu.group("noun")) != meas:
                scope = noun_unit(mu.group("noun"))
                each = re.match(r"\s*(?:each|apiece|per (?:sentence|line|paragraph)|in each)\b", post)
                if each:
                    end += each.end()
        if scope is None and not total:
            mp = SCOPE_POST.match(post)
            if mp:
                scope = noun_unit(mp.group("noun").rstrip("s") + "s") if mp.group("noun") else self.container(start, meas)
                end = end + mp.end()
                late = re.match(rf"\s+(?P<suf>{SUFFIX_RELATION}|exactly|precisely)\b", self.text[end:])
                if late and count is None and rel == "eq":
                    rel = relation_of(late.group("suf"))
                    end += late.end()
        if scope == meas:
            scope = None
        try:
            if count is None:
                count = count_of(rel, n, negated)
        except ValueError as exc:
            self.refused.append(f"{self.text[s0:end].strip()} ({exc})")
            self.consume(s0, end)
            return
        field_ = {
            (None, "word"): "words", (None, "character"): "characters", (None, "sentence"): "sentences",
            (None, "paragraph"): "paragraphs", (None, "line"): "lines",
            ("sentence", "word"): "words_per_sentence", ("line", "word"): "words_per_line",
            ("paragraph", "sentence"): "sentences_per_paragraph", ("word", "character"): "max_word_chars",
            ("line", "syllable"): "syllables_per_line",
        }.get((scope, meas))
        if scope in ("text",):
            field_ = {"word": "words", "character": "characters", "sentence": "sentences",
                      "paragraph": "paragraphs", "line": "lines"}.get(meas)
        if field_ is None:
            return  # left over, reported as not understood
        if field_ == "max_word_chars":
            if count.at_most is None or count.at_least is not None or count.exactly is not None:
                return
            value: Any = count.at_most
        elif field_ == "syllables_per_line":
            if count.exactly is None:
                return
            value = count.exactly
        else:
            value = count
        if field_ in ("sentences", "lines", "paragraphs") and count.exactly is not None and count.exactly > 1 or \
                field_ in ("sentences", "lines", "paragraphs") and count.exactly is None:
            self.plural.append((start, meas))
        if field_ in ("sentences", "paragraphs", "lines") and count == Count(exactly=1):
            self.unit = {"sentences": "sentence", "paragraphs": "paragraph"}.get(field_, self.unit)
            if field_ == "lines":
                self.take(s0, end, "1 line", lines=count)
                return
            self.consume(s0, end)
            return
        what = _describe_field(field_, value)
        self.take(s0, end, what, **{field_: value})

    def container(self, at: int, meas: str) -> str | None:
        """What "each" at the end refers to: "4 sentences of 10 words each" -> sentence."""
        bigger = {"word": ("sentence", "line"), "sentence": ("paragraph",), "character": ("word",),
                  "syllable": ("line",)}.get(meas, ())
        for m in reversed(list(re.finditer(r"\b\d+\s+(sentences|lines|paragraphs|verses)\b", self.text[:at]))):
            unit = noun_unit(m.group(1))
            if unit in bigger:
                return unit
        unit = self.antecedent(at)
        return unit if unit in bigger else None

    def count_nouns(self) -> None:
        """"One-sentence", "single sentence" name the unit; a couplet, tercet or quatrain is a
        number of lines; "a few words" is no count at all."""
        for m in re.finditer(r"\b(?:a\s+|one\s+|(?P<k>\d+)\s+)?(?P<g>couplet|tercet|quatrain)(?P<pl>s)?\b", self.work):
            if m.group("pl") and not m.group("k"):
                continue  # "in couplets": a rhyme pattern, not a count
            n = {"couplet": 2, "tercet": 3, "quatrain": 4}[m.group("g")] * int(m.group("k") or 1)
            self.take(m.start(), m.end(), f"a {m.group('g')}: {n} lines", lines=Count(exactly=n))
            self.genre = self.genre or m.group("g")
        for m in re.finditer(r"\b(?:a few|a couple of|a couple|some|several|a handful of)\s+(?:short\s+)?(?:words|sentences|lines)\b", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:1|a single|single|one)[- ](?P<u>sentence|paragraph|line)\b", self.work):
            self.unit = {"sentence": "sentence", "paragraph": "paragraph"}.get(m.group("u"), self.unit)
            self.consume(m.start(), m.end())

    def units(self) -> None:
        for m in re.finditer(r"\b(?:a|an|the)\s+(?:short\s+|little\s+|thank-you\s+|love\s+|formal\s+)?letter\s+(?=to\b|for\b|from\b|that\b|which\b|about\b)", self.work):
            self.genre = self.genre or "letter"
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:a|one|1|single|a single)\s+(?:(?:short|little|quick|simple|catchy|single)\s+)?line\b(?!\s+(?:of|per|for|each|break))", self.work):
            self.genre = self.genre or "line"
            self.consume(m.start(), m.end())
        for m in re.finditer(rf"\b(?:(?:a|an|one|1|single|the|your|short|brief|little|quick|simple|nice|cute|funny|lovely|single|new|catchy|fun|small|tiny)\s+)*(?P<g>{GENRES})\b", self.work):
            g = m.group("g")
            if g.startswith("sentence") or g == "sentance":
                if g in ("sentence", "sentance") and self.unit == "text":
                    self.unit = "sentence"
                elif g == "sentences":
                    self.unit = "paragraph"
            elif g.startswith("paragraph") or g == "passage":
                self.unit = "paragraph"
            else:
                self.genre = self.genre or g
            self.consume(m.start(), m.end())

    def glue(self) -> None:
        """Words that only introduce a clause already read ("make sure", "using", "it must"):
        consumed with it, so they are not reported as not understood."""
        for m in re.finditer(r"\b(?:and\s+|but\s+|also\s+|please\s+)*(?:(?:make\s+sure|ensure|be\s+sure|remember|note)\s+(?:that\s+)?(?:you\s+)?(?:it\s+)?"
                             r"|(?:it|this|that|the text|your text|the answer|the poem|each one)?\s*(?:must|should|has to|needs to|will|shall)\s+(?:also\s+)?(?:be\s+|use\s+|have\s+|contain\s+|follow\s+)?"
                             r"|(?:while\s+|by\s+)?using\s+(?:only\s+)?|with\s+(?:only\s+)?"
                             r"|(?:use|uses|write|give|keep|have|has|had|contain|contains|containing|include|includes|including|add|adds|adding|make it|it has|it uses|and)\s+(?:only\s+|just\s+|exactly\s+)?"
                             r"|(?:that|which|and)\s+(?:includes?|contains?|has|have|uses?|is|are)\s+)(?=\x00)", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:and\s+)?(?:make\s+sure|be\s+sure|remember|don'?t\s+forget)\s+to\s+(?:use|include|add|tag|mention|put|have|give|keep|write)?\s*(?=\x00)"
                             r"|\b(?:and\s+)?(?:featuring|feature|features|tag|tagging|mention|mentioning|shout(?:ing)?\s+out(?:\s+to)?|plus|thanking|thank)\s+(?=\x00)", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:and\s+)?(?:make\s+sure|ensure|be\s+sure)\s+(?:that\s+)?(?:you\s+)?(?:it\s+|the text\s+|the answer\s+|your answer\s+)?(?:has|have|is|uses|use|contains|includes|gets|stays)?\s*(?=\x00)", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:and\s+)?(?:end|finish|close|start|begin|sign off)\s+(?:it|the (?:post|tweet|text|caption|message))?\s*(?:(?:with|on|by)\s+)?(?=\x00)", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:with\s+)?(?:the\s+)?lines?\s+(?:of|with|having)\s+(?=\x00)|\b(?:1|one)\s+(?:each|apiece|per (?:person|kid|child))\b"
                             r"|\bnumbered(?:\s+\d\.?)*|\b(?:with\s+)?no\s+(?:dashes|bullets|bullet points)\b", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\b(?:and\s+)?(?:stick|put|pop|add|tack|slap)\s+(?:on\s+)?(?=\x00)|(?<=\x00)\s*(?:on|at)\s+the\s+(?:end|bottom)\b", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"\bcounting\s+from\s+the\s+(?:start|beginning|left|first word)\s*,?", self.work):
            self.consume(m.start(), m.end())
        for m in re.finditer(r"(?<=\x00)\s*(?:only|please|too|as well|at all|in it|in the text|throughout)\b", self.work):
            self.consume(m.start(), m.end())

    # -- topic and leftovers --------------------------------------------------------------
    def topic(self) -> str | None:
        w = self.work
        for mm in re.finditer(r"\b(?:each|every|all)\s+(?:lines?|sentences?|verses?|ones?|of them)\s+(?:should|must|has to|needs to|will|can)?\s*(?:be|is|are)?\s*(?=about\b)", w):
            self.consume(mm.start(), mm.end())
        w = self.work
        m = re.search(r"\b(?:(?:topic|subject|theme)\s*(?::|-|=|is)|about|regarding|concerning|on the (?:topic|subject|theme) of|on the theme|themed around|on|describing|featuring|celebrating|for|(?:(?<=description )|(?<=portrait )|(?<=picture )|(?<=review )|(?<=summary )|(?<=story )|(?<=poem )|(?<=list ))of|explaining|around)\s+(?P<t>[^\x00.;!?,:]+)", w)
        chosen = None
        if m:
            chosen = m
        if chosen is None:
            m = re.search(r"\b(?:describe|describes|describing|explain|explains|praise|celebrate|advertise|promote|introduce|review|summari[sz]e|tell me about|talk about|thank|invite)\s+(?P<t>[^\x00.;!?,:]+)", w)
            chosen = m
        topic = None
        if chosen is not None:
            span = chosen.group("t")
            for mv in re.finditer(r"\s+(?:and|but|then|while|so)\s+(?:(?:please|also|then)\s+)?(?P<v>[a-z]+)\b", span):
                if mv.group("v") in VERBS or mv.group("v") in ("write", "make", "keep", "give", "finish", "end", "start", "begin"):
                    span = span[:mv.start()]  # "about yoga and end it with …": the topic stops at the next verb
                    break
            cut = _topic_cut(span)
            if cut:
                span = span[:cut.start()]
            span = re.sub(r"\s+\b(?:and|with|that|which|where|but|in|using|please|pls|thanks|for me|to|it|so)\s*$", "", span.strip())
            span = re.sub(r"\s+\b(?:and|with|that|which|where|but|in|using|please|pls|thanks|for me|to|it|so)\s*$", "", span.strip())
            if span and span not in STOP_WORDS:
                topic = span.strip()
                start = chosen.start("t")
                self.consume(chosen.start(), start + len(span))
        if topic is None and self.topic_hint:
            topic = self.topic_hint
        if topic is None:
            rest = FILLERS.sub(" ", self.work.replace("\x00", " "))
            rest = re.sub(r"[^\w' -]", " ", rest)
            words = [x for x in rest.split() if not CUES.search(x) and x not in STOP_WORDS]
            if words and len(words) <= 8:
                first = re.search(rf"\b{re.escape(words[0])}\b", self.work)
                last = None
                for last in re.finditer(rf"\b{re.escape(words[-1])}\b", self.work):
                    pass
                span = self.work[first.start():last.end()] if first and last and last.end() > first.start() else ""
                if span and "\x00" not in span:
                    topic = span
        if not topic:
            return None
        topic = self._as_written(topic)
        # As the user wrote it where it can be found ("a quiet Sunday morning", not "sunday")
        m = re.search(re.escape(topic).replace("\\ ", r"\s+"), self.original, re.I)
        return m.group(0) if m else topic

    def _as_written(self, topic: str) -> str:
        return PLACEHOLDER_RE.sub(lambda m: self.prep.quotes[int(m.group(1))], topic).strip(" ,.-")

    def leftovers(self) -> list[str]:
        out = []
        for piece in re.split(r"[.;!?\n]|,(?!\d)|\x00+", self.work):
            piece = piece.strip(" ,:-()")
            if not piece:
                continue
            if CUES.search(piece):
                out.append(self._as_written(piece))
        return out

    # -- the spec ---------------------------------------------------------------------------
    def assemble(self, topic: str | None) -> tuple[ConstraintSpec, list[Understood]]:
        try:  # all at once first: a constraint may need a later one (syllables per line, then the lines)
            spec = self.build(self.records, topic)
            return spec, [Understood(clause=_restore(self.prep, r.clause), constraint=r.constraint or self.rhyme_text(spec))
                          for r in self.records]
        except ValueError:
            pass
        accepted: list[_Record] = []
        for rec in self.records:
            trial = accepted + [rec]
            try:
                self.build(trial, topic)
                accepted = trial
            except ValueError as exc:
                self.refused.append(f"{rec.clause} ({_reason(exc)})")
        spec = self.build(accepted, topic)
        return spec, [Understood(clause=_restore(self.prep, r.clause), constraint=r.constraint or self.rhyme_text(spec))
                      for r in accepted]

    def scheme_of(self, rhyme: tuple[str, dict], data: dict) -> str:
        kind, extra = rhyme
        n = _n_lines(data)
        if kind == "pairs" and extra.get("couplets"):
            if n is None:
                n = 2 * extra["couplets"]
                data["lines"] = Count(exactly=n)
        if kind == "groups":
            top = max([i for g in extra["groups"] for i in g if isinstance(i, int)] or [0])
            if n is None and top:
                n = max(top, 4 if top > 2 else top)
                data["lines"] = Count(exactly=n)
        if n is None:
            n = 4
            self.notes.append("no line count given for the rhymes: 4 lines")
            data["lines"] = Count(exactly=4)
        if kind == "some":
            self.notes.append("'rhyming' read as rhyming couplets (AABB…)")
        if kind in ("pairs", "some"):
            groups = [[i, i + 1] for i in range(1, n, 2)]
            if n % 2 and n > 1:
                groups[-1].append(n)
        elif kind == "alternate":
            groups = [[i, i + 2] for i in range(1, n - 1, 4)] + [[i, i + 2] for i in range(2, n - 1, 4)]
        elif kind == "all":
            groups = [list(range(1, n + 1))]
        else:
            groups = []
            for g in extra["groups"]:
                if g and isinstance(g[0], tuple):
                    which, k = g[0]
                    g = {"first": list(range(1, k + 1)), "last": list(range(n - k + 1, n + 1)),
                         "outer": [1, n], "inner": list(range(2, n))}[which]
                if any(i < 1 or i > n for i in g) or len(set(g)) < 2:
                    raise ValueError(f"lines {', '.join(map(str, g))} of {n} cannot rhyme")
                groups.append(g)
        return _scheme(n, groups)

    def rhyme_text(self, spec: ConstraintSpec) -> str:
        return f"line ends rhyme as {spec.rhyme_scheme}" if spec.rhyme_scheme else ""

    def build(self, records: list[_Record], topic: str | None) -> ConstraintSpec:
        data: dict[str, Any] = {"unit": self.unit}
        every_end: list[tuple[str, str]] = []
        edges, lists, rhyme, per_line_syll = [], [], None, None
        for rec in records:
            for key, value in rec.updates.items():
                if key in ("words", "characters", "sentences", "paragraphs", "lines", "words_per_sentence",
                           "words_per_line", "sentences_per_paragraph"):
                    data[key] = merge(data.get(key), value)
                elif key in ("include", "exclude", "avoid_letters", "hashtags", "mentions"):
                    data[key] = list(dict.fromkeys(data.get(key, []) + list(value)))
                elif key == "word_positions":
                    data.setdefault("word_positions", {}).update(value)
                elif key == "every_end":
                    every_end.append(value)
                elif key == "edge":
                    edges.append(value)
                elif key in ("ends_list", "starts_list"):
                    lists.append((key, value))
                elif key == "rhyme":
                    rhyme = value
                elif key == "syllables_per_line":
                    per_line_syll = value
                else:
                    data[key] = value
        if data.get("sentences") and data["unit"] == "sentence" and data["sentences"] != Count(exactly=1):
            data["unit"] = "paragraph"
        in_lines = any(k in data for k in ("lines", "acrostic", "line_syllables", "line_first_word", "words_per_line")) \
            or rhyme is not None or any(k == "line" for k, _ in every_end) or self.genre in ("poem", "haiku", "limerick", "poems", "verse", "song", "lyrics", "rhyme", "couplet")
        n_lines = _n_lines(data)
        for kind, word in every_end:
            if kind == "line":
                n = n_lines or 4
                if n_lines is None:
                    self.notes.append("no line count given: 4 lines")
                    data["lines"] = Count(exactly=4)
                data["line_last_words"] = [word] * n
            else:
                n = data["sentences"].exactly if data.get("sentences") and data["sentences"].exactly else (1 if data["unit"] == "sentence" else None)
                if n is None:
                    raise ValueError("every sentence ending with a word needs a number of sentences")
                data["sentence_last_words"] = [word] * n
        for key, (kind, values) in lists:
            if key == "ends_list":
                data["line_last_words" if kind == "line" else "sentence_last_words"] = list(values)
                if kind == "sentence":
                    data["unit"] = "paragraph"
            else:
                if kind == "line":
                    raise ValueError("words that start given lines are not supported")
                for i, v in enumerate(values, 1):
                    data.setdefault("sentence_starts", {})[i] = v
        for kind, side, which, word in edges:
            if kind == "line":
                n = n_lines
                if side == "end" and n is not None and which in (n, -1):
                    data.setdefault("sentence_ends", {})[-1] = word
                    continue
                if side == "start" and which == 1:
                    data.setdefault("word_positions", {})[1] = word
                    continue
                raise ValueError("a word that starts or ends one given line is not supported")
            if kind == "text":
                if side == "start":
                    data.setdefault("word_positions", {})[1] = word
                else:
                    data.setdefault("sentence_ends", {})[-1] = word
                continue
            key = "sentence_starts" if side == "start" else "sentence_ends"
            data.setdefault(key, {})[which] = word
            if data["unit"] == "sentence" and which not in (1, -1):
                data["unit"] = "paragraph"
        if rhyme is not None:
            data["rhyme_scheme"] = self.scheme_of(rhyme, data)
        if per_line_syll is not None:
            n_lines = _n_lines(data)
            if n_lines is None:
                raise ValueError("syllables per line need a number of lines")
            data["line_syllables"] = [per_line_syll] * n_lines
        if in_lines and data["unit"] == "sentence":
            data["unit"] = "text"
        if self.genre and in_lines:
            data["genre"] = self.genre
        elif self.genre:
            data["genre"] = self.genre
        if topic:
            data["topic"] = topic
        try:
            spec = ConstraintSpec.model_validate(data)
        except ValidationError as exc:
            raise ValueError(_reason(exc)) from None
        _feasible(spec)
        return spec


PLACEHOLDER_RE = re.compile(r"«(\d+)»")


def _topic_cut(span: str) -> re.Match | None:
    """Where a topic phrase stops: at the first cue of a constraint. "The end of summer", "a new
    beginning", "my first day" are topics, not constraints."""
    for cut in CUES.finditer(span):
        rest = span[cut.start():]
        if re.match(r"(?:start|starts|starting|begin|begins|beginning|end|ends|ending)\b", rest) and \
                not re.match(r"\w+\s+(?:with|in|on|by)\b", rest):
            continue
        if re.match(r"\d+(?:st|nd|rd|th)\b(?![- ](?:word|line|sentence|letter|paragraph|syllable|person))", rest):
            continue
        return cut
    return None


def _restore(prep: Prepared, text: str) -> str:
    return PLACEHOLDER_RE.sub(lambda m: f"'{prep.quotes[int(m.group(1))]}'", text)


def _is_scheme(token: str) -> bool:
    """"abab", "aabb", "abcb": letters in order of first use, one at least repeated."""
    token = token.lower()
    if not re.fullmatch(r"[a-h]{2,12}", token) or len(set(token)) == len(token):
        return False
    seen = []
    for c in token:
        if c not in seen:
            if ord(c) != ord("a") + len(seen):
                return False
            seen.append(c)
    return True


def _scheme(n: int, groups: list[list[int]]) -> str:
    """A scheme of n lines where each group of lines shares a letter (the rest rhyme with
    nothing): groups [[1, 3], [2, 4]] in 4 lines -> ABAB; [[1, 3]] -> ABAC."""
    owner: dict[int, int] = {}
    for gi, g in enumerate(groups):
        for i in g:
            owner.setdefault(i, gi)
    letters, given = [], {}
    for line in range(1, n + 1):
        key = ("g", owner[line]) if line in owner else ("line", line)
        if key not in given:
            given[key] = chr(ord("A") + len(given))
        letters.append(given[key])
    return "".join(letters)


def _ordinal(text: str | None) -> int | None:
    if text is None:
        return None
    if text in ("last", "final"):
        return -1
    if text == "penultimate":
        return None
    m = re.match(r"(\d+)", text)
    return int(m.group(1)) if m else None


def _n_lines(data: dict) -> int | None:
    for key in ("acrostic", "line_syllables", "line_last_words", "rhyme_scheme"):
        if data.get(key):
            return len(data[key])
    lines = data.get("lines")
    return lines.exactly if lines is not None and lines.exactly is not None else None


def _describe_field(field_: str, value: Any) -> str:
    nouns = {"words": "words", "characters": "characters", "sentences": "sentences", "paragraphs": "paragraphs",
             "lines": "lines", "words_per_sentence": "words in every sentence", "words_per_line": "words in every line",
             "sentences_per_paragraph": "sentences in every paragraph"}
    if field_ == "max_word_chars":
        return f"no word longer than {value} characters"
    if field_ == "syllables_per_line":
        return f"{value} syllables in every line"
    return value.describe(nouns[field_])


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
    return str(exc)


def _feasible(spec: ConstraintSpec) -> None:
    """Readings no text can meet: said so, never run."""
    n = spec.sentences.exactly if spec.sentences and spec.sentences.exactly is not None else None
    per = spec.words_per_sentence
    if spec.words and n and per:
        lo, hi = n * per.low(), (n * per.high() if per.high() is not None else None)
        w_lo, w_hi = spec.words.low(), spec.words.high()
        if (w_hi is not None and w_hi < lo) or (hi is not None and w_lo > hi):
            raise ValueError(f"{n} sentences of {per.describe('words')} cannot make {spec.words.describe('words')}")
    if spec.words and spec.words.high() is not None:
        top = spec.words.high()
        far = max([p for p in spec.word_positions if p > 0] or [0])
        if far > top:
            raise ValueError(f"word {far} is asked for in a text of at most {top} words")
        if len(spec.include) > top:
            raise ValueError(f"{len(spec.include)} words to use do not fit in {top} words")
    if spec.characters and spec.characters.high() is not None and spec.words and spec.words.low() > 0:
        if 2 * spec.words.low() - 1 > spec.characters.high():
            raise ValueError(f"{spec.words.low()} words need more than {spec.characters.high()} characters")
    if spec.paragraphs and spec.sentences and spec.paragraphs.low() > (spec.sentences.high() or 10**6):
        raise ValueError("more paragraphs than sentences")
