//! The JMeter listener into a real InfluxDB 1.6, through the C ABI the Java listener calls
//! (`perfsink_jmeter_*`, records + one string arena): per transaction, status and interval
//! the counts InfluxDB holds equal the samples submitted, errors per (code, message),
//! the `all` summary, true per-interval percentiles, float-typed fields, the annotations,
//! the queries of Grafana dashboard 4026, and `rawSamples` keeping every sample.

mod common;

use std::collections::BTreeMap;
use std::ffi::c_char;
use std::sync::OnceLock;

use common::influx::series_rows;
use common::Influx;
use perfsink::ffi::jmeter::*;
use perfsink::ffi::perfsink_result;
use perfsink::ffi::types::{perfsink_close_report, perfsink_tag};
use serde_json::Value;

const INTERVAL_MS: i64 = 5000;
const LABELS: [&str; 3] = ["home page", "login,form", "search=q \"x\""];

fn influx() -> &'static Influx {
    static INFLUX: OnceLock<Influx> = OnceLock::new();
    INFLUX.get_or_init(Influx::start)
}

/// One generated sample, as Java would copy it out of a `SampleResult`.
#[derive(Clone)]
struct Gen {
    ts: i64,
    elapsed: i64,
    label: &'static str,
    code: &'static str,
    message: &'static str,
    assertion: &'static str,
    thread: String,
    success: bool,
}

/// Samples over three intervals starting at the next interval boundary (so none is written
/// before close), some failing with codes or an assertion, in shuffled order.
fn generate(n: usize, seed: u64) -> (i64, Vec<Gen>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let start = now - now.rem_euclid(INTERVAL_MS) + INTERVAL_MS;
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out: Vec<Gen> = (0..n)
        .map(|i| {
            let (code, message, assertion, success) = match rng.u32(0..10) {
                0 => ("500", "Internal Server Error", "", false),
                1 => ("404", "Not Found", "", false),
                2 => ("200", "OK", "missing token", false),
                _ => ("200", "OK", "", true),
            };
            Gen {
                ts: start + rng.i64(0..3 * INTERVAL_MS),
                // Ties on purpose: few distinct values.
                elapsed: rng.i64(1..40) * 5,
                label: LABELS[i % 3],
                code,
                message,
                assertion,
                thread: format!("Thread Group 1-{}", i % 4 + 1),
                success,
            }
        })
        .collect();
    rng.shuffle(&mut out);
    (start, out)
}

struct Handle(*mut perfsink_jmeter);

impl Drop for Handle {
    fn drop(&mut self) {
        unsafe { perfsink_jmeter_free(self.0) };
    }
}

fn open(params: &[(&str, &str)]) -> Handle {
    let tags: Vec<perfsink_tag> = params
        .iter()
        .map(|(k, v)| perfsink_tag {
            key: k.as_ptr().cast(),
            key_len: k.len(),
            value: v.as_ptr().cast(),
            value_len: v.len(),
        })
        .collect();
    let mut j = std::ptr::null_mut();
    let mut err = [0 as c_char; 512];
    let rc = unsafe {
        perfsink_jmeter_open(
            tags.as_ptr(),
            tags.len(),
            &mut j,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
    assert_eq!(rc, perfsink_result::PERFSINK_OK, "{msg:?}");
    Handle(j)
}

/// Packs a batch as the Java listener does (records + one UTF-8 arena) and submits it.
fn submit(j: &Handle, batch: &[Gen]) {
    let mut arena: Vec<u8> = Vec::new();
    let mut put = |s: &str| {
        let off = arena.len() as u32;
        arena.extend_from_slice(s.as_bytes());
        (off, s.len() as u32)
    };
    let records: Vec<perfsink_jmeter_sample> = batch
        .iter()
        .map(|g| {
            let (label_off, label_len) = put(g.label);
            let (code_off, code_len) = put(g.code);
            let (message_off, message_len) = put(g.message);
            let (assertion_off, assertion_len) = put(g.assertion);
            let (thread_off, thread_len) = put(&g.thread);
            perfsink_jmeter_sample {
                timestamp_ms: g.ts,
                elapsed_ms: g.elapsed,
                latency_ms: g.elapsed / 2,
                connect_ms: 1,
                bytes: 100,
                sent_bytes: 10,
                grp_threads: 4,
                all_threads: 4,
                label_off,
                label_len,
                code_off,
                code_len,
                message_off,
                message_len,
                assertion_off,
                assertion_len,
                thread_off,
                thread_len,
                flags: if g.success {
                    PERFSINK_JMETER_SUCCESS
                } else {
                    0
                },
                sub_results: 0,
            }
        })
        .collect();
    let mut err = [0 as c_char; 256];
    let rc = unsafe {
        perfsink_jmeter_submit(
            j.0,
            records.as_ptr(),
            records.len(),
            arena.as_ptr().cast(),
            arena.len(),
            err.as_mut_ptr(),
            err.len(),
        )
    };
    assert_eq!(rc, perfsink_result::PERFSINK_OK);
}

fn close(j: &Handle) -> perfsink_close_report {
    let mut report = perfsink_close_report::default();
    let rc = unsafe {
        perfsink_jmeter_close(
            j.0,
            &mut report,
            std::mem::size_of_val(&report),
            std::ptr::null_mut(),
            0,
        )
    };
    assert_eq!(rc, perfsink_result::PERFSINK_OK);
    report
}

fn params<'a>(db: &'a str, url: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("influxdbUrl", url),
        ("application", "shop"),
        ("percentiles", "50;90;95;99"),
        ("testTitle", "checkout"),
        ("TAG_run", "r1"),
        ("PERFSINK_FLUSH_INTERVAL_MS", "50"),
        ("PERFSINK_SELF_METRICS_INTERVAL_MS", "0"),
    ];
    let _ = db;
    p.extend_from_slice(extra);
    p
}

