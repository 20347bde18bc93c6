"""The engine's RiskGuard path (arrays over the panel) against the record path it replaced: a
loop that asks the broker for its `PortfolioView` and the guard's `check` with a quotes
frame on every bar. Same orders, fills and rejection counts under both fill models."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from paper_broker.broker import PaperBroker
from paper_broker.config import BrokerConfig
from paper_broker.enums import Side, TradingState
from paper_broker.fills import FillModel
from paper_broker.ids import client_order_id
from paper_broker.records import OrderIntent
from paper_broker.risk import RiskConfig, RiskGuard
from paper_broker.risk.batch import KILL_SWITCH_STRATEGY
from papertrade.backtest.bars import BarPanel
from papertrade.backtest.engine import BacktestConfig, _numbered, run_backtest
from strategies.base import Strategy
from strategies.errors import UnknownStrategy
from strategies.registry import load_strategy
from tests.support.strategies import EveryBar
from tests.unit.test_backtest_engine import random_panel


def tight_guard() -> RiskGuard:
    """Limits that bind at ~50 a share and 100 shares an order: notional per order and per
    position, gross and net exposure, orders per bar."""
    return RiskGuard(
        RiskConfig(
            max_order_notional=5_400.0,
            max_position_notional=5_300.0,
            max_gross_exposure=22_000.0,
            max_net_exposure=18_000.0,
            max_orders_per_interval=3,
        )
    )


def engine_config(fill_model: FillModel, guard: RiskGuard | None) -> BacktestConfig:
    return BacktestConfig(
        account_id="bt-risk",
        initial_cash=16_000.0,
        fill_model=fill_model,
        broker=BrokerConfig(max_volume_share=None),
        risk=guard,
    )


def reference_run(panel: BarPanel, strategy: Strategy, cfg: BacktestConfig):
    """The engine loop with the guard fed the broker's PortfolioView and a quotes frame."""
    assert cfg.risk is not None
    broker = PaperBroker(cfg.account_id, cfg.initial_cash, cfg.broker, panel.symbols)
    prepared = strategy.prepare(panel.closes_frame())
    next_open = cfg.fill_model is FillModel.NEXT_OPEN
    cl = panel.close
    times = list(panel.timestamps.to_pydatetime())
    symbols = list(panel.symbols)
    index = {s: i for i, s in enumerate(symbols)}
    rejected: list[tuple[str | None, str]] = []

    def process(t: int) -> None:
        broker.process_bar_arrays(panel.open[t], panel.high[t], panel.low[t], cl[t],
                                  panel.volume[t], times[t], cfg.fill_model)  # fmt: skip

    for t in range(panel.n_bars):
        process(t)  # resting orders first, under either fill model
        view = broker.portfolio_view()
        qty = np.array([view.positions.get(s, 0.0) for s in symbols])
        tradable = np.isfinite(cl[t]) & (cl[t] > 0)
        intents = strategy.decide(t, prepared, qty, view.equity, cl[t], tradable)
        if intents:
            intents = _numbered(
                intents, client_order_id(cfg.account_id, times[t], "sma_crossover", 0)
            )
            px = cl[t, [index[it.symbol] for it in intents]]
            quotes = pd.DataFrame(
                {"symbol": [it.symbol for it in intents], "bid": px, "ask": px, "last": px}
            )
            decision = cfg.risk.check(intents, broker.portfolio_view(), quotes,
                                      TradingState.ACTIVE, now=times[t])  # fmt: skip
            rejected += [(r.client_order_id, r.reason.value) for r in decision.rejections]
            if decision.approved:
                broker.submit(decision.approved, times[t])
                if not next_open:
                    process(t)
    changes = broker.drain_changes()
    return changes.orders, changes.fills, rejected


@pytest.mark.parametrize("fill_model", list(FillModel))
def test_engine_risk_path_decides_as_the_portfolio_view_path(fill_model):
    # Arrange
    panel = random_panel(8, 160, seed=11)
    strategy = load_strategy("sma_crossover", {"fast": 3, "slow": 8, "qty": 100.0})
    cfg = engine_config(fill_model, tight_guard())

    # Act
    result = run_backtest(panel, strategy, cfg)
    orders, fills, rejected = reference_run(panel, strategy, cfg)

    # Assert: the limits bound some intents and let others through; the refused ones are
    # rejected orders with their reasons, after the broker's
    assert result.risk_rejections == len(rejected) > 0
    assert len(result.fills) > 5
    key = lambda o: (o.client_order_id, o.status, o.filled_quantity, o.avg_fill_price)  # noqa: E731
    brokered, refused = result.orders[: len(orders)], result.orders[len(orders) :]
    assert [key(o) for o in brokered] == [key(o) for o in orders]
    assert [(o.client_order_id, o.reject_reason) for o in refused] == rejected
    assert {o.status for o in refused} == {"rejected"}
    assert [(f.ts, f.symbol, f.side, f.quantity, f.price) for f in result.fills] == [
        (f.ts, f.symbol, f.side, f.quantity, f.price) for f in fills
    ]


def test_without_a_guard_nothing_is_rejected_by_risk():
    # Arrange
    panel = random_panel(4, 60, seed=2)
    strategy = load_strategy("sma_crossover", {"fast": 3, "slow": 8})

    # Act
    result = run_backtest(panel, strategy, engine_config(FillModel.NEXT_OPEN, None))

    # Assert
    assert result.risk_rejections == 0
    assert result.orders


class Disguised(EveryBar):
    """Labels its one buy as the kill switch's flatten."""

    name = "disguised"

    def decide(self, t, prepared, positions, equity, prices, tradable):
        if t:
            return []
        return [OrderIntent(prepared.symbols[0], Side.BUY, 200, strategy=KILL_SWITCH_STRATEGY)]


class KillSwitchNamed(EveryBar):
    name = KILL_SWITCH_STRATEGY

    def decide(self, t, prepared, positions, equity, prices, tradable):
        return []


def test_a_strategy_cannot_label_its_orders_as_the_kill_switchs() -> None:
    """An intent labelled `kill_switch` passes a halt and the per-order limits: a strategy
    that labelled its buy so bought 200 shares at about 50 past a 5,400 notional limit."""
    guard = RiskGuard(RiskConfig(max_order_notional=5_400.0))
    cfg = dataclasses.replace(engine_config(FillModel.CLOSE, guard), initial_cash=100_000.0)

    result = run_backtest(random_panel(1, 5, seed=1), Disguised(), cfg)

    assert result.fills == []
    assert [o.reject_reason for o in result.orders] == ["NOTIONAL_EXCEEDS_MAX_PER_ORDER"]
    with pytest.raises(UnknownStrategy, match="kill switch"):
        load_strategy(f"{__name__}:KillSwitchNamed", {})
