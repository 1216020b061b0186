"""One request, end to end: plan the program, run it over the follower pool, account for it.

The PlannerActor (`actors/planner.py`) wraps a `CouncilRunner` in a Ray actor; the CLI uses
one in-process. The runner knows replicas only as `ReplicaHandle`s, so it runs without Ray in
tests.

    runner = CouncilRunner(cfg, pool.replica_handles)
    result = await runner.run(RunRequest(prompt="Write an acrostic for HOPE."))
    result.planner.path, result.ledger.usd

With several follower pools, give them by name (`pools=Pools.of_routers(...)`): a task
that names no pool or asks for `council-auto` is routed by the config's rules
(`cluster/routes.py`), and the result says where it went and why (`result.route`).
"""

from __future__ import annotations

import contextvars
import json
import uuid
from typing import Awaitable, Callable

from council_sdk.types import (
    AVAILABLE_STRATEGIES, MAX_PROMPT_CHARS, CouncilResult, RoundTrace, TaskRequest, UnderstoodClause,
)
from pydantic import BaseModel, ConfigDict, Field

from cluster.config import CouncilConfig
from cluster.ledger import CostLedger
from cluster.pools import Pools
from cluster.protocol import ProgramSpec, ReplicaHandle, ReplicaLost
from cluster.routes import AUTO, choose_route
from cluster.scheduler import InferenceConfig, Scheduler, SchedulerCheckpoint
from cluster.strategies import STRATEGIES, StrategyContext
from cluster.strategies.base import Followers
from cluster.twist import TextTwist
from planner.claims import judge
from planner.grammar import GrammarSpec, from_response_format
from planner.llm import ChatModel, LLMPlanner
from planner.parse import Reading, read_request
from planner.planning import PlannedProgram, make_program
from planner.sandbox import ProgramError
from planner.spec import ConstraintSpec




