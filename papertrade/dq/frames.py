"""One session's warehouse rows, read from DuckDB into pandas for the quality suites.

GX's SQL datasource computes no metrics on DuckDB, so the suites validate pandas frames; this
module is the only place that reads the warehouse for them. One query per table, each bounded
by the session's UTC time range (`[open, close)` for interval-keyed rows, `<= close` for the
cumulative ledger), so a 500-symbol session is a few hundred thousand rows, not the history.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from papertrade.calendar import ensure_utc

if TYPE_CHECKING:
    import duckdb


@dataclass(frozen=True, slots=True)
class SessionFrames:
    """What the suites look at for one (account, session).

    quotes, orders, intervals: the session's rows. fills: every fill of the account up to the
    close (the ledger is reconciled from inception); `session_fills` narrows them to the
    session. equity: the session's snapshots plus the latest one at or before the close, so
    `final_equity` exists even for a session without intervals. positions: the snapshot at
    the final equity row's time (flat symbols are absent from a snapshot, so the equity row,
    which is always written, dates the snapshot).
    """

    account_id: str
    session_date: date
    session_open: datetime
    session_close: datetime
    quotes: pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    positions: pd.DataFrame
    equity: pd.DataFrame
    intervals: pd.DataFrame

    @property
    def session_fills(self) -> pd.DataFrame:
        ts = self.fills["ts"]
        mask = (ts >= self.session_open) & (ts <= self.session_close)
        return self.fills.loc[mask].reset_index(drop=True)

    @property
    def final_equity(self) -> pd.DataFrame:
        """The last equity row at or before the close, as a one-row frame (empty if none)."""
        if self.equity.empty:
            return self.equity.iloc[0:0]
        return self.equity.loc[[self.equity["ts"].idxmax()]].reset_index(drop=True)


_QUOTES = """
    SELECT account_id, as_of, symbol, bid, ask, bid_size, ask_size, last, volume, quote_ts,
           provider, valid, flag_reason
    FROM quotes
    WHERE account_id = $account AND as_of >= $open AND as_of < $close
    ORDER BY as_of, symbol
"""
# An order belongs to the session it was created or last updated in.
_ORDERS = """
    SELECT account_id, order_id, client_order_id, created_at, symbol, side, order_type,
           time_in_force, quantity, limit_price, stop_price, status, filled_quantity,
           avg_fill_price, reject_reason, updated_at
    FROM orders
    WHERE account_id = $account
      AND ((created_at >= $open AND created_at <= $close)
           OR (updated_at >= $open AND updated_at <= $close))
    ORDER BY created_at, order_id
"""
_FILLS = """
    SELECT account_id, fill_id, order_id, ts, symbol, side, quantity, price, commission
    FROM fills
    WHERE account_id = $account AND ts <= $close
    ORDER BY ts, fill_id
"""
_EQUITY = """
    SELECT account_id, ts, cash, positions_value, equity
    FROM equity
    WHERE account_id = $account AND ts <= $close
    QUALIFY ts >= $open OR ts = max(ts) OVER ()
    ORDER BY ts
"""
_POSITIONS = """
    SELECT account_id, ts, symbol, quantity, avg_cost, market_price, market_value
    FROM positions
    WHERE account_id = $account
      AND ts = (SELECT max(ts) FROM equity WHERE account_id = $account AND ts <= $close)
    ORDER BY symbol
"""
_INTERVALS = """
    SELECT account_id, as_of, status
    FROM intervals
    WHERE account_id = $account AND as_of >= $open AND as_of < $close
    ORDER BY as_of
"""


def load_session_frames(
    conn_or_path: duckdb.DuckDBPyConnection | str | Path,
    account_id: str,
    session_date: date,
    session_open: datetime,
    session_close: datetime,
) -> SessionFrames:
    """Read one session of `account_id` from the warehouse.

    `conn_or_path` is an open connection (used as is, not closed) or a warehouse file, opened
    read-only through `warehouse.connection.connect` for the duration of the reads. Times
    come back as UTC-aware pandas timestamps. Raises `UserError` for naive bounds.
    """
    params = {
        "account": account_id,
        "open": ensure_utc(session_open),
        "close": ensure_utc(session_close),
    }
    with _connection(conn_or_path) as conn:
        conn.execute("SET TimeZone = 'UTC'")

        def read(sql: str) -> pd.DataFrame:
            # DuckDB refuses named parameters a statement does not use.
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            return conn.execute(sql, used).df()

        return SessionFrames(
            account_id=account_id,
            session_date=session_date,
            session_open=params["open"],
            session_close=params["close"],
            quotes=read(_QUOTES),
            orders=read(_ORDERS),
            fills=read(_FILLS),
            positions=read(_POSITIONS),
            equity=read(_EQUITY),
            intervals=read(_INTERVALS),
        )


@contextmanager
def _connection(
    conn_or_path: duckdb.DuckDBPyConnection | str | Path,
) -> Iterator[duckdb.DuckDBPyConnection]:
    if not isinstance(conn_or_path, str | Path):
        yield conn_or_path
        return
    from warehouse.connection import connect

    with connect(conn_or_path, read_only=True) as conn:
        yield conn
