"""RiskGuard's array inputs and outputs: a batch of intents as columns, the account as arrays
aligned to a symbol universe, and the per-intent verdict.

A caller that already holds its state as arrays (the backtest engine: closes by symbol
index, positions from its fills) checks a batch with `RiskGuard.check_arrays` without
building a `PortfolioView` or a quotes DataFrame; `RiskGuard.check` converts its records to
these same arrays, so both entry points decide alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from paper_broker.enums import OrderType, RejectReason
from paper_broker.records import OrderIntent

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# intents with this strategy name close positions for the kill switch: they pass HALTED and
# the per-order limits, so only the risk check's own flatten may carry it
KILL_SWITCH_STRATEGY = "kill_switch"


def strategy_intents(intents: list[OrderIntent], strategy: str) -> list[OrderIntent]:
    """A strategy's intents, none of them labelled as the kill switch's: an intent a
    strategy labelled `kill_switch` would pass a halt and the per-order notional and
    quantity limits. Such an intent carries the strategy's name instead."""
    if not any(i.strategy == KILL_SWITCH_STRATEGY for i in intents):
        return intents
    return [
        replace(i, strategy=strategy) if i.strategy == KILL_SWITCH_STRATEGY else i for i in intents
    ]


_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)

# verdict codes: -1 approved, else the index of the reason here (first failing rule)
REASONS: tuple[RejectReason, ...] = (
    RejectReason.TRADING_HALTED,
    RejectReason.INVALID_QUANTITY,
    RejectReason.RESTRICTED_SYMBOL,
    RejectReason.NO_VALID_QUOTE,
    RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER,
    RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER,
    RejectReason.PRICE_OUTSIDE_COLLAR,
    RejectReason.TRADING_REDUCING,
    RejectReason.SHORT_SELLING_NOT_ALLOWED,
    RejectReason.MAX_OPEN_ORDERS,
    RejectReason.MAX_ORDERS_PER_INTERVAL,
    RejectReason.POSITION_NOTIONAL_EXCEEDS_MAX,
    RejectReason.GROSS_EXPOSURE_EXCEEDS_MAX,
    RejectReason.NET_EXPOSURE_EXCEEDS_MAX,
    RejectReason.INSUFFICIENT_BUYING_POWER,
)
(HALTED, QUANTITY, RESTRICTED, NO_QUOTE, MAX_QTY, MAX_NOTIONAL, COLLAR, REDUCING, SHORT,
 OPEN_ORDERS, PER_INTERVAL, POSITION, GROSS, NET, BUYING_POWER) = range(len(REASONS))  # fmt: skip

# the config key (or concept) each reason holds an order against: the event's `rule`
RULES: tuple[str, ...] = (
    "kill_switch", "quantity", "restricted_symbols", "quote", "max_order_quantity",
    "max_order_notional", "price_collar_pct", "kill_switch", "allow_short", "max_open_orders",
    "max_orders_per_interval", "max_position_notional", "max_gross_exposure",
    "max_net_exposure", "buying_power",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class IntentArrays:
    """A batch of order intents as columns, in batch order.

    symbol: index of each intent's symbol in the caller's universe.
    sign: +1 buy, -1 sell. quantity: shares (any float; non-positive is rejected).
    limit_price / stop_price: NaN where the order has none; None: no order has one.
    is_limit: LIMIT or STOP_LIMIT orders (valued at their limit); None: none is.
    kill_switch: flatten intents of the kill switch (they may pass HALTED); None: none is.
    """

    symbol: IntArray
    sign: FloatArray
    quantity: FloatArray
    limit_price: FloatArray | None = None
    stop_price: FloatArray | None = None
    is_limit: BoolArray | None = None
    kill_switch: BoolArray | None = None

    def __len__(self) -> int:
        return int(self.symbol.shape[0])

    @classmethod
    def of(cls, intents: Sequence[OrderIntent], index: Mapping[str, int]) -> IntentArrays:
        """Columns of `intents`; `index` maps each symbol to its universe position (a
        KeyError for a symbol outside it). Price and flag columns are None when unused, so
        a batch of plain market orders costs three short arrays."""
        n = len(intents)
        symbol = np.fromiter((index[i.symbol] for i in intents), np.int64, n)
        sign = np.fromiter((i.side.sign for i in intents), np.float64, n)
        qty = np.fromiter((i.quantity for i in intents), np.float64, n)
        priced = any(
            i.order_type is not OrderType.MARKET or i.limit_price is not None
            or i.stop_price is not None for i in intents
        )  # fmt: skip
        flatten = any(i.strategy == KILL_SWITCH_STRATEGY for i in intents)
        if not priced:
            limit = stop = is_limit = None
        else:
            limit = np.fromiter(
                (math.nan if i.limit_price is None else i.limit_price for i in intents),
                np.float64, n,
            )  # fmt: skip
            stop = np.fromiter(
                (math.nan if i.stop_price is None else i.stop_price for i in intents),
                np.float64, n,
            )  # fmt: skip
            is_limit = np.fromiter((i.order_type in _LIMIT_TYPES for i in intents), bool, n)
        kill = (
            np.fromiter((i.strategy == KILL_SWITCH_STRATEGY for i in intents), bool, n)
            if flatten
            else None
        )
        return cls(symbol, sign, qty, limit, stop, is_limit, kill)


@dataclass(frozen=True, slots=True)
class PortfolioArrays:
    """The account before the batch, with per-symbol values aligned to the universe.

    positions: signed shares (0 where flat). marks: the price exposure is valued at (NaN
    where there is none: the order's own price stands in). equity, buying_power,
    gross_exposure, net_exposure: account currency, as `PortfolioView` defines them.
    pending_buy, pending_sell: shares the open orders may still buy / sell (>= 0; None
    when there are no open orders).
    """

    positions: FloatArray
    marks: FloatArray
    equity: float
    buying_power: float
    gross_exposure: float
    net_exposure: float
    open_order_count: int = 0
    pending_buy: FloatArray | None = None
    pending_sell: FloatArray | None = None

    @staticmethod
    def pending(
        buys: Mapping[str, float], sells: Mapping[str, float], index: Mapping[str, int], n: int
    ) -> tuple[FloatArray, FloatArray] | tuple[None, None]:
        """The shares open orders may still buy and sell by symbol (`PaperBroker.
        open_quantities`) as arrays over a universe of `n` symbols numbered by `index`;
        (None, None) when there are none."""
        if not (buys or sells):
            return None, None
        buy, sell = np.zeros(n), np.zeros(n)
        for side, quantities in ((buy, buys), (sell, sells)):
            for symbol, qty in quantities.items():
                side[index[symbol]] = qty
        return buy, sell


@dataclass(frozen=True, slots=True)
class ArrayVerdict:
    """Per intent, in batch order: `code` -1 when approved, else the index in `REASONS` of
    the first failing rule; `value` and `limit` the numbers that decided it (NaN for rules
    that are not numeric)."""

    code: npt.NDArray[np.int8]
    value: FloatArray
    limit: FloatArray

    @property
    def approved(self) -> BoolArray:
        return self.code < 0

    @property
    def n_rejected(self) -> int:
        return int(np.count_nonzero(self.code >= 0))

    def approved_index(self) -> IntArray:
        """Positions of the approved intents, in batch order."""
        return np.flatnonzero(self.code < 0)
