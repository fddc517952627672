#!/usr/bin/env bash
# What each stock k6 output costs k6 when it is streamed, without InfluxDB: k6 requests/s
# against the loopback target (examples/k6_target.rs) with
#   none             no output
#   json-cat         `--out json=<FIFO>`, the FIFO drained by `cat`
#   csv-cat          `--out csv=<FIFO>`, the same
#   perfsink-null    `perfsink k6`: the JSON stream parsed, encoded and sent to a null InfluxDB
#                    (the target answers 200 to every write)
# A subset of scripts/bench-k6.sh (which also runs the InfluxDB variants); its knobs apply:
#   VUS=20 DURATION=8s ROUNDS=4 bash scripts/k6-output-cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VARIANTS=${VARIANTS:-none json-cat csv-cat perfsink-null} ROUNDS=${ROUNDS:-${REPS:-4}} \
  exec bash scripts/bench-k6.sh
