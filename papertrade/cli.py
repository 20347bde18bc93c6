"""The `papertrade` command line. Every command takes `--config` and `--db` after its name.

Exit codes: 0 success, 2 bad input (one line naming what is wrong; nothing written),
1 failure. Heavy modules (Prefect, DuckDB, Great Expectations) are imported inside the
commands that need them, so `papertrade --help` and `papertrade backtest` stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from typer._click import exceptions as click_errors  # Typer vendors its own Click
from typer.core import TyperGroup

from paper_broker.market_data.errors import MarketDataError, ProviderAuthError, ReplayDataError
from papertrade.errors import PapertradeError, UserError
from papertrade.settings import Settings, load_settings
from strategies.errors import StrategyError


class OneLineUsageErrors(TyperGroup):
    """Usage errors (an unknown command or option, a missing argument, a value Click cannot
    convert) as one line on stderr and exit 2, like every other bad input; Click's own
    rendering is a usage block plus a boxed message. A bare `papertrade` still shows help."""

    def main(  # type: ignore[override]
        self,
        args: list[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or not argv:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            outcome = super().main(argv, prog_name, complete_var, False, **extra)
        except click_errors.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else "papertrade"
            message = " ".join(exc.format_message().split())
            typer.echo(f"error: {where}: {message}", err=True)
            sys.exit(exc.exit_code)
        except click_errors.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        except typer.Abort:  # end of input at a prompt; Ctrl-C arrives as exit code 130
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        # without standalone mode Click returns the exit code of a `typer.Exit`
        sys.exit(outcome if isinstance(outcome, int) else 0)


app = typer.Typer(
    name="papertrade",
    cls=OneLineUsageErrors,
    help="Paper trading on a schedule: a simulated broker, Prefect flows, a DuckDB warehouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
kill_switch_app = typer.Typer(help="Show or change the trading state (the kill switch).")
app.add_typer(kill_switch_app, name="kill-switch")

console = Console()
err_console = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Config file (default ./papertrade.toml or $PAPERTRADE_CONFIG)."),
]
DbOpt = Annotated[
    Path | None,
    typer.Option("--db", help="DuckDB file (default from config, or $PAPERTRADE_DB)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _account_given(value: str | None) -> str | None:
    """An empty `--account-id` (a script's unset variable) is bad input: taken as absent,
    it named the config's account, and `kill-switch on` halted that one instead."""
    if value is not None and not value.strip():
        raise typer.BadParameter("must not be empty (leave the option out for the config's)")
    return value


AccountOpt = Annotated[
    str | None,
    typer.Option("--account-id", help="Account (default from config).", callback=_account_given),
]

F = TypeVar("F", bound=Callable[..., Any])

# Errors a user can fix from outside the code: a bad config, strategy or parameter, missing
# provider keys, a bad replay file. The core raises its own types (it does not import the
# application), so the shell lists them here.
USER_FIXABLE: tuple[type[Exception], ...] = (
    UserError,
    StrategyError,
    ProviderAuthError,
    ReplayDataError,
)


def user_errors(func: F) -> F:
    """Bad input: one line and exit 2. The application's own failures (a busy warehouse,
    a provider down): one line and exit 1. Anything else is a bug and keeps its traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except USER_FIXABLE as exc:
            err_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except Exception as exc:
            if not _is_failure(exc):
                raise
            # one line: DuckDB puts the cause on a later one ("... Original error: No space")
            text = " ".join(str(exc).split())
            err_console.print(f"failed: {text}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def _check_prefect_home() -> None:
    """The temporary server keeps its database in PREFECT_HOME: one it cannot write made
    it wait out its whole start-up timeout, then fail with a traceback."""
    from prefect.settings import PREFECT_HOME

    from warehouse.connection import unwritable

    home = Path(PREFECT_HOME.value()).expanduser()
    if reason := unwritable(home, directory=True):
        raise UserError(
            f"PREFECT_HOME {home} cannot be written ({reason}): Prefect's temporary server"
            " keeps its database there; point PREFECT_HOME at a writable directory"
        )


def _is_failure(exc: BaseException | None) -> bool:
    """The application's own failures (a busy warehouse, a provider down), and DuckDB's
    when it cannot read or write a file (damaged, truncated, a full disk): not bad input and
    not a bug, so one line and exit 1. (DuckDB is looked up, not imported: a command that
    never loaded it cannot have raised its errors.)"""
    if isinstance(exc, (PapertradeError, MarketDataError)):
        return True
    duckdb = sys.modules.get("duckdb")
    return duckdb is not None and isinstance(exc, duckdb.IOException)


def _known_failure_filter(record: logging.LogRecord) -> bool:
    """A failed run's log line keeps its message but not its traceback when the failure
    is one the command reports in a line of its own (a busy warehouse, a provider down,
    bad input): a stack of Prefect's frames says nothing more."""
    exc = record.exc_info[1] if record.exc_info else None
    if isinstance(exc, USER_FIXABLE) or _is_failure(exc):
        record.exc_info = None
        record.exc_text = None
    return True


def settings_from(config: Path | None, db: Path | None) -> Settings:
    return load_settings(config=config, db=db)


def prepare_prefect(quiet: bool = True) -> None:
    """Before a command imports Prefect, which reads its settings at import: no telemetry
    (offline, the temporary server logs an error for each attempt to phone home), 120 s for
    the temporary server to start (about 20 s on a fresh `PREFECT_HOME` of two cores,
    Prefect's own limit), and with `quiet` no INFO chatter in the command's own output. A
    user's own settings win. Then a `PREFECT_API_URL` that no server answers is refused in
    one line instead of a run's traceback (only a refused connection counts: Prefect Cloud
    answers its health check only with credentials)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    if quiet:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    # an unusable PREFECT_HOME gets a message of its own below, not Prefect's import warning
    warnings.filterwarnings("ignore", "Failed to create the Prefect home directory")
    import httpx
    from prefect.settings import PREFECT_API_URL

    for name in ("prefect.flow_runs", "prefect.task_runs"):
        logging.getLogger(name).addFilter(_known_failure_filter)
    url = PREFECT_API_URL.value()
    if not url:
        _check_prefect_home()
        return
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10)
    except httpx.TransportError:
        raise UserError(
            f"no Prefect server answers at {url} (PREFECT_API_URL): start it, or unset the "
            "variable to run on a temporary server"
        ) from None


# The command modules register themselves on `app`; imported last, they find it defined.
from papertrade import cli_backtest, cli_flows, cli_replay, cli_warehouse  # noqa: E402


def _one_line_summaries(typer_app: typer.Typer) -> None:
    """The command list shows each command's first docstring paragraph as it is wrapped
    in the source (a line break mid-sentence); a command's own `--help` rewraps it."""
    for command in typer_app.registered_commands:
        doc = command.callback.__doc__ if command.callback else None
        if command.short_help is None and doc:
            command.short_help = " ".join(doc.split("\n\n")[0].split())


_one_line_summaries(app)
_one_line_summaries(kill_switch_app)

__all__ = ["app", "cli_backtest", "cli_flows", "cli_replay", "cli_warehouse", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    # `python -m papertrade.cli` runs this file as `__main__`, and the command modules
    # register on `papertrade.cli`, another copy of it: this copy's `app` had only
    # `kill-switch` ("No such command 'demo'"), so run that one
    from papertrade.cli import main as _main

    _main()
