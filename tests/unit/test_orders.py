"""Order lifecycle: validation, time in force, cancel/replace, idempotent client ids."""

from __future__ import annotations

import pytest

from paper_broker.enums import OrderStatus, RejectReason
from paper_broker.errors import IllegalTransition
from paper_broker.lifecycle import TRANSITIONS, transition
from paper_broker.records import Order, Rejection
from tests.factories import at, frictionless, make_broker, make_intent, make_quotes


def test_terminal_statuses_refuse_every_move() -> None:
    broker = make_broker(marks={"A": 100.0})
    [order] = broker.submit([make_intent("A")], at(0)).orders
    broker.process_quotes(make_quotes(["A"]), at(0))

    with pytest.raises(IllegalTransition):
        transition(order, OrderStatus.CANCELED, at(1))
    assert all(not TRANSITIONS[s] for s in ("filled", "canceled", "expired", "rejected"))


@pytest.mark.parametrize(
    ("intent", "reason"),
    [
        (make_intent(quantity=0), RejectReason.INVALID_QUANTITY),
        (make_intent(quantity=float("nan")), RejectReason.INVALID_QUANTITY),
        (make_intent(order_type="limit"), RejectReason.MISSING_LIMIT_PRICE),
        (make_intent(order_type="stop"), RejectReason.MISSING_STOP_PRICE),
        (make_intent(order_type="limit", limit=-1.0), RejectReason.INVALID_PRICE),
        (make_intent(limit=10.0), RejectReason.INVALID_PRICE),
        (make_intent(symbol="UNMARKED"), RejectReason.NO_VALID_QUOTE),
        (make_intent(side="sell"), RejectReason.SHORT_SELLING_NOT_ALLOWED),
        (make_intent(quantity=2_000), RejectReason.INSUFFICIENT_BUYING_POWER),
    ],
)
def test_bad_orders_are_rejected_with_a_reason(intent, reason: RejectReason) -> None:
    broker = make_broker(cash=100_000, marks={"AAPL": 100.0})

    result = broker.submit([intent], at(0))

    assert result.orders == []
    assert [r.reason for r in result.rejections] == [reason]
    [recorded] = broker.drain_changes().orders
    assert (recorded.status, recorded.reject_reason) == ("rejected", reason.value)


def test_client_order_id_is_idempotent() -> None:
    broker = make_broker(marks={"A": 100.0})
    first = broker.submit([make_intent("A", cid="c-1")], at(0)).orders[0]

    again = broker.submit([make_intent("A", quantity=5, cid="c-1")], at(1))

    assert again.orders == [first]
    assert len(broker.open_orders()) == 1


def test_missing_client_order_id_is_deterministic() -> None:
    ids = []
    for _ in range(2):
        broker = make_broker(marks={"A": 100.0})
        ids.append([o.client_order_id for o in broker.submit([make_intent("A")] * 2, at(0)).orders])

    assert ids[0] == ids[1] == ["test-auto-00000001", "test-auto-00000002"]


def test_day_orders_expire_and_gtc_survive() -> None:
    broker = make_broker(marks={"A": 100.0})
    broker.submit(
        [make_intent("A", order_type="limit", limit=90.0, tif=tif) for tif in ("day", "gtc")],
        at(0),
    )

    expired = broker.expire_day_orders(at(390))

    assert [(o.time_in_force, o.status) for o in expired] == [("day", "expired")]
    assert [o.time_in_force for o in broker.open_orders()] == ["gtc"]


def test_ioc_fills_what_it_can_and_cancels_the_rest() -> None:
    broker = make_broker(marks={"A": 100.0})
    [order] = broker.submit([make_intent("A", quantity=300, tif="ioc")], at(0)).orders

    fills = broker.process_quotes(make_quotes(["A"], size=100), at(0))

    assert [f.quantity for f in fills] == [100.0]
    assert (order.status, order.filled_quantity) == ("canceled", 100.0)


def test_fok_fills_all_or_nothing() -> None:
    broker = make_broker(marks={"A": 100.0})
    small, big = broker.submit(
        [make_intent("A", quantity=100, tif="fok"), make_intent("A", quantity=300, tif="fok")],
        at(0),
    ).orders

    fills = broker.process_quotes(make_quotes(["A"], size=250), at(0))

    assert [f.order_id for f in fills] == [small.order_id]
    assert (big.status, big.filled_quantity, big.reject_reason) == (
        "canceled", 0.0, "FOK_NOT_FILLABLE",
    )  # fmt: skip


