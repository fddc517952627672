#!/usr/bin/env python3
"""`make demo`'s summary: per runner, what it ran by its own count beside what landed in InfluxDB.

    demo_report.py URL DB ROW...

URL is InfluxDB's base URL, DB the database. Each ROW is ``kind:testid:source``:

* ``steps:<testid>:<n>`` — workflow steps; the runner's own count is ``n`` (its errors are not
  counted by the example programs: only the step count is compared).
* ``k6:<testid>:<summary.json>`` — raw k6 samples; own counts from k6's ``--summary-export``.
* ``k6agg:<testid>:<summary.json>`` — aggregated k6 (``<metric>_agg``; the p95 in InfluxDB is
  the largest per-interval p95).
* ``unified:<testid>:<pytest output>`` — the unified example: the ``requests=… errors=… p95=…``
  lines of the perfsink pytest summary (k6 summary, JMeter JTL, executed workflow steps), each
  beside the k6, ``jmeter`` (``transaction=all``; p95 the largest 5 s interval's ``pct95.0``) or
  ``workflow_step`` points of that testid.

Prints one table; exits 1 when a runner's request or error count differs from InfluxDB's.
Standard library only.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.parse
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

Counts = Tuple[int, int, Optional[float]]  # requests, errors, p95 in ms


class Influx:
    def __init__(self, url: str, db: str) -> None:
        self.url, self.db = url.rstrip("/"), db

    def first(self, q: str) -> List[Any]:
        """The first row of the first series of ``q`` without its time column; [] if none."""
        qs = urllib.parse.urlencode({"db": self.db, "q": q})
        with urllib.request.urlopen(f"{self.url}/query?{qs}", timeout=30) as r:
            body = json.load(r)
        series = body["results"][0].get("series") or [{}]
        values = series[0].get("values") or [[None]]
        return values[0][1:]

    def number(self, q: str) -> float:
        row = self.first(q)
        return float(row[0]) if row and row[0] is not None else 0.0


def where(testid: str) -> str:
    return "\"testid\" = '" + testid.replace("'", "\\'") + "'"


def landed_k6(db: Influx, testid: str) -> Counts:
    w = where(testid)
    return (
        int(db.number(f'SELECT count("value") FROM "http_reqs" WHERE {w}')),
        int(db.number(f'SELECT sum("value") FROM "http_req_failed" WHERE {w}')),
        db.number(f'SELECT percentile("value", 95) FROM "http_req_duration" WHERE {w}'),
    )


def landed_k6_agg(db: Influx, testid: str) -> Counts:
    w = where(testid)
    return (
        int(db.number(f'SELECT sum("count") FROM "http_reqs_agg" WHERE {w}')),
        int(db.number(f'SELECT sum("passes") FROM "http_req_failed_agg" WHERE {w}')),
        db.number(f'SELECT max("p95") FROM "http_req_duration_agg" WHERE {w}'),
    )


def landed_jmeter(db: Influx, testid: str) -> Counts:
    w = where(testid) + " AND \"transaction\" = 'all'"
    return (
        int(db.number(f'SELECT sum("count") FROM "jmeter" WHERE {w}')),
        int(db.number(f'SELECT sum("countError") FROM "jmeter" WHERE {w}')),
        db.number(f'SELECT max("pct95.0") FROM "jmeter" WHERE {w}'),
    )


def landed_steps(db: Influx, testid: str) -> Counts:
    w = where(testid)
    return (
        int(db.number(f'SELECT count("duration") FROM "workflow_step" WHERE {w}')),
        int(db.number(f"SELECT count(\"duration\") FROM \"workflow_step\" WHERE {w} AND \"status\" = 'failure'")),
        1000 * db.number(f'SELECT percentile("duration", 95) FROM "workflow_step" WHERE {w}'),
    )


def from_summary(path: str) -> Counts:
    metrics = json.load(open(path))["metrics"]
    failed = metrics.get("http_req_failed", {})
    return (
        int(metrics["http_reqs"]["count"]),
        int(failed.get("passes", 0)),
        metrics["http_req_duration"].get("p(95)"),
    )


SUMMARY_LINE = re.compile(r"::(k6|jmeter|workflow)::(\S+): requests=(\d+) errors=(\d+) p95=([\d.]+ms|-)")
LANDED = {"k6": landed_k6, "jmeter": landed_jmeter, "workflow": landed_steps}
UNIT = {"k6": "k6 requests", "jmeter": "JMeter samples", "workflow": "workflow steps"}


def rows_for(db: Influx, row: str) -> List[Tuple[str, Counts, Counts]]:
    kind, testid, source = row.split(":", 2)
    if kind == "steps":
        return [(f"workflow steps, testid {testid}", (int(source), -1, None), landed_steps(db, testid))]
    if kind == "k6":
        return [(f"k6 requests, testid {testid}", from_summary(source), landed_k6(db, testid))]
    if kind == "k6agg":
        return [(f"k6 aggregated, testid {testid}", from_summary(source), landed_k6_agg(db, testid))]
    if kind == "unified":
        out = []
        for m in SUMMARY_LINE.finditer(open(source).read()):
            k, name = m.group(1), m.group(2)
            p95 = None if m.group(5) == "-" else float(m.group(5)[:-2])
            ran = (int(m.group(3)), int(m.group(4)), p95)
            out.append((f"{UNIT[k]} ({name}), testid {testid}", ran, LANDED[k](db, testid)))
        return out
    raise SystemExit(f"unknown row kind {kind!r}")


def ms(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.1f}"


def main(argv: List[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    db = Influx(argv[0], argv[1])
    rows = [r for spec in argv[2:] for r in rows_for(db, spec)]
    head = ("runner", "ran", "landed", "errors ran/landed", "p95 ms ran/landed", "")
    table = [head]
    differ = 0
    for label, ran, landed in rows:
        same = ran[0] == landed[0] and ran[1] in (-1, landed[1])  # -1: not counted by the runner
        differ += not same
        table.append(
            (
                label,
                str(ran[0]),
                str(landed[0]),
                f"{'-' if ran[1] < 0 else ran[1]}/{landed[1]}",
                f"{ms(ran[2])}/{ms(landed[2])}",
                "= same" if same else "DIFFERS",
            )
        )
    width = [max(len(r[i]) for r in table) for i in range(len(head))]
    for r in table:
        print("  " + "  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, width))))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
