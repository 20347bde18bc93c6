"""One file of minute bars traded twice with the same settings: by paper intervals on the
replay provider (a quote per bar: bid = ask = the close, the bar's volume for the interval)
and by `papertrade backtest --fill-model close`. Both must make the same fills and end
with the same cash: the backtest runs the paper account's strategy, risk and broker code.
A second file spans two sessions, where paper expires the day orders still open at the
close and the backtest must too."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from paper_broker.market_data.factory import make_provider
from paper_broker.market_data.simulated import SimulatedMarket
from papertrade import interval
from papertrade.cli import app
from papertrade.settings import load_settings
from warehouse.connection import connect

SYMBOLS = ["AAPL", "MSFT", "KO"]
# the first minute of the Monday 2026-11-23 session, bars stamped at their close
FIRST_BAR = pd.Timestamp("2026-11-23 14:31", tz="UTC")
N_BARS = 40
# 300 shares is more than a tenth of a minute's AAPL volume (about 2,900): sells rest
# for a minute, and at 15:00 AAPL's averages cross up while 5 shares of a sell still rest.
# MSFT is restricted: RiskGuard refuses its orders.
QTY = 300


@dataclass(frozen=True)
class Runs:
    paper: Path
    backtest: Path
    account: str


def write_bars(path: Path, windows: list[tuple[pd.Timestamp, int]], seed: int = 3) -> None:
    """Minute bars of the simulated market over each (first bar, number of bars) window."""
    market = SimulatedMarket(seed=seed)
    frames = [
        market.bars(SYMBOLS, first, first + pd.Timedelta(minutes=n - 1), "1Min")
        for first, n in windows
    ]
    pd.concat(frames, ignore_index=True).to_csv(path, index=False)


def write_config(root: Path, bars: Path) -> Path:
    path = root / "papertrade.toml"
    path.write_text(
        f"""
[account]
id = "paper"
initial_cash = 100000

[universe]
symbols = {SYMBOLS!r}

[market_data]
provider = "replay"
replay_path = "{bars}"
history_bars = 20

[strategy]
name = "sma_crossover"
params = {{ fast = 2, slow = 5, qty = {QTY} }}

[risk]
restricted_symbols = ["MSFT"]

[slack]
send_fills = false
send_risk = false

