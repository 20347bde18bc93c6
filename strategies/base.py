"""The `Strategy` protocol and the base class the built-ins share.

A strategy runs in two steps so that paper trading and backtests execute the same code:

1. `prepare(closes)` once over a [T x N] matrix of closes (rows bars, columns symbols) to
   compute causal indicators and signal arrays: a value at bar t reads bars <= t only.
2. `decide(t, prepared, positions, equity, prices, tradable)` at bar t, reading only arrays;
   a bar where no signal fires returns `[]` after one lookup, and `OrderIntent` objects are
   built only for the symbols that act, in symbol-index order (deterministic, so the
   caller can number them with `paper_broker.ids.client_order_id`).

The paper-trading interval calls `generate(history, quotes, portfolio, as_of)`, which is
`prepare` on the history up to `as_of` and `decide` at its last row.

Units: quantities in shares (whole shares, positive, the side carries the sign), prices and
equity in the account currency, `positions` signed (short < 0).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, get_args, runtime_checkable

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from paper_broker.enums import Side
from paper_broker.quote_columns import quote_columns
from paper_broker.records import OrderIntent, PortfolioView
from strategies.errors import StrategyParamError


class StrategyParams(BaseModel):
    """Base of parameter models: unknown keys are errors, values are immutable."""

    # NaN and infinity pass `gt=0`; `qty=inf` would reach the broker as an order size
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_bool_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        """Refuse true/false for a parameter that is not a bool: pydantic's lax mode reads
        them as 1 and 0, so `--param fast=true` (or `fast = true` in the config) would run
        a 1-bar average instead of saying the value is wrong."""
        if isinstance(value, bool) and info.field_name is not None:
            annotation = cls.model_fields[info.field_name].annotation
            if annotation is not bool and bool not in get_args(annotation):
                raise ValueError("must be a number, not true/false")
        return value


class NoParams(StrategyParams):
    pass


def whole_shares(value: float) -> float:
    """A share quantity parameter as given, if it is a whole number; orders are in whole
    shares (see the module docstring), and a `qty` of 2.5 would send 2.5-share orders."""
    if value != int(value):
        raise ValueError("must be a whole number of shares")
    return value


@dataclass(frozen=True, slots=True)
class Prepared:
    """What `prepare` computed: signal arrays indexed [bar, symbol] and a per-bar flag.

    `active[t]` is False where `decide` can do nothing at bar t whatever the positions,
    which is what lets a backtest skip quiet bars in microseconds. `timestamps` is the bar
    index when the closes came with one (ns since the epoch, UTC), else None."""

    symbols: tuple[str, ...]
    signals: Mapping[str, np.ndarray]
    active: np.ndarray
    timestamps: np.ndarray | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def n_bars(self) -> int:
        return int(self.active.shape[0])


@runtime_checkable
class Strategy(Protocol):
    """Market history + portfolio -> order intents; pure and deterministic."""

    name: str

    def prepare(self, closes: np.ndarray | pd.DataFrame, timestamps: Any = None) -> Prepared: ...

    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]: ...

    def generate(
        self,
        history: pd.DataFrame,
        quotes: pd.DataFrame,
        portfolio: PortfolioView,
        as_of: datetime,
    ) -> list[OrderIntent]: ...


def validate_params(
    model: type[StrategyParams], params: Mapping[str, Any] | BaseModel | None, strategy: str
) -> StrategyParams:
    """Validate `params` into `model`; raise `StrategyParamError` naming the first bad one."""
    if isinstance(params, model):
        return params
    raw = dict(params.model_dump() if isinstance(params, BaseModel) else (params or {}))
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if not param:  # a cross-field rule names its parameter as "name: why"
            param, _, msg = msg.partition(": ")
        if first["type"] == "extra_forbidden":
            msg = f"unknown parameter (known: {', '.join(model.model_fields) or 'none'})"
        elif "input" in first and not isinstance(first["input"], dict):
            msg = f"{msg} (got {first['input']!r})"
        raise StrategyParamError(strategy, param, msg) from None


def as_matrix(
    closes: np.ndarray | pd.DataFrame, timestamps: Any = None
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray | None]:
    """Closes as a float64 [T x N] array, the symbols, and the bar times in ns (or None).

    An ndarray has no symbol names; its columns are called "0", "1", ... ."""
    if isinstance(closes, pd.DataFrame):
        values = closes.to_numpy(dtype=np.float64, na_value=np.nan)
        symbols = tuple(str(c) for c in closes.columns)
        if timestamps is None and isinstance(closes.index, pd.DatetimeIndex):
            timestamps = closes.index
    else:
        values = np.asarray(closes, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        symbols = tuple(str(i) for i in range(values.shape[1]))
    ts = None
    if timestamps is not None:
        ts = np.asarray(pd.DatetimeIndex(timestamps).as_unit("ns").asi8, dtype=np.int64)
    return values, symbols, ts


def quote_prices(quotes: pd.DataFrame, symbols: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Prices and a tradable mask aligned to `symbols` from a frame of valid quotes.

    `quotes` has a `symbol` column (or index) and `bid`, `ask` and/or `last`; a `valid`
    column, when present, drops the rows flagged invalid. The price is the mid when both
    sides are positive, else `last`; a symbol without a positive finite price is not
    tradable."""
    bid, ask, last = quote_columns(quotes, symbols)
    two_sided = (bid > 0) & (ask > 0)
    prices = np.where(two_sided, (bid + ask) / 2.0, last)
    tradable = np.isfinite(prices) & (prices > 0)
    return np.where(tradable, prices, np.nan), tradable


