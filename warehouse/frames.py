"""Broker records and loose row mappings turned into column-oriented DataFrames for bulk
writes. One pass over the records per frame; enums become their string values and datetimes
UTC `datetime64`, the column types DuckDB maps to VARCHAR and TIMESTAMPTZ."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from paper_broker.records import Fill, Order, PositionRecord

ORDER_COLUMNS = (
    "account_id", "order_id", "client_order_id", "created_at", "symbol", "side", "order_type",
    "time_in_force", "quantity", "limit_price", "stop_price", "status", "filled_quantity",
    "avg_fill_price", "reject_reason", "updated_at", "strategy", "stop_triggered", "commission",
)  # fmt: skip
FILL_COLUMNS = (
    "account_id", "fill_id", "order_id", "ts", "symbol", "side", "quantity", "price", "commission",
)  # fmt: skip
_ORDER_TIMES = ("created_at", "updated_at")
_ORDER_FLOATS = (
    "quantity", "limit_price", "stop_price", "filled_quantity", "avg_fill_price", "commission",
)  # fmt: skip
_FILL_FLOATS = ("quantity", "price", "commission")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def utc_series(values: Iterable[datetime | None]) -> pd.Series:
    """Tz-aware datetimes as a `datetime64[us, UTC]` Series (None -> NaT).

    Converted through integer microseconds with a per-call cache: an interval's rows share a
    handful of timestamps, and `pd.to_datetime` on a list of objects costs ~10 us a row."""
    cache: dict[datetime, int] = {}
    nat = np.iinfo(np.int64).min
    micros = np.fromiter(
        (
            nat
            if v is None or v is pd.NaT
            else cache.get(v) or cache.setdefault(v, (v - _EPOCH) // _MICROSECOND)
            for v in values
        ),
        dtype=np.int64,
    )
    return pd.Series(micros.view("datetime64[us]")).dt.tz_localize(UTC)


def _columns(
    records: Sequence[Any], names: Sequence[str], times: Sequence[str], floats: Sequence[str]
) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name in names:
        values = [_plain(getattr(r, name)) for r in records]
        if name in times:
            data[name] = utc_series(values)
        elif name in floats:
            data[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        else:
            data[name] = pd.Series(values, dtype=object)
    return pd.DataFrame(data, columns=list(names))


def orders_frame(orders: Sequence[Order]) -> pd.DataFrame:
    """One row per order, the latest state of each `order_id` (the last one given wins)."""
    latest = list({o.order_id: o for o in orders}.values())
    return _columns(latest, ORDER_COLUMNS, _ORDER_TIMES, _ORDER_FLOATS)


def fills_frame(fills: Sequence[Fill]) -> pd.DataFrame:
    return _columns(fills, FILL_COLUMNS, ("ts",), _FILL_FLOATS)


def positions_frame(
    account_id: str, ts: datetime, positions: Sequence[PositionRecord]
) -> pd.DataFrame:
    """Position snapshots at `ts`, valued vectorised: market value = quantity x market price,
    unrealized = quantity x (market price - average cost)."""
    qty = np.array([p.quantity for p in positions], dtype=np.float64)
    avg = np.array([p.avg_cost for p in positions], dtype=np.float64)
    mark = np.array([p.market_price for p in positions], dtype=np.float64)
    return pd.DataFrame(
        {
            "account_id": pd.Series([account_id] * len(positions), dtype=object),
            "ts": utc_series([ts] * len(positions)),
            "symbol": pd.Series([p.symbol for p in positions], dtype=object),
            "quantity": qty,
            "avg_cost": avg,
            "market_price": mark,
            "market_value": qty * mark,
            "unrealized_pnl": qty * (mark - avg),
            "realized_pnl": np.array([p.realized_pnl for p in positions], dtype=np.float64),
        }
    )


def rows_frame(rows: pd.DataFrame | Sequence[Mapping[str, Any]] | None) -> pd.DataFrame:
    """Loose rows (a DataFrame or a list of dicts / dataclass-like mappings) as a DataFrame."""
    if rows is None:
        return pd.DataFrame()
    if isinstance(rows, pd.DataFrame):
        return rows.copy()
    return pd.DataFrame([{k: _plain(v) for k, v in dict(r).items()} for r in rows])
