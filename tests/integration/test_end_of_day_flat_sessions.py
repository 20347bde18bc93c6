"""End of day on a daily series that covers every exchange session from the account's first
to the reported one: a session the account did not trade in is a flat period at the last
equity before its close, not a copy of the previous session's numbers."""

from __future__ import annotations

import dataclasses
import math
import statistics
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

import pandas as pd
import pytest

from papertrade import end_of_day
from papertrade.alerts.render import render_summary_alert
from papertrade.calendar import MarketCalendar, Session
from papertrade.dq.frames import load_session_frames
from papertrade.metrics import compute_metrics
from papertrade.settings import Settings, load_settings
from warehouse.commit import EquityRow, commit_interval
from warehouse.testing import make_commit

INITIAL_CASH = 100_000.0  # make_state's initial cash
CALENDAR = MarketCalendar("XNYS", 60)
# Mon 16, (Tue 17 skipped), Wed 18, Thu 19 November 2026; Fri 13 is a session before the
# account's first interval. Two intervals a session (UTC), the second one's equity the close.
TRADED = {
    date(2026, 11, 16): [(14, 31, 100_400.0), (20, 59, 101_000.0)],
    date(2026, 11, 18): [(14, 31, 100_200.0), (20, 59, 99_990.0)],
    date(2026, 11, 19): [(15, 0, 100_100.0), (20, 0, 100_500.0)],
}
SKIPPED = date(2026, 11, 17)


def _session(day: date) -> Session:
    session = CALENDAR.session(day)
    assert session is not None
    return session


def _record(db: Path) -> Settings:
    k = 0
    for day, points in TRADED.items():
        for hour, minute, value in points:
            as_of = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            gross = value / 2
            row = EquityRow(as_of, value - gross, gross, value, gross, gross, 0.0, 0.0)
            commit = make_commit(as_of, n=2, first_id=10 * k, alerts=False)
            commit_interval(db, dataclasses.replace(commit, equity=row))
            k += 1
    return load_settings(db=db)


def test_a_session_without_intervals_is_a_flat_day_at_the_previous_close(
    tmp_path: Path,
) -> None:
    settings = _record(tmp_path / "pt.duckdb")
    session = _session(SKIPPED)

    metrics, _, positions = end_of_day.compute_day_metrics(settings, session)
    previous, _, _ = end_of_day.compute_day_metrics(settings, _session(date(2026, 11, 16)))
    frames = load_session_frames(
        settings.warehouse.path, settings.account.id, session.date, session.open, session.close
    )

    assert metrics.period_return == 0.0
    assert metrics.end_equity == 101_000.0
    # initial cash -> 11-16 -> 11-17; 11-13, before the first interval, is not a period
    assert metrics.n_periods == 2
    assert previous.n_periods == 1
    assert metrics.total_return == pytest.approx(0.01)
    assert metrics.n_trades == previous.n_trades  # trades from inception, none that day
    assert len(frames.session_fills) == 0 and len(frames.intervals) == 0
    assert len(positions) == 2  # the positions held through the day
    report = end_of_day.DayReport(settings.account.id, session, metrics, pd.Series(), positions)
    assert end_of_day.performance_row(report)["daily_return"] == 0.0
    assert end_of_day.performance_row(report)["equity"] == 101_000.0
    summary = render_summary_alert(settings.account.id, session.close, metrics)
    assert "Day +0.00%" in summary.text


def test_a_report_after_the_last_traded_session_counts_the_flat_sessions(
    tmp_path: Path,
) -> None:
    settings = _record(tmp_path / "pt.duckdb")
    # Fri 27 (early close, after Thanksgiving): nothing traded since Thu 19
    session = end_of_day.resolve_session(CALENDAR, None, datetime(2026, 11, 28, 12, 0, tzinfo=UTC))
    assert session is not None and session.date == date(2026, 11, 27)

    metrics, _, _ = end_of_day.compute_day_metrics(settings, session)

    assert metrics.period_return == 0.0
    assert metrics.end_equity == 100_500.0
    # 16, 17, 18, 19, 20, 23, 24, 25, 27 November
    assert metrics.n_periods == 9


