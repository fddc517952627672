//! The relay in the aggregated mode (`PERFSINK_MODE=aggregate|both`) into a real InfluxDB 1.6:
//! k6's influxdb lines (a numeric `value` field) become `<measurement>_agg` points with the
//! statistics of their kind (from k6's built-in metric names, custom metrics as trends), their
//! escaped names read back exactly; other lines (JMeter's) are forwarded as they came; `both`
//! forwards the k6 lines too; the series cap refuses lines like InfluxDB does. And a stock k6
//! v1.1.0 run with `--out influxdb=<relay>` whose aggregated points match, per series and
//! interval, k6's own `--out json` of the same run.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::aggregate::{
    assert_no_mismatch, group, mismatches, percentile_fields, query_exact, read_agg_points,
    total_mismatches,
};
use common::influx::quote_ident;
use common::k6::{
    clean_env, k6_args, k6_binary, read_reference, run, script_env, start_target, total, with,
    WorkDir,
};
use common::{http, HttpResponse, Influx};
use perfsink::sources::k6::schema::builtin_metric_kind;
use perfsink::sources::relay::{Relay, RelayOptions, RelayStats};
use perfsink::{MetricKind, Report, Sink};
use serde_json::{json, Value};

/// 2023-11-14T22:13:20Z, a multiple of the 1 s interval.
const T0: i64 = 1_700_000_000_000_000_000;
const MS: i64 = 1_000_000;

const FAST: &str = "PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_CLOSE_TIMEOUT_MS=10000;PERFSINK_TAGS=instance=gen1";

fn influx() -> &'static Influx {
    static INFLUX: OnceLock<Influx> = OnceLock::new();
    INFLUX.get_or_init(Influx::start)
}

struct Setup {
    sink: Arc<Sink>,
    relay: Relay,
    db: String,
}

fn setup(db: &str, extra: &str) -> Setup {
    let kv = format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};{FAST};{extra}",
        influx().url()
    );
    let sink = Arc::new(Sink::from_kv(&kv).unwrap_or_else(|e| panic!("{kv}: {e}")));
    let options = RelayOptions {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..RelayOptions::default()
    };
    let relay = Relay::start(sink.clone(), options).unwrap();
    Setup {
        sink,
        relay,
        db: db.to_string(),
    }
}

impl Setup {
    fn write(&self, body: &str) -> HttpResponse {
        let q = http::encode_query(&[("db", &self.db), ("precision", "ns")]);
        let url = format!("{}/write?{q}", self.relay.url());
        http::request("POST", &url, &[], body.as_bytes()).unwrap()
    }

    /// Stops the relay and closes the sink: every open interval is written.
    fn finish(mut self) -> (RelayStats, Report) {
        self.relay.shutdown(Duration::from_secs(5));
        let stats = self.relay.stats();
        (stats, self.sink.close())
    }
}

fn measurements(db: &str) -> Vec<String> {
    influx()
        .query_rows(db, "SHOW MEASUREMENTS")
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect()
}

