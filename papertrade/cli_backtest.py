"""Backtest commands: `backtest`, `sweep` and `walk-forward`.

`backtest` imports neither Prefect nor Great Expectations: it validates its inputs, runs the
engine in this process and writes the warehouse. `sweep` runs one Prefect task per parameter
set (threads, processes or a Dask cluster) under the `sweep` flow. `walk-forward` runs in
this process and writes nothing.

The default account id is `backtest-<strategy>`; a re-run under the same id replaces the
previous run. Costs default to the config's `[broker]` section.
"""

from __future__ import annotations

import json
import math
import sys
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from papertrade.cli import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    app,
    console,
    err_console,
    prepare_prefect,
    settings_from,
    user_errors,
)

BarsOpt = Annotated[
    Path,
    typer.Option(
        "--bars",
        help="CSV or Parquet bars, long format: timestamp,symbol,open,high,low,close,volume.",
        dir_okay=False,
    ),
]
StrategyOpt = Annotated[str, typer.Option("--strategy", help="Strategy name or module:Class.")]
ParamOpt = Annotated[
    list[str] | None, typer.Option("--param", help="Strategy parameter name=value (repeat).")
]
CashOpt = Annotated[
    float | None,
    typer.Option("--cash", help="Initial cash (default: the config's \\[account] initial_cash)."),
]
CommissionOpt = Annotated[
    float | None,
    typer.Option(
        "--commission-bps",
        help="Commission as bps of traded value (default: the config's \\[broker] commission).",
    ),
]
SlippageOpt = Annotated[
    float | None,
    typer.Option(
        "--slippage-bps",
        help="Fixed slippage in bps of price (default: the config's \\[broker] slippage).",
    ),
]
PeriodsOpt = Annotated[
    int | None,
    typer.Option(
        "--periods-per-year",
        min=1,
        max=10_000_000,
        help="Bars a year, for annualised metrics (default 252: daily bars).",
    ),
]
RiskOpt = Annotated[
    bool, typer.Option("--risk/--no-risk", help="Apply the \\[risk] pre-trade checks.")
]


class FillModelChoice(StrEnum):
    NEXT_OPEN = "next_open"
    CLOSE = "close"


class RunnerChoice(StrEnum):
    THREADS = "threads"
    PROCESSES = "processes"
    DASK = "dask"


FillOpt = Annotated[
    FillModelChoice,
    typer.Option(
        "--fill-model",
        help="next_open: orders fill at the next bar's open; close: at the deciding bar's close.",
    ),
]
GridOpt = Annotated[
    list[str], typer.Option("--grid", help="Parameter values to try: name=v1,v2,... (repeat).")
]
MetricOpt = Annotated[str, typer.Option("--metric", help="Metric that ranks parameter sets.")]


def _request(
    bars: Path, strategy: str, params: dict[str, Any], cash: float | None,
    fill_model: FillModelChoice, commission_bps: float | None, slippage_bps: float | None,
    account_id: str | None, risk: bool, periods_per_year: int | None,
) -> Any:  # fmt: skip
    from paper_broker.fills import FillModel
    from papertrade.backtest.command import BacktestRequest

    return BacktestRequest(
        bars=bars, strategy=strategy, params=params, cash=cash,
        fill_model=FillModel(fill_model.value), commission_bps=commission_bps,
        slippage_bps=slippage_bps, account_id=account_id, risk=risk,
        periods_per_year=periods_per_year,
    )  # fmt: skip


