"""Market data behind one protocol: simulated (default), replay, polygon, alpaca.

This package imports no HTTP library: `polygon`, `alpaca` and `http_client` are imported only
when `factory.make_provider` chooses them.
"""

from paper_broker.market_data.errors import (
    MalformedResponse,
    MarketDataError,
    ProviderAuthError,
    ProviderRequestError,
    ProviderUnavailable,
    ReplayDataError,
)
from paper_broker.market_data.frames import BAR_COLUMNS, QUOTE_COLUMNS
from paper_broker.market_data.protocol import MarketDataProvider
from paper_broker.market_data.validation import QuoteFlag, QuoteLimits, tradable, validate_quotes

__all__ = [
    "BAR_COLUMNS",
    "QUOTE_COLUMNS",
    "MalformedResponse",
    "MarketDataError",
    "MarketDataProvider",
    "ProviderAuthError",
    "ProviderRequestError",
    "ProviderUnavailable",
    "QuoteFlag",
    "QuoteLimits",
    "ReplayDataError",
    "tradable",
    "validate_quotes",
]
