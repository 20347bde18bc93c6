"""One transaction on a warehouse connection, rolled back on failure without hiding it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb


@contextlib.contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN, then COMMIT when the block ends, or ROLLBACK when it (or the COMMIT) raises."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: duckdb.DuckDBPyConnection) -> None:
    """Roll back the open transaction. When DuckDB has aborted it already (a disk that
    filled up mid-write), ROLLBACK raises "no transaction is active", which would replace
    the error that says what went wrong."""
    with contextlib.suppress(duckdb.Error):
        conn.execute("ROLLBACK")
