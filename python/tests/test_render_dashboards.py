"""The dashboard pictures (scripts/render-dashboards.py) drawn from data written through the real
paths into a private influxd:

- ``perfsink k6`` with ``PERFSINK_MODE=both`` on a script with checks and a failing request name:
  raw k6 samples and the ``<m>_agg`` points, testid ``<run>-k6`` (as ``make demo`` names its parts);
- a unified YAML run through pytest in a child process: a JMeter plan with perfsink's listener and a
  Python workflow, testid ``<run>``;
- self-metrics of every sink (a short ``PERFSINK_SELF_METRICS_INTERVAL_MS``).

``<run>`` is named as ``make demo`` names its runs (``demo-<yyyymmdd>-<hhmmss>``), and the renderer
runs as ``make pictures`` runs it without ``TESTID``: it must find that run, each dashboard must
pick the testid that fills it (the k6 ones ``<run>-k6``), every PNG must be a sane picture, and
every panel of the two k6 dashboards must have had data.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from influxd import Influxd
from dashboard_data import K6_SCRIPT, perfsink_bin
from plugin_helpers import run_pytest, write_yaml

REPO = Path(__file__).resolve().parents[2]
RENDER = REPO / "scripts" / "render-dashboards.py"
DASHBOARDS = REPO / "docker" / "grafana" / "dashboards"
DB = "k6"
SELF_METRICS_MS = "300"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIG_WIDTH_PX = 1200  # scripts/dashboard_drawing.py: 12 in at 100 dpi
MAX_PNG_BYTES = 300 * 1024
EXPECTED_UIDS = {"perfsink-k6", "perfsink-k6-agg", "perfsink-jmeter", "perfsink-workflows", "perfsink-health"}

UNIFIED = """
test_info:
  test_suite_name: pictures
target:
  start: perfsink.target
  port: 0
jmeter_tests:
  shop_api:
    scenarios:
      - name: items
        url: ${TARGET_URL}/api/items?page=1
      - name: missing item
        url: ${TARGET_URL}/api/items/999999
    thread_group_config:
      num_threads: 2
      ramp_time: 0
      duration: 3
workflows:
  shop:
    iterations: 3
    concurrent_users: 2
    steps:
      - name: login
        method: POST
        url: ${TARGET_URL}/api/login
        body: {username: "u{{vu}}", password: demo}
      - name: browse
        url: ${TARGET_URL}/api/items
