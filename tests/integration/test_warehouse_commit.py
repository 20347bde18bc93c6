"""Interval commits: exactly once, all or nothing, bulk, crash-safe."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from paper_broker.enums import OrderStatus, TradingState
from warehouse.commit import DuplicateRows, commit_interval
from warehouse.connection import connect
from warehouse.testing import T0, make_commit, make_order
from warehouse.trading_state import get_trading_state

TABLES = ("quotes", "orders", "fills", "positions", "equity", "risk_events", "alerts", "intervals")
ROOT = Path(__file__).resolve().parents[2]


def counts(path: Path) -> dict[str, int]:
    with connect(path, read_only=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_commit_writes_every_table_once(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit = make_commit(n=4)

    result = commit_interval(db, commit)

    assert result.committed
    assert counts(db) == {
        "quotes": 4,
        "orders": 5,  # 4 filled + 1 resting
        "fills": 4,
        "positions": 4,
        "equity": 1,
        "risk_events": 1,
        "alerts": 1,
        "intervals": 1,
    }
    assert result.summary["n_fills"] == 4
    assert result.summary["equity"] == pytest.approx(
        commit.state.cash + sum(p.quantity * p.market_price for p in commit.state.positions)
    )


@pytest.mark.parametrize("as_frame", [False, True])
def test_risk_events_and_alerts_get_their_defaults(tmp_path: Path, as_frame: bool) -> None:
    """Loose rows, as dicts or a DataFrame: ids, times and outbox defaults are filled in,
    NaN and NaT become NULL, enums their values, keys without a column are dropped."""
    db = tmp_path / "w.duckdb"
    risk = [
        {"rule": "max_position", "symbol": "AAA", "value": 2.5, "limit_value": float("nan"),
         "state_after": TradingState.HALTED, "not_a_column": 1},
        {"rule": "max_position", "symbol": "BBB", "ts": T0 - timedelta(seconds=3)},
    ]  # fmt: skip
    alerts = [
        {"kind": "risk", "title": "a", "payload": {"n": 1}},
        {"kind": "risk", "title": "b", "level": "warning", "sent_at": pd.NaT},
        {"kind": "fills", "title": "c", "alert_id": "mine"},
    ]
    commit = dataclasses.replace(
        make_commit(n=2),
        risk_events=pd.DataFrame(risk) if as_frame else risk,
        alerts=pd.DataFrame(alerts) if as_frame else alerts,
    )

    commit_interval(db, commit)

    key = f"paper:{T0.isoformat()}"
    with connect(db, read_only=True) as conn:
        events = conn.execute(
            "SELECT event_id, ts, symbol, value, limit_value, state_after FROM risk_events "
            "ORDER BY event_id"
        ).fetchall()
        queued = conn.execute(
            "SELECT alert_id, created_at, level, status, attempts, payload_json, sent_at "
            "FROM alerts ORDER BY title"
        ).fetchall()
    assert events == [
        (f"{key}:risk:0", T0, "AAA", 2.5, None, "halted"),
        (f"{key}:risk:1", T0 - timedelta(seconds=3), "BBB", None, None, None),
    ]
    assert queued == [
        (f"{key}:risk:0", T0, "info", "pending", 0, '{"n": 1}', None),
        (f"{key}:risk:1", T0, "warning", "pending", 0, None, None),
        ("mine", T0, "info", "pending", 0, None, None),
    ]


@pytest.mark.parametrize(
    "extra",
    [{}, {"day_pnl": -12.5, "gross_exposure": 900.0, "trading_state": "halted", "note": "x"}],
)
def test_recommitting_an_interval_is_a_no_op_returning_the_first_summary(
    tmp_path: Path, extra: dict
) -> None:
    db = tmp_path / "w.duckdb"
    commit = dataclasses.replace(make_commit(n=3), extra=extra)
    first = commit_interval(db, commit)
    before = counts(db)

    again = commit_interval(db, commit)

    assert not again.committed
    assert again.summary == first.summary
    assert list(again.summary) == list(first.summary)
    assert counts(db) == before


def test_primary_keys_refuse_rows_shared_with_an_earlier_interval(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = make_commit(n=3)
    commit_interval(db, first)
    before = counts(db)
    # the same fills resubmitted under the next interval: a broker state that is not the
    # one the warehouse holds
    later = dataclasses.replace(first, as_of=T0 + timedelta(minutes=1))

    with pytest.raises(DuplicateRows, match=r"repeats committed rows .*F00000000.*nothing"):
        commit_interval(db, later)

    assert counts(db) == before


def test_changed_orders_are_upserted_to_their_latest_state(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = make_commit(n=2)
    commit_interval(db, first)
    resting = first.state.open_orders[0]
    filled = dataclasses.replace(
        resting, status=OrderStatus.FILLED, filled_quantity=resting.quantity, avg_fill_price=90.0
    )
    second = dataclasses.replace(
        first,
        as_of=T0 + timedelta(minutes=1),
        orders=[filled],
        fills=[],
        state=dataclasses.replace(first.state, open_orders=[]),
    )

    commit_interval(db, second)

    with connect(db, read_only=True) as conn:
        rows = conn.execute(
            "SELECT status, filled_quantity, avg_fill_price FROM orders WHERE order_id = ?",
            [resting.order_id],
        ).fetchall()
        n_open = conn.execute("SELECT count(*) FROM open_orders").fetchone()[0]
    assert rows == [("filled", resting.quantity, 90.0)]
    assert n_open == 0


def test_the_summary_counts_the_intervals_own_orders_not_the_resting_ones(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.duckdb"
    first = make_commit(n=2)
    quiet = dataclasses.replace(first, as_of=T0 + timedelta(minutes=1), orders=[], fills=[])

    summaries = [commit_interval(db, c).summary for c in (first, quiet)]

    assert [s["n_orders"] for s in summaries] == [2, 0]  # its two orders, then none


def test_a_failing_write_rolls_back_the_whole_interval(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=2))
    before = counts(db)
    # a different order reusing a client order id breaks UNIQUE(account_id, client_order_id)
    clash = dataclasses.replace(make_order(999), client_order_id="paper-c00000000")
    bad = dataclasses.replace(
        make_commit(T0 + timedelta(minutes=1), n=2, first_id=100), orders=[clash]
    )

    with pytest.raises(DuplicateRows, match="client_order_id: paper-c00000000") as raised:
        commit_interval(db, bad)

    assert isinstance(raised.value.__cause__, duckdb.ConstraintException)

    assert counts(db) == before


def test_guard_state_change_is_committed_with_the_interval(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit = dataclasses.replace(
        make_commit(n=1), trading_state=(TradingState.REDUCING, "daily loss limit")
    )

    commit_interval(db, commit)

    with connect(db, read_only=True) as conn:
        row = get_trading_state(conn, "paper")
    assert (row.state, row.reason, row.source) == (
        TradingState.REDUCING,
        "daily loss limit",
        "guard",
    )


def test_naive_as_of_is_refused(tmp_path: Path) -> None:
    commit = dataclasses.replace(make_commit(n=1), as_of=T0.replace(tzinfo=None))

    with pytest.raises(ValueError, match="naive"):
        commit_interval(tmp_path / "w.duckdb", commit)


_CHILD = """
import os, sys, time
from datetime import timedelta
from warehouse.commit import commit_interval
from warehouse.testing import T0, make_commit

