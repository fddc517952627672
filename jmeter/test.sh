#!/usr/bin/env bash
# Builds and tests the JMeter Backend Listener jar (jmeter/); `make test` calls it after
# go-shim/test.sh. The engine is the release libperfsink.so of the one shared cargo build
# (cargo build --release --lib: a no-op when go-shim/test.sh or `make build` just made it);
# Maven only copies it into the jar, it never runs cargo. `mvn verify` runs the JUnit tests (unit
# tests, tests of the real library against a private influxd), shades the lib/ext jar and runs
# JMeter 5.6.3 with it (JmeterEndToEndIT); the jar's contents and bytecode level are checked here.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd .. && pwd)
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

native_dir="${CARGO_TARGET_DIR:-$ROOT/target}/release"
step "libperfsink.so (cargo build --release --lib)"
(cd "$ROOT" && cargo build --release --locked --lib)
test -f "$native_dir/libperfsink.so" || fail "$native_dir/libperfsink.so was not built"

step "mvn verify (unit tests, shaded jar, JMeter end-to-end)"
time mvn -B -q -Dperfsink.native.dir="$native_dir" verify

step "the lib/ext jar"
jar=$(ls target/perfsink-jmeter-*.jar | grep -v original | head -1)
listing=$(unzip -Z1 "$jar")
for entry in \
  io/perfsink/jmeter/PerfsinkBackendListenerClient.class \
  META-INF/services/org.apache.jmeter.visualizers.backend.BackendListenerClient \
  linux-x86-64/libperfsink.so \
  com/sun/jna/Native.class \
  com/sun/jna/linux-x86-64/libjnidispatch.so; do
  grep -qx "$entry" <<<"$listing" || fail "$jar lacks $entry"
done
if grep -q '^org/apache/jmeter/' <<<"$listing"; then fail "$jar bundles JMeter classes (they are provided)"; fi
service=$(unzip -p "$jar" META-INF/services/org.apache.jmeter.visualizers.backend.BackendListenerClient)
[ "$service" = io.perfsink.jmeter.PerfsinkBackendListenerClient ] || fail "services entry: $service"
cmp -s <(unzip -p "$jar" linux-x86-64/libperfsink.so) "$native_dir/libperfsink.so" \
  || fail "the bundled libperfsink.so is not $native_dir/libperfsink.so"
# Class file major version 52 = Java 8, the level JMeter 5.x runs on.
major=$(unzip -p "$jar" io/perfsink/jmeter/PerfsinkBackendListenerClient.class | od -An -j6 -N2 -tu1 | awk '{print $1*256+$2}')
[ "$major" = 52 ] || fail "class file version $major, not 52 (Java 8)"
echo "$jar: $(du -h "$jar" | cut -f1), $(wc -l <<<"$listing") entries, Java 8 bytecode"

step "jmeter: all passed"
