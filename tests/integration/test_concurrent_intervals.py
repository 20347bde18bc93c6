"""Two interval runs of one account at once never interleave: the account run lock
serialises them, and the commit refuses a state that moved underneath it."""

from __future__ import annotations

import multiprocessing as mp
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tests.support.accounts import SESSION_OPEN, write_config


def _run(cfg: str, minutes: list[int], barrier: object, out: object) -> None:
    from paper_broker.market_data.factory import make_provider
    from papertrade import interval
    from papertrade.settings import load_settings

    settings = load_settings(Path(cfg))
    provider = make_provider(settings.market_data, settings.universe.symbols)
    barrier.wait()  # type: ignore[attr-defined]
    for m in minutes:
        summary = interval.run_interval(settings, SESSION_OPEN + timedelta(minutes=m), provider)
        out.put((m, summary["status"]))  # type: ignore[attr-defined]


def test_two_processes_trading_the_same_account(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    ctx = mp.get_context("spawn")
    barrier, out = ctx.Barrier(2), ctx.Queue()
    # both walk the same intervals: every interval is committed once, by whichever gets
    # the lock first, and the other sees it already committed
    procs = [ctx.Process(target=_run, args=(str(cfg), list(range(6)), barrier, out)) for _ in "ab"]

    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    results = [out.get(timeout=5) for _ in range(12)]

    assert all(p.exitcode == 0 for p in procs)
    by_minute: dict[int, list[str]] = {}
    for minute, status in results:
        by_minute.setdefault(minute, []).append(status)
    assert all(sorted(v) == ["already_committed", "committed"] for v in by_minute.values())
    with duckdb.connect(str(tmp_path / "pt.duckdb"), read_only=True) as conn:
        intervals = conn.execute("SELECT count(*) FROM intervals").fetchone()[0]
        dup_orders = conn.execute(
            "SELECT count(*) - count(DISTINCT client_order_id) FROM orders"
        ).fetchone()[0]
        cash = conn.execute("SELECT cash FROM equity ORDER BY ts DESC LIMIT 1").fetchone()[0]
        flows = conn.execute(
            "SELECT coalesce(sum(CASE side WHEN 'buy' THEN -1 ELSE 1 END * quantity * price"
            " - commission), 0) FROM fills"
        ).fetchone()[0]
    assert intervals == 6
    assert dup_orders == 0
    assert cash == pytest.approx(100_000 + flows, abs=1e-6)
