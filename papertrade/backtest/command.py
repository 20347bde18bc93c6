"""The backtest command's shell, shared by `papertrade backtest` and the `backtest` flow:
gather and validate every input (settings, strategy, parameters, bars) -> run the engine ->
write the warehouse. Validation finishes before the warehouse is opened, so bad input
writes nothing.

Costs: `--commission-bps X` is a percent-of-value commission of X / 10,000 of the traded
value; `--slippage-bps X` a fixed slippage of X / 10,000 of the price against the trader.
Either one, when not given, comes from the config's `[broker]` section.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from paper_broker.commission import PercentCommission
from paper_broker.config import BrokerConfig
from paper_broker.fills import FillModel
from paper_broker.risk.guard import RiskGuard
from paper_broker.slippage import FixedBpsSlippage
from papertrade.backtest.bars import BarPanel, load_bars
from papertrade.backtest.engine import (
    BacktestConfig,
    BacktestResult,
    ProgressCallback,
    run_backtest,
)
from papertrade.errors import UserError
from papertrade.risk_wiring import risk_config_from_settings
from papertrade.settings import Settings
from papertrade.wiring import broker_config_from_settings
from strategies.base import Strategy
from strategies.registry import load_strategy

_ACCOUNT_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    """What the user asked for; None means "from the config"."""

    bars: Path
    strategy: str
    params: dict[str, Any] = field(default_factory=dict)
    cash: float | None = None
    fill_model: FillModel = FillModel.NEXT_OPEN
    commission_bps: float | None = None
    slippage_bps: float | None = None
    account_id: str | None = None
    risk: bool = True
    periods_per_year: int | None = None


@dataclass(frozen=True, slots=True)
class PreparedBacktest:
    """A validated request: the bars, the built strategy and the engine's configuration."""

    request: BacktestRequest
    panel: BarPanel
    strategy: Strategy
    config: BacktestConfig


def default_account_id(strategy: str) -> str:
    """`backtest-<strategy>`, with characters an account id cannot hold replaced by `_`
    (`my.pkg:Cls` -> `backtest-my.pkg_Cls`)."""
    return "backtest-" + re.sub(r"[^A-Za-z0-9_.-]", "_", strategy)


def broker_config_for(
    settings: Settings, commission_bps: float | None, slippage_bps: float | None
) -> BrokerConfig:
    """The config's broker rules, with the commission and/or slippage overridden in bps."""
    config = broker_config_from_settings(settings)
    changes: dict[str, Any] = {}
    if commission_bps is not None:
        changes["commission"] = PercentCommission(commission_bps * 1e-4)
    if slippage_bps is not None:
        changes["slippage"] = FixedBpsSlippage(slippage_bps)
    return dataclasses.replace(config, **changes) if changes else config


def check_account_id(account_id: str, settings: Settings) -> str:
    """Refuse a malformed id, and the paper account's id: a backtest replaces its account's
    rows and must never touch paper-trading history."""
    if not _ACCOUNT_RE.match(account_id):
        raise UserError(f"--account-id {account_id!r}: use letters, digits, '_', '.', '-'")
    if account_id == settings.account.id:
        raise UserError(
            f"--account-id {account_id!r} is the paper account ([account] id); "
            "a backtest needs its own id"
        )
    return account_id


# the bounds of the config keys the options stand for: [broker] slippage_bps (a slippage
# past 100% of the price sells at a negative price) and commission_pct (at most the value)
MAX_SLIPPAGE_BPS = 1_000.0
MAX_COMMISSION_BPS = 10_000.0


def check_costs(request: BacktestRequest) -> None:
    if request.cash is not None and not (math.isfinite(request.cash) and request.cash > 0):
        raise UserError(f"--cash {request.cash}: must be a finite number > 0")
    for name, value, most in (
        ("--commission-bps", request.commission_bps, MAX_COMMISSION_BPS),
        ("--slippage-bps", request.slippage_bps, MAX_SLIPPAGE_BPS),
    ):
        if value is not None and not (math.isfinite(value) and 0 <= value <= most):
            raise UserError(f"{name} {value}: must be a number from 0 to {most:g}")


def engine_config(settings: Settings, request: BacktestRequest, account_id: str) -> BacktestConfig:
    return BacktestConfig(
        account_id=account_id,
        initial_cash=request.cash if request.cash is not None else settings.account.initial_cash,
        fill_model=request.fill_model,
        broker=broker_config_for(settings, request.commission_bps, request.slippage_bps),
        risk=RiskGuard(risk_config_from_settings(settings)) if request.risk else None,
        periods_per_year=request.periods_per_year or DAILY_PERIODS,
        calendar=settings.market_data.calendar,
    )


