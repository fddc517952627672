# Sourced by test.sh and bench.sh: a throw-away Go workspace in which the xk6 module builds
# against the local stand-in of k6 (testdata/k6standin) instead of k6 itself. k6 is AGPL, so no
# file of this repository may name it in a go.mod (docs/ARCHITECTURE.md, "k6 and the AGPL"): the
# stand-in's sources live in testdata/ (invisible to `./...`), and its `module go.k6.io/k6`
# go.mod and the go.work that `use`s it are written here, in a temporary directory, and
# removed on exit. Sets GOWORK and STANDIN (the stand-in module's directory).
# Needs SHIM (this directory, absolute).
WORKSPACE=$(mktemp -d)
STANDIN="$WORKSPACE/k6"
cp -r "$SHIM/testdata/k6standin" "$STANDIN"
{ printf 'module go.k6.io/k6\n\n'; cat "$STANDIN/go.mod.tail"; } >"$STANDIN/go.mod"
cat >"$WORKSPACE/go.work" <<WORK
go 1.24

use (
	$SHIM
	$SHIM/xk6
	$STANDIN
)
WORK
export GOWORK="$WORKSPACE/go.work"
