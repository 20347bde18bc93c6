"""Alpaca market data API v2 adapter (imported only when `provider = "alpaca"`).

Quotes: GET /v2/stocks/quotes/latest?symbols=A,B&feed=iex -> {"quotes": {"A": {"bp": bid,
"bs", "ap": ask, "as", "t": RFC 3339}}}, plus GET /v2/stocks/trades/latest -> {"trades":
{"A": {"p", "s", "t"}}} for `last`. These endpoints carry no session volume: `volume` is NaN.
Bars: GET /v2/stocks/bars?symbols=..&timeframe=1Min&start&end&feed[&page_token] ->
{"bars": {"A": [{"t", "o", "h", "l", "c", "v"}]}, "next_page_token"}; Alpaca labels bars by
their start, they are shifted to end-labels (see `frames`).
Keys come from `APCA_API_KEY_ID` and `APCA_API_SECRET_KEY`, sent as headers.
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

KEY_ID_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"
_BATCH = 100  # symbols per request
# A plan without SIP data is refused with 403 like a wrong key: name the setting as well.
_SIP_HINT = 'set [market_data] alpaca_feed = "iex" if your plan lacks SIP data'


def _rfc3339(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


class AlpacaProvider:
    """Latest quotes/trades and bars from Alpaca's `iex` or `sip` feed. Raises
    `ProviderAuthError` at construction when either key variable is unset."""

    name = "alpaca"

    def __init__(
        self,
        base_url: str = "https://data.alpaca.markets",
        *,
        feed: str = "iex",
        timeout_seconds: float = 10.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        env: Mapping[str, str] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if feed not in ("iex", "sip"):
            raise ValueError(f"alpaca feed must be 'iex' or 'sip', not {feed!r}")
        key_id, secret = require_env(
            self.name, os.environ if env is None else env, KEY_ID_ENV, SECRET_ENV
        )
        self.feed = feed
        self._http = HttpSource(
            self.name,
            base_url,
            {"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret},
            auth_env_vars=(KEY_ID_ENV, SECRET_ENV),
            auth_hint=_SIP_HINT if feed == "sip" else "",
            timeout_seconds=timeout_seconds,
            max_retries=max_retries,
            transport=transport,
            sleep=sleep,
            rng=rng,
        )

    def _latest(self, path: str, field: str, symbols: list[str]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for i in range(0, len(symbols), _BATCH):
            body = self._http.get_json(
                path, {"symbols": ",".join(symbols[i : i + _BATCH]), "feed": self.feed}
            )
            found = body.get(field) if isinstance(body, dict) else None
            if not isinstance(found, dict):
                raise MalformedResponse(self.name, f"{path} body has no `{field}` object")
            merged.update(found)
        return merged

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        """Latest quote per symbol, `last` from the latest trade (NaN if Alpaca has none)."""
        to_utc(as_of)
        wanted = list(dict.fromkeys(symbols))
        quotes = self._latest("/v2/stocks/quotes/latest", "quotes", wanted)
        if not quotes:
            return empty_quotes()
        trades = self._latest("/v2/stocks/trades/latest", "trades", wanted)
        try:
            rows = [
                {
                    "symbol": sym,
                    "bid": q["bp"],
                    "ask": q["ap"],
                    "bid_size": q.get("bs", np.nan),
                    "ask_size": q.get("as", np.nan),
                    "last": (trades.get(sym) or {}).get("p", np.nan),
                    "quote_ts": q["t"],
                }
                for sym, q in quotes.items()
                if sym in wanted
            ]
        except (AttributeError, KeyError, TypeError) as exc:
            raise MalformedResponse(self.name, f"latest quote lacks {exc}") from None
        frame = pd.DataFrame(rows).assign(provider=self.name)
        # One symbol's unreadable or out-of-range `t` (Alpaca's zero time, 0001-01-01, is
        # beyond pandas' range) is a bad value: NaT, which validation flags for that symbol
        # alone, instead of failing the whole cross-section.
        frame["quote_ts"] = pd.to_datetime(
            frame["quote_ts"], utc=True, format="ISO8601", errors="coerce"
        )
        return quote_frame(frame)

    def bars(
        self, symbols: Sequence[str], start: datetime, end: datetime, timeframe: str = "1Min"
    ) -> pd.DataFrame:
        """Bars over [start, end] (end-labelled), following `next_page_token`."""
        tf = Timeframe.parse(timeframe)
        lo, hi = to_utc(start), to_utc(end)
        wanted = list(dict.fromkeys(symbols))
        rows: list[dict[str, Any]] = []
        for i in range(0, len(wanted), _BATCH):
            params = {
                "symbols": ",".join(wanted[i : i + _BATCH]),
                "timeframe": tf.alpaca,
                "start": _rfc3339(lo - tf.delta),
                "end": _rfc3339(hi),
                "feed": self.feed,
                "limit": "10000",
            }
            while True:
                body = self._http.get_json("/v2/stocks/bars", params)
                bars = body.get("bars") if isinstance(body, dict) else None
                if bars is None and isinstance(body, dict) and "next_page_token" in body:
                    bars = {}  # Alpaca sends null bars when the range is empty
                if not isinstance(bars, dict):
                    raise MalformedResponse(self.name, "bars body has no `bars` object")
                for sym, items in bars.items():
                    for bar in items or []:
                        rows.append({"symbol": sym, **bar})
                token = body.get("next_page_token")
                if not token:
                    break
                params = {**params, "page_token": token}
        if not rows:
            return empty_bars()
        try:
            frame = pd.DataFrame(rows).loc[:, ["t", "symbol", "o", "h", "l", "c", "v"]]
            frame.columns = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
            frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
        except (KeyError, ValueError, TypeError) as exc:
            raise MalformedResponse(self.name, f"bars lack fields: {exc}") from None
        frame["timestamp"] = frame["timestamp"] + tf.delta
        bars_out = bar_frame(frame)
        return bars_out.loc[bars_out["timestamp"].between(lo, hi)].reset_index(drop=True)

    def close(self) -> None:
        self._http.close()
