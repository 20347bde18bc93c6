"""`papertrade replay --account-id ID --date D`: the replay parity audit of one session.

Re-runs the account's recorded intervals of session D through the strategy, RiskGuard and
broker, with the settings the account recorded (or `--config`'s), and prints every
difference from the recorded orders and fills (see `papertrade.backtest.replay`). Exit 0
when the session is reproduced, 1 when it is not (a failed audit), 2 for bad input: a bad
date, an unknown account or a backtest's, no interval that session, a file of an older
papertrade that lacks what the replay reads (`SchemaTooOld`). The warehouse is opened
read-only; nothing is written.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Annotated, Any

import typer

from papertrade.cli import (
    AccountOpt,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    app,
    console,
    settings_from,
    user_errors,
)
from papertrade.errors import UserError
from papertrade.settings import Settings

if TYPE_CHECKING:
    from papertrade.backtest.replay import Difference

# the first differences tell the story; the rest are usually its consequences
MAX_SHOWN = 30

DateOpt = Annotated[
    str, typer.Option("--date", help="Session date YYYY-MM-DD (exchange calendar).")
]


@app.command("replay")
@user_errors
def replay_command(
    session_date: DateOpt,
    account_id: AccountOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay a recorded paper session and print how it differs from the record (with the
    settings the account recorded, unless --config is given)."""
    from papertrade.backtest.replay import replay_session
    from warehouse.connection import connect, naming_an_older_schema

    day = _parse_date(session_date)
    settings = settings_from(config, db)
    if account_id is not None:
        account = settings.account.model_copy(update={"id": account_id})
        settings = settings.model_copy(update={"account": account})
    timeout = settings.warehouse.lock_timeout_seconds
    path = settings.warehouse.path
    # read-only, the replay cannot migrate a file an older papertrade wrote: one that lacks
    # the interval markers' columns (v6) is named as older, not a DuckDB binder traceback
    with connect(path, read_only=True, timeout=timeout) as conn, naming_an_older_schema(conn, path):
        if config is None:
            settings = _recorded_settings(conn, settings, day)
        report = replay_session(conn, settings, day)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    elif report.reproduced:
        console.print(
            f"no differences: {report.n_orders} orders, {report.n_fills} fills reproduced "
            f"({settings.account.id}, session {day}, {len(report.intervals)} intervals)",
            markup=False,
            highlight=False,
        )
    else:
        _print_differences(report.differences, settings.account.id, day)
    if not report.reproduced:
        raise typer.Exit(1)


def _recorded_settings(conn: Any, settings: Settings, day: date) -> Settings:
    """The settings the account recorded as in force at the session, so that the audit
    compares the code with the record; `--config` replays with other settings instead, to
    see what they would have changed. A backtest's account records no settings (its
    config is the backtest's options), and `replay_session` refuses it."""
    from papertrade.recorded_settings import settings_in_force

    return settings_in_force(conn, settings, day)


def _parse_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"--date: not a date YYYY-MM-DD: {text!r}") from None


def _print_differences(differences: Sequence[Difference], account_id: str, day: date) -> None:
    from rich.table import Table

    table = Table(title=f"replay of {account_id}, session {day}: {len(differences)} differences")
    for column in ("kind", "key", "field", "recorded", "replayed"):
        table.add_column(column, overflow="fold")
    for d in differences[:MAX_SHOWN]:
        row = d.as_dict()
        table.add_row(*(str(row[c]) for c in ("kind", "key", "field", "recorded", "replayed")))
    console.print(table)
    if len(differences) > MAX_SHOWN:
        console.print(f"... and {len(differences) - MAX_SHOWN} more (--json lists them all)")
