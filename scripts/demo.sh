#!/usr/bin/env bash
# `make demo`: streams a few thousand points through perfsink — from the C example and from the
# Rust example, and from k6 (raw through `perfsink k6` and the relay, and aggregated through
# `perfsink k6` with PERFSINK_MODE=aggregate), and from JMeter 5.6.3 with perfsink's Backend
# Listener — into InfluxDB, then prints what landed by querying it back, the aggregated points
# beside the raw ones, JMeter's `jmeter` lines beside its JTL's counts. Uses INFLUXDB_URL
# when set (e.g. the docker-compose stack), else a private influxd on a free loopback port.
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${INFLUXDB_DB:-perfsink_demo}"

if [ -z "${INFLUXDB_URL:-}" ]; then
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  rpc=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$dir/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:$rpc"
[meta]
  dir = "$dir/meta"
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
[http]
  bind-address = "127.0.0.1:$port"
  log-enabled = false
[monitor]
  store-enabled = false
CONF
  env -u INFLUXDB_DB influxd run -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
  influx_pid=$!
  trap 'kill $influx_pid 2>/dev/null; wait $influx_pid 2>/dev/null; rm -rf "$dir"' EXIT
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/ping" >/dev/null && break; sleep 0.1; done
  export INFLUXDB_URL="http://127.0.0.1:$port"
  echo "demo: private InfluxDB 1.6 at $INFLUXDB_URL (data in $dir)"
fi
base="${INFLUXDB_URL%/}"
export INFLUXDB_DB="$DB" PERFSINK_FLUSH_INTERVAL_MS=200 PERFSINK_SELF_METRICS_INTERVAL_MS=1000 PERFSINK_SOURCE=demo

echo "== C example: 2000 workflow steps through the C ABI"
target/examples/workflow_steps "INFLUXDB_URL=$base;INFLUXDB_DB=$DB;PERFSINK_FLUSH_INTERVAL_MS=200;PERFSINK_SOURCE=demo-c" 2000
echo "== Rust example: 1000 iterations x 4 steps, plus fast-path request metrics"
cargo run --quiet --release --locked --example workflow -- 1000

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cargo build --quiet --release --locked --bin perfsink --example k6_target
tport=$(free_port)
target/release/examples/k6_target "$tport" >/dev/null &
target_pid=$!
rport=$(free_port)
# Stops the helpers of the k6 part; the InfluxDB trap (if any) runs after.
cleanup_k6() { kill "$target_pid" "${relay_pid:-}" 2>/dev/null || true; }
trap 'cleanup_k6; kill ${influx_pid:-} 2>/dev/null; wait ${influx_pid:-} 2>/dev/null; rm -rf "${dir:-/nonexistent}"' EXIT
export TARGET="http://127.0.0.1:$tport"

echo "== k6 through perfsink k6: a stock k6 (--out json into a pipe), 4 VUs for 5 s"
K6DB="${DB}_k6"
INFLUXDB_DB="$K6DB" TESTID=demo-k6 target/release/perfsink k6 run --quiet --no-summary examples/k6/demo.js

echo "== the same k6 test aggregated: PERFSINK_MODE=aggregate, 1 s intervals into <metric>_agg, same database"
INFLUXDB_DB="$K6DB" TESTID=demo-k6-agg PERFSINK_MODE=aggregate \
  target/release/perfsink k6 run --quiet --no-summary examples/k6/demo.js

echo "== k6 through the relay: perfsink serve on 127.0.0.1:$rport, stock k6 --out influxdb"
RELAYDB="${DB}_relay"
INFLUXDB_DB="$RELAYDB" target/release/perfsink serve --listen "127.0.0.1:$rport" &
relay_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$rport/ping" >/dev/null && break; sleep 0.1; done
TESTID=demo-relay k6 run --quiet --no-summary --out "influxdb=http://127.0.0.1:$rport/$RELAYDB" examples/k6/demo.js
kill -INT "$relay_pid"; wait "$relay_pid" 2>/dev/null || true

q() { curl -sfG "$base/query" --data-urlencode "db=$DB" --data-urlencode "q=$1"; }
echo
echo "== What landed in InfluxDB (database $DB)"
q 'SHOW MEASUREMENTS' | python3 -c '
import json, sys
r = json.load(sys.stdin)["results"][0]
print("measurements:", ", ".join(v[0] for v in r["series"][0]["values"]))'
for m in workflow_step http_req_duration perfsink; do
  q "SELECT count(*) FROM \"$m\"" | python3 -c "
