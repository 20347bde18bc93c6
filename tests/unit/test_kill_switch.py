"""The kill switch's transition table, and continuing correctly across restarts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from paper_broker.enums import TradingState
from paper_broker.risk import RiskConfig, RiskGuard
from paper_broker.risk.kill_switch import (
    IllegalStateTransition,
    Trigger,
    can_transition,
    escalate,
    reset,
    transition,
)

A, R, H = TradingState.ACTIVE, TradingState.REDUCING, TradingState.HALTED
T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("current", "target", "trigger", "allowed"),
    [
        (A, R, Trigger.GUARD, True),
        (A, H, Trigger.GUARD, True),
        (R, H, Trigger.GUARD, True),
        (H, R, Trigger.GUARD, False),
        (R, A, Trigger.GUARD, False),
        (H, A, Trigger.GUARD, False),
        (H, R, Trigger.MANUAL, False),
        (A, H, Trigger.MANUAL, True),
        (R, A, Trigger.RESET, True),
        (H, A, Trigger.RESET, True),
        (A, H, Trigger.RESET, False),
    ],
)
def test_transition_table(current, target, trigger, allowed):
    assert can_transition(current, target, trigger) is allowed
    if allowed:
        assert transition(current, target, trigger) is target
    else:
        with pytest.raises(IllegalStateTransition):
            transition(current, target, trigger)


@pytest.mark.parametrize(
    ("current", "requested", "result"),
    [(A, R, R), (A, H, H), (R, H, H), (R, R, R), (H, R, H), (H, H, H)],
)
def test_a_guard_only_tightens(current, requested, result):
    assert escalate(current, requested) is result


@pytest.mark.parametrize("current", [A, R, H])
def test_manual_reset_returns_to_active(current):
    assert reset(current) is A


def _equity_path() -> list[tuple[float, float, float]]:
    """(equity, session start, peak) per interval: a slide into REDUCING, a recovery that must
    not relax it, a crash into HALTED, and another recovery."""
    return [
        (100_000, 100_000, 100_000),
        (96_000, 100_000, 100_000),
        (94_000, 100_000, 100_000),
        (99_000, 100_000, 100_000),
        (79_000, 100_000, 100_000),
        (101_000, 100_000, 101_000),
    ]


def _run(guard: RiskGuard, state: TradingState, restart: bool) -> list[tuple[str, int, bool]]:
    trail = []
    for k, (equity, start, peak) in enumerate(_equity_path()):
        if restart:  # persist as plain values, as a new process would read them back
            state = TradingState(json.loads(json.dumps({"state": state.value}))["state"])
            guard = RiskGuard(replace(guard.config))
        outcome = guard.evaluate_portfolio(equity, start, peak, state, T0 + timedelta(minutes=k))
        state = outcome.state
        trail.append((state.value, len(outcome.events), outcome.flatten))
    return trail


def test_the_machine_continues_identically_across_restarts():
    guard = RiskGuard(RiskConfig(flatten_on_halt=True))

    continuous = _run(guard, A, restart=False)
    restarted = _run(guard, A, restart=True)

    assert restarted == continuous
    assert continuous == [
        ("active", 0, False),
        ("active", 0, False),
        ("reducing", 1, False),
        ("reducing", 0, False),
        ("halted", 1, True),
        ("halted", 0, False),
    ]


def test_a_persisted_halt_is_not_lifted_by_a_healthy_portfolio():
    outcome = RiskGuard(RiskConfig()).evaluate_portfolio(1e6, 1e5, 1e6, TradingState("halted"), T0)

    assert outcome.state is H and outcome.events == []
