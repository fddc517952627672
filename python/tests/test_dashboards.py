"""The structural rules every provisioned dashboard (docker/grafana/dashboards/*.json) must keep,
checked offline: what Grafana 11/12 needs to load them from files (no import wizard, no Angular),
the foundation SDK's dashboard JSON schema, and that the files are exactly the builder's output.
Whether the queries return data is python/tests/test_dashboard_queries.py's job."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[2]
GRAFANA = REPO / "docker" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
SCHEMA = GRAFANA / "schema" / "dashboard.jsonschema.json"
BUILDER = GRAFANA / "build_dashboards.py"
SDK_DIST = "grafana-foundation-sdk"
SDK_VERSION = "1769699379!11.6.0"  # the Grafana 11.6 build; pip's "latest" is an older 10.1 build
DATASOURCE = {"type": "influxdb", "uid": "perfsink-influxdb"}
TESTID_FILTER = '"testid" =~ /^$testid$/'
# Panel plugins built on AngularJS, which Grafana 12 no longer loads (reference grafana.md §5).
ANGULAR_TYPES = {
    "graph",
    "singlestat",
    "table-old",
    "grafana-piechart-panel",
    "grafana-worldmap-panel",
    "grafana-singlestat-panel",
    "grafana-clock-panel",
    "grafana-polystat-panel",
}
CURRENT_TYPES = {"timeseries", "stat", "table", "barchart", "bargauge", "gauge", "heatmap", "text", "row"}
EXPECTED = {
    "k6.json": "perfsink-k6",  # the home dashboard: provisioning names this file
    "k6-aggregated.json": "perfsink-k6-agg",
    "jmeter.json": "perfsink-jmeter",
    "workflows.json": "perfsink-workflows",
    "health.json": "perfsink-health",
}


def load() -> List[Tuple[str, Dict[str, Any]]]:
    return [(p.name, json.loads(p.read_text())) for p in sorted(DASHBOARDS.glob("*.json"))]


def panels(dash: Dict[str, Any]) -> Iterator[Dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for p in dash.get("panels") or []:
        yield p
        yield from p.get("panels") or []


def targets(dash: Dict[str, Any]) -> Iterator[Tuple[Dict[str, Any], Dict[str, Any]]]:
    for p in panels(dash):
        for t in p.get("targets") or []:
            yield p, t


def outer_query(q: str) -> str:
    """``q`` without the text of its subquery ``FROM (...)``, if it has one."""
    start = q.find("FROM (")
    if start < 0:
        return q
    depth = 0
    for i in range(start + len("FROM "), len(q)):
        depth += {"(": 1, ")": -1}.get(q[i], 0)
        if depth == 0:
            return q[:start] + "FROM <subquery>" + q[i + 1 :]
    raise AssertionError(f"unbalanced parentheses: {q}")


def where(name: str, p: Dict[str, Any]) -> str:
    return f"{name} / panel {p.get('id')} {p.get('title')!r}"


ALL = load()
IDS = [name for name, _ in ALL]


def test_the_five_dashboards_exist_with_stable_uids() -> None:
    assert {name: d.get("uid") for name, d in ALL} == EXPECTED
    titles = [d["title"] for _, d in ALL]
    assert len(set(titles)) == len(titles), titles


@pytest.mark.parametrize("name,dash", ALL, ids=IDS)
def test_provisionable_as_a_file(name: str, dash: Dict[str, Any]) -> None:
    text = (DASHBOARDS / name).read_text()
    # Import-wizard placeholders are never resolved by file provisioning (grafana#10786).
    assert "__inputs" not in dash and "__requires" not in dash, name
    assert "${DS_" not in text and "$DS_" not in text, name
    assert dash.get("id") is None, f"{name}: exported ids break provisioning"
    assert 8 <= len(dash["uid"]) <= 40, dash["uid"]
    assert 39 <= dash["schemaVersion"] <= 42, dash["schemaVersion"]


@pytest.mark.parametrize("name,dash", ALL, ids=IDS)
def test_current_panel_types_only(name: str, dash: Dict[str, Any]) -> None:
    found = [p.get("type") for p in panels(dash)]
    assert found, name
    for p in panels(dash):
        assert p.get("type") not in ANGULAR_TYPES, where(name, p)
        assert p.get("type") in CURRENT_TYPES, where(name, p)


@pytest.mark.parametrize("name,dash", ALL, ids=IDS)
def test_datasource_by_uid_everywhere(name: str, dash: Dict[str, Any]) -> None:
    for p in panels(dash):
        if p.get("type") == "row":
            continue
        assert p.get("datasource") == DATASOURCE, where(name, p)
        assert p.get("targets"), f"{where(name, p)}: no query"
    for p, t in targets(dash):
        assert t.get("datasource") == DATASOURCE, where(name, p)
    for v in dash["templating"]["list"]:
        if v["type"] == "query":
            assert v.get("datasource") == DATASOURCE, f"{name}: variable {v['name']}"


@pytest.mark.parametrize("name,dash", ALL, ids=IDS)
def test_raw_queries_filter_time_and_testid(name: str, dash: Dict[str, Any]) -> None:
    for p, t in targets(dash):
        q = t.get("query", "")
        at = f"{where(name, p)} {t.get('refId')}: {q}"
        assert t.get("rawQuery") is True, at
        assert "$timeFilter" in q, at
        assert TESTID_FILTER in q, at
        assert t.get("resultFormat") in ("time_series", "table"), at
        # A subquery's outer SELECT needs its own time range too (InfluxDB otherwise reads from 1970).
        assert q.count("$timeFilter") >= q.upper().count("SELECT "), at
        if p["type"] == "timeseries":
            assert "GROUP BY time($__interval)" in q, at
        if p["type"] in ("stat", "table", "barchart"):
            # A stat or table reduces the whole range: one row per group, not a time series.
            assert "GROUP BY time" not in outer_query(q), at
        for m in re.finditer(r"\$(\w+)", q):
            assert m.group(1) in ("timeFilter", "__interval", "__interval_ms", "testid", "application", "transaction", "workflow", "source"), at
            if m.group(1) not in ("timeFilter", "__interval", "__interval_ms"):
                assert m.group(1) in [v["name"] for v in dash["templating"]["list"]], at


@pytest.mark.parametrize("name,dash", ALL, ids=IDS)
def test_testid_variable(name: str, dash: Dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    v = variables.get("testid")
    assert v and v["type"] == "query", name
    assert re.fullmatch(r'SHOW TAG VALUES FROM "\w+" WITH KEY = "testid"', v["query"]), v["query"]
    assert v["multi"] is False, "one run at a time: percentiles of two runs do not add up"
    # "All" is .*, which also matches points without a testid tag (a bare `perfsink k6` run).
    assert v["includeAll"] is True and v["allValue"] == ".*", v
    for other in variables.values():
        if other["name"] != "testid":
            assert TESTID_FILTER in other["query"], f"{name}: variable {other['name']} sees other runs"


@pytest.mark.parametrize("name,dash", ALL, ids=IDS)
def test_layout_fits_the_grid(name: str, dash: Dict[str, Any]) -> None:
    boxes = []
    for p in panels(dash):
        g = p["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and g["x"] >= 0 and g["x"] + g["w"] <= 24, where(name, p)
        for q, other in boxes:
            overlap = (
                g["x"] < other["x"] + other["w"]
                and other["x"] < g["x"] + g["w"]
                and g["y"] < other["y"] + other["h"]
                and other["y"] < g["y"] + g["h"]
            )
            assert not overlap, f"{where(name, p)} overlaps {q.get('title')!r}"
        boxes.append((p, g))
    ids = [p["id"] for p in panels(dash)]
    assert len(set(ids)) == len(ids), ids


def test_item_3_contents() -> None:
    """What each dashboard must show (issue 11, item 3), by the measurements and fields queried."""
    text = {name: "\n".join(t["query"] for _, t in targets(d)) for name, d in ALL}
    types = {name: {p["type"] for p in panels(d)} for name, d in ALL}
    k6 = text["k6.json"]
    for needle in ('FROM "http_reqs"', 'FROM "http_req_failed"', 'FROM "checks"', 'FROM "vus"', '"check"', 'GROUP BY "name"'):
        assert needle in k6, needle
    for p in (50, 90, 95, 99):
        assert f'percentile("value", {p})' in k6, p
    assert {"timeseries", "stat", "table"} <= types["k6.json"]
    agg = text["k6-aggregated.json"]
    for needle in ('"http_reqs_agg"', '"http_req_failed_agg"', '"checks_agg"', '"http_req_duration_agg"', '"vus_agg"', '"p95"', '"passes"', '"instance"'):
        assert needle in agg, needle
    jm = text["jmeter.json"]
    for needle in ("\"transaction\" = 'all'", "\"transaction\" = 'internal'", "\"statut\" = 'ko'", '"pct95.0"', '"countError"', '"responseCode"', '"instance"'):
        assert needle in jm, needle
    wf = text["workflows.json"]
    for needle in ('FROM "workflow_step"', '"duration"', '"success_count"', 'GROUP BY "workflow", "step"'):
        assert needle in wf, needle
    health = text["health.json"]
    for field in ("written", "queue_depth", "retried", "dropped", "spooled", "rejected"):
        assert f'"{field}"' in health, field


def self_metric_fields() -> List[str]:
    """The field names the engine writes to measurement `perfsink` (src/writer/selfmetrics.rs)."""
    src = (REPO / "src" / "writer" / "selfmetrics.rs").read_text()
    return re.findall(r'\(\s*"(\w+)",\s*stats\.', src) + re.findall(r'"(write_latency_ms)"', src)


def test_health_reads_fields_the_engine_writes() -> None:
    fields = self_metric_fields()
    assert "written" in fields and "write_latency_ms" in fields, fields
    health = dict(ALL)["health.json"]
    used = {m for _, t in targets(health) for m in re.findall(r'(?:max|last|mean|sum|min)\("(\w+)"\)', t["query"])}
    used -= {"v"}  # the subquery's own alias
    assert used and used <= set(fields), used - set(fields)


def test_datasource_uid_matches_provisioning() -> None:
    yml = GRAFANA / "provisioning" / "datasources" / "influxdb.yml"
    if not yml.exists():
        pytest.skip(f"{yml.relative_to(REPO)} is not in this checkout")
    text = yml.read_text()
    assert re.search(r"^\s*uid:\s*['\"]?perfsink-influxdb['\"]?\s*$", text, re.M), text


# ------------------------------------------------------------------------ the SDK's JSON schema
def validator() -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="run scripts/setup.sh (pip jsonschema)")
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("name,dash", ALL, ids=IDS)
def test_foundation_sdk_schema(name: str, dash: Dict[str, Any]) -> None:
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator().iter_errors(dash)]
    assert not errors, "\n".join(errors[:10])


def test_schema_rejects_what_an_export_carries() -> None:
    """The validator really checks: the keys of a dashboard exported for sharing are refused."""
    v = validator()
    bad = copy.deepcopy(dict(ALL)["k6.json"])
    bad["__inputs"] = [{"name": "DS_K6", "type": "datasource", "pluginId": "influxdb"}]
    assert list(v.iter_errors(bad))
    bad = copy.deepcopy(dict(ALL)["k6.json"])
    bad["refresh"] = False
    assert list(v.iter_errors(bad))


# -------------------------------------------------------------------------------- the builder
def test_sdk_installed_at_the_pinned_version() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert f"{SDK_DIST}=={SDK_VERSION}" in setup, "scripts/setup.sh must install the pinned SDK"
    assert SDK_VERSION in BUILDER.read_text()
    try:
        installed = metadata.version(SDK_DIST)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{SDK_DIST} is not installed: run scripts/setup.sh")
    assert installed == SDK_VERSION


def run_builder(*args: str) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    return subprocess.run([sys.executable, str(BUILDER), *args], capture_output=True, text=True, timeout=120)


def test_committed_files_are_the_builders_output() -> None:
    r = run_builder("--check")
    assert r.returncode == 0, f"regenerate: python3 {BUILDER.relative_to(REPO)}\n{r.stderr}"


def test_check_reports_drift(tmp_path: Path) -> None:
    assert run_builder("--out", str(tmp_path)).returncode == 0
    written = sorted(p.name for p in tmp_path.glob("*.json"))
    assert written == sorted(EXPECTED), written
    edited = tmp_path / "jmeter.json"
    edited.write_text(edited.read_text().replace('"Throughput"', '"Throughput (hand-edited)"'))
    r = run_builder("--check", "--out", str(tmp_path))
    assert r.returncode == 1 and "jmeter.json" in r.stderr, r.stderr
