"""Quote validation: every fetched quote is either valid or flagged with why.

Runs on every fetch, vectorised over the whole cross-section. Flagged quotes are kept (the
warehouse stores them with their reason) but strategies and the broker must only act on rows
with `valid == True`. Rules, checked in this order; a row carries the first that fails:

    missing       requested but absent from the provider's answer (a row of NaNs is added)
    nan           bid, ask or quote_ts is missing
    non_positive  bid <= 0 or ask <= 0
    crossed       bid > ask
    wide_spread   (ask - bid) / mid > max_spread_bps / 10_000
    stale         as_of - quote_ts > staleness_seconds
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

from paper_broker.market_data.frames import QUOTE_COLUMNS, quote_frame, to_utc


class QuoteFlag(StrEnum):
    """Why a quote must not be traded on; values are stored in the warehouse as-is."""

    MISSING = "missing"
    NAN = "nan"
    NON_POSITIVE = "non_positive"
    CROSSED = "crossed"
    WIDE_SPREAD = "wide_spread"
    STALE = "stale"
    JUMP = "jump"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class QuoteLimits:
    """Thresholds, in the units of `[market_data]`: basis points, seconds, fraction."""

    max_spread_bps: float = 200.0
    staleness_seconds: float = 120.0
    max_jump_pct: float = 0.25

    @classmethod
    def from_settings(cls, market_data: object) -> QuoteLimits:
        """From anything with the `[market_data]` attributes (e.g. `MarketDataSettings`)."""
        return cls(
            max_spread_bps=float(market_data.max_spread_bps),  # type: ignore[attr-defined]
            staleness_seconds=float(market_data.staleness_seconds),  # type: ignore[attr-defined]
            max_jump_pct=float(market_data.max_jump_pct),  # type: ignore[attr-defined]
        )


def validate_quotes(
    quotes: pd.DataFrame,
    symbols: Sequence[str],
    as_of: datetime,
    limits: QuoteLimits = QuoteLimits(),  # frozen, so a shared default is safe
    previous_mids: Mapping[str, float] | pd.Series | None = None,
) -> pd.DataFrame:
    """Return `quotes` with a row for every requested symbol plus bool `valid` and
    `flag_reason` (a `QuoteFlag` value, None when valid).

    Rows come back in the order of `symbols`, then any unrequested symbols the provider sent.
    `previous_mids` maps symbol -> last known mid; symbols without one skip the jump check.
    Never raises on bad values; a frame without the quote columns is a programming error
    (`KeyError`).
    """
    as_of_ts = to_utc(as_of)
    requested = list(dict.fromkeys(symbols))
    present = set(quotes["symbol"])
    absent = [s for s in requested if s not in present]
    frame = quote_frame(
        pd.concat(
            [quotes.loc[:, list(QUOTE_COLUMNS)], quote_frame({"symbol": absent})],
            ignore_index=True,
        )
        if absent
        else quotes
    )
    order = {s: i for i, s in enumerate(requested)}
    rank = frame["symbol"].map(order).fillna(len(order)).to_numpy()
    frame = frame.iloc[np.lexsort((frame["quote_ts"].to_numpy(), rank))].reset_index(drop=True)

    bid = frame["bid"].to_numpy()
    ask = frame["ask"].to_numpy()
    mid = 0.5 * (bid + ask)
    age = (as_of_ts - frame["quote_ts"]).dt.total_seconds().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        spread_bps = (ask - bid) / mid * 1e4
        if previous_mids is None:
            prev = np.full(len(frame), np.nan)
        else:
            prev_map = pd.Series(previous_mids, dtype="float64")
            prev = frame["symbol"].map(prev_map).to_numpy(dtype="float64", na_value=np.nan)
        jump = np.abs(mid / prev - 1.0)

    rules: list[tuple[QuoteFlag, np.ndarray]] = [
        (QuoteFlag.MISSING, frame["symbol"].isin(absent).to_numpy()),
        (QuoteFlag.NAN, np.isnan(bid) | np.isnan(ask) | np.isnan(age)),
        (QuoteFlag.NON_POSITIVE, (bid <= 0) | (ask <= 0)),
        (QuoteFlag.CROSSED, bid > ask),
        (QuoteFlag.WIDE_SPREAD, spread_bps > limits.max_spread_bps),
        (QuoteFlag.STALE, age > limits.staleness_seconds),
        (QuoteFlag.JUMP, (prev > 0) & (jump > limits.max_jump_pct)),
        (QuoteFlag.DUPLICATE, frame["symbol"].duplicated(keep="last").to_numpy()),
    ]
    # np.select picks the first true condition: the rule order above is the flag precedence
    reasons = np.select(
        [mask for _, mask in rules], [flag.value for flag, _ in rules], default=""
    ).astype(object)
    valid = reasons == ""
    reasons[valid] = None
    frame["valid"] = valid
    frame["flag_reason"] = pd.Series(reasons, index=frame.index, dtype=object)
    return frame


def tradable(validated: pd.DataFrame) -> pd.DataFrame:
    """Only the rows strategies and the broker may act on."""
    return validated.loc[validated["valid"]].reset_index(drop=True)
