#!/usr/bin/env python3
"""Renders perfsink's Grafana dashboards to PNG from InfluxDB data, without Grafana.

    python3 scripts/render-dashboards.py --influxdb-url http://127.0.0.1:8086 --testid demo \\
        [--db k6] [--dashboards docker/grafana/dashboards] [--out docs/img] [--uid perfsink-k6 ...]

For every ``docker/grafana/dashboards/*.json``: the panel queries, with ``$testid``, ``$timeFilter``
and ``$__interval`` substituted by ``docker/grafana/queries.py`` (the module the dashboard query
tests use, so the pictures show what those tests check), run against the InfluxDB, and each panel
drawn where its ``gridPos`` puts it (scripts/dashboard_drawing.py). One PNG per dashboard,
``<out>/<uid>.png``. The time range is the testid's own: from the first to the last point of the
dashboard's measurements with that testid.

Exit status: 0 when every panel had data; 3 when some had none or a query failed (each listed on
stderr; ``--allow-empty`` still lists them but exits 0); 1 on other errors.
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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator, Optional

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "scripts" / "render-requirements.txt"
QUERIES_MODULE = ROOT / "docker" / "grafana" / "queries.py"
DISCLAIMER = "rendered from InfluxDB data by scripts/render-dashboards.py, not a Grafana screenshot"
MAX_PNG_BYTES = 300 * 1024
EXIT_EMPTY_PANELS = 3

# Grafana's grid: 24 columns; at a 1600-px wide dashboard a column is ~67 px and a row 30 px plus
# an 8-px gap, so one grid row is ~0.57 of a column.
FIG_WIDTH_IN = 16.0
COL_IN = FIG_WIDTH_IN / 24
ROW_IN = COL_IN * 0.57
HEADER_IN = 0.95
DPI = 100
PANEL_PAD_IN = 0.05
TITLE_IN = 0.28


def ensure_matplotlib() -> None:
    """Imports matplotlib, installing the pinned version (scripts/render-requirements.txt) once if it
    is missing, and saying so."""
    try:
        import matplotlib  # noqa: F401

        return
    except ImportError:
        pass
    print(f"render-dashboards: matplotlib is not installed; installing {REQUIREMENTS.name} with pip", file=sys.stderr)
    base = [sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)]
    if subprocess.run(base).returncode != 0 and subprocess.run(base + ["--break-system-packages"]).returncode != 0:
        sys.exit(f"render-dashboards: could not install matplotlib: pip install -r {REQUIREMENTS}")


def load_queries_module(path: Path) -> ModuleType:
    """docker/grafana/queries.py, loaded by path (docker/ is no Python package)."""
    spec = importlib.util.spec_from_file_location("perfsink_dashboard_queries", path)
    if spec is None or spec.loader is None:
        sys.exit(f"render-dashboards: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the data ----------------------------------------------------------------------------------


def influx_query(url: str, db: str, q: str) -> dict[str, Any]:
    body = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ms"}).encode()
    with urllib.request.urlopen(f"{url.rstrip('/')}/query", data=body, timeout=60) as r:
        return json.loads(r.read())


def as_series(series: list[dict[str, Any]], alias: Optional[str]) -> list["Series"]:
    """queries.run's series (InfluxDB's JSON: name, tags, columns, values) as drawing Series."""
    from dashboard_drawing import Series

    return [
        Series(name=s.get("name", ""), tags=dict(s.get("tags") or {}), columns=list(s["columns"]), values=[list(v) for v in s["values"]], alias=alias or None)
        for s in series
    ]


class NoData(RuntimeError):
    """The dashboard's measurements hold no point with the testid."""


FROM_RE = re.compile(r'\bFROM\s+((?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w-]*)(?:\.(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w-]*))*|/(?:[^/\\]|\\.)+/)', re.I)


def measurements_of(queries: list[str]) -> list[str]:
    """The measurements (as written, quoted or regex) that the queries read."""
    found: list[str] = []
    for q in queries:
        for m in FROM_RE.findall(q):
            if m not in found:
                found.append(m)
    return found


