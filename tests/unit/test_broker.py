"""Broker state: snapshot/restore, change tracking, determinism."""

from __future__ import annotations

import pytest

from paper_broker.broker import PaperBroker
from paper_broker.errors import StateRestoreError
from paper_broker.records import Fill
from tests.factories import at, frictionless, make_broker, make_intent, make_quotes


def _session(broker: PaperBroker, minutes: range) -> list[Fill]:
    fills = []
    for m in minutes:
        mid = 100.0 + m
        broker.submit(
            [make_intent("A", "buy", 50), make_intent("B", "buy", 30, "limit", limit=mid - 0.5)],
            at(m),
        )
        fills += broker.process_quotes(make_quotes(["A", "B"], mid=mid, size=40, ts=at(m)), at(m))
    return fills


def test_snapshot_restore_continue_equals_never_stopping() -> None:
    config = frictionless(max_volume_share=0.5)
    straight = make_broker(config=config, marks={"A": 100, "B": 100})
    expected = _session(straight, range(6))

    first = make_broker(config=config, marks={"A": 100, "B": 100})
    before = _session(first, range(3))
    resumed = PaperBroker.from_state(first.snapshot(), config)
    after = _session(resumed, range(3, 6))

    assert before + after == expected
    assert resumed.account() == straight.account()
    assert resumed.snapshot() == straight.snapshot()


def test_snapshot_is_detached_from_the_live_broker() -> None:
    broker = make_broker(marks={"A": 100})
    broker.submit([make_intent("A", "buy", 10, "limit", limit=90)], at(0))
    state = broker.snapshot()

    broker.cancel(state.open_orders[0].order_id, at(1))

    assert state.open_orders[0].status == "accepted"


def test_restore_refuses_closed_orders_among_open_ones() -> None:
    broker = make_broker(marks={"A": 100})
    broker.submit([make_intent("A", "buy", 10, "limit", limit=90)], at(0))
    state = broker.snapshot()
    state.open_orders[0].status = "filled"  # type: ignore[assignment]

    with pytest.raises(StateRestoreError):
        PaperBroker.from_state(state)


def test_restored_broker_keeps_client_order_ids() -> None:
    broker = make_broker(marks={"A": 100})
    broker.submit([make_intent("A", "buy", 10, cid="x")], at(0))
    broker.process_quotes(make_quotes(["A"]), at(0))
    resumed = PaperBroker.from_state(broker.snapshot(), frictionless())

    result = resumed.submit([make_intent("A", "buy", 10, cid="x")], at(1))

    assert result.orders == [] and result.rejections[0].reason == "DUPLICATE_CLIENT_ORDER_ID"
    assert resumed.open_orders() == []


def test_drain_changes_returns_each_change_once() -> None:
    broker = make_broker(marks={"A": 100})
    broker.submit(
        [make_intent("A", "buy", 10), make_intent("A", "buy", 5, "limit", limit=1)], at(0)
    )
    broker.process_quotes(make_quotes(["A"]), at(0))

    first = broker.drain_changes()
    second = broker.drain_changes()

    assert [(o.quantity, o.status) for o in first.orders] == [(10, "filled"), (5, "accepted")]
    assert [f.quantity for f in first.fills] == [10]
    assert second.orders == [] and second.fills == []


def test_same_inputs_same_ids_and_prices() -> None:
    runs = []
    for _ in range(2):
        broker = make_broker(marks={"A": 100, "B": 100})
        fills = _session(broker, range(3))
        runs.append([(f.fill_id, f.order_id, f.price, f.quantity) for f in fills])

    assert runs[0] == runs[1] and runs[0]
