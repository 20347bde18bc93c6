"""One trading interval for 500 symbols: the engine alone, and the whole Prefect flow run.

Prints one JSON object:
- the engine's median milliseconds per interval (load state, quotes, strategy, risk, fills,
  commit: `papertrade.interval` without Prefect), with a per-step breakdown;
- the `trading-interval` flow run's median seconds, and the ratio to an empty Prefect flow of
  the same six tasks measured in the same run (Prefect's own floor on this machine).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

N_SYMBOLS = 500
WARMUP = 5
ENGINE_RUNS = 40
FLOW_RUNS = 5
T0 = datetime(2026, 11, 23, 14, 30, tzinfo=UTC)


def _config(root: Path) -> Path:
    symbols = [f"S{i:03d}" for i in range(N_SYMBOLS)]
    path = root / "bench.toml"
    path.write_text(
        f"""
[universe]
symbols = {json.dumps(symbols)}
[market_data]
history_bars = 40
[strategy]
name = "sma_crossover"
params = {{ fast = 10, slow = 30, qty = 10 }}
[risk]
max_gross_exposure = 1e9
max_net_exposure = 1e9
[slack]
send_fills = false
send_risk = false
send_data_quality = false
[warehouse]
path = "{root / "bench.duckdb"}"
"""
    )
    return path


def engine(cfg: Path) -> dict[str, Any]:
    from paper_broker.market_data.factory import make_provider
    from papertrade import interval
    from papertrade.settings import load_settings

    settings = load_settings(cfg)
    provider = make_provider(settings.market_data, settings.universe.symbols)
    for i in range(WARMUP):
        interval.run_interval(settings, T0 + timedelta(minutes=i), provider)
    steps: dict[str, list[float]] = {}
    totals, fills = [], 0

    def timed(name: str, fn: Any, *args: Any, **kw: Any) -> Any:
        start = time.perf_counter()
        out = fn(*args, **kw)
        steps.setdefault(name, []).append((time.perf_counter() - start) * 1e3)
        return out

    for i in range(WARMUP, WARMUP + ENGINE_RUNS):
        as_of = T0 + timedelta(minutes=i)
        start = time.perf_counter()
        with interval.account_lock(settings), interval.interval_connection(settings) as conn:
            run = timed("load", interval.open_run, settings, as_of, provider, conn=conn)
            timed("quotes", interval.fetch_quotes, run, provider)
            timed("strategy", interval.run_strategy, run)
            timed("risk", interval.risk_check, run)
            fills += len(timed("fills", interval.simulate_fills, run))
            timed("commit", interval.persist, run)
        totals.append((time.perf_counter() - start) * 1e3)
    return {
        "engine_median_ms": round(statistics.median(totals), 1),
        "engine_p90_ms": round(sorted(totals)[int(0.9 * len(totals))], 1),
        "engine_steps_median_ms": {k: round(statistics.median(v), 2) for k, v in steps.items()},
        "engine_fills_per_interval": round(fills / ENGINE_RUNS, 1),
    }


def flows(cfg: Path) -> dict[str, Any]:
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE

    from flows.trading_interval import trading_interval

    @task(cache_policy=NO_CACHE)
    def step(x: int) -> int:
        return x + 1

    @flow(name="empty-six-tasks")
    def empty() -> int:
        x = 0
        for _ in range(6):
            x = step(x)
        return x

    empty()  # starts the temporary server outside the timings
    start_minute = WARMUP + ENGINE_RUNS + 1
    trading_interval(as_of=T0 + timedelta(minutes=start_minute), config=str(cfg))
    flow_s, empty_s = [], []
    for i in range(FLOW_RUNS):
        start = time.perf_counter()
        empty()
        empty_s.append(time.perf_counter() - start)
        as_of = T0 + timedelta(minutes=start_minute + 1 + i)
        start = time.perf_counter()
        trading_interval(as_of=as_of, config=str(cfg))
        flow_s.append(time.perf_counter() - start)
    flow_med, empty_med = statistics.median(flow_s), statistics.median(empty_s)
    return {
        "flow_median_s": round(flow_med, 3),
        "empty_flow_median_s": round(empty_med, 3),
        "flow_to_empty_ratio": round(flow_med / empty_med, 2),
    }


def main() -> None:
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(Path(tmp))
        result: dict[str, Any] = {"n_symbols": N_SYMBOLS, **engine(cfg)}
        if "--engine-only" not in sys.argv:
            result.update(flows(cfg))
    result["goals"] = {"engine_ms": 50, "flow_to_empty_ratio": 1.5}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
