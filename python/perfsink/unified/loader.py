"""Unified YAML file -> ``model.Suite``, with the file and line of every key in every message.

The file is *composed* (PyYAML's node tree keeps each node's start mark), then walked by hand so
that a wrong type is reported as ``file:line: key.path: message`` (``LoadError``) and an unknown
key becomes a warning naming its file, line and key path (``Suite.warnings``). Only scalars are
constructed by PyYAML's safe constructor, so anchors, aliases and ``<<`` merges work as usual.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from . import jsonpath
from .model import (
    HTTP_METHODS,
    STEP_ACTIONS,
    IterationConfig,
    JMeterTest,
    K6Test,
    KeyWarning,
    Reporting,
    Scenario,
    Step,
    Suite,
    Target,
    ThreadGroupConfig,
    Thresholds,
    Workflow,
)

UNIFIED_SECTIONS = ("k6_tests", "jmeter_tests", "workflows")

# Keys APT's format knows but this runner does not implement: a warning says so (never silence).
_APT_UNSUPPORTED = {
    "ui_tests": "Playwright tests are not supported",
    "agents": "remote agents are not supported",
    "performance_config": "APT's legacy path only",
    "scenarios": "APT's legacy path only; use k6_tests/jmeter_tests",
    "monitoring": "InfluxDB is configured through INFLUXDB_URL/INFLUXDB_DB",
    "aggregator": "per-step points are written, no aggregation",
    "concurrency": "use concurrent_users",
    "include": "select tests with -m / --perf-tags (every test runs)",
    "unified_report": "no HTML report; the results are in InfluxDB",
    "report_name": "no HTML report; the results are in InfluxDB",
}

_TAG_RE = re.compile(r"^[A-Za-z_][\w.:+-]*$")

T = TypeVar("T")


class LoadError(Exception):
    """A malformed file or a value of the wrong type, at ``file:line`` under ``key``."""

    def __init__(self, file: Path, line: int, key: str, message: str) -> None:
        self.file, self.line, self.key, self.message = Path(file), line, key, message
        where = f"{key}: " if key else ""
        super().__init__(f"{file}:{line}: {where}{message}")


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def _kind(node: Node) -> str:
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    return f"{node.tag.rsplit(':', 1)[-1]} {node.value!r}"


class _Reader:
    """Walks one composed document; knows the file for messages and collects warnings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: List[KeyWarning] = []
        self._constructor = yaml.SafeLoader("")

    # -- structure -------------------------------------------------------------------------
    def error(self, node: Node, key: str, message: str) -> LoadError:
        return LoadError(self.path, _line(node), key, message)

    def mapping(self, node: Node, key: str) -> Dict[str, Tuple[Node, Node]]:
        """``{key: (key node, value node)}``; duplicate keys are an error (PyYAML keeps the last)."""
        if not isinstance(node, MappingNode):
            raise self.error(node, key, f"expected a mapping, got {_kind(node)}")
        self._constructor.flatten_mapping(node)  # resolves `<<:` merges in place
        out: Dict[str, Tuple[Node, Node]] = {}
        for k, v in node.value:
            name = self._constructor.construct_object(k, deep=True)
            if not isinstance(name, str):
                raise self.error(k, key, f"keys must be strings, got {_kind(k)}")
            if name in out:
                raise self.error(k, f"{key}.{name}" if key else name, "duplicate key")
            out[name] = (k, v)
        return out

    def fields(self, node: Node, key: str, allowed: Tuple[str, ...]) -> Dict[str, Tuple[Node, Node]]:
        """A mapping whose keys are checked against ``allowed``: others become warnings."""
        entries = self.mapping(node, key)
        for name, (knode, _) in entries.items():
            if name in allowed or (not key and name.startswith(("x-", "."))):
                continue  # top-level `x-...`/`.name` keys hold YAML anchors, like docker compose
            path = f"{key}.{name}" if key else name
            why = _APT_UNSUPPORTED.get(name)
            what = f"ignored key '{path}' ({why})" if why else f"unknown key '{path}' (ignored)"
            self.warnings.append(KeyWarning(self.path, _line(knode), path, what))
        return entries

    def value(self, node: Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def sequence(self, node: Node, key: str) -> List[Node]:
        if not isinstance(node, SequenceNode):
            raise self.error(node, key, f"expected a list, got {_kind(node)}")
        return list(node.value)

    # -- scalars ---------------------------------------------------------------------------
    def scalar(self, node: Node, key: str, types: Tuple[type, ...], what: str) -> Any:
        value = self.value(node) if isinstance(node, ScalarNode) else None
        # bool is an int in Python: a `true` where a number is expected is still wrong.
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if not isinstance(node, ScalarNode) or not ok:
            raise self.error(node, key, f"expected {what}, got {_kind(node)}")
        return value

    def string(self, node: Node, key: str) -> str:
        # A number where a string is natural (a header value, a name) is taken as its text.
        value = self.scalar(node, key, (str, int, float), "a string")
        return value if isinstance(value, str) else str(node.value)

    def integer(self, node: Node, key: str, minimum: int) -> int:
        value = self.scalar(node, key, (int,), "an integer")
        if value < minimum:
            raise self.error(node, key, f"must be >= {minimum}, got {value}")
        return int(value)

    def number(self, node: Node, key: str, minimum: float, maximum: Optional[float] = None) -> float:
        value = float(self.scalar(node, key, (int, float), "a number"))
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
            raise self.error(node, key, f"must be {bounds}, got {value}")
        return value

    def boolean(self, node: Node, key: str) -> bool:
        return bool(self.scalar(node, key, (bool,), "true or false"))

    def string_map(self, node: Node, key: str) -> Dict[str, str]:
        return {name: self.string(v, f"{key}.{name}") for name, (_, v) in self.mapping(node, key).items()}

    def tags(self, node: Node, key: str) -> List[str]:
        """A list of tags, or one string of comma-separated tags; each a usable marker name."""
        items: List[Tuple[Node, str]]
        if isinstance(node, ScalarNode):
            raw = [t.strip() for t in self.string(node, key).split(",") if t.strip()]
            items = [(node, t) for t in raw]
        else:
            items = [(n, self.string(n, key)) for n in self.sequence(node, key)]
        for n, tag in items:
            if not _TAG_RE.match(tag):
                raise self.error(n, key, f"tag {tag!r} is not usable with -m (letters, digits, _ . : + -)")
        return [t for _, t in items]


def _opt(entries: Dict[str, Tuple[Node, Node]], name: str) -> Optional[Node]:
    pair = entries.get(name)
    if pair is None:
        return None
    # `key:` with nothing after it (null) means "not given".
    value = pair[1]
    if isinstance(value, ScalarNode) and value.tag == "tag:yaml.org,2002:null":
        return None
    return value


def _get(entries: Dict[str, Tuple[Node, Node]], name: str, read: Callable[[Node], T], default: T) -> T:
    node = _opt(entries, name)
    return default if node is None else read(node)


# -- sections ---------------------------------------------------------------------------------

_SCENARIO_KEYS = ("name", "url", "method", "headers", "body")


def _scenarios(r: _Reader, node: Node, key: str) -> List[Scenario]:
    out = []
    for i, item in enumerate(r.sequence(node, key)):
        k = f"{key}[{i}]"
        e = r.fields(item, k, _SCENARIO_KEYS)
        url = _opt(e, "url")
        if url is None:
            raise r.error(item, k, "'url' is required")
        out.append(
            Scenario(
                name=_get(e, "name", lambda n: r.string(n, f"{k}.name"), f"scenario_{i + 1}"),
                url=r.string(url, f"{k}.url"),
                method=_get(e, "method", lambda n: _method(r, n, f"{k}.method"), "GET"),
                headers=_get(e, "headers", lambda n: r.string_map(n, f"{k}.headers"), {}),
                body=_get(e, "body", r.value, None),
                line=_line(item),
            )
        )
    return out


def _method(r: _Reader, node: Node, key: str) -> str:
    method = r.string(node, key).upper()
    if method not in HTTP_METHODS:
        raise r.error(node, key, f"unknown HTTP method {method!r} (one of {', '.join(HTTP_METHODS)})")
    return method


def _thresholds(r: _Reader, node: Node, key: str) -> Thresholds:
    e = r.fields(node, key, ("error_rate", "p95_ms"))
    return Thresholds(
        error_rate=_get(e, "error_rate", lambda n: r.number(n, f"{key}.error_rate", 0.0, 1.0), 0.0),
        p95_ms=_get(e, "p95_ms", lambda n: r.number(n, f"{key}.p95_ms", 0.0), None),
        line=_line(node),
    )


def _tool(r: _Reader, node: Node, key: str, expected: str) -> str:
    tool = r.string(node, key)
    if tool != expected:
        raise r.error(node, key, f"must be {expected!r} in this section, got {tool!r}")
    return tool


_K6_KEYS = ("tool", "description", "tags", "scenarios", "options", "thresholds", "script")


def _k6_test(r: _Reader, name: str, node: Node, key: str, at: Optional[Node] = None) -> K6Test:
    e = r.fields(node, key, _K6_KEYS)
    options_node = _opt(e, "options")
    options: Dict[str, Any] = {}
    if options_node is not None:
        r.mapping(options_node, f"{key}.options")  # type check with a line; passed through as is
        options = r.value(options_node)
    thresholds = _opt(e, "thresholds")
    if thresholds is not None:
        if "thresholds" in options:
            raise r.error(thresholds, f"{key}.thresholds", "given twice (here and in options)")
        r.mapping(thresholds, f"{key}.thresholds")
        options["thresholds"] = r.value(thresholds)
    test = K6Test(
        name=name,
        scenarios=_get(e, "scenarios", lambda n: _scenarios(r, n, f"{key}.scenarios"), []),
        options=options,
        script=_get(e, "script", lambda n: r.string(n, f"{key}.script"), None),
        tool=_get(e, "tool", lambda n: _tool(r, n, f"{key}.tool", "k6"), None),
        tags=_get(e, "tags", lambda n: r.tags(n, f"{key}.tags"), []),
        description=_get(e, "description", lambda n: r.string(n, f"{key}.description"), ""),
        line=_line(at or node),
    )
    if bool(test.scenarios) == bool(test.script):
        raise r.error(at or node, key, "give either 'scenarios' (a non-empty list) or 'script'")
    return test


_TG_KEYS = ("num_threads", "ramp_time", "duration", "loops")
_JMETER_KEYS = (
    "tool",
    "description",
    "tags",
    "scenarios",
    "thread_group_config",
    "jmx_file",
    "thresholds",
    "properties",
)


def _thread_group(r: _Reader, node: Node, key: str) -> ThreadGroupConfig:
    e = r.fields(node, key, _TG_KEYS)
    return ThreadGroupConfig(
        num_threads=_get(e, "num_threads", lambda n: r.integer(n, f"{key}.num_threads", 1), 10),
        ramp_time=_get(e, "ramp_time", lambda n: r.number(n, f"{key}.ramp_time", 0.0), 10.0),
        duration=_get(e, "duration", lambda n: r.number(n, f"{key}.duration", 0.0), None),
        loops=_get(e, "loops", lambda n: r.integer(n, f"{key}.loops", -1), None),
        line=_line(node),
    )


def _jmeter_test(r: _Reader, name: str, node: Node, key: str, at: Optional[Node] = None) -> JMeterTest:
    e = r.fields(node, key, _JMETER_KEYS)
    test = JMeterTest(
        name=name,
        scenarios=_get(e, "scenarios", lambda n: _scenarios(r, n, f"{key}.scenarios"), []),
        thread_group_config=_get(
            e,
            "thread_group_config",
            lambda n: _thread_group(r, n, f"{key}.thread_group_config"),
            ThreadGroupConfig(),
        ),
        jmx_file=_get(e, "jmx_file", lambda n: r.string(n, f"{key}.jmx_file"), None),
        thresholds=_get(e, "thresholds", lambda n: _thresholds(r, n, f"{key}.thresholds"), Thresholds()),
        properties=_get(e, "properties", lambda n: r.string_map(n, f"{key}.properties"), {}),
        tool=_get(e, "tool", lambda n: _tool(r, n, f"{key}.tool", "jmeter"), None),
        tags=_get(e, "tags", lambda n: r.tags(n, f"{key}.tags"), []),
        description=_get(e, "description", lambda n: r.string(n, f"{key}.description"), ""),
        line=_line(at or node),
    )
    if bool(test.scenarios) == bool(test.jmx_file):
        raise r.error(at or node, key, "give either 'scenarios' (a non-empty list) or 'jmx_file'")
    return test


_STEP_KEYS = (
    "name",
    "action",
    "url",
    "method",
    "headers",
    "body",
    "expect_status",
    "extract",
    "timeout",
    "iterations",
    "iteration_config",
    "k6_config",
    "jmeter_config",
)
_STEP_UNSUPPORTED = ("agent", "code", "code_file")


def _statuses(r: _Reader, node: Node, key: str) -> List[int]:
    nodes = r.sequence(node, key) if isinstance(node, SequenceNode) else [node]
    return [r.integer(n, key, 100) for n in nodes]


def _extract(r: _Reader, node: Node, key: str) -> Dict[str, str]:
    out = {}
    for name, (knode, vnode) in r.mapping(node, key).items():
        if not re.match(r"^[A-Za-z_]\w*$", name):
            raise r.error(knode, f"{key}.{name}", "variable names are letters, digits and _")
        path = r.string(vnode, f"{key}.{name}")
        try:
            jsonpath.parse(path)
        except jsonpath.PathError as exc:
            raise r.error(vnode, f"{key}.{name}", f"{exc} (use $.a.b, $.a[0].b, $['a b'])") from None
        out[name] = path
    return out


def _step(r: _Reader, i: int, node: Node, key: str) -> Step:
    entries = r.mapping(node, key)
    for bad in _STEP_UNSUPPORTED:
        if bad in entries:
            raise r.error(entries[bad][0], f"{key}.{bad}", "remote agents/code steps are not supported")
    e = r.fields(node, key, _STEP_KEYS)
    name = _get(e, "name", lambda n: r.string(n, f"{key}.name"), f"step_{i + 1}")
    action_node = _opt(e, "action")
    action = "api_call" if action_node is None else r.string(action_node, f"{key}.action")
    if action not in STEP_ACTIONS:
        raise r.error(
            action_node or node,
            f"{key}.action",
            f"unknown action {action!r} (one of {', '.join(STEP_ACTIONS)})",
        )
    ic = _opt(e, "iteration_config")
    iteration_config = IterationConfig()
    if ic is not None:
        ie = r.fields(ic, f"{key}.iteration_config", ("delay_between", "fail_on_error", "track_individual"))
        iteration_config = IterationConfig(
            delay_between=_get(
                ie, "delay_between", lambda n: r.number(n, f"{key}.iteration_config.delay_between", 0.0), 0.0
            ),
            fail_on_error=_get(
                ie, "fail_on_error", lambda n: r.boolean(n, f"{key}.iteration_config.fail_on_error"), False
            ),
            line=_line(ic),
        )
    step = Step(
        name=name,
        action=action,
        url=_get(e, "url", lambda n: r.string(n, f"{key}.url"), None),
        method=_get(e, "method", lambda n: _method(r, n, f"{key}.method"), "GET"),
        headers=_get(e, "headers", lambda n: r.string_map(n, f"{key}.headers"), {}),
        body=_get(e, "body", r.value, None),
        expect_status=_get(e, "expect_status", lambda n: _statuses(r, n, f"{key}.expect_status"), None),
        extract=_get(e, "extract", lambda n: _extract(r, n, f"{key}.extract"), {}),
        timeout=_get(e, "timeout", lambda n: r.number(n, f"{key}.timeout", 0.001), 30.0),
        iterations=_get(e, "iterations", lambda n: r.integer(n, f"{key}.iterations", 0), 1),
        iteration_config=iteration_config,
        k6_config=_get(e, "k6_config", lambda n: _k6_test(r, name, n, f"{key}.k6_config"), None),
        jmeter_config=_get(
            e, "jmeter_config", lambda n: _jmeter_test(r, name, n, f"{key}.jmeter_config"), None
        ),
        line=_line(node),
    )
    needs = {
        "api_call": ("url", step.url),
        "k6_test": ("k6_config", step.k6_config),
        "jmeter_test": ("jmeter_config", step.jmeter_config),
    }[action]
    if needs[1] is None:
        raise r.error(node, key, f"action {action} needs '{needs[0]}'")
    return step


_WORKFLOW_KEYS = (
    "name",
    "description",
    "tags",
    "iterations",
    "concurrent_users",
    "steps",
    "thresholds",
)


def _workflow(r: _Reader, name: str, node: Node, key: str, at: Optional[Node] = None) -> Workflow:
    e = r.fields(node, key, _WORKFLOW_KEYS)
    steps_node = _opt(e, "steps")
    if steps_node is None:
        raise r.error(at or node, key, "'steps' is required")
    steps = [
        _step(r, i, n, f"{key}.steps[{i}]") for i, n in enumerate(r.sequence(steps_node, f"{key}.steps"))
    ]
    if not steps:
        raise r.error(steps_node, f"{key}.steps", "a workflow needs at least one step")
    return Workflow(
        name=name,
        display_name=_get(e, "name", lambda n: r.string(n, f"{key}.name"), name),
        description=_get(e, "description", lambda n: r.string(n, f"{key}.description"), ""),
        iterations=_get(e, "iterations", lambda n: r.integer(n, f"{key}.iterations", 0), 1),
        concurrent_users=_get(e, "concurrent_users", lambda n: r.integer(n, f"{key}.concurrent_users", 1), 1),
        steps=steps,
        thresholds=_get(e, "thresholds", lambda n: _thresholds(r, n, f"{key}.thresholds"), Thresholds()),
        tags=_get(e, "tags", lambda n: r.tags(n, f"{key}.tags"), []),
        line=_line(at or node),
    )


def _named_entries(
    r: _Reader, node: Node, key: str, build: Callable[[_Reader, str, Node, str, Node], T]
) -> List[T]:
    """``{name: entry}`` sections; an entry's line is its name's line."""
    return [build(r, name, v, f"{key}.{name}", k) for name, (k, v) in r.mapping(node, key).items()]


_TOP_KEYS = ("test_info", "reporting", "target", "k6_tests", "jmeter_tests", "workflows")
_INFO_KEYS = ("test_suite_name", "test_suite_type", "description", "tags", "version", "module")


def _compose(path: Path) -> Optional[Node]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LoadError(path, 0, "", f"cannot read: {exc}") from exc
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise LoadError(path, line, "", f"malformed YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise LoadError(path, 0, "", f"malformed YAML: {exc}") from exc


def is_unified(path: Path) -> bool:
    """Whether the file has a top-level ``k6_tests``, ``jmeter_tests`` or ``workflows``.

    Raises ``LoadError`` when the file is not valid YAML.
    """
    root = _compose(Path(path))
    if not isinstance(root, MappingNode):
        return False
    keys = {k.value for k, _ in root.value if isinstance(k, ScalarNode)}
    return any(s in keys for s in UNIFIED_SECTIONS)


def load_suite(path: Path) -> Suite:
    """Read one unified YAML file. Raises ``LoadError``; unknown keys go to ``Suite.warnings``."""
    path = Path(path)
    r = _Reader(path)
    root = _compose(path)
    if root is None:
        raise LoadError(path, 1, "", "empty file")
    top = r.fields(root, "", _TOP_KEYS)
    if not any(s in top for s in UNIFIED_SECTIONS):
        raise LoadError(path, _line(root), "", f"not a unified file: none of {', '.join(UNIFIED_SECTIONS)}")

    suite = Suite(path=path, name=path.stem)
    info = _opt(top, "test_info")
    if info is not None:
        e = r.fields(info, "test_info", _INFO_KEYS)
        suite.name = _get(
            e, "test_suite_name", lambda n: r.string(n, "test_info.test_suite_name"), suite.name
        )
        suite.description = _get(e, "description", lambda n: r.string(n, "test_info.description"), "")
        suite.tags = _get(e, "tags", lambda n: r.tags(n, "test_info.tags"), [])
        kind = _opt(e, "test_suite_type")
        if kind is not None and r.string(kind, "test_info.test_suite_type") != "unified":
            raise r.error(kind, "test_info.test_suite_type", "only 'unified' is supported")
    rep = _opt(top, "reporting")
    if rep is not None:
        e = r.fields(rep, "reporting", ("output_dir",))
        suite.reporting = Reporting(
            output_dir=_get(e, "output_dir", lambda n: r.string(n, "reporting.output_dir"), None),
            line=_line(rep),
        )
    tgt = _opt(top, "target")
    if tgt is not None:
        e = r.fields(tgt, "target", ("start", "port", "env"))
        suite.target = Target(
            start=_get(e, "start", lambda n: r.string(n, "target.start"), "perfsink.target"),
            port=_get(e, "port", lambda n: r.integer(n, "target.port", 0), 0),
            env=_get(e, "env", lambda n: r.string(n, "target.env"), "TARGET_URL"),
            line=_line(tgt),
        )
    for section, build, attr in (
        ("k6_tests", _k6_test, "k6_tests"),
        ("jmeter_tests", _jmeter_test, "jmeter_tests"),
        ("workflows", _workflow, "workflows"),
    ):
        node = _opt(top, section)
        if node is not None:
            setattr(suite, attr, _named_entries(r, node, section, build))
    suite.warnings = r.warnings
    return suite
