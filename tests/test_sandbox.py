"""The sandbox: what programs may not do, and what happens when they try."""

import asyncio

import pytest

from planner.sandbox import ProgramError, SandboxLimits, compile_program, run_step, run_sync

FAST = SandboxLimits(step_timeout_s=2.0, step_ops=200_000, memory_mb=256)

GOOD = """
from llamppl import Model, LMContext

class Program(Model):
    def __init__(self, lm, prompt):
        super().__init__()
        self.n = 0

    async def step(self):
        total = 0
        for i in range(100):
            total += i
        self.n += 1
        if self.n == 3:
            self.finish()

    def check(self, text):
        return len(text.split()) < 10
"""


def step_program(body: str) -> str:
    lines = "\n".join("        " + line for line in body.strip().splitlines())
    return f"""
class Program(Model):
    async def step(self):
{lines}
"""


def run_one_step(source: str):
    program = compile_program(source, FAST)
    model = run_sync(lambda: program.cls(), FAST, "__init__")
    return asyncio.run(run_step(model.step, FAST))


def test_a_good_program_compiles_and_runs():
    program = compile_program(GOOD)
    model = program.cls(None, "task")
    for _ in range(3):
        asyncio.run(run_step(model.step, FAST))
    assert model.finished and model.n == 3
    assert model.check("a short text") is True


REJECTED = {
    "import os": "import os\nclass Program(Model):\n    pass",
    "from os import system": "from os import system\nclass Program(Model):\n    pass",
    "subclasses walk": step_program("x = ().__class__.__subclasses__()"),
    "dunder attribute": step_program("g = self.step.__globals__"),
    "private attribute": step_program("e = self.context._engine"),
    "frame walk": step_program("c = self.step()\nf = c.cr_frame.f_globals"),
    "eval": step_program("eval('1 + 1')"),
    "exec": step_program("exec('x = 1')"),
    "open": step_program("open('/etc/passwd').read()"),
    "getattr": step_program("getattr(self, 'step')"),
    "globals": step_program("globals()"),
    "type()": step_program("t = type(self)"),
    "format width": step_program("s = '{:>1000000000}'.format(1)"),
    "f-string width": step_program("s = f'{1:>1000000000}'"),
    "bare except": step_program("try:\n    pass\nexcept:\n    pass"),
    "catch BaseException": step_program("try:\n    pass\nexcept BaseException:\n    pass"),
    "finally": step_program("try:\n    pass\nfinally:\n    pass"),
    "global": "x = 1\nclass Program(Model):\n    async def step(self):\n        global x",
    "yield": step_program("yield 1"),
    "dunder method": "class Program(Model):\n    def __getattribute__(self, name):\n        return 1",
    "decorator": "class Program(Model):\n    @staticmethod\n    def f():\n        pass",
    "no model": "x = 1",
    "syntax error": "class Program(Model)\n    pass",
}


@pytest.mark.parametrize("name", sorted(REJECTED))
def test_hostile_programs_are_rejected_before_running(name):
    with pytest.raises(ProgramError) as info:
        compile_program(REJECTED[name], FAST)
    assert "program" in str(info.value)


STOPPED = {
    "infinite loop": "while True:\n    pass",
    "nested comprehension": "x = [a for a in range(10**6) for b in range(10**6)]",
    "huge list": "x = [0] * 10**9",
    "huge string": "s = 'a' * (10**7)",
    "doubling string": "s = 'ab'\nwhile True:\n    s = s + s",
    "huge power": "x = 10 ** 10 ** 8",
    "huge shift": "x = 1 << 10**9",
    "percent width": "s = '%1000000000d' % 1",
    "huge range": "x = list(range(10**12))",
    "replace blow-up": "s = ('a' * 10**6).replace('a', 'aaaa')",
    "recursion": "def f(n):\n    return f(n + 1)\nf(0)",
    "unknown name (sleep)": "sleep(100)",
    "asyncio sleep": "await asyncio.sleep(100)",
    "raises": "x = 1 / 0",
    "swallowing loop": "while True:\n    try:\n        pass\n    except Exception:\n        pass",
}


@pytest.mark.parametrize("name", sorted(STOPPED))
def test_hostile_steps_are_stopped_with_a_clear_error(name):
    with pytest.raises(ProgramError) as info:
        run_one_step(step_program(STOPPED[name]))
    assert "step()" in str(info.value)


def test_errors_carry_the_program_traceback():
    source = step_program("x = {}\ny = x['missing']")
    with pytest.raises(ProgramError) as info:
        run_one_step(source)
    message = str(info.value)
    assert "KeyError" in message and "'missing'" in message
    assert 'File "<program>", line' in message  # a planner can locate its mistake
    assert "sandbox.py" not in message  # and is not shown our internals


def test_endless_init_and_module_code_are_stopped():
    with pytest.raises(ProgramError, match="loading"):
        compile_program("while True:\n    pass\nclass Program(Model):\n    pass", FAST)
    program = compile_program(
        "class Program(Model):\n    def __init__(self):\n        while True:\n            pass", FAST
    )
    with pytest.raises(ProgramError, match="__init__"):
        run_sync(lambda: program.cls(), FAST, "__init__")


def test_awaiting_forever_hits_the_step_time_limit():
    program = compile_program(step_program("await self.wait_forever()") + """
    async def wait_forever(self):
        while True:
            await self.observe(Bernoulli(0.5), True)
""", SandboxLimits(step_timeout_s=1.0, step_ops=10**9, memory_mb=256))
    model = program.cls()
    with pytest.raises(ProgramError, match="time limit|stopped"):
        asyncio.run(run_step(model.step, SandboxLimits(step_timeout_s=1.0, step_ops=10**9)))


def test_waiting_is_not_counted_against_the_step_time_limit():
    """A step that waits (as it does on a busy engine) longer than its limit, computing
    little, completes: the limit counts the program's own CPU time, not the shared queue."""
    async def waits():
        await asyncio.sleep(1.2)
        return "done"
    assert asyncio.run(run_step(waits, SandboxLimits(step_timeout_s=0.3))) == "done"


def test_computing_past_the_limit_between_waits_is_stopped():
    """CPU time adds up across the step's waits: the timer that woke during a wait sleeps
    again for what is left and cancels the step once the CPU time is spent."""
    import time

    async def computes_between_waits():
        for _ in range(200):
            await asyncio.sleep(0.02)
            end = time.thread_time() + 0.02
            while time.thread_time() < end:
                pass
        return "never"
    with pytest.raises(ProgramError, match="time limit of 0.5 CPU seconds"):
        asyncio.run(run_step(computes_between_waits, SandboxLimits(step_timeout_s=0.5)))
