"""A small paper account on the simulated market, written as a real config file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

SYMBOLS = ["AAPL", "MSFT", "NVDA", "JPM", "XOM", "KO"]
# Monday 2026-11-23 is a regular session; Thanksgiving (11-26) is a holiday and the day after
# closes at 13:00 New York time.
SESSION_OPEN = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)
# An account opened here on the seeded simulated market fills orders in its third and every
# following interval (fills 0, 0, 2, 1, 1, 1): tests that need trades in a few intervals
# start here.
TRADING_START = SESSION_OPEN + timedelta(minutes=15)


def write_config(tmp_path: Path, *, extra: str = "", account: str = "paper") -> Path:
    """A config with fast averages (fills within a few intervals) and a notional cap low
    enough that some orders are rejected by RiskGuard."""
    path = tmp_path / "papertrade.toml"
    path.write_text(
        f"""
[account]
id = "{account}"
initial_cash = 100000

[universe]
symbols = {SYMBOLS!r}

[market_data]
history_bars = 20

[strategy]
name = "sma_crossover"
params = {{ fast = 2, slow = 5, qty = 100 }}

[risk]
max_order_notional = 20000

[warehouse]
path = "{tmp_path / "pt.duckdb"}"
reports_dir = "{tmp_path / "reports"}"
{extra}
"""
    )
    return path
