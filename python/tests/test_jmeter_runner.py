"""The unified JMeter runner: the generated JMX's shape, the listener added to a user's plan, and
real runs of JMeter 5.6.3 with the perfsink listener against a local recording target, the
listener's points checked in a real influxd."""

from __future__ import annotations

import csv
import json
import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from perfsink.tools import listener_jar
from perfsink.unified.jmeter import (
    LISTENER_CLASS,
    add_listener,
    generate_jmx,
    percentile,
    run_jmeter_test,
    threshold_failures,
)
from perfsink.unified.model import JMeterTest, RunContext, Scenario, ThreadGroupConfig, Thresholds
from recording_target import RecordingTarget

NASTY = "a <b> & \"c\" 'd' ${__P(x)} é"


def context(
    tmp_path: Path, influx_url: Optional[str] = None, db: Optional[str] = "k6", **extra: str
) -> RunContext:
    """A run context; with ``influx_url`` the env streams there (``db`` None: INFLUXDB_DB unset)."""
    testid = f"jm-{uuid.uuid4().hex[:8]}"
    env: Dict[str, str] = {}
    if influx_url:
        env = {"INFLUXDB_URL": influx_url, "PERFSINK_TAGS": f"testid={testid}"}
        if db is not None:
            env["INFLUXDB_DB"] = db
    env.update(extra)
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    return RunContext(testid=testid, out_dir=out, env=env, yaml_dir=tmp_path, log=lambda line: None)


def props(element: ET.Element) -> Dict[str, Optional[str]]:
    """The element's own stringProp/boolProp values by name."""
    return {p.get("name", ""): p.text for p in element if p.tag in ("stringProp", "boolProp")}


def jtl_rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---- the generated plan ------------------------------------------------------------------------


def test_duration_turns_the_scheduler_on_and_loops_forever_within_it() -> None:
    timed = generate_jmx(
        JMeterTest(
            name="t",
            scenarios=[Scenario(name="a", url="http://h/")],
            thread_group_config=ThreadGroupConfig(num_threads=3, ramp_time=1.4, duration=2.5),
        )
    )
    group = timed.find(".//ThreadGroup")
    assert group is not None
    assert props(group)["ThreadGroup.scheduler"] == "true"
    assert props(group)["ThreadGroup.duration"] == "3", "whole seconds, rounded up"
    assert props(group)["ThreadGroup.num_threads"] == "3" and props(group)["ThreadGroup.ramp_time"] == "1"
    loop = group.find("elementProp[@name='ThreadGroup.main_controller']")
    assert loop is not None and props(loop)["LoopController.loops"] == "-1"

    counted = generate_jmx(
        JMeterTest(
            name="t",
            scenarios=[Scenario(name="a", url="http://h/")],
            thread_group_config=ThreadGroupConfig(loops=None),
        )
    )
    group = counted.find(".//ThreadGroup")
    assert group is not None and props(group)["ThreadGroup.scheduler"] == "false"
    assert (
        props(group.find("elementProp[@name='ThreadGroup.main_controller']"))["LoopController.loops"] == "1"
    )

    both = generate_jmx(
        JMeterTest(
            name="t",
            scenarios=[Scenario(name="a", url="http://h/")],
            thread_group_config=ThreadGroupConfig(duration=5, loops=7),
        )
    )
    group = both.find(".//ThreadGroup")
    assert group is not None and props(group)["ThreadGroup.scheduler"] == "true"
    assert (
        props(group.find("elementProp[@name='ThreadGroup.main_controller']"))["LoopController.loops"] == "7"
    )


