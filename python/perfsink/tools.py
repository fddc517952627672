"""Where the programs the unified runners start live: the ``perfsink`` CLI, the JMeter listener jar,
and a JMeter home.

Each lookup follows one fixed order (an explicit environment variable, what the wheel bundles, a
development checkout's build output, then ``PATH``) and, when nothing is found, raises
:class:`ToolNotFoundError` listing every place it looked, so the user sees what to set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

_PACKAGE_DIR = Path(__file__).resolve().parent
_BUNDLED_DIR = _PACKAGE_DIR / "_bundled"
# The one copy of the JMeter provisioning rule (scripts/jmeter-home.sh only wraps it).
_JMETER_HOME_SCRIPT = _PACKAGE_DIR / "jmeter_home.sh"
JMETER_VERSION = "5.6.3"


class ToolNotFoundError(RuntimeError):
    """A program or file the runners need is missing; the message names every place looked at."""

    def __init__(self, what: str, looked: Sequence[str], hint: str = "") -> None:
        self.what = what
        self.looked = list(looked)
        lines = [f"{what} not found; looked at:"] + [f"  - {place}" for place in looked]
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))


def repo_root() -> Optional[Path]:
    """The perfsink checkout this package runs from (``python/perfsink`` inside it), else None."""
    root = _PACKAGE_DIR.parent.parent
    if (root / "Cargo.toml").is_file() and (root / "python" / "perfsink").is_dir():
        return root
    return None


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def perfsink_cli() -> Path:
    """The ``perfsink`` executable: ``$PERFSINK_BIN`` > bundled > a checkout's build
    (``$CARGO_TARGET_DIR/release``, ``<repo>/target/release``) > PATH."""
    looked: List[str] = []
    env = os.environ.get("PERFSINK_BIN")
    if env:
        if _executable(Path(env)):
            return Path(env)
        looked.append(f"$PERFSINK_BIN={env} (not an executable file)")
    else:
        looked.append("$PERFSINK_BIN (unset)")
    candidates = [_BUNDLED_DIR / "perfsink"]
    root = repo_root()
    if root is not None:
        # A development checkout's build, where _native.py also looks for libperfsink.
        target = os.environ.get("CARGO_TARGET_DIR")
        if target:
            candidates.append(Path(target) / "release" / "perfsink")
        candidates.append(root / "target" / "release" / "perfsink")
    for candidate in candidates:
        if _executable(candidate):
            return candidate
        looked.append(str(candidate))
    on_path = shutil.which("perfsink")
    if on_path:
        return Path(on_path)
    looked.append("`perfsink` on PATH")
    raise ToolNotFoundError(
        "the perfsink CLI",
        looked,
        "reinstall the package (pip install ./python), or build it: cargo build --release --bin perfsink",
    )


def _newest_listener_jar(directory: Path) -> Optional[Path]:
    # maven-shade leaves the unshaded jar as original-*.jar: it lacks JNA and the native library.
    jars = [j for j in directory.glob("perfsink-jmeter-*.jar") if not j.name.startswith("original-")]
    return max(jars, key=lambda j: j.stat().st_mtime) if jars else None


def listener_jar() -> Path:
    """The perfsink JMeter listener jar: ``$PERFSINK_JMETER_JAR`` > bundled > checkout ``jmeter/target``."""
    looked: List[str] = []
    env = os.environ.get("PERFSINK_JMETER_JAR")
    if env:
        if Path(env).is_file():
            return Path(env)
        looked.append(f"$PERFSINK_JMETER_JAR={env} (no such file)")
    else:
        looked.append("$PERFSINK_JMETER_JAR (unset)")
    directories = [_BUNDLED_DIR]
    root = repo_root()
    if root is not None:
        directories.append(root / "jmeter" / "target")
    for directory in directories:
        jar = _newest_listener_jar(directory)
        if jar is not None:
            return jar
        looked.append(f"{directory}/perfsink-jmeter-*.jar")
    raise ToolNotFoundError(
        "the perfsink JMeter listener jar",
        looked,
        "build it with `make jar` in a checkout (needs mvn), or set PERFSINK_JMETER_JAR",
    )


@dataclass(frozen=True)
class JMeter:
    """A JMeter installation: its home and the argv prefix that starts it non-GUI."""

    home: Path
    command: Tuple[str, ...]
    source: str  # "JMETER_HOME", "PATH" or "provisioned": how it was found, for messages


def _launch_command(home: Path) -> Optional[Tuple[str, ...]]:
    """``bin/jmeter`` of a distribution home, else ``java -jar bin/ApacheJMeter*.jar`` (a home
    assembled from Maven Central has the launcher jar but no shell script)."""
    script = home / "bin" / "jmeter"
    if _executable(script):
        return (str(script),)
    launchers = sorted((home / "bin").glob("ApacheJMeter*.jar"))
    if launchers:
        return ("java", "-jar", str(launchers[-1]))
    return None


def _provision(looked: List[str], log: Optional[Callable[[str], None]]) -> JMeter:
    """Runs jmeter_home.sh (assembles JMeter from Maven Central into ~/.cache/perfsink once)."""
    if log is not None:
        log(
            f"no JMETER_HOME, no `jmeter` on PATH: JMeter {JMETER_VERSION} from {_JMETER_HOME_SCRIPT.name}"
            " (assembled from Maven Central on first use, then cached)"
        )
    try:
        done = subprocess.run(
            ["bash", str(_JMETER_HOME_SCRIPT), "--print-home"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=1200,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        looked.append(f"provisioning with {_JMETER_HOME_SCRIPT}: {err}")
        raise ToolNotFoundError("JMeter", looked) from err
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-5:]
        looked.append(
            f"provisioning with {_JMETER_HOME_SCRIPT} failed (exit {done.returncode}): " + " | ".join(tail)
        )
        raise ToolNotFoundError(
            "JMeter", looked, "set JMETER_HOME to a JMeter 5.x home, or put `jmeter` on PATH"
        )
    home = Path(lines[-1])
    command = _launch_command(home)
    if command is None:
        looked.append(f"provisioned home {home} (no bin/ApacheJMeter*.jar)")
        raise ToolNotFoundError("JMeter", looked)
    return JMeter(home, command, "provisioned")


def jmeter(log: Optional[Callable[[str], None]] = None) -> JMeter:
    """JMeter through ``$JMETER_HOME``, else ``jmeter`` on PATH, else JMeter 5.6.3 provisioned from
    Maven Central into ``~/.cache/perfsink`` (``$PERFSINK_CACHE``); ``log`` hears about provisioning."""
    looked: List[str] = []
    env = os.environ.get("JMETER_HOME")
    if env:
        command = _launch_command(Path(env))
        if command is not None:
            return JMeter(Path(env), command, "JMETER_HOME")
        looked.append(f"$JMETER_HOME={env} (no bin/jmeter nor bin/ApacheJMeter*.jar)")
    else:
        looked.append("$JMETER_HOME (unset)")
    on_path = shutil.which("jmeter")
    if on_path:
        # A distribution's bin/jmeter (often symlinked into PATH): its home is the grandparent.
        return JMeter(Path(os.path.realpath(on_path)).parent.parent, (on_path,), "PATH")
    looked.append("`jmeter` on PATH")
    return _provision(looked, log)


def jmeter_home(log: Optional[Callable[[str], None]] = None) -> Path:
    """The JMeter home :func:`jmeter` finds (see there for the order)."""
    return jmeter(log).home
