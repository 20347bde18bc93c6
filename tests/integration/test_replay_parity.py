"""The replay parity check on a recorded paper session: sessions recorded with the real
interval steps on the simulated market, then replayed from the warehouse alone."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from paper_broker.enums import OrderStatus, OrderType, Side, TimeInForce
from paper_broker.market_data.factory import make_provider
from paper_broker.records import OrderIntent, PortfolioView
from papertrade import interval
from papertrade.backtest.replay import RecordedMarket, ReplayReport, replay_session
from papertrade.cli import app
from papertrade.errors import UserError
from papertrade.settings import Settings, load_settings
from strategies.sma_crossover import SmaCrossover
from tests.support.accounts import SESSION_OPEN, SYMBOLS, write_config
from warehouse.connection import connect
from warehouse.state import load_broker_state

DAY_ONE = SESSION_OPEN.date()
DAY_TWO = DAY_ONE + timedelta(days=1)
N_INTERVALS = 12
# alerts stay in the outbox unprinted: the tests read the warehouse, not the console
QUIET = "[slack]\nsend_fills = false\nsend_risk = false\n"

runner = CliRunner()


class SmaWithBids(SmaCrossover):
    """sma_crossover's market orders, plus every fifth minute a good-till-canceled bid 1%
    under the market for 50 shares of every symbol: those rest, and the ones still open
    when a session ends carry into the next, where an overnight drop fills them. XOM's bid
    (about $23,000) is over the account's notional cap, so RiskGuard rejects it."""

    def generate(
        self,
        history: pd.DataFrame,
        quotes: pd.DataFrame,
        portfolio: PortfolioView,
        as_of: datetime,
    ) -> list[OrderIntent]:
        intents = super().generate(history, quotes, portfolio, as_of)
        if as_of.minute % 5:
            return intents
        bids = [
            OrderIntent(
                symbol=symbol,
                side=Side.BUY,
                quantity=50.0,
                order_type=OrderType.LIMIT,
                time_in_force=TimeInForce.GTC,
                limit_price=round(bid * 0.99, 2),
                strategy=self.name,
            )
            for symbol, bid in zip(quotes["symbol"], quotes["bid"], strict=True)
        ]
        return [*intents, *bids]


STRATEGY = f"{__name__}:SmaWithBids"


# ----------------------------------------------------------------------------- factories


def make_settings(root: Path) -> Settings:
    """The shared test account's config file (fast averages, a notional cap that rejects
    some orders) trading `SmaWithBids`; the CLI reads the same file."""
    root.mkdir(parents=True, exist_ok=True)
    cfg = write_config(root, extra=QUIET)
    cfg.write_text(cfg.read_text().replace('name = "sma_crossover"', f'name = "{STRATEGY}"'))
    settings = load_settings(cfg, root / "pt.duckdb")
    assert settings.strategy.name == STRATEGY
    return settings


def record_session(settings: Settings, day: date, n: int = N_INTERVALS) -> list[datetime]:
    """Run `n` one-minute intervals of `day`'s session from the open, as the flow would."""
    provider = make_provider(settings.market_data, settings.universe.symbols)
    open_ = SESSION_OPEN + timedelta(days=(day - DAY_ONE).days)
    times = [open_ + timedelta(minutes=i) for i in range(n)]
    for t in times:
        summary = interval.run_interval(settings, t, provider)
        assert summary["status"] == "committed", summary
    return times


def replay(settings: Settings, day: date) -> ReplayReport:
    with connect(settings.warehouse.path, read_only=True) as conn:
        return replay_session(conn, settings, day)


def copy_account(settings: Settings, root: Path) -> Settings:
    """The same account in a copy of its warehouse, to tamper with."""
    root.mkdir(parents=True)
    shutil.copy(settings.warehouse.path, root / "pt.duckdb")
    warehouse = settings.warehouse.model_copy(update={"path": root / "pt.duckdb"})
    return settings.model_copy(update={"warehouse": warehouse})


def scalar(settings: Settings, sql: str) -> object:
    with connect(settings.warehouse.path, read_only=True) as conn:
        return conn.execute(sql).fetchone()[0]