def test_samplers_keep_query_headers_body_and_escape_everything(tmp_path: Path) -> None:
    test = JMeterTest(
        name=NASTY,
        scenarios=[
            Scenario(
                name=NASTY,
                url="https://example.test:8443/a/b?x=1&y=%20<z>",
                method="POST",
                body={"k": NASTY},
                headers={"X-N": NASTY},
            ),
            Scenario(name="plain", url="http://example.test/", method="DELETE"),
        ],
    )
    path = tmp_path / "plan.jmx"
    ET.ElementTree(generate_jmx(test)).write(path, encoding="UTF-8", xml_declaration=True)
    root = ET.parse(path).getroot()  # it is well-formed XML after the round trip
    post, delete = root.iter("HTTPSamplerProxy")
    assert post.get("testname") == NASTY
    p = props(post)
    assert (p["HTTPSampler.protocol"], p["HTTPSampler.domain"], p["HTTPSampler.port"]) == (
        "https",
        "example.test",
        "8443",
    )
    assert p["HTTPSampler.path"] == "/a/b?x=1&y=%20<z>" and p["HTTPSampler.method"] == "POST"
    assert p["HTTPSampler.postBodyRaw"] == "true"
    body_arg = post.find(".//elementProp[@elementType='HTTPArgument']")
    assert body_arg is not None and json.loads(props(body_arg)["Argument.value"] or "") == {"k": NASTY}
    # Each sampler's hashTree holds its Header Manager (none for a sampler without headers).
    plan_tree = root.find("hashTree/hashTree")
    assert plan_tree is not None
    group_tree = plan_tree[3]
    assert [c.tag for c in group_tree] == ["HTTPSamplerProxy", "hashTree", "HTTPSamplerProxy", "hashTree"]
    assert [c.tag for c in group_tree[1]] == ["HeaderManager", "hashTree"] and len(group_tree[3]) == 0
    headers = {
        props(h)["Header.name"]: props(h)["Header.value"] for h in group_tree[1][0].iter("elementProp")
    }
    assert headers == {"X-N": NASTY, "Content-Type": "application/json"}
    d = props(delete)
    assert not d["HTTPSampler.port"] and d["HTTPSampler.path"] == "/" and "HTTPSampler.postBodyRaw" not in d
    listener = root.find("hashTree/hashTree/BackendListener")
    assert listener is not None and props(listener)["classname"] == LISTENER_CLASS


def test_a_relative_url_is_refused(tmp_path: Path) -> None:
    result = run_jmeter_test(
        JMeterTest(name="r", scenarios=[Scenario(name="a", url="/only/a/path")]), context(tmp_path)
    )
    assert not result.passed and "not absolute" in result.failures[0]


def test_listener_added_to_a_users_plan_once() -> None:
    smoke = Path(__file__).resolve().parents[2] / "examples" / "jmeter" / "smoke.jmx"
    assert (
        add_listener(ET.parse(smoke).getroot(), "app") is False
    ), "smoke.jmx already has the perfsink listener"

    bare = ET.fromstring(USER_PLAN.format(host="h", port=1, path="/", extra=""))
    assert add_listener(bare, "app") is True
    plan_tree = bare.find("hashTree/hashTree")
    assert plan_tree is not None
    assert [c.tag for c in plan_tree][:3] == ["BackendListener", "hashTree", "ThreadGroup"]

    disabled = ET.fromstring(USER_PLAN.format(host="h", port=1, path="/", extra=""))
    add_listener(disabled, "app")
    disabled.find(".//BackendListener").set("enabled", "false")  # type: ignore[union-attr]
    assert add_listener(disabled, "app") is True, "a disabled listener does not stream"


def test_verdict_thresholds_and_percentile() -> None:
    assert threshold_failures(100, 0, 5.0, Thresholds()) == []
    assert threshold_failures(100, 1, 5.0, Thresholds()) == [
        "error rate 1.00% (1 of 100 samples failed) is above the allowed 0.00%"
    ]
    assert threshold_failures(100, 5, 5.0, Thresholds(error_rate=0.05)) == []
    assert threshold_failures(100, 0, 250.0, Thresholds(p95_ms=200)) == [
        "p95 250 ms is above the allowed 200 ms"
    ]
    assert percentile([float(v) for v in range(1, 101)], 95) == 95.0
    assert percentile([3.0], 95) == 3.0 and percentile([], 95) is None


# ---- real runs ---------------------------------------------------------------------------------

