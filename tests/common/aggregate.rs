//! The aggregated schema (`PERFSINK_MODE=aggregate|both`, `src/aggregate/`) against k6's
//! own `--out json` record of the same run:
//!
//! * k6's samples grouped as the engine groups them ([`group`]): per metric, per interval
//!   (`start = ts - ts mod interval`, k6's own sample time) and per series tag set — the tags
//!   k6's raw schema writes as tags ([`written_tags`]: not `url`, a field; not empty values);
//! * the `<metric>_agg` points InfluxDB holds ([`read_agg_points`], numbers read exactly);
//! * what each point must say given its samples ([`point_mismatches`]): `count`, `passes`
//!   exact; `sum` the correctly rounded sum ([`fsum`]), bit for bit; `min`, `max`, `last`
//!   exact; `mean` = sum/count; percentiles within the histogram's stated precision of the
//!   nearest-rank percentile; no other field (no `late` in a run without late samples);
//! * per metric and interval over all tag sets ([`total_mismatches`]): counts add up exactly,
//!   sums to within float addition.
//!
//! Mismatches are collected, not asserted one by one, so that a failure lists every
//! metric and interval that differs ([`assert_no_mismatch`]).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::Value;

use super::exact::{fsum, parse_exact};
use super::influx::quote_ident;
use super::k6::RefSample;
use super::Influx;

/// A series' tags (tag key → value).
pub type TagSet = BTreeMap<String, String>;

/// Samples of one group: (k6's time in ns, value), in the record's order.
pub type Samples = Vec<(i64, f64)>;

/// One interval of one series: the metric (without `_agg`), the interval's start (ns) and the
/// series' tags (without `instance`).
pub type Key = (String, i64, TagSet);

/// k6's `--out json` record: metric → its type (`counter`, `gauge`, `trend`, `rate`), from
/// the `"type":"Metric"` lines.
pub fn read_kinds(path: &Path) -> BTreeMap<String, String> {
    let text = fs::read_to_string(path).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "Metric")
        .map(|v| {
            let kind = v["data"]["type"].as_str().unwrap().to_string();
            (v["metric"].as_str().unwrap().to_string(), kind)
        })
        .collect()
}

/// The start of the interval holding `ts`: aligned to multiples of the interval since the
/// epoch.
pub fn interval_start(ts: i64, interval_ns: i64) -> i64 {
    ts - ts.rem_euclid(interval_ns)
}

