"""The replica side of distributed SMC: particles of many concurrent requests, on one engine.

A FollowerReplica owns one `ParticleHost`. The scheduler (cluster/scheduler.py) drives it
through spawn / advance / clone / export / import / drop; it never sees the engine, and the
host never sees global weights. Every particle's next-token request goes to the local engine,
so all particles of all requests on this replica share its autobatch.

Particle state that can travel between replicas is the program object's attributes with its
contexts reduced to token ids (`LMContext.__getstate__`); KV is rebuilt by the target's prefix
cache.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
from dataclasses import dataclass, field

import numpy as np

from actors.engines.base import Engine, GenerateRequest, encode_prompt
from cluster.scheduler import ForwardingReplicaHandle, ParticleState, ProgramSpec
from planner import program as api
from planner.masks import Vocabulary
from planner.sandbox import CompiledProgram, ProgramError, compile_program, run_step, run_sync

log = logging.getLogger(__name__)


class EngineLM:
    """The `FollowerLM` programs see: the replica's engine, its tokenizer and vocabulary."""

    def __init__(self, engine: Engine):
        self._engine = engine
        tok = engine.tokenizer
        self._tokenizer = tok
        self.eos_token_ids = engine.eos_token_ids
        self.vocab = Vocabulary.from_tokenizer(tok, engine.vocab_size, engine.eos_token_ids)

    def encode(self, text: str) -> list[int]:
        return self._tokenizer(text, add_special_tokens=False)["input_ids"]

    def encode_chat(self, text: str) -> list[int]:
        return encode_prompt(self._tokenizer, GenerateRequest(prompt=text, chat=True))

    def decode(self, ids) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=True)

    async def next_token_logprobs(self, token_ids) -> np.ndarray:
        return await self._engine.next_token_logprobs(token_ids)

    def __deepcopy__(self, memo):
        return self  # shared by every particle on this replica

    def __reduce__(self):
        return (api.process_lm, ())  # arrives as the target replica's own follower


@dataclass
class _Particle:
    model: api.Model
    rng: np.random.Generator
    error: str | None = None
    passes: bool | None = None


@dataclass
class _Request:
    spec: ProgramSpec
    program: CompiledProgram
    particles: dict[int, _Particle] = field(default_factory=dict)


class ParticleHost:
    def __init__(self, engine: Engine):
        self.lm = EngineLM(engine)
        api.register_process_lm(self.lm)
        self._requests: dict[str, _Request] = {}
        self._programs: dict[str, CompiledProgram] = {}  # by source digest: compile once

    # -- scheduler-facing operations ----------------------------------------------------------
    async def spawn(self, req: str, spec: ProgramSpec, ids: list[int]) -> list[ParticleState]:
        request = self._request(req, spec)
        for pid in ids:
            rng = np.random.default_rng([spec.seed, pid])
            model = run_sync(lambda: request.program.cls(self.lm, spec.prompt), spec.limits,
                             "__init__")
            particle = _Particle(model, rng)
            request.particles[pid] = particle
        await asyncio.gather(*(self._run(request, pid, "start") for pid in ids))
        return [self._state(request, pid) for pid in ids]

    async def advance(self, req: str, ids: list[int]) -> list[ParticleState]:
        request = self._requests[req]
        await asyncio.gather(*(self._run(request, pid, "step") for pid in ids))
        return [self._state(request, pid) for pid in ids]

    async def clone(self, req: str, plan: dict[int, list[int]]) -> None:
        """For each parent, deep copies under the given new ids (same replica)."""
        request = self._requests[req]
        for parent, children in plan.items():
            source = request.particles[parent]
            for child in children:
                seed = source.rng.integers(2**63)
                request.particles[child] = _Particle(
                    copy.deepcopy(source.model), np.random.default_rng([int(seed), child]),
                    source.error, source.passes,
                )

    async def export(self, req: str, ids: list[int]) -> list[bytes]:
        """Particles as bytes (program state + token ids); they leave this replica."""
        request = self._requests[req]
        out = []
        for pid in ids:
            p = request.particles.pop(pid)
            out.append(pickle.dumps((pid, vars(p.model), p.rng, p.error, p.passes)))
        return out

    async def import_(self, req: str, spec: ProgramSpec, blobs: list[bytes]) -> None:
        request = self._request(req, spec)
        for blob in blobs:
            pid, state, rng, error, passes = pickle.loads(blob)  # noqa: S301 - from our replicas
            model = request.program.cls.__new__(request.program.cls)
            model.__dict__.update(state)
            request.particles[pid] = _Particle(model, rng, error, passes)

    async def drop(self, req: str, ids: list[int] | None = None) -> None:
        if ids is None:
            self._requests.pop(req, None)
            return
        request = self._requests.get(req)
        if request is not None:
            for pid in ids:
                request.particles.pop(pid, None)

    def active_requests(self) -> int:
        return len(self._requests)

    # -- internals ----------------------------------------------------------------------------
    def _request(self, req: str, spec: ProgramSpec) -> _Request:
        request = self._requests.get(req)
        if request is None:
            program = self._programs.get(spec.digest)
            if program is None:
                program = compile_program(spec.source, spec.limits)
                if len(self._programs) > 64:
                    self._programs.clear()
                self._programs[spec.digest] = program
            request = self._requests[req] = _Request(spec, program)
        return request

    async def _run(self, request: _Request, pid: int, method: str) -> None:
        particle = request.particles[pid]
        if particle.error or particle.model.finished and method == "step":
            return
        api.current_rng.set(particle.rng)  # this task's particle randomness
        try:
            await run_step(getattr(particle.model, method), request.spec.limits, f"{method}()")
        except ProgramError as exc:
            particle.error = str(exc)
            return
        if particle.model.finished and particle.passes is None:
            text = particle.model.output_text()
            try:
                particle.passes = bool(run_sync(lambda: particle.model.check(text),
                                                request.spec.limits, "check()"))
            except ProgramError as exc:
                particle.error = str(exc)

    def _state(self, request: _Request, pid: int) -> ParticleState:
        p = request.particles[pid]
        ctx_tokens = _generated_tokens(p.model)
        return ParticleState(
            pid=pid,
            log_weight=float(p.model.weight),
            finished=bool(p.model.finished),
            text=p.model.output_text(),
            tokens=ctx_tokens,
            passes_check=p.passes,
            error=p.error,
        )


def _generated_tokens(model: api.Model) -> int:
    return sum(v.token_count for v in vars(model).values() if isinstance(v, api.LMContext))


class LocalReplica(ForwardingReplicaHandle):
    """A `ReplicaHandle` over a ParticleHost in this process: the embedded single-process
    mode, and the scheduler's tests without Ray."""

    def __init__(self, replica_id: str, host: ParticleHost):
        self.replica_id = replica_id
        self.host = host

    async def _call(self, method: str, *args):
        return await getattr(self.host, method)(*args)
