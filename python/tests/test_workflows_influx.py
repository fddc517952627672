"""Workflow points in a real influxd, through the plugin and the engine: exact schema, counts equal
to the workflow's own step count under one testid, and InfluxDB down for the whole run."""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path
from typing import Dict

import pytest

from plugin_helpers import run_pytest, write_yaml

pytest.importorskip("perfsink.publisher", reason="perfsink.InfluxDBPublisher (wip/pypkg) not merged yet")

WORKFLOW = """
target: {start: perfsink.target}
workflows:
  shop:
    iterations: 3
    concurrent_users: 2
    thresholds: {error_rate: 0.5}
    steps:
      - name: login
        method: POST
        url: ${TARGET_URL}/api/login
        body: {username: "u{{vu}}"}
        extract: {token: "$.data.token"}
      - name: cart
        url: ${TARGET_URL}/api/cart
        headers: {Authorization: "Bearer {{token}}"}
        iterations: 2
      - name: broken
        url: ${TARGET_URL}/status/503
"""


def summary_counts(out: str, nodeid: str) -> Dict[str, int]:
    m = re.search(rf"^\w+ +{re.escape(nodeid)}: requests=(\d+) errors=(\d+)", out, re.M)
    assert m, out
    return {"requests": int(m.group(1)), "errors": int(m.group(2))}


def test_points_schema_and_counts_under_one_testid(tmp_path: Path, influxd) -> None:
    db = f"wf_{uuid.uuid4().hex[:8]}"
    testid = f"t-{uuid.uuid4().hex[:8]}"
    influxd.query(db, f'CREATE DATABASE "{db}"')
    write_yaml(tmp_path, "shop.yml", WORKFLOW)
    env = {"INFLUXDB_URL": influxd.url, "INFLUXDB_DB": db}
    r = run_pytest(tmp_path, "shop.yml", "--perf-testid", testid, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"perfsink: testid={testid}; InfluxDB {influxd.url}, db {db}" in r.stdout
    counts = summary_counts(r.stdout, "shop.yml::workflow::shop")
    assert counts == {"requests": 2 * 3 * 4, "errors": 2 * 3}  # the runner's own count

    rows = influxd.rows(db, "SELECT * FROM workflow_step")
    assert len(rows) == counts["requests"]
    assert {row["testid"] for row in rows} == {testid}
    assert influxd.field_types(db, "workflow_step") == {
        "duration": "float",
        "success_count": "integer",
        "iteration": "integer",
    }
    tag_keys = {r["tagKey"] for r in influxd.rows(db, "SHOW TAG KEYS FROM workflow_step")}
    assert tag_keys == {"workflow", "step", "status", "action", "testid"}
    by_step: Dict[str, list] = {}
    for row in rows:
        by_step.setdefault(row["step"], []).append(row)
        assert row["workflow"] == "shop" and row["action"] == "api_call"
        assert row["success_count"] == (1 if row["status"] == "success" else 0)
        assert isinstance(row["duration"], float) and 0 < row["duration"] < 5
    assert {s: len(v) for s, v in by_step.items()} == {"login": 6, "cart": 12, "broken": 6}
    assert {r["status"] for r in by_step["login"] + by_step["cart"]} == {"success"}
    assert {r["status"] for r in by_step["broken"]} == {"failure"}
    assert sorted(r["iteration"] for r in by_step["login"]) == [0, 0, 1, 1, 2, 2]
    # timestamps are the calls' ends: within the run, not the server's arrival time
    times = sorted(row["time"] for row in rows)
    assert times[-1] - times[0] < 60e9 and abs(times[-1] / 1e9 - time.time()) < 120


def test_influxdb_down_for_the_whole_run(tmp_path: Path) -> None:
    with socket.socket() as s:  # nothing listens there
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    write_yaml(tmp_path, "shop.yml", WORKFLOW)
    start = time.monotonic()
    r = run_pytest(tmp_path, "shop.yml", env={"INFLUXDB_URL": dead}, timeout=90)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stdout + r.stderr  # the items still run and pass
    assert summary_counts(r.stdout, "shop.yml::workflow::shop") == {"requests": 24, "errors": 6}
    m = re.search(r"^WARNING: (\d+) workflow points were not written to InfluxDB", r.stdout, re.M)
    assert m and int(m.group(1)) == 24, r.stdout
    # nothing hangs: the plugin's publisher gives up after its 5 s close timeout
    assert elapsed < 30, f"the run took {elapsed:.1f} s"
