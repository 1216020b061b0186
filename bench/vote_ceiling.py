"""`council bench vote-ceiling`: how far a cross-model vote could go on the short answers.

A vote over several pools can beat the best pool's own answers only on questions where some
other pool is right and the best one is wrong, and only if the judges then pick the right
answer. This measures both, on the short answers of `council bench council`'s set:
- each pool's greedy answer (each pool's first draw in a vote) and how often it is right;
- the ceiling: how often *some* pool's greedy answer is right (a vote that always chose well
  among them);
- where two pools' greedy answers disagree and exactly one is right, how often the judges of
  `council-vote` (`cluster.strategies.vote._cross_shares`, each pool reading each answer's
  span) give the right one the larger share; 0.5 is a coin.

    council bench vote-ceiling --json bench/results/vote_ceiling.json
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
from pathlib import Path

from bench.council import MAX_TOKENS, MODELS, Item, load_set, short_correct
from bench.measure import write_report

CHUNK = 6


async def measure(ctx, items: list[Item]) -> dict:
    """The figures above for the pools of `ctx` (a StrategyContext) on `items`."""
    from council_sdk.types import TaskRequest

    from cluster.strategies.base import answer_span
    from cluster.strategies.vote import _cross_shares

    pools = ctx.pool_names
    right: list[dict[str, bool]] = []  # per question: whether each pool's greedy answer is right
    judged = {f"{a} vs {b}": {"disagreements": 0, "judges_right": 0} for a, b in itertools.combinations(pools, 2)}

    async def one(item: Item) -> None:
        task = TaskRequest(prompt=item.prompt, max_tokens=MAX_TOKENS["short-answer"])
        answers = await asyncio.gather(*(ctx.sample(task, item.prompt, 0.0, 0, pool=p) for p in pools))
        correct = {p: short_correct(a.text, item.answers) for p, a in zip(pools, answers)}
        right.append(correct)
        text = dict(zip(pools, (a.text for a in answers)))
        for a, b in itertools.combinations(pools, 2):
            if correct[a] == correct[b]:
                continue
            spans = [answer_span(text[a], item.prompt), answer_span(text[b], item.prompt)]
            shares = await _cross_shares(item.prompt, spans, [{a}, {b}], ctx)
            pair = judged[f"{a} vs {b}"]
            pair["disagreements"] += 1
            pair["judges_right"] += (shares[0] > shares[1]) == correct[a]

    for start in range(0, len(items), CHUNK):
        await asyncio.gather(*(one(item) for item in items[start:start + CHUNK]))
    n = len(items)
    for pair in judged.values():
        pair["judges_accuracy"] = pair["judges_right"] / pair["disagreements"] if pair["disagreements"] else None
    return {"requests": n, "greedy_accuracy": {p: sum(c[p] for c in right) / n for p in pools},
            "ceiling": sum(any(c.values()) for c in right) / n, "judges": judged}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="council bench vote-ceiling", description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=None, help="Short answers to use (default: all 160).")
    parser.add_argument("--json", type=Path, default=Path("bench/results/vote_ceiling.json"))
    args = parser.parse_args(argv)

    from actors.engines.base import EngineFollowers
    from actors.engines.torch_engine import TorchEngine
    from cluster.config import EngineConfig, Prices
    from cluster.ledger import CostLedger
    from cluster.strategies.base import StrategyContext

    items = [i for i in load_set(args.per_kind) if i.kind == "short-answer"]
    engines = {name: TorchEngine.load(EngineConfig(model=model)) for name, model in MODELS.items()}
    ctx = StrategyContext(followers=None, big=None, ledger=CostLedger(Prices()),
                          pools={name: EngineFollowers(engine) for name, engine in engines.items()})
    started = time.monotonic()
    report = asyncio.run(measure(ctx, items))
    report.update(pools=MODELS, wall_s=time.monotonic() - started)
    greedy = ", ".join(f"{p} {a:.3f}" for p, a in report["greedy_accuracy"].items())
    print(f"{report['requests']} short answers; greedy answers right: {greedy}; "
          f"some pool right (the ceiling of a vote over them): {report['ceiling']:.3f}")
    for pair, figures in report["judges"].items():
        share = figures["judges_accuracy"]
        print(f"{pair}: one right and one wrong on {figures['disagreements']}; the judges pick the right one "
              f"{figures['judges_right']} times" + (f" ({share:.2f})" if share is not None else ""))
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