@dataclasses.dataclass(frozen=True)
class Recorded:
    settings: Settings
    after_first: Settings  # a copy of the warehouse taken between the two sessions


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    """Two recorded sessions of one account: fills, RiskGuard rejections, and resting bids;
    the second session starts with the positions and open orders the first left."""
    root = tmp_path_factory.mktemp("recorded")
    settings = make_settings(root / "live")
    record_session(settings, DAY_ONE)
    after_first = copy_account(settings, root / "after_first")
    record_session(settings, DAY_TWO)
    yield Recorded(settings, after_first)


# ----------------------------------------------------------------------------- parity


def test_replaying_a_recorded_session_reproduces_its_orders_and_fills(recorded: Recorded) -> None:
    settings = recorded.settings
    day_one = f"< TIMESTAMPTZ '{SESSION_OPEN + timedelta(days=1)}'"

    report = replay(settings, DAY_ONE)

    assert report.differences == []
    assert report.reproduced
    assert len(report.intervals) == N_INTERVALS
    assert report.n_fills == scalar(settings, f"SELECT count(*) FROM fills WHERE ts {day_one}")
    assert report.n_orders == scalar(
        settings, f"SELECT count(*) FROM orders WHERE created_at {day_one}"
    )
    assert report.n_fills > 0
    rejected = scalar(
        settings,
        f"SELECT count(*) FROM orders WHERE created_at {day_one} AND reject_reason IS NOT NULL",
    )
    assert rejected > 0, "the notional cap rejects some orders in this session"


def test_a_tampered_fill_price_is_reported_as_exactly_that_difference(
    recorded: Recorded, tmp_path: Path
) -> None:
    settings = copy_account(recorded.settings, tmp_path / "tampered")
    with connect(settings.warehouse.path) as conn:
        fill_id, cid, ts, price = conn.execute(
            "SELECT f.fill_id, o.client_order_id, f.ts, f.price FROM fills f "
            "JOIN orders o USING (account_id, order_id) WHERE f.ts < ? "
            "ORDER BY f.ts DESC, f.fill_id LIMIT 1",
            [SESSION_OPEN + timedelta(days=1)],
        ).fetchone()
        conn.execute("UPDATE fills SET price = price + 0.01 WHERE fill_id = ?", [fill_id])

    report = replay(settings, DAY_ONE)

    assert len(report.differences) == 1
    diff = report.differences[0]
    assert (diff.kind, diff.field) == ("fill", "price")
    assert diff.key.startswith(cid) and ts.isoformat() in diff.key
    assert diff.recorded == price + 0.01
    assert diff.replayed == price


def test_changed_strategy_parameters_change_the_replayed_orders(recorded: Recorded) -> None:
    settings = recorded.settings
    strategy = settings.strategy.model_copy(
        update={"params": {**settings.strategy.params, "qty": 50}}
    )
    changed = settings.model_copy(update={"strategy": strategy})

    report = replay(changed, DAY_ONE)

    assert not report.reproduced
    assert any(
        d.field == "quantity" and (d.recorded, d.replayed) == (100, 50) for d in report.differences
    )


def test_a_session_that_starts_with_positions_and_open_orders_is_reproduced(
    recorded: Recorded,
) -> None:
    settings = recorded.settings
    with connect(settings.warehouse.path, read_only=True) as conn:
        start = load_broker_state(
            conn, settings.account.id, before=SESSION_OPEN + timedelta(days=1)
        )
        first, second = (replay_session(conn, settings, d) for d in (DAY_ONE, DAY_TWO))

    assert start is not None and start.open_orders and start.positions
    assert second.differences == [] and second.n_fills > 0
    assert first.differences == [], "orders the second session changed do not upset the first"


def test_state_before_a_time_is_the_state_that_stood_then(recorded: Recorded) -> None:
    settings, then = recorded.settings, recorded.after_first
    account = settings.account.id
    with connect(then.warehouse.path, read_only=True) as conn:
        stood = load_broker_state(conn, account)
    assert stood is not None
    with connect(settings.warehouse.path, read_only=True) as conn:
        rebuilt = load_broker_state(conn, account, before=SESSION_OPEN + timedelta(days=1))
        changed_later = conn.execute(
            "SELECT count(*) FROM orders WHERE list_contains(?, order_id) AND status <> 'accepted'",
            [[o.order_id for o in stood.open_orders]],
        ).fetchone()[0]

    assert rebuilt == stood
    assert changed_later > 0, "some order open after the first session filled in the second"


