"""The backtest engine on hand-made bars: trades checked by hand under both fill models,
costs as configured, no look-ahead, the ledger identity, the last-bar order, DAY orders
expiring at the close of an intraday session (never between daily bars)."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from paper_broker.commission import PercentCommission, ZeroCommission
from paper_broker.config import BrokerConfig
from paper_broker.enums import OrderStatus, OrderType, Side, TimeInForce
from paper_broker.fills import FillModel
from paper_broker.records import OrderIntent
from paper_broker.slippage import FixedBpsSlippage, NoSlippage
from papertrade.backtest.bars import BarPanel, panel_from_frame
from papertrade.backtest.engine import BacktestConfig, run_backtest
from papertrade.backtest.storage import performance_row
from strategies.base import Prepared, build_intents
from strategies.registry import load_strategy
from tests.support.strategies import EveryBar

START = pd.Timestamp("2024-01-02 21:00", tz="UTC")


def bars_frame(closes: dict[str, list[float]], opens: dict[str, list[float]] | None = None):
    """Long-format bars, one per business day; high/low 1 around the open and close."""
    rows = []
    for sym, cl in closes.items():
        op = (opens or {}).get(sym, cl)
        for t, (o, c) in enumerate(zip(op, cl, strict=True)):
            rows.append(
                {"timestamp": START + pd.offsets.BDay(t), "symbol": sym, "open": o,
                 "high": max(o, c) + 1, "low": min(o, c) - 1, "close": c, "volume": 1e6}
            )  # fmt: skip
    return pd.DataFrame(rows).sort_values(["timestamp", "symbol"], kind="stable")


def random_panel(n_sym: int, n_bars: int, seed: int) -> BarPanel:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (n_bars, n_sym)), axis=0))
    opens = close * np.exp(rng.normal(0, 0.005, close.shape))
    syms = [f"S{i}" for i in range(n_sym)]
    return panel_from_frame(
        bars_frame(
            {s: close[:, i].round(2).tolist() for i, s in enumerate(syms)},
            {s: opens[:, i].round(2).tolist() for i, s in enumerate(syms)},
        )
    )


# fast 2 / slow 3 cross up at bar 4 (11 > 10.67 after 10 <= 10) and down at bar 6
# (10.5 < 11 after 12.5 >= 11.67)
CLOSES = [10.0, 10.0, 10.0, 10.0, 12.0, 13.0, 8.0, 7.0, 7.0]
OPENS = [10.0, 10.0, 10.0, 10.0, 11.5, 12.5, 9.0, 7.5, 7.0]
SLIP_BPS, COMM_RATE, TICK, QTY = 10.0, 0.001, 0.01, 100.0


def costly(fill_model: FillModel, cash: float = 100_000.0) -> BacktestConfig:
    return BacktestConfig(
        account_id="bt-test",
        initial_cash=cash,
        fill_model=fill_model,
        broker=BrokerConfig(
            slippage=FixedBpsSlippage(SLIP_BPS),
            commission=PercentCommission(COMM_RATE),
            tick_size=TICK,
            max_volume_share=None,
        ),
    )


def sma(fast: int = 2, slow: int = 3):
    return load_strategy("sma_crossover", {"fast": fast, "slow": slow, "qty": QTY})


def buy_price(base: float) -> float:
    return math.ceil(round(base * (1 + SLIP_BPS / 1e4) / TICK, 6)) * TICK


def sell_price(base: float) -> float:
    return math.floor(round(base * (1 - SLIP_BPS / 1e4) / TICK, 6)) * TICK


@pytest.mark.parametrize(
    ("fill_model", "buy_bar", "sell_bar", "buy_base", "sell_base"),
    [
        # next_open: decided at the close of bars 4 and 6, filled at the opens of 5 and 7
        (FillModel.NEXT_OPEN, 5, 7, OPENS[5], OPENS[7]),
        # close: filled at the close of the deciding bar
        (FillModel.CLOSE, 4, 6, CLOSES[4], CLOSES[6]),
    ],
)
def test_sma_crossover_trades_by_hand(fill_model, buy_bar, sell_bar, buy_base, sell_base):
    panel = panel_from_frame(bars_frame({"AAA": CLOSES}, {"AAA": OPENS}))

    result = run_backtest(panel, sma(), costly(fill_model))

    buy, sell = result.fills
    assert (buy.side, buy.ts, buy.quantity) == (Side.BUY, panel.timestamps[buy_bar], QTY)
    assert (sell.side, sell.ts, sell.quantity) == (Side.SELL, panel.timestamps[sell_bar], QTY)
    assert buy.price == pytest.approx(buy_price(buy_base), abs=1e-9)
    assert sell.price == pytest.approx(sell_price(sell_base), abs=1e-9)
    assert buy.commission == pytest.approx(QTY * buy.price * COMM_RATE)
    assert sell.commission == pytest.approx(QTY * sell.price * COMM_RATE)
    cash = 100_000 - QTY * buy.price - buy.commission + QTY * sell.price - sell.commission
    assert result.final_equity == pytest.approx(cash)
    assert result.metrics.n_trades == 1


@pytest.mark.parametrize("fill_model", list(FillModel))
def test_the_equity_curve_carries_realized_and_unrealized_pnl(fill_model):
    # a backtest's equity rows are what `daily_pnl` and `equity_curve` read their
    # realized_pnl and unrealized_pnl from; they were null
    panel = panel_from_frame(bars_frame({"AAA": CLOSES}, {"AAA": OPENS}))

    result = run_backtest(panel, sma(), costly(fill_model))

    buy, sell = result.fills
    eq = result.equity.set_index("ts")
    closes = pd.Series(CLOSES, index=panel.timestamps)
    held = eq.index[(eq.index >= buy.ts) & (eq.index < sell.ts)]
    assert len(held) > 0
    for ts in held:
        assert eq.at[ts, "realized_pnl"] == pytest.approx(0.0, abs=1e-9)
        assert eq.at[ts, "unrealized_pnl"] == pytest.approx(QTY * (closes[ts] - buy.price))
    after = eq.index[eq.index >= sell.ts]
    realized = QTY * (sell.price - buy.price)
    assert eq.loc[after, "realized_pnl"].tolist() == pytest.approx([realized] * len(after))
    assert (eq.loc[after, "unrealized_pnl"].abs() < 1e-9).all()
    assert (eq.loc[eq.index < buy.ts, ["realized_pnl", "unrealized_pnl"]] == 0).all().all()


def test_order_decided_on_the_last_bar_stays_open_under_next_open():
    # the cross up happens on the last bar: nothing is left to fill it
    panel = panel_from_frame(bars_frame({"AAA": CLOSES[:5]}, {"AAA": OPENS[:5]}))

    result = run_backtest(panel, sma(), costly(FillModel.NEXT_OPEN))

    assert result.fills == []
    (order,) = result.orders
    assert order.status is OrderStatus.ACCEPTED and order.filled_quantity == 0


def test_equity_curve_matches_the_broker_ledger():
    panel = random_panel(6, 300, seed=3)

    result = run_backtest(panel, sma(5, 20), costly(FillModel.NEXT_OPEN, cash=1e7))

    assert len(result.fills) > 10
    assert len(result.equity) == panel.n_bars
    assert result.final_equity == pytest.approx(result.broker_equity, rel=1e-12)


@pytest.mark.parametrize("fill_model", list(FillModel))
def test_appending_future_bars_never_changes_past_fills(fill_model):
    full = random_panel(4, 240, seed=11)
    cut = 150
    prefix = full.slice(0, cut)

    short = run_backtest(prefix, sma(5, 20), costly(fill_model, cash=1e7))
    long = run_backtest(full, sma(5, 20), costly(fill_model, cash=1e7))

    def key(fills):
        return [(f.ts, f.symbol, f.side, f.quantity, f.price, f.commission) for f in fills]

    last = prefix.timestamps[-1]
    assert len(short.fills) > 3
    assert key(short.fills) == key([f for f in long.fills if f.ts <= last])
    assert long.equity["equity"].iloc[:cut].tolist() == pytest.approx(
        short.equity["equity"].tolist()
    )


def test_trade_from_keeps_warm_up_bars_out_of_trading_and_the_curve():
    panel = random_panel(3, 200, seed=5)

    result = run_backtest(panel, sma(5, 20), costly(FillModel.CLOSE, cash=1e6), trade_from=120)

    assert len(result.equity) == 80
    assert result.equity["ts"].iat[0] == panel.timestamps[120]
    assert all(f.ts >= panel.timestamps[120] for f in result.fills)


def test_summary_has_the_json_keys_and_no_nan():
    panel = panel_from_frame(bars_frame({"AAA": [10.0, 10.0, 10.0]}))

    summary = run_backtest(panel, sma(), costly(FillModel.NEXT_OPEN)).summary()

    assert set(summary) == {
        "account_id", "final_equity", "n_fills", "n_risk_rejections", "n_broker_rejections",
        "metrics",
    }  # fmt: skip
    assert set(summary["metrics"]) == {
        "total_return", "cagr", "sharpe", "sortino", "max_drawdown", "volatility",
        "win_rate", "profit_factor", "n_trades",
    }  # fmt: skip
    assert summary["metrics"]["sharpe"] is None  # flat curve: undefined, not NaN


class BuyOnce(EveryBar):
    """Buy 100 shares of the first symbol at the first bar, then hold."""

    name: ClassVar[str] = "buy_once"

    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]:
        if positions.any():
            return []
        return build_intents(prepared.symbols, np.array([0]), np.array([100.0]), self.name)


HOLD_CLOSES = [100.0, 102.0, 101.0, 105.0, 103.0, 99.0, 104.0, 108.0, 107.0, 110.0]


def commission_only(fill_model: FillModel) -> BacktestConfig:
    return BacktestConfig(
        account_id="bt-test",
        fill_model=fill_model,
        broker=BrokerConfig(
            slippage=FixedBpsSlippage(0.0),
            commission=PercentCommission(COMM_RATE),
            tick_size=TICK,
            max_volume_share=None,
        ),
    )


def test_close_fill_model_measures_from_the_initial_cash():
    panel = panel_from_frame(bars_frame({"AAA": HOLD_CLOSES}))

    result = run_backtest(panel, BuyOnce(), commission_only(FillModel.CLOSE))

    # bought at bar 0's close: 100000 - 100 x 100 - 10 commission + 100 x 110 at the end;
    # the curve is 100000 then 89990 + 100 x close per bar: 10 returns (pandas by hand)
    m = result.metrics
    assert result.final_equity == pytest.approx(100_990.0)
    assert (m.start_equity, m.n_periods) == (100_000.0, 10)
    assert m.total_return == pytest.approx(0.0099, abs=1e-12)
    assert m.cagr == pytest.approx(0.2817843933871407, rel=1e-9)
    assert m.sharpe == pytest.approx(5.209954419798494, rel=1e-9)
    assert m.sortino == pytest.approx(10.626462610347875, rel=1e-9)
    assert m.volatility == pytest.approx(0.04787105908972067, rel=1e-9)
    # what the warehouse stores: one equity row per bar, the run's return from the cash
    assert len(result.equity) == panel.n_bars
    assert performance_row(result)["cumulative_return"] == pytest.approx(0.0099, abs=1e-12)


@pytest.mark.parametrize(
    ("fill_model", "n_periods"), [(FillModel.NEXT_OPEN, 9), (FillModel.CLOSE, 10)]
)
def test_both_fill_models_start_the_metrics_at_the_initial_cash(fill_model, n_periods):
    panel = panel_from_frame(bars_frame({"AAA": HOLD_CLOSES}))

    result = run_backtest(panel, BuyOnce(), commission_only(fill_model))

    # next_open fills nothing at bar 0, so bar 0 is the initial cash; close trades at bar 0
    m = result.metrics
    assert m.start_equity == 100_000.0 and m.n_periods == n_periods
    assert m.total_return == pytest.approx(result.final_equity / 100_000.0 - 1, abs=1e-12)


def test_a_run_the_risk_checks_refuse_says_so() -> None:
    """One symbol at 10 and a 100,000 account: buy-and-hold's order, asked at every bar
    until it is held, is over the per-order limit each time; the summary shows why the run
    has no fills."""
    from paper_broker.risk.config import RiskConfig
    from paper_broker.risk.guard import RiskGuard
    from strategies.registry import load_strategy

    panel = panel_from_frame(bars_frame({"AAA": [10.0, 10.5, 11.0]}))
    config = BacktestConfig("bt", risk=RiskGuard(RiskConfig(max_order_notional=50_000.0)))

    summary = run_backtest(panel, load_strategy("buy_and_hold"), config).summary()

    assert (summary["n_fills"], summary["n_risk_rejections"]) == (0, 3)


def test_a_target_strategy_does_not_send_again_what_an_open_order_still_buys() -> None:
    """Momentum into one symbol at 10 with 10,000: a target of 1,000 shares, of which the
    volume cap (10% of 1,000 a bar) fills 100 a bar. The one order keeps working; the
    strategy does not add the unfilled rest again at every rebalance."""
    frame = bars_frame({"AAA": [10.0] * 8}).assign(volume=1_000.0)
    free = BrokerConfig(slippage=NoSlippage(), commission=ZeroCommission(), max_volume_share=0.1)
    config = BacktestConfig("bt", initial_cash=10_000.0, broker=free)
    strategy = load_strategy("momentum", {"lookback": 1, "top_n": 1, "rebalance_every": 1})

    result = run_backtest(panel_from_frame(frame), strategy, config)

    bought = [o.quantity for o in result.orders if o.side is Side.BUY]
    assert bought[0] > 900 and sum(bought) <= 1_000
    assert sum(f.quantity for f in result.fills) == 100 * 6  # bars 2..7 fill 100 each


def test_buy_and_hold_buys_under_the_default_commission() -> None:
    """Slices of the whole equity left nothing for the commission: one $37.13 symbol and
    $100,000 bought 2,693 shares for 99,991.09, plus 13.47 of per-share commission passed
    the buying power, and every bar's buy was refused (no fill at all)."""
    panel = panel_from_frame(bars_frame({"AAA": [37.13] * 6}))
    config = BacktestConfig(account_id="bt-test", broker=BrokerConfig(max_volume_share=None))

    result = run_backtest(panel, load_strategy("buy_and_hold", {}), config)

    assert len(result.fills) == 1
    assert result.broker_rejections == 0


