"""The planner chain: LLM planner → library planner → generic program.

Whatever answers, the result says which path wrote the program and why the chain fell back
(`PlannerReport`), so a user can tell "the LLM wrote this" from "the planner timed out and
the offline templates answered".

    planned = await make_program("Write an acrostic for HOPE.", llm=LLMPlanner(cfg))
    planned.source, planned.report.path, planned.report.reason
"""

from __future__ import annotations

import time

from council_sdk.types import PlannerReport
from pydantic import BaseModel, Field

from planner.grammar import GrammarSpec
from planner.library import plan, plan_reading, plan_structured
from planner.llm import LLMPlanner, PlannerFailed, Usage
from planner.parse import Reading, read_request
from planner.spec import ConstraintSpec
from planner.spec_writer import SpecWriter
from planner.structured_request import format_words, grammar_in_words


class PlannedProgram(BaseModel):
    source: str
    prompt: str = Field(description="What the program is given as its prompt.")
    recognised: list[str] = Field(default_factory=list)
    reading: Reading | None = Field(None, description="How the request was read: what `passed` is judged by.")
    rounds: int = 256
    report: PlannerReport
    usage: Usage = Field(default_factory=Usage)
    grammar: GrammarSpec | None = Field(None, description="Structured output the answers match.")
    grammar_clause: str | None = Field(None, description="The request's words the grammar came from (None: the API).")


async def make_program(
    request: str,
    llm: LLMPlanner | None = None,
    max_tokens: int = 64,
    given_source: str | None = None,
    grammar: GrammarSpec | None = None,
    temperature: float | None = None,
) -> PlannedProgram:
    """The program for `request`. Raises ValueError only for a malformed JSON spec. With a
    `grammar` (or structured output asked for in the request's words) the library's
    structured template is the program, whoever else could plan."""
    started = time.monotonic()
    if given_source is None:
        structured = _structured(request, grammar, temperature)
        if structured is not None:
            return structured
    library = plan(request, max_tokens=max_tokens)  # also validates a JSON spec early
    if given_source is not None:
        return PlannedProgram(source=given_source, prompt=request, reading=library.reading,
                              report=PlannerReport(path="given"))
    reason, attempts, usage = None, [], Usage()
    if llm is not None and request.lstrip().startswith("{"):
        reason = "a structured spec is planned by the library planner"
    elif llm is not None and llm.config.output == "spec":
        try:
            written = await SpecWriter(llm.chat, llm.config).write(request)
            read = plan_reading(written.reading, request, max_tokens=max_tokens)
            return PlannedProgram(
                source=read.source, prompt=read.prompt, recognised=read.recognised, reading=read.reading,
                rounds=read.rounds, usage=written.usage,
                report=PlannerReport(path="llm", model=llm.config.model, attempts=written.attempts,
                                     reason="the planner model read the request into a spec; a library "
                                     "template wrote the program", seconds=time.monotonic() - started),
            )
        except PlannerFailed as exc:
            reason, attempts, usage = f"LLM planner failed: {exc.reason}", exc.attempts, exc.usage
    elif llm is not None:
        try:
            written = await llm.write_program(request)
            return PlannedProgram(
                source=written.source, prompt=written.prompt, usage=written.usage, reading=library.reading,
                report=PlannerReport(path="llm", model=llm.config.model, attempts=written.attempts,
                                     cached=written.cached, seconds=time.monotonic() - started),
            )
        except PlannerFailed as exc:
            reason, attempts, usage = f"LLM planner failed: {exc.reason}", exc.attempts, exc.usage
    path = "generic" if library.template == "generic" else "library"
    return PlannedProgram(
        source=library.source, prompt=library.prompt, recognised=library.recognised,
        reading=library.reading, rounds=library.rounds, usage=usage,
        report=PlannerReport(path=path, reason=reason, attempts=attempts,
                             model=llm.config.model if llm else None,
                             seconds=time.monotonic() - started),
    )


def _structured(request: str, grammar: GrammarSpec | None, temperature: float | None) -> PlannedProgram | None:
    clause = None
    if grammar is None and not request.lstrip().startswith("{"):
        found = grammar_in_words(request)
        if found is None:
            return None
        grammar, clause = found.grammar, found.clause
    if grammar is None:
        return None
    # The rest of the request is read as any other: a constraint-like part besides the
    # format is reported (not understood), so `passed` never claims more than was checked.
    rest = format_words.sub(" ", request.replace(clause, " ") if clause else request)
    try:
        reading = read_request(rest)
    except ValueError:
        reading = Reading(spec=ConstraintSpec())
    reading = Reading(spec=ConstraintSpec(), understood=[], not_understood=reading.not_understood +
                      [u.clause for u in reading.understood], notes=reading.notes)
    planned = plan_structured(request, grammar, reading, temperature=temperature)
    return PlannedProgram(source=planned.source, prompt=planned.prompt, recognised=planned.recognised,
                          reading=reading, rounds=planned.rounds, grammar=grammar, grammar_clause=clause,
                          report=PlannerReport(path="library", reason="structured output is written by the "
                                               "library's grammar template"))
