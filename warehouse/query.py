"""Read-only SQL for users (`papertrade sql`).

Two guards, either of which alone would stop a write:
1. the statement check: exactly one statement, and it must be a SELECT (including WITH,
   DESCRIBE, SHOW, SUMMARIZE, which DuckDB parses as SELECT) or an EXPLAIN of one; anything
   else (INSERT, UPDATE, DELETE, CREATE, DROP, ALTER, COPY, ATTACH, PRAGMA, SET, INSTALL,
   LOAD, CALL, EXPORT, ...) is refused before the database is opened;
2. the connection is read-only, with external access disabled and the configuration locked:
   SQL cannot read or write other files (`read_csv('/etc/passwd')`, `COPY ... TO`), attach
   databases, load extensions, or switch that setting back on.
So `papertrade sql` answers questions about the warehouse only; to join other files, open
the database yourself with `duckdb -readonly`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from warehouse.connection import DEFAULT_TIMEOUT, connect, naming_an_older_schema
from warehouse.errors import ReadOnlySqlError

_ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def check_readonly(sql: str) -> str:
    """Return the single statement of `sql` if it only reads; raise `ReadOnlySqlError`
    naming the statement type otherwise."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ReadOnlySqlError(f"cannot parse SQL: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise ReadOnlySqlError(f"expected one SQL statement, got {len(statements)}")
    statement = statements[0]
    if statement.type not in _ALLOWED:
        kind = statement.type.name
        raise ReadOnlySqlError(f"read-only: {kind} statements are not allowed, only SELECT")
    if statement.type == duckdb.StatementType.EXPLAIN and "analyze" in sql.lower().split()[:3]:
        # EXPLAIN ANALYZE runs its statement; the read-only connection would still stop a
        # write, but refusing here keeps the rule simple: nothing that executes a non-SELECT
        inner = sql.strip().split(None, 2)[2] if len(sql.split()) > 2 else ""
        check_readonly(inner)
    return statement.query


@dataclass(frozen=True, slots=True)
class Rows:
    """A result as DuckDB's own Python values, not a DataFrame: HUGEINT and DECIMAL stay
    exact, a DATE is a date, and a command that prints a few rows does not import pandas
    (a second of its start-up)."""

    columns: list[str]
    values: list[tuple[Any, ...]]

    @classmethod
    def fetch(cls, result: duckdb.DuckDBPyConnection) -> Rows:
        columns = [d[0] for d in result.description or []]
        return cls(columns, result.fetchall())


def run_readonly_sql(path: str | Path, sql: str, timeout: float = DEFAULT_TIMEOUT) -> Rows:
    """Run one read-only statement against the warehouse and return its rows.

    Raises `ReadOnlySqlError` for a statement that could write or reach outside the file,
    `DatabaseNotFound` for a missing file, `SchemaTooOld` for a table or column missing from
    a file an older papertrade wrote, `duckdb.Error` for SQL that fails to run (the caller
    shows its first line)."""
    return read_rows(path, check_readonly(sql), timeout=timeout, external_access=False)


def read_rows(
    path: str | Path,
    sql: str,
    params: Sequence[Any] = (),
    *,
    timeout: float = DEFAULT_TIMEOUT,
    external_access: bool = True,
) -> Rows:
    """The rows of one query on a reader connection, closed at once. Raises
    `DatabaseNotFound`, `SchemaTooOld` and `duckdb.Error` as `run_readonly_sql` does."""
    with (
        connect(path, read_only=True, timeout=timeout, external_access=external_access) as conn,
        naming_an_older_schema(conn, path),
    ):
        # a statement of the user's runs as typed, not prepared (EXPLAIN, a literal `?`)
        return Rows.fetch(conn.execute(sql, list(params)) if params else conn.execute(sql))
