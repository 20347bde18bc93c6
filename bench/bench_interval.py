"""One trading interval for 500 symbols: the engine alone, and the whole Prefect flow run.

Prints one JSON object:
- the engine's median milliseconds per interval (load state, quotes, strategy, risk, fills,
  commit: `papertrade.interval` without Prefect, as the flow runs it: the load and the commit
  each open the warehouse file, which is free in between), with a per-step breakdown, and
  its ratio to the storage floor measured in the same run: a bare durable write of the
  interval's quotes, positions and equity row to a file of its own (attach, INSERT, COMMIT,
  checkpoint, detach), which no engine on this machine can undercut;
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

    floor_db = Path(settings.warehouse.path).with_name("floor.duckdb")
    floors = []
    for i in range(WARMUP, WARMUP + ENGINE_RUNS):
        as_of = T0 + timedelta(minutes=i)
        start = time.perf_counter()
        with interval.account_lock(settings):
            run = timed("load", interval.open_run, settings, as_of, provider)
            timed("quotes", interval.fetch_quotes, run, provider)
            timed("strategy", interval.run_strategy, run)
            timed("risk", interval.risk_check, run)
            fills += len(timed("fills", interval.simulate_fills, run))
            timed("commit", interval.persist, run)
        totals.append((time.perf_counter() - start) * 1e3)
        floors.append(_storage_floor(floor_db, run))
    locking = [t - sum(v[k] for v in steps.values()) for k, t in enumerate(totals)]
    engine_ms, floor_ms = statistics.median(totals), statistics.median(floors)
    return {
        "engine_median_ms": round(engine_ms, 1),
        "engine_p90_ms": round(sorted(totals)[int(0.9 * len(totals))], 1),
        "engine_steps_median_ms": {
            **{k: round(statistics.median(v), 2) for k, v in steps.items()},
            "account_lock": round(statistics.median(locking), 2),
        },
        "engine_fills_per_interval": round(fills / ENGINE_RUNS, 1),
        "storage_floor_median_ms": round(floor_ms, 1),
        "engine_to_storage_floor_ratio": round(engine_ms / floor_ms, 2),
    }


def _storage_floor(db: Path, run: Any) -> float:
    """What any durable per-interval write costs on this machine, whatever the engine: attach
    the file, a bare INSERT of the interval's quotes and position snapshots and one equity
    row (no keys, no queries, no Python), COMMIT, checkpoint and detach."""
    from papertrade import interval
    from warehouse.connection import connect

    quotes = run.quotes.assign(account_id="paper", as_of=run.as_of)  # noqa: F841
    positions = interval.positions_frame(run.broker).assign(  # noqa: F841
        account_id="paper", ts=run.as_of
    )
    start = time.perf_counter()
    with connect(db, migrate=False) as conn:
        conn.execute("BEGIN TRANSACTION")
        conn.execute("CREATE TABLE IF NOT EXISTS q AS SELECT * FROM quotes LIMIT 0")
        conn.execute("CREATE TABLE IF NOT EXISTS p AS SELECT * FROM positions LIMIT 0")
        conn.execute("CREATE TABLE IF NOT EXISTS e (account_id VARCHAR, ts TIMESTAMPTZ, v DOUBLE)")
        conn.execute("INSERT INTO q SELECT * FROM quotes")
        conn.execute("INSERT INTO p SELECT * FROM positions")
        conn.execute("INSERT INTO e VALUES ('paper', ?, 1.0)", [run.as_of])
        conn.execute("COMMIT")
    return (time.perf_counter() - start) * 1e3


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
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = _config(Path(tmp))
        result: dict[str, Any] = {"n_symbols": N_SYMBOLS, **engine(cfg)}
        if "--engine-only" not in sys.argv:
            result.update(flows(cfg))
    result["goals"] = {"engine_ms": 50, "flow_to_empty_ratio": 1.5}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
