"""Errors the CLI turns into exit codes.

PapertradeError
 ├── UserError          bad input a user can fix: exit 2, one line, nothing written
 │    └── ConfigError   (papertrade.settings) a bad config value, naming the key
 └── (anything else)    a failure: exit 1
"""

from __future__ import annotations


class PapertradeError(Exception):
    """Base of the application's own errors."""


class UserError(PapertradeError, ValueError):
    """Input a user can fix. The message is one line and names what is wrong."""
