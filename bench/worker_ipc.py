"""`council bench ipc`: what running programs in a confined worker costs per token.

The engine is replaced by one that answers instantly with a fixed log-prob vector (SmolLM2's
vocabulary), so what is left is Council's own work per particle-step. Two ways, alternating
(`repeats` each, medians compared; this machine drifts):

- in-process: the particles' runtime (`actors/program_worker.ParticleRuntime`) driven
  directly in this process, as programs ran before they were confined;
- worker:     the same runtime inside a confined worker behind `ParticleHost`: frames over
  the socket pair, log-probs through the shared slab, state reported back each round.

The difference per generated token is the boundary's cost; `council bench smc` gives the
forward step it is compared with.

    council bench ipc --json bench/results/ipc.json
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from statistics import median

import numpy as np

from actors.engines.base import GenerateRequest, encode_prompt
from actors.engines.model_source import resolve_model
from actors.particle_host import ParticleHost
from actors.program_worker import ParticleRuntime
from cluster.protocol import ProgramSpec
from planner.masks import Vocabulary

PROGRAM = """
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt)

    async def step(self):
        await self.observe(self.context.mask_dist(self.context.lm.vocab.eos()), False)
        await self.sample(self.context.next_token())
        if self.context.token_count >= STEPS:
            self.finish()
"""


class InstantEngine:
    """An engine that answers every next-token request at once with the same vector."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        self.eos_token_ids = frozenset({tokenizer.eos_token_id})
        logits = np.random.default_rng(0).normal(size=self.vocab_size).astype(np.float32)
        self._lp = logits - np.float32(np.log(np.exp(logits.astype(np.float64)).sum()))

    async def next_token_logprobs(self, token_ids):
        return self._lp


class InProcessLM:
    """The FollowerLM protocol straight over an engine, in this process: no boundary. The
    reference here, and the program API's own tests (programs in the product only ever run
    in a confined worker)."""

    def __init__(self, engine, vocab: Vocabulary):
        self._engine, self._tok = engine, engine.tokenizer
        self.vocab, self.eos_token_ids = vocab, vocab.eos_ids

    def encode(self, text):
        return self._tok(text, add_special_tokens=False)["input_ids"]

    def encode_chat(self, text):
        return encode_prompt(self._tok, GenerateRequest(prompt=text, chat=True))

    def decode(self, ids):
        return self._tok.decode(list(ids), skip_special_tokens=True)

    async def _next_token_logprobs(self, token_ids):
        return await self._engine.next_token_logprobs(token_ids)


async def _in_process(engine, vocab, source: str, particles: int, steps: int) -> float:
    lm = InProcessLM(engine, vocab)
    runtime = ParticleRuntime(lm)
    runtime.load(source, "Write about rivers.", 0, {})
    ids = list(range(particles))
    started = time.perf_counter()
    await runtime.spawn(ids)
    for _ in range(steps):
        await runtime.advance(ids)
    return time.perf_counter() - started


async def _worker(host: ParticleHost, source: str, particles: int, steps: int, req: str) -> float:
    ids = list(range(particles))
    started = time.perf_counter()
    await host.spawn(req, ProgramSpec(source=source, prompt="Write about rivers."), ids)
    for _ in range(steps):
        await host.advance(req, ids)
    elapsed = time.perf_counter() - started
    await host.drop(req)
    return elapsed


def run(json_path: Path | None = None, particles: int = 32, steps: int = 32, repeats: int = 5) -> dict:
    from transformers import AutoTokenizer

    src = resolve_model("smollm2")
    tokenizer = AutoTokenizer.from_pretrained(src.directory, **src.from_pretrained_kwargs())
    engine = InstantEngine(tokenizer)
    source = f"STEPS = {steps}\n" + PROGRAM

    async def measure() -> dict:
        host = ParticleHost(engine)
        vocab = host.vocab
        try:
            await _worker(host, source, particles, 2, "warm")  # the zygote starts here
            await _in_process(engine, vocab, source, particles, 2)
            inside, boundary, starts = [], [], []
            for i in range(repeats):
                inside.append(await _in_process(engine, vocab, source, particles, steps))
                boundary.append(await _worker(host, source, particles, steps, f"run-{i}"))
                t0 = time.perf_counter()
                await host.spawn(f"start-{i}", ProgramSpec(source=source, prompt="x"), [0])
                starts.append(time.perf_counter() - t0)
                await host.drop(f"start-{i}")
        finally:
            await host.close()
        tokens = particles * steps
        a, b = median(inside), median(boundary)
        return {
            "particles": particles, "steps": steps, "repeats": repeats,
            "in_process_s": inside, "worker_s": boundary,
            "in_process_us_per_token": a / tokens * 1e6, "worker_us_per_token": b / tokens * 1e6,
            "boundary_us_per_token": (b - a) / tokens * 1e6,
            "new_request_worker_ms": median(starts) * 1000,
        }

    result = asyncio.run(measure())
    print(f"particles {particles} x {steps} tokens, medians of {repeats} alternating runs (instant engine)")
    print(f"  in-process runtime   {result['in_process_us_per_token']:8.1f} us/token")
    print(f"  confined worker      {result['worker_us_per_token']:8.1f} us/token")
    print(f"  the boundary's cost  {result['boundary_us_per_token']:8.1f} us/token")
    print(f"  a new request's worker (fork, confine, load, one particle): {result['new_request_worker_ms']:.1f} ms")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
    return result
