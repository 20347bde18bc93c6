"""The accounts a warehouse holds, for the commands that name one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from papertrade.errors import UnknownAccount

# every account of the file and its kind (`paper`, `backtest`); a file holds a handful
ACCOUNT_KINDS_SQL = "SELECT account_id, kind FROM accounts ORDER BY account_id"


def account_kind(conn: Any, account: str, db: object) -> str:
    """The kind of `account` in the warehouse open on `conn` (`db` names it in messages).
    Raises `UnknownAccount`, naming the accounts the file holds, for one it has not."""
    return kind_of(dict(conn.execute(ACCOUNT_KINDS_SQL).fetchall()), account, db)


def kind_of(kinds: Mapping[str, str], account: str, db: object) -> str:
    """`account`'s kind among `kinds` (account id -> kind, as `ACCOUNT_KINDS_SQL` reads
    them); `UnknownAccount` for one the file has not."""
    if account not in kinds:
        raise UnknownAccount(db, account, list(kinds))
    return str(kinds[account])
