"""What an alert is: a row of the `alerts` outbox table, and which ones a user wants sent.

An alert is rendered once, written to the outbox in the same transaction as the interval that
caused it, and delivered afterwards. Its `alert_id` is derived from its content and time, so
re-running a committed interval renders the same id and the table's primary key dedupes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from papertrade.settings import AlertLevel, SlackSettings


class AlertKind(StrEnum):
    FILLS = "fills"
    RISK = "risk"
    KILL_SWITCH = "kill_switch"
    DATA_QUALITY = "data_quality"
    SUMMARY = "summary"
    GAP = "gap"


class AlertStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    PRINTED = "printed"
    FAILED = "failed"


LEVEL_RANK = {AlertLevel.INFO: 0, AlertLevel.WARNING: 1, AlertLevel.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """One outbox row. `payload_json` holds `{"blocks": [...]}` (Slack Block Kit) and, for a
    summary, `"chart_path"`; `text` is the plain fallback Slack shows in notifications.
    `created_at` is tz-aware UTC (the interval's `as_of`, or the end-of-day time)."""

    account_id: str
    alert_id: str
    created_at: datetime
    kind: AlertKind
    level: AlertLevel
    title: str
    text: str
    payload_json: str
    attempts: int = 0

    @property
    def payload(self) -> dict[str, Any]:
        loaded = json.loads(self.payload_json) if self.payload_json else {}
        return loaded if isinstance(loaded, dict) else {}

    @property
    def blocks(self) -> list[dict[str, Any]]:
        return list(self.payload.get("blocks", []))

    @property
    def chart_path(self) -> str | None:
        value = self.payload.get("chart_path")
        return str(value) if value else None

    def as_row(self) -> dict[str, Any]:
        """Column values for the `alerts` table, status pending."""
        return {
            "account_id": self.account_id,
            "alert_id": self.alert_id,
            "created_at": self.created_at,
            "kind": str(self.kind),
            "level": str(self.level),
            "title": self.title,
            "text": self.text,
            "payload_json": self.payload_json,
            "status": str(AlertStatus.PENDING),
            "attempts": self.attempts,
            "last_error": None,
            "sent_at": None,
            "slack_ts": None,
        }


def make_alert_id(kind: AlertKind, created_at: datetime, *parts: str) -> str:
    """`<kind>-<UTC yyyymmddThhmmss>-<12 hex of the content>`: stable across re-runs."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]
    return f"{kind}-{created_at.strftime('%Y%m%dT%H%M%S')}-{digest}"


_KIND_SWITCH = {
    AlertKind.FILLS: "send_fills",
    AlertKind.RISK: "send_risk",
    AlertKind.KILL_SWITCH: "send_risk",
    AlertKind.GAP: "send_data_quality",
    AlertKind.DATA_QUALITY: "send_data_quality",
    AlertKind.SUMMARY: "send_summary",
}


def is_wanted(kind: AlertKind, level: AlertLevel, slack: SlackSettings) -> bool:
    """Whether `[slack]` asks for this alert: its kind switched on and its level at least
    `min_level` (info < warning < critical). Kill-switch changes follow `send_risk`, gaps
    in the data follow `send_data_quality`."""
    if not getattr(slack, _KIND_SWITCH[AlertKind(kind)]):
        return False
    return LEVEL_RANK[AlertLevel(level)] >= LEVEL_RANK[slack.min_level]


def mrkdwn_escape(text: str) -> str:
    """`text` as Slack shows it literally: Slack reads `<...>` in message text and mrkdwn
    blocks as a mention, a link or a command (`<!channel>` pings everyone in the channel),
    and `&` starts an entity. An operator's kill-switch reason or a config's symbol is
    text, never markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