USER_PLAN = """<?xml version="1.0" encoding="UTF-8"?>
<jmeterTestPlan version="1.2" properties="5.0" jmeter="5.6.3">
  <hashTree>
    <TestPlan guiclass="TestPlanGui" testclass="TestPlan" testname="user plan"/>
    <hashTree>
      <ThreadGroup guiclass="ThreadGroupGui" testclass="ThreadGroup" testname="users">
        <stringProp name="ThreadGroup.num_threads">2</stringProp>
        <stringProp name="ThreadGroup.ramp_time">0</stringProp>
        <stringProp name="ThreadGroup.on_sample_error">continue</stringProp>
        <elementProp name="ThreadGroup.main_controller" elementType="LoopController" guiclass="LoopControlPanel" testclass="LoopController">
          <stringProp name="LoopController.loops">5</stringProp>
          <boolProp name="LoopController.continue_forever">false</boolProp>
        </elementProp>
      </ThreadGroup>
      <hashTree>{extra}
        <HTTPSamplerProxy guiclass="HttpTestSampleGui" testclass="HTTPSamplerProxy" testname="user sampler">
          <elementProp name="HTTPsampler.Arguments" elementType="Arguments">
            <collectionProp name="Arguments.arguments"/>
          </elementProp>
          <stringProp name="HTTPSampler.domain">{host}</stringProp>
          <stringProp name="HTTPSampler.port">{port}</stringProp>
          <stringProp name="HTTPSampler.protocol">http</stringProp>
          <stringProp name="HTTPSampler.path">{path}</stringProp>
          <stringProp name="HTTPSampler.method">GET</stringProp>
        </HTTPSamplerProxy>
        <hashTree/>
      </hashTree>
    </hashTree>
  </hashTree>
</jmeterTestPlan>
"""


def all_count(influxd: Any, db: str, testid: str) -> float:
    rows = influxd.rows(
        db, f"SELECT sum(\"count\") FROM \"jmeter\" WHERE transaction='all' AND testid='{testid}'"
    )
    return rows[0]["sum"] if rows else 0


def test_generated_plan_streams_runs_for_its_duration_and_sends_everything(
    influxd: Any, tmp_path: Path
) -> None:
    db = "jmeter_runner_stream"
    body = {"user": "é", "n": [1, 2]}
    with RecordingTarget() as target:
        test = JMeterTest(
            name="stream",
            scenarios=[
                Scenario(name="list", url=f"{target.url}/items?page=2&q=a%20b"),
                Scenario(
                    name="create",
                    url=f"{target.url}/items",
                    method="POST",
                    body=body,
                    headers={"X-Trace": "t1"},
                ),
                Scenario(name="rename", url=f"{target.url}/items/1", method="PATCH", body="raw text"),
            ],
            thread_group_config=ThreadGroupConfig(num_threads=2, ramp_time=0, duration=2),
        )
        ctx = context(tmp_path, influxd.url, db)
        result = run_jmeter_test(test, ctx)
        seen = target.requests

    assert result.passed, result.failures
    rows = jtl_rows(ctx.out_dir / "results.jtl")
    assert result.requests == len(rows) == len(seen) and result.errors == 0
    # The listener's points under this run's testid count every sample of the JTL.
    assert all_count(influxd, db, ctx.testid) == len(rows)
    # The scheduler honoured the duration: far more than one pass of 2 threads x 3 samplers, all
    # within ~2 s (APT's plans ignored the duration and ran each thread once).
    stamps = [int(r["timeStamp"]) for r in rows]
    assert len(rows) > 2 * 3 * 3
    assert 1000 <= max(stamps) - min(stamps) <= 3500
    get = next(r for r in seen if r.method == "GET")
    assert get.path == "/items?page=2&q=a%20b"
    post = next(r for r in seen if r.method == "POST")
    assert post.headers["x-trace"] == "t1" and post.headers["content-type"] == "application/json"
    assert json.loads(post.body) == body
    patch = next(r for r in seen if r.method == "PATCH")
    assert patch.body == b"raw text"


# A CSV Data Set whose file name is relative: JMeter resolves it against the plan's directory.
CSV_DATA_SET = """
        <CSVDataSet guiclass="TestBeanGUI" testclass="CSVDataSet" testname="paths">
          <stringProp name="filename">data/paths.csv</stringProp>
          <stringProp name="fileEncoding">UTF-8</stringProp>
          <stringProp name="variableNames">p</stringProp>
          <boolProp name="ignoreFirstLine">false</boolProp>
          <stringProp name="delimiter">,</stringProp>
          <boolProp name="quotedData">false</boolProp>
          <boolProp name="recycle">true</boolProp>
          <boolProp name="stopThread">false</boolProp>
          <stringProp name="shareMode">shareMode.all</stringProp>
        </CSVDataSet>
        <hashTree/>"""


