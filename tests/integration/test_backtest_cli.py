"""`papertrade backtest` and `walk-forward` end to end on real files: results in the
warehouse, costs from the options, bad input exit 2 with nothing written, and no Prefect or
Great Expectations on the backtest path."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from papertrade.cli import app
from tests.unit.test_backtest_engine import CLOSES, OPENS, bars_frame
from warehouse.commit import commit_interval
from warehouse.testing import make_commit

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def bars_csv(tmp_path: Path) -> Path:
    path = tmp_path / "bars.csv"
    bars_frame({"AAA": CLOSES}, {"AAA": OPENS}).to_csv(path, index=False)
    return path


def test_backtest_json_and_warehouse_rows(tmp_path: Path, bars_csv: Path):
    db = tmp_path / "w.duckdb"

    result = run("backtest", "--bars", bars_csv, "--strategy", "sma_crossover",
                 "--param", "fast=2", "--param", "slow=3", "--commission-bps", "10",
                 "--slippage-bps", "10", "--json", "--db", db)  # fmt: skip

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["account_id"] == "backtest-sma_crossover" and out["n_fills"] == 2
    with duckdb.connect(str(db), read_only=True) as conn:
        fills = conn.execute(
            "SELECT side, price, commission FROM fills WHERE account_id = ? ORDER BY ts",
            [out["account_id"]],
        ).fetchall()
        n_equity = conn.execute("SELECT count(*) FROM equity").fetchone()[0]
        perf = conn.execute("SELECT sharpe, n_trades FROM daily_performance").fetchone()
    buy = math.ceil(round(OPENS[5] * 1.001 / 0.01, 6)) * 0.01
    sell = math.floor(round(OPENS[7] * 0.999 / 0.01, 6)) * 0.01
    assert [f[0] for f in fills] == ["buy", "sell"]
    assert fills[0][1:] == pytest.approx((buy, 100 * buy * 0.001))
    assert fills[1][1:] == pytest.approx((sell, 100 * sell * 0.001))
    assert n_equity == len(CLOSES)
    assert perf[1] == 1


def test_backtest_refuses_the_paper_account_and_leaves_it_unchanged(tmp_path, bars_csv):
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=2))
    before = db.read_bytes()

    named = run("backtest", "--bars", bars_csv, "--strategy", "sma_crossover",
                "--account-id", "paper", "--db", db)  # fmt: skip

    assert named.exit_code == 2 and "paper account" in named.stderr
    assert db.read_bytes() == before


def test_backtest_refuses_an_empty_account_id(tmp_path, bars_csv):
    # `--account-id "$ID"` with the variable unset replaced backtest-sma_crossover's results
    db = tmp_path / "w.duckdb"
    first = run("backtest", "--bars", bars_csv, "--strategy", "sma_crossover",
                "--param", "fast=2", "--param", "slow=3", "--db", db)  # fmt: skip
    assert first.exit_code == 0, first.output
    before = db.read_bytes()

    empty = run("backtest", "--bars", bars_csv, "--strategy", "sma_crossover", "--param",
                "fast=2", "--param", "slow=4", "--account-id", "", "--db", db)  # fmt: skip

    assert empty.exit_code == 2 and "--account-id ''" in empty.stderr
    assert db.read_bytes() == before


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


HEADER = "timestamp,symbol,open,high,low,close,volume\n"
ROW = "2024-01-0{d}T21:00:00Z,AAA,10,11,9,{c},100\n"


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("nocols.csv", "timestamp,symbol,close\n2024-01-02,AAA,1\n", "missing columns"),
        ("dup.csv", HEADER + ROW.format(d=2, c=10) * 2, "duplicate bar"),
        ("neg.csv", HEADER + ROW.format(d=2, c=-1), "close must be a positive"),
        ("nan.csv", HEADER + ROW.format(d=2, c="nan"), "close must be a positive"),
        ("hl.csv", HEADER + "2024-01-02T21:00:00Z,AAA,10,8,9,10,100\n", "high 8 < low 9"),
        ("ts.csv", HEADER + "someday,AAA,10,11,9,10,100\n", "unparseable timestamp"),
        ("empty.csv", "", "is empty"),
        ("header.csv", HEADER, "no rows"),
        ("bars.txt", HEADER, "unknown file type"),
        ("absent.csv", None, "not found"),
    ],
)
def test_bad_bars_files_exit_2_and_write_nothing(tmp_path, name, text, needle):
    bars = tmp_path / name if text is None else _write(tmp_path / name, text)
    db = tmp_path / "w.duckdb"

    result = run("backtest", "--bars", bars, "--strategy", "sma_crossover", "--db", db)

    assert result.exit_code == 2, result.output
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--slippage-bps", "15000"], "--slippage-bps 15000.0: must be a number from 0 to 1000"),
        (["--commission-bps", "20000"], "--commission-bps 20000.0: must be a number from 0 to"),
        (["--slippage-bps", "-1"], "--slippage-bps -1.0: must be a number from 0 to 1000"),
        (["--cash", "0"], "--cash 0.0: must be a finite number > 0"),
    ],
)
def test_costs_outside_the_configs_bounds_exit_2(tmp_path, bars_csv, args, needle):
    db = tmp_path / "w.duckdb"

    result = run("backtest", "--bars", bars_csv, "--strategy", "sma_crossover", *args,
                 "--db", db)  # fmt: skip

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: {needle}")
    assert len(result.stderr.splitlines()) == 1
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--strategy", "no_such"], "unknown strategy"),
        (["--strategy", "sma_crossover", "--param", "speed=3"], "speed"),
        (["--strategy", "sma_crossover", "--param", "fast=50"], "fast"),
    ],
)
def test_unknown_strategy_or_parameter_exit_2(tmp_path, bars_csv, args, needle):
    db = tmp_path / "w.duckdb"

    result = run("backtest", "--bars", bars_csv, *args, "--db", db)

    assert result.exit_code == 2 and needle in result.stderr
    assert not db.exists()


def test_walk_forward_json_reports_in_and_out_of_sample(tmp_path):
    from tests.unit.test_backtest_engine import random_panel

    panel = random_panel(3, 160, seed=2)
    frame = bars_frame(
        {s: panel.close[:, i].tolist() for i, s in enumerate(panel.symbols)},
        {s: panel.open[:, i].tolist() for i, s in enumerate(panel.symbols)},
    )
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)

    result = run("walk-forward", "--bars", path, "--strategy", "sma_crossover",
                 "--grid", "fast=3,5", "--grid", "slow=10,20", "--train", 60, "--test", 25,
                 "--cash", 1e6, "--no-risk", "--json", "--db", tmp_path / "w.duckdb")  # fmt: skip

    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [(w["test_start"], w["test_stop"]) for w in out["windows"]] == [
        (60, 85),
        (85, 110),
        (110, 135),
        (135, 160),
    ]
    assert all(w["train_stop"] <= w["test_start"] for w in out["windows"])
    assert set(out["in_sample"]) == set(out["out_of_sample"])
    assert not (tmp_path / "w.duckdb").exists()


def test_walk_forward_notes_parameter_sets_a_training_window_is_too_short_for(tmp_path):
    # slow=70 cannot signal in 60 bars: its in-sample metrics were flat without a word
    from tests.unit.test_backtest_engine import random_panel

    panel = random_panel(2, 120, seed=3)
    frame = bars_frame({s: panel.close[:, i].tolist() for i, s in enumerate(panel.symbols)})
    path = _write(tmp_path / "bars.csv", frame.to_csv(index=False))

    result = run("walk-forward", "--bars", path, "--strategy", "sma_crossover",
                 "--grid", "fast=3", "--grid", "slow=10,60,70", "--train", 60, "--test", 30,
                 "--no-risk", "--json", "--db", tmp_path / "w.duckdb")  # fmt: skip

    assert result.exit_code == 0, result.output
    assert result.stderr == (
        'note: 2 parameter sets need 60 bars or more before their first signal, e.g. {"fast":'
        ' 3, "slow": 60}: they cannot trade in a 60-bar training window\n'
    )


@pytest.mark.parametrize(("slow", "noted"), [(9, True), (8, False)])
def test_a_file_too_short_for_the_first_signal_gets_a_note(tmp_path, bars_csv, slow, noted):
    result = run("backtest", "--bars", bars_csv, "--strategy", "sma_crossover",
                 "--param", "fast=2", "--param", f"slow={slow}", "--json",
                 "--db", tmp_path / "w.duckdb")  # fmt: skip

    assert result.exit_code == 0, result.output
    note = (
        f"note: strategy sma_crossover needs {slow} bars before its first signal and the file"
        f" has {len(CLOSES)}: it cannot trade\n"
    )
    assert (result.stderr == note) is noted
    assert json.loads(result.stdout)["n_fills"] == 0


def test_backtest_path_imports_neither_prefect_nor_great_expectations(tmp_path, bars_csv):
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from papertrade.cli import app\n"
        f"r = CliRunner().invoke(app, ['backtest', '--bars', {str(bars_csv)!r}, '--strategy',"
        f" 'sma_crossover', '--json', '--db', {str(tmp_path / 'w.duckdb')!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in ('prefect', 'great_expectations') if m in sys.modules))\n"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip

    assert out.stdout.strip() == "[]"


def test_parquet_backtest_loads_no_orchestration_plotting_http_or_slack_modules(tmp_path):
    # Arrange: the console entry point on a Parquet file, as users run it
    frame = bars_frame({"AAA": [10.0, 11.0, 12.0, 11.0, 13.0], "BBB": [5.0, 5.5, 5.0, 6.0, 6.5]})
    bars = tmp_path / "bars.parquet"
    frame.to_parquet(bars, index=False)
    heavy = ("prefect", "great_expectations", "matplotlib", "httpx", "slack_sdk", "dask",
             "distributed")  # fmt: skip
    code = (
        "import sys\n"
        "from papertrade.cli import main\n"
        f"sys.argv = ['papertrade', 'backtest', '--bars', {str(bars)!r}, '--strategy',"
        f" 'buy_and_hold', '--json', '--db', {str(tmp_path / 'w.duckdb')!r}]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )

    # Act
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip

    # Assert
    assert json.loads(out.stdout)["n_fills"] >= 1
    assert out.stderr.strip().splitlines()[-1] == "[]"


def test_help_names_the_config_sections_it_falls_back_to() -> None:
    # rich reads "[risk]" as markup and drops it unless it is escaped
    out = " ".join(
        runner.invoke(app, ["backtest", "--help"], env={"COLUMNS": "200"}).stdout.split()
    )

    assert "Apply the [risk] pre-trade checks" in out
    assert (
        "the config's [broker] commission" in out and "the config's [account] initial_cash" in out
    )


def test_minute_bars_get_a_note_on_annualisation_and_an_option_for_it(tmp_path: Path) -> None:
    frame = bars_frame({"AAA": CLOSES, "BBB": [c * 2 for c in CLOSES]})
    day = frame["timestamp"].dt.normalize()
    frame["timestamp"] = day.iloc[0] + (day - day.iloc[0]).dt.days * pd.Timedelta(minutes=1)
    bars = tmp_path / "minutes.csv"
    frame.to_csv(bars, index=False)
    base = ["backtest", "--bars", bars, "--strategy", "buy_and_hold", "--json", "--no-risk"]

    as_days = run(*base, "--db", tmp_path / "a.duckdb")
    as_minutes = run(*base, "--db", tmp_path / "b.duckdb", "--periods-per-year", 98280)

    assert as_days.exit_code == 0 and as_minutes.exit_code == 0, as_days.output
    note = " ".join(as_days.stderr.split())
    assert "the bars are 1 minute apart" in note and "e.g. 98280 for 1-minute bars" in note
    assert as_minutes.stderr == ""
    daily, minutely = (json.loads(r.stdout)["metrics"] for r in (as_days, as_minutes))
    assert minutely["volatility"] == pytest.approx(daily["volatility"] * (98280 / 252) ** 0.5)


def test_intraday_backtest_stores_the_last_days_return_not_the_last_bars(tmp_path: Path):
    # four one-minute bars on each of two New York sessions, held through both
    closes = [100.0, 101.0, 102.0, 103.0, 110.0, 111.0, 112.0, 108.0]
    times = [pd.Timestamp(f"2024-03-{day}T14:3{m}Z") for day in ("04", "05") for m in range(4)]
    frame = pd.DataFrame({"timestamp": times, "symbol": "AAA", "open": closes, "high": closes,
                          "low": closes, "close": closes, "volume": 1e6})  # fmt: skip
    bars = _write(tmp_path / "minutes.csv", frame.to_csv(index=False))
    db = tmp_path / "w.duckdb"

    result = run("backtest", "--bars", bars, "--strategy", "buy_and_hold", "--no-risk",
                 "--fill-model", "close", "--periods-per-year", 98280, "--db", db)  # fmt: skip

    assert result.exit_code == 0, result.output
    with duckdb.connect(str(db), read_only=True) as conn:
        equity = [e for (e,) in conn.execute("SELECT equity FROM equity ORDER BY ts").fetchall()]
        perf = conn.execute("SELECT session_date, daily_return FROM daily_performance").fetchone()
        last_day = conn.execute(
            "SELECT session_date, daily_return FROM daily_pnl ORDER BY session_date DESC LIMIT 1"
        ).fetchone()
    # the day: the 5 March close against the 4 March close, not 14:33 against 14:32
    assert equity[-1] / equity[-2] - 1 == pytest.approx(108 / 112 - 1, rel=1e-2)
    assert perf[1] == pytest.approx(equity[-1] / equity[3] - 1, rel=1e-12)
    assert perf == pytest.approx(last_day)


@pytest.mark.parametrize(("days", "periods"), [(7, 52), (31, 12)])
def test_weekly_and_monthly_bars_get_a_note_on_annualisation(tmp_path, days, periods):
    frame = bars_frame({"AAA": CLOSES})
    frame["timestamp"] = frame["timestamp"].iloc[0] + pd.Timedelta(days=days) * pd.Series(
        range(len(frame)), index=frame.index
    )
    bars = tmp_path / "bars.csv"
    frame.to_csv(bars, index=False)
    base = ["backtest", "--bars", bars, "--strategy", "buy_and_hold", "--json", "--no-risk"]

    plain = run(*base, "--db", tmp_path / "a.duckdb")
    given = run(*base, "--db", tmp_path / "b.duckdb", "--periods-per-year", periods)

    assert plain.exit_code == 0 and given.exit_code == 0, plain.output
    assert plain.stderr == (
        f"note: the bars are {days} days apart, but the metrics annualise 252 periods a year"
        f" (daily bars): pass --periods-per-year, e.g. {periods} for {days}-day bars\n"
    )
    assert given.stderr == ""


def test_a_sweep_refuses_a_bad_bars_file_in_one_line_before_prefect(tmp_path):
    bars = _write(tmp_path / "bars.csv", HEADER + "2024-01-02,AAA,10,10,10,inf,100\n")
    db = tmp_path / "w.duckdb"

    result = run("sweep", "--bars", bars, "--strategy", "sma_crossover",
                 "--grid", "fast=2", "--grid", "slow=3,4", "--db", db)  # fmt: skip

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {bars}: row 1 (AAA): close must be a positive number (got inf)\n"
    )
    assert not db.exists()


def test_a_dask_address_where_no_scheduler_listens_exits_2_at_once(tmp_path, bars_csv):
    import socket

    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    db = tmp_path / "w.duckdb"

    result = run("sweep", "--bars", bars_csv, "--strategy", "sma_crossover",
                 "--grid", "fast=2", "--grid", "slow=3,4", "--runner", "dask",
                 "--dask-address", f"tcp://127.0.0.1:{port}", "--db", db)  # fmt: skip

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"error: --dask-address tcp://127.0.0.1:{port}: no Dask scheduler answers there ("
    )
    assert len(result.stderr.splitlines()) == 1
    assert not db.exists()