class RunRequest(BaseModel):
    """A task for the council (what crosses the PlannerActor boundary)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS,
                        description="The request, in words or as a JSON constraint spec.")
    program: str | None = Field(None, max_length=100_000, description="Run this program instead of planning one.")
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    max_tokens: int = Field(64, ge=1, le=4096, description="Token cap when no constraint is recognised.")
    include_program: bool = Field(False, description="Return the program's source with the result.")
    grammar: GrammarSpec | None = Field(None, description="Structured output every answer must match.")
    temperature: float | None = Field(None, ge=0.0, le=2.0, description="Structured output: the followers' "
                                      "temperature (the library's default when None).")
    pool: str | None = Field(None, description="The follower pool whose replicas run the particles "
                             "(None: the default pool).")
    twist_pool: str | None = Field(None, description="A second pool whose model also weighs the "
                                   "particles, by their text (`cluster/twist.py`).")
    twist_weight: float = Field(1.0, gt=0.0, le=4.0)


# The pool a request's particles will run on, for the LLM planner's dry run of its program
# (a program is tried on the model that will run it); set around planning in `run`.
_planning_pool: contextvars.ContextVar[str | None] = contextvars.ContextVar("planning_pool", default=None)

OnRound = Callable[[RoundTrace], Awaitable[None] | None]
OnPlanned = Callable[[PlannedProgram], None]


class TaskCheckpoint(BaseModel):
    """An SMC request as of its last round: the program it runs and the scheduler's state.
    Another runner continues the request from it (`run_task(..., resume=)`), planning nothing
    again."""

    planned: PlannedProgram
    scheduler: SchedulerCheckpoint
    pool: str | None = None  # the pool whose replicas hold the particles (None: the default)
    # The rounds so far, from the round events the store kept (not sent with every round's
    # checkpoint: it grows with the run); set by whoever resumes.
    trace: list[RoundTrace] = Field(default_factory=list, exclude=True)


OnCheckpoint = Callable[[TaskCheckpoint], None]


def claim(result: CouncilResult, reading: Reading, grammar: GrammarSpec | None = None,
          grammar_clause: str = "response_format") -> CouncilResult:
    """Set what the result may claim (`passed`), judged apart from the program that ran. With a
    grammar, the answer is checked against it (jsonschema, re) before anything else."""
    verdict = judge(reading, result.text)
    if grammar is not None:
        ok, why = grammar.verify(result.text)
        if ok is None:
            verdict = verdict.model_copy(update={"passed": None, "reason": f"the format was not verified: {why}"})
        elif not ok:
            verdict = verdict.model_copy(update={"passed": False, "reason": f"the answer fails the format: {why}"})
        elif reading.spec.is_empty() and not reading.not_understood:
            verdict = verdict.model_copy(update={"passed": True, "reason": None})
    result.passed, result.passed_reason = verdict.passed, verdict.reason
    result.understood = ([UnderstoodClause(clause=grammar_clause, constraint=grammar.describe())] if grammar else []) + [
        UnderstoodClause(clause=u.clause, constraint=u.constraint) for u in reading.understood]
    result.not_understood = list(reading.not_understood)
    return result


def reading_of(prompt: str) -> Reading:
    try:
        return read_request(prompt)
    except ValueError as exc:  # a prompt that starts like JSON but is no spec
        return Reading(spec=ConstraintSpec(), not_understood=[f"the request ({exc})"])


def check_runnable(task: TaskRequest, config: CouncilConfig | None = None) -> None:
    """Refuse, before anything is queued, a task no strategy can run (ValueError). With the
    config, the route is checked too (a pool it does not have)."""
    if config is not None or task.strategy == AUTO:
        route = choose_route(task, config or CouncilConfig(), reading_of(task.prompt or ""), _grammar_of(task))
        task = task.model_copy(update={"strategy": route.strategy})
    if task.strategy == "council-smc":
        request = run_request(task)
        if request.grammar is not None:
            request.grammar.check()  # GrammarError (a ValueError): unsupported, or too complex
    elif task.prompt is None:
        raise ValueError(f"strategy {task.strategy!r} answers a prompt, not a spec")
    elif task.response_format is not None and task.response_format.type != "text":
        raise ValueError(f"response_format is served by the council-smc strategy, not {task.strategy!r}")


def _grammar_of(task: TaskRequest) -> GrammarSpec | None:
    if task.response_format is None:
        return None
    try:
        return from_response_format(task.response_format.wire())
    except ValueError:
        return None  # check_runnable says why, once the route is known


def run_request(task: TaskRequest, pool: str | None = None) -> RunRequest:
    """A native API task as the runner's request (a spec travels as its JSON text)."""
    if task.strategy not in AVAILABLE_STRATEGIES:
        raise ValueError(f"strategy {task.strategy!r} is not available; use one of {list(AVAILABLE_STRATEGIES)}")
    if task.strategy != "council-smc":
        raise ValueError(f"{task.strategy!r} is not run as an inference program")
    inference = {"method": task.method, "particles": task.particles, "seed": task.seed,
                 "max_wall_s": task.max_wall_s}
    if task.max_rounds is not None:
        inference["max_rounds"] = task.max_rounds
    if task.max_follower_tokens is not None:
        inference["max_tokens"] = task.max_follower_tokens
    prompt = task.prompt if task.prompt is not None else json.dumps(task.spec)
    grammar = from_response_format(task.response_format.wire()) if task.response_format else None
    return RunRequest(prompt=prompt, program=task.program, max_tokens=task.max_tokens,
                      include_program=task.include_program, inference=InferenceConfig(**inference),
                      grammar=grammar, pool=pool, twist_pool=task.twist_pool, twist_weight=task.twist_weight,
                      temperature=task.temperature if "temperature" in task.model_fields_set else None)


