"""Walk-forward analysis: choose parameters in-sample, trade them out-of-sample, roll on.

Windows are counted in bars. Window k trains on bars [k*test, k*test + train) and tests on
the `test` bars right after its training window; the step is `test`, so the test windows
tile the history after the first training window without overlapping each other or their
own training window. Only whole test windows are used (a tail shorter than `test` is left
out).

On each training window every parameter set of the grid is backtested and the best one by
`metric` is chosen (ties: the first in grid order). It is then run over its training window
and the test window together, trading only inside the test window: the training bars serve
as the indicators' warm-up, so no signal in the test window needs bars it has not seen, and
none needs bars after it. Each test run starts flat with the previous test run's final
equity as its cash (positions left open at a window's end are valued at the last close and
not carried over), so the stitched out-of-sample curve compounds like one account. Its
trades are the union of each test run's own round trips: a lot left open at a window's end
is no trade, and is never matched with a later window's sells.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from papertrade.backtest.bars import BarPanel
from papertrade.backtest.engine import (
    BacktestConfig,
    BacktestResult,
    fills_frame,
    run_backtest,
    start_equity,
)
from papertrade.backtest.params import buildable, expand_grid
from papertrade.backtest.ranking import score
from papertrade.backtest.sweep import ROW_METRICS
from papertrade.errors import UserError
from papertrade.metrics import compute_metrics, round_trips
from strategies.registry import load_strategy


@dataclass(frozen=True, slots=True)
class Window:
    """Bar ranges [start, stop) of one training and one test window."""

    train_start: int
    train_stop: int
    test_start: int
    test_stop: int


@dataclass(frozen=True, slots=True)
class WindowResult:
    window: Window
    params: dict[str, Any]
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WalkForwardResult:
    windows: list[WindowResult]
    equity: pd.Series  # stitched out-of-sample equity, indexed by bar timestamp
    out_of_sample: dict[str, Any]  # metrics of the stitched curve
    in_sample: dict[str, Any]  # mean over windows of the chosen parameters' training metrics
    skipped: list[str] = dataclasses.field(default_factory=list)  # parameter sets refused
    # parameter sets whose first signal needs at least a training window of bars: they
    # cannot trade in-sample, and their flat metrics would otherwise not say why
    too_long: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "windows": [
                {
                    **dataclasses.asdict(w.window),
                    "params": w.params,
                    "in_sample": w.in_sample,
                    "out_of_sample": w.out_of_sample,
                }
                for w in self.windows
            ],
            "final_equity": float(self.equity.iat[-1]) if len(self.equity) else None,
            "in_sample": self.in_sample,
            "out_of_sample": self.out_of_sample,
        }


def windows(n_bars: int, train: int, test: int) -> list[Window]:
    """The rolling windows over `n_bars` bars (see the module docstring). Raises
    `UserError` when train or test is < 1 or not even one window fits."""
    if train < 1 or test < 1:
        raise UserError(f"--train {train} and --test {test} must both be >= 1")
    if train + test > n_bars:
        raise UserError(f"--train {train} + --test {test} bars exceed the {n_bars} bars given")
    return [
        Window(start, start + train, start + train, start + train + test)
        for start in range(0, n_bars - train - test + 1, test)
    ]


def walk_forward(
    panel: BarPanel,
    strategy: str,
    grid: dict[str, list[Any]],
    config: BacktestConfig,
    *,
    train: int,
    test: int,
    metric: str = "sharpe",
    base_params: dict[str, Any] | None = None,
) -> WalkForwardResult:
    """Run the walk-forward analysis (see the module docstring). Every grid point's
    strategy is built first: the ones the strategy refuses are skipped (and listed), and a
    grid refused whole fails before any backtest runs."""
    candidates, skipped = buildable(strategy, expand_grid(grid, base_params))
    strategies = [load_strategy(strategy, p) for p in candidates]
    results: list[WindowResult] = []
    pieces: list[pd.Series] = []
    fills: list[pd.DataFrame] = []
    trades: list[pd.DataFrame] = []
    cash = config.initial_cash
    for w in windows(panel.n_bars, train, test):
        train_panel = panel.slice(w.train_start, w.train_stop)
        scored = []
        for k, strat in enumerate(strategies):
            row = _metrics(run_backtest(train_panel, strat, config))
            scored.append((score(row.get(metric), metric), -k, k, row))
        _, _, best, best_row = max(scored, key=lambda s: (s[0], s[1]))
        oos = run_backtest(
            panel.slice(w.train_start, w.test_stop),
            strategies[best],
            dataclasses.replace(config, initial_cash=cash),
            trade_from=w.test_start - w.train_start,
        )
        curve = pd.Series(oos.equity["equity"].to_numpy(), index=oos.equity["ts"])
        pieces.append(curve)
        fills.append(fills_frame(oos.fills))
        trades.append(round_trips(fills[-1]))
        cash = float(curve.iat[-1])
        results.append(
            WindowResult(w, candidates[best], best_row, _metrics(oos, final_equity=False))
        )
    stitched = pd.concat(pieces)
    oos_metrics = compute_metrics(
        stitched, trades=pd.concat(trades, ignore_index=True),
        fills=pd.concat(fills, ignore_index=True), periods_per_year=config.periods_per_year,
        start_equity=start_equity(config),
    ).as_dict()  # fmt: skip
    return WalkForwardResult(
        results,
        stitched,
        {k: oos_metrics[k] for k in ROW_METRICS},
        _mean_metrics([r.in_sample for r in results]),
        skipped,
        [
            p
            for p, strat in zip(candidates, strategies, strict=True)
            if strat.history_needed >= train
        ],
    )


def _metrics(result: BacktestResult, *, final_equity: bool = True) -> dict[str, Any]:
    """A run's final equity and every metric `--metric` ranks by (NaN/inf None): the
    summary's metrics lack calmar and expectancy, and ranking on a value a row lacks would
    choose the grid's first parameter set on every window."""
    metrics = result.metrics.as_dict()
    head = {"final_equity": result.summary()["final_equity"]} if final_equity else {}
    return {**head, **{k: metrics[k] for k in ROW_METRICS}}


def _mean_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ROW_METRICS:
        values = np.array(
            [r[key] for r in rows if isinstance(r.get(key), int | float)], dtype=np.float64
        )
        out[key] = float(values.mean()) if values.size else None
    return out
