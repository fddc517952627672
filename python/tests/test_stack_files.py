"""Offline checks of the monitoring stack's files (no Docker engine on the build machines).

- docker-compose.yml (and the InfluxDB 2.x override) resolve with Debian's ``docker-compose``
  1.29.2 (``config -q``) and validate against the compose JSON schema (``check-jsonschema
  --builtin-schema vendor.compose-spec``); both tools are installed by scripts/setup.sh, and a
  missing tool fails the test rather than skipping it.
- The Grafana provisioning YAML uses only the keys Grafana documents (ALLOWED_KEYS below) and
  the values the dashboards rely on (datasource uid, database).
- The compose services are wired as docs/monitoring.md says: pinned images, ports, volumes,
  healthchecks, the home dashboard, the mounts the provisioning files point to.

Each checker is also run on a mutated copy, so a check that cannot fail is noticed.
The Dockerfiles are checked in test_stack_images.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COMPOSE_V2 = ROOT / "docker-compose.influxdb2.yml"
PROVISIONING = ROOT / "docker" / "grafana" / "provisioning"
DATASOURCE_V1 = PROVISIONING / "datasources" / "influxdb.yml"
DATASOURCE_V2 = PROVISIONING / "datasources-influxdb2" / "influxdb.yml"
PROVIDER = PROVISIONING / "dashboards" / "perfsink.yml"
DBRP_SCRIPT = ROOT / "docker" / "influxdb" / "influxdb2-init" / "dbrp.sh"

# The contract (STACK-SPEC.md): the dashboards reference the datasource by this uid.
DATASOURCE_UID = "perfsink-influxdb"
DATASOURCE_NAME = "InfluxDB (perfsink)"
DATABASE = "k6"

# Grafana's documented provisioning keys: docs/sources/administration/provisioning/index.md
# (datasources, "Dashboards") and docs/sources/datasources/influxdb/configure/_index.md (the
# InfluxDB jsonData/secureJsonData keys); ../shared/reference/grafana.md §1 summarises them.
# A key outside these sets is ignored by Grafana without a word, which is why it fails here.
_HEADER_KEYS = {f"httpHeaderName{i}" for i in range(1, 10)}
_HEADER_VALUES = {f"httpHeaderValue{i}" for i in range(1, 10)}
ALLOWED_KEYS: dict[str, set[str]] = {
    "datasource_file": {"apiVersion", "datasources", "deleteDatasources", "prune"},
    "datasource": {
        "name", "type", "access", "orgId", "uid", "url", "user", "database", "basicAuth",
        "basicAuthUser", "withCredentials", "isDefault", "jsonData", "secureJsonData",
        "version", "editable",
    },
    "datasource.jsonData": {
        # InfluxQL
        "dbName", "httpMode", "timeInterval", "maxSeries",
        # Flux / SQL (InfluxDB 2.x, 3.x)
        "version", "organization", "defaultBucket", "insecureGrpc",
        # common HTTP/TLS options
        "tlsAuth", "tlsAuthWithCACert", "tlsSkipVerify", "serverName", "timeout",
        "keepCookies",
    } | _HEADER_KEYS,
    "datasource.secureJsonData": {
        "password", "basicAuthPassword", "token", "tlsCACert", "tlsClientCert", "tlsClientKey",
    } | _HEADER_VALUES,
    "provider_file": {"apiVersion", "providers"},
    "provider": {
        "name", "orgId", "folder", "folderUid", "type", "disableDeletion",
        "updateIntervalSeconds", "allowUiUpdates", "options",
    },
    "provider.options": {"path", "foldersFromFilesStructure"},
}
REQUIRED_KEYS = {"datasource": {"name", "type"}, "provider": {"name"}}


def _unknown(where: str, mapping: Any, kind: str) -> list[str]:
    if not isinstance(mapping, dict):
        return [f"{where}: expected a mapping, got {type(mapping).__name__}"]
    problems = [f"{where}: unknown key {key!r}" for key in mapping if key not in ALLOWED_KEYS[kind]]
    problems += [
        f"{where}: missing required key {key!r}"
        for key in sorted(REQUIRED_KEYS.get(kind, set()) - set(mapping))
    ]
    return problems


def datasource_file_problems(doc: Any) -> list[str]:
    """Keys of a datasource provisioning file that Grafana does not document."""
    problems = _unknown("top level", doc, "datasource_file")
    if problems and not isinstance(doc, dict):
        return problems
    if doc.get("apiVersion") != 1:
        problems.append(f"apiVersion is {doc.get('apiVersion')!r}, not 1")
    for i, ds in enumerate(doc.get("datasources") or []):
        where = f"datasources[{i}]"
        problems += _unknown(where, ds, "datasource")
        if isinstance(ds, dict):
            for sub in ("jsonData", "secureJsonData"):
                if sub in ds:
                    problems += _unknown(f"{where}.{sub}", ds[sub], f"datasource.{sub}")
    return problems


def provider_file_problems(doc: Any) -> list[str]:
    """Keys of a dashboard provider file that Grafana does not document."""
    problems = _unknown("top level", doc, "provider_file")
    if problems and not isinstance(doc, dict):
        return problems
    if doc.get("apiVersion") != 1:
        problems.append(f"apiVersion is {doc.get('apiVersion')!r}, not 1")
    for i, provider in enumerate(doc.get("providers") or []):
        where = f"providers[{i}]"
        problems += _unknown(where, provider, "provider")
        if isinstance(provider, dict):
            problems += _unknown(f"{where}.options", provider.get("options"), "provider.options")
            if provider.get("type", "file") == "file" and not (provider.get("options") or {}).get("path"):
                problems.append(f"{where}: a file provider needs options.path")
    return problems


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def docker_compose() -> str:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "docker-compose is not installed: run scripts/setup.sh "
            "(apt-get install -y docker-compose, Debian's 1.29.2), which validates "
            "docker-compose.yml offline"
        )
    return exe


def compose_config(*files: Path) -> subprocess.CompletedProcess[str]:
    args = [docker_compose()]
    for f in files:
        args += ["-f", str(f)]
    # The compose file's directory is the project directory (relative bind mounts).
    return subprocess.run(
        args + ["config"], capture_output=True, text=True, cwd=files[0].parent, timeout=60
    )


def check_jsonschema(*files: Path) -> subprocess.CompletedProcess[str]:
    try:
        import check_jsonschema  # noqa: F401
    except ImportError:
        pytest.fail(
            "check-jsonschema is not installed: run scripts/setup.sh "
            "(pip install check-jsonschema), which validates docker-compose.yml against the "
            "compose JSON schema offline"
        )
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
        + [str(f) for f in files],
        capture_output=True,
        text=True,
        timeout=120,
    )


def mutated(tmp_path: Path, source: Path, old: str, new: str) -> Path:
    """A copy of `source` in tmp_path with `old` replaced once (which must occur)."""
    text = source.read_text()
    assert old in text, f"{old!r} not in {source}"
    copy = tmp_path / source.name
    copy.write_text(text.replace(old, new, 1))
    return copy


# --- compose: the two validators -------------------------------------------------------------


@pytest.mark.parametrize("files", [(COMPOSE,), (COMPOSE, COMPOSE_V2)], ids=["influxdb1", "influxdb2"])
def test_compose_resolves_with_docker_compose(files: tuple[Path, ...]) -> None:
    done = compose_config(*files)
    assert done.returncode == 0, done.stderr


def test_docker_compose_rejects_an_unknown_key(tmp_path: Path) -> None:
    bad = mutated(tmp_path, COMPOSE, '    ports:\n      - "3000:3000"', '    portz:\n      - "3000:3000"')
    done = compose_config(bad)
    assert done.returncode != 0
    assert "portz" in done.stderr


def test_compose_files_match_the_compose_schema() -> None:
    done = check_jsonschema(COMPOSE, COMPOSE_V2)
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_schema_rejects_an_unknown_key(tmp_path: Path) -> None:
    bad = mutated(tmp_path, COMPOSE, "    healthcheck:\n", "    healthchek:\n")
    done = check_jsonschema(bad)
    assert done.returncode != 0
    assert "healthchek" in done.stdout + done.stderr


# --- compose: what the stack promises ---------------------------------------------------------


def resolved(*files: Path) -> dict[str, Any]:
    done = compose_config(*files)
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> source (host path or volume name) of a resolved service."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        out[target] = source
    return out


def test_influxdb1_service() -> None:
    influx = resolved(COMPOSE)["services"]["influxdb"]
    # influxdb:latest is 2.x; 1.12 is the maintained 1.x line (1.12.x patch releases).
    assert re.fullmatch(r"influxdb:1\.12(\.\d+)?", influx["image"]), influx["image"]
    assert {"published": 8086, "target": 8086} in influx["ports"]
    assert influx["environment"]["INFLUXDB_DB"] == DATABASE
    assert mounts(influx)["/var/lib/influxdb"] == "influxdb-data"
    assert "/ping" in " ".join(influx["healthcheck"]["test"])


def test_grafana_service() -> None:
    config = resolved(COMPOSE)
    grafana = config["services"]["grafana"]
    assert re.fullmatch(r"grafana/grafana:12\.4\.\d+", grafana["image"]), grafana["image"]
    assert {"published": 3000, "target": 3000} in grafana["ports"]
    env = grafana["environment"]
    assert (env["GF_SECURITY_ADMIN_USER"], env["GF_SECURITY_ADMIN_PASSWORD"]) == ("admin", "admin")
    assert "/api/health" in " ".join(grafana["healthcheck"]["test"])
    assert grafana["depends_on"]["influxdb"]["condition"] == "service_healthy"
    assert set(config["volumes"]) == {"influxdb-data", "grafana-data"}

    m = mounts(grafana)
    assert m["/var/lib/grafana"] == "grafana-data"
    assert Path(m["/etc/grafana/provisioning/datasources"]) == DATASOURCE_V1.parent
    assert Path(m["/etc/grafana/provisioning/dashboards"]) == PROVIDER.parent
    # The provider reads the directory the dashboards are mounted at, and the home dashboard
    # is k6.json in it (docker/grafana/dashboards/k6.json, uid perfsink-k6).
    provider_path = load(PROVIDER)["providers"][0]["options"]["path"]
    assert Path(m[provider_path]) == ROOT / "docker" / "grafana" / "dashboards"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{provider_path}/k6.json"


def test_influxdb2_override() -> None:
    config = resolved(COMPOSE, COMPOSE_V2)
    influx = config["services"]["influxdb"]
    assert re.fullmatch(r"influxdb:2\.\d+(\.\d+)?", influx["image"]), influx["image"]
    env = influx["environment"]
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    for key in ("USERNAME", "PASSWORD", "ORG", "ADMIN_TOKEN"):
        assert env[f"DOCKER_INFLUXDB_INIT_{key}"], key
    # The bucket is named like the database, and the init script maps db k6 / rp autogen to it.
    assert env["DOCKER_INFLUXDB_INIT_BUCKET"] == DATABASE
    m = mounts(influx)
    assert m["/var/lib/influxdb2"] == "influxdb2-data"
    assert Path(m["/docker-entrypoint-initdb.d"]) == DBRP_SCRIPT.parent
    assert "ping" in influx["healthcheck"]["test"]

    grafana = config["services"]["grafana"]
    # Grafana gets the datasource variant with the token, and the token itself.
    assert Path(mounts(grafana)["/etc/grafana/provisioning/datasources"]) == DATASOURCE_V2.parent
    assert grafana["environment"]["INFLUXDB_TOKEN"] == env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN"]


def test_influxdb2_dbrp_script() -> None:
    # The image runs only executable *.sh files of /docker-entrypoint-initdb.d (run-parts).
    assert os.access(DBRP_SCRIPT, os.X_OK)
    mode = subprocess.run(
        ["git", "ls-files", "-s", str(DBRP_SCRIPT.relative_to(ROOT))],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout
    assert mode == "" or mode.startswith("100755"), f"committed without the executable bit: {mode}"
    text = DBRP_SCRIPT.read_text()
    assert subprocess.run(["bash", "-n", str(DBRP_SCRIPT)]).returncode == 0
    command = " ".join(line.strip(" \\") for line in text.splitlines() if not line.startswith("#"))
    assert "influx v1 dbrp create" in command
    assert '--bucket-id "${DOCKER_INFLUXDB_INIT_BUCKET_ID}"' in command
    assert f"--db {DATABASE}" in command and "--rp autogen" in command and "--default" in command


# --- Grafana provisioning ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [DATASOURCE_V1, DATASOURCE_V2], ids=["influxdb1", "influxdb2"])
def test_datasource_file(path: Path) -> None:
    doc = load(path)
    assert datasource_file_problems(doc) == []
    (ds,) = doc["datasources"]
    assert ds["uid"] == DATASOURCE_UID and ds["name"] == DATASOURCE_NAME
    assert ds["type"] == "influxdb" and ds["access"] == "proxy"
    assert ds["url"] == "http://influxdb:8086"
    assert ds["isDefault"] is True
    # InfluxQL: no jsonData.version (Flux/SQL would set it); the database in both forms.
    assert "version" not in ds["jsonData"]
    assert ds["jsonData"]["dbName"] == DATABASE and ds["database"] == DATABASE
    # Grafana ≥ 9 ignores unencrypted passwords at the top level.
    assert "password" not in ds


def test_influxdb2_datasource_sends_the_token() -> None:
    (ds,) = load(DATASOURCE_V2)["datasources"]
    header = next(k for k, v in ds["jsonData"].items() if k.startswith("httpHeaderName") and v == "Authorization")
    value = ds["secureJsonData"][header.replace("Name", "Value")]
    # Grafana interpolates $VAR in provisioning values from its container's environment.
    assert value == "Token $INFLUXDB_TOKEN"


def test_dashboard_provider_file() -> None:
    doc = load(PROVIDER)
    assert provider_file_problems(doc) == []
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["allowUiUpdates"] is False


@pytest.mark.parametrize(
    "old, new",
    [
        ("      dbName: k6", "      dbname: k6"),  # wrong case: Grafana would ignore it
        ("    isDefault: true", "    is_default: true"),
        ("apiVersion: 1", "apiVerison: 1"),
    ],
)
def test_datasource_checker_catches_mistakes(tmp_path: Path, old: str, new: str) -> None:
    problems = datasource_file_problems(load(mutated(tmp_path, DATASOURCE_V1, old, new)))
    assert problems, f"{old!r} -> {new!r} not reported"


@pytest.mark.parametrize(
    "old, new",
    [
        ("    allowUiUpdates: false", "    allowUIUpdates: false"),
        ("      path: /etc/grafana/dashboards", "      paths: /etc/grafana/dashboards"),
        ("  - name: perfsink\n", "  - title: perfsink\n"),
    ],
)
def test_provider_checker_catches_mistakes(tmp_path: Path, old: str, new: str) -> None:
    problems = provider_file_problems(load(mutated(tmp_path, PROVIDER, old, new)))
    assert problems, f"{old!r} -> {new!r} not reported"
