"""One trading interval written in one transaction, exactly once.

`commit_interval` writes the interval's quotes, new and changed orders, fills, position
snapshots, the equity snapshot, risk events, alert outbox rows and, last, the interval marker
`intervals(account_id, as_of)`, between one BEGIN and one COMMIT. DuckDB's write-ahead log
makes that all-or-nothing across crashes: a process killed anywhere before COMMIT leaves no
trace of the interval, one killed after it leaves all of it.

Exactly once: the marker is checked inside the same transaction, and an interval already
committed is a no-op that returns the summary stored with it. Primary keys enforce it a
second time: every row the interval writes is keyed by the interval (its time, or ids
derived from it and the broker's sequences), so a second copy of any of them violates a key
and rolls the whole transaction back instead of being dropped unseen. Orders placed before
this interval are the only rows that exist already: they are upserted to their latest state.

Writes are set-based: each table gets one `INSERT ... SELECT` from an Arrow table or a
DataFrame that DuckDB scans in place. Per statement, `ON CONFLICT` costs DuckDB about as
much as inserting 500 rows, so it is kept for the rows that can legitimately exist.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from paper_broker.enums import TradingState
from paper_broker.records import BrokerState, Fill, Order, PositionRecord
from papertrade.errors import PapertradeError
from warehouse.connection import DEFAULT_TIMEOUT, connect
from warehouse.frames import (
    ORDER_COLUMNS,
    fills_table,
    loose_rows,
    marks_table,
    orders_table,
    positions_table,
    rows_table,
)
from warehouse.marker import committed_summary, marker_values
from warehouse.transaction import transaction

QUOTE_COLUMNS = (
    "account_id", "as_of", "symbol", "bid", "ask", "bid_size", "ask_size", "last", "volume",
    "quote_ts", "provider", "valid", "flag_reason",
)  # fmt: skip
BAR_COLUMNS = ("account_id", "timestamp", "symbol", "open", "high", "low", "close", "volume")
_UTC = pa.timestamp("us", tz="UTC")
RISK_EVENT_SCHEMA = pa.schema(
    [("account_id", pa.string()), ("event_id", pa.string()), ("ts", _UTC)]
    + [(c, pa.string()) for c in ("rule", "symbol", "reason", "detail")]
    + [("value", pa.float64()), ("limit_value", pa.float64())]
    + [("state_before", pa.string()), ("state_after", pa.string())]
)
ALERT_SCHEMA = pa.schema(
    [("account_id", pa.string()), ("alert_id", pa.string()), ("created_at", _UTC)]
    + [(c, pa.string()) for c in ("kind", "level", "title", "text", "payload_json", "status")]
    + [("attempts", pa.int32()), ("last_error", pa.string()), ("sent_at", _UTC)]
    + [("slack_ts", pa.string())]
)
RISK_EVENT_COLUMNS = tuple(RISK_EVENT_SCHEMA.names)
ALERT_COLUMNS = tuple(ALERT_SCHEMA.names)

Stage = Callable[[str], None]
Rows = pd.DataFrame | Sequence[Mapping[str, Any]] | None


@dataclass(frozen=True, slots=True)
class EquityRow:
    """The account at one instant, in account currency."""

    ts: datetime
    cash: float
    positions_value: float
    equity: float
    gross_exposure: float
    net_exposure: float
    realized_pnl: float
    unrealized_pnl: float

    @classmethod
    def from_state(cls, state: BrokerState, ts: datetime) -> EquityRow:
        """Value the state's positions at their market prices (vectorised)."""
        qty = np.array([p.quantity for p in state.positions], dtype=np.float64)
        mark = np.array([p.market_price for p in state.positions], dtype=np.float64)
        avg = np.array([p.avg_cost for p in state.positions], dtype=np.float64)
        value = qty * mark
        positions_value = float(value.sum())
        return cls(
            ts=ts,
            cash=state.cash,
            positions_value=positions_value,
            equity=state.cash + positions_value,
            gross_exposure=float(np.abs(value).sum()),
            net_exposure=positions_value,
            realized_pnl=state.realized_pnl,
            unrealized_pnl=float((qty * (mark - avg)).sum()),
        )


