"""The unified k6 runner: the generated script's shape, and real runs of k6 v1.1.0 through
`perfsink k6` against a local recording target, with the points checked in a real influxd."""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from perfsink.tools import perfsink_cli
from perfsink.unified.k6 import generate_script, run_k6_test, threshold_lines
from perfsink.unified.model import K6Test, RunContext, Scenario
from recording_target import RecordingTarget

# Strings JavaScript source could choke on unless they are encoded.
NASTY = 'it\'s a "quote" \\ </script> ${x} `tick`\n\u2028é'


def context(tmp_path: Path, influx_url: Optional[str] = None, db: str = "k6", **env: str) -> RunContext:
    testid = f"k6-{uuid.uuid4().hex[:8]}"
    if influx_url:
        env.update(INFLUXDB_URL=influx_url, INFLUXDB_DB=db, PERFSINK_TAGS=f"testid={testid}")
    out = tmp_path / "out"
    out.mkdir(parents=True, exist_ok=True)
    return RunContext(testid=testid, out_dir=out, env=env, yaml_dir=tmp_path, log=lambda line: None)


def script_parts(script: str) -> Dict[str, Any]:
    """The JSON literals of a generated script: `options` and `REQUESTS`."""
    options = re.search(r"export const options = (.*?);\n\nconst REQUESTS", script, re.S)
    requests = re.search(r"const REQUESTS = (.*?);\n\nexport default", script, re.S)
    assert options and requests, script
    return {"options": json.loads(options.group(1)), "requests": json.loads(requests.group(1))}


# ---- the generated script ----------------------------------------------------------------------


def test_script_encodes_every_string_and_passes_options_verbatim(tmp_path: Path) -> None:
    options = {"stages": [{"duration": "1s", "target": 2}], "thresholds": {"http_reqs": ["count>0"]}}
    test = K6Test(
        name=NASTY,
        scenarios=[
            Scenario(name=NASTY, url="http://127.0.0.1:1/p?q='a'&b=\"c\"", method="POST", body={"k": NASTY}),
            Scenario(
                name="raw", url="http://127.0.0.1:1/r", method="PATCH", body="a=1", headers={"X-A": NASTY}
            ),
            Scenario(
                name="own type",
                url="http://127.0.0.1:1/t",
                method="PUT",
                body=[1],
                headers={"content-type": "text/x"},
            ),
        ],
        options=options,
    )
    script = generate_script(test)
    parts = script_parts(script)
    assert parts["options"] == options, "options are written verbatim, no defaults merged in"
    post, patch, put = parts["requests"]
    assert post == {
        "method": "POST",
        "url": "http://127.0.0.1:1/p?q='a'&b=\"c\"",
        "body": json.dumps({"k": NASTY}, separators=(",", ":"), ensure_ascii=False),
        "params": {"headers": {"Content-Type": "application/json"}, "tags": {"name": NASTY}},
    }
    assert patch["body"] == "a=1" and patch["params"]["headers"] == {"X-A": NASTY}
    assert put["params"]["headers"] == {"content-type": "text/x"}, "the user's Content-Type is kept"
    assert script.isascii(), "every non-ASCII character is escaped (U+2028 ends a line in older JS)"
    header = script.split("import http")[0]
    assert all(
        line.startswith("//") for line in header.strip().splitlines()
    ), "the name stays inside the comment"
    # k6 itself parses the script and reads back the same options.
    path = tmp_path / "s.js"
    path.write_text(script)
    inspect = subprocess.run(["k6", "inspect", str(path)], capture_output=True, text=True, timeout=60)
    assert inspect.returncode == 0, inspect.stderr
    assert json.loads(inspect.stdout)["stages"] == [{"duration": "1s", "target": 2}]


def test_threshold_lines_name_their_metric_and_skip_failed_checks() -> None:
    # k6 v1.1.0's end-of-test summary (a script with two checks and two crossed thresholds).
    output = """
  █ THRESHOLDS

    checks
    ✗ 'rate>0.9' rate=50.00%

    http_req_duration{name:login}
    ✓ 'p(95)<500' p(95)=3ms

    http_reqs
    ✗ 'count>10' count=2


  █ TOTAL RESULTS

    checks_total.......................: 4      4005.034328/s
    checks_failed......................: 50.00% 2 out of 4

    ✗ is 200
      ↳  0% — ✓ 0 / ✗ 2
    ✓ is 0
"""
    assert threshold_lines(output) == ["checks ✗ 'rate>0.9' rate=50.00%", "http_reqs ✗ 'count>10' count=2"]


