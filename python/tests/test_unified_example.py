"""The shipped examples: they load without warnings, collect the advertised items, their workflows
pass against the demo target the file starts itself, and the quick start lands all three runners
in InfluxDB under one testid with the counts each runner reports."""

from __future__ import annotations

import importlib.util
import re
import shutil
import socket
import time
import uuid
from pathlib import Path
from typing import Dict

import pytest

from perfsink.unified.loader import load_suite
from plugin_helpers import run_pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "unified_performance_test.yml"
WORKFLOWS = REPO / "examples" / "workflows"


def test_examples_load_cleanly() -> None:
    suite = load_suite(EXAMPLE)
    assert suite.warnings == []
    assert [t.name for t in suite.k6_tests] == ["browse_load"]
    assert [t.name for t in suite.jmeter_tests] == ["items_api"]
    assert [w.name for w in suite.workflows] == ["shop_journey"]
    assert any(s.extract for s in suite.workflows[0].steps)
    for path in WORKFLOWS.glob("*.yml"):
        suite = load_suite(path)
        assert suite.warnings == [] and suite.workflows, path
        steps = [s.name for s in suite.workflows[0].steps]
        assert steps[0] == "login" and steps[-1] == "checkout"
        assert suite.workflows[0].steps[0].extract  # the login's token feeds the later steps


def test_quick_start_collects_three_kinds(tmp_path: Path) -> None:
    r = run_pytest(REPO, "--collect-only", "-q", "--strict-markers", str(EXAMPLE.relative_to(REPO)))
    assert r.returncode == 0, r.stdout + r.stderr
    ids = [line for line in r.stdout.splitlines() if "::" in line]
    assert ids == [
        "examples/unified_performance_test.yml::k6::browse_load",
        "examples/unified_performance_test.yml::jmeter::items_api",
        "examples/unified_performance_test.yml::workflow::shop_journey",
    ]
    assert "warning" not in r.stdout.lower()


def test_example_workflows_pass_on_the_started_target() -> None:
    r = run_pytest(REPO, "examples/workflows", str(EXAMPLE.relative_to(REPO)), "-m", "workflow", timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    # checkout: 4 users x 10 iterations x (login, list, 2 x view, add, view cart, checkout)
    assert re.search(
        r"^passed examples/workflows/checkout_performance_test.yml::workflow::checkout: requests=280 errors=0",
        out,
        re.M,
    ), out
    assert re.search(
        r"^passed examples/workflows/checkout_performance_test.yml::workflow::anonymous_cart: requests=1 errors=0",
        out,
        re.M,
    )
    # shop_journey: 3 users x 5 iterations x (login, 3 x browse, add, checkout)
    assert re.search(
        r"^passed examples/unified_performance_test.yml::workflow::shop_journey: requests=90 errors=0",
        out,
        re.M,
    )


def _runners_available() -> bool:
    have = all(
        importlib.util.find_spec(m) is not None
        for m in ("perfsink.unified.k6", "perfsink.unified.jmeter", "perfsink.publisher")
    )
    return have and shutil.which("k6") is not None


@pytest.mark.skipif(
    not _runners_available(), reason="the k6/JMeter runners and the publisher are not merged yet"
)
def test_quick_start_end_to_end_in_influxdb(tmp_path: Path, influxd) -> None:
    db = f"ex_{uuid.uuid4().hex[:8]}"
    testid = f"quick-{uuid.uuid4().hex[:8]}"
    influxd.query(db, f'CREATE DATABASE "{db}"')
    env = {"INFLUXDB_URL": influxd.url, "INFLUXDB_DB": db}
    r = run_pytest(REPO, str(EXAMPLE.relative_to(REPO)), "--perf-testid", testid, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    counts: Dict[str, int] = {}
    for kind, name in (("k6", "browse_load"), ("jmeter", "items_api"), ("workflow", "shop_journey")):
        m = re.search(
            rf"^passed examples/unified_performance_test.yml::{kind}::{name}: requests=(\d+) errors=0",
            r.stdout,
            re.M,
        )
        assert m, r.stdout
        counts[kind] = int(m.group(1))
        assert counts[kind] > 0

    def one(q: str) -> float:
        rows = influxd.rows(db, q)
        return rows[0][next(k for k in rows[0] if k != "time")] if rows else 0

    where = f"\"testid\" = '{testid}'"
    assert one(f'SELECT count("value") FROM "http_reqs" WHERE {where}') == counts["k6"]
    jmeter_all = "\"transaction\" = 'all' AND \"statut\" = 'all'"
    assert one(f'SELECT sum("count") FROM "jmeter" WHERE {jmeter_all} AND {where}') == counts["jmeter"]
    assert one(f'SELECT count("duration") FROM "workflow_step" WHERE {where}') == counts["workflow"]


@pytest.mark.skipif(
    not _runners_available(), reason="the k6/JMeter runners and the publisher are not merged yet"
)
def test_quick_start_with_influxdb_down_for_the_whole_run(tmp_path: Path) -> None:
    with socket.socket() as s:  # nothing listens there
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    start = time.monotonic()
    r = run_pytest(REPO, str(EXAMPLE.relative_to(REPO)), env={"INFLUXDB_URL": dead}, timeout=600)
    elapsed = time.monotonic() - start
    assert r.returncode == 0, r.stdout + r.stderr  # every item still runs and passes
    for kind, name in (("k6", "browse_load"), ("jmeter", "items_api")):
        nodeid = f"examples/unified_performance_test.yml::{kind}::{name}"
        assert re.search(
            rf"^passed {re.escape(nodeid)}: requests=[1-9]\d* errors=0", r.stdout, re.M
        ), r.stdout
        assert re.search(
            rf"^WARNING: [1-9]\d* points of {re.escape(nodeid)} were not written", r.stdout, re.M
        )
    assert re.search(r"^WARNING: 90 workflow points were not written to InfluxDB", r.stdout, re.M), r.stdout
    # each engine gives up after its close timeout: k6 and JMeter run 10 s each, nothing waits for long
    assert elapsed < 150, f"the run took {elapsed:.0f} s"
