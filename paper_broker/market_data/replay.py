"""Replay recorded bars or quotes from a CSV or Parquet file, with no look-ahead.

A bars file has `timestamp,symbol,open,high,low,close,volume` (the backtest format); a quotes
file has `symbol,bid,ask` and a `quote_ts` (or `timestamp`) column, optionally `last`, sizes
and `volume`. Timestamps need an offset (`...Z` or `+00:00`); naive ones are read as UTC.

`quotes(symbols, as_of)` returns, per symbol, the latest record stamped at or before `as_of`,
never a later one. Old records are returned as they are, with their own `quote_ts`;
validation flags them stale. A bar becomes a quote with bid = close - half spread,
ask = close + half spread (`half_spread_bps`, default 0: bid = ask = close), last = close, and
`quote_ts` = the time its close was known: the bar's timestamp plus `bar_close_offset` (pass
the bar length when the file labels bars by their start).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from paper_broker.market_data.errors import ReplayDataError
from paper_broker.market_data.frames import (
    BAR_COLUMNS,
    bar_frame,
    empty_bars,
    empty_quotes,
    quote_frame,
    to_utc,
    utc_series,
)
from paper_broker.market_data.timeframe import Timeframe

_NAME = "replay"


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or Parquet file; `ReplayDataError` if it is missing or unreadable."""
    if not path.is_file():
        raise ReplayDataError(_NAME, f"replay file not found: {path}")
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ReplayDataError(_NAME, f"cannot read {path}: {exc}") from None


class ReplayProvider:
    """Quotes and bars from a recorded table, answered as of any time without look-ahead.

    Raises `ReplayDataError` at construction when the file lacks the columns of either kind,
    has no rows, or holds a timestamp or number that cannot be parsed: the CLI's preflight
    builds the provider, so a bad file is one line before anything runs.
    """

    name = _NAME

    def __init__(
        self,
        table: pd.DataFrame | Path | str,
        *,
        half_spread_bps: float = 0.0,
        bar_close_offset: timedelta = timedelta(0),
    ) -> None:
        if isinstance(table, (str, Path)):
            raw, source = read_table(Path(table)), f"replay file {table}"
        else:
            raw, source = table, "the replay table"
        if raw.empty:
            raise ReplayDataError(_NAME, f"{source} has no rows")
        try:
            table_q = self._load(raw, half_spread_bps, bar_close_offset)
        except (ValueError, TypeError) as exc:
            # a value pandas cannot parse (a timestamp or price cell) fails here, not at the
            # first interval; pandas' own message runs to several lines of advice
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            reason = reason.split(" You might want to try")[0]
            raise ReplayDataError(_NAME, f"cannot use {source}: {reason}") from None
        # sorted by (symbol, quote_ts): each symbol's rows are one contiguous, ordered block,
        # so "latest at or before as_of" is one searchsorted per block, all vectorised
        self._quotes = table_q.sort_values(["symbol", "quote_ts"], kind="stable").reset_index(
            drop=True
        )
        sym = self._quotes["symbol"].to_numpy()  # not empty: a file without rows is refused
        starts = np.flatnonzero(np.r_[True, sym[1:] != sym[:-1]])
        ends = np.r_[starts[1:], len(sym)]
        self._block = {
            s: (int(a), int(b)) for s, a, b in zip(sym[starts], starts, ends, strict=True)
        }
        self._ts_ns = self._quotes["quote_ts"].array.asi8

    def _load(
        self, raw: pd.DataFrame, half_spread_bps: float, bar_close_offset: timedelta
    ) -> pd.DataFrame:
        """Set `kind` and the bars, and return the quotes table (one row per record)."""
        columns = set(raw.columns)
        self.kind = "bars" if set(BAR_COLUMNS) <= columns else "quotes"
        if self.kind == "bars":
            self._bars = bar_frame(raw.loc[:, list(BAR_COLUMNS)])
            offset = pd.Timedelta(bar_close_offset)
            self._bars["timestamp"] = self._bars["timestamp"] + offset
            close = self._bars["close"].to_numpy()
            half = close * half_spread_bps / 1e4
            return quote_frame(
                {
                    "symbol": self._bars["symbol"],
                    "bid": close - half,
                    "ask": close + half,
                    "last": close,
                    "volume": _session_volume(self._bars),
                    "quote_ts": self._bars["timestamp"],
                    "provider": _NAME,
                }
            )
        elif {"symbol", "bid", "ask"} <= columns and ({"quote_ts", "timestamp"} & columns):
            self._bars = empty_bars()
            data = raw.rename(columns={"timestamp": "quote_ts"}) if "quote_ts" not in raw else raw
            data = data.assign(provider=_NAME, quote_ts=utc_series(data["quote_ts"]))
            known = [c for c in data.columns if c in set(quote_frame({"symbol": []}).columns)]
            return quote_frame(data.loc[:, known])
        else:
            raise ReplayDataError(
                _NAME,
                "replay data needs bar columns (timestamp,symbol,open,high,low,close,volume) "
                f"or quote columns (symbol,bid,ask,quote_ts); got {sorted(map(str, columns))}",
            )

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        """Latest record per symbol with quote_ts <= as_of; symbols without one are absent."""
        cutoff = to_utc(as_of).value
        rows = []
        for symbol in dict.fromkeys(symbols):
            block = self._block.get(symbol)
            if block is None:
                continue
            lo, hi = block
            idx = lo + int(np.searchsorted(self._ts_ns[lo:hi], cutoff, side="right")) - 1
            if idx >= lo:
                rows.append(idx)
        if not rows:
            return empty_quotes()
        return self._quotes.iloc[rows].reset_index(drop=True)

    def bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> pd.DataFrame:
        """Recorded bars with start <= timestamp <= end, as stored (`timeframe` is checked for
        spelling only; replay does not resample). A quotes file has no bars: empty frame."""
        Timeframe.parse(timeframe)
        lo, hi = to_utc(start), to_utc(end)
        bars = self._bars
        mask = bars["symbol"].isin(list(symbols)) & bars["timestamp"].between(lo, hi)
        return bars.loc[mask].reset_index(drop=True)

    def close(self) -> None:
        """Nothing to release; present for the provider protocol."""


def _session_volume(bars: pd.DataFrame) -> pd.Series:
    """Each bar's volume summed over its symbol's session so far (New York date), as quotes
    carry it: a quote's volume is the session's volume up to it, whatever the provider."""
    day = bars["timestamp"].dt.tz_convert("America/New_York").dt.date
    by_time = bars.assign(day=day).sort_values("timestamp", kind="stable")
    return by_time.groupby(["symbol", "day"], sort=False)["volume"].cumsum().reindex(bars.index)
