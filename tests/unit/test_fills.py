"""Fill rules: quotes (touch, limits, stops, size, volume, bad quotes) and bars."""

from __future__ import annotations

import numpy as np
import pytest

from paper_broker.fills import FillModel, allocate, cap_at_limit, round_to_tick
from tests.factories import at, frictionless, make_bars, make_broker, make_intent, make_quotes


def test_round_to_tick_rounds_against_the_trader() -> None:
    price = np.array([100.001, 100.001, 100.00, 99.999])
    sign = np.array([1.0, -1.0, 1.0, -1.0])

    assert round_to_tick(price, sign, 0.01).tolist() == [100.01, 100.0, 100.0, 99.99]


def test_cap_at_limit_never_passes_the_limit() -> None:
    out = cap_at_limit(
        np.array([10.02, 9.97, 10.02]), np.array([1.0, -1.0, 1.0]), np.array([10.0, 10.0, np.nan])
    )

    assert out.tolist() == [10.0, 10.0, 10.02]


def test_allocate_is_first_come_first_served_per_key() -> None:
    key = np.array([0, 1, 0, 0])
    want = np.array([60.0, 50.0, 60.0, 10.0])
    available = np.array([100.0, 30.0, 100.0, 100.0])

    assert allocate(key, want, available).tolist() == [60.0, 30.0, 40.0, 0.0]


def _filled_one(order_kwargs: dict, quote_kwargs: dict, **config: object) -> list:
    broker = make_broker(config=frictionless(allow_short=True, **config), marks={"A": 100.0})
    broker.submit([make_intent("A", **order_kwargs)], at(0))
    return broker.process_quotes(make_quotes(["A"], **quote_kwargs), at(0))


def test_market_buy_fills_at_ask_and_sell_at_bid() -> None:
    # mid 100, 20 bp spread: bid 99.90, ask 100.10
    buy = _filled_one({"side": "buy"}, {"spread_bps": 20})
    sell = _filled_one({"side": "sell"}, {"spread_bps": 20})

    assert (buy[0].price, sell[0].price) == (100.10, 99.90)


@pytest.mark.parametrize(
    ("side", "limit", "expected"),
    [
        ("buy", 100.05, None),  # ask 100.10 above the limit: rests
        ("buy", 100.50, 100.10),  # marketable: fills at the ask, better than the limit
        ("sell", 99.95, None),  # bid 99.90 below the limit
        ("sell", 99.50, 99.90),
    ],
)
def test_limit_fills_only_when_marketable(side: str, limit: float, expected: float | None) -> None:
    fills = _filled_one({"side": side, "order_type": "limit", "limit": limit}, {"spread_bps": 20})

    assert [f.price for f in fills] == ([] if expected is None else [expected])


def test_limit_caps_slippage_at_the_limit() -> None:
    from paper_broker.slippage import FixedBpsSlippage

    # ask 100.10 + 50 bp = 100.60, but the limit is 100.20
    fills = _filled_one(
        {"order_type": "limit", "limit": 100.20}, {"spread_bps": 20},
        slippage=FixedBpsSlippage(50.0),
    )  # fmt: skip

    assert fills[0].price == 100.20


@pytest.mark.parametrize(("side", "limit", "price"), [("buy", 100.157, 100.15),
                                                      ("sell", 99.843, 99.85)])  # fmt: skip
def test_a_limit_between_ticks_caps_at_the_last_tick_inside_it(
    side: str, limit: float, price: float
) -> None:
    from paper_broker.slippage import FixedBpsSlippage

    # touch 100.10 / 99.90 plus 50 bp of slippage runs into the limit
    fills = _filled_one(
        {"side": side, "order_type": "limit", "limit": limit}, {"spread_bps": 20},
        slippage=FixedBpsSlippage(50.0),
    )  # fmt: skip

    assert [f.price for f in fills] == [price]


@pytest.mark.parametrize(
    ("side", "stop", "last", "fills"),
    [
        ("buy", 101.0, 100.0, False),
        ("buy", 101.0, 101.0, True),  # trades at the stop: triggers
        ("sell", 99.0, 99.5, False),
        ("sell", 99.0, 98.9, True),
    ],
)
def test_stop_triggers_when_the_market_trades_through(
    side: str, stop: float, last: float, fills: bool
) -> None:
    result = _filled_one(
        {"side": side, "order_type": "stop", "stop": stop}, {"mid": 100.0, "last": last}
    )

    assert bool(result) is fills


def test_stop_limit_triggers_then_waits_for_its_limit() -> None:
    broker = make_broker(marks={"A": 100.0})
    [order] = broker.submit(
        [make_intent("A", "buy", 10, "stop_limit", limit=101.0, stop=100.5)], at(0)
    ).orders

    first = broker.process_quotes(
        make_quotes(["A"], mid=101.5, spread_bps=20, last=101.5), at(0)
    )  # triggered (last >= 100.5) but ask 101.60 > limit 101
    second = broker.process_quotes(
        make_quotes(["A"], mid=100.9, spread_bps=10, ts=at(1)), at(1)
    )  # ask 100.9 x 1.0005 = 100.95045, within the limit, rounded up to 100.96

    assert first == []
    assert order.stop_triggered
    assert [f.price for f in second] == [100.96]


