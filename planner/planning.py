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

from planner.library import plan, plan_reading
from planner.llm import LLMPlanner, PlannerFailed, Usage
from planner.parse import Reading
from planner.spec_writer import SpecWriter


class PlannedProgram(BaseModel):
    source: str
    prompt: str = Field(description="What the program is given as its prompt.")
    recognised: list[str] = Field(default_factory=list)
    reading: Reading | None = Field(None, description="How the request was read: what `passed` is judged by.")
    rounds: int = 256
    report: PlannerReport
    usage: Usage = Field(default_factory=Usage)


async def make_program(
    request: str,
    llm: LLMPlanner | None = None,
    max_tokens: int = 64,
    given_source: str | None = None,
) -> PlannedProgram:
    """The program for `request`. Raises ValueError only for a malformed JSON spec."""
    started = time.monotonic()
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
