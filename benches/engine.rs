//! Engine benchmark: `cargo bench --bench engine`. A plain `main` (no harness) that prints one
//! table: the machine's core count, then per row ns/sample, samples/s, the target and pass/fail.
//!
//! Rows:
//! * submit + encode through the Rust API (`Sink::submit`), batches of 1, 64 and 1024 k6-like
//!   points (`http_req_duration`, 6 tags, `value` plus the `vu`/`iter` fields, ~170 B lines;
//!   values are milliseconds made the way k6 makes them, nanoseconds / 1e6), one producer
//!   thread, against a real sink whose writer sends to a local null HTTP server (204,
//!   keep-alive) started here, so the whole path runs (queue, writer, gzip, HTTP);
//! * the same through the C ABI (`perfsink_sink_submit`), and the one-point convenience call
//!   `perfsink_sink_record` with a `workflow_step` point;
//! * the producers' cost with 8 threads feeding batches of 1024 (timestamps at the wall clock,
//!   as k6's are), in each `PERFSINK_MODE`: `raw` (the baseline, measured in the same run),
//!   `aggregate` (samples folded into per-interval statistics, target <= 100 ns) and `both`.
//!   Their ns/sample is the producer threads' CPU time summed over the 8 threads per sample
//!   (the cost a load generator pays, whatever the scheduling of 8 threads on few cores);
//!   samples/s is the throughput of all 8 together (under `PERFSINK_QUEUE_POLICY=block`: raw
//!   lines wait for the writer instead of being dropped, so no row loses points);
//! * line-protocol encoding alone (prefix + float + timestamp into a `Vec`);
//! * k6's JSON output stream into the sink (`perfsink k6`'s source): 1024 k6 `Point` lines a
//!   call (HTTP trails: 8 metrics, 100 URLs, vu/iter metadata, ~330 B a line) read, parsed and
//!   submitted, in k6's own key order (the fast path) and in another order (the general
//!   scanner);
//! * end to end into a private influxd 1.x (2 M points, 5000-line batches), counted back;
//! * the memory bound with InfluxDB down (in a child process, so its peak RSS is its own).
//!
//! Micro rows take the best of 5 runs of 200 ms after a warm-up; the sink is flushed between
//! runs (untimed) so a run never measures a full queue. Rates count accepted points only, and
//! any point dropped or rejected fails the row. The detail column adds the producer thread's
//! own CPU time per sample (`/proc/thread-self/schedstat`), which other load on the machine
//! disturbs less than the wall clock. Progress goes to stderr, the table to stdout.
//!
//! `cargo bench --bench engine -- rust c-1024 encode e2e memory` runs only the rows whose key
//! starts with one of the words (keys: `rust-1`, `rust-64`, `rust-1024`, `threads-raw`,
//! `threads-aggregate`, `threads-both`, `c-1`, `c-64`, `c-1024`, `c-value`, `c-record`,
//! `encode`, `k6-json`, `k6-json-general`, `e2e`, `memory`).

#[path = "../tests/common/mod.rs"]
mod common;

use std::ffi::c_char;
use std::hint::black_box;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use perfsink::ffi::perfsink_result;
use perfsink::ffi::sink::{
    perfsink_sink, perfsink_sink_close, perfsink_sink_flush, perfsink_sink_free,
    perfsink_sink_open, perfsink_sink_record, perfsink_sink_register_series, perfsink_sink_stats,
    perfsink_sink_submit,
};
use perfsink::ffi::types::{
    perfsink_close_report, perfsink_field, perfsink_point, perfsink_stats, perfsink_tag,
};
use perfsink::lineproto::{write_float, write_timestamp};
use perfsink::model::now_ns;
use perfsink::{Field, FieldValue, Point, SeriesId, Sink, Tag};

const RUNS: usize = 5;
const RUN_TIME: Duration = Duration::from_millis(200);
const WARMUP: Duration = Duration::from_millis(100);
/// Distinct k6-like series the producers cycle through.
const SERIES: usize = 8;
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Targets.
const BATCH_1024_MIN_PER_S: f64 = 10e6;
const C_SINGLE_MAX_NS: f64 = 250.0;
/// Producer CPU per sample in aggregate mode, 8 threads at batch 1024 (issue 8).
const AGGREGATE_MAX_NS: f64 = 100.0;
const THREADS: usize = 8;
const THREADS_BATCH: usize = 1024;
const ENCODE_MIN_PER_S: f64 = 10e6;
const E2E_POINTS: u64 = 2_000_000;
const E2E_MIN_PER_S: f64 = 200e3;
const MEM_MAX_BYTES: u64 = 16 << 20;
const MEM_QUEUE: u64 = 16;
const MEM_BATCH_BYTES: u64 = 1 << 20;
const MEM_SLACK: u64 = 64 << 20;
const MEM_PUSH_TIME: Duration = Duration::from_secs(3);

