"""Program workers on one replica (no Ray): one confined process per request, forked from the
zygote; what happens when one dies, overruns its CPU budget, goes idle, or loses its zygote."""

import asyncio
import os
import signal
import tempfile

import pytest

from actors import particle_host
from actors.engines.torch_engine import TorchEngine
from actors.particle_host import ParticleHost
from cluster.config import EngineConfig
from cluster.protocol import ProgramSpec
from planner.sandbox import ProgramError, SandboxLimits

STEPS = """
class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.context = LMContext(lm, prompt, chat=False)

    async def step(self):
        n = 0
        for i in range(WORK):
            n = n + i
        await self.sample(self.context.next_token())
        if self.context.token_count >= 50:
            self.finish()
"""


@pytest.fixture(scope="module")
def engine(tiny_model, smollm2_tokenizer):
    return TorchEngine(tiny_model, smollm2_tokenizer, EngineConfig(dtype="float32"))


def spec(work: int = 10, **limits) -> ProgramSpec:
    return ProgramSpec(source=f"WORK = {work}\n" + STEPS, prompt="Once upon a time",
                       limits=SandboxLimits(**limits))


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Uid:")).split()[1])


def test_each_request_gets_its_own_confined_process(engine):
    async def go():
        host = ParticleHost(engine)
        try:
            await host.spawn("a", spec(), [0, 1])
            await host.spawn("b", spec(), [0])
            pids = host.worker_pids()
            assert set(pids) == {"a", "b"} and len(set(pids.values())) == 2
            assert os.getpid() not in pids.values()
            if os.geteuid() == 0:
                assert all(uid_of(pid) == 65534 for pid in pids.values())
            states = await host.advance("a", [0, 1])
            assert all(s.tokens == 1 and not s.error for s in states)
            await host.drop("a")
            assert set(host.worker_pids()) == {"b"}
        finally:
            await host.close()

    asyncio.run(go())


def test_a_drop_that_overtakes_the_spawn_starting_the_worker_leaves_no_worker(engine):
    """A request cancelled while its spawn (or an import) is still starting its worker on a
    replica: the drop arrives before the worker exists, and must stop it once it does, not
    leave it to the idle reaper (a replica retiring meanwhile would wait on it)."""
    async def go():
        host = ParticleHost(engine)
        try:
            spawn = asyncio.ensure_future(host.spawn("late", spec(), [0, 1]))
            await asyncio.sleep(0)  # the spawn is under way: starting the zygote, then forking
            await host.drop("late")
            await asyncio.gather(spawn, return_exceptions=True)
            return host.worker_pids()
        finally:
            await host.close()

    assert asyncio.run(go()) == {}


def test_a_dead_worker_fails_only_its_own_request(engine):
    async def go():
        host = ParticleHost(engine)
        try:
            await host.spawn("victim", spec(), [0, 1])
            await host.spawn("doomed", spec(), [0, 1])
            os.kill(host.worker_pids()["doomed"], signal.SIGKILL)
            with pytest.raises(ProgramError, match="killed by the operating system"):
                await host.advance("doomed", [0, 1])
            assert "doomed" not in host.worker_pids()
            for _ in range(3):
                states = await host.advance("victim", [0, 1])
            assert all(s.tokens == 3 and not s.error for s in states)
        finally:
            await host.close()

    asyncio.run(go())


def test_the_cpu_budget_is_the_kernels(engine):
    """Each step is within its own budgets, but together they use more CPU than the request
    may: the kernel stops the worker (RLIMIT_CPU) and the error names the budget."""
    async def go():
        host = ParticleHost(engine)
        try:
            limits = {"cpu_s": 1.0, "step_ops": 10_000_000, "step_timeout_s": 30.0}
            await host.spawn("busy", spec(work=400_000, **limits), [0])
            with pytest.raises(ProgramError, match="CPU budget of 1 s"):
                for _ in range(50):
                    await host.advance("busy", [0])
        finally:
            await host.close()

    asyncio.run(go())


def test_idle_workers_are_reaped_and_a_lost_zygote_is_replaced(engine, monkeypatch, tmp_path):
    monkeypatch.setattr(particle_host, "REAP_EVERY_S", 0.2)
    # Zygotes killed with SIGKILL (as Ray ends an actor) once left a folder each in /tmp.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    async def go():
        host = ParticleHost(engine)
        try:
            await host.spawn("forgotten", spec(idle_s=0.5), [0])
            for _ in range(100):  # reaped within a few reaper passes; a loaded machine is slower
                await asyncio.sleep(0.1)
                if "forgotten" not in host.worker_pids():
                    break
            assert "forgotten" not in host.worker_pids()  # its scheduler never came back
            await host.spawn("before", spec(), [0])
            host._zygote._proc.kill()  # the zygote dies: its workers die with it
            host._zygote._proc.wait()
            with pytest.raises(ProgramError):
                await host.advance("before", [0])
            states = await host.spawn("after", spec(), [0])  # a new zygote serves new requests
            assert not states[0].error
            assert (await host.advance("after", [0]))[0].tokens == 1
            assert os.listdir(tmp_path) == []  # the killed zygote left nothing on disk
        finally:
            await host.close()

    asyncio.run(go())
    assert os.listdir(tmp_path) == []


def test_no_worker_means_unavailable_not_a_bad_program(engine, monkeypatch):
    """When the replica cannot start a confined worker, the request is refused as the
    service's failure (503), never run unconfined and never blamed on the program."""
    from actors.zygote import Zygote, ZygoteFailed
    from cluster.tasks import classify
    from planner.sandbox import WorkersUnavailable

    async def refuse(cls, *args):
        raise ZygoteFailed("seccomp is not available on this host")

    monkeypatch.setattr(Zygote, "start", classmethod(refuse))

    async def go():
        host = ParticleHost(engine)
        with pytest.raises(WorkersUnavailable, match="seccomp is not available") as caught:
            await host.spawn("r", spec(), [0])
        assert classify(caught.value).kind == "unavailable"
        assert not host.worker_pids()

    asyncio.run(go())
