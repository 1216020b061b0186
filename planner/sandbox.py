"""Check, compile and run inference programs that came from a planner (or a user).

Programs are untrusted text. They run inside a follower replica, next to the engine, so the
sandbox works in layers:

1. **AST allowlist** (`validate`): only the statements and expressions a program needs; no
   `import` beyond the API's own names (`from llamppl import Model` is accepted and dropped);
   no name or attribute that starts with `_` (no dunder walks); no introspection attributes
   (`gi_frame`, `f_globals`, `cr_code`…); no `exec`/`eval`/`open`/`getattr`/`globals`…; no
   `global`, `yield`, bare `except` or `except BaseException`.
2. **Restricted builtins**: a small safe set; `range` capped in length.
3. **Instrumentation** (`_Instrument`): a budget tick at the top of every function, lambda and
   loop body and on every comprehension element; `+ * % ** <<` checked so one expression
   cannot build a huge string, list or integer; method calls routed through a checker;
   attributes may be set only on objects of the program's own classes (never on the API's
   objects or on any class). A tick past the per-step operation budget, the step's time limit
   or the memory bound raises `BudgetExceeded`, a BaseException the program is not allowed to
   catch.
4. **Limits at run time** (`run_step`): the budget is armed for exactly that step, and a
   timer cancels the step once it has used its time. A step's time is CPU time of the thread
   running it (`_program_clock`): waiting for the engine does not count, because the engine's
   queue is shared by every tenant and a busy replica is not the program's doing.

These layers keep honest mistakes cheap and well reported; they are not the security
boundary. Programs run only in a confined worker process (`actors/program_worker.py`:
one per request, unprivileged, seccomp, rlimits), where the operating system enforces what
instrumentation cannot (memory, CPU time, a C call that never returns). The planner's side
only *checks* programs (`check_program`: parse, allowlist, compile; no program code runs).

Every failure becomes a `ProgramError` whose message carries the program's own traceback, so a
planner can repair its code and retry.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import contextvars
import hashlib
import math
import operator
import re
import time
import traceback
from dataclasses import dataclass
from typing import Any

import psutil
from pydantic import BaseModel, ConfigDict, Field

from planner import program as api

FILENAME = "<program>"
MAX_SEQUENCE = 1_000_000  # longest string / list / tuple one expression may build
MAX_INT_BITS = 100_000
MAX_SOURCE_CHARS = 100_000
MAX_FRAMES = 12  # of a program's traceback in its error


class ProgramError(Exception):
    """The program is invalid, raised, or broke a limit. `str()` is fit to show a planner."""


class WorkersUnavailable(RuntimeError):
    """Programs cannot run on a replica right now: no confined worker could be started there
    (the zygote failed, or the host cannot confine a process). Not the program's fault."""


class BudgetExceeded(BaseException):
    """Raised inside a program that ran out of budget; BaseException so it cannot be caught."""


class SandboxLimits(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Counted in CPU seconds of the program's own work: a step that awaits the engine waits
    # behind every other tenant's particles, and that queue must not fail a harmless program.
    # Endless computation is usually stopped sooner by the operation budget.
    step_timeout_s: float = Field(
        60.0, gt=0, description="CPU seconds one step() may compute (waits for the engine do not count).")
    step_ops: int = Field(2_000_000, ge=1000, description="Budget ticks (loop turns, calls) per step.")
    memory_mb: int = Field(512, ge=16, description="Most the worker may grow (its address space beyond the start).")
    cpu_s: float = Field(300.0, gt=0, description="CPU seconds the worker may use over the request's life.")
    idle_s: float = Field(120.0, gt=0, description="A request's lease on a replica, renewed by each "
                          "call: a worker not called for this long (its runner died, say) is reaped.")


# -- 1. validation -------------------------------------------------------------------------

ALLOWED_NODES = (
    ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef, ast.arguments, ast.arg,
    ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.For, ast.While, ast.If,
    ast.Raise, ast.Try, ast.ExceptHandler, ast.Assert, ast.Expr, ast.Pass, ast.Break,
    ast.Continue, ast.Delete, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Lambda, ast.IfExp,
    ast.Dict, ast.Set, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.Await,
    ast.Compare, ast.Call, ast.FormattedValue, ast.JoinedStr, ast.Constant, ast.Attribute,
    ast.Subscript, ast.Starred, ast.Name, ast.List, ast.Tuple, ast.Slice, ast.Load, ast.Store,
    ast.Del, ast.comprehension, ast.keyword, ast.alias, ast.ImportFrom, ast.Import,
    ast.operator, ast.boolop, ast.unaryop, ast.cmpop, ast.Nonlocal,
)
FORBIDDEN_NAMES = {
    "exec", "eval", "compile", "open", "getattr", "setattr", "delattr", "hasattr", "globals",
    "locals", "vars", "dir", "type", "object", "input", "breakpoint", "help", "memoryview",
    "classmethod", "staticmethod", "property", "BaseException", "SystemExit",
    "KeyboardInterrupt", "GeneratorExit",
}
FORBIDDEN_ATTRIBUTES = {
    "format", "format_map", "ljust", "rjust", "center", "zfill", "expandtabs", "mro",
    "with_traceback", "send", "throw", "close",
}
INTROSPECTION_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "im_")
ALLOWED_DUNDER_METHODS = {"__init__", "__str__", "__repr__"}
API_MODULES = {"llamppl", "hfppl", "council", "planner.program"}
FORMAT_WIDTH = re.compile(r"%[-+ #0]*(\d+|\*)")


