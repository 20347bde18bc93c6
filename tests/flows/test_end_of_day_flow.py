"""The end-of-day flow under Prefect's test harness, on a session recorded by the engine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest

from flows.end_of_day import end_of_day
from paper_broker.market_data.factory import make_provider
from papertrade import interval
from papertrade.calendar import MarketCalendar
from papertrade.settings import load_settings
from tests.support.accounts import write_config

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]
SESSION = date(2026, 11, 23)
SESSION_CLOSE = datetime(2026, 11, 23, 21, 0, tzinfo=UTC)


def _record_session(tmp_path: Path) -> Path:
    # half-hour intervals: a whole session in 13 intervals, so no interval is missing
    cfg = write_config(tmp_path, extra="")
    text = cfg.read_text().replace(
        "history_bars = 20", "history_bars = 20\ninterval_seconds = 1800"
    )
    cfg.write_text(text)
    settings = load_settings(cfg)
    provider = make_provider(settings.market_data, settings.universe.symbols)
    calendar = MarketCalendar("XNYS", 1800)
    session = calendar.session(SESSION)
    assert session is not None
    for as_of in calendar.intervals(session):
        assert interval.run_interval(settings, as_of, provider)["status"] == "committed"
    return cfg


def test_end_of_day_reports_clean_data_then_catches_a_broken_ledger(tmp_path: Path) -> None:
    cfg = _record_session(tmp_path)
    db = tmp_path / "pt.duckdb"

    clean = end_of_day(session_date=SESSION, config=str(cfg))
    with duckdb.connect(str(db)) as conn:
        conn.execute("UPDATE equity SET cash = cash + 0.01 WHERE ts = (SELECT max(ts) FROM equity)")
    broken = end_of_day(session_date=SESSION, config=str(cfg))

    assert clean["status"] == "ok", clean["dq_failures"]
    assert clean["dq_checks"] >= 30
    assert Path(clean["chart"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert broken["status"] == "degraded"
    assert any(f.startswith("ledger.") for f in broken["dq_failures"])
    with duckdb.connect(str(db), read_only=True) as conn:
        perf = conn.execute(
            "SELECT status, n_trades, equity FROM daily_performance WHERE session_date = ?",
            [SESSION],
        ).fetchall()
        kinds = conn.execute(
            "SELECT kind, count(*) FROM alerts WHERE created_at >= ? GROUP BY kind ORDER BY kind",
            [SESSION_CLOSE],
        ).fetchall()
        failed = conn.execute(
            "SELECT count(*) FROM dq_results WHERE session_date = ? AND NOT success", [SESSION]
        ).fetchone()[0]
        summaries = conn.execute(
            "SELECT text FROM alerts WHERE kind = 'summary' AND created_at >= ? ORDER BY rowid",
            [SESSION_CLOSE],
        ).fetchall()
    assert len(perf) == 1 and perf[0][0] == "degraded"
    assert perf[0][2] == pytest.approx(clean["metrics"]["end_equity"], abs=1e-6)
    # the re-run's verdict differs, so its summary is news: the day's message says the data
    # was degraded, not only the data-quality alert
    assert dict(kinds) == {"data_quality": 1, "summary": 2}
    assert failed >= 1
    checks = broken["dq_checks"]
    assert "Data quality ok" in summaries[0][0]
    assert f"Data quality degraded: {failed} of {checks} checks failed" in summaries[1][0]


def test_no_session_on_a_holiday(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    (tmp_path / "pt.duckdb").touch()

    out = end_of_day(session_date=date(2026, 11, 26), config=str(cfg))

    assert out["status"] == "no_session"