db, stop_at, marker = sys.argv[1], sys.argv[2], sys.argv[3]

def on_stage(name):
    if name == stop_at:
        open(marker, "w").close()
        time.sleep(60)

commit_interval(db, make_commit(T0 + timedelta(minutes=1), n=50, first_id=1000), on_stage=on_stage)
"""


@pytest.mark.parametrize(
    ("stop_at", "survives"),
    [("quotes", False), ("fills", False), ("interval", False), ("committed", True)],
)
def test_sigkill_mid_commit_leaves_all_or_nothing(
    tmp_path: Path, stop_at: str, survives: bool
) -> None:
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=3))
    before = counts(db)
    marker = tmp_path / "inside"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), stop_at, str(marker)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert marker.exists(), "child never reached the stage"

    child.send_signal(signal.SIGKILL)
    child.wait()

    after = counts(db)
    if survives:
        assert after["intervals"] == before["intervals"] + 1
        assert after["fills"] == before["fills"] + 50
        assert after["quotes"] == before["quotes"] + 50
    else:
        assert after == before
    # the file stays writable and the interval can be (re)committed
    result = commit_interval(db, make_commit(T0 + timedelta(minutes=1), n=50, first_id=1000))
    assert result.committed is not survives
    assert counts(db)["fills"] == before["fills"] + 50
