"""pytest plugin (entry point ``pytest11``: ``perfsink``): runs unified YAML files.

``pytest examples/unified_performance_test.yml`` collects one item per k6 test, JMeter test and
workflow (``file::k6::name``, ``file::jmeter::name``, ``file::workflow::name``). Collected: any
``*.yml``/``*.yaml`` named on the command line, and ``*_performance_test.yml``/``.yaml`` files
pytest finds while walking directories; a file is unified when it has ``k6_tests``,
``jmeter_tests`` or ``workflows``. The format is documented in the README, "Unified YAML".

One ``testid`` tags everything the run writes (k6 and JMeter through ``PERFSINK_TAGS`` in their
environment, workflows through this process's publisher); the run ends with a per-item summary
and the publisher's counters.
"""

from __future__ import annotations

import re
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, List, Optional, Union

import pytest

from .unified.expand import ExpandError, expand_env
from .unified.loader import LoadError, is_unified, load_suite
from .unified.model import JMeterTest, K6Test, RunContext, Suite, Workflow
from .unified.result import RunResult
from .unified.session import PerfSession, TargetError

KINDS = ("k6", "jmeter", "workflow")
_PATTERN_SUFFIXES = ("_performance_test.yml", "_performance_test.yaml")
_TESTID_RE = re.compile(r"^[\w.:-]+$")

Test = Union[K6Test, JMeterTest, Workflow]


class UnifiedYAMLWarning(pytest.PytestWarning):
    """An unknown or ignored key in a unified YAML file."""


class UnifiedTestFailed(Exception):
    """The item's verdict was 'failed'; carries the runner's result for the report."""

    def __init__(self, result: RunResult) -> None:
        super().__init__("; ".join(result.failures) or "failed")
        self.result = result


# -- options and configuration ----------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("perfsink", "perfsink unified YAML tests")
    group.addoption(
        "--perf-tags",
        default="",
        help="comma-separated tags: run only unified tests having one of them",
    )
    group.addoption(
        "--perf-exclude-tags",
        default="",
        help="comma-separated tags: skip unified tests having any of them",
    )
    group.addoption(
        "--perf-testid",
        default=None,
        help="the testid tag of every point this run writes (default <yaml stem>-<UTC yyyymmddThhmmss>)",
    )


def pytest_configure(config: pytest.Config) -> None:
    for kind in KINDS:
        config.addinivalue_line("markers", f"{kind}: a unified YAML {kind} test (perfsink)")
    testid = config.getoption("--perf-testid")
    if testid is not None and not _TESTID_RE.match(testid):
        raise pytest.UsageError(f"--perf-testid {testid!r}: use letters, digits and _ . : -")
    config.stash[_SESSION] = PerfSession(testid=testid, basetemp=lambda: _basetemp(config))


_SESSION = pytest.StashKey[PerfSession]()