def testid_span(url: str, db: str, measurements: list[str], testid: str) -> Optional[tuple[datetime, datetime]]:
    """First and last point with ``testid`` in those measurements, or None when there is none."""
    if not measurements:
        return None
    where = f"\"testid\" = '{testid.replace(chr(39), chr(92) + chr(39))}'"
    ends = []
    for order in ("ASC", "DESC"):
        r = influx_query(url, db, f"SELECT * FROM {', '.join(measurements)} WHERE {where} ORDER BY time {order} LIMIT 1")
        times = [s["values"][0][0] for res in r.get("results", []) for s in res.get("series") or []]
        if not times:
            return None
        ends.append(min(times) if order == "ASC" else max(times))
    start, end = (datetime.fromtimestamp(t / 1000, tz=timezone.utc) for t in ends)
    return start, end


NICE_INTERVALS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]


def interval_for(span: timedelta) -> int:
    """``$__interval`` in seconds: about 120 buckets over the range, at least 1 s. (Grafana would
    divide by the panel's pixel width and go down to milliseconds on a one-minute test; at 1 s and
    up the lines read as rates, as on a real dashboard over a longer run.)"""
    want = span.total_seconds() / 120
    return next((s for s in NICE_INTERVALS_S if s >= want), NICE_INTERVALS_S[-1])


@dataclass
class Range:
    """The time range and ``$__interval`` the queries are substituted with (epoch ms)."""

    start: datetime
    end: datetime

    @property
    def from_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def to_ms(self) -> int:
        return int(self.end.timestamp() * 1000)

    @property
    def interval(self) -> str:
        return f"{interval_for(self.end - self.start)}s"

    def args(self) -> dict[str, Any]:
        """Keyword arguments of queries.panel_targets / variable_queries."""
        return {"interval": self.interval, "time_from": self.from_ms, "time_to": self.to_ms}


def resolve_variables(queries: ModuleType, dashboard: dict[str, Any], testid: str, url: str, db: str, rng: Range) -> dict[str, Any]:
    """The dashboard's template variables as Grafana would set them for this testid: ``testid``
    given, every other query variable at "All" (all its values) or, if single-valued, its first
    value; constants and custom variables at their value."""
    values: dict[str, Any] = {}
    for v in (dashboard.get("templating") or {}).get("list") or []:
        name, kind = v["name"], v.get("type")
        if name == "testid":
            values[name] = testid
        elif kind == "query":
            text = dict(queries.variable_queries(dashboard, values, **rng.args()))[name]
            found = [r["value"] for r in queries.rows(queries.run(url, db, text)) if "value" in r]
            values[name] = found if v.get("multi") or v.get("includeAll") else found[:1] or [""]
        elif kind == "constant":
            values[name] = str(v.get("query", ""))
        elif kind == "custom":
            current = (v.get("current") or {}).get("value")
            values[name] = current if current not in (None, "$__all") else [x.strip() for x in str(v.get("query", "")).split(",")]
    return values


# --- dashboards --------------------------------------------------------------------------------


def leaf_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel in drawing order, a row's own panels (collapsed rows keep them inside) after it."""
    for p in panels:
        yield p
        if p.get("type") == "row":
            yield from leaf_panels(p.get("panels") or [])


@dataclass
class Rendered:
    path: Path
    panels: int
    empty: list[tuple[str, str]]  # (panel title, why)
    size: int


def fetch_panel(queries: ModuleType, dashboard: dict[str, Any], panel: dict[str, Any], vars_: dict[str, str], url: str, db: str) -> "PanelData":
    """Runs the panel's queries (substituted by queries.panel_queries) and collects their series."""
    from dashboard_drawing import PanelData

    data = PanelData(panel=panel)
    only = {**dashboard, "panels": [{k: v for k, v in panel.items() if k != "panels"}]}
    texts = [q for _title, _type, q in queries.panel_queries(only, vars_)]
    targets = [t for t in panel.get("targets") or [] if not t.get("hide")]
    aliases = [t.get("alias") or None for t in targets] if len(targets) == len(texts) else [None] * len(texts)
    for text, alias in zip(texts, aliases):
        try:
            for s in as_series(queries.run(url, db, text)):
                s.alias = alias
                data.series.append(s)
        except Exception as e:  # a failing query is reported as the panel's, the rest still drawn
            data.errors.append(f"{text}: {e}")
    return data


