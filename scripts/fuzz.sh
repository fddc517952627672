#!/usr/bin/env bash
# The cargo-fuzz targets of fuzz/ (README "Fuzzing"), built once (nightly, AddressSanitizer,
# debug assertions and overflow checks on), then each run for FUZZ_SECONDS (default 60) in turn
# from its committed seeds (fuzz/corpus/<target>) plus a working corpus that grows across runs
# (FUZZ_WORK, default fuzz/work/<target>, gitignored). Fails on the first crash, panic, leak,
# sanitizer report or hang (an input slower than FUZZ_TIMEOUT s, default 5); what failed is in
# fuzz/artifacts/<target>/, and the message says how to replay it. FUZZ_TARGETS picks targets.
# `make fuzz`; `make test` runs it short through scripts/fuzz-smoke.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

seconds=${FUZZ_SECONDS:-60}
hang=${FUZZ_TIMEOUT:-5}
work=${FUZZ_WORK:-fuzz/work}
say() { printf '[fuzz] %s\n' "$*"; }

host=$(rustc +nightly -vV | sed -n 's/^host: //p')
# Release with debug assertions: overflow checks and debug_assert! find bugs too.
cargo +nightly fuzz build --debug-assertions
bin="fuzz/target/$host/release"
targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}

for t in $targets; do
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  log="fuzz/artifacts/$t/last-run.log"
  say "$t: ${seconds}s"
  if ! "$bin/$t" -max_total_time="$seconds" -timeout="$hang" -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" \
      "$work/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    found=$(grep -o "fuzz/artifacts/$t/[a-z]*-[0-9a-f]*" "$log" | tail -n 1 || true)
    say "$t FAILED (log: $log)${found:+; replay: $bin/$t $found}" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$done_line")
  say "$t: ok, ${runs:-?} runs, cov ${cov:-?} edges, ft ${ft:-?} features, corpus ${corp:-?} inputs"
done
