"""`momentum`: hold the top-N symbols by trailing return, equal weight, rebalanced on a cadence.

At a rebalance bar t:
- return r = close[t] / close[t - lookback] - 1 (undefined -> not eligible);
- the eligible, tradable symbols are ranked by r, highest first (ties: lower symbol index);
- each of the top `top_n` gets weight w = 1 / (number selected), every other symbol 0;
- target shares = floor(equity * w / price), whole shares rounded down; 0 when equity <= 0
  (a negative equity would give negative targets: shorts from a long-only strategy);
- orders are the differences target - position, for tradable symbols only (a symbol that
  cannot trade now keeps its position until a later rebalance).
Between rebalance bars nothing is ordered.

Cadence: bars are numbered k on a clock and a bar rebalances when k crosses a multiple of
`rebalance_every` since the previous bar (floor(k[t]/n) > floor(k[t-1]/n); the first bar
when k % n == 0). Without timestamps k is the row number, i.e. rows 0, n, 2n, ...; with
timestamps k = time since the epoch // bar length (`bar_seconds`, or the smallest spacing
of the timestamps), so a sliding paper-trading window and a restarted process keep the same
cadence, and a gap in the bars (overnight, a missed interval) rebalances at the next bar.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from paper_broker.records import OrderIntent
from strategies.base import BaseStrategy, Prepared, StrategyParams, build_intents
from strategies.indicators import trailing_return


class MomentumParams(StrategyParams):
    lookback: int = Field(20, ge=1, le=10_000, description="return window, bars")
    top_n: int = Field(5, ge=1, le=100_000)
    rebalance_every: int = Field(5, ge=1, le=100_000, description="bars between rebalances")
    bar_seconds: int | None = Field(
        None, ge=1, description="bar length for the timestamp clock; None infers it"
    )


def bar_clock(n_bars: int, timestamps: np.ndarray | None, bar_seconds: int | None) -> np.ndarray:
    """Bar numbers k [T] (int64): row numbers, or epoch time // bar length."""
    if timestamps is None or n_bars == 0:
        return np.arange(n_bars, dtype=np.int64)
    if bar_seconds is not None:
        step = np.int64(bar_seconds) * np.int64(1_000_000_000)
    else:
        gaps = np.diff(timestamps)
        gaps = gaps[gaps > 0]
        if gaps.size == 0:
            return np.arange(n_bars, dtype=np.int64)
        step = gaps.min()
    return timestamps // step


class Momentum(BaseStrategy):
    name: ClassVar[str] = "momentum"
    Params: ClassVar[type[StrategyParams]] = MomentumParams
    params: MomentumParams
    counts_open_orders: ClassVar[bool] = True  # targets net of the orders still working

    @property
    def history_needed(self) -> int:
        return self.params.lookback  # the close `lookback` bars back

    def _prepare(
        self, values: np.ndarray, symbols: tuple[str, ...], timestamps: np.ndarray | None
    ) -> Prepared:
        p = self.params
        ret = trailing_return(values, p.lookback)
        clock = bar_clock(values.shape[0], timestamps, p.bar_seconds)
        period = clock // p.rebalance_every
        boundary = np.zeros(values.shape[0], dtype=bool)
        if values.shape[0]:
            boundary[0] = clock[0] % p.rebalance_every == 0
            boundary[1:] = period[1:] > period[:-1]
        active = boundary & np.isfinite(ret).any(axis=1)
        return Prepared(symbols, {"ret": ret}, active, timestamps)

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
        ret = prepared.signals["ret"][t]
        can_trade = tradable & np.isfinite(prices) & (prices > 0)
        eligible = np.flatnonzero(np.isfinite(ret) & can_trade)
        if eligible.size == 0:
            return []
        ranked = eligible[np.argsort(-ret[eligible], kind="stable")]
        chosen = ranked[: self.params.top_n]
        weight = 1.0 / chosen.size
        target = np.zeros(positions.shape[0])
        # no equity, no longs; and never the negative targets a negative equity would give
        target[chosen] = np.floor(max(equity, 0.0) * weight / prices[chosen])
        diff = np.where(can_trade, target - positions, 0.0)
        idx = np.flatnonzero(diff)
        return build_intents(prepared.symbols, idx, diff[idx], self.name)
