//! The aggregated mode end to end (issue 8, item 4): `perfsink k6` with
//! `PERFSINK_MODE=aggregate|both`, the real k6 binary against this test's loopback target,
//! a real InfluxDB. k6 also writes its own record of the same run (`--out json=ref.json`,
//! passed through by `perfsink k6`), and every `<metric>_agg` point is checked against that
//! record's samples of its interval and series (`tests/common/aggregate.rs`): counts exact,
//! sums bit for bit, percentiles within the histogram's precision.
//!
//! The runs are short (5–11 s of load at a modest rate) so the file stays well under a
//! minute and a half on a 2-core machine.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::{Duration, Instant};

use common::aggregate::{
    agg_field_types, assert_no_mismatch, group, mismatches, nearest_rank, percentile_fields,
    raw_counts, read_agg_points, read_kinds, total_mismatches, union, worst_percentile_error,
    AggPoint, Key, Samples, TagSet,
};
use common::exact::{fsum, parse_exact};
use common::influx::quote_ident;
use common::k6::{
    assert_counts_and_sums, k6_args, k6_binary, perfsink_k6, read_reference, script_env,
    start_target, with, RefSample, Run, WorkDir,
};
use common::Influx;
use serde_json::json;

/// `PERFSINK_AGGREGATE_INTERVAL_MS` of every run.
const INTERVAL_MS: i64 = 1000;
/// The default percentiles and one more with decimals (field `p99.9`).
const PERCENTILES: &str = "50,90,95,99,99.9";

/// One `perfsink k6` run and k6's own record of it.
struct AggRun {
    run: Run,
    reference: BTreeMap<String, Vec<RefSample>>,
    kinds: BTreeMap<String, String>,
    groups: BTreeMap<Key, Samples>,
    /// Kept for the record files until the test ends (and kept on failure).
    _dir: WorkDir,
}

impl AggRun {
    fn samples(&self) -> u64 {
        self.reference.values().map(|v| v.len() as u64).sum()
    }

    /// The run's time range, whole intervals: (first start, last end).
    fn range(&self) -> (i64, i64) {
        let i = self.intervals();
        (i[0], i[i.len() - 1] + interval_ns())
    }

    /// The interval starts of the run, first to last, every one.
    fn intervals(&self) -> Vec<i64> {
        self.intervals_of(|_| true)
    }

    /// The intervals from the first request to the last, every one: the load runs without a
    /// pause, so each of them has requests (k6's first and last samples, `vus` and the like,
    /// may lie in an interval of their own).
    fn request_intervals(&self) -> Vec<i64> {
        self.intervals_of(|m| m == "http_reqs")
    }

    fn intervals_of(&self, metric: impl Fn(&str) -> bool) -> Vec<i64> {
        let starts: BTreeSet<i64> = self
            .groups
            .keys()
            .filter(|k| metric(&k.0))
            .map(|k| k.1)
            .collect();
        let (first, last) = (*starts.first().unwrap(), *starts.last().unwrap());
        (first..=last).step_by(interval_ns() as usize).collect()
    }
}

fn interval_ns() -> i64 {
    INTERVAL_MS * 1_000_000
}

/// Runs `perfsink k6` (`load` = (VUs, duration)) into `db` with `mode` (`raw` sets no
/// aggregation key) and `extra` settings; k6 writes `ref.json` too. Panics unless k6 and
/// perfsink succeed.
fn run_k6(
    influx_url: &str,
    target: &str,
    name: &str,
    db: &str,
    mode: &str,
    extra: &[(&str, &str)],
    (vus, duration): (&str, &str),
) -> AggRun {
    let k6 = k6_binary();
    let dir = WorkDir::new(name);
    let url = format!("{influx_url}/{db}");
    let interval = INTERVAL_MS.to_string();
    let env = script_env(target);
    let mut env = with(
        &env,
        &[
            ("INFLUXDB_URL", &url),
            ("PERFSINK_K6", &k6),
            // Paces the load: ~20 iterations/s per VU, ~35 samples each.
            ("SLEEP", "0.05"),
        ],
    );
    if mode != "raw" {
        env.extend_from_slice(&[
            ("PERFSINK_MODE", mode),
            ("PERFSINK_AGGREGATE_INTERVAL_MS", &interval),
            ("PERFSINK_PERCENTILES", PERCENTILES),
        ]);
    }
    env.extend_from_slice(extra);
    let mut args = vec!["run"];
    args.extend(k6_args(vus, duration, &[]));
    let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(75));
    assert!(
        run.status.success(),
        "{name}: k6 failed: {}\n{}",
        run.stdout,
        run.stderr
    );
    dir.assert_pipe_dir_removed();
    let reference = read_reference(&dir.path("ref.json"));
    let kinds = read_kinds(&dir.path("ref.json"));
    let groups = group(&reference, interval_ns());
    AggRun {
        run,
        reference,
        kinds,
        groups,
        _dir: dir,
    }
}