# Intraday bars over two regular sessions, stamped at their close: Monday 2024-01-08's last
# three minutes (the 21:00 UTC bar closes the session) and Tuesday's first three. A minute
# trades 1,000 shares and a fill takes at most a tenth of it: 100 shares a bar.
SESSION_MINUTES = pd.DatetimeIndex(
    ["2024-01-08 20:58", "2024-01-08 20:59", "2024-01-08 21:00",
     "2024-01-09 14:31", "2024-01-09 14:32", "2024-01-09 14:33"],
    tz="UTC",
)  # fmt: skip
MONDAY_CLOSE = 2  # the index of Monday's last bar
MINUTE_CLOSES = [50.0, 50.0, 50.0, 49.0, 48.0, 48.0]


def minute_panel(closes: list[float] = MINUTE_CLOSES) -> BarPanel:
    return panel_from_frame(
        pd.DataFrame(
            {"timestamp": SESSION_MINUTES, "symbol": "AAA", "open": closes,
             "high": closes, "low": closes, "close": closes, "volume": 1_000.0}
        )
    )  # fmt: skip


def capped(fill_model: FillModel) -> BacktestConfig:
    """No costs; a fill takes at most a tenth of the bar's volume."""
    free = BrokerConfig(slippage=NoSlippage(), commission=ZeroCommission(), max_volume_share=0.1)
    return BacktestConfig("bt", fill_model=fill_model, broker=free)