@dataclass(frozen=True)
class IntervalCommit:
    """Everything one trading interval produced, as the flow hands it to the warehouse.

    `state` is the broker state after the interval; its open orders are upserted with
    `orders` (unless `orders` holds every order that changed, see `orders_complete`), and
    `positions`/`equity` default to values derived from it. `quotes` is the
    interval's cross-section (columns of the `quotes` table; `account_id` and `as_of` are
    filled in; unknown columns are dropped). `risk_events` and `alerts` are rows with the
    columns of their tables; missing ids are made deterministic from (account, as_of, n).
    `trading_state` records a change the risk guard made during the interval.
    `config_json`, set for a new account and whenever the settings changed, is recorded in
    `account_settings` from this interval on (and, for a new account, in `accounts`).
    """

    account_id: str
    as_of: datetime
    session_date: date | None
    state: BrokerState
    quotes: pd.DataFrame | None = None
    orders: Sequence[Order] = ()
    fills: Sequence[Fill] = ()
    positions: Sequence[PositionRecord] | None = None
    equity: EquityRow | None = None
    risk_events: Rows = None
    alerts: Rows = None
    trading_state: tuple[TradingState, str] | None = None
    n_rejections: int = 0
    gap_intervals: int = 0
    status: str = "committed"
    committed_at: datetime | None = None
    initial_cash: float | None = None
    config_json: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # long-format bars (timestamp, symbol, open, high, low, close, volume) the interval
    # decided on that the quotes table does not hold, e.g. a new account's warm-up history
    bars: pd.DataFrame | None = None
    # the last committed interval this one was built on; when set, the commit refuses to
    # land on top of a different one (two runs that raced past the account run lock)
    based_on: datetime | None = None
    check_based_on: bool = False
    # the trading state the interval decided in; when set, the commit refuses to land if
    # the account's state moved meanwhile (`papertrade kill-switch` while it ran)
    based_on_state: TradingState | None = None
    # `orders` holds every order created or changed since the last commit (the broker's
    # drained changes): the open orders it leaves out are stored as they are, and rewriting
    # them cost an upsert (9 ms) every interval that had any
    orders_complete: bool = False


@dataclass(frozen=True, slots=True)
class CommitResult:
    """`committed` is False when the interval had been committed before; `summary` is what
    is stored for it either way."""

    committed: bool
    summary: dict[str, Any]


def commit_interval(
    target: str | Path | duckdb.DuckDBPyConnection,
    commit: IntervalCommit,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    on_stage: Stage | None = None,
) -> CommitResult:
    """Write `commit` atomically; see the module docstring.

    `target` is a database path (a short-lived writer connection is opened with `timeout`,
    raising `WarehouseBusy` with nothing written if the file stays locked) or an open
    read-write connection outside any transaction. `on_stage(name)` is called inside the
    transaction after each table is written and once after COMMIT: progress tracing, and the
    seam the crash tests use to stop a process at a known point.
    """
    if isinstance(target, duckdb.DuckDBPyConnection):
        return _commit(target, commit, on_stage)
    with connect(target, timeout=timeout) as conn:
        return _commit(conn, commit, on_stage)


