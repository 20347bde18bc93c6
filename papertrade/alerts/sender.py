"""Delivering one alert: to Slack (bot token or incoming webhook) or to the console.

`build_sender` picks the channel from the environment when it is called, never at import:
`SLACK_BOT_TOKEN` -> `chat.postMessage` with Block Kit to `[slack] channel` (and the summary
chart through `files_upload_v2`), else `SLACK_WEBHOOK_URL` -> the incoming webhook, else the
console (the demo's default). `[slack] base_url` points the bot client at a proxy or a test
server.

A sender never raises for Slack trouble: it returns a `SendResult` whose `error` is scrubbed of
the token and the webhook URL (the webhook URL is itself a credential). slack_sdk logs request
headers at DEBUG, so its clients get a logger pinned at INFO, whatever the root level is, and
the URL of a request it retries at INFO, so that logger scrubs the secrets from its lines.

Connection errors are retried inside slack_sdk by `ConnectionErrorRetryHandler`, `[slack]
max_retries` times. A rate limit (HTTP 429) comes back at once, with the seconds of Slack's
`Retry-After` in `SendResult.retry_after`: slack_sdk's own handler sleeps whatever Slack asks
(30 s, twice, inside the interval's flow run), so the delivery loop decides whether the wait
fits in its time (`outbox.DeliveryLimits`).
`chat.postMessage` has no idempotency key: a timeout after Slack accepted the message is
indistinguishable from a lost request, so such a message stays pending and may be posted a
second time on the next delivery. The window is one message wide.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from papertrade.alerts.records import AlertRecord, mrkdwn_escape
from papertrade.settings import SlackSettings

log = logging.getLogger("papertrade.alerts")

TOKEN_ENV = "SLACK_BOT_TOKEN"
WEBHOOK_ENV = "SLACK_WEBHOOK_URL"

# Slack error codes that are about this one message: it will never be accepted, so it is
# set aside as failed instead of blocking the queue. Everything else (auth, channel, rate
# limits, outages) is about the connection and leaves the message pending. An incoming
# webhook says `invalid_payload` (HTTP 400) where the Web API names the part.
MESSAGE_ERRORS = frozenset(
    {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments",
     "too_many_attachments", "invalid_attachments", "invalid_payload"}
)  # fmt: skip
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "service_unavailable", "fatal_error", "internal_error",
     "request_timeout"}
)  # fmt: skip

_SECRET_PATTERNS = [
    re.compile(r"xox[abposre]-[A-Za-z0-9-]+"),
    re.compile(r"https?://hooks\.slack\.com/\S+"),
]


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of one delivery. `ts` is Slack's message timestamp (its id) when known;
    `code` the Slack error code (`invalid_auth`, `ratelimited`, ...) or an exception's
    class name; `retryable` says whether trying again later may succeed without a fix;
    `retry_after` the seconds a rate limit (HTTP 429) asks to wait before the next post."""

    ok: bool
    ts: str | None = None
    error: str | None = None
    retryable: bool = False
    code: str | None = None
    printed: bool = False
    retry_after: float | None = None

    @property
    def message_rejected(self) -> bool:
        """Slack refused this message itself; resending it cannot help."""
        return not self.ok and self.code in MESSAGE_ERRORS


class Sender(Protocol):
    def send(self, alert: AlertRecord) -> SendResult: ...


def scrub(text: str, *secrets: str | None) -> str:
    """`text` without the given secrets or anything shaped like a Slack token/webhook URL."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub("***", text)
    return text


class ConsoleSender:
    """Prints alerts (no Slack configured): to `print_fn` and the log, marked `printed`.
    Standard error by default, as Slack stands beside a command's output: a command's
    `--json` stays one JSON document."""

    def __init__(self, print_fn: Any = None) -> None:
        self._print = print_fn or functools.partial(print, file=sys.stderr)

    def send(self, alert: AlertRecord) -> SendResult:
        line = f"[{alert.level}] {alert.kind}: {alert.text}"
        self._print(line)
        log.info("alert %s printed: %s", alert.alert_id, alert.title)
        return SendResult(ok=True, printed=True)


class _ScrubSecrets(logging.Filter):
    """slack_sdk logs the request's URL when it retries ("Going to retry the same request:
    POST <url>"), and a webhook's URL is its credential: the secrets of every sender built
    in this process are taken out of its log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = scrub(text, *self.secrets)
        if clean != text:
            record.msg, record.args = clean, None
        return True


_SCRUB_SECRETS = _ScrubSecrets()


