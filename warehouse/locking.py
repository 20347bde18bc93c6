"""The writer-intent lock: a file next to the database that lets a writer win against
readers polling in a tight loop.

DuckDB itself allows one read-write process or many read-only ones per file. A writer that
merely retries `duckdb.connect` loses against readers that open and close all the time: there
is nearly always one of them holding the file. So the writer first takes an exclusive
`fcntl.flock` on `<db>.writer.lock` (its intent), and every cooperating reader passes through
a shared lock on that same file before it opens the database. While a writer's intent is held,
new readers wait at the gate; readers already inside finish and close, and the writer gets in.

`flock` locks belong to an open file description, so they also exclude threads of one process
that open the file separately, and the kernel drops them when a process dies (SIGKILL
included): a crashed writer never leaves a stale lock.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from warehouse.errors import NotWritable

# Backoff between attempts: starts small so an uncontended wait costs milliseconds, capped so a
# long wait does not overshoot the moment the lock frees by much.
FIRST_DELAY = 0.002
MAX_DELAY = 0.1


def intent_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".writer.lock")


def account_lock_path(db_path: Path, account_id: str, purpose: str) -> Path:
    """`<db>.<account>.<purpose>.lock`, one lock per account and purpose next to the file
    (`run`, `outbox`); a character a file name should not hold becomes `_`."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", account_id)
    return db_path.with_name(f"{db_path.name}.{safe}.{purpose}.lock")


class Backoff:
    """Exponential backoff with jitter until a monotonic deadline.

    `sleep()` returns False once the deadline has passed (without sleeping past it)."""

    def __init__(self, timeout: float, rng: random.Random | None = None) -> None:
        self.deadline = time.monotonic() + max(timeout, 0.0)
        self._delay = FIRST_DELAY
        self._rng = rng or random.Random()

    def sleep(self) -> bool:
        left = self.deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(left, self._delay * self._rng.uniform(0.5, 1.0)))
        self._delay = min(self._delay * 2, MAX_DELAY)
        return True


def _acquire(fd: int, mode: int, backoff: Backoff) -> bool:
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not backoff.sleep():
                return False


def open_lock_file(lock: Path, db_path: Path) -> int:
    """A descriptor of the lock file `lock` next to the database `db_path`, made with its
    directory when missing. `NotWritable` when it cannot be (a directory the user may not
    write, a parent that is a file): writers take their locks first, so this is where such
    a path shows."""
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        return os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise NotWritable(db_path, exc.strerror or str(exc)) from None


@contextmanager
def exclusive_lock(
    lock: Path, db_path: Path, backoff: Backoff, *, shared: bool = False
) -> Iterator[bool]:
    """Hold an exclusive `flock` (with `shared`, a shared one) on the file `lock` next to
    `db_path` for the block. Yields False if it was not acquired before the backoff's
    deadline (the block then runs without it, and decides what that means)."""
    fd = open_lock_file(lock, db_path)
    try:
        acquired = _acquire(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX, backoff)
        yield acquired
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def writer_intent(db_path: Path, backoff: Backoff) -> AbstractContextManager[bool]:
    """Hold the exclusive intent lock for the block. Yields False if it was not acquired
    before the backoff's deadline (the caller raises `WarehouseBusy`)."""
    return exclusive_lock(intent_path(db_path), db_path, backoff)


def pass_reader_gate(db_path: Path, backoff: Backoff) -> bool:
    """Wait until no writer holds its intent, then return at once: readers take the shared
    lock only for an instant so they never hold a writer up. Returns False on timeout.

    Without the lock file (no writer has ever run, or a read-only directory) there is nobody
    to wait for."""
    try:
        fd = os.open(intent_path(db_path), os.O_RDONLY)
    except OSError:
        return True
    try:
        return _acquire(fd, fcntl.LOCK_SH, backoff)
    finally:
        os.close(fd)
