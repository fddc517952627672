#!/usr/bin/env bash
# JMeter 5.6.3 (scripts/jmeter-home.sh) running examples/jmeter/bench.jmx as fast as this machine
# goes, with each way of getting its samples into InfluxDB, against no listener, in one go:
#
#   none          the plan without its Backend Listener (the baseline)
#   noop          the plan's Backend Listener with a client whose handleSampleResults does nothing
#                 (compiled here): what JMeter's own Backend Listener machinery costs (the
#                 sampler threads put every sample into its ArrayBlockingQueue, a worker thread
#                 drains it), the floor of any Backend Listener
#   builtin       JMeter's own InfluxdbBackendListenerClient (HttpMetricsSender)
#   perfsink      io.perfsink.jmeter.PerfsinkBackendListenerClient (jmeter/, the shaded jar),
#                 aggregated: the built-in's schema, 5 s intervals
#   perfsink-raw  the same with rawSamples=true: also one point per sample (measurement jmeter_raw)
#
# Everything runs on this machine: a private influxd on a free loopback port with a temporary data
# directory, the tiny HTTP target examples/k6_target.rs (keep-alive, TCP_NODELAY, "200 ok" in one
# write: cheap, so JMeter is the bottleneck), THREADS JMeter threads looping a Transaction
# Controller over two HTTP samplers with no think time. Variants alternate round by round (none,
# builtin, perfsink, perfsink-raw, none, ...), ROUNDS times; the table shows medians.
#
#   samples/s  JTL rows per second of JMeter's steady state: the rows whose timeStamp is at least
#              WARMUP_S after the first, over the time from there to the last sample's end (the
#              JIT warm-up of the first seconds is left out; every variant has the same JTL cost)
#   ratio      samples/s of the variant / samples/s of `none` in the same round; median of rounds
#   cpu-ratio  the same from CPU cost: (JMeter + influxd + target) CPU microseconds per sample in
#              the steady window of `none` / of the variant; what the ratio would be on a machine
#              JMeter had to itself (on a shared one, other work takes CPU from a run at random;
#              `other%` is its share of the busy CPU during the window)
#   vs noop    samples/s of the variant / samples/s of `noop` in the same round: the listener's
#              own cost on top of JMeter's Backend Listener machinery
#   delivered  sum("count") of transaction=all in the variant's database (every sample the
#              listener saw, transaction-controller samples included, as the JTL lists them) /
#              JTL rows: "all" when equal. perfsink-raw also: count(elapsed) of jmeter_raw / rows
#   points     points stored (measurements jmeter, jmeter_raw, events; not perfsink's own)
#   us/sample  CPU microseconds per sample (median) of JMeter (whole JVM), influxd and the target,
#              sampled from /proc every 0.2 s, in the steady window
#
# Targets (issue 9): perfsink (aggregated) >= 0.99 of no listener, and above builtin's ratio in the
# same run, with every sample delivered. The others are shown for comparison.
#
#   ROUNDS=3 DURATION=20 THREADS=8 bash scripts/bench-jmeter.sh
#   VARIANTS="none perfsink" ROUNDS=5 bash scripts/bench-jmeter.sh
# BENCH_KEEP=1 keeps the JTLs, jmeter.logs and CPU samples. BENCH_STRICT=1 makes a missed target the exit code (default 0: a shared machine can be noisy).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-20}
THREADS=${THREADS:-8}
WARMUP_S=${WARMUP_S:-3}
VARIANTS=${VARIANTS:-none noop builtin perfsink perfsink-raw}
TARGET_RATIO=0.99
BUILTIN=org.apache.jmeter.visualizers.backend.influxdb.InfluxdbBackendListenerClient
PERFSINK=io.perfsink.jmeter.PerfsinkBackendListenerClient
NOOP=bench.NoopBackendListenerClient

