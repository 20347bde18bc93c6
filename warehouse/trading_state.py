"""The kill switch as data: `trading_state` rows, the latest per account being current.

No row means ACTIVE. Every change is also a `risk_events` row and a `kill_switch` alert in
the outbox, written in the same transaction, so a state change is never silent.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from paper_broker.enums import TradingState
from warehouse.transaction import transaction

_LEVEL = {
    TradingState.ACTIVE: "info",
    TradingState.REDUCING: "warning",
    TradingState.HALTED: "critical",
}


@dataclass(frozen=True, slots=True)
class TradingStateRow:
    state: TradingState
    reason: str | None = None
    source: str | None = None
    ts: datetime | None = None


def get_trading_state(
    conn: duckdb.DuckDBPyConnection, account_id: str, before: datetime | None = None
) -> TradingStateRow:
    """The account's current state: its latest row, or ACTIVE with no row. With `before`,
    the state it was in just before that time (its latest row stamped earlier)."""
    row = conn.execute(
        "SELECT state, reason, source, ts FROM trading_state WHERE account_id = ? "
        "AND ts < coalesce(?::TIMESTAMPTZ, 'infinity') ORDER BY ts DESC LIMIT 1",
        [account_id, before],
    ).fetchone()
    if row is None:
        return TradingStateRow(TradingState.ACTIVE)
    return TradingStateRow(TradingState(row[0]), row[1], row[2], row[3].astimezone(UTC))


def set_trading_state(
    conn: duckdb.DuckDBPyConnection,
    account_id: str,
    state: TradingState,
    reason: str,
    source: str,
    ts: datetime,
) -> TradingStateRow:
    """Record a state change at `ts` (tz-aware) by `source` ('guard' or 'manual').

    Writes the `trading_state` row, a `risk_events` row (rule `kill_switch`) and a pending
    `kill_switch` alert in one transaction; returns the previous state. Two changes at the
    same `ts` collide on the primary key: the second raises `duckdb.ConstraintException`
    and writes nothing."""
    if ts.tzinfo is None:
        raise ValueError("set_trading_state needs a tz-aware ts")
    ts = ts.astimezone(UTC)
    new = TradingState(state)
    with transaction(conn):
        before = get_trading_state(conn, account_id)
        stamp = ts.isoformat()
        conn.execute(
            "INSERT INTO trading_state VALUES (?, ?, ?, ?, ?)",
            [account_id, ts, new.value, reason, source],
        )
        conn.execute(
            "INSERT INTO risk_events (account_id, event_id, ts, rule, reason, detail, "
            "state_before, state_after) VALUES (?, ?, ?, 'kill_switch', ?, ?, ?, ?)",
            [
                account_id,
                f"{account_id}:{stamp}:kill_switch",
                ts,
                "KILL_SWITCH",
                f"{source}: {reason}",
                before.state.value,
                new.value,
            ],
        )
        conn.execute(
            "INSERT INTO alerts (account_id, alert_id, created_at, kind, level, title, text, "
            "payload_json, status, attempts) "
            "VALUES (?, ?, ?, 'kill_switch', ?, ?, ?, ?, 'pending', 0)",
            [
                account_id,
                f"{account_id}:{stamp}:kill_switch:0",
                ts,
                _LEVEL[new],
                f"Trading {new.value.upper()} on {account_id}",
                # the text is what Slack and the console show: it names the account, as
                # accounts sharing a channel cannot be told apart otherwise
                f"Trading {new.value.upper()} on {account_id}: "
                f"{before.state.value} -> {new.value} by {source}: {reason}",
                json.dumps({"before": before.state.value, "after": new.value, "source": source}),
            ],
        )
    return before
