//! The aggregated mode through the library API into a real InfluxDB 1.6: the schema
//! (`<measurement>_agg`, tags + `instance`, fields per kind, interval-start timestamps), exact
//! count/sum/min/max, nearest-rank percentiles, late samples, `both`, and `record` staying raw.
//! (k6 end to end: tests/k6_aggregate.rs.)

mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use common::Influx;
use perfsink::{Field, FieldValue, MetricKind, Point, Sink, Tag};
use serde_json::Value;

/// 2023-11-14T22:13:20Z, a multiple of every interval used here.
const T: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;

const FAST: &str = "PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_CLOSE_TIMEOUT_MS=5000";

fn influx() -> &'static Influx {
    static INFLUX: OnceLock<Influx> = OnceLock::new();
    INFLUX.get_or_init(Influx::start)
}

fn open(db: &str, extra: &str) -> Sink {
    let kv = format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};{FAST};{extra}",
        influx().url()
    );
    Sink::from_kv(&kv).unwrap_or_else(|e| panic!("{kv}: {e}"))
}

/// Every row of `SELECT * FROM m` as column → value.
fn rows(db: &str, measurement: &str) -> Vec<BTreeMap<String, Value>> {
    let q = format!("SELECT * FROM {}", common::influx::quote_ident(measurement));
    common::influx::series_rows(&influx().query_series(db, &q))
}

fn f(row: &BTreeMap<String, Value>, k: &str) -> f64 {
    row[k].as_f64().unwrap_or_else(|| panic!("{k} in {row:?}"))
}

#[test]
fn each_kind_has_its_statistics_at_the_interval_start() {
    let db = "agg_kinds";
    let sink = open(db, "PERFSINK_MODE=aggregate;PERFSINK_PERCENTILES=50,99.9");
    let tags = [Tag::new("name", "a b,c=\"d\"\\x")];
    let trend = sink.register_series("lat", &tags, "value").unwrap();
    let counter = sink.register_series("reqs", &tags, "value").unwrap();
    let rate = sink.register_series("ok", &tags, "value").unwrap();
    let gauge = sink.register_series("vus", &tags, "value").unwrap();
    sink.set_series_kind(counter, MetricKind::Counter).unwrap();
    sink.set_series_kind(rate, MetricKind::Rate).unwrap();
    sink.set_series_kind(gauge, MetricKind::Gauge).unwrap();
    let mut points = Vec::new();
    // Two intervals; 0.1 ten times sums to exactly 1 only when summed exactly.
    for i in 0..10 {
        let ts = T + i * 10_000_000;
        points.push(Point::new(trend, 0.1, ts));
        points.push(Point::new(counter, 0.1, ts));
        points.push(Point::new(rate, (i % 4 != 0) as i32 as f64, ts));
        points.push(Point::new(gauge, i as f64, T + SEC - 1 - i));
    }
    points.push(Point::new(trend, 7.5, T + SEC + 5));
    points.push(Point::new(trend, -2.0, T + 2 * SEC - 1));
    let submitted = sink.submit(&points);
    assert_eq!(submitted.accepted, points.len());
    let report = sink.close();
    assert_eq!(report.stats.aggregated, points.len() as u64);
    assert_eq!(report.stats.written, 5, "{report}");
    assert_eq!(report.undelivered(), 0);

    let lat = rows(db, "lat_agg");
    assert_eq!(lat.len(), 2);
    assert_eq!(lat[0]["time"].as_i64(), Some(T));
    assert_eq!(lat[0]["count"].as_i64(), Some(10));
    assert_eq!(f(&lat[0], "sum"), 1.0);
    assert_eq!(f(&lat[0], "mean"), 0.1);
    assert_eq!((f(&lat[0], "min"), f(&lat[0], "max")), (0.1, 0.1));
    assert_eq!((f(&lat[0], "p50"), f(&lat[0], "p99.9")), (0.1, 0.1));
    assert_eq!(lat[0]["name"].as_str(), Some("a b,c=\"d\"\\x"));
    let instance = lat[0]["instance"].as_str().unwrap().to_string();
    assert!(
        instance.contains(&format!(":{}", std::process::id())),
        "{instance}"
    );
    assert_eq!(lat[1]["time"].as_i64(), Some(T + SEC));
    assert_eq!(
        (f(&lat[1], "sum"), f(&lat[1], "min"), f(&lat[1], "max")),
        (5.5, -2.0, 7.5)
    );
    // Nearest rank of 50 % of two samples is the first.
    assert_eq!((f(&lat[1], "p50"), f(&lat[1], "p99.9")), (-2.0, 7.5));

    let reqs = rows(db, "reqs_agg");
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        (reqs[0]["count"].as_i64(), f(&reqs[0], "sum")),
        (Some(10), 1.0)
    );
    assert!(reqs[0].get("p50").is_none_or(Value::is_null));
    let ok = rows(db, "ok_agg");
    assert_eq!(
        (ok[0]["count"].as_i64(), ok[0]["passes"].as_i64()),
        (Some(10), Some(7))
    );
    assert_eq!(f(&ok[0], "rate"), 0.7);
    let vus = rows(db, "vus_agg");
    // The latest timestamp wins, not the last submitted.
    assert_eq!(
        (f(&vus[0], "last"), f(&vus[0], "min"), f(&vus[0], "max")),
        (0.0, 0.0, 9.0)
    );
    // Aggregate only: no raw points.
    assert_eq!(influx().count(db, "lat"), 0);
}

