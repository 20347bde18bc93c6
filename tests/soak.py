"""Soak: whole sessions of one-minute intervals through `run_interval` (no Prefect), with
random faults injected, then every invariant checked. Run with `make soak`:

    python -m tests.soak [--sessions 5] [--symbols 200] [--intervals N] [--seed 7]

Faults, each drawn independently per interval with probability `--fault-rate`:

    provider_error  the provider raises `ProviderUnavailable`: the interval fails, the retry commits
    bad_quotes      a few symbols come back NaN, zero or crossed: flagged, never traded
    warehouse_busy  another writer holds the file past the timeout: `WarehouseBusy`, then retry
    slack_down      the sender fails: alerts wait in the outbox, delivered later exactly once
    crash           a step dies before persist (an exception): nothing written, the retry commits

At the end: no interval missing or duplicated, the ledger reconciles, nothing traded on a
flagged quote, every alert delivered exactly once, and memory does not grow from session to
session (resident set size after each session). Prints one JSON object; exits 1 if any
invariant fails.
"""

from __future__ import annotations

import argparse
import collections
import gc
import json
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from paper_broker.market_data.errors import ProviderUnavailable
from paper_broker.market_data.simulated import SimulatedMarket
from papertrade import interval
from papertrade.alerts.sender import SendResult
from papertrade.calendar import MarketCalendar
from papertrade.settings import Settings, load_settings
from tests.reliability.support import (
    fills_signature,
    interval_times,
    ledger_violations,
    read,
    table_counts,
)
from warehouse.errors import WarehouseBusy
from warehouse.locking import Backoff, writer_intent

FAULTS = ("provider_error", "bad_quotes", "warehouse_busy", "slack_down", "crash")
FIRST_SESSION = date(2026, 11, 30)  # a Monday; the next four sessions are regular ones
# resident memory may wobble by allocator noise; a leak of the engine grows far past this
MAX_GROWTH_MB = 40.0


class FaultyMarket:
    """The simulated market, with a fault switched on for the next call."""

    name = "simulated"

    def __init__(self, seed: int) -> None:
        self.inner = SimulatedMarket(seed=seed)
        self.fail_next = False
        self.corrupt: list[str] = []

    def quotes(self, symbols: Sequence[str], as_of: datetime) -> pd.DataFrame:
        if self.fail_next:
            self.fail_next = False
            raise ProviderUnavailable(self.name, "injected outage", 1)
        frame = self.inner.quotes(symbols, as_of)
        if self.corrupt:
            rows = frame["symbol"].isin(self.corrupt).to_numpy()
            kinds = np.arange(rows.sum()) % 3
            bid = frame.loc[rows, "bid"].to_numpy()
            ask = frame.loc[rows, "ask"].to_numpy()
            frame.loc[rows, "bid"] = np.where(
                kinds == 0, np.nan, np.where(kinds == 1, 0.0, ask + 1)
            )
            frame.loc[rows, "ask"] = np.where(kinds == 2, bid, ask)
            self.corrupt = []
        return frame

    def bars(self, *args: Any, **kwargs: Any) -> pd.DataFrame:
        return self.inner.bars(*args, **kwargs)


class CountingSender:
    """In-process Slack: counts deliveries per alert id; `down` fails every send."""

    def __init__(self) -> None:
        self.down = False
        self.sent: collections.Counter[str] = collections.Counter()
        self.order: list[str] = []

    def send(self, alert: Any) -> SendResult:
        if self.down:
            return SendResult(ok=False, error="injected: slack down", retryable=True)
        self.sent[alert.alert_id] += 1
        self.order.append(alert.alert_id)
        return SendResult(ok=True, ts=str(len(self.order)))


@contextmanager
def busy_writer(db: Path) -> Iterator[None]:
    """Another writer's intent lock on the file (a separate descriptor: flock excludes it)."""
    with writer_intent(db, Backoff(5.0)) as acquired:
        assert acquired
        yield


