"""Senders and the outbox loop against the fake Slack API on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from papertrade.alerts import (
    AlertStatus,
    build_sender,
    deliver_pending,
    render_fills_alert,
    render_summary_alert,
)
from papertrade.alerts.outbox import DELIVERY_BUSY
from papertrade.alerts.records import AlertRecord
from papertrade.alerts.sender import ConsoleSender, SendResult, SlackBotSender, SlackWebhookSender
from papertrade.settings import Settings, SlackSettings, WarehouseSettings
from tests.fakes.slack import FakeSlack, Reply

TOKEN = "xoxb-test-0000-secret"
T0 = datetime(2024, 3, 5, 15, 30, tzinfo=UTC)
NOW = datetime(2024, 3, 5, 15, 31, tzinfo=UTC)
POST = "/api/chat.postMessage"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    server = FakeSlack().start()
    yield server
    server.stop()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    from warehouse.schema import migrate

    path = tmp_path / "wh.duckdb"
    with duckdb.connect(str(path)) as conn:
        migrate(conn)
    return path


def alerts(n: int) -> list[AlertRecord]:
    """`n` fill alerts a minute apart, each with its own quantity so texts differ."""
    return [
        render_fills_alert(
            "paper",
            T0 + timedelta(minutes=i),
            pd.DataFrame(
                {
                    "symbol": ["AAPL"],
                    "side": ["buy"],
                    "quantity": [10.0 + i],
                    "price": [180.0],
                    "commission": [1.0],
                }
            ),
        )
        for i in range(n)
    ]


def write(db: Path, records: list[AlertRecord]) -> None:
    frame = pd.DataFrame([r.as_row() for r in records])  # noqa: F841 - read by DuckDB below
    with duckdb.connect(str(db)) as conn:
        conn.execute("INSERT INTO alerts BY NAME SELECT * FROM frame")


def rows(db: Path) -> list[tuple]:
    with duckdb.connect(str(db)) as conn:
        return conn.execute(
            "SELECT alert_id, status, attempts, last_error, slack_ts FROM alerts"
            " ORDER BY created_at, alert_id"
        ).fetchall()


def settings_for(fake: FakeSlack, **slack: object) -> Settings:
    base = {"base_url": fake.api_url, "timeout_seconds": 2.0, "max_retries": 1, **slack}
    return Settings(slack=SlackSettings(**base))


def bot(fake: FakeSlack, **kw: object) -> SlackBotSender:
    opts = {"base_url": fake.api_url, "timeout_seconds": 2.0, "max_retries": 1}
    opts.update(kw)
    return SlackBotSender(TOKEN, "#papertrade", retry_backoff_seconds=0.01, **opts)  # type: ignore[arg-type]


def test_post_message_shape_and_marks_sent(fake: FakeSlack, db: Path) -> None:
    records = alerts(2)
    write(db, records)

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert (report.sent, report.failed, report.pending) == (2, 0, 0)
    calls = fake.calls(POST)
    assert len(calls) == 2
    assert calls[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert calls[0].params["channel"] == "#papertrade"
    assert calls[0].params["text"] == records[0].text
    assert calls[0].params["blocks"] == records[0].blocks
    stored = rows(db)
    assert [r[1] for r in stored] == ["sent", "sent"]
    assert [r[4] for r in stored] == ["1700000000.000001", "1700000000.000002"]


def test_an_operators_text_reaches_slack_as_text_not_markup(fake: FakeSlack, db: Path) -> None:
    # a kill-switch reason "<!channel>" pinged everyone in the channel: Slack reads <...>
    # in a message's text and mrkdwn blocks as a mention, a link or a command
    from papertrade.alerts.render import render_kill_switch_alert

    record = render_kill_switch_alert("paper", NOW, "halted", "<!channel> R&D halt", "active")
    write(db, [record])

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert report.sent == 1
    (call,) = fake.calls(POST)
    posted = call.params["text"] + json.dumps(call.params["blocks"])
    assert "<!channel>" not in posted and "&lt;!channel&gt; R&amp;D halt" in posted


def test_rate_limited_then_success_sends_once(fake: FakeSlack, db: Path) -> None:
    write(db, alerts(1))
    fake.script(
        POST, Reply(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "0"})
    )

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)
    again = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert report.sent == 1 and again.sent == 0
    assert len(fake.calls(POST)) == 2  # the 429 and the one accepted post
    assert rows(db)[0][1] == "sent"


def test_rate_limited_past_retries_stays_pending_in_order(fake: FakeSlack, db: Path) -> None:
    write(db, alerts(3))
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"})
    fake.script(POST, limited, limited)

    report = deliver_pending(db, settings_for(fake), sender=bot(fake, max_retries=1), now=NOW)

    assert (report.sent, report.failed, report.pending) == (0, 1, 3)
    first, *rest = rows(db)
    assert first[1:3] == ("pending", 1) and "ratelimited" in first[3]
    assert all(r[1:3] == ("pending", 0) for r in rest)  # later rows wait their turn

    retry = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert retry.sent == 3
    texts = [c.params["text"] for c in fake.calls(POST)]
    assert len(texts) == 5  # 2 refused + 3 accepted
    assert len(set(texts[2:])) == 3  # each accepted once


def test_a_retry_after_past_the_delivery_time_leaves_the_rest_pending_at_once(
    fake: FakeSlack, db: Path
) -> None:
    """Slack asked for 30 s: slack_sdk slept through it inside the interval's notify (60 s
    with two retries), and the deployment cancels the next interval while one still runs.
    A wait longer than `max_delivery_seconds` (20 s) is left to a later delivery."""
    write(db, alerts(3))
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "30"})
    fake.script(POST, Reply(), limited)
    started = time.monotonic()

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert time.monotonic() - started < 5.0
    assert (report.sent, report.failed, report.pending) == (1, 1, 2)
    stored = rows(db)
    assert [r[1:3] for r in stored] == [("sent", 1), ("pending", 1), ("pending", 0)]
    assert "ratelimited" in stored[1][3] and "30 s" in stored[1][3]
    later = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)
    assert later.sent == 2
    posted = [c.params["text"] for c in fake.calls(POST)]
    texts = [r.text for r in alerts(3)]
    assert posted == [texts[0], texts[1], texts[1], texts[2]]  # the 429 once, each sent once


def test_a_backlog_is_delivered_over_several_runs_within_the_delivery_time(
    fake: FakeSlack, db: Path
) -> None:
    """After an outage the outbox holds a backlog, and Slack takes about a second per post
    to a channel: one delivery posts for `max_delivery_seconds`, the next goes on from
    there, in order and each alert once."""
    records = alerts(8)
    write(db, records)
    fake.script(POST, *[Reply(body={"ok": True, "ts": f"1.{i}"}, delay=0.25) for i in range(8)])
    started = time.monotonic()

    first = deliver_pending(
        db, settings_for(fake, max_delivery_seconds=0.6), sender=bot(fake), now=NOW
    )

    assert time.monotonic() - started < 2.0
    assert first.failed == 0 and first.error is None
    assert first.sent in (2, 3) and first.pending == 8 - first.sent
    assert {r[2] for r in rows(db)[first.sent :]} == {0}  # not tried, not counted as failed
    second = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)
    assert second.sent == 8 - first.sent and second.pending == 0
    assert [c.params["text"] for c in fake.calls(POST)] == [r.text for r in records]


def test_a_short_retry_after_is_waited_out_within_the_delivery(fake: FakeSlack, db: Path) -> None:
    write(db, alerts(2))
    limited = Reply(429, {"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"})
    fake.script(POST, Reply(), limited)

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert (report.sent, report.pending) == (2, 0)
    assert len(fake.calls(POST)) == 3


def test_invalid_auth_leaves_outbox_pending_and_hides_token(
    fake: FakeSlack, db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(db, alerts(2))
    fake.script(POST, Reply(200, {"ok": False, "error": "invalid_auth"}))
    caplog.set_level(logging.DEBUG)

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert (report.sent, report.failed, report.pending) == (0, 1, 2)
    assert rows(db)[0][1:4] == ("pending", 1, "slack error invalid_auth: check SLACK_BOT_TOKEN")
    with duckdb.connect(str(db)) as conn:
        dump = json.dumps(conn.execute("SELECT * FROM alerts").fetchall(), default=str)
    assert TOKEN not in dump
    assert TOKEN not in caplog.text


def test_message_rejected_for_content_is_failed_and_queue_moves_on(
    fake: FakeSlack, db: Path
) -> None:
    write(db, alerts(2))
    fake.script(POST, Reply(200, {"ok": False, "error": "invalid_blocks"}))

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert (report.sent, report.failed, report.pending) == (1, 1, 0)
    assert [r[1] for r in rows(db)] == ["failed", "sent"]


def test_connection_refused_stays_pending(db: Path) -> None:
    server = FakeSlack()
    dead_url = server.api_url
    server.stop()  # never started and now closed: nothing listens on that port
    write(db, alerts(1))
    sender = SlackBotSender(
        TOKEN, "#c", base_url=dead_url, timeout_seconds=1.0, max_retries=1,
        retry_backoff_seconds=0.01,
    )  # fmt: skip

    report = deliver_pending(db, Settings(), sender=sender, now=NOW)

    assert (report.sent, report.pending) == (0, 1)
    status, attempts, error = rows(db)[0][1:4]
    assert (status, attempts) == ("pending", 1)
    assert TOKEN not in error and "Connection refused" in error


def test_slow_response_past_timeout_stays_pending(fake: FakeSlack, db: Path) -> None:
    write(db, alerts(1))
    fake.script(POST, Reply(200, {"ok": True, "ts": "1.1", "channel": "C1"}, delay=1.5))

    report = deliver_pending(db, settings_for(fake), sender=bot(fake, timeout_seconds=0.5), now=NOW)

    assert (report.sent, report.pending) == (0, 1)
    assert rows(db)[0][1] == "pending"


def test_webhook_path(fake: FakeSlack, db: Path) -> None:
    records = alerts(1)
    write(db, records)
    env = {"SLACK_WEBHOOK_URL": fake.webhook_url}
    sender = build_sender(SlackSettings(timeout_seconds=2.0), env, retry_backoff_seconds=0.01)

    report = deliver_pending(db, Settings(), sender=sender, now=NOW)

    assert isinstance(sender, SlackWebhookSender)
    assert report.sent == 1
    (call,) = fake.calls("/hooks/T000/B000/secretwebhookpath")
    assert call.params["text"] == records[0].text and call.params["blocks"] == records[0].blocks
    assert rows(db)[0][1] == "sent"


def test_a_webhook_retried_after_a_refused_connection_keeps_its_url_out_of_the_log(
    db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeSlack()
    dead_url = server.webhook_url
    server.stop()  # nothing listens there
    write(db, alerts(1))
    sender = SlackWebhookSender(
        dead_url, timeout_seconds=1.0, max_retries=1, retry_backoff_seconds=0.01
    )
    caplog.set_level(logging.DEBUG)

    report = deliver_pending(db, Settings(), sender=sender, now=NOW)

    assert report.pending == 1
    assert "retry" in caplog.text  # slack_sdk said it retried, with the URL scrubbed
    assert "secretwebhookpath" not in caplog.text


def test_webhook_rate_limit_response_is_not_success(fake: FakeSlack) -> None:
    path = "/hooks/T000/B000/secretwebhookpath"
    fake.script(path, *[Reply(429, "rate_limited", headers={"Retry-After": "0"})] * 2)
    sender = SlackWebhookSender(fake.webhook_url, max_retries=1, retry_backoff_seconds=0.01)

    result = sender.send(alerts(1)[0])

    assert not result.ok and result.retryable
    assert "secretwebhookpath" not in (result.error or "")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, "invalid_token"),
        (404, "no_service"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ],
)
def test_a_webhook_refused_for_its_url_names_the_variable_to_fix(
    fake: FakeSlack, db: Path, status: int, body: str
) -> None:
    """A bot token's invalid_auth says "check SLACK_BOT_TOKEN"; a webhook's 403
    invalid_token said only "webhook HTTP 403: invalid_token", naming nothing to fix."""
    write(db, alerts(2))
    fake.script("/hooks/T000/B000/secretwebhookpath", Reply(status, body))
    sender = SlackWebhookSender(fake.webhook_url, max_retries=0)

    report = deliver_pending(db, Settings(), sender=sender, now=NOW)

    assert (report.sent, report.pending) == (0, 2)
    error = rows(db)[0][3]
    assert error.startswith(f"webhook HTTP {status}: {body}: ") and "SLACK_WEBHOOK_URL" in error
    assert "secretwebhookpath" not in error and "\n" not in error


def test_a_message_a_webhook_refuses_is_failed_and_the_queue_moves_on(
    fake: FakeSlack, db: Path
) -> None:
    """Slack answers a payload a webhook cannot take with 400 invalid_payload: the message
    will never be accepted, and left pending it held every later alert back for good."""
    write(db, alerts(2))
    fake.script("/hooks/T000/B000/secretwebhookpath", Reply(400, "invalid_payload"))
    sender = SlackWebhookSender(fake.webhook_url, max_retries=0)

    report = deliver_pending(db, Settings(), sender=sender, now=NOW)

    assert (report.sent, report.failed, report.pending) == (1, 1, 0)
    assert [r[1] for r in rows(db)] == ["failed", "sent"]


def test_no_token_prints_and_marks_printed(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = alerts(2)
    write(db, records)
    sender = build_sender(SlackSettings(), env={})

    report = deliver_pending(db, Settings(), sender=sender, now=NOW)

    assert isinstance(sender, ConsoleSender)
    assert (report.printed, report.sent, report.pending) == (2, 0, 0)
    assert records[0].title in capsys.readouterr().err  # stdout is the command's own
    assert [r[1] for r in rows(db)] == [AlertStatus.PRINTED, AlertStatus.PRINTED]


def test_summary_uploads_chart_with_files_upload_v2(
    fake: FakeSlack, db: Path, tmp_path: Path
) -> None:
    chart = tmp_path / "equity.png"
    chart.write_bytes(b"\x89PNG\r\n\x1a\nfake-png")
    metrics = {"end_equity": 101_000.0, "total_return": 0.01, "sharpe": None}
    write(db, [render_summary_alert("paper", T0, metrics, [], chart)])

    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert report.sent == 1
    (get_url,) = fake.calls("/api/files.getUploadURLExternal")
    assert get_url.params["filename"] == "equity.png"
    assert list(fake.uploads.values()) == [chart.read_bytes()]
    (complete,) = fake.calls("/api/files.completeUploadExternal")
    assert complete.params["channel_id"] == "C0FAKE"
    assert complete.params["thread_ts"] == rows(db)[0][4]
    assert rows(db)[0][3] is None  # no upload error noted


def test_failed_chart_upload_keeps_the_message_sent(
    fake: FakeSlack, db: Path, tmp_path: Path
) -> None:
    chart = tmp_path / "equity.png"
    chart.write_bytes(b"png")
    fake.script(
        "/api/files.getUploadURLExternal", Reply(200, {"ok": False, "error": "not_allowed"})
    )
    write(db, [render_summary_alert("paper", T0, {}, [], chart)])

    deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    status, _, error = rows(db)[0][1:4]
    assert status == "sent" and "chart upload failed" in error
    assert len(fake.calls(POST)) == 1


def test_build_sender_prefers_token(fake: FakeSlack) -> None:
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_WEBHOOK_URL": fake.webhook_url}

    sender = build_sender(SlackSettings(base_url=fake.api_url), env)

    assert isinstance(sender, SlackBotSender)


def test_a_send_whose_mark_fails_stops_the_queue_and_goes_again(fake: FakeSlack, db: Path) -> None:
    """At least once: Slack accepted the first alert, but its row could not be marked (the
    file stayed busy). Delivery stops there, so no later alert goes out unrecorded, and the
    next delivery posts that alert again; Slack cannot recognise the repeat."""
    from papertrade.alerts import deliver
    from papertrade.alerts.outbox import DuckDBOutbox
    from warehouse.errors import WarehouseBusy

    records = alerts(2)
    write(db, records)

    class BusyOnce(DuckDBOutbox):
        failed = False

        def mark(self, *args: object, **kwargs: object) -> None:
            if not self.failed:
                self.failed = True
                raise WarehouseBusy(db, 0.0, "a reader holds the file")
            super().mark(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.raises(WarehouseBusy):
        deliver(BusyOnce(db), bot(fake), now=NOW)
    after_failure = [r[1] for r in rows(db)]
    report = deliver_pending(db, settings_for(fake), sender=bot(fake), now=NOW)

    assert after_failure == ["pending", "pending"]
    assert report.sent == 2
    posted = [c.params["text"] for c in fake.calls(POST)]
    assert posted == [records[0].text, records[0].text, records[1].text]
    assert [r[1] for r in rows(db)] == ["sent", "sent"]


def test_an_interval_delivers_only_its_own_accounts_alerts(fake: FakeSlack, db: Path) -> None:
    """Two accounts in one warehouse: alpha's notify must not post beta's alerts to alpha's
    channel (nor mark them done), else beta's own Slack never sees them."""
    from papertrade.interval import notify
    from papertrade.settings import AccountSettings

    alpha = alerts(1)
    beta = [
        render_fills_alert(
            "beta",
            T0 - timedelta(minutes=1),  # older: first in the outbox's order
            pd.DataFrame(
                {"symbol": ["MSFT"], "side": ["sell"], "quantity": [5.0], "price": [400.0],
                 "commission": [1.0]}
            ),
        )
    ]  # fmt: skip
    write(db, alpha + beta)
    settings = settings_for(fake).model_copy(
        update={"account": AccountSettings(id="paper"), "warehouse": WarehouseSettings(path=db)}
    )

    delivery = notify(settings, bot(fake), pending=1)

    assert (delivery["sent"], delivery["pending"]) == (1, 0)
    assert [c.params["text"] for c in fake.calls(POST)] == [alpha[0].text]
    with duckdb.connect(str(db)) as conn:
        status = dict(conn.execute("SELECT account_id, status FROM alerts").fetchall())
    assert status == {"paper": "sent", "beta": "pending"}