#[test]
fn a_late_sample_counts_into_the_next_interval_and_says_so() {
    let db = "agg_late";
    let sink = open(db, "PERFSINK_MODE=aggregate;PERFSINK_AGGREGATE_GRACE_MS=0");
    let id = sink.register_series("lat", &[], "value").unwrap();
    let now = perfsink::model::now_ns();
    let old = now - 10 * SEC;
    sink.submit(&[Point::new(id, 1.0, old)])
        .into_result()
        .unwrap();
    // Due at once (no grace): the flush writes it.
    sink.flush(Duration::from_secs(20)).unwrap();
    sink.submit(&[Point::new(id, 2.0, old), Point::new(id, 3.0, now)])
        .into_result()
        .unwrap();
    let report = sink.close();
    assert_eq!(report.stats.aggregated_late, 1, "{report}");
    let lat = rows(db, "lat_agg");
    assert_eq!(lat.len(), 3, "{lat:?}");
    assert_eq!(lat[0]["count"].as_i64(), Some(1));
    assert!(lat[0].get("late").is_none_or(Value::is_null));
    // The late sample went to the interval right after the one already written.
    let start = old - old.rem_euclid(SEC);
    assert_eq!(lat[1]["time"].as_i64(), Some(start + SEC));
    assert_eq!(
        (lat[1]["count"].as_i64(), lat[1]["late"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(f(&lat[1], "sum"), 2.0);
    // The current interval is its own point.
    assert_eq!(lat[2]["time"].as_i64(), Some(now - now.rem_euclid(SEC)));
    assert_eq!(f(&lat[2], "sum"), 3.0);
}

#[test]
fn both_writes_raw_lines_and_aggregates_while_record_stays_raw() {
    let db = "agg_both";
    let sink = open(db, "PERFSINK_MODE=both;PERFSINK_TAGS=instance=gen1");
    let id = sink
        .register_series("lat", &[Tag::new("k", "v")], "value")
        .unwrap();
    let points: Vec<Point> = (0..100).map(|i| Point::new(id, i as f64, T + i)).collect();
    sink.submit(&points).into_result().unwrap();
    sink.record("event", &[], &[Field::new("n", FieldValue::Int(1))], T)
        .unwrap();
    let report = sink.close();
    assert_eq!(report.stats.aggregated, 100);
    assert_eq!(report.stats.written, 100 + 1 + 1, "{report}");
    assert_eq!(influx().count(db, "lat"), 100);
    assert_eq!(influx().count(db, "event"), 1);
    let lat = rows(db, "lat_agg");
    assert_eq!(lat.len(), 1);
    assert_eq!(lat[0]["instance"].as_str(), Some("gen1"));
    assert_eq!(lat[0]["count"].as_i64(), Some(100));
    assert_eq!(f(&lat[0], "sum"), 4950.0);
    assert_eq!(
        (f(&lat[0], "p50"), f(&lat[0], "p90"), f(&lat[0], "p99")),
        (49.0, 89.0, 98.0)
    );
}

#[test]
fn bad_samples_are_refused_and_counted_in_aggregate_mode() {
    let db = "agg_refused";
    let sink = open(db, "PERFSINK_MODE=aggregate");
    let id = sink.register_series("lat", &[], "value").unwrap();
    let s = sink.submit(&[
        Point::new(id, f64::NAN, T),
        Point::new(id, 1.0, T),
        Point::new(id + 99, 1.0, T),
    ]);
    assert_eq!((s.accepted, s.rejected), (1, 2));
    assert!(s.first_error.is_some());
    let report = sink.close();
    assert_eq!(report.stats.rejected_invalid, 2);
    assert_eq!(rows(db, "lat_agg")[0]["count"].as_i64(), Some(1));
}

#[test]
fn two_sinks_of_one_process_do_not_overwrite_each_other() {
    let db = "agg_two";
    let (a, b) = (
        open(db, "PERFSINK_MODE=aggregate"),
        open(db, "PERFSINK_MODE=aggregate"),
    );
    for sink in [&a, &b] {
        let id = sink.register_series("lat", &[], "value").unwrap();
        sink.submit(&[Point::new(id, 1.0, T)])
            .into_result()
            .unwrap();
    }
    a.close();
    b.close();
    let q = "SELECT sum(\"count\") FROM lat_agg";
    assert_eq!(influx().query_rows(db, q)[0][1].as_i64(), Some(2));
}