def _fail(node: ast.AST, why: str) -> ProgramError:
    line = getattr(node, "lineno", "?")
    return ProgramError(f"program rejected (line {line}): {why}")


def _is_super_call(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def validate(tree: ast.Module, api_names: set[str]) -> None:
    for node in ast.walk(tree):
        if not isinstance(node, ALLOWED_NODES):
            raise _fail(node, f"{type(node).__name__} is not allowed in a program")
        if isinstance(node, ast.Import):
            raise _fail(node, "imports are not allowed; use the names the program API provides")
        if isinstance(node, ast.ImportFrom):
            if node.module not in API_MODULES:
                raise _fail(node, f"cannot import from {node.module!r}; the API's names are predefined")
            for alias in node.names:
                if alias.name not in api_names or alias.asname:
                    raise _fail(node, f"{alias.name!r} is not part of the program API")
        names = []
        if isinstance(node, ast.Name):
            names.append(node.id)
            if node.id in FORBIDDEN_NAMES:
                raise _fail(node, f"{node.id!r} is not available to programs")
        elif isinstance(node, ast.Attribute):
            if not (node.attr == "__init__" and _is_super_call(node.value)):
                names.append(node.attr)
            if node.attr in FORBIDDEN_ATTRIBUTES or node.attr.startswith(INTROSPECTION_PREFIXES):
                raise _fail(node, f"attribute {node.attr!r} is not available to programs")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("_") and node.name not in ALLOWED_DUNDER_METHODS:
                raise _fail(node, f"method name {node.name!r}: names may not start with '_'")
        elif isinstance(node, ast.ClassDef):
            names.append(node.name)
            if node.keywords or node.decorator_list:
                raise _fail(node, "class keywords and decorators are not allowed")
        elif isinstance(node, ast.arg):
            names.append(node.arg)
        elif isinstance(node, ast.keyword) and node.arg:
            names.append(node.arg)
        elif isinstance(node, ast.Try) and node.finalbody:
            raise _fail(node, "`finally` is not allowed (it could swallow a stopped step)")
        elif isinstance(node, ast.ExceptHandler):
            if node.type is None:
                raise _fail(node, "a bare `except:` is not allowed; name the exception")
            for n in ast.walk(node.type):
                if isinstance(n, ast.Name) and n.id in ("BaseException",):
                    raise _fail(node, "catching BaseException is not allowed")
            if node.name:
                names.append(node.name)
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            spec = node.format_spec
            if not all(isinstance(v, ast.Constant) for v in spec.values):
                raise _fail(node, "f-string format specs must be constants")
            text = "".join(str(v.value) for v in spec.values)
            if any(int(d) > 1000 for d in re.findall(r"\d+", text)):
                raise _fail(node, "f-string widths above 1000 are not allowed")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.decorator_list:
                raise _fail(node, "decorators are not allowed")
        for name in names:
            if name.startswith("_") and name != "_":  # a lone `_` is the usual throwaway
                raise _fail(node, f"names starting with '_' are not allowed ({name!r})")


# -- 3. instrumentation ----------------------------------------------------------------------

TICK, ITER, BINOP, METHOD, OWNED = "__tick__", "__iter__", "__binop__", "__method__", "__owned__"
PROGRAM_MODULE = "council_program"  # the __name__ programs run under: their classes' __module__
CHECKED_OPS = {ast.Add: "+", ast.Mult: "*", ast.Mod: "%", ast.Pow: "**", ast.LShift: "<<"}


class _Instrument(ast.NodeTransformer):
    """Insert budget ticks and size checks. Runs after validation, so user code cannot name
    (or shadow) the dunder helpers it inserts."""

    @staticmethod
    def _tick() -> ast.stmt:
        return ast.Expr(ast.Call(ast.Name(TICK, ast.Load()), [], []))

    def _with_tick(self, node):
        self.generic_visit(node)
        node.body.insert(0, self._tick())
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_For = visit_While = _with_tick

    def visit_Lambda(self, node):
        self.generic_visit(node)
        # `__tick__()` returns None, so `None or body` is the body, ticked once per call.
        node.body = ast.BoolOp(ast.Or(), [ast.Call(ast.Name(TICK, ast.Load()), [], []), node.body])
        return node

    def visit_Attribute(self, node):
        self.generic_visit(node)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            # `obj.x = v` becomes `__owned__(obj).x = v`: only the program's own objects change.
            node.value = ast.Call(ast.Name(OWNED, ast.Load()), [node.value], [])
        return node

    def visit_ImportFrom(self, node):
        return ast.Pass()  # validated: the names already live in the namespace

    def visit_comprehension(self, node):
        self.generic_visit(node)
        node.iter = ast.Call(ast.Name(ITER, ast.Load()), [node.iter], [])
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        op = CHECKED_OPS.get(type(node.op))
        if op is None:
            return node
        return ast.Call(ast.Name(BINOP, ast.Load()), [ast.Constant(op), node.left, node.right], [])

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        op = CHECKED_OPS.get(type(node.op))
        if op is None:
            return node
        load = _as_load(node.target)
        call = ast.Call(ast.Name(BINOP, ast.Load()), [ast.Constant(op), load, node.value], [])
        return ast.Assign([node.target], call)

    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Attribute) and isinstance(node.func.ctx, ast.Load):
            target = node.func
            return ast.Call(
                ast.Name(METHOD, ast.Load()),
                [target.value, ast.Constant(target.attr), *node.args],
                node.keywords,
            )
        return node


