"""The Alpaca adapter against a loopback fake speaking Alpaca's market data v2 JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
import pytest

from paper_broker.market_data.alpaca import KEY_ID_ENV, SECRET_ENV, AlpacaProvider
from paper_broker.market_data.errors import (
    MalformedResponse,
    ProviderAuthError,
    ProviderUnavailable,
)
from paper_broker.market_data.validation import validate_quotes
from tests.fakes import FakeAlpaca, FakeResponse

AS_OF = pd.Timestamp("2026-03-02 15:30:00", tz="UTC")
ENV = {KEY_ID_ENV: "test-key-id", SECRET_ENV: "test-secret"}


@pytest.fixture
def fake() -> Iterator[FakeAlpaca]:
    with FakeAlpaca(key_id=ENV[KEY_ID_ENV], secret=ENV[SECRET_ENV]) as server:
        yield server


def make_provider(base_url: str, waits: list[float] | None = None, **kw: object) -> AlpacaProvider:
    sink = waits if waits is not None else []
    return AlpacaProvider(base_url, env=ENV, sleep=sink.append, **kw)  # type: ignore[arg-type]


def test_latest_quotes_and_trades(fake: FakeAlpaca) -> None:
    fake.set_quote("AAPL", bid=189.5, ask=189.52, ts=AS_OF, last=189.51)
    fake.set_quote("MSFT", bid=400.0, ask=400.1, ts=AS_OF)  # no trade yet
    provider = make_provider(fake.base_url, feed="sip")

    quotes = provider.quotes(["AAPL", "MSFT", "NOPE"], AS_OF).set_index("symbol")
    provider.close()

    assert sorted(quotes.index) == ["AAPL", "MSFT"]
    assert (quotes.loc["AAPL", "bid"], quotes.loc["AAPL", "ask"]) == (189.5, 189.52)
    assert quotes.loc["AAPL", "last"] == 189.51
    assert pd.isna(quotes.loc["MSFT", "last"]) and pd.isna(quotes.loc["AAPL", "volume"])
    assert abs(quotes.loc["AAPL", "quote_ts"] - AS_OF) < pd.Timedelta(milliseconds=1)
    first = fake.requests[0]
    assert first.query == {"symbols": "AAPL,MSFT,NOPE", "feed": "sip"}
    assert first.headers["apca-api-key-id"] == "test-key-id"


def test_one_unreadable_quote_time_flags_that_symbol_only(fake: FakeAlpaca) -> None:
    fake.set_quote("AAPL", bid=189.5, ask=189.52, ts=AS_OF, last=189.51)
    fake.set_quote("MSFT", bid=400.0, ask=400.1, ts=AS_OF)
    fake.latest_quotes["MSFT"]["t"] = "0001-01-01T00:00:00Z"  # Alpaca's zero time
    provider = AlpacaProvider(fake.base_url, env=ENV)

    quotes = provider.quotes(["AAPL", "MSFT"], AS_OF)
    provider.close()

    out = validate_quotes(quotes, ["AAPL", "MSFT"], AS_OF)
    assert out["flag_reason"].tolist() == [None, "nan"]


def test_bars_paginate_with_next_page_token(fake: FakeAlpaca) -> None:
    for symbol in ("AAPL", "MSFT"):
        for i in range(3):
            fake.add_bar(symbol, AS_OF + pd.Timedelta(minutes=i), 1, 2, 0.5, 1.5 + i, 10)
    provider = make_provider(fake.base_url)

    bars = provider.bars(["AAPL", "MSFT"], AS_OF, AS_OF + pd.Timedelta(minutes=5))
    provider.close()

    pages = [r for r in fake.requests if r.path == "/v2/stocks/bars"]
    assert len(pages) == 3 and pages[1].query["page_token"] == "2"
    assert len(bars) == 6
    assert bars["timestamp"].min() == AS_OF + pd.Timedelta(minutes=1)  # end-labelled
    assert bars[bars["symbol"] == "MSFT"]["close"].tolist() == [1.5, 2.5, 3.5]


def test_429_and_503_are_retried(fake: FakeAlpaca) -> None:
    fake.set_quote("AAPL", bid=1.0, ask=1.01, ts=AS_OF, last=1.0)
    fake.enqueue(
        FakeResponse(429, json={"message": "too many"}, headers={"Retry-After": "3"}),
        FakeResponse(503, json={"message": "down"}),
    )
    waits: list[float] = []
    provider = make_provider(fake.base_url, waits)

    quotes = provider.quotes(["AAPL"], AS_OF)
    provider.close()

    assert waits[0] == 3.0 and len(waits) == 2
    assert quotes["bid"].tolist() == [1.0]


def test_timeouts_exhaust_retries(fake: FakeAlpaca) -> None:
    fake.enqueue(*[FakeResponse(200, json={"quotes": {}}, delay=0.3)] * 2)
    provider = make_provider(fake.base_url, timeout_seconds=0.05, max_retries=1)

    with pytest.raises(ProviderUnavailable, match="Timeout"):
        provider.quotes(["AAPL"], AS_OF)
    provider.close()


def test_malformed_body(fake: FakeAlpaca) -> None:
    fake.enqueue(FakeResponse(200, json={"unexpected": []}))
    provider = make_provider(fake.base_url)

    with pytest.raises(MalformedResponse, match="quotes"):
        provider.quotes(["AAPL"], AS_OF)
    provider.close()


def test_forbidden_names_both_variables(fake: FakeAlpaca) -> None:
    provider = AlpacaProvider(fake.base_url, env={KEY_ID_ENV: "x", SECRET_ENV: "s3cr3t"})

    with pytest.raises(ProviderAuthError) as info:
        provider.quotes(["AAPL"], AS_OF)
    provider.close()

    message = str(info.value)
    assert KEY_ID_ENV in message and SECRET_ENV in message and "s3cr3t" not in message


def test_a_plan_without_sip_names_the_feed_setting(fake: FakeAlpaca) -> None:
    refusal = {"message": "subscription does not permit querying recent SIP data"}
    fake.enqueue(FakeResponse(403, json=refusal))
    provider = AlpacaProvider(
        fake.base_url, feed="sip", env={KEY_ID_ENV: "test-key-id", SECRET_ENV: "test-secret"}
    )

    with pytest.raises(ProviderAuthError) as info:
        provider.quotes(["AAPL"], AS_OF)
    provider.close()

    message = str(info.value)
    assert "subscription does not permit querying recent SIP data" in message
    assert "alpaca_feed" in message and KEY_ID_ENV in message
    assert "test-secret" not in message and "test-key-id" not in message


def test_missing_secret_is_named() -> None:
    with pytest.raises(ProviderAuthError, match=SECRET_ENV) as info:
        AlpacaProvider("http://127.0.0.1:9", env={KEY_ID_ENV: "id"})

    assert info.value.env_vars == (SECRET_ENV,)
