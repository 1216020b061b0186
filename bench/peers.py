"""`council bench peers`: Council against genlm-control on the same constraint tasks, with the same
model (SmolLM2-135M-Instruct) and the same particle count: pass rate, tokens/s and seconds per
task, side by side.

Tasks (`--types`, `--per-type N` of each):
- `regex`: the `words` task of bench/genlm_smc.py: a request for one sentence of 8 to 12 words
  about a fixed scene (bench/engine.py's text), which must match
  `[A-Z][A-Za-z'-]*(,? [A-Za-z'-]+){7,11}\\.`. Council gets the request with that regex as its
  `response_format` ({"type": "regex"}); genlm-control gets it as a `BoolFSA` under `AWRS`. The N
  tasks are the same request with seeds 0..N-1 for Council (genlm-control's sampler takes no
  seed). Passed: `re.fullmatch` and the word count (`genlm_smc.satisfies`).
- COLLIE wiki tasks of the sentence-level types: c04 (exactly n characters), c05 (exactly n words,
  given words at three positions), c06a (at least n words, none longer than k characters), c07
  (containing given words). The other types constrain paragraphs or passages (c08-c14) or single
  words (c01-c03, not in the wiki set). Council answers the task's prompt through its own path
  (`CouncilRunner.run_task`, strategy council-smc on pool smol: the library planner reads the
  prompt and writes the SMC program). genlm-control gets the prompt chat-templated as it is and the
  constraint as JSON (`collie_spec`), enforced by `SpecPotential` (bench/genlm_smc.py: `complete` is
  COLLIE's check, `prefix` a sound check that never rejects a prefix some continuation completes)
  coerced to the LLM's tokens, under AWRS. Passed: COLLIE's own check (`bench.evaluate.judge`) on
  the text each system returned (genlm-control: its top answer by posterior weight), computed
  here, in Council's process, for both.

Timing. tokens/s is follower tokens over the task's seconds: Council's `result.follower_tokens`
over the wall time of `run_task` (planning and prompt prefill included); genlm-control's `tokens`
(the lengths of its final particles: one token per particle per step it was alive) over its
`seconds`, which time only the `smc(...)` call: the script loads the model, warms up and caches
the prompt's keys and values (`--mode best`, batch = particles) before its clock starts. Council's
runner and engine stay loaded across tasks, genlm-control runs as one subprocess per task; so the
per-task figures favour neither side on model load (both leave it out; genlm-control also leaves
out its prompt prefill), while Council's total wall time is favoured by staying warm (the
subprocess's whole time is kept in `process_s`). Before its first timed task Council answers one
task of each kind (regex, COLLIE) untimed, with 2 particles: as genlm_smc.py's warm-up run, it
takes the first calls' costs, and it compiles the regex's token automaton, which Council keeps
(genlm-control builds its FSA before its clock starts). The systems alternate task by task (the
order rotates), so drift in this machine's speed falls on both. `--max-tokens` is genlm-control's
cap on a particle's tokens (EOS included: a particle unfinished by then is forced to end and dies
unless its text passes) and Council's `max_tokens`; on the regex task Council's rounds are capped
at `--max-tokens` + 2 too (its structured template spends a round per token, and two more), so a
particle's tokens are capped alike; COLLIE programs keep their own budget (a round per word).

llamppl is not a contender here: bench/llamppl_smc.py has only the fixed-length program, and a
COLLIE constraint would have to be written as a llamppl model of its own.

genlm-control runs in its own virtual environment (`scripts/install_genlm.sh`, or
$COUNCIL_GENLM_PYTHON); without it the Council rows still run and genlm-control is reported
as skipped.

    council bench peers --per-type 3             # bench/results/peers.json, rows in peers.jsonl
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

from bench.genlm_smc import satisfies, word_regex, words_request
from bench.measure import read_rows, write_report

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("council", "genlm")
LABELS = {"council": "Council council-smc", "genlm": "genlm-control AWRS SMC"}
COLLIE_TYPES = ("c04", "c05", "c06a", "c07")
TYPES = ("regex", *COLLIE_TYPES)
MIN_WORDS, MAX_WORDS = 8, 12
INSTALLER = "scripts/install_genlm.sh"


class Row(BaseModel):
    id: str
    type: str
    system: str
    text: str = ""
    passed: bool = False
    tokens: int = 0
    seconds: float = 0.0
    error: str | None = None
    process_s: float | None = None  # genlm-control: the whole subprocess (load and warm-up too)
    extra: dict = {}

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 and self.error is None else None


# -- tasks ------------------------------------------------------------------------------------

def collie_spec(task: dict) -> dict:
    """A COLLIE sentence-level task's constraint in bench/genlm_smc.py's JSON form (ValueError for
    a constraint it has no key for)."""
    from planner.constraints import parse_collie

    verifier = parse_collie(task["constraint"], task["targets"])
    spec: dict = {}

    def bounds(name: str, relation: str, value) -> None:
        value = value[0] if isinstance(value, list) and len(value) == 1 else value
        low, high = {"==": (value, value), "<=": (None, value), ">=": (value, None),
                     "<": (None, value - 1), ">": (value + 1, None)}[relation]
        if low is not None:
            spec[f"min_{name}"] = max(low, spec.get(f"min_{name}", low))
        if high is not None:
            spec[f"max_{name}"] = min(high, spec.get(f"max_{name}", high))

    for check, target in zip(verifier.checks, verifier.targets):
        levels, kind, relation = (check.input_level, check.target_level), check.transform.kind, check.relation
        if levels == (None, "character") and kind == "count" and relation in ("==", "<=", ">=", "<", ">"):
            bounds("chars", relation, target)
        elif levels == (None, "word") and kind == "count" and relation in ("==", "<=", ">=", "<", ">"):
            bounds("words", relation, target)
        elif levels == (None, "word") and kind == "position" and relation == "==":
            positions = check.transform.position
            positions, words = ([positions], [target]) if isinstance(positions, int) else (positions, target)
            if any(p < 0 for p in positions) or len(positions) != len(words):
                raise ValueError(f"{task['id']}: word positions {positions} are not supported")
            spec.setdefault("word_at", {}).update({str(p): w for p, w in zip(positions, words)})
        elif (levels == ("word", "character") and kind == "each_count" and relation == "<="
              and check.reduction == "all"):
            spec["max_word_chars"] = target
        elif levels == (None, "word") and kind == "each" and relation == "in":
            spec.setdefault("contains", []).extend(target if isinstance(target, list) else [target])
        else:
            raise ValueError(f"{task['id']}: no genlm-control potential for {check!r}")
    return spec


def regex_tasks(n: int) -> list[dict]:
    from bench.engine import PROMPT_TEXT

    return [{"id": f"regex/{k}", "type": "regex", "scene": PROMPT_TEXT,
             "prompt": words_request(PROMPT_TEXT, MIN_WORDS, MAX_WORDS), "regex": word_regex(MIN_WORDS, MAX_WORDS)}
            for k in range(n)]


def load_tasks(per_type: int, types: tuple[str, ...] = TYPES) -> list[dict]:
    """`per_type` tasks of each type, interleaved (task k of every type before task k + 1)."""
    from bench.collie import load as load_collie

    unknown = set(types) - set(TYPES)
    if unknown:
        raise ValueError(f"unknown types {sorted(unknown)} (known: {', '.join(TYPES)})")
    tasks = regex_tasks(per_type) if "regex" in types else []
    collie = tuple(t for t in COLLIE_TYPES if t in types)
    if collie:
        tasks += load_collie(limit=per_type, types=collie)
    tasks.sort(key=lambda t: (int(t["id"].split("/")[-1]), TYPES.index(t["type"])))
    return tasks


def passed(task: dict, text: str | None) -> bool:
    """The same check for both systems: the regex and word count, or COLLIE's own."""
    if not text:
        return False
    if task["type"] == "regex":
        return satisfies(text, MIN_WORDS, MAX_WORDS)
    from bench.collie import passes

    return passes(task, text)


