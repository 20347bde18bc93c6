"""End of day's data quality judges a session by the settings the account traded it with,
not by the config that runs the report."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from paper_broker.market_data.factory import make_provider
from papertrade import interval
from papertrade.calendar import MarketCalendar
from papertrade.end_of_day import run_data_quality
from papertrade.recorded_settings import settings_in_force
from papertrade.settings import load_settings
from tests.support.accounts import SESSION_OPEN, write_config
from warehouse.connection import connect


def test_data_quality_uses_the_interval_grid_the_session_was_traded_on(tmp_path: Path) -> None:
    # the account traded every 30 minutes; a report run with the default 60 s config read
    # 13 of 390 expected intervals as a gap (intervals.no_gaps failed, status degraded)
    cfg = write_config(tmp_path, extra="")
    cfg.write_text(
        cfg.read_text().replace("history_bars = 20", "history_bars = 20\ninterval_seconds = 1800")
    )
    traded = load_settings(cfg, tmp_path / "pt.duckdb")
    assert traded.market_data.interval_seconds == 1800
    calendar = MarketCalendar.for_market(traded.market_data)
    session = calendar.session(SESSION_OPEN.date())
    assert session is not None
    provider = make_provider(traded.market_data, traded.universe.symbols)
    for as_of in calendar.intervals(session):
        assert interval.run_interval(traded, as_of, provider)["status"] == "committed"
    minute = traded.market_data.model_copy(update={"interval_seconds": 60})
    reporting = traded.model_copy(update={"market_data": minute})

    results = run_data_quality(reporting, session, MarketCalendar.for_market(minute))

    assert [f"{r.suite}.{r.expectation}" for r in results if not r.success] == []
    with connect(traded.warehouse.path, read_only=True) as conn:
        in_force = settings_in_force(conn, reporting, session.date)
        later = settings_in_force(conn, reporting, session.date + timedelta(days=7))
    assert in_force.market_data.interval_seconds == 1800
    assert later.market_data.interval_seconds == 1800  # nothing recorded since