fn rows(db: &str, q: &str) -> Vec<BTreeMap<String, Value>> {
    series_rows(&influx().query_series(db, q))
}

fn num(row: &BTreeMap<String, Value>, k: &str) -> f64 {
    row[k].as_f64().unwrap_or_else(|| panic!("{k} in {row:?}"))
}

/// Interval start of a sample.
fn interval(ts: i64) -> i64 {
    ts - ts.rem_euclid(INTERVAL_MS)
}

/// Nearest rank of `p` percent among sorted values.
fn nearest_rank(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank - 1]
}

#[test]
fn counts_errors_percentiles_and_types_match_the_samples() {
    let db = "jm_counts";
    let url = format!("{}/write?db={db}", influx().url());
    let j = open(&params(db, &url, &[]));
    let (start, samples) = generate(3000, 7);
    for batch in samples.chunks(97) {
        submit(&j, batch);
    }
    let report = close(&j);
    assert_eq!(report.stats.dropped, 0);
    assert_eq!(report.stats.rejected, 0);
    // Every sample accounted: folded into the statistics, none late.
    assert_eq!(report.stats.aggregated, samples.len() as u64);
    assert_eq!(report.stats.aggregated_late, 0);
    assert_eq!(report.stats.written, report.stats.accepted);

    // Expected: per (interval, label, status) counts and sorted elapsed.
    let mut want: BTreeMap<(i64, String, &str), Vec<f64>> = BTreeMap::new();
    let mut errors: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for g in &samples {
        let iv = interval(g.ts) * 1_000_000;
        for status in ["all", if g.success { "ok" } else { "ko" }] {
            want.entry((iv, g.label.to_string(), status))
                .or_default()
                .push(g.elapsed as f64);
            want.entry((iv, "all".into(), status))
                .or_default()
                .push(g.elapsed as f64);
        }
        if !g.success {
            let (code, msg) = if g.assertion.is_empty() {
                (g.code, g.message)
            } else {
                ("Assertion failed", g.assertion)
            };
            *errors
                .entry((g.label.into(), code.into(), msg.into()))
                .or_default() += 1;
        }
    }
    for v in want.values_mut() {
        v.sort_by(f64::total_cmp);
    }

    let series = influx().query_series(
        db,
        "SELECT count, countError, \"pct95.0\", \"pct50.0\", hit, sb, rb FROM jmeter WHERE statut =~ /./ GROUP BY transaction, statut, application, run",
    );
    let mut seen = 0;
    for s in &series {
        let tags = &s["tags"];
        assert_eq!(
            (tags["application"].as_str(), tags["run"].as_str()),
            (Some("shop"), Some("r1"))
        );
        let label = tags["transaction"].as_str().unwrap().to_string();
        let status = tags["statut"].as_str().unwrap();
        for row in series_rows(std::slice::from_ref(s)) {
            let t = row["time"].as_i64().unwrap();
            let key = (t, label.clone(), status);
            let values = want
                .get(&key)
                .unwrap_or_else(|| panic!("unexpected point {key:?}"));
            assert_eq!(num(&row, "count") as usize, values.len(), "{key:?}");
            // Exact up to 512 samples, then the histogram's 0.1 %.
            let close_to = |field: &str, p: f64| {
                let (got, exact) = (num(&row, field), nearest_rank(values, p));
                let tolerance = if values.len() > 512 {
                    exact * 0.001
                } else {
                    0.0
                };
                assert!(
                    (got - exact).abs() <= tolerance,
                    "{key:?} {field}: {got} vs {exact}"
                );
            };
            close_to("pct95.0", 95.0);
            close_to("pct50.0", 50.0);
            if label == "all" {
                let ko = want.get(&(t, "all".into(), "ko")).map_or(0, Vec::len);
                assert_eq!(num(&row, "countError") as usize, ko);
            }
            // hit/sb/rb: the label's (or summary's) interval totals.
            let all = &want[&(t, label.clone(), "all")];
            assert_eq!(num(&row, "hit") as usize, all.len());
            assert_eq!(num(&row, "rb") as usize, all.len() * 100);
            assert_eq!(num(&row, "sb") as usize, all.len() * 10);
            seen += 1;
        }
    }
    let wanted_points = want
        .keys()
        .filter(|(_, l, s)| l != "all" || *s == "all")
        .count();
    assert_eq!(seen, wanted_points);
    assert!((3..=4).contains(
        &want
            .keys()
            .map(|k| k.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    ));

    // Errors per (transaction, code, message), summed over the intervals.
    let series = influx().query_series(
        db,
        "SELECT sum(count) FROM jmeter WHERE responseCode =~ /./ GROUP BY transaction, responseCode, responseMessage",
    );
    let mut got_errors = BTreeMap::new();
    for s in &series {
        let t = &s["tags"];
        let key = (
            t["transaction"].as_str().unwrap().to_string(),
            t["responseCode"].as_str().unwrap().to_string(),
            t["responseMessage"].as_str().unwrap().to_string(),
        );
        got_errors.insert(key, s["values"][0][1].as_f64().unwrap() as u64);
    }
    assert_eq!(got_errors, errors);

    // Every field is a float, as the built-in listener's.
    for row in rows(db, "SHOW FIELD KEYS FROM jmeter") {
        assert_eq!(row["fieldType"], "float", "{row:?}");
    }
    // Threads lines and the annotations.
    let internal = rows(
        db,
        "SELECT maxAT, minAT, meanAT FROM jmeter WHERE transaction = 'internal'",
    );
    assert!(
        internal.iter().any(|r| num(r, "maxAT") == 4.0),
        "{internal:?}"
    );
    let texts: Vec<String> = rows(db, "SELECT text, title FROM events")
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["checkout started", "checkout ended"]);
    let _ = start;
}

