"""What kind of request this is, for routing: constrained writing, structured output, a short
question, or open text.

    kind = request_kind("What is the capital of Peru?", grammar=None)
    kind.kind == "short-answer", kind.reason

The constraint and format readers of the planner decide the first two kinds: a request is
"structured" when a format is given or asked for in words, and "constrained" when the program
planner finds a constraint in it. A short answer is a question (or a request for one fact) of
few words that asks for no writing. A part that reads like a constraint but that the reader
could not read makes any other request "constrained" too; anything else is open text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from planner.grammar import GrammarSpec
from planner.parse import Reading
from planner.structured_request import grammar_in_words

SHORT_QUESTION_WORDS = 30
# What people put before a question ("hey, …", "ok so …", "quick q: …"): up to three of them.
_OPENERS = (r"(?:(?:so|ok|okay|hey|hi|hello|yo|um|uh|hmm|well|alright|also|and|but|btw|"
            r"please|pls|quick|quick question|question|q|sorry|excuse me|dear \w+)[,:!.]*\s+){0,3}")
# A question's opening: an interrogative, an auxiliary that opens a yes/no question, or a
# request for one fact ("name the …", "tell me …").
_ASKS = re.compile(
    r"^\s*" + _OPENERS + r"(?:"
    r"what(?:'s| is| are| was| were| does| do| did)?|who(?:'s| is| was)?|whom|whose|when|where|which|why|how"
    r"|is|are|was|were|does|do|did|can|could|will|would|should|has|have|had"
    r"|name|(?:tell|give|show) me (?:the|what|which|who|whom|when|where|how many|how much|if|whether)"
    r"|convert|calculate|compute|solve|evaluate|spell"
    r"|what's|who's|where's|how's|how many|how much|in what|in which|at what|on what)\b", re.I)
# "Why …?" and "How does …?" ask for an explanation, not one fact.
_EXPLAINS = re.compile(r"^\s*" + _OPENERS + r"(?P<asks>why\b|how\s+(?!many|much|far|long|old|tall|big|large|fast|"
                       r"high|deep|heavy|often|wide|hot|cold)\w+)", re.I)
_ARITHMETIC = re.compile(
    r"\d\s*(?:[-+*/×÷^x]|times|plus|minus|multiplied by|divided by|over|to the power of|percent of|% of)\s*\d"
    r"|\d\s*(?:squared|cubed)\b|\b(?:square root|cube root) of \d", re.I)
# Asking for writing makes it open text, however short the request.
_WRITES = re.compile(
    r"\b(?:write|compose|draft|describe|explain|elaborate|discuss|summari[sz]e|essay|story|poem|haiku|"
    r"letter|email|paragraph|paragraphs|article|blog|review|outline|brainstorm|imagine|pretend|"
    r"argue|persuade|translate|rewrite|rephrase|continue|generate|create|invent|sentences?)\b", re.I)


@dataclass(frozen=True)
class RequestKind:
    kind: str   # one of cluster.config.REQUEST_KINDS
    reason: str


def request_kind(prompt: str, reading: Reading, grammar: GrammarSpec | None = None) -> RequestKind:
    if grammar is not None:
        return RequestKind("structured", "the request gives a response format")
    found = grammar_in_words(prompt)
    if found is not None:
        return RequestKind("structured", f"the request asks for a format ({found.clause!r})")
    if not reading.spec.is_empty():
        clauses = [u.clause for u in reading.understood][:2]
        return RequestKind("constrained", "constraints were found"
                           + (f" ({'; '.join(repr(c) for c in clauses)})" if clauses else ""))
    words = len(prompt.split())
    writes = _WRITES.search(prompt)
    explains = _EXPLAINS.match(prompt)
    if writes is None and explains is None and words <= SHORT_QUESTION_WORDS:
        stripped = prompt.strip()
        if stripped.endswith("?"):
            return RequestKind("short-answer", f"a question of {words} words that asks for no writing")
        if _ASKS.match(stripped):
            return RequestKind("short-answer", f"asks for one answer in {words} words and no writing")
        if _ARITHMETIC.search(stripped):
            return RequestKind("short-answer", f"a calculation in {words} words")
    # A short question asks for no writing, so what the reader could not read in it (a
    # number, say) is no constraint on writing; elsewhere it may be one.
    if reading.not_understood:
        return RequestKind("constrained", "parts of it read like constraints "
                           f"({reading.not_understood[0]!r}), though none could be read")
    if writes is not None:
        return RequestKind("open", f"asks for writing ({writes.group(0)!r}) with no constraint found")
    if explains is not None:
        return RequestKind("open", f"asks for an explanation ({explains.group('asks').strip()!r})")
    return RequestKind("open", f"no constraint, format or short question found in {words} words")
