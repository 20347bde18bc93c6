"""Warehouse benchmark: one interval commit vs a bare INSERT ... SELECT of the same rows
(quotes, orders, fills, positions, the broker's marks and the equity row as pre-built Arrow
tables, plain INSERTs, one transaction), and the analytics views over a year of minute
equity and 10 million quote rows.

Prints one JSON object. Goals: commit under 30 ms and within 2x of the bare insert; each
analytics query under 1 s.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from paper_broker.records import PositionRecord
from warehouse.commit import EquityRow, IntervalCommit, commit_interval
from warehouse.connection import connect
from warehouse.frames import fills_table, marks_table, orders_table, positions_frame
from warehouse.testing import T0, make_commit, symbols

N = 500
REPEATS = 15


def _interval(k: int) -> IntervalCommit:
    as_of = T0 + timedelta(minutes=k)
    commit = make_commit(as_of, n=N, first_id=k * (N + 1), alerts=False)
    positions = [PositionRecord(s, 10.0, 100.0, 0.0, 101.0) for s in symbols(N)]
    state = dataclasses.replace(commit.state, positions=positions, open_orders=[])
    return dataclasses.replace(commit, state=state, risk_events=None)


def _bare_tables(c: IntervalCommit) -> dict[str, pa.Table]:
    """The rows `commit_interval` writes for `c`, built in advance as Arrow tables with
    every column of their tables, so the baseline times DuckDB's inserts alone."""
    assert c.quotes is not None
    positions = positions_frame(c.account_id, c.as_of, c.state.positions)
    marks = marks_table(c.state.marks)
    n = marks.num_rows
    equity = {
        "account_id": c.account_id,
        **dataclasses.asdict(EquityRow.from_state(c.state, c.as_of)),
    }
    return {
        "quotes": pa.Table.from_pandas(
            c.quotes.assign(account_id=c.account_id, as_of=c.as_of), preserve_index=False
        ),
        "orders": orders_table(c.orders),
        "fills": fills_table(c.fills),
        "positions": pa.Table.from_pandas(positions, preserve_index=False),
        "marks": marks.append_column("account_id", pa.array([c.account_id] * n)).append_column(
            "as_of", pa.array([c.as_of] * n, pa.timestamp("us", tz="UTC"))
        ),
        "equity": pa.Table.from_pylist([equity]),
    }


def _bare_insert(conn: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
    conn.execute("BEGIN TRANSACTION")
    for name, rows in tables.items():  # noqa: B007 (read by the replacement scan)
        conn.execute(f"INSERT INTO {name} BY NAME SELECT * FROM rows")
    conn.execute("COMMIT")


def bench_commit(tmp: Path) -> dict[str, float]:
    """Our commit and the bare insert alternate on two files, so both see the same machine."""
    commits = [_interval(k) for k in range(2 * REPEATS + 2)]
    ours, bare = [], []
    with connect(tmp / "commit.duckdb") as conn, connect(tmp / "bare.duckdb") as bare_conn:
        commit_interval(conn, commits[0])  # warm up both
        _bare_insert(bare_conn, _bare_tables(commits[0]))
        for c in commits[1 : REPEATS + 1]:
            tables = _bare_tables(c)
            t = time.perf_counter()
            _bare_insert(bare_conn, tables)
            bare.append(time.perf_counter() - t)
            t = time.perf_counter()
            commit_interval(conn, c)
            ours.append(time.perf_counter() - t)
    # the whole path an interval takes: attach the file, commit, checkpoint and detach
    path_times = []
    for c in commits[REPEATS + 1 :]:
        t = time.perf_counter()
        commit_interval(tmp / "commit.duckdb", c)
        path_times.append(time.perf_counter() - t)
    ours_ms = statistics.median(ours) * 1000
    bare_ms = statistics.median(bare) * 1000
    return {
        "commit_median_ms": round(ours_ms, 2),
        "bare_insert_median_ms": round(bare_ms, 2),
        "commit_vs_bare_ratio": round(ours_ms / bare_ms, 2),
        "commit_with_connect_median_ms": round(statistics.median(path_times) * 1000, 2),
    }


def bench_analytics(tmp: Path) -> dict[str, float]:
    db = tmp / "analytics.duckdb"
    with connect(db) as conn:
        t = time.perf_counter()
        conn.execute(
            "INSERT INTO accounts VALUES ('paper', TIMESTAMPTZ '2024-01-01', 1e5, 'paper', NULL)"
        )
        # a year of one-minute equity snapshots (every minute, 525,600 rows)
        conn.execute(
            "INSERT INTO equity SELECT 'paper', TIMESTAMPTZ '2024-01-01' + to_minutes(i), "
            "1e5, 0, 1e5 + 1000 * sin(i / 5000.0) + i / 1000.0, 0, 0, 0, 0 FROM range(525600) t(i)"
        )
        # 10 million quotes: 500 symbols x 20,000 minutes
        conn.execute(
            "INSERT INTO quotes (account_id, as_of, symbol, bid, ask, last, volume, valid) "
            "SELECT 'paper', TIMESTAMPTZ '2024-01-01' + to_minutes(i // 500), "
            "'S' || lpad((i % 500)::VARCHAR, 4, '0'), p - 0.01, p + 0.01, p, 100, true "
            "FROM (SELECT i, 100 + (i % 500) + sin(i / 500 / 50.0) AS p FROM range(10000000) t(i))"
        )
        generate_s = time.perf_counter() - t
    queries = {
        "equity_curve_s": "SELECT count(*), min(drawdown) FROM equity_curve",
        "daily_pnl_s": "SELECT count(*), sum(pnl) FROM daily_pnl",
        "quotes_daily_ohlc_s": (
            "SELECT count(*) FROM (SELECT symbol, as_of::DATE AS day, "
            "arg_min(last, as_of) AS open, max(last) AS high, min(last) AS low, "
            "arg_max(last, as_of) AS close FROM quotes GROUP BY ALL)"
        ),
    }
    out: dict[str, float] = {"generate_s": round(generate_s, 2)}
    with connect(db, read_only=True) as conn:
        for name, sql in queries.items():
            t = time.perf_counter()
            conn.execute(sql).fetchall()
            out[name] = round(time.perf_counter() - t, 3)
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "benchmark": "warehouse",
            "rows_per_table": N,
            "duckdb": duckdb.__version__,
            **bench_commit(Path(tmp)),
            **bench_analytics(Path(tmp)),
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
