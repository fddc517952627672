#!/usr/bin/env python3
"""Python workflow steps: what publishing costs a Python thread, in one run (issue 10, item 5).

Rows, all from one Python thread, against one private influxd on a free loopback port:

  bare loop            `for i in range(n): pass`: the floor
  publish_step         InfluxDBPublisher.publish_step, steps buffered and handed to the engine
                       in batches (perfsink_workflow_steps); delivered = points in InfluxDB
  one C call per step  the same records, one perfsink_workflow_steps call each (the shape NOT
                       chosen: what ctypes costs per call)
  step() no-op         `with pub.step(...): pass`; overhead = its cost per call minus the bare loop's
  no URL (no-op)       publish_step of a publisher without INFLUXDB_URL
  APT's way            influxdb-client (pip install influxdb-client), write_api(SYNCHRONOUS), one
                       write per step, the original publisher's point (apt.md section 5). influxd
                       1.6.7 has no /api/v2/write, so it writes through `perfsink serve` in front of
                       the same influxd; the relay answers once the lines are queued, so this row is
                       a lower bound of the original's cost (a real write waits for InfluxDB)

`calls/s` is the loop's rate (wall clock); `cpu calls/s` the calls per CPU second of the calling
thread: the rate on a machine the thread had to itself (on a shared one, other work takes the
CPU at random; `load` is the 1-minute load average at the end). `vs APT` divides calls/s by APT's
way's. Target: publish_step >= 200 000/s.
Usage: scripts/bench-python.py [--steps N] [--apt-steps N]. Needs target/release (cargo build
--release) or the installed package.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python" / "tests"))
try:
    import perfsink  # noqa: F401  (installed)
except ImportError:
    sys.path.insert(0, str(ROOT / "python"))

from influxd import Influxd  # noqa: E402

from perfsink import InfluxDBPublisher, _native, publisher  # noqa: E402

QUIET = {"self_metrics_interval_ms": 0}


CPU: dict = {}


def timed(n: int, body: Callable[[int], None]) -> float:
    """Seconds for `body(n)`; the calling thread's CPU seconds are kept in CPU[body]."""
    start, cpu = time.perf_counter(), time.thread_time()
    body(n)
    CPU[body] = time.thread_time() - cpu
    return time.perf_counter() - start


def count(server: Influxd, db: str) -> int:
    rows = server.rows(db, 'SELECT count("duration") FROM workflow_step')
    return int(rows[0]["count"]) if rows else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def perfsink_cli() -> str:
    bundled = Path(_native.library_path()).parent / "perfsink"
    return str(bundled if bundled.is_file() else ROOT / "target" / "release" / "perfsink")


def apt_way(server: Influxd, n: int) -> Tuple[float, float, int]:
    try:
        import influxdb_client  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "influxdb-client"], check=True)
    from influxdb_client import InfluxDBClient, Point
    from influxdb_client.client.write_api import SYNCHRONOUS

    port = free_port()
    env = {**os.environ, "INFLUXDB_URL": server.url, "INFLUXDB_DB": "apt", "PERFSINK_SELF_METRICS_INTERVAL_MS": "0"}
    relay = subprocess.Popen([perfsink_cli(), "serve", "--listen", f"127.0.0.1:{port}", "--quiet"], env=env)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or relay.poll() is not None:
                    raise RuntimeError("perfsink serve did not start")
                time.sleep(0.05)
        client = InfluxDBClient(url=f"http://127.0.0.1:{port}", token=None, org="-")
        write_api = client.write_api(write_options=SYNCHRONOUS)

        def body(n: int) -> None:
            for i in range(n):
                t0 = time.time()
                duration = time.time() - t0
                p = (
                    Point("workflow_step")
                    .tag("workflow", "wf_key")
                    .tag("step", "get_ok")
                    .tag("action", "api_call")
                    .tag("iteration", str(i))
                    .field("duration", duration)
                    .field("success_count", 1)
                    .field("total_count", 1)
                )
                write_api.write(bucket="apt", org="-", record=p)

        seconds = timed(n, body)
        client.close()
    finally:
        relay.terminate()
        relay.wait(30)
    return seconds, CPU[body], count(server, "apt")