fn main() {
    if std::env::args().any(|a| a == "--memory-child") {
        memory_child();
        return;
    }
    let started = Instant::now();
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let mut rows = Vec::new();

    // Row filter, see the module doc.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |key: &str| wanted.is_empty() || wanted.iter().any(|w| key.starts_with(w.as_str()));

    let null = NullServer::start();
    eprintln!("null HTTP server on 127.0.0.1:{}", null.port);
    let config = format!(
        "INFLUXDB_URL=http://127.0.0.1:{};INFLUXDB_DB=bench;INFLUXDB_VERSION=1;PERFSINK_QUEUE_CAPACITY=4096;\
         PERFSINK_QUEUE_POLICY=drop;PERFSINK_MEMORY_MAX_BYTES=1073741824;\
         PERFSINK_SELF_METRICS_INTERVAL_MS=0",
        null.port
    );
    for batch in [1usize, 64, 1024] {
        if run(&format!("rust-{batch}")) {
            eprintln!("rust submit, batch {batch}");
            rows.push(rust_submit(&config, batch));
        }
    }
    for mode in ["raw", "aggregate", "both"] {
        if run(&format!("threads-{mode}")) {
            eprintln!(
                "Rust submit, {THREADS} threads x batch {THREADS_BATCH}, PERFSINK_MODE={mode}"
            );
            rows.push(threaded_submit(null.port, mode));
        }
    }
    for batch in [1usize, 64, 1024] {
        if run(&format!("c-{batch}")) {
            eprintln!("C submit, batch {batch}");
            rows.push(c_submit(&config, batch, true));
        }
    }
    if run("c-value") {
        eprintln!("C submit, batch 1, value only");
        rows.push(c_submit(&config, 1, false));
    }
    if run("c-record") {
        eprintln!("C record");
        rows.push(c_record(&config));
    }
    if run("encode") {
        eprintln!("encode");
        rows.push(encode_only());
    }
    for general in [false, true] {
        let key = if general {
            "k6-json-general"
        } else {
            "k6-json"
        };
        if run(key) {
            eprintln!("{key}");
            rows.push(k6_json(&config, general));
        }
    }
    eprintln!(
        "null server: {} requests, {} MB received",
        null.requests.load(Relaxed),
        null.bytes.load(Relaxed) / 1_000_000
    );
    if run("e2e") {
        eprintln!("end to end into influxd");
        rows.push(end_to_end());
    }
    if run("memory") {
        eprintln!("memory bound (child process)");
        rows.push(memory_bound());
    }

    print_table(cores, &rows, started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Rows and the table

struct Row {
    name: String,
    ns_per_sample: Option<f64>,
    per_s: Option<f64>,
    target: String,
    pass: Option<bool>,
    detail: String,
}

fn print_table(cores: usize, rows: &[Row], took: Duration) {
    let mut out = String::new();
    out.push_str(&format!(
        "perfsink engine bench — cores (available_parallelism): {cores}; best of {RUNS} x {} ms per micro row\n",
        RUN_TIME.as_millis()
    ));
    let header = ["row", "ns/sample", "samples/s", "target", "pass", "detail"];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.ns_per_sample.map_or("-".into(), |v| format!("{v:.1}")),
                r.per_s.map_or("-".into(), si),
                r.target.clone(),
                match r.pass {
                    Some(true) => "PASS".into(),
                    Some(false) => "FAIL".into(),
                    None => "info".into(),
                },
                r.detail.clone(),
            ]
        })
        .collect();
    let mut w = header.map(|h| h.chars().count());
    for c in &cells {
        for (i, s) in c.iter().enumerate() {
            w[i] = w[i].max(s.chars().count());
        }
    }
    let line = |c: &[String; 6]| {
        let mut s = String::from("|");
        for (i, v) in c.iter().enumerate() {
            let pad = w[i] - v.chars().count();
            if i == 1 || i == 2 {
                s.push_str(&format!(" {}{v} |", " ".repeat(pad)));
            } else {
                s.push_str(&format!(" {v}{} |", " ".repeat(pad)));
            }
        }
        s.push('\n');
        s
    };
    out.push_str(&line(&header.map(String::from)));
    let mut sep = String::from("|");
    for width in w {
        sep.push_str(&format!("{}|", "-".repeat(width + 2)));
    }
    out.push_str(&sep);
    out.push('\n');
    for c in &cells {
        out.push_str(&line(c));
    }
    let failed = rows.iter().filter(|r| r.pass == Some(false)).count();
    out.push_str(&format!(
        "{} rows, {failed} failed; bench took {:.1} s\n",
        rows.len(),
        took.as_secs_f64()
    ));
    print!("{out}");
}

/// 12345678 → "12.35 M".
fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

// ---------------------------------------------------------------------------------------------
// Timing

/// The best of `RUNS` timed runs (after a warm-up run). `call` does one API call and returns
/// (points accepted, points dropped); `between` runs untimed after each run.
struct Best {
    ns_per_sample: f64,
    accepted: u64,
    dropped: u64,
    rejected: u64,
    /// CPU time of the producer thread / wall time, in the best run.
    cpu_share: f64,
    /// The least CPU time of the producer thread per sample over the runs.
    cpu_ns_per_sample: f64,
}

/// CPU time of the calling thread in ns (`/proc/thread-self/schedstat`, field 1).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn best_of(
    points_per_call: usize,
    mut call: impl FnMut() -> (u64, u64, u64),
    mut between: impl FnMut(),
) -> Best {
    // Look at the clock about every 1024 points, so batch-1 rows do not time the clock.
    let calls_per_check = (1024 / points_per_call).max(1);
    let mut timed = |limit: Duration| {
        let (mut acc, mut drop, mut rej) = (0u64, 0u64, 0u64);
        let cpu0 = thread_cpu_ns();
        let t0 = Instant::now();
        let elapsed = loop {
            for _ in 0..calls_per_check {
                let (a, d, r) = call();
                acc += a;
                drop += d;
                rej += r;
            }
            let e = t0.elapsed();
            if e >= limit {
                break e;
            }
        };
        let cpu = thread_cpu_ns().saturating_sub(cpu0);
        (elapsed, acc, drop, rej, cpu)
    };
    timed(WARMUP);
    between();
    let mut best = Best {
        ns_per_sample: f64::INFINITY,
        accepted: 0,
        dropped: 0,
        rejected: 0,
        cpu_share: 0.0,
        cpu_ns_per_sample: f64::INFINITY,
    };
    for _ in 0..RUNS {
        let (elapsed, acc, drop, rej, cpu) = timed(RUN_TIME);
        between();
        best.accepted += acc;
        best.dropped += drop;
        best.rejected += rej;
        let ns = elapsed.as_nanos() as f64 / acc.max(1) as f64;
        if acc > 0 && ns < best.ns_per_sample {
            best.ns_per_sample = ns;
            best.cpu_share = cpu as f64 / elapsed.as_nanos() as f64;
        }
        if acc > 0 {
            best.cpu_ns_per_sample = best.cpu_ns_per_sample.min(cpu as f64 / acc as f64);
        }
    }
    best
}

