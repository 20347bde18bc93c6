"""RiskGuard's array entry point against the record one and against the rules as they were
first written (a per-intent loop over a PortfolioView and a quotes DataFrame, kept here as
the oracle): random batches must get identical decisions, rejections and events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_broker.enums import OrderType, RejectReason, Side, TradingState
from paper_broker.quote_columns import quote_columns
from paper_broker.records import OrderIntent, PortfolioView, Rejection
from paper_broker.risk import RiskConfig, RiskGuard
from paper_broker.risk.batch import IntentArrays, PortfolioArrays
from paper_broker.risk.events import RiskEvent, risk_event_id
from paper_broker.risk.guard import KILL_SWITCH_STRATEGY, RiskDecision

NOW = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
_QTY_EPS = 1e-9
_LIMIT_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT)


# fmt: off
def reference_check(
    cfg: RiskConfig,
    intents: Sequence[OrderIntent],
    portfolio: PortfolioView,
    quotes: pd.DataFrame | None,
    state: TradingState,
    orders_this_interval: int = 0,
    *,
    now: datetime,
) -> RiskDecision:
    """The rules as first written: per intent, over the records, one mask at a time."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
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
    bid, ask, last = quote_columns(quotes, symbols)
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
    # the kill switch's flatten is held to neither the per-order nor the count limits
    flatten = np.fromiter((i.strategy == KILL_SWITCH_STRATEGY for i in intents), bool, n)
    mark(~flatten & (qty > cfg.max_order_quantity), RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER,
         "max_order_quantity", qty, cfg.max_order_quantity)  # fmt: skip
    mark(~flatten & (notional > cfg.max_order_notional),
         RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER, "max_order_notional", notional,
         cfg.max_order_notional)  # fmt: skip
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
            (not flatten[k]
             and portfolio.open_order_count + len(approved_idx) + 1 > cfg.max_open_orders,
             RejectReason.MAX_OPEN_ORDERS, "max_open_orders",
             portfolio.open_order_count + len(approved_idx) + 1, cfg.max_open_orders),
            (not flatten[k]
             and orders_this_interval + len(approved_idx) + 1 > cfg.max_orders_per_interval,
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
# fmt: on


# ---------------------------------------------------------------- random batches
POOL = ("AAA", "BBB", "CCC", "DDD")
BIG = 1e12
prices = st.floats(50.0, 150.0).map(lambda x: round(x, 2))
quantities = st.one_of(
    st.integers(1, 400).map(float), st.sampled_from([0.0, -5.0, math.nan, 2.5, 1e-12])
)


@st.composite
def intents(draw: st.DrawFn) -> OrderIntent:
    order_type = draw(st.sampled_from(list(OrderType)))
    has_limit = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
    has_stop = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
    return OrderIntent(
        symbol=draw(st.sampled_from(POOL)),
        side=draw(st.sampled_from(list(Side))),
        quantity=draw(quantities),
        order_type=order_type,
        limit_price=draw(prices) if has_limit and draw(st.booleans()) else None,
        stop_price=draw(prices) if has_stop else None,
        client_order_id=draw(st.one_of(st.none(), st.sampled_from(["c1", "c2", "c3"]))),
        strategy=draw(st.sampled_from(["", "sma", KILL_SWITCH_STRATEGY])),
    )


@st.composite
def portfolios(draw: st.DrawFn) -> PortfolioView:
    held = draw(st.dictionaries(st.sampled_from(POOL), st.integers(-300, 300).map(float)))
    marked = draw(st.dictionaries(st.sampled_from(POOL), prices))
    cash = draw(st.floats(-1e4, 2e5))
    values = {s: q * marked.get(s, 100.0) for s, q in held.items()}
    return PortfolioView(
        cash=cash,
        equity=cash + sum(values.values()),
        buying_power=draw(st.floats(0.0, 2e5)),
        gross_exposure=sum(abs(v) for v in values.values()),
        net_exposure=sum(values.values()),
        positions=held,
        marks=marked,
        open_order_count=draw(st.integers(0, 6)),
    )


@st.composite
def quote_frames(draw: st.DrawFn) -> pd.DataFrame | None:
    rows = []
    for symbol in draw(st.lists(st.sampled_from(POOL), max_size=6)):
        px = draw(prices)
        spread = draw(st.sampled_from([0.0, 0.02, 0.5]))
        bid = draw(st.sampled_from([px, math.nan, 0.0]))
        rows.append({
            "symbol": symbol, "bid": bid, "ask": px + spread,
            "last": draw(st.sampled_from([px, math.nan])), "valid": draw(st.booleans()),
        })  # fmt: skip
    return pd.DataFrame(rows) if rows or draw(st.booleans()) else None


@st.composite
def configs(draw: st.DrawFn) -> RiskConfig:
    return RiskConfig(
        max_order_quantity=draw(st.sampled_from([50.0, 200.0, BIG])),
        max_order_notional=draw(st.sampled_from([5_000.0, 20_000.0, BIG])),
        max_position_notional=draw(st.sampled_from([10_000.0, 30_000.0, BIG])),
        max_gross_exposure=draw(st.sampled_from([20_000.0, 60_000.0, BIG])),
        max_net_exposure=draw(st.sampled_from([15_000.0, 50_000.0, BIG])),
        max_open_orders=draw(st.integers(1, 12)),
        max_orders_per_interval=draw(st.integers(1, 12)),
        restricted_symbols=frozenset(draw(st.lists(st.sampled_from(POOL), max_size=1))),
        price_collar_pct=draw(st.sampled_from([0.01, 0.05, 1.0])),
        allow_short=draw(st.booleans()),
        margin_multiplier=draw(st.sampled_from([1.0, 2.0])),
    )


batches = st.lists(intents(), max_size=10)
states = st.sampled_from(list(TradingState))


def comparable(decision: RiskDecision) -> tuple[list[OrderIntent], list[Rejection], list]:
    """The decision with NaN made None, so equal decisions compare equal."""

    def plain(v: object) -> object:
        return None if isinstance(v, float) and math.isnan(v) else v

    events = [tuple(plain(v) for v in e.as_row().values()) for e in decision.events]
    return decision.approved, decision.rejections, events


@settings(max_examples=100, deadline=None)
@given(configs(), batches, portfolios(), quote_frames(), states, st.integers(0, 6))
def test_check_decides_as_the_rules_first_written(cfg, batch, pv, quotes, state, done):
    # Arrange
    guard = RiskGuard(cfg)

    # Act
    got = guard.check(batch, pv, quotes, state, done, now=NOW)
    want = reference_check(cfg, batch, pv, quotes, state, done, now=NOW)

    # Assert
    assert comparable(got) == comparable(want)


@settings(max_examples=100, deadline=None)
@given(configs(), batches, portfolios(), quote_frames(), states, st.integers(0, 6),
       st.randoms(use_true_random=False))  # fmt: skip
def test_check_arrays_over_a_wide_universe_decides_as_check(
    cfg, batch, pv, quotes, state, done, rnd
):
    # Arrange: a universe holding more symbols than the batch, in a shuffled order
    universe = [*POOL, "EEE", "FFF", "GGG"]
    rnd.shuffle(universe)
    index = {s: i for i, s in enumerate(universe)}
    bid, ask, last = quote_columns(quotes, universe)
    account = PortfolioArrays(
        positions=np.array([pv.positions.get(s, 0.0) for s in universe]),
        marks=np.array([pv.marks.get(s, math.nan) for s in universe]),
        equity=pv.equity,
        buying_power=pv.buying_power,
        gross_exposure=pv.gross_exposure,
        net_exposure=pv.net_exposure,
        open_order_count=pv.open_order_count,
    )
    guard = RiskGuard(cfg)

    # Act
    verdict = guard.check_arrays(
        IntentArrays.of(batch, index), bid, ask, last, account, state, done, universe=universe
    )
    got = guard.decision(verdict, batch, state, now=NOW)

    # Assert
    assert comparable(got) == comparable(guard.check(batch, pv, quotes, state, done, now=NOW))
    assert verdict.n_rejected == len(got.rejections)
    assert [batch[k] for k in verdict.approved_index().tolist()] == got.approved


def test_market_only_batch_has_no_price_columns():
    # Arrange
    batch = [OrderIntent("BBB", Side.BUY, 10.0), OrderIntent("AAA", Side.SELL, 4.0)]

    # Act
    arrays = IntentArrays.of(batch, {"AAA": 0, "BBB": 1})

    # Assert
    assert arrays.symbol.tolist() == [1, 0]
    assert arrays.sign.tolist() == [1.0, -1.0]
    assert arrays.quantity.tolist() == [10.0, 4.0]
    assert (arrays.limit_price, arrays.stop_price, arrays.is_limit, arrays.kill_switch) == (
        None, None, None, None,
    )  # fmt: skip


def test_second_intent_on_a_symbol_sees_the_first_one_approved():
    # Arrange: a 100-share position limit of 10,000 at 100; two buys of 60 shares
    guard = RiskGuard(replace(RiskConfig(), max_position_notional=10_000.0, allow_short=True))
    batch = IntentArrays(
        symbol=np.array([1, 1]), sign=np.array([1.0, 1.0]), quantity=np.array([60.0, 60.0])
    )
    px = np.array([50.0, 100.0])
    account = PortfolioArrays(np.zeros(2), np.full(2, np.nan), 1e6, 1e6, 0.0, 0.0)

    # Act
    verdict = guard.check_arrays(batch, px, px, px, account, TradingState.ACTIVE,
                                 universe=["A", "B"])  # fmt: skip

    # Assert
    assert verdict.code[0] == -1
    assert verdict.value[1] == 12_000.0 and verdict.limit[1] == 10_000.0
    rejection = guard.decision(verdict, [OrderIntent("B", Side.BUY, 60.0)] * 2,
                               TradingState.ACTIVE, now=NOW).rejections[0]  # fmt: skip
    assert rejection.reason is RejectReason.POSITION_NOTIONAL_EXCEEDS_MAX
    assert rejection.detail == "POSITION_NOTIONAL_EXCEEDS_MAX: 12000.00 > 10000.00"
