"""Draws one Grafana panel's query results with matplotlib (scripts/render-dashboards.py's drawing half).

Grafana cannot run where perfsink is built, so the README's dashboard pictures are drawn here from the
same queries: each panel type gets the closest plain matplotlib picture — ``timeseries`` as lines (one
per series, legend with the tags), ``stat``/``gauge`` as big numbers, ``table`` as a table,
``barchart``/``bargauge`` as bars, ``piechart`` as a pie, ``text`` as its text. Units
(``fieldConfig.defaults.unit``, ``byName`` overrides), thresholds colours, legend aliases (``$tag_x``,
``$col``, ``$m``) and stat reductions (``reduceOptions.calcs``) follow the panel JSON.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Optional, Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

# Grafana's classic series palette, so the pictures look like the dashboards they stand for.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0", "#508642", "#CCA300"]
NAMED_COLOURS = {
    "green": "#56A64B",
    "dark-green": "#37872D",
    "red": "#E02F44",
    "dark-red": "#C4162A",
    "orange": "#FF9830",
    "yellow": "#F2CC0C",
    "blue": "#3274D9",
    "purple": "#A352CC",
    "text": "#24292E",
    "transparent": "#24292E",
}
DEFAULT_VALUE_COLOUR = "#1F60C4"
INCH_PER_LINE = 0.19  # one line of 8.5-pt text (legends, table rows)


@dataclass
class Series:
    """One InfluxQL result series: its measurement, tags, columns and rows (time first when present)."""

    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]
    alias: Optional[str] = None  # the target's legend alias, if any
    ref_id: str = ""  # the target (query) it came from

    def numeric_columns(self) -> list[str]:
        """Columns other than ``time`` holding at least one number."""
        out = []
        for i, c in enumerate(self.columns):
            if c != "time" and any(_is_number(row[i]) for row in self.values):
                out.append(c)
        return out

    def column(self, name: str) -> list[Any]:
        i = self.columns.index(name)
        return [row[i] for row in self.values]

    def label(self, col: str, many_columns: bool) -> str:
        """Grafana's legend text: the alias with ``$tag_x``/``$col``/``$m`` filled, else
        ``measurement.column {tag: value}`` (the column left out when the series has only one)."""
        if self.alias:
            text = self.alias
            for k, v in self.tags.items():
                text = text.replace(f"[[tag_{k}]]", v).replace(f"$tag_{k}", v)
            text = text.replace("[[col]]", col).replace("$col", col)
            return text.replace("$measurement", self.name).replace("[[m]]", self.name).replace("$m", self.name)
        tags = ", ".join(f"{k}: {v}" for k, v in sorted(self.tags.items()))
        base = f"{self.name}.{col}" if many_columns or not tags else ""
        return f"{base} {{{tags}}}".strip() if tags else base


@dataclass
class PanelData:
    """A panel's JSON, the series its queries returned and the errors they raised."""

    panel: dict[str, Any]
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def has_data(self) -> bool:
        return any(any(_is_number(v) or isinstance(v, str) for row in s.values for v in row[1:] or row) for s in self.series)


# --- values and units -------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def to_datetime(v: Any) -> datetime:
    """An InfluxDB timestamp (epoch s/ms/µs/ns by magnitude, or RFC 3339) as an aware UTC datetime."""
    if isinstance(v, str):
        base, _, frac = v.rstrip("Z").partition(".")
        at = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
        return at + timedelta(seconds=float("0." + frac) if frac else 0.0)
    x = float(v)
    # Seconds since 1970 stay below 1e11 until the year 5138: past that, the value is ms, µs or ns.
    scale = 1e9 if abs(x) > 1e17 else 1e6 if abs(x) > 1e14 else 1e3 if abs(x) > 1e11 else 1.0
    return datetime.fromtimestamp(x / scale, tz=timezone.utc)


def _si(v: float, suffixes: Sequence[str], step: float) -> tuple[float, str]:
    i = 0
    while abs(v) >= step and i < len(suffixes) - 1:
        v /= step
        i += 1
    return v, suffixes[i]


def _num(v: float) -> str:
    v = round(v, 9)  # 0.6 * 100 is 60.00000000000001
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v)}"
    a = abs(v)
    return f"{v:.3g}" if a < 1 else f"{v:.1f}" if a < 1000 else f"{v:.0f}"