@contextmanager
def crashing_step() -> Iterator[None]:
    real = interval.simulate_fills

    def fills_then_die(run: Any) -> Any:
        real(run)
        raise RuntimeError("injected: step crashed before persist")

    interval.simulate_fills = fills_then_die  # type: ignore[assignment]
    try:
        yield
    finally:
        interval.simulate_fills = real  # type: ignore[assignment]


def write_config(root: Path, n_symbols: int) -> Path:
    symbols = [f"S{i:03d}" for i in range(n_symbols)]
    path = root / "soak.toml"
    path.write_text(
        f"""
[account]
id = "soak"
initial_cash = 1000000

[universe]
symbols = {symbols!r}

[market_data]
history_bars = 20
cache_seconds = 0

[strategy]
name = "sma_crossover"
params = {{ fast = 3, slow = 8, qty = 10 }}

[risk]
max_order_notional = 20000
max_gross_exposure = 5000000
max_net_exposure = 5000000

[warehouse]
path = "{root / "soak.duckdb"}"
reports_dir = "{root / "reports"}"
lock_timeout_seconds = 30
"""
    )
    return path


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def session_times(
    calendar: MarketCalendar, n_sessions: int, limit: int | None
) -> list[list[datetime]]:
    sessions, day = [], FIRST_SESSION
    while len(sessions) < n_sessions:
        session = calendar.session(day)
        if session is not None:
            times = calendar.intervals(session)
            sessions.append(times[:limit] if limit else times)
        day += timedelta(days=1)
    return sessions


def run_one(
    settings: Settings,
    busy: Settings,
    when: datetime,
    market: FaultyMarket,
    sender: CountingSender,
    fault: str | None,
    calendar: MarketCalendar,
    stats: collections.Counter[str],
) -> dict[str, Any]:
    """One interval with `fault` injected; a failed attempt is retried once, as the
    scheduler's retry would. Counts the fault as survived when the retry commits."""
    db = settings.warehouse.path
    sender.down = fault == "slack_down"
    failed = False
    try:
        if fault == "provider_error":
            market.fail_next = True
            interval.run_interval(settings, when, market, sender=sender, calendar=calendar)
        elif fault == "warehouse_busy":
            with busy_writer(db):
                interval.run_interval(busy, when, market, sender=sender, calendar=calendar)
        elif fault == "crash":
            with crashing_step():
                interval.run_interval(settings, when, market, sender=sender, calendar=calendar)
        else:
            summary = interval.run_interval(
                settings, when, market, sender=sender, calendar=calendar
            )
            if fault is not None:
                stats["faults_survived"] += summary["status"] == "committed"
            return summary
    except (ProviderUnavailable, WarehouseBusy, RuntimeError):
        failed = True
    sender.down = False
    summary = interval.run_interval(settings, when, market, sender=sender, calendar=calendar)
    stats["faults_survived"] += failed and summary["status"] == "committed"
    return summary