def _commit(
    conn: duckdb.DuckDBPyConnection, commit: IntervalCommit, on_stage: Stage | None
) -> CommitResult:
    stage = on_stage or (lambda name: None)
    started = time.perf_counter()
    account, as_of = commit.account_id, _utc(commit.as_of)
    key = {"account": account, "as_of": as_of}
    with _refusing_duplicates(account, as_of), transaction(conn):
        ((latest, done),) = conn.execute(
            "SELECT max(as_of), bool_or(as_of = ?) FROM intervals WHERE account_id = ?",
            [as_of, account],
        ).fetchall()
        if done:  # nothing written: the transaction ends having only read
            return CommitResult(False, committed_summary(conn, account, as_of) or {})

        if commit.check_based_on:
            _check_based_on(account, as_of, commit.based_on, latest)
        if commit.based_on_state is not None:
            _check_based_on_state(conn, account, as_of, commit.based_on_state)

        state = commit.state
        # an account with a committed interval was registered in that interval's transaction
        if latest is None and not _registered(conn, account):
            conn.execute(
                "INSERT INTO accounts VALUES (?, ?, ?, 'paper', ?)",
                [
                    account,
                    as_of,
                    commit.initial_cash if commit.initial_cash is not None else state.initial_cash,
                    commit.config_json,
                ],
            )

        if commit.config_json is not None:
            conn.execute(
                "INSERT INTO account_settings VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [account, as_of, commit.config_json],
            )

        if commit.bars is not None and not commit.bars.empty:
            bars = commit.bars.assign(account_id=account)
            bars["timestamp"] = pd.to_datetime(bars["timestamp"], utc=True)
            insert_frame(conn, "bars", bars, BAR_COLUMNS, "ON CONFLICT DO NOTHING")
            stage("bars")

        quotes = _quotes(commit.quotes)
        insert_frame(conn, "quotes", quotes, select=_WITH_KEY, params=key)
        stage("quotes")

        kept = () if commit.orders_complete else state.open_orders
        orders = orders_table([*commit.orders, *kept])
        _write_orders(conn, orders, as_of)
        stage("orders")

        insert_frame(conn, "fills", fills_table(commit.fills))
        stage("fills")

        positions = commit.positions if commit.positions is not None else state.positions
        rows = positions_table(positions)
        insert_frame(conn, "positions", rows, select=_POSITION_SNAPSHOT, params=key)
        stage("positions")

        insert_frame(conn, "marks", marks_table(state.marks), select=_WITH_KEY, params=key)
        stage("marks")

        equity = commit.equity or EquityRow.from_state(state, as_of)
        # one row: a parameterised INSERT costs a third of scanning a frame
        conn.execute(
            "INSERT INTO equity (account_id, ts, cash, positions_value, equity, gross_exposure,"
            " net_exposure, realized_pnl, unrealized_pnl) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                account, _utc(equity.ts), equity.cash, equity.positions_value, equity.equity,
                equity.gross_exposure, equity.net_exposure, equity.realized_pnl,
                equity.unrealized_pnl,
            ],
        )  # fmt: skip
        stage("equity")

        risk = rows_table(risk_event_rows(commit.risk_events, account, as_of), RISK_EVENT_SCHEMA)
        insert_frame(conn, "risk_events", risk)
        stage("risk_events")

        alerts = rows_table(alert_rows(commit.alerts, account, as_of), ALERT_SCHEMA)
        insert_frame(conn, "alerts", alerts)
        stage("alerts")

        if commit.trading_state is not None:
            new_state, reason = commit.trading_state
            conn.execute(
                "INSERT INTO trading_state VALUES (?, ?, ?, ?, 'guard') ON CONFLICT DO NOTHING",
                [account, as_of, TradingState(new_state).value, reason],
            )
            stage("trading_state")

        ((pending,),) = conn.execute(
            "SELECT count(*) FROM alerts WHERE account_id = ? AND status = 'pending'", [account]
        ).fetchall()
        summary: dict[str, Any] = {
            "account_id": account,
            "as_of": as_of.isoformat(),
            "status": commit.status,
            "n_quotes": quotes.num_rows,
            "n_valid_quotes": _count_valid(quotes),
            # the interval's own orders (new and changed), not the resting ones rewritten
            "n_orders": len({o.order_id for o in commit.orders}),
            "n_fills": len(commit.fills),
            "n_rejections": commit.n_rejections,
            "n_positions": len(positions),
            "n_risk_events": len(risk),
            "n_alerts": len(alerts),
            "gap_intervals": commit.gap_intervals,
            "pending_alerts": pending,
            "cash": equity.cash,
            "equity": equity.equity,
            **commit.extra,
        }
        marker = marker_values(as_of, summary, state, commit.extra)
        committed_at = _utc(commit.committed_at or datetime.now(UTC))
        commit_ms = (time.perf_counter() - started) * 1000
        columns = ("account_id", "as_of", "committed_at", "session_date", "commit_ms", *marker)
        conn.execute(
            f"INSERT INTO intervals ({', '.join(columns)})"
            f" VALUES ({', '.join('?' * len(columns))})",
            [account, as_of, committed_at, commit.session_date, commit_ms, *marker.values()],
        )
        stage("interval")
    stage("committed")
    return CommitResult(True, summary)