def format_value(v: Any, unit: Optional[str]) -> str:
    """``v`` as Grafana shows it in ``unit`` (the units perfsink's dashboards use; others plain)."""
    if not _is_number(v):
        return "-" if v is None else str(v)
    v = float(v)
    unit = unit or "short"
    if unit in ("ms", "s", "µs", "us", "ns"):
        seconds = v * {"ms": 1e-3, "s": 1.0, "µs": 1e-6, "us": 1e-6, "ns": 1e-9}[unit]
        a = abs(seconds)
        if a == 0:
            return "0 " + unit
        if a < 1e-3:
            return f"{_num(seconds * 1e6)} µs"
        if a < 1:
            return f"{_num(seconds * 1e3)} ms"
        if a < 60:
            return f"{seconds:.2f} s"
        return f"{seconds / 60:.1f} min"
    if unit == "percent":
        return f"{_num(v)}%"
    if unit == "percentunit":
        return f"{_num(v * 100)}%"
    if unit in ("Bps", "binBps"):  # bytes per second, SI (Grafana's "bytes/sec(SI)") or IEC
        x, s = _si(v, ["B/s", "kB/s", "MB/s", "GB/s"] if unit == "Bps" else ["B/s", "KiB/s", "MiB/s", "GiB/s"], 1000 if unit == "Bps" else 1024)
        return f"{_num(x)} {s}"
    if unit in ("bytes", "decbytes"):
        x, s = _si(v, ["B", "KiB", "MiB", "GiB", "TiB"] if unit == "bytes" else ["B", "kB", "MB", "GB", "TB"], 1024 if unit == "bytes" else 1000)
        return f"{_num(x)} {s}"
    x, s = _si(v, ["", "K", "M", "G", "T"], 1000)
    text = _num(x) + s
    suffix = {"reqps": " req/s", "rps": " req/s", "ops": " ops/s", "wps": " wr/s", "cps": " c/s", "iops": " io/s"}.get(unit)
    return text + (suffix or "")


def unit_of(panel: dict[str, Any], column: Optional[str] = None) -> Optional[str]:
    """The panel's unit for ``column``: a ``byName`` override, else ``fieldConfig.defaults.unit``."""
    fc = panel.get("fieldConfig") or {}
    if column:
        for o in fc.get("overrides") or []:
            matcher = o.get("matcher") or {}
            if matcher.get("id") == "byName" and matcher.get("options") == column:
                for p in o.get("properties") or []:
                    if p.get("id") == "unit":
                        return p.get("value")
    return (fc.get("defaults") or {}).get("unit")


def threshold_colour(panel: dict[str, Any], v: Any) -> str:
    """The colour of the highest threshold step at or below ``v`` (the panel's own steps only)."""
    steps = (((panel.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {}).get("steps") or []
    colour = DEFAULT_VALUE_COLOUR
    if not steps or not _is_number(v):
        return colour
    for s in steps:
        if s.get("value") is None or float(v) >= float(s["value"]):
            colour = NAMED_COLOURS.get(s.get("color", ""), s.get("color") or colour)
    return colour


REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "lastNotNull": lambda xs: xs[-1],
    "last": lambda xs: xs[-1],
    "firstNotNull": lambda xs: xs[0],
    "first": lambda xs: xs[0],
    "mean": lambda xs: sum(xs) / len(xs),
    "sum": sum,
    "max": max,
    "min": min,
    "count": lambda xs: float(len(xs)),
    "range": lambda xs: max(xs) - min(xs),
    "diff": lambda xs: xs[-1] - xs[0],
}


def reduce_values(panel: dict[str, Any], xs: list[Any]) -> Optional[float]:
    """The panel's ``reduceOptions.calcs[0]`` (default ``lastNotNull``) over the numbers in ``xs``."""
    nums = [float(x) for x in xs if _is_number(x)]
    if not nums:
        return None
    calcs = ((panel.get("options") or {}).get("reduceOptions") or {}).get("calcs") or ["lastNotNull"]
    return REDUCERS.get(calcs[0], REDUCERS["lastNotNull"])(nums)


def reduced_items(data: PanelData) -> list[tuple[str, Optional[float], str]]:
    """One (label, reduced value, column) per series and numeric column: what stat/bargauge/pie show."""
    items = []
    for s in data.series:
        cols = s.numeric_columns()
        for c in cols:
            items.append((s.label(c, len(cols) > 1), reduce_values(data.panel, s.column(c)), c))
    return items


# --- panel types -------------------------------------------------------------------------------


def _message(ax: Axes, text: str, colour: str = "#8E8E8E") -> None:
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, color=colour, wrap=True, transform=ax.transAxes)