/// The tags k6's raw schema writes for a sample with the default `tagsAsFields`
/// (`vu:int,iter:int,url`): `url` is a field, empty values are omitted (`vu` and `iter` are
/// sample metadata, not tags, in k6 v1.1).
pub fn written_tags(s: &RefSample) -> TagSet {
    s.tags
        .iter()
        .filter(|(k, v)| !matches!(k.as_str(), "url" | "vu" | "iter") && !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// k6's samples per metric, interval and series tag set.
pub fn group(
    reference: &BTreeMap<String, Vec<RefSample>>,
    interval_ns: i64,
) -> BTreeMap<Key, Samples> {
    let mut out: BTreeMap<Key, Samples> = BTreeMap::new();
    for (m, samples) in reference {
        for s in samples {
            let key = (
                m.clone(),
                interval_start(s.time_ns, interval_ns),
                written_tags(s),
            );
            out.entry(key).or_default().push((s.time_ns, s.value));
        }
    }
    out
}

/// Groups merged: the samples of both, `a`'s first (two generators' records as one).
pub fn union(a: &BTreeMap<Key, Samples>, b: &BTreeMap<Key, Samples>) -> BTreeMap<Key, Samples> {
    let mut out = a.clone();
    for (k, v) in b {
        out.entry(k.clone()).or_default().extend_from_slice(v);
    }
    out
}

/// One aggregated point as InfluxDB holds it.
#[derive(Debug, Clone)]
pub struct AggPoint {
    /// The metric: the measurement without `_agg`.
    pub metric: String,
    pub start: i64,
    /// Every tag, `instance` included.
    pub tags: TagSet,
    /// Non-null fields, numbers exact.
    pub fields: BTreeMap<String, Value>,
}

impl AggPoint {
    pub fn instance(&self) -> Option<&str> {
        self.tags.get("instance").map(String::as_str)
    }

    /// The point's key: its tags without `instance`.
    pub fn key(&self) -> Key {
        let mut tags = self.tags.clone();
        tags.remove("instance");
        (self.metric.clone(), self.start, tags)
    }

    fn int(&self, f: &str) -> Option<u64> {
        self.fields.get(f).and_then(Value::as_u64)
    }

    fn float(&self, f: &str) -> Option<f64> {
        self.fields.get(f).and_then(Value::as_f64)
    }
}

/// Runs `q` and returns its first statement's series, every number read exactly.
pub fn query_exact(influx: &Influx, db: &str, q: &str) -> Vec<Value> {
    let resp = influx.query_http("GET", db, q, influx.credentials());
    assert_eq!(resp.status, 200, "{q}: {}", resp.text());
    let v = parse_exact(&resp.text());
    let first = &v["results"][0];
    if let Some(err) = first.get("error") {
        panic!("query {q:?} failed: {err}");
    }
    first["series"].as_array().cloned().unwrap_or_default()
}

/// Every point of every `*_agg` measurement of `db`.
pub fn read_agg_points(influx: &Influx, db: &str) -> Vec<AggPoint> {
    let mut out = Vec::new();
    for s in query_exact(influx, db, "SELECT * FROM /_agg$/ GROUP BY *") {
        let name = s["name"].as_str().unwrap();
        let metric = name.strip_suffix("_agg").unwrap().to_string();
        let tags: TagSet = s["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    // GROUP BY * lists the measurement's other tag keys with "" values.
                    .filter(|(_, v)| !v.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let cols: Vec<&str> = s["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for row in s["values"].as_array().unwrap() {
            let row = row.as_array().unwrap();
            let mut fields = BTreeMap::new();
            let mut start = None;
            for (c, v) in cols.iter().zip(row) {
                match (*c, v) {
                    ("time", t) => start = t.as_i64(),
                    (_, Value::Null) => {}
                    (c, v) => {
                        fields.insert(c.to_string(), v.clone());
                    }
                }
            }
            out.push(AggPoint {
                metric: metric.clone(),
                start: start.unwrap(),
                tags: tags.clone(),
                fields,
            });
        }
    }
    out
}

/// Per series tag set (without `instance`) and interval, the number of raw points of metric
/// `m` from `from` to `to` (ns), as InfluxDB itself groups them (`GROUP BY time(interval), *`).
pub fn raw_counts(
    influx: &Influx,
    db: &str,
    m: &str,
    (from, to): (i64, i64),
    interval_ms: i64,
) -> BTreeMap<Key, u64> {
    let q = format!(
        "SELECT count(\"value\") FROM {} WHERE time >= {from} AND time < {to} \
         GROUP BY time({interval_ms}ms), * fill(none)",
        quote_ident(m)
    );
    let mut out = BTreeMap::new();
    for s in query_exact(influx, db, &q) {
        let tags: TagSet = s["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .filter(|(k, v)| !v.is_empty() && k != "instance")
                    .collect()
            })
            .unwrap_or_default();
        for row in s["values"].as_array().unwrap() {
            let key = (m.to_string(), row[0].as_i64().unwrap(), tags.clone());
            *out.entry(key).or_default() += row[1].as_u64().unwrap();
        }
    }
    out
}

/// Field key → type (`integer`, `float`, ...) of every `*_agg` measurement.
pub fn agg_field_types(influx: &Influx, db: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in query_exact(influx, db, "SHOW FIELD KEYS FROM /_agg$/") {
        let m = s["name"].as_str().unwrap().to_string();
        for r in s["values"].as_array().unwrap() {
            out.entry(m.clone()).or_default().insert(
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().to_string(),
            );
        }
    }
    out
}

/// `PERFSINK_PERCENTILES` as the test configures it: (field, p in thousandths of a percent).
pub fn percentile_fields(spec: &str) -> Vec<(String, u64)> {
    spec.split(',')
        .map(|p| {
            let (int, frac) = p.split_once('.').unwrap_or((p, ""));
            let frac = format!("{frac:0<3}");
            let milli = int.parse::<u64>().unwrap() * 1000 + frac.parse::<u64>().unwrap();
            (format!("p{p}"), milli)
        })
        .collect()
}

/// The nearest-rank percentile of `sorted` (ascending): the smallest value with at least
/// p % of the values at or below it, rank = ceil(p/100 · n) computed in integers.
pub fn nearest_rank(sorted: &[f64], milli: u64) -> f64 {
    let n = sorted.len() as u64;
    let rank = (milli * n).div_ceil(100_000).max(1);
    sorted[(rank - 1) as usize]
}

/// The fields a point of a metric kind carries (percentiles for trends).
pub fn expected_fields(kind: &str, percentiles: &[(String, u64)]) -> Vec<String> {
    let base: &[&str] = match kind {
        "trend" => &["count", "sum", "min", "max", "mean"],
        "counter" => &["count", "sum"],
        "rate" => &["count", "passes", "rate"],
        "gauge" => &["count", "last", "min", "max"],
        other => panic!("unknown metric kind {other:?}"),
    };
    let mut f: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    if kind == "trend" {
        f.extend(percentiles.iter().map(|(name, _)| name.clone()));
    }
    f.sort();
    f
}

/// The differences between a point's fields and what its samples say, one line each.
pub fn point_mismatches(
    kind: &str,
    samples: &[(i64, f64)],
    p: &AggPoint,
    percentiles: &[(String, u64)],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut bad = |what: &str, want: String, got: String| {
        out.push(format!("{what}: expected {want}, got {got}"));
    };
    let names: Vec<String> = p.fields.keys().cloned().collect();
    let want_names = expected_fields(kind, percentiles);
    if names != want_names {
        bad("fields", format!("{want_names:?}"), format!("{names:?}"));
    }
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let count = values.len() as u64;
    if p.int("count") != Some(count) {
        bad(
            "count",
            count.to_string(),
            format!("{:?}", p.fields.get("count")),
        );
    }
    let sum = fsum(values.iter().copied());
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut exact = |f: &str, want: f64| {
        let got = p.float(f);
        if got.map(f64::to_bits) != Some(want.to_bits()) {
            bad(f, format!("{want:?}"), format!("{got:?}"));
        }
    };
    match kind {
        "trend" => {
            exact("sum", sum);
            exact("min", min);
            exact("max", max);
            exact("mean", sum / count as f64);
        }
        "counter" => exact("sum", sum),
        "gauge" => {
            exact("min", min);
            exact("max", max);
            // The value with the latest time; of equal times, the later in the record.
            let mut last = (i64::MIN, 0.0);
            for &(t, v) in samples {
                if t >= last.0 {
                    last = (t, v);
                }
            }
            exact("last", last.1);
        }
        "rate" => {
            let passes = values.iter().filter(|v| **v != 0.0).count() as u64;
            exact("rate", passes as f64 / count as f64);
            if p.int("passes") != Some(passes) {
                bad(
                    "passes",
                    passes.to_string(),
                    format!("{:?}", p.fields.get("passes")),
                );
            }
        }
        _ => {}
    }
    if kind == "trend" {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for (field, milli) in percentiles {
            let want = nearest_rank(&sorted, *milli);
            let got = p.float(field);
            // The histogram's stated precision: 0.1 %, or 0.001 units for small values;
            // clamped into [min, max].
            let tolerance = (want.abs() * 1e-3).max(1e-3);
            let ok = got.is_some_and(|g| (g - want).abs() <= tolerance && g >= min && g <= max);
            if !ok {
                out.push(format!(
                    "{field}: expected {want:?} ± {tolerance:.4} within [{min:?}, {max:?}] \
                     ({count} samples), got {got:?}"
                ));
            }
        }
    }
    out
}

/// The largest relative difference between a trend point's percentile and the nearest-rank
/// percentile of its samples (for groups of at least `min_samples`), with where it is.
pub fn worst_percentile_error(
    points: &[AggPoint],
    groups: &BTreeMap<Key, Samples>,
    percentiles: &[(String, u64)],
    min_samples: usize,
) -> (f64, String) {
    let mut worst = (0.0, String::new());
    for p in points {
        let Some(samples) = groups.get(&p.key()).filter(|s| s.len() >= min_samples) else {
            continue;
        };
        let mut sorted: Vec<f64> = samples.iter().map(|s| s.1).collect();
        sorted.sort_by(f64::total_cmp);
        for (field, milli) in percentiles {
            let (Some(got), want) = (p.float(field), nearest_rank(&sorted, *milli)) else {
                continue;
            };
            let err = (got - want).abs() / want.abs().max(1e-3);
            if err > worst.0 {
                worst = (
                    err,
                    format!(
                        "{} @{} {field} of {} samples: {want} vs {got}",
                        p.metric,
                        p.start,
                        sorted.len()
                    ),
                );
            }
        }
    }
    worst
}

/// Every point against its group of samples, and every group against its point: each key
/// once in `points`, none missing, none extra. `what` prefixes every line.
pub fn mismatches(
    what: &str,
    points: &[AggPoint],
    groups: &BTreeMap<Key, Samples>,
    kinds: &BTreeMap<String, String>,
    percentiles: &[(String, u64)],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut by_key: BTreeMap<Key, &AggPoint> = BTreeMap::new();
    for p in points {
        if p.instance().is_none_or(str::is_empty) {
            out.push(format!("{what}: no instance tag on {p:?}"));
        }
        if let Some(old) = by_key.insert(p.key(), p) {
            out.push(format!(
                "{what}: two points for one key:\n  {old:?}\n  {p:?}"
            ));
        }
    }
    for (key, samples) in groups {
        let (m, start, tags) = key;
        let at = format!("{what} {m} @{start} {tags:?}");
        let Some(p) = by_key.remove(key) else {
            out.push(format!("{at}: missing ({} samples)", samples.len()));
            continue;
        };
        let kind = kinds.get(m).map_or("trend", String::as_str);
        out.extend(
            point_mismatches(kind, samples, p, percentiles)
                .into_iter()
                .map(|e| format!("{at} ({kind}): {e}")),
        );
    }
    for (key, p) in by_key {
        out.push(format!("{what}: unexpected point {key:?}: {:?}", p.fields));
    }
    out
}

/// Per metric and interval, over all tag sets and instances: the points' `count`s add up to
/// the samples' number exactly, their `sum`s (counters and trends; each correctly rounded,
/// then added as InfluxDB's `sum()` would) to the exact sum within 1e-12 relative, and the
/// rates' `passes` to the non-zero samples.
pub fn total_mismatches(
    what: &str,
    points: &[AggPoint],
    groups: &BTreeMap<Key, Samples>,
    kinds: &BTreeMap<String, String>,
) -> Vec<String> {
    type Totals = (u64, Vec<f64>, u64);
    let mut got: BTreeMap<(String, i64), Totals> = BTreeMap::new();
    for p in points {
        let t = got.entry((p.metric.clone(), p.start)).or_default();
        t.0 += p.int("count").unwrap_or(0);
        t.1.extend(p.float("sum"));
        t.2 += p.int("passes").unwrap_or(0);
    }
    let mut want: BTreeMap<(String, i64), (u64, Vec<f64>, u64)> = BTreeMap::new();
    for ((m, start, _), samples) in groups {
        let t = want.entry((m.clone(), *start)).or_default();
        t.0 += samples.len() as u64;
        t.1.extend(samples.iter().map(|s| s.1));
        t.2 += samples.iter().filter(|s| s.1 != 0.0).count() as u64;
    }
    let mut out = Vec::new();
    for (key, w) in &want {
        let kind = kinds.get(&key.0).map_or("trend", String::as_str);
        let g = got.get(key).cloned().unwrap_or_default();
        if g.0 != w.0 {
            out.push(format!(
                "{what} {key:?}: count over all series: expected {}, got {}",
                w.0, g.0
            ));
        }
        if matches!(kind, "trend" | "counter") {
            let (ws, gs) = (fsum(w.1.iter().copied()), g.1.iter().sum::<f64>());
            if (ws - gs).abs() > 1e-12 * ws.abs().max(1e-300) {
                out.push(format!(
                    "{what} {key:?}: sum over all series: expected {ws:?}, got {gs:?}"
                ));
            }
        }
        if kind == "rate" && g.2 != w.2 {
            out.push(format!(
                "{what} {key:?}: passes over all series: expected {}, got {}",
                w.2, g.2
            ));
        }
    }
    for key in got.keys().filter(|k| !want.contains_key(*k)) {
        out.push(format!("{what} {key:?}: points without samples"));
    }
    out
}

/// Panics listing the first mismatches (and how many there are) unless there is none.
pub fn assert_no_mismatch(mismatches: &[String]) {
    if mismatches.is_empty() {
        return;
    }
    let shown: Vec<&String> = mismatches.iter().take(25).collect();
    panic!(
        "{} mismatches between InfluxDB's aggregated points and k6's record; the first:\n{}",
        mismatches.len(),
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
}