def render_dashboard(queries: ModuleType, dashboard: dict[str, Any], url: str, db: str, testid: str, out_dir: Path) -> Rendered:
    import dashboard_drawing as draw
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch

    uid, title = dashboard["uid"], dashboard.get("title", dashboard["uid"])
    panels = list(leaf_panels(dashboard.get("panels") or []))
    epoch, far = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(2200, 1, 1, tzinfo=timezone.utc)
    everything = [q for _t, _ty, q in queries.panel_queries(dashboard, variables(testid, epoch, far))]
    span = testid_span(url, db, measurements_of(everything), testid)
    if span is None:
        raise QueryError(f"{uid}: no point with testid={testid} in {', '.join(measurements_of(everything)) or 'its measurements'} (database {db})")
    pad = max(timedelta(seconds=2), (span[1] - span[0]) * 0.02)
    start, end = span[0] - pad, span[1] + pad
    vars_ = variables(testid, start, end)

    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=1)
    height = HEADER_IN + rows * ROW_IN
    fig = plt.figure(figsize=(FIG_WIDTH_IN, height), dpi=DPI, facecolor="white")
    fy = lambda inches: 1 - inches / height  # noqa: E731  (figure y of a distance from the top)
    fig.text(0.01, fy(0.22), title, fontsize=17, fontweight="bold", va="top", color="#1F1F1F")
    fig.text(0.01, fy(0.58), f"testid = {testid}   ·   {start:%Y-%m-%d %H:%M:%S} to {end:%H:%M:%S} UTC   ·   $__interval = {vars_['__interval']}   ·   database {db}", fontsize=9, va="top", color="#444444")
    fig.text(0.99, fy(0.22), DISCLAIMER, fontsize=8.5, va="top", ha="right", style="italic", color="#B03A2E")

    empty: list[tuple[str, str]] = []
    drawn = 0
    for p in panels:
        g = p["gridPos"]
        x0, w = g["x"] * COL_IN + PANEL_PAD_IN, g["w"] * COL_IN - 2 * PANEL_PAD_IN
        top, h = HEADER_IN + g["y"] * ROW_IN + PANEL_PAD_IN, g["h"] * ROW_IN - 2 * PANEL_PAD_IN
        name = p.get("title") or f"panel {p.get('id')}"
        if p.get("type") == "row":
            fig.text(x0 / FIG_WIDTH_IN, fy(top + 0.05), name, fontsize=11, fontweight="bold", va="top", color="#333333")
            continue
        drawn += 1
        fig.add_artist(FancyBboxPatch((x0 / FIG_WIDTH_IN, fy(top + h)), w / FIG_WIDTH_IN, h / height, boxstyle="round,pad=0,rounding_size=0.003", transform=fig.transFigure, facecolor="#FAFAFB", edgecolor="#D8D9DC", linewidth=0.8))
        fig.text((x0 + 0.1) / FIG_WIDTH_IN, fy(top + 0.07), name, fontsize=9, fontweight="bold", va="top", color="#222222")
        kind = p.get("type", "")
        timeseries = kind in draw.TIME_AXES
        legend_h = 3 * draw.INCH_PER_LINE + 0.05 if timeseries else 0.0
        left, bottom = (0.62, 0.3 + legend_h) if timeseries else (0.1, 0.08)
        if kind in ("barchart", "bargauge"):
            left, bottom = (1.6, 0.3) if kind == "bargauge" else (0.62, 0.45)
        inner_w, inner_h = max(0.3, w - left - 0.12), max(0.2, h - TITLE_IN - bottom)
        ax = fig.add_axes([(x0 + left) / FIG_WIDTH_IN, fy(top + TITLE_IN + inner_h), inner_w / FIG_WIDTH_IN, inner_h / height])
        ax.set_facecolor("#FAFAFB")
        if kind == "text":
            draw.draw_text(ax, p)
            continue
        data = fetch_panel(queries, dashboard, p, vars_, url, db)
        if data.errors:
            empty.append((name, "query failed: " + "; ".join(data.errors)))
            draw._message(ax, "query failed:\n" + data.errors[0][-160:], colour="#C4162A")
        elif not data.has_data():
            empty.append((name, "no data"))
            draw._message(ax, "No data")
        elif timeseries:
            draw.draw_timeseries(fig, ax, data, (start, end), ((x0 + 0.1) / FIG_WIDTH_IN, fy(top + h - legend_h), w - 0.2))
        elif kind in ("stat", "gauge"):
            draw.draw_stat(ax, data)
        elif kind == "table":
            draw.draw_table(ax, data, inner_h)
        elif kind in ("barchart", "bargauge"):
            draw.draw_bars(ax, data, horizontal=kind == "bargauge")
        elif kind == "piechart":
            draw.draw_pie(ax, data)
        else:
            draw._message(ax, f"panel type {kind!r} is not drawn by render-dashboards.py")

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{uid}.png"
    size = save_png(fig, path)
    draw.close(fig)
    return Rendered(path=path, panels=drawn, empty=empty, size=size)