def draw_timeseries(fig: Figure, ax: Axes, data: PanelData, time_range: tuple[datetime, datetime], legend_box: tuple[float, float, float]) -> None:
    """Lines, one per series and column; nulls are skipped (sparse series keep their markers)."""
    lines, labels = [], []
    for s in data.series:
        if "time" not in s.columns:
            continue
        cols = s.numeric_columns()
        times = [to_datetime(t) for t in s.column("time")]
        for c in cols:
            pts = [(t, float(v)) for t, v in zip(times, s.column(c)) if _is_number(v)]
            if not pts:
                continue
            colour = PALETTE[len(lines) % len(PALETTE)]
            (line,) = ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=colour,
                linewidth=1.2,
                marker="o" if len(pts) < 40 else None,
                markersize=2.5,
            )
            lines.append(line)
            labels.append(s.label(c, len(cols) > 1) or s.name)
    ax.set_xlim(*time_range)
    ax.xaxis.set_major_locator(time_locator(time_range, max(3, int(ax.bbox.width / 80))))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S", tz=timezone.utc))
    unit = unit_of(data.panel)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: format_value(v, unit)))
    if all(y == 0 for line in lines for y in line.get_ydata()):
        ax.set_ylim(0, 1)  # nothing but zeros (no errors, no retries): 0 at the bottom, as Grafana
    else:
        ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))
    ax.tick_params(labelsize=8.5, colors="#444444")
    ax.grid(True, color="#E4E4E4", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    x0, top, width_in = legend_box
    ncol, nrows = legend_columns(width_in, labels)
    shown = labels[: ncol * nrows]
    if len(shown) < len(labels):
        shown[-1] = f"… {len(labels) - len(shown) + 1} more series"
    if shown:
        fig.legend(
            lines[: len(shown)],
            shown,
            loc="upper left",
            bbox_to_anchor=(x0, top),
            bbox_transform=fig.transFigure,
            ncol=ncol,
            fontsize=8.5,
            frameon=False,
            handlelength=1.2,
            borderaxespad=0,
            columnspacing=1.0,
            labelspacing=0.25,
        )


TICK_STEPS_S = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400]


