# shellcheck shell=bash
# A private influxd for a script (sourced; the benches and the demo): a temporary data directory,
# a port the kernel picks on loopback, nothing reported home. After `influxd_start DIR`:
#   influx_pid   its pid (the caller stops it: kill, then wait)
#   INFLUX       http://127.0.0.1:<port>
#   influx_q DB STATEMENT   a query, its JSON on stdout
# Needs influxd (Debian's influxdb package) and curl. Errors go through the caller's `die`.

influxd_start() { # dir
  local dir=$1 port=""
  mkdir -p "$dir"
  cat >"$dir/influxdb.conf" <<CONF
reporting-enabled = false
bind-address = "127.0.0.1:0"
[meta]
  dir = "$dir/meta"
  logging-enabled = false
[data]
  dir = "$dir/data"
  wal-dir = "$dir/wal"
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false
[monitor]
  store-enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:0"
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true
[subscriber]
  enabled = false
[continuous_queries]
  enabled = false
CONF
  # influxd reads INFLUXDB_* settings from the environment: they are meant for perfsink.
  env -u INFLUXDB_DB -u INFLUXDB_URL influxd run -config "$dir/influxdb.conf" >"$dir/influxd.log" 2>&1 &
  influx_pid=$!
  # The HTTP port the kernel picked, from influxd's log line `msg="Listening on HTTP" ... addr=`.
  local _p
  for _ in $(seq 600); do
    kill -0 "$influx_pid" 2>/dev/null || die "influxd exited: $(tail -n 5 "$dir/influxd.log")"
    _p=$(sed -n '/Listening on HTTP/s/.*addr=[^ ]*:\([0-9]*\).*/\1/p' "$dir/influxd.log" | head -n 1)
    if [ -n "$_p" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$_p/ping")" = 204 ]; then
      port=$_p
      break
    fi
    sleep 0.05
  done
  [ -n "$port" ] || die "influxd did not answer /ping in 30 s"
  INFLUX=http://127.0.0.1:$port
}

influx_q() { # db statement -> JSON
  curl -sS -XPOST "$INFLUX/query" --data-urlencode "db=$1" --data-urlencode "q=$2"
}
