"""Secrets never leak: with fake API keys and Slack credentials set, a few intervals run
through the real `trading-interval` flow (Polygon fake with the key checked, Slack fake with
the token and the webhook really used), then the end-of-day steps; the keys are then searched
for in captured stdout/stderr, Python logging, Prefect's stored logs and artifacts, every
VARCHAR column of every warehouse table, the raw warehouse file and the reports."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from flows.trading_interval import trading_interval
from papertrade import interval
from papertrade.end_of_day import run_end_of_day
from tests.fakes import FakePolygon
from tests.fakes.slack import WEBHOOK_PATH, FakeSlack
from tests.reliability.support import settings_for
from tests.support.accounts import SESSION_OPEN, SYMBOLS, write_config

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]

POLYGON_KEY = "pk-SECRET-polygon-7f3a91"
ALPACA_ID = "AKSECRETID0042"
ALPACA_SECRET = "alpaca-SECRET-key-9d8e7f"
BOT_TOKEN = "xoxb-1111-SECRET-token-abcdef"
WEBHOOK_SECRET = WEBHOOK_PATH.rsplit("/", 1)[-1]


class Everything(logging.Handler):
    """Keeps every record from every logger, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


@pytest.fixture
def log_everything() -> Iterator[Everything]:
    handler = Everything()
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in ("prefect", "slack_sdk",
               "httpx", "httpcore", "papertrade", "papertrade.alerts.slack_sdk"))]  # fmt: skip
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    yield handler
    for lg, level in saved:
        lg.removeHandler(handler)
        lg.setLevel(level)


def test_keys_and_tokens_appear_nowhere(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
    log_everything: Everything,
) -> None:
    # Arrange
    slack = FakeSlack().start()
    polygon = FakePolygon(api_key=POLYGON_KEY).__enter__()
    try:
        _run_everything(tmp_path, monkeypatch, slack, polygon)
        captured = capfd.readouterr()
        bearer = [c for c in slack.calls("/api/chat.postMessage")]
        webhook = slack.calls(WEBHOOK_PATH)
        polygon_auth = {r.headers.get("authorization") for r in polygon.requests}
    finally:
        polygon.__exit__(None, None, None)
        slack.stop()
    secrets = [POLYGON_KEY, ALPACA_ID, ALPACA_SECRET, BOT_TOKEN, WEBHOOK_SECRET]
    db = tmp_path / "pt.duckdb"

    # Assert: the credentials were really used...
    assert bearer and all(c.headers.get("Authorization") == f"Bearer {BOT_TOKEN}" for c in bearer)
    assert webhook, "the webhook carried the summary while no bot token was set"
    assert polygon_auth == {f"Bearer {POLYGON_KEY}"}
    # ...and are found nowhere
    places = {
        "stdout": captured.out,
        "stderr": captured.err,
        "logging": "\n".join(log_everything.lines),
        "prefect": _prefect_logs_and_artifacts(),
        "warehouse file": db.read_bytes().decode("latin-1"),
        "reports": _files_text(tmp_path / "reports"),
    }
    places |= _varchar_columns(db)
    assert log_everything.lines and places["prefect"], "the search looked at real output"
    leaks = {(where, s) for where, text in places.items() for s in secrets if s in text}
    assert leaks == set()


def _run_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slack: FakeSlack, polygon: FakePolygon
) -> None:
    for name, value in {
        "POLYGON_API_KEY": POLYGON_KEY,
        "APCA_API_KEY_ID": ALPACA_ID,
        "APCA_API_SECRET_KEY": ALPACA_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_WEBHOOK_URL": slack.webhook_url,
    }.items():
        monkeypatch.setenv(name, value)
    cfg = write_config(
        tmp_path,
        extra=f"""
[slack]
base_url = "{slack.api_url}"
max_retries = 0
""",
    )
    # buy and hold trades at the first interval, so fills raise alerts at once
    text = (
        cfg.read_text()
        .replace(
            "[market_data]",
            f'[market_data]\nprovider = "polygon"\npolygon_base_url = "{polygon.base_url}"\n'
            "cache_seconds = 0",
        )
        .replace('name = "sma_crossover"', 'name = "buy_and_hold"')
        .replace("params = { fast = 2, slow = 5, qty = 100 }", "")
        .replace("max_order_notional = 20000", "max_order_notional = 1000000")
    )
    assert "buy_and_hold" in text and "1000000" in text
    cfg.write_text(text)
    times = [SESSION_OPEN + timedelta(minutes=i) for i in range(4)]
    for n, when in enumerate(times):
        for i, symbol in enumerate(SYMBOLS):
            drift = 1.0 + 0.01 * n * (-1) ** i  # crossovers both ways, so orders and fills
            polygon.set_quote(symbol, bid=50.0 * drift + i, ask=50.0 * drift + i + 0.02, ts=when)
        summary = trading_interval(as_of=when, config=str(cfg))
        assert summary["status"] == "committed"
    monkeypatch.delenv("SLACK_BOT_TOKEN")  # the end-of-day summary goes by webhook
    settings = settings_for(cfg)
    run_end_of_day(settings, SESSION_OPEN.date(), now=SESSION_OPEN + timedelta(hours=8))
    interval.notify(settings)


def _prefect_logs_and_artifacts() -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        logs = client.read_logs()
        artifacts = client.read_artifacts()
    return "\n".join(
        [str(log.message) for log in logs]
        + [f"{a.key} {a.data} {a.description}" for a in artifacts]
    )


def _files_text(root: Path) -> str:
    if not root.exists():
        return ""
    return "\n".join(p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file())


def _varchar_columns(db: Path) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM duckdb_columns() "
            "WHERE data_type = 'VARCHAR' AND NOT internal"
        ).fetchall()
        return {
            f"{t}.{c}": "\n".join(
                str(v) for (v,) in conn.execute(f'SELECT "{c}" FROM "{t}"').fetchall()
            )
            for t, c in columns
        }