# -- the two systems --------------------------------------------------------------------------

async def council_row(runner, task: dict, particles: int, max_tokens: int, seed: int) -> Row:
    from council_sdk.types import ResponseFormat, TaskRequest

    regex = task["type"] == "regex"
    # The structured template spends a round per token (and two more): its rounds capped so, a
    # particle has as many tokens as genlm-control's. COLLIE programs keep their own word budget.
    request = TaskRequest(prompt=task["prompt"], strategy="council-smc", pool="smol", particles=particles,
                          seed=seed, max_tokens=max_tokens, max_rounds=max_tokens + 2 if regex else None,
                          response_format=ResponseFormat(type="regex", regex=task["regex"]) if regex else None)
    started = time.monotonic()
    try:
        result = await runner.run_task(request)
    except Exception as exc:  # noqa: BLE001 - one failed task is reported, not fatal
        return Row(id=task["id"], type=task["type"], system="council", seconds=time.monotonic() - started,
                   error=f"{type(exc).__name__}: {exc}"[:300])
    seconds = time.monotonic() - started
    return Row(id=task["id"], type=task["type"], system="council", text=result.text,
               passed=passed(task, result.text), tokens=result.follower_tokens, seconds=seconds,
               extra={"claimed": result.passed, "stopped": result.stopped, "rounds": result.rounds})


