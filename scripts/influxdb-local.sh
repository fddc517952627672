#!/usr/bin/env bash
# `make up` / `make down`: a local InfluxDB 1.x (Debian's influxd) for machines without Docker,
# kept running between demos so there is something to query afterwards.
#
#   scripts/influxdb-local.sh up      start it (or find it running) and print its URL
#   scripts/influxdb-local.sh down    stop it; the data stays (rm -rf .perfsink/influxdb resets)
#   scripts/influxdb-local.sh url     print its URL if it runs, else fail
#
# Everything lives under one directory, $PERFSINK_HOME (default .perfsink at the repository
# root, gitignored): influxdb/{meta,data,wal} the data, influxdb/influxd.{conf,log,pid}, and
# influxdb.url the URL: http://127.0.0.1:8086 when that port is free, else a free port
# ($PERFSINK_INFLUXDB_PORT asks for another port; 0: any free one).
set -euo pipefail
cd "$(dirname "$0")/.."
home="${PERFSINK_HOME:-$PWD/.perfsink}"
dir="$home/influxdb"
pidfile="$dir/influxd.pid"
urlfile="$home/influxdb.url"

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
  curl -sf -m 2 "$1/ping" >/dev/null
}

free_port() {
  python3 - "$@" <<'PY'
import socket, sys
for port in [int(p) for p in sys.argv[1:]] + [0]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    print(s.getsockname()[1])
    break
PY
}

up() {
  if running && answers "$(cat "$urlfile")"; then
    echo "local InfluxDB already running at $(cat "$urlfile") (pid $(cat "$pidfile"), data in $dir)"
    return
  fi
  command -v influxd >/dev/null || {
    echo "influxd not found: install InfluxDB 1.x (apt-get install influxdb) or use Docker" >&2
    exit 1
  }
  mkdir -p "$dir"
  local port rpc
  port=$(free_port "${PERFSINK_INFLUXDB_PORT:-8086}")
  rpc=$(free_port 8088)
  cat >"$dir/influxd.conf" <<CONF
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
  # setsid: it outlives `make up`; INFLUXDB_* of the caller's shell would override the config.
  env -u INFLUXDB_DB -u INFLUXDB_URL setsid influxd run -config "$dir/influxd.conf" \
    >"$dir/influxd.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
  local url="http://127.0.0.1:$port"
  for _ in $(seq 150); do
    answers "$url" && break
    running || { tail -n 20 "$dir/influxd.log" >&2; exit 1; }
    sleep 0.1
  done
  answers "$url" || { echo "influxd did not answer on $url" >&2; exit 1; }
  echo "$url" >"$urlfile"
  echo "local InfluxDB running at $url (pid $(cat "$pidfile"), data in $dir; make down stops it)"
}

down() {
  if running; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "local InfluxDB stopped (data kept in $dir)"
  else
    echo "local InfluxDB is not running"
  fi
  rm -f "$pidfile" "$urlfile"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  url) running && answers "$(cat "$urlfile")" && cat "$urlfile" ;;
  *) echo "usage: $0 up|down|url" >&2; exit 2 ;;
esac