def test_users_jmx_file_gets_the_listener_and_streams(influxd: Any, tmp_path: Path) -> None:
    """The listener is added to the user's plan and writes into the context's database (the
    session hands every runner the database the engine resolved). The plan's relative CSV file
    still resolves against the plan's own directory."""
    with RecordingTarget() as target:
        host, port = target.url.rsplit("//", 1)[1].split(":")
        plans = tmp_path / "plans"
        (plans / "data").mkdir(parents=True)
        (plans / "data" / "paths.csv").write_text("/from-csv-1\n/from-csv-2\n")
        (plans / "user.jmx").write_text(
            USER_PLAN.format(host=host, port=port, path="${p}", extra=CSV_DATA_SET)
        )
        ctx = context(tmp_path, influxd.url, db="k6")
        result = run_jmeter_test(JMeterTest(name="user", jmx_file="plans/user.jmx"), ctx)
        seen = target.requests
    assert result.passed, result.failures
    assert result.requests == 2 * 5 == len(seen)
    assert {r.path for r in seen} == {"/from-csv-1", "/from-csv-2"}
    assert all_count(influxd, "k6", ctx.testid) == 10
    assert sorted(p.name for p in plans.iterdir()) == ["data", "user.jmx"], "the temporary copy is gone"
    assert "io.perfsink.jmeter.PerfsinkBackendListenerClient" in (ctx.out_dir / "plan.jmx").read_text()


def test_error_rate_above_the_threshold_fails_the_item(tmp_path: Path) -> None:
    with RecordingTarget() as target:
        test = JMeterTest(
            name="errors",
            scenarios=[
                Scenario(name="ok", url=f"{target.url}/fine"),
                Scenario(name="boom", url=f"{target.url}/status/500"),
            ],
            thread_group_config=ThreadGroupConfig(num_threads=1, ramp_time=0, loops=3),
            thresholds=Thresholds(error_rate=0.25),
            # The user's properties reach JMeter; their user.classpath keeps the listener's jar.
            properties={"user.classpath": str(tmp_path / "extra"), "my.prop": "v 1"},
        )
        # perfsink.tools' variables in JMeter's environment must not upset the listener's engine.
        ctx = context(tmp_path, PERFSINK_JMETER_JAR=str(listener_jar()), PERFSINK_CACHE=str(tmp_path))
        result = run_jmeter_test(test, ctx)
    assert not result.passed
    assert (result.requests, result.errors) == (6, 3)
    assert result.failures[0] == "error rate 50.00% (3 of 6 samples failed) is above the allowed 25.00%"
    assert result.failures[1].startswith("  boom: 500")
    log = (ctx.out_dir / "jmeter.log").read_text()
    assert "Setting JMeter property: my.prop=v 1" in log
    assert f"user.classpath={tmp_path / 'extra'}:" in log
    assert "Started  worker with class: class io.perfsink.jmeter.PerfsinkBackendListenerClient" in log


def test_missing_jmx_file_is_a_clear_failure(tmp_path: Path) -> None:
    result = run_jmeter_test(JMeterTest(name="m", jmx_file="nope.jmx"), context(tmp_path))
    assert not result.passed and str(tmp_path / "nope.jmx") in result.failures[0]


def test_influxdb_down_the_test_still_passes_and_the_loss_is_reported(tmp_path: Path) -> None:
    with RecordingTarget() as target:
        test = JMeterTest(
            name="down",
            scenarios=[Scenario(name="a", url=f"{target.url}/a")],
            thread_group_config=ThreadGroupConfig(num_threads=1, ramp_time=0, loops=3),
        )
        started = time.monotonic()
        result = run_jmeter_test(
            test, context(tmp_path, "http://127.0.0.1:1", PERFSINK_CLOSE_TIMEOUT_MS="2000")
        )
        took = time.monotonic() - started
    assert result.passed, result.failures
    assert result.requests == 3
    assert result.details["dropped"] > 0, result.details.get("delivery")
    assert took < 30, "the listener gives up after the engine's close timeout"
