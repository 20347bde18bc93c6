"""Benchmark: metrics over 2,520 bars of one equity curve and round trips over 100,000 fills.

Each is measured against a bare numpy baseline in the same run (returns, std, running peak for
the curve; one sort and a cumulative signed quantity for the fills) and reported as a ratio.
Prints one JSON object.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from papertrade.metrics import compute_metrics, round_trips


def best_of(func: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    rng = np.random.default_rng(7)
    bars = 2_520
    index = pd.date_range("2015-01-02", periods=bars, freq="B", tz="UTC")
    equity = pd.Series(1e5 * np.cumprod(1 + rng.normal(3e-4, 1e-2, bars)), index=index)

    n_fills = 100_000
    fills = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-02", periods=n_fills, freq="s", tz="UTC"),
            "symbol": rng.choice([f"S{i:02d}" for i in range(20)], n_fills),
            "side": rng.choice(["buy", "sell"], n_fills),
            "quantity": rng.integers(1, 200, n_fills).astype(np.float64),
            "price": rng.uniform(10, 500, n_fills).round(2),
            "commission": rng.uniform(0, 2, n_fills).round(2),
        }
    )

    def curve_baseline() -> None:
        values = equity.to_numpy()
        r = values[1:] / values[:-1] - 1
        r.mean() / r.std(ddof=1)
        (values / np.maximum.accumulate(values) - 1).min()

    def fills_baseline() -> None:
        order = np.lexsort((fills["ts"].array.asi8, fills["symbol"].to_numpy()))
        signed = (
            np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0) * fills["quantity"].to_numpy()
        )
        np.cumsum(signed[order])

    metrics_s = best_of(lambda: compute_metrics(equity), 20)
    metrics_base = best_of(curve_baseline, 20)
    trips_s = best_of(lambda: round_trips(fills), 3)
    trips_base = best_of(fills_baseline, 3)
    n_trips = len(round_trips(fills))
    print(
        json.dumps(
            {
                "benchmark": "metrics",
                "bars": bars,
                "metrics_seconds": round(metrics_s, 6),
                "metrics_numpy_baseline_seconds": round(metrics_base, 6),
                "metrics_ratio": round(metrics_s / metrics_base, 2),
                "fills": n_fills,
                "round_trips": n_trips,
                "round_trips_seconds": round(trips_s, 4),
                "round_trips_numpy_baseline_seconds": round(trips_base, 4),
                "round_trips_ratio": round(trips_s / trips_base, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
