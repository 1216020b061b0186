"""Prometheus metrics of the service (`GET /metrics`).

Two sources: the HTTP layer counts requests and their latency where they arrive (the ingress);
the work itself — tasks by strategy and outcome, planner and follower tokens, cost, SMC
rounds, resampling, ESS, queue depth (in all and per tenant), generate calls in flight, live
replicas — is counted where it happens (the PlannerActor's `WorkStats`) and read at scrape
time, so the figures are right however many ingress replicas there are. A tenant label is
the tenant's name (`key-1a2b3c4d` for an unnamed key), never a key.
"""

from __future__ import annotations

from collections import Counter

from council_sdk.types import CouncilResult
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as PromCounter
from prometheus_client import Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from pydantic import BaseModel, Field

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class PoolWork(BaseModel):
    """One follower pool's gauges and counts."""

    replicas_live: int = 0
    replicas: int = 0
    scaled_up: int = 0
    scaled_down: int = 0
    follower_tokens: int = 0


class WorkStats(BaseModel):
    """Cumulative counts kept by the PlannerActor."""

    tasks: dict[str, int] = Field(default_factory=dict, description="'strategy/status' -> count")
    planner_prompt_tokens: int = 0
    planner_completion_tokens: int = 0
    follower_tokens: int = 0
    cost_usd: float = 0.0
    rounds: int = 0
    resamples: int = 0
    ess_fraction_sum: float = 0.0
    queued: int = 0
    running: int = 0
    replicas_live: int = 0
    replicas: int = 0
    scaled_up: int = 0
    scaled_down: int = 0
    generating: int = 0
    tenants: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="tenant -> {'queued': n, 'running': n}, tenants with any")
    pools: dict[str, PoolWork] = Field(default_factory=dict, description="Each follower pool by name.")


class WorkCounter:
    """Accumulates WorkStats as tasks end (lives in the PlannerActor)."""

    def __init__(self):
        self.stats = WorkStats()
        self._tasks: Counter[str] = Counter()
        self._pool_tokens: Counter[str] = Counter()

    def task_ended(self, strategy: str, status: str, result: CouncilResult | None) -> None:
        self._tasks[f"{strategy}/{status}"] += 1
        if result is None:
            return
        s = self.stats
        if result.ledger:
            s.planner_prompt_tokens += result.ledger.planner_prompt_tokens
            s.planner_completion_tokens += result.ledger.planner_completion_tokens
            s.cost_usd += result.ledger.usd
            self._pool_tokens.update(result.ledger.follower_tokens_by_pool)
        s.follower_tokens += result.follower_tokens
        s.rounds += len(result.trace)
        s.resamples += sum(1 for t in result.trace if t.resampled)
        s.ess_fraction_sum += sum(t.ess / max(1, result.particles) for t in result.trace)

    def snapshot(self, tables: dict | None = None, **gauges) -> WorkStats:
        """The counts with the gauges given; `tables`: each pool's `ReplicaTable` by name,
        which also gives the replica totals."""
        if tables is not None:
            pools = {name: PoolWork(replicas_live=t.live, replicas=len(t.replicas), scaled_up=t.scaled_up,
                                    scaled_down=t.scaled_down, follower_tokens=self._pool_tokens.get(name, 0))
                     for name, t in tables.items()}
            gauges = {"replicas_live": sum(p.replicas_live for p in pools.values()),
                      "replicas": sum(p.replicas for p in pools.values()),
                      "scaled_up": sum(p.scaled_up for p in pools.values()),
                      "scaled_down": sum(p.scaled_down for p in pools.values()), "pools": pools, **gauges}
        return self.stats.model_copy(update={"tasks": dict(self._tasks), **gauges})


class ServiceMetrics:
    """The ingress's registry: HTTP metrics plus the PlannerActor's WorkStats at scrape time."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = PromCounter("council_http_requests", "HTTP requests by endpoint and status.",
                                    ["endpoint", "status"], registry=self.registry)
        self.latency = Histogram("council_http_request_seconds", "HTTP request latency.", ["endpoint"],
                                 registry=self.registry,
                                 buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300))
        self._work = WorkStats()
        self.registry.register(_WorkCollector(self))

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self, work: WorkStats | None) -> bytes:
        if work is not None:
            self._work = work
        return generate_latest(self.registry)


class _WorkCollector:
    def __init__(self, metrics: ServiceMetrics):
        self.metrics = metrics

    def collect(self):
        w = self.metrics._work
        tasks = CounterMetricFamily("council_tasks", "Tasks ended, by strategy and status.",
                                    labels=["strategy", "status"])
        for key, n in sorted(w.tasks.items()):
            strategy, status = key.split("/", 1)
            tasks.add_metric([strategy, status], n)
        yield tasks
        tokens = CounterMetricFamily("council_tokens", "Tokens used, by who used them.", labels=["kind"])
        tokens.add_metric(["planner_prompt"], w.planner_prompt_tokens)
        tokens.add_metric(["planner_completion"], w.planner_completion_tokens)
        tokens.add_metric(["follower"], w.follower_tokens)
        yield tokens
        yield CounterMetricFamily("council_cost_usd", "Cost at the configured prices.", value=w.cost_usd)
        yield CounterMetricFamily("council_smc_rounds", "SMC rounds run.", value=w.rounds)
        yield CounterMetricFamily("council_smc_resamples", "SMC rounds that resampled.", value=w.resamples)
        yield CounterMetricFamily("council_smc_ess_fraction_sum",
                                  "Sum over rounds of ESS / particles (divide by rounds for the mean).",
                                  value=w.ess_fraction_sum)
        queue = GaugeMetricFamily("council_queue_depth", "Tasks queued and running.", labels=["state"])
        queue.add_metric(["queued"], w.queued)
        queue.add_metric(["running"], w.running)
        yield queue
        by_tenant = GaugeMetricFamily("council_tenant_tasks", "Tasks queued and running, per tenant.",
                                      labels=["tenant", "state"])
        for tenant, counts in sorted(w.tenants.items()):
            for state in ("queued", "running"):
                by_tenant.add_metric([tenant, state], counts.get(state, 0))
        yield by_tenant
        yield GaugeMetricFamily("council_generate_in_flight", "POST /v1/generate calls in flight.",
                                value=w.generating)
        yield GaugeMetricFamily("council_replicas_live", "Follower replicas alive, all pools.", value=w.replicas_live)
        yield GaugeMetricFamily("council_replicas", "Follower replicas, all pools.", value=w.replicas)
        live = GaugeMetricFamily("council_pool_replicas_live", "Follower replicas alive, per pool.", labels=["pool"])
        size = GaugeMetricFamily("council_pool_replicas", "Follower replicas, per pool.", labels=["pool"])
        used = CounterMetricFamily("council_pool_follower_tokens", "Follower tokens of finished tasks, per pool.",
                                   labels=["pool"])
        scale = CounterMetricFamily("council_pool_scale_events", "Replicas added and retired, per pool.",
                                    labels=["pool", "direction"])
        for name, pool in sorted(w.pools.items()):
            live.add_metric([name], pool.replicas_live)
            size.add_metric([name], pool.replicas)
            used.add_metric([name], pool.follower_tokens)
            scale.add_metric([name, "up"], pool.scaled_up)
            scale.add_metric([name, "down"], pool.scaled_down)
        yield live
        yield size
        yield used
        yield scale
