"""The pytest plugin, run in a child pytest on YAML files in a temporary directory: collection,
node ids, markers and tag options, errors and warnings, testid, the runner contract, summary."""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import perfsink.target as target_mod
from plugin_helpers import run_pytest, write_yaml

THREE_KINDS = """
test_info:
  tags: [smoke]
k6_tests:
  api:
    tags: [p1]
    scenarios: [{url: "http://127.0.0.1:9/"}]
jmeter_tests:
  jm:
    tags: [p2, slow]
    jmx_file: plan.jmx
workflows:
  shop:
    tags: [p1, slow]
    steps: [{url: "http://127.0.0.1:9/"}]
"""


def collected(out: str) -> List[str]:
    return [
        line
        for line in out.splitlines()
        if "::" in line and not line.startswith(("PASSED", "FAILED", "ERROR"))
    ]


@pytest.fixture
def target(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Tuple[str, List[Tuple[str, str, Dict[str, str], bytes]]]]:
    """The demo target in this process; the child pytest's requests are recorded here."""
    seen: List[Tuple[str, str, Dict[str, str], bytes]] = []
    real = target_mod.route

    def recording(
        store: Any, method: str, path: str, query: str, headers: Dict[str, str], body: bytes
    ) -> Any:
        seen.append((method, path + ("?" + query if query else ""), headers, body))
        return real(store, method, path, query, headers, body)

    monkeypatch.setattr(target_mod, "route", recording)
    server = target_mod.serve("127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_items_and_node_ids_for_a_named_file_anywhere(tmp_path: Path) -> None:
    write_yaml(tmp_path, "any/dir/suite.yaml", THREE_KINDS)
    r = run_pytest(tmp_path, "--collect-only", "-q", "any/dir/suite.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert collected(r.stdout) == [
        "any/dir/suite.yaml::k6::api",
        "any/dir/suite.yaml::jmeter::jm",
        "any/dir/suite.yaml::workflow::shop",
    ]


def test_directory_walk_collects_only_performance_test_files(tmp_path: Path) -> None:
    write_yaml(tmp_path, "perf/shop_performance_test.yml", THREE_KINDS)
    write_yaml(tmp_path, "perf/other.yml", THREE_KINDS)  # unified, but not named and not matching
    write_yaml(tmp_path, "perf/compose_performance_test.yaml", "services: {db: {image: x}}\n")  # not unified
    r = run_pytest(tmp_path, "--collect-only", "-q", "perf")
    assert r.returncode == 0, r.stdout + r.stderr
    assert collected(r.stdout) == [
        "perf/shop_performance_test.yml::k6::api",
        "perf/shop_performance_test.yml::jmeter::jm",
        "perf/shop_performance_test.yml::workflow::shop",
    ]
    r = run_pytest(tmp_path, "--collect-only", "-q", "perf/other.yml")
    assert len(collected(r.stdout)) == 3
    r = run_pytest(tmp_path, "--collect-only", "-q", "perf/compose_performance_test.yaml")  # named: say why
    assert r.returncode == 2
    assert (
        "compose_performance_test.yaml:1: not a unified file: none of k6_tests, jmeter_tests, workflows"
        in r.stdout
    )


def test_tags_are_markers_with_strict_markers(tmp_path: Path) -> None:
    write_yaml(tmp_path, "s.yml", THREE_KINDS)

    def ids(*args: str, path: str = "s.yml") -> List[str]:
        r = run_pytest(tmp_path, "--collect-only", "-q", "--strict-markers", path, *args)
        assert r.returncode in (0, 5), r.stdout + r.stderr
        return [line.split("::", 1)[1] for line in collected(r.stdout)]

    assert ids("-m", "smoke") == ["k6::api", "jmeter::jm", "workflow::shop"]  # test_info.tags: every item
    assert ids("-m", "p1") == ["k6::api", "workflow::shop"]
    assert ids("-m", "p1 and not slow") == ["k6::api"]
    assert ids("-m", "workflow or jmeter") == ["jmeter::jm", "workflow::shop"]  # the kind is a marker too
    assert ids("--perf-tags", "p2,p1", "--perf-exclude-tags", "slow") == ["k6::api"]
    assert ids("--perf-exclude-tags", "smoke") == []
    assert ids(path="s.yml::workflow::shop") == ["workflow::shop"]  # node ids select on the command line


def test_malformed_yaml_and_wrong_types_are_collection_errors(tmp_path: Path) -> None:
    write_yaml(tmp_path, "broken_performance_test.yml", "workflows:\n  w:\n    steps: [{url: 'http://h/'}\n")
    write_yaml(
        tmp_path, "typed.yml", "workflows:\n  w:\n    iterations: -1\n    steps: [{url: 'http://h/'}]\n"
    )
    r = run_pytest(tmp_path, "broken_performance_test.yml", "typed.yml")
    assert r.returncode == 2, r.stdout + r.stderr  # collection errors interrupt the run
    assert f"{tmp_path}/broken_performance_test.yml:4: malformed YAML: expected ',' or ']'" in r.stdout
    assert f"{tmp_path}/typed.yml:3: workflows.w.iterations: must be >= 0, got -1" in r.stdout
    assert "ERROR typed.yml" in r.stdout and "ERROR broken_performance_test.yml" in r.stdout


def test_unknown_keys_are_warnings_naming_file_and_line(tmp_path: Path, target: Tuple[str, list]) -> None:
    url, _ = target
    write_yaml(
        tmp_path,
        "w.yml",
        f"""
        workflows:
          w:
            colour: blue
            steps: [{{url: "{url}/"}}]
        """,
    )
    r = run_pytest(tmp_path, "w.yml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{tmp_path}/w.yml:3: unknown key 'workflows.w.colour' (ignored)" in r.stdout
    assert "UnifiedYAMLWarning" in r.stdout


def test_testid_environment_summary_and_failure_report(tmp_path: Path, target: Tuple[str, list]) -> None:
    url, seen = target
    write_yaml(
        tmp_path,
        "shop.yml",
        """
        workflows:
          ok:
            iterations: 3
            steps: [{url: "${T}/echo?tags=${PERFSINK_TAGS}"}]
          bad:
            steps: [{url: "${T}/status/502"}, {url: "${T}/"}]
          unset:
            steps: [{url: "${NOT_SET_ANYWHERE}/"}]
        """,
    )
    r = run_pytest(tmp_path, "shop.yml", env={"T": url, "PERFSINK_TAGS": "host=h1,testid=old"})
    out = r.stdout
    assert r.returncode == 1, out + r.stderr
    m = re.search(r"^perfsink: testid=(shop-\d{8}T\d{6}); INFLUXDB_URL is not set", out, re.M)
    assert m, out
    testid = m.group(1)
    # children see PERFSINK_TAGS with our testid replacing theirs, the user's other tags kept
    assert [p for _, p, _, _ in seen if p.startswith("/echo")] == [f"/echo?tags=host=h1,testid={testid}"] * 3
    assert f"perfsink summary (testid={testid})" in out
    assert re.search(r"^passed shop.yml::workflow::ok: requests=3 errors=0 p95=\d+\.\dms$", out, re.M)
    assert re.search(r"^FAILED shop.yml::workflow::bad: requests=2 errors=1 p95=", out, re.M)
    assert "error rate 50.00% (1 of 2 calls) above thresholds.error_rate 0.00%" in out
    assert "step step_1: HTTP 502 (1 of 1 calls)" in out
    assert f"{tmp_path}/shop.yml:7: environment variable ${{NOT_SET_ANYWHERE}} is not set" in out

    r = run_pytest(
        tmp_path, "shop.yml", "--perf-testid", "run-42", "-m", "not nothing", "-k", "ok", env={"T": url}
    )
    assert "perfsink: testid=run-42;" in r.stdout and r.returncode == 0
    assert seen[-1][1] == "/echo?tags=testid=run-42"
    r = run_pytest(tmp_path, "shop.yml", "--perf-testid", "a,b")
    assert r.returncode == 4 and "--perf-testid 'a,b'" in r.stderr


FAKE_RUNNERS = """
import json, sys, types
from pathlib import Path
from perfsink.unified.result import RunResult

def _record(kind, test, ctx):
    with open("calls.jsonl", "a") as f:
        f.write(json.dumps({"kind": kind, "name": test.name, "url": test.scenarios[0].url if test.scenarios else None,
                            "testid": ctx.testid, "tags": ctx.env.get("PERFSINK_TAGS"), "yaml_dir": str(ctx.yaml_dir),
                            "out_dir_exists": Path(ctx.out_dir).is_dir(), "target": ctx.env.get("TARGET_URL")}) + "\\n")

def run_k6_test(test, ctx):
    _record("k6", test, ctx)
    return RunResult(passed=False, requests=7, errors=2, p95_ms=12.5,
                     failures=["http_req_failed: rate<0.01 (actual 0.28)"],
                     details={"delivery": "accepted 7, written 5, dropped 2", "dropped": 2})

def run_jmeter_test(test, ctx):
    _record("jmeter", test, ctx)
    return RunResult(passed=True, requests=11, errors=0, p95_ms=3.0)

for name, fn in (("k6", run_k6_test), ("jmeter", run_jmeter_test)):
    mod = types.ModuleType("perfsink.unified." + name)
    setattr(mod, fn.__name__, fn)
    sys.modules["perfsink.unified." + name] = mod
"""


def test_k6_and_jmeter_items_call_the_runners(tmp_path: Path, target: Tuple[str, list]) -> None:
    url, seen = target
    (tmp_path / "conftest.py").write_text(FAKE_RUNNERS)
    write_yaml(
        tmp_path,
        "sub/mixed.yml",
        """
        target: {start: perfsink.target}
        k6_tests:
          api:
            tool: k6
            scenarios: [{url: "${TARGET_URL}/api/items"}]
        jmeter_tests:
          jm:
            scenarios: [{url: "${TARGET_URL}/"}]
        workflows:
          flow:
            steps:
              - {name: load, action: k6_test, k6_config: {scenarios: [{url: "${TARGET_URL}/x"}]},
                 }
        """,
    )
    # TARGET_URL preset: the plugin starts no server of its own and uses that URL
    r = run_pytest(tmp_path, "sub/mixed.yml", "--perf-testid", "t1", env={"TARGET_URL": url})
    assert r.returncode == 1, r.stdout + r.stderr
    calls = [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    common = {
        "testid": "t1",
        "tags": "testid=t1",
        "yaml_dir": str(tmp_path / "sub"),
        "out_dir_exists": True,
        "target": url,
    }
    assert calls == [
        {"kind": "k6", "name": "api", "url": f"{url}/api/items", **common},
        {"kind": "jmeter", "name": "jm", "url": f"{url}/", **common},
        {"kind": "k6", "name": "load", "url": f"{url}/x", **common},
    ]
    assert "http_req_failed: rate<0.01 (actual 0.28)" in r.stdout
    assert re.search(r"^FAILED sub/mixed.yml::k6::api: requests=7 errors=2 p95=12.5ms$", r.stdout, re.M)
    assert re.search(r"^passed sub/mixed.yml::jmeter::jm: requests=11 errors=0 p95=3.0ms$", r.stdout, re.M)
    assert "       engine: accepted 7, written 5, dropped 2\n" in r.stdout
    assert "WARNING: 2 points of sub/mixed.yml::k6::api were not written to InfluxDB" in r.stdout
    assert "step load: k6_test failed: http_req_failed: rate<0.01 (actual 0.28) (1 of 1 calls)" in r.stdout


def test_the_file_starts_its_demo_target(tmp_path: Path) -> None:
    write_yaml(
        tmp_path,
        "t.yml",
        """
        target: {start: perfsink.target}
        workflows:
          w:
            concurrent_users: 2
            steps:
              - {method: POST, url: "${TARGET_URL}/api/login", body: {username: u}, extract: {t: "$.data.token"}}
              - {url: "${TARGET_URL}/api/cart", headers: {Authorization: "Bearer {{t}}"}}
        """,
    )
    r = run_pytest(tmp_path, "t.yml", timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^passed t.yml::workflow::w: requests=4 errors=0", r.stdout, re.M)


def test_a_target_that_does_not_start_fails_its_items(tmp_path: Path) -> None:
    write_yaml(
        tmp_path,
        "t.yml",
        """
        target: {start: no_such_module_here}
        workflows:
          w: {steps: [{url: "${TARGET_URL}/"}]}
        """,
    )
    r = run_pytest(tmp_path, "t.yml", timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "target `python -m no_such_module_here` printed no http:// URL" in r.stdout
    assert "No module named no_such_module_here" in r.stdout
    assert re.search(r"^FAILED t.yml::workflow::w: requests=0 errors=0", r.stdout, re.M)