def time_locator(time_range: tuple[datetime, datetime], max_ticks: int) -> mdates.DateLocator:
    """Ticks at round seconds/minutes/hours, at most ``max_ticks`` (matplotlib's AutoDateLocator
    gives up on ranges of a few seconds)."""
    span = (time_range[1] - time_range[0]).total_seconds()
    step = next((s for s in TICK_STEPS_S if span / s <= max_ticks), TICK_STEPS_S[-1])
    if step < 60:
        return mdates.SecondLocator(bysecond=range(0, 60, step), tz=timezone.utc)
    if step < 3600:
        return mdates.MinuteLocator(byminute=range(0, 60, step // 60), tz=timezone.utc)
    return mdates.HourLocator(byhour=range(0, 24, min(24, step // 3600)), tz=timezone.utc)


def legend_columns(width_in: float, labels: list[str]) -> tuple[int, int]:
    """(columns, rows) of a legend under a ``width_in`` wide plot: as many columns of the longest
    label (8.5-pt text, ~0.072 in a character, plus the line sample) as fit, two rows."""
    longest = max((len(x) for x in labels), default=10)
    return max(1, int(width_in / (longest * 0.072 + 0.45))), 2


def draw_stat(ax: Axes, data: PanelData) -> None:
    """Big numbers: one per series and column, reduced as the panel says, coloured by its thresholds."""
    items = reduced_items(data)
    ax.set_axis_off()
    n = len(items)
    for i, (label, v, col) in enumerate(items[:6]):
        x = (i + 0.5) / min(n, 6)
        size = 26 if n == 1 else max(11, 22 - 3 * min(n, 6))
        ax.text(x, 0.5, format_value(v, unit_of(data.panel, col)), ha="center", va="center", fontsize=size, fontweight="bold", color=threshold_colour(data.panel, v), transform=ax.transAxes)
        if n > 1 and label:
            ax.text(x, 0.08, label, ha="center", va="bottom", fontsize=7.5, color="#555555", transform=ax.transAxes)


def table_rows(data: PanelData) -> tuple[list[str], list[list[Any]]]:
    """The series as one table: tag columns, then the series' columns (``time`` dropped when it is
    the same for every row, as in an aggregate without ``GROUP BY time``)."""
    tag_keys: list[str] = []
    cols: list[str] = []
    for s in data.series:
        tag_keys += [k for k in s.tags if k not in tag_keys]
        cols += [c for c in s.columns if c not in cols]
    rows = []
    for s in data.series:
        for r in s.values:
            d = dict(zip(s.columns, r))
            rows.append([s.tags.get(k, "") for k in tag_keys] + [d.get(c) for c in cols])
    if any(t.get("id") == "merge" for t in data.panel.get("transformations") or []):
        rows = _merge_rows(rows, len(tag_keys), cols)
    if "time" in cols:
        i = len(tag_keys) + cols.index("time")
        if len({r[i] for r in rows}) <= 1:
            cols.remove("time")
            rows = [r[:i] + r[i + 1 :] for r in rows]
        else:
            rows = [r[:i] + [to_datetime(r[i]).strftime("%H:%M:%S")] + r[i + 1 :] for r in rows]
    return tag_keys + cols, rows


def _merge_rows(rows: list[list[Any]], n_tags: int, cols: list[str]) -> list[list[Any]]:
    """Grafana's ``merge`` transformation: rows of the panel's queries with the same tag values
    (and time, when it is the same) become one row, each query filling its own columns."""
    keep_time = "time" in cols
    key_cols = list(range(n_tags)) + ([n_tags + cols.index("time")] if keep_time else [])
    merged: dict[tuple[Any, ...], list[Any]] = {}
    for r in rows:
        key = tuple(r[i] for i in key_cols)
        into = merged.setdefault(key, list(r))
        for i, v in enumerate(r):
            if into[i] is None and v is not None:
                into[i] = v
    return list(merged.values())


def table_cell(v: Any, unit: Optional[str]) -> str:
    """A table cell as Grafana shows it: in the column's unit if it has one, else the plain number
    (all its digits when whole, else three significant digits below 1 and two decimals above)."""
    if isinstance(v, str) or not _is_number(v) or unit:
        return v if isinstance(v, str) else format_value(v, unit)
    if float(v) == int(v):
        return str(int(v))
    return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"


def draw_table(ax: Axes, data: PanelData, height_in: float) -> None:
    """A plain table; rows beyond the panel's height are counted in a last line."""
    header, rows = table_rows(data)
    ax.set_axis_off()
    fit = max(1, int(height_in / INCH_PER_LINE) - 1)
    more = len(rows) - fit
    if more > 0:
        rows = rows[: fit - 1]
    cells = [[table_cell(v, unit_of(data.panel, header[j])) for j, v in enumerate(r)] for r in rows]
    if more > 0:
        cells.append([f"… {more + 1} more rows"] + [""] * (len(header) - 1))
    # Columns as wide as their longest text (at least a few characters), sharing the panel's width.
    chars = [max([len(header[j])] + [len(r[j]) for r in cells], default=4) + 2 for j in range(len(header))]
    widths = [c / sum(chars) for c in chars]
    t = ax.table(cellText=cells, colLabels=header, colWidths=widths, loc="upper center", cellLoc="left", colLoc="left", bbox=[0, 1 - (len(cells) + 1) * INCH_PER_LINE / height_in, 1, (len(cells) + 1) * INCH_PER_LINE / height_in])
    t.auto_set_font_size(False)
    t.set_fontsize(8.5)
    for (r, _c), cell in t.get_celld().items():
        cell.set_edgecolor("#E4E4E4")
        cell.set_linewidth(0.5)
        if r == 0:
            cell.set_text_props(fontweight="bold", color="#333333")
            cell.set_facecolor("#F0F1F3")


def draw_bars(ax: Axes, data: PanelData, horizontal: bool) -> None:
    """Bars: a table-format result's text column against its numeric columns (barchart), else one
    bar per series and column, reduced as a stat (bargauge)."""
    header, rows = table_rows(data)
    text_cols = [j for j, h in enumerate(header) if h != "time" and rows and all(isinstance(r[j], str) for r in rows)]
    num_cols = [j for j, h in enumerate(header) if h != "time" and any(_is_number(r[j]) for r in rows)]
    if text_cols and num_cols and not horizontal:
        cats = [" · ".join(str(r[j]) for j in text_cols) for r in rows]
        groups = [(header[j], [float(r[j]) if _is_number(r[j]) else 0.0 for r in rows], header[j]) for j in num_cols]
    else:
        items = [(label, v, col) for label, v, col in reduced_items(data) if v is not None]
        cats = [label for label, _, _ in items]
        groups = [("", [v for _, v, _ in items], items[0][2] if items else None)]
    width = 0.8 / max(1, len(groups))
    unit = unit_of(data.panel, groups[0][2] if groups else None)
    for g, (name, vals, _col) in enumerate(groups):
        pos = [i + (g - (len(groups) - 1) / 2) * width for i in range(len(cats))]
        colour = PALETTE[g % len(PALETTE)]
        if horizontal:
            bars = ax.barh(pos, vals, height=width, color=colour, label=name or None)
        else:
            bars = ax.bar(pos, vals, width=width, color=colour, label=name or None)
        ax.bar_label(bars, labels=[format_value(v, unit) for v in vals], fontsize=7, padding=2)
    if horizontal:
        ax.set_yticks(range(len(cats)), cats, fontsize=8.5)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: format_value(v, unit)))
    else:
        ax.set_xticks(range(len(cats)), cats, fontsize=8.5, rotation=15 if len(cats) > 4 else 0, ha="right" if len(cats) > 4 else "center")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: format_value(v, unit)))
    ax.tick_params(labelsize=8.5, colors="#444444")
    ax.grid(True, axis="x" if horizontal else "y", color="#E4E4E4", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if len(groups) > 1:
        ax.legend(fontsize=8, frameon=False)


def draw_pie(ax: Axes, data: PanelData) -> None:
    items = [(label, v) for label, v, _ in reduced_items(data) if v and v > 0]
    ax.pie([v for _, v in items], labels=[label for label, _ in items], colors=PALETTE, textprops={"fontsize": 8.5})


def draw_text(ax: Axes, panel: dict[str, Any]) -> None:
    content = ((panel.get("options") or {}).get("content") or "").strip()
    ax.set_axis_off()
    plain = re.sub(r"[*_`#>]", "", re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", content))
    ax.text(0, 1, plain, ha="left", va="top", fontsize=8.5, wrap=True, transform=ax.transAxes)


# The panel types drawn on a time axis (the others: see dashboard_figure; unknown ones get a note).
TIME_AXES = {"timeseries", "trend"}

# --- the dashboard -----------------------------------------------------------------------------

# Grafana's grid: 24 columns; on a 1600-px wide screen a column is ~67 px and a row 30 px plus an
# 8-px gap, so a grid row is ~0.57 of a column. 12 inches at 100 dpi: 1200 px, which a README shows
# at about three quarters of its size, so the fonts below stay readable there.
FIG_WIDTH_IN = 12.0
DPI = 100
COL_IN = FIG_WIDTH_IN / 24
ROW_IN = COL_IN * 0.6
HEADER_IN = 0.75
PANEL_PAD_IN = 0.04
TITLE_IN = 0.3
PANEL_BG = "#FAFAFB"
DISCLAIMER = "drawn from InfluxDB by scripts/render-dashboards.py with the dashboard's queries (not a Grafana screenshot)"

PanelResults = dict[int, tuple[PanelData, list[str], Optional[str]]]


def dashboard_figure(title: str, subtitle: str, panels: list[dict[str, Any]], results: PanelResults, time_range: tuple[datetime, datetime]) -> Figure:
    """One figure for the dashboard: a header (title, the data's testid and range), then every panel
    where its ``gridPos`` puts it, titled, with the measurements it reads at its top right.
    ``results`` holds each panel's data, measurements and error, keyed by ``id(panel)``."""
    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels if "gridPos" in p), default=1)
    height = HEADER_IN + rows * ROW_IN + 0.05
    fig = plt.figure(figsize=(FIG_WIDTH_IN, height), dpi=DPI, facecolor="white")

    def fy(inches: float) -> float:  # figure y of a distance from the top
        return 1 - inches / height

    fig.text(0.008, fy(0.12), title, fontsize=16, fontweight="bold", va="top", color="#1F1F1F")
    fig.text(0.008, fy(0.47), subtitle, fontsize=9.5, va="top", color="#333333")
    fig.text(0.992, fy(0.14), DISCLAIMER, fontsize=7, va="top", ha="right", style="italic", color="#8A8A8A")
    for p in panels:
        g = p.get("gridPos") or {"x": 0, "y": 0, "w": 24, "h": 1}
        x0, w = g["x"] * COL_IN + PANEL_PAD_IN, g["w"] * COL_IN - 2 * PANEL_PAD_IN
        top, h = HEADER_IN + g["y"] * ROW_IN + PANEL_PAD_IN, g["h"] * ROW_IN - 2 * PANEL_PAD_IN
        name = p.get("title") or f"panel {p.get('id')}"
        if p.get("type") == "row":
            fig.text(x0 / FIG_WIDTH_IN, fy(top + 0.05), name, fontsize=10, fontweight="bold", va="top", color="#333333")
            continue
        data, measurements, error = results.get(id(p), (PanelData(panel=p), [], None))
        kind = p.get("type", "")
        fig.add_artist(
            FancyBboxPatch(
                (x0 / FIG_WIDTH_IN, fy(top + h)), w / FIG_WIDTH_IN, h / height,
                boxstyle="round,pad=0,rounding_size=0.002", transform=fig.transFigure,
                facecolor=PANEL_BG, edgecolor="#D0D1D5", linewidth=0.8, zorder=-1,  # under the axes
            )
        )
        fig.text((x0 + 0.08) / FIG_WIDTH_IN, fy(top + 0.06), name, fontsize=10, fontweight="bold", va="top", color="#1F1F1F")
        if measurements and kind in ("stat", "gauge"):  # small: under the number, centred
            source = ", ".join(measurements)
            fig.text((x0 + w / 2) / FIG_WIDTH_IN, fy(top + h - 0.05), source if len(source) * 0.058 < w - 0.1 else source[: int((w - 0.1) / 0.058) - 1] + "…", fontsize=7, va="bottom", ha="center", color="#7A7A7A", family="monospace")
        elif measurements:
            source = "from " + ", ".join(measurements)
            # ~0.09 in per character of the 10-pt bold title, 0.058 in per 7-pt monospace one
            room = max(0, int((w - 0.3 - len(name) * 0.09) / 0.058))
            if len(source) > room:
                source = source[: max(0, room - 1)] + "…" if room > 8 else ""
            fig.text((x0 + w - 0.08) / FIG_WIDTH_IN, fy(top + 0.075), source, fontsize=7, va="top", ha="right", color="#7A7A7A", family="monospace")
        legend_h = 2 * INCH_PER_LINE + 0.04 if kind in TIME_AXES else 0.0
        left, bottom = {
            **{k: (0.62, 0.26 + legend_h) for k in TIME_AXES},  # y labels left, time labels below
            "barchart": (0.62, 0.32),
            "bargauge": (1.4, 0.2),
            "stat": (0.08, 0.16),
            "gauge": (0.08, 0.16),
        }.get(kind, (0.08, 0.06))
        right = 0.3 if kind in TIME_AXES else 0.12  # room for half of the last time label
        inner_w, inner_h = max(0.3, w - left - right), max(0.2, h - TITLE_IN - bottom)
        ax = fig.add_axes((
            (x0 + left) / FIG_WIDTH_IN, fy(top + TITLE_IN + inner_h), inner_w / FIG_WIDTH_IN, inner_h / height
        ))
        ax.set_facecolor(PANEL_BG)
        if kind == "text":
            draw_text(ax, p)
        elif error:
            _message(ax, "query failed:\n" + error[-160:], colour="#C4162A")
        elif not data.has_data():
            _message(ax, "No data")
        elif kind in TIME_AXES:
            draw_timeseries(fig, ax, data, time_range, ((x0 + 0.08) / FIG_WIDTH_IN, fy(top + h - legend_h - 0.02), w - 0.16))
        elif kind in ("stat", "gauge"):
            draw_stat(ax, data)
        elif kind == "table":
            draw_table(ax, data, inner_h)
        elif kind in ("barchart", "bargauge"):
            draw_bars(ax, data, horizontal=kind == "bargauge")
        elif kind == "piechart":
            draw_pie(ax, data)
        else:
            _message(ax, f"panel type {kind!r} is not drawn by render-dashboards.py")
    return fig


def close(fig: Figure) -> None:
    plt.close(fig)