def soak(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    settings = load_settings(write_config(root, args.symbols))
    busy = settings.model_copy(
        update={"warehouse": settings.warehouse.model_copy(update={"lock_timeout_seconds": 0.05})}
    )
    calendar = MarketCalendar.for_market(settings.market_data)
    rng = random.Random(args.seed)
    market = FaultyMarket(settings.market_data.seed)
    sender = CountingSender()
    stats: collections.Counter[str] = collections.Counter()
    flagged: list[tuple[datetime, str]] = []
    sessions = session_times(calendar, args.sessions, args.intervals)
    memory, seconds = [], []
    expected: list[datetime] = []
    for times in sessions:
        started = time.perf_counter()
        for when in times:
            fault = rng.choice(FAULTS) if rng.random() < args.fault_rate else None
            if fault == "bad_quotes":
                market.corrupt = rng.sample(settings.universe.symbols, 3)
                flagged += [(when, s) for s in market.corrupt]
            stats["faults_injected"] += fault is not None
            stats[f"fault_{fault}"] += fault is not None
            summary = run_one(settings, busy, when, market, sender, fault, calendar, stats)
            if summary["status"] != "committed":
                stats["not_committed"] += 1
            stats["intervals_run"] += 1
            expected.append(when)
        seconds.append(round(time.perf_counter() - started, 2))
        gc.collect()
        memory.append(round(rss_mb(), 1))
    # whatever Slack missed in the last interval goes out now
    interval.notify(settings, sender)
    return check(settings, sender, stats, flagged, expected) | {
        "sessions": len(sessions),
        "symbols": args.symbols,
        "rss_mb_after_session": memory,
        "seconds_per_session": seconds,
        "ms_per_interval": round(1000 * sum(seconds) / max(stats["intervals_run"], 1), 1),
        "memory_growth_mb": round(memory[-1] - memory[min(1, len(memory) - 1)], 1),
        "stats": dict(stats),
    }


def check(
    settings: Settings,
    sender: CountingSender,
    stats: collections.Counter[str],
    flagged: list[tuple[datetime, str]],
    expected: list[datetime],
) -> dict[str, Any]:
    db, account = settings.warehouse.path, settings.account.id
    problems = ledger_violations(db, account, settings.account.initial_cash)
    committed = interval_times(db, account)
    if [t.isoformat() for t in committed] != [t.isoformat() for t in expected]:
        problems.append(f"intervals: {len(committed)} committed, {len(expected)} expected")
    fills = fills_signature(db, account)
    traded = {(pd.Timestamp(f[2]).isoformat(), f[3]) for f in fills}
    bad_trades = [f for f in flagged if (pd.Timestamp(f[0]).isoformat(), f[1]) in traded]
    if bad_trades:
        problems.append(f"{len(bad_trades)} fills on flagged quotes")
    not_flagged = read(
        db,
        "SELECT count(*) FROM quotes WHERE account_id = ? AND valid AND (bid IS NULL OR "
        "isnan(bid) OR bid <= 0 OR bid > ask)",
        [account],
    )[0][0]
    if not_flagged:
        problems.append(f"{not_flagged} bad quotes stored as valid")
    alerts = read(
        db, "SELECT alert_id, status FROM alerts WHERE account_id = ? ORDER BY created_at, "
        "alert_id", [account],
    )  # fmt: skip
    if any(status != "sent" for _, status in alerts):
        problems.append("alerts left undelivered")
    if sorted(sender.sent) != sorted(a for a, _ in alerts) or any(
        n != 1 for n in sender.sent.values()
    ):
        problems.append("an alert was not delivered exactly once")
    if sender.order != [a for a, _ in alerts]:
        problems.append("alerts delivered out of order")
    if stats["faults_survived"] != stats["faults_injected"]:
        problems.append("a fault was not survived")
    if stats["not_committed"]:
        problems.append(f"{stats['not_committed']} intervals not committed")
    counts = table_counts(db)
    return {
        "intervals_run": stats["intervals_run"],
        "faults_injected": stats["faults_injected"],
        "faults_survived": stats["faults_survived"],
        "rows_checked": sum(n for n in counts.values() if n > 0),
        "fills": len(fills),
        "alerts_delivered": sum(sender.sent.values()),
        "problems": problems,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--symbols", type=int, default=200)
    parser.add_argument("--intervals", type=int, default=None, help="per session (default all)")
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    # injected faults log a warning each; the JSON line is the report
    logging.getLogger("papertrade").setLevel(logging.ERROR)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="papertrade-soak-") as tmp:
        result = soak(args, Path(tmp))
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    if result["memory_growth_mb"] > MAX_GROWTH_MB:
        result["problems"].append(f"memory grew {result['memory_growth_mb']} MB")
    print(json.dumps(result))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
