"""`papertrade sql|positions|orders|fills|account|kill-switch` on real warehouse files."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from papertrade import cli_warehouse
from papertrade.cli import app
from warehouse.commit import commit_interval
from warehouse.connection import connect
from warehouse.testing import make_commit

runner = CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "w.duckdb"
    commit_interval(path, make_commit(n=3))
    return path


def run(*args: str):
    return runner.invoke(app, list(args))


def test_sql_prints_json_and_csv(db: Path) -> None:
    as_json = run("sql", "SELECT symbol FROM fills ORDER BY symbol", "--db", str(db), "--json")
    as_csv = run("sql", "SELECT count(*) AS n FROM fills", "--db", str(db), "--csv")
    table = run("sql", "SELECT count(*) AS n FROM fills", "--db", str(db))

    assert as_json.exit_code == 0, as_json.output
    assert [r["symbol"] for r in json.loads(as_json.stdout)] == ["S0000", "S0001", "S0002"]
    assert as_csv.stdout == "n\n3\n"
    assert table.exit_code == 0 and "3" in table.stdout


@pytest.mark.parametrize("width", [200, 40])
def test_a_table_shows_values_as_text_not_rich_markup(
    db: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """An outbox row's last_error "check [slack] channel" printed as "check  channel": Rich
    read the stored text as a style tag and dropped it, the setting to fix with it."""
    from papertrade.cli import console

    monkeypatch.setattr(console, "width", width)
    sql = "SELECT 'slack error channel_not_found: check [slack] channel' AS \"[last_error]\""

    out = run("sql", sql, "--db", str(db)).stdout

    assert "[slack]" in out and "[last_error]" in out, out


@pytest.mark.parametrize(("width", "expanded"), [(200, False), (60, True)])
def test_a_table_too_wide_for_the_terminal_prints_one_record_per_block(
    db: Path, monkeypatch: pytest.MonkeyPatch, width: int, expanded: bool
) -> None:
    from papertrade.cli import console

    monkeypatch.setattr(console, "width", width)
    sql = "SELECT fill_id, order_id, ts, symbol, side, quantity, price FROM fills ORDER BY fill_id"

    out = run("sql", sql, "--db", str(db)).stdout

    assert ("row 3" in out) is expanded
    # whole values either way, never cut to a few letters
    assert all(f"F{i:08d}" in out for i in range(3)), out
    assert max(len(line) for line in out.splitlines()) <= width


def test_an_empty_result_too_wide_for_the_terminal_says_it_has_no_rows(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from papertrade.cli import console

    monkeypatch.setattr(console, "width", 60)
    sql = "SELECT * FROM orders WHERE false"

    result = run("sql", sql, "--db", str(db))

    assert result.exit_code == 0 and result.stdout == "(0 rows)\n"


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM fills",
        "DROP TABLE fills",
        "COPY fills TO 'out.csv'",
        "ATTACH 'other.duckdb'",
        "INSERT INTO fills SELECT * FROM fills",
        "UPDATE fills SET price = 0",
        "CREATE TABLE t AS SELECT 1",
        "PRAGMA enable_profiling",
        "SET threads = 1",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SELECT 1; DELETE FROM fills",
        "EXPLAIN ANALYZE DELETE FROM fills",
    ],
)
def test_sql_refuses_statements_that_write(db: Path, statement: str) -> None:
    result = run("sql", statement, "--db", str(db))

    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM fills").fetchone() == (3,)


def test_sql_cannot_read_other_files(db: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")

    result = run("sql", f"SELECT * FROM read_csv('{secret}')", "--db", str(db))

    assert result.exit_code == 2
    assert "disabled" in result.stderr


def test_read_commands_refuse_a_missing_db_without_creating_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.duckdb"
    for command in (["sql", "SELECT 1"], ["positions"], ["fills"], ["kill-switch", "status"]):
        result = run(*command, "--db", str(missing))
        assert result.exit_code == 2, command
        assert "database file not found" in result.stderr
    assert not missing.exists()


def test_positions_orders_fills_account_as_json(db: Path) -> None:
    positions = json.loads(run("positions", "--db", str(db), "--json").stdout)
    orders = json.loads(run("orders", "--db", str(db), "--json", "--open").stdout)
    fills = json.loads(run("fills", "--db", str(db), "--json", "--limit", "2").stdout)
    account = json.loads(run("account", "--db", str(db), "--json").stdout)
    other = run("account", "--db", str(db), "--account-id", "ghost")

    assert [p["symbol"] for p in positions] == ["S0000", "S0001", "S0002"]
    assert [o["status"] for o in orders] == ["accepted"]
    assert len(fills) == 2
    assert account["trading_state"] == "active"
    assert account["equity"] == pytest.approx(account["cash"] + account["positions_value"])
    assert account["commissions"] == make_commit(n=3).state.commissions
    assert other.exit_code == 2


def test_kill_switch_on_off_and_status(db: Path) -> None:
    no_reason = run("kill-switch", "on", "--db", str(db))
    on = run("kill-switch", "on", "--reason", "broker outage", "--db", str(db))
    status_on = json.loads(run("kill-switch", "status", "--db", str(db), "--json").stdout)
    off = run("kill-switch", "off", "--db", str(db))
    off_again = run("kill-switch", "off", "--db", str(db))
    status_off = json.loads(run("kill-switch", "status", "--db", str(db), "--json").stdout)

    assert no_reason.exit_code == 2 and "--reason" in no_reason.stderr
    assert on.exit_code == 0 and off.exit_code == 0
    assert (status_on["state"], status_on["reason"]) == ("halted", "broker outage")
    assert status_off["state"] == "active"
    assert off_again.exit_code == 0 and "active already: nothing changed" in off_again.stderr
    with connect(db, read_only=True) as conn:
        kinds = conn.execute("SELECT count(*) FROM alerts WHERE kind = 'kill_switch'").fetchone()
        rows = conn.execute("SELECT count(*) FROM trading_state").fetchone()
    assert kinds == (2,) and rows == (2,)


_ODD_TYPES = (
    "SELECT '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS u, 'ab'::BLOB AS bl, [1, 2] AS l, "
    "{'a': 1} AS st, 'inf'::DOUBLE AS i, DATE '2026-01-01' AS d"
)


def test_sql_json_and_csv_print_every_duckdb_type_as_text(db: Path) -> None:
    as_json = run("sql", _ODD_TYPES, "--db", str(db), "--json")
    as_csv = run("sql", _ODD_TYPES, "--db", str(db), "--csv")

    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout) == [
        {"u": "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "bl": "\\x6162", "l": [1, 2],
         "st": {"a": 1}, "i": None, "d": "2026-01-01"}
    ]  # fmt: skip
    assert as_csv.stdout.splitlines()[1] == (
        '6ba7b810-9dad-11d1-80b4-00c04fd430c8,\\x6162,"[1, 2]","{""a"": 1}",inf,2026-01-01'
    )


def test_a_table_shows_its_first_rows_and_says_so(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_warehouse, "TABLE_ROWS", 5)

    result = run("sql", "SELECT range AS n FROM range(12)", "--db", str(db))

    assert result.exit_code == 0
    assert "showing the first 5 of 12 rows; --csv or --json print all" in result.stderr
    assert "│ 4 " in result.stdout and "│ 5 " not in result.stdout


_EXACT = (
    "SELECT 170141183460469231731687303715884105727::HUGEINT AS h,"
    " 12345678901234567.89::DECIMAL(38, 2) AS d"
)


def test_sql_keeps_hugeint_and_decimal_exact(db: Path) -> None:
    as_json = json.loads(run("sql", _EXACT, "--db", str(db), "--json").stdout)
    as_csv = run("sql", _EXACT, "--db", str(db), "--csv").stdout
    table = run("sql", _EXACT, "--db", str(db)).stdout

    assert as_json[0]["h"] == 2**127 - 1
    assert as_csv.splitlines()[1] == f"{2**127 - 1},12345678901234567.89"
    assert "12,345,678,901,234,567.89" in table and str(2**127 - 1) in table


@pytest.mark.parametrize("command", [["sql", "SELECT * FROM fills"], ["positions"], ["account"]])
def test_read_commands_do_not_load_pandas(db: Path, command: list[str]) -> None:
    # a second of start-up for a command that prints a few rows
    code = (
        "import sys\n"
        "from papertrade.cli import main\n"
        f"sys.argv = ['papertrade', *{command!r}, '--db', {str(db)!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "print('pandas' in sys.modules, file=sys.stderr)\n"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip

    assert json.loads(out.stdout)
    assert out.stderr.strip().splitlines()[-1] == "False"


def test_readers_of_a_file_of_an_older_papertrade_say_so_and_a_writer_upgrades_it(
    tmp_path: Path,
) -> None:
    import duckdb

    from warehouse import schema

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as raw:  # as papertrade at schema v5 left it
        schema.migrate(raw, target=5)
        raw.execute("INSERT INTO accounts VALUES ('paper', now(), 1000, 'paper', NULL)")
        raw.execute("INSERT INTO equity VALUES ('paper', now(), 1000, 0, 1000, 0, 0, 0, 0)")

    account = run("account", "--db", str(db))  # reads intervals.commissions (v6)
    trips = run("sql", "SELECT * FROM round_trips", "--db", str(db))  # a v2 view: there
    typo = run("sql", "SELECT nope FROM fills", "--db", str(db))
    upgrade = run("kill-switch", "off", "--db", str(db))
    after = run("account", "--db", str(db), "--json")

    assert account.exit_code == 2
    assert account.stderr.count("\n") == 1
    assert "has schema v5, older than this papertrade's" in account.stderr
    assert "commissions" in account.stderr
    assert "`papertrade kill-switch off` upgrades it and changes nothing else" in account.stderr
    assert trips.exit_code == 0
    # a query of the user's own still names its own mistake
    assert typo.exit_code == 2 and '"nope"' in typo.stderr and "schema v5" in typo.stderr
    assert upgrade.exit_code == 0, upgrade.output
    assert after.exit_code == 0, after.output
    assert json.loads(after.stdout)["equity"] == 1000.0


def test_a_query_error_on_a_current_file_does_not_blame_the_schema(db: Path) -> None:
    result = run("sql", "SELECT nope FROM fills", "--db", str(db))

    assert result.exit_code == 2
    assert result.stderr.startswith("error: SQL error: Binder Error")
    assert "schema" not in result.stderr


_NON_FINITE_INSIDE = (
    "SELECT ['nan'::DOUBLE, 'inf'::DOUBLE, 1.5] AS l, {'x': '-inf'::DOUBLE, 'y': 2} AS st"
)


def test_lists_and_structs_holding_nan_print_as_strict_json(db: Path) -> None:
    as_csv = run("sql", _NON_FINITE_INSIDE, "--db", str(db), "--csv")
    as_table = run("sql", _NON_FINITE_INSIDE, "--db", str(db))

    assert as_csv.exit_code == 0, as_csv.output
    (row,) = list(csv.DictReader(io.StringIO(as_csv.stdout)))

    def strict(text: str) -> object:
        return json.loads(text, parse_constant=lambda token: pytest.fail(f"not JSON: {token}"))

    assert strict(row["l"]) == [None, None, 1.5]
    assert strict(row["st"]) == {"x": None, "y": 2}
    assert "NaN" not in as_table.stdout and "Infinity" not in as_table.stdout


def test_account_of_a_backtest_shows_its_pnl_and_commissions(tmp_path: Path) -> None:
    # a backtest records no per-bar P&L: it comes from its fills and closing positions
    bars = tmp_path / "bars.csv"
    closes = [10, 10, 10, 10, 12, 13, 8, 7, 9, 11, 12, 12]
    bars.write_text(
        "timestamp,symbol,open,high,low,close,volume\n"
        + "".join(f"2024-01-{2 + k:02d}T21:00:00Z,AAA,{c},{c + 1},{c - 1},{c},1000000\n"
                  for k, c in enumerate(closes))
    )  # fmt: skip
    db = tmp_path / "bt.duckdb"
    params = ["--param", "fast=2", "--param", "slow=3"]
    backtest = run("backtest", "--bars", str(bars), "--strategy", "sma_crossover", *params,
                   "--db", str(db), "--account-id", "bt")  # fmt: skip
    assert backtest.exit_code == 0, backtest.output
    with connect(db, read_only=True) as conn:
        ((paid,),) = conn.execute("SELECT sum(commission) FROM fills").fetchall()

    account = json.loads(run("account", "--db", str(db), "--account-id", "bt", "--json").stdout)

    assert paid > 0 and account["commissions"] == pytest.approx(paid)
    assert account["realized_pnl"] + account["unrealized_pnl"] - account["commissions"] == (
        pytest.approx(account["equity"] - account["initial_cash"])
    )
    halt = run("kill-switch", "on", "--reason", "x", "--db", str(db), "--account-id", "bt")
    assert halt.exit_code == 2 and "bt is a backtest account" in halt.stderr
    # status too: it said `active` of a run that reads no trading state
    status = run("kill-switch", "status", "--db", str(db), "--account-id", "bt")
    assert status.exit_code == 2 and "bt is a backtest account" in status.stderr
