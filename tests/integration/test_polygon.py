"""The Polygon adapter against a loopback fake speaking Polygon's JSON, and MockTransport."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

from paper_broker.market_data.errors import (
    MalformedResponse,
    ProviderAuthError,
    ProviderRequestError,
    ProviderUnavailable,
)
from paper_broker.market_data.polygon import KEY_ENV, PolygonProvider
from tests.fakes import FakePolygon, FakeResponse

AS_OF = pd.Timestamp("2026-03-02 15:30:00", tz="UTC")
KEY = "test-polygon-key"


class SleepRecorder:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakePolygon]:
    with FakePolygon(api_key=KEY) as server:
        yield server


def make_provider(base_url: str, sleep: SleepRecorder | None = None, **kwargs: object):
    return PolygonProvider(base_url, env={KEY_ENV: KEY}, sleep=sleep or SleepRecorder(), **kwargs)  # type: ignore[arg-type]


def test_snapshot_quotes_map_documented_fields(fake: FakePolygon) -> None:
    fake.set_quote("AAPL", bid=189.5, ask=189.52, ts=AS_OF, last=189.51, volume=5e6)
    fake.set_quote("MSFT", bid=400.0, ask=400.1, ts=AS_OF - pd.Timedelta(seconds=3))
    provider = make_provider(fake.base_url)

    quotes = provider.quotes(["AAPL", "MSFT"], AS_OF)
    provider.close()

    row = quotes.set_index("symbol").loc["AAPL"]
    assert (row["bid"], row["ask"], row["last"], row["volume"]) == (189.5, 189.52, 189.51, 5e6)
    assert (row["bid_size"], row["ask_size"]) == (100, 200)
    assert row["quote_ts"] == AS_OF
    assert quotes.set_index("symbol").loc["MSFT", "quote_ts"] == AS_OF - pd.Timedelta(seconds=3)
    request = fake.requests[0]
    assert request.query["tickers"] == "AAPL,MSFT"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert "apiKey" not in request.query


def test_partial_symbol_list_leaves_absent_symbols_out(fake: FakePolygon) -> None:
    fake.set_quote("AAPL", bid=1.0, ask=1.01, ts=AS_OF)
    provider = make_provider(fake.base_url)

    quotes = provider.quotes(["AAPL", "NOPE"], AS_OF)
    provider.close()

    assert quotes["symbol"].tolist() == ["AAPL"]


def test_429_with_retry_after_then_success(fake: FakePolygon) -> None:
    fake.set_quote("AAPL", bid=1.0, ask=1.01, ts=AS_OF)
    fake.enqueue(FakeResponse(429, json={"status": "ERROR"}, headers={"Retry-After": "7"}))
    sleep = SleepRecorder()
    provider = make_provider(fake.base_url, sleep)

    quotes = provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert sleep.waits == [7.0]
    assert len(quotes) == 1 and len(fake.requests) == 2


def test_a_retry_after_longer_than_the_client_waits_is_not_retried_early(
    fake: FakePolygon,
) -> None:
    fake.set_quote("AAPL", bid=1.0, ask=1.01, ts=AS_OF)
    fake.enqueue(FakeResponse(429, json={"status": "ERROR"}, headers={"Retry-After": "120"}))
    sleep = SleepRecorder()
    provider = make_provider(fake.base_url, sleep)

    with pytest.raises(ProviderUnavailable, match="retry after 120 s"):
        provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert len(fake.requests) == 1 and sleep.waits == []


def test_500s_back_off_exponentially_then_give_up(fake: FakePolygon) -> None:
    fake.enqueue(*[FakeResponse(500, json={"status": "ERROR"})] * 4)
    sleep = SleepRecorder()
    provider = make_provider(fake.base_url, sleep, max_retries=3)

    with pytest.raises(ProviderUnavailable, match="HTTP 500") as info:
        provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert info.value.attempts == 4 and len(fake.requests) == 4
    assert len(sleep.waits) == 3
    for k, wait in enumerate(sleep.waits):  # base 0.25 * 2**k, jittered into [0.5, 1] of it
        assert 0.125 * 2**k <= wait <= 0.25 * 2**k


def test_timeout_is_retried(fake: FakePolygon) -> None:
    fake.set_quote("AAPL", bid=1.0, ask=1.01, ts=AS_OF)
    fake.enqueue(FakeResponse(200, json={"tickers": []}, delay=0.5))
    provider = make_provider(fake.base_url, timeout_seconds=0.1)

    quotes = provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert quotes["symbol"].tolist() == ["AAPL"]


def test_malformed_json_is_a_clear_error(fake: FakePolygon) -> None:
    fake.enqueue(FakeResponse(200, body=b"<html>gateway</html>"))
    provider = make_provider(fake.base_url)

    with pytest.raises(MalformedResponse, match="not JSON"):
        provider.quotes(["AAPL"], AS_OF)
    provider.close()


def test_wrong_shape_is_malformed(fake: FakePolygon) -> None:
    fake.enqueue(FakeResponse(200, json={"tickers": [{"lastQuote": {"p": 1}}]}))
    provider = make_provider(fake.base_url)

    with pytest.raises(MalformedResponse):
        provider.quotes(["AAPL"], AS_OF)
    provider.close()


def test_wrong_key_names_the_variable_not_the_key(fake: FakePolygon) -> None:
    provider = PolygonProvider(fake.base_url, env={KEY_ENV: "wrong-secret-value"})

    with pytest.raises(ProviderAuthError) as info:
        provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert KEY_ENV in str(info.value) and "wrong-secret-value" not in str(info.value)
    assert len(fake.requests) == 1  # auth errors are not retried


def test_a_refusal_gives_polygons_reason_without_the_key(fake: FakePolygon) -> None:
    # Polygon answers 403 for a plan that lacks the data; a body echoing the key is masked
    reason = f"You are not entitled to this data ({KEY}). Please upgrade your plan"
    fake.enqueue(FakeResponse(403, json={"status": "NOT_AUTHORIZED", "message": reason}))
    provider = make_provider(fake.base_url)

    with pytest.raises(ProviderAuthError) as info:
        provider.quotes(["AAPL"], AS_OF)
    provider.close()

    message = str(info.value)
    assert "HTTP 403: You are not entitled to this data (***)" in message
    assert KEY not in message and KEY_ENV in message


def test_missing_key_fails_at_construction() -> None:
    with pytest.raises(ProviderAuthError, match=KEY_ENV):
        PolygonProvider("http://127.0.0.1:9", env={})


def test_aggregates_follow_next_url_and_are_end_labelled(fake: FakePolygon) -> None:
    for i in range(5):
        start = AS_OF + pd.Timedelta(minutes=i)
        fake.add_bar("AAPL", start, o=10 + i, h=11 + i, low=9 + i, c=10.5 + i, v=100 * (i + 1))
    provider = make_provider(fake.base_url)

    bars = provider.bars(["AAPL"], AS_OF, AS_OF + pd.Timedelta(minutes=10), "1Min")
    provider.close()

    assert len([r for r in fake.requests if r.path.startswith("/v2/aggs")]) == 3  # 2+2+1
    assert bars["close"].tolist() == [10.5, 11.5, 12.5, 13.5, 14.5]
    assert bars["timestamp"].iloc[0] == AS_OF + pd.Timedelta(minutes=1)
    assert fake.requests[0].path.endswith("/range/1/minute/" + str(
        (AS_OF - pd.Timedelta(minutes=1)).value // 1_000_000) + "/" + str(
        (AS_OF + pd.Timedelta(minutes=10)).value // 1_000_000))  # fmt: skip


def test_a_next_url_to_another_host_is_not_followed_with_the_key() -> None:
    hosts = []

    def handler(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        return httpx.Response(
            200, json={"results": [], "next_url": "https://elsewhere.test/v2/aggs/next"}
        )

    provider = make_provider("https://polygon.test", transport=httpx.MockTransport(handler))

    with pytest.raises(MalformedResponse, match=r"elsewhere\.test"):
        provider.bars(["AAPL"], AS_OF, AS_OF + pd.Timedelta(minutes=10), "1Min")
    provider.close()

    assert hosts == ["polygon.test"]


def test_other_4xx_is_not_retried() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"status": "ERROR", "error": "bad tickers"})

    provider = make_provider("https://polygon.test", transport=httpx.MockTransport(handler))

    with pytest.raises(ProviderRequestError) as info:
        provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert info.value.status_code == 400


def test_connection_errors_retry_via_mock_transport() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) < 3:
            raise httpx.ConnectError("refused", request=request)
        body = {"status": "OK", "tickers": [{"ticker": "AAPL", "lastQuote": {
            "p": 1.0, "P": 1.01, "s": 1, "S": 1, "t": AS_OF.value}}]}  # fmt: skip
        return httpx.Response(200, content=json.dumps(body).encode())

    sleep = SleepRecorder()
    provider = make_provider("https://polygon.test", sleep, transport=httpx.MockTransport(handler))

    quotes = provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert len(calls) == 3 and len(sleep.waits) == 2
    assert quotes.loc[0, "bid"] == 1.0
