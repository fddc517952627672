#!/usr/bin/env bash
# What each stock k6 output costs k6 when it is streamed: k6 requests/s against a tiny loopback
# target (examples/k6_target.rs) with
#   none             no output
#   json, csv        `--out json=<FIFO>`, `--out csv=<FIFO>`, each FIFO drained by `cat`
#   perfsink-null    `perfsink k6`: the JSON stream parsed, encoded, gzipped and sent to a null
#                    InfluxDB (the same target, which answers 200 to every write)
#   perfsink-influx  `perfsink k6` writing to the InfluxDB at $INFLUXDB_URL (only when it is set)
# Variants run round-robin, REPS times each; the median and each run are printed.
#   VUS=20 DURATION=10s REPS=3 bash scripts/k6-output-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VUS=${VUS:-20}
DURATION=${DURATION:-10s}
REPS=${REPS:-3}
DEFAULT_VARIANTS="none json csv perfsink-null${INFLUXDB_URL:+ perfsink-influx}"
VARIANTS=${VARIANTS:-$DEFAULT_VARIANTS}
K6=${PERFSINK_K6:-k6}

cargo build --release -q --example k6_target --bin perfsink
work=$(mktemp -d)
trap 'kill $target_pid 2>/dev/null || true; rm -rf "$work"' EXIT
target/release/examples/k6_target >"$work/target.out" &
target_pid=$!
for _ in $(seq 50); do grep -q listening "$work/target.out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$work/target.out")
cat >"$work/script.js" <<JS
import http from 'k6/http';
export default function () { http.get('http://$addr/'); }
JS

run() { # variant rep
  local v=$1 sum="$work/$1.$2.json" out=()
  case $v in
    json|csv) rm -f "$work/fifo"; mkfifo "$work/fifo"; cat "$work/fifo" >/dev/null & out=(--out "$v=$work/fifo") ;;
  esac
  if [ "${v%%-*}" = perfsink ]; then
    local url=${INFLUXDB_URL:-}
    [ "$v" = perfsink-null ] && url="http://$addr/null"
    INFLUXDB_URL=$url target/release/perfsink k6 --no-progress run --quiet --vus "$VUS" --duration "$DURATION" \
      --summary-export "$sum" "$work/script.js" >/dev/null 2>"$work/$v.err"
    tail -n 1 "$work/$v.err" >&2
  else
    "$K6" run --quiet --vus "$VUS" --duration "$DURATION" --summary-export "$sum" "${out[@]}" "$work/script.js" >/dev/null 2>&1
  fi
  wait
  python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['metrics']['http_reqs']['rate']))" "$sum"
}

declare -A results
for rep in $(seq "$REPS"); do
  for v in $VARIANTS; do
    r=$(run "$v" "$rep")
    results[$v]="${results[$v]:-} $r"
    echo "run $rep $v: $r req/s" >&2
  done
done
base=""
printf '%-16s %10s %8s   %s\n' output 'req/s' relative runs
for v in $VARIANTS; do
  med=$(printf '%s\n' ${results[$v]} | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  [ -n "$base" ] || base=$med
  printf '%-16s %10s %8s   %s\n' "$v" "$med" "$(awk -v a="$med" -v b="$base" 'BEGIN {printf "%.2f", a/b}')" "${results[$v]# }"
done
