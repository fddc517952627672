"""The InfluxQL queries of perfsink's Grafana dashboards, as Grafana would send them.

Grafana fills a raw InfluxQL query in before sending it: ``$timeFilter`` becomes the time range,
``$__interval`` the GROUP BY step, ``$var`` / ``${var}`` / ``[[var]]`` the template variables
(regex-escaped and joined ``(a|b)`` inside a ``/.../`` regex, as Grafana's InfluxDB datasource does
for multi-value variables). This module does the same outside Grafana, so the tests
(python/tests/test_dashboard_queries.py) and the pictures (scripts/render-dashboards.py) run every
panel's query against a real InfluxDB 1.x. Standard library only; import it by path::

    spec = importlib.util.spec_from_file_location("queries", "docker/grafana/queries.py")

Interface (kept stable: the pictures' script uses it too):

- ``panel_queries(dashboard, variables, interval=..., time_from=..., time_to=...)``
  -> ``[(panel_title, panel_type, query_text)]``, one per target, substituted (``$__interval``
  never below the panel's own minimum interval, as in Grafana);
- ``panel_targets(...)``: the same as ``PanelTarget`` records (plus refId, alias, resultFormat,
  the panel dict);
- ``panel_interval(panel, interval)`` -> the ``$__interval`` of that panel;
- ``variable_queries(dashboard, variables, ...)`` -> ``[(variable_name, query_text)]``;
- ``substitute(query, variables, interval=..., time_from=..., time_to=...)`` -> ``str``;
- ``run(influx_url, db, query)`` -> the series of the query's first statement (InfluxDB's JSON:
  dicts with ``name``, ``tags``, ``columns``, ``values``; time in epoch milliseconds); raises
  ``QueryError`` when InfluxDB reports an error;
- ``rows(series)`` -> the series flattened into dicts (columns and tags).
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from typing import Any, Iterator, Mapping, NamedTuple, Sequence, Union

VariableValue = Union[str, Sequence[str]]

DEFAULT_INTERVAL = "1s"
DEFAULT_TIME_FROM = "now-1h"
DEFAULT_TIME_TO = "now"


class QueryError(RuntimeError):
    """InfluxDB answered a query with an error (bad syntax, unknown function...)."""


class PanelTarget(NamedTuple):
    """One query of one panel, variables substituted."""

    panel_title: str
    panel_type: str
    query: str
    ref_id: str
    alias: str
    result_format: str
    panel: Mapping[str, Any]


def _influx_time(t: Union[str, int, float]) -> str:
    """Grafana's ``getInfluxTime``: ``now`` -> ``now()``, ``now-1h`` -> ``now() - 1h``, epoch
    milliseconds (a number) -> ``<ms>ms``."""
    if isinstance(t, (int, float)):
        return f"{int(t)}ms"
    t = t.strip()
    if t == "now":
        return "now()"
    m = re.fullmatch(r"now\s*-\s*(\d+[smhdw])", t)
    if m:
        return f"now() - {m.group(1)}"
    if t.isdigit():
        return f"{t}ms"
    raise ValueError(f"time {t!r}: use now, now-<n><s|m|h|d|w> or epoch milliseconds")


def time_filter(
    time_from: Union[str, int, float] = DEFAULT_TIME_FROM, time_to: Union[str, int, float] = DEFAULT_TIME_TO
) -> str:
    """What Grafana puts in place of ``$timeFilter`` (no upper bound when the range ends now)."""
    lo, hi = _influx_time(time_from), _influx_time(time_to)
    return f"time >= {lo}" if hi == "now()" else f"time >= {lo} and time <= {hi}"


def _values(v: VariableValue) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _regex_value(v: VariableValue) -> str:
    vals = [re.sub(r"([\\/^$.|?*+()\[\]{}])", r"\\\1", x) for x in _values(v)]
    return vals[0] if len(vals) == 1 else "(" + "|".join(vals) + ")"


def _plain_value(v: VariableValue) -> str:
    vals = _values(v)
    return vals[0] if len(vals) == 1 else "{" + ",".join(vals) + "}"


def _var_pattern(name: str) -> str:
    return rf"(?:\$\{{{re.escape(name)}(?::[a-z]+)?\}}|\[\[{re.escape(name)}\]\]|\${re.escape(name)}\b)"


def substitute(
    query: str,
    variables: Mapping[str, VariableValue],
    interval: str = DEFAULT_INTERVAL,
    time_from: Union[str, int, float] = DEFAULT_TIME_FROM,
    time_to: Union[str, int, float] = DEFAULT_TIME_TO,
) -> str:
    """``query`` with ``$timeFilter``, ``$__interval`` (and ``$__interval_ms``, ``$interval``) and
    every variable of ``variables`` filled in as Grafana's InfluxDB datasource fills them."""
    out = query.replace("$timeFilter", time_filter(time_from, time_to))
    out = re.sub(r"\$__interval_ms\b", str(_interval_ms(interval)), out)
    out = re.sub(r"\$__interval\b|\$interval\b", interval, out)
    # Longest names first, so `$application` is not taken for `$app` + "lication".
    for name in sorted(variables, key=len, reverse=True):
        value = variables[name]
        pat = _var_pattern(name)
        # Inside a `=~ /regex/` literal: escaped, multi-values as an alternation.
        out = re.sub(
            r"[=!]~\s*/(?:\\/|[^/\n])*/",
            lambda m: re.sub(pat, lambda _: _regex_value(value), m.group(0)),
            out,
        )
        out = re.sub(pat, lambda _: _plain_value(value), out)
    return out


