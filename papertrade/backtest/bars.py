"""Bars files: CSV or Parquet in long format `timestamp,symbol,open,high,low,close,volume`,
validated and pivoted into a [T x N] panel (rows bars, columns symbols).

Timestamps are parsed as UTC (naive values are taken to be UTC already). Rows may come in
any order (a file grouped by symbol is put in time order); a symbol without a bar at a
timestamp is NaN in the panel and is neither traded nor re-marked there. Every problem
raises `BarsFileError` (a `UserError`: exit 2) with one line naming it, before anything is
written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from papertrade.errors import UserError

if TYPE_CHECKING:
    import pyarrow as pa

BAR_COLUMNS = ("timestamp", "symbol", "open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
_VOLUME_RULE = "volume must be a number >= 0 or empty"
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
    path, kind = _checked_path(path)
    if kind == "parquet":
        return _read_parquet(path).to_pandas()
    try:
        frame = pd.read_csv(path, dtype={"symbol": str})
    except pd.errors.EmptyDataError:
        raise BarsFileError(f"bars file {path} is empty") from None
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise BarsFileError(f"bars file {path} cannot be read: {_first_line(exc)}") from None
    if frame.empty:
        raise BarsFileError(f"bars file {path} has no rows")
    return frame


def load_bars(path: Path) -> BarPanel:
    """Read, validate and pivot a bars file (see the module docstring).

    Parquet columns of the usual types (timestamp, string, numbers) go from Arrow straight
    to numpy; anything else, and CSV, goes through pandas with the same checks."""
    path, kind = _checked_path(path)
    if kind == "parquet":
        table = _read_parquet(path)
        columns = _arrow_columns(table, str(path))
        if columns is not None:
            return _pivot(columns, str(path))
        return panel_from_frame(table.to_pandas(), source=str(path))
    return panel_from_frame(read_bars(path), source=str(path))


def panel_from_frame(frame: pd.DataFrame, source: str = "bars") -> BarPanel:
    """Validate a long-format frame and pivot it. Raises `BarsFileError` for: missing
    columns, no rows, unparseable timestamps, missing or blank symbols, duplicate
    (timestamp, symbol) rows, NaN, infinite or non-positive prices, high < low, a volume
    that is negative, infinite or not a number (an empty one is unknown)."""
    _check_columns(frame.columns, len(frame), source)
    ts = _timestamps(frame["timestamp"], source)
    symbols = frame["symbol"]
    if symbols.isna().any():
        _missing_symbol(symbols.isna().to_numpy(), source)
    codes, names = pd.factorize(symbols.to_numpy(dtype=object))
    prices = {c: _numbers(frame[c]) for c in (*PRICE_COLUMNS, "volume")}
    # an empty volume is unknown (NaN, no volume cap), but text is a mistake, not unknown
    text = np.isnan(prices["volume"]) & frame["volume"].notna().to_numpy()
    if text.any():
        row = int(np.flatnonzero(text)[0])
        raise BarsFileError(
            f"{source}: row {row + 1} ({str(symbols.iat[row]).strip()}): {_VOLUME_RULE} "
            f"(got {_plain(frame['volume'].iat[row])!r})"
        )
    columns = _Columns(
        ts.asi8, codes, [str(s) for s in names], prices, lambda c, row: frame[c].iat[row]
    )
    return _pivot(columns, source)


@dataclass(frozen=True, slots=True)
class _Columns:
    """Long-format bars as arrays: UTC nanoseconds, symbol codes into `names` (as read:
    unstripped, unsorted), float64 prices and volume; `raw(column, row)` is a cell as the
    file had it, for messages."""

    ns: np.ndarray
    codes: np.ndarray
    names: list[str]
    prices: dict[str, np.ndarray]
    raw: Callable[[str, int], object]


def _pivot(columns: _Columns, source: str) -> BarPanel:
    """The checks every bars source shares, then the [T x N] panel, all on arrays: once the
    rows are in time order, the timestamps' codes are a running count of changes. Messages
    name rows as the file numbers them."""
    ns, prices, s_codes = columns.ns, columns.prices, columns.codes
    file_row = np.arange(ns.shape[0])
    if (ns[1:] < ns[:-1]).any():
        file_row = np.argsort(ns, kind="stable")  # rows of one time keep the file's order
        ns, s_codes = ns[file_row], s_codes[file_row]
        prices = {c: values[file_row] for c, values in prices.items()}
    # symbols are compared stripped; stripping can merge two spellings into one symbol
    stripped = np.array([s.strip() for s in columns.names], dtype=object)
    symbols, inverse = np.unique(stripped, return_inverse=True)
    s_codes = inverse.astype(np.int64)[s_codes]

    def at(row: int) -> str:
        return pd.Timestamp(int(ns[row]), tz="UTC").isoformat()

    def first(bad: np.ndarray) -> tuple[int, str]:
        """The earliest bad row in the file: its number there and its symbol."""
        row = int(np.flatnonzero(bad)[np.argmin(file_row[bad])])
        return row, f"row {file_row[row] + 1} ({symbols[s_codes[row]]})"

    if symbols.size and symbols[0] == "":  # a symbol of spaces only: sorted first
        row = int(np.flatnonzero(s_codes == 0)[np.argmin(file_row[s_codes == 0])])
        raise BarsFileError(f"{source}: row {file_row[row] + 1}: missing symbol")
    for c in PRICE_COLUMNS:
        # NaN fails the comparison too; an infinite price is never traded nor marked, so
        # its symbol would sit out the run without a word
        bad = ~((prices[c] > 0) & np.isfinite(prices[c]))
        if bad.any():
            row, where = first(bad)
            raise BarsFileError(
                f"{source}: {where}: {c} must be a positive number "
                f"(got {_plain(columns.raw(c, int(file_row[row])))!r})"
            )
    inverted = prices["high"] < prices["low"]
    if inverted.any():
        row, where = first(inverted)
        raise BarsFileError(
            f"{source}: {where}: high {prices['high'][row]:g} < low {prices['low'][row]:g}"
        )
    bad_volume = (prices["volume"] < 0) | np.isinf(prices["volume"])  # NaN: unknown
    if bad_volume.any():
        row, where = first(bad_volume)
        raw = _plain(columns.raw("volume", int(file_row[row])))
        raise BarsFileError(f"{source}: {where}: {_VOLUME_RULE} (got {raw!r})")
    starts = np.empty(ns.shape[0], dtype=bool)
    starts[0] = True
    np.not_equal(ns[1:], ns[:-1], out=starts[1:])
    t_codes = np.cumsum(starts) - 1
    n_bars, n_sym = int(t_codes[-1]) + 1, len(symbols)
    key = t_codes * n_sym + s_codes
    if np.bincount(key, minlength=n_bars * n_sym).max() > 1:
        row = int(np.flatnonzero(pd.Index(key).duplicated())[0])
        raise BarsFileError(
            f"{source}: duplicate bar for ({at(row)}, {symbols[s_codes[row]]}) at row "
            f"{file_row[row] + 1}"
        )
    arrays = {}
    for c, values in prices.items():
        out = np.full((n_bars, n_sym), np.nan)
        out[t_codes, s_codes] = values
        arrays[c] = out
    index = pd.DatetimeIndex(ns[starts].view("datetime64[ns]")).tz_localize("UTC")
    return BarPanel(index, tuple(str(s) for s in symbols), **arrays)


def _checked_path(path: Path) -> tuple[Path, str]:
    path = Path(path)
    kind = _SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BarsFileError(
            f"bars file {path}: unknown file type {path.suffix or '(none)'!r} "
            "(use .csv or .parquet)"
        )
    if not path.is_file():
        raise BarsFileError(f"bars file not found: {path}")
    return path, kind


def _read_parquet(path: Path) -> pa.Table:
    """The whole file as an Arrow table (one `ParquetFile.read`: no dataset discovery)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path).read()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise BarsFileError(f"bars file {path} cannot be read: {_first_line(exc)}") from None
    if table.num_rows == 0:
        raise BarsFileError(f"bars file {path} has no rows")
    return table