/// Every query of dashboard 4026 (reference jmeter.md §6) answers with data.
#[test]
fn dashboard_4026_queries_return_data() {
    let db = "jm_dash";
    let url = format!("{}/write?db={db}", influx().url());
    let j = open(&params(db, &url, &[("percentiles", "50;90;95;99")]));
    let (_, samples) = generate(600, 11);
    submit(&j, &samples);
    close(&j);
    let m = "\"jmeter\"";
    // The samples lie in the next intervals: Grafana's $timeFilter has an upper bound too.
    let t = "time > now() - 1h AND time < now() + 1h";
    let tr = "\"transaction\" =~ /^(home page|login,form)$/";
    let queries = [
        "SHOW TAG VALUES FROM \"jmeter\" WITH KEY = \"application\"".to_string(),
        format!("SHOW TAG VALUES FROM {m} WITH KEY = \"transaction\" WHERE \"application\" =~ /^shop$/ AND \"transaction\" != 'internal' AND \"transaction\" != 'all'"),
        format!("select text from events where {t}"),
        format!("SELECT sum(\"count\") FROM {m} WHERE \"application\" =~ /^shop$/ AND \"transaction\" = 'all' AND {t}"),
        format!("SELECT sum(\"countError\") FROM {m} WHERE \"application\" =~ /^shop$/ AND \"transaction\" = 'all' AND {t}"),
        format!("SELECT sum(\"countError\") / sum(\"count\") FROM (SELECT \"count\", \"countError\" FROM {m} WHERE \"transaction\" = 'all' AND {t})"),
        format!("SELECT mean(\"count\") / 5 FROM {m} WHERE \"transaction\" = 'all' AND {t} GROUP BY time(5s) fill(null)"),
        format!("SELECT last(\"maxAT\") FROM {m} WHERE \"transaction\" = 'internal' AND {t} GROUP BY time(5s)"),
        format!("SELECT mean(\"pct95.0\") FROM {m} WHERE \"statut\" = 'ok' AND {t} GROUP BY \"transaction\""),
        format!("SELECT sum(\"count\") FROM {m} WHERE \"statut\" = 'ko' AND {t} GROUP BY \"transaction\""),
        format!("SELECT sum(\"count\") FROM {m} WHERE \"responseCode\" !~ /^$/ AND {t} GROUP BY \"responseCode\", \"responseMessage\""),
        format!("SELECT sum(\"count\") FROM {m} WHERE \"statut\" = 'all' AND {tr} AND {t} GROUP BY \"transaction\""),
        format!("SELECT last(\"count\") / 5 FROM {m} WHERE \"statut\" = 'ok' AND {tr} AND {t} GROUP BY time(5s), \"transaction\""),
        format!("SELECT last(\"avg\"), last(\"pct50.0\"), last(\"pct90.0\"), last(\"pct95.0\"), last(\"pct99.0\"), last(\"max\") FROM {m} WHERE \"statut\" = 'ok' AND {tr} AND {t} GROUP BY \"transaction\""),
    ];
    for q in &queries {
        let series = influx().query_series(db, q);
        let values = series
            .iter()
            .filter_map(|s| s["values"].as_array())
            .flatten()
            .count();
        // GROUP BY time(5s) also yields null buckets: at least one non-null value.
        let non_null = series
            .iter()
            .filter_map(|s| s["values"].as_array())
            .flatten()
            .any(|r| r.as_array().unwrap()[1..].iter().any(|v| !v.is_null()));
        assert!(values > 0 && non_null, "no data: {q}");
    }
}

