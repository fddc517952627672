"""Run pytest with the perfsink plugin in a child process, on YAML files in a temporary directory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path
from typing import Dict, List, Optional

PYTHON_DIR = Path(__file__).resolve().parents[1]  # python/: the package in a source checkout


def plugin_installed() -> bool:
    """Whether the `pytest11` entry point `perfsink` is installed (then `-p` would load it twice)."""
    try:
        eps = metadata.entry_points(group="pytest11")  # type: ignore[call-arg]
    except TypeError:  # Python < 3.10
        eps = metadata.entry_points().get("pytest11", [])  # type: ignore[attr-defined]
    return any(ep.name == "perfsink" for ep in eps)


def write_yaml(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def run_pytest(
    cwd: Path,
    *args: str,
    env: Optional[Dict[str, str]] = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    """``python -m pytest <args>`` in ``cwd`` with the plugin; INFLUXDB_* only from ``env``."""
    child = {k: v for k, v in os.environ.items() if not k.startswith(("INFLUXDB_", "TARGET_URL", "PYTEST_"))}
    child["PYTHONPATH"] = os.pathsep.join(p for p in (str(PYTHON_DIR), os.environ.get("PYTHONPATH")) if p)
    child.update(env or {})
    plugin: List[str] = [] if plugin_installed() else ["-p", "perfsink.pytest_plugin"]
    cmd = [sys.executable, "-m", "pytest", *plugin, "-p", "no:cacheprovider", "-rA", *args]
    return subprocess.run(cmd, cwd=cwd, env=child, capture_output=True, text=True, timeout=timeout)
