"""Ranking backtest runs by one metric: which parameter set did best.

Higher is better for every metric except `volatility` (lower is better); `max_drawdown` is a
negative fraction, so higher (closer to 0) is better. Runs whose metric is undefined (None:
NaN or inf) rank last, in their original order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from papertrade.errors import UserError

RANKABLE = (
    "sharpe", "sortino", "total_return", "cagr", "max_drawdown", "calmar", "volatility",
    "win_rate", "profit_factor", "expectancy", "n_trades", "final_equity",
)  # fmt: skip
LOWER_IS_BETTER = frozenset({"volatility"})


def check_metric(metric: str) -> str:
    """The metric name, or `UserError` listing the ones that rank."""
    if metric not in RANKABLE:
        raise UserError(f"--metric {metric!r}: not one of {', '.join(RANKABLE)}")
    return metric


def score(value: Any, metric: str) -> float:
    """A number where larger is better; -inf for an undefined value."""
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return -math.inf
    return -float(value) if metric in LOWER_IS_BETTER else float(value)


def rank(rows: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Rows (each with the metric at the top level or in `metrics`) best first, each
    given `rank` (1 = best). Ties keep their input order."""

    def value(row: dict[str, Any]) -> Any:
        return row[metric] if metric in row else row.get("metrics", {}).get(metric)

    order = sorted(range(len(rows)), key=lambda k: (-score(value(rows[k]), metric), k))
    return [{**rows[k], "rank": r} for r, k in enumerate(order, start=1)]
