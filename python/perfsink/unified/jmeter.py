"""JMeter tests of the unified YAML: generate a JMX from ``scenarios`` + ``thread_group_config`` (or
take the user's ``jmx_file``), make sure the perfsink Backend Listener is in it so JMeter streams
to InfluxDB while it runs, run JMeter non-GUI and judge the item from the JTL it wrote.

What APT got wrong and this keeps (reference: apt.md §4): ``duration`` turns the thread group's
scheduler on (without it JMeter ignores the duration); the query string, headers (a Header
Manager) and body (a raw body) reach the target; every name and value is XML-escaped (the JMX is
built with ElementTree); ``jmx_file`` works; the item fails when the error rate is above
``thresholds.error_rate`` (default 0: any failed sample), when the 95th percentile is above
``thresholds.p95_ms``, when JMeter exits non-zero or records no sample at all.

The listener is given the ``influxdbUrl`` placeholder: it then reads INFLUXDB_URL, INFLUXDB_DB and
PERFSINK_TAGS (the testid) from JMeter's environment, the same keys as every other runner.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from ..tools import ToolNotFoundError, jmeter, listener_jar
from .model import JMeterTest, RunContext, Scenario, ThreadGroupConfig, Thresholds
from .result import RunResult

LISTENER_CLASS = "io.perfsink.jmeter.PerfsinkBackendListenerClient"
# The listener's "use INFLUXDB_URL/INFLUXDB_DB from the environment" value (its default).
INFLUXDB_URL_PLACEHOLDER = "http://host_to_change:8086/write?db=jmeter"
LOG_TAIL_LINES = 15
# JTL as CSV with one row per top-level sample: sub-results (redirects, embedded resources) would
# add rows JMeter's own summaries and the listener's `transaction=all` count differently.
JTL_PROPERTIES = {
    "jmeter.save.saveservice.output_format": "csv",
    "jmeter.save.saveservice.subresults": "false",
    "jmeter.save.saveservice.print_field_names": "true",
}


def _string(parent: ET.Element, name: str, value: object) -> None:
    ET.SubElement(parent, "stringProp", name=name).text = str(value)


def _bool(parent: ET.Element, name: str, value: bool) -> None:
    ET.SubElement(parent, "boolProp", name=name).text = "true" if value else "false"


def _arguments(parent: ET.Element, name: str, **attrs: str) -> ET.Element:
    """An ``Arguments`` element property; returns its ``Arguments.arguments`` collection."""
    element = ET.SubElement(parent, "elementProp", {"name": name, "elementType": "Arguments", **attrs})
    return ET.SubElement(element, "collectionProp", name="Arguments.arguments")


def _child(tree: ET.Element, element: ET.Element) -> ET.Element:
    """Appends ``element`` and its (returned) ``hashTree`` of children to a plan's ``tree``."""
    tree.append(element)
    return ET.SubElement(tree, "hashTree")


def backend_listener(application: str, title: str) -> ET.Element:
    """The perfsink Backend Listener, in the form examples/jmeter/smoke.jmx uses."""
    listener = ET.Element(
        "BackendListener", guiclass="BackendListenerGui", testclass="BackendListener", testname="perfsink"
    )
    args = _arguments(listener, "arguments", guiclass="ArgumentsPanel", testclass="Arguments")
    params = [
        ("influxdbMetricsSender", "org.apache.jmeter.visualizers.backend.influxdb.HttpMetricsSender"),
        ("influxdbUrl", INFLUXDB_URL_PLACEHOLDER),
        ("application", application),
        ("measurement", "jmeter"),
        ("summaryOnly", "false"),
        ("samplersRegex", ".*"),
        ("percentiles", "99;95;90;50"),
        ("testTitle", title),
        ("eventTags", ""),
    ]
    for key, value in params:
        arg = ET.SubElement(args, "elementProp", name=key, elementType="Argument")
        _string(arg, "Argument.name", key)
        _string(arg, "Argument.value", value)
        _string(arg, "Argument.metadata", "=")
    _string(listener, "classname", LISTENER_CLASS)
    _string(listener, "QUEUE_SIZE", 5000)
    return listener