import json, sys
s = json.load(sys.stdin)['results'][0].get('series', [])
cols = s[0]['columns'] if s else []
vals = s[0]['values'][0] if s else []
n = max([v for c, v in zip(cols, vals) if c.startswith('count_')] or [0])
print(f'  {\"$m\":<20} {n:>8} points')"
done
q 'SELECT percentile("duration", 95) AS p95, mean("duration") AS mean, sum("success_count") AS ok, count("duration") AS n FROM "workflow_step"' | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0]["series"][0]
row = dict(zip(s["columns"], s["values"][0]))
print("workflow_step.duration: p95 %.3f s, mean %.3f s, %s of %s steps succeeded"
      % (row["p95"], row["mean"], row["ok"], row["n"]))'

for kdb in "$K6DB" "$RELAYDB"; do
  echo
  echo "== k6 metrics in database $kdb"
  curl -sfG "$base/query" --data-urlencode "db=$kdb" \
    --data-urlencode 'q=SELECT count("value") FROM "http_reqs", "http_req_duration", "checks", "demo_think_time", "iterations"' \
    | python3 -c '
import json, sys
for s in json.load(sys.stdin)["results"][0].get("series", []):
    print("  %-20s %8d points" % (s["name"], s["values"][0][1]))'
  curl -sfG "$base/query" --data-urlencode "db=$kdb" \
    --data-urlencode 'q=SELECT percentile("value", 95) FROM "http_req_duration"' \
    | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0]["series"][0]
print("  http_req_duration p95 %.3f ms" % s["values"][0][1])'
done

# table <db> <query> <column>...: the query's first series, those of the columns it has.
table() {
  local db=$1 query=$2
  shift 2
  echo "  > $query"
  curl -sfG "$base/query" --data-urlencode "db=$db" --data-urlencode "q=$query" | python3 -c '
import json, sys
s = json.load(sys.stdin)["results"][0]["series"][0]
cols = [c for c in sys.argv[1:] if c in s["columns"]]
at = [s["columns"].index(c) for c in cols]
def text(v):
    return "%.3f" % v if isinstance(v, float) else "-" if v is None else str(v)
rows = [cols] + [[text(r[i]) for i in at] for r in s["values"]]
width = [max(len(r[j]) for r in rows) for j in range(len(cols))]
for r in rows:
    print("    " + "  ".join(v.rjust(w) for v, w in zip(r, width)))' "$@"
}

echo
echo "== raw and aggregated side by side in database $K6DB (the raw run is testid=demo-k6, the aggregated one demo-k6-agg)"
echo "raw: one point per sample"
table "$K6DB" "SELECT * FROM \"http_req_duration\" WHERE \"testid\" = 'demo-k6' LIMIT 5" \
  time status value
echo "aggregated: one point per series and second, stamped at the interval's start"
table "$K6DB" 'SELECT * FROM "http_req_duration_agg" LIMIT 5' \
  time instance status count min mean p50 p90 p95 p99 max
table "$K6DB" 'SELECT * FROM "checks_agg" LIMIT 3' time check count passes rate
echo "points written per run, and the samples the aggregated ones stand for (sum of count)"
for m in http_req_duration http_reqs checks iterations; do
  curl -sfG "$base/query" --data-urlencode "db=$K6DB" \
    --data-urlencode "q=SELECT count(\"value\") FROM \"$m\" WHERE \"testid\" = 'demo-k6'; SELECT count(\"count\"), sum(\"count\") FROM \"${m}_agg\"" \
    | python3 -c '
import json, sys
raw, agg = (r.get("series", [{"values": [[0, 0, 0]]}])[0]["values"][0] for r in json.load(sys.stdin)["results"])
print("  %-18s raw %7d points   aggregated %4d points for %7d samples" % (sys.argv[1], raw[1], agg[1], agg[2]))' "$m"
done

echo
echo "== JMeter 5.6.3 with perfsink's Backend Listener (jmeter/'s jar): examples/jmeter/smoke.jmx, 3 threads for 6 s"
# The listener jar bundles target/release/libperfsink.so (built by `make build`); its influxdbUrl
# names the database, so the demo's PERFSINK_* settings above do not apply to it.
mvn -B -q -f jmeter/pom.xml -DskipTests package
jar=$(ls "$PWD"/jmeter/target/perfsink-jmeter-*.jar | grep -v original | head -n 1)
JMDB="${DB}_jmeter"
curl -sf -XPOST "$base/query" --data-urlencode "q=CREATE DATABASE \"$JMDB\"" >/dev/null
jmout=$(mktemp -d)
env -u PERFSINK_FLUSH_INTERVAL_MS -u PERFSINK_SELF_METRICS_INTERVAL_MS -u PERFSINK_SOURCE \
  bash examples/jmeter/run-smoke.sh "$jmout" -Juser.classpath="$jar" -JinfluxdbUrl="$base/write?db=$JMDB" \
  -Japplication=demo -Jthreads=3 -Jduration=6 | sed 's/^/  /'
