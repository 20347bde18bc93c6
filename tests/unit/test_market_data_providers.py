"""The price cache and the provider factory."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

from paper_broker.market_data.cache import CachedProvider
from paper_broker.market_data.errors import ProviderAuthError, ReplayDataError
from paper_broker.market_data.factory import make_provider
from paper_broker.market_data.simulated import SimulatedMarket
from papertrade.settings import MarketDataSettings

AS_OF = pd.Timestamp("2026-03-02 15:30:00", tz="UTC")


class CountingProvider(SimulatedMarket):
    def __init__(self) -> None:
        super().__init__(seed=1)
        self.calls = 0

    def quotes(self, symbols, as_of):  # type: ignore[no-untyped-def]
        self.calls += 1
        return super().quotes(symbols, as_of)


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cache_serves_repeats_within_ttl_only() -> None:
    inner, clock = CountingProvider(), ManualClock()
    cached = CachedProvider(inner, ttl_seconds=1.0, clock=clock)

    first = cached.quotes(["AAPL"], AS_OF)
    first.loc[0, "bid"] = -1.0  # callers get copies
    again = cached.quotes(["AAPL"], AS_OF)
    clock.now += 1.5
    cached.quotes(["AAPL"], AS_OF)

    assert inner.calls == 2
    assert again.loc[0, "bid"] > 0
    assert (cached.hits, cached.misses) == (1, 2)


def test_cache_keys_on_symbols_and_as_of() -> None:
    inner = CountingProvider()
    cached = CachedProvider(inner, ttl_seconds=60, clock=ManualClock())

    cached.quotes(["AAPL"], AS_OF)
    cached.quotes(["MSFT"], AS_OF)
    cached.quotes(["AAPL"], AS_OF + pd.Timedelta(minutes=1))

    assert inner.calls == 3


def test_factory_defaults_to_cached_simulated_market() -> None:
    provider = make_provider(MarketDataSettings(seed=3), ["AAPL"])

    assert isinstance(provider, CachedProvider)
    assert isinstance(provider.inner, SimulatedMarket) and provider.inner.seed == 3


def test_factory_without_cache_and_with_replay(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    pd.DataFrame(
        {"timestamp": [AS_OF], "symbol": ["AAPL"], "open": [1.0], "high": [1.0],
         "low": [1.0], "close": [1.0], "volume": [1.0]}
    ).to_csv(path, index=False)  # fmt: skip

    provider = make_provider(
        MarketDataSettings(provider="replay", replay_path=path, cache_seconds=0)
    )

    assert provider.name == "replay"
    assert provider.quotes(["AAPL"], AS_OF)["last"].tolist() == [1.0]
    with pytest.raises(ReplayDataError, match="replay_path"):
        make_provider(MarketDataSettings(provider="replay"))


def test_factory_http_providers_need_keys() -> None:
    with pytest.raises(ProviderAuthError, match="POLYGON_API_KEY"):
        make_provider(MarketDataSettings(provider="polygon"), env={})
    with pytest.raises(ProviderAuthError, match="APCA_API_KEY_ID"):
        make_provider(MarketDataSettings(provider="alpaca"), env={})


def test_pure_modules_do_not_import_httpx() -> None:
    import subprocess

    code = (
        "import sys, paper_broker.market_data, paper_broker.market_data.factory, "
        "paper_broker.market_data.simulated, paper_broker.market_data.replay; "
        "print('httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.strip() == "False"
