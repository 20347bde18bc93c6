"""Commands that run the flows: `interval`, `eod`, `demo` and `serve`.

Everything a user typed is checked before Prefect starts (a bad config, date or strategy is
exit 2 in milliseconds, not after the temporary server's start). With `PREFECT_API_URL` set
the runs go to that server and show in its UI; otherwise Prefect starts a temporary one
(`serve`, which runs for days, starts a server of its own, see `papertrade.prefect_server`).
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from papertrade.cli import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    app,
    console,
    prepare_prefect,
    settings_from,
    user_errors,
)
from papertrade.errors import UserError
from papertrade.settings import Settings

AsOfOpt = Annotated[
    str | None,
    typer.Option(
        "--as-of", help="Interval time, ISO 8601; without a zone it is UTC (default now, floored)."
    ),
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Trade even outside a session.")]
DateOpt = Annotated[
    str | None,
    typer.Option("--date", help="Session date YYYY-MM-DD (default: the latest closed session)."),
]

DEMO_DB = Path("papertrade-demo.duckdb")
# The demo trades one session at ten-minute intervals (39 flow runs) so that it finishes in
# well under two minutes with Prefect's own cost of about a second per run; fast averages and
# a notional cap make fills, a risk rejection and P&L show within the session. The market is
# the simulated one even beside a papertrade.toml of a live provider: the demo needs no keys
# or network, and says it trades simulated symbols.
DEMO_ENV = {
    "PAPERTRADE_ACCOUNT__ID": "demo",
    "PAPERTRADE_MARKET_DATA__PROVIDER": "simulated",
    "PAPERTRADE_MARKET_DATA__INTERVAL_SECONDS": "600",
    "PAPERTRADE_MARKET_DATA__HISTORY_BARS": "30",
    "PAPERTRADE_STRATEGY__NAME": "sma_crossover",
    "PAPERTRADE_STRATEGY__PARAMS": '{"fast": 2, "slow": 5, "qty": 100}',
    "PAPERTRADE_RISK__MAX_ORDER_NOTIONAL": "20000",
}


def _preflight(settings: Settings, as_of: datetime | None = None) -> None:
    """What a run would refuse, refused before Prefect starts: the strategy and its
    parameters, the market data provider with its keys, the exchange calendar, and the
    warehouse (see `check_warehouse`)."""
    from paper_broker.market_data.factory import make_provider
    from papertrade.calendar import MarketCalendar
    from papertrade.interval import check_warehouse, load_paper_strategy

    load_paper_strategy(settings)
    make_provider(settings.market_data, settings.universe.symbols).close()
    calendar = MarketCalendar.for_market(settings.market_data)
    calendar.check()
    # the interval the run would name (as_of floored), not the time as typed
    check_warehouse(settings, calendar.floor(as_of) if as_of is not None else None)


@app.command()
@user_errors
def interval(
    as_of: AsOfOpt = None,
    force: ForceOpt = False,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run one trading-interval flow now (or at --as-of)."""
    from papertrade.calendar import parse_as_of

    settings = settings_from(config, db)
    when = parse_as_of(as_of) if as_of is not None else None
    if when is not None and when > datetime.now(UTC) + timedelta(minutes=1):
        # it would be committed, and every real interval refused as before the account's last
        raise UserError(f"--as-of {when.isoformat()} is in the future")
    _preflight(settings, when)
    prepare_prefect()
    from flows.trading_interval import trading_interval

    summary = trading_interval(
        as_of=when,
        force=force,
        config=str(config) if config else None,
        db=str(settings.warehouse.path),
    )
    _print_summary(summary, as_json)
    if summary.get("status") == "busy":
        # nothing traded: another run held the account past the timeout (a scheduled run
        # completes saying so; a command that did not do its work is a failure)
        raise typer.Exit(1)


