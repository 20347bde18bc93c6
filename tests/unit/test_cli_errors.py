"""How the command line ends on what is not bad input: a provider that is down is one line
and exit 1, Ctrl-C is exit 130, and a bug keeps its own traceback."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest
import typer

from paper_broker.market_data.errors import ProviderUnavailable
from papertrade import cli
from papertrade.cli import OneLineUsageErrors, user_errors
from warehouse.errors import WarehouseBusy


def test_a_provider_down_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    @user_errors
    def fetch() -> None:
        raise ProviderUnavailable("polygon", "gave up after 4 attempt(s)", attempts=4)

    with pytest.raises(typer.Exit) as exited:
        fetch()

    assert exited.value.exit_code == 1
    assert capsys.readouterr().err == "failed: polygon: gave up after 4 attempt(s)\n"


def _app(error: BaseException) -> typer.Typer:
    app = typer.Typer(cls=OneLineUsageErrors)

    @app.command()
    def serve() -> None:
        raise error

    @app.command()
    def other() -> None: ...

    return app


def test_ctrl_c_is_exit_130() -> None:
    with pytest.raises(SystemExit) as exited:
        _app(KeyboardInterrupt())(["serve"])

    assert exited.value.code == 130


def test_an_unexpected_error_propagates_as_itself() -> None:
    with pytest.raises(ConnectionError, match="server gone"):
        _app(ConnectionError("server gone"))(["serve"])


@pytest.mark.parametrize(
    ("exc", "traceback_kept"),
    [(WarehouseBusy(Path("w.duckdb"), 30, "locked"), False), (RuntimeError("a bug"), True)],
)
def test_a_failed_runs_log_keeps_the_traceback_of_bugs_only(
    exc: Exception, traceback_kept: bool
) -> None:
    try:
        raise exc
    except Exception:
        record = logging.LogRecord("prefect.flow_runs", 40, "", 0, "failed", (), sys.exc_info())

    assert cli._known_failure_filter(record)
    assert (record.exc_info is not None) is traceback_kept
