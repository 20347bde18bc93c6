"""Warehouse errors.

PapertradeError (papertrade.errors)
 ├── WarehouseError          the warehouse cannot do what was asked: exit 1
 │    ├── WarehouseBusy      the file stayed locked by another process for the whole timeout
 │    └── SchemaTooNew       the file was written by a newer papertrade
 └── UserError
      ├── DatabaseNotFound   a read was asked of a file that does not exist
      ├── SchemaTooOld       a read needs a table or column a file of an older papertrade lacks
      ├── NotWritable        a writer cannot create or write the file where `--db` points
      ├── NotAWarehouse      the path is a directory, not a DuckDB file, or another program's
      └── ReadOnlySqlError   `papertrade sql` got a statement that could write or reach outside
"""

from __future__ import annotations

from pathlib import Path

from papertrade.errors import PapertradeError, UserError


class WarehouseError(PapertradeError):
    """Base of the warehouse's failures (not bad input)."""


class WarehouseBusy(WarehouseError):
    """Another process held the database for longer than `timeout` seconds; nothing was
    written."""

    def __init__(self, path: Path, timeout: float, holder: str = "") -> None:
        detail = f" ({holder})" if holder else ""
        super().__init__(f"warehouse {path} is busy: lock not acquired in {timeout:g} s{detail}")
        self.path = path
        self.timeout = timeout


class SchemaTooNew(WarehouseError):
    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"warehouse {path} has schema v{found}, newer than this papertrade (v{known}); "
            "upgrade papertrade"
        )
        self.found = found
        self.known = known


class SchemaTooOld(UserError):
    """A read asked for a table or column that a file written by an older papertrade does not
    have yet. Readers never migrate (they open the file read-only); the next writer does."""

    def __init__(self, path: Path, found: int, known: int, detail: str) -> None:
        super().__init__(
            f"warehouse {path} has schema v{found}, older than this papertrade's v{known}: "
            f"{detail} (the next interval, backtest or kill-switch change upgrades the file; "
            "on an active account `papertrade kill-switch off` upgrades it and changes nothing "
            "else)"
        )
        self.found = found
        self.known = known


class NotWritable(UserError):
    """A writer cannot create or write the database where it was pointed: nothing was
    written, and a file it had created is removed again."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot write the warehouse {path}: {reason}")
        self.path = path


class DatabaseNotFound(UserError):
    def __init__(self, path: Path) -> None:
        super().__init__(f"database file not found: {path}")
        self.path = path


class NotAWarehouse(UserError):
    """`--db` names something papertrade must not open or write: nothing was written."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is not a papertrade warehouse: {reason}")
        self.path = path


class ReadOnlySqlError(UserError):
    """A statement `papertrade sql` refuses: anything but one SELECT/EXPLAIN, or a file read."""
