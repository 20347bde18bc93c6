"""What the risk checks post to Slack over real intervals: a refusal once while it repeats,
not once per interval."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from paper_broker.market_data.factory import make_provider
from papertrade.alerts.sender import ConsoleSender
from papertrade.interval import run_interval
from papertrade.settings import Settings
from tests.reliability.support import read, settings_for
from tests.support.accounts import SESSION_OPEN, SYMBOLS, write_config

NEXT_OPEN = SESSION_OPEN + timedelta(days=1)  # Tuesday 2026-11-24, a regular session


def _run(settings: Settings, when: Any) -> dict[str, Any]:
    provider = make_provider(settings.market_data, settings.universe.symbols)
    return run_interval(settings, when, provider, sender=ConsoleSender(print_fn=lambda _: None))


def test_a_refusal_repeated_every_interval_is_posted_once_a_session(tmp_path: Path) -> None:
    """buy_and_hold wants a sixth of 100,000 in each symbol and a 4,000 notional cap refuses
    all six, again at every interval: a warning with the same six refusals every minute,
    390 a session, is what makes a team mute the channel. Each stays in `risk_events`."""
    settings = settings_for(
        write_config(tmp_path),
        strategy={"name": "buy_and_hold", "params": {}},
        risk={"max_order_notional": 4000},
    )
    db = settings.warehouse.path
    minutes = [SESSION_OPEN + timedelta(minutes=i) for i in range(4)]

    runs = [_run(settings, when) for when in [*minutes, NEXT_OPEN]]

    assert [r["n_rejections"] for r in runs] == [len(SYMBOLS)] * 5
    refusals = read(db, "SELECT count(*) FROM risk_events WHERE reason <> 'KILL_SWITCH'")
    assert refusals == [(5 * len(SYMBOLS),)]
    posted = read(db, "SELECT created_at, title FROM alerts WHERE kind = 'risk' ORDER BY 1")
    assert [when for when, _ in posted] == [minutes[0], NEXT_OPEN]  # and a new session's first
    assert all(title == f"Risk: {len(SYMBOLS)} breaches on paper" for _, title in posted)
