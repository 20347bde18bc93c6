"""The end-of-day report: a Markdown summary (the flow turns it into a Prefect artifact and
Slack text) and a PNG of the equity curve with its drawdown.

Rendering is pure string/plot work on values the flow already computed; matplotlib is
imported inside `render_equity_chart` (with the Agg backend, no display needed), so importing
this module costs nothing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from papertrade.dq.results import DQResult

# (key in the metrics dict, label, format)
_METRIC_ROWS: list[tuple[str, str, str]] = [
    ("end_equity", "Equity", "money"),
    ("period_return", "Return (session)", "pct"),
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("volatility", "Volatility (ann.)", "pct"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("n_trades", "Trades", "int"),
]
TOP_POSITIONS = 10
_MAX_DQ_LINES = 20


def render_markdown(
    account_id: str,
    session_date: date,
    metrics: Mapping[str, Any],
    positions: pd.DataFrame,
    status: str,
    dq_failures: Iterable[DQResult],
) -> str:
    """The session's report in Markdown.

    `metrics` is `Metrics.as_dict()` (missing or non-finite values print as "n/a");
    `positions` has `symbol, quantity, market_value` and optionally `market_price`,
    `unrealized_pnl`: the largest `TOP_POSITIONS` by absolute market value are listed;
    `status` is the account's trading state (active, reducing, halted); `dq_failures` are
    the failed quality results (empty means every check passed).
    """
    failures = list(dq_failures)
    lines = [
        f"# Paper trading report: {account_id}, {session_date.isoformat()}",
        "",
        f"Trading state: **{status}** · Data quality: "
        + ("**passed**" if not failures else f"**{len(failures)} check(s) failed**"),
        "",
        "## Performance",
        "",
        "| Metric | Value |",
        "|---|---:|",
    ]
    lines += [f"| {label} | {_fmt(metrics.get(key), kind)} |" for key, label, kind in _METRIC_ROWS]
    lines += ["", "## Top positions", ""]
    lines += _positions_table(positions)
    lines += ["", "## Data quality", ""]
    lines += _dq_lines(failures)
    return "\n".join(lines) + "\n"


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "pct":
        return f"{float(value) * 100:.2f}%"
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "int":
        return f"{int(value):d}"
    return f"{float(value):.2f}"


def _positions_table(positions: pd.DataFrame) -> list[str]:
    held = positions[positions["quantity"] != 0] if len(positions) else positions
    if not len(held):
        return ["No open positions."]
    order = np.argsort(-np.abs(held["market_value"].to_numpy(dtype="float64")), kind="stable")
    top = held.iloc[order[:TOP_POSITIONS]]
    has_pnl = "unrealized_pnl" in top.columns
    header = "| Symbol | Quantity | Market value |" + (" Unrealized P&L |" if has_pnl else "")
    rule = "|---|---:|---:|" + ("---:|" if has_pnl else "")
    rows = []
    for rec in top.to_dict("records"):
        row = f"| {rec['symbol']} | {rec['quantity']:,.0f} | {_fmt(rec['market_value'], 'money')} |"
        if has_pnl:
            row += f" {_fmt(rec['unrealized_pnl'], 'money')} |"
        rows.append(row)
    more = len(held) - len(top)
    tail = ["", f"and {more} more."] if more > 0 else []
    return [header, rule, *rows, *tail]


def _dq_lines(failures: list[DQResult]) -> list[str]:
    if not failures:
        return ["All checks passed."]
    lines = ["| Suite | Expectation | Offending rows | Observed |", "|---|---|---:|---|"]
    for r in failures[:_MAX_DQ_LINES]:
        observed = r.observed_value.replace("|", "\\|")
        lines.append(f"| {r.suite} | {r.expectation} | {r.unexpected_count} | {observed} |")
    if len(failures) > _MAX_DQ_LINES:
        lines += ["", f"and {len(failures) - _MAX_DQ_LINES} more in `dq_results`."]
    return lines


def render_equity_chart(equity: pd.Series, path: Path) -> Path:
    """Save a PNG of `equity` (index: UTC timestamps or dates; values in account currency)
    above its drawdown from the running peak, as a filled negative percentage. Creates the
    parent directories; returns `path`. An empty series still yields a (blank) chart."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.ticker import StrMethodFormatter

    curve = equity.dropna().sort_index().astype("float64")
    peak = curve.cummax()
    drawdown = (curve / peak - 1.0) * 100.0
    x = curve.index
    if isinstance(x, pd.DatetimeIndex) and x.tz is not None:
        # matplotlib labels in the index's zone; UTC is the house zone, said in the label.
        x = x.tz_convert("UTC").tz_localize(None)

    fig, (top, bottom) = plt.subplots(
        2, 1, sharex=True, figsize=(10, 6), height_ratios=(3, 1), layout="constrained"
    )
    try:
        top.plot(x, curve.to_numpy(), color="#1f4e79", linewidth=1.4)
        top.set_title(f"Equity ({equity.name})" if equity.name else "Equity")
        top.set_ylabel("Equity")
        top.grid(alpha=0.3)
        top.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        bottom.fill_between(x, drawdown.to_numpy(), 0.0, color="#c0392b", alpha=0.4, linewidth=0)
        bottom.plot(x, drawdown.to_numpy(), color="#c0392b", linewidth=0.8)
        bottom.set_ylabel("Drawdown %")
        # A curve that never fell still gets a readable (empty) drawdown band.
        deepest = float(drawdown.min()) if len(drawdown) else 0.0
        bottom.set_ylim(min(deepest * 1.1, -1.0), 0.0)
        bottom.grid(alpha=0.3)
        if isinstance(x, pd.DatetimeIndex):
            locator = AutoDateLocator()
            bottom.xaxis.set_major_locator(locator)
            bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator))
            bottom.set_xlabel("Time (UTC)")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, format="png")
    finally:
        plt.close(fig)
    return path