@app.command()
@user_errors
def backtest(
    bars: BarsOpt,
    strategy: StrategyOpt,
    param: ParamOpt = None,
    cash: CashOpt = None,
    fill_model: FillOpt = FillModelChoice.NEXT_OPEN,
    commission_bps: CommissionOpt = None,
    slippage_bps: SlippageOpt = None,
    account_id: Annotated[
        str | None,
        typer.Option("--account-id", help="Account for the results (default backtest-<strategy>)."),
    ] = None,
    risk: RiskOpt = True,
    periods_per_year: PeriodsOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Replay a bars file through a strategy and the paper broker; store the run."""
    from papertrade.backtest import command
    from papertrade.backtest.params import parse_params

    settings = _settings(config, db)
    request = _request(bars, strategy, parse_params(param or []), cash, fill_model,
                       commission_bps, slippage_bps, account_id, risk,
                       periods_per_year)  # fmt: skip
    prepared = command.prepare(settings, request)
    _note(command.annualisation_note(prepared.panel, request))
    _note(command.history_note(prepared))
    show = not as_json and sys.stderr.isatty()
    result = _with_progress(command, prepared) if show else command.run(prepared)
    command.store(settings, prepared, result, created_at=datetime.now(UTC))
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
        return
    from rich.markdown import Markdown

    console.print(Markdown(command.metrics_markdown(result, f"backtest {result.strategy}")))


def _note_skipped(refused: list[str], total: int) -> None:
    if refused:
        err_console.print(
            f"skipping {len(refused)} of {total} parameter sets the strategy refuses,"
            f" e.g. {refused[0]}",
            markup=False, highlight=False, soft_wrap=True,
        )  # fmt: skip


def _note(note: str | None) -> None:
    if note:
        err_console.print(f"note: {note}", markup=False, highlight=False, soft_wrap=True)


def _with_progress(command: Any, prepared: Any) -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn("backtest"), BarColumn(), TextColumn("{task.completed}/{task.total} bars"),
        TimeRemainingColumn(), console=err_console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("bars", total=prepared.panel.n_bars)
        return command.run(prepared, lambda done, total: progress.update(task, completed=done))


@app.command()
@user_errors
def sweep(
    bars: BarsOpt,
    strategy: StrategyOpt,
    grid: GridOpt,
    param: ParamOpt = None,
    runner: Annotated[
        RunnerChoice, typer.Option("--runner", help="Where tasks run: threads, processes, dask.")
    ] = RunnerChoice.THREADS,
    dask_address: Annotated[
        str | None,
        typer.Option("--dask-address", help="Dask scheduler (default: a local cluster)."),
    ] = None,
    metric: MetricOpt = "sharpe",
    cash: CashOpt = None,
    fill_model: FillOpt = FillModelChoice.NEXT_OPEN,
    commission_bps: CommissionOpt = None,
    slippage_bps: SlippageOpt = None,
    risk: RiskOpt = True,
    periods_per_year: PeriodsOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Backtest every parameter combination of the grid, one Prefect task each; rank them
    by --metric and store the table in sweep_results."""
    from papertrade.backtest import command
    from papertrade.backtest.params import buildable, expand_grid, parse_grid, parse_params
    from papertrade.backtest.ranking import check_metric
    from papertrade.errors import UserError

    settings = _settings(config, db)
    check_metric(metric)
    if dask_address and runner is not RunnerChoice.DASK:
        raise UserError("--dask-address needs --runner dask")
    base = parse_params(param or [])
    # every combination is built before any task runs; those the strategy refuses are skipped
    combos, refused = buildable(strategy, expand_grid(parse_grid(grid), base))
    _note_skipped(refused, len(combos) + len(refused))
    request = _request(bars, strategy, base, cash, fill_model, commission_bps, slippage_bps,
                       None, risk, periods_per_year)  # fmt: skip
    command.check_costs(request)
    # the bars are checked here, before Prefect starts (the flow loads them again for its
    # tasks): a bad file is one line at once, not a failed flow run's log after 20 s
    _note(command.annualisation_note(command.load_bars(bars), request))
    if dask_address:
        _check_dask_address(dask_address)

    prepare_prefect()
    from flows.backtest import run_sweep

    rows = run_sweep(
        request, combos, metric=metric, runner=runner.value, dask_address=dask_address,
        config=config, db=settings.warehouse.path,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, allow_nan=False, default=str))
        return
    _print_sweep(rows, metric)


def _check_dask_address(address: str) -> None:
    """Refuse a TCP address where nothing listens (exit 2, one line): the flow would wait
    30 s for a scheduler there, then fail with Dask's tracebacks. Other protocols (tls,
    ws, ucx) are left to Dask."""
    import socket
    from urllib.parse import urlsplit

    from papertrade.errors import UserError

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise UserError(f"--dask-address {address}: not a host:port address") from None
    if parts.scheme != "tcp" or not host:
        return
    if port is None:
        raise UserError(f"--dask-address {address}: give the scheduler's port (tcp://host:8786)")
    try:
        socket.create_connection((host, port), timeout=10).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UserError(
            f"--dask-address {address}: no Dask scheduler answers there ({reason})"
        ) from None