"""

def _k6_both(tmp: Path, influx: Influxd, testid: str) -> "subprocess.CompletedProcess[str]":
    """``perfsink k6`` writing raw and aggregated points against the demo target."""
    from perfsink.target import serve

    script = tmp / "checks.js"
    script.write_text(K6_SCRIPT)
    server = serve()
    host, port = server.server_address[0], server.server_address[1]
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INFLUXDB_", "K6_", "PERFSINK_"))}
        env.update({k: os.environ[k] for k in ("PERFSINK_LIB", "PERFSINK_BIN") if k in os.environ})
        env.update(
            {
                "INFLUXDB_URL": influx.url,
                "INFLUXDB_DB": DB,
                "PERFSINK_MODE": "both",
                "PERFSINK_TAGS": f"testid={testid}",
                "PERFSINK_SELF_METRICS_INTERVAL_MS": SELF_METRICS_MS,
                "TARGET_URL": f"http://{host!s}:{port}",
                "K6_NO_USAGE_REPORT": "true",
            }
        )
        return subprocess.run(
            [perfsink_bin(), "k6", "run", "--quiet", str(script)],
            env=env,
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Influxd, str]]:
    """A private influxd with database k6: ``<run>-k6`` from k6, ``<run>`` from JMeter and a workflow."""
    if shutil.which("k6") is None:
        pytest.skip("k6 is not on PATH (scripts/setup.sh installs it)")
    pytest.importorskip("matplotlib", reason="scripts/setup.sh installs matplotlib")
    if not DASHBOARDS.is_dir():
        pytest.skip(f"no dashboards in {DASHBOARDS}")
    tmp = tmp_path_factory.mktemp("pictures")
    run = f"demo-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"  # as make demo names its runs
    with Influxd() as influx:
        influx.query(DB, f'CREATE DATABASE "{DB}"')
        k6 = _k6_both(tmp, influx, f"{run}-k6")
        assert k6.returncode in (0, 99), k6.stdout + k6.stderr  # 99: k6's failed-threshold code
        write_yaml(tmp, "pictures_test.yml", UNIFIED)
        env = {"INFLUXDB_URL": influx.url, "INFLUXDB_DB": DB, "PERFSINK_SELF_METRICS_INTERVAL_MS": SELF_METRICS_MS}
        unified = run_pytest(tmp, "pictures_test.yml", "--perf-testid", run, env=env, timeout=120)
        out = unified.stdout + unified.stderr
        for kind, name in (("jmeter", "shop_api"), ("workflow", "shop")):
            assert f"::{kind}::{name}" in out, out[-3000:]
        yield influx, run


def _render(influx: Influxd, tmp: Path, *args: str) -> Tuple["subprocess.CompletedProcess[str]", List[Dict[str, Any]]]:
    report = tmp / "report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
    proc = subprocess.run(
        [sys.executable, str(RENDER), "--influxdb-url", influx.url, "--db", DB, "--out", str(tmp / "img"), "--report", str(report), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(proc.stdout, proc.stderr)
    return proc, json.loads(report.read_text()) if report.exists() else []


def _png_size(path: Path) -> Tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking the signature and the chunk's CRC."""
    import zlib

    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path}: not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, path
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert zlib.crc32(data[12 : 16 + length]) == crc, f"{path}: IHDR CRC mismatch"
    assert data.rstrip(b"\0")[-8:-4] == b"IEND", f"{path}: no IEND chunk (truncated?)"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_every_dashboard_is_drawn_from_its_run(written: Tuple[Influxd, str], tmp_path: Path) -> None:
    influx, run = written
    proc, report = _render(influx, tmp_path)  # no --testid: the latest demo run
    assert proc.returncode in (0, 3), proc.stderr  # 3: some panel had no data (listed on stderr)
    by_uid = {d["uid"]: d for d in report}
    assert set(by_uid) == EXPECTED_UIDS, report

    for uid, d in by_uid.items():
        assert "error" not in d, d
        png = Path(d["png"])
        assert png == tmp_path / "img" / f"{uid}.png" and png.is_file(), d
        width, height = _png_size(png)
        assert width == FIG_WIDTH_PX and 400 <= height <= 3000, (uid, width, height)
        assert 10 * 1024 < png.stat().st_size <= MAX_PNG_BYTES, (uid, png.stat().st_size)
        assert d["bytes"] == png.stat().st_size
        assert d["interval"] in ("100ms", "200ms", "500ms", "1s"), d  # seconds of data: fine steps
        filled = [p["title"] for p in d["panels"] if p["has_data"]]
        assert len(filled) >= len(d["panels"]) // 2, (uid, d["panels"])

    # Each dashboard shows the run that fills it: k6 from `<run>-k6`, the rest from `<run>`.
    assert by_uid["perfsink-k6"]["testid"] == f"{run}-k6"
    assert by_uid["perfsink-k6-agg"]["testid"] == f"{run}-k6"
    assert by_uid["perfsink-jmeter"]["testid"] == run
    assert by_uid["perfsink-workflows"]["testid"] == run

    # Every panel of the k6 dashboards had rows, and the panel reports say what they read.
    for uid in ("perfsink-k6", "perfsink-k6-agg"):
        panels = by_uid[uid]["panels"]
        assert len(panels) >= 10, panels
        empty = [p["title"] for p in panels if not p["has_data"] or p["rows"] == 0]
        assert not empty, f"{uid}: panels without data: {empty}"
    k6_reads = {m for p in by_uid["perfsink-k6"]["panels"] for m in p["measurements"]}
    assert {"http_reqs", "http_req_duration", "checks", "vus"} <= k6_reads, k6_reads
    agg_reads = {m for p in by_uid["perfsink-k6-agg"]["panels"] for m in p["measurements"]}
    assert any(m.endswith("_agg") for m in agg_reads), agg_reads
    assert proc.stdout.splitlines()[0].endswith(f"testid {run}"), proc.stdout
    assert f"perfsink-k6.png: perfsink · k6: testid {run}-k6" in proc.stdout


def test_an_unknown_testid_draws_nothing(written: Tuple[Influxd, str], tmp_path: Path) -> None:
    influx, _run = written
    proc, report = _render(influx, tmp_path, "--testid", "no-such-run", "--uid", "perfsink-k6")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no point with testid no-such-run" in proc.stderr
    assert report == [{"uid": "perfsink-k6", "title": report[0]["title"], "error": report[0]["error"]}]
    assert not (tmp_path / "img" / "perfsink-k6.png").exists()
