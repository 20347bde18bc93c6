"""Each commission model against a hand-computed fee, including per-order minimums and caps
across partial fills."""

from __future__ import annotations

import numpy as np
import pytest

from paper_broker.commission import (
    PercentCommission,
    PerOrderCommission,
    PerShareCommission,
    ZeroCommission,
)
from tests.factories import at, frictionless, make_broker, make_intent, make_quotes


def _total(model: object, qty: float, notional: float) -> float:
    return float(model.total(np.array([qty]), np.array([notional]))[0])  # type: ignore[attr-defined]


def test_zero() -> None:
    assert _total(ZeroCommission(), 100, 10_000) == 0.0


@pytest.mark.parametrize(
    ("qty", "notional", "expected"),
    [
        (1_000, 50_000, 5.00),  # 1000 x 0.005
        (100, 5_000, 1.00),  # 0.50 raised to the 1.00 minimum
        (10, 50, 0.50),  # minimum 1.00 capped at 1% of 50
        (0, 0, 0.0),  # nothing filled, nothing charged
    ],
)
def test_per_share_ib_style(qty: float, notional: float, expected: float) -> None:
    assert _total(PerShareCommission(0.005, 1.0, 0.01), qty, notional) == pytest.approx(expected)


def test_per_order_and_percent() -> None:
    assert _total(PerOrderCommission(2.5), 300, 30_000) == 2.5
    assert _total(PerOrderCommission(2.5), 0, 0) == 0.0
    assert _total(PercentCommission(0.001), 300, 30_000) == pytest.approx(30.0)


def test_partial_fills_share_one_minimum() -> None:
    # 1000 shares against 300 displayed: fills 300 then 700.
    # total after 300 = max(1.5, 1.0) = 1.5; after 1000 = 5.0 -> second fill charged 3.5
    broker = make_broker(
        200_000, config=frictionless(commission=PerShareCommission()), marks={"A": 100.0}
    )
    broker.submit([make_intent("A", "buy", 1_000)], at(0))

    first = broker.process_quotes(make_quotes(["A"], size=300, spread_bps=0), at(0))
    second = broker.process_quotes(make_quotes(["A"], size=5_000, spread_bps=0, ts=at(1)), at(1))

    assert [f.commission for f in first + second] == pytest.approx([1.5, 3.5])
    assert broker.account().commissions == pytest.approx(5.0)
    assert broker.account().cash == pytest.approx(200_000 - 1_000 * 100.0 - 5.0)


def test_per_order_fee_is_charged_once_across_partials() -> None:
    broker = make_broker(config=frictionless(commission=PerOrderCommission(1.0)), marks={"A": 10})
    broker.submit([make_intent("A", "buy", 200)], at(0))

    fills = broker.process_quotes(make_quotes(["A"], mid=10, size=100), at(0))
    fills += broker.process_quotes(make_quotes(["A"], mid=10, size=100, ts=at(1)), at(1))

    assert [f.commission for f in fills] == [1.0, 0.0]
