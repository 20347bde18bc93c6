"""A manual kill-switch change is stored with its alert and reaches Slack at once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import duckdb
import numpy as np
import pytest
from typer.testing import CliRunner

from paper_broker.enums import OrderType, Side, TimeInForce
from paper_broker.records import OrderIntent
from papertrade.cli import app
from strategies.base import Prepared
from tests.fakes.slack import FakeSlack
from tests.support.accounts import SESSION_OPEN, SYMBOLS, write_config
from tests.support.strategies import EveryBar
from warehouse.commit import commit_interval
from warehouse.testing import make_commit

runner = CliRunner()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def committed(tmp_path: Path) -> Path:
    """A warehouse holding one committed interval of the account `paper`."""
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=1))
    return db


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
    db = committed(tmp_path)
    before = db.read_bytes()

    result = runner.invoke(app, ["kill-switch", *command, "--db", str(db), "--account-id", "nope"])

    assert result.exit_code == 2
    assert "unknown account" in result.output
    assert db.read_bytes() == before


def test_kill_switch_on_help_says_the_reason_is_required() -> None:
    result = runner.invoke(app, ["kill-switch", "on", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "Why trading is halted (required; one line)." in result.output


@pytest.mark.parametrize("reason", ["x" * 501, "two\nlines", "colour \x1b[31mred"])
def test_a_reason_that_is_not_one_short_printable_line_is_refused(
    tmp_path: Path, reason: str
) -> None:
    db = committed(tmp_path)
    before = db.read_bytes()

    result = runner.invoke(app, ["kill-switch", "on", "--reason", reason, "--db", str(db)])

    assert result.exit_code == 2
    assert "--reason must be one line of at most 500 printable characters" in result.output
    assert db.read_bytes() == before


@pytest.mark.parametrize("reason", ["", "   "])
def test_an_empty_reason_to_resume_is_bad_input(tmp_path: Path, reason: str) -> None:
    # it was stored as the resume's reason, and the status and alert said nothing of why
    db = committed(tmp_path)
    runner.invoke(app, ["kill-switch", "on", "--reason", "look", "--db", str(db)])
    before = db.read_bytes()

    result = runner.invoke(app, ["kill-switch", "off", "--reason", reason, "--db", str(db)])

    assert result.exit_code == 2
    assert "--reason must not be empty" in result.output
    assert db.read_bytes() == before


class RestingBuyer(EveryBar):
    """Every interval, a GTC limit buy of 10 shares of each symbol 3% below its price:
    orders that rest until something cancels them."""

    name: ClassVar[str] = "resting_buyer"

    def decide(
        self, t: int, prepared: Prepared, positions: np.ndarray, equity: float,
        prices: np.ndarray, tradable: np.ndarray,
    ) -> list[OrderIntent]:  # fmt: skip
        return [
            OrderIntent(symbol, Side.BUY, 10, OrderType.LIMIT, TimeInForce.GTC,
                        limit_price=round(float(prices[i]) * 0.97, 2), strategy=self.name)
            for i, symbol in enumerate(prepared.symbols) if tradable[i]
        ]  # fmt: skip


def test_a_halt_cancels_the_orders_resting_from_before_it(tmp_path: Path) -> None:
    from paper_broker.market_data.factory import make_provider
    from papertrade.interval import run_interval
    from papertrade.settings import load_settings

    cfg = write_config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace('"sma_crossover"', f'"{__name__}:RestingBuyer"')
        .replace("params = { fast = 2, slow = 5, qty = 100 }", "")
    )  # fmt: skip
    settings = load_settings(cfg)
    db = Path(settings.warehouse.path)
    provider = make_provider(settings.market_data, settings.universe.symbols)
    run_interval(settings, SESSION_OPEN, provider)
    with duckdb.connect(str(db), read_only=True) as conn:
        resting = conn.execute("SELECT count(*) FROM orders WHERE status = 'accepted'").fetchone()
    result = runner.invoke(app, ["kill-switch", "on", "--reason", "review", "--db", str(db)])

    halted = run_interval(settings, SESSION_OPEN + timedelta(minutes=1), provider)

    assert resting == (len(SYMBOLS),) and result.exit_code == 0
    assert halted["n_fills"] == 0
    with duckdb.connect(str(db), read_only=True) as conn:
        statuses = conn.execute("SELECT status, count(*) FROM orders GROUP BY ALL").fetchall()
        refusals = conn.execute("SELECT reason, count(*) FROM risk_events GROUP BY ALL").fetchall()
        posted = conn.execute("SELECT kind FROM alerts ORDER BY created_at").fetchall()
    # the first interval's orders canceled; the second's refused by the halt, which the
    # kill-switch alert announced: stored as risk events, not posted one by one
    assert dict(statuses) == {"canceled": len(SYMBOLS), "rejected": len(SYMBOLS)}
    assert dict(refusals) == {"KILL_SWITCH": 1, "TRADING_HALTED": len(SYMBOLS)}
    assert posted == [("kill_switch",)]


@pytest.mark.parametrize("command", [["on", "--reason", "x"], ["off"], ["status"]])
def test_an_empty_account_id_is_bad_input_not_the_configs_account(
    tmp_path: Path, command: list[str]
) -> None:
    # `--account-id "$ACCOUNT"` with the variable unset halted the config's account
    db = committed(tmp_path)
    before = db.read_bytes()

    result = runner.invoke(app, ["kill-switch", *command, "--db", str(db), "--account-id", ""])

    assert result.exit_code == 2
    assert "--account-id" in result.output and "must not be empty" in result.output
    assert db.read_bytes() == before


def test_kill_switch_of_another_account_posts_that_accounts_alert_only(
    tmp_path: Path, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # two accounts in one file; the config names `paper`, the switch is for `beta`
    db = committed(tmp_path)  # leaves a pending alert of paper
    commit_interval(db, make_commit(n=1, account_id="beta", first_id=10, alerts=False))
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test-token")
    monkeypatch.setenv("PAPERTRADE_SLACK__BASE_URL", slack.api_url)

    result = runner.invoke(
        app, ["kill-switch", "on", "--reason", "outage", "--db", str(db), "--account-id", "beta"]
    )

    assert result.exit_code == 0, result.output
    (post,) = slack.calls("/api/chat.postMessage")
    assert "beta" in str(post.params.get("text", ""))
    with duckdb.connect(str(db), read_only=True) as conn:
        status = conn.execute("SELECT account_id, kind, status FROM alerts ORDER BY ALL").fetchall()
    assert ("beta", "kill_switch", "sent") in status
    assert all(s == "pending" for a, _, s in status if a == "paper")
