"""The `backtest` flow (one run, shown in the Prefect UI with a Markdown artifact of its
metrics) and the `sweep` flow (one task per parameter set, ranked and stored).

Both wrap the same engine as `papertrade backtest`. In a sweep the flow loads the bars once
and hands them to each task (see `_shared`: in `quote` for threads; the process and Dask
runners pickle them). A task is a whole backtest; tasks never touch DuckDB: the flow writes
the ranked table at the end.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from paper_broker.fills import FillModel
from papertrade.backtest import command
from papertrade.backtest.bars import BarPanel, load_bars
from papertrade.backtest.engine import BacktestConfig
from papertrade.backtest.ranking import rank
from papertrade.backtest.sweep import run_params
from papertrade.settings import load_settings

# a local Dask cluster for `--runner dask` without an address: real worker processes
LOCAL_DASK_CLUSTER = {
    "n_workers": 2,
    "processes": True,
    "threads_per_worker": 1,
    "dashboard_address": None,
}


def task_runner_for(runner: str, dask_address: str | None = None) -> TaskRunner:
    """threads -> ThreadPoolTaskRunner, processes -> ProcessPoolTaskRunner, dask ->
    DaskTaskRunner on `dask_address` or on a LocalCluster of two worker processes."""
    if runner == "threads":
        return ThreadPoolTaskRunner()
    if runner == "processes":
        return ProcessPoolTaskRunner()
    if runner == "dask":
        from prefect_dask import DaskTaskRunner

        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(cluster_kwargs=dict(LOCAL_DASK_CLUSTER))
    raise ValueError(f"unknown task runner {runner!r}")


@task(name="backtest-params", cache_policy=NO_CACHE, task_run_name="backtest {params}")
def backtest_params(
    panel: BarPanel, strategy: str, params: dict[str, Any], config: BacktestConfig
) -> dict[str, Any]:
    """One whole backtest for one parameter set; a small, picklable result row."""
    return run_params(panel, strategy, params, config)


def _shared(panel: BarPanel) -> Any:
    """The bars as a task argument. In-process runners get them in `quote` (never walked,
    never copied). A `quote` does not survive pickling in Prefect 3.9 (the tuple subclass
    comes back wrapped twice), so runners that pickle get the panel itself: a dataclass of
    seven arrays, which Prefect's parameter walk visits without descending into the arrays."""
    from prefect.context import FlowRunContext

    ctx = FlowRunContext.get()
    in_process = ctx is None or isinstance(ctx.task_runner, ThreadPoolTaskRunner)
    return quote(panel) if in_process else panel


def _artifact_key(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "backtest"


@flow(name="backtest", log_prints=False)
def backtest_flow(
    bars: str,
    strategy: str,
    params: dict[str, Any] | None = None,
    cash: float | None = None,
    fill_model: str = "next_open",
    commission_bps: float | None = None,
    slippage_bps: float | None = None,
    account_id: str | None = None,
    risk: bool = True,
    config: str | None = None,
    db: str | None = None,
    periods_per_year: int | None = None,
) -> dict[str, Any]:
    """Run one backtest, store it, and publish its metrics as a Markdown artifact.
    Returns the same summary `papertrade backtest --json` prints."""
    settings = load_settings(config=Path(config) if config else None, db=Path(db) if db else None)
    request = command.BacktestRequest(
        bars=Path(bars), strategy=strategy, params=dict(params or {}), cash=cash,
        fill_model=FillModel(fill_model), commission_bps=commission_bps,
        slippage_bps=slippage_bps, account_id=account_id, risk=risk,
        periods_per_year=periods_per_year,
    )  # fmt: skip
    prepared = command.prepare(settings, request)
    result = command.run(prepared)
    command.store(settings, prepared, result, created_at=datetime.now(UTC))
    create_markdown_artifact(
        markdown=command.metrics_markdown(result, f"backtest {strategy}"),
        key=_artifact_key(f"backtest-{result.account_id}"),
        description=f"backtest metrics of {result.account_id}",
    )
    return result.summary()


@flow(name="sweep", log_prints=False)
def sweep_flow(
    bars: str,
    strategy: str,
    combos: list[dict[str, Any]],
    metric: str = "sharpe",
    cash: float | None = None,
    fill_model: str = "next_open",
    commission_bps: float | None = None,
    slippage_bps: float | None = None,
    risk: bool = True,
    config: str | None = None,
    db: str | None = None,
    periods_per_year: int | None = None,
) -> list[dict[str, Any]]:
    """Backtest every parameter set in `combos` as its own task, rank by `metric`, store
    the ranked rows in `sweep_results` and return them (best first)."""
    from prefect.runtime import flow_run

    settings = load_settings(config=Path(config) if config else None, db=Path(db) if db else None)
    request = command.BacktestRequest(
        bars=Path(bars), strategy=strategy, cash=cash, fill_model=FillModel(fill_model),
        commission_bps=commission_bps, slippage_bps=slippage_bps, risk=risk,
        periods_per_year=periods_per_year,
    )  # fmt: skip
    command.check_costs(request)
    account_id = "sweep-" + command.default_account_id(strategy).removeprefix("backtest-")
    cfg = command.engine_config(settings, request, account_id)
    panel = load_bars(Path(bars))
    futures = [backtest_params.submit(_shared(panel), strategy, params, cfg) for params in combos]
    ranked = rank([f.result() for f in futures], metric)
    sweep_id = f"{account_id}-{flow_run.id or datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"

    from papertrade.backtest.storage import store_sweep
    from warehouse.connection import connect

    with connect(settings.warehouse.path, timeout=settings.warehouse.lock_timeout_seconds) as c:
        store_sweep(
            c, ranked, sweep_id=sweep_id, account_id=account_id, strategy=strategy,
            metric=metric, created_at=datetime.now(UTC),
        )  # fmt: skip
    create_markdown_artifact(
        markdown=_sweep_markdown(ranked, metric, sweep_id),
        key=_artifact_key(f"sweep-{strategy}"),
        description=f"sweep {sweep_id}",
    )
    return [{**row, "sweep_id": sweep_id} for row in ranked]


def _sweep_markdown(rows: list[dict[str, Any]], metric: str, sweep_id: str) -> str:
    lines = [f"# sweep `{sweep_id}` ranked by {metric}", "",
             "| rank | params | final_equity | sharpe | total_return | max_drawdown |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        m = r["metrics"]
        lines.append(
            f"| {r['rank']} | `{r['params']}` | {r['final_equity']} | {m['sharpe']} | "
            f"{m['total_return']} | {m['max_drawdown']} |"
        )
    return "\n".join(lines) + "\n"


def run_sweep(
    request: command.BacktestRequest,
    combos: list[dict[str, Any]],
    *,
    metric: str,
    runner: str,
    dask_address: str | None,
    config: Path | None,
    db: Path | None,
) -> list[dict[str, Any]]:
    """Run the `sweep` flow on the chosen task runner (what `papertrade sweep` calls)."""
    flow_fn = sweep_flow.with_options(task_runner=task_runner_for(runner, dask_address))
    return flow_fn(
        bars=str(request.bars), strategy=request.strategy, combos=combos, metric=metric,
        cash=request.cash, fill_model=request.fill_model.value,
        commission_bps=request.commission_bps, slippage_bps=request.slippage_bps,
        risk=request.risk, config=str(config) if config else None,
        db=str(db) if db else None, periods_per_year=request.periods_per_year,
    )  # fmt: skip
