"""The demo target (``python -m perfsink.target``): its endpoints, keep-alive, and one write per
response with TCP_NODELAY (JMeter stalls ~40 ms on split writes)."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import perfsink.target as target_mod
from plugin_helpers import PYTHON_DIR


@pytest.fixture
def server() -> Iterator[Tuple[int, Dict[str, List[Any]]]]:
    """The target in this process; records each connection's TCP_NODELAY and each response's writes."""
    seen: Dict[str, List[Any]] = {"nodelay": [], "writes": []}
    srv = target_mod.serve("127.0.0.1", 0)
    handler = srv.RequestHandlerClass

    class Counting(handler):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            super().setup()
            seen["nodelay"].append(self.request.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            real = self.wfile.write

            def write(data: bytes) -> int:
                seen["writes"].append(data)
                return real(data)

            self.wfile.write = write  # type: ignore[method-assign]

    srv.RequestHandlerClass = Counting
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield srv.server_address[1], seen
    srv.shutdown()
    srv.server_close()


def call(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Optional[Any] = None,
    token: Optional[str] = None,
) -> Tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=data, headers=headers)
    r = conn.getresponse()
    raw = r.read()
    ctype = r.getheader("Content-Type", "")
    return r.status, json.loads(raw) if ctype.startswith("application/json") else raw.decode()


def test_no_body_statuses(server: Tuple[int, Dict[str, List[Any]]]) -> None:
    port, seen = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert call(conn, "GET", "/status/204") == (204, "")
    assert call(conn, "GET", "/") == (200, "perfsink demo target\n")  # the connection is still in sync
    conn.close()


def test_endpoints_on_one_keep_alive_connection(server: Tuple[int, Dict[str, List[Any]]]) -> None:
    port, seen = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    assert call(conn, "GET", "/") == (200, "perfsink demo target\n")
    status, items = call(conn, "GET", "/api/items")
    assert status == 200 and [i["id"] for i in items["data"]] == [1, 2, 3]
    assert call(conn, "GET", "/api/items/2")[1]["data"]["name"] == "mouse"
    assert call(conn, "GET", "/api/items/9")[0] == 404
    assert call(conn, "POST", "/api/login", {"password": "x"})[0] == 400
    status, login = call(conn, "POST", "/api/login", {"username": "ann", "password": "x"})
    token = login["data"]["token"]
    assert status == 200 and login["data"]["user"] == "ann" and len(token) == 32
    assert call(conn, "GET", "/api/cart")[0] == 401
    assert call(conn, "GET", "/api/cart", token="forged")[0] == 401
    assert call(conn, "POST", "/api/checkout")[0] == 401
    assert call(conn, "POST", "/api/cart", {"item_id": 3}, token=token) == (200, {"data": {"items": [3]}})
    assert call(conn, "POST", "/api/cart", {"item_id": 42}, token=token)[0] == 400
    assert call(conn, "GET", "/api/cart", token=token) == (200, {"data": {"items": [3]}})
    status, order = call(conn, "POST", "/api/checkout", token=token)
    assert status == 200 and order["data"]["items"] == 1 and order["data"]["order_id"]
    assert call(conn, "GET", "/api/cart", token=token) == (200, {"data": {"items": []}})
    assert call(conn, "DELETE", "/status/418")[0] == 418
    assert call(conn, "GET", "/delay/50") == (200, {"delayed_ms": 50})
    status, echo = call(conn, "PUT", "/echo?x=1", {"a": [1, 2]})
    assert (echo["method"], echo["path"], echo["query"], echo["json"]) == (
        "PUT",
        "/echo",
        "x=1",
        {"a": [1, 2]},
    )
    assert call(conn, "GET", "/nope")[0] == 404
    conn.close()
    assert len(seen["nodelay"]) == 1  # one connection for all 18 requests
    assert seen["nodelay"][0] != 0
    assert len(seen["writes"]) == 18  # each response in a single write
    assert all(w.startswith(b"HTTP/1.1 ") and w.count(b"\r\n\r\n") >= 1 for w in seen["writes"])


def test_connection_close_is_honoured(server: Tuple[int, Dict[str, List[Any]]]) -> None:
    port, _ = server
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"Connection: close" in data


def test_module_prints_its_url_and_serves() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "perfsink.target", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=PYTHON_DIR,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("perfsink target listening on http://127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        assert call(conn, "GET", "/status/204")[0] == 204
        conn.close()
    finally:
        proc.terminate()
        proc.wait(10)
