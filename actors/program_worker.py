"""The confined side: one process per request per replica, running that request's particles.

A worker is forked from the replica's zygote (`actors/zygote.py`), confined
(`actors/confine.py`), and then serves one request until it is dropped. It holds the
request's program and particles and runs their `step()` coroutines; the engine stays in the
replica. The two talk over a socket pair (`actors/channel.py`) and a shared-memory slab:

    replica → worker   ["call", method, args]           spawn / advance / clone / export /
                                                        import / drop, one at a time
    worker → replica   ["lp", [[slot, token_ids], …]]   next-token log-probs wanted
    replica → worker   ["lp", [slot, …], [[slot, why], …]]  answered: slab row `slot` holds
                                                        the float32 log-probs (or why not)
    worker → replica   ["done", result] | ["fail", message]

Every particle waiting on the engine in one turn of the worker's event loop goes out in one
"lp" frame, and the replica hands each row to its engine's autobatch, so batching across
particles and across requests stays in the engine. A second, blocking socket carries the few
calls a program makes synchronously (`encode_chat`, from a constructor), answered by the
replica's own tokenizer.

Programs see only the API's handles: `WorkerLM` (encode, decode, vocabulary, EOS ids),
contexts, tokens, masks. Nothing here is shared with another request: the worker's memory is
its own copy of the zygote's.
"""

from __future__ import annotations

import asyncio
import copy
import mmap
import os
import socket
from dataclasses import dataclass, field

import numpy as np

from actors.channel import HEADER, ChannelClosed, pack, read_frame, unpack, write_frame
from planner import program as api
from planner.grammar import llg_tokenizer
from planner.masks import Vocabulary
from planner.sandbox import (
    CompiledProgram, ProgramError, SandboxLimits, compile_program, run_step, run_sync, use_os_memory_limit,
)
from planner.state import check_state, dump_state, load_state

MAX_TEXT_CHARS = 200_000  # a particle's text as reported to the scheduler
MAX_CHAT_CACHE = 256


class EngineRequests:
    """Next-token log-probs from the replica's engine, gathered per event-loop turn."""

    def __init__(self, writer: asyncio.StreamWriter, slab: np.ndarray):
        self._writer = writer
        self._slab = slab  # [slots, vocab] float32, written by the replica
        self._free = list(range(len(slab)))
        self._slots = asyncio.Semaphore(len(slab))
        self._waiting: dict[int, asyncio.Future] = {}
        self._outgoing: list[list] = []

    async def logprobs(self, token_ids) -> np.ndarray:
        ids = [int(t) for t in token_ids]
        await self._slots.acquire()
        slot = self._free.pop()
        try:
            future = asyncio.get_running_loop().create_future()
            self._waiting[slot] = future
            if not self._outgoing:
                asyncio.get_running_loop().call_soon(self._flush)
            self._outgoing.append([slot, ids])
            await future
            return self._slab[slot].copy()  # the row is reused as soon as the slot is free
        finally:
            self._waiting.pop(slot, None)
            self._free.append(slot)
            self._slots.release()

    def _flush(self) -> None:
        batch, self._outgoing = self._outgoing, []
        if batch:
            write_frame(self._writer, ["lp", batch])

    def answered(self, ok: list, failed: list) -> None:
        for slot in ok:
            future = self._waiting.get(slot)
            if future is not None and not future.done():
                future.set_result(None)
        for slot, why in failed:
            future = self._waiting.get(slot)
            if future is not None and not future.done():
                future.set_exception(ValueError(str(why)))


class WorkerLM:
    """The follower as a program sees it in a worker (`planner.program.FollowerLM`)."""

    __slots__ = ("vocab", "eos_token_ids", "_tokenizer", "_engine", "_sync", "_chat")

    def __init__(self, tokenizer, vocab: Vocabulary, engine: EngineRequests | None, sync: socket.socket | None):
        object.__setattr__(self, "vocab", vocab)
        object.__setattr__(self, "eos_token_ids", vocab.eos_ids)
        object.__setattr__(self, "_tokenizer", tokenizer)  # a `tokenizers.Tokenizer`
        object.__setattr__(self, "_engine", engine)
        object.__setattr__(self, "_sync", sync)
        object.__setattr__(self, "_chat", {})

    def __setattr__(self, name, value):
        raise AttributeError("the follower cannot be changed by a program")

    def encode(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(str(text), add_special_tokens=False).ids)

    def encode_chat(self, text: str) -> list[int]:
        """The user turn in the follower's chat template: the replica's tokenizer applies it
        (templates are Jinja programs; the worker does not carry them)."""
        text = str(text)
        ids = self._chat.get(text)
        if ids is None:
            self._sync.sendall(pack(["chat", text]))
            ids = [int(t) for t in _read_blocking(self._sync)]
            if len(self._chat) >= MAX_CHAT_CACHE:
                self._chat.clear()
            self._chat[text] = ids
        return list(ids)

    def decode(self, ids) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    async def _next_token_logprobs(self, token_ids) -> np.ndarray:
        return await self._engine.logprobs(token_ids)

    def _grammar_tokenizer(self):
        return llg_tokenizer(self._tokenizer, self.vocab.size, self.eos_token_ids)

    def __deepcopy__(self, memo):
        return self


