"""The delivery loop over the `alerts` outbox table.

Alerts are written as `pending` rows in the interval's commit; `deliver_pending` runs after
it. Rows go out in `(created_at, alert_id)` order and each one is marked right after its own
send, in its own short write transaction, so a crash between two sends never re-sends one
already marked. Delivery is at least once: a crash (or a mark that cannot be written, which
stops the run) between Slack accepting a message and its mark sends that one message again
next time, as Slack has no idempotency key to tell a repeat. The first failure stops the
run (later rows wait, order is kept) and leaves
that row pending with `attempts + 1` and the scrubbed `last_error`; a run also ends when its
time is up (`DeliveryLimits`: Slack's rate limit and a backlog must not hold up the
interval), leaving the rest pending untouched for the next one; a message Slack rejects
for its content (`invalid_blocks`, `msg_too_long`, ...) is marked `failed` instead so it
cannot block the queue. With no Slack configured, rows are printed and marked `printed`.
`deliver_pending` lets one process at a time deliver an account's alerts (an exclusive lock
on `<db>.<account>.outbox.lock`, under a shared one on `<db>.outbox.lock`, which a delivery
of every account's alerts takes exclusively): two runs of one interval finish together, and
each would otherwise post the rows the other has not marked yet. Accounts sharing the file
deliver side by side, so one account's slow or failing Slack does not hold up another's.

The table belongs to the warehouse schema; this module reads and updates it, creating
nothing. Status meaning here: `pending` = still to deliver (including after a transient
failure), `failed` = set aside for good. `Outbox` is the seam: `DuckDBOutbox` is the
warehouse file, tests may pass another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from papertrade.alerts.records import AlertKind, AlertRecord, AlertStatus
from papertrade.alerts.sender import Sender, SendResult, build_sender
from papertrade.settings import AlertLevel, Settings, SlackSettings

log = logging.getLogger("papertrade.alerts")


@dataclass(frozen=True, slots=True)
class DeliveryReport:
    """Counts of one delivery run; `pending` is what is still waiting afterwards."""

    sent: int = 0
    printed: int = 0
    failed: int = 0
    pending: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    """How long one delivery may post, and how often it waits out a rate limit.

    A delivery runs inside the interval's flow run (and the kill-switch command), and the
    interval deployment cancels the next run while one still runs: Slack's rate limit (about
    one post a second per channel, with a `Retry-After` of any length past it) or a backlog
    after an outage must not hold it up. No post starts after `seconds`, and a 429 is waited
    out, at most `rate_limit_retries` times per alert, only when its `Retry-After` ends
    within them; otherwise the alert stays pending for the next delivery. `clock` (seconds,
    monotonic) and `sleep` are the shell's, injectable for tests."""

    seconds: float = 20.0
    rate_limit_retries: int = 2
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep

    @classmethod
    def from_settings(cls, slack: SlackSettings) -> DeliveryLimits:
        """`[slack] max_delivery_seconds` and `max_retries`."""
        return cls(seconds=slack.max_delivery_seconds, rate_limit_retries=slack.max_retries)


class Outbox(Protocol):
    def pending(
        self, account_id: str | None = None, limit: int | None = None
    ) -> list[AlertRecord]: ...

    def mark(
        self,
        account_id: str,
        alert_id: str,
        status: AlertStatus,
        *,
        slack_ts: str | None = None,
        error: str | None = None,
        now: datetime,
    ) -> None: ...

    def count_pending(self, account_id: str | None = None) -> int: ...


