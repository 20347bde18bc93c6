"""One sweep run: a whole backtest for one parameter set, reduced to a small result row.

This is what a sweep task executes on a worker (a thread, a process or a Dask worker): it
reads the bars it is handed, writes nothing, and returns plain values that pickle.
"""

from __future__ import annotations

import sys
from typing import Any

from papertrade.backtest.bars import BarPanel
from papertrade.backtest.engine import BacktestConfig, run_backtest
from strategies.registry import load_strategy


def run_params(
    panel: BarPanel, strategy: str, params: dict[str, Any], config: BacktestConfig
) -> dict[str, Any]:
    """Backtest `strategy` with `params`; returns {params, final_equity, n_fills, metrics,
    worker}. `worker` is the Dask worker's address when running on one, else None."""
    result = run_backtest(panel, load_strategy(strategy, params), config)
    summary = result.summary()
    return {
        "params": dict(params),
        "final_equity": summary["final_equity"],
        "n_fills": summary["n_fills"],
        "metrics": summary["metrics"],
        "worker": _dask_worker(),
    }


def _dask_worker() -> str | None:
    # only a process that already runs distributed can be a Dask worker; don't import it here
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return str(distributed.get_worker().address)
    except ValueError:
        return None
