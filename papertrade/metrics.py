"""Performance metrics of an equity curve and its round-trip trades (pure: numpy and pandas).

The same functions serve a backtest (one equity point per bar) and paper trading (one point
per session close). Conventions follow empyrical / quantstats:

- returns are simple returns of consecutive equity points, ``r_t = E_t / E_{t-1} - 1``;
- annualisation by ``periods_per_year`` (252 for sessions), risk-free rate 0;
- standard deviations are sample ones (``ddof=1``);
- ``sharpe = mean(r) / std(r) * sqrt(periods_per_year)``;
- ``sortino = mean(r) / dd * sqrt(periods_per_year)`` with the downside deviation
  ``dd = sqrt(mean(min(r, 0)^2))`` taken over *all* periods, exactly as empyrical's
  ``downside_risk`` / ``sortino_ratio`` (quantopian/empyrical, empyrical/stats.py);
- ``max_drawdown`` is a negative fraction of the running peak (-0.25 = 25% below it);
- ``cagr = (end / start) ** (periods_per_year / n_periods) - 1``, ``calmar = cagr / |mdd|``.

Undefined values are NaN, never a crash or a numpy warning: ratios need two returns and a
non-zero denominator (empyrical answers ``inf`` for a Sortino without a losing period; here
it is NaN, "no downside observed"). ``profit_factor`` is ``inf`` when there are winning
trades and no losing one, NaN when there is neither; a CAGR too large for a float is ``inf``.
``Metrics.as_dict`` turns every non-finite float (NaN, ``inf``) into ``None`` so JSON and
DuckDB receive NULL; ``n_wins`` and ``n_losses`` tell an all-winners NULL from a no-trades
NULL.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

ROUND_TRIP_COLUMNS = [
    "symbol",
    "direction",
    "entry_ts",
    "exit_ts",
    "quantity",
    "entry_price",
    "exit_price",
    "commission",
    "pnl",
]

# Quantities below this are treated as zero when matching lots (float64 fills of fractional
# shares leave residues like 1e-13 that must not become phantom trades).
_QTY_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Metrics:
    """Performance of one account over one equity curve. Money in account currency,
    returns and drawdowns as fractions (0.01 = 1%), ratios annualised by `periods_per_year`.

    `n_periods` counts returns (equity points - 1). `max_drawdown_periods` is the length of
    the deepest drawdown, from its peak to the recovery (or to the last point if it has not
    recovered), in periods. `turnover` is traded notional / average equity over the curve;
    `avg_gross_exposure` the mean of sum(|position value|) / equity. Trade P&L (`avg_win`,
    `avg_loss`, `expectancy`) is net of commissions; `gross_pnl` is the round trips' P&L
    before them, the sum of the `round_trips` view's `gross_pnl`.
    """

    start_equity: float
    end_equity: float
    n_periods: int
    period_return: float
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float
    max_drawdown_periods: int
    calmar: float
    n_trades: int
    n_wins: int
    n_losses: int
    win_rate: float
    profit_factor: float
    avg_win: float
    avg_loss: float
    expectancy: float
    gross_pnl: float
    turnover: float
    avg_gross_exposure: float

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON and the warehouse: non-finite floats become None."""
        return {
            key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in asdict(self).items()
        }


