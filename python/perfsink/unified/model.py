"""The unified YAML format as dataclasses: what the loader builds and the runners consume.

The loader (``loader.py``) fills these from a YAML file and checks every type; the runners
(``k6.py``, ``jmeter.py``, ``workflows.py``) only read them. ``line`` is the 1-based line of the
entry's key in its YAML file (0 when built in code), for error messages.

Strings may hold ``${VAR}`` / ``${VAR:-default}``: the loader keeps them as written; the plugin
expands them against ``RunContext.env`` right before a test runs (``expand.py``), because some
values (``${TARGET_URL}``) exist only once the run has started. Runners therefore receive
tests whose strings are already expanded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
STEP_ACTIONS = ("api_call", "k6_test", "jmeter_test")


@dataclass
class Scenario:
    """One HTTP request of a k6 or JMeter test (``scenarios:`` list entry)."""

    name: str
    url: str  # full URL, query string included (JMeter keeps it too)
    method: str = "GET"  # upper case, one of HTTP_METHODS
    headers: Dict[str, str] = field(default_factory=dict)
    body: Any = None  # None: no body; dict/list: sent as JSON; str: sent as is
    line: int = 0


@dataclass
class Thresholds:
    """Pass/fail limits of a JMeter test or a workflow (k6 uses k6's own ``options.thresholds``).

    ``error_rate``: the largest allowed failed/total ratio (0 = any failure fails the item);
    ``p95_ms``: when set, the item fails if the 95th percentile duration is above it.
    """

    error_rate: float = 0.0
    p95_ms: Optional[float] = None
    line: int = 0


@dataclass
class K6Test:
    """A ``k6_tests:`` entry. Either ``script`` (the user's own) or ``scenarios`` (generated)."""

    name: str  # the YAML key
    scenarios: List[Scenario] = field(default_factory=list)
    options: Dict[str, Any] = field(default_factory=dict)  # k6 `options`, passed through unchanged
    script: Optional[str] = None  # path as written; relative paths resolve against ctx.yaml_dir
    tool: Optional[str] = None  # "k6" when given; optional
    tags: List[str] = field(default_factory=list)  # pytest markers, not InfluxDB tags
    description: str = ""
    line: int = 0


@dataclass
class ThreadGroupConfig:
    """``thread_group_config`` of a JMeter test.

    ``duration`` (seconds) set -> the scheduler is on and the thread group runs that long
    (``loops`` then defaults to -1, forever within the duration); ``duration`` unset -> each
    thread runs ``loops`` times (default 1).
    """

    num_threads: int = 10
    ramp_time: float = 10.0
    duration: Optional[float] = None
    loops: Optional[int] = None
    line: int = 0


@dataclass
class JMeterTest:
    """A ``jmeter_tests:`` entry. Either ``jmx_file`` (the user's own) or ``scenarios`` (generated)."""

    name: str  # the YAML key
    scenarios: List[Scenario] = field(default_factory=list)
    thread_group_config: ThreadGroupConfig = field(default_factory=ThreadGroupConfig)
    jmx_file: Optional[str] = None  # path as written; relative paths resolve against ctx.yaml_dir
    thresholds: Thresholds = field(default_factory=Thresholds)
    properties: Dict[str, str] = field(default_factory=dict)  # passed to JMeter as -Jname=value
    tool: Optional[str] = None  # "jmeter" when given; optional
    tags: List[str] = field(default_factory=list)  # pytest markers
    description: str = ""
    line: int = 0


@dataclass
class IterationConfig:
    """``iteration_config`` of a workflow step.

    ``delay_between``: seconds slept between two calls of the step (not after the last);
    ``fail_on_error``: a failed call ends the current workflow iteration of that virtual user
    (the remaining calls and steps of the iteration are skipped).
    """

    delay_between: float = 0.0
    fail_on_error: bool = False
    line: int = 0


@dataclass
class Step:
    """One step of a workflow, executed ``iterations`` times in a row per workflow iteration."""

    name: str
    action: str = "api_call"  # one of STEP_ACTIONS
    url: Optional[str] = None  # api_call: required
    method: str = "GET"
    headers: Dict[str, str] = field(default_factory=dict)
    body: Any = None  # dict/list: sent as JSON; str: sent as is
    expect_status: Optional[List[int]] = None  # None: success is status < 400
    extract: Dict[str, str] = field(default_factory=dict)  # variable -> JSONPath ($.a.b, $.a[0].b)
    timeout: float = 30.0  # seconds, per HTTP call
    iterations: int = 1
    iteration_config: IterationConfig = field(default_factory=IterationConfig)
    k6_config: Optional[K6Test] = None  # action k6_test (named after the step)
    jmeter_config: Optional[JMeterTest] = None  # action jmeter_test (named after the step)
    line: int = 0


@dataclass
class Workflow:
    """A ``workflows:`` entry: ``concurrent_users`` threads each run ``iterations`` iterations."""

    name: str  # the YAML key: the `workflow` tag in InfluxDB and the pytest item name
    display_name: str = ""  # `name:` in the YAML, for humans only
    description: str = ""
    iterations: int = 1  # per virtual user
    concurrent_users: int = 1
    steps: List[Step] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)
    tags: List[str] = field(default_factory=list)  # pytest markers
    line: int = 0


@dataclass
class Target:
    """``target:``: a demo HTTP server the plugin starts for the file (see target.py).

    When ``env`` (default ``TARGET_URL``) is already set in the environment nothing is started
    and that URL is used; otherwise ``python -m <start> --port <port>`` runs for the file's items
    and ``${TARGET_URL}`` expands to ``http://127.0.0.1:<port>``.
    """

    start: str = "perfsink.target"  # a module run with `python -m`
    port: int = 0  # 0: a free port
    env: str = "TARGET_URL"
    line: int = 0


@dataclass
class Reporting:
    """``reporting:``: where generated scripts and results go (``output_dir``, else pytest's tmp)."""

    output_dir: Optional[str] = None
    line: int = 0


@dataclass
class Suite:
    """One unified YAML file."""

    path: Path
    name: str  # test_info.test_suite_name, else the file's stem
    description: str = ""
    tags: List[str] = field(default_factory=list)  # test_info.tags: markers of every item
    k6_tests: List[K6Test] = field(default_factory=list)
    jmeter_tests: List[JMeterTest] = field(default_factory=list)
    workflows: List[Workflow] = field(default_factory=list)
    reporting: Reporting = field(default_factory=Reporting)
    target: Optional[Target] = None
    warnings: List[str] = field(default_factory=list)  # "file:line: unknown key 'x' in ..." lines


@dataclass
class RunContext:
    """What a runner needs besides the test itself."""

    testid: str
    out_dir: Path  # per item: generated scripts, results (created by the caller)
    env: Dict[str, str]  # environment for child processes (INFLUXDB_*, PERFSINK_TAGS=testid=<id>)
    yaml_dir: Path  # relative script:/jmx_file: paths resolve against it
    log: Callable[[str], None] = print