def _as_load(target: ast.expr) -> ast.expr:
    clone = ast.parse(ast.unparse(target), mode="eval").body
    return clone


# -- the budget ------------------------------------------------------------------------------


@dataclass
class _Budget:
    ops_left: int
    deadline: float
    rss_limit: int
    exceeded: str | None = None


def _program_clock() -> float:
    """The clock a step's time limit runs on: CPU time of this thread, which stands still
    while the step awaits the engine and while the OS runs other processes."""
    return time.thread_time()


_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("budget", default=None)
_process = psutil.Process()
# Off in a confined worker, where the kernel's address-space limit bounds memory (and
# /proc, which psutil reads, cannot be opened).
_memory_checks = True


def use_os_memory_limit() -> None:
    """The process runs under RLIMIT_AS: stop polling resident memory."""
    global _memory_checks
    _memory_checks = False


def _tick() -> None:
    budget = _budget.get()
    if budget is None:
        return  # code run outside a managed step (construction, check()) is bounded by callers
    if budget.exceeded:
        raise BudgetExceeded(budget.exceeded)
    budget.ops_left -= 1
    if budget.ops_left < 0:
        budget.exceeded = "operation budget of the step exhausted (an endless loop?)"
    elif budget.ops_left % 256 == 0:
        if _program_clock() > budget.deadline:
            budget.exceeded = "step time limit exceeded"
        elif _memory_checks and _process.memory_info().rss > budget.rss_limit:
            budget.exceeded = "memory bound exceeded"
    if budget.exceeded:
        raise BudgetExceeded(budget.exceeded)


def _iter(iterable):
    for item in iterable:
        _tick()
        yield item


_SEQUENCES = (str, bytes, list, tuple)
_OPS = {"+": operator.add, "*": operator.mul, "%": operator.mod, "**": operator.pow,
        "<<": operator.lshift}


