#!/usr/bin/env bash
# Benchmark of the k6 output (xk6 glue -> k6output -> cgo -> engine -> null HTTP server), one
# core (-cpu 1). Prints the raw `go test -bench` lines, then min and median per variant.
# Usage: bench.sh [count (default 5)] [samples per run (default 3000000)]
set -euo pipefail

cd "$(dirname "$0")"
SHIM=$(pwd)
ROOT=$(cd .. && pwd)
export PATH="/usr/local/go/bin:$HOME/.cargo/bin:$PATH"
export CGO_ENABLED=1 GOFLAGS=-buildvcs=false
COUNT=${1:-5}
N=${2:-3000000}

(cd "$ROOT" && cargo build --release --lib --locked)
# Go's build cache does not hash the static library named in `#cgo LDFLAGS`: without this, a
# rebuilt engine can be skipped and the Go binaries linked against the previous one.
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DPERFSINK_LIB_ID=$(sha1sum "$ROOT/target/release/libperfsink.a" | cut -c1-16)"
# shellcheck source=workspace.sh
. ./workspace.sh
bin=$(mktemp -d)
trap 'rm -rf "$bin" "$WORKSPACE"' EXIT
(cd xk6 && go test -c -o "$bin/xk6.test" .)

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
# The engine writes its own notices (a writer falling behind) to stderr; keep them apart.
"$bin/xk6.test" -test.run '^$' -test.bench 'K6Output' -test.cpu 1 -test.benchtime "${N}x" \
	-test.count "$COUNT" 2>"$bin/stderr" | tee "$bin/out" | grep '^Benchmark'
if [ -s "$bin/stderr" ]; then
	echo "engine notices: $(sort "$bin/stderr" | uniq -c | tr '\n' ';')"
fi

printf '\n%-40s %22s %22s %22s %24s\n' "min / median" "wall ns/sample" "go-cpu-ns/sample" \
	"writer-cpu-ns/sample" "allocs/sample"
awk '
/^Benchmark/ {
	name = $1; sub(/-[0-9]+$/, "", name)
	for (i = 3; i < NF; i++) {
		unit = $(i + 1)
		if (unit == "ns/sample" || unit == "go-cpu-ns/sample" || unit == "writer-cpu-ns/sample" || unit == "allocs/sample") {
			v[name, unit, ++n[name, unit]] = $i
			units[unit] = 1; names[name] = 1
		}
	}
}
function stat(name, unit,    k, m, a, i, j, t) {
	m = n[name, unit]
	for (i = 1; i <= m; i++) a[i] = v[name, unit, i]
	for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	return sprintf("%.4g / %.4g", a[1], a[int((m + 1) / 2)])
}
END {
	for (name in names)
		printf "%-40s %22s %22s %22s %24s\n", name, stat(name, "ns/sample"), stat(name, "go-cpu-ns/sample"),
			stat(name, "writer-cpu-ns/sample"), stat(name, "allocs/sample")
}' "$bin/out" | sort
