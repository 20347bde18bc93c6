"""Quote validation: every fetched quote is either valid or flagged with why.

Runs on every fetch, vectorised over the whole cross-section. Flagged quotes are kept (the
warehouse stores them with their reason) but strategies and the broker must only act on rows
with `valid == True`. Rules, checked in this order; a row carries the first that fails:

    missing       requested but absent from the provider's answer (a row of NaNs is added)
    nan           bid, ask or quote_ts is missing, or bid or ask is infinite (a file's `inf`
                  would otherwise pass every comparison below: inf/inf spreads are NaN)
    non_positive  bid <= 0 or ask <= 0
    crossed       bid > ask
    wide_spread   (ask - bid) / mid > max_spread_bps / 10_000
    stale         as_of - quote_ts > staleness_seconds
    future        quote_ts - as_of >= max_ahead_seconds: the quote belongs to a later interval
                  (a live provider's latest quote for an `as_of` in the past), so trading on
                  it would be look-ahead. A live run fetches after its interval starts, so a
                  quote up to one interval newer than `as_of` is that interval's own.
    jump          |mid / previous_mid - 1| > max_jump_pct (fraction: 0.25 is 25%)
    duplicate     a second row for one symbol (the latest quote_ts is kept as the candidate)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import numpy as np
import pandas as pd

from paper_broker.market_data.frames import (
    FLOAT_QUOTE_COLUMNS,
    QUOTE_COLUMNS,
    quote_frame,
    to_utc,
)

_NAT = np.iinfo(np.int64).min  # how NaT is stored in int64 nanoseconds


class QuoteFlag(StrEnum):
    """Why a quote must not be traded on; values are stored in the warehouse as-is."""

    MISSING = "missing"
    NAN = "nan"
    NON_POSITIVE = "non_positive"
    CROSSED = "crossed"
    WIDE_SPREAD = "wide_spread"
    STALE = "stale"
    FUTURE = "future"
    JUMP = "jump"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class QuoteLimits:
    """Thresholds, in the units of `[market_data]`: basis points, seconds, fraction.
    `max_ahead_seconds` is the interval length: how far past `as_of` a quote may be stamped
    and still be the interval's own."""

    max_spread_bps: float = 200.0
    staleness_seconds: float = 120.0
    max_jump_pct: float = 0.25
    max_ahead_seconds: float = 60.0

    @classmethod
    def from_settings(cls, market_data: object) -> QuoteLimits:
        """From anything with the `[market_data]` attributes (e.g. `MarketDataSettings`)."""
        return cls(
            max_spread_bps=float(market_data.max_spread_bps),  # type: ignore[attr-defined]
            staleness_seconds=float(market_data.staleness_seconds),  # type: ignore[attr-defined]
            max_jump_pct=float(market_data.max_jump_pct),  # type: ignore[attr-defined]
            max_ahead_seconds=float(market_data.interval_seconds),  # type: ignore[attr-defined]
        )


# What `quote_frame` makes of quote_ts; a frame already holding it needs no re-parse.
_UTC_DTYPE = pd.DatetimeTZDtype("ns", "UTC")


