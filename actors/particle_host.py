"""The replica side of distributed SMC: particles of many concurrent requests, on one engine.

A FollowerReplica owns one `ParticleHost`. The scheduler (cluster/scheduler.py) drives it
through spawn / advance / clone / export / import / drop; it never sees the engine, and the
host never sees global weights.

Program code never runs here. Each request gets its own confined worker process on this
replica (forked from the replica's zygote, see `actors/zygote.py` and
`actors/program_worker.py`), which holds that request's particles; the host forwards the
scheduler's calls to it and answers its next-token requests from the engine, so every
particle of every request on this replica still shares the engine's autobatch. A worker that
dies, overruns its budget or breaks the protocol takes only its own request's particles on
this replica with it; the request fails with a ProgramError naming what happened.

Particle state crosses between replicas as plain data (`planner/state.py`), token ids and
all; the target's prefix cache rebuilds the KV.
"""

from __future__ import annotations

import asyncio
import logging
import mmap
import os
import re
import signal
import socket
import time

import numpy as np
from pydantic import ValidationError

from actors.channel import ChannelClosed, pack, read_frame, write_frame
from actors.confine import CPU_HARD_GRACE_S
from actors.engines.autobatch import caller_group
from actors.engines.base import Engine, GenerateRequest, encode_prompt
from actors.program_worker import MAX_TEXT_CHARS
from actors.zygote import Zygote, ZygoteFailed
from cluster.protocol import ForwardingReplicaHandle, ParticleState, ProgramSpec
from council_sdk.types import MAX_PROMPT_CHARS
from planner.masks import Vocabulary
from planner.sandbox import ProgramError, WorkersUnavailable

log = logging.getLogger(__name__)

SLOTS = 64  # next-token requests one worker may have in flight (rows of its slab)
GRACE_S = 5.0  # beyond a step's own time limit, before a silent worker is killed
REAP_EVERY_S = 30.0
STARVED_WAITS = 3  # more quiet limits for a worker that the machine, not its program, held up


def _cpu_seconds(pid: int) -> float:
    """A worker's CPU time so far (user + system), or infinity when it cannot be read (then
    the wall clock alone decides, as before)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("inf")


class _Worker:
    """One request's confined process, as the replica drives it."""

    def __init__(self, req: str, spec: ProgramSpec, pid: int, reader, writer, sync: socket.socket,
                 slab: np.ndarray, slab_map: mmap.mmap):
        self.req, self.spec, self.pid = req, spec, pid
        self.reader, self.writer = reader, writer
        self.sync = sync
        self.slab, self.slab_map = slab, slab_map
        self.lock = asyncio.Lock()
        self.used = time.monotonic()
        self.dead: str | None = None  # why it can take no more calls
        self.engine_busy = 0  # next-token requests of this worker the engine is answering
        self.tasks: set[asyncio.Task] = set()


def needs_phonetics(source: str) -> bool:
    """Whether a program counts syllables or rhymes (so its worker needs the pronouncing
    dictionary loaded before it is forked). A library template says so in its SPEC line."""
    head = source.split("\n", 1)[0]
    if head.startswith("SPEC = "):
        return bool(re.search(r"'(?:syllables|line_syllables)': \[\d|'(?:rhyme|rhyme_scheme)': '[A-Za-z]", head))
    return bool(re.search(r"\b(?:syllables|rhymes_of|rhyme)\s*\(|line_syllables|rhyme_scheme", source))


