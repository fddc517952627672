"""A tiny demo HTTP target for the examples: ``python -m perfsink.target [--port N] [--host H]``.

Prints ``perfsink target listening on http://HOST:PORT`` once it accepts connections (``--port 0``
picks a free port; the plugin reads that line). HTTP/1.1 keep-alive, one thread per connection,
``TCP_NODELAY``, and every response leaves in a single write: Python's ``http.server`` writes the
headers and the body separately, and with Nagle's algorithm a client that delays its ACKs
(JMeter) then waits ~40 ms on a good share of requests.

Endpoints (any other path: 404):
  GET  /                 200 text
  GET  /api/items        200 {"data": [{"id", "name", "price"}, ...]}
  GET  /api/items/<id>   200 {"data": item} or 404
  POST /api/login        body {"username": ..., "password": ...} -> 200 {"data": {"token": ...}}
                         (400 without a username)
  GET  /api/cart         Authorization: Bearer <token from /api/login> -> 200 {"data": {"items": [...]}}, else 401
  POST /api/cart         same auth; body {"item_id": n} adds an item -> 200
  POST /api/checkout     same auth -> 200 {"data": {"order_id": ..., "items": n}}, empties the cart
  *    /status/<code>    answers <code>
  *    /delay/<ms>       answers 200 after <ms> milliseconds
  *    /echo             200 {"method", "path", "query", "headers", "body", "json"}: what was received
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from typing import Any, Dict, List, Optional, Tuple

ITEMS = [
    {"id": 1, "name": "keyboard", "price": 49.0},
    {"id": 2, "name": "mouse", "price": 19.5},
    {"id": 3, "name": "monitor", "price": 189.0},
]
MAX_BODY = 1 << 20
REASONS = {200: "OK", 201: "Created", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}


class Store:
    """Sessions and carts, shared by all connections."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.carts: Dict[str, List[int]] = {}  # token -> item ids

    def login(self) -> str:
        token = secrets.token_hex(16)
        with self.lock:
            self.carts[token] = []
        return token

    def cart(self, token: Optional[str]) -> Optional[List[int]]:
        with self.lock:
            return None if token is None else self.carts.get(token)


Response = Tuple[int, Any]  # (status, JSON-able body or str)


def _bearer(headers: Dict[str, str]) -> Optional[str]:
    value = headers.get("authorization", "")
    return value[7:].strip() if value.lower().startswith("bearer ") else None


def route(store: Store, method: str, path: str, query: str, headers: Dict[str, str], body: bytes) -> Response:
    """The demo application: pure request -> (status, body)."""
    parsed: Any = None
    if body:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
    parts = [p for p in path.split("/") if p]
    if not parts:
        return 200, "perfsink demo target\n"
    if parts[0] == "status" and len(parts) == 2 and parts[1].isdigit():
        code = int(parts[1])
        return (code, {"status": code}) if 100 <= code <= 599 else (400, {"error": "bad status"})
    if parts[0] == "delay" and len(parts) == 2 and parts[1].isdigit():
        time.sleep(min(int(parts[1]), 60_000) / 1000)
        return 200, {"delayed_ms": int(parts[1])}
    if parts == ["echo"]:
        return 200, {
            "method": method,
            "path": path,
            "query": query,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "json": parsed,
        }
    if parts[0] != "api":
        return 404, {"error": "not found"}
    if parts[1:] == ["items"] and method == "GET":
        return 200, {"data": ITEMS}
    if parts[1:2] == ["items"] and len(parts) == 3 and method == "GET":
        item = next((i for i in ITEMS if str(i["id"]) == parts[2]), None)
        return (200, {"data": item}) if item else (404, {"error": "no such item"})
    if parts[1:] == ["login"] and method == "POST":
        if not isinstance(parsed, dict) or not parsed.get("username"):
            return 400, {"error": "username required"}
        return 200, {"data": {"token": store.login(), "user": parsed["username"]}}
    if parts[1:] in (["cart"], ["checkout"]):
        cart = store.cart(_bearer(headers))
        if cart is None:
            return 401, {"error": "missing or unknown bearer token"}
        with store.lock:
            if parts[1] == "cart" and method == "GET":
                return 200, {"data": {"items": list(cart)}}
            if parts[1] == "cart" and method == "POST":
                item_id = parsed.get("item_id") if isinstance(parsed, dict) else None
                if not isinstance(item_id, int) or not any(i["id"] == item_id for i in ITEMS):
                    return 400, {"error": "unknown item_id"}
                cart.append(item_id)
                return 200, {"data": {"items": list(cart)}}
            if parts[1] == "checkout" and method == "POST":
                order = {"order_id": secrets.token_hex(6), "items": len(cart)}
                cart.clear()
                return 200, {"data": order}
    return 404, {"error": "not found"}


class Handler(socketserver.StreamRequestHandler):
    """Minimal HTTP/1.1 with keep-alive; each response is one ``sendall``."""

    store: Store  # set on the subclass built by serve()

    def setup(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def handle(self) -> None:
        while self._one():
            pass

    def _one(self) -> bool:
        line = self.rfile.readline(65537)
        if not line:
            return False
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            self._send(400, {"error": "bad request line"}, close=True)
            return False
        headers: Dict[str, str] = {}
        while True:
            h = self.rfile.readline(65537)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY or "chunked" in headers.get("transfer-encoding", ""):
            self._send(400, {"error": "body too large or chunked"}, close=True)
            return False
        body = self.rfile.read(length) if length else b""
        split = urllib.parse.urlsplit(target)
        close = headers.get("connection", "").lower() == "close" or version == "HTTP/1.0"
        try:
            status, payload = route(self.store, method.upper(), split.path, split.query, headers, body)
        except Exception as exc:  # a bug in the demo app answers 500, never kills the connection
            status, payload = 500, {"error": str(exc)}
        self._send(status, payload, close=close, head=method.upper() == "HEAD")
        return not close

    def _send(self, status: int, payload: Any, close: bool = False, head: bool = False) -> None:
        if isinstance(payload, str):
            data, ctype = payload.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, ctype = json.dumps(payload).encode("utf-8"), "application/json"
        if status < 200 or status in (204, 304):  # these never carry a body (RFC 9110)
            length, data = "", b""
        else:
            length = f"Content-Type: {ctype}\r\nContent-Length: {len(data)}\r\n"
        head_lines = (
            f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}\r\n{length}"
            f"Connection: {'close' if close else 'keep-alive'}\r\n\r\n"
        )
        self.wfile.write(head_lines.encode("latin-1") + (b"" if head else data))


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def serve(host: str = "127.0.0.1", port: int = 0) -> Server:
    """A started-but-not-serving server (call ``serve_forever``); ``server_address`` has the port."""
    handler = type("DemoHandler", (Handler,), {"store": Store()})
    return Server((host, port), handler)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perfsink.target", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 picks a free port (default 8080)")
    args = parser.parse_args(argv)
    server = serve(args.host, args.port)
    host, port = server.server_address[0], server.server_address[1]
    print(f"perfsink target listening on http://{host!s}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
