"""The zygote: a warm, single-threaded process that forks one program worker per request.

A new request must not pay for an interpreter, numpy and a tokenizer (about a second), and
the replica itself cannot fork (it runs Ray's and torch's threads), so each replica starts
one zygote at its first SMC request. The zygote imports everything a program can touch,
builds the vocabulary and its common masks once, and then forks on demand: a worker starts
in a few milliseconds, sharing the zygote's pages copy-on-write and owning everything it
writes. Workers are confined right after the fork (`actors/confine.py`).

Control messages are JSON over a SOCK_SEQPACKET pair (one message each); the worker's
descriptors (command socket, blocking socket, shared-memory slab) travel with `fork` as
SCM_RIGHTS. The zygote exits, killing its workers, when the replica closes the pair.

    zygote = await Zygote.start(tokenizer, vocab)
    pid = await zygote.fork([cmd_fd, sync_fd, slab_fd], {"slots": 64, "vocab_size": 49152, ...})
    await zygote.kill(pid); code = await zygote.exit_code(pid)
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile

from planner.sandbox import ProgramError

FORK_TIMEOUT_S = 30.0
START_TIMEOUT_S = 180.0


class ZygoteFailed(RuntimeError):
    """The zygote could not start or stopped answering."""


# -- the replica's side ------------------------------------------------------------------------


class Zygote:
    def __init__(self, proc: subprocess.Popen, sock: socket.socket):
        self._proc = proc
        self._sock = sock
        self._lock = asyncio.Lock()
        self._out_of_step = False  # an answer went missing: this zygote is replaced

    @classmethod
    async def start(cls, tokenizer, token_strings, eos_ids) -> "Zygote":
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None:
            raise ZygoteFailed("program workers need a fast (Rust) tokenizer")
        # What the zygote loads travels in an anonymous memory file, not a file on disk: a
        # replica killed with SIGKILL (how Ray ends actors) leaves nothing in /tmp.
        init = os.memfd_create("council-zygote-init")
        os.write(init, json.dumps({"tokenizer": backend.to_str(), "strings": list(token_strings),
                                   "eos": sorted(int(t) for t in eos_ids)}).encode())
        os.lseek(init, 0, os.SEEK_SET)
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
                   TOKENIZERS_PARALLELISM="false", RAYON_NUM_THREADS="1",
                   PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        proc = subprocess.Popen(
            [sys.executable, "-m", "actors.zygote", str(child.fileno()), str(init)],
            pass_fds=[child.fileno(), init], env=env, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        child.close()
        os.close(init)
        parent.setblocking(False)
        zygote = cls(proc, parent)
        try:
            reply = await zygote._receive(START_TIMEOUT_S)
        except ZygoteFailed:
            zygote.close()
            raise
        if reply.get("ready") is not True:
            zygote.close()
            raise ZygoteFailed(f"the zygote did not start: {reply.get('error', reply)}")
        return zygote

    async def fork(self, fds: list[int], info: dict) -> int:
        reply = await self._ask({"op": "fork", **info}, fds)
        if "pid" not in reply:
            raise ZygoteFailed(f"fork failed: {reply.get('error', reply)}")
        return int(reply["pid"])

    async def kill(self, pid: int) -> None:
        await self._ask({"op": "kill", "pid": pid})

    async def exit_code(self, pid: int, timeout: float = 5.0) -> int | None:
        """The worker's exit code (negative: the signal that ended it), None if still running."""
        reply = await self._ask({"op": "status", "pid": pid, "timeout": timeout})
        return reply.get("code")

    def alive(self) -> bool:
        return self._proc.poll() is None and not self._out_of_step

    def close(self) -> None:
        self._sock.close()  # the zygote sees the end of the pair and kills its workers
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()

    async def _ask(self, message: dict, fds: list[int] | None = None) -> dict:
        """One question and its answer. The exchange runs shielded: a caller cancelled while
        it waits (a request's cleanup, cancelled itself) must not leave the answer unread, or
        the next question would read it as its own."""
        exchange = asyncio.ensure_future(self._exchange(message, fds))
        exchange.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved, if orphaned
        return await asyncio.shield(exchange)

    async def _exchange(self, message: dict, fds: list[int] | None) -> dict:
        async with self._lock:
            if not self.alive():
                raise ZygoteFailed("the zygote has exited")
            data = json.dumps(message).encode()
            try:
                if fds:
                    socket.send_fds(self._sock, [data], fds)
                else:
                    self._sock.send(data)
            except OSError as exc:
                raise ZygoteFailed(f"the zygote is gone ({exc})") from None
            try:
                return await self._receive(FORK_TIMEOUT_S + message.get("timeout", 0))
            except ZygoteFailed:
                self._out_of_step = True  # a late answer would be read by the next question
                raise

    async def _receive(self, timeout: float) -> dict:
        loop = asyncio.get_running_loop()
        try:
            data = await asyncio.wait_for(loop.sock_recv(self._sock, 65536), timeout)
        except (asyncio.TimeoutError, OSError) as exc:
            raise ZygoteFailed(f"the zygote did not answer ({exc or 'timeout'})") from None
        if not data:
            raise ZygoteFailed("the zygote has exited")
        return json.loads(data)