class DuckDBOutbox:
    """The `alerts` table of a warehouse file. Every call opens and closes its own
    connection, so delivery never holds the file between sends (the next interval's commit
    may need it)."""

    def __init__(self, db_path: Path | str, lock_timeout_seconds: float = 30.0) -> None:
        self.db_path = Path(db_path)
        self.lock_timeout_seconds = lock_timeout_seconds

    @contextmanager
    def _connect(self) -> Iterator[Any]:
        # The warehouse's lock-aware writer: waits its turn behind readers and the interval
        # commit instead of failing on DuckDB's file lock. The schema is not touched.
        from warehouse.connection import connect

        with connect(self.db_path, timeout=self.lock_timeout_seconds, migrate=False) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            yield conn

    def pending(self, account_id: str | None = None, limit: int | None = None) -> list[AlertRecord]:
        sql = (
            "SELECT account_id, alert_id, created_at, kind, level, title, text, payload_json,"
            " attempts FROM alerts WHERE status = 'pending'"
            + (" AND account_id = ?" if account_id is not None else "")
            + " ORDER BY created_at, alert_id"
            + (" LIMIT ?" if limit is not None else "")
        )
        params: list[Any] = [p for p in (account_id, limit) if p is not None]
        with self._connect() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [
            AlertRecord(
                account_id=r[0],
                alert_id=r[1],
                created_at=r[2].astimezone(UTC),
                kind=AlertKind(r[3]),
                level=AlertLevel(r[4]),
                title=r[5] or "",
                text=r[6] or "",
                payload_json=r[7] or "{}",
                attempts=int(r[8] or 0),
            )
            for r in rows
        ]

    def mark(
        self,
        account_id: str,
        alert_id: str,
        status: AlertStatus,
        *,
        slack_ts: str | None = None,
        error: str | None = None,
        now: datetime,
    ) -> None:
        delivered = status in (AlertStatus.SENT, AlertStatus.PRINTED)
        with self._connect() as conn:
            # Only a pending row moves: a row another delivery already marked stays as is.
            conn.execute(
                """
                UPDATE alerts SET
                    status = ?,
                    attempts = attempts + 1,
                    last_error = ?,
                    sent_at = CASE WHEN ? THEN ?::TIMESTAMPTZ ELSE sent_at END,
                    slack_ts = coalesce(?, slack_ts)
                WHERE account_id = ? AND alert_id = ? AND status = 'pending'
                """,
                [str(status), error, delivered, now, slack_ts, account_id, alert_id],
            )

    def count_pending(self, account_id: str | None = None) -> int:
        sql = "SELECT count(*) FROM alerts WHERE status = 'pending'"
        params: list[Any] = []
        if account_id is not None:
            sql += " AND account_id = ?"
            params.append(account_id)
        with self._connect() as conn:
            row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


def deliver(
    outbox: Outbox,
    sender: Sender,
    *,
    now: datetime,
    account_id: str | None = None,
    limit: int = 100,
    limits: DeliveryLimits | None = None,
) -> DeliveryReport:
    """Send up to `limit` pending alerts in order, marking each right after its send.
    Stops at the first failure, or when `limits` (default `DeliveryLimits()`) says the time
    is up. Never raises for Slack trouble; database errors propagate."""
    limits = limits or DeliveryLimits()
    deadline = limits.clock() + limits.seconds
    sent = printed = failed = rejected = 0
    error = None
    batch = outbox.pending(account_id, limit)
    for n, alert in enumerate(batch):
        if n and limits.clock() >= deadline:
            log.info(
                "alert delivery stopped after %g s; %d alerts wait for the next",
                limits.seconds, len(batch) - n,
            )  # fmt: skip
            break
        result = _send_within(sender, alert, limits, deadline)
        if result.ok:
            status = AlertStatus.PRINTED if result.printed else AlertStatus.SENT
            outbox.mark(
                alert.account_id, alert.alert_id, status,
                slack_ts=result.ts, error=result.error, now=now,
            )  # fmt: skip
            printed += status is AlertStatus.PRINTED
            sent += status is AlertStatus.SENT
            continue
        failed += 1
        error = result.error
        if result.message_rejected:
            outbox.mark(
                alert.account_id, alert.alert_id, AlertStatus.FAILED, error=result.error, now=now
            )
            log.warning("alert %s rejected by Slack: %s", alert.alert_id, result.error)
            rejected += 1
            continue
        _keep_pending(outbox, alert, result, now)
        log.warning("alert delivery paused at %s: %s", alert.alert_id, result.error)
        break
    # a full batch may have more behind it; otherwise what is left is known without a query
    left = (
        outbox.count_pending(account_id)
        if len(batch) >= limit
        else len(batch) - sent - printed - rejected
    )
    return DeliveryReport(
        sent=sent, printed=printed, failed=failed, pending=left, error=error
    )  # fmt: skip


