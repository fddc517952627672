"""perfsink.tools: the lookup order of the perfsink CLI, the listener jar and JMeter, and errors
that name every place looked at."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from perfsink import tools
from perfsink.tools import ToolNotFoundError


def executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No bundled files, no checkout, an empty PATH and none of the variables: every lookup fails."""
    monkeypatch.setattr(tools, "_BUNDLED_DIR", tmp_path / "bundled")
    monkeypatch.setattr(tools, "repo_root", lambda: None)
    for name in ("PERFSINK_BIN", "PERFSINK_JMETER_JAR", "JMETER_HOME", "CARGO_TARGET_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-path"))
    return tmp_path


def test_perfsink_cli_order_and_error(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERFSINK_BIN", str(nowhere / "missing"))
    with pytest.raises(ToolNotFoundError) as err:
        tools.perfsink_cli()
    message = str(err.value)
    assert f"$PERFSINK_BIN={nowhere / 'missing'} (not an executable file)" in message
    assert str(nowhere / "bundled" / "perfsink") in message and "`perfsink` on PATH" in message

    on_path = executable(nowhere / "empty-path" / "perfsink")
    assert tools.perfsink_cli() == on_path
    bundled = executable(nowhere / "bundled" / "perfsink")
    assert tools.perfsink_cli() == bundled, "the bundled CLI wins over PATH"
    explicit = executable(nowhere / "mine" / "perfsink")
    monkeypatch.setenv("PERFSINK_BIN", str(explicit))
    assert tools.perfsink_cli() == explicit


def test_perfsink_cli_of_a_checkout_honours_cargo_target_dir(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = nowhere / "checkout"
    monkeypatch.setattr(tools, "repo_root", lambda: checkout)
    monkeypatch.setenv("CARGO_TARGET_DIR", str(nowhere / "cargo-target"))
    in_repo = executable(checkout / "target" / "release" / "perfsink")
    assert tools.perfsink_cli() == in_repo
    in_target_dir = executable(nowhere / "cargo-target" / "release" / "perfsink")
    assert tools.perfsink_cli() == in_target_dir


def test_listener_jar_skips_the_unshaded_original(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (nowhere / "bundled").mkdir()
    (nowhere / "bundled" / "original-perfsink-jmeter-0.1.0.jar").write_bytes(b"")
    with pytest.raises(ToolNotFoundError) as err:
        tools.listener_jar()
    assert "$PERFSINK_JMETER_JAR (unset)" in str(err.value)
    assert f"{nowhere / 'bundled'}/perfsink-jmeter-*.jar" in str(err.value)
    (nowhere / "bundled" / "perfsink-jmeter-0.1.0.jar").write_bytes(b"")
    assert tools.listener_jar() == nowhere / "bundled" / "perfsink-jmeter-0.1.0.jar"


def test_jmeter_home_launcher_and_path(nowhere: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A home assembled from Maven Central: no bin/jmeter, the launcher jar runs with java -jar.
    assembled = nowhere / "assembled"
    (assembled / "bin").mkdir(parents=True)
    (assembled / "bin" / "ApacheJMeter-5.6.3.jar").write_bytes(b"")
    monkeypatch.setenv("JMETER_HOME", str(assembled))
    found = tools.jmeter()
    assert (found.home, found.command, found.source) == (
        assembled,
        ("java", "-jar", str(assembled / "bin" / "ApacheJMeter-5.6.3.jar")),
        "JMETER_HOME",
    )
    # A distribution's bin/jmeter is preferred (it sets JMeter's JVM options).
    script = executable(assembled / "bin" / "jmeter")
    assert tools.jmeter().command == (str(script),)

    # JMETER_HOME that is not a home: `jmeter` on PATH (a symlink into a distribution) is next.
    monkeypatch.setenv("JMETER_HOME", str(nowhere / "not-a-home"))
    dist = executable(nowhere / "dist" / "bin" / "jmeter")
    (nowhere / "empty-path").mkdir()
    (nowhere / "empty-path" / "jmeter").symlink_to(dist)
    found = tools.jmeter()
    assert found.source == "PATH" and found.home == nowhere / "dist"
    assert tools.jmeter_home() == nowhere / "dist"


def test_jmeter_provisioning_failure_names_every_place(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = executable(
        nowhere / "jmeter_home.sh",
        "echo '[jmeter-home] mvn is missing (apt-get install maven)' >&2\nexit 1\n",
    )
    monkeypatch.setattr(tools, "_JMETER_HOME_SCRIPT", failing)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # bash; no jmeter there
    heard: list = []
    with pytest.raises(ToolNotFoundError) as err:
        tools.jmeter(heard.append)
    message = str(err.value)
    assert "$JMETER_HOME (unset)" in message and "`jmeter` on PATH" in message
    assert "failed (exit 1): [jmeter-home] mvn is missing (apt-get install maven)" in message
    assert "set JMETER_HOME" in message
    assert heard and "Maven Central" in heard[0]


def test_provisioned_home_is_the_one_scripts_jmeter_home_sh_prints(
    nowhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One provisioning rule: the package's jmeter_home.sh, which scripts/jmeter-home.sh wraps."""
    monkeypatch.setenv("PATH", "/usr/local/bin:/usr/bin:/bin")  # java, mvn, unzip; no jmeter there
    found = tools.jmeter()
    assert found.source == "provisioned"
    assert found.command[:2] == ("java", "-jar") and Path(found.command[2]).is_file()
    repo = Path(__file__).resolve().parents[2]
    wrapper = subprocess.run(
        ["bash", str(repo / "scripts" / "jmeter-home.sh"), "--print-home"],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert wrapper.returncode == 0, wrapper.stderr
    assert Path(wrapper.stdout.strip().splitlines()[-1]) == found.home
