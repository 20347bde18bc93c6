"""How the command line ends on what is not bad input: a provider that is down is one line
and exit 1, Ctrl-C is exit 130, and a bug keeps its own traceback."""

from __future__ import annotations

import pytest
import typer

from paper_broker.market_data.errors import ProviderUnavailable
from papertrade.cli import OneLineUsageErrors, user_errors


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
