"""Walk-forward's stitched out-of-sample metrics on hand-made bars: the trades are each test
window's own round trips, and the curve is measured from the initial cash."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from pydantic import Field

from paper_broker.commission import PercentCommission
from paper_broker.config import BrokerConfig
from paper_broker.fills import FillModel
from paper_broker.records import OrderIntent
from paper_broker.slippage import FixedBpsSlippage
from papertrade.backtest.bars import panel_from_frame
from papertrade.backtest.engine import BacktestConfig
from papertrade.backtest.walk_forward import walk_forward
from strategies.base import BaseStrategy, Prepared, StrategyParams, build_intents
from tests.unit.test_backtest_engine import bars_frame


class UpDownParams(StrategyParams):
    qty: float = Field(100.0, gt=0)


class UpDown(BaseStrategy):
    """Buy `qty` when the close rises and nothing is held; sell it all when the close falls.
    Trivial to follow by hand, and it both wins and loses."""

    name: ClassVar[str] = "up_down"
    Params: ClassVar[type[StrategyParams]] = UpDownParams
    params: UpDownParams

    def _prepare(
        self, values: np.ndarray, symbols: tuple[str, ...], timestamps: np.ndarray | None
    ) -> Prepared:
        up = np.zeros(values.shape, dtype=bool)
        down = np.zeros(values.shape, dtype=bool)
        up[1:] = values[1:] > values[:-1]
        down[1:] = values[1:] < values[:-1]
        return Prepared(symbols, {"up": up, "down": down}, (up | down).any(axis=1), timestamps)

    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]:
        buy = prepared.signals["up"][t] & tradable & (positions == 0)
        sell = prepared.signals["down"][t] & tradable & (positions > 0)
        idx = np.flatnonzero(buy | sell)
        signed = np.where(buy[idx], self.params.qty, -positions[idx])
        return build_intents(prepared.symbols, idx, signed, self.name)


STRATEGY = f"{__name__}:UpDown"
# train 2, test 4: window 1 trades bars 2-5, window 2 bars 6-9 (bars 4-5 its warm-up).
# Fills at the close: window 1 buys at 11 (bar 2), sells at 10 (bar 3: -100), buys at 14
# (bar 4) and still holds it at its end (valued at 16); window 2 starts flat, buys at 13
# (bar 7) and sells at 13.5 (bar 9: +50).
CLOSES = [10.0, 10.0, 11.0, 10.0, 14.0, 16.0, 12.0, 13.0, 14.0, 13.5]


def config(commission_bps: float) -> BacktestConfig:
    return BacktestConfig(
        account_id="wf-test",
        fill_model=FillModel.CLOSE,
        broker=BrokerConfig(
            slippage=FixedBpsSlippage(0.0),
            commission=PercentCommission(commission_bps * 1e-4),
            tick_size=0.01,
            max_volume_share=None,
        ),
    )


def run(commission_bps: float = 0.0):
    panel = panel_from_frame(bars_frame({"AAA": CLOSES}))
    return walk_forward(panel, STRATEGY, {"qty": [100.0]}, config(commission_bps),
                        train=2, test=4)  # fmt: skip


def test_out_of_sample_trades_are_each_windows_own_round_trips():
    result = run()

    # the lot bought at 14 and left open in window 1 is no trade; matching it with window
    # 2's sell at 13.5 would make one losing trade (-50) of window 2's winning one (+50)
    oos = result.out_of_sample
    assert [w.out_of_sample["n_trades"] for w in result.windows] == [1, 1]
    assert oos["n_trades"] == 2
    assert oos["win_rate"] == pytest.approx(0.5)
    assert oos["profit_factor"] == pytest.approx(50 / 100)
    # window 1 ends at 100000 - 100 + 200, window 2 adds its +50
    assert result.as_dict()["final_equity"] == pytest.approx(100_150.0)


def test_out_of_sample_curve_starts_from_the_initial_cash_under_close():
    result = run(commission_bps=10.0)

    # equity by hand (10 bps commission on each fill's value), from the initial cash:
    # 100000, 99998.9, 99897.9, 99896.5, 100096.5 | 100096.5, 100095.2, 100195.2, 100143.85
    oos = result.out_of_sample
    assert result.as_dict()["final_equity"] == pytest.approx(100_143.85)
    assert oos["total_return"] == pytest.approx(0.0014385, abs=1e-12)
    assert oos["cagr"] == pytest.approx(1.0014385 ** (252 / 8) - 1, rel=1e-9)  # 8 returns
    # mean / sample std of those 8 returns (pandas), x sqrt(252)
    assert oos["sharpe"] == pytest.approx(3.0799106070739666, rel=1e-9)
    assert oos["volatility"] == pytest.approx(0.01473392430489399, rel=1e-9)
    assert oos["sortino"] == pytest.approx(7.137452036188203, rel=1e-9)


def test_a_parameter_set_the_strategy_refuses_is_skipped_and_listed():
    panel = panel_from_frame(bars_frame({"AAA": CLOSES}))

    result = walk_forward(panel, STRATEGY, {"qty": [100.0, -1.0]}, config(0.0),
                          train=2, test=4)  # fmt: skip

    assert [w.params for w in result.windows] == [{"qty": 100.0}] * 2
    assert len(result.skipped) == 1 and result.skipped[0].startswith('{"qty":-1.0}: ')
    assert result.out_of_sample == run().out_of_sample


@pytest.mark.parametrize("metric", ["calmar", "expectancy"])
def test_each_window_picks_the_best_parameters_by_a_metric_outside_the_summary(metric):
    from papertrade.backtest.engine import run_backtest
    from papertrade.backtest.params import expand_grid
    from strategies.registry import load_strategy
    from tests.unit.test_backtest_engine import random_panel

    panel = random_panel(2, 120, seed=4)
    grid = {"fast": [2, 4], "slow": [8, 16]}
    cfg = BacktestConfig(account_id="wf-test")

    result = walk_forward(panel, "sma_crossover", grid, cfg, train=60, test=20, metric=metric)

    chosen = []
    for w in result.windows:
        train = panel.slice(w.window.train_start, w.window.train_stop)
        values = [
            getattr(run_backtest(train, load_strategy("sma_crossover", p), cfg).metrics, metric)
            for p in expand_grid(grid)
        ]
        chosen.append(expand_grid(grid)[int(np.nanargmax(values))])
    # the metric's best is not the grid's first, so picking the first cannot pass
    assert chosen[0] != {"fast": 2, "slow": 8}
    assert [w.params for w in result.windows] == chosen