# ---- real runs ---------------------------------------------------------------------------------


def influx_count(influxd: Any, db: str, measurement: str, testid: str, group_by: str = "") -> Any:
    q = f'SELECT count("value") FROM "{measurement}" WHERE testid=\'{testid}\'' + (
        f' GROUP BY "{group_by}"' if group_by else ""
    )
    return influxd.rows(db, q)


def test_run_streams_every_request_under_the_testid(influxd: Any, tmp_path: Path) -> None:
    db = "k6_runner_stream"
    body = {"user": NASTY, "items": [1, 2.5, True, None]}
    with RecordingTarget() as target:
        test = K6Test(
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
                Scenario(name="rename", url=f"{target.url}/items/1", method="PATCH", body={"name": "n"}),
                Scenario(name="drop", url=f"{target.url}/status/204", method="DELETE"),
            ],
            # Two VUs for 2 s, each iteration sleeping 1 s: a handful of iterations.
            options={"vus": 2, "duration": "2s"},
        )
        ctx = context(tmp_path, influxd.url, db)
        result = run_k6_test(test, ctx)
        seen = target.requests

    assert result.passed, result.failures
    summary = json.loads((ctx.out_dir / "summary.json").read_text())
    assert result.requests == summary["metrics"]["http_reqs"]["count"] == len(seen) >= 8
    assert result.errors == 0 and result.p95_ms is not None
    assert result.details["dropped"] == 0, result.details["delivery"]
    # Every request k6 counted is one http_reqs point under this run's testid, tagged by scenario.
    (total,) = influx_count(influxd, db, "http_reqs", ctx.testid)
    assert total["count"] == result.requests
    per_name = {
        row["name"]: row["count"] for row in influx_count(influxd, db, "http_reqs", ctx.testid, "name")
    }
    assert per_name == {name: result.requests // 4 for name in ("list", "create", "rename", "drop")}
    # What reached the target: the query string, the JSON body as JSON, PATCH and DELETE.
    assert {r.method for r in seen} == {"GET", "POST", "PATCH", "DELETE"}
    get = next(r for r in seen if r.method == "GET")
    assert get.path == "/items?page=2&q=a%20b"
    post = next(r for r in seen if r.method == "POST")
    assert post.headers["content-type"] == "application/json" and post.headers["x-trace"] == "t1"
    assert json.loads(post.body) == body
    patch = next(r for r in seen if r.method == "PATCH")
    assert json.loads(patch.body) == {"name": "n"}


def test_influxdb_down_the_test_still_passes_and_the_loss_is_reported(tmp_path: Path) -> None:
    with RecordingTarget() as target:
        test = K6Test(
            name="down", scenarios=[Scenario(name="a", url=f"{target.url}/a")], options={"iterations": 3}
        )
        started = time.monotonic()
        result = run_k6_test(test, context(tmp_path, "http://127.0.0.1:1", PERFSINK_CLOSE_TIMEOUT_MS="2000"))
        took = time.monotonic() - started
    assert result.passed, result.failures
    assert result.requests == 3
    assert result.details["dropped"] > 0 and "dropped" in result.details["delivery"]
    assert took < 20, "the engine gives up after its close timeout"


def test_threshold_breach_fails_with_k6s_own_line(tmp_path: Path) -> None:
    with RecordingTarget() as target:
        test = K6Test(
            name="breach",
            scenarios=[Scenario(name="one", url=f"{target.url}/x")],
            options={
                "iterations": 2,
                "thresholds": {"http_reqs": ["count>100"], "http_req_failed": ["rate<0.5"]},
            },
        )
        result = run_k6_test(test, context(tmp_path))
    assert not result.passed
    assert result.details["exit_code"] == 99
    assert result.failures == ["k6 threshold crossed: http_reqs ✗ 'count>100' count=2"]
    assert result.requests == 2


def test_user_stages_and_k6_scenarios_do_not_clash(tmp_path: Path) -> None:
    """APT merged `duration: 30s` into the options: k6 refused `stages` with exit 104."""
    with RecordingTarget() as target:
        scenarios = [Scenario(name="a", url=f"{target.url}/a"), Scenario(name="b", url=f"{target.url}/b")]
        staged = run_k6_test(
            K6Test(name="staged", scenarios=scenarios, options={"stages": [{"duration": "1s", "target": 2}]}),
            context(tmp_path / "1"),
        )
        executors = run_k6_test(
            K6Test(
                name="executors",
                scenarios=scenarios,
                options={"scenarios": {"s": {"executor": "per-vu-iterations", "vus": 2, "iterations": 2}}},
            ),
            context(tmp_path / "2"),
        )
    assert staged.passed, staged.failures
    assert staged.requests >= 2
    assert executors.passed, executors.failures
    assert executors.requests == 2 * 2 * 2


def test_no_options_means_k6s_default_of_one_iteration(tmp_path: Path) -> None:
    with RecordingTarget() as target:
        test = K6Test(
            name="plain",
            scenarios=[Scenario(name="a", url=f"{target.url}/a"), Scenario(name="b", url=f"{target.url}/b")],
        )
        result = run_k6_test(test, context(tmp_path))
        assert result.passed, result.failures
        assert result.requests == 2 == len(target.requests)


def test_user_script_relative_to_the_yaml_with_yaml_options(tmp_path: Path) -> None:
    with RecordingTarget() as target:
        (tmp_path / "scripts").mkdir()
        (tmp_path / "scripts" / "own.js").write_text(
            "import http from 'k6/http';\n"
            f"export default function () {{ http.get({json.dumps(target.url + '/own')}); }}\n"
        )
        test = K6Test(name="own", script="scripts/own.js", options={"iterations": 3})
        result = run_k6_test(test, context(tmp_path))
        assert result.passed, result.failures
        assert result.requests == 3 == len([r for r in target.requests if r.path == "/own"])


def test_missing_script_and_missing_k6_are_clear_failures(tmp_path: Path) -> None:
    missing = run_k6_test(K6Test(name="m", script="nope.js"), context(tmp_path))
    assert not missing.passed
    assert "nope.js" in missing.failures[0] and str(tmp_path / "nope.js") in missing.failures[0]

    no_k6 = run_k6_test(
        K6Test(name="n", scenarios=[Scenario(name="a", url="http://127.0.0.1:1/")]),
        context(tmp_path, PERFSINK_K6=str(tmp_path / "no-such-k6")),
    )
    assert not no_k6.passed
    assert any("cannot run" in line and "no-such-k6" in line for line in no_k6.failures), no_k6.failures


def test_a_broken_script_fails_with_the_tail_of_k6s_output(tmp_path: Path) -> None:
    (tmp_path / "broken.js").write_text(
        "export default function () { throw new Error('boom-42'); }\nexport const options = {iterations: 1};\n"
    )
    result = run_k6_test(K6Test(name="broken", script="broken.js"), context(tmp_path))
    # An exception in the default function is an iteration error, not a k6 failure: k6 exits 0.
    # A syntax error is: exit 107, and the reason must be in the report.
    (tmp_path / "syntax.js").write_text("export default function ( {\n")
    syntax = run_k6_test(K6Test(name="syntax", script="syntax.js"), context(tmp_path))
    assert result.passed
    assert not syntax.passed
    assert syntax.failures[0].startswith("k6 exited with ")
    assert any("syntax.js" in line for line in syntax.failures[1:]), syntax.failures


def test_the_python_tools_variables_do_not_upset_perfsink_k6(tmp_path: Path) -> None:
    """perfsink refuses unknown PERFSINK_* keys; the ones perfsink.tools reads are not unknown
    (before the engine listed them, `perfsink k6` exited 2: unknown key PERFSINK_BIN)."""
    tool_variables = {
        "PERFSINK_BIN": str(perfsink_cli()),
        "PERFSINK_JMETER_JAR": str(tmp_path / "listener.jar"),
        "PERFSINK_CACHE": str(tmp_path / "cache"),
    }
    with RecordingTarget() as target:
        test = K6Test(name="vars", scenarios=[Scenario(name="a", url=f"{target.url}/a")])
        result = run_k6_test(test, context(tmp_path, **tool_variables))
    assert result.passed, result.failures
    assert result.requests == 1
