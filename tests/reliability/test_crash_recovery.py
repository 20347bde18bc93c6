"""A process killed (SIGKILL) at every step of the interval; the next run reconciles.

Each test trades a few intervals, lets a child process die at one point of the next, runs
that interval again and one more, and compares the warehouse with a reference account that
traded the same intervals without a crash: the same fills, once each; the ledger reconciles;
every alert reaches Slack exactly once."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from paper_broker.market_data.factory import make_provider
from papertrade.alerts.records import mrkdwn_escape
from papertrade.alerts.sender import build_sender
from papertrade.interval import run_interval
from papertrade.settings import Settings
from tests.fakes.slack import FakeSlack
from tests.reliability.crash_child import CRASH_POINTS
from tests.reliability.support import (
    fills_signature,
    interval_times,
    ledger_violations,
    read,
    settings_for,
)
from tests.support.accounts import TRADING_START, write_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-crash-test-token"
TIMES = [TRADING_START + timedelta(minutes=i) for i in range(4)]
CRASH_AT = 2  # index in TIMES of the interval whose run is killed


@pytest.fixture
def slack():
    fake = FakeSlack().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The account trading every interval without a crash (alerts printed nowhere)."""
    _, settings = _account(tmp_path_factory.mktemp("reference"), "http://127.0.0.1:9/")
    quiet = build_sender(settings.slack, env={})
    quiet._print = lambda line: None  # type: ignore[attr-defined]
    for when in TIMES:
        _run(settings, when, quiet)
    return settings.warehouse.path


def _account(tmp_path: Path, slack_url: str) -> tuple[Path, Settings]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = write_config(tmp_path, extra=f'\n[slack]\nbase_url = "{slack_url}"\nmax_retries = 0\n')
    return cfg, settings_for(cfg)


def _run(settings: Settings, when, sender) -> dict:  # type: ignore[no-untyped-def]
    provider = make_provider(settings.market_data, settings.universe.symbols)
    return run_interval(settings, when, provider, sender=sender)


def _crash_child(cfg: Path, point: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLACK_BOT_TOKEN": TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "tests.reliability.crash_child", str(cfg),
         TIMES[CRASH_AT].isoformat(), point],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_killed_interval_reconciles_on_the_next_run(
    tmp_path: Path, slack: FakeSlack, reference_db: Path, point: str
) -> None:
    # Arrange: the account trades up to the interval that will crash
    cfg, settings = _account(tmp_path / "crashed", slack.api_url)
    sender = build_sender(settings.slack, env={"SLACK_BOT_TOKEN": TOKEN}, retry_backoff_seconds=0)
    for when in TIMES[:CRASH_AT]:
        _run(settings, when, sender)
    db = settings.warehouse.path

    # Act: the child dies at `point`; the scheduler's retry and the next interval follow
    child = _crash_child(cfg, point)
    after_crash = interval_times(db, "paper")
    retried = _run(settings, TIMES[CRASH_AT], sender)
    for when in TIMES[CRASH_AT + 1 :]:
        _run(settings, when, sender)

    # Assert
    assert child.returncode == -signal.SIGKILL, child.stderr
    committed_before_death = point == "after_commit"
    assert len(after_crash) == CRASH_AT + committed_before_death
    expected_status = "already_committed" if committed_before_death else "committed"
    assert retried["status"] == expected_status
    assert [t.isoformat() for t in interval_times(db, "paper")] == [t.isoformat() for t in TIMES]
    assert fills_signature(db, "paper") == fills_signature(reference_db, "paper")
    assert fills_signature(db, "paper"), "the account trades in these intervals"
    assert ledger_violations(db, "paper", settings.account.initial_cash) == []
    _assert_every_alert_posted_once(db, reference_db, slack)


def _assert_every_alert_posted_once(db: Path, reference_db: Path, slack: FakeSlack) -> None:
    alerts = read(db, "SELECT alert_id, status, text FROM alerts ORDER BY created_at, alert_id")
    reference = read(reference_db, "SELECT alert_id FROM alerts ORDER BY created_at, alert_id")
    posted = collections.Counter(c.params.get("text") for c in slack.calls("/api/chat.postMessage"))
    assert alerts, "fills in these intervals raise alerts"
    assert [a[0] for a in alerts] == [r[0] for r in reference]
    assert {a[1] for a in alerts} == {"sent"}
    sent = [mrkdwn_escape(text) for _, _, text in alerts]  # as Slack shows them
    assert {text: posted[text] for text in sent} == {text: 1 for text in sent}
    assert sum(posted.values()) == len(alerts)
