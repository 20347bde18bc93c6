"""A fake Alpaca market data API v2 answering in its documented JSON shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd

from tests.fakes.http_server import FakeHttpServer, FakeResponse, RecordedRequest


def _rfc3339(ts: datetime) -> str:
    return pd.Timestamp(ts).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


class FakeAlpaca(FakeHttpServer):
    """Latest quotes/trades from `set_quote`, bars from `add_bar` (labelled by start),
    `page_size` bars per page linked by `next_page_token`. Wrong keys get 403."""

    def __init__(
        self, key_id: str = "test-key-id", secret: str = "test-secret", page_size: int = 2
    ) -> None:
        super().__init__(self._route)
        self.key_id = key_id
        self.secret = secret
        self.page_size = page_size
        self.latest_quotes: dict[str, dict[str, Any]] = {}
        self.latest_trades: dict[str, dict[str, Any]] = {}
        self.bar_rows: list[tuple[pd.Timestamp, str, dict[str, Any]]] = []

    def set_quote(self, symbol: str, bid: float, ask: float, ts: datetime,
                  last: float | None = None) -> None:  # fmt: skip
        stamp = _rfc3339(ts)
        self.latest_quotes[symbol] = {
            "ap": ask, "as": 2, "ax": "V", "bp": bid, "bs": 1, "bx": "V",
            "c": ["R"], "t": stamp, "z": "C",
        }  # fmt: skip
        if last is not None:
            self.latest_trades[symbol] = {
                "c": ["@"], "i": 1, "p": last, "s": 100, "t": stamp, "x": "V", "z": "C",
            }  # fmt: skip

    def add_bar(self, symbol: str, start: datetime, o: float, h: float, low: float, c: float,
                v: float) -> None:  # fmt: skip
        stamp = pd.Timestamp(start).tz_convert("UTC")
        bar = {"t": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "o": o, "h": h, "l": low, "c": c,
               "v": v, "n": 1, "vw": c}  # fmt: skip
        self.bar_rows.append((stamp, symbol, bar))

    def _route(self, request: RecordedRequest) -> FakeResponse:
        if (
            request.headers.get("apca-api-key-id") != self.key_id
            or request.headers.get("apca-api-secret-key") != self.secret
        ):
            return FakeResponse(403, json={"message": "forbidden"})
        symbols = request.query.get("symbols", "").split(",")
        if request.path == "/v2/stocks/quotes/latest":
            found = {s: self.latest_quotes[s] for s in symbols if s in self.latest_quotes}
            return FakeResponse(json={"quotes": found})
        if request.path == "/v2/stocks/trades/latest":
            found = {s: self.latest_trades[s] for s in symbols if s in self.latest_trades}
            return FakeResponse(json={"trades": found})
        if request.path == "/v2/stocks/bars":
            return self._bars(request, symbols)
        return FakeResponse(404, json={"message": "Not Found"})

    def _bars(self, request: RecordedRequest, symbols: list[str]) -> FakeResponse:
        lo = pd.Timestamp(request.query["start"])
        hi = pd.Timestamp(request.query["end"])
        rows = sorted(
            (r for r in self.bar_rows if r[1] in symbols and lo <= r[0] <= hi),
            key=lambda r: (r[1], r[0]),  # Alpaca pages symbol by symbol
        )
        offset = int(request.query.get("page_token") or 0)
        page = rows[offset : offset + self.page_size]
        bars: dict[str, list[dict[str, Any]]] = {}
        for _, symbol, bar in page:
            bars.setdefault(symbol, []).append(bar)
        more = offset + self.page_size < len(rows)
        token = str(offset + self.page_size) if more else None
        return FakeResponse(json={"bars": bars, "next_page_token": token})
