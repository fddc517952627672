#!/usr/bin/env bash
# Tests of the Go shim; `make test` calls it. Builds the static library (and the perfsink
# binary) when needed, then for
# each Go module: gofmt, go vet, go test -race, and go test under GOEXPERIMENT=cgocheck2 (the
# tests start their own influxd: the Debian package influxdb). Then it checks the AGPL rule
# (no go.mod or go.work of the repository names go.k6.io/k6) and builds a k6-like binary the
# way `xk6 build` does, offline, with the stand-in in place of k6 (see workspace.sh).
set -euo pipefail

cd "$(dirname "$0")"
SHIM=$(pwd)
ROOT=$(cd .. && pwd)
export PATH="/usr/local/go/bin:$HOME/.cargo/bin:$PATH"
export CGO_ENABLED=1 GOFLAGS=-buildvcs=false
step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

# shellcheck source=workspace.sh
. ./workspace.sh
build=$(mktemp -d)
trap 'rm -rf "$WORKSPACE" "$build"' EXIT
MODULES=(. xk6 "$STANDIN")

step "static library and perfsink binary (cargo build --release --lib --bin perfsink)"
# The binary is for k6output's test that the Go output and `perfsink k6` write the same lines.
(cd "$ROOT" && cargo build --release --lib --bin perfsink --locked)
test -f "$ROOT/target/release/libperfsink.a" || fail "target/release/libperfsink.a was not built"
test -x "$ROOT/target/release/perfsink" || fail "target/release/perfsink was not built"
# Go's build cache does not hash the static library named in `#cgo LDFLAGS`: without this, a
# rebuilt engine can be skipped and the Go binaries linked against the previous one.
export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DPERFSINK_LIB_ID=$(sha1sum "$ROOT/target/release/libperfsink.a" | cut -c1-16)"

step "gofmt -l"
unformatted=$(gofmt -l .)
[ -z "$unformatted" ] || fail "not gofmt-formatted: $unformatted"

step "no go.mod, go.sum or go.work of the repository names go.k6.io/k6 (AGPL)"
offending=$(cd "$ROOT" && git ls-files --cached --others --exclude-standard \
	| grep -E '(^|/)go\.(mod|sum|work)$' | xargs -r grep -ln 'go\.k6\.io/k6' || true)
[ -z "$offending" ] || fail "go.k6.io/k6 named in: $offending"
standin=$(cd xk6 && go list -m -f '{{.Dir}}' go.k6.io/k6)
[ "$standin" = "$STANDIN" ] || fail "go.k6.io/k6 resolves to $standin, not the stand-in"
echo "go.k6.io/k6 -> the stand-in, $standin"

for m in "${MODULES[@]}"; do
	step "$m: go vet"
	(cd "$m" && go vet ./...)
done
for m in "${MODULES[@]}"; do
	step "$m: go test -race"
	(cd "$m" && time go test -count=1 -race ./...)
done
for m in "${MODULES[@]}"; do
	step "$m: GOEXPERIMENT=cgocheck2 go test"
	(cd "$m" && time GOEXPERIMENT=cgocheck2 go test -count=1 ./...)
done

step "xk6-style build: a main module requiring k6 (the stand-in), --replace for perfsink, offline"
cat >"$build/main.go" <<'EOF'
// What `xk6 build` generates: a main module that requires k6 and imports the extension.
package main

import (
	"fmt"
	"sort"

	"go.k6.io/k6/ext"

	_ "github.com/perfsink/perfsink/go-shim/xk6"
)

func main() {
	var names []string
	for name := range ext.Get(ext.OutputExtension) {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Println(names)
}
EOF
# The stand-in requires logrus, as k6 does: its module graph comes from the module proxy here,
# so that the offline build below finds everything `go mod tidy` looks at in the module cache.
(cd "$STANDIN" && GOWORK=off go mod download all)
(
	cd "$build"
	export GOWORK=off GOPROXY=off GOFLAGS="-mod=mod -buildvcs=false"
	go mod init k6build >/dev/null 2>&1
	go mod edit -require=go.k6.io/k6@v1.1.0 -replace="go.k6.io/k6=$STANDIN" \
		-replace="github.com/perfsink/perfsink/go-shim/xk6=$SHIM/xk6" \
		-replace="github.com/perfsink/perfsink/go-shim=$SHIM"
	go mod tidy 2>/dev/null
	go build -trimpath -ldflags='-s -w' -o k6 .
	out=$(./k6)
	[ "$out" = "[perfsink]" ] || fail "registered outputs: $out"
	if ldd ./k6 | grep -q perfsink; then fail "the binary needs libperfsink at run time"; fi
	echo "outputs: $out; shared libraries: $(ldd ./k6 | awk '{print $1}' | tr '\n' ' ')"
)

step "go-shim: all passed"
