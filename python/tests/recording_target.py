"""A local HTTP target for the runner tests that records every request it gets.

``/status/<code>`` answers with that status, anything else 200 ``{"ok": true}``. Each answer is
one write on a TCP_NODELAY socket: with http.server's separate header and body writes, keep-alive
clients (JMeter) stall ~40 ms per request on Nagle + delayed ACK.
"""

from __future__ import annotations

import http.server
import socket
import threading
from dataclasses import dataclass
from typing import Dict, List


@dataclass
class Request:
    method: str
    path: str  # with the query string, as sent
    headers: Dict[str, str]  # names lower-cased
    body: bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        with self.server.lock:
            self.server.requests.append(request)
        status = 200
        if self.path.startswith("/status/"):
            status = int(self.path.split("/")[2].split("?")[0])
        payload = b'{"ok": true}'
        reason = http.HTTPStatus(status).phrase
        self.wfile.write(
            b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (status, reason.encode(), len(payload), payload)
        )

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: List[Request] = []


class RecordingTarget:
    """``with RecordingTarget() as t:`` serves on ``t.url`` until the block ends."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def requests(self) -> List[Request]:
        with self._server.lock:
            return list(self._server.requests)

    def __enter__(self) -> "RecordingTarget":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