class ParticleHost:
    def __init__(self, engine: Engine):
        self.engine = engine
        tok = engine.tokenizer
        self._tokenizer = tok
        self.vocab_size = engine.vocab_size
        self.vocab = Vocabulary.from_tokenizer(tok, engine.vocab_size, engine.eos_token_ids)
        self._zygote: Zygote | None = None
        self._starting = asyncio.Lock()
        self._workers: dict[str, _Worker] = {}
        # Requests whose worker is being started (set when that ends, either way): a drop that
        # arrives meanwhile, as it does when a request is cancelled with a spawn or an import
        # still on its way here, waits for the worker and stops it instead of missing it.
        self._starting_workers: dict[str, asyncio.Event] = {}
        self._reaper: asyncio.Task | None = None

    # -- scheduler-facing operations ----------------------------------------------------------
    async def spawn(self, req: str, spec: ProgramSpec, ids: list[int]) -> list[ParticleState]:
        worker = await self._worker(req, spec)
        return self._states(await self._call(worker, "spawn", [list(ids)]))

    async def advance(self, req: str, ids: list[int], save: bool = False) -> list[ParticleState]:
        return self._states(await self._call(self._existing(req), "advance", [list(ids), bool(save)]))

    async def clone(self, req: str, plan: dict[int, list[int]]) -> None:
        await self._call(self._existing(req), "clone", [{int(k): list(v) for k, v in plan.items()}])

    async def export(self, req: str, ids: list[int]) -> list[bytes]:
        worker = self._existing(req)
        blobs = await self._call(worker, "export", [list(ids)])
        if not isinstance(blobs, list) or not all(isinstance(b, bytes) for b in blobs):
            raise self._broken(worker, "sent particles that are not bytes")
        return blobs

    async def import_(self, req: str, spec: ProgramSpec, blobs: list[bytes], ids: list[int] | None = None) -> None:
        worker = await self._worker(req, spec)
        await self._call(worker, "import_", [list(blobs), None if ids is None else [int(i) for i in ids]])

    async def drop(self, req: str, ids: list[int] | None = None) -> None:
        worker = self._workers.get(req)
        starting = self._starting_workers.get(req)
        if worker is None and starting is not None:
            await starting.wait()
            worker = self._workers.get(req)
        if worker is None:
            return
        if ids is None:
            await self._stop(worker)
        elif not worker.dead:
            await self._call(worker, "drop", [list(ids)])

    async def held(self, req: str) -> list[int]:
        """The ids of the request's particles on this replica (for tests and debugging)."""
        worker = self._workers.get(req)
        return [] if worker is None or worker.dead else list(await self._call(worker, "held", []))

    def active_requests(self) -> int:
        return len(self._workers)

    def worker_pids(self) -> dict[str, int]:
        return {req: w.pid for req, w in self._workers.items()}

    async def close(self) -> None:
        for worker in list(self._workers.values()):
            await self._stop(worker)
        if self._reaper is not None:
            self._reaper.cancel()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None

    # -- workers ------------------------------------------------------------------------------
    def _existing(self, req: str) -> _Worker:
        worker = self._workers.get(req)
        if worker is None:
            raise ProgramError(f"request {req} has no particles on this replica")
        return worker

    async def _worker(self, req: str, spec: ProgramSpec) -> _Worker:
        while (worker := self._workers.get(req)) is None and req in self._starting_workers:
            await self._starting_workers[req].wait()  # another call is starting it: use that one
        if worker is not None:
            return worker
        started = self._starting_workers[req] = asyncio.Event()
        try:
            return await self._start_worker(req, spec)
        finally:
            del self._starting_workers[req]
            started.set()

    async def _start_worker(self, req: str, spec: ProgramSpec) -> _Worker:
        zygote = await self._ensure_zygote()
        cmd_here, cmd_there = socket.socketpair()
        sync_here, sync_there = socket.socketpair()
        slab_fd = os.memfd_create(f"council-{req}", os.MFD_CLOEXEC)
        size = SLOTS * self.vocab_size * 4
        try:
            os.ftruncate(slab_fd, size)
            slab_map = mmap.mmap(slab_fd, size)
            limits = spec.limits
            pid = await zygote.fork([cmd_there.fileno(), sync_there.fileno(), slab_fd], {
                "slots": SLOTS, "vocab_size": self.vocab_size,
                "memory_mb": limits.memory_mb, "cpu_s": limits.cpu_s,
                "phonetics": needs_phonetics(spec.source)})
        except ZygoteFailed as exc:
            for s in (cmd_here, sync_here):
                s.close()
            raise WorkersUnavailable(f"no program worker could be started on this replica ({exc})") from None
        finally:
            cmd_there.close()
            sync_there.close()
            os.close(slab_fd)
        reader, writer = await asyncio.open_connection(sock=cmd_here)
        slab = np.frombuffer(slab_map, dtype=np.float32).reshape(SLOTS, self.vocab_size)
        worker = _Worker(req, spec, pid, reader, writer, sync_here, slab, slab_map)
        self._workers[req] = worker
        sync_here.setblocking(False)
        self._spawn_task(worker, self._serve_sync(worker))
        try:
            await self._call(worker, "load", [spec.source, spec.prompt, spec.seed, spec.limits.model_dump()])
        except (ProgramError, WorkersUnavailable):
            await self._stop(worker)
            raise
        return worker

    async def _ensure_zygote(self) -> Zygote:
        async with self._starting:
            if self._zygote is None or not self._zygote.alive():
                try:
                    self._zygote = await Zygote.start(self._tokenizer, self.vocab.strings, self.vocab.eos_ids)
                except ZygoteFailed as exc:
                    raise WorkersUnavailable(f"programs cannot run on this replica: {exc}") from None
                if self._reaper is None:
                    self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())
            return self._zygote

    async def _call(self, worker: _Worker, method: str, args: list):
        """One command to the worker; meanwhile, answer its next-token requests. A worker that
        goes quiet (not waiting on the engine) for longer than a step may take is killed."""
        async with worker.lock:
            if worker.dead:
                raise ProgramError(worker.dead)
            worker.used = time.monotonic()
            write_frame(worker.writer, ["call", method, args])
            quiet_limit = worker.spec.limits.step_timeout_s + GRACE_S
            cpu_mark = _cpu_seconds(worker.pid)  # once a call: frames are the hot path
            while True:
                try:
                    frame, cpu_mark = await self._next_frame(worker, quiet_limit, cpu_mark)
                except asyncio.TimeoutError:
                    await self._kill(worker, f"{method}: the program ran past its time limit of "
                                     f"{worker.spec.limits.step_timeout_s:g} s and was stopped")
                    raise ProgramError(worker.dead) from None
                except ChannelClosed:
                    await self._died(worker)
                    raise ProgramError(worker.dead) from None
                kind = frame[0] if isinstance(frame, list) and frame else None
                if kind == "lp":
                    self._answer(worker, frame)
                elif kind == "done" and len(frame) == 2:
                    worker.used = time.monotonic()
                    return frame[1]
                elif kind == "fail" and len(frame) == 2:
                    raise ProgramError(str(frame[1])[:20_000])
                elif kind == "unavailable" and len(frame) == 2:
                    await self._kill(worker, str(frame[1])[:2_000])
                    raise WorkersUnavailable(worker.dead)
                else:
                    raise self._broken(worker, "sent a frame the protocol does not have")

    async def _next_frame(self, worker: _Worker, quiet_limit: float, cpu_mark: float):
        """The worker's next frame, and the CPU mark to judge the next quiet spell by; the
        quiet limit counts only while the engine owes it nothing.

        The program's own limit is CPU time (`planner.sandbox`), and on a loaded machine a
        worker may get a fraction of a core: one that was quiet for the limit but has used
        less than half of it in CPU since `cpu_mark` (the call's start, or its last quiet
        spell; an upper bound on what it used while quiet) is starved, not running away, and
        is given up to STARVED_WAITS more limits (its own timer, or RLIMIT_CPU, still stops a
        runaway), so that it can fail for its real reason (a memory budget, say)."""
        read = asyncio.ensure_future(read_frame(worker.reader))
        try:
            waits = 0
            while not read.done():
                done, _ = await asyncio.wait([read], timeout=quiet_limit)
                if not done and not worker.engine_busy:
                    now = _cpu_seconds(worker.pid)
                    if waits >= STARVED_WAITS or not now - cpu_mark < 0.5 * quiet_limit:  # nan: unreadable
                        raise asyncio.TimeoutError
                    waits, cpu_mark = waits + 1, now
            return read.result(), cpu_mark
        finally:
            if not read.done():  # timed out, or the caller was cancelled: nobody reads it after
                read.cancel()

    def _answer(self, worker: _Worker, frame) -> None:
        """Next-token log-probs for each [slot, token ids] of an "lp" frame, into the slab."""
        try:
            wanted = [(int(slot), [int(t) for t in ids]) for slot, ids in frame[1]]
            if any(not 0 <= slot < SLOTS for slot, _ in wanted):
                raise ValueError("slot out of range")
        except (TypeError, ValueError, IndexError):
            raise self._broken(worker, "asked for log-probs in a malformed frame") from None
        worker.engine_busy += 1
        self._spawn_task(worker, self._logprobs(worker, wanted))

    async def _logprobs(self, worker: _Worker, wanted: list[tuple[int, list[int]]]) -> None:
        # The worker is one caller group of the engine's autobatch: its particles come back
        # together, and a batch is worth holding for them (actors/engines/autobatch.py).
        caller_group.set(worker)
        try:
            results = await asyncio.gather(
                *(self.engine.next_token_logprobs(ids) for _, ids in wanted), return_exceptions=True)
            ok, failed = [], []
            for (slot, _), res in zip(wanted, results):
                if isinstance(res, BaseException):
                    if not isinstance(res, (ValueError, TypeError)):
                        raise res
                    failed.append([slot, str(res)])
                elif worker.slab is not None:
                    worker.slab[slot] = res
                    ok.append(slot)
            if not worker.dead:
                write_frame(worker.writer, ["lp", ok, failed])
        finally:
            worker.engine_busy -= 1

    async def _serve_sync(self, worker: _Worker) -> None:
        """The worker's blocking calls: `encode_chat` (the chat template is the replica's)."""
        reader, writer = await asyncio.open_connection(sock=worker.sync)
        try:
            while not worker.dead:
                try:
                    frame = await read_frame(reader)
                except ChannelClosed:
                    return
                try:
                    op, text = frame
                    if op != "chat" or not isinstance(text, str) or len(text) > MAX_PROMPT_CHARS * 4:
                        raise ValueError("a prompt must be a string within the prompt size limit")
                    writer.write(pack(encode_prompt(self._tokenizer, GenerateRequest(prompt=text, chat=True))))
                except (TypeError, ValueError, ValidationError) as exc:
                    writer.write(pack({"error": str(exc).splitlines()[0]}))
        finally:
            writer.close()  # cancelled with its worker: the socket goes with it

    def _states(self, raw) -> list[ParticleState]:
        """The worker's report, trusted no further than its shape and size."""
        try:
            states = [ParticleState.model_validate(s) for s in raw]
        except (TypeError, ValidationError):
            raise ProgramError("the program's worker sent malformed particle states") from None
        if any(len(s.text) > MAX_TEXT_CHARS or len(s.error or "") > MAX_TEXT_CHARS for s in states):
            raise ProgramError("the program's worker sent particle states over the size limit")
        return states

    def _broken(self, worker: _Worker, what: str) -> ProgramError:
        worker.dead = f"the program's worker {what} and was stopped"
        self._spawn_task(None, self._kill(worker, worker.dead))
        return ProgramError(worker.dead)

    async def _kill(self, worker: _Worker, why: str) -> None:
        worker.dead = worker.dead or why
        if self._zygote is not None:
            try:
                await self._zygote.kill(worker.pid)
            except ZygoteFailed:
                pass
        self._forget(worker)

    async def _died(self, worker: _Worker) -> None:
        """The worker's channel closed under a call: say why, from its exit code."""
        code = None
        if self._zygote is not None:
            try:
                code = await self._zygote.exit_code(worker.pid)
            except ZygoteFailed:
                pass
        limits = worker.spec.limits
        if code == -signal.SIGXCPU:
            why = f"the program's worker was killed by the operating system: CPU budget of {limits.cpu_s:g} s exceeded"
        elif code == -signal.SIGKILL:
            why = ("the program's worker was killed by the operating system (out of memory, or over "
                   f"its hard CPU limit of {limits.cpu_s + CPU_HARD_GRACE_S:g} s)")
        elif code is not None and code < 0:
            why = f"the program's worker was stopped by signal {signal.Signals(-code).name}"
        else:
            why = f"the program's worker exited unexpectedly (exit code {code})"
        worker.dead = worker.dead or why
        self._forget(worker)

    async def _stop(self, worker: _Worker) -> None:
        await self._kill(worker, "the request's particles were dropped")

    def _forget(self, worker: _Worker) -> None:
        if self._workers.get(worker.req) is worker:
            del self._workers[worker.req]
        try:
            worker.writer.close()
        except (OSError, RuntimeError):
            pass
        for task in list(worker.tasks):
            if task is not asyncio.current_task():
                task.cancel()
        # The slab's pages live as long as a mapping of it does: unmap now, not at GC.
        worker.slab = None
        try:
            worker.slab_map.close()
        except BufferError:  # a view is still held somewhere: the collector unmaps it later
            pass

    def _spawn_task(self, worker: _Worker | None, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        if worker is not None:
            worker.tasks.add(task)
            task.add_done_callback(worker.tasks.discard)

    async def _reap_idle(self) -> None:
        """Workers whose request stopped calling (its scheduler died, say) are killed."""
        while True:
            await asyncio.sleep(REAP_EVERY_S)
            now = time.monotonic()
            for worker in list(self._workers.values()):
                if not worker.lock.locked() and now - worker.used > worker.spec.limits.idle_s:
                    log.info("reaping the idle worker of %s", worker.req)
                    await self._stop(worker)


class LocalReplica(ForwardingReplicaHandle):
    """A `ReplicaHandle` over a ParticleHost in this process: the embedded single-process
    mode, and the scheduler's tests without Ray."""

    def __init__(self, replica_id: str, host: ParticleHost):
        self.replica_id = replica_id
        self.host = host

    async def _call(self, method: str, *args):
        return await getattr(self.host, method)(*args)

