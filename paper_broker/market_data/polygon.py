"""Polygon.io REST adapter (imported only when `[market_data] provider = "polygon"`).

Quotes: GET /v2/snapshot/locale/us/markets/stocks/tickers?tickers=A,B, reading per ticker
`lastQuote` {p: bid, P: ask, s: bid size, S: ask size, t: ns epoch}, `lastTrade` {p, t} and
`day` {v}. Bars: GET /v2/aggs/ticker/{T}/range/{mult}/{timespan}/{from}/{to} with `from`/`to`
in epoch ms, following `next_url` until absent; `results` [{t: ms bar start, o, h, l, c, v}].
Polygon labels bars by their start; they are shifted to end-labels (see `frames`).
The key comes from `POLYGON_API_KEY` and is sent as `Authorization: Bearer`.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx
import numpy as np
import pandas as pd

from paper_broker.market_data.errors import MalformedResponse
from paper_broker.market_data.frames import bar_frame, empty_bars, empty_quotes, quote_frame, to_utc
from paper_broker.market_data.http_client import HttpSource, require_env
from paper_broker.market_data.timeframe import Timeframe

KEY_ENV = "POLYGON_API_KEY"
SNAPSHOT_PATH = "/v2/snapshot/locale/us/markets/stocks/tickers"
_BATCH = 100  # tickers per snapshot request, keeping URLs short


class PolygonProvider:
    """Latest quotes and aggregate bars from Polygon. Raises `ProviderAuthError` at
    construction when `POLYGON_API_KEY` is unset."""

    name = "polygon"

    def __init__(
        self,
        base_url: str = "https://api.polygon.io",
        *,
        timeout_seconds: float = 10.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        (key,) = require_env(self.name, os.environ if env is None else env, KEY_ENV)
        self._http = HttpSource(
            self.name,
            base_url,
            {"Authorization": f"Bearer {key}"},
            auth_env_vars=(KEY_ENV,),
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            transport=transport,
            sleep=sleep,
            rng=rng,
        )

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        """Latest snapshot per ticker; tickers Polygon omits are absent from the frame."""
        to_utc(as_of)
        wanted = list(dict.fromkeys(symbols))
        tickers: list[Any] = []
        for i in range(0, len(wanted), _BATCH):
            body = self._http.get_json(SNAPSHOT_PATH, {"tickers": ",".join(wanted[i : i + _BATCH])})
            found = body.get("tickers") if isinstance(body, dict) else None
            if found is None and isinstance(body, dict) and "status" in body:
                found = []  # Polygon omits `tickers` when none of them matched
            if not isinstance(found, list):
                raise MalformedResponse(self.name, "snapshot body has no `tickers` list")
            tickers.extend(found)
        if not tickers:
            return empty_quotes()
        try:
            rows = [_snapshot_row(t) for t in tickers]
        except (AttributeError, KeyError, TypeError) as exc:
            raise MalformedResponse(self.name, f"snapshot ticker lacks {exc}") from None
        frame = pd.DataFrame(rows)
        frame["quote_ts"] = pd.to_datetime(frame["quote_ts"], unit="ns", utc=True)
        frame["provider"] = self.name
        frame = frame.loc[frame["symbol"].isin(wanted)]
        return quote_frame(frame)

    def bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> pd.DataFrame:
        """Aggregates for each symbol over [start, end] (end-labelled), following pagination."""
        tf = Timeframe.parse(timeframe)
        lo, hi = to_utc(start), to_utc(end)
        # ask from one bar earlier so the bar ending at `start` is included after the shift
        first_ms = (lo - tf.delta).value // 1_000_000
        last_ms = hi.value // 1_000_000
        frames = []
        for symbol in dict.fromkeys(symbols):
            url: str | None = (
                f"/v2/aggs/ticker/{symbol}/range/{tf.multiplier}/{tf.unit}/{first_ms}/{last_ms}"
            )
            params: dict[str, str] | None = {"adjusted": "true", "sort": "asc", "limit": "50000"}
            while url:
                body = self._http.get_json(url, params)
                if not isinstance(body, dict):
                    raise MalformedResponse(self.name, "aggregates body is not an object")
                results = body.get("results") or []
                if results:
                    frames.append(_aggs_frame(self.name, symbol, results))
                url = body.get("next_url")
                params = None  # next_url carries the cursor and the original query
        if not frames:
            return empty_bars()
        bars = pd.concat(frames, ignore_index=True)
        bars["timestamp"] = pd.to_datetime(bars["timestamp"], unit="ms", utc=True) + tf.delta
        bars = bar_frame(bars)
        return bars.loc[bars["timestamp"].between(lo, hi)].reset_index(drop=True)

    def close(self) -> None:
        self._http.close()


def _snapshot_row(ticker: Mapping[str, Any]) -> dict[str, Any]:
    quote = ticker.get("lastQuote") or {}
    trade = ticker.get("lastTrade") or {}
    day = ticker.get("day") or {}
    return {
        "symbol": ticker["ticker"],
        "bid": quote.get("p", np.nan),
        "ask": quote.get("P", np.nan),
        "bid_size": quote.get("s", np.nan),
        "ask_size": quote.get("S", np.nan),
        "last": trade.get("p", np.nan),
        "volume": day.get("v", np.nan),
        "quote_ts": quote.get("t", ticker.get("updated")),
    }


def _aggs_frame(provider: str, symbol: str, results: list[Any]) -> pd.DataFrame:
    try:
        frame = pd.DataFrame(results).loc[:, ["t", "o", "h", "l", "c", "v"]]
    except (KeyError, ValueError) as exc:
        raise MalformedResponse(provider, f"aggregate results lack fields: {exc}") from None
    frame.columns = ["timestamp", "open", "high", "low", "close", "volume"]
    return frame.assign(symbol=symbol)
