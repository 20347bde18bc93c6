"""Build the configured provider: `make_provider(settings.market_data, symbols)`.

Takes any object with the `[market_data]` attributes (`papertrade.settings.MarketDataSettings`
or a test double), so this module does not import the application. HTTP adapters are imported
here only when chosen, keeping httpx out of simulated and replay runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from paper_broker.market_data.cache import CachedProvider
from paper_broker.market_data.errors import ReplayDataError
from paper_broker.market_data.protocol import MarketDataProvider


def make_provider(
    market_data: Any,
    symbols: Sequence[str] = (),
    transport: Any = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MarketDataProvider:
    """The provider named by `market_data.provider`, wrapped in a `CachedProvider` when
    `cache_seconds` > 0. `transport` (an `httpx.BaseTransport`) and `sleep` reach the HTTP
    adapters; `env` replaces `os.environ` for key lookup. `symbols` is the universe, kept for
    providers that prepare per symbol.

    Raises `ProviderAuthError` (missing keys), `ReplayDataError` (no or bad replay file),
    `ValueError` (unknown provider name).
    """
    del symbols  # every current provider answers any symbol on demand
    kind = str(getattr(market_data.provider, "value", market_data.provider))
    inner: MarketDataProvider
    if kind == "simulated":
        from paper_broker.market_data.simulated import SimulatedMarket

        inner = SimulatedMarket(seed=int(market_data.seed))
    elif kind == "replay":
        from paper_broker.market_data.replay import ReplayProvider

        if market_data.replay_path is None:
            raise ReplayDataError("replay", "[market_data] replay_path is not set")
        inner = ReplayProvider(market_data.replay_path)
    elif kind == "polygon":
        from paper_broker.market_data.polygon import PolygonProvider

        inner = PolygonProvider(
            market_data.polygon_base_url,
            timeout_seconds=float(market_data.timeout_seconds),
            max_retries=int(market_data.max_retries),
            transport=transport,
            sleep=sleep,
            env=env,
        )
    elif kind == "alpaca":
        from paper_broker.market_data.alpaca import AlpacaProvider

        inner = AlpacaProvider(
            market_data.alpaca_base_url,
            feed=str(market_data.alpaca_feed),
            timeout_seconds=float(market_data.timeout_seconds),
            max_retries=int(market_data.max_retries),
            transport=transport,
            sleep=sleep,
            env=env,
        )
    else:
        raise ValueError(f"unknown market data provider {kind!r}")
    cache_seconds = float(market_data.cache_seconds)
    if cache_seconds > 0:
        return CachedProvider(inner, cache_seconds, clock=clock)
    return inner
