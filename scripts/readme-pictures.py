#!/usr/bin/env python3
"""Makes the README's dashboard pictures (docs/img/*.png) from a fresh run, start to end:

1. a private influxd (temporary directory, free loopback port), database ``k6``;
2. the quick start: ``pytest examples/unified_performance_test.yml --perf-testid <run>`` (k6 raw,
   JMeter with perfsink's listener, a Python workflow; perfsink's self-metrics every second);
3. ``docs/pictures-k6.js`` (named requests, a failing one, checks, VUs ramping) through
   ``perfsink k6`` with ``PERFSINK_MODE=both``, testid ``<run>-k6``: raw and aggregated points;
4. ``scripts/render-dashboards.py --testid <run>`` into ``--out`` (default docs/img).

    python3 scripts/readme-pictures.py [--run readme] [--out docs/img] [--keep]

Needs what ``make demo`` needs (the perfsink package or PERFSINK_LIB/PERFSINK_BIN, k6, JMeter) and
about two minutes. ``--keep`` leaves the influxd running and prints its URL. docs/pictures.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "k6"
SELF_METRICS_MS = "1000"


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--run", default="readme", help="testid of the unified run; the k6 run is <run>-k6")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--keep", action="store_true", help="leave the influxd running")
    args = ap.parse_args()

    sys.path.insert(0, str(ROOT / "python" / "tests"))  # the tests' throw-away influxd
    from influxd import Influxd
    from plugin_helpers import plugin_installed
    from perfsink.target import serve
    from perfsink.tools import perfsink_cli

    influx = Influxd()
    try:
        influx.query(DB, f'CREATE DATABASE "{DB}"')
        base = {k: v for k, v in os.environ.items() if not k.startswith(("INFLUXDB_", "PERFSINK_TAGS", "TESTID", "TARGET"))}
        base.update({"INFLUXDB_URL": influx.url, "INFLUXDB_DB": DB, "PERFSINK_SELF_METRICS_INTERVAL_MS": SELF_METRICS_MS})

        print(f"== pytest examples/unified_performance_test.yml --perf-testid {args.run}", flush=True)
        unified = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
            + ([] if plugin_installed() else ["-p", "perfsink.pytest_plugin"])  # a source checkout
            + ["examples/unified_performance_test.yml", "--perf-testid", args.run],
            cwd=ROOT,
            env=base,
        )
        if unified.returncode != 0:
            print("readme-pictures: the unified example failed", file=sys.stderr)
            return 1

        print(f"== perfsink k6 run docs/pictures-k6.js, PERFSINK_MODE=both, testid {args.run}-k6", flush=True)
        server = serve()
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        host, port = server.server_address[0], server.server_address[1]
        k6_env = dict(
            base,
            PERFSINK_MODE="both",
            PERFSINK_TAGS=f"testid={args.run}-k6",
            TESTID=f"{args.run}-k6",
            TARGET=f"http://{host!s}:{port}",
            K6_NO_USAGE_REPORT="true",
        )
        k6 = subprocess.run([str(perfsink_cli()), "k6", "run", "--quiet", "docs/pictures-k6.js"], cwd=ROOT, env=k6_env)
        server.shutdown()
        server.server_close()
        if k6.returncode != 0:
            print("readme-pictures: perfsink k6 failed", file=sys.stderr)
            return 1

        time.sleep(2)  # the last self-metrics point of each sink
        print("== scripts/render-dashboards.py", flush=True)
        render = [sys.executable, str(ROOT / "scripts" / "render-dashboards.py"), "--influxdb-url", influx.url, "--db", DB, "--testid", args.run, "--out", str(args.out)]
        return subprocess.run(render, cwd=ROOT).returncode
    finally:
        if args.keep:
            print(f"readme-pictures: influxd keeps running at {influx.url} (data in {influx.dir})")
        else:
            influx.close()


if __name__ == "__main__":
    sys.exit(main())