def _interval_ms(interval: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", interval)
    if not m:
        raise ValueError(f"interval {interval!r}: use <n>ms|s|m|h|d")
    return int(m.group(1)) * {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}[m.group(2)]


def panel_interval(panel: Mapping[str, Any], interval: str) -> str:
    """The ``$__interval`` Grafana uses for ``panel``: ``interval`` (the range's auto interval),
    but never below the panel's own minimum interval (its ``interval`` option, e.g. ``5s`` for
    JMeter's send interval)."""
    minimum = panel.get("interval")
    if minimum and _interval_ms(minimum) > _interval_ms(interval):
        return str(minimum)
    return interval


def _panels(panels: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every panel, the ones inside (collapsed) rows included; rows themselves are not panels."""
    for p in panels:
        if p.get("type") == "row":
            yield from _panels(p.get("panels") or [])
        else:
            yield p


def panel_targets(
    dashboard: Mapping[str, Any],
    variables: Mapping[str, VariableValue],
    interval: str = DEFAULT_INTERVAL,
    time_from: Union[str, int, float] = DEFAULT_TIME_FROM,
    time_to: Union[str, int, float] = DEFAULT_TIME_TO,
) -> list[PanelTarget]:
    """Every raw query of every panel of ``dashboard`` (a dashboard JSON dict), substituted;
    ``$__interval`` is ``interval`` or the panel's minimum interval, whichever is larger."""
    out: list[PanelTarget] = []
    for p in _panels(dashboard.get("panels") or []):
        step = panel_interval(p, interval)
        for t in p.get("targets") or []:
            q = t.get("query")
            if not q:
                continue
            out.append(
                PanelTarget(
                    panel_title=p.get("title", ""),
                    panel_type=p.get("type", ""),
                    query=substitute(q, variables, step, time_from, time_to),
                    ref_id=t.get("refId", ""),
                    alias=t.get("alias", ""),
                    result_format=t.get("resultFormat", "time_series"),
                    panel=p,
                )
            )
    return out


def panel_queries(
    dashboard: Mapping[str, Any],
    variables: Mapping[str, VariableValue],
    interval: str = DEFAULT_INTERVAL,
    time_from: Union[str, int, float] = DEFAULT_TIME_FROM,
    time_to: Union[str, int, float] = DEFAULT_TIME_TO,
) -> list[tuple[str, str, str]]:
    """``[(panel_title, panel_type, query_text)]``: every panel query, substituted."""
    return [
        (t.panel_title, t.panel_type, t.query)
        for t in panel_targets(dashboard, variables, interval, time_from, time_to)
    ]


def variable_queries(
    dashboard: Mapping[str, Any],
    variables: Mapping[str, VariableValue],
    interval: str = DEFAULT_INTERVAL,
    time_from: Union[str, int, float] = DEFAULT_TIME_FROM,
    time_to: Union[str, int, float] = DEFAULT_TIME_TO,
) -> list[tuple[str, str]]:
    """``[(variable_name, query_text)]`` of the dashboard's query variables, substituted (a
    variable's query may use the variables before it, e.g. ``application`` under ``testid``)."""
    out: list[tuple[str, str]] = []
    for v in (dashboard.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        if isinstance(q, Mapping):  # newer Grafana stores {"query": "...", "refId": ...}
            q = q.get("query")
        if q:
            out.append((v["name"], substitute(q, variables, interval, time_from, time_to)))
    return out


def run(influx_url: str, db: str, query: str, timeout: float = 30.0) -> list[dict[str, Any]]:
    """Runs ``query`` (InfluxQL) in ``db`` at ``influx_url`` (``http://host:8086``) as Grafana does
    (``GET /query``, epoch ms); the series of the first statement, ``[]`` when it has none."""
    params = urllib.parse.urlencode({"db": db, "q": query, "epoch": "ms"})
    with urllib.request.urlopen(f"{influx_url.rstrip('/')}/query?{params}", timeout=timeout) as r:
        body = json.loads(r.read())
    if "error" in body:
        raise QueryError(f"{query}: {body['error']}")
    result = body["results"][0]
    if "error" in result:
        raise QueryError(f"{query}: {result['error']}")
    return list(result.get("series") or [])


def rows(series: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows of ``series`` as dicts: the columns, plus each series' tags."""
    out: list[dict[str, Any]] = []
    for s in series:
        for values in s.get("values") or []:
            row = dict(zip(s["columns"], values))
            row.update(s.get("tags") or {})
            out.append(row)
    return out
