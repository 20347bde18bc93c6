"""A fake Polygon REST API answering in its documented JSON shapes."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from tests.fakes.http_server import FakeHttpServer, FakeResponse, RecordedRequest

_AGGS = re.compile(r"^/v2/aggs/ticker/([^/]+)/range/(\d+)/(\w+)/(\d+)/(\d+)$")
SNAPSHOT = "/v2/snapshot/locale/us/markets/stocks/tickers"


def _ns(ts: datetime) -> int:
    return int(ts.timestamp() * 1_000_000) * 1_000


class FakePolygon(FakeHttpServer):
    """Snapshots from `set_quote`, aggregates from `add_bar`, `page_size` results per page
    (pages linked by `next_url`). Requests without the expected bearer key get 401."""

    def __init__(self, api_key: str = "test-polygon-key", page_size: int = 2) -> None:
        super().__init__(self._route)
        self.api_key = api_key
        self.page_size = page_size
        self.tickers: dict[str, dict[str, Any]] = {}
        self.aggs: dict[str, list[dict[str, Any]]] = {}

    def set_quote(
        self,
        symbol: str,
        bid: float,
        ask: float,
        ts: datetime,
        last: float | None = None,
        volume: float = 1_000.0,
        bid_size: float = 100,
        ask_size: float = 200,
    ) -> None:
        self.tickers[symbol] = {
            "ticker": symbol,
            "day": {"o": bid, "h": ask, "l": bid, "c": ask, "v": volume, "vw": bid},
            "lastQuote": {"p": bid, "s": bid_size, "P": ask, "S": ask_size, "t": _ns(ts)},
            "lastTrade": {"p": ask if last is None else last, "s": 100, "t": _ns(ts), "x": 4},
            "min": {},
            "prevDay": {},
            "todaysChange": 0.0,
            "todaysChangePerc": 0.0,
            "updated": _ns(ts),
        }

    def add_bar(self, symbol: str, start: datetime, o: float, h: float, low: float, c: float,
                v: float) -> None:  # fmt: skip
        """A bar labelled by its start, as Polygon labels them (t in epoch ms)."""
        t_ms = int(start.timestamp() * 1000)
        self.aggs.setdefault(symbol, []).append(
            {"t": t_ms, "o": o, "h": h, "l": low, "c": c, "v": v, "vw": c, "n": 1}
        )

    def _route(self, request: RecordedRequest) -> FakeResponse:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return FakeResponse(401, json={"status": "ERROR", "error": "Unknown API Key"})
        if request.path == SNAPSHOT:
            wanted = request.query.get("tickers", "").split(",")
            found = [self.tickers[t] for t in wanted if t in self.tickers]
            return FakeResponse(json={"status": "OK", "count": len(found), "tickers": found})
        match = _AGGS.match(request.path)
        if match:
            return self._aggs(request, match.group(1), int(match.group(4)), int(match.group(5)))
        return FakeResponse(404, json={"status": "NOT_FOUND"})

    def _aggs(self, request: RecordedRequest, symbol: str, lo: int, hi: int) -> FakeResponse:
        rows = [b for b in sorted(self.aggs.get(symbol, []), key=lambda b: b["t"])
                if lo <= b["t"] <= hi]  # fmt: skip
        offset = int(request.query.get("cursor", "0"))
        page = rows[offset : offset + self.page_size]
        body: dict[str, Any] = {
            "ticker": symbol,
            "queryCount": len(page),
            "resultsCount": len(page),
            "adjusted": True,
            "status": "OK",
            "request_id": f"req-{len(self.requests)}",
        }
        if page:
            body["results"] = page
        if offset + self.page_size < len(rows):
            body["next_url"] = (
                f"{self.base_url}{request.path}?{urlencode({'cursor': offset + self.page_size})}"
            )
        return FakeResponse(json=body)