/// `rawSamples=true`: one point per sample in `jmeter_raw`, ties within a thread moved
/// apart by the engine's de-duplication instead of overwritten.
#[test]
fn raw_samples_keep_every_sample() {
    let db = "jm_raw";
    let url = format!("{}/write?db={db}", influx().url());
    let j = open(&params(db, &url, &[("rawSamples", "true")]));
    let (_, mut samples) = generate(500, 3);
    // Roughly in time order as JMeter hands them over (the de-duplication looks back
    // PERFSINK_DEDUP_WINDOW_MS), with 20 exact duplicates: same thread, label, code, time.
    samples.sort_by_key(|g| g.ts);
    for i in 0..20 {
        let dup = samples[i * 20].clone();
        samples.insert(i * 20, dup);
    }
    submit(&j, &samples);
    let report = close(&j);
    assert_eq!(report.stats.rejected + report.stats.dropped, 0);
    assert_eq!(
        influx().count_field(db, "jmeter_raw", "elapsed"),
        samples.len() as u64
    );
    let total: f64 = rows(
        db,
        "SELECT sum(\"count\") FROM jmeter WHERE \"transaction\" = 'all'",
    )
    .first()
    .map_or(0.0, |r| num(r, "sum"));
    assert_eq!(total as usize, samples.len());
}

