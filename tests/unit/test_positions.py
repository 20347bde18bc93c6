"""Positions: average cost, realized P&L, flips, shorts, disappearing at zero."""

from __future__ import annotations

import pytest

from paper_broker.broker import PaperBroker
from tests.factories import at, frictionless, make_broker, make_intent, make_quotes


def _trade(broker: PaperBroker, side: str, qty: float, price: float, minute: int) -> None:
    broker.mark({"A": price})
    broker.submit([make_intent("A", side, qty)], at(minute))
    fills = broker.process_quotes(
        make_quotes(["A"], mid=price, spread_bps=0, ts=at(minute)), at(minute)
    )
    assert [f.price for f in fills] == [price]


def _position(broker: PaperBroker) -> tuple[float, float, float]:
    [p] = broker.positions()
    return p.quantity, p.avg_cost, p.realized_pnl


def test_increase_averages_cost() -> None:
    broker = make_broker()
    _trade(broker, "buy", 100, 10.0, 0)
    _trade(broker, "buy", 300, 12.0, 1)

    # (100 x 10 + 300 x 12) / 400 = 11.5
    assert _position(broker) == pytest.approx((400, 11.5, 0.0))


def test_reduction_realizes_pnl_and_keeps_cost() -> None:
    broker = make_broker()
    _trade(broker, "buy", 100, 10.0, 0)
    _trade(broker, "sell", 40, 13.0, 1)

    # 40 x (13 - 10) = 120
    assert _position(broker) == pytest.approx((60, 10.0, 120.0))


def test_flip_long_to_short_closes_and_reopens_at_the_fill() -> None:
    broker = make_broker(config=frictionless(allow_short=True, margin_multiplier=2.0))
    _trade(broker, "buy", 100, 10.0, 0)
    _trade(broker, "sell", 150, 9.0, 1)

    # close 100 at -1 each = -100, open short 50 at 9
    assert _position(broker) == pytest.approx((-50, 9.0, -100.0))


def test_short_cover_realizes_inverse_pnl() -> None:
    broker = make_broker(config=frictionless(allow_short=True, margin_multiplier=2.0))
    _trade(broker, "sell", 100, 20.0, 0)
    _trade(broker, "buy", 100, 18.0, 1)

    assert broker.positions() == []
    assert broker.account().realized_pnl == pytest.approx(200.0)  # 100 x (20 - 18)


def test_position_disappears_at_zero() -> None:
    broker = make_broker()
    _trade(broker, "buy", 100, 10.0, 0)
    _trade(broker, "sell", 100, 11.0, 1)

    assert broker.positions() == []
    assert broker.snapshot().positions == []
    assert broker.account().realized_pnl == pytest.approx(100.0)


def test_unrealized_marked_at_mid_or_last() -> None:
    from paper_broker.config import MarkSource

    results = {}
    for source in MarkSource:
        broker = make_broker(config=frictionless(mark_source=source))
        _trade(broker, "buy", 10, 100.0, 0)
        broker.process_quotes(make_quotes(["A"], mid=105.0, last=104.0, ts=at(1)), at(1))
        results[source] = broker.account().unrealized_pnl

    assert results == pytest.approx({MarkSource.MID: 50.0, MarkSource.LAST: 40.0})


def test_a_reopened_position_reports_its_own_pnl_before_and_after_a_restore() -> None:
    broker = make_broker()
    _trade(broker, "buy", 100, 100.0, 0)
    _trade(broker, "sell", 100, 110.0, 1)  # flat: +1000 for the account
    restored = PaperBroker.from_state(broker.snapshot(), broker.config)
    for b in (broker, restored):
        _trade(b, "buy", 10, 110.0, 2)
        _trade(b, "sell", 5, 120.0, 3)  # 5 x (120 - 110) = 50

    # the position booked 50; the account keeps both closes
    assert _position(broker) == _position(restored) == pytest.approx((5, 110.0, 50.0))
    assert broker.account().realized_pnl == restored.account().realized_pnl == 1050.0