class HeldSender:
    """A sender whose first send waits until the test lets it go: a delivery in progress,
    as a slow Slack makes one, without timing anything."""

    def __init__(self) -> None:
        import threading

        self.sending = threading.Event()
        self.release = threading.Event()

    def send(self, alert: AlertRecord) -> SendResult:
        self.sending.set()
        self.release.wait()
        return SendResult(ok=True, printed=True)


def _in_progress(db: Path, account_id: str | None) -> tuple[HeldSender, object]:
    import threading

    held = HeldSender()
    thread = threading.Thread(
        target=deliver_pending,
        args=(db, Settings(warehouse=WarehouseSettings(path=db)), held),
        kwargs={"account_id": account_id, "now": NOW},
    )
    thread.start()
    assert held.sending.wait(timeout=30)
    return held, thread


def _fills(account: str, minutes: int) -> AlertRecord:
    frame = pd.DataFrame(
        {"symbol": ["MSFT"], "side": ["buy"], "quantity": [1.0 + minutes], "price": [400.0],
         "commission": [1.0]}
    )  # fmt: skip
    return render_fills_alert(account, T0 + timedelta(minutes=minutes), frame)


def test_one_accounts_delivery_in_progress_does_not_hold_up_anothers(
    fake: FakeSlack, db: Path
) -> None:
    # one outbox lock per file: beta waited for alpha's slow Slack, then skipped delivery
    write(db, [_fills("alpha", 0), _fills("beta", 1)])
    held, thread = _in_progress(db, "alpha")
    try:
        beta = Settings(warehouse=WarehouseSettings(path=db, lock_timeout_seconds=0))
        report = deliver_pending(db, beta, sender=bot(fake), account_id="beta", now=NOW)
    finally:
        held.release.set()
        thread.join()  # type: ignore[attr-defined]

    assert (report.sent, report.pending, report.error) == (1, 0, None)
    assert [r[1] for r in rows(db)] == ["printed", "sent"]


@pytest.mark.parametrize("second", ["alpha", None])
def test_a_second_delivery_of_the_same_alerts_waits_its_turn(
    fake: FakeSlack, db: Path, second: str | None
) -> None:
    write(db, [_fills("alpha", 0)])
    held, thread = _in_progress(db, "alpha")
    try:
        busy = Settings(warehouse=WarehouseSettings(path=db, lock_timeout_seconds=0))
        report = deliver_pending(db, busy, sender=bot(fake), account_id=second, now=NOW)
    finally:
        held.release.set()
        thread.join()  # type: ignore[attr-defined]

    assert (report.sent, report.error) == (0, DELIVERY_BUSY)
    assert fake.calls(POST) == []
    assert [r[1] for r in rows(db)] == ["printed"]