def _arrow_columns(table: pa.Table, source: str) -> _Columns | None:
    """The bars columns straight from Arrow, or None when a column's type needs pandas'
    parsing (text timestamps or prices, non-string symbols) or holds nulls where the
    pandas path words the error."""
    import pyarrow as pa
    import pyarrow.compute as pc

    _check_columns(table.column_names, table.num_rows, source)
    ts = table.column("timestamp")
    sym = table.column("symbol")
    if not pa.types.is_timestamp(ts.type) or ts.null_count or sym.null_count:
        return None
    if not (pa.types.is_string(sym.type) or pa.types.is_large_string(sym.type)):
        return None
    prices = {}
    for c in (*PRICE_COLUMNS, "volume"):
        col = table.column(c)
        if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
            return None
        # nulls become NaN, which the price checks refuse and volume takes as unknown
        prices[c] = col.cast(pa.float64()).to_numpy()
    # naive timestamps are UTC already; aware ones are stored as UTC instants
    ns = ts.cast(pa.timestamp("ns", tz=ts.type.tz)).to_numpy().view(np.int64)
    encoded = pc.dictionary_encode(sym).combine_chunks()
    return _Columns(
        ns,
        encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        encoded.dictionary.to_pylist(),
        prices,
        lambda c, row: _cell(table, c, row),
    )


def _cell(table: pa.Table, column: str, row: int) -> object:
    """A cell as pandas would show it: a null number reads as NaN."""
    value = table.column(column)[row].as_py()
    return float("nan") if value is None else value


def _check_columns(names: Iterable[str], n_rows: int, source: str) -> None:
    names = list(names)
    missing = [c for c in BAR_COLUMNS if c not in set(names)]
    if missing:
        # the columns it has show a wrong delimiter (one column 'timestamp;symbol;...') or
        # a spelling ('Close') at once
        has = ", ".join(repr(str(n)) for n in names[:10]) + (", ..." if len(names) > 10 else "")
        raise BarsFileError(f"{source}: missing columns {', '.join(missing)} (it has {has})")
    if n_rows == 0:
        raise BarsFileError(f"{source} has no rows")


def _missing_symbol(missing: np.ndarray, source: str) -> None:
    row = int(np.flatnonzero(missing)[0])
    raise BarsFileError(f"{source}: row {row + 1}: missing symbol")


def _first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _timestamps(column: pd.Series, source: str) -> pd.DatetimeIndex:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        parsed = column.dt.tz_convert("UTC")
    else:
        # numbers are no time (epoch seconds? milliseconds?): read as text they are refused
        # below, where pandas would warn and one day read them as epoch nanoseconds
        text = column.astype(str) if pd.api.types.is_numeric_dtype(column.dtype) else column
        try:
            parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
        except (ValueError, TypeError):
            parsed = pd.Series(pd.NaT, index=column.index, dtype="datetime64[ns, UTC]")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BarsFileError(
            f"{source}: {int(bad.sum())} unparseable timestamp(s), first at row {row + 1} "
            f"({_plain(column.iat[row])!r})"
        )
    return pd.DatetimeIndex(parsed).as_unit("ns")


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _plain(value: object) -> object:
    """A NumPy scalar as the Python value it holds, so a message shows -5.0, not
    np.float64(-5.0)."""
    return value.item() if isinstance(value, np.generic) else value
