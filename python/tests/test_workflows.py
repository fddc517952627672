"""The workflow runner against the demo target (in this process), with a recording publisher."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

import perfsink.target as target_mod
from perfsink.unified.expand import expand_env
from perfsink.unified.loader import load_suite
from perfsink.unified.model import JMeterTest, K6Test, RunContext, Workflow
from perfsink.unified.result import RunResult
from perfsink.unified.workflows import percentile, run_workflow


class Recorder:
    """A publisher that keeps every publish_step call (and the thread it came from)."""

    def __init__(self) -> None:
        self.calls: List[Dict[str, Any]] = []
        self._lock = threading.Lock()

    def publish_step(
        self,
        workflow: str,
        step: str,
        duration: float,
        success: bool,
        action: Optional[str] = None,
        iteration: Optional[int] = None,
        tags: Optional[Dict[str, str]] = None,
    ) -> None:
        with self._lock:
            self.calls.append(
                dict(
                    workflow=workflow,
                    step=step,
                    duration=duration,
                    success=success,
                    action=action,
                    iteration=iteration,
                    thread=threading.get_ident(),
                )
            )


Seen = List[Tuple[str, str, Dict[str, str], bytes, int, Any]]


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[Tuple[str, Seen]]:
    """The demo target on a free port; every request and its answer recorded."""
    seen: Seen = []
    real_route = target_mod.route

    def recording(
        store: Any, method: str, path: str, query: str, headers: Dict[str, str], body: bytes
    ) -> Any:
        status, payload = real_route(store, method, path, query, headers, body)
        seen.append((method, path, headers, body, status, payload))
        return status, payload

    monkeypatch.setattr(target_mod, "route", recording)
    server = target_mod.serve("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def workflow(tmp_path: Path, text: str, url: str, name: str = "w") -> Workflow:
    path = tmp_path / "wf.yml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    suite = load_suite(path)
    assert suite.warnings == []
    wf = next(w for w in suite.workflows if w.name == name)
    return expand_env(wf, {"T": url})


def ctx(tmp_path: Path) -> RunContext:
    return RunContext("tid-1", tmp_path / "out", {}, tmp_path, lambda s: None)


def test_every_call_published_and_counted(tmp_path: Path, target: Tuple[str, Seen]) -> None:
    url, seen = target
    wf = workflow(
        tmp_path,
        """
        workflows:
          w:
            iterations: 3
            concurrent_users: 2
            steps:
              - {name: home, url: "${T}/"}
              - {name: items, url: "${T}/api/items", iterations: 2}
        """,
        url,
    )
    pub = Recorder()
    result = run_workflow(wf, ctx(tmp_path), pub)
    assert result.passed and (result.requests, result.errors) == (18, 0)
    assert len(pub.calls) == 18 == len(seen)
    assert sorted({c["step"] for c in pub.calls}) == ["home", "items"]
    assert {c["workflow"] for c in pub.calls} == {"w"} and {c["action"] for c in pub.calls} == {"api_call"}
    assert sorted(c["iteration"] for c in pub.calls if c["step"] == "home") == [0, 0, 1, 1, 2, 2]
    assert all(c["success"] and isinstance(c["duration"], float) and c["duration"] > 0 for c in pub.calls)
    assert result.details["steps"] == {
        "home": {"calls": 6, "failures": 0},
        "items": {"calls": 12, "failures": 0},
    }
    assert result.p95_ms is not None and result.p95_ms > 0


def test_wrong_status_and_exceptions_are_failed_steps(tmp_path: Path, target: Tuple[str, Seen]) -> None:
    url, _ = target
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    wf = workflow(
        tmp_path,
        f"""
        workflows:
          w:
            thresholds: {{error_rate: 1.0}}
            steps:
              - {{name: e500, url: "${{T}}/status/500"}}
              - {{name: e404, url: "${{T}}/nope"}}
              - {{name: created, url: "${{T}}/status/201"}}
              - {{name: want_201, url: "${{T}}/status/200", expect_status: 201}}
              - {{name: refused, url: "{closed}/", timeout: 2}}
              - {{name: not_json, url: "${{T}}/", extract: {{x: "$.a"}}}}
              - {{name: no_path, url: "${{T}}/api/items", extract: {{x: "$.data[9].id"}}}}
              - {{name: undefined, url: "${{T}}/{{{{nothing}}}}"}}
        """,
        url,
    )
    pub = Recorder()
    result = run_workflow(wf, ctx(tmp_path), pub)
    status = {c["step"]: c["success"] for c in pub.calls}
    assert status == {
        "e500": False,
        "e404": False,
        "created": True,
        "want_201": False,
        "refused": False,
        "not_json": False,
        "no_path": False,
        "undefined": False,
    }
    assert result.passed  # error_rate 1.0 allows everything
    text = "\n".join(result.failures)
    for expected in (
        "step e500: HTTP 500",
        "step e404: HTTP 404",
        "step want_201: HTTP 200",
        "step refused: ConnectionRefusedError",
        "step not_json: extract: the response is not JSON",
        "step no_path: extract x: $.data[9].id: no value at 9",
        "step undefined: variable {{nothing}} is not defined",
    ):
        assert expected in text


def test_extract_and_templating_per_virtual_user(tmp_path: Path, target: Tuple[str, Seen]) -> None:
    url, seen = target
    wf = workflow(
        tmp_path,
        """
        workflows:
          w:
            concurrent_users: 3
            iterations: 2
            steps:
              - name: login
                method: POST
                url: ${T}/api/login
                body: {username: "user{{vu}}", password: x}
                extract: {token: "$.data.token", who: "$.data.user"}
              - name: add
                method: POST
                url: ${T}/api/cart
                headers: {Authorization: "Bearer {{token}}"}
                body: {item_id: 2}
              - name: checkout
                method: POST
                url: ${T}/api/checkout
                headers: {Authorization: "Bearer {{token}}"}
                extract: {count: "$.data.items"}
              - name: echo
                method: POST
                url: ${T}/echo?it={{iteration}}
                headers: {X-User: "{{who}}"}
                body: {count: "{{count}}", token: "{{token}}", user: "{{who}}"}
        """,
        url,
    )
    result = run_workflow(wf, ctx(tmp_path), Recorder())
    assert result.passed and result.requests == 24, result.failures
    logins = [
        (json.loads(b)["username"], p["data"]["token"])
        for m, path, h, b, s, p in seen
        if path == "/api/login"
    ]
    assert sorted(u for u, _ in logins) == ["user0", "user0", "user1", "user1", "user2", "user2"]
    echoes = [(h, json.loads(b)) for m, path, h, b, s, p in seen if path == "/echo"]
    assert len(echoes) == 6
    for headers, body in echoes:
        # each user's own token (its carts never mix: one item per checkout), the number kept a number
        assert body["count"] == 1 and headers["x-user"] == body["user"]
        assert (body["user"], body["token"]) in logins
        assert headers["content-type"] == "application/json"
    carts = [h["authorization"] for m, path, h, b, s, p in seen if path == "/api/cart"]
    assert len(set(carts)) == 6  # a fresh token per iteration, used by the same user


def test_users_really_run_concurrently(tmp_path: Path, target: Tuple[str, Seen]) -> None:
    url, _ = target
    wf = workflow(
        tmp_path,
        """
        workflows:
          w:
            concurrent_users: 5
            steps: [{url: "${T}/delay/400"}]
        """,
        url,
    )
    pub = Recorder()
    start = time.monotonic()
    result = run_workflow(wf, ctx(tmp_path), pub)
    elapsed = time.monotonic() - start
    assert result.passed and result.requests == 5
    assert len({c["thread"] for c in pub.calls}) == 5
    assert elapsed < 1.2, f"5 x 400 ms took {elapsed:.2f} s: not concurrent"  # sequential: >= 2 s


def test_delay_between_and_fail_on_error(tmp_path: Path, target: Tuple[str, Seen]) -> None:
    url, _ = target
    wf = workflow(
        tmp_path,
        """
        workflows:
          slow:
            steps:
              - {url: "${T}/", iterations: 3, iteration_config: {delay_between: 0.25}}
          stop:
            iterations: 2
            thresholds: {error_rate: 1.0}
            steps:
              - {name: bad, url: "${T}/status/503", iterations: 3, iteration_config: {fail_on_error: true}}
              - {name: never, url: "${T}/"}
          go_on:
            thresholds: {error_rate: 1.0}
            steps:
              - {name: bad, url: "${T}/status/503", iterations: 3}
              - {name: after, url: "${T}/"}
        """,
        url,
        name="slow",
    )
    start = time.monotonic()
    assert run_workflow(wf, ctx(tmp_path), Recorder()).requests == 3
    assert time.monotonic() - start >= 0.5  # two delays between three calls, none after the last

    suite = load_suite(tmp_path / "wf.yml")
    stop, go_on = (expand_env(w, {"T": url}) for w in suite.workflows[1:])
    pub = Recorder()
    r = run_workflow(stop, ctx(tmp_path), pub)
    assert [c["step"] for c in pub.calls] == [
        "bad",
        "bad",
    ] and r.requests == 2  # one failed call per iteration
    pub = Recorder()
    run_workflow(go_on, ctx(tmp_path), pub)
    assert [c["step"] for c in pub.calls] == ["bad", "bad", "bad", "after"]


def test_thresholds_decide_the_verdict(tmp_path: Path, target: Tuple[str, Seen]) -> None:
    url, _ = target
    text = """
        workflows:
          strict:
            steps: [{url: "${T}/"}, {url: "${T}/status/500"}, {url: "${T}/"}, {url: "${T}/"}]
          lenient:
            thresholds: {error_rate: 0.25}
            steps: [{url: "${T}/"}, {url: "${T}/status/500"}, {url: "${T}/"}, {url: "${T}/"}]
          fast:
            thresholds: {p95_ms: 50}
            steps: [{url: "${T}/delay/150"}]
        """
    results = {
        n: run_workflow(workflow(tmp_path, text, url, n), ctx(tmp_path), Recorder())
        for n in ("strict", "lenient", "fast")
    }
    assert not results["strict"].passed
    assert (
        results["strict"].failures[0] == "error rate 25.00% (1 of 4 calls) above thresholds.error_rate 0.00%"
    )
    assert results["lenient"].passed and results["lenient"].errors == 1
    assert not results["fast"].passed and "above thresholds.p95_ms 50 ms" in results["fast"].failures[0]


def test_tool_steps_delegate_to_the_runners(tmp_path: Path) -> None:
    path = tmp_path / "wf.yml"
    path.write_text(textwrap.dedent("""
        workflows:
          w:
            iterations: 2
            thresholds: {error_rate: 1.0}
            steps:
              - {name: load, action: k6_test, k6_config: {scenarios: [{url: "http://h/"}], options: {vus: 1}}}
              - {name: jm, action: jmeter_test, jmeter_config: {jmx_file: plan.jmx}}
        """))
    wf = load_suite(path).workflows[0]
    calls: List[Tuple[Any, RunContext]] = []

    def k6(test: K6Test, c: RunContext) -> RunResult:
        calls.append((test, c))
        return RunResult(passed=True, requests=3)

    def jmeter(test: JMeterTest, c: RunContext) -> RunResult:
        calls.append((test, c))
        return RunResult(passed=False, failures=["error rate 50% above 0%"])

    pub = Recorder()
    result = run_workflow(wf, ctx(tmp_path), pub, k6, jmeter)
    assert [type(t).__name__ for t, _ in calls] == ["K6Test", "JMeterTest", "K6Test", "JMeterTest"]
    assert all(c.testid == "tid-1" and c.out_dir.is_dir() for _, c in calls)
    assert len({c.out_dir for _, c in calls}) == 4  # every run its own directory
    assert [(c["step"], c["action"], c["success"]) for c in pub.calls[:2]] == [
        ("load", "k6_test", True),
        ("jm", "jmeter_test", False),
    ]
    assert "step jm: jmeter_test failed: error rate 50% above 0% (2 of 2 calls)" in result.failures


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 95) == 95.0 and percentile(values, 100) == 100.0
    assert percentile([7.0], 95) == 7.0 and percentile([1.0, 2.0], 50) == 1.0