class BuyAt(EveryBar):
    """One buy of the first symbol at bar `at`: a market order, or a limit at `limit`."""

    name: ClassVar[str] = "buy_at"

    def __init__(
        self, at: int, qty: float, tif: TimeInForce = TimeInForce.DAY, limit: float | None = None
    ) -> None:
        super().__init__()
        self.at, self.qty, self.tif, self.limit = at, qty, tif, limit

    def decide(
        self,
        t: int,
        prepared: Prepared,
        positions: np.ndarray,
        equity: float,
        prices: np.ndarray,
        tradable: np.ndarray,
    ) -> list[OrderIntent]:
        if t != self.at:
            return []
        kind = OrderType.MARKET if self.limit is None else OrderType.LIMIT
        return [
            OrderIntent(prepared.symbols[0], Side.BUY, self.qty, kind, self.tif, self.limit,
                        strategy=self.name)
        ]  # fmt: skip


def test_the_rest_of_a_partial_fill_expires_at_the_close_of_an_intraday_session():
    # bought at 20:59: 100 then, 100 at 21:00; paper expires the other 50 at the close
    panel = minute_panel()

    result = run_backtest(panel, BuyAt(1, 250.0), capped(FillModel.CLOSE))

    (order,) = result.orders
    assert (order.status, order.filled_quantity) == (OrderStatus.EXPIRED, 200.0)
    assert [f.ts for f in result.fills] == list(SESSION_MINUTES[1 : MONDAY_CLOSE + 1])
    assert result.final_equity == pytest.approx(100_000.0 + 200 * (48.0 - 50.0))