def genlm_row(python: Path, model_dir: Path, task: dict, particles: int, max_tokens: int, dtype: str,
              mode: str = "best", timeout_s: float = 1800) -> Row:
    """bench/genlm_smc.py on one task in genlm-control's interpreter, its prompt and constraint in
    a private temporary folder."""
    from bench.throughput import run_json_script

    base = Row(id=task["id"], type=task["type"], system="genlm")
    with tempfile.TemporaryDirectory(prefix="council-peers-") as tmp:
        prompt_file = Path(tmp) / "prompt.txt"
        cmd = [str(python), str(ROOT / "bench" / "genlm_smc.py"), "--model-dir", str(model_dir),
               "--prompt-file", str(prompt_file), "--particles", str(particles), "--steps", str(max_tokens),
               "--mode", mode, "--dtype", dtype]
        if task["type"] == "regex":
            prompt_file.write_text(task["scene"])
            cmd += ["--task", "words", "--min-words", str(MIN_WORDS), "--max-words", str(MAX_WORDS)]
        else:
            prompt_file.write_text(task["prompt"])
            spec_file = Path(tmp) / "spec.json"
            spec_file.write_text(json.dumps(collie_spec(task)))
            cmd += ["--task", "collie", "--spec-file", str(spec_file)]
        started = time.monotonic()
        out = run_json_script(cmd, timeout_s)
    process_s = time.monotonic() - started
    if "error" in out:
        return base.model_copy(update={"error": out["error"], "process_s": process_s})
    text = out.get("top_answer") or ""
    return base.model_copy(update={
        "text": text, "passed": passed(task, text), "tokens": out["tokens"], "seconds": out["seconds"],
        "process_s": process_s,
        "extra": {k: out.get(k) for k in ("top_answer_valid", "top_answer_weight", "valid_share", "valid_weight",
                                          "alive_share", "ess", "dtype", "batch_size")}})


# -- the run ----------------------------------------------------------------------------------

async def warm_up(runner, tasks: list[dict], progress=print) -> None:
    """One untimed 2-particle run of each kind of task ahead (the regex one, a COLLIE one), as
    genlm_smc.py warms up before its clock starts: the first request pays for first calls, and
    the regex's token automaton is compiled once and kept (genlm-control compiles its FSA
    before timing too)."""
    firsts = {}
    for task in tasks:
        firsts.setdefault(task["type"] == "regex", task)
    for task in firsts.values():
        started = time.monotonic()
        row = await council_row(runner, task, particles=2, max_tokens=8, seed=10_000)
        progress(f"warm-up ({task['type']}): {time.monotonic() - started:.1f} s{', ' + row.error if row.error else ''}")


async def run_all(runner, tasks: list[dict], out: Path, particles: int, max_tokens: int, genlm: dict | None,
                  progress=print) -> list[Row]:
    """Both systems on every task, the order rotating task by task (resumable: (id, system)
    pairs already in `out` are kept). `genlm`: genlm_row's settings, None when it is skipped
    (nothing is written for it then)."""
    done = {(r.id, r.system): r for r in read_rows(out, Row)}
    out.parent.mkdir(parents=True, exist_ok=True)
    systems = SYSTEMS if genlm is not None else ("council",)
    await warm_up(runner, [t for t in tasks if (t["id"], "council") not in done], progress)
    with out.open("a") as sink:
        for k, task in enumerate(tasks):
            for system in systems[k % len(systems):] + systems[:k % len(systems)]:
                if (task["id"], system) in done:
                    continue
                if system == "council":
                    row = await council_row(runner, task, particles, max_tokens, seed=k)
                else:
                    row = await asyncio.to_thread(genlm_row, task=task, particles=particles,
                                                  max_tokens=max_tokens, **genlm)
                sink.write(row.model_dump_json() + "\n")
                sink.flush()
                done[(task["id"], system)] = row
                rate = f"{row.tokens_per_s:6.1f} tok/s" if row.tokens_per_s else "     – tok/s"
                progress(f"{k + 1}/{len(tasks)} {task['type']:>5s} {system:7s} passed={row.passed!s:5s} {rate} "
                         f"{row.seconds:6.1f} s  {(row.error or row.text)[:60]!r}")
    return [done[(t["id"], s)] for t in tasks for s in SYSTEMS if (t["id"], s) in done]


