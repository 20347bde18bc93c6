"""The Prefect server `papertrade serve` starts for itself: up and healthy inside the block,
gone after it, and in a session of its own so a terminal's Ctrl-C reaches serve alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from papertrade.prefect_server import ServerStartError, local_server

pytestmark = pytest.mark.flows


def _servers_on(url: str = "") -> list[int]:
    port = url.split(":")[-1].split("/")[0] if url else ""
    out = subprocess.run(
        ["pgrep", "-f", f"prefect server start --host 127.0.0.1 --port {port}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return [int(pid) for pid in out.stdout.split()]


def test_local_server_runs_for_the_block_in_its_own_session(tmp_path: Path) -> None:
    with local_server(tmp_path / "server.log", timeout=120) as url:
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        (pid,) = _servers_on(url)
        assert os.getsid(pid) != os.getsid(0)
        assert os.getpgid(pid) != os.getpgid(0)

    assert _servers_on(url) == []
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=2)


def test_a_server_that_does_not_come_up_in_time_is_stopped(tmp_path: Path) -> None:
    before = _servers_on()

    with (
        pytest.raises(ServerStartError, match="did not start within"),
        local_server(tmp_path / "server.log", timeout=0.5),
    ):
        pytest.fail("the block must not run")

    assert _servers_on() == before
