"""The real check of the dashboards: every panel query and variable query of every dashboard in
docker/grafana/dashboards/ runs against an InfluxDB holding data written through perfsink's real
paths, and returns rows.

The data (one database ``k6``, one testid, as the stack's layout says):
- a unified YAML run through pytest in a child process: k6 raw (``perfsink k6``), the JMeter listener
  and a Python workflow, each with some failing requests so the error panels have rows;
- two ``perfsink k6`` runs at once with ``PERFSINK_MODE=both`` on a script with checks, as two
  generators (``instance`` tags): the ``<m>_agg`` points of the aggregated dashboard, raw
  ``checks`` (the unified runner's generated scripts have none), and sums across generators;
- self-metrics of every sink (``PERFSINK_SELF_METRICS_INTERVAL_MS`` small).

Queries go through docker/grafana/queries.py, the one place that fills in Grafana's macros."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, Iterator, List, Tuple

import pytest

from influxd import Influxd
from dashboard_data import K6_SCRIPT, perfsink_bin
from plugin_helpers import run_pytest, write_yaml

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "docker" / "grafana" / "dashboards"
DB = "k6"
SELF_METRICS_MS = "300"


def load_queries() -> ModuleType:
    spec = importlib.util.spec_from_file_location("perfsink_dashboard_queries", REPO / "docker" / "grafana" / "queries.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


queries = load_queries()

UNIFIED = """
test_info:
  test_suite_name: dashboards
target:
  start: perfsink.target
  port: 0
k6_tests:
  shop_load:
    scenarios:
      - name: items
        url: ${TARGET_URL}/api/items
      - name: missing
        url: ${TARGET_URL}/api/missing
    options:
      vus: 2
      duration: 3s
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
    thresholds:
      error_rate: 0.9
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
      - name: missing
        url: ${TARGET_URL}/api/items/999999
    thresholds:
      error_rate: 0.9
