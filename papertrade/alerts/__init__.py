"""Slack alerts through an outbox: pure renderers, senders (Slack bot, webhook, console),
and the delivery loop. Importing the package loads neither slack_sdk nor DuckDB."""

from papertrade.alerts.outbox import (
    DeliveryLimits,
    DeliveryReport,
    DuckDBOutbox,
    deliver,
    deliver_pending,
)
from papertrade.alerts.records import AlertKind, AlertRecord, AlertStatus, is_wanted
from papertrade.alerts.render import (
    render_dq_alert,
    render_fills_alert,
    render_kill_switch_alert,
    render_risk_alert,
    render_risk_alerts,
    render_summary_alert,
)
from papertrade.alerts.sender import SendResult, build_sender

__all__ = [
    "AlertKind",
    "AlertRecord",
    "AlertStatus",
    "DeliveryLimits",
    "DeliveryReport",
    "DuckDBOutbox",
    "SendResult",
    "build_sender",
    "deliver",
    "deliver_pending",
    "is_wanted",
    "render_dq_alert",
    "render_fills_alert",
    "render_kill_switch_alert",
    "render_risk_alert",
    "render_risk_alerts",
    "render_summary_alert",
]
