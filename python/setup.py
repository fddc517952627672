"""Builds the native parts with the repository's own tools and bundles them in the package.

``pip install ./python`` (from a checkout; pip builds in the source tree) runs
``cargo build --release --locked --lib --bin perfsink`` at the repository root (honouring
``CARGO_TARGET_DIR``: one build shared with the rest of ``make test``), copies
``libperfsink.so`` and the ``perfsink`` CLI into ``perfsink/_bundled/``, and, when ``mvn`` is
on PATH, the JMeter listener jar (rebuilt unless ``jmeter/target`` holds one newer than its
sources and the library; ``PERFSINK_NO_JAR=1`` skips it). The wheel is tagged for this
platform (``py3-none-<platform>``): it holds no CPython extension, only native programs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    from wheel.bdist_wheel import bdist_wheel  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LIB = "libperfsink.dylib" if sys.platform == "darwin" else "libperfsink.so"


def log(msg: str) -> None:
    print(f"perfsink setup.py: {msg}", file=sys.stderr, flush=True)


def cargo_version() -> str:
    text = (ROOT / "Cargo.toml").read_text()
    m = re.search(r'^\[package\][^\[]*?^version\s*=\s*"([^"]+)"', text, re.M | re.S)
    if not m:
        raise SystemExit(f"no [package] version in {ROOT / 'Cargo.toml'}")
    return m.group(1)


def find_cargo() -> str:
    found = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
    if not os.path.exists(found):
        raise SystemExit("cargo not found on PATH nor in ~/.cargo/bin: install Rust (https://rustup.rs)")
    return found


def target_dir(cargo: str) -> Path:
    out = subprocess.run(
        [cargo, "metadata", "--format-version", "1", "--no-deps", "--locked"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
    ).stdout
    return Path(json.loads(out)["target_directory"])


def build_native(dest: Path) -> None:
    if not (ROOT / "Cargo.toml").is_file():
        raise SystemExit(
            f"{ROOT} is not a perfsink checkout (no Cargo.toml): build the package from the repository, "
            "`pip install ./python`"
        )
    cargo = find_cargo()
    cmd = [cargo, "build", "--release", "--locked", "--lib", "--bin", "perfsink"]
    log(" ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)
    release = target_dir(cargo) / "release"
    dest.mkdir(parents=True, exist_ok=True)
    strip = shutil.which("strip")
    for name in (LIB, "perfsink"):
        shutil.copy2(release / name, dest / name)
        if strip:  # the release profile keeps debug info (benches, profiles); users need none
            subprocess.run([strip, "--strip-debug", str(dest / name)], check=True)
    jar = listener_jar(release)
    if jar is not None:
        shutil.copy2(jar, dest / jar.name)


def newest_mtime(paths: list[Path]) -> float:
    times = []
    for p in paths:
        files = [f for f in p.rglob("*") if f.is_file()] if p.is_dir() else [p]
        times.extend(f.stat().st_mtime for f in files)
    return max(times, default=0.0)


def built_jars() -> list[Path]:
    return [j for j in (ROOT / "jmeter" / "target").glob("perfsink-jmeter-*.jar") if not j.name.startswith("original-")]


def listener_jar(release: Path) -> Path | None:
    if os.environ.get("PERFSINK_NO_JAR") or shutil.which("mvn") is None:
        log("JMeter listener jar not bundled (no mvn on PATH, or PERFSINK_NO_JAR set)")
        return None
    inputs = [ROOT / "jmeter" / "pom.xml", ROOT / "jmeter" / "src", release / LIB]
    jars = sorted(built_jars(), key=lambda j: j.stat().st_mtime)
    if jars and jars[-1].stat().st_mtime >= newest_mtime(inputs):
        log(f"reusing {jars[-1]}")
        return jars[-1]
    cmd = ["mvn", "-B", "-q", "-f", str(ROOT / "jmeter" / "pom.xml"), f"-Dperfsink.native.dir={release}", "-DskipTests", "package"]
    log(" ".join(cmd))
    subprocess.run(cmd, cwd=ROOT, check=True)
    jars = sorted(built_jars(), key=lambda j: j.stat().st_mtime)
    if not jars:
        raise SystemExit("mvn package made no jmeter/target/perfsink-jmeter-*.jar")
    return jars[-1]


class BuildPyWithNative(build_py):
    def run(self) -> None:
        super().run()
        build_native(Path(self.build_lib) / "perfsink" / "_bundled")


class PlatformWheel(bdist_wheel):
    def finalize_options(self) -> None:
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self) -> tuple[str, str, str]:
        _, _, plat = super().get_tag()
        return "py3", "none", plat


class NativeDistribution(Distribution):
    def has_ext_modules(self) -> bool:
        return True


setup(
    version=cargo_version(),
    distclass=NativeDistribution,
    cmdclass={"build_py": BuildPyWithNative, "bdist_wheel": PlatformWheel},
)
