"""Built-in strategies against hand-computed signals, and the no-look-ahead property."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paper_broker.enums import Side
from paper_broker.records import PortfolioView
from strategies.base import StrategyParams
from strategies.buy_and_hold import BuyAndHold
from strategies.errors import StrategyParamError
from strategies.indicators import rolling_mean, rolling_mean_std
from strategies.mean_reversion import MeanReversion
from strategies.momentum import Momentum
from strategies.sma_crossover import SmaCrossover

T0 = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)


def frame(columns: dict[str, list[float]], start: datetime = T0) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    index = pd.date_range(start, periods=n, freq="min", tz="UTC")
    return pd.DataFrame(columns, index=index, dtype=float)


def portfolio(equity: float = 1_000.0, **positions: float) -> PortfolioView:
    return PortfolioView(
        cash=equity,
        equity=equity,
        buying_power=equity,
        gross_exposure=0.0,
        net_exposure=0.0,
        positions=dict(positions),
    )


def quotes(**prices: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"symbol": list(prices), "bid": list(prices.values()), "ask": list(prices.values())}
    )


def decide_at(strategy, closes, t, positions, equity=1_000.0, prices=None, tradable=None):
    prepared = strategy.prepare(closes)
    n = len(prepared.symbols)
    prices = np.asarray(closes, dtype=float)[t] if prices is None else prices
    tradable = np.ones(n, dtype=bool) if tradable is None else tradable
    return strategy.decide(t, prepared, np.asarray(positions, float), equity, prices, tradable)


# --- indicators --------------------------------------------------------------------------


def test_rolling_mean_matches_pandas_and_is_undefined_until_full():
    rng = np.random.default_rng(1)
    values = 100 + rng.normal(0, 1, (40, 3)).cumsum(axis=0)
    values[7, 1] = np.nan

    got = rolling_mean(values, 5)

    want = pd.DataFrame(values).rolling(5).mean().to_numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[:4]).all()


def test_rolling_std_is_sample_std_and_flat_window_is_zero():
    rng = np.random.default_rng(2)
    values = 50 + rng.normal(0, 1, (30, 2)).cumsum(axis=0)
    values[10:20, 0] = 42.0

    mean, std = rolling_mean_std(values, 4)

    want = pd.DataFrame(values).rolling(4).std(ddof=1).to_numpy()
    np.testing.assert_allclose(std[~np.isnan(want)], want[~np.isnan(want)], atol=1e-9)
    assert (std[13:20, 0] == 0.0).all()
    np.testing.assert_allclose(mean, pd.DataFrame(values).rolling(4).mean(), equal_nan=True)


# --- sma_crossover -----------------------------------------------------------------------

# fast(2): -, 10, 10, 9.5, 8.5, 10, 13, 12, 8
# slow(3): -, -, 10, 9.67, 9, 9.67, 11.33, 12, 10
# up at 5 (8.5<=9, 10>9.67); down at 3 (10>=10, 9.5<9.67) and 8 (12>=12, 8<10)
SMA_CLOSES = [10, 10, 10, 9, 8, 12, 14, 10, 6]


def test_sma_crossover_signals_match_hand_computation():
    strategy = SmaCrossover({"fast": 2, "slow": 3, "qty": 100})

    prepared = strategy.prepare(np.array(SMA_CLOSES, float))

    assert np.flatnonzero(prepared.signals["up"][:, 0]).tolist() == [5]
    assert np.flatnonzero(prepared.signals["down"][:, 0]).tolist() == [3, 8]
    assert np.isnan(prepared.signals["slow"][:2, 0]).all()


# fast(2): -, 7.98, 12.885, 12.75, 8.77, 8.77, ...
# slow(3): -, -, 10.8967, 11.5133, 11.4233, 8.77, 8.77, ...
# down at 4 (12.75>=11.51, 8.77<11.42); from 5 on both average the same flat 8.77: no cross,
# though the running sums leave fast - slow = +1.8e-15 at row 7 (0 at row 6)
FLAT_TAIL = [6.92, 9.04, 16.73, 8.77, 8.77, 8.77, 8.77, 8.77, 8.77]


def test_sma_crossover_flat_prices_after_a_move_never_cross():
    strategy = SmaCrossover({"fast": 2, "slow": 3, "qty": 100})

    prepared = strategy.prepare(np.array(FLAT_TAIL))

    assert np.flatnonzero(prepared.signals["up"][:, 0]).tolist() == []
    assert np.flatnonzero(prepared.signals["down"][:, 0]).tolist() == [4]
    assert decide_at(strategy, np.array(FLAT_TAIL)[:, None], 7, [0]) == []


def test_sma_crossover_paper_window_decides_as_the_backtest_over_flat_prices():
    strategy = SmaCrossover({"fast": 2, "slow": 3, "qty": 100})
    history = frame({"AAA": FLAT_TAIL})
    full = strategy.prepare(history)

    for t in range(3, len(FLAT_TAIL)):
        window = history.iloc[t - 3 : t + 1]  # a 4-row paper-trading history ending at t
        live = strategy.generate(window, quotes(AAA=8.77), portfolio(), window.index[-1])
        assert live == decide_at(strategy, history, t, [0]), t
        assert full.signals["up"][t, 0] == strategy.prepare(window).signals["up"][-1, 0]


def test_sma_crossover_buys_when_flat_and_sells_the_whole_long():
    strategy = SmaCrossover({"fast": 2, "slow": 3, "qty": 100})
    closes = np.array(SMA_CLOSES, float)[:, None]

    buy = decide_at(strategy, closes, 5, [0])
    no_short = decide_at(strategy, closes, 3, [0])
    sell = decide_at(strategy, closes, 8, [250])
    held = decide_at(strategy, closes, 5, [100])

    assert [(i.side, i.quantity, i.strategy) for i in buy] == [(Side.BUY, 100, "sma_crossover")]
    assert no_short == []
    assert [(i.side, i.quantity) for i in sell] == [(Side.SELL, 250)]
    assert held == []


def test_sma_crossover_no_signal_before_averages_exist():
    strategy = SmaCrossover({"fast": 2, "slow": 3})

    prepared = strategy.prepare(np.array([10.0, 5.0, 20.0]))

    assert not prepared.active.any()


def test_sma_crossover_skips_untradable_symbols_and_orders_by_symbol_index():
    strategy = SmaCrossover({"fast": 2, "slow": 3, "qty": 7})
    closes = np.tile(np.array(SMA_CLOSES, float)[:, None], (1, 3))

    intents = decide_at(
        strategy,
        frame({"C": SMA_CLOSES, "A": SMA_CLOSES, "B": SMA_CLOSES}),
        5,
        [0, 0, 0],
        prices=closes[5],
        tradable=np.array([True, False, True]),
    )

    assert [i.symbol for i in intents] == ["C", "B"]


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"fast": 30, "slow": 30}, "fast"),
        ({"fastt": 3}, "fastt"),
        ({"qty": 0}, "qty"),
        # lax pydantic reads true/false as 1/0: fast=true would be a 1-bar average
        ({"fast": True, "slow": 5}, "fast"),
        ({"qty": True}, "qty"),
        # orders are whole shares; 2.5 would send 2.5-share orders
        ({"qty": 2.5}, "qty"),
    ],
)
def test_sma_crossover_bad_params_name_the_parameter(params, param):
    with pytest.raises(StrategyParamError) as err:
        SmaCrossover(params)

    assert err.value.param == param
    assert param in str(err.value) and "\n" not in str(err.value)


def test_a_bool_parameter_of_a_user_strategy_still_takes_true_and_false():
    class Params(StrategyParams):
        hedge: bool = False
        window: int | None = None

    assert Params.model_validate({"hedge": True}).hedge is True
    with pytest.raises(ValueError, match="not true/false"):
        Params.model_validate({"window": True})


def test_defaults_are_documented_values():
    assert SmaCrossover().params.model_dump() == {"fast": 10, "slow": 30, "qty": 100}


# --- mean_reversion ----------------------------------------------------------------------

# lookback 3: t3 [10,10,13] z=+1.155 -> short, exits a long; t4 [10,13,10] z=-0.577 -> exits
# a short (past the mean); t5 [13,10,11] z=-0.218 -> exits either; t6 [10,11,7] z=-1.121 ->
# long, exits a short; t2 is a flat window (no z)
MR_CLOSES = [10, 10, 10, 13, 10, 11, 7]
MR_PARAMS = {"lookback": 3, "entry_z": 1.1, "exit_z": 0.3, "qty": 10}


def test_mean_reversion_signals_match_hand_computation():
    prepared = MeanReversion(MR_PARAMS).prepare(np.array(MR_CLOSES, float))

    names = ("short", "long", "exit_long", "exit_short")
    sig = {k: np.flatnonzero(prepared.signals[k][:, 0]).tolist() for k in names}
    assert sig == {"short": [3], "long": [6], "exit_long": [3, 5], "exit_short": [4, 5, 6]}
    assert np.isnan(prepared.signals["z"][:3, 0]).all()
    assert prepared.signals["z"][3, 0] == pytest.approx(2 / np.sqrt(3))


def test_mean_reversion_enters_only_when_flat_and_exits_any_position():
    strategy = MeanReversion(MR_PARAMS)
    closes = np.array(MR_CLOSES, float)[:, None]

    short = decide_at(strategy, closes, 3, [0])
    no_add = decide_at(strategy, closes, 3, [-10])
    cover = decide_at(strategy, closes, 5, [-10])
    long = decide_at(strategy, closes, 6, [0])

    assert [(i.side, i.quantity) for i in short] == [(Side.SELL, 10)]
    assert no_add == []
    assert [(i.side, i.quantity) for i in cover] == [(Side.BUY, 10)]
    assert [(i.side, i.quantity) for i in long] == [(Side.BUY, 10)]


def test_mean_reversion_exits_a_position_whose_price_overshot_the_mean():
    strategy = MeanReversion(MR_PARAMS)
    closes = np.array(MR_CLOSES, float)[:, None]

    # short from t3; at t4 the close (10) is below its mean (11): z=-0.577, past the mean
    cover = decide_at(strategy, closes, 4, [-10])
    # a long is not closed while its price is still far below the mean (t6 z=-1.121)
    hold = decide_at(strategy, closes, 6, [10])

    assert [(i.side, i.quantity) for i in cover] == [(Side.BUY, 10)]
    assert hold == []


def test_mean_reversion_exit_z_zero_exits_at_the_mean():
    strategy = MeanReversion({**MR_PARAMS, "exit_z": 0.0})
    closes = np.array(MR_CLOSES, float)[:, None]

    above = decide_at(strategy, closes, 3, [10])  # z=+1.155: a long has reverted
    below = decide_at(strategy, closes, 5, [10])  # z=-0.218: not yet
    short_below = decide_at(strategy, closes, 5, [-10])

    assert [(i.side, i.quantity) for i in above] == [(Side.SELL, 10)]
    assert below == []
    assert [(i.side, i.quantity) for i in short_below] == [(Side.BUY, 10)]


def test_mean_reversion_qty_is_whole_shares():
    assert MeanReversion({"qty": 3.0}).params.qty == 3
    with pytest.raises(StrategyParamError, match="qty: must be a whole number of shares"):
        MeanReversion({"qty": 0.5})


def test_mean_reversion_rejects_exit_outside_entry():
    with pytest.raises(StrategyParamError, match="exit_z"):
        MeanReversion({"entry_z": 1.0, "exit_z": 1.5})


# --- momentum ----------------------------------------------------------------------------

MOM = {"A": [10, 11, 12, 13, 14], "B": [10, 10, 10, 10, 30], "C": [10, 9, 15, 16, 16]}


def test_momentum_rebalances_into_top_n_with_target_shares():
    strategy = Momentum({"lookback": 2, "top_n": 1, "rebalance_every": 2})
    closes = np.column_stack([MOM[s] for s in "ABC"]).astype(float)

    first = decide_at(strategy, closes, 2, [0, 0, 0], equity=1_000.0)
    between = decide_at(strategy, closes, 3, [0, 0, 66], equity=1_000.0)
    # t4 returns: A 14/12, B 30/10, C 16/15 -> B; target floor(1100/30)=36, C closed
    second = decide_at(strategy, closes, 4, [0, 0, 66], equity=1_100.0)

    assert [(i.symbol, i.side, i.quantity) for i in first] == [("2", Side.BUY, 66)]
    assert between == []
    assert [(i.symbol, i.side, i.quantity) for i in second] == [
        ("1", Side.BUY, 36),
        ("2", Side.SELL, 66),
    ]


def test_momentum_never_sizes_shorts_from_a_negative_equity():
    strategy = Momentum({"lookback": 2, "top_n": 1, "rebalance_every": 2})
    closes = np.column_stack([MOM[s] for s in "ABC"]).astype(float)

    # t4 picks B (30/10); floor(-300/30) = -10 would sell 10 B short
    intents = decide_at(strategy, closes, 4, [0, 0, 66], equity=-300.0)

    assert [(i.symbol, i.side, i.quantity) for i in intents] == [("2", Side.SELL, 66)]


def test_momentum_on_paper_counts_the_open_orders_towards_its_targets():
    # t2 picks C (15/10): a target of floor(1000/15) = 66, of which a buy of 40 still works
    history = frame({s: [float(x) for x in MOM[s][:3]] for s in "ABC"})
    strategy = Momentum({"lookback": 2, "top_n": 1, "rebalance_every": 2})
    working = dataclasses.replace(portfolio(C=20.0), pending_buy={"C": 40.0})
    as_of = history.index[-1].to_pydatetime()

    intents = strategy.generate(history, quotes(A=12.0, B=10.0, C=15.0), working, as_of)

    assert [(i.symbol, i.side, i.quantity) for i in intents] == [("C", Side.BUY, 6)]


def test_momentum_equal_weight_across_top_n():
    strategy = Momentum({"lookback": 2, "top_n": 2, "rebalance_every": 2})
    closes = np.column_stack([MOM[s] for s in "ABC"]).astype(float)

    intents = decide_at(strategy, closes, 2, [0, 0, 0], equity=1_000.0)

    # A +20% and C +50% chosen; 500 each: floor(500/12)=41, floor(500/15)=33
    assert [(i.symbol, i.quantity) for i in intents] == [("0", 41), ("2", 33)]


def test_momentum_timestamp_clock_keeps_cadence_in_a_sliding_window():
    strategy = Momentum({"lookback": 1, "top_n": 1, "rebalance_every": 3})
    start = datetime(2024, 3, 1, 14, 30, tzinfo=UTC)  # minute 28_488_750 since the epoch
    history = frame({"A": list(range(10, 22))}, start=start)

    actives = [bool(strategy.prepare(history.iloc[k : k + 4]).active[-1]) for k in range(8)]
    minutes = [int(history.index[k + 3].timestamp() // 60) for k in range(8)]

    assert actives == [m % 3 == 0 for m in minutes]


# --- buy_and_hold ------------------------------------------------------------------------


def test_buy_and_hold_buys_equal_weight_once():
    strategy = BuyAndHold({"cash_buffer": 0})
    closes = np.array([[10.0, 30.0, 5.0]])

    first = decide_at(
        strategy, closes, 0, [0, 0, 0], equity=1_000.0, tradable=np.array([True, True, False])
    )
    later = decide_at(strategy, closes, 0, [50, 0, 0], equity=1_000.0)

    assert [(i.symbol, i.quantity) for i in first] == [("0", 50), ("1", 16)]
    assert later == []


def test_buy_and_hold_keeps_its_cash_buffer_out_of_the_slices():
    closes = np.array([[10.0, 30.0]])

    intents = decide_at(BuyAndHold(), closes, 0, [0, 0], equity=1_000.0)

    # 1% of 1,000 stays in cash: slices of 495 buy 49 and 16 shares
    assert [(i.symbol, i.quantity) for i in intents] == [("0", 49), ("1", 16)]


def test_buy_and_hold_refuses_unknown_params_and_a_whole_buffer():
    with pytest.raises(StrategyParamError, match="qty"):
        BuyAndHold({"qty": 1})
    with pytest.raises(StrategyParamError, match="cash_buffer"):
        BuyAndHold({"cash_buffer": 1})


# --- the paper-trading entry point -------------------------------------------------------


def test_generate_equals_decide_at_last_row_and_ignores_rows_after_as_of():
    strategy = SmaCrossover({"fast": 2, "slow": 3, "qty": 5})
    history = frame({"AAA": [*SMA_CLOSES[:6], 1.0, 1.0]})  # a cross up at row 5
    as_of = history.index[5].to_pydatetime()

    intents = strategy.generate(history, quotes(AAA=12.0), portfolio(), as_of)
    later = strategy.generate(history, quotes(AAA=12.0), portfolio(), as_of + timedelta(minutes=2))

    assert [(i.symbol, i.side, i.quantity) for i in intents] == [("AAA", Side.BUY, 5)]
    assert later == []


def test_generate_does_not_trade_symbols_without_a_valid_quote():
    strategy = SmaCrossover({"fast": 2, "slow": 3})
    history = frame({"AAA": SMA_CLOSES[:6], "BBB": SMA_CLOSES[:6]})
    q = quotes(AAA=12.0, BBB=12.0).assign(valid=[False, True])

    intents = strategy.generate(history, q, portfolio(), history.index[-1].to_pydatetime())

    assert [i.symbol for i in intents] == ["BBB"]


def test_generate_refuses_naive_times():
    with pytest.raises(ValueError, match="timezone"):
        SmaCrossover().generate(
            frame({"A": [1.0]}), quotes(A=1.0), portfolio(), datetime(2024, 1, 1)
        )


# --- no look-ahead -----------------------------------------------------------------------

BUILTINS = [
    SmaCrossover({"fast": 3, "slow": 7}),
    MeanReversion({"lookback": 5, "entry_z": 1.0, "exit_z": 0.2}),
    Momentum({"lookback": 3, "top_n": 2, "rebalance_every": 2}),
    BuyAndHold(),
]


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    cut=st.integers(1, 39),
    nan_at=st.integers(0, 39),
)
@pytest.mark.parametrize("strategy", BUILTINS, ids=lambda s: s.name)
def test_appending_future_bars_never_changes_past_decisions(strategy, seed, cut, nan_at):
    rng = np.random.default_rng(seed)
    closes = 100 * np.exp(rng.normal(0, 0.03, (40, 4)).cumsum(axis=0))
    closes[nan_at, 1] = np.nan
    history = frame({f"S{i}": closes[:, i].tolist() for i in range(4)})
    positions = np.array([0.0, 5.0, -5.0, 0.0])

    full = strategy.prepare(history)
    past = strategy.prepare(history.iloc[:cut])

    for name, arr in past.signals.items():
        np.testing.assert_array_equal(arr, full.signals[name][:cut], err_msg=name)
    for t in range(cut):
        args = (positions, 10_000.0, closes[t], np.isfinite(closes[t]))
        assert strategy.decide(t, past, *args) == strategy.decide(t, full, *args)


@pytest.mark.parametrize(
    ("name", "params", "needed"),
    [("sma_crossover", {"fast": 3, "slow": 7}, 7), ("mean_reversion", {"lookback": 5}, 4),
     ("momentum", {"lookback": 6}, 6), ("buy_and_hold", {}, 0)],
)  # fmt: skip
def test_history_needed_is_what_a_first_signal_looks_back(name, params, needed) -> None:
    """Closes before the current bar: a crossover compares the slow average at the bar
    before, a z-score's window includes the current bar, a return looks `lookback` back."""
    from strategies.registry import load_strategy

    strategy = load_strategy(name, params)

    assert strategy.history_needed == needed
