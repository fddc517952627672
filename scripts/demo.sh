#!/usr/bin/env bash
# `make demo`: every path into perfsink, then what landed beside what ran.
#
# Where the points go, first match wins:
#   1. INFLUXDB_URL, when set (`http://host:8086`, or k6 style `http://host:8086/<db>`);
#   2. the docker-compose stack, when a Docker engine answers (`docker info`): started with
#      `docker compose up -d` (or `docker-compose`), InfluxDB at http://localhost:8086, Grafana at
#      http://localhost:3000 (admin/admin);
#   3. the local InfluxDB of `make up` (scripts/influxdb-local.sh), started if needed and left
#      running afterwards, so there is something to query; `make down` stops it.
# Everything goes to one database (the one the engine resolves: the URL's path, INFLUXDB_DB, else
# k6, the Grafana datasource's), each part under a testid of its own, printed at the end with
# the Grafana URL of each dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${INFLUXDB_URL:-}" ]; then
  echo "demo: INFLUXDB_URL=$INFLUXDB_URL"
elif docker info >/dev/null 2>&1; then
  if docker compose version >/dev/null 2>&1; then compose=(docker compose); else compose=(docker-compose); fi
  echo "demo: Docker answers: ${compose[*]} up -d (InfluxDB :8086, Grafana :3000)"
  "${compose[@]}" up -d
  for _ in $(seq 120); do
    curl -sf http://localhost:8086/ping >/dev/null && curl -sf http://localhost:3000/api/health >/dev/null && break
    sleep 1
  done
  export INFLUXDB_URL=http://localhost:8086
else
  echo "demo: no Docker engine (docker info fails): the local InfluxDB of make up"
  bash scripts/influxdb-local.sh up
  INFLUXDB_URL=$(cat "${PERFSINK_HOME:-.perfsink}/influxdb.url")
  export INFLUXDB_URL
fi
# Grafana: $GRAFANA_URL, else the compose stack's when it answers (also with INFLUXDB_URL set).
grafana=${GRAFANA_URL:-}
if [ -z "$grafana" ] && curl -sf -m 2 http://localhost:3000/api/health >/dev/null 2>&1; then
  grafana=http://localhost:3000
fi

