"""A Prefect server of `papertrade serve`'s own, for users who run none.

Prefect's temporary server is a child in the caller's process group, so the Ctrl-C that
stops `serve` stops the server first: the runner then cannot pause its deployments and
retries against a dead address for more than a minute. This one runs in a session of its
own, so it outlives the Ctrl-C until serve has shut down cleanly, and it serves the UI.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from papertrade.errors import PapertradeError


class ServerStartError(PapertradeError):
    """The server did not answer its health check in time."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def local_server(log_path: Path, timeout: float) -> Iterator[str]:
    """`prefect server start` on a free loopback port for the block; yields its API URL.
    Its output goes to `log_path`; it is stopped (SIGTERM, then SIGKILL) when the block
    ends."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        _wait_healthy(server, url, timeout, log_path)
        yield url
    finally:
        _stop(server)


def _wait_healthy(server: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                code = server.returncode
                raise ServerStartError(f"the Prefect server exited ({code}); see {log}")
            try:
                if client.get(f"{url}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
    raise ServerStartError(f"the Prefect server did not start within {timeout:.0f} s; see {log}")


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
