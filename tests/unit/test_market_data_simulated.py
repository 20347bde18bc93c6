"""The simulated market: deterministic per (seed, symbol, second), fast, and consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from paper_broker.market_data.frames import BAR_COLUMNS, QUOTE_COLUMNS
from paper_broker.market_data.simulated import SimulatedMarket

ROOT = Path(__file__).resolve().parents[2]
AS_OF = pd.Timestamp("2026-03-02 15:30:00", tz="UTC")  # a Monday, in session


def make_symbols(n: int) -> list[str]:
    return [f"SYM{i:03d}" for i in range(n)]


def test_quotes_have_the_contract_columns_and_dtypes() -> None:
    quotes = SimulatedMarket(seed=7).quotes(["AAPL", "MSFT"], AS_OF)

    assert tuple(quotes.columns) == QUOTE_COLUMNS
    assert list(quotes["symbol"]) == ["AAPL", "MSFT"]
    assert str(quotes["quote_ts"].dtype) == "datetime64[ns, UTC]"
    assert (quotes["quote_ts"] == AS_OF).all()
    assert (quotes["provider"] == "simulated").all()


def test_quotes_are_sane_two_sided_markets() -> None:
    quotes = SimulatedMarket(seed=1).quotes(make_symbols(200), AS_OF)

    mid = (quotes["bid"] + quotes["ask"]) / 2
    spread_bps = (quotes["ask"] - quotes["bid"]) / mid * 1e4
    assert (quotes["bid"] > 0).all()
    assert (quotes["ask"] > quotes["bid"]).all()
    assert spread_bps.median() < 30
    assert quotes["last"].between(quotes["bid"], quotes["ask"]).all()
    assert (quotes["bid_size"] % 100 == 0).all() and (quotes["bid_size"] > 0).all()
    assert (quotes["volume"] > 0).all()


def test_same_quote_whatever_the_call_order_or_company() -> None:
    symbols = make_symbols(30)
    times = [AS_OF + pd.Timedelta(seconds=s) for s in (0, 61, 3_600, -86_400 * 3)]
    market = SimulatedMarket(seed=5)
    forward = {t: market.quotes(symbols, t) for t in times}

    other = SimulatedMarket(seed=5)
    for t in reversed(times):
        backward = other.quotes(list(reversed(symbols[::3])), t)
        expected = forward[t].set_index("symbol").loc[backward["symbol"]].reset_index()
        pd.testing.assert_frame_equal(backward, expected)


def test_seed_changes_the_market() -> None:
    a = SimulatedMarket(seed=1).quotes(["AAPL"], AS_OF)
    b = SimulatedMarket(seed=2).quotes(["AAPL"], AS_OF)

    assert a.loc[0, "bid"] != b.loc[0, "bid"]


def test_same_quotes_in_another_process() -> None:
    symbols = make_symbols(5)
    script = (
        "import json, pandas as pd\n"
        "from paper_broker.market_data.simulated import SimulatedMarket\n"
        f"q = SimulatedMarket(seed=11).quotes({symbols!r}, pd.Timestamp('{AS_OF.isoformat()}'))\n"
        "print(json.dumps(q[['bid','ask','last','volume']].to_numpy().tolist()))\n"
    )
    local = SimulatedMarket(seed=11).quotes(symbols, AS_OF)

    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )

    theirs = np.array(json.loads(out.stdout))
    np.testing.assert_array_equal(theirs, local[["bid", "ask", "last", "volume"]].to_numpy())


@pytest.mark.parametrize(
    "ts",
    [
        pd.Timestamp("2026-03-07 12:00", tz="UTC"),  # Saturday
        pd.Timestamp("1990-01-01 00:00", tz="UTC"),
        pd.Timestamp("2100-06-30 23:59:59", tz="UTC"),
        pd.Timestamp("2026-03-02 10:30", tz="America/New_York"),
    ],
)
def test_any_timestamp_gives_positive_prices(ts: pd.Timestamp) -> None:
    quotes = SimulatedMarket().quotes(["AAPL", "MSFT"], ts)

    assert (quotes["bid"] > 0).all() and (quotes["ask"] > quotes["bid"]).all()
    assert (quotes["quote_ts"] == ts.tz_convert("UTC").floor("s")).all()


def test_naive_and_out_of_range_timestamps_raise() -> None:
    market = SimulatedMarket()

    with pytest.raises(ValueError, match="timezone-aware"):
        market.quotes(["AAPL"], pd.Timestamp("2026-01-01"))
    with pytest.raises(ValueError, match="1900"):
        market.quotes(["AAPL"], pd.Timestamp("1850-01-01", tz="UTC"))


def test_bars_close_at_t_matches_mid_at_t() -> None:
    market = SimulatedMarket(seed=3)
    symbols = ["AAPL", "MSFT", "XOM"]

    bars = market.bars(symbols, AS_OF - pd.Timedelta(minutes=30), AS_OF, "1Min")

    assert tuple(bars.columns) == BAR_COLUMNS
    assert len(bars) == 31 * len(symbols)
    last = bars[bars["timestamp"] == AS_OF].set_index("symbol").loc[symbols]
    np.testing.assert_allclose(last["close"], market.mid(symbols, AS_OF), atol=0.005 + 1e-9)
    quotes = market.quotes(symbols, AS_OF)
    np.testing.assert_allclose(
        last["close"], (quotes["bid"] + quotes["ask"]).to_numpy() / 2, rtol=1e-3
    )


def test_bars_are_consistent_ohlc_and_adjacent() -> None:
    bars = SimulatedMarket(seed=3).bars(
        ["AAPL", "MSFT"], AS_OF - pd.Timedelta(hours=2), AS_OF, "5Min"
    )

    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["volume"] > 0).all()
    for _, one in bars.groupby("symbol"):
        # each bar opens where the previous one closed: one continuous path
        np.testing.assert_array_equal(one["open"].to_numpy()[1:], one["close"].to_numpy()[:-1])
    assert bars["timestamp"].is_monotonic_increasing


def test_realised_volatility_matches_the_symbol_parameter() -> None:
    market = SimulatedMarket(seed=9)
    end = pd.Timestamp("2026-01-01", tz="UTC")

    daily = market.bars(["AAPL"], end - pd.Timedelta(days=730), end, "1Day")

    returns = np.diff(np.log(daily["close"].to_numpy()))
    realised = returns.std(ddof=1) * np.sqrt(365.25)
    assert realised == pytest.approx(market.params(["AAPL"])[0].volatility, rel=0.15)


def test_500_symbols_in_one_call() -> None:
    quotes = SimulatedMarket().quotes(make_symbols(500), AS_OF)

    assert len(quotes) == 500 and quotes["symbol"].is_unique
