"""Migrations from empty and v1 files; writers contending for the file across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from warehouse import schema
from warehouse.commit import commit_interval
from warehouse.connection import connect
from warehouse.errors import DatabaseNotFound, SchemaTooNew, WarehouseBusy
from warehouse.state import load_broker_state
from warehouse.testing import make_commit

ROOT = Path(__file__).resolve().parents[2]


def test_an_empty_file_is_migrated_to_the_latest_version(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()

    with connect(db) as conn:
        version = schema.current_version(conn)

    assert version == schema.LATEST_VERSION


def test_a_v1_file_is_upgraded_in_place_keeping_its_rows(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with duckdb.connect(str(db)) as raw:
        schema.migrate(raw, target=1)
        raw.execute(
            "INSERT INTO fills VALUES ('paper', 'F1', 'O1', now(), 'AAA', 'buy', 1, 10, 0), "
            "('paper', 'F2', 'O2', now(), 'AAA', 'sell', 1, 12, 0)"
        )
        has_view = raw.execute(
            "SELECT count(*) FROM duckdb_views() WHERE view_name = 'round_trips'"
        ).fetchone()
    assert has_view == (0,)

    with connect(db) as conn:
        version = schema.current_version(conn)
        trips = conn.execute("SELECT quantity, pnl FROM round_trips").fetchall()
    commit = commit_interval(db, make_commit(n=1))

    assert version == schema.LATEST_VERSION
    assert trips == [(1.0, 2.0)]
    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT commit_ms >= 0 FROM intervals").fetchall() == [(True,)]
    assert commit.committed


def test_a_v6_file_keeps_its_marks_when_the_table_loses_its_key(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    commit = make_commit(n=4)
    with duckdb.connect(str(db)) as raw:
        raw.execute("SET TimeZone = 'UTC'")
        schema.migrate(raw, target=6)
        commit_interval(raw, commit)
        before = load_broker_state(raw, "paper")
    assert before is not None and len(before.marks) == 4

    with connect(db) as conn:
        after = load_broker_state(conn, "paper")
        keys = conn.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE table_name = 'marks'"
            " AND constraint_type = 'PRIMARY KEY'"
        ).fetchall()
        version = schema.current_version(conn)

    assert version == schema.LATEST_VERSION >= 7
    assert after == before
    assert list(after.marks) == list(before.marks)
    assert keys == [(0,)]
    assert not commit_interval(db, commit).committed  # the marker's key still refuses


def test_a_newer_file_is_refused_by_an_older_writer(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with connect(db) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (99)")

    with pytest.raises(SchemaTooNew), connect(db):
        pass


def test_a_reader_of_a_missing_file_does_not_create_it(tmp_path: Path) -> None:
    db = tmp_path / "missing.duckdb"

    with pytest.raises(DatabaseNotFound), connect(db, read_only=True):
        pass

    assert not db.exists()


_HOLDER = """
import sys, time, duckdb
from warehouse.connection import connect
db, mode, ready, hold = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
if mode == "raw":  # a user's duckdb session that ignores the intent lock
    conn = duckdb.connect(db)
    open(ready, "w").close()
    time.sleep(hold)
    conn.close()
else:
    with connect(db):
        open(ready, "w").close()
        time.sleep(hold)
"""

_POLLER = """
import sys, time
from warehouse.connection import connect
db, ready, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
open(ready, "w").close()
end = time.monotonic() + seconds
while time.monotonic() < end:
    with connect(db, read_only=True) as conn:
        conn.execute("SELECT count(*) FROM fills").fetchall()
"""


def _spawn(tmp_path: Path, script: str, db: Path, *args: str) -> subprocess.Popen:
    """Run `script db *args[:-1] ready args[-1]` and wait until it signals it is ready."""
    ready = tmp_path / f"ready-{time.monotonic_ns()}"
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(db), *args[:-1], str(ready), args[-1]],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    deadline = time.monotonic() + 30
    while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert ready.exists()
    return child


@pytest.mark.parametrize("mode", ["intent", "raw"])
def test_a_writer_times_out_with_warehouse_busy_and_writes_nothing(
    tmp_path: Path, mode: str
) -> None:
    db = tmp_path / "w.duckdb"
    with connect(db):
        pass
    holder = _spawn(tmp_path, _HOLDER, db, mode, "30")
    try:
        with pytest.raises(WarehouseBusy):
            commit_interval(db, make_commit(n=2), timeout=0.3)
    finally:
        holder.kill()
        holder.wait()

    with connect(db, read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM intervals").fetchone() == (0,)


@pytest.mark.parametrize("mode", ["intent", "raw"])
def test_a_writer_retries_until_the_holder_lets_go(tmp_path: Path, mode: str) -> None:
    db = tmp_path / "w.duckdb"
    with connect(db):
        pass
    holder = _spawn(tmp_path, _HOLDER, db, mode, "0.5")

    result = commit_interval(db, make_commit(n=2), timeout=20)
    holder.wait()

    assert result.committed
    assert holder.returncode == 0


def test_polling_readers_do_not_starve_a_writer(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    with connect(db):
        pass
    pollers = [_spawn(tmp_path, _POLLER, db, "2.5") for _ in range(2)]
    try:
        # generous for a shared machine, far below the readers' polling time: without the
        # intent lock a writer here was seen waiting for seconds
        result = commit_interval(db, make_commit(n=2), timeout=2)
    finally:
        for p in pollers:
            p.wait()

    assert result.committed
    assert all(p.returncode == 0 for p in pollers)


def test_a_connection_to_an_existing_file_takes_a_frame_at_once(tmp_path: Path) -> None:
    # DuckDB refuses `register` while a result is still open on the connection
    import pandas as pd

    db = tmp_path / "w.duckdb"
    with connect(db):
        pass

    with connect(db) as conn:
        conn.register("incoming", pd.DataFrame({"a": [1]}))
        rows = conn.execute("SELECT a FROM incoming").fetchall()

    assert rows == [(1,)]


def test_a_writer_waits_for_a_connection_this_process_holds(tmp_path: Path) -> None:
    # Arrange: a notebook-style read-only connection in the writer's own process
    db = tmp_path / "w.duckdb"
    commit_interval(db, make_commit(n=1))
    held = duckdb.connect(str(db), read_only=True)

    # Act / Assert: the writer treats it as a held lock, then gets in once it is closed
    with pytest.raises(WarehouseBusy), connect(db, timeout=0.3):
        pass
    held.close()
    with connect(db, timeout=5) as conn:
        (n,) = conn.execute("SELECT count(*) FROM intervals").fetchone()

    assert n == 1


def test_writers_leave_nothing_attached_and_the_file_checkpointed(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"

    commit_interval(db, make_commit(n=3))

    assert not db.with_name(db.name + ".wal").exists()
    with duckdb.connect(str(db), read_only=True) as other:  # the file is free again
        assert other.execute("SELECT count(*) FROM fills").fetchone() == (3,)