def _print_sweep(rows: list[dict[str, Any]], metric: str) -> None:
    from rich.table import Table

    table = Table(title=f"sweep ranked by {metric}")
    keys: tuple[str, ...] = ("sharpe", "total_return", "max_drawdown", "n_trades")
    if metric not in (*keys, "final_equity"):
        keys = (metric, *keys)  # the values the ranking is on
    for name in ("rank", "params", "final_equity", *keys):
        table.add_column(name)
    for r in rows:
        m = r["metrics"]
        table.add_row(
            str(r["rank"]), json.dumps(r["params"], sort_keys=True),
            _num(r["final_equity"]), *(_num(m.get(k)) for k in keys),
        )  # fmt: skip
    console.print(table)


def _num(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.4f}" if isinstance(value, float) else str(value)


@app.command("walk-forward")
@user_errors
def walk_forward_cmd(
    bars: BarsOpt,
    strategy: StrategyOpt,
    grid: GridOpt,
    train: Annotated[int, typer.Option("--train", help="Bars per training window.")],
    test: Annotated[int, typer.Option("--test", help="Bars per test window (= the step).")],
    param: ParamOpt = None,
    metric: MetricOpt = "sharpe",
    cash: CashOpt = None,
    fill_model: FillOpt = FillModelChoice.NEXT_OPEN,
    commission_bps: CommissionOpt = None,
    slippage_bps: SlippageOpt = None,
    risk: RiskOpt = True,
    periods_per_year: PeriodsOpt = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
) -> None:
    """Pick parameters on rolling training windows, trade them on the following test
    windows; print out-of-sample next to in-sample metrics. Writes nothing."""
    from papertrade.backtest import command
    from papertrade.backtest.params import parse_grid, parse_params
    from papertrade.backtest.ranking import check_metric
    from papertrade.backtest.walk_forward import walk_forward, windows

    settings = _settings(config, db, writes=False)
    check_metric(metric)
    grid_values = parse_grid(grid)
    request = _request(bars, strategy, parse_params(param or []), cash, fill_model,
                       commission_bps, slippage_bps, None, risk, periods_per_year)  # fmt: skip
    command.check_costs(request)
    panel = command.load_bars(bars)
    _note(command.annualisation_note(panel, request))
    windows(panel.n_bars, train, test)
    cfg = command.engine_config(settings, request, command.default_account_id(strategy))
    result = walk_forward(panel, strategy, grid_values, cfg, train=train, test=test,
                          metric=metric, base_params=request.params)  # fmt: skip
    _note_skipped(result.skipped, math.prod(len(v) for v in grid_values.values()))
    if result.too_long:
        _note(f"{len(result.too_long)} parameter sets need {train} bars or more before their"
              f" first signal, e.g. {json.dumps(result.too_long[0], sort_keys=True)}: they"
              f" cannot trade in a {train}-bar training window")  # fmt: skip
    out = result.as_dict()
    if as_json:
        typer.echo(json.dumps(out, allow_nan=False, default=str))
        return
    from rich.table import Table

    table = Table(title=f"walk-forward ({len(result.windows)} windows, by {metric})")
    for name in ("test bars", "params", f"in-sample {metric}", f"out-of-sample {metric}"):
        table.add_column(name)
    for w in result.windows:
        table.add_row(
            f"{w.window.test_start}-{w.window.test_stop - 1}",
            json.dumps(w.params, sort_keys=True),
            _num(w.in_sample.get(metric)), _num(w.out_of_sample.get(metric)),
        )  # fmt: skip
    console.print(table)
    for label, values in (("in-sample (mean)", out["in_sample"]),
                          ("out-of-sample", out["out_of_sample"])):  # fmt: skip
        console.print(f"{label}: " + ", ".join(f"{k}={_num(v)}" for k, v in values.items()))


def _settings(config: Path | None, db: Path | None, *, writes: bool = True) -> Any:
    """The settings, with a `--db` that is not a papertrade warehouse, or (for `writes`)
    one it cannot write, refused before the run (a backtest writes its results there)."""
    from papertrade.interval import check_warehouse

    settings = settings_from(config, db)
    check_warehouse(settings, writes=writes)
    return settings
