"""The kill switch's transition table, and continuing correctly across restarts."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from paper_broker.broker import PaperBroker
from paper_broker.enums import OrderStatus, TradingState
from paper_broker.risk import RiskConfig, RiskGuard, flatten_intents
from paper_broker.risk.kill_switch import (
    IllegalStateTransition,
    Trigger,
    can_transition,
    escalate,
    reset,
    transition,
)
from tests.factories import at, frictionless, make_broker, make_intent, make_quotes

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


def _resting_book() -> tuple[PaperBroker, dict[str, str]]:
    """Long 100 A; resting: a buy of A, a sell of 60 A, a sell of 150 A, a buy of B."""
    broker = make_broker(config=frictionless(allow_short=True), marks={"A": 100.0, "B": 50.0})
    broker.submit([make_intent("A", "buy", 100)], at(0))
    broker.process_quotes(make_quotes(["A", "B"], mid={"A": 100.0, "B": 50.0}), at(0))
    limits = {
        "grow": make_intent("A", "buy", 10, "limit", "gtc", limit=90.0),
        "shrink": make_intent("A", "sell", 60, "limit", "gtc", limit=120.0),
        "flip": make_intent("A", "sell", 150, "limit", "gtc", limit=130.0),
        "other": make_intent("B", "buy", 5, "limit", "gtc", limit=40.0),
    }
    accepted = broker.submit(list(limits.values()), at(1)).orders
    return broker, {name: o.order_id for name, o in zip(limits, accepted, strict=True)}


@pytest.mark.parametrize(
    ("state", "left"),
    [
        (TradingState.ACTIVE, {"grow", "shrink", "flip", "other"}),
        (TradingState.REDUCING, {"shrink"}),
        (TradingState.HALTED, set()),
    ],
)
def test_a_trading_state_cancels_the_resting_orders_it_forbids(
    state: TradingState, left: set[str]
) -> None:
    broker, ids = _resting_book()

    canceled = broker.cancel_for_state(state, at(2))

    still_open = {o.order_id for o in broker.open_orders()}
    assert still_open == {ids[name] for name in left}
    assert {o.order_id for o in canceled} == set(ids.values()) - still_open
    assert all(o.status is OrderStatus.CANCELED for o in canceled)


def test_reducing_keeps_resting_reductions_only_up_to_the_position() -> None:
    # long 100 A; three resting sells of 60, 30 and 20 in that priority
    broker = make_broker(config=frictionless(allow_short=True), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 100)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0), at(0))
    sells = [make_intent("A", "sell", q, "limit", "gtc", limit=110.0) for q in (60, 30, 20)]
    first, second, third = broker.submit(sells, at(1)).orders

    canceled = broker.cancel_for_state(TradingState.REDUCING, at(2))

    # 60 + 30 = 90 of the 100 held stay; 20 more would go short 10
    assert [o.order_id for o in canceled] == [third.order_id]
    assert [o.order_id for o in broker.open_orders()] == [first.order_id, second.order_id]
    broker.process_quotes(make_quotes(["A"], mid=111.0, spread_bps=0, ts=at(3)), at(3))
    assert [p.quantity for p in broker.positions()] == [10.0]


def test_reducing_refuses_a_new_order_that_goes_past_flat_with_a_resting_one() -> None:
    # long 100 A with a resting sell of 60: a new sell of 60 would leave the account short
    broker = make_broker(config=frictionless(allow_short=True), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 100)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0), at(0))
    broker.submit([make_intent("A", "sell", 60, "limit", "gtc", limit=110.0)], at(1))
    guard = RiskGuard(RiskConfig(allow_short=True))
    quotes = make_quotes(["A"], spread_bps=0, ts=at(2))

    too_far = guard.check([make_intent("A", "sell", 60)], broker.portfolio_view(), quotes, R,
                          now=at(2))  # fmt: skip
    within = guard.check([make_intent("A", "sell", 40)], broker.portfolio_view(), quotes, R,
                         now=at(2))  # fmt: skip

    assert [r.detail for r in too_far.rejections] == [
        "TRADING_REDUCING: reducing allows only orders that reduce a position"
    ]
    assert len(within.approved) == 1


def test_a_halt_keeps_the_rest_of_its_own_flatten_order_working() -> None:
    # long 900 A; the guard's halt sent a market sell of 900 that the volume cap filled 300
    # of: the next interval, still halted, canceled the flatten's rest with the other
    # resting orders, and the halted account kept 600 shares for good
    broker = make_broker(config=frictionless(max_volume_share=0.1), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 900)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0, volume=1e9), at(0))
    (flatten,) = broker.submit(flatten_intents(broker.portfolio_view()), at(1)).orders
    (resting,) = broker.submit(
        [make_intent("A", "buy", 10, "limit", "gtc", limit=80.0)], at(1)
    ).orders
    broker.process_quotes(make_quotes(["A"], spread_bps=0, volume=3_000, ts=at(1)), at(1))
    assert broker.positions()[0].quantity == 600.0

    canceled = broker.cancel_for_state(TradingState.HALTED, at(2))

    assert [o.order_id for o in canceled] == [resting.order_id]
    assert [o.order_id for o in broker.open_orders()] == [flatten.order_id]


def test_the_rest_of_a_flatten_outlives_the_close() -> None:
    # halted at the session's last interval with 600 of 900 left to sell: the day order
    # expired at the close and the halted account held 600 shares for good
    broker = make_broker(config=frictionless(max_volume_share=0.1), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 900)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0, volume=1e9), at(0))
    (flatten,) = broker.submit(flatten_intents(broker.portfolio_view()), at(1)).orders
    broker.process_quotes(make_quotes(["A"], spread_bps=0, volume=3_000, ts=at(1)), at(1))

    expired = broker.expire_day_orders(at(2))

    assert expired == [] and [o.order_id for o in broker.open_orders()] == [flatten.order_id]
