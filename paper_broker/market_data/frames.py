"""The two frame shapes every provider returns, and the timestamp rules they share.

Quotes, one row per symbol:
    symbol str, bid/ask/last float64 (account currency), bid_size/ask_size/volume float64
    (shares; `volume` is the session's volume so far, NaN when the provider does not say),
    quote_ts datetime64[ns, UTC] (when the quote was made, not when we fetched it),
    provider str.

Bars, long format, one row per (timestamp, symbol), sorted by timestamp then symbol:
    timestamp datetime64[ns, UTC], symbol str, open/high/low/close float64, volume float64.
    `timestamp` is the bar's END: the close is the price at `timestamp`, so a bar stamped at
    or before `as_of` never holds information from after it. Providers whose vendors label
    bars by their start shift them by the bar length.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd

QUOTE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "bid",
    "ask",
    "bid_size",
    "ask_size",
    "last",
    "volume",
    "quote_ts",
    "provider",
)
BAR_COLUMNS: tuple[str, ...] = ("timestamp", "symbol", "open", "high", "low", "close", "volume")

# the quote columns `quote_frame` casts to float64
FLOAT_QUOTE_COLUMNS = ("bid", "ask", "bid_size", "ask_size", "last", "volume")
_FLOAT_BAR = ("open", "high", "low", "close", "volume")
UTC_NS = "datetime64[ns, UTC]"


def to_utc(ts: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """A tz-aware UTC `pd.Timestamp` (ns). Naive inputs raise `ValueError`: guessing a zone
    for market data silently shifts every price by hours."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:
        raise ValueError(f"timestamp must be timezone-aware, got naive {stamp}")
    return stamp.tz_convert("UTC").as_unit("ns")


def utc_series(values: object) -> pd.Series:
    """Parse a column of timestamps (strings with offsets, aware datetimes, or epoch ns
    integers) into datetime64[ns, UTC]."""
    return pd.Series(pd.to_datetime(values, utc=True)).astype(UTC_NS)


def quote_frame(data: dict[str, object] | pd.DataFrame) -> pd.DataFrame:
    """Build a quotes frame in the contract's column order and dtypes from columns."""
    frame = pd.DataFrame(data)
    for col in QUOTE_COLUMNS:
        if col not in frame:
            frame[col] = pd.Series(dtype="float64") if col in FLOAT_QUOTE_COLUMNS else None
    frame = frame.loc[:, list(QUOTE_COLUMNS)].reset_index(drop=True)
    frame[list(FLOAT_QUOTE_COLUMNS)] = frame[list(FLOAT_QUOTE_COLUMNS)].astype("float64")
    frame["quote_ts"] = utc_series(frame["quote_ts"])
    return frame


def empty_quotes() -> pd.DataFrame:
    return quote_frame({"symbol": []})


def bar_frame(data: dict[str, object] | pd.DataFrame) -> pd.DataFrame:
    """Build a bars frame in the contract's column order and dtypes, sorted by
    (timestamp, symbol)."""
    frame = pd.DataFrame(data)
    for col in BAR_COLUMNS:
        if col not in frame:
            frame[col] = pd.Series(dtype="float64") if col in _FLOAT_BAR else None
    frame = frame.loc[:, list(BAR_COLUMNS)]
    frame[list(_FLOAT_BAR)] = frame[list(_FLOAT_BAR)].astype("float64")
    frame["timestamp"] = utc_series(frame["timestamp"])
    return frame.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def empty_bars() -> pd.DataFrame:
    return bar_frame({"timestamp": []})
