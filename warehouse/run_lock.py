"""The account run lock: one trading interval of an account at a time, across processes.

An interval reads the broker state at its start and commits the next state at its end; two
runs of the same account that overlap would both build on the same state. The lock is an
exclusive `flock` on `<db>.<account>.run.lock`, held from loading the state to the commit.
A second run waits for it up to a timeout and then gives up cleanly (`AccountBusy`); the
kernel releases the lock of a killed process, so a crash never leaves the account stuck.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from papertrade.errors import PapertradeError
from warehouse.locking import Backoff, account_lock_path, open_lock_file


class AccountBusy(PapertradeError):
    """Another process is running an interval of this account."""

    def __init__(self, account_id: str, timeout: float) -> None:
        super().__init__(
            f"another interval run of account {account_id!r} is in progress (waited {timeout:g} s)"
        )
        self.account_id = account_id
        self.timeout = timeout


def run_lock_path(db_path: Path, account_id: str) -> Path:
    return account_lock_path(db_path, account_id, "run")


@contextmanager
def account_run_lock(db_path: Path, account_id: str, timeout: float) -> Iterator[None]:
    """Hold the account's run lock for the block; raise `AccountBusy` after `timeout` s."""
    fd = open_lock_file(run_lock_path(db_path, account_id), db_path)
    try:
        backoff = Backoff(timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not backoff.sleep():
                    raise AccountBusy(account_id, timeout) from None
        yield
    finally:
        os.close(fd)