DAILY_PERIODS = 252


def annualisation_note(panel: BarPanel, request: BacktestRequest) -> str | None:
    """A warning when the bars are intraday, weekly or longer but the metrics annualise
    them as days: a Sharpe of minute bars times sqrt(252) looks like a daily one and is
    not, and weekly bars read as days raise their CAGR to the power 252 / periods."""
    if request.periods_per_year is not None or panel.n_bars < 3:
        return None
    step = pd.Series(panel.timestamps).diff().median()
    if step >= pd.Timedelta(days=4):  # daily bars are a day apart, three over a weekend
        days = step / pd.Timedelta(days=1)
        return (
            f"the bars are {days:g} days apart, but the metrics annualise {DAILY_PERIODS}"
            f" periods a year (daily bars): pass --periods-per-year, e.g."
            f" {round(365.25 / days)} for {days:g}-day bars"
        )
    if step >= pd.Timedelta(hours=20):
        return None
    minutes = step / pd.Timedelta(minutes=1)
    return (
        f"the bars are {minutes:g} minute{'s' if minutes != 1 else ''} apart, but the metrics"
        f" annualise {DAILY_PERIODS}"
        f" periods a year (daily bars): pass --periods-per-year, e.g."
        f" {round(DAILY_PERIODS * 390 / minutes)} for {minutes:g}-minute bars of 6.5-hour"
        " sessions"
    )


def history_note(prepared: PreparedBacktest) -> str | None:
    """A warning when the file is too short for the strategy's first signal: the run can
    make no order, and its flat result would otherwise not say why (a paper account is
    refused for the same reason; a backtest still runs and is stored)."""
    needed = int(getattr(prepared.strategy, "history_needed", 0))
    n_bars = prepared.panel.n_bars
    if n_bars > needed:
        return None
    return (
        f"strategy {prepared.request.strategy} needs {needed} bars before its first signal"
        f" and the file has {n_bars}: it cannot trade"
    )


def prepare(settings: Settings, request: BacktestRequest) -> PreparedBacktest:
    """Validate everything (raises a `UserError` or `StrategyError`, nothing written)."""
    check_costs(request)
    # an empty --account-id (a script's unset variable) is refused, not the default's
    # results silently replaced
    given = request.account_id
    account_id = check_account_id(
        given if given is not None else default_account_id(request.strategy), settings
    )
    strategy = load_strategy(request.strategy, request.params)
    panel = load_bars(request.bars)
    return PreparedBacktest(request, panel, strategy, engine_config(settings, request, account_id))


def run(prepared: PreparedBacktest, on_progress: ProgressCallback | None = None) -> BacktestResult:
    return run_backtest(prepared.panel, prepared.strategy, prepared.config, on_progress=on_progress)


def config_json(prepared: PreparedBacktest) -> str:
    """What the run was, for the `accounts` row: strategy, params, costs, file, fill model."""
    r = prepared.request
    return json.dumps(
        {
            "strategy": r.strategy,
            "params": r.params,
            "bars": str(r.bars),
            "fill_model": r.fill_model.value,
            "cash": prepared.config.initial_cash,
            "commission_bps": r.commission_bps,
            "slippage_bps": r.slippage_bps,
            "risk": r.risk,
            "periods_per_year": prepared.config.periods_per_year,
        },
        sort_keys=True,
        default=str,
    )


def store(
    settings: Settings, prepared: PreparedBacktest, result: BacktestResult, created_at: datetime
) -> dict[str, int]:
    """Write the run to the warehouse (lock-aware writer connection); rows per table."""
    from papertrade.backtest.storage import store_backtest
    from warehouse.connection import connect

    with connect(settings.warehouse.path, timeout=settings.warehouse.lock_timeout_seconds) as conn:
        return store_backtest(
            conn,
            result,
            initial_cash=prepared.config.initial_cash,
            created_at=created_at,
            config_json=config_json(prepared),
        )


def metrics_markdown(result: BacktestResult, title: str) -> str:
    """A Markdown table of the run's summary (the flow's artifact, the CLI's text)."""
    s = result.summary()
    lines = [
        f"# {title}",
        "",
        f"account `{s['account_id']}`, {len(result.equity)} bars, {s['n_fills']} fills; orders"
        f" refused: {s['n_risk_rejections']} by the risk checks, {s['n_broker_rejections']} by"
        " the broker",
        "",
        "| metric | value |",
        "|---|---|",
        f"| final_equity | {_fmt(s['final_equity'])} |",
        *(f"| {k} | {_fmt(v)} |" for k, v in s["metrics"].items()),
    ]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4f}"
    return str(value)