/// Intervals are written while the test runs, once the stream's time passes their end plus
/// the grace — not only at close.
#[test]
fn intervals_are_written_as_they_fall_due() {
    let db = "jm_due";
    // Created here: the loop below may query before the sink's own CREATE DATABASE ran.
    influx().create_db(db);
    let url = format!("{}/write?db={db}", influx().url());
    let j = open(&params(
        db,
        &url,
        &[
            ("backend_influxdb.send_interval", "1"),
            ("PERFSINK_AGGREGATE_GRACE_MS", "200"),
        ],
    ));
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let sample = |ts| Gen {
        ts,
        elapsed: 5,
        label: "tick",
        code: "200",
        message: "OK",
        assertion: "",
        thread: "t".into(),
        success: true,
    };
    let first = now();
    submit(&j, &[sample(first)]);
    // Samples keep coming, so the stream's time is theirs; the first interval is due
    // 200 ms after its end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut written = 0;
    while std::time::Instant::now() < deadline && written == 0 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        submit(&j, &[sample(now())]);
        written = influx().count_field(db, "jmeter", "countError");
    }
    assert!(written >= 1, "no interval written while open");
    let rows = rows(
        db,
        "SELECT \"count\" FROM jmeter WHERE \"transaction\" = 'all'",
    );
    assert_eq!(
        rows[0]["time"].as_i64().unwrap(),
        (first - first.rem_euclid(1000)) * 1_000_000
    );
    let report = close(&j);
    let total: f64 = super_sum(db);
    assert_eq!(total as u64, report.stats.aggregated);
}

fn super_sum(db: &str) -> f64 {
    rows(
        db,
        "SELECT sum(\"count\") FROM jmeter WHERE \"transaction\" = 'all'",
    )
    .first()
    .map_or(0.0, |r| num(r, "sum"))
}

/// A submit racing close is either written or refused with `Closed`: what InfluxDB holds
/// equals what was accepted (Rust API, two threads).
#[test]
fn submit_racing_close_is_written_or_refused() {
    use perfsink::sources::jmeter::{params::resolve, stats::Sample, Jmeter};
    let db = "jm_race";
    let url = format!("{}/write?db={db}", influx().url());
    let p = params(db, &url, &[]);
    let j = Jmeter::open(resolve(p, std::iter::empty::<(&str, &str)>()).unwrap()).unwrap();
    let accepted = std::thread::scope(|scope| {
        let producer = scope.spawn(|| {
            let mut accepted = 0u64;
            loop {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis() as i64;
                let s = Sample {
                    timestamp_ms: now,
                    elapsed_ms: 3,
                    label: "race",
                    success: true,
                    ..Sample::default()
                };
                match j.submit(&[s; 10]) {
                    Ok(f) => accepted += f.folded as u64,
                    Err(perfsink::Error::Closed) => return accepted,
                    Err(e) => panic!("{e}"),
                }
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let report = j.close();
        assert_eq!(report.undelivered(), 0);
        producer.join().unwrap()
    });
    assert!(accepted > 0);
    assert_eq!(super_sum(db) as u64, accepted);
}

/// Two generators writing one `application` into one database: each line carries the
/// generator's `instance`, so neither overwrites the other and `sum("count")` adds them up;
/// `PERFSINK_TAGS` global tags reach every line, a `TAG_instance` names the instance itself.
#[test]
fn two_generators_add_up_instead_of_overwriting() {
    let db = "jm_two";
    let url = format!("{}/write?db={db}", influx().url());
    let (_, samples) = generate(300, 9);
    let a = open(&params(db, &url, &[("PERFSINK_TAGS", "site=eu")]));
    let b = open(&params(db, &url, &[("TAG_instance", "gen-b")]));
    submit(&a, &samples);
    submit(&b, &samples);
    close(&a);
    close(&b);
    let q = "SELECT sum(\"count\") FROM jmeter WHERE \"transaction\" = 'all'";
    let total = rows(db, q).first().map_or(0.0, |r| num(r, "sum"));
    assert_eq!(total as usize, 2 * samples.len());
    let instances = rows(db, "SHOW TAG VALUES FROM jmeter WITH KEY = \"instance\"");
    let values: Vec<&str> = instances
        .iter()
        .filter_map(|r| r["value"].as_str())
        .collect();
    assert_eq!(values.len(), 2, "{values:?}");
    assert!(values.contains(&"gen-b"), "{values:?}");
    let own = values.iter().find(|v| **v != "gen-b").unwrap();
    assert!(own.contains(&format!(":{}", std::process::id())), "{own}");
    let eu = rows(
        db,
        "SELECT count(\"text\") FROM events WHERE \"site\" = 'eu'",
    );
    assert_eq!(eu.first().map(|r| num(r, "count")), Some(2.0));
}
