"""The settings a paper account traded a session with, as the warehouse recorded them.

An account records its settings with its first interval and again with each interval whose
settings changed (`account_settings`; files from before that table hold the first only, in
`accounts.config_json`). Whatever audits a past session, the replay and end of day's data
quality, judges it by these, not by today's config: a session traded at 600 s intervals is
not missing nine in ten of the 60 s grid a later config names.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import duckdb

from papertrade.settings import Settings


def settings_in_force(conn: Any, settings: Settings, day: date) -> Settings:
    """The settings recorded as in force at `settings.account.id`'s first interval of the
    session `day` (or, without intervals that day, its latest ones before), else
    `settings` unchanged. Only the warehouse location is taken from `settings`: the same
    file may be reached by another path."""
    account = settings.account.id
    ((first,),) = conn.execute(
        "SELECT min(as_of) FROM intervals WHERE account_id = ? AND session_date = ?",
        [account, day],
    ).fetchall()
    at = first if first is not None else datetime.combine(day + timedelta(days=1), time(), UTC)
    try:
        config_json = recorded_settings_json(conn, account, at)
    except duckdb.CatalogException:  # a file from before account_settings: its first only
        config_json = None
    if config_json is None:
        row = conn.execute(
            "SELECT config_json FROM accounts WHERE account_id = ? AND kind = 'paper'", [account]
        ).fetchone()
        config_json = row[0] if row is not None else None
    if not config_json:
        return settings
    recorded = Settings.model_validate_json(config_json)
    return recorded.model_copy(update={"warehouse": settings.warehouse})


def recorded_settings_json(conn: Any, account_id: str, at: datetime) -> str | None:
    """The settings recorded as in force at `at` (JSON), None when none are (a new
    account)."""
    ((config,),) = conn.execute(
        "SELECT arg_max(config_json, since) FROM account_settings"
        " WHERE account_id = ? AND since <= ?",
        [account_id, at],
    ).fetchall()
    return str(config) if config is not None else None


def settings_changed(recorded: str | None, settings: Settings) -> bool:
    """Whether `settings` differ from the `recorded` ones (JSON, None when nothing is), the
    warehouse location aside: the same file named another way is not a change. A change is
    recorded with the interval, so a replay of a later session runs with its own settings."""
    if recorded is None:
        return True
    before = json.loads(recorded)
    now = json.loads(settings.model_dump_json())
    before.pop("warehouse", None)
    now.pop("warehouse", None)
    return bool(before != now)
