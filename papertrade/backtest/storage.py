"""Writing backtest runs and sweep tables to the warehouse (the only DuckDB code here).

A run goes through `warehouse.results.write_backtest`: one transaction that replaces the
account's previous run (orders, fills, equity per bar, positions at the end, and one
`daily_performance` row dated at the last bar's day, with that day's return and the whole
run's metrics). A sweep writes one `sweep_results` row per parameter set, replacing the rows
of the same sweep id.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from papertrade.backtest.engine import BacktestResult
from papertrade.errors import UserError
from warehouse.commit import insert_frame
from warehouse.frames import positions_frame
from warehouse.results import AccountKindConflict, write_backtest
from warehouse.transaction import transaction

SWEEP_COLUMNS = (
    "account_id", "sweep_id", "created_at", "strategy", "params_json", "metric", "rank",
    "final_equity", "n_fills", "total_return", "cagr", "sharpe", "sortino", "max_drawdown",
    "volatility", "win_rate", "profit_factor", "n_trades", "worker",
)  # fmt: skip


class BacktestAccountConflict(UserError):
    """The backtest's account id belongs to a paper account; its history is never replaced."""


def performance_row(result: BacktestResult) -> dict[str, Any]:
    """The run's metrics as a `daily_performance` row at the last bar's day, with that
    day's return (see `last_day`)."""
    m = result.metrics.as_dict()
    day, day_return = last_day(result.equity, result.metrics.start_equity)
    return {
        "session_date": day,
        "equity": m["end_equity"],
        "daily_return": None if math.isnan(day_return) else day_return,
        "cumulative_return": m["total_return"],
        "max_drawdown_duration": m["max_drawdown_periods"],
        **{
            k: m[k]
            for k in (
                "cagr",
                "volatility",
                "sharpe",
                "sortino",
                "max_drawdown",
                "calmar",
                "n_trades",
                "win_rate",
                "profit_factor",
                "avg_win",
                "avg_loss",
                "expectancy",
                "turnover",
                "avg_gross_exposure",
            )
        },
        "status": "ok",
    }


def last_day(equity: pd.DataFrame, start_equity: float) -> tuple[date | None, float]:
    """The run's last day and its return, as the `daily_pnl` view has them: days are New
    York dates, or the bars' own dates when every bar is stamped midnight UTC (daily bars
    labelled by date); the return is the day's last equity against the previous day's last,
    or `start_equity` on the run's first day (NaN from equity <= 0). The metrics' last
    period is one bar, which for intraday bars is the last minute, not the day.
    """
    if not len(equity):
        return None, math.nan
    ts = pd.DatetimeIndex(equity["ts"]).tz_convert("UTC")
    labels = ts if (ts == ts.normalize()).all() else ts.tz_convert("America/New_York")
    days = np.asarray(labels.date)
    values = equity["equity"].to_numpy(dtype=np.float64)
    earlier = np.flatnonzero(days != days[-1])
    previous = float(values[earlier[-1]]) if earlier.size else float(start_equity)
    day_return = float(values[-1]) / previous - 1.0 if previous > 0 else math.nan
    return days[-1], day_return


def store_backtest(
    conn: duckdb.DuckDBPyConnection,
    result: BacktestResult,
    *,
    initial_cash: float,
    created_at: datetime,
    config_json: str | None = None,
) -> dict[str, int]:
    """Replace the run stored under `result.account_id`; returns rows written per table.
    Raises `BacktestAccountConflict` (nothing written) for a paper account's id."""
    end = result.end_ts
    positions = (
        positions_frame(result.account_id, end, result.positions) if end is not None else None
    )
    try:
        return write_backtest(
            conn,
            result.account_id,
            initial_cash=initial_cash,
            created_at=created_at,
            orders=result.orders,
            fills=result.fills,
            equity=result.equity,
            positions=positions,
            daily_performance=[performance_row(result)] if end is not None else None,
            config_json=config_json,
        )
    except AccountKindConflict as exc:
        raise BacktestAccountConflict(
            f"{exc}: choose another --account-id for the backtest"
        ) from None


def store_sweep(
    conn: duckdb.DuckDBPyConnection,
    rows: Sequence[dict[str, Any]],
    *,
    sweep_id: str,
    account_id: str,
    strategy: str,
    metric: str,
    created_at: datetime,
) -> int:
    """Replace the `sweep_results` rows of `sweep_id` with `rows` (ranked sweep rows, as
    `papertrade.backtest.sweep.run_params` makes them) in one transaction."""
    frame = pd.DataFrame(
        [
            {
                "account_id": account_id,
                "sweep_id": sweep_id,
                "created_at": created_at,
                "strategy": strategy,
                "params_json": json.dumps(r["params"], sort_keys=True),
                "metric": metric,
                "rank": r["rank"],
                "final_equity": r["final_equity"],
                "n_fills": r["n_fills"],
                **r["metrics"],
                "worker": r.get("worker"),
            }
            for r in rows
        ],
        columns=list(SWEEP_COLUMNS),
    )
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    with transaction(conn):
        conn.execute("DELETE FROM sweep_results WHERE sweep_id = ?", [sweep_id])
        insert_frame(conn, "sweep_results", frame, SWEEP_COLUMNS)
    return len(frame)
