"""Councils besides program-guided SMC, on the same follower pool and planner model.

    vote         K follower samples, consensus, escalate to the planner model on disagreement
    cascade      the follower answers; low confidence escalates (with an exclusion hint)
    signal       the planner model writes a short reasoning signal; the follower answers
    follower     baseline: one follower answer
    planner      baseline: the planner model answers
    best-of-n    baseline: N follower samples, the best by verifier or by log-prob

Each is `async run(task, ctx) -> CouncilResult` over a `StrategyContext`; SMC itself runs in
`cluster/runner.py`.
"""

from cluster.strategies.base import StrategyContext
from cluster.strategies.baselines import best_of_n, follower_only, planner_only
from cluster.strategies.cascade import cascade
from cluster.strategies.signal import signal
from cluster.strategies.vote import vote

STRATEGIES = {
    "council-vote": vote,
    "council-cascade": cascade,
    "council-signal": signal,
    "follower": follower_only,
    "planner": planner_only,
    "best-of-n": best_of_n,
}

__all__ = ["STRATEGIES", "StrategyContext"]
