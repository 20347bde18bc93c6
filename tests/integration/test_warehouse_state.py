"""Broker state round trip, the kill switch, the alert outbox and result upserts."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from paper_broker.broker import PaperBroker
from paper_broker.enums import OrderType, Side, TimeInForce, TradingState
from paper_broker.errors import StateRestoreError
from paper_broker.records import BrokerState, OrderIntent, PositionRecord
from warehouse import schema
from warehouse.commit import IntervalCommit, commit_interval
from warehouse.connection import connect
from warehouse.results import (
    AccountKindConflict,
    upsert_daily_performance,
    upsert_dq_results,
    write_backtest,
)
from warehouse.state import load_broker_state
from warehouse.testing import T0, make_commit, make_fill, quotes_frame
from warehouse.trading_state import get_trading_state, set_trading_state


def test_no_interval_means_no_state(tmp_path: Path) -> None:
    with connect(tmp_path / "w.duckdb") as conn:
        assert load_broker_state(conn, "paper") is None


def test_broker_state_round_trips_exactly(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit = make_commit(n=4)
    state = dataclasses.replace(
        commit.state,
        positions=[*commit.state.positions, PositionRecord("FLAT", 0.0, 0.0, -3.25, 50.0)],
        cash=1234.5678901234567,
        commissions=17.125,
    )
    state.client_order_ids.update({o.client_order_id: o.order_id for o in commit.orders})
    commit_interval(db, dataclasses.replace(commit, state=state))

    with connect(db, read_only=True) as conn:
        restored = load_broker_state(conn, "paper")

    assert restored == state


def test_latest_interval_wins(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    first = make_commit(n=2)
    later = make_commit(T0 + timedelta(minutes=1), n=3, first_id=50)
    commit_interval(db, first)
    commit_interval(db, later)

    with connect(db, read_only=True) as conn:
        restored = load_broker_state(conn, "paper")

    assert restored is not None
    assert restored.as_of == later.as_of
    assert [p.symbol for p in restored.positions] == [p.symbol for p in later.state.positions]


def _quotes(ts, seed: int) -> pd.DataFrame:
    return quotes_frame(ts, ["AAA", "BBB"], seed=seed)


def _step(broker: PaperBroker, minute: int) -> tuple:
    now = T0 + timedelta(minutes=minute)
    intents = [
        OrderIntent("AAA", Side.BUY, 5 + minute, client_order_id=f"c-{minute}-a"),
        OrderIntent(
            "BBB",
            Side.BUY,
            3,
            OrderType.LIMIT,
            TimeInForce.GTC,
            limit_price=120.0 + minute,
            client_order_id=f"c-{minute}-b",
        ),
    ]
    broker.submit(intents, now)
    fills = broker.process_quotes(_quotes(now, seed=minute), now)
    return now, fills


def test_restored_broker_fills_like_one_that_never_stopped(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    steady = PaperBroker("paper", 100_000.0)
    stopping = PaperBroker("paper", 100_000.0)
    for minute in range(3):
        _step(steady, minute)
        now, _ = _step(stopping, minute)
        changes = stopping.drain_changes()
        commit_interval(
            db,
            IntervalCommit(
                account_id="paper",
                as_of=now,
                session_date=date(2025, 3, 3),
                state=stopping.snapshot(),
                quotes=_quotes(now, seed=minute),
                orders=changes.orders,
                fills=changes.fills,
                committed_at=now,
            ),
        )

    with connect(db, read_only=True) as conn:
        state = load_broker_state(conn, "paper")
    assert state is not None
    restored = PaperBroker.from_state(state)

    expected = [_step(steady, m)[1] for m in range(3, 6)]
    actual = [_step(restored, m)[1] for m in range(3, 6)]
    assert actual == expected
    assert sum(len(f) for f in actual) > 0
    # the same broker, but for the client ids of intervals no later one can ask for again
    mine, theirs = restored.snapshot(), steady.snapshot()
    assert dataclasses.replace(mine, client_order_ids={}) == dataclasses.replace(
        theirs, client_order_ids={}
    )
    assert mine.client_order_ids.items() <= theirs.client_order_ids.items()
    assert {o.client_order_id for o in mine.open_orders} <= mine.client_order_ids.keys()


def test_kill_switch_changes_write_state_risk_event_and_alert(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with connect(db) as conn:
        assert get_trading_state(conn, "paper").state is TradingState.ACTIVE

        before = set_trading_state(conn, "paper", TradingState.HALTED, "broker down", "manual", T0)
        current = get_trading_state(conn, "paper")
        events = conn.execute("SELECT state_before, state_after FROM risk_events").fetchall()
        alerts = conn.execute(
            "SELECT kind, level FROM alerts WHERE account_id = 'paper' AND status = 'pending'"
        ).fetchall()

    assert before.state is TradingState.ACTIVE
    assert (current.state, current.reason, current.source) == (
        TradingState.HALTED,
        "broker down",
        "manual",
    )
    assert events == [("active", "halted")]
    assert alerts == [("kill_switch", "critical")]


def test_result_upserts_replace_rows_by_key(tmp_path: Path) -> None:
    day = date(2025, 3, 3)
    dq = {"account_id": "paper", "session_date": day, "run_at": T0, "suite": "s"}
    with connect(tmp_path / "w.duckdb") as conn:
        upsert_dq_results(conn, [{**dq, "expectation": "e", "success": False}])
        upsert_dq_results(conn, [{**dq, "expectation": "e", "success": True}])
        upsert_daily_performance(conn, [{"account_id": "paper", "session_date": day, "sharpe": 1}])
        upsert_daily_performance(conn, [{"account_id": "paper", "session_date": day, "sharpe": 2}])
        dq_rows = conn.execute("SELECT success FROM dq_results").fetchall()
        perf = conn.execute("SELECT sharpe FROM daily_performance").fetchall()

    assert dq_rows == [(True,)]
    assert perf == [(2.0,)]


def test_backtest_rerun_replaces_the_previous_run_and_spares_paper(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=1))
    with connect(db) as conn:
        write_backtest(
            conn, "bt", initial_cash=1e4, created_at=T0, fills=[make_fill(1), make_fill(2)]
        )
        counts = write_backtest(conn, "bt", initial_cash=1e4, created_at=T0, fills=[make_fill(3)])
        fills = conn.execute("SELECT account_id, fill_id FROM fills ORDER BY 1, 2").fetchall()
        with pytest.raises(AccountKindConflict):
            write_backtest(conn, "paper", initial_cash=1e4, created_at=T0)
        n_paper = conn.execute("SELECT count(*) FROM fills WHERE account_id = 'paper'").fetchone()

    assert counts["fills"] == 1
    assert fills == [("bt", "F00000003"), ("paper", "F00000000")]
    assert n_paper == (1,)


def test_a_second_state_change_at_the_same_instant_writes_nothing(tmp_path: Path) -> None:
    with connect(tmp_path / "w.duckdb") as conn:
        set_trading_state(conn, "paper", TradingState.HALTED, "a", "manual", T0)
        with pytest.raises(duckdb.ConstraintException):
            set_trading_state(conn, "paper", TradingState.ACTIVE, "b", "manual", T0)
        n = conn.execute("SELECT count(*) FROM alerts").fetchone()

    assert n == (1,)


def test_the_client_id_index_covers_recent_and_open_orders_only(tmp_path: Path) -> None:
    # ids embed their interval's time, so old ones can never come back; loading every id the
    # account ever used would make each interval slower than the last
    db = tmp_path / "w.duckdb"
    old = make_commit(n=2)
    recent = make_commit(T0 + timedelta(days=3), n=2, first_id=10)
    commit_interval(db, old)
    commit_interval(db, dataclasses.replace(recent, state=dataclasses.replace(
        recent.state, open_orders=[*old.state.open_orders, *recent.state.open_orders]
    )))  # fmt: skip

    with connect(db) as conn:
        state = load_broker_state(conn, "paper")

    assert state is not None
    ids = set(state.client_order_ids)
    assert {o.client_order_id for o in recent.orders} <= ids
    assert {o.client_order_id for o in old.state.open_orders} <= ids
    closed_old = {o.client_order_id for o in old.orders} - {
        o.client_order_id for o in old.state.open_orders
    }
    assert closed_old and not (closed_old & ids)


def _as_before_v6(db: Path, state: BrokerState, summary: dict, **saved: object) -> None:
    """Turn the latest marker into one committed before schema v6, as a migrated file holds
    it: the whole state in `state_json`, the whole summary in `summary_json`, and NULL in
    the columns v6 added."""
    whole = {
        "account_id": state.account_id,
        "initial_cash": state.initial_cash,
        "cash": state.cash,
        "realized_pnl": state.realized_pnl,
        "order_seq": state.order_seq,
        "fill_seq": state.fill_seq,
        "as_of": state.as_of.isoformat() if state.as_of else None,
        "commissions": state.commissions,
        "open_order_ids": [o.order_id for o in state.open_orders],
        **saved,
    }
    added = ", ".join(f"{c.split()[0]} = NULL" for c in schema.V6_MARKER_COLUMNS)
    with connect(db) as conn:
        conn.execute(
            f"UPDATE intervals SET state_json = ?, summary_json = ?, {added}",
            [json.dumps(whole), json.dumps(summary)],
        )


def test_a_marker_from_before_v6_restores_its_positions_in_the_order_it_named(
    tmp_path: Path,
) -> None:
    db = tmp_path / "w.duckdb"
    commit = make_commit(n=3)
    result = commit_interval(db, commit)
    named = [p.symbol for p in reversed(commit.state.positions)]
    _as_before_v6(db, commit.state, result.summary, position_symbols=named)

    with connect(db, read_only=True) as conn:
        restored = load_broker_state(conn, "paper")

    assert restored is not None
    assert [p.symbol for p in restored.positions] == named
    as_committed = {"positions": commit.state.positions, "client_order_ids": {}}
    assert dataclasses.replace(restored, **as_committed) == dataclasses.replace(
        commit.state, client_order_ids={}
    )


def test_a_marker_from_before_v6_returns_its_stored_summary(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit = make_commit(n=3)
    first = commit_interval(db, commit)
    _as_before_v6(
        db,
        commit.state,
        {**first.summary, "note": "as stored"},
        position_symbols=[p.symbol for p in commit.state.positions],
    )

    again = commit_interval(db, commit)

    assert not again.committed
    assert again.summary == {**first.summary, "note": "as stored"}


def test_a_positions_snapshot_short_of_the_marker_refuses_to_restore(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=3))
    with connect(db) as conn:
        conn.execute("UPDATE intervals SET n_positions = n_positions + 1")

    with connect(db, read_only=True) as conn, pytest.raises(StateRestoreError, match="names"):
        load_broker_state(conn, "paper")


def test_the_marker_keeps_the_state_and_summary_in_columns(tmp_path: Path) -> None:
    # long strings per interval slow every later checkpoint down (see warehouse.marker)
    db = tmp_path / "w.duckdb"
    commit = make_commit(n=3)
    extra = {"day_pnl": -1.5, "trading_state": "active"}
    commit_interval(db, dataclasses.replace(commit, extra=extra))

    with connect(db, read_only=True) as conn:
        row = conn.execute(
            "SELECT state_json, summary_json, cash, n_positions, day_pnl, trading_state,"
            " open_order_ids FROM intervals"
        ).fetchone()

    assert row == (
        None,
        None,
        commit.state.cash,
        len(commit.state.positions),
        -1.5,
        "active",
        [o.order_id for o in commit.state.open_orders],
    )


@pytest.mark.parametrize("state_as_of", [None, T0 - timedelta(minutes=3)])
def test_a_state_dated_apart_from_its_interval_keeps_its_own_time(
    tmp_path: Path, state_as_of
) -> None:
    db = tmp_path / "w.duckdb"
    commit = make_commit(n=2)
    state = dataclasses.replace(commit.state, as_of=state_as_of)
    commit_interval(db, dataclasses.replace(commit, state=state))

    with connect(db, read_only=True) as conn:
        restored = load_broker_state(conn, "paper")

    assert restored is not None
    assert restored.as_of == state_as_of
