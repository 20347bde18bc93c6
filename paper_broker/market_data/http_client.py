"""The HTTP plumbing Polygon and Alpaca share: one client, retries, and error mapping.

Retries (up to `max_retries` after the first attempt) on connection errors and timeouts,
429 (waiting `Retry-After` when given; one longer than `backoff_max` fails at once rather
than retrying early) and 5xx, with exponential backoff and jitter:
attempt k waits `backoff_base * 2**k`, scaled by a random factor in [0.5, 1], capped at
`backoff_max`. 401/403 raise `ProviderAuthError` with the vendor's reason, naming the
environment variables that hold the key (never the key) and any setting to check; other
4xx raise `ProviderRequestError` at once; a 2xx body that is not JSON raises
`MalformedResponse`.

The transport and the sleep function are constructor arguments: tests pass
`httpx.MockTransport` or point `base_url` at a loopback fake, and a sleep that records.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from paper_broker.market_data.errors import (
    MalformedResponse,
    ProviderAuthError,
    ProviderRequestError,
    ProviderUnavailable,
)

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504}) | frozenset(range(505, 600))


class HttpSource:
    """A JSON-over-HTTPS source for one provider. Close it (or use `with`) when done."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        *,
        auth_env_vars: tuple[str, ...],
        auth_hint: str = "",
        timeout_seconds: float = 10.0,
        max_retries: int = 3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        backoff_base: float = 0.25,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.provider = provider
        self.auth_env_vars = auth_env_vars
        self.auth_hint = auth_hint
        # what a refusal's text must never show: each header value, and its last word (the
        # key inside "Bearer <key>")
        self._secrets = {part for v in headers.values() for part in (v, *v.split()[-1:]) if part}
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        # jitter only spreads load; a seeded generator owned here keeps runs reproducible
        self._rng = rng if rng is not None else random.Random(0)
        self._client = httpx.Client(
            base_url=base_url,
            headers=dict(headers),
            timeout=timeout_seconds,
            transport=transport,
            follow_redirects=True,
        )

    def get_json(self, url: str, params: Mapping[str, str] | None = None) -> Any:
        """GET `url` (a path under the base URL, or an absolute URL such as a `next_url`) and
        return the decoded JSON body. Raises a `MarketDataError` subclass on failure.

        An absolute URL must name the base URL's host: the client sends the key with every
        request, and a link in a body is the vendor's word, not ours."""
        target, base = httpx.URL(url), self._client.base_url
        if target.is_absolute_url and (target.scheme, target.host, target.port) != (
            base.scheme,
            base.host,
            base.port,
        ):
            raise MalformedResponse(
                self.provider, f"a link points to {target.host}, not {base.host}; not followed"
            )
        last_problem = ""
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            try:
                response = self._client.get(url, params=dict(params) if params else None)
            except httpx.TransportError as exc:  # connect errors, timeouts, broken reads
                last_problem = f"{type(exc).__name__} from {self._client.base_url.host}"
                wait = self._backoff(attempt)
            else:
                status = response.status_code
                if status in (401, 403):
                    raise self._auth_error(response)
                if status < 400:
                    return self._decode(response)
                if status not in _RETRY_STATUS:
                    raise ProviderRequestError(
                        self.provider,
                        f"HTTP {status} for {response.request.url.path}: {response.text[:200]}",
                        status,
                    )
                last_problem = f"HTTP {status}"
                retry_after = self._retry_after(response)
                if retry_after is not None and retry_after > self.backoff_max:
                    # a retry before then is refused again and costs the interval its time
                    raise ProviderUnavailable(
                        self.provider,
                        f"HTTP {status}: rate limited, retry after {retry_after:.0f} s "
                        f"(longer than the {self.backoff_max:.0f} s this client waits)",
                        attempt + 1,
                    )
                wait = self._backoff(attempt) if retry_after is None else retry_after
            if attempt + 1 < attempts:
                self._sleep(wait)
        raise ProviderUnavailable(
            self.provider, f"gave up after {attempts} attempt(s): {last_problem}", attempts
        )

    def _auth_error(self, response: httpx.Response) -> ProviderAuthError:
        """A 401/403 in one line: the vendor's own reason (a refused key and a plan without
        the requested data both answer 403, and only the reason tells them apart), then the
        variables and the setting to check. Never a key: header values are masked."""
        names = " and ".join(self.auth_env_vars)
        reason = self._vendor_reason(response) or "the API key was refused"
        hint = f", or {self.auth_hint}" if self.auth_hint else ""
        return ProviderAuthError(
            self.provider,
            f"HTTP {response.status_code}: {reason}; check {names}{hint}",
            self.auth_env_vars,
        )

    def _vendor_reason(self, response: httpx.Response) -> str:
        """`message` or `error` of a JSON error body (Polygon and Alpaca both use one of
        them), on one line and at most 160 characters; empty when there is none."""
        try:
            body = response.json()
        except ValueError:
            return ""
        reason = (body.get("message") or body.get("error")) if isinstance(body, dict) else None
        if not isinstance(reason, str):
            return ""
        text = " ".join(reason.split())[:160]
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _decode(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            snippet = response.text[:80].replace("\n", " ")
            raise MalformedResponse(
                self.provider, f"response from {response.request.url.path} is not JSON: {snippet!r}"
            ) from None

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return delay * (0.5 + 0.5 * self._rng.random())

    def _retry_after(self, response: httpx.Response) -> float | None:
        """Seconds from a `Retry-After` header (delta-seconds, or an HTTP date measured
        against the response's own `Date`), at least 0; None when absent or unreadable."""
        value = response.headers.get("Retry-After")
        if value is None:
            return None
        try:
            seconds = float(value)
        except ValueError:
            try:
                until = parsedate_to_datetime(value)
                sent = parsedate_to_datetime(response.headers["Date"])
                seconds = (until - sent).total_seconds()
            except (KeyError, TypeError, ValueError):
                return None
        return max(seconds, 0.0)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def require_env(provider: str, env: Mapping[str, str], *names: str) -> tuple[str, ...]:
    """The values of `names` in `env`; `ProviderAuthError` naming those that are unset."""
    missing = tuple(n for n in names if not env.get(n))
    if missing:
        raise ProviderAuthError(
            provider,
            f"{' and '.join(missing)} not set; export {'them' if len(missing) > 1 else 'it'} "
            f"to use the {provider} provider",
            missing,
        )
    return tuple(env[n] for n in names)