say() { printf '[bench-jmeter] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=scripts/lib/influxd.sh
source scripts/lib/influxd.sh
# shellcheck source=scripts/lib/proc-cpu.sh
source scripts/lib/proc-cpu.sh

# Only this run's private influxd is written to (perfsink reads INFLUXDB_* when the URL is the
# placeholder; the plan always gives the URL, but influxd itself reads INFLUXDB_* too).
for v in "${!INFLUXDB_@}" "${!PERFSINK_@}"; do unset "$v"; done

# --- what it needs --------------------------------------------------------------------------
for tool in java mvn curl python3 influxd; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/setup.sh)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"
JMETER_HOME=$(bash scripts/jmeter-home.sh --print-home | tail -n 1)
say "building libperfsink.so, the target and the listener jar"
cargo build --release --locked -q --lib --example k6_target
native_dir="${CARGO_TARGET_DIR:-$PWD/target}/release"
mvn -B -q -f jmeter/pom.xml -Dperfsink.native.dir="$native_dir" -DskipTests package
JAR=$(ls "$PWD"/jmeter/target/perfsink-jmeter-*.jar | grep -v original | head -n 1)
TARGET=$native_dir/examples/k6_target

work=$(mktemp -d "${TMPDIR:-/tmp}/perfsink-bench-jmeter.XXXXXX")
pids=() # influxd, the target
# shellcheck disable=SC2317  # (the EXIT trap)
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then say "files kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM


# --- influxd ------------------------------------------------------------------------------
influxd_start "$work/influx"
pids+=("$influx_pid")
say "influxd $(influxd version 2>/dev/null | awk '{print $2}') on $INFLUX"

# --- the target and the plans ---------------------------------------------------------------
"$TARGET" >"$work/target.out" &
target_pid=$!
pids+=("$target_pid")
for _ in $(seq 200); do grep -q '^listening on ' "$work/target.out" 2>/dev/null && break; sleep 0.05; done
target_port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$work/target.out")
[ -n "$target_port" ] || die "the target did not start"

# The baseline plan: bench.jmx without the BackendListener element and the hashTree after it.
python3 - examples/jmeter/bench.jmx "$work/none.jmx" <<'PY'
import re, sys
s = open(sys.argv[1]).read()
t, n = re.subn(r"\s*<BackendListener .*?</BackendListener>\s*<hashTree/>", "", s, flags=re.S)
if n != 1:
    sys.exit("bench.jmx: expected one BackendListener")
open(sys.argv[2], "w").write(t)
PY

# The noop client, on JMeter's user.classpath beside perfsink's jar.
mkdir -p "$work/noop/bench"
cat >"$work/noop/bench/NoopBackendListenerClient.java" <<'JAVA'
package bench;

import java.util.List;
import org.apache.jmeter.samplers.SampleResult;
import org.apache.jmeter.visualizers.backend.AbstractBackendListenerClient;
import org.apache.jmeter.visualizers.backend.BackendListenerContext;

/** Does nothing with the samples: JMeter's Backend Listener machinery alone. */
public class NoopBackendListenerClient extends AbstractBackendListenerClient {
    @Override
    public void handleSampleResults(List<SampleResult> sampleResults, BackendListenerContext context) {
    }
}
JAVA
javac -nowarn -d "$work/noop" -cp "$(ls "$JMETER_HOME"/lib/ext/ApacheJMeter_{core,components}-5.6.3.jar \
  "$JMETER_HOME"/lib/{jorphan-5.6.3,slf4j-api-*}.jar | paste -sd:)" "$work/noop/bench/NoopBackendListenerClient.java"

# jtl_stats <jtl> <cpu samples> -> "rows rate jmeter_us influxd_us target_us other_pct": JTL rows,
# samples/s in the steady window (from WARMUP_S after the first sample to the last one's end), CPU
# microseconds per sample of JMeter, influxd and the target in that window, and the share of the
# machine's busy CPU that other work took in it.
jtl_stats() {
  python3 - "$1" "$2" "$WARMUP_S" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
if not rows:
    sys.exit("empty JTL " + sys.argv[1])
ts = [int(r["timeStamp"]) for r in rows]
end = max(int(r["timeStamp"]) + int(r["elapsed"]) for r in rows)
from_ms = min(ts) + int(float(sys.argv[3]) * 1000)
steady = [t for t in ts if from_ms <= t <= end]
cpu = [l.split() for l in open(sys.argv[2]) if "-" not in l.split()]
cpu = [[int(c[0])] + [float(x) for x in c[1:]] for c in cpu]
a = next(c for c in cpu if c[0] >= from_ms)
b = [c for c in cpu if c[0] <= end][-1]
n = sum(1 for t in steady if a[0] <= t <= b[0])
us = [(b[i] - a[i]) * 1e6 / max(1, n) for i in (1, 2, 3)]
other = (b[4] - a[4]) - sum(b[i] - a[i] for i in (1, 2, 3))
print(len(rows), round(len(steady) * 1000 / max(1, end - from_ms), 1),
      *(round(u, 1) for u in us), round(100 * max(0.0, other) / max(0.01, b[4] - a[4]), 1))
PY
}