def test_an_order_decided_at_the_close_expires_under_next_open_on_intraday_bars():
    # decided on Monday's last bar, it could only fill at Tuesday's open: a DAY order
    # decided at a session's close cannot fill in that session, so it expires
    panel = minute_panel()

    result = run_backtest(panel, BuyAt(MONDAY_CLOSE, 50.0), capped(FillModel.NEXT_OPEN))

    (order,) = result.orders
    assert (order.status, order.filled_quantity) == (OrderStatus.EXPIRED, 0.0)
    assert result.fills == []


def test_an_order_decided_before_the_close_fills_at_the_next_open_of_its_session():
    panel = minute_panel()

    result = run_backtest(panel, BuyAt(0, 250.0), capped(FillModel.NEXT_OPEN))

    (order,) = result.orders
    assert (order.status, order.filled_quantity) == (OrderStatus.EXPIRED, 200.0)
    assert [f.ts for f in result.fills] == list(SESSION_MINUTES[1 : MONDAY_CLOSE + 1])


@pytest.mark.parametrize("fill_model", list(FillModel))
def test_gtc_orders_work_on_over_the_close_of_an_intraday_session(fill_model):
    panel = minute_panel()

    result = run_backtest(panel, BuyAt(1, 250.0, TimeInForce.GTC), capped(fill_model))

    (order,) = result.orders
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 250.0)
    assert result.fills[-1].ts > SESSION_MINUTES[MONDAY_CLOSE]