# The engine's rule (URL path, else INFLUXDB_DB, else k6) decides the database; the demo asks
# it instead of parsing the URL, then hands every part the base URL and INFLUXDB_DB.
# (`destination` is the engine's "http://host:8086, db k6".)
dest=$(PERFSINK_SELF_METRICS_INTERVAL_MS=0 python3 -c '
import perfsink
p = perfsink.InfluxDBPublisher()
print(p.destination.rsplit(", db ", 1)[0] if p.database else "")
print(p.database or "")
p.close()') || { echo "demo: the perfsink Python package did not load (make python-package)" >&2; exit 1; }
base=$(sed -n 1p <<<"$dest")
DB=$(sed -n 2p <<<"$dest")
[ -n "$DB" ] || { echo "demo: the demo needs an InfluxDB 1.x database, not a v2 bucket" >&2; exit 1; }
export INFLUXDB_URL="$base" INFLUXDB_DB="$DB"
unset INFLUXDB_BUCKET
run="demo-$(date -u +%Y%m%d-%H%M%S)"
started_ms=$(($(date +%s) * 1000 - 60000))  # the dashboards' time range: a minute of margin
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
  kill ${target_pid:-} ${relay_pid:-} 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
echo "demo: InfluxDB $base, database $DB; testids $run-*"
quiet() { "$@" >"$work/out" 2>&1 || { cat "$work/out"; return 1; }; }

echo "== 1/5 C example (examples/c): 2000 workflow steps through the C ABI"
quiet target/examples/workflow_steps "INFLUXDB_URL=$base;INFLUXDB_DB=$DB;PERFSINK_TAGS=testid=$run-c;PERFSINK_SOURCE=demo-c" 2000
grep -h '^perfsink\|accepted' "$work/out" | tail -n 1 | sed 's/^/   /'

echo "== 2/5 Rust example (examples/workflow.rs): 1000 iterations x 4 steps"
PERFSINK_TAGS=testid=$run-rust quiet cargo run --quiet --release --locked --example workflow -- 1000
tail -n 1 "$work/out" | sed 's/^/   /'

echo "== 3/5 k6 through perfsink k6 (stock k6 --out json into a pipe), raw and aggregated"
cargo build --quiet --release --locked --bin perfsink --example k6_target
tport=$(free_port)
target/release/examples/k6_target "$tport" >/dev/null &
target_pid=$!
export TARGET="http://127.0.0.1:$tport"
TESTID=$run-k6 quiet target/release/perfsink k6 run --quiet \
  --summary-export "$work/k6.json" examples/k6/demo.js
grep '^perfsink: accepted' "$work/out" | sed 's/^/   /'
TESTID=$run-k6agg PERFSINK_MODE=aggregate quiet target/release/perfsink k6 run --quiet \
  --summary-export "$work/k6agg.json" examples/k6/demo.js
grep '^perfsink: accepted' "$work/out" | sed 's/^/   /'

echo "== 4/5 stock k6 --out influxdb through the relay (perfsink serve)"
rport=$(free_port)
target/release/perfsink serve --quiet --listen "127.0.0.1:$rport" >/dev/null 2>"$work/relay.err" &
relay_pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$rport/ping" >/dev/null && break; sleep 0.1; done
TESTID=$run-relay quiet k6 run --quiet --summary-export "$work/relay.json" \
  --out "influxdb=http://127.0.0.1:$rport/$DB" examples/k6/demo.js
kill -INT "$relay_pid"; wait "$relay_pid" 2>/dev/null || true
relay_pid=""
grep '^perfsink: accepted' "$work/relay.err" | sed 's/^/   /'
kill "$target_pid" 2>/dev/null || true
target_pid=""

echo "== 5/5 the unified example: pytest examples/unified_performance_test.yml (k6, JMeter, a workflow)"
status=0
python3 -m pytest -q -p no:cacheprovider examples/unified_performance_test.yml \
  --perf-testid "$run" >"$work/pytest.out" 2>&1 || status=$?
sed -n '/perfsink summary/,$p' "$work/pytest.out" | sed 's/^/   /'
[ "$status" = 0 ] || { tail -n 40 "$work/pytest.out"; echo "demo: the unified example failed" >&2; exit 1; }

echo
echo "== what ran (each runner's own count) and what landed in InfluxDB ($base, database $DB)"
report=0
python3 scripts/demo_report.py "$base" "$DB" \
  "steps:$run-c:2000" "steps:$run-rust:4000" \
  "k6:$run-k6:$work/k6.json" "k6agg:$run-k6agg:$work/k6agg.json" "k6:$run-relay:$work/relay.json" \
  "unified:$run:$work/pytest.out" || report=$?

echo
ended_ms=$(($(date +%s) * 1000 + 60000))
board() {
  printf '  %-28s %s\n' "$1" "${grafana:-http://localhost:3000}/d/$2?var-testid=$3&from=$started_ms&to=$ended_ms"
}
if [ -n "$grafana" ]; then
  echo "== Grafana ($grafana, admin/admin): each dashboard on this run"
else
  echo "== Grafana needs Docker: docker-compose up -d, then make demo again (docs/monitoring.md)."
  echo "   With it, these would show this run:"
fi
board "perfsink · k6" perfsink-k6 "$run"
board "perfsink · k6 aggregated" perfsink-k6-agg "$run-k6agg"
board "perfsink · JMeter" perfsink-jmeter "$run"
board "perfsink · Python workflows" perfsink-workflows "$run"
board "perfsink · health" perfsink-health "$run"
echo "   (the unified example is testid $run; the other parts are $run-k6, $run-relay, $run-c and"
echo "   $run-rust: the dashboards' testid menu switches to them)"
if [ -z "$grafana" ]; then
  echo "== the dashboards drawn from this run without Grafana: make pictures TESTID=$run (into .perfsink/pictures)"
  echo "== the data stays in InfluxDB at $base, database $DB (make down stops the local one); e.g."
  echo "  curl -sG '$base/query' --data-urlencode 'db=$DB' --data-urlencode \"q=SELECT count(value) FROM http_reqs WHERE testid = '$run'\""
fi
exit "$report"
