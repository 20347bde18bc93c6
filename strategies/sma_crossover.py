"""`sma_crossover`: long-only trend following on two simple moving averages of closes.

Rule, per symbol at bar t (both averages defined at t-1 and t):
- cross up:   fast[t-1] <= slow[t-1] and fast[t] > slow[t]  -> buy `qty` if no position;
- cross down: fast[t-1] >= slow[t-1] and fast[t] < slow[t]  -> sell the whole long position.
No order while an average is undefined (the first `slow` bars, or a missing close in the
window), and none for a symbol that is not tradable at t. Averages within 1e-9 of their size
of each other are equal (`indicators.compare`): below that the difference is rounding, as
over a flat stretch of prices.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from paper_broker.records import OrderIntent
from strategies.base import (
    BaseStrategy,
    Prepared,
    StrategyParams,
    build_intents,
    whole_shares,
)
from strategies.indicators import RunningSums, compare


class SmaCrossoverParams(StrategyParams):
    fast: int = Field(10, ge=1, le=10_000, description="fast window, bars")
    slow: int = Field(30, ge=2, le=10_000, description="slow window, bars")
    qty: float = Field(100.0, gt=0, description="shares bought on a cross up")

    _qty_whole = field_validator("qty")(whole_shares)

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SmaCrossoverParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast: must be < slow ({self.fast} >= {self.slow})")
        return self


class SmaCrossover(BaseStrategy):
    name: ClassVar[str] = "sma_crossover"
    Params: ClassVar[type[StrategyParams]] = SmaCrossoverParams
    params: SmaCrossoverParams

    @property
    def history_needed(self) -> int:
        return self.params.slow  # the slow average at the bar before, to see a cross

    def _prepare(
        self, values: np.ndarray, symbols: tuple[str, ...], timestamps: np.ndarray | None
    ) -> Prepared:
        sums = RunningSums(values)
        fast = sums.mean(self.params.fast)
        slow = sums.mean(self.params.slow)
        # equal within rounding counts as equal: the running sums leave last-bit noise on
        # two averages of the same flat prices, which would read as a cross every time it
        # flips sign (and flip differently in a backtest and a paper-trading window)
        rel = compare(fast, slow)
        up = np.zeros(values.shape, dtype=bool)
        down = np.zeros(values.shape, dtype=bool)
        # NaN compares False, so undefined averages never signal
        up[1:] = (rel[:-1] <= 0) & (rel[1:] > 0)
        down[1:] = (rel[:-1] >= 0) & (rel[1:] < 0)
        active = np.asarray((up | down).any(axis=1))
        return Prepared(symbols, {"up": up, "down": down, "fast": fast, "slow": slow}, active,
                        timestamps)  # fmt: skip

    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]:
        if not prepared.active[t]:
            return []
        buy = prepared.signals["up"][t] & tradable & (positions == 0)
        sell = prepared.signals["down"][t] & tradable & (positions > 0)
        idx = np.flatnonzero(buy | sell)
        if idx.size == 0:
            return []
        signed = np.where(buy[idx], self.params.qty, -positions[idx])
        return build_intents(prepared.symbols, idx, signed, self.name)