def _binop(op: str, a, b):
    if op == "*":
        seq, n = (a, b) if isinstance(a, _SEQUENCES) else (b, a)
        if isinstance(seq, _SEQUENCES) and isinstance(n, int) and len(seq) * n > MAX_SEQUENCE:
            raise BudgetExceeded(f"sequence of {len(seq) * n} items is over the limit")
        if isinstance(a, int) and isinstance(b, int) and a.bit_length() + b.bit_length() > MAX_INT_BITS:
            raise BudgetExceeded("integer product over the size limit")
    elif op == "+":
        if isinstance(a, _SEQUENCES) and isinstance(b, _SEQUENCES) and len(a) + len(b) > MAX_SEQUENCE:
            raise BudgetExceeded("sequence over the size limit")
    elif op == "**":
        if isinstance(a, int) and isinstance(b, int) and b > 0 and abs(a) > 1:
            if b * math.log2(abs(a)) > MAX_INT_BITS:
                raise BudgetExceeded("integer power over the size limit")
    elif op == "<<":
        if isinstance(b, int) and b > MAX_INT_BITS:
            raise BudgetExceeded("shift over the size limit")
    elif op == "%" and isinstance(a, str):
        for width in FORMAT_WIDTH.findall(a):
            if width == "*" or int(width) > 1000:
                raise BudgetExceeded("%-format widths above 1000 are not allowed")
    return _OPS[op](a, b)


def _owned(obj):
    """The object a program sets (or deletes) an attribute on, if it may: an instance of one
    of the program's own classes. The API's objects (contexts, the follower, masks) and every
    class, the program's included, stay as they are."""
    if isinstance(obj, type) or type(obj).__module__ != PROGRAM_MODULE:
        raise ProgramError(f"programs may set attributes only on their own objects, not on a {type(obj).__name__}")
    return obj


def _method(obj, name: str, *args, **kwargs):
    if name == "__init__" and isinstance(obj, super):
        return obj.__init__(*args, **kwargs)
    if name.startswith("_") or name in FORBIDDEN_ATTRIBUTES:
        raise ProgramError(f"method {name!r} is not available to programs")
    if name == "replace" and isinstance(obj, str) and len(args) >= 2:
        if isinstance(args[1], str) and len(obj) * max(1, len(args[1])) > MAX_SEQUENCE:
            raise BudgetExceeded("replace() result over the size limit")
    return getattr(obj, name)(*args, **kwargs)


# -- 2. builtins and namespace ------------------------------------------------------------


def _capped_range(*args):
    r = range(*args)
    if len(r) > MAX_SEQUENCE:
        raise BudgetExceeded(f"range of {len(r)} items is over the limit")
    return r


def _numeric_sum(iterable, start=0):
    if not isinstance(start, (int, float)):
        raise TypeError("sum() takes numbers only in programs")
    return builtins.sum(iterable, start)


def _quiet_print(*args, **kwargs):
    """Programs may print while debugging; output is discarded (replicas have no console)."""


SAFE_BUILTINS = {
    name: getattr(builtins, name)
    for name in (
        "abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "frozenset", "int",
        "isinstance", "len", "list", "map", "max", "min", "reversed", "round", "set",
        "sorted", "str", "tuple", "zip", "super", "Exception", "ValueError",
        "TypeError", "KeyError", "IndexError", "RuntimeError", "ZeroDivisionError",
        "AssertionError", "NotImplementedError", "StopIteration", "ArithmeticError",
        "True", "False", "None", "chr", "ord", "divmod", "hash", "iter", "next", "slice",
    )
}
SAFE_BUILTINS.update(
    range=_capped_range, sum=_numeric_sum, print=_quiet_print,
    __build_class__=builtins.__build_class__,
)

MATH = type("math", (), {k: getattr(math, k) for k in (
    "log", "log1p", "exp", "expm1", "sqrt", "inf", "nan", "isfinite", "isinf", "isnan",
    "floor", "ceil", "fabs", "pi", "e", "lgamma",
)})

def _satisfies(text: str, spec: dict) -> bool:
    """Whether `text` meets a ConstraintSpec (given as plain data), with COLLIE's semantics."""
    return _verifier(repr(sorted(spec.items())), spec)(text)