def one_call_per_step(pub: InfluxDBPublisher, n: int) -> None:
    """publish_step's records, one perfsink_workflow_steps call each."""
    lib, handle = _native.lib(), pub._handle
    rec = struct.Struct(_native.STEP_FORMAT)
    err = _native.err_buf()
    for i in range(n):
        w, s = b"wf", b"s"
        arena = w + s
        r = rec.pack(time.time_ns(), 0.001, i, 0, len(w), len(w), len(s), 0, 0, 0, 0, 3, 0)
        _native.check(lib.perfsink_workflow_steps(handle, r, 1, None, 0, arena, len(arena), None, err, len(err)), err)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--apt-steps", type=int, default=2_000)
    args = ap.parse_args()
    n = args.steps
    rows: List[Tuple[str, int, float, float, Optional[int]]] = []
    os.environ.pop("INFLUXDB_URL", None)
    # Every hand-off in the measured thread (full batches), so its CPU time holds all of it.
    publisher.HANDOFF_INTERVAL_S = 3600
    with Influxd() as server:
        def bare_loop(n: int) -> None:
            for _ in range(n):
                pass

        bare = timed(n, bare_loop)
        rows.append(("bare loop", n, bare, CPU[bare_loop], None))

        with InfluxDBPublisher(url=server.url, db="publish", **QUIET) as pub:

            def publish(n: int) -> None:
                p = pub.publish_step
                for i in range(n):
                    p("wf", "s", 0.001, True, iteration=i)

            t = timed(n, publish)
            t_flush = timed(0, lambda _: pub.flush(timeout=120))
        rows.append(("publish_step", n, t, CPU[publish], count(server, "publish")))

        with InfluxDBPublisher(url=server.url, db="percall", **QUIET) as pub:

            def per_call(k: int) -> None:
                one_call_per_step(pub, k)

            t_call = timed(n // 3, per_call)
            pub.flush(timeout=120)
        rows.append(("one C call per step", n // 3, t_call, CPU[per_call], count(server, "percall")))

        with InfluxDBPublisher(url=server.url, db="ctx", **QUIET) as pub:

            def steps(n: int) -> None:
                st = pub.step
                for i in range(n):
                    with st("wf", "s", iteration=i):
                        pass

            t_step = timed(n, steps)
            pub.flush(timeout=120)
        rows.append(("step() no-op", n, t_step, CPU[steps], count(server, "ctx")))

        off = InfluxDBPublisher(**QUIET)

        def no_url(n: int) -> None:
            p = off.publish_step
            for i in range(n):
                p("wf", "s", 0.001, True, iteration=i)

        t_off = timed(n, no_url)
        off.close()
        rows.append(("no URL (no-op)", n, t_off, CPU[no_url], None))

        t_apt, apt_cpu, apt_delivered = apt_way(server, args.apt_steps)
        rows.append(("APT's way (influxdb-client SYNCHRONOUS)", args.apt_steps, t_apt, apt_cpu, apt_delivered))

    apt_rate = args.apt_steps / t_apt
    print(f"\nPython {sys.version.split()[0]}, libperfsink {_native.version()} ({_native.library_path()})")
    print(f"{'row':42} {'calls':>8} {'calls/s':>12} {'us/call':>9} {'cpu calls/s':>12} {'vs APT':>8} {'delivered':>10}")
    for name, k, secs, cpu, delivered in rows:
        rate = k / secs
        print(
            f"{name:42} {k:8d} {rate:12,.0f} {secs / k * 1e6:9.3f} {k / max(cpu, 1e-9):12,.0f} {rate / apt_rate:8.1f} "
            f"{'-' if delivered is None else ('all' if delivered == k else str(delivered)):>10}"
        )
    per_bare = bare / n
    print(
        f"\nstep() around a no-op: {(t_step / n - per_bare) * 1e6:.3f} us per call over the bare loop "
        f"({t_step / bare:.0f}x the bare loop's time); publish_step: {n / t:,.0f} calls/s "
        f"({(n / t) / apt_rate:.0f}x APT's way), then flush {t_flush:.2f} s"
    )
    cpu_rate = n / max(CPU[publish], 1e-9)
    print(
        f"target publish_step >= 200000/s: {'met' if n / t >= 200_000 else 'NOT met'} by the wall clock "
        f"({n / t:,.0f}/s), {'met' if cpu_rate >= 200_000 else 'NOT met'} per CPU second of the thread "
        f"({cpu_rate:,.0f}/s); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
