"""`buy_and_hold`: the benchmark. Buy equal weight of every tradable symbol once, then hold.

Rule: when the account holds no position at all, buy floor(equity * (1 - cash_buffer) / n /
price) shares of each of the n tradable symbols (whole shares, rounded down; a symbol whose
share costs more than its slice is skipped). Once anything is held, never trade again.

`cash_buffer` (default 1%) stays in cash for the buys' commissions and slippage: the broker
refuses a buy whose price and estimated commission pass the buying power, and slices of
the whole equity left none, so the last buy of the batch was refused and, the account then
holding something, never sent again (one $37.13 symbol and $100,000: 2,693 shares cost
99,991.09 plus 13.47 of the default per-share commission; no fill at all). 1% covers the
default commission, which is at most 1% of an order's value.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field

from paper_broker.records import OrderIntent
from strategies.base import BaseStrategy, Prepared, StrategyParams, build_intents


class BuyAndHoldParams(StrategyParams):
    cash_buffer: float = Field(
        0.01, ge=0, lt=1, description="share of equity kept in cash for costs"
    )


class BuyAndHold(BaseStrategy):
    name: ClassVar[str] = "buy_and_hold"
    Params: ClassVar[type[StrategyParams]] = BuyAndHoldParams
    params: BuyAndHoldParams
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
        budget = equity * (1.0 - self.params.cash_buffer)
        qty = np.floor(budget / idx.size / prices[idx])
        return build_intents(prepared.symbols, idx, qty, self.name)
