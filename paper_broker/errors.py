"""Exceptions for broken invariants only: rejected orders are values (see `Rejection`).

PaperBrokerError
 ├── IllegalTransition     an order asked to move where the transition table forbids
 ├── InvariantViolation    the ledger no longer reconciles
 └── StateRestoreError     a snapshot cannot be turned back into a broker
"""

from __future__ import annotations


class PaperBrokerError(Exception):
    """Base of every error the broker core raises."""


class IllegalTransition(PaperBrokerError):
    def __init__(self, order_id: str, current: str, target: str) -> None:
        super().__init__(f"order {order_id}: illegal transition {current} -> {target}")
        self.order_id = order_id
        self.current = current
        self.target = target


class InvariantViolation(PaperBrokerError):
    def __init__(self, invariant: str, expected: float, actual: float) -> None:
        super().__init__(f"{invariant}: expected {expected!r}, got {actual!r}")
        self.invariant = invariant
        self.expected = expected
        self.actual = actual


class StateRestoreError(PaperBrokerError):
    pass
