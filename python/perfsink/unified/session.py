"""State of one unified run (one pytest session): the testid, the environment handed to k6 and
JMeter, the workflow publisher, the demo targets, and every item's result for the summary.

Kept apart from the pytest hooks so the rules (testid, environment, publisher options) live in
one place whatever drives the run.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from .model import RunContext, Suite, Target
from .result import RunResult
from .workflows import run_workflow

# The plugin's publisher gives up on undelivered points after this long at close (overridable).
DEFAULT_CLOSE_TIMEOUT_MS = "5000"
TARGET_START_TIMEOUT_S = 20.0
_URL_RE = re.compile(r"(https?://\S+)")


def default_testid(yaml_path: Path, now: Optional[_dt.datetime] = None) -> str:
    """``<yaml stem>-<UTC yyyymmddThhmmss>``."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    stem = re.sub(r"[^\w.:-]", "_", yaml_path.stem)
    return f"{stem}-{now.strftime('%Y%m%dT%H%M%S')}"


def with_testid(tags: str, testid: str) -> str:
    """``PERFSINK_TAGS`` (``k=v,k2=v2``) with ``testid`` set to ours (any other testid replaced)."""
    kept = [t for t in tags.split(",") if t.strip() and not t.strip().startswith("testid=")]
    return ",".join([*kept, f"testid={testid}"])


class TargetError(RuntimeError):
    """The demo target of a file could not be started."""


class _NullPublisher:
    """Stands in when the publisher cannot be opened: the steps still run and are counted."""

    enabled = False

    def publish_step(self, *args: Any, **kwargs: Any) -> None:
        pass


class Targets:
    """Demo targets (``target:`` in a YAML file), started once per (module, port) and stopped at the end."""

    def __init__(self) -> None:
        self._running: Dict[Tuple[str, int], Tuple[subprocess.Popen, str]] = {}  # type: ignore[type-arg]

    def url(self, target: Target) -> str:
        """The target's base URL: the environment's ``target.env`` when set, else a started server's."""
        preset = os.environ.get(target.env)
        if preset:
            return preset
        key = (target.start, target.port)
        if key not in self._running:
            self._running[key] = self._start(target)
        return self._running[key][1]

    @staticmethod
    def _start(target: Target) -> Tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
        env = dict(os.environ)
        # The package's own directory first, so `perfsink.target` works from a source checkout too.
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", target.start, "--port", str(target.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        found: List[str] = []
        seen: List[str] = []

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                seen.append(line.rstrip())
                m = _URL_RE.search(line)
                if m:
                    found.append(m.group(1).rstrip("/"))
                    break
            # Keep draining so the server never blocks on a full pipe.
            for _ in proc.stdout:
                pass

        threading.Thread(target=read, daemon=True, name="perfsink-target-stdout").start()
        deadline = TARGET_START_TIMEOUT_S
        step = 0.05
        while not found and proc.poll() is None and deadline > 0:
            threading.Event().wait(step)
            deadline -= step
        if not found:
            proc.kill()
            proc.wait()
            raise TargetError(
                f"target `python -m {target.start}` printed no http:// URL within "
                f"{TARGET_START_TIMEOUT_S:g}s: {' | '.join(seen[-5:]) or 'no output'}"
            )
        return proc, found[0]

    def stop(self) -> None:
        for proc, _ in self._running.values():
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._running.clear()