grep -h 'perfsink: closed' "$jmout/jmeter.log" | sed 's/.*perfsink: /  jmeter.log: perfsink: /'
echo "per transaction: JMeter's JTL beside InfluxDB's jmeter lines (sum of count over the 5 s intervals)"
curl -sfG "$base/query" --data-urlencode "db=$JMDB" --data-urlencode \
  "q=SELECT sum(\"count\") FROM \"jmeter\" WHERE \"statut\" = 'all' GROUP BY \"transaction\"; SELECT sum(\"count\") FROM \"jmeter\" WHERE \"statut\" = 'ko' GROUP BY \"transaction\"" |
  python3 -c '
import csv, json, sys, collections
jtl = collections.defaultdict(lambda: [0, 0])
for r in csv.DictReader(open(sys.argv[1], newline="")):
    jtl[r["label"]][0] += 1
    jtl[r["label"]][1] += r["success"] != "true"
got = [{s["tags"]["transaction"]: int(s["values"][0][1]) for s in r.get("series", [])}
       for r in json.load(sys.stdin)["results"]]
print("  %-14s %12s %12s %14s %14s" % ("transaction", "JTL samples", "JTL errors", "influx count", "influx ko"))
for label in sorted(set(jtl) | set(got[0])):
    n, e = jtl.get(label, (0, 0)) if label != "all" else (sum(v[0] for v in jtl.values()), sum(v[1] for v in jtl.values()))
    print("  %-14s %12d %12d %14d %14s" % (label, n, e, got[0].get(label, 0), got[1].get(label, "-" if label == "all" else 0)))
' "$jmout/smoke.jtl"
echo "a few of the lines (the built-in listener's schema: dashboards 4026/5496 read them as they are)"
table "$JMDB" "SELECT * FROM \"jmeter\" WHERE \"transaction\" = 'GET /b' AND \"statut\" =~ /./ LIMIT 3" \
  time transaction statut count avg min max pct90.0 pct95.0 pct99.0 hit
table "$JMDB" "SELECT * FROM \"jmeter\" WHERE \"transaction\" = 'all' LIMIT 2" \
  time transaction count countError avg pct95.0 hit sb rb
table "$JMDB" "SELECT * FROM \"jmeter\" WHERE \"responseCode\" != '' LIMIT 2" \
  time transaction responseCode responseMessage count
table "$JMDB" 'SELECT * FROM "events"' time application text
rm -rf "$jmout"

echo
echo "== the quick start: pytest examples/unified_performance_test.yml (k6, JMeter and a workflow, one testid)"
# `make demo` installed the package (pip install ./python); the file starts its own demo target.
UDB="${DB}_unified"
env -u PERFSINK_FLUSH_INTERVAL_MS -u PERFSINK_SELF_METRICS_INTERVAL_MS -u PERFSINK_SOURCE \
  INFLUXDB_DB="$UDB" python3 -m pytest -q -p no:cacheprovider examples/unified_performance_test.yml \
  --perf-testid demo-unified 2>&1 | sed 's/^/  /'
echo "what landed in database $UDB under testid=demo-unified, per runner"
curl -sfG "$base/query" --data-urlencode "db=$UDB" --data-urlencode \
  "q=SELECT count(\"value\") FROM \"http_reqs\" WHERE \"testid\" = 'demo-unified'; SELECT sum(\"count\") FROM \"jmeter\" WHERE \"transaction\" = 'all' AND \"testid\" = 'demo-unified'; SELECT count(\"duration\") FROM \"workflow_step\" WHERE \"testid\" = 'demo-unified'" |
  python3 -c '
import json, sys
names = ["k6 http_reqs points", "JMeter samples (sum of count)", "workflow_step points"]
for name, r in zip(names, json.load(sys.stdin)["results"]):
    s = r.get("series")
    print("  %-30s %8d" % (name, s[0]["values"][0][1] if s else 0))'
table "$UDB" "SELECT * FROM \"workflow_step\" WHERE \"testid\" = 'demo-unified' LIMIT 4" \
  time workflow step action status duration success_count iteration
