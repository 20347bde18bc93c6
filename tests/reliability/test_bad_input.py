"""Bad input everywhere a user types: one line naming the problem, exit 2, nothing written.

Commands run through Typer's `CliRunner` in a scratch directory; "nothing written" means
every file of that directory is byte-identical before and after (the warehouse file is not
created when it did not exist). A hypothesis fuzz over config values and argument lists
checks the same contract broadly: exit 0/1/2 only, never a traceback, one line on exit 2.
Commands that would start Prefect are only fuzzed on paths that fail validation first."""

from __future__ import annotations

import string
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from paper_broker.market_data.simulated import SimulatedMarket
from papertrade.cli import app
from papertrade.interval import run_interval
from papertrade.settings import Settings as AppSettings
from tests.reliability.support import file_digest, settings_for
from tests.support.accounts import SESSION_OPEN, write_config

runner = CliRunner()


def snapshot(root: Path) -> dict[str, str | None]:
    return {
        str(p.relative_to(root)): file_digest(p) for p in sorted(root.rglob("*")) if p.is_file()
    }


def invoke(args: list[str]) -> Any:
    return runner.invoke(app, args, catch_exceptions=True)


def assert_bad_input(result: Any, *names: str) -> None:
    """Exit 2 with one line on stderr naming each of `names`, and no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    assert "Traceback" not in result.output


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def traded(workdir: Path) -> Path:
    """A config whose warehouse holds one committed interval."""
    cfg = write_config(workdir)
    settings = settings_for(cfg)
    run_interval(settings, SESSION_OPEN, SimulatedMarket(seed=42), sender=_Silent())
    return cfg


class _Silent:
    def send(self, alert: Any) -> Any:
        from papertrade.alerts.sender import SendResult

        return SendResult(ok=True, printed=True)


BAD_CONFIGS = [
    pytest.param("[account]\ninitial_cash = 'lots'\n", ["account.initial_cash"], id="wrong-type"),
    pytest.param("[risk]\nmax_order_notional = -5\n", ["risk.max_order_notional"], id="range"),
    pytest.param("[broker]\nslippage_model = 'magic'\n", ["broker.slippage_model"], id="enum"),
    pytest.param("[account]\ncolour = 'red'\n", ["account.colour"], id="unknown-key"),
    pytest.param("[universe]\nsymbols = []\n", ["universe.symbols"], id="empty-universe"),
    pytest.param("[warehouse]\nlock_timeout_seconds = 'soon'\n", ["lock_timeout"], id="timeout"),
    pytest.param("[account\nid = 1\n", ["cannot read config"], id="malformed-toml"),
    pytest.param("[strategy]\nname = 'moonshot'\n", ["moonshot"], id="unknown-strategy"),
    pytest.param(
        "[strategy]\nname = 'sma_crossover'\nparams = { bogus = 1 }\n", ["bogus"], id="param"
    ),
    pytest.param(
        "[strategy]\nname = 'sma_crossover'\nparams = { fast = 'x' }\n", ["fast"], id="param-type"
    ),
]


COMMANDS = [["interval"], ["eod"], ["kill-switch", "on", "--reason", "x"]]
# only the trading commands load the strategy; every command loads the rest of the config
CONFIG_CASES = [
    pytest.param(command, *case.values, id=f"{command[0]}-{case.id}")
    for command in COMMANDS
    for case in BAD_CONFIGS
    if command[0] == "interval" or "strategy" not in case.values[0]
]


@pytest.mark.parametrize(("command", "toml", "names"), CONFIG_CASES)
def test_a_bad_config_is_one_line_exit_2_and_writes_nothing(
    workdir: Path, command: list[str], toml: str, names: list[str]
) -> None:
    cfg = workdir / "bad.toml"
    cfg.write_text(toml)
    before = snapshot(workdir)

    result = invoke([*command, "--config", str(cfg), "--db", str(workdir / "pt.duckdb")])

    assert_bad_input(result, *names)
    assert snapshot(workdir) == before
    assert not (workdir / "pt.duckdb").exists()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("timestamp,symbol,open,high,low,close,volume\n", id="no-rows"),
        pytest.param(
            "timestamp,symbol,open,high,low,close,volume\nnoon,AAPL,1,1,1,1,1\n", id="timestamp"
        ),
        pytest.param("symbol,bid,ask,quote_ts\nAAPL,one,1.1,2026-03-02T14:31:00Z\n", id="price"),
    ],
)
def test_an_unusable_replay_file_is_bad_input(workdir: Path, text: str) -> None:
    (workdir / "recorded.csv").write_text(text)
    cfg = workdir / "replay.toml"
    cfg.write_text('[market_data]\nprovider = "replay"\nreplay_path = "recorded.csv"\n')
    before = snapshot(workdir)

    result = invoke(["interval", "--config", str(cfg), "--db", str(workdir / "pt.duckdb")])

    assert_bad_input(result, "replay", "recorded.csv")
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["interval", "--as-of", "yesterday"], ["--as-of", "yesterday"]),
        (["interval", "--as-of", "2026-02-30T10:00"], ["--as-of"]),
        (["eod", "--date", "2026-13-01"], ["--date", "2026-13-01"]),
        (["eod", "--date", "next monday"], ["--date"]),
        (["kill-switch", "on"], ["--reason"]),
        (["kill-switch", "on", "--reason", "   "], ["--reason"]),
        (["sql", "DELETE FROM fills"], []),
        (["sql", "CREATE TABLE x AS SELECT 1"], []),
        (["sql", "SELECT 1; DROP TABLE fills"], []),
        (["sql", "COPY fills TO 'out.csv'"], []),
        (["positions", "--account-id", "nobody"], ["nobody"]),
    ],
)
def test_bad_arguments_against_a_live_warehouse_change_nothing(
    workdir: Path, traded: Path, args: list[str], names: list[str]
) -> None:
    before = snapshot(workdir)

    result = invoke([*args, "--config", str(traded)])

    assert_bad_input(result, *names)
    assert snapshot(workdir) == before


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["interval", "--as-of", "soon"], ["--as-of"]),
        (["eod"], ["no warehouse"]),
        (["kill-switch", "on"], ["--reason"]),
        (["sql", "SELECT 1"], ["not found"]),
        (["fills"], ["not found"]),
    ],
)
def test_bad_input_without_a_warehouse_does_not_create_one(
    workdir: Path, args: list[str], names: list[str]
) -> None:
    cfg = write_config(workdir)
    before = snapshot(workdir)

    result = invoke([*args, "--config", str(cfg)])

    assert_bad_input(result, *names)
    assert snapshot(workdir) == before
    assert not (workdir / "pt.duckdb").exists()


def test_a_missing_or_malformed_bars_file_is_bad_input(workdir: Path) -> None:
    malformed = workdir / "bars.csv"
    malformed.write_text("when,what\n1,2\n")
    nan_prices = workdir / "nan.csv"
    nan_prices.write_text(
        "timestamp,symbol,open,high,low,close,volume\n2024-01-02T15:00:00Z,AAPL,1,1,1,,100\n"
    )
    garbage = workdir / "bars.parquet"
    garbage.write_bytes(b"not parquet at all")
    db = workdir / "bt.duckdb"
    before = snapshot(workdir)

    results = {
        name: invoke(
            ["backtest", "--bars", str(path), "--strategy", "buy_and_hold", "--db", str(db)]
        )
        for name, path in (
            ("missing.csv", workdir / "missing.csv"),
            ("bars.csv", malformed),
            ("nan.csv", nan_prices),
            ("bars.parquet", garbage),
        )
    }

    for name, result in results.items():
        assert_bad_input(result, name)
    assert snapshot(workdir) == before


def test_an_unknown_strategy_or_parameter_on_the_command_line_is_bad_input(workdir: Path) -> None:
    bars = workdir / "bars.csv"
    bars.write_text(
        "timestamp,symbol,open,high,low,close,volume\n"
        + "".join(
            f"{(SESSION_OPEN + timedelta(days=d)).isoformat()},AAPL,10,11,9,10.5,100\n"
            for d in range(5)
        )
    )
    db = workdir / "bt.duckdb"
    base = ["backtest", "--bars", str(bars), "--db", str(db)]
    before = snapshot(workdir)

    unknown = invoke([*base, "--strategy", "moonshot"])
    bad_param = invoke([*base, "--strategy", "sma_crossover", "--param", "bogus=1"])
    no_equals = invoke([*base, "--strategy", "sma_crossover", "--param", "fast"])
    bad_cash = invoke([*base, "--strategy", "buy_and_hold", "--cash", "-100"])
    endless_cash = invoke([*base, "--strategy", "buy_and_hold", "--cash", "inf"])
    endless_qty = invoke([*base, "--strategy", "sma_crossover", "--param", "qty=inf"])
    no_module = invoke([*base, "--strategy", ":Breakout"])

    assert_bad_input(unknown, "moonshot")
    assert_bad_input(bad_param, "bogus")
    assert_bad_input(no_equals, "fast")
    assert_bad_input(bad_cash, "cash")
    assert_bad_input(endless_cash, "cash")
    assert_bad_input(endless_qty, "qty")
    assert_bad_input(no_module, ":Breakout")
    assert snapshot(workdir) == before


# ----------------------------------------------------------------------------- fuzz


def _settings_keys() -> list[tuple[str, str]]:
    return [
        (section, key)
        for section, field in AppSettings.model_fields.items()
        for key in type(field.default).model_fields
    ]


SAFE_TEXT = st.text(alphabet=string.ascii_letters + string.digits + " -_.:/", max_size=12)
TOML_VALUES = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(
        lambda f: (
            "nan"
            if f != f
            else ("inf" if f == float("inf") else "-inf" if f == float("-inf") else repr(f))
        )
    ),
    st.booleans().map(lambda b: "true" if b else "false"),
    SAFE_TEXT.map(lambda s: f'"{s}"'),
    st.lists(SAFE_TEXT.map(lambda s: f'"{s}"'), max_size=3).map(lambda xs: f"[{', '.join(xs)}]"),
    st.just("{ a = 1 }"),
    st.just("[1, 2"),  # malformed
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    key=st.sampled_from(_settings_keys()),
    value=TOML_VALUES,
    command=st.sampled_from([["positions"], ["kill-switch", "status"], ["interval", "--as-of", "x"],
                             ["eod", "--date", "x"], ["sql", "SELECT 1"]]),
)  # fmt: skip
def test_fuzzed_config_values_never_crash_the_cli(
    workdir: Path, key: tuple[str, str], value: str, command: list[str]
) -> None:
    section, name = key
    if section == "warehouse" and name in ("path", "reports_dir"):
        value = '"pt.duckdb"' if name == "path" else '"reports"'  # never write elsewhere
    cfg = workdir / "fuzz.toml"
    cfg.write_text(f"[warehouse]\npath = \"pt.duckdb\"\n[{section}]\n{name} = {value}\n"
                   if section != "warehouse" else f"[{section}]\n{name} = {value}\n")  # fmt: skip
    before = snapshot(workdir)

    result = invoke([*command, "--config", str(cfg)])

    assert result.exit_code in (0, 1, 2), result.exception
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert snapshot(workdir) == before


WORDS = st.sampled_from([
    "interval", "eod", "backtest", "positions", "orders", "fills", "account", "sql",
    "kill-switch", "status", "on", "off", "sweep", "walk-forward", "--as-of", "--date",
    "--json", "--csv", "--config", "--db", "--reason", "--bars", "--strategy", "--param",
    "--cash", "--fill-model", "--account-id", "--commission-bps", "--slippage-bps", "-x",
    "SELECT 1", "DROP TABLE fills", "2026-13-01", "k=v", "nope.csv", "--", "",
])  # fmt: skip
TOKENS = st.one_of(WORDS, SAFE_TEXT)
# A bad value appended last wins over any earlier one: flow commands fail validation before
# Prefect starts. demo and serve always start it and are left out.
REFUSED_LAST = {"interval": ["--as-of", "not-a-time"], "eod": ["--date", "not-a-date"]}


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(args=st.lists(TOKENS, min_size=1, max_size=6))
def test_fuzzed_argument_lists_never_crash_the_cli(workdir: Path, args: list[str]) -> None:
    cfg = write_config(workdir)
    scratch = workdir / "scratch"
    tail = [*REFUSED_LAST.get(args[0], []), "--config", str(cfg), "--db", str(scratch / "s.db")]
    before = snapshot(workdir)

    result = invoke([*args, *tail])

    assert result.exit_code in (0, 1, 2), (args, result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    after = {k: v for k, v in snapshot(workdir).items() if not k.startswith("scratch")}
    assert after == before


# ----------------------------------------------------------------------------- environment


def test_a_db_nothing_can_write_is_refused_before_any_work(workdir: Path) -> None:
    (workdir / "afile").write_text("not a directory")
    bars = workdir / "bars.csv"
    bars.write_text(
        "timestamp,symbol,open,high,low,close,volume\n2024-01-02T21:00:00Z,AAA,10,11,9,10,100\n"
    )
    before = snapshot(workdir)

    runs = [
        invoke(["interval", "--force", "--db", "afile/pt.duckdb"]),
        invoke(["backtest", "--bars", str(bars), "--strategy", "buy_and_hold",
                "--db", "afile/bt.duckdb"]),
    ]  # fmt: skip

    for result in runs:
        assert_bad_input(result, "afile/", "is not a directory")
    assert snapshot(workdir) == before


def test_a_writer_removes_the_file_it_created_when_it_cannot_finish(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # as a disk that fills up during the first migration: an empty file left behind would
    # be refused as "not a DuckDB database file" by every later run
    import warehouse.connection as connection
    from warehouse.connection import connect

    def full(conn: object, db_path: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(connection, "_migrate", full)

    with pytest.raises(OSError, match="No space left"), connect(workdir / "new.duckdb"):
        pass

    assert not (workdir / "new.duckdb").exists()
    assert not (workdir / "new.duckdb.wal").exists()


def test_a_new_file_whose_writer_failed_before_any_row_is_removed(workdir: Path) -> None:
    # a first interval refused for a bad provider key must not leave an empty warehouse
    import duckdb

    from warehouse.connection import connect

    with pytest.raises(RuntimeError), connect(workdir / "new.duckdb"):
        raise RuntimeError("HTTP 401: the API key was refused")
    with pytest.raises(RuntimeError), connect(workdir / "kept.duckdb") as conn:
        conn.execute("INSERT INTO accounts VALUES ('paper', now(), 1e5, 'paper', NULL)")
        raise RuntimeError("after a committed row")

    assert not (workdir / "new.duckdb").exists()
    with duckdb.connect(str(workdir / "kept.duckdb"), read_only=True) as kept:
        assert kept.execute("SELECT count(*) FROM accounts").fetchone() == (1,)


class _RefusingProvider:
    """A provider whose key is refused: every call fails as Polygon's 401 does."""

    name = "polygon"

    def quotes(self, symbols: Any, as_of: Any) -> Any:
        from paper_broker.market_data.errors import ProviderAuthError

        raise ProviderAuthError(self.name, "HTTP 401: the API key was refused", ("KEY",))

    def bars(self, *args: Any, **kwargs: Any) -> Any:
        return self.quotes(None, None)

    def close(self) -> None:
        pass


