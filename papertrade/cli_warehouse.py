"""Warehouse commands: `sql`, `positions`, `orders`, `fills`, `account` and `kill-switch`.

Read commands open the file read-only (a missing file is bad input, exit 2, and is not
created) and print a rich table, or JSON with `--json`. `kill-switch on|off` writes through
a short-lived writer connection, waiting up to `[warehouse] lock_timeout_seconds`.
"""

from __future__ import annotations

import csv
import decimal
import io
import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from papertrade.accounts import ACCOUNT_KINDS_SQL, kind_of
from papertrade.cli import (
    AccountOpt,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    app,
    console,
    err_console,
    kill_switch_app,
    settings_from,
    user_errors,
)
from papertrade.errors import UnknownAccount, UserError
from papertrade.settings import Settings

if TYPE_CHECKING:
    from warehouse.query import Rows

CsvOpt = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")]
LimitOpt = Annotated[
    int, typer.Option("--limit", min=1, max=1_000_000_000, help="Most recent rows to show.")
]


TABLE_ROWS = 1000


def _print_rows(rows: Rows, as_json: bool, as_csv: bool = False, title: str = "") -> None:
    columns, values = rows.columns, rows.values
    if as_json:
        typer.echo(
            json.dumps([{c: _json(v) for c, v in zip(columns, r, strict=True)} for r in values])
        )
        return
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([["" if _missing(v) else _text(v) for v in r] for r in values])
        typer.echo(out.getvalue(), nl=False)
        return
    from rich.table import Table
    from rich.text import Text

    if len(values) > TABLE_ROWS:
        err_console.print(
            f"showing the first {TABLE_ROWS:,} of {len(values):,} rows; --csv or --json print all"
        )
        values = values[:TABLE_ROWS]
    table = Table(title=title or None)
    # Text, not str: Rich reads "[...]" in a str as a style tag and drops it (an outbox
    # row's "check [slack] channel" lost the setting it names)
    for column in columns:
        table.add_column(Text(column))
    cells = [[Text(_cell(v)) for v in row] for row in values]
    for row in cells:
        table.add_row(*row)
    unbounded = console.options.update_width(1_000_000)
    if console.measure(table, options=unbounded).minimum <= console.width:
        console.print(table)  # fits, if need be with values wrapped at their spaces
        return
    # too wide for the terminal even wrapped: one record per block, as psql's expanded
    # display, instead of columns cut to a few letters each
    if title:
        console.print(title, style="italic")
    if not cells:  # without it an empty result printed nothing at all (or its title)
        console.print("(0 rows)")
    for n, row in enumerate(cells, 1):
        record = Table(title=f"row {n}", show_header=False, title_justify="left")
        record.add_column(style="bold")
        record.add_column(overflow="fold")
        for column, value in zip(columns, row, strict=True):
            record.add_row(Text(column), value)
        console.print(record)


def _text(value: Any) -> Any:
    """Values without a text form of their own, as text: bytes in hex, lists and structs as
    JSON, UUIDs and decimals as their digits; everything else unchanged. Lists and structs
    go through `_json` as `--json` prints them, so a NaN or infinity inside is null: Python's
    own `NaN` and `Infinity` tokens are no JSON, and a strict parser of the cell refused it."""
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, list | dict):
        return json.dumps(_json(value), allow_nan=False)
    if isinstance(value, uuid.UUID | decimal.Decimal):
        return str(value)
    return value


