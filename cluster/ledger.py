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
    def __init__(self, prices: Prices):
        self.prices = prices
        self._ledger = Ledger()

    def planner(self, prompt_tokens: int, completion_tokens: int, calls: int = 1) -> None:
        self._ledger.planner_calls += calls
        self._ledger.planner_prompt_tokens += prompt_tokens
        self._ledger.planner_completion_tokens += completion_tokens

    def followers(self, tokens: int) -> None:
        self._ledger.follower_tokens += tokens

    def follower_prompt(self, tokens: int) -> None:
        """The prompt the followers read: once per request (every sample shares its prefix)."""
        self._ledger.follower_prompt_tokens = max(self._ledger.follower_prompt_tokens, tokens)

    def snapshot(self) -> Ledger:
        led, p = self._ledger, self.prices
        usd = (led.planner_prompt_tokens * p.planner_input_per_mtok
               + led.planner_completion_tokens * p.planner_output_per_mtok
               + led.follower_tokens * p.follower_per_mtok) / 1e6
        return led.model_copy(update={"usd": round(usd, 6)})