def _matches(text: str, json_schema: dict | None = None, regex: str | None = None, choice=None,
             lark: str | None = None, json_object: bool = False) -> bool:
    """Whether `text` is in a grammar (the same arguments as `LMContext.grammar`), checked
    with jsonschema / re / membership rather than by the matcher that wrote it."""
    return api._grammar_spec(json_schema, regex, choice, lark, json_object).verify(str(text))[0] is True


def _syllables(word: str) -> int:
    """Syllables of a word (CMU dictionary, or a spelling rule for a word it lacks)."""
    from planner.phonetics import syllables

    return syllables(str(word))


def _rhymes_of(word: str) -> list:
    """Common rhymes of a word, shortest first (empty when the dictionary knows none)."""
    from planner.phonetics import rhymes_of

    return list(rhymes_of(str(word)))


def _rhyme(a: str, b: str) -> bool:
    from planner.phonetics import rhyme

    return rhyme(str(a), str(b))


_VERIFIERS: dict[str, Any] = {}


def _verifier(key: str, spec: dict):
    if key not in _VERIFIERS:
        from planner.spec import ConstraintSpec

        if len(_VERIFIERS) > 256:
            _VERIFIERS.clear()
        _VERIFIERS[key] = ConstraintSpec.model_validate(spec).verifier()
    return _VERIFIERS[key]


API = {
    "Model": api.Model,
    "LMContext": api.LMContext,
    "Token": api.Token,
    "Distribution": api.Distribution,
    "Bernoulli": api.Bernoulli,
    "LogCategorical": api.LogCategorical,
    "logsumexp": api.logsumexp,
    "math": MATH,
    "satisfies": _satisfies,
    "matches": _matches,
    "syllables": _syllables,
    "rhymes_of": _rhymes_of,
    "rhyme": _rhyme,
}


@dataclass(frozen=True)
class CompiledProgram:
    """A validated program: its Model subclass and the source it came from."""

    cls: type
    source: str
    digest: str


_rss_seen = (0.0, 0)


def _recent_rss() -> int:
    """Resident memory, re-read at most every 50 ms: arming happens for every particle-step,
    and a psutil read costs ~16 us."""
    global _rss_seen
    if not _memory_checks:
        return 0
    now = time.monotonic()
    if now - _rss_seen[0] > 0.05:
        _rss_seen = (now, _process.memory_info().rss)
    return _rss_seen[1]


class _Armed:
    """Arms the budget for one piece of program code (a step, a constructor, module code)."""

    def __init__(self, limits: SandboxLimits):
        self.budget = _Budget(
            ops_left=limits.step_ops,
            deadline=_program_clock() + limits.step_timeout_s,
            rss_limit=_recent_rss() + limits.memory_mb * 2**20,
        )

    def __enter__(self) -> _Budget:
        self._token = _budget.set(self.budget)
        return self.budget

    def __exit__(self, *exc) -> None:
        _budget.reset(self._token)


def _checked_tree(source: str) -> ast.Module:
    if not isinstance(source, str) or not source.strip():
        raise ProgramError("program source is empty")
    if len(source) > MAX_SOURCE_CHARS:
        raise ProgramError(f"program source is over {MAX_SOURCE_CHARS} characters")
    try:
        tree = ast.parse(source, filename=FILENAME)
    except SyntaxError as exc:
        raise ProgramError(f"program has a syntax error: {exc.msg} (line {exc.lineno})") from None
    except (ValueError, RecursionError, MemoryError):
        raise ProgramError("program source cannot be parsed (nested too deeply?)") from None
    validate(tree, set(API))
    if not any(isinstance(node, ast.ClassDef) for node in tree.body):
        raise ProgramError("program defines no subclass of Model")
    return ast.fix_missing_locations(_Instrument().visit(tree))


def check_program(source: str) -> None:
    """Everything about a program that can be known without running it (parse, allowlist,
    instrumentation, bytecode). This is what the planner's process does; program code itself
    only ever runs in a confined worker (`compile_program` there)."""
    tree = _checked_tree(source)
    try:
        compile(tree, FILENAME, "exec")
    except (SyntaxError, ValueError, RecursionError) as exc:
        raise ProgramError(f"program does not compile: {exc}") from None