/// Names of the measurements of `db`.
fn measurements(influx: &Influx, db: &str) -> BTreeSet<String> {
    influx
        .query_rows(db, "SHOW MEASUREMENTS")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

/// The checks every aggregating run passes: the points of `instance` in `points` are exactly
/// those of k6's record (every key once, every field as the samples say, no `late`), totals
/// per metric and interval add up, every interval of the run has its points, the field types
/// are the schema's, and the report counts the samples aggregated and the points written.
fn assert_exact(what: &str, r: &AggRun, points: &[AggPoint]) {
    let percentiles = percentile_fields(PERCENTILES);
    let mut errors = mismatches(what, points, &r.groups, &r.kinds, &percentiles);
    errors.extend(total_mismatches(what, points, &r.groups, &r.kinds));
    assert_no_mismatch(&errors);
    eprintln!(
        "{what}: {} points exact against {} samples in {} intervals",
        points.len(),
        r.samples(),
        r.intervals().len()
    );

    // Every interval of the load has its points: none lost on both sides at once.
    let have: BTreeSet<i64> = points
        .iter()
        .filter(|p| p.metric == "http_reqs")
        .map(|p| p.start)
        .collect();
    let all = r.request_intervals();
    let missing: Vec<&i64> = all.iter().filter(|s| !have.contains(s)).collect();
    assert!(
        missing.is_empty(),
        "{what}: intervals without http_reqs_agg: {missing:?}"
    );

    // The kinds of the four custom metrics and the built-ins are k6's.
    for (m, kind) in [
        ("my_counter", "counter"),
        ("my_gauge", "gauge"),
        ("my_rate", "rate"),
        ("my_trend", "trend"),
        ("checks", "rate"),
        ("http_req_duration", "trend"),
    ] {
        assert_eq!(r.kinds.get(m).map(String::as_str), Some(kind), "{m}");
        assert!(
            points.iter().any(|p| p.metric == m),
            "{what}: no {m}_agg point"
        );
    }

    let report = r.run.report();
    assert_eq!(r.run.aggregated_samples(), r.samples(), "{what}: {report}");
    assert_eq!(r.run.reported("late"), 0, "{what}: {report}");
    assert_eq!(r.run.reported("dropped"), 0, "{what}: {}", r.run.report());
}

/// The raw points as InfluxDB groups them per interval and series (`GROUP BY time(1s), *`)
/// are the record's groups: the same keys, the same counts. (The test's grouping rules, checked
/// against InfluxDB's.)
fn assert_raw_grouping(influx: &Influx, db: &str, r: &AggRun) {
    for m in r.reference.keys() {
        let got = raw_counts(influx, db, m, r.range(), INTERVAL_MS);
        let want: BTreeMap<Key, u64> = r
            .groups
            .iter()
            .filter(|(k, _)| &k.0 == m)
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect();
        assert_eq!(got, want, "{m}: raw points per interval and series");
    }
}

/// The field types of the schema: `count` and `passes` integers, every other field a float;
/// no `late` field in any measurement.
fn assert_field_types(influx: &Influx, db: &str) {
    let types = agg_field_types(influx, db);
    assert!(!types.is_empty(), "no _agg measurement");
    for (m, fields) in &types {
        for (f, t) in fields {
            let want = if matches!(f.as_str(), "count" | "passes") {
                "integer"
            } else {
                "float"
            };
            assert_eq!(t, want, "{m}.{f}");
            assert_ne!(f, "late", "{m}: a late field in a run without late samples");
        }
    }
}

// ------------------------------------------------------------------------------------------

/// `PERFSINK_MODE=aggregate`: per metric, interval and series the `_agg` points say exactly
/// what k6's own record of the run says (p99.9 too), and no raw point is written.
#[test]
fn aggregate_mode_matches_k6s_record_per_interval_and_series() {
    let influx = Influx::start();
    let target = start_target();
    let db = "k6agg";
    // 30 my_trend samples an iteration: ~1500 an interval in one series, beyond the 512 the
    // engine keeps exactly, so its percentiles come from the histogram.
    let extra = [("TREND_SAMPLES", "30")];
    let r = run_k6(
        &influx.url(),
        &target,
        "agg",
        db,
        "aggregate",
        &extra,
        ("3", "9s"),
    );
    assert!(r.samples() > 5_000, "a real run: {} samples", r.samples());
    assert!(
        r.request_intervals().len() >= 9,
        "{:?}",
        r.request_intervals()
    );
    let points = read_agg_points(&influx, db);
    assert_exact("aggregate", &r, &points);
    let histogram_sized = r
        .groups
        .iter()
        .filter(|(k, v)| k.0 == "my_trend" && v.len() > 512)
        .count();
    assert!(
        histogram_sized >= 5,
        "{histogram_sized} my_trend intervals over 512 samples"
    );
    let (err, at) =
        worst_percentile_error(&points, &r.groups, &percentile_fields(PERCENTILES), 513);
    eprintln!(
        "largest percentile error over 512 samples: {:.4} % ({at})",
        err * 100.0
    );
    assert_field_types(&influx, db);

    // Lines written are the aggregated points.
    assert_eq!(
        r.run.reported("written"),
        points.len() as u64,
        "{}",
        r.run.report()
    );
    // One instance, the default: `<hostname>:<pid>` of the perfsink process.
    let instances: BTreeSet<&str> = points.iter().filter_map(AggPoint::instance).collect();
    assert_eq!(instances.len(), 1, "{instances:?}");
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let instance = instances.first().unwrap();
    let pid = instance.strip_prefix(&format!("{host}:"));
    assert!(
        pid.is_some_and(|p| p.parse::<u32>().is_ok()),
        "instance {instance:?} is not {host}:<pid>"
    );

    // No raw point: raw queries (`SELECT mean("value") FROM "http_req_duration"`) see nothing.
    let names = measurements(&influx, db);
    for m in r.reference.keys() {
        assert!(
            !names.contains(m),
            "raw measurement {m} in aggregate mode: {names:?}"
        );
        assert!(names.contains(&format!("{m}_agg")), "{m}_agg: {names:?}");
    }
    assert!(influx
        .query_rows(db, "SELECT mean(\"value\") FROM \"http_req_duration\"")
        .is_empty());

    // Several request names (the `name` tag) are series of their own.
    let names: BTreeSet<&str> = points
        .iter()
        .filter(|p| p.metric == "http_reqs")
        .filter_map(|p| p.tags.get("name").map(String::as_str))
        .collect();
    assert!(names.len() >= 4, "{names:?}");
}

/// `PERFSINK_MODE=both`: the raw points as in raw mode (count and sum per metric), and the
/// same exact aggregates beside them.
#[test]
fn both_mode_writes_the_raw_points_and_exact_aggregates() {
    let influx = Influx::start();
    let target = start_target();
    let db = "k6both";
    let r = run_k6(&influx.url(), &target, "both", db, "both", &[], ("2", "5s"));
    assert!(r.samples() > 2_000, "a real run: {} samples", r.samples());
    let points = read_agg_points(&influx, db);
    assert_exact("both", &r, &points);
    assert_field_types(&influx, db);
    assert_counts_and_sums(&influx, db, &r.reference);
    assert_raw_grouping(&influx, db, &r);
    assert_eq!(
        r.run.reported("written"),
        r.samples() + points.len() as u64,
        "raw lines and aggregated points: {}",
        r.run.report()
    );
    // Raw queries see raw points only.
    let raw = influx.query_rows(db, "SELECT count(\"value\") FROM \"http_req_duration\"");
    assert_eq!(
        raw[0][1].as_u64(),
        Some(r.reference["http_req_duration"].len() as u64)
    );
}

/// Two `perfsink k6` at once into one database, one with `PERFSINK_TAGS=instance=gen-a`, one
/// with the default instance: each instance's points are exactly its own record's, and per
/// metric and interval the counts over both instances add up to the union of both records,
/// the sums to its exact sum (within float addition).
#[test]
fn two_generators_at_once_sum_to_the_union_of_their_records() {
    let influx = Influx::start();
    let target = start_target();
    let db = "k6two";
    let url = influx.url();
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(|| {
            let tags = [("PERFSINK_TAGS", "instance=gen-a")];
            run_k6(&url, &target, "gen-a", db, "aggregate", &tags, ("2", "6s"))
        });
        let b = s.spawn(|| run_k6(&url, &target, "gen-b", db, "aggregate", &[], ("2", "6s")));
        (a.join().unwrap(), b.join().unwrap())
    });
    let points = read_agg_points(&influx, db);
    let instances: BTreeSet<&str> = points.iter().filter_map(AggPoint::instance).collect();
    assert_eq!(instances.len(), 2, "{instances:?}");
    assert!(instances.contains("gen-a"), "{instances:?}");
    let (of_a, of_b): (Vec<AggPoint>, Vec<AggPoint>) = points
        .iter()
        .cloned()
        .partition(|p| p.instance() == Some("gen-a"));
    assert_exact("gen-a", &a, &of_a);
    assert_exact("gen-b", &b, &of_b);

    // The runs overlap: most intervals hold points of both.
    let both: BTreeSet<i64> = a.request_intervals().into_iter().collect();
    let shared = b
        .request_intervals()
        .iter()
        .filter(|s| both.contains(s))
        .count();
    assert!(shared >= 4, "the runs overlap by {shared} intervals");

    // Over both instances: what `SELECT sum("count") ... GROUP BY time(1s)` gives.
    let all = union(&a.groups, &b.groups);
    let mut kinds = a.kinds.clone();
    kinds.extend(b.kinds.clone());
    assert_no_mismatch(&total_mismatches("union", &points, &all, &kinds));
    let q = format!(
        "SELECT sum(\"count\") FROM {} WHERE time > now() - 15m GROUP BY time(1s) fill(none)",
        quote_ident("http_reqs_agg")
    );
    let per_second: u64 = influx
        .query_rows(db, &q)
        .iter()
        .map(|r| r[1].as_u64().unwrap())
        .sum();
    assert_eq!(
        per_second,
        (a.reference["http_reqs"].len() + b.reference["http_reqs"].len()) as u64
    );
}

