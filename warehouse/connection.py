"""Lock-aware connections to the warehouse file.

How to query safely while the scheduler runs
--------------------------------------------
DuckDB lets one process write a file, or many processes read it, never both at once. The
trading flow writes once per interval, in one short transaction, and Prefect runs each flow
run in its own process; you read the same file for analytics. So:

- Writers (the flows, `papertrade kill-switch`) use `connect(path)`: the file is attached
  read-write for the block only, then checkpointed and detached. They first take the
  writer-intent lock (`<db>.writer.lock`, see `warehouse.locking`), then retry DuckDB's own
  file lock with exponential backoff for up to `timeout` seconds (`[warehouse]
  lock_timeout_seconds`, default 30), then raise `WarehouseBusy` having written nothing.
- Readers use `connect(path, read_only=True)` (or `papertrade sql`, `warehouse.query`): they
  wait while a writer has declared its intent, open read-only, and should close promptly. A
  reader that keeps a connection open blocks every writer for that long.
- The duckdb CLI or a notebook that opens the file directly does not see the intent lock. Open
  it read-only (`duckdb -readonly papertrade.duckdb`,
  `duckdb.connect(path, read_only=True)`) and close it between questions; or copy the file
  and query the copy (`cp papertrade.duckdb /tmp/snapshot.duckdb` between intervals is a
  consistent snapshot as long as no writer is inside, e.g. run it through
  `connect(path, read_only=True)` first). Never keep a read-write session open on the live
  file: the next interval would fail with `WarehouseBusy` after the timeout.

Every connection uses `TimeZone='UTC'`, so `TIMESTAMPTZ` values come back as UTC datetimes.
Writers bring the schema up to date (`warehouse.schema.migrate`) before they are handed out.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb

from warehouse import schema
from warehouse.errors import (
    DatabaseNotFound,
    NotAWarehouse,
    NotWritable,
    SchemaTooNew,
    SchemaTooOld,
    WarehouseBusy,
)
from warehouse.locking import Backoff, pass_reader_gate, writer_intent

DEFAULT_TIMEOUT = 30.0


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    # another process holds DuckDB's file lock (IOException), or this process has the file
    # open through another instance (ResourceInUse: "unique file handle conflict")
    return isinstance(exc, duckdb.ResourceInUseException) or "lock" in str(exc).lower()


@contextmanager
def connect(
    path: str | Path,
    read_only: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    external_access: bool = True,
    migrate: bool = True,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for the duration of a `with` block, then close it.

    Writers hold the writer-intent lock for the whole block, so keep the block short.
    `external_access=False` (readers only) forbids file and network access from SQL
    (`read_csv`, `COPY`, `ATTACH`, extensions) and locks the configuration.

    Raises `WarehouseBusy` when the locks were not obtained within `timeout` seconds,
    `DatabaseNotFound` for a reader whose file does not exist (it is not created),
    `NotAWarehouse` for a directory, a file DuckDB cannot read, or (for a writer) another
    program's DuckDB file, and `SchemaTooNew` for a writer of a file written by a newer
    papertrade.
    """
    db_path = Path(path)
    if db_path.is_dir():
        raise NotAWarehouse(db_path, "it is a directory")
    if db_path.is_file() and not _has_duckdb_header(db_path):
        raise NotAWarehouse(db_path, "not a DuckDB database file")
    backoff = Backoff(timeout)
    if read_only:
        if not db_path.is_file():
            raise DatabaseNotFound(db_path)
        conn = _open_reader(db_path, backoff, timeout, external_access)
        try:
            yield conn
        finally:
            conn.close()
        return

    created = not db_path.exists()
    with writer_intent(db_path, backoff) as acquired:
        if not acquired:
            raise WarehouseBusy(db_path, timeout, "another writer holds the intent lock")
        conn, alias = _open_writer(db_path, backoff, timeout, migrate, created)
        discard = False
        try:
            yield conn
        except BaseException:
            # a file this block created and that failed before it held any row (a first
            # interval refused for a bad key) goes again: an error writes nothing
            discard = created and _holds_no_rows(conn)
            raise
        finally:
            _detach(conn, alias)
            if discard:
                _remove(db_path)


