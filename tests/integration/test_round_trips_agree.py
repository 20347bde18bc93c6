"""`papertrade.metrics.round_trips` (backtest and end-of-day trade counts) and the warehouse
view `round_trips` (what users query) are the same closed trades, row for row."""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from papertrade.metrics import ROUND_TRIP_COLUMNS, round_trips
from warehouse.connection import connect

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
FLOAT_COLUMNS = ["quantity", "entry_price", "exit_price", "commission", "pnl"]

# Small quantities make exact closes (flat, then a new direction) common; larger ones and
# cents give partial closes and flips; few symbols and minutes make long FIFO queues and
# many fills at one timestamp.
quantities = st.one_of(
    st.sampled_from([1, 2, 3]),
    st.integers(1, 300),
    st.integers(1, 30_000).map(lambda c: c / 100),
)
fill_specs = st.lists(
    st.tuples(
        st.integers(0, 6),  # minute; drawn per fill, so the frame is not in time order
        st.sampled_from(["AAPL", "MSFT", "XOM"]),
        st.sampled_from(["buy", "sell"]),
        quantities,
        st.integers(100, 50_000).map(lambda c: c / 100),  # price
        st.integers(0, 500).map(lambda c: c / 100),  # commission
    ),
    min_size=1,
    max_size=40,
)


def fills_frame(specs: list[tuple[int, str, str, float, float, float]]) -> pd.DataFrame:
    """Fills in frame order. The view orders equal timestamps by `fill_id` (VARCHAR) and
    `round_trips` by frame position, so ids are zero-padded positions."""
    return pd.DataFrame(
        {
            "fill_id": [f"F{i:06d}" for i in range(len(specs))],
            "ts": pd.to_datetime([T0 + timedelta(minutes=s[0]) for s in specs], utc=True),
            "symbol": [s[1] for s in specs],
            "side": [s[2] for s in specs],
            "quantity": [float(s[3]) for s in specs],
            "price": [float(s[4]) for s in specs],
            "commission": [float(s[5]) for s in specs],
        }
    )


@pytest.fixture(scope="module")
def empty_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty warehouse file. Examples copy it: creating and migrating a file
    takes about ten times as long as copying one."""
    db = tmp_path_factory.mktemp("template") / "empty.duckdb"
    with connect(db):
        pass
    return db


def view_round_trips(db: Path, fills: pd.DataFrame) -> pd.DataFrame:
    """The `round_trips` view over `fills` written to the warehouse file `db` (migrated by
    `connect` if it is not yet), in the order `metrics.round_trips` emits its rows (symbol,
    then closing fill)."""
    rows = fills.assign(account_id="acct", order_id=fills["fill_id"])
    with connect(db) as conn:
        conn.register("new_fills", rows)
        conn.execute(
            "INSERT INTO fills (account_id, fill_id, order_id, ts, symbol, side, quantity, "
            "price, commission) SELECT account_id, fill_id, order_id, ts, symbol, side, "
            "quantity, price, commission FROM new_fills"
        )
        conn.unregister("new_fills")
        return conn.execute(
            f"SELECT {', '.join(ROUND_TRIP_COLUMNS)} FROM round_trips "
            "ORDER BY symbol, exit_ts, exit_fill_id"
        ).df()


def assert_same_trades(python: pd.DataFrame, sql: pd.DataFrame) -> None:
    assert len(python) == len(sql)
    for column in ("symbol", "direction"):
        assert python[column].tolist() == sql[column].tolist(), column
    for column in ("entry_ts", "exit_ts"):
        assert [pd.Timestamp(t) for t in python[column]] == [
            pd.Timestamp(t) for t in sql[column]
        ], column
    for column in FLOAT_COLUMNS:
        expected = pytest.approx(sql[column].tolist(), rel=1e-9, abs=1e-9)
        assert python[column].tolist() == expected, column


@settings(max_examples=60, deadline=None)
@given(fill_specs)
# an exact close of two lots at one timestamp, a short opened from flat, a flip to long
@example(
    [
        (0, "AAPL", "buy", 2, 10.0, 0.5),
        (0, "AAPL", "buy", 1, 11.0, 0.5),
        (1, "AAPL", "sell", 3, 12.0, 0.3),
        (1, "AAPL", "sell", 2, 12.5, 0.2),
        (2, "AAPL", "buy", 5, 12.0, 1.0),
        (2, "AAPL", "sell", 1, 12.2, 0.0),
    ]
)
# fractional lots whose sum is not exact in binary floating point (0.1 + 0.2 != 0.3)
@example(
    [
        (0, "MSFT", "buy", 0.1, 100.0, 0.01),
        (0, "MSFT", "buy", 0.2, 101.0, 0.01),
        (1, "MSFT", "sell", 0.3, 102.0, 0.01),
        (1, "MSFT", "sell", 0.3, 103.0, 0.01),
        (2, "MSFT", "buy", 0.1, 99.0, 0.01),
    ]
)
def test_metrics_round_trips_equal_the_warehouse_view(
    empty_warehouse: Path, specs: list[tuple[int, str, str, float, float, float]]
) -> None:
    fills = fills_frame(specs)

    # a file per example: hypothesis runs many examples in one test call
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "w.duckdb"
        shutil.copy(empty_warehouse, db)
        expected = view_round_trips(db, fills)
    actual = round_trips(fills.drop(columns="fill_id"))

    assert_same_trades(actual, expected)


def test_two_entry_fills_closed_by_one_sell_are_one_trade_in_both(tmp_path: Path) -> None:
    # two buys of 100 @ 190.00 at 14:30 (1.00 each), one sell of 200 @ 189.94 (1.00) at
    # 15:00: one trade of 200, gross 200 * -0.06 = -12, commissions 3, pnl -15
    fills = fills_frame(
        [
            (0, "AAPL", "buy", 100, 190.00, 1.0),
            (0, "AAPL", "buy", 100, 190.00, 1.0),
            (30, "AAPL", "sell", 200, 189.94, 1.0),
        ]
    )

    expected = view_round_trips(tmp_path / "w.duckdb", fills)
    actual = round_trips(fills.drop(columns="fill_id"))

    assert len(actual) == 1
    assert actual["pnl"].tolist() == pytest.approx([-15.0])
    assert_same_trades(actual, expected)
