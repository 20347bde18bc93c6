"""Account totals and buying power, hand-computed."""

from __future__ import annotations

import pytest

from paper_broker.enums import RejectReason
from tests.factories import at, frictionless, make_broker, make_intent, make_quotes


def test_account_totals_after_long_and_short() -> None:
    broker = make_broker(
        100_000, frictionless(allow_short=True, margin_multiplier=2.0), marks={"A": 50, "B": 20}
    )
    broker.submit([make_intent("A", "buy", 100), make_intent("B", "sell", 200)], at(0))
    broker.process_quotes(make_quotes(["A", "B"], mid=[50, 20], spread_bps=0), at(0))
    broker.mark({"A": 55.0, "B": 21.0})

    acct = broker.account()

    # cash = 100000 - 5000 + 4000; long 5500, short -4200
    assert acct.cash == pytest.approx(99_000)
    assert acct.positions_value == pytest.approx(1_300)
    assert acct.equity == pytest.approx(100_300)
    assert acct.gross_exposure == pytest.approx(9_700)
    assert acct.net_exposure == pytest.approx(1_300)
    assert acct.unrealized_pnl == pytest.approx(500 - 200)
    # 100300 x 2 - 9700
    assert acct.buying_power == pytest.approx(190_900)


def test_cash_account_buying_power_is_cash_less_open_buys() -> None:
    broker = make_broker(10_000, marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 30, "limit", limit=100.0)], at(0))

    assert broker.account().buying_power == pytest.approx(7_000)
    result = broker.submit([make_intent("A", "buy", 71)], at(0))

    assert [r.reason for r in result.rejections] == [RejectReason.INSUFFICIENT_BUYING_POWER]
    assert "buying power 7000.00" in result.rejections[0].detail


def test_margin_multiplier_raises_buying_power() -> None:
    broker = make_broker(10_000, frictionless(margin_multiplier=2.0), marks={"A": 100.0})

    result = broker.submit([make_intent("A", "buy", 150)], at(0))

    assert result.rejections == []


def test_selling_a_long_needs_no_buying_power() -> None:
    broker = make_broker(10_000, marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 100)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0), at(0))

    result = broker.submit([make_intent("A", "sell", 100)], at(1))

    assert broker.account().buying_power == pytest.approx(0.0)
    assert result.rejections == []


def test_portfolio_view_matches_account() -> None:
    broker = make_broker(marks={"A": 100.0})
    broker.submit(
        [make_intent("A", "buy", 10), make_intent("A", "buy", 1, "limit", limit=1.0)], at(0)
    )
    broker.process_quotes(make_quotes(["A"], spread_bps=0), at(0))

    view = broker.portfolio_view()

    assert view.positions == {"A": 10.0}
    assert view.avg_cost == {"A": 100.0}
    assert view.equity == pytest.approx(broker.account().equity)
    assert view.open_order_count == 1


@pytest.mark.parametrize("batch", [1, 2], ids=["array_path", "one_by_one_path"])
def test_a_flip_to_a_smaller_position_needs_no_buying_power(batch: int) -> None:
    # fully invested: 10000 cash bought 100 A at 100, buying power 0
    broker = make_broker(10_000, frictionless(allow_short=True), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 100)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0), at(0))
    assert broker.account().buying_power == pytest.approx(0.0)

    # sell 150: long 100 -> short 50; gross exposure falls from 10000 to 5000
    # (an invalid second intent sends the batch through the one-by-one checks)
    intents = [make_intent("A", "sell", 150), make_intent("B", "buy", 0)][:batch]
    result = broker.submit(intents, at(1))
    assert [o.quantity for o in result.orders] == [150.0]
    broker.process_quotes(make_quotes(["A"], spread_bps=0, ts=at(1)), at(1))

    acct = broker.account()
    assert broker.positions()[0].quantity == -50.0
    # cash 0 + 15000, equity 15000 - 5000, buying power 10000 - 5000
    assert acct.cash == pytest.approx(15_000)
    assert acct.equity == pytest.approx(10_000)
    assert acct.buying_power == pytest.approx(5_000)


def test_a_flip_to_a_larger_position_needs_buying_power_for_the_growth() -> None:
    broker = make_broker(10_000, frictionless(allow_short=True), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 100)], at(0))
    broker.process_quotes(make_quotes(["A"], spread_bps=0), at(0))

    # long 100 -> short 101: |position| grows by 1 share, 100.00 of gross exposure
    result = broker.submit([make_intent("A", "sell", 201)], at(1))

    assert [r.reason for r in result.rejections] == [RejectReason.INSUFFICIENT_BUYING_POWER]
    assert result.rejections[0].detail == "needs 100.00, buying power 0.00"
