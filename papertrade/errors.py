"""Errors the CLI turns into exit codes.

PapertradeError
 ├── UserError          bad input a user can fix: exit 2, one line, nothing written
 │    └── ConfigError   (papertrade.settings) a bad config value, naming the key
 └── (anything else)    a failure: exit 1
"""

from __future__ import annotations

from collections.abc import Sequence


class PapertradeError(Exception):
    """Base of the application's own errors."""


class UserError(PapertradeError, ValueError):
    """Input a user can fix. The message is one line and names what is wrong."""


class UnknownAccount(UserError):
    """An account id the warehouse has never seen: a typo, or another config's account.
    The message names the accounts the file does hold, so the right id is in sight."""

    def __init__(self, db: object, account: str, known: Sequence[str]) -> None:
        shown = ", ".join(known[:8]) + (f" and {len(known) - 8} more" if len(known) > 8 else "")
        holds = f"it holds {shown}" if known else "it holds no account"
        super().__init__(f"unknown account in {db}: {account} ({holds})")
