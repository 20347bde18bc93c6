"""Metrics against hand-computed values, an independent plain-Python implementation, and
every defined edge case."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from papertrade.metrics import ROUND_TRIP_COLUMNS, compute_metrics, round_trips

T0 = datetime(2024, 1, 2, 21, 0, tzinfo=UTC)


def equity_series(values: list[float]) -> pd.Series:
    index = pd.DatetimeIndex([T0 + timedelta(days=i) for i in range(len(values))])
    return pd.Series(values, index=index, dtype="float64")


def fills_frame(rows: list[tuple[int, str, str, float, float, float]]) -> pd.DataFrame:
    """Rows of (minute offset, symbol, side, quantity, price, commission)."""
    return pd.DataFrame(
        {
            "ts": pd.to_datetime([T0 + timedelta(minutes=r[0]) for r in rows], utc=True),
            "symbol": [r[1] for r in rows],
            "side": [r[2] for r in rows],
            "quantity": [r[3] for r in rows],
            "price": [r[4] for r in rows],
            "commission": [r[5] for r in rows],
        }
    )


def reference_metrics(values: list[float], periods_per_year: int = 252) -> dict[str, float]:
    """The conventions written out with loops and the statistics module, no numpy."""
    returns = [values[i] / values[i - 1] - 1 for i in range(1, len(values))]
    mean = statistics.fmean(returns)
    std = statistics.stdev(returns)
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns))
    peak, mdd = values[0], 0.0
    for v in values:
        peak = max(peak, v)
        mdd = min(mdd, v / peak - 1)
    cagr = (values[-1] / values[0]) ** (periods_per_year / len(returns)) - 1
    return {
        "total_return": values[-1] / values[0] - 1,
        "sharpe": mean / std * math.sqrt(periods_per_year),
        "sortino": mean / downside * math.sqrt(periods_per_year),
        "volatility": std * math.sqrt(periods_per_year),
        "max_drawdown": mdd,
        "cagr": cagr,
        "calmar": cagr / abs(mdd),
    }


def test_hand_computed_small_series() -> None:
    # Arrange: returns +10%, -10%, +10%
    equity = equity_series([100.0, 110.0, 99.0, 108.9])

    # Act
    m = compute_metrics(equity, periods_per_year=252)

    # Assert
    mean, std = 0.1 / 3, math.sqrt(((0.2 / 3) ** 2 * 2 + (0.4 / 3) ** 2) / 2)
    assert m.n_periods == 3
    assert m.total_return == pytest.approx(0.089)
    assert m.period_return == pytest.approx(0.1)
    assert m.sharpe == pytest.approx(mean / std * math.sqrt(252))
    assert m.sortino == pytest.approx(mean / math.sqrt(0.01 / 3) * math.sqrt(252))
    assert m.max_drawdown == pytest.approx(-0.1)
    assert m.max_drawdown_periods == 2  # from the 110 peak to the last point, not recovered
    assert m.cagr == pytest.approx(1.089**84 - 1)
    assert m.volatility == pytest.approx(std * math.sqrt(252))


def test_drawdown_length_counts_peak_to_recovery() -> None:
    equity = equity_series([100.0, 120.0, 90.0, 100.0, 121.0, 125.0])

    m = compute_metrics(equity)

    assert m.max_drawdown == pytest.approx(90 / 120 - 1)
    assert m.max_drawdown_periods == 3  # 120 (t=1) -> 121 (t=4)


@pytest.mark.parametrize(
    "values",
    [
        [100.0, 101.0, 99.5, 102.0, 98.0, 97.0, 103.0, 104.5],
        [1e6, 1.01e6, 0.97e6, 0.95e6, 0.99e6, 1.02e6],
        [50.0, 49.0, 51.0, 48.0, 52.0],
    ],
)
def test_matches_independent_implementation(values: list[float]) -> None:
    expected = reference_metrics(values, periods_per_year=12)

    m = compute_metrics(equity_series(values), periods_per_year=12).as_dict()

    for key, value in expected.items():
        assert m[key] == pytest.approx(value, rel=1e-12), key


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=-0.2, max_value=0.2), min_size=2, max_size=40).filter(
        lambda rs: min(rs) < -1e-6 and statistics.pstdev(rs) > 1e-9
    )
)
def test_matches_independent_implementation_on_random_curves(returns: list[float]) -> None:
    values = [1000.0]
    for r in returns:
        values.append(values[-1] * (1 + r))

    expected = reference_metrics(values)
    m = compute_metrics(equity_series(values)).as_dict()

    for key in ("total_return", "sharpe", "sortino", "volatility", "max_drawdown"):
        assert m[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-12), key


def test_single_point_is_defined_not_a_crash() -> None:
    m = compute_metrics(equity_series([100_000.0]))

    d = m.as_dict()
    assert d["total_return"] == 0.0
    assert d["max_drawdown"] == 0.0
    for key in ("sharpe", "sortino", "volatility", "cagr", "calmar", "period_return"):
        assert d[key] is None, key
    json.dumps(d)


def test_empty_curve_gives_nulls() -> None:
    d = compute_metrics(equity_series([])).as_dict()

    assert d["n_periods"] == 0
    assert d["total_return"] is None and d["sharpe"] is None


def test_flat_curve_has_zero_volatility_and_no_ratios() -> None:
    m = compute_metrics(equity_series([100.0] * 10))

    assert m.volatility == 0.0
    assert math.isnan(m.sharpe) and math.isnan(m.sortino)
    assert m.max_drawdown == 0.0 and math.isnan(m.calmar)


def test_only_rising_curve_has_no_sortino() -> None:
    m = compute_metrics(equity_series([100.0, 101.0, 103.0, 104.0]))

    assert math.isnan(m.sortino)
    assert m.sharpe > 0


def test_equity_wiped_out_gives_no_warning_and_nan_returns_after_zero() -> None:
    m = compute_metrics(equity_series([100.0, 50.0, 0.0, 0.0]))

    assert m.total_return == -1.0
    assert m.cagr == -1.0
    assert m.max_drawdown == -1.0


def test_growth_too_large_to_annualise_is_undefined_not_a_crash() -> None:
    # +77% over 59 one-minute bars annualised at 98,280 minutes a year is 1.77 ** 1666:
    # beyond a float, which raised OverflowError out of a backtest
    equity = equity_series([100_000.0 * 1.01**i for i in range(60)])

    m = compute_metrics(equity, periods_per_year=98_280)

    assert m.cagr == math.inf
    assert m.total_return == pytest.approx(1.01**59 - 1)
    assert m.as_dict()["cagr"] is None and m.as_dict()["calmar"] is None
    json.dumps(m.as_dict())


def test_no_trades() -> None:
    m = compute_metrics(equity_series([100.0, 101.0]), trades=round_trips(fills_frame([])))

    assert m.n_trades == 0
    assert math.isnan(m.win_rate) and math.isnan(m.profit_factor) and math.isnan(m.expectancy)


def test_trade_statistics() -> None:
    trades = pd.DataFrame({"pnl": [30.0, -10.0, 20.0, -5.0, 0.0]})

    m = compute_metrics(equity_series([100.0, 101.0]), trades=trades)

    assert m.n_trades == 5 and m.n_wins == 2 and m.n_losses == 2
    assert m.win_rate == pytest.approx(0.4)
    assert m.profit_factor == pytest.approx(50 / 15)
    assert m.avg_win == pytest.approx(25.0)
    assert m.avg_loss == pytest.approx(-7.5)
    assert m.expectancy == pytest.approx(35 / 5)


def test_no_losing_trade_is_inf_in_metrics_and_null_in_dict() -> None:
    m = compute_metrics(equity_series([100.0, 101.0]), trades=pd.DataFrame({"pnl": [5.0, 1.0]}))

    assert m.profit_factor == math.inf
    assert m.as_dict()["profit_factor"] is None
    assert m.as_dict()["n_losses"] == 0


def test_trades_closed_at_their_entry_price_without_costs_are_neither_wins_nor_losses() -> None:
    # 10 x 1.62 bought and sold at 1.62 came out at -6.7e-16 each: two "losses" that turned
    # the profit factor of one +1.00 trade into 2.25e14
    fills = fills_frame(
        [(0, "X", "buy", 10, 1.62, 0.0), (1, "X", "sell", 10, 1.62, 0.0),
         (2, "X", "buy", 10, 1.62, 0.0), (3, "X", "sell", 10, 1.72, 0.0),
         (4, "X", "buy", 10, 1.62, 0.0), (5, "X", "sell", 10, 1.62, 0.0)]
    )  # fmt: skip

    m = compute_metrics(equity_series([100.0, 101.0]), fills=fills)

    assert round_trips(fills)["pnl"].tolist() == [0.0, pytest.approx(1.0), 0.0]
    assert (m.n_trades, m.n_wins, m.n_losses) == (3, 1, 0)
    assert m.win_rate == pytest.approx(1 / 3)
    assert m.profit_factor == math.inf


def test_gross_pnl_is_before_commissions_as_in_the_round_trips_view() -> None:
    # +10.00 before 3.00 of commissions and -5.00 before 1.00: `papertrade eod` printed the
    # net 1.00 as gross_pnl, where SELECT sum(gross_pnl) FROM round_trips says 5.00
    fills = fills_frame(
        [(0, "A", "buy", 10, 10.0, 1.0), (1, "A", "sell", 10, 11.0, 2.0),
         (2, "B", "buy", 5, 20.0, 0.5), (3, "B", "sell", 5, 19.0, 0.5)]
    )  # fmt: skip

    m = compute_metrics(equity_series([100.0, 101.0]), fills=fills)

    assert m.gross_pnl == pytest.approx(5.0)
    assert m.expectancy == pytest.approx((7.0 - 6.0) / 2)  # net, per trade


def test_turnover_and_gross_exposure() -> None:
    equity = equity_series([1000.0, 1000.0, 1200.0])
    fills = fills_frame([(0, "A", "buy", 10, 50.0, 0.0), (1, "A", "sell", 10, 60.0, 0.0)])
    exposure = pd.Series([0.0, 500.0, 600.0], index=equity.index)

    m = compute_metrics(equity, fills=fills, gross_exposure=exposure)

    assert m.turnover == pytest.approx(1100.0 / (3200.0 / 3))
    assert m.avg_gross_exposure == pytest.approx((0 + 0.5 + 0.5) / 3)
    assert m.n_trades == 1  # round trips derived from the fills


def test_round_trip_long_with_commissions() -> None:
    fills = fills_frame([(0, "AAPL", "buy", 100, 10.0, 1.0), (5, "AAPL", "sell", 100, 11.0, 2.0)])

    rt = round_trips(fills)

    assert list(rt.columns) == ROUND_TRIP_COLUMNS
    assert len(rt) == 1
    row = rt.iloc[0]
    assert row["direction"] == "long"
    assert row["commission"] == pytest.approx(3.0)
    assert row["pnl"] == pytest.approx(100 * 1.0 - 3.0)
    assert row["entry_ts"] == fills["ts"][0] and row["exit_ts"] == fills["ts"][1]


def test_round_trips_fifo_partial_and_pro_rata_commission() -> None:
    fills = fills_frame(
        [
            (0, "X", "buy", 100, 10.0, 1.0),
            (1, "X", "buy", 100, 12.0, 1.0),
            (2, "X", "sell", 150, 13.0, 3.0),
            (3, "X", "sell", 50, 11.0, 1.0),
        ]
    )

    rt = round_trips(fills)

    # One row per closing fill, as the warehouse view (this used to be two rows for the
    # first sell, one per entry lot: 100 @ 10 and 50 @ 12).
    # First sell: the whole first lot and half the second, entry (100*10 + 50*12) / 150;
    # commission 100/100 of 1.0 + 50/100 of 1.0 + the sell's 3.0 = 4.5;
    # pnl 150*13 - 1600 - 4.5 = 345.5.
    # Second sell: the other 50 of the second lot (its entry fill is fill 1), commission
    # 50/100 of 1.0 + 1.0 = 1.5, pnl 50 * (11 - 12) - 1.5 = -51.5.
    assert rt["quantity"].tolist() == [150.0, 50.0]
    assert rt["entry_price"].tolist() == pytest.approx([1600 / 150, 12.0])
    assert rt["entry_ts"].tolist() == [fills["ts"][0], fills["ts"][1]]
    assert rt["exit_ts"].tolist() == [fills["ts"][2], fills["ts"][3]]
    assert rt["commission"].tolist() == pytest.approx([4.5, 1.5])
    assert rt["pnl"].tolist() == pytest.approx([345.5, -51.5])


def test_one_sell_closing_two_buys_is_one_trade() -> None:
    # Two buys of 100 @ 190.00 at one timestamp (commission 1.00 each), one sell of 200 @
    # 189.94 (1.00) later: one trade of 200, gross 200 * -0.06 = -12, commission 3, pnl -15
    # (per entry lot it would be two trades of 100 * -0.06 - (1.0 + 0.5) = -7.5).
    fills = fills_frame(
        [
            (0, "AAPL", "buy", 100, 190.00, 1.0),
            (0, "AAPL", "buy", 100, 190.00, 1.0),
            (30, "AAPL", "sell", 200, 189.94, 1.0),
        ]
    )

    rt = round_trips(fills)
    m = compute_metrics(equity_series([1e5, 1e5 - 15.0]), fills=fills)

    assert len(rt) == 1
    row = rt.iloc[0]
    assert row["quantity"] == 200.0
    assert row["entry_price"] == pytest.approx(190.0)
    assert row["commission"] == pytest.approx(3.0)
    assert row["pnl"] == pytest.approx(-15.0)
    assert m.n_trades == 1 and m.n_losses == 1 and m.n_wins == 0


def test_flip_closes_long_and_opens_short() -> None:
    fills = fills_frame(
        [
            (0, "X", "buy", 100, 10.0, 1.0),
            (1, "X", "sell", 150, 11.0, 1.5),
            (2, "X", "buy", 50, 9.0, 0.5),
        ]
    )

    rt = round_trips(fills)

    assert rt["direction"].tolist() == ["long", "short"]
    assert rt["quantity"].tolist() == [100.0, 50.0]
    assert rt["pnl"].tolist() == pytest.approx([100 - 2.0, 50 * 2.0 - 1.0])


def test_round_trips_keep_symbols_apart_and_ignore_open_lots() -> None:
    fills = fills_frame(
        [
            (0, "A", "buy", 10, 10.0, 0.0),
            (0, "B", "sell", 10, 20.0, 0.0),
            (1, "A", "sell", 10, 9.0, 0.0),
            (2, "C", "buy", 10, 5.0, 0.0),
        ]
    )

    rt = round_trips(fills)

    assert rt["symbol"].tolist() == ["A"]
    assert rt["pnl"].tolist() == pytest.approx([-10.0])


def test_round_trips_of_no_fills_is_empty_with_columns() -> None:
    rt = round_trips(fills_frame([]))

    assert rt.empty and list(rt.columns) == ROUND_TRIP_COLUMNS


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(1, 50), st.integers(1, 100)),
        min_size=1,
        max_size=30,
    )
)
def test_round_trip_pnl_reconciles_with_cash_when_flat(
    trades: list[tuple[str, int, int]],
) -> None:
    rows = [(i, "S", side, float(q), float(p), 0.01 * q) for i, (side, q, p) in enumerate(trades)]
    # close whatever is open so realised P&L equals the cash flow
    position = sum(q if side == "buy" else -q for side, q, _ in trades)
    if position:
        side = "sell" if position > 0 else "buy"
        rows.append((len(rows), "S", side, float(abs(position)), 50.0, 0.01 * abs(position)))
    fills = fills_frame(rows)

    rt = round_trips(fills)

    signs = np.where(fills["side"] == "buy", -1.0, 1.0)
    cash = float((signs * fills["quantity"] * fills["price"]).sum() - fills["commission"].sum())
    assert rt["pnl"].sum() == pytest.approx(cash, abs=1e-6)
