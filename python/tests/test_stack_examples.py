"""Offline checks of the "many generators, one InfluxDB" examples (docs/monitoring.md):

- docker/examples/k6-operator-testrun.yaml validates against the k6-operator's TestRun schema
  (vendored from its CRD, docker/examples/schema/), unknown fields rejected as
  ``kubectl apply --validate=strict`` does; every runner gets its own ``instance`` tag through
  a Kubernetes ``$(VAR)`` reference that Kubernetes will actually expand.
- docker/examples/jmeter-distributed/docker-compose.yml resolves with docker-compose on top of
  docker-compose.yml and matches the compose schema; each remote server has its own
  ``instance``, the controller drives exactly those servers, writes to database k6, and sets
  only properties the plan reads.

No cluster and no Docker engine here: what runs is the validators and these consistency rules.
Every rule is also run on a broken copy, so a check that cannot fail is noticed.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

import jsonschema
import pytest
import yaml

from test_stack_files import (
    COMPOSE,
    DATABASE,
    ROOT,
    check_jsonschema,
    compose_config,
    host_path,
    mounts,
    mutated,
)

EXAMPLES = ROOT / "docker" / "examples"
TESTRUN = EXAMPLES / "k6-operator-testrun.yaml"
TESTRUN_SCHEMA = EXAMPLES / "schema" / "k6.io_testruns.v1alpha1.schema.json"
JMETER_DISTRIBUTED = EXAMPLES / "jmeter-distributed" / "docker-compose.yml"

# --- k6-operator TestRun ----------------------------------------------------------------------


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused: Kubernetes prunes them silently (and kubectl's
    strict validation refuses them), so a misspelt field would otherwise pass here and do nothing
    in the cluster. Objects that keep unknown fields on purpose are left open."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def crd_problems(doc: Any) -> list[str]:
    schema = strict(json.loads(TESTRUN_SCHEMA.read_text()))
    problems = [
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc)
    ]
    if isinstance(doc, dict):
        if (doc.get("apiVersion"), doc.get("kind")) != ("k6.io/v1alpha1", "TestRun"):
            problems.append(f"not a k6.io/v1alpha1 TestRun: {doc.get('apiVersion')} {doc.get('kind')}")
        if not (doc.get("metadata") or {}).get("name"):
            problems.append("metadata.name is missing")
    return problems


def env_reference_problems(env: list[dict[str, Any]]) -> list[str]:
    """Kubernetes expands $(NAME) in an env value only when NAME is defined earlier in the same
    list; otherwise the text stays as it is (here: every runner would get the same instance)."""
    problems, defined = [], set()
    for var in env:
        for ref in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", var.get("value", "")):
            if ref not in defined:
                problems.append(f"{var['name']} refers to $({ref}), not defined before it")
        defined.add(var["name"])
    return problems


def tags(value: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in value.split(",") if pair)


def load_testrun() -> dict[str, Any]:
    doc = yaml.safe_load(TESTRUN.read_text())
    assert isinstance(doc, dict)
    return doc


def test_testrun_matches_the_crd_schema() -> None:
    assert crd_problems(load_testrun()) == []


@pytest.mark.parametrize(
    "old, new",
    [
        ("  parallelism: 4", "  parallelsim: 4"),  # unknown field
        ("  parallelism: 4", '  parallelism: "4"'),  # wrong type
        ("      file: script.js", "      path: script.js"),  # unknown nested field
        ("kind: TestRun", "kind: K6"),
        ("  arguments: --out perfsink", "  arguments: [--out, perfsink]"),
    ],
)
def test_testrun_checker_catches_mistakes(tmp_path: Path, old: str, new: str) -> None:
    doc = yaml.safe_load(mutated(tmp_path, TESTRUN, old, new).read_text())
    assert crd_problems(doc), f"{old!r} -> {new!r} not reported"


def test_testrun_runners_write_one_database_each_with_its_own_instance() -> None:
    spec = load_testrun()["spec"]
    assert spec["parallelism"] > 1
    assert "--out perfsink" in spec["arguments"]
    env = spec["runner"]["env"]
    assert env_reference_problems(env) == []
    by_name = {v["name"]: v for v in env}
    # The pod's own name: unique per runner pod.
    assert by_name["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    tagged = tags(by_name["PERFSINK_TAGS"]["value"])
    assert tagged["instance"] == "$(POD_NAME)"
    assert tagged.get("testid"), "the dashboards select runs by testid"
    url = urllib.parse.urlsplit(by_name["INFLUXDB_URL"]["value"])
    assert url.path.strip("/") == DATABASE, "one database for every tool"


def test_testrun_image_is_the_one_its_build_command_tags() -> None:
    text = TESTRUN.read_text()
    built = re.search(r"docker build -f docker/k6/Dockerfile -t (\S+) \.", text)
    assert built, "the example says how its image is built"
    assert (ROOT / "docker" / "k6" / "Dockerfile").is_file()
    assert load_testrun()["spec"]["runner"]["image"] == built.group(1)


def test_env_reference_check_catches_an_undefined_variable() -> None:
    env = [
        {"name": "PERFSINK_TAGS", "value": "instance=$(POD_NAME)"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    assert env_reference_problems(env) == ["PERFSINK_TAGS refers to $(POD_NAME), not defined before it"]
    assert env_reference_problems(list(reversed(env))) == []


# --- JMeter distributed mode ------------------------------------------------------------------


def distributed(path: Path = JMETER_DISTRIBUTED) -> dict[str, Any]:
    done = compose_config(COMPOSE, path)
    assert done.returncode == 0, done.stderr
    config = yaml.safe_load(done.stdout)
    assert isinstance(config, dict)
    return config


def jmeter_problems(config: dict[str, Any]) -> list[str]:
    """What keeps the servers' series apart and the run in the stack's one database."""
    services = config["services"]
    servers = {n: s for n, s in services.items() if "-s" in (s.get("command") or [])}
    controllers = {n: s for n, s in services.items() if "-R" in (s.get("command") or [])}
    problems: list[str] = []
    if len(servers) < 2 or len(controllers) != 1:
        return [f"expected >= 2 servers and 1 controller, got {sorted(servers)} {sorted(controllers)}"]

    instances: dict[str, str] = {}
    testids = set()
    for name, server in servers.items():
        t = tags((server.get("environment") or {}).get("PERFSINK_TAGS", ""))
        if not t.get("instance"):
            problems.append(f"{name}: no instance in PERFSINK_TAGS")
        elif t["instance"] in instances:
            problems.append(f"{name}: instance {t['instance']} also used by {instances[t['instance']]}")
        else:
            instances[t["instance"]] = name
        testids.add(t.get("testid"))
        # RMI: the controller reaches each server by the name the server announces.
        if f"-Djava.rmi.server.hostname={name}" not in server["command"]:
            problems.append(f"{name}: announces another RMI host name than its service name")
    if len(testids) != 1 or None in testids:
        problems.append(f"the servers do not share one testid: {testids}")

    (name, controller), = controllers.items()
    cmd = controller["command"]
    remotes = set(cmd[cmd.index("-R") + 1].split(","))
    if remotes != set(servers):
        problems.append(f"{name} drives {sorted(remotes)}, the servers are {sorted(servers)}")

    # -G properties go to every server; the plan reads them with ${__P(name,...)}.
    plan_path = PurePosixPath(cmd[cmd.index("-t") + 1])
    plan = host_path(mounts(controller), plan_path)
    if plan is None or not plan.is_file():
        return problems + [f"{name}: plan {plan_path} is not a file of the repository ({plan})"]
    used = set(re.findall(r"__P\(([^,)]+)", plan.read_text()))
    props = dict(a[2:].split("=", 1) for a in cmd if a.startswith("-G"))
    problems += [f"{name}: -G{p} is not read by {plan.name}" for p in sorted(set(props) - used)]
    url = urllib.parse.urlsplit(props.get("influxdbUrl", ""))
    if url.hostname not in services or urllib.parse.parse_qs(url.query).get("db") != [DATABASE]:
        problems.append(f"{name}: influxdbUrl {props.get('influxdbUrl')} is not database {DATABASE} of the stack")
    return problems


def test_jmeter_distributed_resolves_with_docker_compose() -> None:
    distributed()


def test_jmeter_distributed_matches_the_compose_schema() -> None:
    done = check_jsonschema(JMETER_DISTRIBUTED)
    assert done.returncode == 0, done.stdout + done.stderr


def test_jmeter_distributed_servers_keep_their_series_apart() -> None:
    config = distributed()
    assert jmeter_problems(config) == []
    # The image the services build is the repository's JMeter image.
    for service in config["services"].values():
        if "build" in service:
            assert Path(service["build"]["context"]) / service["build"]["dockerfile"] == (
                ROOT / "docker" / "jmeter" / "Dockerfile"
            )


@pytest.mark.parametrize(
    "old, new",
    [
        ("instance=jmeter-server-2", "instance=jmeter-server-1"),  # two servers, one series
        ("testid=${TESTID:-jmeter-distributed},instance=jmeter-server-3", "instance=jmeter-server-3"),
        ("jmeter-server-1,jmeter-server-2,jmeter-server-3", "jmeter-server-1,jmeter-server-2"),
        ("-GinfluxdbUrl=http://influxdb:8086/write?db=k6", "-GinfluxdbUrl=http://influxdb:8086/write?db=jmeter"),
        ("-Gthreads=10", "-Gthread=10"),  # a property the plan does not read
        ("-Djava.rmi.server.hostname=jmeter-server-2", "-Djava.rmi.server.hostname=localhost"),
    ],
)
def test_jmeter_checker_catches_mistakes(tmp_path: Path, old: str, new: str) -> None:
    # Relative paths of every -f file are relative to the first file's directory (the
    # repository root), so the copy may live anywhere.
    problems = jmeter_problems(distributed(mutated(tmp_path, JMETER_DISTRIBUTED, old, new)))
    assert problems, f"{old!r} -> {new!r} not reported"
