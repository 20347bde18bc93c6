"""The order lifecycle: which status may follow which. Anything else is a broken invariant.

NEW -> ACCEPTED | REJECTED
ACCEPTED -> ACCEPTED (replace) | PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
PARTIALLY_FILLED -> PARTIALLY_FILLED | FILLED | CANCELED | EXPIRED
FILLED, CANCELED, EXPIRED, REJECTED: terminal
"""

from __future__ import annotations

from datetime import datetime

from paper_broker.enums import OrderStatus
from paper_broker.errors import IllegalTransition
from paper_broker.records import Order

_S = OrderStatus

TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.NEW: frozenset({_S.ACCEPTED, _S.REJECTED}),
    _S.ACCEPTED: frozenset({_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.REJECTED: frozenset(),
}

# statuses that may take a fill, whole or partial
FILLABLE: frozenset[OrderStatus] = frozenset(
    s for s, targets in TRANSITIONS.items() if {_S.FILLED, _S.PARTIALLY_FILLED} <= targets
)


def can_transition(current: OrderStatus, target: OrderStatus) -> bool:
    return target in TRANSITIONS[current]


def transition(order: Order, target: OrderStatus, now: datetime) -> None:
    """Move `order` to `target` in place; raises IllegalTransition if the table forbids it."""
    if target not in TRANSITIONS[order.status]:
        raise IllegalTransition(order.order_id, order.status.value, target.value)
    order.status = target
    order.updated_at = now