def thread_group(name: str, config: ThreadGroupConfig) -> ET.Element:
    """A Thread Group; ``duration`` switches the scheduler on (loops then default to -1, forever)."""
    group = ET.Element("ThreadGroup", guiclass="ThreadGroupGui", testclass="ThreadGroup", testname=name)
    _string(group, "ThreadGroup.num_threads", config.num_threads)
    # JMeter reads ramp-up and duration as whole seconds.
    _string(group, "ThreadGroup.ramp_time", int(round(config.ramp_time)))
    _bool(group, "ThreadGroup.same_user_on_next_iteration", True)
    _string(group, "ThreadGroup.on_sample_error", "continue")
    loops = config.loops if config.loops is not None else (-1 if config.duration is not None else 1)
    loop = ET.SubElement(
        group,
        "elementProp",
        name="ThreadGroup.main_controller",
        elementType="LoopController",
        guiclass="LoopControlPanel",
        testclass="LoopController",
        testname="Loop Controller",
    )
    _string(loop, "LoopController.loops", loops)
    _bool(loop, "LoopController.continue_forever", False)
    _bool(group, "ThreadGroup.scheduler", config.duration is not None)
    _string(group, "ThreadGroup.duration", math.ceil(config.duration) if config.duration is not None else "")
    _string(group, "ThreadGroup.delay", "")
    return group


def _body(scenario: Scenario) -> Tuple[Optional[str], Dict[str, str]]:
    """The raw body text and the headers to send (Content-Type added for a JSON body)."""
    headers = {str(k): str(v) for k, v in scenario.headers.items()}
    body = scenario.body
    if body is None or isinstance(body, str):
        return body, headers
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False), headers


def http_sampler(scenario: Scenario) -> Tuple[ET.Element, Dict[str, str]]:
    """An HTTP sampler for ``scenario`` and the headers its Header Manager must send."""
    url = urlsplit(scenario.url)
    if not url.scheme or not url.hostname:
        raise ValueError(
            f"scenario {scenario.name!r}: url {scenario.url!r} is not absolute (scheme://host/...)"
        )
    body, headers = _body(scenario)
    sampler = ET.Element(
        "HTTPSamplerProxy", guiclass="HttpTestSampleGui", testclass="HTTPSamplerProxy", testname=scenario.name
    )
    args = _arguments(
        sampler,
        "HTTPsampler.Arguments",
        guiclass="HTTPArgumentsPanel",
        testclass="Arguments",
        testname="User Defined Variables",
    )
    if body is not None:
        _bool(sampler, "HTTPSampler.postBodyRaw", True)
        arg = ET.SubElement(args, "elementProp", name="", elementType="HTTPArgument")
        _bool(arg, "HTTPArgument.always_encode", False)
        _string(arg, "Argument.value", body)
        _string(arg, "Argument.metadata", "=")
    _string(sampler, "HTTPSampler.domain", url.hostname)
    _string(sampler, "HTTPSampler.port", url.port or "")
    _string(sampler, "HTTPSampler.protocol", url.scheme)
    _string(sampler, "HTTPSampler.contentEncoding", "UTF-8")
    # The query string stays in the path exactly as written (JMeter would re-encode arguments).
    _string(sampler, "HTTPSampler.path", (url.path or "/") + (f"?{url.query}" if url.query else ""))
    _string(sampler, "HTTPSampler.method", scenario.method.upper())
    _bool(sampler, "HTTPSampler.follow_redirects", True)
    _bool(sampler, "HTTPSampler.auto_redirects", False)
    _bool(sampler, "HTTPSampler.use_keepalive", True)
    return sampler, headers


def header_manager(headers: Dict[str, str]) -> ET.Element:
    manager = ET.Element(
        "HeaderManager", guiclass="HeaderPanel", testclass="HeaderManager", testname="headers"
    )
    collection = ET.SubElement(manager, "collectionProp", name="HeaderManager.headers")
    for name, value in headers.items():
        header = ET.SubElement(collection, "elementProp", name="", elementType="Header")
        _string(header, "Header.name", name)
        _string(header, "Header.value", value)
    return manager


def generate_jmx(test: JMeterTest) -> ET.Element:
    """A test plan: one thread group running ``test.scenarios`` in order, plus the perfsink listener."""
    root = ET.Element("jmeterTestPlan", version="1.2", properties="5.0", jmeter="5.6.3")
    top = ET.SubElement(root, "hashTree")
    plan = ET.Element("TestPlan", guiclass="TestPlanGui", testclass="TestPlan", testname=test.name)
    _arguments(
        plan,
        "TestPlan.user_defined_variables",
        guiclass="ArgumentsPanel",
        testclass="Arguments",
        testname="User Defined Variables",
    )
    _bool(plan, "TestPlan.functional_mode", False)
    _bool(plan, "TestPlan.serialize_threadgroups", False)
    plan_tree = _child(top, plan)
    _child(plan_tree, backend_listener(test.name, test.name))
    group_tree = _child(plan_tree, thread_group(test.name, test.thread_group_config))
    for scenario in test.scenarios:
        sampler, headers = http_sampler(scenario)
        sampler_tree = _child(group_tree, sampler)
        if headers:
            _child(sampler_tree, header_manager(headers))
    ET.indent(root, space="  ")
    return root


