"""The embedded market: many symbols, no keys, no network, the same answer everywhere.

Each symbol follows a geometric Brownian motion with its own drift and volatility, anchored
at a starting price on 2025-01-01. The Brownian path is evaluated at any second without
simulating from a start: it is built by Brownian-bridge refinement over a dyadic grid of
2**33 seconds from 1900-01-01 (to 2172), and every normal draw comes from a counter-based
hash of (symbol key, grid node). A quote therefore depends only on (seed, symbol, second):
not on call order, other symbols, or the process. One evaluation costs 33 vector steps
whatever the timestamp, so 500 symbols take about a millisecond.

Per-symbol parameters come from BLAKE2b of (seed, symbol) (Python's `hash()` is salted per
process). Spreads are a few basis points, rounded outward to the tick; sizes are round lots;
`volume` follows a U-shaped intraday curve over the US session in UTC.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from statistics import NormalDist

import numpy as np
import pandas as pd

from paper_broker.market_data.frames import bar_frame, empty_bars, to_utc
from paper_broker.market_data.timeframe import Timeframe

_LEVELS = 33
_HORIZON = 1 << _LEVELS  # seconds covered by the dyadic grid
_ORIGIN_S = int(pd.Timestamp("1900-01-01", tz="UTC").value // 1_000_000_000)
_ANCHOR_S = int(pd.Timestamp("2025-01-01", tz="UTC").value // 1_000_000_000) - _ORIGIN_S
_SECONDS_PER_YEAR = 365.25 * 86_400
_DAY_S = 86_400
# Counter streams beyond the bridge levels (which use 1.._LEVELS) for per-second noise.
_STREAM_SPREAD, _STREAM_SIZES, _STREAM_LAST = 40, 41, 42
_SUBSTEPS = 4  # mid evaluations per bar, so high/low see inside the bar
_MAX_POINTS = 2_000_000  # bound memory of one bars() evaluation chunk

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_2_32 = float(1 << 32)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (array arithmetic wraps mod 2**64)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _hash(keys: np.ndarray, counters: np.ndarray) -> np.ndarray:
    return _mix(keys ^ _mix(counters.astype(np.uint64)))


def _uniform_pair(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniforms in (0, 1) from the two 32-bit halves of a hash."""
    hi = (h >> np.uint64(32)).astype(np.float64)
    lo = (h & np.uint64(0xFFFFFFFF)).astype(np.float64)
    return (hi + 0.5) / _2_32, (lo + 0.5) / _2_32


@cache
def _normal_table() -> np.ndarray:
    """Standard normal quantiles at the midpoints of 2**16 equal probability bins: a normal
    draw is one table lookup by 16 hash bits, far cheaper than Box-Muller's log and cos.
    Tails stop near 4.3 sigma, which a simulated market does not miss."""
    inv_cdf = NormalDist().inv_cdf
    return np.array([inv_cdf((i + 0.5) / 65_536) for i in range(65_536)])


def _normal(keys: np.ndarray, mixed_counters: np.ndarray) -> np.ndarray:
    """Standard normal draws keyed by (key, counter); `mixed_counters` is `_mix(counter)`,
    computed once on the (small) counter array and broadcast against the keys."""
    return _normal_table()[(_mix(keys ^ mixed_counters) >> np.uint64(48)).astype(np.intp)]


