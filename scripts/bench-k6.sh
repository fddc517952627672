#!/usr/bin/env bash
# k6 with each way of getting its samples into InfluxDB, against no output, in one go:
#
#   none          k6 with no output (the baseline)
#   k6-influxdb   k6's built-in `--out influxdb=http://127.0.0.1:<influxd>/<db>`
#   perfsink-k6   `perfsink k6` (k6 `--out json=<FIFO>`, parsed and written by perfsink)
#   perfsink-agg  the same with PERFSINK_MODE=aggregate: per-interval statistics (1 s, measurements
#                 `<metric>_agg`) instead of every sample
#   relay         `perfsink serve` + k6 `--out influxdb=http://127.0.0.1:<relay>/k6`
# and two that tell where the throughput goes (no InfluxDB involved):
#   json-cat      k6 `--out json=<FIFO>`, the FIFO drained by `cat`: what k6's JSON output costs
#                 k6 itself, the ceiling of anything that reads k6's JSON stream (`csv-cat`, the
#                 same with `--out csv`, is not in the default set)
#   perfsink-null `perfsink k6` writing to a null InfluxDB (the target answers 200 to writes):
#                 perfsink's own cost on top of json-cat, without influxd's
#
# Everything runs on this machine: a private influxd (Debian's influxdb package) on a free
# loopback port with a temporary data directory, the tiny HTTP target examples/k6_target.rs,
# and a constant-VU k6 script that hammers it (`http.get` in a loop), so k6 is the bottleneck
# and whatever else takes CPU shows up as fewer requests/s. Variants alternate round by round
# (none, json-cat, k6-influxdb, ..., relay, none, ...), ROUNDS times; the table shows medians.
#
#   req/s      k6's `http_reqs` rate (--summary-export), median over the rounds
#   ratio      req/s of the variant / req/s of `none` (same run, same machine state)
#   delivered  points in InfluxDB: `SELECT count(value) FROM /.*/` in the variant's own database
#              (a new one per run, dropped after counting), summed over k6's metrics; for
#              perfsink-agg the samples its points stand for: `SELECT sum("count") FROM /_agg$/`
#              (`count` is exact, so this must equal `emitted` too)
#   points/s   points stored in InfluxDB per second of the run (every measurement but `perfsink`:
#              the raw ones' `count(value)`, the aggregated ones' `count("count")`)
#   emitted    samples k6 emitted, counted exactly from k6's own end-of-test summary
#              (`--summary-export` with `--summary-trend-stats count`):
#                Trend metrics      their `count` (one sample per value)
#                Rate metrics       `passes + fails` (one sample per 0/1 value)
#                http_reqs, iterations  `count` (k6 emits these counters with value 1 each)
#                data_sent, data_received  one sample each per iteration (k6 emits the
#                                   iteration's network I/O once at its end), = iterations
#              The two gauges `vus` and `vus_max` are left out of both numbers: k6 emits them on
#              a 1 s ticker and reports their count nowhere (they are ~2 of ~2 M points a run).
#              The counts were checked against a `--out json` file of the same script: equal
#              per metric. `perfsink k6` also counts the samples of the JSON stream: that count
#              minus the gauges equals `emitted` (shown per run as `stream`).
#   CPU s      CPU seconds per run (median) of k6, perfsink (or the relay), influxd, and of other
#              work on the machine meanwhile (a run has cores x DURATION of them; the target's
#              share is in the per-run lines)
#
# Then the relay's parse-and-forward rate: k6-like lines (~166 B, 5000 a body, as k6 sends them)
# POSTed with curl to `perfsink serve`, which forwards them (gzip level 1, as to a remote
# InfluxDB; HTTP) to a null InfluxDB (the target answers 200 to everything); lines per CPU
# second of the relay process (all its threads), i.e. what one core does.
#
# Targets: perfsink-k6 >= 0.85 of no-output req/s with 100 % of points delivered; relay
# >= 1 M lines/s parse-and-forward on one core; perfsink-agg (issue 8) >= 0.95 of the req/s of
# json-cat (k6's JSON output alone, the ceiling of `perfsink k6`) with every sample counted, and
# perfsink-k6's points/s / perfsink-agg's >= 50. The other variants are shown for comparison.
#
#   ROUNDS=4 DURATION=8s VUS=20 bash scripts/bench-k6.sh
#   VARIANTS="none perfsink-k6" ROUNDS=5 bash scripts/bench-k6.sh
#   VARIANTS="none perfsink-k6 perfsink-k6+PERFSINK_GZIP_LEVEL=1" bash scripts/bench-k6.sh  (A/B)
# PERFSINK_* settings in the environment apply to the perfsink variants; INFLUXDB_* and
# K6_INFLUXDB_* are ignored (everything goes to the private influxd). BENCH_STRICT=1 makes a
# FAIL the exit code (default: 0, a shared machine can be noisy).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-4}
DURATION=${DURATION:-8s}
VUS=${VUS:-20}
VARIANTS=${VARIANTS:-none json-cat k6-influxdb perfsink-null perfsink-k6 perfsink-agg relay}
RELAY_POSTS=${RELAY_POSTS:-400}
TARGET_RATIO=0.85
TARGET_RELAY_LPS=1000000
TARGET_AGG_VS_JSON=0.95
TARGET_AGG_POINTS_DIVISOR=50

