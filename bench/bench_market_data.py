"""Simulated quotes and quote validation for 500 symbols, against a numpy baseline.

Prints one JSON object: median milliseconds per call, and the ratio to drawing 500 normal
numbers with numpy (the least any per-call random market could cost)."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from paper_broker.market_data.simulated import SimulatedMarket
from paper_broker.market_data.validation import QuoteLimits, validate_quotes

N_SYMBOLS = 500
REPEATS = 200


def median_ms(fn: Callable[[int], object], repeats: int = REPEATS) -> float:
    fn(0)  # warm caches (symbol parameters, normal table)
    samples = []
    for i in range(repeats):
        start = time.perf_counter()
        fn(i)
        samples.append((time.perf_counter() - start) * 1e3)
    return statistics.median(samples)


def main() -> None:
    symbols = [f"SYM{i:03d}" for i in range(N_SYMBOLS)]
    market = SimulatedMarket(seed=42)
    as_of = pd.Timestamp("2026-03-02 15:30:00", tz="UTC")
    rng = np.random.default_rng(0)
    quotes = market.quotes(symbols, as_of)
    previous = pd.Series(((quotes["bid"] + quotes["ask"]) / 2).to_numpy(), index=symbols)

    baseline = median_ms(lambda i: rng.standard_normal(N_SYMBOLS))
    simulated = median_ms(lambda i: market.quotes(symbols, as_of + pd.Timedelta(seconds=i)))
    validation = median_ms(
        lambda i: validate_quotes(quotes, symbols, as_of, QuoteLimits(), previous)
    )
    print(
        json.dumps(
            {
                "n_symbols": N_SYMBOLS,
                "simulated_quotes_median_ms": round(simulated, 3),
                "simulated_quotes_goal_ms": 5.0,
                "baseline_numpy_normal_median_ms": round(baseline, 4),
                "simulated_vs_baseline_ratio": round(simulated / baseline, 1),
                "validate_quotes_median_ms": round(validation, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