"""

GENERATORS = ("gen-a", "gen-b")


def _start_k6(tmp: Path, influx: Influxd, tags: str, mode: str, target: str) -> subprocess.Popen:  # type: ignore[type-arg]
    """``perfsink k6`` on the checks script, global tags ``tags`` (``PERFSINK_TAGS``), ``mode``."""
    tmp.mkdir()
    script = tmp / "checks.js"
    script.write_text(K6_SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFLUXDB_", "K6_", "PERFSINK_"))}
    for key in ("PERFSINK_LIB", "PERFSINK_BIN"):
        if key in os.environ:
            env[key] = os.environ[key]
    env.update(
        {
            "INFLUXDB_URL": f"{influx.url}/{DB}",
            "PERFSINK_MODE": mode,
            "PERFSINK_TAGS": tags,
            "PERFSINK_SELF_METRICS_INTERVAL_MS": SELF_METRICS_MS,
            "TARGET_URL": target,
            "K6_NO_USAGE_REPORT": "true",
        }
    )
    return subprocess.Popen(
        [perfsink_bin(), "k6", "run", "--quiet", str(script)],
        env=env,
        cwd=tmp,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[Influxd, str]]:
    """A private influxd with database k6 filled by every path under one testid."""
    if shutil.which("k6") is None:
        pytest.skip("k6 is not on PATH")
    tmp = tmp_path_factory.mktemp("dashboards")
    testid = f"dash-{uuid.uuid4().hex[:8]}"
    with Influxd() as influx:
        influx.query(DB, f'CREATE DATABASE "{DB}"')
        write_yaml(tmp, "dashboards_test.yml", UNIFIED)
        env = {
            "INFLUXDB_URL": influx.url,
            "INFLUXDB_DB": DB,
            "PERFSINK_SELF_METRICS_INTERVAL_MS": SELF_METRICS_MS,
        }
        from perfsink.target import serve

        server = serve()
        host, port = server.server_address[0], server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        gens: List[subprocess.Popen] = []  # type: ignore[type-arg]
        try:
            # Two aggregating generators of this run, and a bare run without any tag (what the
            # testid variable's "All" must still show). They run while the unified run does: the
            # runs are short and light, and it keeps the test's wall time down on 2 cores.
            target = f"http://{host!s}:{port}"
            gens = [_start_k6(tmp / g, influx, f"testid={testid},instance={g}", "both", target) for g in GENERATORS]
            gens.append(_start_k6(tmp / "bare", influx, "", "raw", target))
            unified = run_pytest(tmp, "dashboards_test.yml", "--perf-testid", testid, env=env, timeout=180)
            for g in gens:
                out, _ = g.communicate(timeout=120)
                print(out[-800:])
                assert g.returncode == 0, out
        finally:
            for g in gens:
                if g.poll() is None:
                    g.kill()
                    g.wait()
            server.shutdown()
            server.server_close()
        out = unified.stdout + unified.stderr
        print(out[-2500:])
        for kind, name in (("k6", "shop_load"), ("jmeter", "shop_api"), ("workflow", "shop")):
            assert f"passed dashboards_test.yml::{kind}::{name}" in out, out
        yield influx, testid


def _variables(influx: Influxd, testid: str) -> Dict[str, Any]:
    """The values a user would pick: this run's testid and every value of the other variables."""

    def tag_values(measurement: str, key: str) -> List[str]:
        return [
            r["value"]
            for r in influx.rows(DB, f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{key}" WHERE "testid" = \'{testid}\'')
        ]

    return {
        "testid": testid,
        "application": tag_values("jmeter", "application"),
        "transaction": [t for t in tag_values("jmeter", "transaction") if t not in ("all", "internal")],
        "workflow": tag_values("workflow_step", "workflow"),
        "source": tag_values("perfsink", "source"),
    }


def _dashboards() -> List[Tuple[str, Dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in sorted(DASHBOARDS.glob("*.json"))]


def test_every_panel_query_returns_rows(written: Tuple[Influxd, str]) -> None:
    influx, testid = written
    variables = _variables(influx, testid)
    print(variables)
    assert all(variables.values()), variables
    empty: List[str] = []
    count = 0
    for name, dash in _dashboards():
        for title, _type, query in queries.panel_queries(dash, variables, interval="1s", time_from="now-15m"):
            count += 1
            assert "$" not in query.replace("$/", "/"), f"{name} / {title}: unsubstituted macro: {query}"
            series = queries.run(influx.url, DB, query)
            # A row counts when it has a value besides its time (tags alone are not data).
            values = [v for s in series for row in s.get("values") or [] for c, v in zip(s["columns"], row) if c != "time" and v is not None]
            print(f"{name:20} {title[:40]:40} n={len(values)} first={values[:3]}")
            if not values:
                empty.append(f"{name} / {title}: {query}")
    assert count >= 60, count  # every dashboard was read
    assert not empty, "panels without rows:\n" + "\n".join(empty)


def test_every_variable_query_returns_values(written: Tuple[Influxd, str]) -> None:
    influx, testid = written
    variables = _variables(influx, testid)
    for name, dash in _dashboards():
        got = queries.variable_queries(dash, variables)
        assert "testid" in [v for v, _ in got], name
        for var, query in got:
            values = [r["value"] for r in queries.rows(queries.run(influx.url, DB, query))]
            assert values, f"{name}: variable {var} has no values: {query}"
            if var == "testid":
                assert testid in values, f"{name}: {query} -> {values}"


def test_testid_filter_excludes_other_runs(written: Tuple[Influxd, str]) -> None:
    """Another testid sees nothing: every query is really filtered by the variable."""
    influx, testid = written
    variables = dict(_variables(influx, testid), testid="no-such-run")
    leaking = []
    for name, dash in _dashboards():
        for title, _type, query in queries.panel_queries(dash, variables, interval="1s", time_from="now-15m"):
            if queries.rows(queries.run(influx.url, DB, query)):
                leaking.append(f"{name} / {title}")
    assert not leaking, leaking


def _panel_values(influx: Influxd, testid: str, file: str, title: str, interval: str = "1s") -> List[float]:
    """The numbers one panel's first query returns (all rows, all value columns)."""
    dash = json.loads((DASHBOARDS / file).read_text())
    found = [q for t, _type, q in queries.panel_queries(dash, _variables(influx, testid), interval=interval, time_from="now-15m") if t == title]
    assert found, f"{file}: no panel {title!r}"
    series = queries.run(influx.url, DB, found[0])
    return [v for r in queries.rows(series) for k, v in r.items() if k != "time" and isinstance(v, (int, float))]


def test_sums_across_generators(written: Tuple[Influxd, str]) -> None:
    """The aggregated dashboard adds the two generators up: its request count equals the raw
    http_reqs points both wrote (PERFSINK_MODE=both, same instance tags), and both are seen."""
    influx, testid = written
    gens = "|".join(GENERATORS)
    raw = influx.rows(DB, f'SELECT count("value") FROM "http_reqs" WHERE "testid" = \'{testid}\' AND "instance" =~ /^({gens})$/')
    per_instance = influx.rows(
        DB, f'SELECT sum("count") FROM "http_reqs_agg" WHERE "testid" = \'{testid}\' GROUP BY "instance"'
    )
    assert sorted(r["instance"] for r in per_instance) == sorted(GENERATORS), per_instance
    assert all(r["sum"] > 0 for r in per_instance), per_instance
    assert _panel_values(influx, testid, "k6-aggregated.json", "Requests") == [raw[0]["count"]]
    assert _panel_values(influx, testid, "k6-aggregated.json", "Generators") == [len(GENERATORS)]
    # Both ran 2 VUs over the same seconds: the summed gauge reaches 4 (one generator alone: 2).
    assert max(_panel_values(influx, testid, "k6-aggregated.json", "Virtual users (sum across instances)")) == 4
    # The raw dashboard counts every generator's requests, the unified run's k6 test included.
    assert _panel_values(influx, testid, "k6.json", "Requests")[0] > raw[0]["count"]


def test_all_testids_include_untagged_runs(written: Tuple[Influxd, str]) -> None:
    """The testid variable's "All" (allValue ``.*``, inserted as it is, as Grafana does) shows
    every run, the bare ``perfsink k6`` run without a testid tag included."""
    influx, testid = written
    dash = json.loads((DASHBOARDS / "k6.json").read_text())
    all_value = next(v for v in dash["templating"]["list"] if v["name"] == "testid")["allValue"]
    every = [
        q.replace("$testid", all_value)
        for t, _type, q in queries.panel_queries(dash, {}, time_from="now-15m")
        if t == "Requests"
    ]
    total = influx.rows(DB, 'SELECT count("value") FROM "http_reqs"')[0]["count"]
    untagged = influx.rows(DB, 'SELECT count("value") FROM "http_reqs" WHERE "testid" = \'\'')[0]["count"]
    assert untagged > 0
    assert [r["count"] for r in queries.rows(queries.run(influx.url, DB, every[0]))] == [total]
    assert _panel_values(influx, testid, "k6.json", "Requests") == [total - untagged]
