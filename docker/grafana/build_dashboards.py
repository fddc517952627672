#!/usr/bin/env python3
"""Generates perfsink's Grafana dashboards (docker/grafana/dashboards/*.json) from code.

Builder: grafana-foundation-sdk ==1769699379!11.6.0 (Grafana's own generated SDK, pinned; installed
by scripts/setup.sh). Every query is raw InfluxQL against the provisioned datasource (uid
``perfsink-influxdb``, database ``k6``), contains ``$timeFilter``, is filtered by the dashboard's
``testid`` variable and groups time series by ``$__interval``. Layout of the data: README.md
("k6", "Aggregated mode", "JMeter", "Python") and docs/dashboards.md.

    python3 docker/grafana/build_dashboards.py            # rewrite the JSON files
    python3 docker/grafana/build_dashboards.py --check    # exit 1 if a file is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from grafana_foundation_sdk.builders import barchart, common as common_b, dashboard as dash_b, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common, dashboard

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE_UID = "perfsink-influxdb"
DATASOURCE = dashboard.DataSourceRef(type_val="influxdb", uid=DATASOURCE_UID)
# Grafana 11.6 writes 41; 12.x migrates it up on load (docs/dashboards.md).
SCHEMA_VERSION = 41
TESTID = '"testid" =~ /^$testid$/'
# Sums across generators use a subquery grouped by "instance". Its outer query sees only the
# tags the inner one groups by, so the testid/application filters go inside, $timeFilter in both.


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target; the SDK has no InfluxDB query type, so this is the SDK's documented
    custom-query extension point (examples/python/custom-query)."""

    def __init__(self, query: str, ref_id: str, result_format: str, alias: Optional[str]) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": DATASOURCE.to_json(),
            "rawQuery": True,
            "query": self.query,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        return out


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    def __init__(self, query: str, ref_id: str = "A", table: bool = False, alias: Optional[str] = None) -> None:
        if "$timeFilter" not in query or "$testid" not in query:
            raise ValueError(f"every query needs $timeFilter and the testid filter: {query}")
        self._q = InfluxQLQuery(query, ref_id, "table" if table else "time_series", alias)

    def build(self) -> InfluxQLQuery:
        return self._q


def _targets(panel: Any, queries: list[InfluxQL]) -> Any:
    return panel.datasource(DATASOURCE).targets(queries)