fn micro_row(name: String, b: &Best, target: Option<Target>, extra: &str) -> Row {
    let per_s = 1e9 / b.ns_per_sample;
    let clean = b.dropped == 0 && b.rejected == 0 && b.accepted > 0;
    let (target_text, pass) = match target {
        None => ("-".to_string(), if clean { None } else { Some(false) }),
        Some(Target::MinPerS(t)) => (format!(">= {}/s", si(t)), Some(clean && per_s >= t)),
        Some(Target::MaxNs(t)) => (format!("<= {t:.0} ns"), Some(clean && b.ns_per_sample <= t)),
    };
    let mut detail = format!(
        "producer cpu {:.0} ns/sample, on cpu {:.0} %; accepted {}, dropped {}, rejected {}",
        b.cpu_ns_per_sample,
        b.cpu_share * 100.0,
        b.accepted,
        b.dropped,
        b.rejected
    );
    if !extra.is_empty() {
        detail = format!("{extra}; {detail}");
    }
    Row {
        name,
        ns_per_sample: Some(b.ns_per_sample),
        per_s: Some(per_s),
        target: target_text,
        pass,
        detail,
    }
}

enum Target {
    MinPerS(f64),
    MaxNs(f64),
}

// ---------------------------------------------------------------------------------------------
// k6-like data

const K6_TAGS: [(&str, &str); 6] = [
    ("expected_response", "true"),
    ("method", "GET"),
    ("name", "https://test.k6.io/"),
    ("proto", "HTTP/1.1"),
    ("scenario", "default"),
    ("status", "200"),
];

