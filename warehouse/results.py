"""Bulk upserts for end-of-day results and whole backtest runs.

Each function is one transaction of set-based statements: re-running a day's data-quality
suite or metrics replaces that day's rows; re-running a backtest under the same account id
replaces the previous run entirely, so a reader sees either the old run or the new one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from paper_broker.records import Fill, Order
from warehouse.commit import insert_frame
from warehouse.frames import fills_frame, orders_frame, rows_frame, utc_series
from warehouse.transaction import transaction

DQ_COLUMNS = (
    "account_id", "session_date", "run_at", "suite", "expectation", "success",
    "observed_value", "unexpected_count", "sample_json",
)  # fmt: skip
PERFORMANCE_COLUMNS = (
    "account_id", "session_date", "equity", "daily_return", "cumulative_return", "cagr",
    "volatility", "sharpe", "sortino", "max_drawdown", "max_drawdown_duration", "calmar",
    "n_trades", "win_rate", "profit_factor", "avg_win", "avg_loss", "expectancy", "turnover",
    "avg_gross_exposure", "status",
)  # fmt: skip
EQUITY_COLUMNS = (
    "account_id", "ts", "cash", "positions_value", "equity", "gross_exposure", "net_exposure",
    "realized_pnl", "unrealized_pnl",
)  # fmt: skip
POSITION_COLUMNS = (
    "account_id", "ts", "symbol", "quantity", "avg_cost", "market_price", "market_value",
    "unrealized_pnl", "realized_pnl",
)  # fmt: skip
BAR_COLUMNS = ("account_id", "timestamp", "symbol", "open", "high", "low", "close", "volume")

Rows = pd.DataFrame | Sequence[Mapping[str, Any]]

# tables a backtest run writes under its account id, replaced as a whole on a re-run
_BACKTEST_TABLES = ("orders", "fills", "positions", "equity", "bars", "daily_performance")


class AccountKindConflict(ValueError):
    """A backtest was asked to replace a paper account's rows."""


def _replace(
    conn: duckdb.DuckDBPyConnection, table: str, rows: Rows, columns: Sequence[str]
) -> int:
    frame = rows_frame(rows)
    insert_frame(conn, table, frame, columns, replace=True)
    return len(frame)


def upsert_dq_results(conn: duckdb.DuckDBPyConnection, rows: Rows) -> int:
    """Insert or replace data-quality results by (account, session_date, suite, expectation).
    Returns the number of rows written."""
    with transaction(conn):
        return _replace(conn, "dq_results", rows, DQ_COLUMNS)


def upsert_daily_performance(conn: duckdb.DuckDBPyConnection, rows: Rows) -> int:
    """Insert or replace daily metrics by (account, session_date). Returns rows written."""
    with transaction(conn):
        return _replace(conn, "daily_performance", rows, PERFORMANCE_COLUMNS)


def write_end_of_day(
    conn: duckdb.DuckDBPyConnection, *, performance: Rows, dq_results: Rows, alerts: Rows
) -> None:
    """One session's end of day in one transaction: its `daily_performance` and `dq_results`
    rows replace a previous run's, its alerts join the outbox unless already queued."""
    from warehouse.commit import ALERT_COLUMNS

    with transaction(conn):
        _replace(conn, "daily_performance", performance, PERFORMANCE_COLUMNS)
        _replace(conn, "dq_results", dq_results, DQ_COLUMNS)
        insert_frame(conn, "alerts", rows_frame(alerts), ALERT_COLUMNS, "ON CONFLICT DO NOTHING")


def write_backtest(
    conn: duckdb.DuckDBPyConnection,
    account_id: str,
    *,
    initial_cash: float,
    created_at: datetime,
    orders: Sequence[Order] | pd.DataFrame = (),
    fills: Sequence[Fill] | pd.DataFrame = (),
    equity: pd.DataFrame | None = None,
    positions: pd.DataFrame | None = None,
    bars: pd.DataFrame | None = None,
    daily_performance: Rows | None = None,
    config_json: str | None = None,
) -> dict[str, int]:
    """Store one backtest run under `account_id` (kind 'backtest'), atomically replacing a
    previous run of the same id. `equity` has one row per bar (`ts`, `cash`,
    `positions_value`, `equity`, ...). Returns row counts per table.

    Raises `AccountKindConflict` if `account_id` is a paper account: a backtest must never
    wipe live paper-trading history."""
    with transaction(conn):
        kind = conn.execute(
            "SELECT kind FROM accounts WHERE account_id = ?", [account_id]
        ).fetchone()
        if kind is not None and kind[0] != "backtest":
            raise AccountKindConflict(f"account {account_id!r} is a {kind[0]} account")
        for table in (*_BACKTEST_TABLES, "accounts"):
            conn.execute(f"DELETE FROM {table} WHERE account_id = ?", [account_id])
        conn.execute(
            "INSERT INTO accounts VALUES (?, ?, ?, 'backtest', ?)",
            [account_id, created_at, initial_cash, config_json],
        )
        frames = {
            "orders": _own(_frame(orders, orders_frame), account_id),
            "fills": _own(_frame(fills, fills_frame), account_id),
            "equity": _own(_times(rows_frame(equity), "ts"), account_id),
            "positions": _own(_times(rows_frame(positions), "ts"), account_id),
            "bars": _own(_times(rows_frame(bars), "timestamp"), account_id),
            "daily_performance": _own(rows_frame(daily_performance), account_id),
        }
        columns = {
            "equity": EQUITY_COLUMNS,
            "positions": POSITION_COLUMNS,
            "bars": BAR_COLUMNS,
            "daily_performance": PERFORMANCE_COLUMNS,
        }
        for table, frame in frames.items():
            insert_frame(conn, table, frame, columns.get(table))
        return {table: len(frame) for table, frame in frames.items()}


def _frame(records: Any, build: Any) -> pd.DataFrame:
    return records.copy() if isinstance(records, pd.DataFrame) else build(list(records))


def _own(frame: pd.DataFrame, account_id: str) -> pd.DataFrame:
    if not frame.empty:
        frame["account_id"] = account_id
    return frame


def _times(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    if (
        not frame.empty
        and column in frame
        and not isinstance(frame[column].dtype, pd.DatetimeTZDtype)
    ):
        frame[column] = utc_series(frame[column])
    return frame
