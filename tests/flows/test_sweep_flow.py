"""The `sweep` flow on a real Dask LocalCluster: one task per parameter set, run in Dask
worker processes, ranked and stored in `sweep_results` by the flow."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from flows.backtest import run_sweep, task_runner_for
from paper_broker.fills import FillModel
from papertrade.backtest.command import BacktestRequest
from papertrade.backtest.params import expand_grid
from tests.unit.test_backtest_engine import bars_frame, random_panel


@pytest.mark.flows
def test_sweep_runs_each_parameter_set_on_a_dask_worker(prefect_harness, tmp_path: Path):
    from prefect_dask import DaskTaskRunner

    panel = random_panel(3, 120, seed=4)
    bars = tmp_path / "bars.parquet"
    bars_frame(
        {s: panel.close[:, i].tolist() for i, s in enumerate(panel.symbols)},
        {s: panel.open[:, i].tolist() for i, s in enumerate(panel.symbols)},
    ).to_parquet(bars)
    db = tmp_path / "w.duckdb"
    combos = expand_grid({"fast": [3, 5], "slow": [10, 20]})
    request = BacktestRequest(bars, "sma_crossover", cash=1e6, fill_model=FillModel.NEXT_OPEN)

    rows = run_sweep(request, combos, metric="sharpe", runner="dask", dask_address=None,
                     config=None, db=db)  # fmt: skip

    assert isinstance(task_runner_for("dask"), DaskTaskRunner)
    assert sorted(r["rank"] for r in rows) == [1, 2, 3, 4]
    assert all(r["worker"] and r["worker"].startswith("tcp://127.0.0.1") for r in rows)
    with duckdb.connect(str(db), read_only=True) as conn:
        stored = conn.execute(
            "SELECT count(*), count(DISTINCT params_json), min(rank) FROM sweep_results"
        ).fetchone()
    assert stored == (4, 4, 1)
