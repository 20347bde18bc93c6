"""A backtest's orders go to the warehouse through a column-at-a-time frame builder; it must
give exactly the frame of `warehouse.frames.orders_frame`."""

from __future__ import annotations

import pandas as pd

from paper_broker.fills import FillModel
from papertrade.backtest.engine import run_backtest
from strategies.registry import load_strategy
from tests.unit.test_backtest_engine import random_panel
from tests.unit.test_backtest_risk import engine_config
from warehouse.frames import orders_frame
from warehouse.results import _orders_frame


def test_orders_frame_of_a_run_equals_the_record_by_record_frame():
    # Arrange: a run short of cash: filled and broker-rejected orders
    panel = random_panel(8, 120, seed=5)
    strategy = load_strategy("sma_crossover", {"fast": 3, "slow": 8, "qty": 100.0})
    result = run_backtest(panel, strategy, engine_config(FillModel.NEXT_OPEN, None))
    orders = result.orders + result.orders[:3]  # repeats: the last state of an id wins
    statuses = {o.status for o in orders}

    # Act
    got = _orders_frame(orders)

    # Assert
    assert len(statuses) >= 2
    assert got["reject_reason"].notna().any() and got["reject_reason"].isna().any()
    pd.testing.assert_frame_equal(got, orders_frame(orders))
    assert got["side"].map(type).eq(str).all()