def compile_program(source: str, limits: SandboxLimits | None = None) -> CompiledProgram:
    """Validate and load program source; raises ProgramError saying what is wrong. This runs
    the program's module-level code: call it only inside a confined worker."""
    tree = _checked_tree(source)
    namespace: dict[str, Any] = {
        "__builtins__": SAFE_BUILTINS,
        "__name__": PROGRAM_MODULE,
        TICK: _tick,
        ITER: _iter,
        BINOP: _binop,
        METHOD: _method,
        OWNED: _owned,
        **API,
    }
    try:
        with _Armed(limits or SandboxLimits()):
            exec(compile(tree, FILENAME, "exec"), namespace)  # noqa: S102 - validated above
    except (Exception, BudgetExceeded) as exc:  # the program's module-level code failed
        raise ProgramError("program failed while loading:\n" + _program_traceback(exc)) from None
    models = [
        v for k, v in namespace.items()
        if isinstance(v, type) and issubclass(v, api.Model) and v is not api.Model
    ]
    if not models:
        raise ProgramError("program defines no subclass of Model")
    chosen = namespace.get("Program") if isinstance(namespace.get("Program"), type) else None
    if chosen is None and len(models) > 1:
        raise ProgramError("program defines several Model subclasses; name the one to run `Program`")
    cls = chosen or models[0]
    return CompiledProgram(cls, source, hashlib.sha256(source.encode()).hexdigest()[:16])


def _program_traceback(exc: BaseException) -> str:
    """The traceback restricted to the program's own frames (what a planner can act on)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == FILENAME]
    lines = traceback.format_list(frames[-MAX_FRAMES:])  # a runaway recursion: its last frames
    if len(frames) > MAX_FRAMES:
        lines.insert(0, f"  ... {len(frames) - MAX_FRAMES} earlier frames\n")
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


@contextlib.contextmanager
def _guarded(limits: SandboxLimits, what: str):
    """Arm the budget for a piece of program code and turn whatever stops it into one
    ProgramError (run_step and run_sync share this)."""
    with _Armed(limits) as budget:
        try:
            yield budget
        except BudgetExceeded as exc:
            raise ProgramError(f"{what} stopped: {exc}") from None
        except ProgramError:
            raise
        except MemoryError:  # the worker's address-space limit (RLIMIT_AS), hit by the program
            raise ProgramError(f"{what} stopped: memory budget of {limits.memory_mb} MB exceeded") from None
        except Exception as exc:  # the program's own error, with its traceback
            raise ProgramError(f"{what} raised:\n" + _program_traceback(exc)) from None
        if budget.exceeded:  # the program swallowed the stop somehow: still a failure
            raise ProgramError(f"{what} stopped: {budget.exceeded}")


class _StepTimer:
    """Cancels a step once its CPU time is spent. It wakes when the time would be spent if the
    step computed without pause (CPU time never runs ahead of the wall clock) and, if the step
    was waiting meanwhile, sleeps again for what is left. One timer handle per step, no extra
    task (`asyncio.timeout` rather than `wait_for`: it is armed for every particle-step)."""

    def __init__(self, timeout: asyncio.Timeout, deadline: float):
        self._timeout = timeout
        self._deadline = deadline
        self._loop = asyncio.get_running_loop()
        self._handle = self._loop.call_later(max(0.0, deadline - _program_clock()), self._wake)

    def _wake(self) -> None:
        left = self._deadline - _program_clock()
        if left <= 0:
            self._timeout.reschedule(self._loop.time())  # expires now: the step is cancelled
        else:
            self._handle = self._loop.call_later(left, self._wake)

    def cancel(self) -> None:
        self._handle.cancel()


async def run_step(coroutine_factory, limits: SandboxLimits, what: str = "step()"):
    """Run one program coroutine (`start`, `step`) under the sandbox limits."""
    with _guarded(limits, what) as budget:
        try:
            async with asyncio.timeout(None) as timeout:
                timer = _StepTimer(timeout, budget.deadline)
                try:
                    return await coroutine_factory()
                finally:
                    timer.cancel()
        except TimeoutError:
            raise ProgramError(f"{what} exceeded its time limit of {limits.step_timeout_s:g} CPU seconds") from None


def run_sync(fn, limits: SandboxLimits, what: str):
    """Run synchronous program code (`__init__`, `check`) under the same limits."""
    with _guarded(limits, what):
        return fn()
