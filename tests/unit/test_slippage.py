"""Each slippage model against a hand-computed concession."""

from __future__ import annotations

import numpy as np
import pytest

from paper_broker.slippage import (
    FixedBpsSlippage,
    NoSlippage,
    SpreadFractionSlippage,
    VolumeImpactSlippage,
)
from tests.factories import at, frictionless, make_broker, make_intent, make_quotes


def _one(model: object, price: float, qty: float, spread: float, volume: float) -> float:
    out = model.concession(  # type: ignore[attr-defined]
        np.array([price]), np.array([qty]), np.array([spread]), np.array([volume])
    )
    return float(out[0])


def test_no_slippage_is_zero() -> None:
    assert _one(NoSlippage(), 100.0, 500, 0.1, 1e6) == 0.0


def test_fixed_bps_is_a_fraction_of_price() -> None:
    # 5 bp of 200 = 200 * 0.0005 = 0.10
    assert _one(FixedBpsSlippage(5.0), 200.0, 1, 0.0, 0.0) == pytest.approx(0.10)


def test_spread_fraction_takes_part_of_the_spread_and_nothing_without_one() -> None:
    model = SpreadFractionSlippage(0.5)

    assert _one(model, 100.0, 10, 0.04, 1e6) == pytest.approx(0.02)
    assert _one(model, 100.0, 10, np.nan, 1e6) == 0.0


def test_volume_impact_is_square_root_of_participation() -> None:
    # 0.1 * sqrt(10_000 / 1_000_000) = 0.1 * 0.1 = 1% of 50 = 0.50
    model = VolumeImpactSlippage(0.1)

    assert _one(model, 50.0, 10_000, 0.0, 1_000_000) == pytest.approx(0.50)
    assert _one(model, 50.0, 10_000, 0.0, np.nan) == 0.0


def test_broker_adds_slippage_against_the_trader_then_rounds_to_tick() -> None:
    # ask 100.05, bid 99.95; 3 bp of 100.05 = 0.030015 -> buy 100.080015 -> ceil 100.09
    # 3 bp of 99.95 = 0.029985 -> sell 99.920015 -> floor 99.92
    broker = make_broker(
        config=frictionless(slippage=FixedBpsSlippage(3.0), allow_short=True),
        marks={"A": 100.0, "B": 100.0},
    )
    broker.submit([make_intent("A", "buy", 10), make_intent("B", "sell", 10)], at(0))

    fills = broker.process_quotes(make_quotes(["A", "B"], mid=100.0, spread_bps=10), at(0))

    assert [f.price for f in fills] == [100.09, 99.92]
