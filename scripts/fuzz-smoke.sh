#!/usr/bin/env bash
# `make test`'s fuzzing: every target of fuzz/ for FUZZ_SMOKE_SECONDS (default 10) from the
# committed seeds only (a throw-away working corpus, so the result does not depend on earlier
# runs); one build, targets in turn, fails on any crash, hang, leak or sanitizer report.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
FUZZ_SECONDS=${FUZZ_SMOKE_SECONDS:-10} FUZZ_WORK="$work" bash scripts/fuzz.sh
