"""Rolling back after a failure without hiding it."""

from __future__ import annotations

import contextlib

import duckdb


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction. When DuckDB has aborted it already (a disk that
    filled up mid-write), ROLLBACK raises "no transaction is active", which would replace
    the error that says what went wrong."""
    with contextlib.suppress(duckdb.Error):
        conn.execute("ROLLBACK")
