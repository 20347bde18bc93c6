"""End of day as plain functions: the steps the `end-of-day` flow's tasks call.

    resolve session -> performance metrics -> data-quality checks -> store + report -> notify

Metrics are from inception on the equity at each session close (the account's initial cash
is the first point, so the first session has a return too). The closes cover every exchange
session from the account's first interval to the reported one, each the last equity before
it: a session without intervals is a flat period (return 0) that counts in annualisation,
and equity recorded outside a session (`interval --force` after a close or on a weekend)
moves the next session's close, not the day it was recorded on.
Great Expectations is imported only inside the data-quality step.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from papertrade.accounts import account_kind
from papertrade.calendar import MarketCalendar, Session, new_york_date
from papertrade.errors import UnknownAccount, UserError
from papertrade.metrics import Metrics, compute_metrics
from papertrade.settings import Settings

log = logging.getLogger("papertrade.end_of_day")


@dataclass
class DayReport:
    """What end of day found for one account and session."""

    account_id: str
    session: Session
    metrics: Metrics
    equity_curve: pd.Series
    positions: pd.DataFrame
    dq_results: list[Any] = field(default_factory=list)
    chart_path: Path | None = None
    markdown: str = ""
    trading_state: str = "active"

    @property
    def failures(self) -> list[Any]:
        return [r for r in self.dq_results if not r.success]

    @property
    def status(self) -> str:
        return "degraded" if self.failures else "ok"

    def summary(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "session_date": self.session.date.isoformat(),
            "status": self.status,
            "metrics": self.metrics.as_dict(),
            "dq_checks": len(self.dq_results),
            "dq_failures": [f"{r.suite}.{r.expectation}" for r in self.failures],
            "chart": str(self.chart_path) if self.chart_path else None,
        }


def resolve_session(
    calendar: MarketCalendar,
    session_date: date | None,
    now: datetime,
    scheduled: datetime | None = None,
) -> Session | None:
    """The session to report on: the given date's; else, for a run `scheduled` on a day,
    that day's session once it has closed (none on a holiday: the 16:15 run of a weekday
    without a session must not report the day before again); else the latest that has
    closed."""
    if session_date is not None:
        return calendar.session(session_date)
    if scheduled is not None:
        session = calendar.session(new_york_date(scheduled))
        if session is None or session.close <= now:
            return session
    day = now.astimezone(UTC).date()
    for back in range(0, 15):
        session = calendar.session(day - timedelta(days=back))
        if session is not None and session.close <= now:
            return session
    return None


def compute_day_metrics(
    settings: Settings, session: Session, calendar: MarketCalendar | None = None
) -> tuple[Metrics, pd.Series, pd.DataFrame]:
    """Metrics from inception to this session's close, the equity curve to chart, and the
    positions at the close. `calendar` (default: the `[market_data]` one) names the sessions
    the account did not trade in."""
    from warehouse.connection import connect

    calendar = calendar or MarketCalendar.for_market(settings.market_data)
    with connect(settings.warehouse.path, read_only=True) as conn:
        initial_cash = _initial_cash(conn, settings)
        return _day_metrics(conn, settings.account.id, session, initial_cash, calendar)


def _day_metrics(
    conn: Any, account_id: str, session: Session, initial_cash: float, calendar: MarketCalendar
) -> tuple[Metrics, pd.Series, pd.DataFrame]:
    closes = _session_closes(conn, account_id, session, calendar)
    fills = conn.execute(
        "SELECT ts, symbol, side, quantity, price, commission FROM fills "
        "WHERE account_id = $a AND ts < $close ORDER BY ts, fill_id",
        {"a": account_id, "close": session.close},
    ).df()
    positions = conn.execute(
        """
        SELECT symbol, quantity, avg_cost, market_price, market_value, unrealized_pnl
        FROM positions WHERE account_id = $a AND ts = (
            SELECT max(ts) FROM equity WHERE account_id = $a AND ts < $close)
        AND quantity <> 0 ORDER BY abs(market_value) DESC
        """,
        {"a": account_id, "close": session.close},
    ).df()
    start = pd.Series([initial_cash], index=[pd.Timestamp("1970-01-01")])
    daily = pd.Series(closes["equity"].to_numpy(), index=closes.index)
    gross = pd.Series(closes["gross"].to_numpy(), index=daily.index)
    metrics = compute_metrics(
        pd.concat([start, daily]) if len(daily) else start,
        fills=fills,  # none is a turnover of 0, as in a backtest without fills
        gross_exposure=pd.concat([pd.Series([0.0], index=start.index), gross]),
    )
    return metrics, _chart_curve(conn, account_id, session), positions


def _session_closes(
    conn: Any, account_id: str, session: Session, calendar: MarketCalendar
) -> pd.DataFrame:
    """One row per exchange session from the account's first equity snapshot to `session`
    (indexed by session date): `equity` and `gross` of the last snapshot before the
    session's close. A session without intervals gets the last one before it; a snapshot
    after a close or on a day without a session counts at the next close (grouping by the
    New York date made a forced after-hours interval rewrite its day's close, and a
    weekend one a period of its own)."""
    ((first,),) = conn.execute(
        "SELECT min(ts) FROM equity WHERE account_id = $a AND ts < $close",
        {"a": account_id, "close": session.close},
    ).fetchall()
    days = (
        calendar.closes_between(new_york_date(first), session.date)
        if first is not None
        else pd.Series(dtype="datetime64[ns, UTC]")
    )
    closes = conn.execute(
        """
        SELECT s.day, e.equity, e.gross_exposure AS gross
        FROM (SELECT unnest($days) AS day, unnest($closes) AS close) s
        ASOF JOIN (SELECT ts, equity, gross_exposure FROM equity WHERE account_id = $a) e
            ON s.close > e.ts
        ORDER BY s.day
        """,
        {
            "a": account_id,
            "days": [d.date() for d in days.index],
            "closes": [c.to_pydatetime() for c in days],
        },
    ).df()
    return closes.set_index(pd.DatetimeIndex(pd.to_datetime(closes["day"])))[["equity", "gross"]]


CHART_POINTS = 5000


def _chart_curve(conn: Any, account_id: str, session: Session) -> pd.Series:
    """Equity at every interval from the account's first to this session's close, so even
    a first session draws a line; a long history is thinned to the last value of each of
    at most `CHART_POINTS` equal time buckets."""
    window = {"a": account_id, "close": session.close}
    ((first,),) = conn.execute(
        "SELECT min(ts) FROM equity WHERE account_id = $a AND ts < $close", window
    ).fetchall()
    if first is None:
        return pd.Series(dtype="float64", name=account_id)
    bucket_us = max(1, int((session.close - first).total_seconds() * 1e6) // CHART_POINTS)
    rows = conn.execute(
        "SELECT max(ts) AS t, arg_max(equity, ts) FROM equity "
        "WHERE account_id = $a AND ts < $close "
        "GROUP BY time_bucket(to_microseconds($us), ts, $first) ORDER BY t",
        {**window, "us": bucket_us, "first": first},
    ).fetchall()
    index = pd.DatetimeIndex([t for t, _ in rows]).tz_convert("UTC")
    return pd.Series([e for _, e in rows], index=index, name=account_id, dtype="float64")


def run_data_quality(settings: Settings, session: Session, calendar: MarketCalendar) -> list[Any]:
    """Great Expectations suites over the session (imported here: it takes seconds), with
    the limits and interval grid of the settings the account traded the session with (see
    `papertrade.recorded_settings`): a config changed since, or another config reading the
    same file, must not turn honest rows into failures."""
    from papertrade.dq.frames import load_session_frames
    from papertrade.dq.suites import run_quality_checks
    from papertrade.recorded_settings import settings_in_force
    from warehouse.connection import connect

    account = settings.account.id
    with connect(settings.warehouse.path, read_only=True) as conn:
        frames = load_session_frames(conn, account, session.date, session.open, session.close)
        first = conn.execute(
            "SELECT min(as_of) FROM intervals WHERE account_id = ?", [account]
        ).fetchone()[0]
        initial_cash = _initial_cash(conn, settings)
        settings = settings_in_force(conn, settings, session.date)
    if settings.market_data.interval_seconds != calendar.interval.total_seconds():
        calendar = MarketCalendar.for_market(settings.market_data)
    # an account that started mid-session is not missing the intervals before its first
    expected = [t for t in calendar.intervals(session) if first is None or t >= first]
    return run_quality_checks(
        frames,
        universe=settings.universe.symbols,
        expected_intervals=expected,
        initial_cash=initial_cash,
        max_spread_bps=settings.market_data.max_spread_bps,
        staleness_seconds=settings.market_data.staleness_seconds,
        slippage_bps=_slippage_limit_bps(settings),
        tick_size=settings.broker.tick_size,
        interval_seconds=settings.market_data.interval_seconds,
        max_jump_pct=settings.market_data.max_jump_pct,
    )


def _slippage_limit_bps(settings: Settings) -> float:
    """How far beyond the touch (ask for buys, bid for sells) the broker's slippage model can
    put a fill, in basis points of the touch: the data-quality price band must hold every
    fill the broker can honestly make, or healthy sessions read `degraded`.

    spread_fraction: `fraction x spread`, and a valid quote's spread is at most
    `max_spread_bps` of its mid, which is a little more of its bid. volume_impact:
    `touch x coefficient x sqrt(quantity / volume)`, and a fill takes at most
    `max_volume_share` of the volume."""
    broker = settings.broker
    model = broker.slippage_model.value
    if model == "fixed_bps":
        return broker.slippage_bps
    if model == "none":
        return 0.0
    if model == "spread_fraction":
        spread = settings.market_data.max_spread_bps * 1e-4
        return broker.spread_fraction * spread / (1.0 - spread / 2.0) * 1e4
    return broker.impact_coefficient * math.sqrt(broker.max_volume_share) * 1e4


def _initial_cash(conn: Any, settings: Settings) -> float:
    account = settings.account.id
    row = conn.execute("SELECT initial_cash FROM accounts WHERE account_id = ?", [account])
    found = row.fetchone()
    return float(found[0]) if found else settings.account.initial_cash


def trading_state_at_close(settings: Settings, session: Session) -> str:
    """The kill-switch state the account closed the session in (`active` without a change
    by then): the report shows it next to the data-quality status, which is a different
    thing (a halted account can have clean data, a degraded session can trade on)."""
    from warehouse.connection import connect
    from warehouse.trading_state import get_trading_state

    with connect(settings.warehouse.path, read_only=True) as conn:
        return get_trading_state(conn, settings.account.id, before=session.close).state.value


def build_report(report: DayReport, reports_dir: Path) -> DayReport:
    """The Markdown report and the equity chart (PNG) under `reports/<account>/`."""
    from papertrade.report import render_equity_chart, render_markdown

    report.markdown = render_markdown(
        report.account_id,
        report.session.date,
        report.metrics.as_dict(),
        report.positions,
        report.trading_state,
        report.failures,
    )
    if len(report.equity_curve):
        path = reports_dir / report.account_id / f"{report.session.date.isoformat()}.png"
        report.chart_path = render_equity_chart(report.equity_curve, path)
    return report


def store(settings: Settings, report: DayReport, now: datetime) -> None:
    """daily_performance, dq_results and the end-of-day alerts in one transaction; a re-run
    of the same day replaces its rows and does not queue its alerts twice."""
    from papertrade.alerts.records import is_wanted
    from papertrade.alerts.render import render_dq_alert, render_summary_alert
    from papertrade.dq.results import dq_results_frame
    from warehouse.commit import alert_rows
    from warehouse.connection import connect
    from warehouse.results import write_end_of_day

    account, day = report.account_id, report.session.date
    alerts = []
    if report.failures:
        failures = [
            {"check": f"{r.suite}.{r.expectation}", "detail": _failure_detail(r)}
            for r in report.failures
        ]
        alerts.append(render_dq_alert(account, report.session.close, failures))
    alerts.append(
        render_summary_alert(
            account,
            report.session.close,
            report.metrics,
            report.positions.head(5),
            report.chart_path,
            n_positions=len(report.positions),
            data_quality=_data_quality_line(report),
            trading_state=report.trading_state,
        )
    )
    wanted = [a.as_row() for a in alerts if is_wanted(a.kind, a.level, settings.slack)]
    dq = dq_results_frame(report.dq_results, account, day, now) if report.dq_results else None
    with connect(settings.warehouse.path, timeout=settings.warehouse.lock_timeout_seconds) as conn:
        write_end_of_day(
            conn,
            performance=[performance_row(report)],
            dq_results=dq if dq is not None else [],
            alerts=alert_rows(wanted, account, report.session.close),
        )


def _failure_detail(result: Any) -> str:
    sample = json.dumps(result.sample[:3], default=str) if result.sample else ""
    n = result.unexpected_count
    return f"observed {result.observed_value}; {n} row{'' if n == 1 else 's'}; {sample}"


def _data_quality_line(report: DayReport) -> str | None:
    """The verdict the summary shows: None when no checks ran."""
    if not report.dq_results:
        return None
    failed, checks = len(report.failures), len(report.dq_results)
    return "ok" if not failed else f"degraded: {failed} of {checks} checks failed"


def performance_row(report: DayReport) -> dict[str, Any]:
    m = report.metrics.as_dict()
    return {
        "account_id": report.account_id,
        "session_date": report.session.date,
        "equity": m["end_equity"],
        "daily_return": m["period_return"],
        "cumulative_return": m["total_return"],
        "cagr": m["cagr"],
        "volatility": m["volatility"],
        "sharpe": m["sharpe"],
        "sortino": m["sortino"],
        "max_drawdown": m["max_drawdown"],
        "max_drawdown_duration": m["max_drawdown_periods"],
        "calmar": m["calmar"],
        "n_trades": m["n_trades"],
        "win_rate": m["win_rate"],
        "profit_factor": m["profit_factor"],
        "avg_win": m["avg_win"],
        "avg_loss": m["avg_loss"],
        "expectancy": m["expectancy"],
        "turnover": m["turnover"],
        "avg_gross_exposure": m["avg_gross_exposure"],
        "status": report.status,
    }


def open_day(
    settings: Settings, session_date: date | None, now: datetime, scheduled: datetime | None = None
) -> tuple[MarketCalendar, Session] | dict[str, Any]:
    """The session to report on (see `resolve_session`), or a summary saying why there is
    none."""
    calendar = MarketCalendar.for_market(settings.market_data)
    session = resolve_session(calendar, session_date, now, scheduled)
    account = settings.account.id
    if session is None:
        if session_date is not None:
            shown = session_date.isoformat()
        elif scheduled is not None:
            shown = f"on {new_york_date(scheduled).isoformat()}, the run's scheduled day"
        else:
            shown = "in the last two weeks"
        return {"account_id": account, "status": "no_session", "detail": f"no session {shown}"}
    check_account(settings, session, now)
    return calendar, session


def check_account(
    settings: Settings, session: Session | None = None, now: datetime | None = None
) -> None:
    """A report needs a warehouse that knows the account as a paper one, a session that
    has closed with the account trading by then (a typo must not store the metrics of
    nothing), and a warehouse and reports directory it can write (checked first, not after
    the work)."""
    from warehouse.connection import check_writable, connect, refuse_foreign, unwritable

    db, account = Path(settings.warehouse.path), settings.account.id
    if not db.exists():
        raise UserError(f"no warehouse at {db}: nothing to report on")
    check_writable(db)  # the report is stored there
    reports = Path(settings.warehouse.reports_dir)
    if reason := unwritable(reports, directory=True):
        raise UserError(f"cannot write reports to {reports} ([warehouse] reports_dir): {reason}")
    with connect(db, read_only=True) as conn:
        if refuse_foreign(conn, db) == 0:  # a new, empty file knows no account
            raise UnknownAccount(db, account, [])
        kind = account_kind(conn, account, db)
        ((first,),) = conn.execute(
            "SELECT min(as_of) FROM intervals WHERE account_id = ?", [account]
        ).fetchall()
    if kind != "paper":
        # a backtest has no intervals, so the check below would say it never traded
        raise UserError(
            f"account {account} is a {kind} account: its run's metrics are in"
            " daily_performance; end of day reports paper accounts"
        )
    if session is None:
        return
    if now is not None and session.close > now:
        raise UserError(f"session {session.date} has not closed yet ({session.close:%H:%M} UTC)")
    if first is None or first >= session.close:
        since = f" (its first interval is {first.isoformat()})" if first else ""
        raise UserError(f"account {account} had not traded by the close of {session.date}{since}")


def run_end_of_day(
    settings: Settings, session_date: date | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """All steps in-process, without Prefect."""
    now = now or datetime.now(UTC)
    opened = open_day(settings, session_date, now)
    if isinstance(opened, dict):
        return opened
    calendar, session = opened
    metrics, curve, positions = compute_day_metrics(settings, session, calendar)
    results = run_data_quality(settings, session, calendar)
    report = DayReport(settings.account.id, session, metrics, curve, positions, results)
    report.trading_state = trading_state_at_close(settings, session)
    build_report(report, settings.warehouse.reports_dir)
    store(settings, report, now)
    return report.summary()
