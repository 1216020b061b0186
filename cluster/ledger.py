"""Token and dollar accounting for one request: what the planner and the followers used.

Prices are configuration (`CouncilConfig.prices`), per million tokens; the embedded follower
costs nothing by default, a hosted planner what its provider charges.

    ledger = CostLedger(prices)
    ledger.planner(prompt_tokens=1200, completion_tokens=300)
    ledger.followers(4096)
    ledger.snapshot().usd
"""

from __future__ import annotations

from council_sdk.types import Ledger
from pydantic import BaseModel, ConfigDict, Field


class Prices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    planner_input_per_mtok: float = Field(2.50, ge=0, description="$ per 1M planner prompt tokens.")
    planner_output_per_mtok: float = Field(10.00, ge=0, description="$ per 1M planner completion tokens.")
    follower_per_mtok: float = Field(0.0, ge=0, description="$ per 1M follower tokens.")


class CostLedger:
    def __init__(self, prices: Prices, pool_prices: dict[str, float] | None = None):
        """`pool_prices`: $ per 1M follower tokens of each named pool (the others cost
        `prices.follower_per_mtok`)."""
        self.prices = prices
        self.pool_prices = dict(pool_prices or {})
        self._ledger = Ledger()

    def planner(self, prompt_tokens: int, completion_tokens: int, calls: int = 1) -> None:
        self._ledger.planner_calls += calls
        self._ledger.planner_prompt_tokens += prompt_tokens
        self._ledger.planner_completion_tokens += completion_tokens

    def followers(self, tokens: int, pool: str | None = None) -> None:
        self._ledger.follower_tokens += tokens
        if pool is not None:
            by_pool = self._ledger.follower_tokens_by_pool
            by_pool[pool] = by_pool.get(pool, 0) + tokens

    def follower_prompt(self, tokens: int) -> None:
        """The prompt the followers read: once per request (every sample shares its prefix)."""
        self._ledger.follower_prompt_tokens = max(self._ledger.follower_prompt_tokens, tokens)

    def snapshot(self) -> Ledger:
        led, p = self._ledger, self.prices
        priced = sum(led.follower_tokens_by_pool.values())
        follower_usd = (sum(n * self.pool_prices.get(pool, p.follower_per_mtok)
                            for pool, n in led.follower_tokens_by_pool.items())
                        + (led.follower_tokens - priced) * p.follower_per_mtok)
        usd = (led.planner_prompt_tokens * p.planner_input_per_mtok
               + led.planner_completion_tokens * p.planner_output_per_mtok + follower_usd) / 1e6
        return led.model_copy(update={"usd": round(usd, 6),
                                      "follower_tokens_by_pool": dict(led.follower_tokens_by_pool)})
