"""The one interface the interval flow and the backtest talk to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class MarketDataProvider(Protocol):
    """A source of quotes and bars; see `frames` for the exact columns.

    `quotes` returns at most one row per requested symbol: the latest quote the provider has
    at `as_of` (live providers: their latest, whose `quote_ts` validation compares with
    `as_of`). Symbols the provider does not know are simply absent; validation adds them back
    flagged `missing`. `bars` returns bars whose (end) timestamp lies in [start, end].
    Failures to answer raise `MarketDataError`; bad values are returned and flagged later.
    """

    name: str

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame: ...

    def bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> pd.DataFrame: ...

    def close(self) -> None: ...