def _read_blocking(sock: socket.socket):
    def exactly(n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = sock.recv(n - len(out))
            if not chunk:
                raise ChannelClosed("the replica went away")
            out += chunk
        return bytes(out)

    (size,) = HEADER.unpack(exactly(HEADER.size))
    reply = unpack(exactly(size))
    if isinstance(reply, dict) and "error" in reply:
        raise ValueError(str(reply["error"]))
    return reply


# -- the particles -----------------------------------------------------------------------------


@dataclass
class _Particle:
    model: api.Model
    rng: np.random.Generator
    error: str | None = None
    passes: bool | None = None


@dataclass
class ParticleRuntime:
    """One request's particles, as `ParticleHost` used to hold them in the replica itself."""

    lm: WorkerLM
    program: CompiledProgram | None = None
    prompt: str = ""
    seed: int = 0
    limits: SandboxLimits = field(default_factory=SandboxLimits)
    particles: dict[int, _Particle] = field(default_factory=dict)

    def load(self, source: str, prompt: str, seed: int, limits: dict) -> None:
        self.limits = SandboxLimits.model_validate(limits)
        self.prompt, self.seed = prompt, seed
        self.program = compile_program(source, self.limits)

    async def spawn(self, ids: list[int]) -> list[dict]:
        """All of `ids` or none: a constructor that raises leaves no particle of this call."""
        made = []
        try:
            for pid in ids:
                model = run_sync(lambda: self.program.cls(self.lm, self.prompt), self.limits, "__init__")
                self.particles[pid] = _Particle(model, np.random.default_rng([self.seed, pid]))
                made.append(pid)
        except BaseException:
            for pid in made:
                del self.particles[pid]
            raise
        await asyncio.gather(*(self._run(pid, "start") for pid in ids))
        return [self._state(pid) for pid in ids]

    async def advance(self, ids: list[int], save: bool = False) -> list[dict]:
        await asyncio.gather(*(self._run(pid, "step") for pid in ids))
        states = [self._state(pid) for pid in ids]
        if save:  # the scheduler's checkpoint: restored elsewhere if this replica dies
            for state in states:
                state["saved"] = self._dump(state["pid"])
        return states

    async def clone(self, plan: dict) -> None:
        for parent, children in plan.items():
            source = self.particles[int(parent)]
            for child in children:
                seed = int(source.rng.integers(2**63))
                try:
                    model = copy.deepcopy(source.model)
                except RecursionError:
                    model, source.error = source.model, "particle state could not be copied (nested too deeply)"
                self.particles[int(child)] = _Particle(model, np.random.default_rng([seed, int(child)]),
                                                       source.error, source.passes)

    def _dump(self, pid: int) -> bytes:
        p = self.particles[pid]
        return dump_state({"pid": pid, "attrs": vars(p.model), "rng": p.rng.bit_generator.state,
                           "error": p.error, "passes": p.passes}, self.lm)

    async def export(self, ids: list[int]) -> list[bytes]:
        out = [self._dump(pid) for pid in ids]
        for pid in ids:
            del self.particles[pid]
        return out

    async def import_(self, blobs: list[bytes], ids: list[int] | None = None) -> None:
        cls = self.program.cls
        if ids is not None and len(ids) != len(blobs):
            raise ValueError("import_ needs one id per particle")
        for i, blob in enumerate(blobs):
            data = load_state(bytes(blob), self.lm)
            model = cls.__new__(cls)
            model.__dict__.update(data["attrs"])
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = data["rng"]
            pid = int(data["pid"]) if ids is None else int(ids[i])
            if pid != int(data["pid"]):  # a clone restored from its parent: randomness of its own
                rng = np.random.default_rng([int(rng.integers(2**63)), pid])
            self.particles[pid] = _Particle(model, rng, data["error"], data["passes"])

    async def drop(self, ids: list[int]) -> None:
        for pid in ids:
            self.particles.pop(pid, None)

    async def held(self) -> list[int]:
        return sorted(self.particles)

    async def _run(self, pid: int, method: str) -> None:
        particle = self.particles[pid]
        if particle.error or particle.model.finished and method == "step":
            return
        api.current_rng.set(particle.rng)  # this task's particle randomness
        try:
            await run_step(getattr(particle.model, method), self.limits, f"{method}()")
            # Checked every step, so a state that could not be cloned or shipped fails the
            # step that made it, with the attribute named.
            check_state(vars(particle.model), self.lm)
        except ProgramError as exc:
            particle.error = str(exc)
            return
        if particle.model.finished and particle.passes is None:
            try:
                text = run_sync(particle.model.output_text, self.limits, "output_text()")
                particle.passes = bool(run_sync(lambda: particle.model.check(text), self.limits, "check()"))
            except ProgramError as exc:
                particle.error = str(exc)

    def _state(self, pid: int) -> dict:
        p = self.particles[pid]
        text, weight = "", float("-inf")
        try:
            text = run_sync(p.model.output_text, self.limits, "output_text()")
            weight = float(p.model.weight)
        except (ProgramError, TypeError, ValueError) as exc:
            p.error = p.error or str(exc)
        if not isinstance(text, str):
            p.error, text = p.error or "output_text() must return a string", ""
        if len(text) > MAX_TEXT_CHARS:
            p.error, text = p.error or f"the particle's text is over {MAX_TEXT_CHARS} characters", text[:MAX_TEXT_CHARS]
        contexts = [v for v in vars(p.model).values() if isinstance(v, api.LMContext)]
        return {"pid": pid, "log_weight": weight, "finished": bool(p.model.finished), "text": text,
                "tokens": int(sum(c.token_count for c in contexts)),
                "prompt_tokens": int(sum(c.prompt_len for c in contexts)), "passes_check": p.passes,
                "error": p.error}


# -- the serving loop ----------------------------------------------------------------------------

COMMANDS = {"spawn", "advance", "clone", "export", "import_", "drop", "held", "load"}


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, runtime: ParticleRuntime,
                engine: EngineRequests) -> None:
    """Answer the replica until it closes the channel (then the worker exits)."""
    running: set[asyncio.Task] = set()
    while True:
        try:
            frame = await read_frame(reader)
        except ChannelClosed:
            return
        kind = frame[0]
        if kind == "lp":
            engine.answered(frame[1], frame[2])
        elif kind == "call" and frame[1] in COMMANDS:
            task = asyncio.get_running_loop().create_task(_command(writer, runtime, frame[1], frame[2]))
            running.add(task)
            task.add_done_callback(running.discard)