def _json(value: Any) -> Any:
    """A JSON value: non-finite floats as null, times in ISO 8601, decimals as numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, decimal.Decimal):
        return _json(float(value))
    if value is None or isinstance(value, str | int | bool):
        return value
    return _json_default(value)


def _json_default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(_text(value))


def _cell(value: Any) -> str:
    """Tables show money-like floats to the cent-and-a-bit (six significant decimals at
    most), so float noise such as -384.9999999999958 reads as -385.0; JSON and CSV keep
    the stored values."""
    if _missing(value):
        return ""
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".")
    if isinstance(value, decimal.Decimal):
        return f"{value:,}"  # exact, at the column's own scale
    return str(_text(value))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _read(settings: Settings, sql: str, params: list[Any]) -> Rows:
    import duckdb

    from warehouse.query import read_rows

    path = settings.warehouse.path
    try:
        return read_rows(path, sql, params, timeout=settings.warehouse.lock_timeout_seconds)
    except duckdb.CatalogException as exc:
        raise UserError(
            f"{path} is not a papertrade warehouse: {str(exc).splitlines()[0]}"
        ) from None


def _account(settings: Settings, account_id: str | None) -> str:
    """The account to show; one the warehouse has never seen is bad input, not an empty
    table (a typo in --account-id would otherwise look like a flat account)."""
    return _account_kind(settings, account_id)[0]


def _account_kind(settings: Settings, account_id: str | None) -> tuple[str, str]:
    """The account (see `_account`) and its kind (`paper`, `backtest`)."""
    account = account_id or settings.account.id
    return account, kind_of(_kinds(settings), account, settings.warehouse.path)


def _kinds(settings: Settings) -> dict[str, str]:
    """Every account of the file and its kind."""
    return dict(_read(settings, ACCOUNT_KINDS_SQL, []).values)


@app.command("sql")
@user_errors
def sql_command(
    query: Annotated[str, typer.Argument(help="One SELECT statement.")],
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
    as_csv: CsvOpt = False,
) -> None:
    """Run one read-only SQL statement against the warehouse (no writes, no file access)."""
    import duckdb

    from warehouse.query import run_readonly_sql

    if as_json and as_csv:
        raise UserError("choose one of --json and --csv")
    settings = settings_from(config, db)
    try:
        rows = run_readonly_sql(
            settings.warehouse.path, query, timeout=settings.warehouse.lock_timeout_seconds
        )
    except duckdb.IOException:
        raise  # the file, not the statement: a failure (exit 1)
    except duckdb.Error as exc:
        raise UserError(f"SQL error: {str(exc).splitlines()[0]}") from None
    _print_rows(rows, as_json, as_csv)


@app.command("positions")
@user_errors
def positions_command(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account_id: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open positions of the account's latest snapshot."""
    settings = settings_from(config, db)
    account = _account(settings, account_id)
    rows = _read(
        settings,
        "SELECT symbol, quantity, avg_cost, market_price, market_value, unrealized_pnl, "
        "realized_pnl, ts FROM latest_positions WHERE account_id = ? ORDER BY symbol",
        [account],
    )
    _print_rows(rows, as_json, title=f"positions: {account}")


@app.command("orders")
@user_errors
def orders_command(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account_id: AccountOpt = None,
    as_json: JsonOpt = False,
    open_only: Annotated[bool, typer.Option("--open", help="Only open orders.")] = False,
    limit: LimitOpt = 50,
) -> None:
    """The account's most recent orders, newest first."""
    settings = settings_from(config, db)
    account = _account(settings, account_id)
    source = "open_orders" if open_only else "orders"
    rows = _read(
        settings,
        "SELECT order_id, client_order_id, created_at, symbol, side, order_type, "
        "time_in_force, quantity, limit_price, stop_price, status, filled_quantity, "
        f"avg_fill_price, reject_reason FROM {source} WHERE account_id = ? "
        "ORDER BY created_at DESC, order_id DESC LIMIT ?",
        [account, limit],
    )
    _print_rows(rows, as_json, title=f"orders: {account}")


@app.command("fills")
@user_errors
def fills_command(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account_id: AccountOpt = None,
    as_json: JsonOpt = False,
    limit: LimitOpt = 50,
) -> None:
    """The account's most recent fills, newest first."""
    settings = settings_from(config, db)
    account = _account(settings, account_id)
    rows = _read(
        settings,
        "SELECT fill_id, order_id, ts, symbol, side, quantity, price, commission FROM fills "
        "WHERE account_id = ? ORDER BY ts DESC, fill_id DESC LIMIT ?",
        [account, limit],
    )
    _print_rows(rows, as_json, title=f"fills: {account}")


