//! Round trips through a real InfluxDB 1.6 (`influxd`): every test writes through the Rust API,
//! reads back with `/query` and asserts exact values, tags, counts and types. The counting
//! tests at the end also run InfluxDB 1.8.10, for the v2 write API (`/api/v2/write`).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::influx::{quote_ident, series_rows};
use common::Influx;
use perfsink::{Error, Field, FieldValue, Point, Sink, Stats, Tag};
use serde_json::{json, Value};

/// 2023-11-14T22:13:20Z, far inside the autogen retention policy.
const T0: i64 = 1_700_000_000_000_000_000;
const SEC: i64 = 1_000_000_000;
const FLUSH: Duration = Duration::from_secs(20);

/// Small intervals so every test runs fast; self-metrics off unless a test turns them on.
const FAST: &str = "PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_RETRY_INITIAL_MS=50;\
                    PERFSINK_RETRY_MAX_MS=500;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_CLOSE_TIMEOUT_MS=5000;PERFSINK_TIMEOUT_MS=5000";

/// Escapes a value for a `KEY=value;...` string.
fn kv_escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace(';', "\\;")
}

fn kv(influx: &Influx, db: &str, extra: &str) -> String {
    format!(
        "INFLUXDB_URL={};INFLUXDB_DB={};{FAST};{extra}",
        influx.url(),
        kv_escape(db)
    )
}