/// The tags of k6-like series `i` (the name varies).
fn k6_tags(i: usize) -> Vec<(String, String)> {
    K6_TAGS
        .iter()
        .map(|&(k, v)| {
            let v = if k == "name" {
                format!("https://test.k6.io/{i}")
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect()
}

/// A duration in ms the way k6 makes one: nanoseconds / 1e6 (1 to 51 ms here).
fn k6_value(i: usize) -> f64 {
    (1_000_000 + (i * 7919) % 50_000_000) as f64 / 1e6
}

fn vu(i: usize) -> i64 {
    (i % 50) as i64 + 1
}

fn iter_no(i: usize) -> i64 {
    (i / 50) as i64 % 100_000
}

fn register_k6(sink: &Sink) -> Vec<SeriesId> {
    (0..SERIES)
        .map(|i| {
            let owned = k6_tags(i);
            let tags: Vec<Tag> = owned.iter().map(|(k, v)| Tag::new(k, v)).collect();
            sink.register_series("http_req_duration", &tags, "value")
                .expect("register series")
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Rust API rows

fn rust_submit(config: &str, batch: usize) -> Row {
    let sink = Sink::from_kv(config).expect("open sink");
    let ids = register_k6(&sink);
    let fields: Vec<[Field; 2]> = (0..batch)
        .map(|i| {
            [
                Field::new("vu", FieldValue::Int(vu(i))),
                Field::new("iter", FieldValue::Int(iter_no(i))),
            ]
        })
        .collect();
    let mut points: Vec<Point> = (0..batch)
        .map(|i| Point {
            series: ids[i % SERIES],
            value: k6_value(i),
            timestamp_ns: 0,
            extra_fields: &fields[i],
        })
        .collect();
    let mut ts = now_ns();
    let before = sink.stats();
    let best = best_of(
        batch,
        || {
            for p in points.iter_mut() {
                ts += 100;
                p.timestamp_ns = ts;
            }
            let s = sink.submit(&points);
            (s.accepted as u64, s.dropped as u64, s.rejected as u64)
        },
        || sink.flush(FLUSH_TIMEOUT).expect("flush"),
    );
    let after = sink.stats();
    let report = sink.close();
    assert_eq!(
        after.dropped_queue_full - before.dropped_queue_full,
        best.dropped,
        "drop counters disagree"
    );
    let target = (batch == 1024).then_some(Target::MinPerS(BATCH_1024_MIN_PER_S));
    micro_row(
        format!("Rust submit, batch {batch}"),
        &best,
        target,
        &format!(
            "written {}, {:.0} B/line",
            report.stats.written,
            k6_line_len()
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Several producer threads, per PERFSINK_MODE

/// One timed run of the producer threads.
struct ThreadedRun {
    wall: Duration,
    accepted: u64,
    dropped: u64,
    rejected: u64,
    /// CPU time of all producer threads together.
    cpu_ns: u64,
}

/// `THREADS` threads each submitting batches of `THREADS_BATCH` k6-like points for `limit`,
/// started together; every batch is stamped with the wall clock (1 ns apart within it), so the
/// aggregation sees samples in the current interval as it does under k6.
fn threaded_run(sink: &Sink, ids: &[SeriesId], limit: Duration) -> ThreadedRun {
    let start = std::sync::Barrier::new(THREADS + 1);
    thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let start = &start;
                s.spawn(move || {
                    let fields: Vec<[Field; 2]> = (0..THREADS_BATCH)
                        .map(|i| {
                            [
                                Field::new("vu", FieldValue::Int(vu(i + t))),
                                Field::new("iter", FieldValue::Int(iter_no(i))),
                            ]
                        })
                        .collect();
                    let mut points: Vec<Point> = (0..THREADS_BATCH)
                        .map(|i| Point {
                            series: ids[(i + t) % SERIES],
                            value: k6_value(i * THREADS + t),
                            timestamp_ns: 0,
                            extra_fields: &fields[i],
                        })
                        .collect();
                    start.wait();
                    let cpu0 = thread_cpu_ns();
                    let t0 = Instant::now();
                    let (mut acc, mut drop, mut rej) = (0u64, 0u64, 0u64);
                    while t0.elapsed() < limit {
                        let now = now_ns();
                        for (i, p) in points.iter_mut().enumerate() {
                            p.timestamp_ns = now + i as i64;
                        }
                        let r = sink.submit(&points);
                        acc += r.accepted as u64;
                        drop += r.dropped as u64;
                        rej += r.rejected as u64;
                    }
                    (acc, drop, rej, thread_cpu_ns().saturating_sub(cpu0))
                })
            })
            .collect();
        start.wait();
        let t0 = Instant::now();
        let mut run = ThreadedRun {
            wall: Duration::ZERO,
            accepted: 0,
            dropped: 0,
            rejected: 0,
            cpu_ns: 0,
        };
        for h in handles {
            let (acc, drop, rej, cpu) = h.join().expect("producer thread");
            run.accepted += acc;
            run.dropped += drop;
            run.rejected += rej;
            run.cpu_ns += cpu;
        }
        run.wall = t0.elapsed();
        run
    })
}

/// The producers' cost in one `PERFSINK_MODE` (see the module doc): best of `RUNS` after a
/// warm-up, the sink flushed (untimed) after each run.
fn threaded_submit(null_port: u16, mode: &str) -> Row {
    let config = format!(
        "INFLUXDB_URL=http://127.0.0.1:{null_port};INFLUXDB_DB=bench;INFLUXDB_VERSION=1;\
         PERFSINK_QUEUE_POLICY=block;PERFSINK_BLOCK_TIMEOUT_MS=600000;\
         PERFSINK_MEMORY_MAX_BYTES=1073741824;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
         PERFSINK_MODE={mode}"
    );
    let sink = Sink::from_kv(&config).expect("open sink");
    let ids = register_k6(&sink);
    let before = sink.stats();
    let (mut cpu_ns, mut wall_ns) = (f64::INFINITY, f64::INFINITY);
    let (mut accepted, mut dropped, mut rejected, mut taken_all) = (0u64, 0u64, 0u64, 0u64);
    for run in 0..=RUNS {
        let r = threaded_run(&sink, &ids, if run == 0 { WARMUP } else { RUN_TIME });
        sink.flush(FLUSH_TIMEOUT).expect("flush");
        taken_all += r.accepted;
        if run == 0 || r.accepted == 0 {
            continue;
        }
        accepted += r.accepted;
        dropped += r.dropped;
        rejected += r.rejected;
        cpu_ns = cpu_ns.min(r.cpu_ns as f64 / r.accepted as f64);
        wall_ns = wall_ns.min(r.wall.as_nanos() as f64 / r.accepted as f64);
    }
    let report = sink.close();
    let s = &report.stats;
    let folded = s.aggregated - before.aggregated;
    // Every sample taken is folded once in aggregate/both modes, and never in raw mode.
    let folded_ok = folded == if mode == "raw" { 0 } else { taken_all };
    let clean = dropped == 0 && rejected == 0 && accepted > 0 && folded_ok;
    let (target, pass) = if mode == "aggregate" {
        (
            format!("<= {AGGREGATE_MAX_NS:.0} ns"),
            Some(clean && cpu_ns <= AGGREGATE_MAX_NS),
        )
    } else {
        ("-".to_string(), if clean { None } else { Some(false) })
    };
    Row {
        name: format!("{THREADS} threads x batch {THREADS_BATCH}, {mode}"),
        ns_per_sample: Some(cpu_ns),
        per_s: Some(1e9 / wall_ns),
        target,
        pass,
        detail: format!(
            "ns/sample = producer CPU (all threads); wall {wall_ns:.1} ns/sample; accepted {accepted}, \
             dropped {dropped}, rejected {rejected}; aggregated {folded} of {taken_all} samples taken{}, \
             late {}; written {} lines",
            if folded_ok { "" } else { " (MISMATCH)" },
            s.aggregated_late - before.aggregated_late,
            s.written
        ),
    }
}

/// Mean line length of the k6-like points, encoded once outside the sink.
fn k6_line_len() -> f64 {
    let mut buf = Vec::new();
    let n = 1024;
    for i in 0..n {
        let tags = k6_tags(i % SERIES);
        buf.extend_from_slice(b"http_req_duration");
        for (k, v) in &tags {
            buf.extend_from_slice(format!(",{k}={v}").as_bytes());
        }
        buf.extend_from_slice(b" value=");
        write_float(&mut buf, k6_value(i)).unwrap();
        buf.extend_from_slice(format!(",vu={}i,iter={}i ", vu(i), iter_no(i)).as_bytes());
        write_timestamp(&mut buf, now_ns());
        buf.push(b'\n');
    }
    buf.len() as f64 / n as f64
}

// ---------------------------------------------------------------------------------------------
// k6 JSON stream rows

/// Lines per `k6_json` call.
const K6_JSON_LINES: usize = 1024;

/// 1024 k6 `Point` lines as k6 writes them (`general`: keys in another order, so the general
/// scanner reads them), and where each line's time is, to renew it per call.
fn k6_json_lines(general: bool) -> (Vec<u8>, Vec<usize>) {
    const METRICS: [&str; 8] = [
        "http_reqs",
        "http_req_duration",
        "http_req_blocked",
        "http_req_connecting",
        "http_req_tls_handshaking",
        "http_req_sending",
        "http_req_waiting",
        "http_req_receiving",
    ];
    let mut buf = Vec::new();
    let mut times = Vec::new();
    for i in 0..K6_JSON_LINES {
        let (request, metric) = (i / METRICS.len(), METRICS[i % METRICS.len()]);
        let url = format!("https://test.k6.io/{}", request % 100);
        let tags = format!(
            r#"{{"expected_response":"true","group":"","method":"GET","name":"{url}","proto":"HTTP/1.1","scenario":"default","status":"200","tls_version":"tls1.3","url":"{url}"}}"#
        );
        let value = if i % 8 == 0 { 1.0 } else { k6_value(i) };
        let meta = format!(
            r#"{{"vu":"{}","iter":"{}"}}"#,
            vu(request),
            iter_no(request)
        );
        let time = "2025-06-25T10:00:00.000000000Z";
        let line = if general {
            format!(
                r#"{{"type":"Point","data":{{"tags":{tags},"metadata":{meta},"value":{value},"time":"{time}"}},"metric":"{metric}"}}"#
            )
        } else {
            format!(
                r#"{{"metric":"{metric}","type":"Point","data":{{"time":"{time}","value":{value},"tags":{tags},"metadata":{meta}}}}}"#
            )
        };
        let at = line.find(time).expect("time in line");
        times.push(buf.len() + at);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
    }
    (buf, times)
}

/// Writes `ns` (below one hour) as the minutes, seconds and fraction of the time at `at`
/// (`2025-06-25T10:MM:SS.FFFFFFFFFZ`).
fn patch_time(buf: &mut [u8], at: usize, ns: u64) {
    let digits = |buf: &mut [u8], start: usize, len: usize, mut v: u64| {
        for i in (0..len).rev() {
            buf[start + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    digits(buf, at + 14, 2, ns / 60_000_000_000 % 60);
    digits(buf, at + 17, 2, ns / 1_000_000_000 % 60);
    digits(buf, at + 20, 9, ns % 1_000_000_000);
}

fn k6_json(config: &str, general: bool) -> Row {
    use perfsink::sources::k6::json::K6JsonSource;
    use perfsink::sources::k6::schema::TagsAsFields;
    let sink = Sink::from_kv(config).expect("open sink");
    let mut source = K6JsonSource::new(&sink, TagsAsFields::default());
    let (mut buf, times) = k6_json_lines(general);
    let mut ns = 0u64;
    let before = sink.stats();
    let best = best_of(
        K6_JSON_LINES,
        || {
            let (s0, n0) = (sink.stats(), source.stats().samples);
            for &at in &times {
                ns += 1000;
                patch_time(&mut buf, at, ns);
            }
            let n1 = source.run(&buf[..]).expect("read").samples;
            let s1 = sink.stats();
            (n1 - n0, s1.dropped - s0.dropped, s1.rejected - s0.rejected)
        },
        || sink.flush(FLUSH_TIMEOUT).expect("flush"),
    );
    let stats = source.stats();
    drop(source);
    let after = sink.stats();
    let report = sink.close();
    assert_eq!(stats.malformed, 0, "lines not understood");
    assert_eq!(
        after.dropped_queue_full - before.dropped_queue_full,
        best.dropped,
        "drop counters disagree"
    );
    micro_row(
        format!(
            "k6 JSON stream{}",
            if general { ", general scanner" } else { "" }
        ),
        &best,
        None,
        &format!("written {}", report.stats.written),
    )
}

// ---------------------------------------------------------------------------------------------
// C ABI rows

struct CSink(*mut perfsink_sink);

impl CSink {
    fn open(config: &str) -> CSink {
        let mut h = std::ptr::null_mut();
        let r = unsafe {
            perfsink_sink_open(config.as_ptr().cast(), config.len(), &mut h, null_mut(), 0)
        };
        assert_eq!(r, perfsink_result::PERFSINK_OK, "perfsink_sink_open");
        CSink(h)
    }

    fn register_k6(&self) -> Vec<u32> {
        (0..SERIES)
            .map(|i| {
                let owned = k6_tags(i);
                let tags: Vec<perfsink_tag> = owned.iter().map(|(k, v)| c_tag(k, v)).collect();
                let m = "http_req_duration";
                let f = "value";
                let mut id = 0;
                let r = unsafe {
                    perfsink_sink_register_series(
                        self.0,
                        m.as_ptr().cast(),
                        m.len(),
                        tags.as_ptr(),
                        tags.len(),
                        f.as_ptr().cast(),
                        f.len(),
                        &mut id,
                        null_mut(),
                        0,
                    )
                };
                assert_eq!(r, perfsink_result::PERFSINK_OK, "register");
                id
            })
            .collect()
    }

    fn flush(&self) {
        let r =
            unsafe { perfsink_sink_flush(self.0, FLUSH_TIMEOUT.as_millis() as u32, null_mut(), 0) };
        assert_eq!(r, perfsink_result::PERFSINK_OK, "flush");
    }

    fn stats(&self) -> perfsink_stats {
        let mut s = perfsink_stats::default();
        let size = std::mem::size_of_val(&s);
        unsafe { perfsink_sink_stats(self.0, &mut s, size, null_mut(), 0) };
        s
    }

    fn close(self) -> perfsink_stats {
        let mut r = perfsink_close_report::default();
        let size = std::mem::size_of_val(&r);
        unsafe {
            perfsink_sink_close(self.0, &mut r, size, null_mut(), 0);
            perfsink_sink_free(self.0);
        }
        r.stats
    }
}

fn c_tag(k: &str, v: &str) -> perfsink_tag {
    perfsink_tag {
        key: k.as_ptr().cast::<c_char>(),
        key_len: k.len(),
        value: v.as_ptr().cast::<c_char>(),
        value_len: v.len(),
    }
}

fn c_field(k: &'static str, kind: u32) -> perfsink_field {
    perfsink_field {
        key: k.as_ptr().cast::<c_char>(),
        key_len: k.len(),
        kind,
        bool_value: 0,
        float_value: 0.0,
        int_value: 0,
        uint_value: 0,
        string_value: std::ptr::null(),
        string_len: 0,
    }
}

const C_FLOAT: u32 = 0;
const C_INT: u32 = 1;

fn c_submit(config: &str, batch: usize, with_fields: bool) -> Row {
    let sink = CSink::open(config);
    let ids = sink.register_k6();
    let fields: Vec<[perfsink_field; 2]> = (0..batch)
        .map(|i| {
            let mut a = c_field("vu", C_INT);
            a.int_value = vu(i);
            let mut b = c_field("iter", C_INT);
            b.int_value = iter_no(i);
            [a, b]
        })
        .collect();
    let mut points: Vec<perfsink_point> = (0..batch)
        .map(|i| perfsink_point {
            series: ids[i % SERIES],
            field_count: if with_fields { 2 } else { 0 },
            fields: if with_fields {
                fields[i].as_ptr()
            } else {
                std::ptr::null()
            },
            value: k6_value(i),
            timestamp_ns: 0,
        })
        .collect();
    let mut ts = now_ns();
    let before = sink.stats();
    let best = best_of(
        batch,
        || {
            for p in points.iter_mut() {
                ts += 100;
                p.timestamp_ns = ts;
            }
            let mut accepted = 0usize;
            let r = unsafe {
                perfsink_sink_submit(
                    sink.0,
                    points.as_ptr(),
                    points.len(),
                    &mut accepted,
                    null_mut(),
                    0,
                )
            };
            let missing = (batch - accepted) as u64;
            match r {
                perfsink_result::PERFSINK_OK => (accepted as u64, 0, 0),
                perfsink_result::PERFSINK_QUEUE_FULL => (accepted as u64, missing, 0),
                _ => (accepted as u64, 0, missing),
            }
        },
        || sink.flush(),
    );
    let after = sink.stats();
    let end = sink.close();
    assert_eq!(
        after.dropped_queue_full - before.dropped_queue_full,
        best.dropped,
        "drop counters disagree"
    );
    let (name, target) = match (batch, with_fields) {
        (1, true) => (
            "C submit, batch 1".to_string(),
            Some(Target::MaxNs(C_SINGLE_MAX_NS)),
        ),
        (1, false) => (
            "C submit, batch 1, value only".to_string(),
            Some(Target::MaxNs(C_SINGLE_MAX_NS)),
        ),
        (1024, true) => (
            "C submit, batch 1024".to_string(),
            Some(Target::MinPerS(BATCH_1024_MIN_PER_S)),
        ),
        (b, _) => (format!("C submit, batch {b}"), None),
    };
    micro_row(name, &best, target, &format!("written {}", end.written))
}

fn c_record(config: &str) -> Row {
    let sink = CSink::open(config);
    let m = "workflow_step";
    let tags = [
        c_tag("action", "click"),
        c_tag("status", "success"),
        c_tag("step", "login"),
        c_tag("workflow", "checkout"),
    ];
    let mut fields = [
        c_field("duration", C_FLOAT),
        c_field("success_count", C_INT),
        c_field("iteration", C_INT),
    ];
    fields[0].float_value = 0.1234;
    fields[1].int_value = 1;
    let mut ts = now_ns();
    let mut n = 0i64;
    let before = sink.stats();
    let best = best_of(
        1,
        || {
            ts += 1000;
            n += 1;
            fields[0].float_value = 0.05 + (n % 1000) as f64 * 0.001;
            fields[2].int_value = n;
            let r = unsafe {
                perfsink_sink_record(
                    sink.0,
                    m.as_ptr().cast(),
                    m.len(),
                    tags.as_ptr(),
                    tags.len(),
                    fields.as_ptr(),
                    fields.len(),
                    ts,
                    null_mut(),
                    0,
                )
            };
            match r {
                perfsink_result::PERFSINK_OK => (1, 0, 0),
                perfsink_result::PERFSINK_QUEUE_FULL => (0, 1, 0),
                _ => (0, 0, 1),
            }
        },
        || sink.flush(),
    );
    let after = sink.stats();
    let end = sink.close();
    assert_eq!(
        after.dropped_queue_full - before.dropped_queue_full,
        best.dropped
    );
    micro_row(
        "C record, 1 point (workflow_step)".into(),
        &best,
        None,
        &format!("written {}", end.written),
    )
}

// ---------------------------------------------------------------------------------------------
// Encoding alone

fn encode_only() -> Row {
    let mut prefix = b"http_req_duration".to_vec();
    for (k, v) in k6_tags(0) {
        prefix.extend_from_slice(format!(",{k}={v}").as_bytes());
    }
    prefix.extend_from_slice(b" value=");
    let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
    let mut ts = now_ns();
    let mut i = 0usize;
    let mut bytes = 0u64;
    let best = best_of(
        1,
        || {
            if buf.len() > (1 << 20) - 512 {
                bytes += buf.len() as u64;
                black_box(&buf);
                buf.clear();
            }
            i += 1;
            ts += 100;
            buf.extend_from_slice(&prefix);
            write_float(&mut buf, black_box(k6_value(i))).unwrap();
            buf.push(b' ');
            write_timestamp(&mut buf, ts);
            buf.push(b'\n');
            (1, 0, 0)
        },
        || {},
    );
    let lines = best.accepted.max(1);
    let line_len = (bytes + buf.len() as u64) as f64 / lines as f64;
    let mb_s = line_len * 1e9 / best.ns_per_sample / 1e6;
    micro_row(
        "encode only (prefix+float+ts)".into(),
        &best,
        Some(Target::MinPerS(ENCODE_MIN_PER_S)),
        &format!("{mb_s:.0} MB/s, {line_len:.0} B/line"),
    )
}

// ---------------------------------------------------------------------------------------------
// End to end into influxd

fn end_to_end() -> Row {
    let t_start = Instant::now();
    let influx = common::Influx::start();
    let db = "perfsink_bench";
    let config = format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};PERFSINK_BATCH_LINES=5000;PERFSINK_CONCURRENCY=2;\
         PERFSINK_QUEUE_POLICY=block;PERFSINK_BLOCK_TIMEOUT_MS=600000;\
         PERFSINK_SELF_METRICS_INTERVAL_MS=0",
        influx.url()
    );
    let sink = Sink::from_kv(&config).expect("open sink");
    let ids = register_k6(&sink);
    let batch = 1000usize;
    let fields: Vec<[Field; 2]> = (0..batch)
        .map(|i| {
            [
                Field::new("vu", FieldValue::Int(vu(i))),
                Field::new("iter", FieldValue::Int(iter_no(i))),
            ]
        })
        .collect();
    let mut points: Vec<Point> = (0..batch)
        .map(|i| Point {
            series: ids[i % SERIES],
            value: k6_value(i),
            timestamp_ns: 0,
            extra_fields: &fields[i],
        })
        .collect();
    // 1 µs apart: every series' points are distinct without the dedup shift.
    let mut ts = now_ns() - E2E_POINTS as i64 * 1000;
    let t0 = Instant::now();
    let mut offered = 0u64;
    let mut accepted = 0u64;
    while offered < E2E_POINTS {
        for p in points.iter_mut() {
            ts += 1000;
            p.timestamp_ns = ts;
        }
        let s = sink.submit(&points);
        offered += batch as u64;
        accepted += s.accepted as u64;
    }
    let flushed = sink.flush(Duration::from_secs(60));
    let elapsed = t0.elapsed();
    let stats = sink.close().stats;
    let counted = influx.count(db, "http_req_duration");
    let rate = stats.written as f64 / elapsed.as_secs_f64();
    let complete = flushed.is_ok()
        && accepted == E2E_POINTS
        && stats.written == E2E_POINTS
        && counted == E2E_POINTS;
    eprintln!(
        "  influxd start + run + count took {:.1} s",
        t_start.elapsed().as_secs_f64()
    );
    Row {
        name: "end to end into influxd 1.6.7".into(),
        ns_per_sample: Some(1e9 / rate),
        per_s: Some(rate),
        target: format!(">= {}/s, 100 % arrive", si(E2E_MIN_PER_S)),
        pass: Some(complete && rate >= E2E_MIN_PER_S),
        detail: format!(
            "{} points, batch 5000, 2 in flight, {:.2} s; written {}, undelivered {}, counted by query {} ({:.1} %){}",
            E2E_POINTS,
            elapsed.as_secs_f64(),
            stats.written,
            stats.dropped_undelivered,
            counted,
            counted as f64 * 100.0 / E2E_POINTS as f64,
            match flushed {
                Ok(()) => String::new(),
                Err(e) => format!(", flush: {e}"),
            }
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Memory bound, InfluxDB down

/// Runs this binary again as `--memory-child` and reads its `MEM k=v ...` line.
fn memory_bound() -> Row {
    let exe = std::env::current_exe().expect("current_exe");
    let out = Command::new(exe)
        .arg("--memory-child")
        .stdin(Stdio::null())
        .output()
        .expect("run memory child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout.lines().find(|l| l.starts_with("MEM ")) else {
        eprintln!(
            "memory child failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        return Row {
            name: "memory bound, InfluxDB down".into(),
            ns_per_sample: None,
            per_s: None,
            target: "-".into(),
            pass: Some(false),
            detail: format!("child failed: {}", out.status),
        };
    };
    let get = |k: &str| -> u64 {
        line.split_whitespace()
            .find_map(|kv| kv.strip_prefix(k)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    let (base, hwm, peak) = (get("base_rss"), get("hwm"), get("peak_rss"));
    let (offered, accepted, dropped_q) = (get("offered"), get("accepted"), get("dropped_queue"));
    let (undelivered, written, rejected) = (get("undelivered"), get("written"), get("rejected"));
    let early = get("undelivered_before_close");
    let elapsed_ns = get("elapsed_ns");
    let caps = MEM_MAX_BYTES + (MEM_QUEUE + 1) * MEM_BATCH_BYTES;
    let growth = hwm.max(peak).saturating_sub(base);
    let balanced = accepted + dropped_q + rejected == offered;
    let settled = accepted == written + undelivered;
    // With no spool the writer holds what fits in its memory cap and leaves the rest on the
    // queue, so producers see a full queue: points are dropped there, counted and reported to
    // the caller, not accepted and then thrown away while InfluxDB is down.
    let early_ok = early <= MEM_BATCH_BYTES / 100;
    let pass = balanced && settled && growth <= caps + MEM_SLACK && dropped_q > 0 && early_ok;
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    Row {
        name: "memory bound, InfluxDB down, 2 threads".into(),
        ns_per_sample: None,
        per_s: Some(offered as f64 * 1e9 / elapsed_ns.max(1) as f64),
        target: format!(
            "RSS growth <= caps {:.0} + {:.0} MiB",
            mib(caps),
            mib(MEM_SLACK)
        ),
        pass: Some(pass),
        detail: format!(
            "peak RSS growth {:.1} MiB (base {:.1}, VmHWM {:.1}); offered {offered} = accepted {accepted} + dropped at queue {dropped_q} + rejected {rejected}: {}; accepted then undelivered {undelivered} ({early} before close{}), written {written}",
            mib(growth),
            mib(base),
            mib(hwm),
            if balanced { "yes" } else { "NO" },
            if early_ok { "" } else { ": the writer drops instead of leaving the queue full" },
        ),
    }
}

fn proc_status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn memory_child() {
    // A port nothing listens on: bind, read the port, close.
    let closed_port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind");
    let config = format!(
        "INFLUXDB_URL=http://127.0.0.1:{closed_port};PERFSINK_MEMORY_MAX_BYTES={MEM_MAX_BYTES};\
         PERFSINK_QUEUE_CAPACITY={MEM_QUEUE};PERFSINK_BATCH_BYTES={MEM_BATCH_BYTES};\
         PERFSINK_QUEUE_POLICY=drop;PERFSINK_CLOSE_TIMEOUT_MS=300;\
         PERFSINK_SELF_METRICS_INTERVAL_MS=0;PERFSINK_CREATE_DATABASE=false"
    );
    let batch = 1024usize;
    let base = proc_status_kb("VmRSS:");
    let sink = Arc::new(Sink::from_kv(&config).expect("open sink"));
    let ids = register_k6(&sink);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        thread::spawn(move || {
            while !stop.load(Relaxed) {
                peak.fetch_max(proc_status_kb("VmRSS:"), Relaxed);
                thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let t0 = Instant::now();
    let producers: Vec<_> = (0..2)
        .map(|t| {
            let (sink, ids) = (sink.clone(), ids.clone());
            thread::spawn(move || {
                let fields: Vec<[Field; 2]> = (0..batch)
                    .map(|i| {
                        [
                            Field::new("vu", FieldValue::Int(vu(i))),
                            Field::new("iter", FieldValue::Int(iter_no(i))),
                        ]
                    })
                    .collect();
                let mut points: Vec<Point> = (0..batch)
                    .map(|i| Point {
                        series: ids[(i + t) % SERIES],
                        value: k6_value(i),
                        timestamp_ns: 0,
                        extra_fields: &fields[i],
                    })
                    .collect();
                let mut ts = now_ns();
                let mut offered = 0u64;
                while t0.elapsed() < MEM_PUSH_TIME {
                    for p in points.iter_mut() {
                        ts += 100;
                        p.timestamp_ns = ts;
                    }
                    black_box(sink.submit(&points));
                    offered += batch as u64;
                }
                offered
            })
        })
        .collect();
    let offered: u64 = producers.into_iter().map(|h| h.join().unwrap()).sum();
    let elapsed = t0.elapsed();
    let before_close = sink.stats();
    let end = sink.close().stats;
    stop.store(true, Relaxed);
    sampler.join().unwrap();
    let hwm = proc_status_kb("VmHWM:");
    println!(
        "MEM base_rss={base} hwm={hwm} peak_rss={} offered={offered} accepted={} dropped_queue={} rejected={} undelivered={} undelivered_before_close={} written={} elapsed_ns={}",
        peak.load(Relaxed),
        end.accepted,
        end.dropped_queue_full,
        end.rejected_invalid,
        end.dropped_undelivered,
        before_close.dropped_undelivered,
        end.written,
        elapsed.as_nanos()
    );
}

// ---------------------------------------------------------------------------------------------
// Null HTTP server: reads requests, answers 204, keeps the connection.

struct NullServer {
    port: u16,
    requests: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl NullServer {
    fn start() -> NullServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind null server");
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicU64::new(0));
        let bytes = Arc::new(AtomicU64::new(0));
        let (r, b) = (requests.clone(), bytes.clone());
        thread::Builder::new()
            .name("null-http".into())
            .spawn(move || {
                for conn in listener.incoming().flatten() {
                    let (r, b) = (r.clone(), b.clone());
                    thread::spawn(move || {
                        let _ = serve_null(conn, &r, &b);
                    });
                }
            })
            .unwrap();
        NullServer {
            port,
            requests,
            bytes,
        }
    }
}

fn serve_null(conn: TcpStream, requests: &AtomicU64, bytes: &AtomicU64) -> std::io::Result<()> {
    conn.set_nodelay(true)?;
    let mut w = conn.try_clone()?;
    let mut r = BufReader::with_capacity(256 << 10, conn);
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let mut len = 0u64;
        let mut chunked = false;
        loop {
            line.clear();
            if r.read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            if line == b"\r\n" || line == b"\n" {
                break;
            }
            let text = String::from_utf8_lossy(&line).to_ascii_lowercase();
            if let Some(v) = text.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            } else if text.starts_with("transfer-encoding:") && text.contains("chunked") {
                chunked = true;
            }
        }
        let body = if chunked {
            common::http::read_chunked(&mut r)?.len() as u64
        } else {
            std::io::copy(&mut (&mut r).take(len), &mut std::io::sink())?
        };
        requests.fetch_add(1, Relaxed);
        bytes.fetch_add(body, Relaxed);
        w.write_all(b"HTTP/1.1 204 No Content\r\nX-Influxdb-Version: null\r\n\r\n")?;
    }
}
