"""Market data faults through the interval's step functions, against loopback Polygon and
Alpaca fakes: bad quotes are flagged with their reason and never traded on while the rest
trade; transient faults are retried; a provider that stays down fails the interval with
nothing written, and the next interval commits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paper_broker.market_data.errors import (
    MalformedResponse,
    MarketDataError,
    ProviderUnavailable,
)
from paper_broker.market_data.factory import make_provider
from papertrade.interval import run_interval
from papertrade.settings import Settings
from tests.fakes import FakeAlpaca, FakePolygon, FakeResponse
from tests.fakes.polygon import SNAPSHOT
from tests.reliability.support import (
    closed_port_url,
    file_digest,
    interval_times,
    ledger_violations,
    read,
    settings_for,
    table_counts,
)
from tests.support.accounts import SESSION_OPEN, SYMBOLS, write_config

POLYGON_KEY = "test-polygon-key"
ALPACA_ENV = {"APCA_API_KEY_ID": "test-key-id", "APCA_API_SECRET_KEY": "test-secret"}
T0, T1, T2 = (SESSION_OPEN + timedelta(minutes=i) for i in range(3))
LIMITS = {
    "max_order_notional": 1e6, "max_position_notional": 1e6,
    "max_gross_exposure": 1e7, "max_net_exposure": 1e7,
}  # fmt: skip


class SleepRecorder:
    """Stands in for `time.sleep` in the HTTP client: records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class _Silent:
    def send(self, alert: Any) -> Any:
        from papertrade.alerts.sender import SendResult

        return SendResult(ok=True, printed=True)


@pytest.fixture
def polygon() -> Iterator[FakePolygon]:
    with FakePolygon(api_key=POLYGON_KEY) as server:
        yield server


def _settings(tmp_path: Path, provider: str, base_url: str, **market_data: Any) -> Settings:
    """A buy-and-hold account (it buys every tradable symbol at once) on an HTTP provider."""
    url_key = f"{provider}_base_url"
    fields = {"provider": provider, url_key: base_url, "cache_seconds": 0.0,
              "timeout_seconds": 0.3, "max_retries": 2, **market_data}  # fmt: skip
    return settings_for(
        write_config(tmp_path),
        market_data=fields,
        strategy={"name": "buy_and_hold", "params": {}},
        risk=LIMITS,
    )


def _quote_all(fake: FakePolygon | FakeAlpaca, when: datetime, skip: tuple[str, ...] = ()) -> None:
    for i, symbol in enumerate(SYMBOLS):
        if symbol not in skip:
            fake.set_quote(symbol, bid=100.0 + i, ask=100.02 + i, ts=when)


def _run(settings: Settings, when: datetime, sleep: SleepRecorder | None = None) -> dict[str, Any]:
    env = {"POLYGON_API_KEY": POLYGON_KEY, **ALPACA_ENV}
    provider = make_provider(
        settings.market_data, settings.universe.symbols, env=env, sleep=sleep or SleepRecorder()
    )
    return run_interval(settings, when, provider, sender=_Silent())


def _flags(db: Path, when: datetime) -> dict[str, tuple[bool, str | None]]:
    rows = read(db, "SELECT symbol, valid, flag_reason FROM quotes WHERE as_of = ?", [when])
    return {s: (v, r) for s, v, r in rows}


def _traded_symbols(db: Path) -> tuple[set[str], set[str]]:
    ordered = {r[0] for r in read(db, "SELECT DISTINCT symbol FROM orders")}
    filled = {r[0] for r in read(db, "SELECT DISTINCT symbol FROM fills")}
    return ordered, filled


def test_bad_quotes_are_flagged_skipped_and_the_rest_trade(
    tmp_path: Path, polygon: FakePolygon
) -> None:
    missing, nan, zero, crossed = SYMBOLS[:4]
    _quote_all(polygon, T0, skip=(missing,))
    polygon.set_quote(zero, bid=0.0, ask=101.0, ts=T0)
    polygon.set_quote(crossed, bid=105.0, ask=104.0, ts=T0)
    polygon.set_quote(nan, bid=1.0, ask=1.0, ts=T0)
    polygon.tickers[nan]["lastQuote"]["p"] = None  # JSON null where the bid belongs
    settings = _settings(tmp_path, "polygon", polygon.base_url)

    summary = _run(settings, T0)

    db = settings.warehouse.path
    flags = _flags(db, T0)
    assert summary["status"] == "committed"
    assert {s: flags[s] for s in (missing, nan, zero, crossed)} == {
        missing: (False, "missing"),
        nan: (False, "nan"),
        zero: (False, "non_positive"),
        crossed: (False, "crossed"),
    }
    good = set(SYMBOLS[4:])
    assert {s for s, (valid, _) in flags.items() if valid} == good
    ordered, filled = _traded_symbols(db)
    assert ordered == good and filled == good, "only symbols with valid quotes trade"
    assert ledger_violations(db, "paper", settings.account.initial_cash) == []