@app.command()
@user_errors
def eod(
    session_date: DateOpt = None,
    config: ConfigOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the end-of-day flow: metrics, data quality, Slack summary."""
    from papertrade.calendar import MarketCalendar, parse_session_date
    from papertrade.end_of_day import check_account, open_day, resolve_session

    settings = settings_from(config, db)
    day = parse_session_date(session_date) if session_date is not None else None

    now = datetime.now(UTC)
    session = resolve_session(MarketCalendar.for_market(settings.market_data), day, now)
    check_account(settings, session, now)
    if session is None:  # said at once: a flow run would only start Prefect to say it
        said = open_day(settings, day, now)
        assert isinstance(said, dict)  # without a session, the summary saying so
        _print_summary(said, as_json)
        return
    prepare_prefect()
    from flows.end_of_day import end_of_day

    summary = end_of_day(
        # the session chosen here: the run's own scheduled time is now, not a schedule's day
        session_date=session.date,
        config=str(config) if config else None,
        db=str(settings.warehouse.path),
    )
    _print_summary(summary, as_json)


@app.command()
@user_errors
def serve(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Serve both deployments with their schedules from this process (Ctrl-C stops).
    Against the Prefect server of `PREFECT_API_URL`, else one of its own with the UI."""
    settings = settings_from(config, db)
    _preflight(settings)
    prepare_prefect(quiet=False)
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings

    with ExitStack() as stack:
        if not PREFECT_API_URL.value():
            from papertrade.prefect_server import local_server

            log = Path(PREFECT_HOME.value()) / "papertrade-serve-server.log"
            console.print("Starting a Prefect server for this process (about 20 s) ...")
            url = stack.enter_context(local_server(log, timeout=120))
            os.environ["PREFECT_API_URL"] = url  # for the runs' processes
            stack.enter_context(temporary_settings({PREFECT_API_URL: url}))
            console.print(f"Prefect UI at {url.removesuffix('/api')} while this runs")
        _serve(settings, config)


def _serve(settings: Settings, config: Path | None) -> None:
    from prefect import serve as prefect_serve

    from papertrade.deployments import runner_deployments, served_elsewhere, worker_deployments

    taken = worker_deployments()
    if taken:
        names = " and ".join(f"{name} (pool {pool})" for name, pool in taken)
        raise UserError(
            f"{names} already run on a work pool of this Prefect server (`prefect deploy`); "
            "serve needs them to itself: stop the worker and `prefect deployment delete` "
            "them, or serve against another server"
        )
    given = {"config": str(config) if config else None, "db": str(settings.warehouse.path)}
    params = {k: v for k, v in given.items() if v is not None}
    if other := served_elsewhere(params):
        name, theirs = other[0]
        shown = ", ".join(f"{k} {v}" for k, v in sorted(theirs.items())) or "the defaults"
        raise UserError(
            f"{name} is served with {shown} by another papertrade serve of this Prefect "
            "server (one config per server: the deployment names are fixed); serve this "
            f"config against another server, or `prefect deployment pause {name}` if that "
            "serve no longer runs"
        )
    prefect_serve(*runner_deployments(params))


def remove_previous_demo(path: Path) -> None:
    """The last demo's warehouse, its write-ahead log and its lock files (`<db>.*.lock`),
    and nothing else: a user's `papertrade-demo.duckdb.bak` next to it stays."""
    leftovers = [path, path.with_name(path.name + ".wal"), *path.parent.glob(path.name + ".*lock")]
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)


@app.command()
@user_errors
def demo(config: ConfigOpt = None, db: DbOpt = None) -> None:
    """Trade a simulated session through the real flows, then end of day; print a summary."""
    path = db or DEMO_DB
    if db is not None and db.exists():
        raise UserError(f"the demo needs a new warehouse file; {db} exists")
    # the flows read their settings themselves, so the demo's choices travel as the same
    # environment overrides a user would set (and a user's own overrides win)
    for key, value in DEMO_ENV.items():
        os.environ.setdefault(key, value)
    settings = settings_from(config, path)
    _preflight(settings)
    remove_previous_demo(path)
    prepare_prefect()
    from rich.progress import Progress

    from flows.end_of_day import end_of_day
    from flows.trading_interval import trading_interval
    from papertrade.calendar import MarketCalendar

    calendar = MarketCalendar.for_market(settings.market_data)
    session = last_full_session(calendar, datetime.now(UTC))
    times = calendar.intervals(session)
    console.print(
        f"Demo: account [bold]{settings.account.id}[/], {len(settings.universe.symbols)} "
        f"simulated symbols, session {session.date} at {calendar.interval.seconds // 60}-minute "
        f"intervals, strategy {settings.strategy.name} {settings.strategy.params}"
    )
    fills = rejections = 0
    with Progress(console=console, transient=False) as progress:
        bar = progress.add_task("Starting Prefect ...", total=len(times) + 1)
        for ts in times:
            out = trading_interval(as_of=ts, config=_str(config), db=str(path))
            fills += int(out.get("n_fills", 0))
            rejections += int(out.get("n_rejections", 0))
            progress.update(
                bar,
                advance=1,
                description=f"{ts:%H:%M} UTC  fills {fills}  rejections {rejections}",
            )
        progress.update(bar, description="End of day ...")
        report = end_of_day(session_date=session.date, config=_str(config), db=str(path))
        progress.update(bar, advance=1, description="Done")
    _print_demo_summary(settings, path, report)