def _brownian(keys: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Standard Brownian motion (variance 1 per year) at integer `seconds` since 1900.

    `keys` broadcasts against `seconds` (e.g. (n, 1) against (1, m)). The root draw fixes W
    at the horizon; each level draws the midpoint of the interval holding `seconds` from the
    bridge between its ends."""
    shape = np.broadcast_shapes(keys.shape, seconds.shape)
    root = _mix(np.zeros(seconds.shape, dtype=np.uint64))
    left = np.zeros(shape)
    right = np.sqrt(_HORIZON / _SECONDS_PER_YEAR) * _normal(keys, root)
    for level in range(_LEVELS):
        half = 1 << (_LEVELS - level - 1)
        node = seconds >> (_LEVELS - level)
        counters = _mix((node * 64 + (level + 1)).astype(np.uint64))
        # bridge midpoint of an interval of length 2*half has variance half/2
        scale = np.sqrt(half / (2.0 * _SECONDS_PER_YEAR))
        mid = 0.5 * (left + right) + scale * _normal(keys, counters)
        go_right = ((seconds >> (_LEVELS - level - 1)) & 1).astype(bool)
        left = np.where(go_right, mid, left)
        right = np.where(go_right, right, mid)
    return left


@dataclass(frozen=True, slots=True)
class SymbolParams:
    """What makes one simulated symbol itself. Annualised drift and volatility (fractions),
    price in currency at the anchor date, spread in basis points, shares per day."""

    key: int
    start_price: float
    drift: float
    volatility: float
    spread_bps: float
    daily_volume: float
    w_anchor: float


def symbol_params(seed: int, symbols: Sequence[str]) -> list[SymbolParams]:
    """Stable per-symbol parameters: the same (seed, symbol) gives the same market in any
    process. Vectorised over `symbols` (the anchor value of the path is one bridge walk)."""
    if not symbols:
        return []
    words = np.array(
        [
            np.frombuffer(
                hashlib.blake2b(f"papertrade-sim:{seed}:{s}".encode(), digest_size=48).digest(),
                dtype="<u8",
            )
            for s in symbols
        ]
    )
    keys = words[:, 0]
    u = (words[:, 1:] >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    w_anchor = _brownian(keys[:, None], np.array([[_ANCHOR_S]], dtype=np.int64))[:, 0]
    start_price = np.exp(np.log(10.0) + u[:, 0] * np.log(50.0))  # 10 .. 500
    drift = -0.05 + 0.20 * u[:, 1]
    volatility = 0.15 + 0.30 * u[:, 2]
    spread_bps = 1.0 + 7.0 * u[:, 3]
    daily_volume = np.exp(np.log(2e5) + u[:, 4] * np.log(100.0))  # 2e5 .. 2e7 shares
    return [
        SymbolParams(
            key=int(keys[i]),
            start_price=float(start_price[i]),
            drift=float(drift[i]),
            volatility=float(volatility[i]),
            spread_bps=float(spread_bps[i]),
            daily_volume=float(daily_volume[i]),
            w_anchor=float(w_anchor[i]),
        )
        for i in range(len(symbols))
    ]


@cache
def _volume_curve() -> np.ndarray:
    """Cumulative share of a UTC day's volume at each minute 0..1440 (sums to 1).

    U-shaped over 13:30-21:00 UTC (the US session across both DST offsets), thin outside."""
    minute = np.arange(1440) + 0.5
    x = (minute - 810.0) / 450.0
    intensity = np.where((x >= 0) & (x < 1), 1.0 + 3.0 * (2.0 * x - 1.0) ** 2, 0.02)
    cum = np.concatenate([[0.0], np.cumsum(intensity)])
    return cum / cum[-1]


class SimulatedMarket:
    """Seeded, deterministic quotes and bars for any symbols at any timestamp.

    Prices are rounded to `tick_size` (bid down, ask up, so the spread is at least a tick);
    bar prices are the unrounded mid rounded to the tick, so a bar's close at t equals the
    quote mid at t to within a tick. Timestamps are floored to the second and must lie in
    1900-01-01 .. 2172 (`ValueError` otherwise).
    """

    def __init__(self, seed: int = 42, tick_size: float = 0.01, name: str = "simulated") -> None:
        self.seed = seed
        self.tick_size = tick_size
        self.name = name
        self._params: dict[str, SymbolParams] = {}

    def params(self, symbols: Sequence[str]) -> list[SymbolParams]:
        cached = self._params
        new = [s for s in dict.fromkeys(symbols) if s not in cached]
        cached.update(zip(new, symbol_params(self.seed, new), strict=True))
        return [cached[s] for s in symbols]

    def _arrays(self, symbols: Sequence[str]) -> dict[str, np.ndarray]:
        ps = self.params(symbols)
        return {
            "key": np.array([p.key for p in ps], dtype=np.uint64),
            "log_p0": np.log([p.start_price for p in ps]),
            "drift": np.array([p.drift for p in ps]),
            "vol": np.array([p.volatility for p in ps]),
            "spread": np.array([p.spread_bps for p in ps]),
            "daily_volume": np.array([p.daily_volume for p in ps]),
            "w_anchor": np.array([p.w_anchor for p in ps]),
        }

    @staticmethod
    def _seconds(ts: datetime) -> int:
        seconds = int(to_utc(ts).value // 1_000_000_000) - _ORIGIN_S
        if not 0 <= seconds < _HORIZON:
            raise ValueError(f"simulated market covers 1900-01-01 to 2172, not {ts}")
        return seconds

    @staticmethod
    def _mid(a: dict[str, np.ndarray], seconds: np.ndarray) -> np.ndarray:
        """Mid prices, shape (n_symbols, n_times), at `seconds` (n_times,) since 1900."""
        col = (slice(None), None)
        w = _brownian(a["key"][col], seconds[None, :])
        years = (seconds[None, :] - _ANCHOR_S) / _SECONDS_PER_YEAR
        vol = a["vol"][col]
        log_price = (
            a["log_p0"][col]
            + (a["drift"][col] - 0.5 * vol**2) * years
            + vol * (w - a["w_anchor"][col])
        )
        return np.exp(log_price)

    @staticmethod
    def _cum_volume(a: dict[str, np.ndarray], seconds: np.ndarray) -> np.ndarray:
        """Shares traded since 1900 (continuous across midnight), shape (n_symbols, n_times)."""
        day, sec_of_day = np.divmod(seconds, _DAY_S)
        share = np.interp(sec_of_day / 60.0, np.arange(1441), _volume_curve())
        return a["daily_volume"][:, None] * (day + share)[None, :]

    def mid(self, symbols: Sequence[str], ts: datetime) -> np.ndarray:
        """Unrounded mid prices of `symbols` at `ts` (float64, currency)."""
        seconds = np.array([self._seconds(ts)], dtype=np.int64)
        return self._mid(self._arrays(symbols), seconds)[:, 0]

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        """One quote per symbol at `as_of` (floored to the second); `quote_ts` is that second."""
        symbols = list(symbols)
        second = self._seconds(as_of)
        seconds = np.array([second], dtype=np.int64)
        a = self._arrays(symbols)
        mid = self._mid(a, seconds)[:, 0]
        counters = np.full(len(symbols), second, dtype=np.int64) * 64
        u_spread, u_last = _uniform_pair(_hash(a["key"], counters + _STREAM_SPREAD))
        sizes = _hash(a["key"], counters + _STREAM_SIZES)
        tick = self.tick_size
        half = mid * a["spread"] * (0.75 + 0.5 * u_spread) / 2e4
        # a small epsilon keeps exact tick multiples from moving a whole tick by float noise
        bid = np.maximum(np.floor((mid - half) / tick + 1e-9), 1.0) * tick
        ask = np.maximum(np.ceil((mid + half) / tick - 1e-9) * tick, bid + tick)
        last = bid + np.round(u_last * (ask - bid) / tick) * tick
        lots = np.uint64(20)
        day_volume = self._cum_volume(a, seconds)[:, 0] - a["daily_volume"] * (second // _DAY_S)
        n = len(symbols)
        # built column by column in contract order: `quote_frame`'s generic coercion costs
        # more than the whole simulation at 500 symbols
        stamp = np.full(n, (second + _ORIGIN_S) * 1_000_000_000, dtype="datetime64[ns]")
        columns = {
            "symbol": np.array(symbols, dtype=object),
            "bid": np.round(bid, 10),
            "ask": np.round(ask, 10),
            "bid_size": 100.0 * (1 + (sizes % lots)).astype(np.float64),
            "ask_size": 100.0 * (1 + ((sizes >> np.uint64(32)) % lots)).astype(np.float64),
            "last": np.round(last, 10),
            "volume": np.floor(day_volume),
            "quote_ts": pd.DatetimeIndex(stamp).tz_localize("UTC"),
            "provider": np.full(n, self.name, dtype=object),
        }
        return pd.DataFrame(columns, copy=False)

    def bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> pd.DataFrame:
        """Bars ending on multiples of `timeframe` (since the Unix epoch) within [start, end].

        open = mid at the bar's start, close = mid at its end (the bar's timestamp), high/low
        over those and `_SUBSTEPS - 1` interior points; all rounded to the tick. volume is the
        intraday curve integrated over the bar."""
        symbols = list(symbols)
        step = Timeframe.parse(timeframe).seconds
        lo, hi = self._seconds(start), self._seconds(end)
        first = -(-(lo + _ORIGIN_S) // step) * step - _ORIGIN_S  # ceil to the grid
        ends = np.arange(first, hi + 1, step, dtype=np.int64)
        ends = ends[ends - step >= 0]
        if not symbols or ends.size == 0:
            return empty_bars()
        a = self._arrays(symbols)
        per_chunk = max(1, _MAX_POINTS // (len(symbols) * _SUBSTEPS))
        frames = [
            self._bars_chunk(symbols, a, ends[i : i + per_chunk], step)
            for i in range(0, ends.size, per_chunk)
        ]
        return bar_frame(pd.concat(frames, ignore_index=True))

    def _bars_chunk(
        self, symbols: list[str], a: dict[str, np.ndarray], ends: np.ndarray, step: int
    ) -> pd.DataFrame:
        # shared grid: the close of one bar is the open of the next when bars are adjacent
        offsets = (np.arange(_SUBSTEPS + 1) * step) // _SUBSTEPS - step
        points = (ends[:, None] + offsets[None, :]).ravel()
        unique, inverse = np.unique(points, return_inverse=True)
        mids = self._mid(a, unique)[:, inverse].reshape(len(symbols), ends.size, _SUBSTEPS + 1)
        prices = np.round(np.round(mids / self.tick_size) * self.tick_size, 10)
        volume = np.floor(self._cum_volume(a, ends)) - np.floor(self._cum_volume(a, ends - step))
        n, m = len(symbols), ends.size
        return pd.DataFrame(
            {
                "timestamp": np.tile(pd.to_datetime(ends + _ORIGIN_S, unit="s", utc=True), n),
                "symbol": np.repeat(np.array(symbols, dtype=object), m),
                "open": prices[:, :, 0].ravel(),
                "high": prices.max(axis=2).ravel(),
                "low": prices.min(axis=2).ravel(),
                "close": prices[:, :, -1].ravel(),
                "volume": volume.ravel(),
            }
        )

    def close(self) -> None:
        """Nothing to release; present for the provider protocol."""
