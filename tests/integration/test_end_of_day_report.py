"""The end-of-day Markdown report names the kill-switch state the account closed the session
in, apart from the data-quality status."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paper_broker.enums import TradingState
from papertrade import end_of_day
from papertrade.settings import load_settings
from warehouse.commit import EquityRow, commit_interval
from warehouse.connection import connect
from warehouse.testing import T0, make_commit
from warehouse.trading_state import set_trading_state

NOW = datetime(2025, 3, 10, tzinfo=UTC)


def _record(db: Path, days: int) -> None:
    """Two intervals a session on `days` consecutive sessions from T0 (Monday 3 March 2025)."""
    k = 0
    for day in range(days):
        for minutes in (0, 60):
            as_of = T0 + timedelta(days=day, minutes=minutes)
            row = EquityRow(as_of, 100_000.0, 0.0, 100_000.0, 0.0, 0.0, 0.0, 0.0)
            commit = make_commit(as_of, n=2, first_id=10 * k, alerts=False)
            commit_interval(db, dataclasses.replace(commit, equity=row))
            k += 1


def _markdown(monkeypatch: pytest.MonkeyPatch, settings: Any, day: Any) -> str:
    """Run end of day and keep the report's Markdown (the flow's Prefect artifact)."""
    seen: list[end_of_day.DayReport] = []
    store = end_of_day.store

    def keep(settings: Any, report: end_of_day.DayReport, now: datetime) -> None:
        seen.append(report)
        store(settings, report, now)

    monkeypatch.setattr(end_of_day, "store", keep)
    end_of_day.run_end_of_day(settings, day, NOW)
    return seen[0].markdown


def test_the_report_shows_the_trading_state_at_the_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "pt.duckdb"
    _record(db, days=3)
    with connect(db) as conn:
        # halted during the second session, resumed during the third
        set_trading_state(
            conn, "paper", TradingState.HALTED, "drawdown", "guard", T0 + timedelta(days=1, hours=2)
        )
        set_trading_state(
            conn, "paper", TradingState.ACTIVE, "manual", "manual", T0 + timedelta(days=2, hours=2)
        )
    settings = load_settings(db=db)
    settings = settings.model_copy(
        update={"warehouse": settings.warehouse.model_copy(update={"reports_dir": tmp_path / "r"})}
    )

    first = _markdown(monkeypatch, settings, T0.date())
    second = _markdown(monkeypatch, settings, (T0 + timedelta(days=1)).date())
    third = _markdown(monkeypatch, settings, (T0 + timedelta(days=2)).date())

    assert "Trading state: **active**" in first
    assert "Trading state: **halted**" in second
    assert "Trading state: **active**" in third
    # the data-quality status stays in its own field
    assert "Trading state: **ok**" not in first + second + third
    assert "Trading state: **degraded**" not in first + second + third