def test_partial_fill_by_displayed_size_then_rest() -> None:
    broker = make_broker(marks={"A": 100.0})
    [order] = broker.submit([make_intent("A", "buy", 250)], at(0)).orders

    fills = broker.process_quotes(make_quotes(["A"], size=100), at(0))

    assert [f.quantity for f in fills] == [100.0]
    assert order.status == "partially_filled"
    assert order.remaining == 150.0


def test_volume_share_caps_fills() -> None:
    fills = _filled_one({"quantity": 500}, {"volume": 2_000}, max_volume_share=0.1)

    assert [f.quantity for f in fills] == [200.0]  # 10% of 2000


def test_the_volume_cap_is_whole_shares() -> None:
    fills = _filled_one({"quantity": 500}, {"volume": 132}, max_volume_share=0.1)

    assert [f.quantity for f in fills] == [13.0]  # not 13.2


def test_quotes_processed_twice_at_one_time_share_one_cap() -> None:
    # an interval fills resting orders before its strategy runs and its new orders after,
    # on the same quotes: together they take the interval's liquidity once
    broker = make_broker(config=frictionless(max_volume_share=0.1), marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 500, tif="gtc")], at(0))
    quotes = make_quotes(["A"], volume=1_000, ts=at(1))

    resting = broker.process_quotes(quotes, at(1))
    broker.submit([make_intent("A", "buy", 50)], at(1))
    again = broker.process_quotes(quotes, at(1))
    later = broker.process_quotes(make_quotes(["A"], volume=1_000, ts=at(2)), at(2))

    assert [f.quantity for f in resting] == [100.0]
    assert again == []
    assert [f.quantity for f in later] == [100.0]


def test_two_orders_share_the_displayed_size_in_time_priority() -> None:
    broker = make_broker(marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 70), make_intent("A", "buy", 70)], at(0))

    fills = broker.process_quotes(make_quotes(["A"], size=100), at(0))

    assert [f.quantity for f in fills] == [70.0, 30.0]


@pytest.mark.parametrize(
    "quote_kwargs",
    [
        {"valid": False},
        {"mid": np.nan},
        {"ts": at(-10)},  # 10 minutes old, staleness limit 120 s
    ],
)
def test_invalid_or_stale_quotes_never_fill(quote_kwargs: dict) -> None:
    broker = make_broker(marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 10)], at(0))

    fills = broker.process_quotes(make_quotes(["A"], **quote_kwargs), at(0))

    assert fills == []
    assert len(broker.open_orders()) == 1


def test_crossed_quote_never_fills() -> None:
    broker = make_broker(marks={"A": 100.0})
    broker.submit([make_intent("A", "buy", 10)], at(0))
    quotes = make_quotes(["A"])
    quotes["bid"], quotes["ask"] = 100.2, 100.0

    assert broker.process_quotes(quotes, at(0)) == []


# ---- bars -----------------------------------------------------------------------------


def _bar_fill(intent_kwargs: dict, bar_kwargs: dict, model: FillModel = FillModel.NEXT_OPEN):
    broker = make_broker(config=frictionless(allow_short=True), marks={"A": 100.0})
    broker.submit([make_intent("A", **intent_kwargs)], at(0))
    return broker.process_bar(make_bars(["A"], **bar_kwargs), at(1), model)


def test_next_open_market_fills_at_the_next_bars_open() -> None:
    fills = _bar_fill({}, {"open": 101.0, "high": 103.0, "low": 100.0, "close": 102.0})

    assert [f.price for f in fills] == [101.0]


def test_next_open_does_not_fill_orders_from_the_same_bar() -> None:
    broker = make_broker(marks={"A": 100.0})
    broker.submit([make_intent("A")], at(1))

    assert broker.process_bar(make_bars(["A"]), at(1), FillModel.NEXT_OPEN) == []


def test_close_model_fills_at_close() -> None:
    fills = _bar_fill({}, {"open": 101.0, "close": 102.5}, FillModel.CLOSE)

    assert [f.price for f in fills] == [102.5]