/// InfluxDB stopped for 5 s in the middle of an 11 s run, then back: every interval of the
/// run arrives, exact.
#[test]
fn influxdb_stopped_for_5s_mid_run_loses_no_interval() {
    let mut influx = Influx::start();
    let target = start_target();
    let db = "k6aggoutage";
    let url = influx.url();
    let extra = [
        ("PERFSINK_RETRY_MAX_MS", "1000"),
        ("PERFSINK_CLOSE_TIMEOUT_MS", "30000"),
    ];
    let (r, outage) = thread::scope(|s| {
        let influx = &mut influx;
        let outage = s.spawn(move || {
            thread::sleep(Duration::from_secs(4));
            let stopped = Instant::now();
            influx.stop();
            thread::sleep(Duration::from_secs(5));
            influx.start_again();
            stopped.elapsed()
        });
        let r = run_k6(
            &url,
            &target,
            "outage",
            db,
            "aggregate",
            &extra,
            ("2", "11s"),
        );
        (r, outage.join().unwrap())
    });
    assert!(
        outage >= Duration::from_secs(5),
        "InfluxDB was down {outage:?}"
    );
    assert!(
        r.run.reported("retried requests") > 0,
        "the outage was noticed: {}",
        r.run.report()
    );
    let points = read_agg_points(&influx, db);
    assert_exact("outage", &r, &points);
    assert_eq!(r.run.reported("written"), points.len() as u64);
}

