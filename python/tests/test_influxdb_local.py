"""``make up`` / ``make down`` (scripts/influxdb-local.sh): the local InfluxDB the demo leaves
running. It starts once, is found again by a second ``up``, keeps its data under
``$PERFSINK_HOME`` across ``down`` and ``up``, and ``down`` really stops it."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Dict, Iterator

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "influxdb-local.sh"


def script(env: Dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as r:
            return r.status == 204
    except OSError:
        return False


def query(url: str, q: str, db: str = "") -> dict:
    data = urllib.parse.urlencode({"q": q, "db": db}).encode()
    with urllib.request.urlopen(f"{url}/query", data=data, timeout=10) as r:
        return json.load(r)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Dict[str, str]]:
    e = dict(os.environ, PERFSINK_HOME=str(tmp_path / "home"), PERFSINK_INFLUXDB_PORT="0")
    e.pop("INFLUXDB_URL", None)
    yield e
    script(e, "down")


def test_up_down_up_keeps_the_data_and_down_stops_it(env: Dict[str, str]) -> None:
    home = Path(env["PERFSINK_HOME"])
    up = script(env, "up")
    assert up.returncode == 0, up.stderr
    url = (home / "influxdb.url").read_text().strip()
    assert url.startswith("http://127.0.0.1:") and answers(url), up.stdout
    pid = int((home / "influxdb" / "influxd.pid").read_text())

    again = script(env, "up")
    assert again.returncode == 0 and "already running" in again.stdout, again.stdout
    assert int((home / "influxdb" / "influxd.pid").read_text()) == pid
    assert script(env, "url").stdout.strip() == url

    query(url, "CREATE DATABASE kept")
    body = b"kept_point value=42 1700000000000000000"
    req = urllib.request.Request(f"{url}/write?db=kept", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 204

    down = script(env, "down")
    assert down.returncode == 0 and "stopped" in down.stdout, down.stdout
    assert not answers(url)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert script(env, "url").returncode != 0
    assert (home / "influxdb" / "data").is_dir()

    up = script(env, "up")
    assert up.returncode == 0, up.stderr
    url = (home / "influxdb.url").read_text().strip()
    rows = query(url, 'SELECT "value" FROM "kept_point"', db="kept")["results"][0]["series"][0]
    assert rows["values"] == [["2023-11-14T22:13:20Z", 42]]
