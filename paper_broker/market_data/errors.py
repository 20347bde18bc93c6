"""Errors of the market data providers.

Bad *quotes* are not errors: they come back flagged by `validation.validate_quotes`. These
exceptions mean a provider could not answer at all.

MarketDataError                    base; `provider` names who failed
 ├── ProviderAuthError             401/403 or a missing key; names the environment variable
 ├── ProviderUnavailable           connection errors, timeouts, 429 and 5xx after all retries
 ├── ProviderRequestError          any other 4xx: the request itself was wrong
 ├── MalformedResponse             the body is not JSON or not in the documented shape
 └── ReplayDataError               a replay file is missing, unreadable or lacks columns

A missing or rejected key is something the user can fix; the application shell maps
`ProviderAuthError` (and `ReplayDataError`) to its user-error exit code. Messages never
contain a key's value, only the name of the variable it comes from.
"""

from __future__ import annotations


class MarketDataError(Exception):
    """Base of every error raised by `paper_broker.market_data`."""

    def __init__(self, provider: str, message: str) -> None:
        super().__init__(f"{provider}: {message}")
        self.provider = provider


class ProviderAuthError(MarketDataError):
    """The provider refused our credentials, or they are not set."""

    def __init__(self, provider: str, message: str, env_vars: tuple[str, ...]) -> None:
        super().__init__(provider, message)
        self.env_vars = env_vars


class ProviderUnavailable(MarketDataError):
    """The provider did not answer successfully within the retry budget."""

    def __init__(self, provider: str, message: str, attempts: int) -> None:
        super().__init__(provider, message)
        self.attempts = attempts


class ProviderRequestError(MarketDataError):
    """The provider answered 4xx (other than 401/403/429): retrying will not help."""

    def __init__(self, provider: str, message: str, status_code: int) -> None:
        super().__init__(provider, message)
        self.status_code = status_code


class MalformedResponse(MarketDataError):
    """The provider answered 2xx but the body cannot be read as documented."""


class ReplayDataError(MarketDataError):
    """A replay file cannot be used: missing, unreadable, or without the needed columns."""