def deliver_pending(
    db_path: Path | str,
    settings: Settings,
    sender: Sender | None = None,
    limit: int = 100,
    *,
    account_id: str | None = None,
    now: datetime | None = None,
) -> DeliveryReport:
    """Deliver the pending alerts of `account_id` (default: every account's) with `sender`
    (default: `build_sender` from `[slack]` and the environment). `now` stamps `sent_at`;
    the shell's clock by default."""
    from warehouse.locking import Backoff, exclusive_lock

    chosen = sender if sender is not None else build_sender(settings.slack)
    stamp = now if now is not None else datetime.now(UTC)
    timeout = settings.warehouse.lock_timeout_seconds
    outbox = DuckDBOutbox(db_path, timeout)
    # One delivery per account at a time: a row is read as pending, posted, then marked,
    # so two deliveries that overlap (an interval's and the retry of it, or the kill
    # switch's) would both post it. The one that waits reads the outbox afresh once its
    # turn comes, and finds the rows the other marked.
    db, backoff = Path(db_path), Backoff(timeout)
    with ExitStack() as held:
        whole = held.enter_context(
            exclusive_lock(delivery_lock_path(db), db, backoff, shared=account_id is not None)
        )
        turn = whole and (
            account_id is None
            or held.enter_context(exclusive_lock(delivery_lock_path(db, account_id), db, backoff))
        )
        if not turn:
            log.warning("alert delivery skipped: another delivery still runs after %g s", timeout)
            return DeliveryReport(
                pending=outbox.count_pending(account_id), error=DELIVERY_BUSY
            )  # fmt: skip
        limits = DeliveryLimits.from_settings(settings.slack)
        return deliver(
            outbox, chosen, now=stamp, account_id=account_id, limit=limit, limits=limits
        )  # fmt: skip


DELIVERY_BUSY = "another delivery of this outbox is in progress"


def delivery_lock_path(db_path: Path, account_id: str | None = None) -> Path:
    """`<db>.outbox.lock` (shared by each account's delivery, exclusive for all accounts'),
    or with `account_id` `<db>.<account>.outbox.lock`, held by the process delivering that
    account's alerts."""
    from warehouse.locking import account_lock_path

    if account_id is None:
        return db_path.with_name(db_path.name + ".outbox.lock")
    return account_lock_path(db_path, account_id, "outbox")


def _send_within(
    sender: Sender, alert: AlertRecord, limits: DeliveryLimits, deadline: float
) -> SendResult:
    """`alert` sent; a rate limit is waited out and the post repeated when Slack's
    `Retry-After` ends before `deadline`, at most `limits.rate_limit_retries` times. A longer
    wait is the next delivery's: the result is the 429."""
    result = _send(sender, alert)
    for _ in range(limits.rate_limit_retries):
        wait = result.retry_after
        if result.ok or wait is None or limits.clock() + wait > deadline:
            break
        limits.sleep(wait)
        result = _send(sender, alert)
    return result


def _send(sender: Sender, alert: AlertRecord) -> SendResult:
    try:
        return sender.send(alert)
    except Exception as exc:  # a sender bug must not stop trading; keep the row pending
        return SendResult(ok=False, error=f"{type(exc).__name__}", retryable=True)


def _keep_pending(outbox: Outbox, alert: AlertRecord, result: SendResult, now: datetime) -> None:
    # mark(PENDING) bumps attempts and records the error while leaving the row in the queue.
    outbox.mark(alert.account_id, alert.alert_id, AlertStatus.PENDING, error=result.error, now=now)