# Rows of the interval's cross-sections (quotes, marks) with the interval's key, and a
# position snapshot from `positions_table`, valued in the same statement.
_WITH_KEY = "*, $account AS account_id, $as_of AS as_of"
_POSITION_SNAPSHOT = (
    "$account AS account_id, $as_of AS ts, symbol, quantity, avg_cost, market_price, "
    "quantity * market_price AS market_value, "
    "quantity * (market_price - avg_cost) AS unrealized_pnl, realized_pnl"
)


def _write_orders(conn: duckdb.DuckDBPyConnection, orders: pa.Table, as_of: datetime) -> None:
    """Orders created in this interval are new rows; older ones (resting orders that moved
    or stayed open) are upserted to their latest state, in a second statement only when
    there are any. A different order reusing a client order id violates
    UNIQUE(account_id, client_order_id) and raises."""
    created = orders.column("created_at").to_numpy(zero_copy_only=False)
    older = created < np.datetime64(as_of.replace(tzinfo=None), "us")
    if not older.any():
        insert_frame(conn, "orders", orders)
        return
    insert_frame(conn, "orders", orders.filter(pa.array(~older)))
    upsert = f"ON CONFLICT (account_id, order_id) DO UPDATE SET {_ORDER_UPDATES}"
    insert_frame(conn, "orders", orders.filter(pa.array(older)), conflict=upsert)


def _registered(conn: duckdb.DuckDBPyConnection, account: str) -> bool:
    ((n,),) = conn.execute(
        "SELECT count(*) FROM accounts WHERE account_id = ?", [account]
    ).fetchall()
    return bool(n)


def _count_valid(quotes: pa.Table) -> int:
    if "valid" not in quotes.column_names:
        return quotes.num_rows
    return int(quotes.column("valid").fill_null(False).to_numpy(zero_copy_only=False).sum())


def _check_based_on(
    account: str, as_of: datetime, based_on: datetime | None, latest: datetime | None
) -> None:
    expected = _utc(based_on) if based_on is not None else None
    if (latest is None) != (expected is None) or (latest is not None and _utc(latest) != expected):
        raise StaleState(account, as_of, expected, latest)


def _check_based_on_state(
    conn: duckdb.DuckDBPyConnection, account: str, as_of: datetime, expected: TradingState
) -> None:
    ((current,),) = conn.execute(
        "SELECT arg_max(state, ts) FROM trading_state WHERE account_id = ?", [account]
    ).fetchall()
    found = TradingState(current) if current is not None else TradingState.ACTIVE
    if found is not TradingState(expected):
        raise TradingStateChanged(account, as_of, TradingState(expected), found)


@contextmanager
def _refusing_duplicates(account: str, as_of: datetime) -> Iterator[None]:
    """A key the transaction violated, as the error that says what it means."""
    try:
        yield
    except duckdb.ConstraintException as exc:
        raise DuplicateRows(account, as_of, exc) from exc


class DuplicateRows(PapertradeError):
    """The interval carries a row an earlier interval committed (a fill, an order or an
    alert id the broker handed out before): the broker state it was built on is not the one
    the warehouse holds. Nothing was written."""

    def __init__(self, account_id: str, as_of: datetime, cause: Exception) -> None:
        first_line = str(cause).splitlines()[0]
        super().__init__(
            f"interval {as_of.isoformat()} of {account_id} repeats committed rows "
            f"({first_line}); nothing written"
        )


class StaleState(PapertradeError):
    """The account moved on since this interval loaded its state; nothing was written."""

    def __init__(self, account_id: str, as_of: datetime, expected: Any, found: Any) -> None:
        super().__init__(
            f"interval {as_of.isoformat()} of {account_id} was built on {expected}, "
            f"but the last committed interval is {found}; nothing written"
        )


class TradingStateChanged(PapertradeError):
    """The account's trading state changed (by `papertrade kill-switch`) while the interval
    decided in the one it loaded; nothing was written. The caller decides again in the
    new state: a halt answered at once must not be followed by the fills of an interval
    that was already running."""

    def __init__(
        self, account_id: str, as_of: datetime, expected: TradingState, found: TradingState
    ) -> None:
        super().__init__(
            f"interval {as_of.isoformat()} of {account_id} decided while {expected}, but the "
            f"account is {found} now; nothing written"
        )
        self.found = found


