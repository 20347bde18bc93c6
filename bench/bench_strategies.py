"""One strategy step for 500 symbols x 250 bars per built-in, and RiskGuard on 500 intents.

Prints one JSON object. The baseline is the bare numpy rolling mean (cumsum difference) of
the same closes, measured in the same run; each strategy reports median ms of the full
paper-trading step (`generate`: prepare + decide at the last bar), of `prepare` alone, of a
quiet `decide`, and the ratio of the step to the baseline. Goal: step < 5 ms.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from paper_broker.enums import Side, TradingState
from paper_broker.records import OrderIntent, PortfolioView
from paper_broker.risk import RiskConfig, RiskGuard
from strategies.registry import load_strategy

N_SYMBOLS, N_BARS, REPEATS = 500, 250, 50


def median_ms(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1e3)


def main() -> None:
    rng = np.random.default_rng(7)
    closes = 100 * np.exp(rng.normal(0, 0.02, (N_BARS, N_SYMBOLS)).cumsum(axis=0))
    symbols = [f"S{i:03d}" for i in range(N_SYMBOLS)]
    index = pd.date_range("2024-03-01 14:30", periods=N_BARS, freq="min", tz="UTC")
    history = pd.DataFrame(closes, index=index, columns=symbols)
    last = closes[-1]
    quotes = pd.DataFrame({"symbol": symbols, "bid": last - 0.01, "ask": last + 0.01})
    portfolio = PortfolioView(
        cash=1e7, equity=1e7, buying_power=1e7, gross_exposure=0.0, net_exposure=0.0
    )
    as_of = index[-1].to_pydatetime()

    def baseline() -> np.ndarray:
        c = np.cumsum(closes, axis=0)
        return (c[30:] - c[:-30]) / 30

    base_ms = median_ms(baseline)
    out: dict[str, object] = {"symbols": N_SYMBOLS, "bars": N_BARS, "baseline_ms": base_ms}
    params = {"momentum": {"rebalance_every": 1}}
    for name in ("sma_crossover", "mean_reversion", "momentum", "buy_and_hold"):
        strategy = load_strategy(name, params.get(name, {}))
        step = median_ms(lambda s=strategy: s.generate(history, quotes, portfolio, as_of))
        prep_ms = median_ms(lambda s=strategy: s.prepare(closes))
        prepared = strategy.prepare(closes)
        quiet = np.flatnonzero(~prepared.active)
        t = int(quiet[-1]) if quiet.size else N_BARS - 1
        args = (np.zeros(N_SYMBOLS), 1e7, last, np.ones(N_SYMBOLS, bool))
        decide_us = (
            median_ms(lambda s=strategy, t=t, p=prepared, a=args: s.decide(t, p, *a), 200) * 1e3
        )
        out[name] = {
            "step_ms": round(step, 3),
            "prepare_ms": round(prep_ms, 3),
            "decide_quiet_us": round(decide_us, 2),
            "ratio_to_baseline": round(step / base_ms, 1),
            "goal_met": step < 5.0,
        }

    intents = [
        OrderIntent(symbol=s, side=Side.BUY if i % 2 else Side.SELL, quantity=10.0)
        for i, s in enumerate(symbols)
    ]
    guard = RiskGuard(RiskConfig(allow_short=True, max_gross_exposure=1e9, max_net_exposure=1e9))
    now = datetime(2024, 3, 1, 18, 40, tzinfo=UTC)
    risk_ms = median_ms(
        lambda: guard.check(intents, portfolio, quotes, TradingState.ACTIVE, now=now), 20
    )
    out["risk_check_500_intents_ms"] = round(risk_ms, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
