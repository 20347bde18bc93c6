"""One sweep run: a whole backtest for one parameter set, reduced to a small result row.

This is what a sweep task executes on a worker (a thread, a process or a Dask worker): it
reads the bars it is handed, writes nothing, and returns plain values that pickle.
"""

from __future__ import annotations

import sys
from typing import Any

from papertrade.backtest.bars import BarPanel
from papertrade.backtest.engine import SUMMARY_METRICS, BacktestConfig, run_backtest
from papertrade.backtest.ranking import RANKABLE
from strategies.registry import load_strategy

# the summary's metrics and every other one `--metric` ranks by (calmar, expectancy): a
# sweep ranks its rows on these values, and a metric missing from them would rank as
# undefined in every row, leaving the grid's own order as the ranking
ROW_METRICS = (
    *SUMMARY_METRICS,
    *(m for m in RANKABLE if m not in SUMMARY_METRICS and m != "final_equity"),
)


def run_params(
    panel: BarPanel, strategy: str, params: dict[str, Any], config: BacktestConfig
) -> dict[str, Any]:
    """Backtest `strategy` with `params`; returns {params, final_equity, n_fills, metrics,
    worker}: `metrics` holds `ROW_METRICS` (NaN/inf None), and `worker` is the Dask
    worker's address when running on one, else None."""
    result = run_backtest(panel, load_strategy(strategy, params), config)
    summary = result.summary()
    metrics = result.metrics.as_dict()
    return {
        "params": dict(params),
        "final_equity": summary["final_equity"],
        "n_fills": summary["n_fills"],
        "metrics": {k: metrics[k] for k in ROW_METRICS},
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
