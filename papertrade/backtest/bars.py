"""Bars files: CSV or Parquet in long format `timestamp,symbol,open,high,low,close,volume`,
validated and pivoted into a [T x N] panel (rows bars, columns symbols).

Timestamps are parsed as UTC (naive values are taken to be UTC already). The file must be
sorted by timestamp (symbols within a timestamp in any order); a symbol without a bar at a
timestamp is NaN in the panel and is neither traded nor re-marked there. Every problem
raises `BarsFileError` (a `UserError`: exit 2) with one line naming it, before anything is
written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from papertrade.errors import UserError

BAR_COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class BarsFileError(UserError):
    """A bars file that cannot be backtested on; the message names the file and the problem."""


@dataclass(frozen=True, slots=True)
class BarPanel:
    """Bars as aligned float64 arrays [T x N]; NaN where a symbol has no bar.

    `timestamps` is a tz-aware UTC DatetimeIndex of length T, strictly increasing;
    `symbols` the N column names, sorted. Volume is in shares (NaN: unknown, no volume cap).
    """

    timestamps: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @property
    def n_bars(self) -> int:
        return int(self.close.shape[0])

    @property
    def n_symbols(self) -> int:
        return int(self.close.shape[1])

    def slice(self, start: int, stop: int) -> BarPanel:
        """Bars [start, stop) (views, no copies)."""
        return BarPanel(
            self.timestamps[start:stop], self.symbols, self.open[start:stop],
            self.high[start:stop], self.low[start:stop], self.close[start:stop],
            self.volume[start:stop],
        )  # fmt: skip

    def closes_frame(self) -> pd.DataFrame:
        """The closes as a wide frame (index timestamps, columns symbols) for `prepare`."""
        return pd.DataFrame(self.close, index=self.timestamps, columns=list(self.symbols))


def read_bars(path: Path) -> pd.DataFrame:
    """The raw long-format frame of a CSV or Parquet file; raises `BarsFileError` for a
    missing, unreadable, empty or unknown-type file."""
    path = Path(path)
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BarsFileError(
            f"bars file {path}: unknown file type {path.suffix or '(none)'!r} "
            "(use .csv or .parquet)"
        )
    if not path.is_file():
        raise BarsFileError(f"bars file not found: {path}")
    try:
        frame = pd.read_csv(path, dtype={"symbol": str}) if kind == "csv" else pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise BarsFileError(f"bars file {path} is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BarsFileError(f"bars file {path} cannot be read: {first}") from None
    if frame.empty:
        raise BarsFileError(f"bars file {path} has no rows")
    return frame


def load_bars(path: Path) -> BarPanel:
    """Read, validate and pivot a bars file (see the module docstring)."""
    return panel_from_frame(read_bars(path), source=str(path))


def panel_from_frame(frame: pd.DataFrame, source: str = "bars") -> BarPanel:
    """Validate a long-format frame and pivot it. Raises `BarsFileError` for: missing
    columns, no rows, unparseable timestamps, rows not sorted by timestamp, duplicate
    (timestamp, symbol) rows, NaN or non-positive prices, high < low, negative volume."""
    missing = [c for c in BAR_COLUMNS if c not in frame.columns]
    if missing:
        raise BarsFileError(f"{source}: missing columns {', '.join(missing)}")
    if len(frame) == 0:
        raise BarsFileError(f"{source} has no rows")
    ts = _timestamps(frame["timestamp"], source)
    symbols = frame["symbol"]
    if symbols.isna().any():
        row = int(np.flatnonzero(symbols.isna().to_numpy())[0])
        raise BarsFileError(f"{source}: row {row + 1}: missing symbol")
    symbols = symbols.astype(str).str.strip()
    ns = ts.asi8
    back = np.flatnonzero(ns[1:] < ns[:-1])
    if back.size:
        row = int(back[0]) + 1
        raise BarsFileError(
            f"{source}: not sorted by timestamp: row {row + 1} ({ts[row].isoformat()}) comes "
            f"after {ts[row - 1].isoformat()}"
        )
    prices = {c: _numbers(frame[c]) for c in (*PRICE_COLUMNS, "volume")}
    for c in PRICE_COLUMNS:
        bad = ~(prices[c] > 0)  # NaN fails the comparison too
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise BarsFileError(
                f"{source}: row {row + 1} ({symbols.iat[row]}): {c} must be a positive number "
                f"(got {frame[c].iat[row]!r})"
            )
    inverted = prices["high"] < prices["low"]
    if inverted.any():
        row = int(np.flatnonzero(inverted)[0])
        raise BarsFileError(
            f"{source}: row {row + 1} ({symbols.iat[row]}): high {prices['high'][row]:g} "
            f"< low {prices['low'][row]:g}"
        )
    negative = prices["volume"] < 0
    if negative.any():
        row = int(np.flatnonzero(negative)[0])
        raise BarsFileError(f"{source}: row {row + 1}: negative volume")
    t_codes, t_uniques = pd.factorize(ns, sort=True)
    s_codes, s_uniques = pd.factorize(symbols.to_numpy(dtype=object), sort=True)
    key = t_codes.astype(np.int64) * len(s_uniques) + s_codes
    dup = pd.Index(key).duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise BarsFileError(
            f"{source}: duplicate bar for ({ts[row].isoformat()}, {symbols.iat[row]}) "
            f"at row {row + 1}"
        )
    shape = (len(t_uniques), len(s_uniques))
    arrays = {}
    for c, values in prices.items():
        out = np.full(shape, np.nan)
        out[t_codes, s_codes] = values
        arrays[c] = out
    index = pd.DatetimeIndex(np.asarray(t_uniques, dtype="datetime64[ns]")).tz_localize("UTC")
    return BarPanel(index, tuple(str(s) for s in s_uniques), **arrays)


def _timestamps(column: pd.Series, source: str) -> pd.DatetimeIndex:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        parsed = column.dt.tz_convert("UTC")
    else:
        try:
            parsed = pd.to_datetime(column, utc=True, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):
            parsed = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BarsFileError(
            f"{source}: {int(bad.sum())} unparseable timestamp(s), first at row {row + 1} "
            f"({column.iat[row]!r})"
        )
    return pd.DatetimeIndex(parsed).as_unit("ns")


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
