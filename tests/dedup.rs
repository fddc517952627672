//! Timestamp de-duplication through the library API (`submit`, `record`) into a real InfluxDB
//! 1.6: only a timestamp equal to one already written for its series moves, by one unit of
//! the sink's precision; out-of-order samples keep their time; a series used through both
//! `register_series` and `record` is one series. (The relay's side: tests/relay.rs.)

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::Influx;
use perfsink::{Field, FieldValue, Point, Sink, Tag};
use serde_json::{json, Value};

/// 2023-11-14T22:13:20Z.
const T2023: i64 = 1_700_000_000_000_000_000;
/// 2017-07-14T02:40:00Z.
const T2017: i64 = 1_500_000_000_000_000_000;
const FLUSH: Duration = Duration::from_secs(20);

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

/// `(time, value)` of each stored point.
fn points(db: &str, q: &str) -> Vec<(i64, Value)> {
    influx()
        .query_rows(db, q)
        .into_iter()
        .map(|r| (r[0].as_i64().unwrap(), r[1].clone()))
        .collect()
}

#[test]
fn a_2017_point_after_a_2023_point_keeps_2017() {
    let db = "dedup_out_of_order";
    let sink = open(db, "");
    let tags = [Tag::new("k", "a")];
    let id = sink.register_series("m", &tags, "value").unwrap();
    sink.submit(&[Point::new(id, 1.0, T2023), Point::new(id, 2.0, T2017)])
        .into_result()
        .unwrap();
    // Out of order by a few ns, as samples of k6's VUs arrive: kept too.
    sink.submit(&[Point::new(id, 3.0, T2023 - 5)])
        .into_result()
        .unwrap();
    sink.record("r", &tags, &[Field::new("v", FieldValue::Int(1))], T2023)
        .unwrap();
    sink.record("r", &tags, &[Field::new("v", FieldValue::Int(2))], T2017)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        points(db, "SELECT value FROM m"),
        [(T2017, json!(2)), (T2023 - 5, json!(3)), (T2023, json!(1))]
    );
    assert_eq!(
        points(db, "SELECT v FROM r"),
        [(T2017, json!(2)), (T2023, json!(1))]
    );
    let s = sink.close().stats;
    assert_eq!((s.deduplicated, s.dedup_unchecked, s.written), (0, 0, 5));
}

#[test]
fn ties_move_by_the_smallest_free_step_and_nothing_merges() {
    for (db, precision, unit) in [
        ("dedup_ties_ns", "ns", 1),
        ("dedup_ties_ms", "ms", 1_000_000),
    ] {
        let sink = open(db, &format!("INFLUXDB_PRECISION={precision}"));
        let id = sink.register_series("m", &[], "value").unwrap();
        // T and T + 1 unit are taken by real samples, T + 10 units is the latest: the tie of T
        // goes to T + 2 units (the smallest free step), not past the latest.
        let pts = [
            Point::new(id, 1.0, T2023),
            Point::new(id, 2.0, T2023 + unit),
            Point::new(id, 3.0, T2023 + 10 * unit),
            Point::new(id, 4.0, T2023),
        ];
        sink.submit(&pts).into_result().unwrap();
        sink.flush(FLUSH).unwrap();
        assert_eq!(
            points(db, "SELECT value FROM m"),
            [
                (T2023, json!(1)),
                (T2023 + unit, json!(2)),
                (T2023 + 2 * unit, json!(4)),
                (T2023 + 10 * unit, json!(3)),
            ],
            "{precision}"
        );
        let s = sink.close().stats;
        assert_eq!((s.deduplicated, s.written), (1, 4), "{precision}");
    }
}

#[test]
fn a_series_used_through_register_series_and_record_is_one_series() {
    let db = "dedup_one_series";
    let sink = open(db, "");
    let tags = [Tag::new("k", "a")];
    let id = sink.register_series("m", &tags, "value").unwrap();
    sink.submit(&[Point::new(id, 1.0, T2023)])
        .into_result()
        .unwrap();
    // The same series by name, at the same instant: a tie with the submitted point, which
    // InfluxDB would otherwise merge into it (the last `value` wins).
    sink.record(
        "m",
        &tags,
        &[Field::new("value", FieldValue::Float(2.0))],
        T2023,
    )
    .unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        points(db, "SELECT value FROM m"),
        [(T2023, json!(1)), (T2023 + 1, json!(2))]
    );
    let s = sink.close().stats;
    assert_eq!((s.series, s.deduplicated, s.written), (1, 1, 2), "{s:?}");
}