def _basetemp(config: pytest.Config) -> Path:
    """pytest's temporary root (``--basetemp``, old runs pruned by pytest); asked when first needed,
    after pytest's own tmpdir plugin has configured it."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        return Path(factory.getbasetemp())
    return Path(tempfile.mkdtemp(prefix="perfsink-"))


def _session(config: pytest.Config) -> PerfSession:
    return config.stash[_SESSION]


# -- collection ---------------------------------------------------------------------------------


def _named_on_command_line(config: pytest.Config, file_path: Path) -> bool:
    base = config.invocation_params.dir
    for arg in config.args:
        candidate = Path(arg.split("::", 1)[0])
        if not candidate.is_absolute():
            candidate = Path(base) / candidate
        try:
            if candidate.resolve() == file_path.resolve():
                return True
        except OSError:
            continue
    return False


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> Optional["UnifiedFile"]:
    if file_path.suffix not in (".yml", ".yaml"):
        return None
    named = _named_on_command_line(parent.config, file_path)
    if not (named or file_path.name.endswith(_PATTERN_SUFFIXES)):
        return None
    try:
        if not is_unified(file_path) and not named:
            return None  # some other YAML file found while walking: not ours
    except LoadError:
        pass  # malformed: UnifiedFile.collect() reports it as a collection error with the line
    # A file named on the command line that is not unified gets the loader's error, not silence.
    return UnifiedFile.from_parent(parent, path=file_path)


class UnifiedFile(pytest.File):
    """A unified YAML file: one child collector per kind (k6, jmeter, workflow)."""

    def collect(self) -> Iterator["KindCollector"]:
        try:
            suite = load_suite(self.path)
        except LoadError as exc:
            raise self.CollectError(str(exc)) from None
        for w in suite.warnings:
            warnings.warn_explicit(UnifiedYAMLWarning(str(w)), UnifiedYAMLWarning, str(w.file), w.line)
        for kind, tests in (
            ("k6", suite.k6_tests),
            ("jmeter", suite.jmeter_tests),
            ("workflow", suite.workflows),
        ):
            if tests:
                collector = KindCollector.from_parent(self, name=kind)
                collector.suite, collector.kind, collector.tests = suite, kind, list(tests)
                yield collector


class KindCollector(pytest.Collector):
    """``file::k6``: gives node ids ``file::k6::name`` that pytest can select on the command line."""

    suite: Suite
    kind: str
    tests: List[Test]

    def collect(self) -> Iterator["UnifiedItem"]:
        for test in self.tests:
            item = UnifiedItem.from_parent(self, name=test.name)
            item.setup_test(self.suite, self.kind, test)
            yield item


class UnifiedItem(pytest.Item):
    """One k6 test, JMeter test or workflow."""

    suite: Suite
    kind: str
    test: Test
    perf_tags: List[str]

    def setup_test(self, suite: Suite, kind: str, test: Test) -> None:
        self.suite, self.kind, self.test = suite, kind, test
        self.perf_tags = list(dict.fromkeys([*suite.tags, *test.tags]))
        for tag in self.perf_tags:
            # Registered first, so `--strict-markers` accepts the YAML's tags.
            self.config.addinivalue_line("markers", f"{tag}: tag from a unified YAML file")
        for marker in [kind, *self.perf_tags]:
            self.add_marker(marker)

    def runtest(self) -> None:
        session = _session(self.config)
        try:
            ctx = session.context(self.suite, self.kind, self.test.name, print)
            test = expand_env(self.test, ctx.env)
        except (ExpandError, TargetError) as exc:
            result = RunResult(passed=False, failures=[f"{self.path}:{self.test.line}: {exc}"])
            session.record(self.nodeid, result)
            raise UnifiedTestFailed(result) from None
        result = session.run(self.kind, test, ctx)
        session.record(self.nodeid, result)
        if not result.passed:
            raise UnifiedTestFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, UnifiedTestFailed):
            r = excinfo.value.result
            lines = [f"{self.kind} test {self.test.name!r} failed ({self.path}:{self.test.line})"]
            lines += [f"  {line}" for line in r.failures]
            lines.append(f"  requests={r.requests} errors={r.errors} p95={_ms(r.p95_ms)}")
            return "\n".join(lines)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> Any:
        return self.path, max(self.test.line - 1, 0), f"{self.kind}: {self.test.name}"


def _split(option: str) -> List[str]:
    return [t.strip() for t in option.split(",") if t.strip()]


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    include = set(_split(config.getoption("--perf-tags")))
    exclude = set(_split(config.getoption("--perf-exclude-tags")))
    if not include and not exclude:
        return
    keep, drop = [], []
    for item in items:
        if isinstance(item, UnifiedItem):
            tags = set(item.perf_tags)
            if (include and not tags & include) or tags & exclude:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_collection_finish(session: pytest.Session) -> None:
    perf = _session(session.config)
    units = [i for i in session.items if isinstance(i, UnifiedItem)]
    if not units:
        return
    perf.start(first_yaml=units[0].path)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        for line in perf.header_lines():
            reporter.write_line(line)


def pytest_sessionfinish(session: pytest.Session) -> None:
    _session(session.config).finish()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    perf = _session(terminalreporter.config)
    lines = perf.summary_lines()
    if lines:
        terminalreporter.write_sep("-", f"perfsink summary (testid={perf.testid})")
        for line in lines:
            terminalreporter.write_line(line)


def _ms(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}ms"