def test_metrics_over_a_skipped_session_equal_those_of_the_forward_filled_series(
    tmp_path: Path,
) -> None:
    settings = _record(tmp_path / "pt.duckdb")

    metrics, _, _ = end_of_day.compute_day_metrics(settings, _session(date(2026, 11, 19)))

    # by hand: initial cash, then closes of 16, 17 (= 16's), 18, 19
    curve = [INITIAL_CASH, 101_000.0, 101_000.0, 99_990.0, 100_500.0]
    returns = [b / a - 1 for a, b in pairwise(curve)]
    mean, std = statistics.mean(returns), statistics.stdev(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    cagr = (100_500.0 / INITIAL_CASH) ** (252 / 4) - 1
    assert metrics.n_periods == 4
    assert metrics.period_return == pytest.approx(100_500.0 / 99_990.0 - 1)
    assert metrics.total_return == pytest.approx(0.005)
    assert metrics.cagr == pytest.approx(cagr)
    assert metrics.volatility == pytest.approx(std * math.sqrt(252))
    assert metrics.sharpe == pytest.approx(mean / std * math.sqrt(252))
    assert metrics.sortino == pytest.approx(mean / downside * math.sqrt(252))
    assert metrics.max_drawdown == pytest.approx(99_990.0 / 101_000.0 - 1)
    assert metrics.max_drawdown_periods == 2  # peak on 16 (held on 17), below it on 18 and 19
    assert metrics.calmar == pytest.approx(cagr / (1 - 99_990.0 / 101_000.0))
    # gross exposure is half the equity at every traded close, and so on the flat one
    assert metrics.avg_gross_exposure == pytest.approx(0.5 * 4 / 5)
    filled = pd.Series(
        curve[1:], index=pd.to_datetime(["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19"])
    )
    expected = compute_metrics(filled, start_equity=INITIAL_CASH)
    got, want = metrics.as_dict(), expected.as_dict()
    for key in ("n_periods", "cagr", "volatility", "sharpe", "sortino", "max_drawdown_periods"):
        assert got[key] == pytest.approx(want[key]), key


@pytest.mark.parametrize(
    ("scheduled", "now", "reported"),
    [
        # the 16:15 run of a session day reports that day, however late it starts
        (datetime(2026, 11, 25, 21, 15, tzinfo=UTC), datetime(2026, 11, 26, 9, tzinfo=UTC),
         date(2026, 11, 25)),
        # Thanksgiving's 16:15 run: no session, not Wednesday's again
        (datetime(2026, 11, 26, 21, 15, tzinfo=UTC), datetime(2026, 11, 26, 21, 15, tzinfo=UTC),
         None),
        # a run started before its day's close reports the latest closed session
        (datetime(2026, 11, 25, 17, 0, tzinfo=UTC), datetime(2026, 11, 25, 17, 0, tzinfo=UTC),
         date(2026, 11, 24)),
    ],
)  # fmt: skip
def test_a_scheduled_report_is_of_its_scheduled_day(
    scheduled: datetime, now: datetime, reported: date | None
) -> None:
    session = end_of_day.resolve_session(CALENDAR, None, now, scheduled)

    assert (session.date if session else None) == reported


def test_equity_recorded_outside_a_session_counts_at_the_next_sessions_close(
    tmp_path: Path,
) -> None:
    # `interval --force` trades outside a session: Mon 16 after its 21:00 UTC close, and
    # Saturday 21. Each snapshot belongs to the first session close after it.
    db = tmp_path / "pt.duckdb"
    points = [
        (datetime(2026, 11, 16, 20, 59, tzinfo=UTC), 101_000.0),  # Monday's close
        (datetime(2026, 11, 16, 22, 0, tzinfo=UTC), 100_500.0),  # after it: Tuesday's
        (datetime(2026, 11, 18, 20, 59, tzinfo=UTC), 99_990.0),  # Wednesday's close
        (datetime(2026, 11, 21, 15, 0, tzinfo=UTC), 100_700.0),  # Saturday: Monday 23's
    ]
    for k, (as_of, value) in enumerate(points):
        row = EquityRow(as_of, value / 2, value / 2, value, value / 2, value / 2, 0.0, 0.0)
        commit = make_commit(as_of, n=2, first_id=10 * k, alerts=False)
        commit_interval(db, dataclasses.replace(commit, equity=row))
    settings = load_settings(db=db)

    monday, _, _ = end_of_day.compute_day_metrics(settings, _session(date(2026, 11, 16)))
    tuesday, _, _ = end_of_day.compute_day_metrics(settings, _session(date(2026, 11, 17)))
    wednesday, _, _ = end_of_day.compute_day_metrics(settings, _session(date(2026, 11, 18)))
    next_monday, _, _ = end_of_day.compute_day_metrics(settings, _session(date(2026, 11, 23)))

    assert monday.end_equity == 101_000.0
    # the fall after Monday's close is Tuesday's, not a rewrite of Monday's close
    assert tuesday.end_equity == 100_500.0
    assert tuesday.period_return == pytest.approx(100_500.0 / 101_000.0 - 1)
    assert wednesday.max_drawdown == pytest.approx(99_990.0 / 101_000.0 - 1)
    # 16, 17, 18, 19, 20, 23 November: Saturday is no period, its equity is Monday 23's
    assert next_monday.n_periods == 6
    assert next_monday.period_return == pytest.approx(100_700.0 / 99_990.0 - 1)


def test_an_account_that_never_traded_has_zero_turnover_as_a_backtest_does(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pt.duckdb"
    for k, day in enumerate((16, 17)):
        as_of = datetime(2026, 11, day, 20, 0, tzinfo=UTC)
        row = EquityRow(as_of, INITIAL_CASH, 0.0, INITIAL_CASH, 0.0, 0.0, 0.0, 0.0)
        commit = make_commit(as_of, n=2, first_id=10 * k, alerts=False)
        commit_interval(db, dataclasses.replace(commit, equity=row, fills=[], orders=[]))
    settings = load_settings(db=db)

    metrics, _, _ = end_of_day.compute_day_metrics(settings, _session(date(2026, 11, 17)))

    # nothing traded is a turnover of 0, not an unknown one (NULL in daily_performance)
    assert metrics.n_trades == 0 and math.isnan(metrics.win_rate)
    assert metrics.turnover == 0.0