def position_array(
    portfolio: PortfolioView, symbols: tuple[str, ...], *, with_open_orders: bool = False
) -> np.ndarray:
    """Signed position quantities aligned to `symbols` (0 where none is held); with
    `with_open_orders`, plus what the open orders may still buy, minus what they may sell."""
    held = portfolio.positions
    out = np.fromiter((held.get(s, 0.0) for s in symbols), dtype=np.float64, count=len(symbols))
    if with_open_orders:
        buys, sells = portfolio.pending_buy, portfolio.pending_sell
        out += np.fromiter((buys.get(s, 0.0) - sells.get(s, 0.0) for s in symbols),
                           dtype=np.float64, count=len(symbols))  # fmt: skip
    return out


def build_intents(
    symbols: tuple[str, ...],
    idx: np.ndarray,
    signed_qty: np.ndarray,
    strategy: str,
) -> list[OrderIntent]:
    """Market intents for the symbols at `idx` (ascending), buying where the signed
    quantity is positive and selling where negative; zero quantities are skipped."""
    intents = []
    for i, q in zip(idx.tolist(), signed_qty.tolist(), strict=True):
        if q == 0:
            continue
        side = Side.BUY if q > 0 else Side.SELL
        intents.append(
            OrderIntent(symbol=symbols[i], side=side, quantity=abs(q), strategy=strategy)
        )
    return intents


class BaseStrategy(ABC):
    """Shared plumbing: parameter validation and the paper-trading entry point.

    Subclasses set `name` and `Params` and implement `_prepare` and `decide`. A user
    strategy named `module:Class` in the config is constructed as `Class(params_dict)`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[StrategyParams]] = NoParams
    # A strategy that trades towards a target (target - position) sets this: `decide` then
    # gets positions that include what the open orders will still buy or sell, so an order
    # still working (a fill capped by the volume, a resting limit) is not sent again.
    counts_open_orders: ClassVar[bool] = False

    def __init__(self, params: Mapping[str, Any] | BaseModel | None = None) -> None:
        self.params = validate_params(self.Params, params, self.name or type(self).__name__)

    @property
    def history_needed(self) -> int:
        """Closes before the current bar that a first signal needs: a paper account whose
        `[market_data] history_bars` is shorter would never trade, so it is refused."""
        return 0

    def prepare(self, closes: np.ndarray | pd.DataFrame, timestamps: Any = None) -> Prepared:
        """Causal indicators over the whole history, once (see the module docstring)."""
        values, symbols, ts = as_matrix(closes, timestamps)
        return self._prepare(values, symbols, ts)

    @abstractmethod
    def _prepare(
        self, values: np.ndarray, symbols: tuple[str, ...], timestamps: np.ndarray | None
    ) -> Prepared: ...

    @abstractmethod
    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]: ...

    def generate(
        self,
        history: pd.DataFrame,
        quotes: pd.DataFrame,
        portfolio: PortfolioView,
        as_of: datetime,
    ) -> list[OrderIntent]:
        """One paper-trading decision: `prepare` on the closes up to and including `as_of`
        (later rows are cut off, never read), `decide` at the last row, priced and gated by
        the valid `quotes`. `history` is wide: a tz-aware UTC DatetimeIndex, one column per
        symbol. Raises ValueError for a naive index or `as_of` (a caller bug)."""
        if as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        if not isinstance(history.index, pd.DatetimeIndex) or history.index.tz is None:
            raise ValueError("history must have a tz-aware DatetimeIndex")
        window = history.loc[history.index <= as_of]
        if window.empty:
            return []
        prepared = self.prepare(window)
        prices, tradable = quote_prices(quotes, prepared.symbols)
        positions = position_array(
            portfolio, prepared.symbols, with_open_orders=self.counts_open_orders
        )
        return self.decide(
            prepared.n_bars - 1, prepared, positions, portfolio.equity, prices, tradable
        )