def _quiet_logger(secret: str) -> logging.Logger:
    # slack_sdk writes request headers (the bearer token) at DEBUG; never let it.
    quiet = logging.getLogger("papertrade.alerts.slack_sdk")
    quiet.setLevel(logging.INFO)
    _SCRUB_SECRETS.secrets.add(secret)
    if _SCRUB_SECRETS not in quiet.filters:
        quiet.addFilter(_SCRUB_SECRETS)
    return quiet


def _retry_handlers(max_retries: int, backoff_seconds: float) -> list[Any]:
    # no RateLimitErrorRetryHandler: a 429 is the delivery loop's to wait out, or not
    from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
    from slack_sdk.http_retry.builtin_interval_calculators import (
        BackoffRetryIntervalCalculator,
    )

    return [
        ConnectionErrorRetryHandler(
            max_retry_count=max_retries,
            interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=backoff_seconds),
        ),
    ]


class SlackBotSender:
    """`chat.postMessage` with the alert's blocks and fallback text to one channel; for a
    summary with a chart, the PNG follows in the message's thread via `files_upload_v2`.
    A failed chart upload does not undo the posted message: the result is ok with an
    `error` note, so the message is never re-sent for it."""

    def __init__(
        self,
        token: str,
        channel: str,
        *,
        base_url: str | None = None,
        timeout_seconds: float = 10.0,
        max_retries: int = 2,
        retry_backoff_seconds: float = 0.5,
    ) -> None:
        from slack_sdk import WebClient

        kwargs: dict[str, Any] = {}
        if base_url:
            # WebClient joins method names onto base_url; it must end with a slash.
            kwargs["base_url"] = base_url if base_url.endswith("/") else base_url + "/"
        self._token = token
        self._channel = channel
        self._client = WebClient(
            token=token,
            timeout=timeout_seconds,  # type: ignore[arg-type]  # urllib takes float seconds
            logger=_quiet_logger(token),
            retry_handlers=_retry_handlers(max_retries, retry_backoff_seconds),
            **kwargs,
        )

    def send(self, alert: AlertRecord) -> SendResult:
        try:
            response = self._client.chat_postMessage(
                channel=self._channel, text=mrkdwn_escape(alert.text), blocks=alert.blocks or None
            )
        except Exception as exc:  # every Slack failure becomes a value
            return _failure(exc, self._token)
        ts = response.get("ts")
        note = None
        chart = alert.chart_path
        if chart:
            note = self._upload_chart(Path(chart), response.get("channel") or self._channel, ts)
        return SendResult(ok=True, ts=ts, error=note)

    def _upload_chart(self, path: Path, channel: str, thread_ts: str | None) -> str | None:
        if not path.is_file():
            return f"chart not found: {path.name}"
        try:
            self._client.files_upload_v2(
                file=str(path), filename=path.name, title=path.stem, channel=channel,
                thread_ts=thread_ts,
            )  # fmt: skip
        except Exception as exc:
            return "chart upload failed: " + (_failure(exc, self._token).error or "")
        return None