def _str(path: Path | None) -> str | None:
    return str(path) if path is not None else None


def last_full_session(calendar: Any, now: datetime) -> Any:
    """The latest session that closed before `now` and ran its full hours: an early close
    would show the demo about half the intervals."""
    day: date = now.date()
    for back in range(0, 15):
        session = calendar.session(day - timedelta(days=back))
        if session is not None and session.close <= now and not session.is_early_close:
            return session
    raise UserError("no exchange session in the last two weeks")


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, default=str))
        return
    from rich.table import Table

    table = Table(show_header=False)
    for key, value in summary.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items())
        table.add_row(str(key), "" if value is None else str(value))
    console.print(table)


def _print_demo_summary(settings: Settings, path: Path, report: dict[str, Any]) -> None:
    from rich.table import Table

    from warehouse.connection import connect

    account = settings.account.id
    with connect(path, read_only=True) as conn:
        equity = conn.execute(
            "SELECT ts, cash, positions_value, equity FROM equity WHERE account_id = ? "
            "ORDER BY ts DESC LIMIT 1",
            [account],
        ).fetchone()
        positions = conn.execute(
            "SELECT symbol, quantity, avg_cost, market_price, unrealized_pnl "
            "FROM latest_positions WHERE account_id = ? ORDER BY symbol",
            [account],
        ).fetchall()
        fills = conn.execute(
            "SELECT ts, symbol, side, quantity, price, commission FROM fills "
            "WHERE account_id = ? ORDER BY ts DESC, fill_id DESC LIMIT 10",
            [account],
        ).fetchall()
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM orders WHERE account_id = $a), "
            "(SELECT count(*) FROM fills WHERE account_id = $a), "
            "(SELECT count(*) FROM orders WHERE account_id = $a AND status = 'rejected')",
            {"a": account},
        ).fetchone()
    ts, cash, value, eq = equity
    pnl = eq - settings.account.initial_cash
    console.print(
        f"\n[bold]Account {account}[/] at {ts:%Y-%m-%d %H:%M} UTC: cash {cash:,.2f}, "
        f"positions {value:,.2f}, equity {eq:,.2f} (P&L {pnl:+,.2f}); "
        f"{counts[0]} orders, {counts[1]} fills, {counts[2]} rejected"
    )
    table = Table(title="Positions")
    for col in ("symbol", "quantity", "avg cost", "price", "unrealized P&L"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for sym, qty, cost, price, upnl in positions:
        table.add_row(sym, f"{qty:g}", f"{cost:,.2f}", f"{price:,.2f}", f"{upnl:+,.2f}")
    console.print(table)
    table = Table(title="Last fills")
    for col in ("time (UTC)", "symbol", "side", "quantity", "price", "commission"):
        table.add_column(col)
    for t, sym, side, qty, price, comm in fills:
        table.add_row(f"{t:%H:%M}", sym, side, f"{qty:g}", f"{price:,.2f}", f"{comm:,.2f}")
    console.print(table)
    metrics = report.get("metrics") or {}
    shown = ", ".join(
        f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float) and k in _SHOWN
    )
    console.print(f"End of day: status {report.get('status')}; {shown}")
    console.print(
        f"Warehouse: [bold]{path.resolve()}[/]  (try: papertrade sql --db {path} "
        f'"SELECT * FROM equity_curve LIMIT 5")'
    )


_SHOWN = ("total_return", "sharpe", "max_drawdown", "win_rate")
