"""Causal rolling indicators over a [T x N] matrix of closes (rows are bars, columns symbols).

Causal: the value at bar t reads bars t-window+1..t only, so appending later bars never
changes an earlier value (the cumulative sums run forward along the bars). A window that
holds a missing price (NaN) gives NaN, and so does any bar before the window is full.

The sums are taken after subtracting each column's first valid price (a causal reference),
which keeps the running sums small: a flat stretch of prices gives exactly zero deviation
and equal averages compare equal, instead of drifting apart by rounding.
"""

from __future__ import annotations

import numpy as np


class RunningSums:
    """Cumulative sums of deviations (and their squares) from which any window's mean and
    std follow in O(T x N); compute once, then ask for several windows."""

    def __init__(self, values: np.ndarray, squares: bool = False) -> None:
        values = np.asarray(values, dtype=np.float64)
        t, n = values.shape
        self.n_bars = t
        valid = np.isfinite(values)
        all_valid = bool(valid.all())
        first = np.zeros(n, dtype=np.intp) if all_valid else valid.argmax(axis=0)
        ref = values[first, np.arange(n)] if t else np.zeros(n)
        self.ref = np.where(np.isfinite(ref), ref, 0.0)
        dev = values - self.ref
        if not all_valid:
            dev[~valid] = 0.0
        self.c1 = np.zeros((t + 1, n))
        np.cumsum(dev, axis=0, out=self.c1[1:])
        self.c2: np.ndarray | None = None
        if squares:
            self.c2 = np.zeros((t + 1, n))
            np.cumsum(dev * dev, axis=0, out=self.c2[1:])
        # a count of valid bars is only needed when something is missing
        self.cnt: np.ndarray | None = None
        if not all_valid:
            self.cnt = np.zeros((t + 1, n), dtype=np.int32)
            np.cumsum(valid, axis=0, out=self.cnt[1:])

    def _window(self, c: np.ndarray, window: int) -> np.ndarray:
        out = np.zeros((self.n_bars, c.shape[1]))
        out[window - 1 :] = c[window:] - c[: self.n_bars + 1 - window]
        return out

    def _blank_undefined(self, window: int, *arrays: np.ndarray) -> None:
        """Set NaN where the window is not full of valid bars, in place."""
        for arr in arrays:
            arr[: window - 1] = np.nan
        if self.cnt is not None:
            short = (self.cnt[window:] - self.cnt[: self.n_bars + 1 - window]) < window
            for arr in arrays:
                arr[window - 1 :][short] = np.nan

    def mean(self, window: int) -> np.ndarray:
        """Simple moving average over `window` bars; NaN until `window` valid bars."""
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if self.n_bars < window:
            return np.full((self.n_bars, self.c1.shape[1]), np.nan)
        out = self._window(self.c1, window)
        out /= window
        out += self.ref
        self._blank_undefined(window, out)
        return out

    def mean_std(self, window: int) -> tuple[np.ndarray, np.ndarray]:
        """Rolling mean and sample std (ddof=1). The std is exactly 0 where the spread is
        below rounding noise (a flat window), so a z-score of a flat window is undefined."""
        if self.c2 is None:
            raise ValueError("RunningSums built without squares")
        if window < 2:
            raise ValueError(f"window must be >= 2 for a sample std, got {window}")
        shape = (self.n_bars, self.c1.shape[1])
        if self.n_bars < window:
            return np.full(shape, np.nan), np.full(shape, np.nan)
        mean = self._window(self.c1, window)
        s2 = self._window(self.c2, window)
        # squared deviations from the window mean: s2 - s1^2 / window, computed in place
        ss = mean * mean
        ss /= -window
        ss += s2
        # the running sums carry rounding noise of about eps * s2; below it the window is flat
        np.abs(s2, out=s2)
        s2 *= 1e-10
        ss[ss <= s2] = 0.0
        ss /= window - 1
        std = np.sqrt(ss, out=ss)
        mean /= window
        mean += self.ref
        self._blank_undefined(window, mean, std)
        return mean, std


def rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average over `window` bars; NaN until `window` valid bars are seen."""
    return RunningSums(values).mean(window)


def rolling_mean_std(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Rolling mean and sample standard deviation (ddof=1) over `window` bars."""
    return RunningSums(values, squares=True).mean_std(window)


def trailing_return(values: np.ndarray, lookback: int) -> np.ndarray:
    """Simple return over `lookback` bars: x[t] / x[t - lookback] - 1; NaN when undefined."""
    if lookback < 1:
        raise ValueError(f"lookback must be >= 1, got {lookback}")
    values = np.asarray(values, dtype=np.float64)
    out = np.full(values.shape, np.nan)
    if values.shape[0] > lookback:
        past = values[:-lookback]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = values[lookback:] / past
        out[lookback:] = np.where(past > 0, ratio - 1.0, np.nan)
    return out


# Averages closer than this fraction of their size are equal: far above the rounding the
# running sums carry (about 1e-16 x bars x price / window: 1e-10 after a million bars) and
# far below what prices on a tick grid can separate.
EQUAL_RTOL = 1e-9


def compare(a: np.ndarray, b: np.ndarray, rtol: float = EQUAL_RTOL) -> np.ndarray:
    """Sign of a - b: -1, 0 or +1, and NaN where either is undefined.

    0 where the two agree within `rtol` of the larger magnitude. The running sums carry the
    rounding of every earlier bar, so two averages of the same flat prices can differ in
    their last bits, and differently depending on where the history starts (a backtest's
    first bar, a paper-trading window's): a sign taken on the raw difference flips on that
    noise, while this one is the same for every window."""
    diff = a - b
    sign = np.sign(diff)
    with np.errstate(invalid="ignore"):
        sign[np.abs(diff) <= rtol * np.maximum(np.abs(a), np.abs(b))] = 0.0
    return sign
