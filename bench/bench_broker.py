"""Benchmark: the broker's submit -> fill -> account step at 500 symbols.

Each interval: a fresh quote for each of 500 symbols, 500 marketable market orders (one per
symbol, random side and size), `submit`, `process_quotes`, `account()`. Reports fills per
second and milliseconds per interval (median per stage too), against a baseline in the same
run: bare numpy computing the same fill prices (ask/bid + fixed-bps slippage, tick
rounding), commissions and cash/position updates with no order bookkeeping. Prints one JSON
object.

    .venv/bin/python bench/bench_broker.py [--intervals 1000] [--symbols 500]
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from paper_broker.broker import PaperBroker
from paper_broker.commission import PerShareCommission
from paper_broker.config import BrokerConfig
from paper_broker.enums import Side
from paper_broker.records import OrderIntent
from paper_broker.slippage import FixedBpsSlippage


def _market(n_symbols: int, n_intervals: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.001, size=(n_intervals, n_symbols))
    mids = 100.0 * np.exp(np.cumsum(steps, axis=0))
    sides = rng.integers(0, 2, size=(n_intervals, n_symbols))  # 1 = buy
    return mids, sides


def _quotes(symbols: list[str], mid: np.ndarray, ts: datetime) -> pd.DataFrame:
    half = mid * 5e-4
    n = len(symbols)
    return pd.DataFrame(
        {
            "symbol": symbols,
            "bid": mid - half,
            "ask": mid + half,
            "bid_size": np.full(n, 10_000.0),
            "ask_size": np.full(n, 10_000.0),
            "last": mid,
            "volume": np.full(n, 1e7),
            "quote_ts": pd.Series([ts] * n, dtype="datetime64[ns, UTC]"),
        }
    )


def run_broker(symbols: list[str], mids: np.ndarray, sides: np.ndarray, qty: float) -> dict:
    config = BrokerConfig(
        slippage=FixedBpsSlippage(1.0),
        commission=PerShareCommission(),
        margin_multiplier=4.0,
        allow_short=True,
    )
    broker = PaperBroker("bench", 1e9, config, symbols=symbols)
    broker.mark(dict(zip(symbols, mids[0].tolist(), strict=True)))
    t0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    buy, sell = Side.BUY, Side.SELL
    n_fills = 0
    step_times = []
    stage_times = []  # submit, process_quotes, account
    for k in range(mids.shape[0]):
        now = t0 + timedelta(minutes=k)
        quotes = _quotes(symbols, mids[k], now)  # market data arrives; not timed
        side_k = sides[k].tolist()
        # the strategy's output; building it is not the broker's work
        intents = [
            OrderIntent(s, buy if b else sell, qty) for s, b in zip(symbols, side_k, strict=True)
        ]
        start = time.perf_counter()
        broker.submit(intents, now)
        submitted = time.perf_counter()
        n_fills += len(broker.process_quotes(quotes, now))
        filled = time.perf_counter()
        broker.account()
        end = time.perf_counter()
        step_times.append(end - start)
        stage_times.append((submitted - start, filled - submitted, end - filled))
        broker.drain_changes()
    total = float(np.sum(step_times))
    stage_p50 = 1e3 * np.median(np.array(stage_times), axis=0)
    return {
        "fills": n_fills,
        "seconds": total,
        "fills_per_second": n_fills / total,
        "ms_per_interval_mean": 1e3 * total / len(step_times),
        "ms_per_interval_p50": 1e3 * float(np.median(step_times)),
        "ms_per_interval_p99": 1e3 * float(np.quantile(step_times, 0.99)),
        "ms_p50_submit": float(stage_p50[0]),
        "ms_p50_process_quotes": float(stage_p50[1]),
        "ms_p50_account": float(stage_p50[2]),
        "final_equity": broker.account().equity,
    }


def run_baseline(mids: np.ndarray, sides: np.ndarray, qty: float) -> dict:
    """The same arithmetic with nothing but numpy: prices, commissions, cash, positions."""
    n_sym = mids.shape[1]
    position = np.zeros(n_sym)
    cash = 1e9
    tick = 0.01
    step_times = []
    for k in range(mids.shape[0]):
        start = time.perf_counter()
        sign = np.where(sides[k] == 1, 1.0, -1.0)
        touch = mids[k] + sign * mids[k] * 5e-4
        raw = touch + sign * touch * 1e-4
        steps = raw / tick
        price = np.where(sign > 0, np.ceil(steps - 1e-7), np.floor(steps + 1e-7)) * tick
        q = np.full(n_sym, qty)
        comm = np.minimum(np.maximum(q * 0.005, 1.0), q * price * 0.01)
        cash += float(-np.dot(sign * q, price) - comm.sum())
        position += sign * q
        _equity = cash + float(np.dot(position, mids[k]))
        step_times.append(time.perf_counter() - start)
    total = float(np.sum(step_times))
    n = mids.size
    return {
        "fills": n,
        "seconds": total,
        "fills_per_second": n / total,
        "ms_per_interval_p50": 1e3 * float(np.median(step_times)),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--intervals", type=int, default=1_000)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    symbols = [f"S{i:04d}" for i in range(args.symbols)]
    mids, sides = _market(args.symbols, args.intervals, args.seed)
    broker = run_broker(symbols, mids, sides, qty=100.0)
    baseline = run_baseline(mids, sides, qty=100.0)
    print(
        json.dumps(
            {
                "benchmark": "broker_submit_fill_account",
                "symbols": args.symbols,
                "intervals": args.intervals,
                "orders_per_interval": args.symbols,
                "broker": broker,
                "baseline_numpy": baseline,
                "slowdown_vs_baseline": baseline["fills_per_second"] / broker["fills_per_second"],
                # medians shrug off the stalls of a shared machine; the steadier ratio
                "slowdown_p50_vs_baseline": broker["ms_per_interval_p50"]
                / baseline["ms_per_interval_p50"],
                "goal_fills_per_second": 100_000,
                "goal_ms_per_interval": 5.0,
            }
        )
    )


if __name__ == "__main__":
    main()
