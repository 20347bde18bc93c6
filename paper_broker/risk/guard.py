"""RiskGuard: pre-trade rules over a batch of order intents, and the portfolio guards that
trip the kill switch.

Pre-trade, each intent is checked in this order and the first failing rule rejects it:

1. trading state HALTED -> TRADING_HALTED (only kill-switch flatten intents that reduce pass;
   they close each position in one order, so rules 5, 6, 10 and 11 do not apply to them);
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

Resting orders count as if they filled: a limit order placed earlier may fill in the same
interval as a new one, and both together must stay within the limits. Rules 8 and 9 judge
an order from the position its symbol reaches when the open orders on the order's side
fill; rules 12-14 from the worst the open orders could make the position, the gross and
the net exposure (each symbol's buys all filling or its sells all filling, whichever is
larger). Without open orders these are the account's own figures.

Prices: a limit order is valued at its limit price; a market or stop order at the ask for a
buy and the bid for a sell (the mid or last when a side is missing). Exposure before the
order is valued at the portfolio's marks. Buying power is min(portfolio.buying_power,
equity x margin_multiplier - gross exposure); orders that shrink gross exposure free it.

Two entry points decide by the same code: `check` takes records (intents, a PortfolioView,
a quotes DataFrame) and returns rejections and events; `check_arrays` takes the batch and
the account as arrays aligned to a symbol universe and returns a per-intent verdict, which
`decision` turns into the same rejections and events when the caller wants them.

Portfolio guards (`evaluate_portfolio`) trip when the loss reaches its limit (>=).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd

from paper_broker.enums import OrderStatus, RejectReason, Side, TimeInForce, TradingState
from paper_broker.quote_columns import quote_columns
from paper_broker.records import Order, OrderIntent, PortfolioView, Rejection
from paper_broker.risk import batch as rb
from paper_broker.risk.batch import (
    KILL_SWITCH_STRATEGY,
    ArrayVerdict,
    FloatArray,
    IntentArrays,
    PortfolioArrays,
)
from paper_broker.risk.config import RiskConfig
from paper_broker.risk.events import RiskEvent, risk_event_id
from paper_broker.risk.kill_switch import escalate

__all__ = [
    "KILL_SWITCH_STRATEGY",
    "ArrayVerdict",
    "GuardOutcome",
    "IntentArrays",
    "PortfolioArrays",
    "RiskDecision",
    "RiskGuard",
    "flatten_intents",
    "risk_rejected_order",
]

# quantities closer than this to zero are flat (float64 share arithmetic)
_QTY_EPS = 1e-9
# a ratio within this relative distance of its limit is at the limit: float64 arithmetic
# rounds an exact ratio of prices or equities by a few ulps (1e-16) either way, while a
# tick or a cent beyond a limit is more than 1e-11 of it below a billion
_REL_EPS = 1e-12

# rules whose detail reads "<reason>: <value> > <limit>"; the others name a fact instead
_NUMERIC = frozenset(
    (rb.MAX_QTY, rb.MAX_NOTIONAL, rb.COLLAR, rb.SHORT, rb.OPEN_ORDERS, rb.PER_INTERVAL,
     rb.POSITION, rb.GROSS, rb.NET, rb.BUYING_POWER)
)  # fmt: skip


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
    """Market intents closing every position, by symbol; RiskGuard lets them through HALTED.
    They are good till canceled: the flatten is sent once, at the halt, and what the volume
    cap leaves of it at the close must still close the position the next session."""
    return [
        OrderIntent(
            symbol=symbol,
            side=Side.SELL if qty > 0 else Side.BUY,
            quantity=abs(qty),
            time_in_force=TimeInForce.GTC,
            strategy=KILL_SWITCH_STRATEGY,
        )
        for symbol, qty in sorted(portfolio.positions.items())
        if abs(qty) > _QTY_EPS
    ]


def risk_rejected_order(
    account_id: str, intent: OrderIntent, reason: RejectReason, at: datetime
) -> Order:
    """An intent RiskGuard refused, as an order in status rejected (order id
    `<client order id>-risk`), so the `orders` table shows every order the strategy
    wanted and why it did not reach the broker: paper intervals and backtests alike.
    The intent must carry its client order id."""
    assert intent.client_order_id is not None
    return Order(
        account_id=account_id,
        order_id=f"{intent.client_order_id}-risk",
        client_order_id=intent.client_order_id,
        created_at=at,
        symbol=intent.symbol,
        side=intent.side,
        order_type=intent.order_type,
        time_in_force=intent.time_in_force,
        quantity=intent.quantity,
        limit_price=intent.limit_price,
        stop_price=intent.stop_price,
        status=OrderStatus.REJECTED,
        reject_reason=reason.value,
        updated_at=at,
        strategy=intent.strategy,
    )


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
        order). Approved intents keep their order; every rejection has a matching event.

        The records are turned into arrays over the batch's symbols and those of the open
        orders, and decided by `check_arrays`, so both entry points give the same answer."""
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        if len(intents) == 0:
            return RiskDecision()
        # the batch's symbols, then those of open orders (they count towards the exposures)
        universe = list(
            dict.fromkeys([*(i.symbol for i in intents), *portfolio.pending_buy,
                           *portfolio.pending_sell])
        )  # fmt: skip
        index = {s: k for k, s in enumerate(universe)}
        held, marks = portfolio.positions, portfolio.marks
        pending_buy, pending_sell = PortfolioArrays.pending(
            portfolio.pending_buy, portfolio.pending_sell, index, len(universe)
        )
        account = PortfolioArrays(
            positions=np.array([held.get(s, 0.0) for s in universe], dtype=np.float64),
            marks=np.array([marks.get(s, math.nan) for s in universe], dtype=np.float64),
            equity=portfolio.equity,
            buying_power=portfolio.buying_power,
            gross_exposure=portfolio.gross_exposure,
            net_exposure=portfolio.net_exposure,
            open_order_count=portfolio.open_order_count,
            pending_buy=pending_buy,
            pending_sell=pending_sell,
        )
        bid, ask, last = quote_columns(quotes, universe)
        verdict = self.check_arrays(
            IntentArrays.of(intents, index), bid, ask, last, account, state,
            orders_this_interval, universe=universe,
        )  # fmt: skip
        return self.decision(verdict, intents, state, now=now)

    def check_arrays(
        self,
        batch: IntentArrays,
        bid: FloatArray,
        ask: FloatArray,
        last: FloatArray,
        portfolio: PortfolioArrays,
        state: TradingState,
        orders_this_interval: int = 0,
        *,
        universe: Sequence[str],
    ) -> ArrayVerdict:
        """The rules of the module docstring on arrays, for callers that keep their state
        as arrays; `decision` turns the verdict into rejections and events when wanted.

        `bid`, `ask`, `last` and the portfolio's `positions` and `marks` are aligned to
        `universe` (symbol names, used for `restricted_symbols`); `batch.symbol` indexes
        them. NaN marks a missing quote side or mark. The per-intent rules run as array
        masks; the cumulative rules walk the surviving intents in batch order with plain
        floats, so the cost is a few microseconds per intent whatever the universe size."""
        cfg = self.config
        n = len(batch)
        code = np.full(n, -1, dtype=np.int8)
        value = np.full(n, np.nan)
        limit = np.full(n, np.nan)
        if n == 0:
            return ArrayVerdict(code, value, limit)
        sym, qty, sign = batch.symbol, batch.quantity, batch.sign
        b, a, lst = bid[sym], ask[sym], last[sym]
        two_sided = (b > 0) & (a > 0)
        mid = np.where(two_sided, (b + a) / 2.0, lst)
        has_quote = np.isfinite(mid) & (mid > 0)
        side_px = np.where(sign > 0, a, b)
        price = np.where(np.isfinite(side_px) & (side_px > 0), side_px, mid)
        if batch.is_limit is not None and batch.limit_price is not None:
            price = np.where(batch.is_limit & np.isfinite(batch.limit_price),
                             batch.limit_price, price)  # fmt: skip
        notional = qty * price

        # first failing rule per intent: each mask only claims intents still undecided
        def hit(mask: np.ndarray, rule: int, val: np.ndarray | None = None,
                lim: float = math.nan) -> None:  # fmt: skip
            take = mask & (code < 0)
            code[take] = rule
            if val is not None:
                value[take] = val[take]
                limit[take] = lim

        if state is TradingState.HALTED:
            # flatten intents are judged in the ordered pass (they must reduce)
            hit(np.ones(n, bool) if batch.kill_switch is None else ~batch.kill_switch,
                rb.HALTED)  # fmt: skip
        hit(~(np.isfinite(qty) & (qty > 0)), rb.QUANTITY)
        if cfg.restricted_symbols:
            names = [universe[i] for i in sym.tolist()]
            hit(np.fromiter((s.upper() in cfg.restricted_symbols for s in names), bool, n),
                rb.RESTRICTED)  # fmt: skip
        hit(~has_quote | ~np.isfinite(price) | (price <= 0), rb.NO_QUOTE)
        # the kill switch's flatten closes each position in one order, whatever its size:
        # it is sent once, at the halt, and a refusal would leave the halted account holding
        sized = np.ones(n, bool) if batch.kill_switch is None else ~batch.kill_switch
        hit(sized & (qty > cfg.max_order_quantity), rb.MAX_QTY, qty, cfg.max_order_quantity)
        hit(sized & (notional > cfg.max_order_notional), rb.MAX_NOTIONAL, notional,
            cfg.max_order_notional)  # fmt: skip
        if batch.limit_price is not None or batch.stop_price is not None:
            nan = np.full(n, np.nan)
            limit_px = nan if batch.limit_price is None else batch.limit_price
            stop_px = nan if batch.stop_price is None else batch.stop_price
            is_limit = np.zeros(n, bool) if batch.is_limit is None else batch.is_limit
            with np.errstate(invalid="ignore", divide="ignore"):
                limit_dev = np.abs(limit_px - mid) / mid
                stop_dev = np.abs(stop_px - mid) / mid
            dev = np.fmax(np.where(is_limit, limit_dev, np.nan), stop_dev) * 100.0
            # a price exactly at the collar passes: the division rounds (a mid of 1.00
            # and a limit of 1.05 give 5.000000000000004%), so the last ulps are not a breach
            edge = cfg.price_collar_pct * 100.0 * (1.0 + _REL_EPS)
            collar = np.nan_to_num(dev, nan=0.0) > edge
            hit(collar, rb.COLLAR, dev, cfg.price_collar_pct * 100.0)

        rows = np.flatnonzero(code < 0).tolist()
        if rows:
            self._ordered_pass(rows, batch, price, portfolio, state, orders_this_interval,
                               code, value, limit)  # fmt: skip
        return ArrayVerdict(code, value, limit)

    def _ordered_pass(
        self,
        rows: list[int],
        batch: IntentArrays,
        price: FloatArray,
        portfolio: PortfolioArrays,
        state: TradingState,
        orders_this_interval: int,
        code: np.ndarray,
        value: FloatArray,
        limit: FloatArray,
    ) -> None:
        """Rules 8-15 in batch order against the account as the intents approved so far
        change it; writes the verdict of each row in `rows` into code/value/limit."""
        cfg = self.config
        sym_of = batch.symbol.tolist()
        signed = (batch.sign * batch.quantity).tolist()
        px_of = price.tolist()
        start_qty = portfolio.positions[batch.symbol].tolist()
        start_mark = portfolio.marks[batch.symbol].tolist()
        # symbol index -> (position, mark) after the approved intents so far
        moved: dict[int, tuple[float, float]] = {}
        buying_power = min(
            portfolio.buying_power,
            portfolio.equity * cfg.margin_multiplier - float(portfolio.gross_exposure),
        )
        # open orders: shares they may still buy / sell per intent's symbol, and what they
        # add at worst to the gross exposure and to the net exposure either way
        pend_buy = pend_sell = [0.0] * len(sym_of)
        extra_gross = net_up = net_down = 0.0
        if portfolio.pending_buy is not None and portfolio.pending_sell is not None:
            buys, sells, qty = portfolio.pending_buy, portfolio.pending_sell, portfolio.positions
            pend_buy, pend_sell = buys[batch.symbol].tolist(), sells[batch.symbol].tolist()
            worst = np.maximum(np.abs(qty + buys), np.abs(qty - sells)) - np.abs(qty)
            extra_gross = float(np.nansum(worst * portfolio.marks))
            net_up = float(np.nansum(buys * portfolio.marks))
            net_down = float(np.nansum(sells * portfolio.marks))
        gross0 = gross = float(portfolio.gross_exposure) + extra_gross
        net = float(portfolio.net_exposure)
        worst_net = max(abs(net + net_up), abs(net - net_down))
        flatten = [False] * len(sym_of) if batch.kill_switch is None else batch.kill_switch.tolist()
        gated = state is TradingState.HALTED or state is TradingState.REDUCING
        gate = rb.HALTED if state is TradingState.HALTED else rb.REDUCING
        n_open = portfolio.open_order_count + 1
        n_interval = orders_this_interval + 1
        for k in rows:
            i, px, pb, ps = sym_of[k], px_of[k], pend_buy[k], pend_sell[k]
            held, mark_px = moved.get(i) or (start_qty[k], start_mark[k])
            if mark_px != mark_px:  # no mark: the exposure is valued at the order's price
                mark_px = px
            moved_to = held + signed[k]
            # the position from which the order acts: the open orders on its side filled
            before = held + (pb if signed[k] > 0 else -ps)
            after = before + signed[k]
            # the largest the position can get with the open orders: all buys or all sells
            size = max(abs(held + pb), abs(held - ps))
            size_after = max(abs(moved_to + pb), abs(moved_to - ps))
            gross_after = gross - size * mark_px + size_after * px
            net_after = net - held * mark_px + moved_to * px
            worst_net_after = max(abs(net_after + net_up), abs(net_after - net_down))
            why, val, lim = -1, math.nan, math.nan
            if gated and not (abs(after) < abs(before) - _QTY_EPS and before * after >= 0):
                why = gate
            elif not cfg.allow_short and after < -_QTY_EPS:
                why, val, lim = rb.SHORT, after, 0.0
            elif n_open > cfg.max_open_orders and not flatten[k]:
                why, val, lim = rb.OPEN_ORDERS, n_open, cfg.max_open_orders
            elif n_interval > cfg.max_orders_per_interval and not flatten[k]:
                why, val, lim = rb.PER_INTERVAL, n_interval, cfg.max_orders_per_interval
            elif size_after > size and size_after * px > cfg.max_position_notional:
                why, val, lim = rb.POSITION, size_after * px, cfg.max_position_notional
            elif gross_after > gross and gross_after > cfg.max_gross_exposure:
                why, val, lim = rb.GROSS, gross_after, cfg.max_gross_exposure
            elif worst_net_after > worst_net and worst_net_after > cfg.max_net_exposure:
                why, val, lim = rb.NET, worst_net_after, cfg.max_net_exposure
            elif gross_after > gross and gross_after - gross0 > buying_power:
                why, val, lim = rb.BUYING_POWER, gross_after - gross0, buying_power
            if why >= 0:
                code[k], value[k], limit[k] = why, val, lim
                continue
            moved[i] = (moved_to, px)
            gross, net, worst_net = gross_after, net_after, worst_net_after
            n_open += 1
            n_interval += 1

    def decision(
        self,
        verdict: ArrayVerdict,
        intents: Sequence[OrderIntent],
        state: TradingState,
        *,
        now: datetime,
    ) -> RiskDecision:
        """The verdict on `intents` (the batch it was computed from, same order) as approved
        intents, `Rejection`s and `RiskEvent`s, each event id keyed by the intent's client
        order id (or its batch position when it has none)."""
        codes = verdict.code.tolist()
        values = verdict.value.tolist()
        limits = verdict.limit.tolist()
        approved = [intents[k] for k, c in enumerate(codes) if c < 0]
        rejections: list[Rejection] = []
        events: list[RiskEvent] = []
        for k, c in enumerate(codes):
            if c < 0:
                continue
            intent = intents[k]
            why, rule = rb.REASONS[c], rb.RULES[c]
            detail = f"{why}: {_fact(c, intent, state, values[k], limits[k])}"
            rejections.append(Rejection(why, detail, intent.symbol, intent.client_order_id, rule))
            events.append(
                RiskEvent(
                    event_id=risk_event_id(
                        now, rule, intent.symbol, intent.client_order_id or f"#{k}"
                    ),
                    ts=now,
                    rule=rule,
                    symbol=intent.symbol,
                    reason=str(why),
                    detail=detail,
                    value=values[k],
                    limit_value=limits[k],
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
            # a loss of exactly the limit trips it, though the division may round it below
            if loss < limit * (1.0 - _REL_EPS):
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


def _fact(code: int, intent: OrderIntent, state: TradingState, value: float, limit: float) -> str:
    """The part of a rejection's detail after the reason: the numbers, or what was wrong."""
    if code in _NUMERIC:
        return f"{value:.2f} > {limit:.2f}"
    if code == rb.HALTED and intent.strategy != KILL_SWITCH_STRATEGY:
        return "trading is halted"
    if code in (rb.HALTED, rb.REDUCING):
        return f"{state} allows only orders that reduce a position"
    if code == rb.QUANTITY:
        return "quantity must be a positive number"
    return intent.symbol
