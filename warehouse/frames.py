"""Broker records and loose row mappings turned into column-oriented frames for bulk writes.
One pass over the records per column; enums become their string values and datetimes UTC
microseconds, the column types DuckDB maps to VARCHAR and TIMESTAMPTZ.

The interval commit scans Arrow tables (`*_table`): DuckDB reads them without the per-column
conversion a pandas scan pays, and building them skips pandas' constructors. Backtests and
end of day, which post-process their rows, use the pandas frames (`*_frame`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import Enum
from operator import attrgetter
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from paper_broker.enums import OrderStatus, OrderType, RejectReason, Side, TimeInForce
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


def _utc_micros(values: Iterable[datetime | None]) -> np.ndarray:
    """Tz-aware datetimes as `datetime64[us]` in UTC (None -> NaT).

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
    return micros.view("datetime64[us]")


def utc_series(values: Iterable[datetime | None]) -> pd.Series:
    """Tz-aware datetimes as a `datetime64[us, UTC]` Series (None -> NaT)."""
    return pd.Series(_utc_micros(values)).dt.tz_localize(UTC)


_UTC_MICROS = pa.timestamp("us", tz="UTC")


# enum members -> their string values, per enum column of orders and fills: a dict lookup
# by identity instead of a type test per cell (None and plain strings pass through)
ENUM_VALUES: dict[str, dict[Any, str]] = {
    name: {m: m.value for m in enum}
    for name, enum in (
        ("side", Side), ("order_type", OrderType), ("time_in_force", TimeInForce),
        ("status", OrderStatus), ("reject_reason", RejectReason),
    )
}  # fmt: skip


def _column_values(
    records: Sequence[Any], names: Sequence[str], times: Sequence[str], floats: Sequence[str]
) -> dict[str, Any]:
    """Column name -> `datetime64[us]` (UTC) for `times`, float64 with NaN for None for
    `floats`, the string values of `ENUM_VALUES` columns, a list of the values otherwise."""
    data: dict[str, Any] = {}
    for name in names:
        values = list(map(attrgetter(name), records))
        if name in times:
            data[name] = _utc_micros(values)
        elif name in floats:
            data[name] = np.array(values, dtype=np.float64)  # None -> NaN
        elif name in ENUM_VALUES:
            plain = ENUM_VALUES[name]
            data[name] = [plain.get(v, v) for v in values]
        else:
            data[name] = values
    return data


def _frame(data: dict[str, Any], times: Sequence[str]) -> pd.DataFrame:
    def column(name: str, values: Any) -> Any:
        if name in times:
            return pd.Series(values).dt.tz_localize(UTC)
        if isinstance(values, np.ndarray):
            return values
        return pd.Series(values, dtype=object)

    return pd.DataFrame({n: column(n, v) for n, v in data.items()}, columns=list(data))


def _table(data: dict[str, Any], times: Sequence[str]) -> pa.Table:
    """NaT and NaN become NULL, as they do when DuckDB scans the pandas frame."""
    return pa.table(
        {
            name: pa.array(v, _UTC_MICROS if name in times else None, from_pandas=True)
            for name, v in data.items()
        }
    )


def _latest(orders: Sequence[Order]) -> list[Order]:
    """The latest state of each `order_id` (the last one given wins)."""
    return list({o.order_id: o for o in orders}.values())


def orders_frame(orders: Sequence[Order]) -> pd.DataFrame:
    """One row per order, the latest state of each `order_id`."""
    data = _column_values(_latest(orders), ORDER_COLUMNS, _ORDER_TIMES, _ORDER_FLOATS)
    return _frame(data, _ORDER_TIMES)


def orders_table(orders: Sequence[Order]) -> pa.Table:
    """`orders_frame` as an Arrow table."""
    data = _column_values(_latest(orders), ORDER_COLUMNS, _ORDER_TIMES, _ORDER_FLOATS)
    return _table(data, _ORDER_TIMES)


def fills_frame(fills: Sequence[Fill]) -> pd.DataFrame:
    return _frame(_column_values(fills, FILL_COLUMNS, ("ts",), _FILL_FLOATS), ("ts",))


def fills_table(fills: Sequence[Fill]) -> pa.Table:
    return _table(_column_values(fills, FILL_COLUMNS, ("ts",), _FILL_FLOATS), ("ts",))


_POSITION_FIELDS = ("symbol", "quantity", "avg_cost", "market_price", "realized_pnl")


def positions_table(positions: Sequence[PositionRecord]) -> pa.Table:
    """What a position snapshot is made of: symbol, signed quantity, average cost, market
    price and realized P&L. The commit adds the account, the time and the valuations."""
    return _table(_column_values(positions, _POSITION_FIELDS, (), _POSITION_FIELDS[1:]), ())


def marks_table(marks: Mapping[str, float]) -> pa.Table:
    """The broker's marks by symbol; `seq` keeps their order, the order of the broker's
    symbol index, which a restored broker must rebuild exactly."""
    return pa.table(
        {
            "symbol": pa.array(list(marks), pa.string()),
            "seq": pa.array(range(len(marks)), pa.int32()),
            "mark": pa.array(list(marks.values()), pa.float64()),
        }
    )


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


def loose_rows(rows: pd.DataFrame | Sequence[Mapping[str, Any]] | None) -> list[dict[str, Any]]:
    """Loose rows (a DataFrame or a list of dicts / dataclass-like mappings) as new dicts.
    A DataFrame's null cells are left out, so it reads as the dicts it was made of."""
    if rows is None:
        return []
    if isinstance(rows, pd.DataFrame):
        records = rows.to_dict("records")
        return [{str(k): v for k, v in r.items() if not _is_null(v)} for r in records]
    return [dict(r) for r in rows]


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NaT or (isinstance(value, float) and value != value)


def _cell(value: Any) -> Any:
    return None if _is_null(value) else _plain(value)  # NULL, as a pandas scan reads NaN


def rows_table(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as an Arrow table of `schema`: keys outside it are dropped, missing ones NULL.
    For the few rows an interval has, a tenth of the cost of a DataFrame, and DuckDB scans
    it without converting object columns."""
    return pa.table(
        {name: [_cell(row.get(name)) for row in rows] for name in schema.names}, schema=schema
    )


def rows_frame(rows: pd.DataFrame | Sequence[Mapping[str, Any]] | None) -> pd.DataFrame:
    """Loose rows (a DataFrame or a list of dicts / dataclass-like mappings) as a DataFrame."""
    if rows is None:
        return pd.DataFrame()
    if isinstance(rows, pd.DataFrame):
        return rows.copy()
    return pd.DataFrame([{k: _plain(v) for k, v in dict(r).items()} for r in rows])
