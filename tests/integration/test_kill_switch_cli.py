"""A manual kill-switch change is stored with its alert and reaches Slack at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from papertrade.cli import app
from tests.fakes.slack import FakeSlack
from warehouse.commit import commit_interval
from warehouse.testing import make_commit

runner = CliRunner()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def test_kill_switch_on_posts_to_slack_at_once(
    tmp_path: Path, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=1, alerts=False))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("PAPERTRADE_SLACK__BASE_URL", slack.api_url)

    result = runner.invoke(app, ["kill-switch", "on", "--reason", "broker outage", "--db", str(db)])

    assert result.exit_code == 0, result.output
    posts = slack.calls("/api/chat.postMessage")
    assert len(posts) == 1
    assert "halted" in str(posts[0].params.get("text", "")).lower()
    with duckdb.connect(str(db), read_only=True) as conn:
        status = conn.execute("SELECT status FROM alerts WHERE kind = 'kill_switch'").fetchall()
    assert status == [("sent",)]


@pytest.mark.parametrize("command", [["on", "--reason", "x"], ["off"], ["status"]])
def test_kill_switch_for_an_unknown_account_is_bad_input(
    tmp_path: Path, command: list[str]
) -> None:
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=1))
    before = db.read_bytes()

    result = runner.invoke(app, ["kill-switch", *command, "--db", str(db), "--account-id", "nope"])

    assert result.exit_code == 2
    assert "unknown account" in result.output
    assert db.read_bytes() == before


@pytest.mark.parametrize("reason", ["x" * 501, "two\nlines", "colour \x1b[31mred"])
def test_a_reason_that_is_not_one_short_printable_line_is_refused(
    tmp_path: Path, reason: str
) -> None:
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=1))
    before = db.read_bytes()

    result = runner.invoke(app, ["kill-switch", "on", "--reason", reason, "--db", str(db)])

    assert result.exit_code == 2
    assert "--reason must be one line of at most 500 printable characters" in result.output
    assert db.read_bytes() == before