class PerfSession:
    """One run: create it, ``start()`` once the items are known, ``run()`` each, ``finish()``."""

    def __init__(self, testid: Optional[str], basetemp: Callable[[], Path]) -> None:
        self.testid = testid or ""
        self._basetemp = basetemp
        self._basetemp_path: Optional[Path] = None
        self.targets = Targets()
        self.results: List[Tuple[str, RunResult]] = []
        self.publisher_stats: Optional[Dict[str, Any]] = None
        self.notes: List[str] = []
        self._publisher: Any = None
        self._lock = threading.Lock()

    # -- start ---------------------------------------------------------------------------------
    def start(self, first_yaml: Path) -> None:
        if not self.testid:
            self.testid = default_testid(first_yaml)

    def header_lines(self) -> List[str]:
        pub = self.publisher()  # the engine resolves where points go; Python never does
        where = (
            f"InfluxDB {pub.destination}"
            if getattr(pub, "enabled", False)
            else "INFLUXDB_URL is not set: the tests run, nothing is written to InfluxDB"
        )
        return [f"perfsink: testid={self.testid}; {where}"]

    # -- per item --------------------------------------------------------------------------------
    def base_env(self) -> Dict[str, str]:
        env = dict(os.environ)
        env["PERFSINK_TAGS"] = with_testid(env.get("PERFSINK_TAGS", ""), self.testid)
        # One database for the whole run: the one the engine resolved for the publisher
        # (INFLUXDB_DB, the URL's path, or k6), also for the JMeter listener, whose own default
        # would be `jmeter`.
        db = getattr(self.publisher(), "database", None)
        if db:
            env["INFLUXDB_DB"] = db
        return env

    def context(self, suite: Suite, kind: str, name: str, log: Callable[[str], None]) -> RunContext:
        env = self.base_env()
        if suite.target is not None:
            env[suite.target.env] = self.targets.url(suite.target)
        if suite.reporting.output_dir:
            root = Path(suite.reporting.output_dir)  # relative: to the working directory, as in APT
        else:
            if self._basetemp_path is None:
                self._basetemp_path = self._basetemp()
            root = self._basetemp_path / "perfsink"
        safe = re.sub(r"[^\w.-]", "_", f"{suite.path.stem}-{kind}-{name}")
        out_dir = root / self.testid / safe
        out_dir.mkdir(parents=True, exist_ok=True)
        return RunContext(self.testid, out_dir, env, suite.path.parent.resolve(), log)

    def run(self, kind: str, test: Any, ctx: RunContext) -> RunResult:
        if kind == "k6":
            return _runner("k6")(test, ctx)
        if kind == "jmeter":
            return _runner("jmeter")(test, ctx)
        return run_workflow(test, ctx, self.publisher(), _runner("k6"), _runner("jmeter"))

    def record(self, nodeid: str, result: RunResult) -> None:
        self.results.append((nodeid, result))

    def publisher(self) -> Any:
        """The workflow publisher, opened on first use with this run's testid."""
        with self._lock:
            if self._publisher is None:
                self._publisher = self._open_publisher()
            return self._publisher

    def _open_publisher(self) -> Any:
        # Options override the environment (INFLUXDB_*, PERFSINK_*) key by key, short names.
        options = {"tags": with_testid(os.environ.get("PERFSINK_TAGS", ""), self.testid)}
        if "PERFSINK_CLOSE_TIMEOUT_MS" not in os.environ:
            options["close_timeout_ms"] = DEFAULT_CLOSE_TIMEOUT_MS
        try:
            from perfsink import InfluxDBPublisher

            return InfluxDBPublisher(**options)
        except Exception as exc:  # the steps still run; the summary says why nothing was written
            self.notes.append(f"workflow points are not published: {type(exc).__name__}: {exc}")
            return _NullPublisher()

    # -- end -------------------------------------------------------------------------------------
    def finish(self) -> None:
        try:
            if self._publisher is not None:
                self._close_publisher()
        finally:
            self.targets.stop()

    def _close_publisher(self) -> None:
        pub = self._publisher
        if not getattr(pub, "enabled", True):
            return  # no INFLUXDB_URL: the header said so, there is nothing to count
        try:
            report = pub.close()
            stats = getattr(report, "stats", None) or pub.stats()
        except Exception as exc:
            self.notes.append(f"publisher close: {type(exc).__name__}: {exc}")
            return
        self.publisher_stats = stats.as_dict() if hasattr(stats, "as_dict") else dict(stats)
        if report is not None and not getattr(report, "delivered", True):
            self.notes.append(
                f"workflow publisher: {getattr(report, 'message', 'not every point was delivered')}"
            )

    def summary_lines(self) -> List[str]:
        if not self.results and not self.notes:
            return []
        lines = []
        for nodeid, r in self.results:
            p95 = "-" if r.p95_ms is None else f"{r.p95_ms:.1f}ms"
            verdict = "passed" if r.passed else "FAILED"
            lines.append(f"{verdict:6} {nodeid}: requests={r.requests} errors={r.errors} p95={p95}")
            # k6 and JMeter run their own engine: the runner reports its delivery line.
            if r.details.get("delivery"):
                lines.append(f"       engine: {r.details['delivery']}")
            if int(r.details.get("dropped") or 0):
                lines.append(
                    f"WARNING: {r.details['dropped']} points of {nodeid} were not written to InfluxDB"
                )
        s = self.publisher_stats
        if s:
            shown = " ".join(f"{k}={s[k]}" for k in _SHOWN_COUNTERS if k in s)
            lines.append(f"workflow points (engine counters): {shown}")
            lost = int(s.get("dropped", 0)) + int(s.get("rejected", 0))
            if lost:
                lines.append(f"WARNING: {lost} workflow points were not written to InfluxDB")
        lines += [f"note: {n}" for n in self.notes]
        return lines


# The publisher's counters worth a line in the summary (all of them are in InfluxDB's self-metrics).
_SHOWN_COUNTERS = ("accepted", "written", "retried", "rejected", "dropped", "spooled")


def _runner(kind: str) -> Callable[[Any, RunContext], RunResult]:
    """``run_k6_test`` / ``run_jmeter_test``, imported when first needed (a missing runner fails
    only the items that need it)."""
    try:
        module = importlib.import_module(f"{__package__}.{kind}")
        found: Callable[[Any, RunContext], RunResult] = getattr(module, f"run_{kind}_test")
        return found
    except (ImportError, AttributeError) as exc:
        message = f"the {kind} runner is not available: {exc}"

    def unavailable(test: Any, ctx: RunContext) -> RunResult:
        return RunResult(passed=False, failures=[message])

    return unavailable