def validate_quotes(
    quotes: pd.DataFrame,
    symbols: Sequence[str],
    as_of: datetime,
    limits: QuoteLimits = QuoteLimits(),  # frozen, so a shared default is safe
    previous_mids: Mapping[str, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """Return `quotes` with a row for every requested symbol plus bool `valid` and
    `flag_reason` (a `QuoteFlag` value, None when valid).

    Rows come back in the order of `symbols`, then any unrequested symbols the provider sent
    (those, and several rows for one symbol, ordered by quote_ts). `previous_mids` maps
    symbol -> last known mid; symbols without one skip the jump check. Never raises on bad
    values; a frame without the quote columns is a programming error (`KeyError` for a
    missing `symbol`; other missing columns are added as NaN unless a symbol is absent).
    """
    as_of_ts = to_utc(as_of)
    requested = list(dict.fromkeys(symbols))
    order = {s: i for i, s in enumerate(requested)}
    n_requested = len(order)
    present = set(quotes["symbol"].tolist())  # tolist: iterating the Series is ~10x slower
    absent = [s for s in requested if s not in present]
    if absent:
        frame = quote_frame(
            pd.concat(
                [quotes.loc[:, list(QUOTE_COLUMNS)], quote_frame({"symbol": absent})],
                ignore_index=True,
            )
        )
    elif _is_quote_frame(quotes):
        frame = quotes  # rebuilding an already conforming frame was most of the run time
    else:
        frame = quote_frame(quotes)
    n_rows = len(frame)

    # Sort by (rank in `symbols`, quote_ts); unrequested symbols share the last rank.
    rank = np.fromiter(
        (order.get(s, n_requested) for s in frame["symbol"].tolist()), np.intp, count=n_rows
    )
    ts = frame["quote_ts"].array.asi8  # int64 ns, NaT as the int64 minimum
    perm = np.argsort(rank, kind="stable")
    ranked = rank[perm]
    if (ranked[1:] == ranked[:-1]).any():
        # only rows sharing a rank need quote_ts (a NaT sorts first: the int64 minimum)
        perm = np.lexsort((ts, rank))
    in_order = bool((perm == np.arange(n_rows)).all())
    rank = rank[perm]
    ts = ts[perm]
    bid = frame["bid"].to_numpy()[perm]
    ask = frame["ask"].to_numpy()[perm]
    mid = 0.5 * (bid + ask)
    age = np.where(ts == _NAT, np.nan, (as_of_ts.value - ts) / 1e9)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread_bps = (ask - bid) / mid * 1e4
        if previous_mids is None:
            prev = np.full(n_rows, np.nan)
        else:
            # What `Series.map(prev_map)` does, minus its dtype inference: an index lookup
            # (raising on a non-unique index, as map does) with NaN where there is no match.
            prev_map = pd.Series(previous_mids, dtype="float64")
            found = prev_map.index.get_indexer(frame["symbol"])[perm]
            prev = np.append(prev_map.to_numpy(), np.nan)[found]  # -1 (no match) -> the NaN
        jump = np.abs(mid / prev - 1.0)

    # Equal symbols are adjacent after the sort when requested (same rank), so "not the last
    # of its run" is `duplicated(keep="last")`; unrequested ones share a rank, so ask pandas.
    duplicate = np.zeros(n_rows, dtype=bool)
    duplicate[:-1] = rank[:-1] == rank[1:]
    extra = rank == n_requested
    if extra.any():
        extra_symbols = frame["symbol"].take(perm[extra])
        duplicate[extra] = extra_symbols.duplicated(keep="last").to_numpy()

    rules: list[tuple[QuoteFlag, np.ndarray]] = [
        # the added rows come after the provider's, and absent symbols match none of its rows
        (QuoteFlag.MISSING, perm >= len(quotes)),
        (QuoteFlag.NAN, ~np.isfinite(bid) | ~np.isfinite(ask) | np.isnan(age)),
        (QuoteFlag.NON_POSITIVE, (bid <= 0) | (ask <= 0)),
        (QuoteFlag.CROSSED, bid > ask),
        (QuoteFlag.WIDE_SPREAD, spread_bps > limits.max_spread_bps),
        (QuoteFlag.STALE, age > limits.staleness_seconds),
        (QuoteFlag.FUTURE, -age >= limits.max_ahead_seconds),
        (QuoteFlag.JUMP, (prev > 0) & (jump > limits.max_jump_pct)),
        (QuoteFlag.DUPLICATE, duplicate),
    ]
    # argmax picks the first true rule per row: the rule order above is the flag precedence
    masks = np.vstack([mask for _, mask in rules])
    flagged = masks.any(axis=0)
    reason_of = np.array([flag.value for flag, _ in rules] + [None], dtype=object)
    reasons = reason_of[np.where(flagged, masks.argmax(axis=0), len(rules))]

    out = (frame if in_order else frame.take(perm)).reset_index(drop=True)
    out["valid"] = ~flagged
    out["flag_reason"] = pd.Series(reasons, index=out.index, dtype=object)
    return out


def _is_quote_frame(quotes: pd.DataFrame) -> bool:
    """True when `quote_frame(quotes)` would return the same columns, values and dtypes (up
    to its index reset), so validation may skip that rebuild."""
    if list(quotes.columns) != list(QUOTE_COLUMNS):
        return False
    dtypes = dict(zip(QUOTE_COLUMNS, quotes.dtypes.tolist(), strict=True))
    ts_dtype = dtypes["quote_ts"]
    # `tz is`: a zoneinfo UTC compares equal to the dtype quote_frame makes but is not it
    return (
        all(dtypes[col] == np.float64 for col in FLOAT_QUOTE_COLUMNS)
        and isinstance(ts_dtype, pd.DatetimeTZDtype)
        and ts_dtype == _UTC_DTYPE
        and ts_dtype.tz is _UTC_DTYPE.tz
    )


def tradable(validated: pd.DataFrame) -> pd.DataFrame:
    """Only the rows strategies and the broker may act on."""
    return validated.loc[validated["valid"]].reset_index(drop=True)