# counted <db> -> "samples raw points": sum(count) on transaction=all, raw points, all points
counted() {
  influx_q "$1" 'SELECT sum("count") FROM "jmeter" WHERE "transaction" = '"'all'"';
SELECT count("elapsed") FROM "jmeter_raw";
SELECT count("count") FROM "jmeter"; SELECT count("minAT") FROM "jmeter"; SELECT count("text") FROM "events"' |
    python3 -c '
import json, sys
v = []
for r in json.load(sys.stdin)["results"]:
    if "error" in r:
        sys.exit(r["error"])
    s = r.get("series")
    v.append(int(s[0]["values"][0][1]) if s else 0)
print(v[0], v[1], v[1] + v[2] + v[3] + v[4])
'
}

# One run of one variant; appends to $work/results:
#   variant round rows rate jmeter_us influxd_us target_us other_pct samples raw points
run_variant() { # variant round
  local v=$1 r=$2 db="bench_${1//-/_}_$2" base="$work/$1.$2" plan=examples/jmeter/bench.jmx
  local -a props=(-Jport="$target_port" -Jthreads="$THREADS" -Jduration="$DURATION"
    -JinfluxdbUrl="$INFLUX/write?db=$db" -Juser.classpath="$JAR:$work/noop")
  case $v in
    none) plan=$work/none.jmx ;;
    noop) props+=(-Jlistener="$NOOP") ;;
    builtin) props+=(-Jlistener="$BUILTIN") ;;
    perfsink) props+=(-Jlistener="$PERFSINK" -JrawSamples=false) ;;
    perfsink-raw) props+=(-Jlistener="$PERFSINK" -JrawSamples=true) ;;
    *) die "unknown variant $v" ;;
  esac
  influx_q "" "CREATE DATABASE \"$db\"" >/dev/null
  # JMeter in the background; its CPU, influxd's, the target's and the machine's sampled every
  # 0.2 s, so the table can count the steady window only (not the JVM's start-up and shutdown).
  java -Xms512m -Xmx512m -jar "$JMETER_HOME/bin/ApacheJMeter-5.6.3.jar" -n -t "$plan" \
    -l "$base.jtl" -j "$base.log" "${props[@]}" >"$base.out" 2>&1 &
  local jm=$! deadline=$((SECONDS + DURATION + 120))
  while kill -0 "$jm" 2>/dev/null; do
    echo "$(date +%s%3N) $(cpu_of "$jm" 2>/dev/null || echo -) $(cpu_of "$influx_pid") $(cpu_of "$target_pid") $(busy_cpu)" >>"$base.cpu"
    [ $SECONDS -lt $deadline ] || { kill "$jm"; die "$v round $r: JMeter did not end in time"; }
    sleep 0.2
  done
  wait "$jm" || die "$v round $r: JMeter failed: $(tail -n 5 "$base.out")"
  local stats counts
  stats=$(jtl_stats "$base.jtl" "$base.cpu")
  counts="- - -"
  case $v in none | noop) ;; *) counts=$(counted "$db") ;; esac
  influx_q "" "DROP DATABASE \"$db\"" >/dev/null
  echo "$v $r $stats $counts" >>"$work/results"
  say "round $r $(tail -n 1 "$work/results" | awk '{ printf "%-12s %8s samples/s  rows %s  all.count %s  raw %s  points %s  CPU us/sample: jmeter %s influxd %s target %s  other work %s %%", $1, $4, $3, $9, $10, $11, $5, $6, $7, $8 }')"
  grep -h -m 3 -E ' (ERROR|WARN) ' "$base.log" | grep -v 'o.a.j.JMeter: Only' >&2 || true
  grep -h -m 1 'perfsink: closed' "$base.log" >&2 || true
}