[warehouse]
path = "{root / "paper.duckdb"}"
reports_dir = "{root / "reports"}"
"""
    )
    return path


def trade_both(root: Path, bars: Path) -> Runs:
    """Paper intervals at every bar's timestamp, then the backtest of the same file."""
    config = write_config(root, bars)
    settings = load_settings(config)
    provider = make_provider(settings.market_data, settings.universe.symbols)
    for t in pd.read_csv(bars)["timestamp"].drop_duplicates():
        summary = interval.run_interval(settings, pd.Timestamp(t).to_pydatetime(), provider)
        assert summary["status"] == "committed", summary
    backtest = root / "backtest.duckdb"
    result = CliRunner().invoke(
        app,
        ["backtest", "--bars", str(bars), "--strategy", "sma_crossover",
         "--param", "fast=2", "--param", "slow=5", "--param", f"qty={QTY}",
         "--fill-model", "close", "--periods-per-year", "98280", "--json",
         "--config", str(config), "--db", str(backtest)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return Runs(root / "paper.duckdb", backtest, "backtest-sma_crossover")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("parity")
    bars = root / "bars.csv"
    write_bars(bars, [(FIRST_BAR, N_BARS)])
    return trade_both(root, bars)


def rows(db: Path, sql: str) -> list[tuple]:
    with connect(db, read_only=True) as conn:
        return conn.execute(sql).fetchall()


FILLS = (
    "SELECT ts, symbol, side, quantity, price, round(commission, 6) FROM fills "
    "ORDER BY ts, symbol, side"
)


def test_a_backtest_at_the_close_fills_as_paper_intervals_on_the_same_bars(runs: Runs):
    paper = rows(runs.paper, FILLS)
    backtest = rows(runs.backtest, FILLS)

    # some orders fill in parts, so orders rest from one bar to the next
    assert any(quantity < QTY for _, _, _, quantity, _, _ in paper)
    assert backtest == paper
    final = "SELECT cash, equity FROM equity ORDER BY ts DESC LIMIT 1"
    assert rows(runs.backtest, final) == rows(runs.paper, final)


def orders(db: Path, account: str, where: str = "TRUE") -> list[tuple]:
    """The orders with their client order ids less the account's prefix."""
    return rows(
        db,
        f"SELECT replace(client_order_id, '{account}-', ''), created_at, symbol, side, "
        f"quantity, status, filled_quantity, reject_reason FROM orders WHERE {where} "
        "ORDER BY created_at, client_order_id",
    )


def test_a_backtest_numbers_its_orders_as_paper_intervals_do(runs: Runs):
    brokered = "order_id NOT LIKE '%-risk'"  # the orders RiskGuard let through

    paper = orders(runs.paper, "paper", brokered)
    backtest = orders(runs.backtest, runs.account, brokered)

    assert len(paper) >= 10
    assert backtest == paper


def test_a_backtest_records_the_orders_risk_refused_as_paper_intervals_do(runs: Runs):
    refused = "reject_reason IS NOT NULL"

    paper = orders(runs.paper, "paper", refused)
    backtest = orders(runs.backtest, runs.account, refused)

    assert {r[2] for r in paper} == {"MSFT"} and {r[7] for r in paper} == {"RESTRICTED_SYMBOL"}
    assert backtest == paper
    assert orders(runs.backtest, runs.account) == orders(runs.paper, "paper")


# the last 20 minutes of the early close on Friday 2026-11-27 (13:00 New York, 18:00 UTC:
# paper's last interval is 17:59) and the first 20 of Monday 2026-11-30. With seed 5 an
# AAPL buy of 300 decided at 17:57 fills 133 by Friday's close (44, 44 and 45 at 10.61: the
# volume cap); paper expires the other 167 at 17:59, where a backtest carried them into
# Monday's first two minutes (106 at 10.83 and 61 at 10.82)
FRIDAY_LAST = pd.Timestamp("2026-11-27 17:40", tz="UTC")
MONDAY_FIRST = pd.Timestamp("2026-11-30 14:30", tz="UTC")
SESSION_BARS = 20


@pytest.fixture(scope="module")
def overnight(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("overnight")
    bars = root / "bars.csv"
    write_bars(bars, [(FRIDAY_LAST, SESSION_BARS), (MONDAY_FIRST, SESSION_BARS)], seed=5)
    return trade_both(root, bars)


def test_a_backtest_expires_day_orders_at_the_close_as_paper_intervals_do(overnight: Runs):
    expired = "status = 'expired'"

    paper = orders(overnight.paper, "paper", expired)
    backtest = orders(overnight.backtest, overnight.account, expired)

    # a partly filled order's rest expires at Friday's close, not filled on Monday
    assert any(0 < filled < quantity for *_, quantity, _, filled, _ in paper)
    assert backtest == paper
    assert orders(overnight.backtest, overnight.account) == orders(overnight.paper, "paper")


def test_a_backtest_across_a_close_fills_as_paper_intervals_do(overnight: Runs):
    paper = rows(overnight.paper, FILLS)
    backtest = rows(overnight.backtest, FILLS)

    # both sessions trade
    assert {ts.date() for ts, *_ in paper} == {FRIDAY_LAST.date(), MONDAY_FIRST.date()}
    assert backtest == paper
    # the same fills, summed in another order: the curve adds up each bar's cash flows
    # first, the paper ledger one fill after the other (1e-11 apart here)
    final = "SELECT cash, equity FROM equity ORDER BY ts DESC LIMIT 1"
    (cash, equity), *_ = rows(overnight.backtest, final)
    assert [cash, equity] == pytest.approx(list(rows(overnight.paper, final)[0]), abs=1e-6)