# -- the zygote process ---------------------------------------------------------------------------


WARM_PROGRAM = """
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat=False)
        self.words = []
        self.mask = lm.vocab.max_chars(6) & ~lm.vocab.eos()

    async def step(self):
        ctx = self.context
        await self.observe(ctx.mask_dist(self.mask), True)
        await self.sample(ctx.next_token())
        self.words.append(await ctx.next_word(3))
        await self.sample(LogCategorical([1, 2], [0.0, 1.0]))
        await self.sample(Bernoulli(0.5))
        if len(self.words) >= 2:
            self.finish()

    def check(self, text):
        return satisfies(text, {"words": {"at_most": 40}})
"""

# A structured-output program: llguidance, jsonschema and its format checks loaded pre-fork.
WARM_GRAMMAR_PROGRAM = """
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat=False)
        self.schema = {"type": "object", "properties": {"d": {"type": "string", "format": "date"}}}

    async def step(self):
        await self.observe(self.context.grammar(json_schema=self.schema), True)
        await self.sample(self.context.next_token())
        if self.context.token_count >= 2:
            self.finish()

    def check(self, text):
        return matches('{"d": "2024-01-31"}', json_schema=self.schema) and matches("ab", regex="[a-z]+")
"""


class _WarmEngine:
    """Uniform next-token log-probs, so the warm-up needs no replica."""

    def __init__(self, size: int):
        import numpy as np

        self._lp = np.full(size, -math.log(size), dtype=np.float32)

    async def logprobs(self, token_ids):
        return self._lp.copy()


def _warm(tokenizer, vocab) -> None:
    """Run a program through every operation a worker serves, before any fork: after
    confinement a worker can open no file, so anything imported lazily (numpy.random, say)
    must already be loaded here, and the common masks are built once for every worker."""
    from actors.program_worker import ParticleRuntime, WorkerLM

    for name in ("word_starts", "eos", "alpha_word_starts", "alpha_continuations",
                 "capital_word_starts", "punctuation"):
        getattr(vocab, name)()
    for n in range(1, 13):
        vocab.max_chars(n)
    # Grammars: the llguidance tokenizer (~0.2 s) is built once here and inherited by every
    # worker; each checker is run once so whatever it imports lazily is loaded.
    from planner.grammar import GrammarSpec, llg_tokenizer

    llg_tokenizer(tokenizer, vocab.size, vocab.eos_ids)
    for spec, text in ((GrammarSpec(json_schema={"type": "string", "format": "date"}), '"2024-01-31"'),
                       (GrammarSpec(json_object=True), "{}"), (GrammarSpec(regex="a+"), "a"),
                       (GrammarSpec(choice=("a",)), "a"), (GrammarSpec(lark='start: "a"'), "a")):
        spec.verify(text)

    async def run() -> None:
        runtime = ParticleRuntime(WorkerLM(tokenizer, vocab, _WarmEngine(vocab.size), None))
        runtime.load(WARM_PROGRAM, "Once upon a time", 0, {})
        await runtime.spawn([0, 1])
        await runtime.advance([0, 1])
        await runtime.clone({0: [2]})
        await runtime.import_(await runtime.export([2]))
        await runtime.advance([0, 1, 2])
        await runtime.held()
        await runtime.drop([0, 1, 2])
        runtime.load(WARM_GRAMMAR_PROGRAM, "JSON:", 0, {})
        await runtime.spawn([0])
        await runtime.advance([0])
        await runtime.clone({0: [1]})
        await runtime.import_(await runtime.export([1]))
        await runtime.advance([0, 1])
        await runtime.drop([0, 1])
        try:  # a failing program: the error path, tracebacks included
            runtime.load("class Program(Model):\n    async def step(self):\n        raise ValueError(1)\n",
                         "x", 0, {})
            await runtime.spawn([0])
            await runtime.advance([0])
        except ProgramError:
            pass

    asyncio.run(run())