def _has_perfsink_listener(root: ET.Element) -> bool:
    for listener in root.iter("BackendListener"):
        if listener.get("enabled") == "false":
            continue
        for prop in listener.iter("stringProp"):
            if prop.get("name") == "classname" and LISTENER_CLASS in (prop.text or ""):
                return True
    return False


def add_listener(root: ET.Element, application: str) -> bool:
    """Adds the perfsink listener to a user's plan (top level, so it hears every thread group);
    False when an enabled one is already there (two would write every point twice)."""
    if _has_perfsink_listener(root):
        return False
    top = root.find("hashTree")
    plan_tree = top.find("hashTree") if top is not None and top.find("TestPlan") is not None else None
    if plan_tree is None:
        raise ValueError("not a JMeter test plan (no jmeterTestPlan/hashTree/TestPlan + hashTree)")
    listener = backend_listener(application, application)
    plan_tree.insert(0, listener)
    plan_tree.insert(1, ET.Element("hashTree"))
    return True


def _plan(test: JMeterTest, ctx: RunContext) -> Tuple[Path, Optional[Path]]:
    """The plan to run and the temporary file to delete after the run (or None).

    A generated plan is written to out_dir. A user's plan is run where it lies: JMeter resolves
    the plan's relative paths (CSV Data Set files, Include Controllers) against the plan's own
    directory, so the copy with the listener added goes beside it, as a hidden temporary file
    (out_dir/plan.jmx keeps a copy for the record).
    """
    record = ctx.out_dir / "plan.jmx"
    if not test.jmx_file:
        if not test.scenarios:
            raise ValueError("neither `jmx_file` nor `scenarios` given: nothing to run")
        ET.ElementTree(generate_jmx(test)).write(record, encoding="UTF-8", xml_declaration=True)
        return record, None
    source = Path(test.jmx_file)
    source = source if source.is_absolute() else ctx.yaml_dir / source
    if not source.is_file():
        raise FileNotFoundError(f"jmx_file {test.jmx_file!r} not found (looked at {source})")
    try:
        root = ET.parse(source).getroot()
    except ET.ParseError as err:
        raise ValueError(f"jmx_file {source}: {err}") from err
    if not add_listener(root, test.name):
        ctx.log(f"jmeter {test.name}: {source} already has the perfsink listener; running it as it is")
        return source, None
    ET.ElementTree(root).write(record, encoding="UTF-8", xml_declaration=True)
    beside = source.with_name(f".{source.stem}.perfsink-{os.getpid()}.jmx")
    try:
        shutil.copyfile(record, beside)
    except OSError as err:
        ctx.log(
            f"jmeter {test.name}: cannot write beside {source} ({err});"
            f" relative paths in it resolve against {ctx.out_dir}"
        )
        return record, None
    return beside, beside