say() { printf '[bench-k6] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
# shellcheck source=scripts/lib/influxd.sh
source scripts/lib/influxd.sh
# shellcheck source=scripts/lib/proc-cpu.sh
source scripts/lib/proc-cpu.sh

# Only this run's private influxd is written to; influxd itself also reads INFLUXDB_* variables.
for v in "${!INFLUXDB_@}" "${!K6_INFLUXDB_@}"; do unset "$v"; done

# --- what it needs --------------------------------------------------------------------------
if ! command -v influxd >/dev/null 2>&1 || ! command -v k6 >/dev/null 2>&1; then
  bash scripts/setup.sh
  hash -r
fi
K6=${PERFSINK_K6:-$(command -v k6)}
# pyenv puts a shell shim on PATH: run the binary itself (no shell and pyenv per start).
if [ "$(head -c 2 "$K6")" = '#!' ] && command -v pyenv >/dev/null 2>&1; then
  K6=$(pyenv which k6 2>/dev/null || echo "$K6")
fi
"$K6" version | grep -q 'v1\.' || die "k6 v1.x expected at $K6 (scripts/setup.sh installs k6 1.1.0)"
for tool in curl python3 influxd; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (scripts/setup.sh)"
done
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (apt-get install time)"

say "building release binaries"
cargo build --release --locked -q --example k6_target --bin perfsink
PERFSINK=$PWD/target/release/perfsink
TARGET=$PWD/target/release/examples/k6_target

work=$(mktemp -d "${TMPDIR:-/tmp}/perfsink-bench-k6.XXXXXX")
pids=()   # influxd, the target
relay=""  # a relay while it runs
# shellcheck disable=SC2317  # (the EXIT trap)
cleanup() {
  local p
  for p in $relay "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in $relay "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A line of text appearing in a file, within $3 seconds.
wait_for_line() { # file regex seconds
  for _ in $(seq $(($3 * 20))); do
    grep -Eq "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# --- influxd ------------------------------------------------------------------------------
influxd_start "$work/influx"
pids+=("$influx_pid")
INFLUXD_VERSION=$(influxd version 2>/dev/null | awk '{print $2}')
K6_VERSION=$("$K6" version | awk '{print $2}')
say "influxd $INFLUXD_VERSION on $INFLUX (data in $work/influx)"


# --- the target and the k6 script ---------------------------------------------------------
"$TARGET" >"$work/target.out" &
target_pid=$!
pids+=("$target_pid")
wait_for_line "$work/target.out" '^listening on ' 10 || die "the target did not start"
addr=$(sed -n 's/^listening on //p' "$work/target.out")
cat >"$work/script.js" <<JS
import http from 'k6/http';
export default function () { http.get('http://$addr/'); }
JS

# k6 under /usr/bin/time (its CPU), used directly and as PERFSINK_K6 by `perfsink k6`.
cat >"$work/k6" <<EOF
#!/bin/sh
exec /usr/bin/time -f '%U %S' -o "\$BENCH_K6_CPU" "$K6" "\$@"
EOF
chmod +x "$work/k6"

K6_ARGS=(--quiet --vus "$VUS" --duration "$DURATION" --summary-trend-stats count)

# emitted <summary.json>: samples k6 emitted, without the vus/vus_max gauges (see the top).
emitted() {
  python3 - "$1" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
iterations = m["iterations"]["count"]
n = 0
for name, v in m.items():
    if "{" in name or name in ("vus", "vus_max"):
        continue  # submetrics repeat samples of their metric; gauges: see the script's top
    if name in ("data_sent", "data_received"):
        n += iterations
    elif "passes" in v:
        n += v["passes"] + v["fails"]
    elif name in ("http_reqs", "iterations") or "avg" not in v and "rate" not in v:
        n += v["count"]
    else:
        sys.exit(f"cannot count the samples of metric {name}: {v}")
print(int(n))
PY
}

# delivered <db> <summary.json>: points of k6's metrics (without the gauges) in the database.
delivered() {
  influx_q "$1" 'SELECT count(value) FROM /.*/' | python3 -c '
import json, sys
counted = set(json.load(open(sys.argv[1]))["metrics"]) - {"vus", "vus_max"}
r = json.load(sys.stdin)["results"][0]
if "error" in r:
    sys.exit(r["error"])
print(sum(s["values"][0][1] for s in r.get("series", []) if s["name"] in counted))
' "$2"
}

# delivered_agg <db> <summary.json>: samples the aggregated points of k6's metrics (without the
# gauges) stand for: their `count` summed, per metric `<name>_agg`.
delivered_agg() {
  influx_q "$1" 'SELECT sum("count") FROM /_agg$/' | python3 -c '
import json, sys
counted = set(json.load(open(sys.argv[1]))["metrics"]) - {"vus", "vus_max"}
r = json.load(sys.stdin)["results"][0]
if "error" in r:
    sys.exit(r["error"])
print(sum(s["values"][0][1] for s in r.get("series", []) if s["name"][:-4] in counted))
' "$2"
}

# stored_points <db>: every point in the database but self-metrics, raw (`value`) or aggregated
# (`count`); a measurement has one or the other.
stored_points() {
  influx_q "$1" 'SELECT count("value") FROM /.*/; SELECT count("count") FROM /_agg$/' | python3 -c '
import json, sys
n = 0
for r in json.load(sys.stdin)["results"]:
    if "error" in r:
        sys.exit(r["error"])
    n += sum(s["values"][0][1] for s in r.get("series", []) if s["name"] != "perfsink")
print(n)
'
}

rate() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["metrics"]["http_reqs"]["rate"]))' "$1"; }

# One run of one variant; appends a line to $work/results:
#   variant round req/s emitted delivered cpu_k6 cpu_perfsink cpu_influxd cpu_target other points note
# A variant may carry settings for perfsink: `perfsink-k6+PERFSINK_GZIP_LEVEL=0+...` (A/B tests).
run_variant() { # variant round
  local v=${1%%+*} r=$2 db base n
  n=$(printf '%s' "$1" | cksum | awk '{ print $1 }')
  db="bench_${v//-/_}_${n}_$r"
  base="$work/$v.$n.$r"
  local -a settings=()
  [ "$v" = "$1" ] || IFS=+ read -r -a settings <<<"${1#*+}"
  rm -f "$base".* # a repeated run must not read the files of the first one
  local sum="$base.summary.json" emit="-" deliv="-" points="-" cpu_ps="-" note=""
  local i0 t0 b0 i1 t1 b1 relay_pid relay_url
  export BENCH_K6_CPU="$base.k6cpu"
  i0=$(cpu_of "$influx_pid"); t0=$(cpu_of "$target_pid"); b0=$(busy_cpu)
  case $v in
    none)
      "$work/k6" run "${K6_ARGS[@]}" --summary-export "$sum" "$work/script.js" >/dev/null 2>"$base.err"
      ;;
    json-cat|csv-cat)
      mkfifo "$base.fifo"
      cat "$base.fifo" >/dev/null &
      "$work/k6" run "${K6_ARGS[@]}" --summary-export "$sum" --out "${v%-cat}=$base.fifo" \
        "$work/script.js" >/dev/null 2>"$base.err"
      wait $!
      rm -f "$base.fifo"
      ;;
    k6-influxdb)
      "$work/k6" run "${K6_ARGS[@]}" --summary-export "$sum" --out "influxdb=$INFLUX/$db" \
        "$work/script.js" >/dev/null 2>"$base.err"
      ;;
    perfsink-k6|perfsink-agg|perfsink-null)
      # perfsink-k6 is raw and perfsink-agg aggregated whatever PERFSINK_MODE the environment
      # has (a `+PERFSINK_MODE=...` setting of the variant still wins).
      local url="$INFLUX/$db" mode=()
      [ "$v" = perfsink-null ] && url="http://$addr/null"
      [ "$v" = perfsink-k6 ] && mode=(PERFSINK_MODE=raw)
      [ "$v" = perfsink-agg ] && mode=(PERFSINK_MODE=aggregate)
      env "${mode[@]}" "${settings[@]}" PERFSINK_K6="$work/k6" INFLUXDB_URL="$url" /usr/bin/time -f '%U %S' -o "$base.pscpu" \
        "$PERFSINK" k6 --no-progress run "${K6_ARGS[@]}" --summary-export "$sum" "$work/script.js" \
        >/dev/null 2>"$base.err"
      # perfsink's CPU: perfsink + its waited-for child k6, minus k6.
      cpu_ps=$(awk 'NR == FNR { t = $1 + $2; next } { printf "%.2f", t - $1 - $2 }' "$base.pscpu" "$BENCH_K6_CPU")
      note="stream $(sed -n 's/.*k6 stream: \([0-9]*\) samples.*/\1/p' "$base.err")"
      ;;
    relay)
      env "${settings[@]}" INFLUXDB_URL="$INFLUX/$db" "$PERFSINK" serve --listen 127.0.0.1:0 --quiet \
        >"$base.relay.out" 2>"$base.relay.err" &
      relay_pid=$!
      relay=$relay_pid
      wait_for_line "$base.relay.out" 'listening on http' 10 || die "the relay did not start: $(cat "$base.relay.err")"
      relay_url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$base.relay.out")
      "$work/k6" run "${K6_ARGS[@]}" --summary-export "$sum" --out "influxdb=$relay_url/k6" \
        "$work/script.js" >/dev/null 2>"$base.err"
      kill -TERM "$relay_pid"
      # Its CPU, with the final delivery: read it from the last /proc sample before it exits.
      while kill -0 "$relay_pid" 2>/dev/null; do
        cpu_ps=$(cpu_of "$relay_pid" 2>/dev/null || echo "$cpu_ps")
        sleep 0.02
      done
      wait "$relay_pid" || note="relay exit $?"
      relay=""
      ;;
    *) die "unknown variant $v" ;;
  esac
  [ -s "$sum" ] || die "$v: k6 wrote no summary: $(tail -n 5 "$base.err")"
  i1=$(cpu_of "$influx_pid"); t1=$(cpu_of "$target_pid"); b1=$(busy_cpu)
  if [[ " k6-influxdb perfsink-k6 perfsink-agg relay " == *" $v "* ]]; then
    emit=$(emitted "$sum")
    if [ "$v" = perfsink-agg ]; then
      deliv=$(delivered_agg "$db" "$sum")
    else
      deliv=$(delivered "$db" "$sum")
    fi
    points=$(stored_points "$db")
    influx_q "" "DROP DATABASE \"$db\"" >/dev/null
  fi
  local k6cpu ic tc other
  k6cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$BENCH_K6_CPU")
  ic=$(awk -v a="$i0" -v b="$i1" 'BEGIN { printf "%.2f", b - a }')
  tc=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  # Everything else the machine did meanwhile (other users' work; k6 start-up and counting).
  other=$(awk -v a="$b0" -v b="$b1" -v k="$k6cpu" -v p="$cpu_ps" -v i="$ic" -v t="$tc" \
    'BEGIN { o = b - a - k - i - t - (p == "-" ? 0 : p); printf "%.2f", o < 0 ? 0 : o }')
  printf '%s %s %s %s %s %s %s %s %s %s %s %s\n' "$1" "$r" "$(rate "$sum")" "$emit" "$deliv" "$k6cpu" \
    "$cpu_ps" "$ic" "$tc" "$other" "$points" "${note// /=}" >>"$work/results"
  say "round $r $(tail -n 1 "$work/results" | awk '{ printf "%-12s %6s req/s  delivered %s/%s  points %s  cpu s: k6 %s perfsink %s influxd %s target %s other %s %s", $1, $3, $5, $4, $11, $6, $7, $8, $9, $10, $12 }')"
  grep -h -m 3 -iE 'level=(error|warning)|error' "$base.err" >&2 || true
}

