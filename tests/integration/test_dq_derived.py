"""The pure-pandas derivations behind the quality suites (no GX, milliseconds each)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from papertrade.dq import DQResult, derived, dq_results_frame, failures
from papertrade.dq.results import DQ_RESULTS_COLUMNS, json_ready

T0 = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)


def _times(values: list[datetime]) -> pd.Series:
    return pd.Series(pd.to_datetime(values, utc=True)).astype("datetime64[us, UTC]")


def make_fills(rows: list[tuple[str, str, float, float, float]], ts: datetime = T0) -> pd.DataFrame:
    """rows: (symbol, side, quantity, price, commission)."""
    frame = pd.DataFrame(rows, columns=["symbol", "side", "quantity", "price", "commission"])
    frame.insert(0, "account_id", "paper")
    frame.insert(1, "fill_id", [f"f{i}" for i in range(len(rows))])
    frame["ts"] = _times([ts] * len(rows))
    return frame


def make_quotes(rows: list[tuple[datetime, str, float, float, bool]]) -> pd.DataFrame:
    """rows: (as_of, symbol, bid, ask, valid)."""
    frame = pd.DataFrame(rows, columns=["as_of", "symbol", "bid", "ask", "valid"])
    frame.insert(0, "account_id", "paper")
    frame["as_of"] = _times(list(frame["as_of"]))
    frame["quote_ts"] = frame["as_of"] - pd.Timedelta(seconds=2)
    return frame


def test_allowed_error_is_absolute_below_a_million_and_relative_above() -> None:
    allowed = derived.allowed_error(np.array([0.0, -5_000.0, 1e6, -4e6]), 1e-6)

    np.testing.assert_allclose(allowed, [1e-6, 1e-6, 1e-6, 4e-6])


def test_cash_reconciliation_sums_signed_flows_and_catches_a_cent() -> None:
    fills = make_fills([("A", "buy", 10, 100.0, 1.0), ("A", "sell", 5, 110.0, 1.0)])
    expected = 100_000.0 - 1_000.0 - 1.0 + 550.0 - 1.0
    equity = pd.DataFrame({"cash": [expected + 0.01]})

    frame = derived.cash_reconciliation_frame(fills, equity, initial_cash=100_000.0, tolerance=1e-6)

    row = frame.iloc[0]
    assert row["expected"] == pytest.approx(expected)
    assert row["difference"] == pytest.approx(0.01)
    assert row["abs_difference"] > row["allowed"]


def test_cash_reconciliation_without_a_snapshot_fails_only_when_there_were_fills() -> None:
    no_equity = pd.DataFrame({"cash": pd.Series(dtype="float64")})
    fills = make_fills([("A", "buy", 1, 10.0, 0.0)])

    quiet = derived.cash_reconciliation_frame(
        fills.iloc[0:0], no_equity, initial_cash=1_000.0, tolerance=1e-6
    )
    busy = derived.cash_reconciliation_frame(fills, no_equity, initial_cash=1_000.0, tolerance=1e-6)

    assert quiet.iloc[0]["abs_difference"] <= quiet.iloc[0]["allowed"]
    assert busy.iloc[0]["abs_difference"] == np.inf


def test_position_reconciliation_treats_absent_symbols_as_flat() -> None:
    fills = make_fills(
        [("A", "buy", 10, 1.0, 0.0), ("A", "sell", 10, 1.0, 0.0), ("B", "sell", 3, 1.0, 0.0)]
    )
    positions = pd.DataFrame({"symbol": ["B", "C"], "quantity": [-3.0, 2.0]})

    frame = derived.position_reconciliation_frame(fills, positions, tolerance=1e-6).set_index(
        "item"
    )

    assert frame.loc["A", ["expected", "actual"]].tolist() == [0.0, 0.0]
    assert frame.loc["B", "difference"] == 0.0
    assert frame.loc["C", "difference"] == 2.0
    ok = frame["abs_difference"] <= frame["allowed"]
    assert ok.to_dict() == {"A": True, "B": True, "C": False}


def test_equity_identity_checks_every_snapshot_and_final_positions_value() -> None:
    equity = pd.DataFrame(
        {
            "ts": _times([T0, T0 + timedelta(minutes=1)]),
            "cash": [900.0, 800.0],
            "positions_value": [100.0, 250.0],
            "equity": [1_000.0, 1_050.0],
        }
    )
    positions = pd.DataFrame({"symbol": ["A", "B"], "market_value": [200.0, 50.0]})

    frame = derived.equity_identity_frame(equity, positions, tolerance=1e-6)

    assert list(frame["difference"]) == [0.0, 0.0, 0.0]
    assert frame["item"].iloc[-1].startswith("positions_value@")
    broken = derived.equity_identity_frame(
        equity, positions.assign(market_value=[200.0, 49.0]), tolerance=1e-6
    )
    assert broken["difference"].iloc[-1] == 1.0


def test_quote_checks_frame_derives_spread_bps_and_age() -> None:
    quotes = make_quotes([(T0, "A", 99.0, 101.0, True), (T0, "B", 0.0, 0.0, False)])

    frame = derived.quote_checks_frame(quotes)

    assert frame["spread_bps"].iloc[0] == pytest.approx(200.0)
    assert np.isnan(frame["spread_bps"].iloc[1])
    assert list(frame["age_seconds"]) == [2.0, 2.0]


def test_quote_jump_is_against_the_valid_mid_of_the_interval_before() -> None:
    t1, t2 = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    quotes = make_quotes(
        [
            (T0, "AAA", 99.0, 101.0, True),
            (t1, "AAA", 149.0, 151.0, True),  # +50% on the mid of 100
            (T0, "BBB", 9.0, 11.0, False),  # flagged: no previous mid for t1
            (t1, "BBB", 19.0, 21.0, True),
            (t2, "BBB", 19.0, 21.0, True),
        ]
    )

    out = derived.quote_checks_frame(quotes)

    assert out["jump"].tolist() == pytest.approx([0.0, 0.5, 0.0, 0.0, 0.0])


def test_fill_band_uses_the_latest_quote_at_or_before_the_fill() -> None:
    quotes = make_quotes(
        [
            (T0, "A", 100.0, 100.10, True),
            (T0 + timedelta(minutes=1), "A", 200.0, 200.10, False),
            (T0, "B", 50.0, 50.02, True),
        ]
    )
    fills = make_fills([("A", "buy", 1, 100.10, 0.0)], ts=T0 + timedelta(milliseconds=500))

    frame = derived.fill_band_frame(fills, quotes, slippage_bps=10.0, tick_size=0.01)

    row = frame.iloc[0]
    assert row["quote_as_of"] == pd.Timestamp(T0)
    assert bool(row["quote_valid"]) is True
    assert row["band_low"] == pytest.approx(100.0 * 0.999 - 0.01)
    assert row["band_high"] == pytest.approx(100.10 * 1.001 + 0.01)


def test_fill_band_without_a_quote_has_no_band() -> None:
    quotes = make_quotes([(T0 + timedelta(minutes=1), "A", 1.0, 1.1, True)])
    fills = make_fills([("A", "buy", 1, 1.0, 0.0), ("Z", "buy", 1, 1.0, 0.0)])

    frame = derived.fill_band_frame(fills, quotes, slippage_bps=0.0)

    assert frame["quote_as_of"].isna().all()
    assert frame["band_low"].isna().all()


def test_fill_band_takes_no_quote_from_an_earlier_interval() -> None:
    quotes = make_quotes([(T0, "A", 100.0, 100.10, True), (T0, "B", 50.0, 50.02, True)])
    fills = make_fills([("A", "buy", 1, 100.10, 0.0)], ts=T0 + timedelta(minutes=1))
    fills = pd.concat(
        [fills, make_fills([("B", "buy", 1, 50.02, 0.0)], ts=T0 + timedelta(seconds=59))],
        ignore_index=True,
    )

    frame = derived.fill_band_frame(
        fills, quotes, slippage_bps=0.0, interval=timedelta(minutes=1)
    ).set_index("symbol")

    # A filled at the next interval, whose quote is missing: the older quote does not count
    assert pd.isna(frame.loc["A", "quote_as_of"]) and pd.isna(frame.loc["A", "quote_valid"])
    assert np.isnan(frame.loc["A", "band_low"]) and np.isnan(frame.loc["A", "band_high"])
    # B filled within its quote's interval
    assert frame.loc["B", "quote_as_of"] == pd.Timestamp(T0)
    assert frame.loc["B", "band_high"] == pytest.approx(50.02)


def test_interval_coverage_marks_gaps_and_off_grid_rows() -> None:
    expected = [T0 + timedelta(minutes=i) for i in range(3)]
    off_grid = T0 + timedelta(seconds=7)
    recorded = pd.DataFrame({"as_of": _times([expected[0], expected[2], off_grid])})

    frame = derived.interval_coverage_frame(recorded, expected).set_index("as_of")

    assert not frame.loc[pd.Timestamp(expected[1]), "present"]
    assert not frame.loc[pd.Timestamp(off_grid), "expected"]
    assert frame["present"].sum() == 3 and frame["expected"].sum() == 3


def test_order_checks_exempt_rejected_orders_from_price_rules() -> None:
    orders = pd.DataFrame(
        {
            "order_type": ["limit", "limit", "stop", "stop_limit", "market"],
            "status": ["accepted", "rejected", "new", "filled", "filled"],
        }
    )

    frame = derived.order_checks_frame(orders)

    assert list(frame["needs_limit_price"]) == [True, False, False, True, False]
    assert list(frame["needs_stop_price"]) == [False, False, True, True, False]


def test_dq_results_frame_matches_the_table_columns() -> None:
    run_at = datetime(2024, 3, 4, 21, 15, tzinfo=UTC)
    results = [
        DQResult("quotes", "valid_ask_ge_bid", False, "1 of 9 rows unexpected", 1, [{"a": 1}]),
        DQResult("ledger", "cash_reconciles", True, "0 of 1 rows unexpected", 0, []),
    ]

    frame = dq_results_frame(results, "paper", date(2024, 3, 4), run_at)

    assert list(frame.columns) == DQ_RESULTS_COLUMNS
    assert frame["success"].tolist() == [False, True]
    assert json.loads(frame["sample_json"].iloc[0]) == [{"a": 1}]
    assert str(frame["run_at"].dt.tz) == "UTC"
    assert [r.expectation for r in failures(results)] == ["valid_ask_ge_bid"]


def test_json_ready_turns_numpy_and_time_values_into_plain_json() -> None:
    row = {
        "ts": pd.Timestamp(T0),
        "x": np.float64(1.5),
        "n": np.int64(3),
        "missing": np.float64("nan"),
        "nat": pd.NaT,
        "pair": (np.float64(1.0), "a"),
    }

    ready = json_ready(row)

    assert json.loads(json.dumps(ready)) == {
        "ts": "2024-03-04T14:30:00+00:00",
        "x": 1.5,
        "n": 3,
        "missing": None,
        "nat": None,
        "pair": [1.0, "a"],
    }
