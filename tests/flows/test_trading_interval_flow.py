"""The trading-interval flow end to end under Prefect's test harness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from flows.trading_interval import trading_interval
from papertrade import interval
from tests.support.accounts import SESSION_OPEN, TRADING_START, write_config

pytestmark = [pytest.mark.flows, pytest.mark.usefixtures("prefect_harness")]


def _counts(db: Path) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as conn:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("intervals", "orders", "fills", "equity", "quotes", "positions", "alerts")
        }


def test_intervals_land_in_duckdb_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    db = tmp_path / "pt.duckdb"
    times = [SESSION_OPEN + timedelta(minutes=i) for i in range(6)]

    summaries = [trading_interval(as_of=t, config=str(cfg)) for t in times]
    before = _counts(db)
    again = trading_interval(as_of=times[-1], config=str(cfg))

    assert [s["status"] for s in summaries] == ["committed"] * 6
    assert again["status"] == "already_committed"
    assert again["n_fills"] == summaries[-1]["n_fills"]
    assert _counts(db) == before
    assert before["intervals"] == 6 and before["equity"] == 6 and before["quotes"] == 6 * 6
    assert before["fills"] > 0, "the fast crossover trades within the first intervals"
    with duckdb.connect(str(db), read_only=True) as conn:
        cash, equity = conn.execute(
            "SELECT cash, equity FROM equity ORDER BY ts DESC LIMIT 1"
        ).fetchone()
        flows = conn.execute(
            "SELECT sum(CASE side WHEN 'buy' THEN -1 ELSE 1 END * quantity * price"
            " - commission) FROM fills"
        ).fetchone()[0]
    assert cash == pytest.approx(100_000 + flows, abs=1e-6)
    assert equity == pytest.approx(summaries[-1]["equity"], abs=1e-6)


def test_a_failure_after_fills_then_a_rerun_commits_one_set_of_fills(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = write_config(tmp_path)
    db = tmp_path / "pt.duckdb"
    first, crash = SESSION_OPEN, SESSION_OPEN + timedelta(minutes=1)
    trading_interval(as_of=first, config=str(cfg))
    real = interval.simulate_fills

    def fills_then_crash(run: interval.IntervalRun) -> list:
        real(run)
        raise RuntimeError("injected: process died before the commit")

    monkeypatch.setattr(interval, "simulate_fills", fills_then_crash)
    with pytest.raises(RuntimeError, match="injected"):
        trading_interval(as_of=crash, config=str(cfg))
    after_crash = _counts(db)
    monkeypatch.setattr(interval, "simulate_fills", real)

    rerun = trading_interval(as_of=crash, config=str(cfg))
    (tmp_path / "ref").mkdir()
    reference_cfg = write_config(tmp_path / "ref")
    reference = [
        interval.run_interval(_settings(reference_cfg), t, _provider(reference_cfg))
        for t in (first, crash)
    ]

    assert after_crash["intervals"] == 1
    assert rerun["status"] == "committed"
    assert rerun["n_fills"] == reference[1]["n_fills"]
    assert rerun["equity"] == pytest.approx(reference[1]["equity"], abs=1e-9)
    with duckdb.connect(str(db), read_only=True) as conn:
        dupes = conn.execute(
            "SELECT count(*) FROM (SELECT client_order_id FROM orders "
            "GROUP BY client_order_id HAVING count(*) > 1)"
        ).fetchone()[0]
    assert dupes == 0


def test_holiday_and_early_close(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    thanksgiving = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
    after_early_close = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)
    last_of_early_session = datetime(2026, 11, 27, 17, 59, tzinfo=UTC)

    holiday = trading_interval(as_of=thanksgiving, config=str(cfg))
    forced = trading_interval(as_of=thanksgiving, force=True, config=str(cfg))
    closed = trading_interval(as_of=after_early_close, config=str(cfg))
    last = trading_interval(as_of=last_of_early_session, config=str(cfg))

    assert holiday["status"] == "market_closed"
    assert closed["status"] == "market_closed"
    assert last["status"] == "committed"
    assert forced["status"] == "committed"
    with duckdb.connect(str(tmp_path / "pt.duckdb"), read_only=True) as conn:
        open_day_orders = conn.execute(
            "SELECT count(*) FROM open_orders WHERE time_in_force = 'day'"
        ).fetchone()[0]
    assert open_day_orders == 0


def test_a_run_that_starts_an_interval_after_its_slot_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a worker back from downtime: Prefect hands it the runs it missed, each named by its slot
    import flows.trading_interval as module

    cfg = write_config(tmp_path)
    slot = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    monkeypatch.setattr(module, "scheduled_start", lambda: slot)

    late = trading_interval(config=str(cfg))
    wrote = (tmp_path / "pt.duckdb").exists()
    forced = trading_interval(config=str(cfg), force=True)

    assert (late["status"], late["as_of"]) == ("late", slot.isoformat())
    assert late["late_seconds"] >= 300 and not wrote
    assert forced["status"] == "committed"


def _settings(cfg: Path):  # type: ignore[no-untyped-def]
    from papertrade.settings import load_settings

    return load_settings(cfg, cfg.parent / "pt.duckdb")


def _provider(cfg: Path):  # type: ignore[no-untyped-def]
    from paper_broker.market_data.factory import make_provider

    settings = _settings(cfg)
    return make_provider(settings.market_data, settings.universe.symbols)


def test_interval_json_is_one_document_with_alerts_on_stderr(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from papertrade.cli import app

    cfg = write_config(tmp_path)
    runs = [
        CliRunner().invoke(
            app, ["interval", "--as-of", t.isoformat(), "--config", str(cfg), "--json"]
        )
        for t in (TRADING_START + timedelta(minutes=m) for m in range(3))
    ]

    assert all(r.exit_code == 0 for r in runs), [r.output for r in runs]
    assert [json.loads(r.stdout)["status"] for r in runs] == ["committed"] * 3
    assert "[info] fills:" in runs[2].stderr  # printed, as no Slack is set


def test_accounts_whose_ids_differ_in_punctuation_keep_their_own_artifacts(
    tmp_path: Path,
) -> None:
    # `team_a` and `team-a` both became the key `team-a-...`: the dashboard's latest
    # account line of one showed the other account
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    for account in ("team_a", "team-a"):
        (tmp_path / account).mkdir()
        cfg = write_config(tmp_path / account, account=account)
        assert trading_interval(as_of=SESSION_OPEN, config=str(cfg))["status"] == "committed"

    with get_client(sync_client=True) as client:
        latest = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="team-a%-account"))
        )
    lines = {a.key: a.data for a in latest}

    assert len(lines) == 2, sorted(lines)
    assert sorted("### team_a at" in d for d in lines.values()) == [False, True]
    assert sorted("### team-a at" in d for d in lines.values()) == [False, True]
