"""Every validation rule, its precedence, and that flagged rows are kept."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from paper_broker.market_data.frames import quote_frame
from paper_broker.market_data.validation import (
    QuoteFlag,
    QuoteLimits,
    tradable,
    validate_quotes,
)

AS_OF = pd.Timestamp("2026-03-02 15:30:00", tz="UTC")
LIMITS = QuoteLimits(max_spread_bps=50.0, staleness_seconds=60.0, max_jump_pct=0.10)


def make_quote(symbol: str = "AAPL", **overrides: Any) -> dict[str, Any]:
    row = {
        "symbol": symbol,
        "bid": 100.00,
        "ask": 100.02,
        "bid_size": 100.0,
        "ask_size": 100.0,
        "last": 100.01,
        "volume": 1e6,
        "quote_ts": AS_OF - pd.Timedelta(seconds=5),
        "provider": "test",
    }
    row.update(overrides)
    return row


def make_quotes(*rows: dict[str, Any]) -> pd.DataFrame:
    return quote_frame(pd.DataFrame(list(rows)))


def flag_of(quotes: pd.DataFrame, symbol: str = "AAPL", **kwargs: Any) -> str | None:
    out = validate_quotes(quotes, [symbol], AS_OF, LIMITS, **kwargs)
    return out.set_index("symbol").loc[symbol, "flag_reason"]


def test_a_good_quote_is_valid_with_no_reason() -> None:
    out = validate_quotes(make_quotes(make_quote()), ["AAPL"], AS_OF, LIMITS)

    assert out["valid"].tolist() == [True]
    assert out["flag_reason"].tolist() == [None]


def test_missing_symbol_gets_a_row_of_nans() -> None:
    out = validate_quotes(make_quotes(make_quote("AAPL")), ["AAPL", "MSFT"], AS_OF, LIMITS)

    assert out["symbol"].tolist() == ["AAPL", "MSFT"]
    missing = out.iloc[1]
    assert missing["flag_reason"] == QuoteFlag.MISSING
    assert not missing["valid"]
    assert np.isnan(missing["bid"]) and np.isnan(missing["ask"])


def test_empty_answer_flags_every_symbol_missing() -> None:
    out = validate_quotes(make_quotes(), ["A", "B"], AS_OF, LIMITS)

    assert out["flag_reason"].tolist() == ["missing", "missing"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"bid": np.nan}, QuoteFlag.NAN),
        ({"ask": np.nan}, QuoteFlag.NAN),
        ({"quote_ts": pd.NaT}, QuoteFlag.NAN),
        ({"ask": np.inf}, QuoteFlag.NAN),
        ({"bid": np.inf, "ask": np.inf}, QuoteFlag.NAN),
        ({"bid": -np.inf}, QuoteFlag.NAN),
        ({"bid": 0.0}, QuoteFlag.NON_POSITIVE),
        ({"bid": -1.0, "ask": -0.5}, QuoteFlag.NON_POSITIVE),
        ({"bid": 100.05, "ask": 100.00}, QuoteFlag.CROSSED),
        ({"bid": 100.0, "ask": 100.6}, QuoteFlag.WIDE_SPREAD),  # ~60 bps > 50
        ({"quote_ts": AS_OF - pd.Timedelta(seconds=61)}, QuoteFlag.STALE),
        ({"quote_ts": AS_OF + pd.Timedelta(days=3)}, QuoteFlag.FUTURE),
    ],
)
def test_each_rule_flags_its_quote(overrides: dict[str, Any], expected: QuoteFlag) -> None:
    assert flag_of(make_quotes(make_quote(**overrides))) == expected


def test_limits_are_inclusive_boundaries() -> None:
    at_limits = make_quote(
        bid=100.0, ask=100.4, quote_ts=AS_OF - pd.Timedelta(seconds=60)
    )  # ~39.9 bps, exactly 60 s old

    assert flag_of(make_quotes(at_limits)) is None


def test_a_quote_from_a_later_interval_is_look_ahead() -> None:
    # a live provider's latest quote, fetched for an interval that is already over
    within_interval = make_quote(quote_ts=AS_OF + pd.Timedelta(seconds=59.999))
    next_interval = make_quote(quote_ts=AS_OF + pd.Timedelta(seconds=60))

    assert flag_of(make_quotes(within_interval)) is None
    assert flag_of(make_quotes(next_interval)) == QuoteFlag.FUTURE
    five_minutes = QuoteLimits(max_ahead_seconds=300.0)
    out = validate_quotes(make_quotes(next_interval), ["AAPL"], AS_OF, five_minutes)
    assert out["valid"].tolist() == [True]


def test_jump_against_previous_mid() -> None:
    quotes = make_quotes(make_quote(bid=111.0, ask=111.02))

    assert flag_of(quotes, previous_mids={"AAPL": 100.0}) == QuoteFlag.JUMP
    assert flag_of(quotes, previous_mids={"AAPL": 105.0}) is None
    assert flag_of(quotes, previous_mids=pd.Series({"MSFT": 1.0})) is None
    assert flag_of(quotes) is None


def test_downward_jump_is_flagged_too() -> None:
    quotes = make_quotes(make_quote(bid=80.0, ask=80.02))

    assert flag_of(quotes, previous_mids={"AAPL": 100.0}) == QuoteFlag.JUMP


def test_first_failing_rule_wins_in_documented_order() -> None:
    crossed_and_stale = make_quote(bid=101.0, ask=100.0, quote_ts=AS_OF - pd.Timedelta(hours=1))
    nonpos_and_crossed = make_quote(bid=0.0, ask=-1.0)

    assert flag_of(make_quotes(crossed_and_stale)) == QuoteFlag.CROSSED
    assert flag_of(make_quotes(nonpos_and_crossed)) == QuoteFlag.NON_POSITIVE


def test_duplicates_keep_the_latest_as_candidate() -> None:
    old = make_quote(quote_ts=AS_OF - pd.Timedelta(seconds=30), bid=99.0, ask=99.02)
    new = make_quote(quote_ts=AS_OF - pd.Timedelta(seconds=2))

    out = validate_quotes(make_quotes(new, old), ["AAPL"], AS_OF, LIMITS)

    assert out["flag_reason"].tolist() == ["duplicate", None]
    assert tradable(out)["bid"].tolist() == [100.0]


def test_flagged_rows_are_kept_and_tradable_drops_them() -> None:
    quotes = make_quotes(make_quote("A"), make_quote("B", bid=np.nan), make_quote("C"))

    out = validate_quotes(quotes, ["C", "B", "A", "D"], AS_OF, LIMITS)

    assert out["symbol"].tolist() == ["C", "B", "A", "D"]
    assert out["valid"].tolist() == [True, False, True, False]
    assert tradable(out)["symbol"].tolist() == ["C", "A"]


def test_unrequested_symbols_are_kept_after_the_requested_ones() -> None:
    quotes = make_quotes(make_quote("EXTRA"), make_quote("AAPL"))

    out = validate_quotes(quotes, ["AAPL"], AS_OF, LIMITS)

    assert out["symbol"].tolist() == ["AAPL", "EXTRA"]


def test_limits_from_settings() -> None:
    from papertrade.settings import MarketDataSettings

    limits = QuoteLimits.from_settings(MarketDataSettings(max_spread_bps=10, max_jump_pct=0.5))

    assert limits == QuoteLimits(max_spread_bps=10.0, staleness_seconds=120.0, max_jump_pct=0.5)
    ten_minutes = QuoteLimits.from_settings(MarketDataSettings(interval_seconds=600))
    assert ten_minutes.max_ahead_seconds == 600.0