def insert_frame(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    rows: pd.DataFrame | pa.Table,
    columns: Sequence[str] | None = None,
    conflict: str = "",
    *,
    replace: bool = False,
    select: str = "*",
    params: Mapping[str, Any] | None = None,
) -> None:
    """One set-based `INSERT ... BY NAME SELECT {select}` of `rows` (a DataFrame or an
    Arrow table) into `table`; DuckDB finds them by their local name (a replacement scan:
    nothing to register or unregister). `columns` limits the rows to the table's columns;
    `conflict` is an `ON CONFLICT` clause (none by default: the keys refuse a repeat);
    `replace` overwrites rows with the same key instead. Empty rows write nothing."""
    if len(rows) == 0:
        return
    if columns is not None:
        arrow = isinstance(rows, pa.Table)
        keep = [c for c in (rows.column_names if arrow else rows.columns) if c in columns]
        rows = rows.select(keep) if arrow else rows[keep]
    incoming_rows = rows  # noqa: F841 (read by DuckDB's replacement scan)
    verb, tail = ("INSERT OR REPLACE", "") if replace else ("INSERT", conflict)
    conn.execute(f"{verb} INTO {table} BY NAME SELECT {select} FROM incoming_rows {tail}", params)


_ORDER_UPDATES = ", ".join(
    f"{c} = excluded.{c}"
    for c in ORDER_COLUMNS
    if c not in ("account_id", "order_id", "client_order_id", "created_at")
)


def alert_rows(rows: Rows, account_id: str, as_of: datetime) -> list[dict[str, Any]]:
    """Outbox rows with defaults: deterministic `alert_id` `{account}:{as_of}:{kind}:{n}`,
    `created_at` = as_of, status pending, no attempts; a `payload` dict becomes JSON."""
    out, seen = [], Counter[str]()
    for row in loose_rows(rows):
        row = {"created_at": as_of, "status": "pending", "attempts": 0, "level": "info", **row}
        row["account_id"] = account_id
        if "payload" in row and "payload_json" not in row:
            row["payload_json"] = json.dumps(row.pop("payload"), default=str)
        if "alert_id" not in row:
            kind = str(getattr(row["kind"], "value", row["kind"]))
            row["alert_id"] = f"{account_id}:{as_of.isoformat()}:{kind}:{seen[kind]}"
            seen[kind] += 1
        out.append(row)
    return out


def risk_event_rows(rows: Rows, account_id: str, as_of: datetime) -> list[dict[str, Any]]:
    """Risk events with defaults: `ts` = as_of, deterministic `event_id`
    `{account}:{as_of}:risk:{n}`."""
    return [
        {"event_id": f"{account_id}:{as_of.isoformat()}:risk:{n}", "ts": as_of, **row,
         "account_id": account_id}
        for n, row in enumerate(loose_rows(rows))
    ]  # fmt: skip


_QUOTE_FIELDS = tuple(c for c in QUOTE_COLUMNS if c not in ("account_id", "as_of"))


def _quotes(quotes: pd.DataFrame | None) -> pa.Table:
    """The interval's cross-section with the `quotes` table's columns, one row per symbol:
    of a symbol quoted twice, the row validation kept as the candidate (the last)."""
    if quotes is None or quotes.empty:
        return pa.table({"symbol": pa.array([], pa.string())})
    out = quotes.reset_index(drop="symbol" in quotes.columns)
    if "quote_ts" not in out and "timestamp" in out:
        out = out.rename(columns={"timestamp": "quote_ts"})
    if out["symbol"].duplicated().any():
        out = out.drop_duplicates("symbol", keep="last")
    # column by column: half the cost of `pa.Table.from_pandas` on the whole frame
    return pa.table(
        {c: pa.array(out[c], from_pandas=True) for c in _QUOTE_FIELDS if c in out.columns}
    )


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts.isoformat()}: warehouse times must be tz-aware")
    return ts.astimezone(UTC)
