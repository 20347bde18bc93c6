"""RiskGuard: pre-trade rules over a batch of order intents, and the portfolio guards that
trip the kill switch.

Pre-trade, each intent is checked in this order and the first failing rule rejects it:

1. trading state HALTED -> TRADING_HALTED (only kill-switch flatten intents that reduce pass);
2. quantity not finite or <= 0 -> INVALID_QUANTITY;
3. symbol restricted -> RESTRICTED_SYMBOL;
4. no valid quote -> NO_VALID_QUOTE;
5. quantity > max_order_quantity -> QUANTITY_EXCEEDS_MAX_PER_ORDER;
6. quantity x price > max_order_notional -> NOTIONAL_EXCEEDS_MAX_PER_ORDER;
7. a limit/stop price more than price_collar_pct from the mid -> PRICE_OUTSIDE_COLLAR;
then, in batch order, against the account as changed by the intents approved so far:
8. state REDUCING and the order does not shrink |position| -> TRADING_REDUCING;
9. shorting not allowed and the position would go below 0 -> SHORT_SELLING_NOT_ALLOWED;
10. open orders + 1 > max_open_orders -> MAX_OPEN_ORDERS;
11. orders this interval + 1 > max_orders_per_interval -> MAX_ORDERS_PER_INTERVAL;
12. |position after| x price > max_position_notional (when it grows) -> POSITION_NOTIONAL_...;
13. gross exposure after > max_gross_exposure (when it grows) -> GROSS_EXPOSURE_EXCEEDS_MAX;
14. |net exposure after| > max_net_exposure (when it grows) -> NET_EXPOSURE_EXCEEDS_MAX;
15. gross added by the batch > buying power -> INSUFFICIENT_BUYING_POWER.
A limit is breached only when exceeded: a value equal to its limit passes.

Prices: a limit order is valued at its limit price; a market or stop order at the ask for a
buy and the bid for a sell (the mid or last when a side is missing). Exposure before the
order is valued at the portfolio's marks. Buying power is min(portfolio.buying_power,
equity x margin_multiplier - gross exposure); orders that shrink gross exposure free it.

Portfolio guards (`evaluate_portfolio`) trip when the loss reaches its limit (>=).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from paper_broker.enums import OrderType, RejectReason, Side, TradingState
from paper_broker.records import OrderIntent, PortfolioView, Rejection
from paper_broker.risk.config import RiskConfig
from paper_broker.risk.events import RiskEvent, risk_event_id
from paper_broker.risk.kill_switch import escalate

# intents with this strategy name close positions for the kill switch and pass HALTED
KILL_SWITCH_STRATEGY = "kill_switch"

# quantities closer than this to zero are flat (float64 share arithmetic)
_QTY_EPS = 1e-9

_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)


@dataclass(frozen=True, slots=True)
class RiskDecision:
    approved: list[OrderIntent] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    events: list[RiskEvent] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class GuardOutcome:
    """The trading state after the portfolio guards, the events that moved it, and whether
    the caller should submit `flatten_intents` now (the state has just become HALTED and
    `flatten_on_halt` is set)."""

    state: TradingState
    events: list[RiskEvent] = field(default_factory=list)
    flatten: bool = False


def flatten_intents(portfolio: PortfolioView) -> list[OrderIntent]:
    """Market intents closing every position, by symbol; RiskGuard lets them through HALTED."""
    return [
        OrderIntent(
            symbol=symbol,
            side=Side.SELL if qty > 0 else Side.BUY,
            quantity=abs(qty),
            strategy=KILL_SWITCH_STRATEGY,
        )
        for symbol, qty in sorted(portfolio.positions.items())
        if abs(qty) > _QTY_EPS
    ]


def _quote_columns(
    quotes: pd.DataFrame | None, symbols: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """bid, ask, last aligned to `symbols` (NaN where missing). Rows flagged `valid=False`
    are dropped; the last row of a duplicated symbol wins."""
    n = len(symbols)
    nan = np.full(n, np.nan)
    if quotes is None or len(quotes) == 0:
        return nan, nan.copy(), nan.copy()
    frame = quotes
    if "valid" in frame.columns:
        frame = frame[frame["valid"].to_numpy(dtype=bool)]
    keys = frame["symbol"] if "symbol" in frame.columns else frame.index
    where = {s: i for i, s in enumerate(keys.tolist())}
    rows = np.fromiter((where.get(s, -1) for s in symbols), dtype=np.intp, count=n)
    found = rows >= 0

    def col(name: str) -> np.ndarray:
        out = np.full(n, np.nan)
        if name in frame.columns:
            out[found] = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)[rows[found]]
        return out

    return col("bid"), col("ask"), col("last")


class RiskGuard:
    """Pure pre-trade and portfolio risk checks for one `RiskConfig`. Stateless: everything
    that changes (trading state, counts, the portfolio) is passed in."""

    def __init__(self, config: RiskConfig) -> None:
        self.config = config

    def check(
        self,
        intents: Sequence[OrderIntent],
        portfolio: PortfolioView,
        quotes: pd.DataFrame | None,
        state: TradingState,
        orders_this_interval: int = 0,
        *,
        now: datetime,
    ) -> RiskDecision:
        """Approve or reject each intent (see the module docstring for the rules and their
        order). Approved intents keep their order; every rejection has a matching event."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        cfg = self.config
        n = len(intents)
        if n == 0:
            return RiskDecision()
        symbols = [i.symbol for i in intents]
        qty = np.fromiter((i.quantity for i in intents), dtype=np.float64, count=n)
        sign = np.fromiter((i.side.sign for i in intents), dtype=np.float64, count=n)
        is_limit = np.fromiter((i.order_type in _LIMIT_TYPES for i in intents), bool, count=n)
        limit_px = np.fromiter(
            (math.nan if i.limit_price is None else i.limit_price for i in intents), np.float64, n
        )
        stop_px = np.fromiter(
            (math.nan if i.stop_price is None else i.stop_price for i in intents), np.float64, n
        )
        bid, ask, last = _quote_columns(quotes, symbols)
        two_sided = (bid > 0) & (ask > 0)
        mid = np.where(two_sided, (bid + ask) / 2.0, last)
        has_quote = np.isfinite(mid) & (mid > 0)
        side_px = np.where(sign > 0, ask, bid)
        market_px = np.where(np.isfinite(side_px) & (side_px > 0), side_px, mid)
        price = np.where(is_limit & np.isfinite(limit_px), limit_px, market_px)
        notional = qty * price

        # first failing rule per intent; earlier rules win (filled in priority order)
        reason: list[RejectReason | None] = [None] * n
        rule = [""] * n
        value = np.full(n, np.nan)
        limit = np.full(n, np.nan)
        detail = [""] * n

        def mark(mask: np.ndarray, why: RejectReason, name: str, val: np.ndarray | None,
                 lim: float | np.ndarray | None, text: str | None = None) -> None:  # fmt: skip
            for k in np.flatnonzero(mask).tolist():
                if reason[k] is not None:
                    continue
                reason[k], rule[k] = why, name
                if val is not None and lim is not None:
                    lv = float(np.broadcast_to(lim, (n,))[k])
                    value[k], limit[k] = val[k], lv
                    detail[k] = f"{why}: {val[k]:.2f} > {lv:.2f}"
                else:
                    detail[k] = f"{why}: {text or symbols[k]}"

        if state is TradingState.HALTED:
            # flatten intents are judged in the ordered pass (they must reduce)
            halted = np.fromiter((i.strategy != KILL_SWITCH_STRATEGY for i in intents), bool, n)
            mark(halted, RejectReason.TRADING_HALTED, "kill_switch", None, None,
                 "trading is halted")  # fmt: skip
        mark(~(np.isfinite(qty) & (qty > 0)), RejectReason.INVALID_QUANTITY, "quantity",
             None, None, "quantity must be a positive number")  # fmt: skip
        if cfg.restricted_symbols:
            restricted = np.fromiter(
                (s.upper() in cfg.restricted_symbols for s in symbols), bool, n
            )
            mark(restricted, RejectReason.RESTRICTED_SYMBOL, "restricted_symbols", None, None)
        mark(~has_quote | ~np.isfinite(price) | (price <= 0), RejectReason.NO_VALID_QUOTE,
             "quote", None, None)  # fmt: skip
        mark(qty > cfg.max_order_quantity, RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER,
             "max_order_quantity", qty, cfg.max_order_quantity)  # fmt: skip
        mark(notional > cfg.max_order_notional, RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER,
             "max_order_notional", notional, cfg.max_order_notional)  # fmt: skip
        with np.errstate(invalid="ignore", divide="ignore"):
            limit_dev = np.abs(limit_px - mid) / mid
            stop_dev = np.abs(stop_px - mid) / mid
        dev = np.fmax(np.where(is_limit, limit_dev, np.nan), stop_dev) * 100.0
        collar = np.nan_to_num(dev, nan=0.0) > cfg.price_collar_pct * 100.0
        mark(collar, RejectReason.PRICE_OUTSIDE_COLLAR, "price_collar_pct", dev,
             cfg.price_collar_pct * 100.0)  # fmt: skip

        # the ordered pass: cumulative rules against the account as the batch changes it
        positions = dict(portfolio.positions)
        marks = dict(portfolio.marks)
        gross0 = gross = portfolio.gross_exposure
        net = portfolio.net_exposure
        buying_power = min(
            portfolio.buying_power, portfolio.equity * cfg.margin_multiplier - gross0
        )
        approved_idx: list[int] = []
        for k in range(n):
            if reason[k] is not None:
                continue
            sym, px = symbols[k], float(price[k])
            before = positions.get(sym, 0.0)
            after = before + sign[k] * qty[k]
            reduces = abs(after) < abs(before) - _QTY_EPS and before * after >= 0
            mark_px = marks.get(sym, px)
            gross_after = gross - abs(before) * mark_px + abs(after) * px
            net_after = net - before * mark_px + after * px
            one = np.zeros(n, dtype=bool)
            one[k] = True
            checks: list[tuple[bool, RejectReason, str, float, float]] = [
                (state is TradingState.HALTED and not reduces, RejectReason.TRADING_HALTED,
                 "kill_switch", math.nan, math.nan),
                (state is TradingState.REDUCING and not reduces, RejectReason.TRADING_REDUCING,
                 "kill_switch", math.nan, math.nan),
                (not cfg.allow_short and after < -_QTY_EPS,
                 RejectReason.SHORT_SELLING_NOT_ALLOWED, "allow_short", after, 0.0),
                (portfolio.open_order_count + len(approved_idx) + 1 > cfg.max_open_orders,
                 RejectReason.MAX_OPEN_ORDERS, "max_open_orders",
                 portfolio.open_order_count + len(approved_idx) + 1, cfg.max_open_orders),
                (orders_this_interval + len(approved_idx) + 1 > cfg.max_orders_per_interval,
                 RejectReason.MAX_ORDERS_PER_INTERVAL, "max_orders_per_interval",
                 orders_this_interval + len(approved_idx) + 1, cfg.max_orders_per_interval),
                (abs(after) > abs(before) and abs(after) * px > cfg.max_position_notional,
                 RejectReason.POSITION_NOTIONAL_EXCEEDS_MAX, "max_position_notional",
                 abs(after) * px, cfg.max_position_notional),
                (gross_after > gross and gross_after > cfg.max_gross_exposure,
                 RejectReason.GROSS_EXPOSURE_EXCEEDS_MAX, "max_gross_exposure",
                 gross_after, cfg.max_gross_exposure),
                (abs(net_after) > abs(net) and abs(net_after) > cfg.max_net_exposure,
                 RejectReason.NET_EXPOSURE_EXCEEDS_MAX, "max_net_exposure",
                 abs(net_after), cfg.max_net_exposure),
                (gross_after > gross and gross_after - gross0 > buying_power,
                 RejectReason.INSUFFICIENT_BUYING_POWER, "buying_power",
                 gross_after - gross0, buying_power),
            ]  # fmt: skip
            failed = next((c for c in checks if c[0]), None)
            if failed is not None:
                _, why, name, val, lim = failed
                if math.isnan(val):
                    text = f"{state} allows only orders that reduce a position"
                    mark(one, why, name, None, None, text)
                else:
                    mark(one, why, name, np.full(n, float(val)), float(lim))
                continue
            positions[sym] = after
            marks[sym] = px
            gross, net = gross_after, net_after
            approved_idx.append(k)

        approved = [intents[k] for k in approved_idx]
        rejections: list[Rejection] = []
        events: list[RiskEvent] = []
        for k in range(n):
            code = reason[k]
            if code is None:
                continue
            intent = intents[k]
            rejections.append(
                Rejection(code, detail[k], intent.symbol, intent.client_order_id, rule[k])
            )
            events.append(
                RiskEvent(
                    event_id=risk_event_id(
                        now, rule[k], intent.symbol, intent.client_order_id or f"#{k}"
                    ),
                    ts=now,
                    rule=rule[k],
                    symbol=intent.symbol,
                    reason=str(code),
                    detail=detail[k],
                    value=float(value[k]),
                    limit_value=float(limit[k]),
                    state_before=state,
                    state_after=state,
                )
            )
        return RiskDecision(approved, rejections, events)

    def evaluate_portfolio(
        self,
        equity: float,
        session_start_equity: float,
        peak_equity: float,
        state: TradingState,
        now: datetime,
    ) -> GuardOutcome:
        """Run the daily-loss and drawdown guards and move the kill switch.

        daily loss = (session_start_equity - equity) / session_start_equity, drawdown =
        (peak_equity - equity) / peak_equity, both fractions; a guard trips when its loss
        reaches its limit and asks for its configured action (REDUCING or HALTED). The state
        only tightens; a breach the state already covers makes no event, so a breach held
        over many intervals alerts once. Raises ValueError for non-finite inputs."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if not all(math.isfinite(x) for x in (equity, session_start_equity, peak_equity)):
            raise ValueError("equity values must be finite")
        cfg = self.config
        daily_loss = (
            (session_start_equity - equity) / session_start_equity
            if session_start_equity > 0
            else 0.0
        )
        drawdown = (peak_equity - equity) / peak_equity if peak_equity > 0 else 0.0
        guards = (
            ("daily_loss_limit", "DAILY_LOSS_LIMIT", daily_loss, cfg.daily_loss_limit_pct,
             cfg.daily_loss_action, f"equity {equity:.2f}, start {session_start_equity:.2f}"),
            ("max_drawdown", "MAX_DRAWDOWN", drawdown, cfg.max_drawdown_pct,
             cfg.max_drawdown_action, f"equity {equity:.2f}, peak {peak_equity:.2f}"),
        )  # fmt: skip
        current = state
        events: list[RiskEvent] = []
        for rule, reason, loss, limit, action, context in guards:
            if loss < limit:
                continue
            new = escalate(current, action)
            if new is current:
                continue
            events.append(
                RiskEvent(
                    event_id=risk_event_id(now, rule, "", f"{current}->{new}"),
                    ts=now,
                    rule=rule,
                    symbol="",
                    reason=reason,
                    detail=f"{reason}: {loss:.4f} >= {limit:.4f} ({context}); {current} -> {new}",
                    value=loss,
                    limit_value=limit,
                    state_before=current,
                    state_after=new,
                )
            )
            current = new
        flatten = (
            cfg.flatten_on_halt
            and current is TradingState.HALTED
            and state is not TradingState.HALTED
        )
        return GuardOutcome(current, events, flatten)
