"""Whole-batch submit and the fill hot path agree with the order-by-order rules.

The broker decides a plainly acceptable batch with array arithmetic and falls back to
deciding one order at a time otherwise; both must give the same orders, rejections, fills
and account, whatever the batch."""

from __future__ import annotations

from dataclasses import fields

from hypothesis import given, settings
from hypothesis import strategies as st

from paper_broker.broker import PaperBroker, _build_fills, _IntentBatch
from paper_broker.commission import PerShareCommission
from paper_broker.config import BrokerConfig
from paper_broker.enums import RejectReason, Side
from paper_broker.records import Fill, OrderIntent
from paper_broker.slippage import FixedBpsSlippage
from tests.factories import at, make_broker, make_intent, make_quotes

SYMBOLS = ["A", "B", "C", "D"]


def _config(allow_short: bool) -> BrokerConfig:
    return BrokerConfig(
        slippage=FixedBpsSlippage(1.0),
        commission=PerShareCommission(),
        max_volume_share=0.5,
        allow_short=allow_short,
        margin_multiplier=1.0,
    )


def _broker(cash: float, allow_short: bool, held: dict[str, float]) -> PaperBroker:
    """A broker marked at 100 holding `held` (bought through the broker itself)."""
    broker = make_broker(cash=cash, config=_config(allow_short), symbols=SYMBOLS)
    broker.mark(dict.fromkeys(SYMBOLS, 100.0))
    broker.submit([make_intent(s, "buy", q) for s, q in held.items() if q > 0], at(0))
    broker.process_quotes(make_quotes(SYMBOLS, size=10_000, ts=at(0)), at(0))
    broker.drain_changes()
    return broker


def _one_at_a_time(broker: PaperBroker, intents: list[OrderIntent], now):  # type: ignore[no-untyped-def]
    batch = _IntentBatch.of(intents, broker._ledger, broker.config)
    return broker._submit_each(intents, batch, broker._reservations(), now)


intent_st = st.builds(
    lambda sym, side, qty, kind, tif, cid: make_intent(
        sym, side, float(qty), kind, tif,
        limit=101.0 if kind == "limit" else None,
        cid=None if cid is None else f"c{cid}",
    ),
    st.sampled_from([*SYMBOLS, "NEW"]),
    st.sampled_from(["buy", "sell"]),
    st.one_of(st.integers(1, 300), st.just(0)),
    st.sampled_from(["market", "market", "market", "limit"]),
    st.sampled_from(["day", "gtc", "ioc", "fok"]),
    st.one_of(st.none(), st.integers(0, 5)),
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    intents=st.lists(intent_st, max_size=6),
    cash=st.sampled_from([2_000.0, 20_000.0, 1e6]),
    allow_short=st.booleans(),
    held=st.fixed_dictionaries({s: st.sampled_from([0.0, 50.0]) for s in SYMBOLS}),
)
def test_batch_submit_matches_one_order_at_a_time(
    intents: list[OrderIntent], cash: float, allow_short: bool, held: dict[str, float]
) -> None:
    batched = _broker(cash, allow_short, held)
    single = _broker(cash, allow_short, held)

    got = batched.submit(intents, at(1))
    expected = _one_at_a_time(single, intents, at(1))
    quotes = make_quotes([*SYMBOLS, "NEW"], mid=100.5, size=120, ts=at(1))
    got_fills = batched.process_quotes(quotes, at(1))
    expected_fills = single.process_quotes(quotes, at(1))

    assert got == expected
    assert got_fills == expected_fills
    assert batched.drain_changes() == single.drain_changes()
    assert batched.snapshot() == single.snapshot()
    assert batched.account() == single.account()


def test_plain_batch_is_decided_whole() -> None:
    broker = _broker(1e6, allow_short=False, held={"A": 50.0})
    intents = [make_intent("A", "sell", 50), make_intent("B", "buy", 10)]
    batch = _IntentBatch.of(intents, broker._ledger, broker.config)

    result = broker._submit_batch(intents, batch, broker._reservations(), at(1))

    assert result is not None
    assert [o.status for o in result.orders] == ["accepted", "accepted"]
    assert broker.open_orders() == result.orders


def test_batch_that_may_be_refused_changes_nothing_and_goes_one_by_one() -> None:
    broker = _broker(2_000.0, allow_short=False, held={})
    intents = [make_intent("A", "buy", 10), make_intent("B", "buy", 15)]  # 2,500 of 2,000
    batch = _IntentBatch.of(intents, broker._ledger, broker.config)
    before = broker.snapshot()

    assert broker._submit_batch(intents, batch, broker._reservations(), at(1)) is None
    assert broker.snapshot() == before
    result = broker.submit(intents, at(1))
    assert [o.status for o in result.orders] == ["accepted"]
    assert [r.reason for r in result.rejections] == [RejectReason.INSUFFICIENT_BUYING_POWER]


def test_resting_orders_fill_after_later_batches_join_them() -> None:
    broker = _broker(1e6, allow_short=True, held={})
    broker.submit([make_intent("A", "buy", 10, "limit", limit=99.0)], at(1))
    broker.submit([make_intent("B", "buy", 10), make_intent("C", "sell", 5)], at(1))

    fills = broker.process_quotes(make_quotes(SYMBOLS, mid=98.0, size=1_000, ts=at(1)), at(1))

    assert [(f.symbol, f.side, f.quantity) for f in fills] == [
        ("A", "buy", 10.0),
        ("B", "buy", 10.0),
        ("C", "sell", 5.0),
    ]
    assert broker.open_orders() == []


def test_fast_fill_constructor_builds_the_same_records() -> None:
    rows = [
        ("acct", "acct-F00000001", "acct-O00000001", at(0), "A", Side.SELL, 5.0, 9.99, 1.0),
        ("acct", "acct-F00000002", "acct-O00000007", at(0), "B", Side.BUY, 2.5, 10.01, 0.5),
    ]
    _, fids, oids, _, syms, sides, qtys, prices, comms = (list(c) for c in zip(*rows, strict=True))

    built = _build_fills(2, "acct", fids, oids, at(0), syms, sides, qtys, prices, comms)

    assert built == [Fill(*r) for r in rows]
    assert [tuple(getattr(f, x.name) for x in fields(Fill)) for f in built] == rows


def test_restored_broker_sums_symbols_in_the_original_order() -> None:
    straight = _broker(1e6, allow_short=False, held={"C": 7.0})
    first = _broker(1e6, allow_short=False, held={"C": 7.0})
    resumed = PaperBroker.from_state(first.snapshot(), first.config)

    for broker in (straight, resumed):
        broker.submit([make_intent("B", "buy", 3), make_intent("A", "buy", 11)], at(1))
        broker.process_quotes(make_quotes(SYMBOLS, mid=[95.0, 95.35, 95.61, 97.0], ts=at(1)), at(1))

    assert resumed.symbols == straight.symbols
    assert resumed.account() == straight.account()