@pytest.mark.parametrize(
    ("tif", "status", "filled"),
    [(TimeInForce.DAY, OrderStatus.EXPIRED, 0.0), (TimeInForce.GTC, OrderStatus.FILLED, 50.0)],
)
def test_a_resting_limit_order_lives_as_long_as_its_time_in_force(tif, status, filled):
    # a buy limit at 48.5 under Monday's 50: Tuesday's 48 reaches it
    panel = minute_panel()

    result = run_backtest(panel, BuyAt(0, 50.0, tif, limit=48.5), capped(FillModel.CLOSE))

    (order,) = result.orders
    assert (order.status, order.filled_quantity) == (status, filled)


def test_a_day_order_decided_on_the_last_bar_of_a_session_that_ends_the_file_expires():
    panel = minute_panel().slice(0, MONDAY_CLOSE + 1)

    result = run_backtest(panel, BuyAt(MONDAY_CLOSE, 50.0), capped(FillModel.NEXT_OPEN))

    (order,) = result.orders
    assert order.status is OrderStatus.EXPIRED


@pytest.mark.parametrize("fill_model", list(FillModel))
def test_no_order_of_a_daily_backtest_expires(fill_model):
    # a daily bar is a whole session: a DAY order decided on one fills on the next ones,
    # here in volume-capped parts over several bars
    frame = bars_frame({"AAA": CLOSES}, {"AAA": OPENS}).assign(volume=1_000.0)
    panel = panel_from_frame(frame)

    result = run_backtest(panel, BuyAt(1, 250.0), capped(fill_model))

    (order,) = result.orders
    assert (order.status, order.filled_quantity) == (OrderStatus.FILLED, 250.0)
    assert len({f.ts for f in result.fills}) == 3
