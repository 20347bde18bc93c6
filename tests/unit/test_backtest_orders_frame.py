"""A backtest's orders go to the warehouse through `warehouse.frames.orders_frame`: one row
per order at its latest state, enums as their plain string values."""

from __future__ import annotations

from paper_broker.fills import FillModel
from papertrade.backtest.engine import run_backtest
from strategies.registry import load_strategy
from tests.unit.test_backtest_engine import random_panel
from tests.unit.test_backtest_risk import engine_config
from warehouse.frames import orders_frame


def test_orders_frame_of_a_run_has_the_latest_state_in_plain_values():
    # Arrange: a run short of cash: filled and broker-rejected orders
    panel = random_panel(8, 120, seed=5)
    strategy = load_strategy("sma_crossover", {"fast": 3, "slow": 8, "qty": 100.0})
    result = run_backtest(panel, strategy, engine_config(FillModel.NEXT_OPEN, None))
    orders = result.orders + result.orders[:3]  # repeats: the last state of an id wins
    statuses = {o.status for o in orders}

    # Act
    got = orders_frame(orders)

    # Assert
    assert len(statuses) >= 2
    assert got["reject_reason"].notna().any() and got["reject_reason"].isna().any()
    assert got["order_id"].is_unique and len(got) == len(result.orders)
    assert got["side"].map(type).eq(str).all()