def test_recorded_market_answers_the_recorded_cross_section(recorded: Recorded) -> None:
    settings = recorded.settings
    as_of = SESSION_OPEN + timedelta(minutes=3)
    with connect(settings.warehouse.path, read_only=True) as conn:
        market = RecordedMarket.from_warehouse(conn, settings.account.id, as_of, as_of)
        recorded = conn.execute(
            "SELECT symbol, bid, ask, valid FROM quotes WHERE as_of = ?", [as_of]
        ).fetchall()

    quotes = market.quotes(list(reversed(SYMBOLS)), as_of)

    assert quotes["symbol"].tolist() == list(reversed(SYMBOLS))
    assert sorted(quotes[["symbol", "bid", "ask", "valid"]].itertuples(index=False, name=None)) == (
        sorted(recorded)
    )
    assert market.quotes(SYMBOLS, as_of + timedelta(minutes=1)).empty


def test_an_unknown_account_or_a_day_without_intervals_is_bad_input(
    recorded: Recorded,
) -> None:
    settings = recorded.settings
    other = settings.model_copy(
        update={"account": settings.account.model_copy(update={"id": "nobody"})}
    )

    with pytest.raises(
        UserError, match=r"unknown account in the warehouse: nobody \(it holds paper\)"
    ):
        replay(other, DAY_ONE)
    with pytest.raises(UserError, match="no interval in session 2026-11-25"):
        replay(settings, date(2026, 11, 25))


# ----------------------------------------------------------------------------- CLI


def cli(settings: Settings, config: Settings, *args: str):  # type: ignore[no-untyped-def]
    """`papertrade replay ARGS` on `settings`' warehouse with `config`'s file."""
    cfg = Path(config.warehouse.path).parent / "papertrade.toml"
    return runner.invoke(
        app, ["replay", *args, "--config", str(cfg), "--db", str(settings.warehouse.path)]
    )


def test_cli_prints_no_differences_and_exits_0(recorded: Recorded) -> None:
    live = recorded.settings
    table = cli(live, live, "--date", DAY_ONE.isoformat())
    as_json = cli(live, live, "--date", DAY_TWO.isoformat(), "--account-id", "paper", "--json")

    assert table.exit_code == 0, table.output
    assert "no differences" in table.stdout
    payload = json.loads(as_json.stdout)
    assert payload["account_id"] == "paper" and payload["session_date"] == "2026-11-24"
    assert payload["differences"] == [] and payload["n_fills"] > 0 and payload["n_orders"] > 0


def test_cli_reports_differences_and_exits_1(recorded: Recorded, tmp_path: Path) -> None:
    settings = copy_account(recorded.settings, tmp_path / "tampered")
    with connect(settings.warehouse.path) as conn:
        conn.execute(
            "UPDATE orders SET status = 'canceled' WHERE order_id = (SELECT min(order_id) "
            "FROM orders WHERE status = 'filled' AND updated_at < ?)",
            [SESSION_OPEN + timedelta(days=1)],
        )

    table = cli(settings, recorded.settings, "--date", DAY_ONE.isoformat())
    as_json = cli(settings, recorded.settings, "--date", DAY_ONE.isoformat(), "--json")

    assert table.exit_code == 1 and "status" in table.stdout and "canceled" in table.stdout
    assert as_json.exit_code == 1
    (diff,) = json.loads(as_json.stdout)["differences"]
    assert (diff["kind"], diff["field"]) == ("order", "status")
    assert (diff["recorded"], diff["replayed"]) == ("canceled", OrderStatus.FILLED.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--date", "2026-13-01"], "not a date"),
        (["--date", "2026-11-25"], "no interval"),
        (["--date", "2026-11-23", "--account-id", "nobody"], "unknown account"),
    ],
)
def test_cli_bad_input_exits_2(recorded: Recorded, args: list[str], message: str) -> None:
    result = cli(recorded.settings, recorded.settings, *args)

    assert result.exit_code == 2
    assert message in result.stderr


