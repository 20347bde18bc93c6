"""A fake Slack Web API and incoming webhook on 127.0.0.1 (threaded http.server, port 0).

Point `WebClient(base_url=fake.api_url)` or a webhook sender at `fake.webhook_url`. Every
request is recorded (`fake.requests`: path, headers, parsed params/JSON, raw body). Scripted
responses are queued per path with `fake.script(path, *Reply(...))`; an unscripted call
answers like Slack does when all is well. `files.getUploadURLExternal` hands out an upload
URL on this same server, so the whole `files_upload_v2` flow stays on the loopback.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_PREFIX = "/api/"
WEBHOOK_PATH = "/hooks/T000/B000/secretwebhookpath"


@dataclass(frozen=True)
class Reply:
    """A scripted answer: HTTP status, JSON (or text) body, headers, and a delay first."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]
    raw: bytes


class FakeSlack:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._seq = 0
        self.uploads: dict[str, bytes] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # --- lifecycle ---------------------------------------------------------------------
    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return self.base + API_PREFIX

    @property
    def webhook_url(self) -> str:
        return self.base + WEBHOOK_PATH

    # --- scripting and inspection ------------------------------------------------------
    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path].extend(replies)

    def calls(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _next_ts(self) -> str:
        with self._lock:
            self._seq += 1
            return f"1700000000.{self._seq:06d}"

    def _default(self, path: str, params: dict[str, Any]) -> Reply:
        if path == "/api/chat.postMessage":
            channel = params.get("channel", "")
            return Reply(
                body={"ok": True, "channel": "C0FAKE" if channel else "", "ts": self._next_ts()}
            )
        if path == "/api/files.getUploadURLExternal":
            file_id = f"F{self._next_ts().replace('.', '')}"
            return Reply(
                body={"ok": True, "file_id": file_id, "upload_url": f"{self.base}/upload/{file_id}"}
            )
        if path.startswith("/upload/"):
            return Reply(body="OK - 0")
        if path == "/api/files.completeUploadExternal":
            files = json.loads(params.get("files", "[]"))
            return Reply(
                body={
                    "ok": True,
                    "files": [{"id": f["id"], "title": f.get("title")} for f in files],
                }
            )
        if path == WEBHOOK_PATH:
            return Reply(body="ok")
        return Reply(status=404, body={"ok": False, "error": "unknown_method"})

    def _answer(self, rec: Recorded) -> Reply:
        with self._lock:
            self.requests.append(rec)
            queue = self._scripts.get(rec.path)
            scripted = queue.popleft() if queue else None
        if rec.path.startswith("/upload/"):
            self.uploads[rec.path.rsplit("/", 1)[-1]] = rec.raw
        return scripted if scripted is not None else self._default(rec.path, rec.params)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urlsplit(self.path)
                params: dict[str, Any] = dict(parse_qsl(split.query))
                ctype = self.headers.get("Content-Type", "")
                if split.path.startswith("/upload/"):
                    pass  # file bytes, kept raw
                elif "json" in ctype and raw:
                    params.update(json.loads(raw))
                elif "x-www-form-urlencoded" in ctype and raw:
                    params.update(parse_qsl(raw.decode()))
                rec = Recorded("POST", split.path, dict(self.headers.items()), params, raw)
                reply = fake._answer(rec)
                if reply.delay:
                    time.sleep(reply.delay)
                body = reply.body if reply.body is not None else {"ok": True}
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(reply.status)
                    ctype_out = "text/plain" if isinstance(body, str) else "application/json"
                    self.send_header("Content-Type", ctype_out)
                    self.send_header("Content-Length", str(len(data)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            do_GET = do_POST

        return Handler