@app.command("account")
@user_errors
def account_command(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account_id: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The account's latest equity snapshot and trading state."""
    settings = settings_from(config, db)
    account = account_id or settings.account.id
    rows = _read(
        settings,
        "WITH eq AS (SELECT * FROM equity WHERE account_id = ? ORDER BY ts DESC LIMIT 1), "
        "st AS (SELECT state, reason FROM trading_state WHERE account_id = ? "
        "       ORDER BY ts DESC LIMIT 1), "
        # a paper interval records its commissions and P&L; a backtest records no interval
        # rows (and one stored by an older papertrade no P&L), so they come from its fills
        # and its closing positions
        "pnl AS (SELECT eq.*, coalesce("
        "  (SELECT commissions FROM intervals i WHERE i.account_id = eq.account_id"
        "   AND i.as_of = eq.ts),"
        "  (SELECT sum(commission) FROM fills f WHERE f.account_id = eq.account_id"
        "   AND f.ts <= eq.ts), 0) AS commissions, coalesce(eq.unrealized_pnl,"
        "  (SELECT coalesce(sum(unrealized_pnl), 0) FROM positions p"
        "   WHERE p.account_id = eq.account_id AND p.ts = eq.ts)) AS unrealized FROM eq) "
        "SELECT a.account_id, a.kind, a.initial_cash, pnl.ts, pnl.cash, pnl.positions_value, "
        "pnl.equity, pnl.gross_exposure, pnl.net_exposure, "
        # realized + unrealized - commissions = equity - initial cash
        "coalesce(pnl.realized_pnl, pnl.equity - a.initial_cash - pnl.unrealized"
        " + pnl.commissions) AS realized_pnl, pnl.unrealized AS unrealized_pnl, "
        "pnl.commissions, "
        "coalesce((SELECT state FROM st), 'active') AS trading_state, "
        "(SELECT reason FROM st) AS trading_state_reason "
        "FROM accounts a LEFT JOIN pnl USING (account_id) WHERE a.account_id = ?",
        [account, account, account],
    )
    if not rows.values:
        raise UnknownAccount(settings.warehouse.path, account, list(_kinds(settings)))
    from warehouse.query import Rows

    line = list(zip(rows.columns, rows.values[0], strict=True))
    if as_json:
        typer.echo(json.dumps({column: _json(value) for column, value in line}))
        return
    _print_rows(Rows(["field", "value"], line), False, title=account)


@kill_switch_app.command("status")
@user_errors
def kill_switch_status(
    config: ConfigOpt = None,
    db: DbOpt = None,
    account_id: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the current trading state (active when never set)."""
    from warehouse.connection import connect
    from warehouse.trading_state import get_trading_state

    settings = settings_from(config, db)
    account = _paper_account(settings, account_id)
    timeout = settings.warehouse.lock_timeout_seconds
    with connect(settings.warehouse.path, read_only=True, timeout=timeout) as conn:
        row = get_trading_state(conn, account)
    _print_state(account, row.state.value, row.reason, row.source, row.ts, as_json)


def _print_state(
    account: str,
    state: str,
    reason: str | None,
    source: str | None,
    ts: datetime | None,
    as_json: bool,
) -> None:
    payload = {
        "account_id": account,
        "state": state,
        "reason": reason,
        "source": source,
        "ts": ts.isoformat() if ts else None,
    }
    if as_json:
        typer.echo(json.dumps(payload))
    else:
        why = f" ({source}: {reason})" if reason else ""
        console.print(f"{account}: {state.upper()}{why}", markup=False, highlight=False)


MAX_REASON = 500


def _paper_account(settings: Settings, account_id: str | None) -> str:
    """The account the kill switch acts on or shows: a backtest replays its bars and reads
    no trading state, so a switch would do nothing and a status would say `active` of a run
    that never had one."""
    account, kind = _account_kind(settings, account_id)
    if kind != "paper":
        raise UserError(f"account {account} is a {kind} account: the kill switch is for paper"
                        " accounts")  # fmt: skip
    return account


def _set_state(
    config: Path | None,
    db: Path | None,
    account_id: str | None,
    state: str,
    reason: str,
    as_json: bool,
) -> None:
    if len(reason) > MAX_REASON or not reason.isprintable():
        # it is shown in Slack, the account line and every later kill-switch status
        raise UserError(f"--reason must be one line of at most {MAX_REASON} printable characters")
    from paper_broker.enums import TradingState
    from papertrade.alerts.sender import ConsoleSender, build_sender
    from warehouse.connection import connect
    from warehouse.trading_state import get_trading_state, set_trading_state

    settings = settings_from(config, db)
    account = _paper_account(settings, account_id)
    now = datetime.now(UTC)
    timeout = settings.warehouse.lock_timeout_seconds
    with connect(settings.warehouse.path, timeout=timeout) as conn:
        current = get_trading_state(conn, account)
        if current.state is TradingState(state):
            # no second row, risk event or alert for a change that is not one
            _print_state(account, state, current.reason, current.source, current.ts, as_json)
            err_console.print(f"{account} is {state} already: nothing changed", markup=False)
            return
        set_trading_state(conn, account, TradingState(state), reason, "manual", now)
    _print_state(account, state, reason, "manual", now, as_json)
    # a kill-switch change goes to Slack at once; without Slack the line above says it all,
    # and the outbox keeps the row for the console of the next interval
    sender = build_sender(settings.slack)
    if not isinstance(sender, ConsoleSender):
        from papertrade.interval import notify

        notify(settings, sender, account_id=account)


@kill_switch_app.command("on")
@user_errors
def kill_switch_on(
    reason: Annotated[
        str | None,
        typer.Option("--reason", help="Why trading is halted (required; one line)."),
    ] = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    account_id: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Halt trading: no new orders until `kill-switch off`."""
    if reason is None or not reason.strip():
        raise UserError("kill-switch on needs --reason TEXT")
    _set_state(config, db, account_id, "halted", reason.strip(), as_json)


@kill_switch_app.command("off")
@user_errors
def kill_switch_off(
    reason: Annotated[str, typer.Option("--reason", help="Why trading resumes.")] = "manual resume",
    config: ConfigOpt = None,
    db: DbOpt = None,
    account_id: AccountOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Resume trading (state ACTIVE)."""
    if not reason.strip():
        # `--reason "$WHY"` with the variable unset: the resume would say nothing of why
        raise UserError(
            "kill-switch off --reason must not be empty (leave it out for 'manual resume')"
        )
    _set_state(config, db, account_id, "active", reason.strip(), as_json)