say "$ROUNDS rounds of: $VARIANTS ($THREADS threads, ${DURATION} s each, JMeter 5.6.3, java $(java -version 2>&1 | head -n 1 | cut -d'"' -f2))"
: >"$work/results"
# Warm-up run (page cache, JIT-independent start-up costs), not counted.
DURATION_SAVED=$DURATION
DURATION=3
run_variant none 0 2>/dev/null
DURATION=$DURATION_SAVED
: >"$work/results"
for r in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do run_variant "$v" "$r"; done
done

# --- the table ------------------------------------------------------------------------------
python3 - "$work/results" "$TARGET_RATIO" "${BENCH_STRICT:-0}" <<'PY'
import sys, statistics as st, collections
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
target = float(sys.argv[2])
by = collections.defaultdict(list)
for r in rows:
    by[r[0]].append(r)
def cost(r): return float(r[4]) + float(r[5]) + float(r[6])  # JMeter + influxd + target, us/sample
base = {r[1]: r for r in rows if r[0] == "none"}
noop = {r[1]: r for r in rows if r[0] == "noop"}
def med(xs): return st.median(xs) if xs else float("nan")
print()
print(f"{'variant':<13}{'samples/s':>10}{'ratio':>7}{'cpu-ratio':>10}{'vs noop':>8}  {'us/sample: jmeter':>17}{'influxd':>8}{'target':>7}"
      f"{'other%':>7}{'points':>8}  delivered (all.count / JTL rows)")
ratios, cratios = {}, {}
for v, rs in by.items():
    rat = [float(r[3]) / float(base[r[1]][3]) for r in rs if r[1] in base]
    crat = [cost(base[r[1]]) / cost(r) for r in rs if r[1] in base]
    ratios[v], cratios[v] = med(rat), med(crat)
    vs_noop = med([float(r[3]) / float(noop[r[1]][3]) for r in rs if r[1] in noop])
    if v in ("none", "noop"):
        deliv, points = "-", "-"
    else:
        ok = all(r[8] == r[2] for r in rs)
        deliv = ("all " if ok else "MISSING ") + " ".join(f"{r[8]}/{r[2]}" for r in rs)
        if v == "perfsink-raw":
            deliv += "; raw points " + ("all" if all(r[9] == r[2] for r in rs) else "MISSING")
        points = str(int(med([int(r[10]) for r in rs])))
    print(f"{v:<13}{med([float(r[3]) for r in rs]):>10.0f}{ratios[v]:>7.3f}{cratios[v]:>10.3f}{vs_noop:>8.3f}  "
          f"{med([float(r[4]) for r in rs]):>17.1f}{med([float(r[5]) for r in rs]):>8.1f}{med([float(r[6]) for r in rs]):>7.1f}"
          f"{med([float(r[7]) for r in rs]):>7.1f}{points:>8}  {deliv}")
print("per round (ratio / cpu-ratio): " + "; ".join(
    v + " " + " ".join(f"{float(r[3]) / float(base[r[1]][3]):.3f}/{cost(base[r[1]]) / cost(r):.3f}" for r in rs if r[1] in base)
    for v, rs in by.items() if v != "none"))
fails = []
if "perfsink" in ratios:
    if not ratios["perfsink"] >= target:
        fails.append(f"perfsink ratio {ratios['perfsink']:.3f} < {target}")
    if "builtin" in ratios and not ratios["perfsink"] > ratios["builtin"]:
        fails.append(f"perfsink ratio {ratios['perfsink']:.3f} not above builtin's {ratios['builtin']:.3f}")
    if not all(r[8] == r[2] for r in by["perfsink"]):
        fails.append("perfsink did not deliver every sample")
print()
print("targets (ratio): " + ("met" if not fails else "MISSED: " + "; ".join(fails)))
sys.exit(1 if fails and sys.argv[3] == "1" else 0)
PY
