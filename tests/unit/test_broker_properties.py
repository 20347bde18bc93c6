"""Accounting properties over random order and quote sequences (hypothesis).

Invariants checked after every step:
- cash changes by exactly the sum of the step's fill cash flows (-signed qty x price - commission);
- each position equals the sum of its signed fills;
- equity - initial cash = realized P&L + unrealized P&L - commissions (to 1e-6);
- no order's filled quantity exceeds its quantity, and every observed status change is in
  the transition table;
- snapshot -> restore -> continue gives the same fills, account and positions as never
  stopping.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from paper_broker.broker import PaperBroker
from paper_broker.commission import PerShareCommission
from paper_broker.config import BrokerConfig
from paper_broker.lifecycle import TRANSITIONS
from paper_broker.slippage import FixedBpsSlippage
from tests.factories import at, make_intent, make_quotes

SYMBOLS = ["A", "B", "C"]
TOL = 1e-6

CONFIG = BrokerConfig(
    slippage=FixedBpsSlippage(2.0),
    commission=PerShareCommission(),
    max_volume_share=0.5,
    allow_short=True,
    margin_multiplier=2.0,
)

intent_st = st.builds(
    lambda sym, side, qty, kind, offset, tif: make_intent(
        sym, side, float(qty), kind,
        tif,
        limit=100.0 + offset if kind in ("limit", "stop_limit") else None,
        stop=100.0 - offset if kind in ("stop", "stop_limit") else None,
    ),
    st.sampled_from(SYMBOLS),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 400),
    st.sampled_from(["market", "limit", "stop", "stop_limit"]),
    st.integers(-3, 3),
    st.sampled_from(["day", "gtc", "ioc", "fok"]),
)  # fmt: skip
step_st = st.tuples(
    st.lists(intent_st, max_size=4),
    st.lists(st.floats(95.0, 105.0), min_size=3, max_size=3),  # mids
    st.lists(st.integers(0, 300), min_size=3, max_size=3),  # displayed sizes
    st.booleans(),  # cancel the oldest open order this step
)
steps_st = st.lists(step_st, min_size=1, max_size=8)


def _run_step(broker: PaperBroker, k: int, step: tuple) -> list:
    intents, mids, sizes, cancel = step
    broker.submit(intents, at(k))
    if cancel and broker.open_orders():
        broker.cancel(broker.open_orders()[0].order_id, at(k))
    quotes = make_quotes(SYMBOLS, mid=mids, size=sizes, volume=1_000.0, ts=at(k))
    return broker.process_quotes(quotes, at(k))


def _new_broker() -> PaperBroker:
    broker = PaperBroker("prop", 100_000.0, CONFIG, symbols=SYMBOLS)
    broker.mark(dict.fromkeys(SYMBOLS, 100.0))
    return broker


@settings(max_examples=100, deadline=None)
@given(steps_st)
def test_ledger_invariants_hold_on_every_step(steps: list) -> None:
    broker = _new_broker()
    signed = defaultdict(float)
    last_status: dict[str, str] = {}
    for k, step in enumerate(steps):
        cash_before = broker.account().cash

        fills = _run_step(broker, k, step)

        acct = broker.account()
        assert abs(acct.cash - cash_before - sum(f.cash_flow for f in fills)) < TOL
        for f in fills:
            signed[f.symbol] += f.side.sign * f.quantity
        held = {p.symbol: p.quantity for p in broker.positions()}
        for sym in SYMBOLS:
            assert abs(held.get(sym, 0.0) - signed[sym]) < TOL
        pnl = acct.realized_pnl + acct.unrealized_pnl - acct.commissions
        assert abs(acct.equity - acct.initial_cash - pnl) < TOL
        for order in broker.drain_changes().orders:
            assert order.filled_quantity <= order.quantity + 1e-9
            previous = last_status.get(order.order_id)
            if previous is not None and previous != order.status:
                assert order.status in TRANSITIONS[previous]  # type: ignore[index]
            last_status[order.order_id] = order.status


@settings(max_examples=60, deadline=None)
@given(steps_st, st.integers(0, 8))
def test_restore_and_continue_gives_the_same_fills(steps: list, split: int) -> None:
    straight = _new_broker()
    expected = [f for k, s in enumerate(steps) for f in _run_step(straight, k, s)]

    first = _new_broker()
    split = min(split, len(steps))
    got = [f for k, s in enumerate(steps[:split]) for f in _run_step(first, k, s)]
    resumed = PaperBroker.from_state(first.snapshot(), CONFIG)
    got += [f for k, s in enumerate(steps[split:], start=split) for f in _run_step(resumed, k, s)]

    assert got == expected
    assert resumed.account() == straight.account()
    assert resumed.positions() == straight.positions()