class SlackWebhookSender:
    """An incoming webhook: blocks and text, no message ts and no file uploads (webhooks
    cannot carry files; a summary's chart is left out). `WebhookClient` returns 429 as a
    response instead of raising, so its status is checked here."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = 10.0,
        max_retries: int = 2,
        retry_backoff_seconds: float = 0.5,
    ) -> None:
        from slack_sdk.webhook import WebhookClient

        self._url = url
        self._client = WebhookClient(
            url,
            timeout=timeout_seconds,  # type: ignore[arg-type]
            logger=_quiet_logger(url),
            retry_handlers=_retry_handlers(max_retries, retry_backoff_seconds),
        )

    def send(self, alert: AlertRecord) -> SendResult:
        try:
            response = self._client.send(
                text=mrkdwn_escape(alert.text), blocks=alert.blocks or None
            )
        except Exception as exc:
            return _failure(exc, self._url)
        if response.status_code == 200:
            return SendResult(ok=True)
        body = scrub(str(response.body or ""), self._url)[:200]
        code = "ratelimited" if response.status_code == 429 else body or str(response.status_code)
        wait = _retry_after(response.status_code, response.headers)
        hint = _WEBHOOK_HINTS.get(body.strip(), "") + _wait_note(wait)
        return SendResult(
            ok=False,
            error=f"webhook HTTP {response.status_code}: {body}{hint}",
            retryable=response.status_code == 429 or response.status_code >= 500,
            code=code,
            retry_after=wait,
        )


# what to fix for the errors a setting causes (Slack's codes name the symptom only)
_HINTS = {
    "invalid_auth": ": check SLACK_BOT_TOKEN",
    "not_authed": ": check SLACK_BOT_TOKEN",
    "token_revoked": ": SLACK_BOT_TOKEN was revoked",
    "account_inactive": ": SLACK_BOT_TOKEN belongs to a deactivated app or user",
    "channel_not_found": ": check [slack] channel, and invite the app to it",
    "not_in_channel": ": invite the app to [slack] channel",
    "missing_scope": ": the app needs the chat:write scope (files:write for charts)",
}


# the same for an incoming webhook, whose errors are plain-text bodies with a 4xx status;
# the webhook's URL is the setting, and a new one is made in Slack's app settings
_WEBHOOK_FIX = "set SLACK_WEBHOOK_URL to a webhook of a channel the app can post to"
_WEBHOOK_HINTS = {
    "invalid_token": ": the webhook was revoked; " + _WEBHOOK_FIX,
    "no_service": ": the webhook is disabled or mistyped; check SLACK_WEBHOOK_URL",
    "no_service_id": ": check SLACK_WEBHOOK_URL",
    "no_team": ": check SLACK_WEBHOOK_URL",
    "team_disabled": ": the workspace of SLACK_WEBHOOK_URL is disabled",
    "channel_not_found": ": the webhook's channel is gone; " + _WEBHOOK_FIX,
    "channel_is_archived": ": the webhook's channel is archived; unarchive it, or " + _WEBHOOK_FIX,
    "action_prohibited": ": an admin restricted the webhook's channel; " + _WEBHOOK_FIX,
    "posting_to_general_channel_denied": ": only admins post to the webhook's channel; "
    + _WEBHOOK_FIX,
}


def _failure(exc: BaseException, *secrets: str | None) -> SendResult:
    from slack_sdk.errors import SlackApiError

    if isinstance(exc, SlackApiError):
        data = getattr(exc.response, "data", None)
        code = str(data.get("error", "")) if isinstance(data, Mapping) else ""
        status = getattr(exc.response, "status_code", None)
        retryable = code in RETRYABLE_ERRORS or status == 429 or (status or 0) >= 500
        wait = _retry_after(status, getattr(exc.response, "headers", None))
        hint = _HINTS.get(code, "") + _wait_note(wait)
        return SendResult(
            ok=False,
            error=scrub(f"slack error {code or status}{hint}", *secrets),
            retryable=retryable,
            code=code or str(status),
            retry_after=wait,
        )
    # Connection refused, DNS, timeouts: the message may or may not have arrived (timeouts),
    # either way it stays pending and is tried again later.
    reason = getattr(exc, "reason", None) or exc
    return SendResult(
        ok=False,
        error=scrub(f"{type(exc).__name__}: {reason}", *secrets)[:300],
        retryable=True,
        code=type(exc).__name__,
    )


def _retry_after(status: int | None, headers: Mapping[str, Any] | None) -> float | None:
    """The seconds a 429 asks to wait: Slack's `Retry-After` (delta-seconds; a header may
    hold a list of values), 1 s when it names none or none that reads, as slack_sdk assumed.
    None for any other answer."""
    if status != 429:
        return None
    value = next((v for k, v in (headers or {}).items() if k.lower() == "retry-after"), None)
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    try:
        return max(float(value), 0.0)  # type: ignore[arg-type]  # None or junk: the fallback
    except (TypeError, ValueError):
        return 1.0


def _wait_note(wait: float | None) -> str:
    return "" if wait is None else f": retry after {wait:g} s"


def build_sender(
    slack: SlackSettings,
    env: Mapping[str, str] | None = None,
    *,
    retry_backoff_seconds: float = 0.5,
) -> Sender:
    """The sender `[slack]` and the environment ask for (read now, not at import)."""
    env = os.environ if env is None else env
    token = env.get(TOKEN_ENV, "").strip()
    webhook = env.get(WEBHOOK_ENV, "").strip()
    if token:
        return SlackBotSender(
            token,
            slack.channel,
            base_url=slack.base_url,
            timeout_seconds=slack.timeout_seconds,
            max_retries=slack.max_retries,
            retry_backoff_seconds=retry_backoff_seconds,
        )
    if webhook:
        return SlackWebhookSender(
            webhook,
            timeout_seconds=slack.timeout_seconds,
            max_retries=slack.max_retries,
            retry_backoff_seconds=retry_backoff_seconds,
        )
    return ConsoleSender()