def compute_metrics(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    periods_per_year: int = 252,
    fills: pd.DataFrame | None = None,
    gross_exposure: pd.Series | None = None,
    start_equity: float | None = None,
) -> Metrics:
    """Metrics of an equity curve (index: timestamps or dates; NaNs dropped; sorted by index).

    `trades` is a `round_trips` frame (computed from `fills` when omitted and fills are
    given); `fills` (`quantity`, `price`) give the turnover; `gross_exposure` is the gross
    position value in currency per equity point (e.g. sum of |market_value|), aligned on
    the equity index. `start_equity` is the equity before the curve's first point (the
    initial cash of a run whose first point already holds trades): it becomes the first
    point, with no exposure, so returns are measured from it. Never raises on short or
    flat inputs: see the module docstring.
    """
    curve = _with_start(equity.dropna().sort_index().to_numpy(dtype=np.float64), start_equity)
    if trades is None and fills is not None:
        trades = round_trips(fills)
    curve_stats = _curve_stats(curve, periods_per_year)
    trade_stats = _trade_stats(trades)
    mean_equity = float(curve.mean()) if curve.size else math.nan
    turnover = math.nan
    if fills is not None and mean_equity > 0:
        notional = np.abs(
            fills["quantity"].to_numpy(np.float64) * fills["price"].to_numpy(np.float64)
        )
        turnover = float(notional.sum()) / mean_equity
    avg_gross = math.nan
    if gross_exposure is not None:
        aligned = _with_start(
            gross_exposure.reindex(equity.index).to_numpy(dtype=np.float64),
            None if start_equity is None else 0.0,
        )
        eq = _with_start(equity.to_numpy(dtype=np.float64), start_equity)
        ok = np.isfinite(aligned) & np.isfinite(eq) & (eq > 0)
        if ok.any():
            avg_gross = float(np.mean(np.abs(aligned[ok]) / eq[ok]))
    return Metrics(**curve_stats, **trade_stats, turnover=turnover, avg_gross_exposure=avg_gross)


def _with_start(values: np.ndarray, start: float | None) -> np.ndarray:
    """`values` with `start` in front (unchanged when there is no start)."""
    return values if start is None else np.concatenate(([float(start)], values))


