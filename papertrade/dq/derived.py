"""Derived frames the quality suites validate: pure pandas, no GX, no DuckDB.

Each function turns warehouse rows into a frame whose columns make one rule a plain column
expectation (a value in range, a pair of columns ordered, a flag true), so the suites stay
declarative and these derivations are unit-testable on their own.

Money tolerance: `allowed = tolerance * max(1, |expected| / 1e6)`, i.e. `tolerance` dollars
(or shares) absolute up to a million and relative beyond it. Float64 sums of thousands of
fills err by ~1e-10 on accounts of this size, so 1e-6 holds honest books and still catches a
cent.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

BPS = 1e-4
_MONEY_SCALE = 1e6


def allowed_error(expected: np.ndarray | pd.Series | float, tolerance: float) -> np.ndarray:
    """Absolute tolerance per value: `tolerance` below a million, relative above it."""
    scale = np.maximum(1.0, np.abs(np.asarray(expected, dtype="float64")) / _MONEY_SCALE)
    return tolerance * scale


def signed_quantity(fills: pd.DataFrame) -> np.ndarray:
    """+quantity for buys, -quantity for sells (the position change)."""
    qty = fills["quantity"].to_numpy(dtype="float64")
    return np.where(fills["side"].to_numpy() == "buy", qty, -qty)


def fill_cash_flow(fills: pd.DataFrame) -> np.ndarray:
    """Cash change of each fill: -signed quantity * price - commission."""
    price = fills["price"].to_numpy(dtype="float64")
    commission = fills["commission"].to_numpy(dtype="float64")
    return -signed_quantity(fills) * price - commission


def quote_checks_frame(quotes: pd.DataFrame) -> pd.DataFrame:
    """Quotes plus `spread_bps` ((ask - bid) / mid, in basis points), `age_seconds`
    (as_of - quote_ts) and `jump` (|mid / previous mid - 1|, a fraction). Undefined values
    (a zero mid, a missing quote_ts) are NaN, which the suites count as failures for valid
    rows.

    The previous mid is the symbol's quote in the account's previous interval of the
    frame when that one was valid, as the interval's validation compares with the last
    committed interval's valid mids; without one (the session's first interval, a symbol
    flagged or absent the interval before) `jump` is 0."""
    out = quotes.copy()
    bid = out["bid"].to_numpy(dtype="float64")
    ask = out["ask"].to_numpy(dtype="float64")
    mid = (bid + ask) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out["spread_bps"] = np.where(mid > 0, (ask - bid) / mid / BPS, np.nan)
    out["age_seconds"] = (out["as_of"] - out["quote_ts"]).dt.total_seconds()
    out["jump"] = _jump(out.assign(_mid=mid))
    return out


def _jump(quotes: pd.DataFrame) -> np.ndarray:
    if quotes.empty:
        return np.zeros(0)
    times = quotes[["account_id", "as_of"]].drop_duplicates().sort_values("as_of")
    times["_before"] = times.groupby("account_id")["as_of"].shift()
    prev = quotes[quotes["valid"].fillna(False).astype(bool)][
        ["account_id", "symbol", "as_of", "_mid"]
    ].rename(columns={"as_of": "_before", "_mid": "_prev"})
    # pandas matches missing keys with each other: a row without a time or symbol has none
    prev = prev.dropna(subset=["account_id", "symbol", "_before"])
    prev = prev.drop_duplicates(["account_id", "symbol", "_before"], keep="last")
    keyed = quotes[["account_id", "symbol", "as_of", "_mid"]].merge(
        times, on=["account_id", "as_of"], how="left"
    )
    keyed = keyed.merge(prev, on=["account_id", "symbol", "_before"], how="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = np.abs(keyed["_mid"].to_numpy() / keyed["_prev"].to_numpy() - 1.0)
    known = keyed["_prev"].to_numpy() > 0
    return np.where(known, jump, 0.0)


def fill_band_frame(
    fills: pd.DataFrame,
    quotes: pd.DataFrame,
    *,
    slippage_bps: float,
    tick_size: float = 0.0,
    interval: timedelta | None = None,
) -> pd.DataFrame:
    """Session fills with the quote of their interval (the latest quote of the same account
    and symbol with as_of <= fill ts, and less than `interval` before it): `quote_as_of`,
    `quote_valid`, and the price band `[bid * (1 - slippage), ask * (1 + slippage)]` widened
    by one tick: the fill rounds to the tick away from the trader (buys up, sells down),
    which can add up to a whole tick. A fill without a quote in its interval gets NaN
    quote columns and bounds: an earlier interval's quote is not what the broker filled
    against, so it must not vouch for the fill. `interval=None` accepts any earlier quote."""
    band_cols = ["quote_as_of", "quote_valid", "band_low", "band_high"]
    if fills.empty:
        return fills.assign(**{c: pd.Series(dtype="float64") for c in band_cols})
    left = fills.sort_values("ts").reset_index(drop=True)
    right = (
        quotes[["account_id", "symbol", "as_of", "bid", "ask", "valid"]]
        .rename(columns={"as_of": "quote_as_of", "valid": "quote_valid"})
        .dropna(subset=["account_id", "symbol", "quote_as_of"])
        .sort_values("quote_as_of")
    )
    # merge_asof needs the `by` keys of one dtype on both sides (object vs string).
    for key in ("account_id", "symbol"):
        left[key] = left[key].astype("str")
        right[key] = right[key].astype("str")
    left["ts"] = left["ts"].astype(right["quote_as_of"].dtype)
    merged = pd.merge_asof(
        left,
        right,
        left_on="ts",
        right_on="quote_as_of",
        by=["account_id", "symbol"],
        direction="backward",
    )
    if interval is not None:
        own = (merged["ts"] - merged["quote_as_of"]) < pd.Timedelta(interval)
        merged["quote_as_of"] = merged["quote_as_of"].where(own)
        merged["quote_valid"] = merged["quote_valid"].astype("object").where(own, None)
        merged[["bid", "ask"]] = merged[["bid", "ask"]].where(own)
    slip = slippage_bps * BPS
    merged["band_low"] = merged["bid"] * (1.0 - slip) - tick_size
    merged["band_high"] = merged["ask"] * (1.0 + slip) + tick_size
    return merged.drop(columns=["bid", "ask"])


def interval_coverage_frame(
    intervals: pd.DataFrame, expected_intervals: Sequence[datetime]
) -> pd.DataFrame:
    """One row per interval, expected or recorded: `as_of`, `expected`, `present`.

    A gap is an expected interval with no row (committed or skipped); a recorded interval
    off the expected grid shows up as `expected = False`."""
    expected = pd.DatetimeIndex(pd.to_datetime(list(expected_intervals), utc=True))
    recorded = pd.DatetimeIndex(pd.to_datetime(intervals["as_of"], utc=True))
    unit = recorded.unit if len(recorded) else "us"
    expected = expected.as_unit(unit)
    every = expected.union(recorded).unique().sort_values()
    return pd.DataFrame(
        {"as_of": every, "expected": every.isin(expected), "present": every.isin(recorded)}
    )


def cash_reconciliation_frame(
    fills: pd.DataFrame, final_equity: pd.DataFrame, *, initial_cash: float, tolerance: float
) -> pd.DataFrame:
    """One row: the final snapshot's `cash` against `expected_cash` = initial cash + the cash
    flows of every fill up to the close. With no equity snapshot, `cash` is NaN (a failure
    when there are fills, since the book cannot be shown to reconcile)."""
    expected = float(initial_cash + fill_cash_flow(fills).sum())
    cash = float(final_equity["cash"].iloc[0]) if len(final_equity) else np.nan
    if not len(final_equity) and fills.empty:
        cash = expected
    return _difference_frame(
        pd.DataFrame({"item": ["cash"], "expected": [expected], "actual": [cash]}), tolerance
    )


def position_reconciliation_frame(
    fills: pd.DataFrame, positions: pd.DataFrame, *, tolerance: float
) -> pd.DataFrame:
    """One row per symbol held or ever filled: the snapshot's signed `quantity` against the
    sum of signed fill quantities. A symbol missing from the snapshot holds 0."""
    expected = (
        pd.Series(signed_quantity(fills), index=fills["symbol"].to_numpy(), dtype="float64")
        .groupby(level=0)
        .sum()
    )
    actual = positions.groupby("symbol")["quantity"].sum().astype("float64")
    symbols = expected.index.union(actual.index)
    frame = pd.DataFrame(
        {
            "item": symbols.astype(str),
            "expected": expected.reindex(symbols, fill_value=0.0).to_numpy(),
            "actual": actual.reindex(symbols, fill_value=0.0).to_numpy(),
        }
    )
    return _difference_frame(frame, tolerance)


def equity_identity_frame(
    equity: pd.DataFrame, positions: pd.DataFrame, *, tolerance: float
) -> pd.DataFrame:
    """One row per equity snapshot (`equity` against `cash + positions_value`) plus one for
    the final snapshot's `positions_value` against the sum of its positions' market value."""
    rows = pd.DataFrame(
        {
            "item": "equity@" + equity["ts"].map(pd.Timestamp.isoformat).astype(str),
            "expected": (equity["cash"] + equity["positions_value"]).to_numpy(dtype="float64"),
            "actual": equity["equity"].to_numpy(dtype="float64"),
        }
    )
    if len(equity):
        last = equity.loc[equity["ts"].idxmax()]
        held = float(positions["market_value"].sum()) if len(positions) else 0.0
        rows.loc[len(rows)] = [
            "positions_value@" + pd.Timestamp(last["ts"]).isoformat(),
            held,
            float(last["positions_value"]),
        ]
    return _difference_frame(rows, tolerance)


def _difference_frame(frame: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    out = frame.copy()
    out["difference"] = out["actual"] - out["expected"]
    # NaN differences (a missing value) must fail: inf never fits under `allowed`.
    out["abs_difference"] = out["difference"].abs().fillna(np.inf)
    out["allowed"] = allowed_error(out["expected"], tolerance)
    return out


# Rejected orders may lack a price: the missing price is why they were rejected.
_NEEDS_LIMIT = ("limit", "stop_limit")
_NEEDS_STOP = ("stop", "stop_limit")


def order_checks_frame(orders: pd.DataFrame) -> pd.DataFrame:
    """Orders plus `needs_limit_price` / `needs_stop_price`: accepted (not rejected) orders
    whose type requires the price. GX conditions cannot nest an OR inside an AND, so the
    condition is a column."""
    out = orders.copy()
    live = out["status"] != "rejected"
    out["needs_limit_price"] = live & out["order_type"].isin(_NEEDS_LIMIT)
    out["needs_stop_price"] = live & out["order_type"].isin(_NEEDS_STOP)
    return out
