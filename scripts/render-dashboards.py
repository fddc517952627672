#!/usr/bin/env python3
"""Renders perfsink's Grafana dashboards to PNG from InfluxDB data, without Grafana.

    python3 scripts/render-dashboards.py --influxdb-url http://127.0.0.1:8086 --testid demo-... \\
        [--db k6] [--out docs/img] [--uid perfsink-k6 ...] [--report report.json]

For every ``docker/grafana/dashboards/*.json``: the panel queries, with ``$testid``, the other
variables, ``$timeFilter`` and ``$__interval`` filled in by ``docker/grafana/queries.py`` (the module
the dashboard query tests use, so the pictures show what those tests check), run against the
InfluxDB, and each panel drawn where its ``gridPos`` puts it (scripts/dashboard_drawing.py). One PNG
per dashboard, ``<out>/<uid>.png``.

Which run: ``--testid ID`` names a run, or the prefix of a family of runs, as ``make demo`` writes
them (``demo-<time>`` for the unified example, ``demo-<time>-k6agg`` for aggregated k6, ...). Each
dashboard shows the one among ``ID`` and ``ID-*`` that fills most of its panels (``ID`` itself on a
tie). Without ``--testid``: the latest ``demo-<yyyymmdd>-<hhmmss>`` run in the database. The time
range is that testid's own: its first to its last point in the dashboard's measurements.

Exit status: 0 when every panel had data; 3 when some had none or a query failed (each listed on
stderr, the PNG still written; ``--allow-empty`` exits 0); 1 on other errors.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "scripts" / "render-requirements.txt"
QUERIES_MODULE = ROOT / "docker" / "grafana" / "queries.py"
LOCAL_INFLUXDB_URL_FILE = ROOT / ".perfsink" / "influxdb.url"  # written by `make up`
DEMO_TESTID = re.compile(r"^demo-\d{8}-\d{6}$")
MAX_PNG_BYTES = 300 * 1024
EXIT_EMPTY_PANELS = 3


class RenderError(RuntimeError):
    """Nothing to draw (no such testid, no dashboards, ...): the message says why."""


def ensure_matplotlib() -> None:
    """Installs the pinned matplotlib (scripts/render-requirements.txt) with pip if it is missing
    (scripts/setup.sh does the same), and says so."""
    if importlib.util.find_spec("matplotlib") is not None:
        return
    print(f"render-dashboards: matplotlib is missing; pip install -r {REQUIREMENTS.relative_to(ROOT)}", file=sys.stderr)
    base = [sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]
    if subprocess.run(base).returncode != 0 and subprocess.run(base + ["--break-system-packages"]).returncode != 0:
        raise RenderError(f"could not install matplotlib: pip install -r {REQUIREMENTS}")


def load_queries_module(path: Path) -> ModuleType:
    """docker/grafana/queries.py, loaded by path (docker/ is no Python package)."""
    spec = importlib.util.spec_from_file_location("perfsink_dashboard_queries", path)
    if spec is None or spec.loader is None:
        raise RenderError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- where the data is -------------------------------------------------------------------------


def influxdb_destination(url: Optional[str], db: Optional[str]) -> tuple[str, str]:
    """(base URL, database). ``url`` defaults to ``$INFLUXDB_URL``, else the local InfluxDB of
    ``make up``. A URL with a database path (k6 style ``http://host:8086/k6``) is resolved by the
    engine (the perfsink package), which owns that rule; a base URL takes ``db`` (default
    ``$INFLUXDB_DB``, else ``k6``)."""
    url = url or os.environ.get("INFLUXDB_URL")
    if not url and LOCAL_INFLUXDB_URL_FILE.is_file():
        url = LOCAL_INFLUXDB_URL_FILE.read_text().strip()
    if not url:
        raise RenderError("no InfluxDB: give --influxdb-url, set INFLUXDB_URL, or start one with make up")
    db = db or os.environ.get("INFLUXDB_DB")
    if urllib.parse.urlsplit(url).path.strip("/") == "":
        return url.rstrip("/"), db or "k6"
    try:
        import perfsink  # the engine's own URL rule, as scripts/demo.sh asks it
    except ImportError:
        raise RenderError(f"{url} names a database in its path: give the base URL and --db (or install ./python)") from None
    pub = perfsink.InfluxDBPublisher(url=url, db=db, self_metrics_interval_ms=0)
    dest, database = pub.destination, pub.database
    pub.close()
    if not database:
        raise RenderError(f"{url}: the pictures need an InfluxDB 1.x database, not a v2 bucket")
    return dest.rsplit(", db ", 1)[0].rstrip("/"), database


def influx_get(queries: ModuleType, url: str, db: str, q: str) -> list[dict[str, Any]]:
    return queries.rows(queries.run(url, db, q))


def latest_demo_testid(queries: ModuleType, url: str, db: str) -> str:
    """The newest ``demo-<yyyymmdd>-<hhmmss>`` testid in the database (``make demo``'s runs)."""
    values = {r["value"] for r in influx_get(queries, url, db, 'SHOW TAG VALUES WITH KEY = "testid"')}
    runs = sorted(v for v in values if DEMO_TESTID.match(v))
    if not runs:
        raise RenderError(f"no make-demo run (testid demo-<yyyymmdd>-<hhmmss>) in {url}, database {db}: give --testid")
    return runs[-1]


FROM_RE = re.compile(r'\bFROM\s+((?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w.-]*)(?:\s*,\s*(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w.-]*))*)', re.I)


def measurements_of(query_texts: list[str]) -> list[str]:
    """The measurements the queries read, unquoted, in order of first use."""
    found: list[str] = []
    for q in query_texts:
        for group in FROM_RE.findall(q):
            for name in re.findall(r'"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.-]*)', group):
                m = name[0] or name[1]
                if m and m not in found:
                    found.append(m)
    return found


def quoted(names: list[str]) -> str:
    return ", ".join('"' + n.replace('"', '\\"') + '"' for n in names)


def regex_literal(text: str) -> str:
    return re.sub(r"([\\/^$.|?*+()\[\]{}])", r"\\\1", text)


def candidate_testids(queries: ModuleType, url: str, db: str, measurements: list[str], testid: str) -> list[str]:
    """``testid`` and the ``testid-*`` runs with points in ``measurements``; exact match first."""
    q = f'SHOW TAG VALUES FROM {quoted(measurements)} WITH KEY = "testid" WHERE "testid" =~ /^{regex_literal(testid)}(-.*)?$/'
    found = {r["value"] for r in influx_get(queries, url, db, q)}
    return sorted(found, key=lambda v: (v != testid, v))


def testid_span(queries: ModuleType, url: str, db: str, measurements: list[str], testid: str) -> Optional[tuple[datetime, datetime]]:
    """First and last point with ``testid`` in ``measurements``, or None when there is none."""
    where = f"\"testid\" = '{testid.replace(chr(92), chr(92) * 2).replace(chr(39), chr(92) + chr(39))}'"
    ends = []
    for order, pick in (("ASC", min), ("DESC", max)):
        series = queries.run(url, db, f"SELECT * FROM {quoted(measurements)} WHERE {where} ORDER BY time {order} LIMIT 1")
        times = [s["values"][0][0] for s in series if s.get("values")]
        if not times:
            return None
        ends.append(pick(times))
    start, end = (datetime.fromtimestamp(t / 1000, tz=timezone.utc) for t in ends)
    return start, end


NICE_INTERVALS_MS = [100, 200, 500, 1000, 2000, 5000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000]


def interval_for(span: timedelta) -> str:
    """``$__interval``: a round step giving about 40 buckets over the range, 100 ms at least (Grafana
    divides by the panel's width in pixels instead; on a run of a few seconds that is a few ms, too
    fine to read a rate from)."""
    want_ms = span.total_seconds() * 1000 / 40
    ms = next((s for s in NICE_INTERVALS_MS if s >= want_ms), NICE_INTERVALS_MS[-1])
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


@dataclass
class Range:
    """The time range and ``$__interval`` the queries are filled in with."""

    start: datetime
    end: datetime

    @staticmethod
    def around(span: tuple[datetime, datetime]) -> "Range":
        pad = max(timedelta(seconds=0.5), (span[1] - span[0]) * 0.03)
        return Range(span[0] - pad, span[1] + pad)

    @property
    def interval(self) -> str:
        return interval_for(self.end - self.start)

    def args(self) -> dict[str, Any]:
        """Keyword arguments of queries.panel_targets / variable_queries (epoch ms)."""
        return {
            "interval": self.interval,
            "time_from": int(self.start.timestamp() * 1000),
            "time_to": int(self.end.timestamp() * 1000),
        }


def resolve_variables(queries: ModuleType, dashboard: dict[str, Any], testid: str, url: str, db: str, rng: Range) -> dict[str, Any]:
    """The template variables as a user picking this testid would have them: ``testid`` given,
    every other query variable at "All" (every value its query returns), or its first value when
    it takes one; constants and custom variables at their value."""
    values: dict[str, Any] = {}
    for v in (dashboard.get("templating") or {}).get("list") or []:
        name, kind = v["name"], v.get("type")
        if name == "testid":
            values[name] = testid
        elif kind == "query":
            text = dict(queries.variable_queries(dashboard, values, **rng.args())).get(name)
            found = [r["value"] for r in influx_get(queries, url, db, text)] if text else []
            values[name] = found if (v.get("multi") or v.get("includeAll")) and found else found[:1] or [""]
        elif kind == "constant":
            values[name] = str(v.get("query", ""))
        elif kind == "custom":
            current = (v.get("current") or {}).get("value")
            values[name] = current if current not in (None, "$__all") else [x.strip() for x in str(v.get("query", "")).split(",")]
    return values


# --- the panels' data --------------------------------------------------------------------------


def drawn_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel in drawing order, a row's own panels (collapsed rows keep them inside) after it."""
    for p in panels:
        yield p
        if p.get("type") == "row":
            yield from drawn_panels(p.get("panels") or [])


@dataclass
class PanelResult:
    """One panel: what it read, the rows it got, and why it is empty if it is."""

    title: str
    type: str
    measurements: list[str]
    queries: list[str]
    interval: str
    rows: int = 0
    error: Optional[str] = None
    data: Any = None  # dashboard_drawing.PanelData

    @property
    def has_data(self) -> bool:
        return self.error is None and self.data is not None and self.data.has_data()


def _seconds(interval: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", interval.strip())
    if not m:
        raise RenderError(f"interval {interval!r}: use <n>ms|s|m|h|d")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def fetch_panels(queries: ModuleType, dashboard: dict[str, Any], variables: dict[str, Any], rng: Range, url: str, db: str) -> dict[int, PanelResult]:
    """Runs every panel's queries (filled in by queries.panel_targets), keyed by ``id(panel)``."""
    from dashboard_drawing import PanelData, Series

    out: dict[int, PanelResult] = {}
    for panel in drawn_panels(dashboard.get("panels") or []):
        if panel.get("type") == "row":
            continue
        interval = queries.panel_interval(panel, rng.interval)  # Grafana's rule: the panel's minimum
        res = out[id(panel)] = PanelResult(panel.get("title", ""), panel.get("type", ""), [], [], interval, data=PanelData(panel=panel))
        for t in queries.panel_targets({**dashboard, "panels": [panel]}, variables, **rng.args()):
            res.queries.append(t.query)
            try:
                series = queries.run(url, db, t.query)
            except Exception as e:  # a failing query is the panel's; the rest is still drawn
                res.error = f"{e}"
                continue
            for s in series:
                values = [list(v) for v in s.get("values") or []]
                res.rows += len(values)
                res.data.series.append(Series(s.get("name", ""), dict(s.get("tags") or {}), list(s["columns"]), values, t.alias or None, t.ref_id))
        res.measurements = measurements_of(res.queries)
    return out


@dataclass
class Dashboard:
    """A dashboard with the testid it shows, its time range, variables and panels' data."""

    json: dict[str, Any]
    testid: str
    rng: Range
    variables: dict[str, Any]
    panels: dict[int, PanelResult] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        return str(self.json["uid"])

    def filled(self) -> int:
        return sum(1 for p in self.panels.values() if p.has_data)


def load_dashboard(queries: ModuleType, dashboard: dict[str, Any], url: str, db: str, testid: str) -> Dashboard:
    """The dashboard on whichever of ``testid`` and ``testid-*`` fills most of its panels."""
    uid = dashboard["uid"]
    wide_open = {v["name"]: ".*" for v in (dashboard.get("templating") or {}).get("list") or []}
    texts = [q for _t, _ty, q in queries.panel_queries(dashboard, wide_open)]
    measurements = measurements_of(texts)
    if not measurements:
        raise RenderError(f"{uid}: its queries read no measurement")
    best: Optional[Dashboard] = None
    for candidate in candidate_testids(queries, url, db, measurements, testid):
        span = testid_span(queries, url, db, measurements, candidate)
        if span is None:
            continue
        rng = Range.around(span)
        variables = resolve_variables(queries, dashboard, candidate, url, db, rng)
        d = Dashboard(dashboard, candidate, rng, variables, fetch_panels(queries, dashboard, variables, rng, url, db))
        if best is None or d.filled() > best.filled():
            best = d
    if best is None:
        raise RenderError(f"{uid}: no point with testid {testid} (or {testid}-*) in {', '.join(measurements)} (database {db})")
    return best


# --- the picture -------------------------------------------------------------------------------


def render(d: Dashboard, db: str, out_dir: Path) -> tuple[Path, int]:
    """Draws ``d`` to ``<out_dir>/<uid>.png``; returns the path and its size in bytes."""
    import dashboard_drawing as draw

    own = sorted({p.interval for p in d.panels.values()} - {d.rng.interval}, key=_seconds)
    interval = d.rng.interval + (f" ({', '.join(own)} where a panel sets its minimum)" if own else "")
    fig = draw.dashboard_figure(
        title=d.json.get("title", d.uid),
        subtitle=f"testid {d.testid}   ·   {d.rng.start:%Y-%m-%d %H:%M:%S} – {d.rng.end:%H:%M:%S} UTC   ·   $__interval {interval}   ·   InfluxDB database {db}",
        panels=list(drawn_panels(d.json.get("panels") or [])),
        results={k: (r.data, r.measurements, r.error) for k, r in d.panels.items()},
        time_range=(d.rng.start, d.rng.end),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{d.uid}.png"
    size = save_png(fig, path)
    draw.close(fig)
    return path, size


def save_png(fig: Any, path: Path) -> int:
    """Saves as a 256-colour PNG (a third of the RGB size; the charts have few colours)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)
    return path.stat().st_size


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--influxdb-url", help="InfluxDB 1.x URL (default $INFLUXDB_URL, else .perfsink/influxdb.url of make up)")
    ap.add_argument("--db", help="database (default the URL's path, $INFLUXDB_DB, else k6)")
    ap.add_argument("--testid", help="the run (or prefix of runs) to show (default: the latest make-demo run)")
    ap.add_argument("--dashboards", type=Path, default=ROOT / "docker" / "grafana" / "dashboards", help="directory of dashboard JSON files")
    ap.add_argument("--queries", type=Path, default=QUERIES_MODULE, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where <uid>.png go (default docs/img)")
    ap.add_argument("--uid", action="append", help="render only this dashboard (repeatable)")
    ap.add_argument("--report", type=Path, help="also write what each panel got as JSON to this file")
    ap.add_argument("--allow-empty", action="store_true", help="exit 0 even when panels had no data (they are still listed)")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except RuntimeError as e:  # RenderError, or queries.QueryError: InfluxDB refused a query
        print(f"render-dashboards: {e}", file=sys.stderr)
    except OSError as e:  # InfluxDB not answering (URLError is an OSError)
        print(f"render-dashboards: InfluxDB at {args.influxdb_url or os.environ.get('INFLUXDB_URL') or LOCAL_INFLUXDB_URL_FILE}: {e}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    url, db = influxdb_destination(args.influxdb_url, args.db)
    ensure_matplotlib()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    queries = load_queries_module(args.queries)
    testid = args.testid or latest_demo_testid(queries, url, db)

    dashboards = [json.loads(f.read_text()) for f in sorted(args.dashboards.glob("*.json"))]
    if args.uid:
        missing = set(args.uid) - {d.get("uid") for d in dashboards}
        if missing:
            raise RenderError(f"no dashboard with uid {', '.join(sorted(missing))} in {args.dashboards}")
        dashboards = [d for d in dashboards if d.get("uid") in args.uid]
    if not dashboards:
        raise RenderError(f"no dashboards in {args.dashboards}")

    print(f"render-dashboards: {url}, database {db}, testid {testid}")
    problems: list[str] = []
    report: list[dict[str, Any]] = []
    for dash in dashboards:
        try:
            d = load_dashboard(queries, dash, url, db, testid)
        except RenderError as e:
            problems.append(str(e))
            print(f"render-dashboards: {e}", file=sys.stderr)
            report.append({"uid": dash.get("uid"), "title": dash.get("title"), "error": str(e)})
            continue
        path, size = render(d, db, args.out)
        rel = os.path.relpath(path)
        print(f"{rel}: {dash.get('title')}: testid {d.testid}, {len(d.panels)} panels, {d.filled()} with data, {size // 1024} KB")
        if size > MAX_PNG_BYTES:
            print(f"render-dashboards: warning: {rel} is {size // 1024} KB (over {MAX_PNG_BYTES // 1024} KB)", file=sys.stderr)
        for p in d.panels.values():
            if not p.has_data:
                why = f"query failed: {p.error}" if p.error else "no data"
                problems.append(f"{d.uid}: panel {p.title!r}: {why}")
                print(f"render-dashboards: {d.uid}: panel {p.title!r}: {why}", file=sys.stderr)
        report.append(
            {
                "uid": d.uid,
                "title": dash.get("title"),
                "png": str(path),
                "bytes": size,
                "testid": d.testid,
                "from": d.rng.start.isoformat(),
                "to": d.rng.end.isoformat(),
                "interval": d.rng.interval,
                "panels": [
                    {"title": p.title, "type": p.type, "measurements": p.measurements, "interval": p.interval, "rows": p.rows, "has_data": p.has_data, "error": p.error}
                    for p in d.panels.values()
                ],
            }
        )
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
    if problems:
        print(f"render-dashboards: {len(problems)} panel(s) or dashboard(s) without data", file=sys.stderr)
        return 0 if args.allow_empty else EXIT_EMPTY_PANELS
    return 0


if __name__ == "__main__":
    sys.exit(main())