fn open(influx: &Influx, db: &str, extra: &str) -> Sink {
    let s = kv(influx, db, extra);
    Sink::from_kv(&s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn f<'a>(key: &'a str, value: FieldValue<'a>) -> Field<'a> {
    Field::new(key, value)
}

fn t<'a>(key: &'a str, value: &'a str) -> Tag<'a> {
    Tag::new(key, value)
}

/// Rows of the first series as `column -> value` maps.
fn rows(influx: &Influx, db: &str, q: &str) -> Vec<BTreeMap<String, Value>> {
    series_rows(&influx.query_series(db, q))
}

/// `SHOW FIELD KEYS` as `field -> type`.
fn field_types(influx: &Influx, db: &str, m: &str) -> BTreeMap<String, String> {
    influx
        .query_rows(db, &format!("SHOW FIELD KEYS FROM {}", quote_ident(m)))
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn measurements(influx: &Influx, db: &str) -> Vec<String> {
    influx
        .query_rows(db, "SHOW MEASUREMENTS")
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

fn databases(influx: &Influx) -> Vec<String> {
    influx
        .query_rows("", "SHOW DATABASES")
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

/// Every point offered ends in exactly one place.
fn assert_invariants(s: &Stats) {
    assert_eq!(
        s.accepted + s.replayed,
        s.written + s.rejected_server + s.dropped_undelivered + s.queue_depth,
        "{s:?}"
    );
    assert_eq!(s.rejected, s.rejected_invalid + s.rejected_server, "{s:?}");
    assert_eq!(
        s.dropped,
        s.dropped_queue_full + s.dropped_undelivered,
        "{s:?}"
    );
    assert!(s.write_latency_us_mean <= s.write_latency_us_max, "{s:?}");
}

#[test]
fn nasty_names_round_trip_exactly() {
    let influx = Influx::start();
    let db = "esc";
    let sink = open(&influx, db, "");
    // (measurement, tags, field key) as given, and as InfluxDB must store them.
    let meas = "load avg,cpu=\"0\" Zürich ✓";
    let tags = [
        t("tag key", "va lue,with=all \"three\""),
        t("k,=", "=,"),
        t("path", "C:\\temp\\x"),
        t("unicode ✓", "日本語 😀"),
        t("controls", "tab\tcr\rff\u{c}nul\u{0}"),
        t("empty", ""),
    ];
    let fields = [
        f("field key,=\"q\"", FieldValue::Float(1.5)),
        f(
            "s",
            FieldValue::Str("say \"hi\" C:\\dir\\ line1\nline2\ttab ü"),
        ),
    ];
    sink.record(meas, &tags, &fields, T0).unwrap();
    // A newline or a trailing backslash cannot be stored as it is by 1.x: refused and counted,
    // never altered. Other backslashes in names are kept as they are.
    for (m, tag) in [("multi\nline", t("nl", "a")), ("m", t("trailing", "abc\\"))] {
        let e = sink.record(m, &[tag], &[f("v", FieldValue::Int(1))], T0);
        assert!(matches!(e, Err(Error::InvalidInput(_))), "{e:?}");
    }
    sink.record("back\\slash", &[], &[f("v", FieldValue::Int(2))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();

    let mut ms = measurements(&influx, db);
    ms.sort();
    let mut want = vec![meas.to_string(), "back\\slash".to_string()];
    want.sort();
    assert_eq!(ms, want);

    let series = influx.query_series(
        db,
        &format!("SELECT * FROM {} GROUP BY *", quote_ident(meas)),
    );
    assert_eq!(series.len(), 1, "{series:?}");
    assert_eq!(
        series[0]["tags"],
        json!({
            "tag key": "va lue,with=all \"three\"",
            "k,=": "=,",
            "path": "C:\\temp\\x",
            "unicode ✓": "日本語 😀",
            "controls": "tab\tcr\rff\u{c}nul\u{0}",
        })
    );
    let r = &series_rows(&series)[0];
    assert_eq!(r["time"], json!(T0));
    assert_eq!(r["field key,=\"q\""], json!(1.5));
    assert_eq!(
        r["s"],
        json!("say \"hi\" C:\\dir\\ line1\nline2\ttab ü"),
        "string fields keep quotes, backslashes, newlines and tabs"
    );
    assert_eq!(r.len(), 3, "time and two fields: {r:?}");

    assert_eq!(
        rows(&influx, db, "SELECT v FROM \"back\\\\slash\"")[0]["v"],
        json!(2)
    );
    let s = sink.close().stats;
    assert_eq!(
        (s.written, s.rejected_invalid, s.dropped),
        (2, 2, 0),
        "{s:?}"
    );
}

/// A backslash right before a comma, space or `=` in a tag is stored as it is (1.x/2.x drop
/// only the one escaping backslash); in a field key 1.x can store only an even run there, so an
/// odd one is refused, never doubled.
#[test]
fn backslash_before_a_separator_never_splits_a_point() {
    let influx = Influx::start();
    let db = "bs";
    let sink = open(&influx, db, "");
    sink.record(
        "m",
        &[t("a", "x\\,y"), t("b", "p\\ q"), t("c", "plain")],
        &[f("k\\\\=v", FieldValue::Int(7)), f("w", FieldValue::Int(8))],
        T0,
    )
    .unwrap();
    let e = sink.record("m", &[], &[f("k\\=v", FieldValue::Int(7))], T0);
    assert!(matches!(e, Err(Error::InvalidInput(_))), "{e:?}");
    sink.flush(FLUSH).unwrap();
    let series = influx.query_series(db, "SELECT * FROM m GROUP BY *");
    assert_eq!(series.len(), 1);
    assert_eq!(
        series[0]["tags"],
        json!({ "a": "x\\,y", "b": "p\\ q", "c": "plain" })
    );
    let r = &series_rows(&series)[0];
    assert_eq!((&r["k\\\\=v"], &r["w"]), (&json!(7), &json!(8)), "{r:?}");
    let s = sink.close().stats;
    assert_eq!((s.rejected_server, s.rejected_invalid), (0, 1), "{s:?}");
}

#[test]
fn all_field_types_round_trip_with_their_types() {
    let influx = Influx::start();
    let db = "types";
    let sink = open(&influx, db, "");
    let fields = [
        f("f_frac", FieldValue::Float(1.5)),
        f("f_whole", FieldValue::Float(3.0)),
        f("f_neg", FieldValue::Float(-0.001)),
        f("f_big", FieldValue::Float(1e16)),
        f("f_small", FieldValue::Float(1.5e-7)),
        f("f_max", FieldValue::Float(f64::MAX)),
        f("i_neg", FieldValue::Int(-42)),
        f("i_max", FieldValue::Int(i64::MAX)),
        f("i_min", FieldValue::Int(i64::MIN)),
        f("u_val", FieldValue::UInt(i64::MAX as u64)),
        f("b_true", FieldValue::Bool(true)),
        f("b_false", FieldValue::Bool(false)),
        f("s_quoted", FieldValue::Str("a \"b\" \\c\\ d\ne,f=g")),
        f("s_empty", FieldValue::Str("")),
        f("s_true", FieldValue::Str("true")),
    ];
    sink.record("types", &[], &fields, T0).unwrap();
    // v1 has no unsigned type: above i64::MAX is refused at the API, never sent.
    let e = sink
        .record(
            "types",
            &[],
            &[f("u_val", FieldValue::UInt(u64::MAX))],
            T0 + 1,
        )
        .unwrap_err();
    assert!(matches!(e, Error::InvalidValue(_)), "{e:?}");
    sink.flush(FLUSH).unwrap();

    let types = field_types(&influx, db, "types");
    let want: BTreeMap<String, String> = [
        ("f_frac", "float"),
        ("f_whole", "float"),
        ("f_neg", "float"),
        ("f_big", "float"),
        ("f_small", "float"),
        ("f_max", "float"),
        ("i_neg", "integer"),
        ("i_max", "integer"),
        ("i_min", "integer"),
        ("u_val", "integer"),
        ("b_true", "boolean"),
        ("b_false", "boolean"),
        ("s_quoted", "string"),
        ("s_empty", "string"),
        ("s_true", "string"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(types, want);

    let all = rows(&influx, db, "SELECT * FROM types");
    assert_eq!(all.len(), 1, "{all:?}");
    let r = &all[0];
    assert_eq!(r["time"], json!(T0));
    assert_eq!(r["f_frac"].as_f64(), Some(1.5));
    assert_eq!(r["f_whole"].as_f64(), Some(3.0));
    assert_eq!(r["f_neg"].as_f64(), Some(-0.001));
    assert_eq!(r["f_big"].as_f64(), Some(1e16));
    assert_eq!(r["f_small"].as_f64(), Some(1.5e-7));
    assert_eq!(r["f_max"].as_f64(), Some(f64::MAX));
    assert_eq!(r["i_neg"].as_i64(), Some(-42));
    assert_eq!(r["i_max"].as_i64(), Some(i64::MAX));
    assert_eq!(r["i_min"].as_i64(), Some(i64::MIN));
    assert_eq!(r["u_val"].as_i64(), Some(i64::MAX));
    assert_eq!(r["b_true"], json!(true));
    assert_eq!(r["b_false"], json!(false));
    assert_eq!(r["s_quoted"], json!("a \"b\" \\c\\ d\ne,f=g"));
    assert_eq!(r["s_empty"], json!(""));
    assert_eq!(r["s_true"], json!("true"));
    let s = sink.close().stats;
    assert_eq!(
        (s.written, s.rejected_invalid, s.rejected_server),
        (1, 1, 0)
    );
}

#[test]
fn fast_path_points_with_extra_fields() {
    let influx = Influx::start();
    let db = "fast";
    let sink = open(&influx, db, "");
    let id = sink
        .register_series(
            "http_req_duration",
            &[t("status", "200"), t("url", "/a b")],
            "value",
        )
        .unwrap();
    let other = sink.register_series("iters", &[], "count").unwrap();
    let extra = [
        f("vu", FieldValue::Int(3)),
        f("ok", FieldValue::Bool(true)),
        f("name", FieldValue::Str("GET /")),
    ];
    let points = [
        Point {
            series: id,
            value: 12.25,
            timestamp_ns: T0,
            extra_fields: &extra,
        },
        Point::new(id, 0.0, T0 + SEC),
        Point::new(other, 7.0, T0),
    ];
    let sub = sink.submit(&points);
    assert_eq!((sub.accepted, sub.rejected, sub.dropped), (3, 0, 0));
    assert!(sub.first_error.is_none());
    sink.flush(FLUSH).unwrap();
    let series = influx.query_series(db, "SELECT * FROM http_req_duration GROUP BY *");
    assert_eq!(series[0]["tags"], json!({ "status": "200", "url": "/a b" }));
    let r = series_rows(&series);
    assert_eq!(r.len(), 2);
    assert_eq!(
        (
            &r[0]["time"],
            &r[0]["value"],
            &r[0]["vu"],
            &r[0]["ok"],
            &r[0]["name"]
        ),
        (
            &json!(T0),
            &json!(12.25),
            &json!(3),
            &json!(true),
            &json!("GET /")
        )
    );
    assert_eq!(
        (&r[1]["time"], r[1]["value"].as_f64()),
        (&json!(T0 + SEC), Some(0.0))
    );
    assert_eq!((&r[1]["vu"], &r[1]["ok"]), (&Value::Null, &Value::Null));
    assert_eq!(
        field_types(&influx, db, "http_req_duration")["value"],
        "float"
    );
    assert_eq!(
        rows(&influx, db, "SELECT * FROM iters")[0]["count"].as_f64(),
        Some(7.0)
    );
    // An unregistered id is refused and counted, the others still go through.
    let sub = sink.submit(&[Point::new(999, 1.0, T0), Point::new(other, 8.0, T0 + SEC)]);
    assert_eq!((sub.accepted, sub.rejected), (1, 1));
    assert_eq!(sub.first_error, Some(Error::UnknownSeries(999)));
    sink.flush(FLUSH).unwrap();
    assert_eq!(influx.count(db, "iters"), 2);
    let s = sink.close().stats;
    assert_eq!(
        (s.written, s.rejected_invalid, s.series),
        (4, 1, 2),
        "{s:?}"
    );
}

#[test]
fn precision_ns_ms_s_is_applied_to_timestamps() {
    let influx = Influx::start();
    let ts = T0 + 123_456_789;
    for (precision, stored) in [("ns", ts), ("ms", T0 + 123_000_000), ("s", T0)] {
        let db = format!("prec_{precision}");
        let sink = open(&influx, &db, &format!("INFLUXDB_PRECISION={precision}"));
        let id = sink.register_series("m", &[], "value").unwrap();
        sink.submit(&[Point::new(id, 1.0, ts)])
            .into_result()
            .unwrap();
        sink.record("r", &[], &[f("v", FieldValue::Int(1))], ts + 2 * SEC)
            .unwrap();
        sink.flush(FLUSH).unwrap();
        assert_eq!(
            influx.query_rows(&db, "SELECT value FROM m"),
            vec![vec![json!(stored), json!(1)]],
            "precision {precision}"
        );
        assert_eq!(
            influx.query_rows(&db, "SELECT v FROM r"),
            vec![vec![json!(stored + 2 * SEC), json!(1)]],
            "precision {precision}"
        );
        sink.close();
    }
}

#[test]
fn identical_timestamps_in_one_series_are_all_kept() {
    let influx = Influx::start();
    for (db, precision, unit) in [("dedup_ns", "ns", 1), ("dedup_ms", "ms", 1_000_000)] {
        let sink = open(&influx, db, &format!("INFLUXDB_PRECISION={precision}"));
        let id = sink.register_series("m", &[t("k", "v")], "value").unwrap();
        let other = sink.register_series("m", &[t("k", "w")], "value").unwrap();
        let pts = [
            Point::new(id, 1.0, T0),
            Point::new(id, 2.0, T0),
            Point::new(other, 9.0, T0),
            Point::new(id, 3.0, T0),
        ];
        sink.submit(&pts).into_result().unwrap();
        sink.flush(FLUSH).unwrap();
        assert_eq!(
            influx.query_rows(db, "SELECT value FROM m WHERE k = 'v'"),
            vec![
                vec![json!(T0), json!(1)],
                vec![json!(T0 + unit), json!(2)],
                vec![json!(T0 + 2 * unit), json!(3)],
            ],
            "{precision}"
        );
        // Another series at the same instant is not shifted.
        assert_eq!(
            influx.query_rows(db, "SELECT value FROM m WHERE k = 'w'"),
            vec![vec![json!(T0), json!(9)]]
        );
        let s = sink.close().stats;
        assert_eq!((s.deduplicated, s.written), (2, 4), "{s:?}");
    }
}

#[test]
fn dedup_off_lets_influxdb_merge_identical_timestamps() {
    let influx = Influx::start();
    let db = "nodedup";
    let sink = open(&influx, db, "PERFSINK_DEDUP=false");
    let id = sink.register_series("m", &[], "value").unwrap();
    sink.submit(&[Point::new(id, 1.0, T0), Point::new(id, 2.0, T0)])
        .into_result()
        .unwrap();
    sink.record("r", &[], &[f("a", FieldValue::Int(1))], T0)
        .unwrap();
    sink.record("r", &[], &[f("b", FieldValue::Int(2))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    // Same series, same timestamp: InfluxDB keeps one point, the last value wins and the
    // field sets are merged.
    assert_eq!(
        influx.query_rows(db, "SELECT value FROM m"),
        vec![vec![json!(T0), json!(2)]]
    );
    assert_eq!(
        influx.query_rows(db, "SELECT a, b FROM r"),
        vec![vec![json!(T0), json!(1), json!(2)]]
    );
    let s = sink.close().stats;
    assert_eq!((s.deduplicated, s.written), (0, 4));
}

#[test]
fn nan_and_infinities_are_rejected_counted_and_never_sent() {
    let influx = Influx::start();
    let db = "nan";
    let sink = open(&influx, db, "");
    let id = sink.register_series("m", &[], "value").unwrap();
    let bad_extra = [f("x", FieldValue::Float(f64::NAN))];
    let pts = [
        Point::new(id, 1.0, T0),
        Point::new(id, f64::NAN, T0 + 1),
        Point::new(id, f64::INFINITY, T0 + 2),
        Point::new(id, f64::NEG_INFINITY, T0 + 3),
        Point {
            series: id,
            value: 5.0,
            timestamp_ns: T0 + 4,
            extra_fields: &bad_extra,
        },
        Point::new(id, 2.0, T0 + 5),
    ];
    let sub = sink.submit(&pts);
    assert_eq!((sub.accepted, sub.rejected, sub.dropped), (2, 4, 0));
    assert!(
        matches!(sub.first_error, Some(Error::InvalidValue(_))),
        "{sub:?}"
    );
    let e = sink
        .record(
            "r",
            &[],
            &[
                f("ok", FieldValue::Int(1)),
                f("bad", FieldValue::Float(f64::INFINITY)),
            ],
            T0,
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidValue(ref m) if m.contains("bad")),
        "{e:?}"
    );
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        influx.query_rows(db, "SELECT value FROM m"),
        vec![vec![json!(T0), json!(1)], vec![json!(T0 + 5), json!(2)]]
    );
    // Nothing of the refused record reached InfluxDB, not even its valid field.
    assert!(!measurements(&influx, db).contains(&"r".to_string()));
    let s = sink.close().stats;
    assert_eq!(
        (s.accepted, s.written, s.rejected_invalid, s.rejected_server),
        (2, 2, 5, 0),
        "{s:?}"
    );
}

#[test]
fn global_tags_are_on_every_point_and_own_tags_win() {
    let influx = Influx::start();
    let db = "gtags";
    let sink = open(&influx, db, "PERFSINK_TAGS=testid=run 1,host=box-a,empty=");
    let id = sink
        .register_series("m", &[t("host", "own"), t("k", "v")], "value")
        .unwrap();
    sink.submit(&[Point::new(id, 1.0, T0)])
        .into_result()
        .unwrap();
    sink.record("r", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    sink.record("r", &[t("extra", "x")], &[f("v", FieldValue::Int(2))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    let series = influx.query_series(db, "SELECT * FROM m GROUP BY *");
    assert_eq!(
        series[0]["tags"],
        json!({ "host": "own", "k": "v", "testid": "run 1" })
    );
    let series = influx.query_series(db, "SELECT * FROM r GROUP BY *");
    let tags: Vec<&Value> = series.iter().map(|s| &s["tags"]).collect();
    assert_eq!(
        tags,
        vec![
            &json!({ "extra": "", "host": "box-a", "testid": "run 1" }),
            &json!({ "extra": "x", "host": "box-a", "testid": "run 1" }),
        ]
    );
    let keys: Vec<String> = influx
        .query_rows(db, "SHOW TAG KEYS FROM r")
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        ["extra", "host", "testid"],
        "the empty global tag is omitted"
    );
    sink.close();
}

#[test]
fn self_metrics_are_written_to_the_perfsink_measurement() {
    let influx = Influx::start();
    let db = "selfm";
    let sink = open(
        &influx,
        db,
        "PERFSINK_SELF_METRICS_INTERVAL_MS=100;PERFSINK_SOURCE=itest;PERFSINK_TAGS=testid=t9",
    );
    let id = sink.register_series("m", &[], "value").unwrap();
    let pts: Vec<Point> = (0..50).map(|i| Point::new(id, i as f64, T0 + i)).collect();
    sink.submit(&pts).into_result().unwrap();
    sink.flush(FLUSH).unwrap();
    let n = influx.wait_for_count(db, "perfsink", 2, Duration::from_secs(10));
    assert!(n >= 2, "self-metrics lines: {n}");
    let report = sink.close();
    assert_eq!(report.stats.written, 50);
    // Self-metrics lines are never counted with the user points.
    assert_eq!((report.stats.accepted, report.stats.queue_depth), (50, 0));
    // The last line, written at close, has the final counters of user points only.
    let series = influx.query_series(
        db,
        "SELECT * FROM perfsink GROUP BY * ORDER BY time DESC LIMIT 1",
    );
    assert_eq!(series.len(), 1, "one series: {series:?}");
    let host = gethostname();
    assert_eq!(
        series[0]["tags"],
        json!({ "host": host, "source": "itest", "testid": "t9" })
    );
    let last = &series_rows(&series)[0];
    assert_eq!(last["accepted"], json!(50));
    assert_eq!(last["written"], json!(50));
    assert_eq!(last["dropped"], json!(0));
    assert_eq!(last["rejected"], json!(0));
    assert_eq!(last["series"], json!(1));
    assert!(last["requests"].as_u64().unwrap() >= 1, "{last:?}");
    assert!(last["bytes_sent"].as_u64().unwrap() > 0, "{last:?}");
    let types = field_types(&influx, db, "perfsink");
    assert_eq!(types["accepted"], "integer");
    assert_eq!(types["write_latency_ms"], "float");
    // User points are untouched by self-metrics.
    assert_eq!(influx.count(db, "m"), 50);
}

/// The last self-metrics line is the final state: written after the user's points drained,
/// not when close began (the health dashboard shows it after the run).
#[test]
fn the_last_self_metrics_line_is_written_after_the_points_drained() {
    let influx = Influx::start();
    let db = "selfm_final";
    // A long interval: only the line of close is written.
    let sink = open(&influx, db, "PERFSINK_SELF_METRICS_INTERVAL_MS=600000");
    let id = sink.register_series("m", &[], "value").unwrap();
    let pts: Vec<Point> = (0..20_000)
        .map(|i| Point::new(id, i as f64, T0 + i))
        .collect();
    for chunk in pts.chunks(1000) {
        sink.submit(chunk).into_result().unwrap();
    }
    let report = sink.close();
    assert_eq!(report.stats.written, 20_000);
    let series = influx.query_series(
        db,
        "SELECT * FROM perfsink GROUP BY * ORDER BY time DESC LIMIT 1",
    );
    let last = &series_rows(&series)[0];
    assert_eq!(last["written"], json!(20_000), "{last:?}");
    assert_eq!(last["queue_depth"], json!(0), "{last:?}");
    assert_eq!(influx.count(db, "m"), 20_000);
}

fn gethostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[test]
fn four_threads_submitting_at_once_lose_nothing() {
    let influx = Influx::start();
    let db = "threads";
    // A generous block bound: this test is about concurrency, not about a starved writer
    // thread on a busy 2-core CI box.
    let sink = Arc::new(open(
        &influx,
        db,
        "PERFSINK_BATCH_LINES=500;PERFSINK_BLOCK_TIMEOUT_MS=30000",
    ));
    let shared = sink.register_series("shared", &[], "value").unwrap();
    const PER_THREAD: i64 = 5_000;
    let handles: Vec<_> = (0..4)
        .map(|th| {
            let sink = sink.clone();
            std::thread::spawn(move || {
                let own = sink
                    .register_series("own", &[Tag::new("thread", &th.to_string())], "value")
                    .unwrap();
                for chunk in 0..(PER_THREAD / 100) {
                    // Every thread uses the same timestamps on the shared series: only the
                    // de-duplication keeps them apart.
                    let pts: Vec<Point> = (0..100)
                        .flat_map(|i| {
                            let ts = T0 + (chunk * 100 + i) * 1000;
                            [
                                Point::new(shared, th as f64, ts),
                                Point::new(own, i as f64, ts),
                            ]
                        })
                        .collect();
                    let sub = sink.submit(&pts);
                    assert_eq!(sub.accepted, 200, "{sub:?}");
                }
                sink.record(
                    "rec",
                    &[Tag::new("thread", &th.to_string())],
                    &[Field::new("v", FieldValue::Int(th))],
                    T0,
                )
                .unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    sink.flush(FLUSH).unwrap();
    assert_eq!(influx.count(db, "shared"), 4 * PER_THREAD as u64);
    assert_eq!(influx.count(db, "own"), 4 * PER_THREAD as u64);
    assert_eq!(influx.count(db, "rec"), 4);
    // Each thread's value appears exactly PER_THREAD times on the shared series.
    for th in 0..4 {
        let n = influx.query_rows(
            db,
            &format!("SELECT count(value) FROM shared WHERE value = {th}"),
        );
        assert_eq!(n[0][1], json!(PER_THREAD), "thread {th}");
    }
    let s = sink.close().stats;
    let total = 8 * PER_THREAD as u64 + 4;
    assert_eq!(
        (s.accepted, s.written, s.dropped, s.rejected),
        (total, total, 0, 0)
    );
    assert_eq!(s.series, 9, "shared + 4 own + 4 rec: {s:?}");
    assert!(s.deduplicated >= 3 * PER_THREAD as u64, "{s:?}");
    assert!(s.requests >= total / 500, "{s:?}");
    assert_invariants(&s);
}

#[test]
fn missing_database_is_created_with_a_nasty_name() {
    let influx = Influx::start();
    let db = "perf db \"q\" ü-1";
    assert!(!databases(&influx).contains(&db.to_string()));
    let sink = open(&influx, db, "");
    sink.record("m", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    assert!(
        databases(&influx).contains(&db.to_string()),
        "{:?}",
        databases(&influx)
    );
    assert_eq!(
        influx.query_rows(db, "SELECT v FROM m"),
        vec![vec![json!(T0), json!(1)]]
    );
    // The database dropped while the sink runs: the next write creates it again.
    influx.exec("", &format!("DROP DATABASE {}", quote_ident(db)));
    sink.record("m", &[], &[f("v", FieldValue::Int(2))], T0 + 1)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        influx.query_rows(db, "SELECT v FROM m"),
        vec![vec![json!(T0 + 1), json!(2)]]
    );
    let s = sink.close().stats;
    assert_eq!((s.written, s.dropped, s.rejected), (2, 0, 0));
}

#[test]
fn database_creation_off_reports_the_missing_database() {
    let influx = Influx::start();
    let sink = open(
        &influx,
        "absent",
        "PERFSINK_CREATE_DATABASE=false;PERFSINK_CLOSE_TIMEOUT_MS=300",
    );
    sink.record("m", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    assert_eq!(sink.flush(Duration::from_millis(1500)), Err(Error::Timeout));
    let e = sink.last_error().expect("a last error");
    assert!(e.contains("\"absent\"") && e.contains("not found"), "{e}");
    assert!(!databases(&influx).contains(&"absent".to_string()));
    let s = sink.stats();
    assert!(s.retried >= 1, "{s:?}");
    // Backoff between attempts: at most a handful in 1.5 s with 50..500 ms delays.
    assert!(s.requests <= 20, "{s:?}");
    let r = sink.close();
    assert_eq!((r.stats.written, r.stats.dropped_undelivered), (0, 1));
}

/// InfluxDB answers `CREATE DATABASE` with 200 and an error in the body for a name it refuses;
/// the sink must see that as a failure, report it, and back off instead of re-creating and
/// re-sending in a tight loop.
#[test]
fn refused_database_name_is_reported_and_backed_off() {
    let influx = Influx::start();
    let db = "c\\d";
    let sink = open(&influx, db, "PERFSINK_CLOSE_TIMEOUT_MS=300");
    sink.record("m", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    assert_eq!(sink.flush(Duration::from_millis(1500)), Err(Error::Timeout));
    let e = sink.last_error().expect("a last error");
    assert!(e.contains("invalid name"), "{e}");
    let s = sink.stats();
    assert!(s.requests <= 20, "tight loop: {s:?}");
    assert!(s.retried >= 1, "{s:?}");
    let r = sink.close();
    assert_eq!(r.stats.dropped_undelivered, 1);
}

#[test]
fn v1_auth_with_correct_credentials_writes() {
    let influx = Influx::start_with_auth("admin", "pa;ss w\\rd");
    let db = "secure";
    let sink = open(
        &influx,
        db,
        "INFLUXDB_USERNAME=admin;INFLUXDB_PASSWORD=pa\\;ss w\\\\rd",
    );
    sink.record("m", &[t("k", "v")], &[f("v", FieldValue::Float(0.5))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        influx.query_rows(db, "SELECT v FROM m"),
        vec![vec![json!(T0), json!(0.5)]]
    );
    let r = sink.close();
    assert_eq!((r.stats.written, r.stats.dropped), (1, 0));
    assert!(r.last_error.is_none(), "{:?}", r.last_error);
}

#[test]
fn v1_auth_with_wrong_credentials_fails_clearly_without_the_password() {
    let influx = Influx::start_with_auth("admin", "right");
    influx.create_db("secure");
    const PW: &str = "Wr0ng-Secret-Pw";
    let sink = open(
        &influx,
        "secure",
        &format!("INFLUXDB_USERNAME=admin;INFLUXDB_PASSWORD={PW}"),
    );
    sink.record("m", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    let e = sink.flush(FLUSH).unwrap_err();
    let Error::Auth(msg) = &e else {
        panic!("expected Error::Auth, got {e:?}")
    };
    assert!(msg.contains(&influx.url()), "names the server: {msg}");
    assert!(msg.contains("401"), "{msg}");
    for text in [e.to_string(), format!("{e:?}"), sink.last_error().unwrap()] {
        assert!(!text.contains(PW), "password leaked: {text}");
    }
    // Later calls are told too, and nothing more is written.
    let e2 = sink
        .record("m", &[], &[f("v", FieldValue::Int(2))], T0 + 1)
        .unwrap_err();
    assert!(matches!(e2, Error::Auth(_)), "{e2:?}");
    let id = sink.register_series("m", &[], "v").unwrap();
    let sub = sink.submit(&[Point::new(id, 3.0, T0 + 2)]);
    assert_eq!(sub.accepted, 1);
    assert!(matches!(sub.first_error, Some(Error::Auth(_))), "{sub:?}");
    let r = sink.close();
    assert!(!r.to_string().contains(PW), "{r}");
    assert_eq!(
        (r.stats.written, r.stats.dropped_undelivered),
        (0, 3),
        "{:?}",
        r.stats
    );
    assert_eq!(influx.count("secure", "m"), 0);
}

#[test]
fn partial_write_type_conflict_on_a_real_server() {
    let influx = Influx::start();
    let db = "partial";
    let sink = open(&influx, db, "");
    sink.record("m", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    // Same field as a float: InfluxDB refuses that line (partial write) and keeps the others.
    sink.record("m", &[], &[f("v", FieldValue::Float(2.5))], T0 + 1)
        .unwrap();
    sink.record("m", &[], &[f("v", FieldValue::Int(3))], T0 + 2)
        .unwrap();
    sink.record("other", &[], &[f("v", FieldValue::Int(4))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(
        influx.query_rows(db, "SELECT v FROM m"),
        vec![vec![json!(T0), json!(1)], vec![json!(T0 + 2), json!(3)]]
    );
    assert_eq!(influx.count(db, "other"), 1);
    let s = sink.stats();
    assert_eq!(
        (s.written, s.rejected_server, s.retried),
        (3, 1, 0),
        "{s:?}"
    );
    let e = sink.last_error().unwrap();
    assert!(
        e.contains("field type conflict") && e.contains("refused 1 line"),
        "{e}"
    );
    sink.close();
}

#[test]
fn stats_invariants_hold_through_a_mixed_run() {
    let influx = Influx::start();
    let db = "inv";
    let sink = open(&influx, db, "PERFSINK_BATCH_LINES=7;PERFSINK_MAX_SERIES=3");
    let a = sink.register_series("a", &[], "value").unwrap();
    let b = sink.register_series("b", &[], "value").unwrap();
    let _c = sink.register_series("c", &[], "value").unwrap();
    let e = sink.register_series("d", &[], "value").unwrap_err();
    assert_eq!(e, Error::SeriesLimit(3));
    let mut pts = Vec::new();
    for i in 0..100 {
        pts.push(Point::new(a, i as f64, T0 + i));
        pts.push(Point::new(
            b,
            if i % 10 == 0 { f64::NAN } else { 1.0 },
            T0 + i,
        ));
    }
    let sub = sink.submit(&pts);
    assert_eq!((sub.accepted, sub.rejected), (190, 10));
    // A record of a fourth series hits the cap too.
    assert_eq!(
        sink.record("e", &[], &[f("v", FieldValue::Int(1))], T0),
        Err(Error::SeriesLimit(3))
    );
    assert_invariants(&sink.stats());
    sink.flush(FLUSH).unwrap();
    let s = sink.stats();
    assert_invariants(&s);
    assert_eq!(s.queue_depth, 0);
    assert_eq!(
        (
            s.accepted,
            s.written,
            s.rejected_invalid,
            s.series,
            s.series_rejected
        ),
        (190, 190, 11, 3, 2),
        "{s:?}"
    );
    assert!(s.requests >= 190 / 7, "batches of 7 lines: {s:?}");
    assert!(s.bytes_sent > 0 && s.write_latency_us_max > 0, "{s:?}");
    assert_eq!(influx.count(db, "a") + influx.count(db, "b"), 190);
    let r = sink.close();
    assert_eq!(r.stats, s, "close changes nothing after a flush");
    let text = r.to_string();
    assert!(text.contains("accepted 190, written 190"), "{text}");
    assert_eq!(sink.close(), r, "close is idempotent");
    // A closed sink refuses.
    assert_eq!(
        sink.submit(&[Point::new(a, 1.0, T0)]).first_error,
        Some(Error::Closed)
    );
    assert_eq!(sink.flush(FLUSH), Err(Error::Closed));
}

// ---- Counting: `written` is what InfluxDB kept ----

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// Points stored in the measurements the mixed batch writes.
fn stored(influx: &Influx, db: &str) -> u64 {
    influx.count(db, "m") + influx.count(db, "n")
}

/// A batch of good lines mixed with every kind InfluxDB refuses reaches the server unchecked
/// (replayed from a spool left on disk, as an older perfsink or another tool could leave it),
/// beside points offered through `record` and the relay, which refuse at submit what the server
/// would refuse. Whatever the server answers, `written` must equal what `count()` reads back.
/// `api` holds the `INFLUXDB_*` keys of the path under test.
fn mixed_batch_written_equals_count(influx: &Influx, api: &str) {
    let db = "mixed";
    influx.create_db(db);
    // A one-hour default policy, so that a point two hours old is beyond retention.
    influx.exec(
        db,
        "CREATE RETENTION POLICY \"hour\" ON \"mixed\" DURATION 1h REPLICATION 1 DEFAULT",
    );
    const HOUR: i64 = 3600 * SEC;
    // Ten minutes ago, not at an hour's edge: all points share one shard group.
    let mut t = now_ns() - 600 * SEC;
    if t.rem_euclid(HOUR) < 10 * SEC {
        t += 10 * SEC;
    }
    influx.write_lines(db, &format!("m,k=pre v=1i {}\n", t - SEC));
    let before = stored(influx, db);
    assert_eq!(before, 1);

    let long = "x".repeat(70_000);
    let bad = [
        "m,k=a v=".to_string(),                        // unparseable
        "m,k=a v=2i -9223372036854775808".to_string(), // INT64_MIN
        "m,k=a v=3i 9223372036854775807".to_string(),  // INT64_MAX
        format!("m,k=a v=1.5 {}", t + 100),            // float where integers exist
        format!("n,k=a w=1i {}", t + 101),             // a new field as an integer...
        format!("n,k=a w=\"s\" {}", t + 102),          // ...and as a string, one batch
        format!("m,k={long} v=1i {}", t + 103),        // series key over 64 KiB
        format!("m,k=a {long}=1i {}", t + 104),        // field key over 64 KiB
        format!("m,k=a v=5i {}", t - 2 * HOUR),        // beyond retention
        format!("m,time=1 v=6i {}", t + 105),          // a tag named `time`
        format!("m time=7i {}", t + 106),              // only a field named `time`
    ];
    let mut spooled = Vec::new();
    for (i, line) in bad.iter().enumerate() {
        spooled.push(format!("m,k=a v={i}i {}", t + i as i64));
        spooled.push(line.clone());
    }
    spooled.push(format!("n,k=b w=1i {}", t + 200));
    let dir = std::env::temp_dir().join(format!("perfsink-mixed-{}-{}", std::process::id(), t));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{:016}.user.{}.lp", 0, spooled.len())),
        spooled.join("\n") + "\n",
    )
    .unwrap();

    let sink = open(
        influx,
        db,
        &format!("PERFSINK_SPOOL_DIR={};{api}", dir.display()),
    );
    assert_eq!(sink.stats().replayed, spooled.len() as u64);
    // Through `record`: good points, and what the server would refuse, refused here.
    for i in 0..10 {
        sink.record(
            "m",
            &[t_("k", "b")],
            &[f("v", FieldValue::Int(i))],
            t + 300 + i,
        )
        .unwrap();
    }
    let huge_tag = "x".repeat(1 << 20);
    let refused = [
        sink.record(
            "m",
            &[t_("k", &huge_tag)],
            &[f("v", FieldValue::Int(1))],
            t + 400,
        ),
        sink.record("m", &[], &[f(&long, FieldValue::Int(1))], t + 401),
        sink.record(
            "m",
            &[t_("k", "b")],
            &[f("v", FieldValue::Int(1))],
            i64::MIN,
        ),
        sink.record(
            "m",
            &[t_("k", "b")],
            &[f("v", FieldValue::Int(1))],
            i64::MAX,
        ),
    ];
    assert!(
        matches!(refused[0], Err(Error::InvalidInput(ref e)) if e.contains("max key length")),
        "{refused:?}"
    );
    assert!(
        matches!(refused[1], Err(Error::InvalidInput(ref e)) if e.contains("max key length")),
        "{refused:?}"
    );
    assert!(
        matches!(refused[2], Err(Error::InvalidValue(ref e)) if e.contains("outside the range")),
        "{refused:?}"
    );
    assert!(
        matches!(refused[3], Err(Error::InvalidValue(_))),
        "{refused:?}"
    );
    // Valid for the sink, refused by the server (a float where integers exist).
    sink.record(
        "m",
        &[t_("k", "b")],
        &[f("v", FieldValue::Float(0.5))],
        t + 402,
    )
    .unwrap();
    // Through the relay's path: out-of-range timestamps are refused with InfluxDB's words.
    let body = format!(
        "m,k=c v=1i {}\nm,k=c v=2i -9223372036854775808\nm,k=c v=3i 9223372036854775807\n",
        t + 500
    );
    let relayed = perfsink::sources::relay::ingest(
        &sink,
        body.as_bytes(),
        perfsink::lineproto::InputPrecision::Ns,
    );
    assert_eq!((relayed.accepted, relayed.rejected), (1, 2), "{relayed:?}");
    assert!(
        relayed.errors[0].1.contains("time outside range"),
        "{relayed:?}"
    );

    sink.flush(FLUSH).unwrap();
    let s = sink.stats();
    let kept = stored(influx, db) - before;
    assert_eq!(s.written, kept, "written must be what InfluxDB kept: {s:?}");
    assert_invariants(&s);
    assert_eq!(s.queue_depth, 0, "{s:?}");
    assert_eq!(s.rejected_invalid, 4 + 2, "{s:?}");
    // Exactly: the good lines, and one of the two lines that disagree on `w`'s type, are
    // kept; the server refused the 8 other bad lines and the float from `record`.
    let good = (bad.len() + 1) as u64 + 10 + 1;
    assert_eq!(kept, good + 1, "{s:?}");
    assert_eq!(s.rejected_server, bad.len() as u64, "{s:?}");
    assert_eq!(
        s.written + s.rejected_server,
        s.replayed + s.accepted,
        "{s:?}"
    );
    let r = sink.close();
    assert_eq!(r.stats.written, kept);
    let _ = std::fs::remove_dir_all(&dir);
}

fn t_<'a>(key: &'a str, value: &'a str) -> Tag<'a> {
    Tag::new(key, value)
}

#[test]
fn mixed_batch_counts_what_influxdb_1_6_kept_v1() {
    let influx = Influx::start();
    mixed_batch_written_equals_count(&influx, "");
}

#[test]
fn mixed_batch_counts_what_influxdb_1_8_kept_v1() {
    let influx = Influx::start_1_8();
    mixed_batch_written_equals_count(&influx, "");
}

/// InfluxDB 1.8's `/api/v2/write` with auth on: token `user:password`, org ignored, bucket
/// `db/rp`.
#[test]
fn mixed_batch_counts_what_influxdb_1_8_kept_v2() {
    let influx = Influx::start_1_8_with_auth("admin", "pw");
    mixed_batch_written_equals_count(
        &influx,
        "INFLUXDB_TOKEN=admin:pw;INFLUXDB_ORG=ignored;INFLUXDB_BUCKET=mixed/hour",
    );
}

/// Without auth, 1.8 takes any token on `/api/v2/write`; a wrong one is refused with auth on.
#[test]
fn influxdb_1_8_v2_tokens() {
    let open_server = Influx::start_1_8();
    open_server.create_db("d");
    let sink = open(
        &open_server,
        "d",
        "INFLUXDB_TOKEN=anything;INFLUXDB_ORG=o;INFLUXDB_BUCKET=d",
    );
    sink.record("m", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    sink.flush(FLUSH).unwrap();
    assert_eq!(open_server.count("d", "m"), 1);
    let secured = Influx::start_1_8_with_auth("admin", "pw");
    secured.create_db("d");
    let sink = open(
        &secured,
        "d",
        "INFLUXDB_TOKEN=admin:wrong;INFLUXDB_ORG=o;INFLUXDB_BUCKET=d",
    );
    sink.record("m", &[], &[f("v", FieldValue::Int(1))], T0)
        .unwrap();
    assert!(matches!(sink.flush(FLUSH), Err(Error::Auth(_))));
}
