"""Slack down, slow, refusing the token or rate limiting: every interval still commits, the
alerts wait in the outbox, and once Slack answers again each one is posted exactly once, in
the order it was raised."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from paper_broker.market_data.factory import make_provider
from papertrade.alerts.outbox import deliver_pending
from papertrade.alerts.records import mrkdwn_escape
from papertrade.alerts.sender import SendResult, build_sender
from papertrade.interval import run_interval
from papertrade.settings import Settings
from tests.fakes.slack import FakeSlack, Reply
from tests.reliability.support import closed_port_url, ledger_violations, read, settings_for
from tests.support.accounts import TRADING_START, write_config
from warehouse import locking
from warehouse.locking import Backoff

TOKEN = "xoxb-slack-fault-token"
POST = "/api/chat.postMessage"
WAIT = 60.0  # generous: only ever reached when something is wrong
FAULTY = [TRADING_START + timedelta(minutes=i) for i in range(4)]
HEALTHY = [TRADING_START + timedelta(minutes=i) for i in range(4, 6)]
FAULTS = {
    "slow": Reply(delay=1.0),  # past the 0.3 s client timeout
    "invalid_auth": Reply(body={"ok": False, "error": "invalid_auth"}),
    "rate_limited": Reply(
        429, body={"ok": False, "error": "ratelimited"}, headers={"Retry-After": "1"}
    ),
}


@pytest.fixture
def servers() -> Iterator[tuple[FakeSlack, FakeSlack]]:
    faulty, healthy = FakeSlack().start(), FakeSlack().start()
    yield faulty, healthy
    faulty.stop()
    healthy.stop()


def _settings(cfg: Path, base_url: str) -> Settings:
    return settings_for(
        cfg, slack={"base_url": base_url + "/api/", "max_retries": 0, "timeout_seconds": 0.3}
    )


def _run(settings: Settings, when: Any) -> dict[str, Any]:
    sender = build_sender(settings.slack, env={"SLACK_BOT_TOKEN": TOKEN}, retry_backoff_seconds=0)
    provider = make_provider(settings.market_data, settings.universe.symbols)
    return run_interval(settings, when, provider, sender=sender)


@pytest.mark.parametrize("fault", ["down", *FAULTS])
def test_trading_goes_on_and_the_outbox_delivers_once_in_order_when_slack_returns(
    tmp_path: Path, servers: tuple[FakeSlack, FakeSlack], fault: str
) -> None:
    faulty, healthy = servers
    cfg = write_config(tmp_path)
    if fault == "down":
        broken = _settings(cfg, closed_port_url())
    else:
        faulty.script(POST, *[FAULTS[fault]] * 20)
        broken = _settings(cfg, faulty.base)
    fixed = _settings(cfg, healthy.base)
    db = fixed.warehouse.path

    during = [_run(broken, when) for when in FAULTY]
    waiting = read(db, "SELECT count(*) FROM alerts WHERE status = 'pending'")[0][0]
    after = [_run(fixed, when) for when in HEALTHY]

    assert [s["status"] for s in during + after] == ["committed"] * 6
    # the summary's outbox count is the one after delivery
    assert during[-1]["pending_alerts"] == during[-1]["notify"]["pending"] == waiting
    assert after[-1]["pending_alerts"] == after[-1]["notify"]["pending"] == 0
    assert during[-1]["notify"]["error"] and "error" not in after[-1]["notify"]  # says why
    assert waiting > 0, "alerts raised while Slack was away wait in the outbox"
    alerts = read(db, "SELECT text, status, attempts FROM alerts ORDER BY created_at, alert_id")
    posted = [c.params.get("text") for c in healthy.calls(POST)]
    # as Slack shows it: a risk reason's "46340.00 > 20000.00" is posted escaped
    assert posted == [mrkdwn_escape(text) for text, _, _ in alerts], "each alert once, in order"
    assert {status for _, status, _ in alerts} == {"sent"}
    assert alerts[0][2] > 1, "the oldest alert was tried while Slack was away"
    tried = {c.params.get("text") for c in faulty.calls(POST)}
    assert tried <= {mrkdwn_escape(alerts[0][0])}, "a failure stops the queue: nothing overtakes"
    assert ledger_violations(db, "paper", fixed.account.initial_cash) == []


class _HeldSender:
    """Counts every post; the first one blocks until the test lets it return, the way a
    slow Slack keeps one delivery inside its post while another starts."""

    def __init__(self) -> None:
        self.posted: list[str] = []
        self.inside = threading.Event()
        self.release = threading.Event()

    def send(self, alert: Any) -> SendResult:
        self.posted.append(alert.alert_id)
        if len(self.posted) == 1:
            self.inside.set()
            assert self.release.wait(WAIT)
        return SendResult(ok=True, ts=f"1.{len(self.posted)}")


def test_two_deliveries_at_once_post_each_alert_once(tmp_path: Path) -> None:
    # Arrange: an interval committed with its fill alert still pending
    settings = _settings(write_config(tmp_path), closed_port_url())
    db = settings.warehouse.path
    for when in FAULTY[:3]:
        _run(settings, when)  # Slack is away: the alerts wait in the outbox
    waiting = [r[0] for r in read(db, "SELECT alert_id FROM alerts WHERE status = 'pending'")]
    sender = _HeldSender()
    second_waits = threading.Event()

    class SignallingBackoff(Backoff):
        def sleep(self) -> bool:
            second_waits.set()  # the second delivery found the outbox taken
            return super().sleep()

    # Act: one delivery is inside its first post when a second one starts
    first = threading.Thread(target=deliver_pending, args=(db, settings, sender), daemon=True)
    first.start()
    assert sender.inside.wait(WAIT)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(locking, "Backoff", SignallingBackoff)
        second = threading.Thread(target=deliver_pending, args=(db, settings, sender), daemon=True)
        second.start()
        while not second_waits.is_set() and len(sender.posted) == 1 and second.is_alive():
            second_waits.wait(0.01)
    sender.release.set()
    first.join(WAIT)
    second.join(WAIT)

    # Assert
    assert waiting, "the intervals raised alerts"
    assert sorted(sender.posted) == sorted(waiting), "each pending alert posted once"
    assert read(db, "SELECT DISTINCT status FROM alerts") == [("sent",)]
