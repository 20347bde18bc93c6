"""RiskGuard pre-trade rules at, just under and just over each limit; portfolio guards."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from paper_broker.enums import OrderType, RejectReason, Side, TradingState
from paper_broker.records import OrderIntent, PortfolioView
from paper_broker.risk import RiskConfig, RiskGuard, flatten_intents
from papertrade.risk_wiring import risk_config_from_settings
from papertrade.settings import Settings

NOW = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
BIG = 1e12
OPEN = TradingState.ACTIVE


def config(**overrides) -> RiskConfig:
    """Every limit out of the way except the ones a test sets."""
    base = RiskConfig(
        max_order_quantity=BIG,
        max_order_notional=BIG,
        max_position_notional=BIG,
        max_gross_exposure=BIG,
        max_net_exposure=BIG,
        max_open_orders=10**9,
        max_orders_per_interval=10**9,
        price_collar_pct=1.0,
        allow_short=True,
        margin_multiplier=10.0,
    )
    return replace(base, **overrides)


def portfolio(cash: float = 1e9, marks: dict | None = None, **positions: float) -> PortfolioView:
    marks = marks or {s: 100.0 for s in positions}
    values = {s: q * marks[s] for s, q in positions.items()}
    return PortfolioView(
        cash=cash,
        equity=cash + sum(values.values()),
        buying_power=cash,
        gross_exposure=sum(abs(v) for v in values.values()),
        net_exposure=sum(values.values()),
        positions=dict(positions),
        marks=marks,
    )


def quotes(**prices: float) -> pd.DataFrame:
    """Zero-spread quotes: bid = ask = last = price."""
    p = list(prices.values())
    return pd.DataFrame({"symbol": list(prices), "bid": p, "ask": p, "last": p})


def buy(symbol: str, qty: float, **kw) -> OrderIntent:
    return OrderIntent(symbol=symbol, side=Side.BUY, quantity=qty, **kw)


def sell(symbol: str, qty: float, **kw) -> OrderIntent:
    return OrderIntent(symbol=symbol, side=Side.SELL, quantity=qty, **kw)


def check(cfg, intents, pv=None, q=None, state=OPEN, orders_this_interval=0):
    return RiskGuard(cfg).check(
        intents,
        pv or portfolio(),
        quotes(AAA=100.0, BBB=100.0) if q is None else q,
        state,
        orders_this_interval,
        now=NOW,
    )


def reasons(decision) -> list[RejectReason]:
    return [r.reason for r in decision.rejections]


AT_UNDER_OVER = [(-1, True), (0, True), (1, False)]


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_max_order_quantity(delta, passes):
    decision = check(config(max_order_quantity=100), [buy("AAA", 100 + delta)])

    assert bool(decision.approved) is passes
    assert reasons(decision) == ([] if passes else [RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER])


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_max_order_notional_reports_the_numbers(delta, passes):
    decision = check(config(max_order_notional=50_000), [buy("AAA", 500 + delta)])

    assert bool(decision.approved) is passes
    if not passes:
        (rej,) = decision.rejections
        assert rej.detail == "NOTIONAL_EXCEEDS_MAX_PER_ORDER: 50100.00 > 50000.00"
        assert rej.rule == "max_order_notional" and rej.symbol == "AAA"
        (event,) = decision.events
        assert (event.value, event.limit_value) == (50_100.0, 50_000.0)


def test_notional_uses_the_ask_for_buys_and_the_bid_for_sells():
    q = pd.DataFrame({"symbol": ["AAA"], "bid": [99.0], "ask": [101.0]})
    cfg = config(max_order_notional=10_000)

    decision = check(cfg, [buy("AAA", 99), sell("AAA", 101), buy("AAA", 100)], q=q)

    assert [i.quantity for i in decision.approved] == [99, 101]
    assert reasons(decision) == [RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER]


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_max_position_notional_after_the_order(delta, passes):
    pv = portfolio(AAA=100)

    decision = check(config(max_position_notional=20_000), [buy("AAA", 100 + delta)], pv)

    assert bool(decision.approved) is passes
    assert reasons(decision) == ([] if passes else [RejectReason.POSITION_NOTIONAL_EXCEEDS_MAX])


def test_position_over_its_limit_may_still_shrink():
    decision = check(config(max_position_notional=1_000), [sell("AAA", 10)], portfolio(AAA=100))

    assert len(decision.approved) == 1


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_max_gross_exposure_is_cumulative_over_the_batch(delta, passes):
    intents = [buy("AAA", 150), sell("BBB", 150 + delta)]

    decision = check(config(max_gross_exposure=30_000), intents)

    assert len(decision.approved) == (2 if passes else 1)
    assert reasons(decision) == ([] if passes else [RejectReason.GROSS_EXPOSURE_EXCEEDS_MAX])


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_max_net_exposure_is_cumulative_over_the_batch(delta, passes):
    intents = [buy("AAA", 150), buy("BBB", 150 + delta), sell("BBB", 100)]

    decision = check(config(max_net_exposure=30_000), intents)

    assert len(decision.approved) == (3 if passes else 2)
    assert reasons(decision) == ([] if passes else [RejectReason.NET_EXPOSURE_EXCEEDS_MAX])


@pytest.mark.parametrize(("open_orders", "passes"), [(1, True), (2, True), (3, False)])
def test_max_open_orders_counts_existing_and_approved(open_orders, passes):
    pv = replace(portfolio(), open_order_count=open_orders)

    decision = check(config(max_open_orders=4), [buy("AAA", 1), buy("BBB", 1)], pv)

    assert len(decision.approved) == (2 if passes else 1)
    assert reasons(decision) == ([] if passes else [RejectReason.MAX_OPEN_ORDERS])


@pytest.mark.parametrize(("sent", "passes"), [(2, True), (3, True), (4, False)])
def test_max_orders_per_interval(sent, passes):
    decision = check(
        config(max_orders_per_interval=5), [buy("AAA", 1), buy("BBB", 1)], orders_this_interval=sent
    )

    assert len(decision.approved) == (2 if passes else 1)
    assert reasons(decision) == ([] if passes else [RejectReason.MAX_ORDERS_PER_INTERVAL])


def test_restricted_symbols_are_refused_case_insensitively():
    decision = check(config(restricted_symbols=frozenset({"bbb"})), [buy("AAA", 1), buy("BBB", 1)])

    assert [i.symbol for i in decision.approved] == ["AAA"]
    assert reasons(decision) == [RejectReason.RESTRICTED_SYMBOL]


@pytest.mark.parametrize(("qty", "passes"), [(99, True), (100, True), (101, False)])
def test_short_selling_not_allowed_beyond_the_long(qty, passes):
    decision = check(config(allow_short=False), [sell("AAA", qty)], portfolio(AAA=100))

    assert bool(decision.approved) is passes
    assert reasons(decision) == ([] if passes else [RejectReason.SHORT_SELLING_NOT_ALLOWED])


@pytest.mark.parametrize(("limit", "passes"), [(104.99, True), (105.0, True), (105.01, False)])
def test_price_collar_on_limit_orders(limit, passes):
    intent = sell("AAA", 1, order_type=OrderType.LIMIT, limit_price=limit)

    decision = check(config(price_collar_pct=0.05), [intent])

    assert bool(decision.approved) is passes
    assert reasons(decision) == ([] if passes else [RejectReason.PRICE_OUTSIDE_COLLAR])


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_buying_power(delta, passes):
    pv = replace(portfolio(cash=10_000.0), buying_power=10_000.0)

    decision = check(config(margin_multiplier=1.0), [buy("AAA", 60), buy("BBB", 40 + delta)], pv)

    assert len(decision.approved) == (2 if passes else 1)
    assert reasons(decision) == ([] if passes else [RejectReason.INSUFFICIENT_BUYING_POWER])


def test_margin_multiplier_caps_buying_power_below_the_brokers_figure():
    pv = replace(portfolio(cash=10_000.0), buying_power=1e9)

    decision = check(config(margin_multiplier=2.0), [buy("AAA", 200), buy("BBB", 1)], pv)

    assert len(decision.approved) == 1
    assert reasons(decision) == [RejectReason.INSUFFICIENT_BUYING_POWER]


def test_no_valid_quote_and_bad_quantity_are_rejected():
    q = quotes(AAA=100.0, BBB=100.0).assign(valid=[True, False])

    decision = check(config(), [buy("AAA", 0), buy("BBB", 1), buy("CCC", 1)], q=q)

    assert reasons(decision) == [RejectReason.INVALID_QUANTITY, *[RejectReason.NO_VALID_QUOTE] * 2]


def test_halted_rejects_everything_but_flattening():
    pv = portfolio(AAA=10, BBB=-5)
    intents = [buy("AAA", 1), *flatten_intents(pv)]

    decision = check(config(), intents, pv, state=TradingState.HALTED)

    assert [(i.symbol, i.side, i.quantity) for i in decision.approved] == [
        ("AAA", Side.SELL, 10),
        ("BBB", Side.BUY, 5),
    ]
    assert reasons(decision) == [RejectReason.TRADING_HALTED]


def test_flattening_on_halt_is_not_held_to_the_per_order_and_count_limits():
    # 900 AAA at 75 (67,500) under the default 50,000 per order: the flatten was refused
    # as NOTIONAL_EXCEEDS_MAX_PER_ORDER, and the halted account kept the position
    pv = replace(portfolio(marks={"AAA": 75.0, "BBB": 75.0}, AAA=900, BBB=-200), open_order_count=5)
    cfg = config(
        max_order_notional=50_000.0, max_order_quantity=100, max_open_orders=5,
        max_orders_per_interval=1,
    )  # fmt: skip

    decision = check(cfg, flatten_intents(pv), pv, quotes(AAA=75.0, BBB=75.0), TradingState.HALTED)

    assert [(i.symbol, i.side, i.quantity) for i in decision.approved] == [
        ("AAA", Side.SELL, 900),
        ("BBB", Side.BUY, 200),
    ]
    assert decision.rejections == []


def test_reducing_lets_a_closing_order_through_and_blocks_opening_ones():
    pv = portfolio(AAA=100)
    intents = [sell("AAA", 100), buy("BBB", 1), sell("AAA", 1)]

    decision = check(config(), intents, pv, state=TradingState.REDUCING)

    assert [(i.symbol, i.quantity) for i in decision.approved] == [("AAA", 100)]
    assert reasons(decision) == [RejectReason.TRADING_REDUCING] * 2


def test_reducing_refuses_a_flip_through_zero():
    decision = check(config(), [sell("AAA", 150)], portfolio(AAA=100), state=TradingState.REDUCING)

    assert reasons(decision) == [RejectReason.TRADING_REDUCING]


def resting(pv: PortfolioView, buys: dict | None = None, sells: dict | None = None):
    """`pv` with open orders that may still buy / sell these shares."""
    n = len(buys or {}) + len(sells or {})
    return replace(pv, pending_buy=buys or {}, pending_sell=sells or {}, open_order_count=n)


@pytest.mark.parametrize(("qty", "passes"), [(40, True), (41, False)])
def test_reducing_counts_resting_sells_against_the_position(qty, passes):
    # long 100 with a resting sell of 60: a new sell of more than 40 would go short
    pv = resting(portfolio(AAA=100), sells={"AAA": 60})

    decision = check(config(), [sell("AAA", qty)], pv, state=TradingState.REDUCING)

    assert reasons(decision) == ([] if passes else [RejectReason.TRADING_REDUCING])


def test_no_shorting_counts_resting_sells():
    pv = resting(portfolio(AAA=100), sells={"AAA": 60})

    decision = check(config(allow_short=False), [sell("AAA", 40), sell("AAA", 1)], pv)

    assert [r.detail for r in decision.rejections] == ["SHORT_SELLING_NOT_ALLOWED: -1.00 > 0.00"]


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_position_limit_counts_resting_orders_on_the_side_that_grows(delta, passes):
    # resting buy of 150 at 100: 15,000 of the 20,000 is spoken for
    pv = resting(portfolio(), buys={"AAA": 150})

    decision = check(config(max_position_notional=20_000), [buy("AAA", 50 + delta)], pv)

    assert reasons(decision) == ([] if passes else [RejectReason.POSITION_NOTIONAL_EXCEEDS_MAX])


def test_position_limit_takes_the_larger_side_of_the_resting_orders():
    # long 100; resting buy 50 (-> 150) and sell 300 (-> -200): 200 shares at worst
    pv = resting(portfolio(AAA=100), buys={"AAA": 50}, sells={"AAA": 300})
    cfg = config(max_position_notional=25_000)

    grows = check(cfg, [sell("AAA", 60)], pv)  # the short side reaches -260
    smaller = check(cfg, [buy("AAA", 60)], pv)  # 210 long / 140 short

    assert [r.detail for r in grows.rejections] == [
        "POSITION_NOTIONAL_EXCEEDS_MAX: 26000.00 > 25000.00"
    ]
    assert len(smaller.approved) == 1


@pytest.mark.parametrize(("delta", "passes"), AT_UNDER_OVER)
def test_gross_and_net_limits_count_resting_orders_of_other_symbols(delta, passes):
    pv = resting(portfolio(marks={"AAA": 100.0, "BBB": 100.0}), buys={"AAA": 150})

    gross = check(config(max_gross_exposure=30_000), [sell("BBB", 150 + delta)], pv)
    net = check(config(max_net_exposure=30_000), [buy("BBB", 150 + delta)], pv)

    assert reasons(gross) == ([] if passes else [RejectReason.GROSS_EXPOSURE_EXCEEDS_MAX])
    assert reasons(net) == ([] if passes else [RejectReason.NET_EXPOSURE_EXCEEDS_MAX])


def test_events_are_deterministic_and_match_rejections():
    intents = [buy("AAA", 101, client_order_id="c1"), buy("BBB", 101)]

    first = check(config(max_order_quantity=100), intents)
    again = check(config(max_order_quantity=100), intents)

    ids = [e.event_id for e in first.events]
    assert ids == [e.event_id for e in again.events] and len(set(ids)) == 2
    assert [r.client_order_id for r in first.rejections] == ["c1", None]
    assert all(e.state_before is e.state_after is OPEN for e in first.events)


def test_check_of_nothing_is_empty():
    assert check(config(), []).approved == []


# --- portfolio guards --------------------------------------------------------------------


def guard(**overrides) -> RiskGuard:
    return RiskGuard(config(**overrides))


@pytest.mark.parametrize(
    ("equity", "trips"), [(95_001.0, False), (95_000.0, True), (94_999.0, True)]
)
def test_daily_loss_limit_trips_at_the_limit(equity, trips):
    outcome = guard(daily_loss_limit_pct=0.05).evaluate_portfolio(
        equity, 100_000.0, 100_000.0, OPEN, NOW
    )

    assert outcome.state is (TradingState.REDUCING if trips else OPEN)
    assert len(outcome.events) == int(trips)


@pytest.mark.parametrize(
    ("equity", "trips"), [(80_001.0, False), (80_000.0, True), (79_999.0, True)]
)
def test_max_drawdown_from_the_peak(equity, trips):
    outcome = guard(max_drawdown_pct=0.2, daily_loss_limit_pct=1.0).evaluate_portfolio(
        equity, equity, 100_000.0, OPEN, NOW
    )

    assert outcome.state is (TradingState.HALTED if trips else OPEN)
    if trips:
        (event,) = outcome.events
        assert event.rule == "max_drawdown" and event.state_after is TradingState.HALTED
        assert event.value == pytest.approx((100_000.0 - equity) / 100_000.0)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    twentieths=st.integers(min_value=1, max_value=10**9),
    rule=st.sampled_from(["daily_loss_limit", "max_drawdown"]),
    short=st.booleans(),
)
def test_a_loss_of_exactly_the_limit_trips_and_a_cent_less_does_not(
    twentieths: int, rule: str, short: bool
) -> None:
    # a start or peak and an equity exactly 5% below it, in cents: 100,003.00 and
    # 95,002.85 gave a loss of 0.04999999999999994, and the guard did not trip
    cents = 20 * twentieths
    equity = (cents - cents // 20 + (1 if short else 0)) / 100
    g = guard(daily_loss_limit_pct=0.05, max_drawdown_pct=0.05)
    if rule == "daily_loss_limit":
        outcome = g.evaluate_portfolio(equity, cents / 100, equity, OPEN, NOW)
    else:
        outcome = g.evaluate_portfolio(equity, equity, cents / 100, OPEN, NOW)

    assert [e.rule for e in outcome.events] == ([] if short else [rule])


def test_both_guards_escalate_in_turn_and_flatten_on_halt():
    g = guard(flatten_on_halt=True)

    outcome = g.evaluate_portfolio(70_000.0, 100_000.0, 100_000.0, OPEN, NOW)

    assert outcome.state is TradingState.HALTED and outcome.flatten
    assert [(e.state_before, e.state_after) for e in outcome.events] == [
        (OPEN, TradingState.REDUCING),
        (TradingState.REDUCING, TradingState.HALTED),
    ]


def test_a_guard_never_relaxes_and_a_held_breach_alerts_once():
    g = guard(daily_loss_action=TradingState.REDUCING, flatten_on_halt=True)

    recovered = g.evaluate_portfolio(100_000.0, 100_000.0, 100_000.0, TradingState.HALTED, NOW)
    held = g.evaluate_portfolio(90_000.0, 100_000.0, 100_000.0, TradingState.REDUCING, NOW)
    halted = g.evaluate_portfolio(90_000.0, 100_000.0, 100_000.0, TradingState.HALTED, NOW)

    assert (recovered.state, recovered.events, recovered.flatten) == (
        TradingState.HALTED,
        [],
        False,
    )
    assert (held.state, held.events) == (TradingState.REDUCING, [])
    assert (halted.state, halted.events) == (TradingState.HALTED, [])


def test_config_from_settings_mirrors_risk_and_account():
    settings = Settings.model_validate(
        {
            "risk": {
                "max_order_notional": 123.0,
                "restricted_symbols": ["XYZ"],
                "daily_loss_action": "halted",
            },
            "account": {"allow_short": True, "margin_multiplier": 2.0},
        }
    )

    cfg = risk_config_from_settings(settings)

    assert cfg.max_order_notional == 123.0 and cfg.restricted_symbols == {"XYZ"}
    assert cfg.daily_loss_action is TradingState.HALTED
    assert (cfg.allow_short, cfg.margin_multiplier) == (True, 2.0)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    twentieths=st.integers(min_value=1, max_value=500_000),
    side=st.sampled_from([Side.BUY, Side.SELL]),
    away=st.sampled_from([1, -1]),
    beyond=st.booleans(),
)
def test_a_limit_exactly_at_the_collar_passes_and_one_tick_beyond_is_refused(
    twentieths: int, side: Side, away: int, beyond: bool
) -> None:
    # mid and limit on the cent grid, the limit exactly 5% from the mid (plus a tick): a
    # mid of 1.00 with a limit of 1.05 was refused as "PRICE_OUTSIDE_COLLAR: 5.00 > 5.00"
    cents = 20 * twentieths
    limit_cents = cents + away * (cents // 20 + (1 if beyond else 0))
    intent = OrderIntent(
        "AAA", side, 1, OrderType.LIMIT, limit_price=limit_cents / 100, strategy="t"
    )

    decision = check(config(price_collar_pct=0.05), [intent], q=quotes(AAA=cents / 100))

    assert reasons(decision) == ([RejectReason.PRICE_OUTSIDE_COLLAR] if beyond else [])
