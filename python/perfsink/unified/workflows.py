"""The workflow runner: ``concurrent_users`` threads, each running the workflow's steps
``iterations`` times, every call published as one ``workflow_step`` point.

A virtual user (one thread) keeps its own HTTP keep-alive connections and its own variables
(``extract:`` results, ``vu``, ``iteration``), so ``{{token}}`` is the token *that user* logged in
with. A call fails on an exception, on an HTTP status >= 400 (or outside ``expect_status``), on a
response whose ``extract:`` path is missing, or when a ``{{var}}`` is undefined; it is timed with a
monotonic clock from sending the request until the whole response body has been read. The item
fails when failed/total calls is above ``thresholds.error_rate`` (default 0: any failure) or the
95th percentile call duration is above ``thresholds.p95_ms``.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Protocol, Tuple

from . import jsonpath
from .expand import ExpandError, render
from .model import JMeterTest, K6Test, RunContext, Step, Workflow
from .result import RunResult

MAX_FAILURE_LINES = 5  # per step, in the pytest report

Runner = Callable[[Any, RunContext], RunResult]


class StepPublisher(Protocol):
    def publish_step(
        self,
        workflow: str,
        step: str,
        duration: float,
        success: bool,
        action: Optional[str] = None,
        iteration: Optional[int] = None,
        tags: Optional[Dict[str, str]] = None,
    ) -> None: ...


class CallFailed(Exception):
    """A call that completed but does not count as a success (status, extract)."""


@dataclass
class StepStats:
    """What one step did across all users and iterations (merged under a lock)."""

    calls: int = 0
    failures: int = 0
    durations: List[float] = field(default_factory=list)
    messages: Dict[str, int] = field(default_factory=dict)  # failure reason -> count


class _Connections:
    """One keep-alive connection per (scheme, host, port), owned by one virtual user."""

    def __init__(self) -> None:
        self._open: Dict[Tuple[str, str, int], http.client.HTTPConnection] = {}

    def request(
        self, method: str, url: str, headers: Dict[str, str], body: Optional[bytes], timeout: float
    ) -> Tuple[int, bytes]:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        key = (parts.scheme, parts.hostname, port)
        target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
        for attempt in (0, 1):
            conn = self._open.get(key)
            reused = conn is not None
            if conn is None:
                cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
                conn = cls(parts.hostname, port, timeout=timeout)
                self._open[key] = conn
            conn.timeout = timeout
            if conn.sock is not None:  # a kept-alive connection: the step's own timeout
                conn.sock.settimeout(timeout)
            try:
                conn.request(method, target, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                if response.will_close:
                    self._drop(key)
                return response.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._drop(key)
                # A keep-alive connection the server closed while idle: retry once on a fresh one.
                if not reused or attempt == 1:
                    raise
            except BaseException:
                self._drop(key)
                raise
        raise AssertionError("unreachable")

    def _drop(self, key: Tuple[str, str, int]) -> None:
        conn = self._open.pop(key, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for key in list(self._open):
            self._drop(key)


def _encode_body(body: Any, headers: Dict[str, str]) -> Optional[bytes]:
    if body is None:
        return None
    if isinstance(body, str):
        return body.encode("utf-8")
    if not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(body).encode("utf-8")


class WorkflowRun:
    """One execution of a workflow; ``run()`` returns its ``RunResult``."""

    def __init__(
        self,
        workflow: Workflow,
        ctx: RunContext,
        publisher: StepPublisher,
        run_k6: Optional[Runner] = None,
        run_jmeter: Optional[Runner] = None,
    ) -> None:
        self.wf = workflow
        self.ctx = ctx
        self.publisher = publisher
        self.run_k6 = run_k6
        self.run_jmeter = run_jmeter
        self.stats: Dict[str, StepStats] = {s.name: StepStats() for s in workflow.steps}
        self._lock = threading.Lock()
        self._crashes: List[str] = []

    # -- one call ----------------------------------------------------------------------------
    def _api_call(self, step: Step, conns: _Connections, variables: Dict[str, Any]) -> None:
        url = render(step.url, variables)
        headers = {str(k): str(v) for k, v in render(step.headers, variables).items()}
        body = _encode_body(render(step.body, variables), headers)
        status, data = conns.request(step.method, str(url), headers, body, step.timeout)
        ok = status in step.expect_status if step.expect_status else status < 400
        if not ok:
            raise CallFailed(f"HTTP {status}")
        if step.extract:
            try:
                document = json.loads(data)
            except ValueError:
                raise CallFailed("extract: the response is not JSON") from None
            for name, path in step.extract.items():
                try:
                    variables[name] = jsonpath.find(document, path)
                except jsonpath.PathError as exc:
                    raise CallFailed(f"extract {name}: {exc}") from None

    def _tool_call(self, step: Step, user: int, iteration: int, call: int) -> None:
        test = step.k6_config if step.action == "k6_test" else step.jmeter_config
        runner = self.run_k6 if step.action == "k6_test" else self.run_jmeter
        if runner is None:
            raise CallFailed(f"{step.action}: runner not available")
        out = self.ctx.out_dir / f"{step.name}-u{user}-i{iteration}-c{call}"
        out.mkdir(parents=True, exist_ok=True)
        sub = RunContext(self.ctx.testid, out, self.ctx.env, self.ctx.yaml_dir, self.ctx.log)
        assert isinstance(test, (K6Test, JMeterTest))
        result = runner(test, sub)
        if not result.passed:
            raise CallFailed(f"{step.action} failed: " + "; ".join(result.failures[:3]))

    def _call(
        self, step: Step, conns: _Connections, variables: Dict[str, Any], user: int, iteration: int, call: int
    ) -> bool:
        """One timed call of ``step``, published and counted; returns success."""
        reason = None
        start = time.monotonic()
        try:
            if step.action == "api_call":
                self._api_call(step, conns, variables)
            else:
                self._tool_call(step, user, iteration, call)
        except CallFailed as exc:
            reason = str(exc)
        except ExpandError as exc:
            reason = str(exc)
        except Exception as exc:  # a failed call is data, never a crashed thread
            reason = f"{type(exc).__name__}: {exc}"
        duration = time.monotonic() - start
        success = reason is None
        self.publisher.publish_step(
            self.wf.name, step.name, duration, success, action=step.action, iteration=iteration
        )
        stats = self.stats[step.name]
        with self._lock:
            stats.calls += 1
            stats.durations.append(duration)
            if reason is not None:
                stats.failures += 1
                stats.messages[reason] = stats.messages.get(reason, 0) + 1
        return success

    # -- one virtual user --------------------------------------------------------------------
    def _user(self, user: int) -> None:
        conns = _Connections()
        variables: Dict[str, Any] = {"vu": user}
        try:
            for iteration in range(self.wf.iterations):
                variables["iteration"] = iteration
                self._iteration(user, iteration, conns, variables)
        except BaseException as exc:  # report, never lose a thread's failure silently
            with self._lock:
                self._crashes.append(f"virtual user {user}: {type(exc).__name__}: {exc}")
        finally:
            conns.close()

    def _iteration(self, user: int, iteration: int, conns: _Connections, variables: Dict[str, Any]) -> None:
        for step in self.wf.steps:
            for call in range(step.iterations):
                if call and step.iteration_config.delay_between:
                    time.sleep(step.iteration_config.delay_between)
                ok = self._call(step, conns, variables, user, iteration, call)
                if not ok and step.iteration_config.fail_on_error:
                    return  # the rest of this iteration is skipped for this user

    # -- the whole run -----------------------------------------------------------------------
    def run(self) -> RunResult:
        users = [
            threading.Thread(target=self._user, args=(u,), name=f"{self.wf.name}-vu{u}", daemon=True)
            for u in range(self.wf.concurrent_users)
        ]
        started = time.monotonic()
        for t in users:
            t.start()
        for t in users:
            t.join()
        return self._result(time.monotonic() - started)

    def _result(self, elapsed: float) -> RunResult:
        requests = sum(s.calls for s in self.stats.values())
        errors = sum(s.failures for s in self.stats.values())
        durations = sorted(d for s in self.stats.values() for d in s.durations)
        p95_ms = percentile(durations, 95) * 1000 if durations else None
        failures: List[str] = list(self._crashes)
        for name, s in self.stats.items():
            shown = sorted(s.messages.items(), key=lambda kv: -kv[1])[:MAX_FAILURE_LINES]
            failures += [f"step {name}: {msg} ({n} of {s.calls} calls)" for msg, n in shown]
        t = self.wf.thresholds
        verdicts: List[str] = []
        rate = errors / requests if requests else 0.0
        if rate > t.error_rate:
            verdicts.append(
                f"error rate {rate:.2%} ({errors} of {requests} calls) above thresholds.error_rate {t.error_rate:.2%}"
            )
        if t.p95_ms is not None and p95_ms is not None and p95_ms > t.p95_ms:
            verdicts.append(f"p95 {p95_ms:.1f} ms above thresholds.p95_ms {t.p95_ms:g} ms")
        details = {
            "elapsed_s": elapsed,
            "steps": {name: {"calls": s.calls, "failures": s.failures} for name, s in self.stats.items()},
        }
        return RunResult(
            passed=not verdicts and not self._crashes,
            requests=requests,
            errors=errors,
            p95_ms=p95_ms,
            failures=verdicts + failures,
            details=details,
        )


def percentile(sorted_values: List[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil without floats drifting
    return sorted_values[int(rank) - 1]


def run_workflow(
    workflow: Workflow,
    ctx: RunContext,
    publisher: StepPublisher,
    run_k6: Optional[Runner] = None,
    run_jmeter: Optional[Runner] = None,
) -> RunResult:
    """Run ``workflow`` (its strings already ``${VAR}``-expanded) and publish every call."""
    return WorkflowRun(workflow, ctx, publisher, run_k6, run_jmeter).run()