@pytest.mark.parametrize(
    ("intent", "bar", "expected"),
    [
        # buy limit 99: gap down to open 98 fills at the open, not the limit
        ({"order_type": "limit", "limit": 99.0}, {"open": 98.0, "high": 99.5, "low": 97.0}, 98.0),
        # buy limit 99: open 100, low 98.5 touched it -> at the limit
        ({"order_type": "limit", "limit": 99.0}, {"open": 100.0, "high": 101, "low": 98.5}, 99.0),
        # buy limit 99: low 99.2 never reached it
        ({"order_type": "limit", "limit": 99.0}, {"open": 100.0, "high": 101, "low": 99.2}, None),
        # sell limit 101: gap up to 102 -> at the open
        ({"side": "sell", "order_type": "limit", "limit": 101.0},
         {"open": 102.0, "high": 103.0, "low": 101.5}, 102.0),
        # buy stop 101: high 101.5 trades through -> at the stop
        ({"order_type": "stop", "stop": 101.0}, {"open": 100.0, "high": 101.5, "low": 99}, 101.0),
        # buy stop 101: gap up to 102 -> at the open
        ({"order_type": "stop", "stop": 101.0}, {"open": 102.0, "high": 103, "low": 101.5}, 102.0),
        # sell stop 99: low 98 -> at the stop
        ({"side": "sell", "order_type": "stop", "stop": 99.0},
         {"open": 100.0, "high": 100.5, "low": 98.0}, 99.0),
        # buy stop-limit stop 101 limit 101.5: gap to 102 triggers beyond the limit -> rests
        ({"order_type": "stop_limit", "stop": 101.0, "limit": 101.5},
         {"open": 102.0, "high": 103, "low": 101.8}, None),
        # buy stop-limit stop 101 limit 101.5: trades through 101 -> fills at the stop
        ({"order_type": "stop_limit", "stop": 101.0, "limit": 101.5},
         {"open": 100.0, "high": 102, "low": 99.5}, 101.0),
        # buy stop-limit stop 101 limit 101.5: gap to 102 triggers at the open, then the bar
        # falls to 101.2, through the limit after the trigger -> fills at the limit
        ({"order_type": "stop_limit", "stop": 101.0, "limit": 101.5},
         {"open": 102.0, "high": 103, "low": 101.2}, 101.5),
        # sell stop-limit stop 99 limit 98.5: gap down to 98 triggers, the bar rises to 98.9
        # -> fills at the limit
        ({"side": "sell", "order_type": "stop_limit", "stop": 99.0, "limit": 98.5},
         {"open": 98.0, "high": 98.9, "low": 97.0}, 98.5),
        # buy stop-limit stop 101 limit 100.5 (below the stop): triggered intrabar at 101; the
        # low of 100 may have come before the trigger -> rests
        ({"order_type": "stop_limit", "stop": 101.0, "limit": 100.5},
         {"open": 100.8, "high": 101.5, "low": 100.0}, None),
    ],
)  # fmt: skip
def test_bar_limits_and_stops_use_high_low_honestly(
    intent: dict, bar: dict, expected: float | None
) -> None:
    fills = _bar_fill(intent, bar)

    assert [f.price for f in fills] == ([] if expected is None else [expected])


def test_bar_volume_share_gives_partial_fills() -> None:
    broker = make_broker(config=frictionless(max_volume_share=0.01), marks={"A": 100.0})
    broker.submit([make_intent("A", quantity=500)], at(0))

    fills = broker.process_bar(make_bars(["A"], volume=20_000), at(1), FillModel.NEXT_OPEN)

    assert [f.quantity for f in fills] == [200.0]


def test_a_bar_processed_twice_gives_each_side_one_volume_cap() -> None:
    # Arrange: a backtest at the close fills resting orders at a bar, then the new ones
    broker = make_broker(config=frictionless(max_volume_share=0.01), marks={"A": 100.0})
    broker.submit([make_intent("A", quantity=500)], at(0))
    first = broker.process_bar(make_bars(["A"], volume=20_000), at(1), FillModel.CLOSE)
    broker.submit([make_intent("A", "sell", 100)], at(1))

    # Act
    second = broker.process_bar(make_bars(["A"], volume=20_000), at(1), FillModel.CLOSE)

    # Assert: the buy took its side's 200 shares in the first pass and gets none again;
    # the sell has a side of its own, as on quotes
    assert [(f.side, f.quantity) for f in first] == [("buy", 200.0)]
    assert [(f.side, f.quantity) for f in second] == [("sell", 100.0)]


def test_bar_arrays_aligned_with_the_universe() -> None:
    broker = make_broker(symbols=["A", "B", "C"])
    broker.mark({"A": 10.0, "B": 20.0, "C": 30.0})
    broker.submit([make_intent("B", quantity=5)], at(0))
    ones = np.ones(3)

    fills = broker.process_bar_arrays(
        np.array([11.0, 21.0, 31.0]), ones * 40, ones, np.array([12.0, 22.0, 32.0]),
        ones * 1e6, at(1), FillModel.NEXT_OPEN,
    )  # fmt: skip

    assert [(f.symbol, f.price) for f in fills] == [("B", 21.0)]
    assert broker.portfolio_view().marks == {"A": 12.0, "B": 22.0, "C": 32.0}