// ------------------------------------------------------------------------------------------
// The oracles themselves.

/// `fsum` is Python's `math.fsum`: the cases of CPython's `test_fsum`.
#[test]
fn fsum_is_correctly_rounded() {
    let p = |e: i32| 2f64.powi(e);
    let cases: Vec<(Vec<f64>, f64)> = vec![
        (vec![], 0.0),
        (vec![0.1; 10], 1.0),
        (vec![1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50], 1e-100),
        (vec![p(53), -0.5, -p(-54)], p(53) - 1.0),
        (vec![p(53), 1.0, p(-100)], p(53) + 2.0),
        (vec![p(53) + 10.0, 1.0, p(-100)], p(53) + 12.0),
        (vec![p(53) - 4.0, 0.5, p(-54)], p(53) - 3.0),
        (vec![1e16, 1.0, 1e-16], 10000000000000002.0),
        (
            vec![1e16 - 2.0, 1.0 - p(-53), -(1e16 - 2.0), -(1.0 - p(-53))],
            0.0,
        ),
        // 0x1.df11f45f4e61ap+2 and -0x1.62a2af1bd3624p-1.
        (
            (1..=1000).map(|n| 1.0 / n as f64).collect(),
            f64::from_bits(0x401df11f45f4e61a),
        ),
        (
            (1..=1000)
                .map(|n| if n % 2 == 0 { 1.0 } else { -1.0 } / n as f64)
                .collect(),
            -f64::from_bits(0x3fe62a2af1bd3624),
        ),
    ];
    for (values, want) in cases {
        let got = fsum(values.iter().copied());
        assert_eq!(
            got.to_bits(),
            want.to_bits(),
            "{values:?}: {got:?} != {want:?}"
        );
        // Whatever the order.
        let got = fsum(values.iter().rev().copied());
        assert_eq!(got.to_bits(), want.to_bits(), "reversed {values:?}");
    }
}