def test_bad_quotes_from_alpaca_are_flagged_and_never_traded(tmp_path: Path) -> None:
    with FakeAlpaca(**{"key_id": "test-key-id", "secret": "test-secret"}) as alpaca:
        missing, crossed = SYMBOLS[0], SYMBOLS[1]
        _quote_all(alpaca, T0, skip=(missing,))
        alpaca.set_quote(crossed, bid=50.0, ask=49.0, ts=T0)
        settings = _settings(tmp_path, "alpaca", alpaca.base_url)

        summary = _run(settings, T0)

    db = settings.warehouse.path
    flags = _flags(db, T0)
    assert summary["status"] == "committed"
    assert flags[missing] == (False, "missing") and flags[crossed] == (False, "crossed")
    ordered, filled = _traded_symbols(db)
    assert ordered == filled == set(SYMBOLS[2:])


def test_quotes_newer_than_the_interval_are_never_traded(
    tmp_path: Path, polygon: FakePolygon
) -> None:
    """An interval run for a time already past gets the provider's latest snapshot: prices
    from after `as_of` are look-ahead and must not trade; the interval's own ones do."""
    late = SYMBOLS[0]
    _quote_all(polygon, T0 + timedelta(seconds=20), skip=(late,))  # fetched within T0
    polygon.set_quote(late, bid=100.0, ask=100.02, ts=T0 + timedelta(days=1))
    settings = _settings(tmp_path, "polygon", polygon.base_url)

    summary = _run(settings, T0)

    db = settings.warehouse.path
    assert summary["status"] == "committed"
    assert _flags(db, T0)[late] == (False, "future")
    ordered, filled = _traded_symbols(db)
    assert ordered == filled == set(SYMBOLS[1:])


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([FakeResponse(delay=1.5)], id="timeout"),
        pytest.param([FakeResponse(429, json={}, headers={"Retry-After": "2"})], id="429"),
        pytest.param([FakeResponse(503, json={}), FakeResponse(502, json={})], id="5xx-burst"),
    ],
)
def test_transient_faults_are_retried_and_the_interval_commits(
    tmp_path: Path, polygon: FakePolygon, faults: list[FakeResponse]
) -> None:
    _quote_all(polygon, T0)
    polygon.enqueue(*faults, path_prefix=SNAPSHOT)
    settings = _settings(tmp_path, "polygon", polygon.base_url)
    sleep = SleepRecorder()

    summary = _run(settings, T0, sleep)

    snapshots = [r for r in polygon.requests if r.path == SNAPSHOT]
    assert summary["status"] == "committed"
    assert summary["n_valid_quotes"] == len(SYMBOLS)
    assert len(snapshots) == len(faults) + 1
    assert len(sleep.waits) >= len(faults)
    if faults[0].status == 429:
        assert 2.0 in sleep.waits, "Retry-After is honoured"


def _down_polygon(polygon: FakePolygon, kind: str, tmp_path: Path) -> tuple[Settings, type]:
    settings = _settings(tmp_path, "polygon", polygon.base_url)
    if kind == "refused":
        refused = settings_for(
            write_config(tmp_path),
            market_data={
                **settings.market_data.model_dump(),
                "polygon_base_url": closed_port_url(),
            },
            strategy={"name": "buy_and_hold", "params": {}},
            risk=LIMITS,
        )
        return refused, ProviderUnavailable
    attempts = settings.market_data.max_retries + 1
    fault = {
        "5xx": FakeResponse(500, json={"status": "ERROR"}),
        "timeouts": FakeResponse(delay=1.0),
        "malformed": FakeResponse(body=b"<html>gateway</html>"),
    }[kind]
    # a body that is not JSON is not retried: one answer is the whole fault
    polygon.enqueue(*[fault] * (1 if kind == "malformed" else attempts), path_prefix=SNAPSHOT)
    return settings, MalformedResponse if kind == "malformed" else ProviderUnavailable


@pytest.mark.parametrize("kind", ["refused", "5xx", "timeouts", "malformed"])
def test_a_provider_down_fails_the_interval_with_nothing_written_and_the_next_commits(
    tmp_path: Path, polygon: FakePolygon, kind: str
) -> None:
    for when in (T0, T1, T2):
        _quote_all(polygon, when)  # latest quotes are stamped T2; staleness allows it
    good = _settings(tmp_path, "polygon", polygon.base_url)
    _run(good, T0)
    db = good.warehouse.path
    before = (file_digest(db), table_counts(db))
    down, error = _down_polygon(polygon, kind, tmp_path)

    with pytest.raises(error) as raised:
        _run(down, T1)
    after = (file_digest(db), table_counts(db))
    next_interval = _run(good, T2)

    assert isinstance(raised.value, MarketDataError)
    assert POLYGON_KEY not in str(raised.value)
    assert after == before, "a failed fetch writes nothing"
    assert next_interval["status"] == "committed"
    assert next_interval["gap_intervals"] == 1
    assert [t.isoformat() for t in interval_times(db, "paper")] == [
        T0.isoformat(),
        T2.isoformat(),
    ]
    assert ledger_violations(db, "paper", good.account.initial_cash) == []