def ts(title: str, unit: str, *queries: InfluxQL, w: int = 12, h: int = 8, desc: str = "", interval: str = "") -> Any:
    p = (
        timeseries.Panel()
        .title(title)
        .description(desc)
        .unit(unit)
        .span(w)
        .height(h)
        .line_width(1)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(True)
        .legend(
            common_b.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if interval:
        p = p.interval(interval)
    return _targets(p, list(queries))


def single(
    title: str, unit: str, query: InfluxQL, w: int = 4, h: int = 4, desc: str = "", calc: str = "lastNotNull"
) -> Any:
    p = (
        stat.Panel()
        .title(title)
        .description(desc)
        .unit(unit)
        .span(w)
        .height(h)
        .graph_mode(common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_b.ReduceDataOptions().calcs([calc]).values(False))
    )
    return _targets(p, [query])


def tbl(title: str, *queries: InfluxQL, w: int = 24, h: int = 8, desc: str = "", merge: bool = False) -> Any:
    p = table.Panel().title(title).description(desc).span(w).height(h)
    if merge:  # several table queries, one row per tag set: Grafana's "merge" transformation joins them
        p = p.with_transformation(dashboard.DataTransformerConfig(id_val="merge", options={}))
    return _targets(p, list(queries))


def bars(title: str, unit: str, query: InfluxQL, x_field: str, w: int = 12, h: int = 8, desc: str = "") -> Any:
    p = (
        barchart.Panel()
        .title(title)
        .description(desc)
        .unit(unit)
        .span(w)
        .height(h)
        .x_field(x_field)
        .show_value(common.VisibilityMode.AUTO)
    )
    return _targets(p, [query])


def variable(name: str, query: str, label: str, multi: bool = False) -> Any:
    v = (
        dash_b.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard.VariableSort.ALPHABETICAL_DESC)
    )
    if multi:
        v = v.multi(True).include_all(True)
    return v


def testid_variable(measurement: str) -> Any:
    # One run at a time; "All" is `.*` (not the list of values), which also matches points written
    # without a testid tag (InfluxQL compares a missing tag as ""): a bare `perfsink k6` run shows
    # up there. Sorted descending so a unified run's default testid (<stem>-<UTC time>) lists the
    # newest run of a file first.
    return (
        variable("testid", f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "testid"', "testid")
        .include_all(True)
        .all_value(".*")
    )


def new_dashboard(uid: str, title: str, description: str, tags: list[str]) -> Any:
    return (
        dash_b.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["perfsink", *tags])
        .time("now-30m", "now")
        .refresh("10s")
        .timezone("browser")
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
    )


# ---------------------------------------------------------------------------------------- k6 raw
def k6_raw() -> Any:
    w = f"{TESTID} AND $timeFilter"
    per_s = "* 1000 / $__interval_ms"
    d = new_dashboard(
        "perfsink-k6",
        "perfsink · k6",
        "k6 samples as k6's influxdb output writes them (measurement = metric, field value): what dashboard 2587 shows, with current panels.",
        ["k6"],
    ).with_variable(testid_variable("http_reqs"))
    # vus is a gauge per generator: its max per interval and generator (instance tag), summed.
    vus_sum = (
        'SELECT sum("vus") AS "vus" FROM (SELECT max("value") AS "vus" FROM "vus" WHERE '
        f'{w} GROUP BY time($__interval), "instance") WHERE $timeFilter GROUP BY time($__interval)'
    )
    d = (
        d.with_panel(single("Requests", "short", InfluxQL(f'SELECT count("value") FROM "http_reqs" WHERE {w}')))
        .with_panel(
            single(
                "Failed requests",
                "short",
                InfluxQL(f'SELECT sum("value") FROM "http_req_failed" WHERE {w}'),
                desc="http_req_failed samples with value 1",
            )
        )
        .with_panel(
            single("Error rate", "percentunit", InfluxQL(f'SELECT mean("value") FROM "http_req_failed" WHERE {w}'))
        )
        .with_panel(single("Checks passed", "percentunit", InfluxQL(f'SELECT mean("value") FROM "checks" WHERE {w}')))
        .with_panel(
            single("p95 duration", "ms", InfluxQL(f'SELECT percentile("value", 95) FROM "http_req_duration" WHERE {w}'))
        )
        .with_panel(
            single(
                "Peak VUs",
                "short",
                InfluxQL(f'SELECT max("vus") FROM ({vus_sum}) WHERE $timeFilter'),
                desc="summed across generators (instance tag)",
            )
        )
    )
    g = "GROUP BY time($__interval) fill(none)"
    d = (
        d.with_panel(
            ts(
                "Requests per second",
                "reqps",
                InfluxQL(f'SELECT count("value") {per_s} AS "requests/s" FROM "http_reqs" WHERE {w} {g}'),
                desc="all generators together: every request is its own point",
            )
        )
        .with_panel(
            ts(
                "Errors per second",
                "reqps",
                InfluxQL(f'SELECT sum("value") {per_s} AS "failed/s" FROM "http_req_failed" WHERE {w} {g}'),
                desc="http_req_failed: 1 per failed request",
            )
        )
        .with_panel(
            ts(
                "Virtual users",
                "short",
                InfluxQL(f"{vus_sum} fill(none)"),
                desc="summed across generators (instance tag)",
            )
        )
        .with_panel(
            ts(
                "Checks per second",
                "short",
                InfluxQL(
                    f'SELECT sum("value") {per_s} FROM "checks" WHERE {w} GROUP BY time($__interval), "check" fill(none)',
                    alias="$tag_check passed/s",
                ),
                desc="passed checks per second, per check",
            )
        )
        .with_panel(
            ts(
                "http_req_duration percentiles",
                "ms",
                InfluxQL(
                    'SELECT percentile("value", 50) AS "p50", percentile("value", 90) AS "p90", percentile("value", 95) AS "p95", '
                    f'percentile("value", 99) AS "p99" FROM "http_req_duration" WHERE {w} {g}'
                ),
                w=24,
            )
        )
        .with_panel(
            ts(
                "Request phases (mean)",
                "ms",
                InfluxQL(
                    'SELECT mean("value") FROM "http_req_blocked", "http_req_connecting", "http_req_sending", "http_req_waiting", '
                    f'"http_req_receiving" WHERE {w} {g}',
                    alias="$m",
                ),
                desc="where the time of a request goes (2587's per-measurement rows)",
            )
        )
        .with_panel(
            ts(
                "p95 duration per name",
                "ms",
                InfluxQL(
                    f'SELECT percentile("value", 95) FROM "http_req_duration" WHERE {w} GROUP BY time($__interval), "name" fill(none)',
                    alias="$tag_name",
                ),
            )
        )
        .with_panel(
            tbl(
                "Per request name",
                InfluxQL(
                    'SELECT count("value") AS "requests", mean("value") AS "mean ms", percentile("value", 90) AS "p90 ms", '
                    f'percentile("value", 95) AS "p95 ms", max("value") AS "max ms" FROM "http_req_duration" WHERE {w} GROUP BY "name"',
                    table=True,
                ),
                InfluxQL(
                    f'SELECT sum("value") AS "failed" FROM "http_req_failed" WHERE {w} GROUP BY "name"',
                    ref_id="B",
                    table=True,
                ),
                merge=True,
                desc="http_req_duration statistics and failed requests per `name` tag (the URL unless the script names it)",
            )
        )
    )
    return d


# -------------------------------------------------------------------------------- k6 aggregated
def k6_aggregated() -> Any:
    w = f"{TESTID} AND $timeFilter"
    per_s = "* 1000 / $__interval_ms"
    g = "GROUP BY time($__interval) fill(none)"
    # Aggregated points are one per series and interval (1 s by default): a finer $__interval
    # would show empty buckets between them.
    agg_interval = "1s"
    p95_why = (
        "max across generators (instance tag) of each interval's p95 of a request name: percentiles cannot be combined, "
        "but the combined p95 is never above the largest per-instance p95, so the max is an upper bound "
        "(exact with one generator), where a mean could hide a slow generator."
    )
    d = new_dashboard(
        "perfsink-k6-agg",
        "perfsink · k6 aggregated",
        "PERFSINK_MODE=aggregate: one <metric>_agg point per series, interval and generator (instance); counts are summed across instances.",
        ["k6", "aggregated"],
    ).with_variable(testid_variable("http_reqs_agg"))
    vus_sum = (
        'SELECT sum("vus") FROM (SELECT last("last") AS "vus" FROM "vus_agg" WHERE '
        f'{w} GROUP BY time($__interval), "instance") WHERE $timeFilter GROUP BY time($__interval) fill(none)'
    )
    d = (
        d.with_panel(
            single(
                "Requests",
                "short",
                InfluxQL(f'SELECT sum("count") FROM "http_reqs_agg" WHERE {w}'),
                desc="sum of count over all instances",
            )
        )
        .with_panel(
            single("Failed requests", "short", InfluxQL(f'SELECT sum("passes") FROM "http_req_failed_agg" WHERE {w}'))
        )
        .with_panel(
            single(
                "Error rate",
                "percentunit",
                InfluxQL(f'SELECT sum("passes") / sum("count") FROM "http_req_failed_agg" WHERE {w}'),
            )
        )
        .with_panel(
            single(
                "Checks passed",
                "percentunit",
                InfluxQL(f'SELECT sum("passes") / sum("count") FROM "checks_agg" WHERE {w}'),
            )
        )
        .with_panel(
            single(
                "Worst p95 (any name)",
                "ms",
                InfluxQL(f'SELECT max("p95") FROM "http_req_duration_agg" WHERE {w}'),
                desc=p95_why,
            )
        )
        .with_panel(
            single(
                "Generators",
                "short",
                InfluxQL(
                    f'SELECT count("c") FROM (SELECT sum("count") AS "c" FROM "http_reqs_agg" WHERE {w} GROUP BY "instance") WHERE $timeFilter'
                ),
                desc="distinct instance tags",
            )
        )
        .with_panel(
            ts(
                "Requests per second",
                "reqps",
                InfluxQL(f'SELECT sum("count") {per_s} AS "requests/s" FROM "http_reqs_agg" WHERE {w} {g}'),
                interval=agg_interval,
                desc="sum across instances",
            )
        )
        .with_panel(
            ts(
                "Errors per second",
                "reqps",
                InfluxQL(f'SELECT sum("passes") {per_s} AS "failed/s" FROM "http_req_failed_agg" WHERE {w} {g}'),
                interval=agg_interval,
            )
        )
        .with_panel(
            ts(
                "http_req_duration p95 per name (max across instances)",
                "ms",
                # Per name: a max across names would show the slowest request's percentiles as
                # if they were the whole run's.
                InfluxQL(
                    f'SELECT max("p95") FROM "http_req_duration_agg" WHERE {w} '
                    'GROUP BY time($__interval), "name" fill(none)',
                    alias="$tag_name p95",
                ),
                InfluxQL(
                    f'SELECT sum("sum") / sum("count") AS "mean (exact)" FROM "http_req_duration_agg" WHERE {w} {g}',
                    ref_id="B",
                ),
                w=24,
                interval=agg_interval,
                desc=p95_why,
            )
        )
        .with_panel(
            ts("Virtual users (sum across instances)", "short", InfluxQL(vus_sum, alias="vus"), interval=agg_interval)
        )
        .with_panel(
            ts(
                "Requests per second per instance",
                "reqps",
                InfluxQL(
                    f'SELECT sum("count") {per_s} FROM "http_reqs_agg" WHERE {w} GROUP BY time($__interval), "instance" fill(none)',
                    alias="$tag_instance",
                ),
                interval=agg_interval,
            )
        )
        .with_panel(
            tbl(
                "Per request name",
                InfluxQL(
                    'SELECT sum("count") AS "requests", sum("sum") / sum("count") AS "mean ms", max("p95") AS "max interval p95 ms", '
                    f'max("max") AS "max ms" FROM "http_req_duration_agg" WHERE {w} GROUP BY "name"',
                    table=True,
                ),
                InfluxQL(
                    f'SELECT sum("passes") AS "failed" FROM "http_req_failed_agg" WHERE {w} GROUP BY "name"',
                    ref_id="B",
                    table=True,
                ),
                merge=True,
                desc="count and mean are exact across intervals and instances; p95 is the worst interval's",
            )
        )
    )
    return d


# ------------------------------------------------------------------------------------- JMeter
def jmeter() -> Any:
    app = '"application" =~ /^$application$/'
    tx = '"transaction" =~ /^$transaction$/'
    w = f"{app} AND {TESTID} AND $timeFilter"
    total = f"\"transaction\" = 'all' AND \"statut\" = 'all' AND {w}"
    per_s = "* 1000 / $__interval_ms"
    g = "GROUP BY time($__interval) fill(none)"
    # The listener writes one line per transaction every send interval (5 s by default).
    send_interval = "5s"
    threads = (
        'SELECT sum("threads") FROM (SELECT max("maxAT") AS "threads" FROM "jmeter" WHERE "transaction" = \'internal\' AND '
        f'{w} GROUP BY time($__interval), "instance") WHERE $timeFilter GROUP BY time($__interval) fill(none)'
    )
    d = (
        new_dashboard(
            "perfsink-jmeter",
            "perfsink · JMeter",
            "The perfsink JMeter listener's lines (the built-in InfluxdbBackendListenerClient schema): the views of dashboards 4026/5496, summed across generators (instance).",
            ["jmeter"],
        )
        .with_variable(testid_variable("jmeter"))
        .with_variable(
            variable(
                "application",
                f'SHOW TAG VALUES FROM "jmeter" WITH KEY = "application" WHERE {TESTID}',
                "application",
                multi=True,
            )
        )
        .with_variable(
            variable(
                "transaction",
                f'SHOW TAG VALUES FROM "jmeter" WITH KEY = "transaction" WHERE {app} AND {TESTID} AND "transaction" != \'internal\' AND "transaction" != \'all\'',
                "transaction",
                multi=True,
            )
        )
    )
    d = (
        d.with_panel(
            single("Total requests", "short", InfluxQL(f'SELECT sum("count") FROM "jmeter" WHERE {total}'), w=6)
        )
        .with_panel(
            single("Failed requests", "short", InfluxQL(f'SELECT sum("countError") FROM "jmeter" WHERE {total}'), w=6)
        )
        .with_panel(
            single(
                "Error rate",
                "percent",
                InfluxQL(f'SELECT sum("countError") * 100 / sum("count") FROM "jmeter" WHERE {total}'),
                w=6,
            )
        )
        .with_panel(
            single(
                "Peak threads",
                "short",
                InfluxQL(f'SELECT max("sum") FROM ({threads}) WHERE $timeFilter'.replace(" fill(none)", "")),
                w=6,
                desc="active threads summed across instances",
            )
        )
        .with_panel(
            ts(
                "Throughput",
                "reqps",
                InfluxQL(f'SELECT sum("count") {per_s} AS "requests/s" FROM "jmeter" WHERE {total} {g}'),
                InfluxQL(f'SELECT sum("countError") {per_s} AS "errors/s" FROM "jmeter" WHERE {total} {g}', ref_id="B"),
                interval=send_interval,
            )
        )
        .with_panel(
            ts(
                "Active threads",
                "short",
                InfluxQL(threads, alias="threads"),
                interval=send_interval,
                desc="max active threads per interval, summed across instances",
            )
        )
        .with_panel(
            ts(
                "Response times (all transactions)",
                "ms",
                InfluxQL(
                    'SELECT sum("weighted") / sum("n") AS "avg" FROM (SELECT "avg" * "count" AS "weighted", "count" AS "n" '
                    f'FROM "jmeter" WHERE {total}) WHERE $timeFilter {g}'
                ),
                InfluxQL(
                    'SELECT max("pct90.0") AS "pct90", max("pct95.0") AS "pct95", max("pct99.0") AS "pct99", max("max") AS "max" '
                    f'FROM "jmeter" WHERE {total} {g}',
                    ref_id="B",
                ),
                interval=send_interval,
                desc="the summary line (transaction=all): avg weighted by count across instances (exact), "
                "percentiles and max as the max across instances (an upper bound)",
            )
        )
        .with_panel(
            ts(
                "Throughput per transaction",
                "reqps",
                InfluxQL(
                    f'SELECT sum("count") {per_s} FROM "jmeter" WHERE {tx} AND "statut" = \'all\' AND {w} GROUP BY time($__interval), "transaction" fill(none)',
                    alias="$tag_transaction",
                ),
                interval=send_interval,
                desc="samples per second, summed across instances",
            )
        )
        .with_panel(
            ts(
                "Response time pct95 per transaction",
                "ms",
                InfluxQL(
                    f'SELECT max("pct95.0") FROM "jmeter" WHERE {tx} AND "statut" = \'ok\' AND {w} GROUP BY time($__interval), "transaction" fill(none)',
                    alias="$tag_transaction",
                ),
                interval=send_interval,
                desc="successful samples; the max across instances (an upper bound: percentiles do not add up)",
            )
        )
        .with_panel(
            ts(
                "Errors per transaction",
                "short",
                InfluxQL(
                    f'SELECT sum("count") FROM "jmeter" WHERE {tx} AND "statut" = \'ko\' AND {w} GROUP BY time($__interval), "transaction" fill(none)',
                    alias="$tag_transaction",
                ),
                interval=send_interval,
            )
        )
        .with_panel(
            ts(
                "Network",
                "Bps",
                InfluxQL(
                    f'SELECT sum("rb") {per_s} AS "received", sum("sb") {per_s} AS "sent" FROM "jmeter" WHERE {total} {g}'
                ),
                w=24,
                h=6,
                interval=send_interval,
                desc="bytes per second received and sent by the samplers (5496's network panel)",
            )
        )
        .with_panel(
            tbl(
                "Error info",
                InfluxQL(
                    f'SELECT sum("count") AS "errors" FROM "jmeter" WHERE {tx} AND "responseCode" =~ /.+/ AND {w} GROUP BY "transaction", "responseCode", "responseMessage"',
                    table=True,
                ),
                desc="the listener's error lines: response code and message per transaction",
            )
        )
        .with_panel(
            tbl(
                "Per transaction",
                InfluxQL(
                    'SELECT sum("count") AS "requests", sum("hit") AS "hits", min("min") AS "min ms", max("pct95.0") AS "max interval pct95 ms", '
                    f'max("max") AS "max ms", sum("rb") AS "received bytes" FROM "jmeter" WHERE {tx} AND "statut" = \'all\' AND {w} GROUP BY "transaction"',
                    table=True,
                ),
                InfluxQL(
                    f'SELECT sum("count") AS "errors" FROM "jmeter" WHERE {tx} AND "statut" = \'ko\' AND {w} GROUP BY "transaction"',
                    ref_id="B",
                    table=True,
                ),
                merge=True,
            )
        )
        .with_panel(
            tbl(
                "Test events",
                InfluxQL(
                    f'SELECT "text" FROM "events" WHERE {w}',
                    table=True,
                ),
                h=5,
                desc="the listener's `<testTitle> started/ended` lines (measurement events), which dashboards 4026/5496 show as annotations",
            )
        )
    )
    return d


# --------------------------------------------------------------------------- Python workflows
def workflows() -> Any:
    wf = '"workflow" =~ /^$workflow$/'
    w = f"{wf} AND {TESTID} AND $timeFilter"
    g = "fill(none)"
    d = (
        new_dashboard(
            "perfsink-workflows",
            "perfsink · Python workflows",
            "workflow_step points (one per executed step; duration in seconds, success_count 1 or 0) from the Python publisher and the unified YAML workflows.",
            ["python", "workflows"],
        )
        .with_variable(testid_variable("workflow_step"))
        .with_variable(
            variable(
                "workflow",
                f'SHOW TAG VALUES FROM "workflow_step" WITH KEY = "workflow" WHERE {TESTID}',
                "workflow",
                multi=True,
            )
        )
    )
    d = (
        d.with_panel(
            single("Steps run", "short", InfluxQL(f'SELECT count("duration") FROM "workflow_step" WHERE {w}'), w=6)
        )
        .with_panel(
            single(
                "Failed steps",
                "short",
                InfluxQL(f'SELECT count("duration") - sum("success_count") FROM "workflow_step" WHERE {w}'),
                w=6,
            )
        )
        .with_panel(
            single(
                "Success rate",
                "percentunit",
                InfluxQL(f'SELECT sum("success_count") / count("duration") FROM "workflow_step" WHERE {w}'),
                w=6,
            )
        )
        .with_panel(
            single(
                "p95 step duration",
                "s",
                InfluxQL(f'SELECT percentile("duration", 95) FROM "workflow_step" WHERE {w}'),
                w=6,
            )
        )
        .with_panel(
            ts(
                "Step duration p95",
                "s",
                InfluxQL(
                    f'SELECT percentile("duration", 95) FROM "workflow_step" WHERE {w} GROUP BY time($__interval), "workflow", "step" {g}',
                    alias="$tag_workflow / $tag_step",
                ),
            )
        )
        .with_panel(
            ts(
                "Calls per second",
                "reqps",
                InfluxQL(
                    f'SELECT count("duration") * 1000 / $__interval_ms FROM "workflow_step" WHERE {w} GROUP BY time($__interval), "workflow", "status" {g}',
                    alias="$tag_workflow $tag_status",
                ),
            )
        )
        .with_panel(
            ts(
                "Success rate per step",
                "percentunit",
                InfluxQL(
                    f'SELECT sum("success_count") / count("duration") FROM "workflow_step" WHERE {w} GROUP BY time($__interval), "workflow", "step" {g}',
                    alias="$tag_workflow / $tag_step",
                ),
            )
        )
        .with_panel(
            bars(
                "Success rate per workflow",
                "percentunit",
                InfluxQL(
                    f'SELECT sum("success_count") / count("duration") AS "success rate" FROM "workflow_step" WHERE {w} GROUP BY "workflow"',
                    table=True,
                ),
                x_field="workflow",
            )
        )
        .with_panel(
            tbl(
                "Per step",
                InfluxQL(
                    'SELECT count("duration") AS "calls", sum("success_count") / count("duration") AS "success rate", mean("duration") AS "mean s", '
                    f'percentile("duration", 95) AS "p95 s", max("duration") AS "max s" FROM "workflow_step" WHERE {w} GROUP BY "workflow", "step"',
                    table=True,
                ),
            )
        )
    )
    return d


# --------------------------------------------------------------------------------- health
def health() -> Any:
    src = '"source" =~ /^$source$/'
    w = f"{src} AND {TESTID} AND $timeFilter"
    # A sink is (host, source, instance): two generators on one host differ by their instance tag.
    per_sink = 'GROUP BY time($__interval), "host", "source", "instance" fill(none)'
    alias = "$tag_source@$tag_host $tag_instance"

    def rate(field: str) -> InfluxQL:
        # The self-metrics are cumulative counters of one sink: their rate is the derivative.
        return InfluxQL(
            f'SELECT non_negative_derivative(max("{field}"), 1s) FROM "perfsink" WHERE {w} {per_sink}', alias=alias
        )

    def total(field: str) -> InfluxQL:
        # Each sink's last value, added up over sinks.
        return InfluxQL(
            f'SELECT sum("v") FROM (SELECT last("{field}") AS "v" FROM "perfsink" WHERE {w} GROUP BY "host", "source", "instance") WHERE $timeFilter'
        )

    d = (
        new_dashboard(
            "perfsink-health",
            "perfsink · health",
            "The sinks' self-metrics (measurement perfsink, every PERFSINK_SELF_METRICS_INTERVAL_MS): what each sink accepted, wrote, retried, rejected, dropped and spooled.",
            ["health"],
        )
        .with_variable(testid_variable("perfsink"))
        .with_variable(
            variable(
                "source", f'SHOW TAG VALUES FROM "perfsink" WITH KEY = "source" WHERE {TESTID}', "source", multi=True
            )
        )
    )
    for title, field in (
        ("Written", "written"),
        ("Retried", "retried"),
        ("Rejected", "rejected"),
        ("Dropped", "dropped"),
        ("Spooled", "spooled"),
        ("Queue depth", "queue_depth"),
    ):
        d = d.with_panel(
            single(
                title,
                "short",
                total(field),
                # A closed sink's last report is written after its points drained: its final state.
                desc=f"`{field}` at each sink's latest report, summed over sinks (a closed sink's last report is its final state)",
            )
        )
    d = (
        d.with_panel(ts("Points written per second", "short", rate("written"), desc="per sink (source@host)"))
        .with_panel(
            ts(
                "Queue depth",
                "short",
                InfluxQL(f'SELECT max("queue_depth") FROM "perfsink" WHERE {w} {per_sink}', alias=alias),
            )
        )
        .with_panel(ts("Retries per second", "short", rate("retried"), w=8))
        .with_panel(ts("Drops per second", "short", rate("dropped"), w=8))
        .with_panel(ts("Rejected per second", "short", rate("rejected"), w=8))
        .with_panel(ts("Spooled per second", "short", rate("spooled"), w=8))
        .with_panel(
            ts(
                "Write latency",
                "ms",
                InfluxQL(f'SELECT mean("write_latency_ms") FROM "perfsink" WHERE {w} {per_sink}', alias=alias),
                w=8,
            )
        )
        .with_panel(ts("Bytes sent per second", "Bps", rate("bytes_sent"), w=8))
        .with_panel(
            tbl(
                "Per sink",
                InfluxQL(
                    'SELECT last("accepted") AS "accepted", last("written") AS "written", last("retried") AS "retried", last("rejected") AS "rejected", '
                    'last("dropped") AS "dropped", last("spooled") AS "spooled", last("queue_depth") AS "queue", last("series") AS "series", '
                    f'last("aggregated") AS "samples aggregated" FROM "perfsink" WHERE {w} GROUP BY "host", "source", "instance"',
                    table=True,
                ),
            )
        )
    )
    return d


DASHBOARDS: dict[str, Callable[[], Any]] = {
    "k6.json": k6_raw,
    "k6-aggregated.json": k6_aggregated,
    "jmeter.json": jmeter,
    "workflows.json": workflows,
    "health.json": health,
}


def render(make: Callable[[], Any]) -> str:
    """One dashboard as the committed file's text (sorted keys, stable panel ids)."""
    model = make().build()
    model.schema_version = SCHEMA_VERSION
    data = json.loads(json.dumps(model, cls=JSONEncoder))
    for i, p in enumerate(data.get("panels") or [], start=1):
        p["id"] = i
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a committed file differs from a fresh build")
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    args = ap.parse_args(argv)
    stale = []
    args.out.mkdir(parents=True, exist_ok=True)
    for name, make in DASHBOARDS.items():
        text = render(make)
        path = args.out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"out of date (run {Path(__file__).name}): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
