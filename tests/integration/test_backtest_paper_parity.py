"""One file of minute bars traded twice with the same settings: by paper intervals on the
replay provider (a quote per bar: bid = ask = the close, the bar's volume for the interval)
and by `papertrade backtest --fill-model close`. Both must make the same fills and end
with the same cash: the backtest runs the paper account's strategy, risk and broker code."""

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


def write_bars(path: Path) -> None:
    market = SimulatedMarket(seed=3)
    last = FIRST_BAR + pd.Timedelta(minutes=N_BARS - 1)
    market.bars(SYMBOLS, FIRST_BAR, last, "1Min").to_csv(path, index=False)


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


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("parity")
    bars = root / "bars.csv"
    write_bars(bars)
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