def _serve_zygote(ctl: socket.socket, tokenizer, vocab, empty_dir_fd: int) -> None:
    children: set[int] = set()
    codes: dict[int, int] = {}

    def reap() -> None:
        for pid in list(children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                children.discard(pid)
                continue
            if done:
                children.discard(pid)
                codes[pid] = os.waitstatus_to_exitcode(status)
                while len(codes) > 4096:
                    codes.pop(next(iter(codes)))

    # The pronouncing dictionary (syllables, rhymes) takes half a second to load: loaded when
    # the zygote is first idle, or before a fork whose program needs it, never on the path of
    # a request that does not (a confined worker could not open the file itself).
    phonetics_loaded = False

    def load_phonetics() -> None:
        nonlocal phonetics_loaded
        if not phonetics_loaded:
            from planner.phonetics import warm

            warm()
            phonetics_loaded = True

    while True:
        readable, _, _ = select.select([ctl], [], [], 0.5)
        reap()
        if not readable:
            load_phonetics()
            continue
        try:
            data, fds, _, _ = socket.recv_fds(ctl, 65536, 8)
        except OSError:
            data, fds = b"", []
        if not data:  # the replica is gone: so are its workers
            for pid in children:
                os.kill(pid, signal.SIGKILL)
            return
        message = json.loads(data)
        op = message.get("op")
        if op == "fork":
            if message.get("phonetics"):
                load_phonetics()
            pid = os.fork()
            if pid == 0:
                ctl.close()
                code = 70
                try:
                    from actors.program_worker import run_worker

                    code = run_worker(fds, message, tokenizer, vocab, empty_dir_fd)
                finally:
                    os._exit(code)
            for fd in fds:
                os.close(fd)
            children.add(pid)
            reply = {"pid": pid}
        elif op == "kill":
            pid = int(message["pid"])
            if pid in children:
                os.kill(pid, signal.SIGKILL)
            reply = {"ok": True}
        elif op == "status":
            pid, waited = int(message["pid"]), 0.0
            while pid in children and waited < float(message.get("timeout", 5)):
                select.select([], [], [], 0.02)
                waited += 0.02
                reap()
            reply = {"code": codes.get(pid)}
        else:
            reply = {"error": f"unknown op {op!r}"}
        ctl.send(json.dumps(reply).encode())


def main(argv: list[str]) -> None:
    ctl = socket.socket(fileno=int(argv[0]))
    try:
        import pyseccomp  # noqa: F401 - loaded here, so a worker finds it without opening files
        import tokenizers

        from actors import program_worker  # noqa: F401
        from planner.masks import Vocabulary

        with os.fdopen(int(argv[1]), "rb") as f:
            init = json.load(f)
        tokenizer = tokenizers.Tokenizer.from_str(init["tokenizer"])
        vocab = Vocabulary(init["strings"], init["eos"])
        _warm(tokenizer, vocab)
        # Opened, then removed at once: the workers' working directory exists only as this
        # descriptor, so a zygote killed with SIGKILL (its replica's end) leaves nothing behind.
        empty_dir = tempfile.mkdtemp(prefix="council-empty-")
        empty_dir_fd = os.open(empty_dir, os.O_RDONLY | os.O_DIRECTORY)
        os.rmdir(empty_dir)
    except Exception as exc:  # noqa: BLE001 - reported to the replica, which fails clearly
        ctl.send(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}).encode())
        return
    # Everything loaded so far is shared with every worker: out of the collector's sight, a
    # worker's collections neither walk it nor write to its pages (each write would copy one).
    gc.collect()
    gc.freeze()
    ctl.send(json.dumps({"ready": True}).encode())
    _serve_zygote(ctl, tokenizer, vocab, empty_dir_fd)


if __name__ == "__main__":
    main(sys.argv[1:])