def save_png(fig: Any, path: Path) -> int:
    """Saves as a 256-colour PNG (a third of the RGBA size; the charts have few colours)."""
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white")
    buf.seek(0)
    Image.open(buf).convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)
    return path.stat().st_size


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--influxdb-url", default=os.environ.get("INFLUXDB_URL"), help="InfluxDB 1.x base URL (default $INFLUXDB_URL)")
    ap.add_argument("--db", default=os.environ.get("INFLUXDB_DB", "k6"), help="database (default $INFLUXDB_DB, else k6)")
    ap.add_argument("--testid", required=True, help="the run's testid tag (the dashboards' $testid)")
    ap.add_argument("--dashboards", type=Path, default=ROOT / "docker" / "grafana" / "dashboards", help="directory of dashboard JSON files")
    ap.add_argument("--queries", type=Path, default=QUERIES_MODULE, help="the substitution module (docker/grafana/queries.py)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img", help="where <uid>.png go (default docs/img)")
    ap.add_argument("--uid", action="append", help="render only this dashboard (repeatable)")
    ap.add_argument("--allow-empty", action="store_true", help="exit 0 even when panels had no data (they are still listed)")
    args = ap.parse_args(argv)
    if not args.influxdb_url:
        ap.error("--influxdb-url (or INFLUXDB_URL) is required")
    url = args.influxdb_url.rstrip("/")
    ensure_matplotlib()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    queries = load_queries_module(args.queries)

    files = sorted(args.dashboards.glob("*.json"))
    dashboards = [(f, json.loads(f.read_text())) for f in files]
    if args.uid:
        dashboards = [(f, d) for f, d in dashboards if d.get("uid") in args.uid]
        missing = set(args.uid) - {d.get("uid") for _, d in dashboards}
        if missing:
            sys.exit(f"render-dashboards: no dashboard with uid {', '.join(sorted(missing))} in {args.dashboards}")
    if not dashboards:
        sys.exit(f"render-dashboards: no dashboards in {args.dashboards}")

    problems: list[str] = []
    for f, d in dashboards:
        try:
            r = render_dashboard(queries, d, url, args.db, args.testid, args.out)
        except QueryError as e:
            problems.append(str(e))
            print(f"render-dashboards: {e}", file=sys.stderr)
            continue
        rel = os.path.relpath(r.path)
        print(f"{rel}: {d.get('title')}, {r.panels} panels, {r.panels - len(r.empty)} with data, {r.size // 1024} KB")
        if r.size > MAX_PNG_BYTES:
            print(f"render-dashboards: warning: {rel} is {r.size // 1024} KB (over {MAX_PNG_BYTES // 1024} KB)", file=sys.stderr)
        for panel, why in r.empty:
            problems.append(f"{d['uid']}: panel {panel!r}: {why}")
            print(f"render-dashboards: {d['uid']}: panel {panel!r}: {why}", file=sys.stderr)
    if problems:
        print(f"render-dashboards: {len(problems)} panel(s) or dashboard(s) without data", file=sys.stderr)
        return 0 if args.allow_empty else EXIT_EMPTY_PANELS
    return 0


if __name__ == "__main__":
    sys.exit(main())