def _stats(rows: list[Row]) -> dict:
    ok = [r for r in rows if r.error is None]
    seconds = sum(r.seconds for r in ok)
    return {"tasks": len(rows), "pass_rate": sum(r.passed for r in rows) / len(rows) if rows else None,
            "tokens_per_s": sum(r.tokens for r in ok) / seconds if seconds > 0 else None,
            "seconds_per_task": seconds / len(ok) if ok else None,
            "tokens_per_task": sum(r.tokens for r in ok) / len(ok) if ok else None,
            "process_s_per_task": (sum(r.process_s for r in ok) / len(ok)
                                   if ok and all(r.process_s is not None for r in ok) else None),
            "errors": len(rows) - len(ok)}


def summarise(rows: list[Row], types: tuple[str, ...] = TYPES) -> dict:
    """{type or 'overall': {system: figures}}; tokens/s is total tokens over total seconds of the
    tasks that ran without error."""
    table: dict = {}
    for kind in [t for t in types if any(r.type == t for r in rows)] + ["overall"]:
        mine = [r for r in rows if kind in ("overall", r.type)]
        table[kind] = {s: _stats([r for r in mine if r.system == s]) for s in SYSTEMS
                       if any(r.system == s for r in mine)}
    return table


def _fmt(x, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def render(summary: dict, skipped: str | None) -> str:
    from bench.report import table

    rows = []
    for kind, systems in summary.items():
        for system, f in systems.items():
            rows.append([kind, LABELS[system], f["tasks"], _fmt(f["pass_rate"], 2), _fmt(f["tokens_per_s"]),
                         _fmt(f["seconds_per_task"]), _fmt(f["tokens_per_task"], 0), f["errors"]])
        if skipped:
            rows.append([kind, LABELS["genlm"], "–", "–", "–", "–", "–", f"skipped: {skipped}"])
    return table(["type", "system", "tasks", "pass rate", "tokens/s", "s / task", "tokens / task", "errors"], rows)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="council bench peers", description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=3, help="Tasks of each type.")
    parser.add_argument("--types", default=",".join(TYPES), help=f"Comma-separated, of {', '.join(TYPES)}.")
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--genlm-mode", choices=("best", "shipped"), default="best")
    parser.add_argument("--timeout", type=float, default=1800, help="genlm-control: seconds per task.")
    parser.add_argument("--rows", type=Path, default=Path("bench/results/peers.jsonl"))
    parser.add_argument("--json", type=Path, default=Path("bench/results/peers.json"))
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args(argv)

    from bench.throughput import genlm_python

    types = tuple(t.strip() for t in args.types.split(",") if t.strip())
    tasks = load_tasks(args.per_type, types)
    python = genlm_python()
    skipped = None if python is not None else (
        f"genlm-control is not installed: run {INSTALLER} (or set COUNCIL_GENLM_PYTHON)")
    started = time.monotonic()
    ids = {t["id"] for t in tasks}
    dtype = None
    if args.summarise_only:
        rows = [r for r in read_rows(args.rows, Row) if r.id in ids]
    else:
        from actors.engines.torch_engine import TorchEngine, pick_device, pick_dtype
        from bench.council import MODELS, make_runner
        from cluster.config import EngineConfig

        config = EngineConfig(model=MODELS["smol"])
        dtype = str(pick_dtype(config, pick_device(config))).removeprefix("torch.")
        genlm = None
        if python is not None:
            from bench.throughput import hf_directory

            genlm = {"python": python, "model_dir": hf_directory(MODELS["smol"]), "dtype": dtype,
                     "mode": args.genlm_mode, "timeout_s": args.timeout}
        else:
            print(f"genlm-control: {skipped}")
        runner = make_runner(None, {"smol": TorchEngine.load(config)})
        rows = asyncio.run(run_all(runner, tasks, args.rows, args.particles, args.max_tokens, genlm))
        del runner
    if skipped and all(any(r.id == t["id"] and r.system == "genlm" for r in rows) for t in tasks):
        skipped = None  # every genlm-control row is from an earlier run
    summary = summarise(rows, types)
    report = {"benchmark": "peers", "model": "SmolLM2-135M-Instruct", "particles": args.particles,
              "per_type": args.per_type, "types": list(types), "max_tokens": args.max_tokens,
              "genlm_mode": args.genlm_mode, "dtype": dtype, "cpu_threads": os.cpu_count(),
              "tasks": len(tasks), "wall_s": time.monotonic() - started, "summary": summary,
              "genlm_skipped": skipped,
              "note": ("tokens/s: follower tokens / seconds of the task; Council's seconds are run_task's wall "
                       "time on a warm runner, genlm-control's its smc() call alone (model load, warm-up and "
                       "prompt prefill excluded; process_s_per_task is its whole subprocess)")}
    print(render(summary, skipped))
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