def test_cancel_open_order_then_cancel_again_is_a_rejection() -> None:
    broker = make_broker(marks={"A": 100.0})
    [order] = broker.submit([make_intent("A", order_type="limit", limit=90.0)], at(0)).orders

    canceled = broker.cancel(order.order_id, at(1))
    again = broker.cancel(order.order_id, at(2))
    unknown = broker.cancel("nope", at(2))

    assert isinstance(canceled, Order) and canceled.status == "canceled"
    assert isinstance(again, Rejection) and again.reason is RejectReason.ORDER_NOT_OPEN
    assert isinstance(unknown, Rejection) and unknown.reason is RejectReason.UNKNOWN_ORDER


def test_replace_changes_quantity_and_limit_in_place() -> None:
    broker = make_broker(marks={"A": 100.0})
    [order] = broker.submit([make_intent("A", "buy", 10, "limit", limit=90.0)], at(0)).orders

    replaced = broker.replace(order.order_id, at(1), quantity=20, limit_price=100.5)
    fills = broker.process_quotes(make_quotes(["A"], spread_bps=10), at(1))

    assert isinstance(replaced, Order) and replaced.order_id == order.order_id
    assert [(f.quantity, f.price) for f in fills] == [(20.0, 100.05)]


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"quantity": 0.0}, RejectReason.INVALID_QUANTITY),
        ({"stop_price": 95.0}, RejectReason.INVALID_PRICE),  # a limit order has no stop
        ({"quantity": 5_000, "limit_price": 95.0}, RejectReason.INSUFFICIENT_BUYING_POWER),
    ],
)
def test_bad_replacements_are_rejected(kwargs: dict, reason: RejectReason) -> None:
    broker = make_broker(cash=10_000, marks={"A": 100.0})
    [order] = broker.submit([make_intent("A", "buy", 10, "limit", limit=90.0)], at(0)).orders

    result = broker.replace(order.order_id, at(1), **kwargs)

    assert isinstance(result, Rejection) and result.reason is reason
    assert (order.quantity, order.limit_price) == (10, 90.0)


def test_partially_filled_order_can_be_canceled() -> None:
    broker = make_broker(marks={"A": 100.0})
    [order] = broker.submit([make_intent("A", quantity=300)], at(0)).orders
    broker.process_quotes(make_quotes(["A"], size=100), at(0))

    broker.cancel(order.order_id, at(1))

    assert (order.status, order.filled_quantity) == ("canceled", 100.0)


@pytest.mark.parametrize(
    ("quantity", "needs"),
    [
        # long 50 -> short 70: |position| grows by 20 at the limit 120, 2400 of 5000
        (120.0, None),
        # long 50 -> short 100: grows by 50, 6000
        (150.0, "amendment needs 6000.00 more, buying power 5000.00"),
    ],
)
def test_replacing_a_sell_into_a_short_needs_buying_power(
    quantity: float, needs: str | None
) -> None:
    broker = make_broker(10_000, frictionless(allow_short=True), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 50)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0), at(0))
    [order] = broker.submit([make_intent("A", "sell", 10, "limit", limit=120.0)], at(1)).orders
    assert broker.account().buying_power == pytest.approx(5_000)

    result = broker.replace(order.order_id, at(1), quantity=quantity)

    if needs is None:
        assert isinstance(result, Order) and result.quantity == quantity
        assert broker.account().buying_power == pytest.approx(5_000 - 20 * 120.0)
    else:
        assert isinstance(result, Rejection)
        assert result.reason is RejectReason.INSUFFICIENT_BUYING_POWER
        assert result.detail == needs
        assert order.quantity == 10


@pytest.mark.parametrize("batch", [1, 2], ids=["one order", "a batch"])
def test_an_account_without_buying_power_can_still_sell_what_it_holds(batch: int) -> None:
    # the buy was reserved at the mark (100) and filled at the ask (101): cash is -100
    broker = make_broker(cash=10_000.0, marks={"A": 100.0, "B": 100.0})
    broker.submit([make_intent("A", "buy", 100)], at(0))
    broker.process_quotes(make_quotes(["A"], mid=100.5, spread_bps=100, ts=at(0)), at(0))
    assert broker.account().cash < 0 and broker.account().buying_power == 0.0

    sells = [make_intent("A", "sell", 100 / batch) for _ in range(batch)]
    result = broker.submit(sells, at(1))
    refused = broker.submit([make_intent("B", "buy", 1)], at(1))

    assert result.rejections == [] and len(result.orders) == batch
    assert [r.reason for r in refused.rejections] == [RejectReason.INSUFFICIENT_BUYING_POWER]