# Writers attach the file to one in-memory DuckDB instance per process instead of opening an
# instance of their own. Creating an instance builds DuckDB's whole catalog of built-in
# functions (about 30 ms here, more than an interval's own work) and tearing it down costs
# more; ATTACH and DETACH cost a few milliseconds. DETACH checkpoints the file and releases
# DuckDB's file lock exactly as closing a connection does, so other processes see no
# difference. Each writer gets its own cursor (a connection of its own to the shared
# instance) and its own alias, so threads do not share transactions or default databases.
#
# DuckDB's default 256 KiB blocks stay: 16 KiB blocks halve the checkpoint of a young file,
# but attach and checkpoint then grow with the file (75 ms at 3M keyed rows against 13 ms).
_shared: duckdb.DuckDBPyConnection | None = None
_shared_guard = threading.Lock()
_aliases = itertools.count()


def _shared_cursor() -> duckdb.DuckDBPyConnection:
    """A new connection to the process's shared instance, created on first use."""
    global _shared
    with _shared_guard:
        if _shared is None:
            _shared = duckdb.connect(":memory:")
            _shared.execute("SET GLOBAL TimeZone = 'UTC'")
        return _shared.cursor()


def _open_writer(
    db_path: Path, backoff: Backoff, timeout: float, migrate: bool, created: bool
) -> tuple[duckdb.DuckDBPyConnection, str]:
    """The attached, migrated file. When that fails on a file this call created (a disk
    that filled up, a directory it may not write), the file goes again: an empty or
    half-made one would be refused as no warehouse by every later run."""
    conn, alias = None, ""
    try:
        conn, alias = _attach_writer(db_path, backoff, timeout)
        if migrate:
            _migrate(conn, db_path)
        return conn, alias
    except BaseException:
        if conn is not None:
            with suppress(duckdb.Error):
                _detach(conn, alias)
        if created:
            _remove(db_path)
        raise


def discard_if_empty(path: str | Path, timeout: float = DEFAULT_TIMEOUT) -> bool:
    """Remove the warehouse file when no table holds a row but the migrations' own, and say
    whether it did. For a caller that created the file in an earlier, successful `connect`
    (a first interval loads its empty state, then fails before its commit): what it
    created holds nothing and goes again, as a `connect` block that fails removes its own
    new file. A file that holds rows, or whose writer lock is not had in `timeout`, stays."""
    db_path = Path(path)
    if not db_path.is_file() or not _has_duckdb_header(db_path):
        return False
    backoff = Backoff(timeout)
    with writer_intent(db_path, backoff) as acquired:
        if not acquired:
            return False
        conn, alias = _open_writer(db_path, backoff, timeout, migrate=False, created=False)
        try:
            empty = _holds_no_rows(conn)
        finally:
            _detach(conn, alias)
        if empty:
            _remove(db_path)
        return empty


def _remove(db_path: Path) -> None:
    for leftover in (db_path, db_path.with_name(db_path.name + ".wal")):
        leftover.unlink(missing_ok=True)


def _holds_no_rows(conn: duckdb.DuckDBPyConnection) -> bool:
    """No table of the attached file has a row but the migrations' own."""
    with suppress(duckdb.Error):  # a transaction the failure left open holds nothing
        conn.execute("ROLLBACK")
    try:
        ((rows,),) = conn.execute(
            "SELECT coalesce(sum(estimated_size), 0) FROM duckdb_tables()"
            " WHERE database_name = current_database() AND table_name <> 'schema_version'"
        ).fetchall()
    except duckdb.Error:
        return False
    return rows == 0


def _attach_writer(
    db_path: Path, backoff: Backoff, timeout: float
) -> tuple[duckdb.DuckDBPyConnection, str]:
    conn = _shared_cursor()
    alias = f"warehouse_{next(_aliases)}"
    target = str(db_path).replace("'", "''")
    # TYPE: a DuckDB file whatever its name (ATTACH would read `*.sqlite` as SQLite)
    while True:
        try:
            conn.execute(f"ATTACH '{target}' AS {alias} (TYPE duckdb)")
            break
        except duckdb.Error as exc:
            if not _is_lock_conflict(exc):
                conn.close()
                if "permission denied" in str(exc).lower():
                    raise NotWritable(db_path, "permission denied") from None
                raise
            if not backoff.sleep():
                conn.close()
                raise WarehouseBusy(db_path, timeout, "the database file is locked") from None
    conn.execute(f"USE {alias}")
    return conn, alias


