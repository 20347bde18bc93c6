"""The end-of-day chart's curve: equity at every interval up to the session's close, so a
first session draws a line; a long history is thinned to a bounded number of points."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from papertrade import end_of_day
from papertrade.calendar import MarketCalendar
from papertrade.settings import load_settings
from warehouse.commit import EquityRow, commit_interval
from warehouse.testing import T0, make_commit

N_INTERVALS = 13


def _session_with_equity(db: Path) -> list[float]:
    values = []
    for k in range(N_INTERVALS):
        as_of = T0 + timedelta(minutes=30 * k)
        value = 100_000.0 + 10 * k * (-1) ** k
        equity = EquityRow(as_of, value, 0.0, value, 0.0, 0.0, 0.0, 0.0)
        commit = make_commit(as_of, n=2, first_id=10 * k, alerts=False)
        commit_interval(db, dataclasses.replace(commit, equity=equity))
        values.append(value)
    return values


def test_a_first_session_charts_every_interval(tmp_path: Path) -> None:
    db = tmp_path / "pt.duckdb"
    values = _session_with_equity(db)
    session = MarketCalendar("XNYS", 60).session(T0.date())

    _, curve, _ = end_of_day.compute_day_metrics(load_settings(db=db), session)

    assert curve.tolist() == values
    assert curve.index[0] == T0
    assert curve.index[-1] == T0 + timedelta(minutes=30 * (N_INTERVALS - 1))


def test_a_long_history_is_thinned_to_the_last_value_of_each_bucket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "pt.duckdb"
    values = _session_with_equity(db)
    session = MarketCalendar("XNYS", 60).session(T0.date())
    monkeypatch.setattr(end_of_day, "CHART_POINTS", 4)

    _, curve, _ = end_of_day.compute_day_metrics(load_settings(db=db), session)

    assert 2 <= len(curve) <= 5
    assert curve.index.is_monotonic_increasing
    assert curve.iloc[-1] == values[-1]
    assert set(curve.tolist()) <= set(values)
