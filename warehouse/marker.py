"""The interval marker: the `intervals` row that says an interval is committed, and what it
keeps of the broker and of the commit's summary.

Since schema v6 the marker keeps them in typed columns, so users can query cash, day P&L or
the trading state per interval, and so that nothing long is stored per interval: every
checkpoint re-compresses the strings of a table's newest rows (up to about 2,000 of them).
With 650 bytes of JSON per interval, a 200-symbol account's checkpoint took 61 ms by its
fourth trading day, against 51 ms with the columns. `state_json` and `summary_json` now
hold only what has no column (a broker scalar or a summary entry added later, persisted
without a migration), and are NULL otherwise. Markers written before v6 hold the whole
state and summary there; both readers below still understand them.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import duckdb

from paper_broker.records import BrokerState

# BrokerState fields the other tables hold: positions in `positions`, orders (and so the
# client order id index) in `orders`, marks in `marks`.
TABLE_HELD_FIELDS = frozenset({"positions", "open_orders", "client_order_ids", "marks"})
# BrokerState scalars with a column of their own; `account_id` and `as_of` are the marker's
# key (a state whose `as_of` is not its interval's keeps it in `state_json`)
STATE_COLUMNS = ("initial_cash", "cash", "realized_pnl", "commissions", "order_seq", "fill_seq")
_KEYED = frozenset({"account_id", "as_of"})
# what `state_json` does not keep: the rest of a BrokerState has no column
_NOT_IN_STATE_JSON = TABLE_HELD_FIELDS | _KEYED | frozenset(STATE_COLUMNS)
# the counts of a summary that have columns (the older ones came with schema v1)
COUNT_COLUMNS = (
    "n_quotes", "n_valid_quotes", "n_orders", "n_fills", "n_rejections", "n_positions",
    "n_risk_events", "n_alerts", "gap_intervals", "pending_alerts",
)  # fmt: skip
# `IntervalCommit.extra` entries with a column of their own
EXTRA_COLUMNS = ("day_pnl", "gross_exposure", "trading_state")

# what each reader takes from the marker
SUMMARY_COLUMNS = ("status", *COUNT_COLUMNS, *EXTRA_COLUMNS, "summary_json")
STATE_MARKER_COLUMNS = (*STATE_COLUMNS, "open_order_ids", "n_positions", "state_json")


def marker_values(
    as_of: datetime, summary: dict[str, Any], state: BrokerState, extra: dict[str, Any]
) -> dict[str, Any]:
    """The marker's columns (besides the key and the commit's timing) and their values, for
    a commit's summary, state and extra entries."""
    rest: dict[str, Any] = {
        f.name: getattr(state, f.name)
        for f in dataclasses.fields(state)
        if f.name not in _NOT_IN_STATE_JSON
    }
    if state.as_of != as_of:
        rest["as_of"] = state.as_of.isoformat() if state.as_of else None
    unknown = {k: v for k, v in extra.items() if k not in EXTRA_COLUMNS}
    return {
        "status": summary["status"],
        **{c: summary[c] for c in COUNT_COLUMNS},
        **{c: getattr(state, c) for c in STATE_COLUMNS},
        "open_order_ids": [o.order_id for o in state.open_orders],
        **{c: extra.get(c) for c in EXTRA_COLUMNS},
        "state_json": json.dumps(rest) if rest else None,
        "summary_json": json.dumps(unknown, default=str) if unknown else None,
    }


def committed_summary(
    conn: duckdb.DuckDBPyConnection, account_id: str, as_of: datetime
) -> dict[str, Any] | None:
    """What the commit of `(account_id, as_of)` returned, or None when it is not committed.

    Reads the marker by its key, so the cost does not grow with the account's age. Callers
    on the interval's path learn whether it exists from the aggregate over the account's
    intervals they run anyway, and call this only when it does."""
    marker = _marker(conn, account_id, as_of, SUMMARY_COLUMNS)
    if marker is None:
        return None
    if marker["n_positions"] is None:  # written before schema v6: the summary is whole
        return json.loads(marker["summary_json"] or "{}")
    ((cash, equity),) = conn.execute(
        "SELECT cash, equity FROM equity WHERE account_id = ? AND ts = ?", [account_id, as_of]
    ).fetchall()
    return {
        "account_id": account_id,
        "as_of": as_of.isoformat(),
        "status": marker["status"],
        **{c: marker[c] for c in COUNT_COLUMNS},
        "cash": cash,
        "equity": equity,
        **{c: marker[c] for c in EXTRA_COLUMNS if marker[c] is not None},
        **json.loads(marker["summary_json"] or "{}"),
    }


def saved_state(
    conn: duckdb.DuckDBPyConnection, account_id: str, as_of: datetime
) -> dict[str, Any] | None:
    """The broker scalars the marker of `as_of` keeps (`as_of` as ISO text), with
    `open_order_ids` and the number of positions (before schema v6: their symbols); None
    when the marker keeps no state."""
    marker = _marker(conn, account_id, as_of, STATE_MARKER_COLUMNS)
    if marker is None:
        return None
    if marker["n_positions"] is None:  # written before schema v6: the state is whole
        return json.loads(marker["state_json"]) if marker["state_json"] else None
    return {
        **{c: marker[c] for c in STATE_COLUMNS},
        "as_of": as_of.isoformat(),
        "open_order_ids": list(marker["open_order_ids"]),
        "n_positions": marker["n_positions"],
        **json.loads(marker["state_json"] or "{}"),
    }


def _marker(
    conn: duckdb.DuckDBPyConnection, account_id: str, as_of: datetime, columns: tuple[str, ...]
) -> dict[str, Any] | None:
    # only the columns asked for: each one read costs DuckDB a good part of a millisecond
    row = conn.execute(
        f"SELECT {', '.join(columns)} FROM intervals WHERE account_id = ? AND as_of = ?",
        [account_id, as_of],
    ).fetchone()
    return None if row is None else dict(zip(columns, row, strict=True))
