"""`buy_and_hold`: the benchmark. Buy equal weight of every tradable symbol once, then hold.

Rule: when the account holds no position at all, buy floor(equity / n / price) shares of
each of the n tradable symbols (whole shares, rounded down; a symbol whose share costs more
than its slice is skipped). Once anything is held, never trade again.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from paper_broker.records import OrderIntent
from strategies.base import BaseStrategy, NoParams, Prepared, StrategyParams, build_intents


class BuyAndHold(BaseStrategy):
    name: ClassVar[str] = "buy_and_hold"
    Params: ClassVar[type[StrategyParams]] = NoParams
    counts_open_orders: ClassVar[bool] = True  # a buy still working is the one buy

    def _prepare(
        self, values: np.ndarray, symbols: tuple[str, ...], timestamps: np.ndarray | None
    ) -> Prepared:
        # every bar may be the first one with quotes; the position check happens in decide
        return Prepared(symbols, {}, np.ones(values.shape[0], dtype=bool), timestamps)

    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]:
        if positions.any() or equity <= 0:
            return []
        can_trade = tradable & np.isfinite(prices) & (prices > 0)
        idx = np.flatnonzero(can_trade)
        if idx.size == 0:
            return []
        qty = np.floor(equity / idx.size / prices[idx])
        return build_intents(prepared.symbols, idx, qty, self.name)