# --- the rounds ---------------------------------------------------------------------------
# The machine may be shared: whatever else runs takes CPU from k6 and would be counted as the
# variant's cost. Each run starts once the machine has been nearly idle for a second (waiting
# up to QUIET_WAIT seconds), and a run during which other work took more than OTHER_MAX CPU
# seconds is run again once; the quieter of the two counts. `other` in the table shows what
# was left.
QUIET_WAIT=${QUIET_WAIT:-10}
OTHER_MAX=${OTHER_MAX:-1.5}
wait_quiet() {
  local b0 b1
  for _ in $(seq "$QUIET_WAIT"); do
    b0=$(busy_cpu)
    sleep 1
    b1=$(busy_cpu)
    awk -v a="$b0" -v b="$b1" 'BEGIN { exit !(b - a < 0.25) }' && return 0
  done
  say "the machine stayed busy with other work for ${QUIET_WAIT} s; measuring anyway"
}
other_of_last() { tail -n 1 "$work/results" | awk '{ print $10 }'; }
is_noisy() { awk -v o="$1" -v m="$OTHER_MAX" 'BEGIN { exit !(o > m) }'; }

say "$ROUNDS rounds of: $VARIANTS ($VUS VUs, $DURATION each, k6 $K6_VERSION)"
BENCH_K6_CPU=$work/warmup.k6cpu "$work/k6" run --quiet --vus "$VUS" --duration 2s "$work/script.js" >/dev/null 2>&1
: >"$work/results"
for r in $(seq "$ROUNDS"); do
  for v in $VARIANTS; do
    wait_quiet
    run_variant "$v" "$r"
    first_other=$(other_of_last)
    if is_noisy "$first_other"; then
      say "round $r $v: other work took $first_other CPU s meanwhile; running it again"
      first=$(tail -n 1 "$work/results")
      sed -i '$d' "$work/results"
      wait_quiet
      run_variant "$v" "$r"
      if awk -v a="$first_other" -v b="$(other_of_last)" 'BEGIN { exit !(a < b) }'; then
        sed -i '$d' "$work/results"
        printf '%s\n' "$first" >>"$work/results"
      fi
    fi
  done