def _curve_stats(curve: np.ndarray, periods_per_year: int) -> dict[str, Any]:
    nan = math.nan
    n = curve.size
    if n == 0:
        return dict(
            start_equity=nan, end_equity=nan, n_periods=0, period_return=nan,
            total_return=nan, cagr=nan, volatility=nan, sharpe=nan, sortino=nan,
            max_drawdown=nan, max_drawdown_periods=0, calmar=nan,
        )  # fmt: skip
    start, end = float(curve[0]), float(curve[-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = curve[1:] / curve[:-1] - 1.0
    # A period starting from zero or negative equity has no meaningful return.
    returns = np.where(curve[:-1] > 0, returns, np.nan)
    n_periods = n - 1
    total_return = end / start - 1.0 if start > 0 else nan
    period_return = float(returns[-1]) if n_periods else nan

    cagr = nan
    if n_periods and start > 0 and end >= 0:
        cagr = _annualised_growth(end / start, periods_per_year / n_periods)

    volatility = sharpe = sortino = nan
    finite = returns[np.isfinite(returns)]
    if finite.size >= 2:
        mean = float(finite.mean())
        std = float(finite.std(ddof=1))
        volatility = std * math.sqrt(periods_per_year)
        if std > 0:
            sharpe = mean / std * math.sqrt(periods_per_year)
        downside = math.sqrt(float(np.mean(np.minimum(finite, 0.0) ** 2)))
        if downside > 0:
            sortino = mean / downside * math.sqrt(periods_per_year)

    max_drawdown, mdd_periods = _max_drawdown(curve)
    calmar = cagr / abs(max_drawdown) if max_drawdown < 0 and math.isfinite(cagr) else nan
    return dict(
        start_equity=start, end_equity=end, n_periods=n_periods, period_return=period_return,
        total_return=total_return, cagr=cagr, volatility=volatility, sharpe=sharpe,
        sortino=sortino, max_drawdown=max_drawdown, max_drawdown_periods=mdd_periods,
        calmar=calmar,
    )  # fmt: skip


def _annualised_growth(ratio: float, exponent: float) -> float:
    """`ratio ** exponent - 1`, or inf when that is beyond a float: a short run's gain
    annualised over many periods (+77% in an hour of minute bars is 1.77 ** 1666) overflows,
    and Python's float power raises `OverflowError` instead of answering inf."""
    try:
        return ratio**exponent - 1.0
    except OverflowError:
        return math.inf


def _max_drawdown(curve: np.ndarray) -> tuple[float, int]:
    """Deepest fall below the running peak (a fraction <= 0) and its length in periods."""
    peak = np.maximum.accumulate(curve)
    if not (peak > 0).all():
        return math.nan, 0
    drawdown = curve / peak - 1.0
    trough = int(np.argmin(drawdown))
    depth = float(drawdown[trough])
    if depth >= 0:
        return 0.0, 0
    # The drawdown starts at the last time the peak was reached before the trough.
    start = trough - int(np.argmax(curve[trough::-1] >= peak[trough]))
    recovered = np.flatnonzero(curve[trough:] >= peak[trough])
    end = trough + int(recovered[0]) if recovered.size else curve.size - 1
    return depth, end - start


def _trade_stats(trades: pd.DataFrame | None) -> dict[str, Any]:
    nan = math.nan
    pnl = (
        trades["pnl"].to_numpy(dtype=np.float64)
        if trades is not None and len(trades)
        else np.empty(0)
    )
    # before commissions, as the view's `gross_pnl`; a trades frame without them (pnl only)
    # knows no costs
    commission = (
        float(trades["commission"].sum())
        if trades is not None and len(trades) and "commission" in trades
        else 0.0
    )
    wins, losses = pnl[pnl > 0], pnl[pnl < 0]
    n = pnl.size
    gross_profit, gross_loss = float(wins.sum()), float(-losses.sum())
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    elif gross_profit > 0:
        profit_factor = math.inf
    else:
        profit_factor = nan
    return dict(
        n_trades=n,
        n_wins=int(wins.size),
        n_losses=int(losses.size),
        win_rate=wins.size / n if n else nan,
        profit_factor=profit_factor,
        avg_win=float(wins.mean()) if wins.size else nan,
        avg_loss=float(losses.mean()) if losses.size else nan,
        expectancy=float(pnl.mean()) if n else nan,
        gross_pnl=float(pnl.sum()) + commission,
    )


def round_trips(fills: pd.DataFrame) -> pd.DataFrame:
    """Closed trades matched first-in-first-out, one row per closing fill.

    The same trades as the warehouse view `round_trips` (`warehouse/views.py`), computed the
    same way, so a backtest's or a session's `n_trades` and `win_rate` count the rows a user
    gets from `SELECT * FROM round_trips`; grouping by the closing fill is also how pyfolio
    counts round trips. `fills` has `ts, symbol, side ('buy'|'sell'), quantity (> 0), price,
    commission`; order within equal timestamps is the frame's order (the view's is
    `ts, fill_id`).

    A closing fill consumes the oldest open lots of its symbol. Its row aggregates them:
    `quantity` is the quantity closed, `entry_price` the quantity-weighted price of the lots
    consumed, `entry_ts` the earliest of their fills, `exit_price` and `exit_ts` the closing
    fill's. Each fill's commission is allocated pro rata by quantity to the lots it opens and
    closes, so `commission` is the consumed lots' shares of their opening fills' commissions
    plus the closed quantity's share of the closing fill's, and `pnl` is net of it:
    `sign * quantity * (exit_price - entry_price) - commission` (sign +1 long, -1 short),
    summed lot by lot so that a trade closed at its entry price without costs is exactly 0,
    neither a win nor a loss.
    A fill that flips a position gives one trade for the part that closes the old lots and
    opens a new lot with the rest. Lots still open at the end are not trades. FIFO state is
    path dependent, so the matching walks the fills once in Python per symbol over plain
    arrays.
    """
    if fills is None or len(fills) == 0:
        return _empty_round_trips()
    keys = pd.DataFrame(
        {
            "symbol": fills["symbol"].to_numpy(),
            "ts": fills["ts"].to_numpy(),
            "pos": np.arange(len(fills)),
        }
    )
    order = keys.sort_values(["symbol", "ts", "pos"])["pos"].to_numpy()
    symbols = fills["symbol"].to_numpy()[order].tolist()
    sorted_ts = fills["ts"].iloc[order].reset_index(drop=True)
    signs = np.where(
        fills["side"].astype(str).str.lower().to_numpy()[order] == "buy", 1.0, -1.0
    ).tolist()
    qtys = fills["quantity"].to_numpy(dtype=np.float64)[order].tolist()
    prices = fills["price"].to_numpy(dtype=np.float64)[order].tolist()
    comms = fills["commission"].to_numpy(dtype=np.float64)[order].tolist()

    out_sym: list[str] = []
    out_dir: list[float] = []
    out_entry_ts: list[int] = []
    out_exit_ts: list[int] = []
    out_qty: list[float] = []
    out_cost: list[float] = []  # sum of matched quantity * entry price
    # sum of matched quantity * (exit price - entry price), lot by lot: a lot closed at its
    # own price adds exactly 0, where quantity * (exit - cost / quantity) leaves float noise
    # (10 x 1.62 closed at 1.62 gave -6.7e-16, a loss that made profit_factor 2e14)
    out_move: list[float] = []
    out_exit_px: list[float] = []
    out_comm: list[float] = []

    # Open lots of the current symbol, all of one sign (a fill of the other sign consumes
    # them first): [sign, remaining qty, price, commission/share, fill row]
    lots: deque[list[Any]] = deque()
    current = None
    for i, sym in enumerate(symbols):
        if sym != current:
            lots.clear()
            current = sym
        sign, qty, price = signs[i], qtys[i], prices[i]
        comm_per_share = comms[i] / qty if qty > 0 else 0.0
        remaining = qty
        if remaining > _QTY_EPS and lots and lots[0][0] != sign:
            # The oldest lot is consumed first, so its fill is the earliest entry.
            lot_sign, first_entry = lots[0][0], lots[0][4]
            closed = cost = move = entry_fees = 0.0
            while remaining > _QTY_EPS and lots:
                lot = lots[0]
                matched = min(remaining, lot[1])
                closed += matched
                cost += matched * lot[2]
                move += matched * (price - lot[2])
                entry_fees += matched * lot[3]
                lot[1] -= matched
                remaining -= matched
                if lot[1] <= _QTY_EPS:
                    lots.popleft()
            out_sym.append(sym)
            out_dir.append(lot_sign)
            out_entry_ts.append(first_entry)
            out_exit_ts.append(i)
            out_qty.append(closed)
            out_cost.append(cost)
            out_move.append(move)
            out_exit_px.append(price)
            out_comm.append(entry_fees + closed * comm_per_share)
        if remaining > _QTY_EPS:
            lots.append([sign, remaining, price, comm_per_share, i])

    if not out_sym:
        return _empty_round_trips()
    direction = np.asarray(out_dir)
    quantity = np.asarray(out_qty)
    entry = np.asarray(out_cost) / quantity
    exit_ = np.asarray(out_exit_px)
    commission = np.asarray(out_comm)
    return pd.DataFrame(
        {
            "symbol": out_sym,
            "direction": np.where(direction > 0, "long", "short"),
            "entry_ts": sorted_ts.take(out_entry_ts).array,
            "exit_ts": sorted_ts.take(out_exit_ts).array,
            "quantity": quantity,
            "entry_price": entry,
            "exit_price": exit_,
            "commission": commission,
            "pnl": direction * np.asarray(out_move) - commission,
        }
    )


def _empty_round_trips() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="float64") for c in ROUND_TRIP_COLUMNS})
    frame["symbol"] = frame["symbol"].astype(object)
    frame["direction"] = frame["direction"].astype(object)
    frame["entry_ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    frame["exit_ts"] = pd.Series(dtype="datetime64[ns, UTC]")
    return frame
