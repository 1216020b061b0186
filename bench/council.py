"""`council bench council`: every fixed strategy on each follower pool, and `council-auto`, on one
labelled mixed set.

The set (`load_set`, 352 requests, four kinds, each with its own check):
- short answers: 60 factual questions (`bench/data/council/factual.jsonl`, accepted answers
  listed) and 100 arithmetic / unit questions from `bench/data/short_answers.jsonl`; right
  when the answer says the accepted answer (a number: the last number in its first line);
- constrained writing: 72 COLLIE wiki tasks (8 of each of its 9 types), checked by COLLIE's constraint;
- structured output: 60 tasks of `bench/data/structured/`, given as a `response_format` to
  the strategies that take one (SMC, auto) and as words alone to the others (which refuse a
  format); right when the answer matches the schema or regex and passes the task's checks;
- open text: 60 open requests (`bench/data/council/open.jsonl`); right when the answer is
  at least 3 words and names one of the request's topic words (a weak, honest check).

The pools are the two models this machine has: SmolLM2-135M-Instruct (`smol`) and
Gemma-3-270M base (`gemma`), each one replica in this process (the same runner code as the
service, over local replicas). The planner model is a scripted oracle behind a local
OpenAI-compatible server (`bench/openai_stub.py`): it answers an escalation with the
request's reference (the gold short answer, COLLIE's reference sentence, the structured task's
example, an on-topic sentence), so planner-side quality is an upper bound and what is
measured is how often each strategy pays for it. Prices (config): the planner at
$2.50 / $10 per million prompt / completion tokens, followers at $0.01 (smol) and $0.02
(gemma) per million: assumptions, printed with the results.

Systems run in turn on each chunk of requests (alternating, so drift in this machine's
speed falls on all of them alike). Reported per system: accuracy overall and per kind,
follower and planner tokens, seconds and $ per request, escalation rate; for council-auto
the route it took per kind and how often the router's kind matched the label; and a picture
of accuracy against cost. `--per-kind N` runs a stratified sample.

    council bench council --per-kind 12                    # oracle planner: bench/results/council.json
    council bench council --per-kind 12 --planner none     # followers alone: council_no_planner.json

With the oracle, a council that escalates everything is right by construction; so the same
systems also run with no planner model at all (`--planner none`), which measures what the
small models' councils achieve themselves, at follower cost only.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from pathlib import Path

from pydantic import BaseModel

from bench.measure import read_rows

DATA = Path(__file__).with_name("data")
KINDS = ("short-answer", "constrained", "structured", "open")
PRICES = {"planner_input_per_mtok": 2.50, "planner_output_per_mtok": 10.0}
POOL_PRICES = {"smol": 0.01, "gemma": 0.02}
MODELS = {"smol": "smollm2", "gemma": "gemma3-270m"}
MAX_TOKENS = {"short-answer": 24, "constrained": 64, "structured": 320, "open": 96}
# (name, strategy, pools): None pools = the routes decide.
SYSTEMS: tuple[tuple[str, str, list[str] | None], ...] = (
    ("follower@smol", "follower", ["smol"]),
    ("follower@gemma", "follower", ["gemma"]),
    ("smc@smol", "council-smc", ["smol"]),
    ("smc@gemma", "council-smc", ["gemma"]),
    ("vote@smol", "council-vote", ["smol"]),
    ("vote@gemma", "council-vote", ["gemma"]),
    ("vote@smol+gemma", "council-vote", ["smol", "gemma"]),
    ("cascade@smol", "council-cascade", ["smol"]),
    ("cascade@gemma", "council-cascade", ["gemma"]),
    ("cascade@smol>gemma", "council-cascade", ["smol", "gemma"]),
    ("planner", "planner", None),
    ("council-auto", "council-auto", None),
)


class Item(BaseModel):
    id: str
    kind: str                      # the label
    prompt: str
    answers: list[str] = []        # short answers: accepted ones
    collie: dict | None = None     # constrained: the COLLIE task
    structured: dict | None = None  # structured: the corpus task
    topic_words: list[str] = []    # open
    reference: str                 # what the oracle planner answers


class Row(BaseModel):
    id: str
    kind: str
    system: str
    text: str = ""
    correct: bool = False
    valid: bool | None = None      # structured: the answer matches the format (checks aside)
    follower_tokens: int = 0
    planner_tokens: int = 0
    usd: float = 0.0
    seconds: float = 0.0
    escalated: bool = False
    # vote: the followers' agreement; cascade: the follower's confidence (what escalation reads)
    confidence: float | None = None
    route_kind: str | None = None
    route_strategy: str | None = None
    route_pools: list[str] | None = None
    error: str | None = None


def _spread(rows: list, n: int | None) -> list:
    if n is None or n >= len(rows):
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def load_set(per_kind: int | None = None) -> list[Item]:
    from bench.collie import load as load_collie
    from bench.structured import load as load_structured

    factual = [json.loads(line) for line in (DATA / "council" / "factual.jsonl").read_text().splitlines() if line]
    arithmetic = [json.loads(line) for line in (DATA / "short_answers.jsonl").read_text().splitlines() if line]
    short = [Item(id=f["id"], kind="short-answer", prompt=f["question"], answers=f["answers"], reference=f["answers"][0])
             for f in factual]
    short += [Item(id=a["id"], kind="short-answer", prompt=a["question"], answers=[a["answer"]], reference=a["answer"])
              for a in _spread(arithmetic, 100)]
    # Factual and arithmetic interleaved, so a sample holds both.
    short = [x for pair in zip(short[:60], short[60:120]) for x in pair] + short[120:]
    constrained = [Item(id=t["id"], kind="constrained", prompt=t["prompt"], collie=t, reference=t["reference"])
                   for t in load_collie(limit=8)]
    constrained.sort(key=lambda x: (int(x.id.split("/")[-1]), x.id))  # every type early
    structured = []
    for t in load_structured(60):
        example = t.get("example")
        reference = json.dumps(example) if t["kind"] == "json_schema" else str(example or "")
        structured.append(Item(id=t["id"], kind="structured", prompt=t["request"], structured=t, reference=reference))
    opened = [json.loads(line) for line in (DATA / "council" / "open.jsonl").read_text().splitlines() if line]
    opened = [Item(id=o["id"], kind="open", prompt=o["request"], topic_words=o["topic_words"],
                   reference=f"Here is a short answer about {o['topic_words'][0]}: it is worth knowing about "
                             f"{o['topic_words'][0]}.") for o in opened]
    groups = {"short-answer": short, "constrained": constrained, "structured": structured, "open": opened}
    if per_kind is not None:
        groups = {k: v[:per_kind] for k, v in groups.items()}
    return [item for kind in KINDS for item in groups[kind]]


# -- checks -------------------------------------------------------------------------------------
def short_correct(text: str, answers: list[str]) -> bool:
    from cluster.strategies.base import normalise

    line = text.strip().splitlines()[0] if text.strip() else ""
    for gold in answers:
        if re.fullmatch(r"-?\d+(?:\.\d+)?", gold):
            if normalise(line) == normalise(gold):
                return True
        elif re.search(rf"(?<!\w){re.escape(gold.casefold())}(?!\w)", line.casefold()):
            return True
    return False


def format_valid(item: Item, text: str) -> bool | None:
    """Structured: whether the answer matches the schema or regex (None for other kinds)."""
    if item.kind != "structured":
        return None
    from bench.structured import grammar_of

    return grammar_of(item.structured).verify(text)[0] is True


def grade(item: Item, text: str) -> bool:
    if not text.strip():
        return False
    if item.kind == "short-answer":
        return short_correct(text, item.answers)
    if item.kind == "constrained":
        from bench.evaluate import judge

        return bool(judge(item.collie, text, None))
    if item.kind == "structured":
        from bench.structured import grammar_of, semantic

        ok, _ = grammar_of(item.structured).verify(text)
        return ok is True and semantic(item.structured, text) is not False
    words = set(re.findall(r"[a-z']+", text.casefold()))
    return len(text.split()) >= 3 and any(w.casefold() in words for w in item.topic_words)


# -- the oracle planner model -------------------------------------------------------------------
def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.casefold()))


def oracle(items: list[Item]):
    """Answers a planner call with the reference of the request it is about (the one whose
    words it shares most); tokens estimated at 4 characters each."""
    known = [(_words(i.prompt), i.reference) for i in items]

    def respond(body: dict):
        messages = body.get("messages", [])
        asked = messages[-1]["content"] if messages else ""
        asked = asked.split("\n\nTheir answers:")[0].split("\n\n(A smaller model answered")[0]
        words = _words(asked)
        best = max(known, key=lambda k: len(k[0] & words) / max(1, len(k[0] | words)))[1] if known else ""
        tokens = sum(math.ceil(len(m.get("content") or "") / 4) for m in messages)
        return best, (tokens, max(1, math.ceil(len(best) / 4)))

    return respond


# -- running ------------------------------------------------------------------------------------
def _task(item: Item, system: tuple, seed: int, particles: int):
    from council_sdk.types import ResponseFormat, TaskRequest

    name, strategy, pools = system
    options = dict(prompt=item.prompt, strategy=strategy, seed=seed, particles=particles, samples=5,
                   max_tokens=MAX_TOKENS[item.kind], temperature=0.8)
    if pools:
        options["pool"] = pools if len(pools) > 1 else pools[0]
    if item.kind == "structured" and strategy in ("council-smc", "council-auto"):
        task = item.structured
        options["response_format"] = ResponseFormat(
            type="json_schema", json_schema={"name": "answer", "schema": task["schema"]}) \
            if task["kind"] == "json_schema" else ResponseFormat(type="regex", regex=task["regex"])
        options.pop("temperature")
    return TaskRequest(**options)


async def _one(runner, item: Item, system: tuple, seed: int, particles: int) -> Row:
    started = time.monotonic()
    try:
        result = await runner.run_task(_task(item, system, seed, particles))
    except Exception as exc:  # noqa: BLE001 - one failed request is a wrong answer, reported
        return Row(id=item.id, kind=item.kind, system=system[0], error=f"{type(exc).__name__}: {exc}"[:300],
                   seconds=time.monotonic() - started)
    led = result.ledger
    route = result.route
    return Row(id=item.id, kind=item.kind, system=system[0], text=result.text[:4000], correct=grade(item, result.text),
               valid=format_valid(item, result.text),
               follower_tokens=led.follower_tokens if led else 0,
               planner_tokens=(led.planner_prompt_tokens + led.planner_completion_tokens) if led else 0,
               usd=led.usd if led else 0.0, seconds=time.monotonic() - started, escalated=result.escalated,
               confidence=result.confidence, route_kind=route.kind if route else None,
               route_strategy=route.strategy if route else None, route_pools=route.pools if route else None)


def make_runner(base_url: str | None, engines: dict):
    from actors.engines.base import EngineFollowers
    from actors.particle_host import LocalReplica, ParticleHost
    from cluster.config import CouncilConfig
    from cluster.pools import Pools, PoolView
    from cluster.runner import CouncilRunner

    planner = {"base_url": base_url, "model": "oracle", "timeout_s": 300, "api_retries": 0} if base_url else {}
    cfg = CouncilConfig.from_dict({
        "pools": {name: {"model": MODELS[name], "follower_per_mtok": POOL_PRICES[name]} for name in engines},
        "prices": {**PRICES, "follower_per_mtok": 0.0}, "planner": planner})
    views = {}
    for name, engine in engines.items():
        replicas = [LocalReplica(f"{name}-0", ParticleHost(engine))]
        views[name] = PoolView(lambda r=replicas: r, EngineFollowers(engine))
    return CouncilRunner(cfg, pools=Pools(views, next(iter(engines))))


async def run_all(runner, items: list[Item], systems, out: Path, particles: int, chunk: int,
                  progress=print) -> list[Row]:
    """Every system on every item, chunk by chunk (resumable: rows already in `out` are kept)."""
    done = {(row.id, row.system): row for row in read_rows(out, Row)}
    out.parent.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    with out.open("a") as sink:
        for start in range(0, len(items), chunk):
            part = items[start:start + chunk]
            for system in systems:
                todo = [(start + i, it) for i, it in enumerate(part) if (it.id, system[0]) not in done]
                fresh = await asyncio.gather(*(_one(runner, it, system, seed, particles) for seed, it in todo))
                for row in fresh:
                    sink.write(row.model_dump_json() + "\n")
                    done[(row.id, row.system)] = row
                sink.flush()
                rows_now = [done[(it.id, system[0])] for it in part]
                progress(f"{system[0]:20s} items {start + 1}-{start + len(part)}: "
                         f"{sum(r.correct for r in rows_now)}/{len(part)} right, "
                         f"{sum(r.seconds for r in fresh):.0f} s")
    for item in items:
        rows += [done[(item.id, s[0])] for s in systems if (item.id, s[0]) in done]
    return rows


# -- the report ---------------------------------------------------------------------------------
def summarise(rows: list[Row], systems) -> dict:
    out: dict = {}
    for name, strategy, pools in systems:
        mine = [r for r in rows if r.system == name]
        if not mine:
            continue
        n = len(mine)
        entry = {
            "strategy": strategy, "pools": pools, "requests": n,
            "accuracy": sum(r.correct for r in mine) / n,
            "by_kind": {k: {"n": len(ks), "accuracy": sum(r.correct for r in ks) / len(ks),
                            "escalation_rate": sum(r.escalated for r in ks) / len(ks)}
                        for k in KINDS if (ks := [r for r in mine if r.kind == k])},
            "structured_format_valid": _share([r.valid for r in mine if r.kind == "structured" and r.valid is not None]),
            "follower_tokens": sum(r.follower_tokens for r in mine) / n,
            "planner_tokens": sum(r.planner_tokens for r in mine) / n,
            "usd_per_request": sum(r.usd for r in mine) / n,
            "seconds_per_request": sum(r.seconds for r in mine) / n,
            "escalation_rate": sum(r.escalated for r in mine) / n,
            "errors": sum(r.error is not None for r in mine),
            "first_error": next((r.error for r in mine if r.error), None),
        }
        if strategy == "council-auto":
            entry["routes"] = {k: sorted({f"{r.route_strategy}@{'+'.join(r.route_pools or [])}"
                                          for r in mine if r.kind == k and r.route_strategy})
                               for k in KINDS}
            labelled = [r for r in mine if r.route_kind]
            entry["router_kind_agreement"] = (sum(r.route_kind == r.kind for r in labelled) / len(labelled)
                                              if labelled else None)
            entry["router_kinds"] = {k: {rk: sum(1 for r in labelled if r.kind == k and r.route_kind == rk)
                                         for rk in KINDS} for k in KINDS}
        out[name] = entry
    return out


def _share(flags: list) -> float | None:
    return sum(bool(f) for f in flags) / len(flags) if flags else None


def verdicts(summary: dict) -> dict:
    """The goals of the issue, as measured (True / False), with the figures they rest on. The
    oracle planner is right by construction, so the frontier is taken without it (it would
    dominate everything it is cheaper than)."""
    auto = summary.get("council-auto")
    fixed = {k: v for k, v in summary.items() if k not in ("council-auto", "planner")}
    result: dict = {}
    if auto and fixed:
        best_name = max(fixed, key=lambda k: (fixed[k]["accuracy"], -fixed[k]["usd_per_request"]))
        best = fixed[best_name]
        result["best_fixed"] = best_name
        result["auto_at_least_as_accurate_as_best_fixed"] = auto["accuracy"] >= best["accuracy"]
        result["auto_cheaper_than_best_fixed"] = auto["usd_per_request"] < best["usd_per_request"]
        dominated_by = [k for k, v in fixed.items()
                        if v["accuracy"] >= auto["accuracy"] and v["usd_per_request"] <= auto["usd_per_request"]
                        and (v["accuracy"] > auto["accuracy"] or v["usd_per_request"] < auto["usd_per_request"])]
        result["auto_on_cost_quality_frontier"] = not dominated_by
        result["auto_dominated_by"] = dominated_by
    # What the routes could be, from these figures: the most accurate fixed system of each kind
    # (the cheaper on a tie). A config's `routes` can take it as it is.
    result["best_fixed_by_kind"] = {}
    for kind in KINDS:
        scored = {k: v["by_kind"][kind] for k, v in fixed.items() if kind in v["by_kind"]}
        if scored:
            name = max(scored, key=lambda k: (scored[k]["accuracy"], -fixed[k]["usd_per_request"]))
            result["best_fixed_by_kind"][kind] = {"system": name, "accuracy": scored[name]["accuracy"]}
    short = {k: v["by_kind"].get("short-answer", {}).get("accuracy") for k, v in summary.items()
             if v["strategy"] == "council-vote"}
    crossed = [k for k in short if len(summary[k].get("pools") or []) > 1 and short[k] is not None]
    singles = [k for k in short if len(summary[k].get("pools") or []) == 1 and short[k] is not None]
    if crossed and singles:
        result["short_answer_vote_accuracy"] = short
        result["cross_model_vote_beats_single_model_votes"] = all(
            short[c] > short[s] for c in crossed for s in singles)
    return result


def paired_votes(rows: list[Row], systems) -> dict:
    """Each cross-model vote against each single-model vote on the same short answers: how
    often one is right where the other is wrong, and the exact two-sided sign test's p-value
    (the chance of a split at least this uneven if neither were better). Accuracy alone hides
    whether a difference of a few requests is more than luck."""
    votes = {name: pools for name, strategy, pools in systems if strategy == "council-vote" and pools}
    right = {name: {r.id: r.correct for r in rows if r.system == name and r.kind == "short-answer"}
             for name in votes}
    out = {}
    for cross in (n for n, pools in votes.items() if len(pools) > 1):
        for single in (n for n, pools in votes.items() if len(pools) == 1):
            both = right[cross].keys() & right[single].keys()
            wins = sum(right[cross][i] and not right[single][i] for i in both)
            losses = sum(right[single][i] and not right[cross][i] for i in both)
            out[f"{cross} vs {single}"] = {"requests": len(both), "wins": wins, "losses": losses,
                                           "sign_test_p": _sign_test(wins, losses)}
    return out


BUDGETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def escalation_curves(rows: list[Row], systems) -> dict:
    """Short answers, rows run with no planner model: each vote's accuracy if a planner that is
    always right took the least sure fraction of its requests (by the vote's agreement), for
    each fraction in BUDGETS. This compares votes at the same escalation rate, which the
    oracle run cannot (each vote escalates as often as its own agreement says), and the mean
    over the budgets is the area under the curve. Requests tied at the cut are shared out
    evenly (their mean correctness), so the order of ties does not decide."""
    out = {}
    for name, strategy, pools in systems:
        if strategy != "council-vote":
            continue
        mine = [r for r in rows if r.system == name and r.kind == "short-answer" and r.confidence is not None
                and not r.escalated]
        if not mine:
            continue
        curve = {f"{b:.1f}": _accuracy_with_budget(mine, b) for b in BUDGETS}
        out[name] = {"requests": len(mine), "accuracy_by_escalation": curve,
                     "area": sum(curve.values()) / len(curve)}
    return out


def _accuracy_with_budget(rows: list[Row], budget: float) -> float:
    n = len(rows)
    k = budget * n                         # how many requests go to the planner (may be fractional)
    by_confidence: dict[float, list[bool]] = {}
    for r in rows:
        by_confidence.setdefault(r.confidence, []).append(r.correct)
    kept_right, left = 0.0, k
    for conf in sorted(by_confidence):     # least sure first
        group = by_confidence[conf]
        taken = min(len(group), left)
        left -= taken
        kept_right += (len(group) - taken) * (sum(group) / len(group))
    return (k + kept_right) / n


def _sign_test(wins: int, losses: int) -> float:
    n, k = wins + losses, min(wins, losses)
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return min(1.0, 2 * tail)


def plot(summary: dict, path: Path, planner: str = "oracle planner") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, v in summary.items():
        cost = max(v["usd_per_request"], 1e-9)
        ax.scatter(cost, v["accuracy"], s=60 if name == "council-auto" else 30,
                   color="crimson" if name == "council-auto" else "steelblue")
        ax.annotate(name, (cost, v["accuracy"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(f"$ per request (log; assumed prices, {planner})")
    ax.set_ylabel("accuracy (pass rate over the mixed set)")
    ax.set_title("council strategies: accuracy against cost")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def table(summary: dict) -> str:
    from bench.report import table as md

    rows = [[name, f"{v['accuracy']:.2f}"] + [f"{v['by_kind'].get(k, {}).get('accuracy', float('nan')):.2f}"
                                               for k in KINDS]
            + [f"{v['follower_tokens']:.0f}", f"{v['planner_tokens']:.0f}", f"{v['usd_per_request'] * 1e6:.1f}",
               f"{v['seconds_per_request']:.1f}", f"{v['escalation_rate']:.2f}", str(v["errors"])]
            for name, v in summary.items()]
    return md(["system", "all", *KINDS, "follower tok", "planner tok", "µ$ / req", "s / req", "escalated",
               "errors"], rows)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="council bench council", description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=None, help="Requests of each kind (default: all 352).")
    parser.add_argument("--kinds", default=",".join(KINDS), help="Which kinds of request (comma-separated).")
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=6, help="Requests answered at once by each system.")
    parser.add_argument("--systems", default=",".join(s[0] for s in SYSTEMS))
    parser.add_argument("--planner", choices=("oracle", "none"), default="oracle",
                        help="The planner model: the scripted oracle, or none (escalations cannot "
                        "happen: every council answers with its followers alone).")
    parser.add_argument("--summarise-only", action="store_true",
                        help="Answer nothing: summarise the rows already in --rows.")
    parser.add_argument("--rows", type=Path, default=None, help="default: bench/results/council[_no_planner].jsonl")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    stem = "council" if args.planner == "oracle" else "council_no_planner"
    args.rows = args.rows or Path(f"bench/results/{stem}.jsonl")
    args.json = args.json or Path(f"bench/results/{stem}.json")
    args.plot = args.plot or Path(f"bench/results/{stem}_cost_quality.png")

    from actors.engines.torch_engine import TorchEngine
    from bench.openai_stub import ScriptedOpenAI
    from cluster.config import EngineConfig

    wanted = args.systems.split(",")
    unknown = [s for s in wanted if s not in {name for name, _, _ in SYSTEMS}]
    if unknown:
        parser.error(f"unknown systems: {', '.join(unknown)}")
    systems = [s for s in SYSTEMS if s[0] in wanted and not (args.planner == "none" and s[1] == "planner")]
    kinds = args.kinds.split(",")
    if set(kinds) - set(KINDS):
        parser.error(f"unknown kinds: {', '.join(sorted(set(kinds) - set(KINDS)))} (known: {', '.join(KINDS)})")
    items = [item for item in load_set(args.per_kind) if item.kind in kinds]
    print(f"{len(items)} requests ({', '.join(f'{k} {sum(i.kind == k for i in items)}' for k in KINDS)}); "
          f"{len(systems)} systems; prices {PRICES} planner, {POOL_PRICES} followers ($ / 1M tokens)")
    started = time.monotonic()
    if args.summarise_only:
        ids = {i.id for i in items}
        rows = [r for r in read_rows(args.rows, Row) if r.id in ids]
    else:
        engines = {name: TorchEngine.load(EngineConfig(model=model)) for name, model in MODELS.items()}
        with ScriptedOpenAI() as server:
            server.respond_with(oracle(load_set()))
            runner = make_runner(server.base_url if args.planner == "oracle" else None, engines)
            rows = asyncio.run(run_all(runner, items, systems, args.rows, args.particles, args.chunk))
    summary = summarise(rows, systems)
    report = {"requests": len(items), "per_kind": args.per_kind, "particles": args.particles,
              "prices": {"planner": PRICES, "followers": POOL_PRICES},
              "planner_model": "scripted oracle (answers with the reference)" if args.planner == "oracle"
              else "none (no escalation possible)", "pools": MODELS,
              "wall_s": time.monotonic() - started, "systems": summary, "verdicts": verdicts(summary),
              "short_answer_votes_paired": paired_votes(rows, systems)}
    if args.planner == "none":
        report["short_answer_escalation_curves"] = escalation_curves(rows, systems)
    print(table(summary))
    print(json.dumps(report["verdicts"], indent=2))
    for pair, split in report["short_answer_votes_paired"].items():
        print(f"{pair}: {split['wins']} wins, {split['losses']} losses on {split['requests']} short answers "
              f"(sign test p = {split['sign_test_p']:.3f})")
    for name, curve in report.get("short_answer_escalation_curves", {}).items():
        print(f"{name}: short-answer accuracy if an always-right planner took the least sure "
              + ", ".join(f"{float(b):.0%}: {a:.2f}" for b, a in curve["accuracy_by_escalation"].items())
              + f"; area {curve['area']:.3f}")
    if "council-auto" in summary:
        print("council-auto routes:", json.dumps(summary["council-auto"]["routes"]))
        print(f"router kind = label: {summary['council-auto']['router_kind_agreement']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    plot(summary, args.plot, "oracle planner" if args.planner == "oracle" else "no planner model")
    print(f"wrote {args.json}, {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