def percentile(values: List[float], p: float) -> Optional[float]:
    """Nearest-rank percentile (the listener's definition), None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def read_jtl(path: Path) -> Tuple[int, int, List[float], List[str]]:
    """Rows, failed rows, elapsed times (ms) and the first distinct failure descriptions of a CSV JTL."""
    rows = failed = 0
    elapsed: List[float] = []
    reasons: List[str] = []
    try:
        with open(path, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.DictReader(f):
                rows += 1
                elapsed.append(float(row.get("elapsed") or 0))
                if row.get("success") != "true":
                    failed += 1
                    message = row.get("failureMessage") or row.get("responseMessage")
                    reason = f"{row.get('label')}: {row.get('responseCode')} {message}"
                    if reason not in reasons and len(reasons) < 5:
                        reasons.append(reason)
    except FileNotFoundError:
        pass
    return rows, failed, elapsed, reasons


def threshold_failures(rows: int, failed: int, p95_ms: Optional[float], thresholds: Thresholds) -> List[str]:
    """The limits of ``thresholds`` that ``rows`` samples (``failed`` of them) crossed."""
    out = []
    rate = failed / rows if rows else 0.0
    if rate > thresholds.error_rate:
        out.append(
            f"error rate {rate:.2%} ({failed} of {rows} samples failed)"
            f" is above the allowed {thresholds.error_rate:.2%}"
        )
    if thresholds.p95_ms is not None and p95_ms is not None and p95_ms > thresholds.p95_ms:
        out.append(f"p95 {p95_ms:g} ms is above the allowed {thresholds.p95_ms:g} ms")
    return out


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> List[str]:
    try:
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return []
    return [f"last lines of {path}:"] + [f"  {line}" for line in text[-lines:]]


def _grep(path: Path, needle: str) -> List[str]:
    try:
        return [line for line in path.read_text(errors="replace").splitlines() if needle in line]
    except OSError:
        return []


def _child_env(ctx: RunContext) -> Dict[str, str]:
    env = dict(os.environ)
    # ctx.env names the run's one database (INFLUXDB_DB, as the engine resolved it: the session
    # asks its publisher), else the listener's own default applies (`jmeter`, the built-in's).
    env.update(ctx.env)
    return env


def run_jmeter_test(test: JMeterTest, ctx: RunContext) -> RunResult:
    """Runs ``test`` with JMeter non-GUI in ``ctx.out_dir``; the verdict and counts come from the JTL."""
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    jtl = ctx.out_dir / "results.jtl"
    jmeter_log = ctx.out_dir / "jmeter.log"
    output_log = ctx.out_dir / "jmeter.out"
    for stale in (jtl, jmeter_log):  # JMeter appends to an existing JTL
        stale.unlink(missing_ok=True)
    try:
        jar = listener_jar()
        installation = jmeter(ctx.log)
        plan, temporary = _plan(test, ctx)
    except (OSError, ValueError, ToolNotFoundError) as err:
        return RunResult(passed=False, failures=[f"JMeter test {test.name!r}: {err}"])

    properties = dict(JTL_PROPERTIES)
    properties.update({str(k): str(v) for k, v in test.properties.items()})
    # user.classpath puts the listener jar on JMeter's class path without touching its home
    # (JMeter splits it on the platform's path separator; the user's own entries stay).
    own = properties.get("user.classpath")
    properties["user.classpath"] = f"{own}{os.pathsep}{jar}" if own else str(jar)
    args = [*installation.command, "-n", "-t", str(plan), "-l", str(jtl), "-j", str(jmeter_log)]
    args += [f"-J{name}={value}" for name, value in properties.items()]

    ctx.log(f"jmeter {test.name}: {plan} with {' '.join(installation.command)} (log: {jmeter_log})")
    try:
        with open(output_log, "wb") as out:
            rc = subprocess.run(
                args, stdout=out, stderr=subprocess.STDOUT, env=_child_env(ctx), cwd=ctx.out_dir
            ).returncode
    except OSError as err:  # `java` itself missing
        return RunResult(passed=False, failures=[f"JMeter test {test.name!r}: cannot run {args[0]}: {err}"])
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)

    rows, failed, elapsed, reasons = read_jtl(jtl)
    result = RunResult(passed=True, requests=rows, errors=failed, p95_ms=percentile(elapsed, 95))
    result.details = {
        "exit_code": rc,
        "plan": str(plan),
        "jtl": str(jtl),
        "log": str(jmeter_log),
        "output": str(output_log),
        "jmeter": f"{installation.home} ({installation.source})",
    }
    delivery = _grep(jmeter_log, "perfsink: closed")
    if delivery:
        # "perfsink: closed: N samples, N points accepted, N written, ..., N dropped, ...".
        dropped = re.search(r"(\d+) dropped", delivery[-1])
        result.details["delivery"] = delivery[-1].split("perfsink: ", 1)[-1]
        result.details["dropped"] = int(dropped.group(1)) if dropped else 0

    failures: List[str] = []
    if rc != 0:
        failures += [f"JMeter exited with {rc}"] + _tail(output_log)
    if rows == 0:
        failures += [f"JMeter recorded no samples in {jtl}"]
        # A listener that cannot start (bad parameter, library) stops JMeter before any sample;
        # the `Caused by` line of its setupTest failure says why.
        causes = [line.strip() for line in _grep(jmeter_log, "Caused by") if "perfsink" in line]
        failures += causes[:2] or _tail(jmeter_log)
    else:
        crossed = threshold_failures(rows, failed, result.p95_ms, test.thresholds)
        failures += crossed + ([f"  {reason}" for reason in reasons] if crossed and failed else [])
    result.passed = not failures
    result.failures = failures
    return result
