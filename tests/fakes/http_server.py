"""A scriptable HTTP server on 127.0.0.1 that records what it is asked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class FakeResponse:
    """What the server answers. `json` is encoded unless `body` (raw bytes) is given;
    `delay` seconds are slept first (longer than the client timeout makes a timeout)."""

    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]  # last value of each parameter
    headers: dict[str, str]  # lower-cased names


Handler = Callable[[RecordedRequest], FakeResponse]


def _not_found(request: RecordedRequest) -> FakeResponse:
    return FakeResponse(404, json={"error": f"no route for {request.path}"})


class FakeHttpServer:
    """Context manager: starts on enter (a free port on 127.0.0.1), stops on exit."""

    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or _not_found
        self.requests: list[RecordedRequest] = []
        self._script: list[tuple[str, FakeResponse]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "server not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, *responses: FakeResponse, path_prefix: str = "") -> None:
        """Answer the next matching requests with `responses`, in order, before the handler."""
        with self._lock:
            self._script.extend((path_prefix, r) for r in responses)

    def _respond(self, request: RecordedRequest) -> FakeResponse:
        with self._lock:
            self.requests.append(request)
            for i, (prefix, response) in enumerate(self._script):
                if request.path.startswith(prefix):
                    del self._script[i]
                    return response
        return self.handler(request)

    def __enter__(self) -> FakeHttpServer:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = RecordedRequest(
                    method="GET",
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                response = fake._respond(request)
                if response.delay:
                    time.sleep(response.delay)
                body = response.body
                if body is None:
                    body = json.dumps(response.json).encode()
                try:
                    self.send_response(response.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in response.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class _Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # clients that time out close sockets mid-answer; that is expected

        self._server = _Server(("127.0.0.1", 0), _Handler)
        # a short poll keeps shutdown (and so each test's teardown) quick
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