class CouncilRunner:
    def __init__(self, config: CouncilConfig, replicas: Callable[[], list[ReplicaHandle]] | None = None,
                 llm: LLMPlanner | None = None, followers: Followers | None = None,
                 pools: Pools | None = None):
        """`pools`: every follower pool by name; or one pool as `replicas` (the SMC
        scheduler's handles) and `followers` (sampling and scoring for the other strategies)."""
        self.config = config
        self.pools = pools or Pools.single(replicas, followers, name=config.default_pool)
        default = self.pools[self.pools.default]
        self.replicas = default.replica_handles
        self.followers = default.followers
        if llm is None and config.planner.kind == "openai":
            llm = LLMPlanner(config.planner, dry_run=self.dry_run if config.planner.dry_run else None)
        self.llm = llm
        # The planner model also answers escalations and writes signals: whenever an endpoint
        # is configured, even while the offline library writes the programs.
        self.big = llm.chat if llm else (ChatModel(config.planner) if config.planner.base_url else None)

    async def run_task(self, task: TaskRequest, emit: Callable[..., None] = lambda kind, **d: None,
                       resume: TaskCheckpoint | None = None,
                       on_checkpoint: OnCheckpoint | None = None) -> CouncilResult:
        """A native task with any strategy; progress goes to `emit(kind, **data)`. An SMC task
        reports a checkpoint after every round to `on_checkpoint` and goes on from `resume`."""
        reading = reading_of(task.prompt or "")
        route = choose_route(task, self.config, reading, _grammar_of(task))
        self.pools.check(route.pools + ([task.twist_pool] if task.twist_pool else []))
        task = task.model_copy(update={"strategy": route.strategy})
        if task.strategy == "council-smc":
            def planned(p):
                emit("planned", planner=p.report, constraints=p.recognised)
                emit("progress", message=f"route: {route.reason}")

            def round_done(trace):
                emit("round", round=trace)
                if trace.resampled:
                    emit("resampled", round=trace)

            result = await self.run(run_request(task, route.pools[0]), on_round=round_done, on_planned=planned,
                                    resume=resume, on_checkpoint=on_checkpoint)
            result.route, result.answered_by = route, route.pools[0]
            return result
        check_runnable(task)
        emit("progress", message=f"route: {route.reason}")
        ctx = StrategyContext(followers=None, big=self.big, ledger=self._ledger(), emit=emit,
                              pools=self.pools.followers(route.pools),
                              thresholds={name: self.config.pools[name].confidence_threshold
                                          for name in route.pools if name in self.config.pools
                                          and self.config.pools[name].confidence_threshold is not None})
        result = await STRATEGIES[task.strategy](task, ctx)
        result.route = route
        if result.answered_by is None:
            result.answered_by = route.pools[0]
        return claim(result, reading)

    def _ledger(self) -> CostLedger:
        return CostLedger(self.config.prices, {name: self.config.follower_price(name) for name in self.config.pools})

    async def run(self, request: RunRequest, on_round: OnRound | None = None,
                  on_planned: OnPlanned | None = None, resume: TaskCheckpoint | None = None,
                  on_checkpoint: OnCheckpoint | None = None) -> CouncilResult:
        """Raises ValueError for a malformed spec, ProgramError for a given program that fails,
        NoReplicaLeft when the pool is gone."""
        pool = (resume.pool if resume is not None else request.pool) or self.pools.default
        if resume is not None:
            planned = resume.planned
        else:
            token = _planning_pool.set(pool)
            try:
                planned = await make_program(request.prompt, self.llm, request.max_tokens, request.program,
                                             grammar=request.grammar, temperature=request.temperature)
            finally:
                _planning_pool.reset(token)
            if on_planned is not None:
                on_planned(planned)
        ledger = self._ledger()
        ledger.planner(planned.usage.prompt_tokens, planned.usage.completion_tokens,
                       calls=len(planned.report.attempts))
        twist = self._twist(planned, request)
        try:
            result = await self._run(planned, request, pool, on_round, resume, on_checkpoint, twist)
        except ProgramError as exc:
            if planned.report.path != "llm":
                raise
            # The LLM's program passed its dry run but failed later: the library answers.
            fallback = await make_program(request.prompt, None, request.max_tokens)
            fallback.report.attempts = planned.report.attempts
            fallback.report.model = planned.report.model
            lines = str(exc).strip().splitlines() or [""]
            what = lines[0] if len(lines) == 1 else f"{lines[0]} {lines[-1].strip()}"
            fallback.report.reason = f"LLM program failed while running: {what}"
            planned = fallback
            twist = self._twist(planned, request)
            result = await self._run(planned, request, pool, on_round, None, on_checkpoint, twist)
        ledger.followers(result.follower_tokens, pool)
        if twist is not None:
            ledger.followers(twist.tokens, request.twist_pool)
            result.twisted_by = request.twist_pool
        ledger.follower_prompt(result.prompt_tokens)
        result.constraints = planned.recognised
        # A program given with a response_format is not the structured template, but its
        # answer is checked against the format all the same.
        claim(result, planned.reading or reading_of(request.prompt), planned.grammar or request.grammar,
              planned.grammar_clause or "response_format")
        result.planner = planned.report
        result.ledger = ledger.snapshot()
        result.program = planned.source if request.include_program else None
        return result

    def _twist(self, planned: PlannedProgram, request: RunRequest) -> TextTwist | None:
        if request.twist_pool is None:
            return None
        followers = self.pools.followers([request.twist_pool])[request.twist_pool]
        return TextTwist(followers, planned.prompt, request.twist_weight)

    async def _run(self, planned: PlannedProgram, request: RunRequest, pool: str, on_round: OnRound | None,
                   resume: TaskCheckpoint | None = None, on_checkpoint: OnCheckpoint | None = None,
                   twist: TextTwist | None = None):
        scheduler: Scheduler | None = None
        replicas = self.pools[pool].replica_handles

        def round_done(trace):  # the checkpoint first: a round reported is a round kept
            if on_checkpoint is not None and (state := scheduler.checkpoint()) is not None:
                on_checkpoint(TaskCheckpoint(planned=planned, scheduler=state, pool=pool))
            return on_round(trace) if on_round is not None else None

        if resume is not None:
            scheduler = Scheduler.resume(resume.scheduler, replicas, round_done, resume.trace, twist)
        else:
            icfg = self._inference(planned, request, pool)
            spec = ProgramSpec(source=planned.source, prompt=planned.prompt, seed=icfg.seed,
                               limits=self.config.sandbox)
            scheduler = Scheduler(spec, icfg, replicas, on_round=round_done, twist=twist)
        return await scheduler.run()

    def _inference(self, planned: PlannedProgram, request: RunRequest, pool: str) -> InferenceConfig:
        icfg = request.inference
        if planned.report.path in ("library", "generic") and "max_rounds" not in icfg.model_fields_set:
            icfg = icfg.model_copy(update={"max_rounds": planned.rounds})
        if "replica_wait_s" not in icfg.model_fields_set:  # a pool restarting is waited for
            wait = (self.config.pools[pool] if pool in self.config.pools else self.config).pool.replica_wait_s
            icfg = icfg.model_copy(update={"replica_wait_s": min(wait, icfg.max_wall_s)})
        return icfg

    async def dry_run(self, source: str, prompt: str) -> str | None:
        """Run one particle's first step on a live replica of the pool the request will run
        on: None if it ran, else the error (with the program's traceback), which goes back to
        the LLM planner."""
        pool = _planning_pool.get() or self.pools.default
        handles = self.pools[pool].replica_handles() if pool in self.pools else self.replicas()
        if not handles:
            return None  # nothing to try it on: the sandbox check stands alone
        handle, req = handles[0], f"dry-{uuid.uuid4().hex[:12]}"
        spec = ProgramSpec(source=source, prompt=prompt, limits=self.config.sandbox)
        try:
            states = await handle.spawn(req, spec, [0])
            if not states[0].error and not states[0].finished:
                states = await handle.advance(req, [0])
            return states[0].error
        except ProgramError as exc:
            return str(exc)
        except ReplicaLost:
            return None
        finally:
            try:
                await handle.drop(req)
            except ReplicaLost:
                pass