def _detach(conn: duckdb.DuckDBPyConnection, alias: str) -> None:
    """Close the writer's cursor (rolling back anything it left open), then detach: the
    checkpoint and the release of the file lock."""
    conn.close()
    cursor = _shared_cursor()
    try:
        cursor.execute(f"DETACH {alias}")
    finally:
        cursor.close()


def _open_reader(
    db_path: Path, backoff: Backoff, timeout: float, external_access: bool
) -> duckdb.DuckDBPyConnection:
    config = {} if external_access else {"enable_external_access": False}
    while True:
        if not pass_reader_gate(db_path, backoff):
            raise WarehouseBusy(db_path, timeout, "a writer holds the intent lock")
        conn = _try_connect(db_path, backoff, timeout, read_only=True, config=config)
        if conn is None:
            continue
        if not external_access:
            conn.execute("SET lock_configuration = true")
        return conn


def _try_connect(
    db_path: Path, backoff: Backoff, timeout: float, **options: Any
) -> duckdb.DuckDBPyConnection | None:
    """One attempt at DuckDB's own file lock: the connection, or None after a backoff pause
    when another process holds the file; `WarehouseBusy` once the time is up."""
    try:
        conn = duckdb.connect(str(db_path), **options)
    except duckdb.IOException as exc:
        if not _is_lock_conflict(exc):
            raise
        if not backoff.sleep():
            raise WarehouseBusy(db_path, timeout, "the database file is locked") from None
        return None
    conn.execute("SET TimeZone = 'UTC'")
    return conn


def check_writable(path: str | Path) -> None:
    """Refuse, before any work, a database a writer could not create or write."""
    reason = unwritable(Path(path))
    if reason:
        raise NotWritable(Path(path), reason)


def unwritable(path: Path, *, directory: bool = False) -> str | None:
    """Why `path` (a `directory`, or a file) could not be written or created, None when it
    could: the path itself when it exists, else the nearest directory above it that does."""
    if directory and path.is_file():
        return f"{path} is not a directory"
    target = path
    while not target.exists() and target != target.parent:
        target = target.parent
    if target != path and not target.is_dir():
        return f"{target} is not a directory"
    if not os.access(target, os.W_OK):
        return f"{target} is not writable"
    return None


def _has_duckdb_header(db_path: Path) -> bool:
    """DuckDB's main header: a checksum, then the magic bytes `DUCK`. Checked before any
    lock file is made next to a path that is something else."""
    with db_path.open("rb") as f:
        return f.read(12)[8:12] == b"DUCK"


def refuse_foreign(conn: duckdb.DuckDBPyConnection, db_path: Path) -> int:
    """The file's schema version (0 for a new, empty file); `NotAWarehouse` for another
    program's DuckDB file, which has tables but no `schema_version` (a papertrade file has
    it from its first connection on)."""
    found = schema.current_version(conn)
    if found == 0 and schema.has_tables(conn):
        raise NotAWarehouse(db_path, "a DuckDB file of another program; nothing written")
    return found


@contextmanager
def naming_an_older_schema(conn: duckdb.DuckDBPyConnection, db_path: str | Path) -> Iterator[None]:
    """A reader's query that fails for a missing table or column of a file an older
    papertrade wrote raises `SchemaTooOld`, which says so and how the file gets upgraded,
    instead of DuckDB's binder error (readers open the file read-only and cannot migrate
    it). Other failures, and those of a current file, pass through unchanged."""
    try:
        yield
    except (duckdb.CatalogException, duckdb.BinderException) as exc:
        found = schema.current_version(conn)
        if 0 < found < schema.LATEST_VERSION:
            detail = str(exc).splitlines()[0]
            raise SchemaTooOld(Path(db_path), found, schema.LATEST_VERSION, detail) from None
        raise


def _migrate(conn: duckdb.DuckDBPyConnection, db_path: Path) -> None:
    found = refuse_foreign(conn, db_path)
    if found > schema.LATEST_VERSION:
        raise SchemaTooNew(db_path, found, schema.LATEST_VERSION)
    if found < schema.LATEST_VERSION:
        schema.migrate(conn)