/// `parse_exact` reads every float as `str::parse` does (serde_json's default read 821 of the
/// 10 000 17-digit floats below one ulp off), integers as integers, strings untouched.
#[test]
fn parse_exact_reads_numbers_exactly() {
    let v = parse_exact(
        r#"{"a":[0.30000000000000004,123.45678901234567,-2.5e-7,7,-3,18446744073709551615],"s":"x-1 \"2\" 3.5","n":null,"t":true}"#,
    );
    let a = v["a"].as_array().unwrap();
    assert_eq!(a[0].as_f64().unwrap().to_bits(), (0.1f64 + 0.2).to_bits());
    assert_eq!(
        a[1].as_f64().unwrap().to_bits(),
        "123.45678901234567".parse::<f64>().unwrap().to_bits()
    );
    assert_eq!(a[2].as_f64(), Some(-2.5e-7));
    assert_eq!(a[3].as_u64(), Some(7));
    assert_eq!(a[4].as_i64(), Some(-3));
    assert_eq!(a[5].as_u64(), Some(u64::MAX));
    assert_eq!(v["s"], "x-1 \"2\" 3.5");
    assert!(v["n"].is_null() && v["t"] == true);
    // Many 17-digit floats, each read back bit for bit.
    let mut x = 0x3ff0_0000_0000_0001u64;
    for _ in 0..10_000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let f = f64::from_bits((x >> 12) | 0x4000_0000_0000_0000) * 1e3;
        let v = parse_exact(&format!("[{f:?}]"));
        assert_eq!(v[0].as_f64().unwrap().to_bits(), f.to_bits(), "{f:?}");
    }
}

/// Nearest rank: the smallest value with at least p % of the values at or below it.
#[test]
fn nearest_rank_percentiles() {
    let v: Vec<f64> = (1..=10).map(f64::from).collect();
    assert_eq!(nearest_rank(&v, 50_000), 5.0);
    assert_eq!(nearest_rank(&v, 90_000), 9.0);
    assert_eq!(nearest_rank(&v, 91_000), 10.0);
    assert_eq!(nearest_rank(&v, 99_900), 10.0);
    assert_eq!(nearest_rank(&v, 1), 1.0);
    assert_eq!(nearest_rank(&[3.0], 50_000), 3.0);
    assert_eq!(
        percentile_fields("50,99.9,99.99"),
        vec![
            ("p50".to_string(), 50_000),
            ("p99.9".to_string(), 99_900),
            ("p99.99".to_string(), 99_990)
        ]
    );
}

