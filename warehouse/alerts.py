"""The alert outbox: rows are written with the interval that raised them (status pending)
and a sender marks each one after trying to deliver it, so a failed post is retried later
rather than lost."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pandas as pd

STATUSES = ("pending", "sent", "printed", "failed")


def pending_alerts(conn: duckdb.DuckDBPyConnection, account_id: str | None = None) -> pd.DataFrame:
    """Alerts still to deliver (pending, or failed on a previous attempt), oldest first
    (created_at, alert_id); all accounts when `account_id` is None."""
    return conn.execute(
        "SELECT * FROM alerts WHERE status IN ('pending', 'failed') "
        "AND (? IS NULL OR account_id = ?) ORDER BY created_at, alert_id",
        [account_id, account_id],
    ).df()


def mark_alert(
    conn: duckdb.DuckDBPyConnection,
    account_id: str,
    alert_id: str,
    status: str,
    slack_ts: str | None = None,
    error: str | None = None,
    now: datetime | None = None,
) -> None:
    """Record one delivery attempt: `status` ('sent', 'printed' or 'failed'), attempts + 1,
    `sent_at` = `now` (default: the current time) on success, the error text on failure.
    Raises `KeyError` for an unknown alert, `ValueError` for an unknown status."""
    if status not in STATUSES:
        raise ValueError(f"alert status must be one of {STATUSES}, got {status!r}")
    at = (now or datetime.now(UTC)).astimezone(UTC)
    updated = conn.execute(
        "UPDATE alerts SET status = ?, attempts = attempts + 1, "
        "slack_ts = coalesce(?, slack_ts), last_error = ?, "
        "sent_at = CASE WHEN ? IN ('sent', 'printed') THEN ?::TIMESTAMPTZ ELSE sent_at END "
        "WHERE account_id = ? AND alert_id = ? RETURNING alert_id",
        [status, slack_ts, error, status, at, account_id, alert_id],
    ).fetchall()
    if not updated:
        raise KeyError(f"no alert {alert_id!r} for account {account_id!r}")