done

# --- the relay's parse-and-forward rate ---------------------------------------------------
relay_lps=""
if [[ " $VARIANTS " == *" relay "* ]]; then
  say "relay parse-and-forward: $RELAY_POSTS POSTs of 5000 k6-like lines, forwarded to a null InfluxDB"
  python3 - >"$work/body.lp" <<'PY'
t0 = 1_750_000_000_000_000_000
for i in range(5000):
    print(f'http_req_duration,expected_response=true,method=GET,name=http://test.k6.io/,'
          f'proto=HTTP/1.1,scenario=default,status=200 url="http://test.k6.io/",'
          f'value={100 + i % 50}.{i % 1000} {t0 + i * 1000}')
PY
  INFLUXDB_URL="http://$addr/null" PERFSINK_CREATE_DATABASE=false PERFSINK_SELF_METRICS_INTERVAL_MS=0 \
    PERFSINK_GZIP_LEVEL=1 \
    "$PERFSINK" serve --listen 127.0.0.1:0 --quiet >"$work/relay-lps.out" 2>"$work/relay-lps.err" &
  relay_pid=$!
  relay=$relay_pid
  wait_for_line "$work/relay-lps.out" 'listening on http' 10 || die "the relay did not start"
  relay_url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/relay-lps.out")
  urls=()
  for _ in $(seq "$RELAY_POSTS"); do urls+=("$relay_url/write?db=k6"); done
  total=$((RELAY_POSTS * 5000))
  c0=$(cpu_of "$relay_pid")
  w0=$(date +%s.%N)
  codes=$(curl -sS -H 'Expect:' -H 'Content-Type: text/plain' --data-binary "@$work/body.lp" \
    -o /dev/null -w '%{http_code}\n' "${urls[@]}" | sort | uniq -c | awk '{ printf "%s x %s ", $1, $2 }')
  # Until the sink has written (gzip + HTTP) every line to the null server.
  for _ in $(seq 600); do
    written=$(curl -s "$relay_url/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["sink"]["written"])')
    [ "$written" -ge "$total" ] && break
    sleep 0.05
  done
  w1=$(date +%s.%N)
  c1=$(cpu_of "$relay_pid")
  kill -TERM "$relay_pid"
  wait "$relay_pid" || true
  relay=""
  relay_lps=$(awk -v n="$total" -v a="$c0" -v b="$c1" 'BEGIN { printf "%.0f", n / (b - a) }')
  relay_wall=$(awk -v n="$total" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.0f", n / (b - a) }')
  say "relay: answers ${codes}; written $written of $total lines; $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }') CPU s, $relay_wall lines/s wall"
fi

# --- the table ----------------------------------------------------------------------------
status=0
python3 - "$work/results" "$TARGET_RATIO" "${relay_lps:-}" "$TARGET_RELAY_LPS" "$ROUNDS" "$VUS" "$DURATION" \
  "$K6_VERSION" "$INFLUXD_VERSION" "$(nproc)" "$TARGET_AGG_VS_JSON" "$TARGET_AGG_POINTS_DIVISOR" \
  >"$work/table" <<'PY' || status=$?
import re, statistics, sys
path, target_ratio, relay_lps, target_lps, rounds, vus, duration, k6v, influxv, cores = sys.argv[1:11]
target_ratio, target_lps = float(target_ratio), float(target_lps)
target_agg_json, target_divisor = float(sys.argv[11]), float(sys.argv[12])
runs, order = {}, []
for line in open(path):
    f = line.split()
    if f[0] not in runs:
        runs[f[0]] = []
        order.append(f[0])
    runs[f[0]].append(f)
def med(xs):
    xs = [float(x) for x in xs if x != "-"]
    return statistics.median(xs) if xs else None
base = med(f[2] for f in runs.get("none", []))
def normalized(f):
    """req/s as if the other work on the machine had left its CPU to this run's processes."""
    ours = sum(float(f[i]) for i in (5, 6, 7, 8) if f[i] != "-")
    return float(f[2]) * (ours + float(f[9])) / ours if ours > 0 else float(f[2])
base_n = med(normalized(f) for f in runs.get("none", []))
def seconds(d):
    """k6's duration syntax (`8s`, `1m30s`, `500ms`) in seconds; None if not understood."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", d)
    if not parts or "".join(a + u for a, u in parts) != d:
        return None
    return sum(float(a) * {"ms": 1e-3, "s": 1, "m": 60, "h": 3600}[u] for a, u in parts)
secs = seconds(duration)
def points_per_s(v):
    """Median points stored in InfluxDB per second of a run of variant v."""
    p = med(f[10] for f in runs.get(v, []))
    return p / secs if p is not None and secs else None
raw_pps, agg_pps = points_per_s("perfsink-k6"), points_per_s("perfsink-agg")
json_rate = med(f[2] for f in runs.get("json-cat", []))
names = {
    "none": "k6, no output",
    "k6-influxdb": "k6 --out influxdb",
    "perfsink-k6": "perfsink k6",
    "perfsink-agg": "perfsink k6, aggregate",
    "relay": "k6 -> perfsink serve",
    "json-cat": "(k6 --out json, cat)",
    "csv-cat": "(k6 --out csv, cat)",
    "perfsink-null": "(perfsink k6, null)",
}
fail = raw_failed = False
print(f"k6 {k6v} -> InfluxDB {influxv} on {cores} cores, {vus} VUs, {duration} a run, {rounds} alternated rounds (medians)")
head = f"{'variant':<22} {'req/s':>6} {'ratio':>5} {'ratio*':>6} {'delivered/emitted':>27} {'points/s':>8} {'CPU s k6/sink/influxd/other':>28}  {'target':<19} result"
print(head)
print("-" * len(head))
for v in order:
    fs = runs[v]
    rate = med(f[2] for f in fs)
    ratio = rate / base if base else float("nan")
    ratio_n = med(normalized(f) for f in fs) / base_n if base_n else float("nan")
    if fs[0][3] == "-":
        de, all_delivered = "-", None
    else:
        e = sum(int(f[3]) for f in fs)
        d = sum(int(f[4]) for f in fs)
        all_delivered = all(f[3] == f[4] for f in fs)
        de = f"{d}/{e} {100 * d / e:6.2f} %"
    cpu = "/".join("-" if med(f[i] for f in fs) is None else f"{med(f[i] for f in fs):.1f}" for i in (5, 6, 7, 9))
    result = ""
    pps = points_per_s(v)
    pps = "-" if pps is None else f"{pps:.0f}"
    if v == "perfsink-agg":
        target = f">= {target_agg_json:.2f} json, 100 %"
        ok = all_delivered and json_rate is not None and rate / json_rate >= target_agg_json
        ok = ok and raw_pps is not None and agg_pps and raw_pps / agg_pps >= target_divisor
        result = "PASS" if ok else "FAIL"
        fail |= not ok
    elif v == "perfsink-k6":
        target = f">= {target_ratio:.2f}, 100 %"
        ok = ratio >= target_ratio and all_delivered
        result = "PASS" if ok else "FAIL"
        fail |= not ok
        raw_failed = not ok
    elif v == "none":
        target = "baseline"
    else:
        target = "-"
    name = names.get(v, v) if "+" not in v else v
    print(f"{name:<22} {rate:>6.0f} {ratio:>5.2f} {ratio_n:>6.2f} {de:>27} {pps:>8} {cpu:>28}  {target:<19} {result}")
if relay_lps:
    lps = float(relay_lps)
    ok = lps >= target_lps
    fail |= not ok
    text = f"{lps / 1e6:.2f} M lines/s per CPU second (one core)"
    print(f"{'relay parse+forward':<22} {text:<85}  {'>= %.0f M lines/s' % (target_lps / 1e6):<19} {'PASS' if ok else 'FAIL'}")
if "perfsink-agg" in runs:
    agg_rate = med(f[2] for f in runs["perfsink-agg"])
    if raw_pps is not None and agg_pps:
        d = raw_pps / agg_pps
        print(f"aggregate: points written/s, perfsink k6 raw {raw_pps:.0f} / aggregate {agg_pps:.1f} = {d:.0f}"
              f" (target >= {target_divisor:.0f}): {'PASS' if d >= target_divisor else 'FAIL'}")
    else:
        print("aggregate: points written/s ratio needs perfsink-k6 and perfsink-agg in VARIANTS (and DURATION in s/m/ms)")
    if json_rate:
        r = agg_rate / json_rate
        print(f"aggregate: k6 req/s, aggregate {agg_rate:.0f} / (k6 --out json, cat) {json_rate:.0f} = {r:.2f}"
              f" (target >= {target_agg_json:.2f}): {'PASS' if r >= target_agg_json else 'FAIL'}")
    else:
        print("aggregate: the req/s ratio needs json-cat in VARIANTS")
if "perfsink-k6" in runs and raw_failed:
    why = []
    for v, what in (("json-cat", "k6's JSON output alone leaves"), ("perfsink-null", "with perfsink reading it,")):
        if v in runs and base:
            why.append(f"{what} {med(f[2] for f in runs[v]) / base:.2f}")
    influx = med(f[7] for f in runs["perfsink-k6"])
    secs = float(duration.rstrip("s")) if duration.endswith("s") and duration[:-1].replace(".", "").isdigit() else None
    cap = f" of the {int(cores) * secs:.0f} the {cores} cores have" if secs else ""
    why.append(f"influxd on the same machine takes {influx:.1f} CPU s a run{cap}")
    print("perfsink k6 below target: " + "; ".join(why))
print("req/s of each run:", "; ".join(f"{v} " + " ".join(f[2] for f in runs[v]) for v in order))
print("ratio: median req/s / median req/s of k6 with no output (the target's ratio); ratio*: the same"
      " with each run's req/s scaled by (CPU of its processes + other work) / CPU of its processes, as"
      " if other work on the machine had left its share; CPU s: medians per run of k6, perfsink (or"
      " the relay), influxd and other work; (..): diagnosis, no InfluxDB")
sys.exit(1 if fail else 0)
PY
cat "$work/table"
if [ "$status" -ne 0 ] && [ "${BENCH_STRICT:-0}" = 1 ]; then
  exit 1
fi
exit 0