/// The checker fails on each kind of difference: a wrong count, a sum one ulp off, a
/// percentile outside the precision, a `late` field, a missing, an extra or a duplicated
/// point, a point without `instance`, totals that do not add up.
#[test]
fn the_checker_catches_every_kind_of_difference() {
    let pct = percentile_fields(PERCENTILES);
    let tags = |v: &str| -> TagSet { [("name".to_string(), v.to_string())].into() };
    let mut groups: BTreeMap<Key, Samples> = BTreeMap::new();
    let start = 1_700_000_000 * interval_ns();
    let trend: Samples = (0..1000)
        .map(|i| (start + i, 0.1 * (i % 97) as f64 + 0.3))
        .collect();
    groups.insert(("t".into(), start, tags("a")), trend.clone());
    groups.insert(
        ("c".into(), start, tags("a")),
        vec![(start, 0.1), (start + 1, 0.2)],
    );
    groups.insert(
        ("g".into(), start, tags("a")),
        vec![(start + 5, 3.0), (start + 5, 4.0), (start, 9.0)],
    );
    groups.insert(
        ("r".into(), start, tags("a")),
        vec![(start, 1.0), (start, 0.0), (start, 1.0)],
    );
    let kinds: BTreeMap<String, String> = [
        ("t", "trend"),
        ("c", "counter"),
        ("g", "gauge"),
        ("r", "rate"),
    ]
    .iter()
    .map(|(m, k)| (m.to_string(), k.to_string()))
    .collect();
    let point = |m: &str, fields: &[(&str, serde_json::Value)]| AggPoint {
        metric: m.into(),
        start,
        tags: [
            ("name".into(), "a".into()),
            ("instance".into(), "h:1".into()),
        ]
        .into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    let values: Vec<f64> = trend.iter().map(|s| s.1).collect();
    let mut sorted = values.clone();
    sorted.sort_by(f64::total_cmp);
    let sum = fsum(values.iter().copied());
    let mut t = point(
        "t",
        &[
            ("count", json!(1000)),
            ("sum", json!(sum)),
            ("min", json!(0.3)),
            ("max", json!(sorted[999])),
            ("mean", json!(sum / 1000.0)),
        ],
    );
    for (f, milli) in &pct {
        // Within the precision, but not the exact value.
        let v = nearest_rank(&sorted, *milli) * 1.0009;
        t.fields.insert(f.clone(), json!(v.min(sorted[999])));
    }
    let good = vec![
        t,
        point(
            "c",
            &[("count", json!(2)), ("sum", json!(fsum([0.1, 0.2])))],
        ),
        point(
            "g",
            &[
                ("count", json!(3)),
                ("last", json!(4.0)),
                ("min", json!(3.0)),
                ("max", json!(9.0)),
            ],
        ),
        point(
            "r",
            &[
                ("count", json!(3)),
                ("passes", json!(2)),
                ("rate", json!(2.0 / 3.0)),
            ],
        ),
    ];
    let check = |points: &[AggPoint]| {
        let mut e = mismatches("t", points, &groups, &kinds, &pct);
        e.extend(total_mismatches("t", points, &groups, &kinds));
        e
    };
    assert_eq!(check(&good), Vec::<String>::new());
    type Edit = Box<dyn Fn(&mut Vec<AggPoint>)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "count",
            Box::new(|p| {
                p[0].fields.insert("count".into(), json!(999));
            }),
        ),
        (
            "sum ulp",
            Box::new(|p| {
                let s = p[1].fields["sum"].as_f64().unwrap();
                p[1].fields
                    .insert("sum".into(), json!(f64::from_bits(s.to_bits() + 1)));
            }),
        ),
        (
            "p99 0.2 %",
            Box::new(|p| {
                let v = p[0].fields["p99"].as_f64().unwrap();
                p[0].fields.insert("p99".into(), json!(v * 0.998));
            }),
        ),
        (
            "late",
            Box::new(|p| {
                p[1].fields.insert("late".into(), json!(1));
            }),
        ),
        (
            "gauge last",
            Box::new(|p| {
                p[2].fields.insert("last".into(), json!(3.0));
            }),
        ),
        (
            "passes",
            Box::new(|p| {
                p[3].fields.insert("passes".into(), json!(3));
            }),
        ),
        (
            "missing",
            Box::new(|p| {
                p.remove(1);
            }),
        ),
        (
            "extra",
            Box::new(|p| {
                let mut x = p[1].clone();
                x.start += interval_ns();
                p.push(x);
            }),
        ),
        (
            "twice",
            Box::new(|p| {
                let mut x = p[1].clone();
                x.tags.insert("instance".into(), "h:2".into());
                p.push(x);
            }),
        ),
        (
            "no instance",
            Box::new(|p| {
                p[1].tags.remove("instance");
            }),
        ),
    ];
    for (what, edit) in edits {
        let mut points = good.clone();
        edit(&mut points);
        assert!(!check(&points).is_empty(), "{what} not caught");
    }
}