def test_a_first_interval_refused_by_the_provider_leaves_no_warehouse(workdir: Path) -> None:
    # the load opens (and creates) the file, the provider fails after it is closed again
    from paper_broker.market_data.errors import ProviderAuthError

    settings = settings_for(write_config(workdir))
    db = settings.warehouse.path
    assert not db.exists()

    with pytest.raises(ProviderAuthError):
        run_interval(settings, SESSION_OPEN, _RefusingProvider(), sender=_Silent())

    assert not db.exists()
    assert not db.with_name(db.name + ".wal").exists()


def test_a_later_interval_refused_by_the_provider_keeps_the_warehouse(traded: Path) -> None:
    from paper_broker.market_data.errors import ProviderAuthError

    settings = settings_for(traded)
    db = settings.warehouse.path
    before = db.stat().st_size

    with pytest.raises(ProviderAuthError):
        run_interval(settings, SESSION_OPEN + timedelta(minutes=1), _RefusingProvider())

    assert db.exists() and db.stat().st_size >= before


def test_a_damaged_warehouse_is_a_failure_in_one_line(traded: Path) -> None:
    db = traded.parent / "pt.duckdb"
    with db.open("r+b") as f:
        f.truncate(20_000)  # its headers, and the start of its first block

    results = [invoke(["sql", "SELECT count(*) FROM quotes", "--db", str(db)]),
               invoke(["positions", "--db", str(db)])]  # fmt: skip

    for result in results:
        assert result.exit_code == 1, (result.output, result.exception)
        assert result.stderr.startswith("failed: IO Error") and result.stderr.count("\n") == 1


def test_eod_refuses_a_reports_dir_it_cannot_write_before_the_work(traded: Path) -> None:
    root = traded.parent
    (root / "rfile").write_text("a file")
    config = traded.read_text()
    traded.write_text(config.replace(str(root / "reports"), str(root / "rfile")))
    before = snapshot(root)

    result = invoke(["eod", "--date", "2026-11-23"])

    assert_bad_input(result, "rfile", "reports_dir", "is not a directory")
    assert snapshot(root) == before


def test_a_config_with_a_byte_order_mark_says_so(workdir: Path) -> None:
    (workdir / "bom.toml").write_bytes(b'\xef\xbb\xbf[account]\nid = "x"\n')

    assert_bad_input(invoke(["account", "--config", "bom.toml"]), "byte-order mark")
