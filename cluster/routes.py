"""Which strategy and follower pools a request gets.

The request's kind (`planner/request_kind.py`) is matched against the config's
`routes.rules` in order; the first rule that matches gives the strategy (when the request
asked for `council-auto`) and the pools (when the request named none). What the request
named itself always stands. The result carries the choice and its reason (`Route`).

    route = choose_route(task, cfg, reading, grammar)
    route.strategy, route.pools, route.reason
"""

from __future__ import annotations

from council_sdk.types import Route, TaskRequest

from cluster.config import CouncilConfig, RouteRule
from cluster.pools import UnknownPool
from planner.grammar import GrammarSpec
from planner.parse import Reading
from planner.request_kind import RequestKind, request_kind

AUTO = "council-auto"
# Strategies that draw on several pools at once; the others run on one.
MULTI_POOL = ("council-vote", "council-cascade")
# What a request no rule matches gets: the open-text default.
FALLBACK = RouteRule(strategy="council-cascade")


def kind_of(task: TaskRequest, reading: Reading, grammar: GrammarSpec | None) -> RequestKind:
    if task.prompt is None:
        return RequestKind("constrained", "the request is a constraint spec")
    return request_kind(task.prompt, reading, grammar)


def choose_route(task: TaskRequest, config: CouncilConfig, reading: Reading,
                 grammar: GrammarSpec | None) -> Route:
    kind = kind_of(task, reading, grammar)
    index, rule = next(((i, r) for i, r in enumerate(config.routes.rules) if r.matches(kind.kind, task.prompt or "")),
                       (None, FALLBACK))
    strategy = rule.strategy if task.strategy == AUTO else task.strategy
    named = task.pools()
    for name in named or []:
        if name not in config.pools:
            raise UnknownPool(f"there is no follower pool named {name!r}; the pools are {', '.join(config.pools)}")
    if named is not None:
        pools, whence = named, "the pools the request named"
    elif rule.pools is not None:
        pools, whence = list(rule.pools), "the rule's pools"
    elif strategy in MULTI_POOL:
        pools, whence = list(config.pools), "every pool"
    else:
        pools, whence = [config.default_pool], "the default pool"
    if strategy not in MULTI_POOL:
        pools = pools[:1]  # SMC particles share one model; the other strategies sample one
    if task.twist_pool is not None:
        if task.twist_pool not in config.pools:
            raise UnknownPool(f"there is no follower pool named {task.twist_pool!r} (twist_pool); the pools "
                              f"are {', '.join(config.pools)}")
        if strategy != "council-smc":
            raise ValueError(f"twist_pool weighs SMC particles, but this request is answered by {strategy}")
    chose = "the routes chose" if task.strategy == AUTO else "the request named"
    where = f"rule {index}" if index is not None else "no rule matched, the open-text default"
    reason = (f"{kind.kind} ({kind.reason}): {chose} {strategy} ({where}) on {whence}: {', '.join(pools)}")
    used_rule = index if (task.strategy == AUTO or named is None) else None
    return Route(kind=kind.kind, kind_reason=kind.reason, strategy=strategy, pools=pools,
                 rule=used_rule, reason=reason)