/// Every point of `m` as (tags without empty values, column → value), by series then time;
/// numbers read exactly.
fn points(db: &str, m: &str) -> Vec<(BTreeMap<String, String>, BTreeMap<String, Value>)> {
    let q = format!("SELECT * FROM {} GROUP BY *", quote_ident(m));
    let mut out = Vec::new();
    for series in query_exact(influx(), db, &q) {
        let tags: BTreeMap<String, String> = series["tags"]
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| v.as_str() != Some(""))
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        for row in common::influx::series_rows(std::slice::from_ref(&series)) {
            let row = row.into_iter().filter(|(_, v)| !v.is_null()).collect();
            out.push((tags.clone(), row));
        }
    }
    out
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn fields(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// k6 lines of each kind with names that need every escape (space, comma, `=`, a backslash,
/// quotes), a custom metric with an escaped measurement and an unsigned value, and lines
/// without a numeric `value` field (JMeter's listener, an event, a string `value`).
fn body() -> String {
    let name = r#"name=a\ b\,c\=d,status=200,weird=x\y\ "q""#;
    let t = |ms: i64| T0 + ms * MS;
    [
        format!(
            r#"http_req_duration,{name} value=12.5,vu=1i,url="http://x/a b" {}"#,
            t(100)
        ),
        format!(
            r#"http_req_duration,{name} value=7.5,vu=2i,url="http://x/a b" {}"#,
            t(200)
        ),
        format!(
            r#"http_req_duration,{name} value=30,vu=1i,url="http://x/a b" {}"#,
            t(1100)
        ),
        format!("http_reqs,{name} value=1,vu=1i {}", t(100)),
        format!("http_reqs,{name} value=1,vu=2i {}", t(100)),
        format!("http_reqs,{name} value=1,vu=1i {}", t(900)),
        format!("checks,check=ok\\ \\=\\,✓ value=1 {}", t(10)),
        format!("checks,check=ok\\ \\=\\,✓ value=0 {}", t(20)),
        format!("checks,check=ok\\ \\=\\,✓ value=1 {}", t(30)),
        format!("vus value=4i {}", t(100)),
        format!("vus value=6i {}", t(900)),
        format!("vus value=5i {}", t(500)),
        format!("my\\ custom\\,metric,tag=v value=2u {}", t(300)),
        format!(
            "jmeter,application=app,transaction=all count=17,countError=1,avg=2.5,pct90.0=4 {}",
            t(0)
        ),
        format!("events,application=app text=\"started\" {}", t(0)),
        format!("notes value=\"a string\" {}", t(0)),
    ]
    .join("\n")
}

#[test]
fn aggregate_folds_k6_lines_into_agg_points_and_forwards_the_others() {
    let s = setup("relay_agg", "PERFSINK_MODE=aggregate");
    let db = s.db.clone();
    let r = s.write(&body());
    assert_eq!(r.status, 204, "{}", r.text());
    let health = http::get(&format!("{}/health", s.relay.url()))
        .unwrap()
        .json();
    assert_eq!(health["sink"]["aggregated"], json!(13), "{health}");
    assert_eq!(health["relay"]["lines_accepted"], json!(16), "{health}");
    let (relay, report) = s.finish();
    assert_eq!(relay.lines_accepted, 16);
    assert_eq!(relay.lines_rejected, 0);
    assert_eq!(report.stats.aggregated, 13, "{report}");
    assert_eq!(report.stats.aggregated_late, 0);
    assert_eq!(report.undelivered(), 0);

    assert_eq!(
        measurements(&db),
        [
            "checks_agg",
            "events",
            "http_req_duration_agg",
            "http_reqs_agg",
            "jmeter",
            "my custom,metric_agg",
            "notes",
            "vus_agg"
        ]
    );
    let named = tags(&[
        ("instance", "gen1"),
        ("name", "a b,c=d"),
        ("status", "200"),
        ("weird", r#"x\y "q""#),
    ]);
    let p = |t: i64, f: &[(&str, Value)]| {
        let mut row = fields(f);
        row.insert("time".into(), json!(t));
        row
    };
    assert_eq!(
        points(&db, "http_req_duration_agg"),
        [
            (
                named.clone(),
                p(
                    T0,
                    &[
                        ("count", json!(2)),
                        ("sum", json!(20)),
                        ("min", json!(7.5)),
                        ("max", json!(12.5)),
                        ("mean", json!(10)),
                        ("p50", json!(7.5)),
                        ("p90", json!(12.5)),
                        ("p95", json!(12.5)),
                        ("p99", json!(12.5)),
                    ]
                )
            ),
            (
                named.clone(),
                p(
                    T0 + 1000 * MS,
                    &[
                        ("count", json!(1)),
                        ("sum", json!(30)),
                        ("min", json!(30)),
                        ("max", json!(30)),
                        ("mean", json!(30)),
                        ("p50", json!(30)),
                        ("p90", json!(30)),
                        ("p95", json!(30)),
                        ("p99", json!(30)),
                    ]
                )
            ),
        ]
    );
    assert_eq!(
        points(&db, "http_reqs_agg"),
        [(named, p(T0, &[("count", json!(3)), ("sum", json!(3))]))]
    );
    assert_eq!(
        points(&db, "checks_agg"),
        [(
            tags(&[("instance", "gen1"), ("check", "ok =,✓")]),
            p(
                T0,
                &[
                    ("count", json!(3)),
                    ("passes", json!(2)),
                    ("rate", json!(2.0 / 3.0))
                ]
            )
        )]
    );
    assert_eq!(
        points(&db, "vus_agg"),
        [(
            tags(&[("instance", "gen1")]),
            p(
                T0,
                &[
                    ("count", json!(3)),
                    ("last", json!(6)),
                    ("min", json!(4)),
                    ("max", json!(6))
                ]
            )
        )]
    );
    let custom = points(&db, "my custom,metric_agg");
    assert_eq!(custom.len(), 1);
    assert_eq!(custom[0].0, tags(&[("instance", "gen1"), ("tag", "v")]));
    assert_eq!(custom[0].1["count"], json!(1));
    assert_eq!(custom[0].1["p99"], json!(2), "a custom metric is a trend");

    // Lines without a numeric `value` are forwarded as they came.
    assert_eq!(
        influx().query_rows(
            &db,
            "SELECT \"count\", countError, avg, \"pct90.0\" FROM jmeter"
        ),
        [vec![json!(T0), json!(17), json!(1), json!(2.5), json!(4)]]
    );
    assert_eq!(
        influx().query_rows(&db, "SELECT \"value\" FROM notes"),
        [vec![json!(T0), json!("a string")]]
    );
}

#[test]
fn both_forwards_the_k6_lines_exactly_and_aggregates_them() {
    let s = setup("relay_agg_both", "PERFSINK_MODE=both");
    let db = s.db.clone();
    let r = s.write(&body());
    assert_eq!(r.status, 204, "{}", r.text());
    let (relay, report) = s.finish();
    assert_eq!(relay.lines_accepted, 16);
    assert_eq!(report.stats.aggregated, 13, "{report}");
    assert_eq!(report.undelivered(), 0);
    let ms = measurements(&db);
    for m in [
        "http_req_duration",
        "http_req_duration_agg",
        "vus",
        "vus_agg",
        "jmeter",
    ] {
        assert!(ms.iter().any(|x| x == m), "{m} in {ms:?}");
    }
    assert_eq!(
        influx().query_rows(
            &db,
            "SELECT \"value\", vu, url, \"name\", weird, instance FROM http_req_duration"
        ),
        [
            vec![
                json!(T0 + 100 * MS),
                json!(12.5),
                json!(1),
                json!("http://x/a b"),
                json!("a b,c=d"),
                json!(r#"x\y "q""#),
                json!("gen1")
            ],
            vec![
                json!(T0 + 200 * MS),
                json!(7.5),
                json!(2),
                json!("http://x/a b"),
                json!("a b,c=d"),
                json!(r#"x\y "q""#),
                json!("gen1")
            ],
            vec![
                json!(T0 + 1100 * MS),
                json!(30),
                json!(1),
                json!("http://x/a b"),
                json!("a b,c=d"),
                json!(r#"x\y "q""#),
                json!("gen1")
            ],
        ]
    );
    assert_eq!(influx().count(&db, "http_reqs"), 3);
    let agg = points(&db, "http_req_duration_agg");
    assert_eq!(agg.len(), 2);
    assert_eq!(agg[0].1["count"], json!(2));
    assert_eq!(agg[0].1["sum"], json!(20));
}

#[test]
fn lines_over_the_series_cap_are_refused_like_influxdb_refuses_them() {
    // Each aggregated series takes two: its own and its `_agg` series.
    let s = setup(
        "relay_agg_cap",
        "PERFSINK_MODE=aggregate;PERFSINK_MAX_SERIES=4",
    );
    let db = s.db.clone();
    let body = format!(
        "m,t=a value=1 {T0}\nm,t=b value=2 {T0}\nm,t=c value=3 {T0}\n\
         jmeter,t=c count=1 {T0}\nm,t=a value=4 {}",
        T0 + 1
    );
    let r = s.write(&body);
    assert_eq!(r.status, 400, "{}", r.text());
    let error = r.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("partial write: unable to parse 'm,t=c value=3 1700000000000000000': ")
            && error.contains("series limit of 4 reached")
            && error.ends_with(" dropped=1"),
        "{error}"
    );
    let (relay, report) = s.finish();
    assert_eq!((relay.lines_accepted, relay.lines_rejected), (4, 1));
    assert_eq!(report.stats.rejected_invalid, 1, "{report}");
    assert!(report.stats.series_rejected >= 1, "{report}");
    assert_eq!(report.stats.aggregated, 3);
    let m = points(&db, "m_agg");
    let counts: Vec<(String, Value)> = m
        .iter()
        .map(|(t, row)| (t["t"].clone(), row["count"].clone()))
        .collect();
    assert_eq!(counts, [("a".into(), json!(2)), ("b".into(), json!(1))]);
    assert_eq!(influx().count(&db, "jmeter"), 1);
}

#[test]
fn stock_k6_through_an_aggregating_relay_matches_its_json_output() {
    let db = "relay_agg_k6";
    // The default grace (2 s): k6 pushes once a second, and intervals fall due by the
    // stream's time, so no sample is late even on a loaded machine.
    let s = setup(db, "PERFSINK_MODE=aggregate");
    let dir = WorkDir::new("relay-agg");
    let target = start_target();
    let out = format!("influxdb={}/{db}", s.relay.url());
    let args = k6_args("4", "5s", &["--out", &out]);
    let mut cmd = Command::new(k6_binary());
    let script = script_env(&target);
    clean_env(&mut cmd)
        .arg("run")
        .args(&args)
        .current_dir(&dir.0)
        .envs(with(&script, &[("SLEEP", "0.05")]));
    let k6 = run(cmd, "k6 run", Duration::from_secs(90));
    assert!(k6.status.success(), "k6: {}", k6.stderr);
    assert!(!k6.stderr.contains("Couldn't write stats"), "{}", k6.stderr);
    let (relay, report) = s.finish();

    let reference = read_reference(&dir.path("ref.json"));
    let total = total(&reference);
    assert!(total > 1000, "a real run: {total} samples");
    assert_eq!(relay.lines_rejected + relay.lines_dropped, 0);
    assert_eq!(relay.lines_accepted, total);
    assert_eq!(report.stats.aggregated, total, "{report}");
    assert_eq!(report.stats.aggregated_late, 0, "{report}");
    assert_eq!(report.undelivered(), 0, "{report}");

    // The relay knows k6's built-in metrics by name; custom ones (whatever their k6 type)
    // are trends.
    let kinds: BTreeMap<String, String> = reference
        .keys()
        .map(|m| {
            let kind = builtin_metric_kind(m).unwrap_or(MetricKind::Trend);
            (m.clone(), kind.as_str().to_string())
        })
        .collect();
    let groups = group(&reference, 1_000_000_000);
    let points = read_agg_points(influx(), db);
    let mut errors = mismatches(
        "relay",
        &points,
        &groups,
        &kinds,
        &percentile_fields("50,90,95,99"),
    );
    errors.extend(total_mismatches("relay", &points, &groups, &kinds));
    assert_no_mismatch(&errors);
    assert!(points.iter().all(|p| p.instance() == Some("gen1")));
    for kind in ["counter", "gauge", "rate", "trend"] {
        assert!(kinds.values().any(|k| k == kind), "no {kind} in the run");
    }
    eprintln!(
        "{total} samples in {} points, all exact against k6's record",
        points.len()
    );
}
