"""Bad input to the flow commands: one line, exit 2, nothing written, and no Prefect start."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from papertrade.cli import app
from papertrade.errors import UserError

runner = CliRunner()


def _invoke(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["interval", "--as-of", "yesterday"], "--as-of is not an ISO 8601 timestamp"),
        (["interval", "--as-of", "2026-13-40T10:00"], "--as-of is not an ISO 8601 timestamp"),
        (["eod", "--date", "2026-02-30"], "--date is not a YYYY-MM-DD date"),
        (["eod"], "no warehouse at"),
    ],
)
def test_bad_dates_and_missing_warehouse(tmp_path: Path, args: list[str], message: str) -> None:
    db = tmp_path / "pt.duckdb"

    result = _invoke(*args, "--db", str(db))

    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()


def test_missing_config_file(tmp_path: Path) -> None:
    result = _invoke("interval", "--config", str(tmp_path / "nope.toml"))

    assert result.exit_code == 2
    assert "config file not found" in result.output


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[strategy]\nname = "no_such_strategy"\n', "no_such_strategy"),
        ('[strategy]\nname = "sma_crossover"\nparams = { fast = 50, slow = 5 }\n', "fast"),
        ('[strategy]\nname = "sma_crossover"\nparams = { speed = 3 }\n', "speed"),
        ("[risk]\nmax_order_notional = -1\n", "risk.max_order_notional"),
        ('[market_data]\ncalendar = "XXXX"\n', "unknown exchange calendar: XXXX"),
        # a paper account that could never signal
        (
            '[strategy]\nname = "sma_crossover"\nparams = { fast = 10, slow = 150 }\n',
            "market_data.history_bars: 100 bars of history, but strategy sma_crossover needs 150",
        ),
        ('[market_data]\nhistory_bars = 19\n[strategy]\nname = "momentum"\n', "needs 20"),
    ],
)
def test_bad_strategy_or_config_fails_before_anything_runs(
    tmp_path: Path, toml: str, message: str
) -> None:
    cfg = tmp_path / "papertrade.toml"
    cfg.write_text(toml)
    db = tmp_path / "pt.duckdb"

    result = _invoke("interval", "--config", str(cfg), "--db", str(db))

    assert result.exit_code == 2
    assert message in result.output
    assert not db.exists()


def _committed(tmp_path: Path) -> Path:
    """A warehouse holding one committed interval of the account `paper`."""
    from warehouse.commit import commit_interval
    from warehouse.testing import make_commit

    db = tmp_path / "pt.duckdb"
    commit_interval(db, make_commit(n=1))
    return db


def test_unknown_account(tmp_path: Path) -> None:
    db = _committed(tmp_path)
    before = db.read_bytes()

    results = [
        _invoke(command, "--db", str(db), "--account-id", "nobody")
        for command in ("positions", "account")
    ]

    for result in results:
        assert result.exit_code == 2
        # the ids the file holds are named, so a typo is plain to see
        assert result.stderr == f"error: unknown account in {db}: nobody (it holds paper)\n"
    assert db.read_bytes() == before


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # the Monday after Thanksgiving: Friday closed early at 13:00, Thursday was a holiday
        (datetime(2026, 11, 30, 14, 0, tzinfo=UTC), date(2026, 11, 25)),
        # during a session: the one before it
        (datetime(2026, 11, 25, 15, 0, tzinfo=UTC), date(2026, 11, 24)),
        (datetime(2026, 11, 25, 21, 5, tzinfo=UTC), date(2026, 11, 25)),
    ],
)
def test_the_demo_trades_the_last_full_session(now: datetime, expected: date) -> None:
    from papertrade.calendar import MarketCalendar
    from papertrade.cli_flows import last_full_session
    from papertrade.settings import MarketDataSettings

    calendar = MarketCalendar.for_market(MarketDataSettings(interval_seconds=600))
    session = last_full_session(calendar, now)

    assert session.date == expected
    assert len(calendar.intervals(session)) == 39


def test_demo_refuses_an_existing_file(tmp_path: Path) -> None:
    db = tmp_path / "mine.duckdb"
    db.write_bytes(b"precious")

    result = _invoke("demo", "--db", str(db))

    assert result.exit_code == 2
    assert db.read_bytes() == b"precious"


def test_the_demo_removes_only_its_own_files_of_a_previous_run(tmp_path: Path) -> None:
    # it removed every papertrade-demo.duckdb* file, a user's .bak copy included
    from papertrade.cli_flows import remove_previous_demo

    db = tmp_path / "papertrade-demo.duckdb"
    own = [db, tmp_path / "papertrade-demo.duckdb.wal",
           tmp_path / "papertrade-demo.duckdb.writer.lock",
           tmp_path / "papertrade-demo.duckdb.demo.run.lock",
           tmp_path / "papertrade-demo.duckdb.outbox.lock"]  # fmt: skip
    kept = [tmp_path / "papertrade-demo.duckdb.bak", tmp_path / "papertrade-demo.duckdb-old"]
    for path in [*own, *kept]:
        path.write_text("x")

    remove_previous_demo(db)

    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in kept)


def test_the_demo_uses_the_simulated_market_whatever_the_config_says(tmp_path: Path) -> None:
    from papertrade.cli_flows import DEMO_ENV

    cfg = tmp_path / "papertrade.toml"
    # a polygon config without its key; the bad calendar stops the demo before Prefect starts
    cfg.write_text('[market_data]\nprovider = "polygon"\ncalendar = "XXXX"\n')

    result = runner.invoke(
        app,
        ["demo", "--config", str(cfg), "--db", str(tmp_path / "demo.duckdb")],
        # the demo sets its overrides in the environment; the runner restores them after
        env={key: None for key in DEMO_ENV},
        catch_exceptions=False,
    )

    assert result.exit_code == 2
    assert "unknown exchange calendar: XXXX" in result.output
    assert "POLYGON_API_KEY" not in result.output


def test_missing_provider_keys_are_named_before_anything_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POLYGON_API_KEY", raising=False)
    cfg = tmp_path / "papertrade.toml"
    cfg.write_text('[market_data]\nprovider = "polygon"\n')
    db = tmp_path / "pt.duckdb"

    result = _invoke("interval", "--config", str(cfg), "--db", str(db))

    assert result.exit_code == 2
    assert "POLYGON_API_KEY" in result.output
    assert not db.exists()


def test_eod_for_an_unknown_account_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _committed(tmp_path)
    before = db.read_bytes()
    monkeypatch.setenv("PAPERTRADE_ACCOUNT__ID", "nobody")

    result = _invoke("eod", "--date", "2026-11-24", "--db", str(db))

    assert result.exit_code == 2, result.output
    assert "unknown account" in result.output
    assert db.read_bytes() == before


def test_an_interval_before_the_accounts_last_is_refused_before_prefect_starts(
    tmp_path: Path,
) -> None:
    from warehouse.commit import commit_interval
    from warehouse.testing import T0, make_commit

    db = tmp_path / "pt.duckdb"
    commit_interval(db, make_commit(T0, n=1))
    before = db.read_bytes()
    earlier = (T0 - timedelta(minutes=5)).isoformat()
    typed = (T0 - timedelta(minutes=5) + timedelta(seconds=30)).isoformat()

    result = _invoke("interval", "--as-of", typed, "--force", "--db", str(db))

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [  # the interval's name, as_of floored
        f"error: interval {earlier} is before account paper's last committed interval "
        f"{T0.isoformat()}: intervals are committed in time order"
    ]
    assert db.read_bytes() == before


def test_an_earlier_interval_that_is_committed_passes_the_preflight(tmp_path: Path) -> None:
    # running it again is a no-op that returns its summary, as the run itself decides
    from papertrade.interval import check_warehouse
    from papertrade.settings import load_settings
    from warehouse.commit import commit_interval
    from warehouse.testing import T0, make_commit

    db = tmp_path / "pt.duckdb"
    commit_interval(db, make_commit(T0, n=1))
    commit_interval(db, make_commit(T0 + timedelta(minutes=1), n=1, first_id=10))
    settings = load_settings(None, db)

    check_warehouse(settings, T0)
    with pytest.raises(UserError, match="before account paper's last committed interval"):
        check_warehouse(settings, T0 - timedelta(minutes=1))


def test_an_interval_into_a_backtests_account_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paper_broker.market_data.factory import make_provider
    from papertrade.interval import run_interval
    from papertrade.settings import load_settings
    from warehouse.connection import connect
    from warehouse.testing import T0

    db = tmp_path / "pt.duckdb"
    with connect(db) as conn:
        conn.execute("INSERT INTO accounts VALUES ('bt', now(), 1000, 'backtest', NULL)")
    before = db.read_bytes()
    monkeypatch.setenv("PAPERTRADE_ACCOUNT__ID", "bt")
    settings = load_settings(None, db)
    provider = make_provider(settings.market_data, settings.universe.symbols)

    result = _invoke("interval", "--as-of", T0.isoformat(), "--force", "--db", str(db))
    with pytest.raises(UserError, match="bt is a backtest account"):
        run_interval(settings, T0, provider, force=True)

    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: account bt is a backtest account: trade on paper under another [account] id"
    ]
    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM intervals").fetchall() == [(0,)]
    assert db.read_bytes() == before


def test_a_prefect_api_url_no_server_answers_is_one_line(tmp_path: Path) -> None:
    """In a process of its own: Prefect reads `PREFECT_API_URL` when it is first imported."""
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api"
    db = tmp_path / "pt.duckdb"
    papertrade = Path(sys.executable).with_name("papertrade")

    result = subprocess.run(
        [str(papertrade), "interval", "--force", "--db", str(db)],
        env={**os.environ, "PREFECT_API_URL": url}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: no Prefect server answers at {url} (PREFECT_API_URL): start it, or unset the "
        "variable to run on a temporary server"
    ]
    assert not db.exists()


def test_a_prefect_home_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    """In a process of its own, as Prefect reads PREFECT_HOME when it is first imported;
    the temporary server would wait out its start-up timeout, then fail."""
    import os
    import subprocess
    import sys

    (tmp_path / "afile").write_text("not a directory")
    db = tmp_path / "pt.duckdb"
    papertrade = Path(sys.executable).with_name("papertrade")

    result = subprocess.run(
        [str(papertrade), "interval", "--force", "--db", str(db)],
        env={**os.environ, "PREFECT_HOME": str(tmp_path / "afile" / "prefect")},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr.startswith(f"error: PREFECT_HOME {tmp_path / 'afile' / 'prefect'}")
    assert result.stderr.count("\n") == 1 and not db.exists()


def _not_a_warehouse(tmp_path: Path, kind: str) -> Path:
    import duckdb

    path = tmp_path / f"{kind}.duckdb"
    if kind == "directory":
        path.mkdir()
    elif kind == "text":
        path.write_text("hello\n")
    elif kind == "empty":
        path.write_bytes(b"")
    else:  # another program's DuckDB file
        with duckdb.connect(str(path)) as conn:
            conn.execute("CREATE TABLE x (a INTEGER)")
    return path


@pytest.mark.parametrize("kind", ["directory", "text", "empty", "foreign"])
@pytest.mark.parametrize(
    "command",
    [["interval", "--force"], ["eod"], ["account"], ["kill-switch", "on", "--reason", "x"]],
)
def test_a_db_that_is_not_a_warehouse_is_refused_and_left_alone(
    tmp_path: Path, kind: str, command: list[str]
) -> None:
    db = _not_a_warehouse(tmp_path, kind)
    before = None if db.is_dir() else db.read_bytes()

    result = _invoke(*command, "--db", str(db))

    assert result.exit_code == 2
    assert result.output.startswith(f"error: {db} is not a papertrade warehouse: ")
    assert len(result.output.strip().splitlines()) == 1
    assert (None if db.is_dir() else db.read_bytes()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [db.name]  # no lock file either


def test_an_as_of_in_the_future_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "pt.duckdb"

    result = _invoke("interval", "--as-of", "2100-06-01T15:00:00Z", "--db", str(db))

    assert result.exit_code == 2
    assert result.output.strip() == "error: --as-of 2100-06-01T15:00:00+00:00 is in the future"
    assert not db.exists()


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("2100-06-01", "error: session 2100-06-01 has not closed yet (20:00 UTC)"),
        ("2025-02-28", "error: account paper had not traded by the close of 2025-02-28 (its first"),
    ],
)
def test_eod_of_a_session_without_the_account_trading_writes_nothing(
    tmp_path: Path, day: str, message: str
) -> None:
    from warehouse.commit import commit_interval
    from warehouse.testing import T0, make_commit

    db = tmp_path / "pt.duckdb"
    commit_interval(db, make_commit(T0, n=1))  # 2025-03-03
    before = db.read_bytes()

    result = _invoke("eod", "--date", day, "--db", str(db))

    assert result.exit_code == 2, result.output
    assert result.output.startswith(message)
    assert db.read_bytes() == before


def test_eod_of_a_backtest_account_says_it_is_one_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from warehouse.connection import connect
    from warehouse.results import write_backtest
    from warehouse.testing import T0, make_fill

    db = tmp_path / "pt.duckdb"
    with connect(db) as conn:  # a backtest that traded on 2025-03-03
        write_backtest(conn, "bt", initial_cash=1e5, created_at=T0, fills=[make_fill(1, ts=T0)])
    before = db.read_bytes()
    monkeypatch.setenv("PAPERTRADE_ACCOUNT__ID", "bt")

    result = _invoke("eod", "--date", "2025-03-03", "--db", str(db))

    # it said "account bt had not traded by the close of 2025-03-03"
    assert result.exit_code == 2, result.output
    assert result.output.startswith("error: account bt is a backtest account:")
    assert db.read_bytes() == before


def test_eod_of_a_day_without_a_session_says_so_without_prefect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from papertrade import cli_flows

    db = _committed(tmp_path)
    before = db.read_bytes()
    monkeypatch.setattr(cli_flows, "prepare_prefect", lambda **_: pytest.fail("Prefect started"))

    result = _invoke("eod", "--date", "2026-11-26", "--db", str(db), "--json")

    assert result.exit_code == 0, result.output
    assert '"status": "no_session"' in result.output
    assert db.read_bytes() == before


def test_eod_help_names_its_default_session() -> None:
    result = runner.invoke(app, ["eod", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    assert "Session date YYYY-MM-DD (default: the latest closed session)." in result.output


def test_command_list_shows_each_summary_as_one_sentence() -> None:
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "250"})

    assert result.exit_code == 0
    # the sweep docstring breaks its first sentence after "rank them"
    assert "one Prefect task each; rank them by --metric and store" in result.output


def test_an_interval_that_found_its_account_busy_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flows.trading_interval
    from papertrade import cli_flows

    busy = {"account_id": "paper", "status": "busy", "detail": "another run holds it"}
    monkeypatch.setattr(cli_flows, "prepare_prefect", lambda **_: None)
    monkeypatch.setattr(flows.trading_interval, "trading_interval", lambda **_: busy)

    result = _invoke("interval", "--force", "--db", str(tmp_path / "pt.duckdb"), "--json")

    assert result.exit_code == 1
    assert '"status": "busy"' in result.output


def test_python_m_papertrade_cli_has_every_command() -> None:
    import subprocess
    import sys

    # `python -m papertrade.cli` runs the module as __main__, a second copy of it beside
    # the one the command modules register on
    out = subprocess.run(
        [sys.executable, "-m", "papertrade.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert out.returncode == 0, out.stderr
    assert "Trade a simulated session" in out.stdout
