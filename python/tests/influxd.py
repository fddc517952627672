"""Throw-away InfluxDB 1.x (``influxd``) instances for the Python tests.

Each instance has its own temporary directory and loopback ports picked by the kernel (the HTTP
port is read from influxd's ``Listening on HTTP ... addr=`` log line), so parallel tests never
race for a port. ``stop()`` then ``start_again()`` keeps the port and the data: an outage.
``$PERFSINK_INFLUXD`` names another binary; the default is Debian's ``/usr/bin/influxd``
(``scripts/setup.sh`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Optional

START_TIMEOUT_S = 30.0

_CONFIG = """reporting-enabled = false
bind-address = "127.0.0.1:0"
[meta]
  dir = "{dir}/meta"
  logging-enabled = false
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  index-version = "inmem"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
  suppress-write-log = true
[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
"""


def influxd_binary() -> str:
    found = os.environ.get("PERFSINK_INFLUXD") or shutil.which("influxd") or "/usr/bin/influxd"
    if not os.path.exists(found):
        raise RuntimeError("influxd not found: run scripts/setup.sh (Debian package influxdb)")
    return found


class Influxd:
    """A running (or stopped) influxd with its own temporary directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="perfsink-pytest-influxd."))
        self.port = 0
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._launch()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: the value for ``INFLUXDB_URL``."""
        return f"http://127.0.0.1:{self.port}"

    def _launch(self) -> None:
        conf = self.dir / "influxdb.conf"
        conf.write_text(_CONFIG.format(dir=self.dir, port=self.port))
        log = open(self.dir / "influxd.log", "ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
        self._proc = subprocess.Popen(
            [influxd_binary(), "run", "-config", str(conf)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"influxd exited: {self.log_tail()}")
            if self.port == 0:
                m = re.findall(r'Listening on HTTP".*?addr=[^ ]*:(\d+)', self.log_text())
                if m:
                    self.port = int(m[-1])
            if self.port and self._ping():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"influxd did not answer /ping in {START_TIMEOUT_S} s: {self.log_tail()}")

    def _ping(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as r:
                return r.status == 204
        except OSError:
            return False

    def log_text(self) -> str:
        try:
            return (self.dir / "influxd.log").read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 5) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """Stops influxd (SIGTERM, then SIGKILL after 10 s); the data stays."""
        p, self._proc = self._proc, None
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    def start_again(self) -> None:
        """Starts influxd again on the same port and data (after ``stop``)."""
        deadline = time.monotonic() + 10
        while True:
            try:
                self._launch()
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        self.stop()
        if not os.environ.get("PERFSINK_KEEP_INFLUX_DIR"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def query(self, db: str, q: str) -> Any:
        """Runs InfluxQL ``q`` in ``db`` (POST /query, epoch ns); the decoded JSON."""
        body = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"}).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=body, timeout=30) as r:
            return json.loads(r.read())

    def rows(self, db: str, q: str) -> list[dict[str, Any]]:
        """The rows of every series of the first statement, as dicts (tags included)."""
        out: list[dict[str, Any]] = []
        result = self.query(db, q)["results"][0]
        if "error" in result:
            raise RuntimeError(f"{q}: {result['error']}")
        for s in result.get("series", []):
            for values in s["values"]:
                row = dict(zip(s["columns"], values))
                row.update(s.get("tags", {}))
                out.append(row)
        return out

    def field_types(self, db: str, measurement: str) -> dict[str, str]:
        """``SHOW FIELD KEYS``: field name to type (float, integer, string, boolean)."""
        return {r["fieldKey"]: r["fieldType"] for r in self.rows(db, f'SHOW FIELD KEYS FROM "{measurement}"')}

    def __enter__(self) -> "Influxd":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
