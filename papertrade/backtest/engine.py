"""The backtest engine: one pass through time, each bar's cross-section of symbols as arrays.

Per bar t (timestamp `ts[t]`, the bar's close time):

- `next_open`: the broker first processes bar t, which fills the orders submitted at earlier
  bars at t's open (plus slippage, rounded to the tick against the trader); then the
  strategy decides at t from closes <= t and its orders wait for bar t+1. An order decided
  on the last bar therefore stays open (status `accepted`, never filled, never canceled):
  there is no later bar to fill it, and the result reports it as it is (a DAY order
  decided on a bar that ends an intraday session expires instead, below).
- `close`: bar t first fills the orders still open from earlier bars at its close; then
  the strategy decides at t, its orders are submitted and bar t fills them at its close in
  the same step (the classic "trade at the close you just saw" assumption), with the volume
  the resting orders left. This is the order of a paper interval on the same prices:
  resting orders fill against the new quotes, then the strategy runs, then its orders fill.

Orders keep the strategy's time in force. On daily bars nothing expires between bars: a
bar is a whole session, and a DAY order decided on bar t must be able to fill at bar t+1's
open under `next_open`. On intraday bars, DAY orders still open after the last bar of an
exchange session expire there (status `expired`), as paper expires them at the session's
last interval: the rest of a volume-capped fill or a resting limit does not carry into the
next session, and under `next_open` an order decided on a session's last bar, which could
only fill at the next session's open, expires unfilled (a DAY order decided at the close
cannot fill in its session). GTC orders work on. Which bars end a session (the next bar
belongs to a later session, or past an early close; the calendar of `BacktestConfig`) is
worked out once before the loop by `papertrade.backtest.sessions.session_end_bars`, which
for daily bars finds none without building the calendar. Bars where the strategy has
nothing to do (`Prepared.active[t]` False) and no order is open cost one array copy (the
broker marks at the close).

With a RiskGuard, each batch of intents is checked by `RiskGuard.check_arrays` on the bar's
closes (bid = ask = last) and the account as arrays over the panel's symbols; bars without
intents never call it.

The equity curve is valued afterwards, vectorised: positions are the running sum of signed
fill quantities, cash the running sum of fill cash flows, marks the last finite close; so the
loop never values the account on a quiet bar. The ledger identity makes this equal to the
broker's own equity (checked in the tests). The metrics measure that curve from the initial
cash (see `start_equity`), whichever the fill model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from paper_broker.broker import PaperBroker
from paper_broker.config import BrokerConfig
from paper_broker.enums import TradingState
from paper_broker.fills import FillModel
from paper_broker.ids import client_order_id
from paper_broker.ledger import QTY_EPS
from paper_broker.records import Fill, Order, OrderIntent, PositionRecord
from paper_broker.risk.batch import REASONS, IntentArrays, PortfolioArrays, strategy_intents
from paper_broker.risk.guard import RiskGuard, risk_rejected_order
from papertrade.backtest.bars import BarPanel
from papertrade.backtest.sessions import session_end_bars
from papertrade.calendar import MarketCalendar
from papertrade.metrics import Metrics, compute_metrics
from strategies.base import Strategy

# keys of `Metrics` that the `--json` summary carries, in this order
SUMMARY_METRICS = (
    "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "volatility", "win_rate",
    "profit_factor", "n_trades",
)  # fmt: skip

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """How one backtest runs.

    account_id: the id every order, fill and warehouse row carries (never the paper one).
    initial_cash: starting cash, account currency.
    fill_model: see the module docstring.
    broker: slippage, commission, tick and volume-cap rules (the paper broker's own).
    risk: pre-trade RiskGuard applied to every batch of intents (None: no risk checks);
        portfolio guards (daily loss, drawdown) are not applied to backtests.
    periods_per_year: annualisation of per-bar returns (252 for daily bars).
    calendar: the exchange calendar (an `exchange_calendars` name, the paper account's
        `[market_data] calendar`) whose session closes expire DAY orders on intraday bars.
    """

    account_id: str
    initial_cash: float = 100_000.0
    fill_model: FillModel = FillModel.NEXT_OPEN
    broker: BrokerConfig = field(default_factory=BrokerConfig)
    risk: RiskGuard | None = None
    periods_per_year: int = 252
    calendar: str = "XNYS"


@dataclass(slots=True)
class BacktestResult:
    """Everything one run produced. `equity` has one row per bar from the first traded
    bar: ts, cash, positions_value, equity, gross_exposure, net_exposure (currency);
    `metrics` measure it from the initial cash (see `start_equity`)."""

    account_id: str
    strategy: str
    equity: pd.DataFrame
    orders: list[Order]
    fills: list[Fill]
    positions: list[PositionRecord]
    metrics: Metrics
    risk_rejections: int = 0
    broker_rejections: int = 0
    broker_equity: float = float("nan")

    @property
    def final_equity(self) -> float:
        return float(self.equity["equity"].iat[-1]) if len(self.equity) else float("nan")

    @property
    def end_ts(self) -> datetime | None:
        return self.equity["ts"].iat[-1].to_pydatetime() if len(self.equity) else None

    def summary(self) -> dict[str, Any]:
        """The `--json` object: account_id, final_equity, n_fills, the orders the risk checks
        and the broker refused (a run with no fills says why), metrics (NaN/inf None)."""
        metrics = self.metrics.as_dict()
        final = self.final_equity
        return {
            "account_id": self.account_id,
            "final_equity": final if np.isfinite(final) else None,
            "n_fills": len(self.fills),
            "n_risk_rejections": self.risk_rejections,
            "n_broker_rejections": self.broker_rejections,
            "metrics": {k: metrics[k] for k in SUMMARY_METRICS},
        }


def run_backtest(
    panel: BarPanel,
    strategy: Strategy,
    config: BacktestConfig,
    *,
    trade_from: int = 0,
    on_progress: ProgressCallback | None = None,
) -> BacktestResult:
    """Run `strategy` over `panel` through a fresh `PaperBroker`.

    trade_from: the first bar the strategy may trade at; earlier bars only warm up its
        indicators and are left out of the equity curve (walk-forward test windows).
    on_progress: called as (bars done, total) about a hundred times over the run.
    Raises ValueError if `trade_from` is outside the panel.
    """
    n_bars, n_sym = panel.close.shape
    if not 0 <= trade_from < n_bars:
        raise ValueError(f"trade_from {trade_from} outside 0..{n_bars - 1}")
    fill_model = config.fill_model
    next_open = fill_model is FillModel.NEXT_OPEN
    broker = PaperBroker(config.account_id, config.initial_cash, config.broker, panel.symbols)
    prepared = strategy.prepare(panel.closes_frame())
    active = np.asarray(prepared.active, dtype=bool)
    op, hi, lo, cl, vol = panel.open, panel.high, panel.low, panel.close, panel.volume
    tradable = np.isfinite(cl) & (cl > 0)
    last = _last_finite(cl)  # the broker's marks after each bar (NaN: none yet)
    marks = np.nan_to_num(last)  # 0 where no close yet: nothing is held there
    times = list(panel.timestamps.to_pydatetime())
    index = {s: i for i, s in enumerate(panel.symbols)}
    book = _FillBook(n_sym, config.initial_cash, index)
    name = getattr(strategy, "name", "") or type(strategy).__name__
    aid = config.account_id
    risk_rejections = broker_rejections = 0
    refused: list[Order] = []  # the intents the risk checks refused, as rejected orders
    every = max(1, n_bars // 100)
    process = broker.process_bar_arrays
    guard = config.risk
    counts_open_orders = bool(getattr(strategy, "counts_open_orders", False))
    # computed once: the loop only asks whether bar t closed a session
    session_ends = frozenset(
        session_end_bars(panel.timestamps, MarketCalendar(config.calendar)).tolist()
    )

    for t in range(n_bars):
        now = times[t]
        # the orders of earlier bars fill first (at t's open, or at its close), so the
        # strategy decides on what is held, as an interval fills its resting orders before
        # its strategy runs; with nothing open this only marks the closes
        fills = process(op[t], hi[t], lo[t], cl[t], vol[t], now, fill_model)
        if fills:
            book.add(t, fills, broker.realized_pnl)
        if t >= trade_from and active[t]:
            equity = book.cash + float(book.qty @ marks[t])
            # what the open orders may still buy and sell, for the strategy and the risk checks
            pending = (
                PortfolioArrays.pending(*broker.open_quantities(), index, n_sym)
                if counts_open_orders or guard is not None
                else (None, None)
            )
            held = book.qty.copy()
            buys, sells = pending
            if counts_open_orders and buys is not None and sells is not None:
                held += buys - sells  # as `generate` does on paper (see BaseStrategy)
            intents = strategy_intents(
                strategy.decide(t, prepared, held, equity, cl[t], tradable[t]), name
            )
            if intents:
                intents = _numbered(intents, client_order_id(aid, now, name, 0))
                if guard is not None:
                    verdict = guard.check_arrays(
                        IntentArrays.of(intents, index), cl[t], cl[t], cl[t],
                        _portfolio(broker, book.qty, last[t], pending), TradingState.ACTIVE,
                        universe=panel.symbols,
                    )  # fmt: skip
                    if verdict.n_rejected:
                        risk_rejections += verdict.n_rejected
                        refused.extend(
                            risk_rejected_order(aid, intents[k], REASONS[verdict.code[k]], now)
                            for k in np.flatnonzero(~verdict.approved).tolist()
                        )
                        intents = [intents[k] for k in verdict.approved_index().tolist()]
                if intents:
                    broker_rejections += len(broker.submit(intents, now).rejections)
                    if not next_open:
                        # the new orders fill at the close just seen, on the volume the
                        # resting ones left (the broker shares one cap between the passes)
                        fills = process(op[t], hi[t], lo[t], cl[t], vol[t], now, fill_model)
                        if fills:
                            book.add(t, fills, broker.realized_pnl)
        if t in session_ends:
            # the session closed with this bar: what is left of its DAY orders expires, as
            # at paper's last interval, and never fills in the next session
            broker.expire_day_orders(now)
        if on_progress is not None and (t + 1) % every == 0:
            on_progress(t + 1, n_bars)

    changes = broker.drain_changes()
    equity = book.curve(marks, panel.timestamps)[trade_from:].reset_index(drop=True)
    fills_df = fills_frame(changes.fills)
    gross = pd.Series(equity["gross_exposure"].to_numpy(), index=equity["ts"])
    metrics = compute_metrics(
        pd.Series(equity["equity"].to_numpy(), index=equity["ts"]),
        fills=fills_df,
        gross_exposure=gross,
        periods_per_year=config.periods_per_year,
        start_equity=start_equity(config),
    )
    return BacktestResult(
        account_id=aid,
        strategy=name,
        equity=equity,
        orders=[*changes.orders, *refused],
        fills=changes.fills,
        positions=broker.positions(),
        metrics=metrics,
        risk_rejections=risk_rejections,
        broker_rejections=broker_rejections,
        broker_equity=broker.account().equity,
    )


def start_equity(config: BacktestConfig) -> float | None:
    """The point the metrics put before a run's first bar (None: that bar is the start).

    Under `next_open` nothing fills at the first traded bar (no order precedes it), so its
    equity is the initial cash already; under `close` it holds that bar's fills and
    commissions, and measuring from it would lose the first bar's return."""
    return None if config.fill_model is FillModel.NEXT_OPEN else config.initial_cash


def fills_frame(fills: list[Fill]) -> pd.DataFrame:
    """The columns `round_trips` and the turnover need: ts, symbol, side, quantity, price,
    commission."""
    return pd.DataFrame(
        {
            "ts": pd.DatetimeIndex([f.ts for f in fills], dtype="datetime64[ns, UTC]"),
            "symbol": [f.symbol for f in fills],
            "side": [f.side.value for f in fills],
            "quantity": np.array([f.quantity for f in fills], dtype=np.float64),
            "price": np.array([f.price for f in fills], dtype=np.float64),
            "commission": np.array([f.commission for f in fills], dtype=np.float64),
        }
    )


class _FillBook:
    """Positions and cash as the fills come in (for `decide`), and the fill columns from
    which the whole equity curve is valued at the end, with the broker's realized P&L after
    each bar that filled (the paper account's equity rows carry realized and unrealized
    P&L, and `daily_pnl` and `equity_curve` read them)."""

    __slots__ = (
        "bar", "cash", "fee", "flow", "index", "initial_cash", "qty", "realized", "signed", "sym",
    )  # fmt: skip

    def __init__(self, n_sym: int, initial_cash: float, index: dict[str, int]) -> None:
        self.qty = np.zeros(n_sym)
        self.initial_cash = float(initial_cash)
        self.cash = float(initial_cash)
        self.index = index
        self.bar: list[int] = []
        self.sym: list[int] = []
        self.signed: list[float] = []
        self.flow: list[float] = []
        self.fee: list[float] = []
        self.realized: dict[int, float] = {}

    def add(self, t: int, fills: list[Fill], realized_pnl: float) -> None:
        """Book one bar's fills; `realized_pnl` is the broker's total after them."""
        self.realized[t] = realized_pnl
        for f in fills:
            i = self.index[f.symbol]
            q = f.side.sign * f.quantity
            cash_flow = -q * f.price - f.commission
            # the ledger's rule: float dust left by partial fills is no position
            held = self.qty[i] + q
            self.qty[i] = 0.0 if abs(held) < QTY_EPS else held
            self.cash += cash_flow
            self.bar.append(t)
            self.sym.append(i)
            self.signed.append(q)
            self.flow.append(cash_flow)
            self.fee.append(f.commission)

    def curve(self, marks: np.ndarray, timestamps: pd.DatetimeIndex) -> pd.DataFrame:
        n_bars, n_sym = marks.shape
        bar = np.asarray(self.bar, dtype=np.int64)
        delta = np.zeros((n_bars, n_sym))
        np.add.at(delta, (bar, np.asarray(self.sym, dtype=np.int64)), self.signed)
        qty = np.cumsum(delta, axis=0)
        flows = np.bincount(bar, weights=np.asarray(self.flow), minlength=n_bars)
        cash = self.initial_cash + np.cumsum(flows)
        value = qty * marks
        pv = value.sum(axis=1)
        equity = cash + pv
        realized = np.zeros(n_bars)
        if self.realized:
            at = np.fromiter(self.realized, dtype=np.int64, count=len(self.realized))
            realized[at] = np.fromiter(self.realized.values(), dtype=np.float64, count=at.size)
            # each bar carries the total of the last bar that filled
            filled = np.zeros(n_bars, dtype=bool)
            filled[at] = True
            realized = realized[np.maximum.accumulate(np.where(filled, np.arange(n_bars), 0))]
        fees = np.cumsum(np.bincount(bar, weights=np.asarray(self.fee), minlength=n_bars))
        return pd.DataFrame(
            {
                "ts": timestamps,
                "cash": cash,
                "positions_value": pv,
                "equity": equity,
                "gross_exposure": np.abs(value).sum(axis=1),
                "net_exposure": pv,
                "realized_pnl": realized,
                # the ledger's identity: equity - initial cash = realized + unrealized - fees
                "unrealized_pnl": equity - self.initial_cash - realized + fees,
            }
        )


def _numbered(intents: list[OrderIntent], first_id: str) -> list[OrderIntent]:
    """The intents with the deterministic client order ids of `paper_broker.ids`, numbered
    from 0 in decision order, as a paper interval numbers them. `first_id` is the id of
    sequence 0; the sequence is its last five digits, so one strftime serves the whole bar."""
    stem = first_id.removesuffix("00000")
    return [
        OrderIntent(
            it.symbol,
            it.side,
            it.quantity,
            it.order_type,
            it.time_in_force,
            it.limit_price,
            it.stop_price,
            f"{stem}{k:05d}",
            it.strategy,
        )
        for k, it in enumerate(intents)
    ]


def _last_finite(close: np.ndarray) -> np.ndarray:
    """Each symbol's last finite close up to each bar (the broker's mark); NaN before any."""
    return pd.DataFrame(close).ffill().to_numpy()


def _portfolio(
    broker: PaperBroker,
    qty: np.ndarray,
    marks: np.ndarray,
    pending: tuple[np.ndarray, np.ndarray] | tuple[None, None],
) -> PortfolioArrays:
    """The account the RiskGuard sees, as arrays over the panel's symbols: the broker's own
    totals (equity, buying power, exposures at its marks) with the fill book's positions
    and the last closes, which are what the broker holds and marks (the book flattens dust
    as the ledger does; the broker marks each bar's finite closes), and `pending`, what its
    open orders may still buy and sell."""
    acct = broker.account()
    return PortfolioArrays(
        positions=qty,
        marks=marks,
        equity=acct.equity,
        buying_power=acct.buying_power,
        gross_exposure=acct.gross_exposure,
        net_exposure=acct.net_exposure,
        open_order_count=len(broker.open_orders()),
        pending_buy=pending[0],
        pending_sell=pending[1],
    )
