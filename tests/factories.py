"""Test-data factories shared by the test suites: quotes, bars, intents, brokers.

Every factory takes plain numbers and returns the real records/frames the code consumes,
so a test states only what matters to it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from paper_broker.broker import PaperBroker
from paper_broker.commission import ZeroCommission
from paper_broker.config import BrokerConfig
from paper_broker.enums import OrderType, Side, TimeInForce
from paper_broker.records import OrderIntent
from paper_broker.slippage import NoSlippage

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def at(minutes: float = 0.0) -> datetime:
    """A UTC timestamp `minutes` after T0 (a session open)."""
    return T0 + timedelta(minutes=minutes)


PerSymbol = float | Sequence[float] | Mapping[str, float]


def _per_symbol(value: PerSymbol, symbols: Sequence[str]) -> np.ndarray:
    if isinstance(value, Mapping):
        return np.array([float(value[s]) for s in symbols])
    if isinstance(value, (int, float)):
        return np.full(len(symbols), float(value))
    return np.asarray(value, dtype=np.float64)


def make_quotes(
    symbols: Sequence[str],
    mid: PerSymbol = 100.0,
    spread_bps: PerSymbol = 10.0,
    size: PerSymbol = 1_000.0,
    ts: datetime = T0,
    *,
    last: PerSymbol | None = None,
    volume: PerSymbol = 1_000_000.0,
    valid: bool | Sequence[bool] | None = None,
) -> pd.DataFrame:
    """A quote cross-section: bid/ask spread_bps around mid (bid = mid x (1 - bps/2e4)),
    bid_size = ask_size = size, last = mid unless given, all stamped `ts` (tz-aware UTC)."""
    m = _per_symbol(mid, symbols)
    half = m * _per_symbol(spread_bps, symbols) / 2e4
    frame = pd.DataFrame(
        {
            "symbol": list(symbols),
            "bid": m - half,
            "ask": m + half,
            "bid_size": _per_symbol(size, symbols),
            "ask_size": _per_symbol(size, symbols),
            "last": m if last is None else _per_symbol(last, symbols),
            "volume": _per_symbol(volume, symbols),
            "quote_ts": pd.Series([ts] * len(symbols), dtype="datetime64[ns, UTC]"),
        }
    )
    if valid is not None:
        frame["valid"] = [valid] * len(symbols) if isinstance(valid, bool) else list(valid)
    return frame


def make_bars(
    symbols: Sequence[str],
    open: PerSymbol = 100.0,
    high: PerSymbol | None = None,
    low: PerSymbol | None = None,
    close: PerSymbol | None = None,
    volume: PerSymbol = 1_000_000.0,
) -> pd.DataFrame:
    """One bar per symbol; high/low default to open +/- 1%, close to open."""
    o = _per_symbol(open, symbols)
    return pd.DataFrame(
        {
            "symbol": list(symbols),
            "open": o,
            "high": o * 1.01 if high is None else _per_symbol(high, symbols),
            "low": o * 0.99 if low is None else _per_symbol(low, symbols),
            "close": o if close is None else _per_symbol(close, symbols),
            "volume": _per_symbol(volume, symbols),
        }
    )


def make_intent(
    symbol: str = "AAPL",
    side: Side | str = Side.BUY,
    quantity: float = 100.0,
    order_type: OrderType | str = OrderType.MARKET,
    tif: TimeInForce | str = TimeInForce.DAY,
    limit: float | None = None,
    stop: float | None = None,
    cid: str | None = None,
) -> OrderIntent:
    return OrderIntent(
        symbol=symbol,
        side=Side(side),
        quantity=quantity,
        order_type=OrderType(order_type),
        time_in_force=TimeInForce(tif),
        limit_price=limit,
        stop_price=stop,
        client_order_id=cid,
    )


def frictionless(**overrides: Any) -> BrokerConfig:
    """A config with no slippage, no commission and no volume cap; override any field."""
    base: dict[str, Any] = {
        "slippage": NoSlippage(),
        "commission": ZeroCommission(),
        "max_volume_share": None,
    }
    base.update(overrides)
    return BrokerConfig(**base)


def make_broker(
    cash: float = 100_000.0,
    config: BrokerConfig | None = None,
    symbols: Sequence[str] = (),
    marks: Mapping[str, float] | None = None,
    account_id: str = "test",
) -> PaperBroker:
    """A broker (frictionless unless `config` is given), optionally pre-marked."""
    broker = PaperBroker(account_id, cash, config or frictionless(), symbols=symbols)
    if marks:
        broker.mark(marks)
    return broker
