#!/usr/bin/env bash
# Runs examples/jmeter/smoke.jmx non-GUI on the JMeter 5.6.3 home of scripts/jmeter-home.sh against
# a local target and checks the CSV JTL. Usage: examples/jmeter/run-smoke.sh [OUT_DIR] [-Jname=value ...]
# SMOKE_PLAN=<file.jmx> runs a variant of the plan instead (a test's; the JTL is still smoke.jtl).
# The target (python3, background, killed on exit) answers "/b" with "nope" ~20 % of the time, so the
# plan's Response Assertion fails sometimes. It answers in ONE write on a TCP_NODELAY socket: with
# http.server's usual separate header and body writes JMeter's keep-alive requests stall by ~40 ms
# (Nagle + delayed ACK).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$(mktemp -d)}; shift || true
mkdir -p "$out"
home=$(bash "$repo/scripts/jmeter-home.sh" --print-home | tail -1)

python3 -c '
import http.server, socket, random, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        super().setup(); self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    def do_GET(self):
        body = b"nope" if self.path == "/b" and random.random() < 0.2 else b"ok"
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
open(sys.argv[1] + ".tmp", "w").write(str(s.server_address[1])); __import__("os").rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
' "$out/target.port" &
target=$!
trap 'kill $target 2>/dev/null || true; wait $target 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$out/target.port" ] && break; sleep 0.1; done
port=$(cat "$out/target.port")

rm -f "$out/smoke.jtl" "$out/jmeter.log"  # JMeter appends to an existing JTL
timeout 120 java -Xmx256m -jar "$home/bin/ApacheJMeter-5.6.3.jar" -n -t "${SMOKE_PLAN:-$repo/examples/jmeter/smoke.jmx}" \
  -l "$out/smoke.jtl" -j "$out/jmeter.log" -Jport="$port" "$@"

rows=$(($(wc -l <"$out/smoke.jtl") - 1))
[ "$rows" -gt 0 ] || { echo "[smoke] no samples in $out/smoke.jtl" >&2; exit 1; }
echo "[smoke] $rows samples in $out/smoke.jtl; per label (samples, failures):"
python3 - "$out/smoke.jtl" <<'PY'
import csv, sys, collections
c = collections.defaultdict(lambda: [0, 0])
for r in csv.DictReader(open(sys.argv[1], newline="")):
    c[r["label"]][0] += 1; c[r["label"]][1] += r["success"] != "true"
for k, (n, f) in sorted(c.items()): print(f"  {k}: {n}, {f}")
PY
