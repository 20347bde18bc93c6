"""RiskEvent: a breached rule or a kill-switch state change, as a value the caller persists
(`risk_events` table) and turns into alerts."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from paper_broker.enums import TradingState


def risk_event_id(ts: datetime, rule: str, symbol: str, key: str = "") -> str:
    """Deterministic id: the same breach at the same `ts` gets the same id, so a retried
    interval writes the same rows and the warehouse dedupes them. `key` separates events
    that share (ts, rule, symbol), e.g. the intent's client order id or batch position."""
    raw = f"{ts.isoformat()}|{rule}|{symbol}|{key}"
    return "rev-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass(frozen=True, slots=True)
class RiskEvent:
    """One breach or state change. `value` is the measured number and `limit_value` the
    limit it was held against (NaN when not numeric); `state_before`/`state_after` are the
    trading state around the event (equal when the state did not move)."""

    event_id: str
    ts: datetime
    rule: str
    symbol: str
    reason: str
    detail: str
    value: float
    limit_value: float
    state_before: TradingState
    state_after: TradingState

    @property
    def changed_state(self) -> bool:
        return self.state_before is not self.state_after

    def as_row(self) -> dict[str, Any]:
        """Plain values for a table row: enums as their strings."""
        row = asdict(self)
        row["state_before"] = self.state_before.value
        row["state_after"] = self.state_after.value
        return row