async def _command(writer, runtime: ParticleRuntime, method: str, args: list) -> None:
    try:
        if method == "load":
            runtime.load(*args)
            result = None
        else:
            result = await getattr(runtime, method)(*args)
        reply = ["done", result]
    except MemoryError:
        reply = ["fail", f"the program ran out of its memory budget ({runtime.limits.memory_mb} MB)"]
    except ProgramError as exc:  # StateError too
        reply = ["fail", str(exc)]
    except Exception as exc:  # noqa: BLE001 - a malformed call, or state that cannot load: say so
        reply = ["fail", f"{method} failed: {type(exc).__name__}: {exc}"]
    write_frame(writer, reply)
    await writer.drain()


def run_worker(fds: list[int], info: dict, tokenizer, vocab: Vocabulary, empty_dir_fd: int) -> int:
    """The forked child's life: confine, then serve one request. Returns the exit code."""
    from actors.confine import Confinement, ConfinementUnavailable, confine, lock_down

    cmd_fd, sync_fd, slab_fd = fds
    slots, size = int(info["slots"]), int(info["vocab_size"])
    slab_map = mmap.mmap(slab_fd, slots * size * 4, prot=mmap.PROT_READ)
    os.close(slab_fd)
    slab = np.frombuffer(slab_map, dtype=np.float32).reshape(slots, size)
    cmd = socket.socket(fileno=cmd_fd)
    sync = socket.socket(fileno=sync_fd)
    sync.setblocking(True)
    limits = Confinement(memory_mb=int(info["memory_mb"]), cpu_s=float(info["cpu_s"]),
                         empty_dir_fd=empty_dir_fd)
    try:
        flt = confine(limits, keep={cmd_fd, sync_fd})
    except (ConfinementUnavailable, OSError) as exc:
        cmd.sendall(pack(["unavailable", f"the program's worker could not be confined ({exc})"]))
        return 71

    async def main() -> None:
        reader, writer = await asyncio.open_unix_connection(sock=cmd)
        try:
            lock_down(flt)
        except ConfinementUnavailable as exc:
            write_frame(writer, ["unavailable", f"the program's worker could not be confined ({exc})"])
            await writer.drain()
            return
        use_os_memory_limit()
        engine = EngineRequests(writer, slab)
        lm = WorkerLM(tokenizer, vocab, engine, sync)
        await serve(reader, writer, ParticleRuntime(lm), engine)

    asyncio.new_event_loop().run_until_complete(main())
    return 0
