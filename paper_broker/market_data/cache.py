"""A short-lived price cache in front of any provider.

Inside one interval several steps look up the same prices; the cache keeps them from asking
the provider twice. Entries are keyed by the exact request (symbols in order, as_of) and live
`ttl_seconds` on an injected monotonic clock, so tests move time by hand.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from datetime import datetime

import pandas as pd

from paper_broker.market_data.frames import to_utc
from paper_broker.market_data.protocol import MarketDataProvider


class CachedProvider:
    """Wraps `inner`; returns copies, so callers cannot mutate what is cached.

    `ttl_seconds` <= 0 disables caching. At most `max_entries` requests are kept (oldest
    dropped first) so a long backtest does not hold every answer it ever got.
    """

    def __init__(
        self,
        inner: MarketDataProvider,
        ttl_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 256,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, pd.DataFrame]] = {}
        self.hits = 0
        self.misses = 0

    def _get(self, key: Hashable, fetch: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl_seconds:
            self.hits += 1
            return entry[1].copy()
        self.misses += 1
        frame = fetch()
        if self.ttl_seconds > 0:
            self._entries.pop(key, None)
            self._entries[key] = (now, frame.copy())
            while len(self._entries) > self._max_entries:
                del self._entries[next(iter(self._entries))]
        return frame

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        key = ("quotes", tuple(symbols), to_utc(as_of))
        return self._get(key, lambda: self.inner.quotes(symbols, as_of))

    def bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> pd.DataFrame:
        key = ("bars", tuple(symbols), to_utc(start), to_utc(end), timeframe)
        return self._get(key, lambda: self.inner.bars(symbols, start, end, timeframe))

    def clear(self) -> None:
        self._entries.clear()

    def close(self) -> None:
        self._entries.clear()
        self.inner.close()
