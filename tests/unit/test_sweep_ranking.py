"""A sweep's rows ranked by any metric `--metric` accepts: the rows carry its values."""

from __future__ import annotations

import pytest

from papertrade.backtest.engine import BacktestConfig, run_backtest
from papertrade.backtest.params import expand_grid
from papertrade.backtest.ranking import rank
from papertrade.backtest.sweep import run_params
from strategies.registry import load_strategy
from tests.unit.test_backtest_engine import random_panel


@pytest.mark.parametrize("metric", ["calmar", "expectancy"])
def test_a_sweep_ranks_by_a_metric_outside_the_summary(metric):
    panel = random_panel(2, 60, seed=4)
    combos = expand_grid({"fast": [2, 4], "slow": [8, 16]})
    cfg = BacktestConfig(account_id="sweep-test")

    ranked = rank([run_params(panel, "sma_crossover", p, cfg) for p in combos], metric)

    values = {
        json_key(p): getattr(
            run_backtest(panel, load_strategy("sma_crossover", p), cfg).metrics, metric
        )
        for p in combos
    }
    best_first = sorted(combos, key=lambda p: -values[json_key(p)])
    # the metric's order is not the grid's, so ranking on a missing value cannot pass
    assert best_first != combos
    assert [r["params"] for r in ranked] == best_first
    assert [r["metrics"][metric] for r in ranked] == [values[json_key(p)] for p in best_first]


def json_key(params: dict) -> str:
    return str(sorted(params.items()))
