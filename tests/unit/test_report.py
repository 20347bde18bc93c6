"""The end-of-day report: Markdown content and the equity/drawdown PNG."""

from __future__ import annotations

import struct
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from papertrade.dq.results import DQResult
from papertrade.report import TOP_POSITIONS, render_equity_chart, render_markdown

SESSION = date(2024, 3, 4)


def make_metrics(**overrides: object) -> dict[str, object]:
    metrics: dict[str, object] = {
        "end_equity": 101_234.5,
        "period_return": 0.0123,
        "total_return": 0.012345,
        "cagr": 0.25,
        "sharpe": 1.5,
        "sortino": 2.25,
        "max_drawdown": -0.031,
        "volatility": 0.18,
        "win_rate": 0.6,
        "profit_factor": 1.8,
        "n_trades": 12,
    }
    metrics.update(overrides)
    return metrics


def make_positions(n: int) -> pd.DataFrame:
    symbols = [f"S{i:03d}" for i in range(n)]
    values = np.arange(1, n + 1, dtype="float64") * 1_000.0 * np.where(np.arange(n) % 2, -1, 1)
    return pd.DataFrame(
        {
            "symbol": symbols,
            "quantity": np.sign(values) * 10.0,
            "market_value": values,
            "unrealized_pnl": values * 0.01,
        }
    )


def make_equity(n: int = 390) -> pd.Series:
    rng = np.random.default_rng(7)
    index = pd.date_range(datetime(2024, 3, 4, 14, 30, tzinfo=UTC), periods=n, freq="min")
    values = 100_000.0 * np.cumprod(1.0 + rng.normal(0.0, 0.001, n))
    return pd.Series(values, index=index, name="paper")


def test_markdown_has_header_metrics_positions_and_passed_quality() -> None:
    md = render_markdown("paper", SESSION, make_metrics(), make_positions(3), "active", [])

    assert md.startswith("# Paper trading report: paper, 2024-03-04\n")
    assert "| Total return | 1.23% |" in md
    assert "| Sharpe | 1.50 |" in md
    assert "| Max drawdown | -3.10% |" in md
    assert "| Trades | 12 |" in md
    assert "| Equity | 101,234.50 |" in md
    assert "**active**" in md
    assert "All checks passed." in md
    assert md.index("S002") < md.index("S001") < md.index("S000")  # by |market value|


def test_markdown_lists_top_positions_only_and_says_how_many_more() -> None:
    positions = make_positions(TOP_POSITIONS + 4)

    md = render_markdown("paper", SESSION, make_metrics(), positions, "active", [])

    assert f"S{TOP_POSITIONS + 3:03d}" in md
    assert "| S000 |" not in md
    assert "and 4 more." in md


def test_markdown_shows_missing_metrics_as_na_and_no_positions() -> None:
    metrics = make_metrics(sharpe=None, profit_factor=float("nan"))
    metrics.pop("cagr")
    empty = make_positions(0)

    md = render_markdown("bt-1", SESSION, metrics, empty, "halted", [])

    assert "| Sharpe | n/a |" in md
    assert "| Profit factor | n/a |" in md
    assert "| CAGR | n/a |" in md
    assert "No open positions." in md


def test_markdown_lists_quality_failures() -> None:
    failures = [
        DQResult("ledger", "cash_reconciles", False, "1 of 1 rows unexpected", 1, []),
        DQResult("quotes", "valid_ask_ge_bid", False, "3 | of 1950", 3, []),
    ]

    md = render_markdown("paper", SESSION, make_metrics(), make_positions(1), "active", failures)

    assert "**2 check(s) failed**" in md
    assert "| ledger | cash_reconciles | 1 | 1 of 1 rows unexpected |" in md
    assert "| quotes | valid_ask_ge_bid | 3 | 3 \\| of 1950 |" in md
    assert "All checks passed." not in md


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_equity_chart_is_a_png_of_sensible_size(tmp_path: Path) -> None:
    target = tmp_path / "reports" / "paper" / "2024-03-04.png"

    out = render_equity_chart(make_equity(), target)

    assert out == target
    assert _png_size(out) == (1000, 600)
    assert 10_000 < out.stat().st_size < 500_000


def test_equity_chart_handles_flat_and_daily_curves(tmp_path: Path) -> None:
    flat = pd.Series([100_000.0] * 5, index=pd.date_range("2024-01-02", periods=5, tz="UTC"))
    daily = pd.Series([1.0, 1.1, 0.9, 1.2], index=[date(2024, 1, d) for d in (2, 3, 4, 5)])

    flat_png = render_equity_chart(flat, tmp_path / "flat.png")
    daily_png = render_equity_chart(daily, tmp_path / "daily.png")

    assert _png_size(flat_png) == (1000, 600)
    assert _png_size(daily_png) == (1000, 600)


def test_importing_the_report_does_not_import_matplotlib_or_gx() -> None:
    code = (
        "import sys, papertrade.report; "
        "print('matplotlib.pyplot' in sys.modules, 'great_expectations' in sys.modules)"
    )

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.split() == ["False", "False"]