def test_cli_without_config_replays_with_the_settings_the_account_recorded(
    recorded: Recorded, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the defaults (another strategy) and an override would trade differently: the recorded
    # settings win unless --config names other ones
    monkeypatch.setenv("PAPERTRADE_STRATEGY__PARAMS", '{"fast": 3, "slow": 9, "qty": 7}')
    db = str(recorded.settings.warehouse.path)

    result = runner.invoke(app, ["replay", "--date", DAY_ONE.isoformat(), "--db", db])

    assert result.exit_code == 0, result.output
    assert "no differences" in result.stdout


@pytest.mark.parametrize("with_config", [False, True])
def test_cli_refuses_a_backtest_account_in_one_line(
    recorded: Recorded, tmp_path: Path, with_config: bool
) -> None:
    from tests.unit.test_backtest_engine import bars_frame

    settings = copy_account(recorded.settings, tmp_path / "with_backtest")
    bars = tmp_path / "bars.csv"
    bars_frame({"AAA": [10.0, 11.0, 12.0]}).to_csv(bars, index=False)
    db = str(settings.warehouse.path)
    stored = runner.invoke(app, ["backtest", "--bars", str(bars), "--strategy", "buy_and_hold",
                                 "--account-id", "bt", "--db", db])  # fmt: skip
    assert stored.exit_code == 0, stored.output
    args = ["replay", "--date", "2024-01-03", "--account-id", "bt", "--db", db]
    if with_config:
        args += ["--config", str(Path(recorded.settings.warehouse.path).parent / "papertrade.toml")]

    result = runner.invoke(app, args)

    assert result.exit_code == 2, result.output
    assert result.stderr == (
        "error: account 'bt' is a backtest, not a paper account: replay re-runs a recorded "
        "paper session\n"
    )


def test_cli_on_a_file_before_schema_v6_says_it_is_older_in_one_line(tmp_path: Path) -> None:
    # replay opens the file read-only and cannot migrate it; the interval markers it reads
    # got their typed columns in v6, and a file of an older papertrade died with DuckDB's
    # binder traceback (exit 1)
    import duckdb

    from warehouse import schema

    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as raw:  # one committed interval, as papertrade at v5 wrote it
        raw.execute("SET TimeZone = 'UTC'")
        schema.migrate(raw, target=5)
        raw.execute("INSERT INTO accounts VALUES ('paper', ?, 100000, 'paper', NULL)",
                    [SESSION_OPEN])  # fmt: skip
        raw.execute(
            "INSERT INTO intervals (account_id, as_of, status, committed_at, session_date,"
            " state_json) VALUES ('paper', ?, 'committed', ?, ?, '{}')",
            [SESSION_OPEN, SESSION_OPEN, DAY_ONE],
        )

    result = runner.invoke(app, ["replay", "--date", DAY_ONE.isoformat(), "--db", str(db)])

    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert "has schema v5, older than this papertrade's" in result.stderr
    assert "upgrades the file" in result.stderr


def test_replay_runs_each_session_with_the_settings_it_traded_with(tmp_path: Path) -> None:
    # the account traded qty 100 on day one and qty 50 on day two: the replay read the
    # settings of the account's first interval and listed every day-two order as different
    settings = make_settings(tmp_path / "changed")
    cfg = tmp_path / "changed" / "papertrade.toml"
    record_session(settings, DAY_ONE)
    cfg.write_text(cfg.read_text().replace("qty = 100", "qty = 50"))
    changed = load_settings(cfg, settings.warehouse.path)
    assert changed.strategy.params["qty"] == 50
    record_session(changed, DAY_TWO)
    db = str(settings.warehouse.path)

    days = {
        day: runner.invoke(app, ["replay", "--date", day.isoformat(), "--db", db, "--json"])
        for day in (DAY_ONE, DAY_TWO)
    }

    for day, result in days.items():
        assert result.exit_code == 0, (day, result.output[:500])
        assert json.loads(result.stdout)["n_orders"] > 0
    assert scalar(settings, "SELECT count(*) FROM account_settings") == 2
