"""Analytics views against hand-computed numbers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from paper_broker.enums import Side
from warehouse.connection import connect
from warehouse.results import write_backtest
from warehouse.testing import T0, make_fill

BUY, SELL = Side.BUY, Side.SELL


def fills(*specs: tuple[Side, float, float, float]) -> list:
    """(side, quantity, price, commission) one minute apart, in order."""
    return [
        make_fill(i, side=s, quantity=q, price=p, commission=c, ts=T0 + timedelta(minutes=i))
        for i, (s, q, p, c) in enumerate(specs)
    ]


def round_trips(tmp_path: Path, specs: list) -> list[tuple]:
    db = tmp_path / "w.duckdb"
    with connect(db) as conn:
        write_backtest(conn, "bt", initial_cash=1e5, created_at=T0, fills=fills(*specs))
    with connect(db, read_only=True) as conn:
        return conn.execute(
            "SELECT direction, quantity, entry_price, exit_price, commission, pnl "
            "FROM round_trips ORDER BY exit_ts"
        ).fetchall()


def test_partial_closes_match_fifo_lots(tmp_path: Path) -> None:
    # buy 10 @ 100 (c=1), buy 10 @ 110 (c=1), sell 15 @ 120 (c=1.5), sell 5 @ 90 (c=0.5)
    trades = round_trips(
        tmp_path,
        [(BUY, 10, 100, 1.0), (BUY, 10, 110, 1.0), (SELL, 15, 120, 1.5), (SELL, 5, 90, 0.5)],
    )

    # first close: 10 @ 100 and 5 @ 110 -> entry 103.333, gross 250, fees 1 + 0.5 + 1.5
    # second close: 5 @ 110 -> gross -100, fees 0.5 + 0.5
    assert [t[:2] for t in trades] == [("long", 15.0), ("long", 5.0)]
    assert trades[0][2] == pytest.approx((10 * 100 + 5 * 110) / 15)
    assert trades[0][4] == pytest.approx(3.0)
    assert trades[0][5] == pytest.approx(250 - 3.0)
    assert trades[1][5] == pytest.approx(-100 - 1.0)


def test_a_flip_closes_the_long_and_opens_a_short(tmp_path: Path) -> None:
    # buy 10 @ 50 (c=1); sell 30 @ 60 (c=3: 1 for the closing 10, 2 for the new short 20);
    # buy 20 @ 55 (c=2) covers the short
    trades = round_trips(tmp_path, [(BUY, 10, 50, 1.0), (SELL, 30, 60, 3.0), (BUY, 20, 55, 2.0)])

    assert trades == [
        ("long", 10.0, 50.0, 60.0, pytest.approx(2.0), pytest.approx(100 - 2.0)),
        ("short", 20.0, 60.0, 55.0, pytest.approx(4.0), pytest.approx(100 - 4.0)),
    ]


def test_open_lots_are_not_round_trips(tmp_path: Path) -> None:
    trades = round_trips(tmp_path, [(BUY, 10, 50, 0.0), (BUY, 5, 51, 0.0), (SELL, 4, 52, 0.0)])

    assert trades == [("long", 4.0, 50.0, 52.0, 0.0, pytest.approx(8.0))]


def test_a_trade_closed_at_its_entry_price_without_costs_is_exactly_breakeven(
    tmp_path: Path,
) -> None:
    # 10 x 1.62 through an averaged entry price came out -6.7e-16: a loss to WHERE pnl < 0;
    # a short of 3 x 1.35 and two lots closed by one fill at their common price likewise
    trades = round_trips(
        tmp_path,
        [(BUY, 10, 1.62, 0.0), (SELL, 10, 1.62, 0.0), (SELL, 3, 1.35, 0.0),
         (BUY, 3, 1.35, 0.0), (BUY, 3, 1.44, 0.0), (BUY, 7, 1.44, 0.0), (SELL, 10, 1.44, 0.0)],
    )  # fmt: skip

    assert [t[5] for t in trades] == [0.0, 0.0, 0.0]


def test_equity_curve_and_daily_pnl(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    # two New York days, two snapshots each; day one closes at 101, day two at 99
    times = [T0, T0 + timedelta(hours=1), T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1)]
    values = [100.0, 101.0, 102.0, 99.0]
    import pandas as pd

    equity = pd.DataFrame({"ts": times, "cash": values, "positions_value": 0.0, "equity": values})
    with connect(db) as conn:
        write_backtest(conn, "bt", initial_cash=100.0, created_at=T0, equity=equity)

    with connect(db, read_only=True) as conn:
        curve = conn.execute(
            "SELECT peak_equity, drawdown FROM equity_curve ORDER BY ts"
        ).fetchall()
        daily = conn.execute(
            "SELECT session_date::VARCHAR, equity, pnl, daily_return FROM daily_pnl "
            "ORDER BY session_date"
        ).fetchall()

    assert curve[-1] == (102.0, pytest.approx(99 / 102 - 1))
    assert daily == [
        ("2025-03-03", 101.0, pytest.approx(1.0), pytest.approx(0.01)),
        ("2025-03-04", 99.0, pytest.approx(-2.0), pytest.approx(99 / 101 - 1)),
    ]


def test_a_return_from_negative_equity_is_null_as_in_the_metrics(tmp_path: Path) -> None:
    import pandas as pd

    db = tmp_path / "w.duckdb"
    # one snapshot a day: 40 -> -5 -> 2 -> 3; from -5 to 2 read as -140% (2 / -5 - 1)
    times = [T0 + timedelta(days=d) for d in range(4)]
    values = [40.0, -5.0, 2.0, 3.0]
    equity = pd.DataFrame({"ts": times, "cash": values, "positions_value": 0.0, "equity": values})
    with connect(db) as conn:
        write_backtest(conn, "bt", initial_cash=100.0, created_at=T0, equity=equity)

    with connect(db, read_only=True) as conn:
        curve = conn.execute("SELECT period_return FROM equity_curve ORDER BY ts").fetchall()
        daily = conn.execute(
            "SELECT pnl, daily_return FROM daily_pnl ORDER BY session_date"
        ).fetchall()

    assert [r for (r,) in curve] == [None, pytest.approx(-1.125), None, pytest.approx(0.5)]
    assert daily[2] == (pytest.approx(7.0), None)
    assert [r for _, r in daily] == [
        pytest.approx(-0.6),
        pytest.approx(-1.125),
        None,
        pytest.approx(0.5),
    ]


def test_daily_pnl_keeps_the_dates_of_daily_bars_stamped_at_midnight_utc(tmp_path: Path) -> None:
    import pandas as pd

    db = tmp_path / "w.duckdb"
    # a backtest on date-only daily bars: Friday 2024-01-05 and Monday 2024-01-08 are read as
    # midnight UTC, which in New York is Thursday and Sunday evening
    daily = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-05", "2024-01-08"], utc=True),
            "cash": [100.0, 100.0],
            "positions_value": 0.0,
            "equity": [101.0, 103.0],
        }
    )
    # an intraday account with one snapshot on midnight UTC (19:00 in New York, EST): that
    # instant belongs to its New York date
    intraday = pd.DataFrame(
        {
            "ts": pd.to_datetime(["2024-01-05 20:00", "2024-01-06 00:00"], utc=True),
            "cash": [100.0, 100.0],
            "positions_value": 0.0,
            "equity": [102.0, 104.0],
        }
    )
    with connect(db) as conn:
        write_backtest(conn, "daily", initial_cash=100.0, created_at=T0, equity=daily)
        write_backtest(conn, "intraday", initial_cash=100.0, created_at=T0, equity=intraday)

    with connect(db, read_only=True) as conn:
        rows = conn.execute(
            "SELECT account_id, session_date::VARCHAR, equity, pnl FROM daily_pnl "
            "ORDER BY account_id, session_date"
        ).fetchall()

    assert rows == [
        ("daily", "2024-01-05", 101.0, pytest.approx(1.0)),
        ("daily", "2024-01-08", 103.0, pytest.approx(2.0)),
        ("intraday", "2024-01-05", 104.0, pytest.approx(4.0)),
    ]


def test_an_older_file_gets_the_current_daily_pnl_on_its_next_write(tmp_path: Path) -> None:
    import duckdb

    from warehouse import schema

    db = tmp_path / "w.duckdb"
    old_view = (
        "CREATE OR REPLACE VIEW daily_pnl AS SELECT account_id,"
        " (ts AT TIME ZONE 'America/New_York')::DATE AS session_date FROM equity"
    )
    with duckdb.connect(str(db)) as raw:
        schema.migrate(raw, target=7)
        raw.execute(old_view)  # the view as papertrade before v8 created it
        raw.execute(
            "INSERT INTO equity (account_id, ts, cash, positions_value, equity)"
            " VALUES ('bt', TIMESTAMPTZ '2024-01-08 00:00:00+00', 1, 0, 1)"
        )

    with connect(db) as conn:
        dates = conn.execute("SELECT session_date::VARCHAR FROM daily_pnl").fetchall()

    assert dates == [("2024-01-08",)]
