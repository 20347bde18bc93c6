"""The kill switch: a pure state machine over `TradingState` with an explicit transition table.

    ACTIVE ──guard/manual──> REDUCING ──guard/manual──> HALTED
      │                                                   ^
      └──────────────────guard/manual─────────────────────┘
    REDUCING, HALTED ──manual reset──> ACTIVE

A guard only ever tightens: it never relaxes the state, and HALTED never goes back to
REDUCING by a guard. Only a manual reset returns to ACTIVE. The state itself is a plain
string (`TradingState.value`) that the caller persists between runs; feeding it back in
continues the machine exactly (there is no hidden state here).
"""

from __future__ import annotations

from enum import StrEnum

from paper_broker.enums import TradingState
from paper_broker.errors import PaperBrokerError


class Trigger(StrEnum):
    GUARD = "guard"  # a portfolio guard breached
    MANUAL = "manual"  # `papertrade kill-switch on`
    RESET = "reset"  # `papertrade kill-switch off`


A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED

TRANSITIONS: dict[tuple[TradingState, TradingState], frozenset[Trigger]] = {
    (A, R): frozenset({Trigger.GUARD, Trigger.MANUAL}),
    (A, H): frozenset({Trigger.GUARD, Trigger.MANUAL}),
    (R, H): frozenset({Trigger.GUARD, Trigger.MANUAL}),
    (R, A): frozenset({Trigger.RESET}),
    (H, A): frozenset({Trigger.RESET}),
}

# how tight each state is; a guard moves only towards tighter
SEVERITY = {A: 0, R: 1, H: 2}


class IllegalStateTransition(PaperBrokerError):
    def __init__(self, current: TradingState, target: TradingState, trigger: Trigger) -> None:
        super().__init__(f"kill switch: {trigger} cannot move {current} -> {target}")
        self.current = current
        self.target = target
        self.trigger = trigger


def can_transition(current: TradingState, target: TradingState, trigger: Trigger) -> bool:
    """True when the table allows `trigger` to move `current` to `target` (staying is allowed)."""
    return current is target or trigger in TRANSITIONS.get((current, target), frozenset())


def transition(current: TradingState, target: TradingState, trigger: Trigger) -> TradingState:
    """The new state; raises `IllegalStateTransition` for a move the table forbids."""
    if not can_transition(current, target, trigger):
        raise IllegalStateTransition(current, target, trigger)
    return target


def escalate(current: TradingState, requested: TradingState) -> TradingState:
    """What a breached guard that asks for `requested` does: move there when that is tighter
    and allowed, else stay (a guard never relaxes and never raises)."""
    if SEVERITY[requested] > SEVERITY[current] and can_transition(
        current, requested, Trigger.GUARD
    ):
        return requested
    return current


def reset(current: TradingState) -> TradingState:
    """A manual reset: back to ACTIVE from anywhere."""
    return transition(current, TradingState.ACTIVE, Trigger.RESET)
