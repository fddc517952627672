//! Spool bench: `cargo bench --bench spool` (in `make bench`). A plain `main` (no harness) that
//! prints what the write-ahead spool (`PERFSINK_SPOOL_DIR`) costs per fsync policy, as ratios to
//! a baseline without a spool measured side by side in the same run:
//!
//! * **sink**: points/s through `Sink::submit` (k6-like `http_req_duration` points, ~170 B
//!   lines, batches of 1000, `PERFSINK_QUEUE_POLICY=block`) until `Sink::flush` says InfluxDB
//!   has them all; the spool appends every batch the writer takes and acks it once delivered;
//! * **relay**: an in-process `Relay` in front of such a sink, `CLIENTS` client threads each
//!   posting bodies of `BODY_LINES` lines one after the other (a new connection each, as k6 and
//!   JMeter's listener send a body per push) for `RELAY_TIME`; with a spool every 204 waits
//!   until its lines are appended (`Sink::sync`), and under `always` fsynced.
//!
//! Settings: no spool, `PERFSINK_SPOOL_FSYNC=never`, `interval` (1000 ms), `always`. Each round
//! runs the four in a rotated order (so none always runs first or last); the table gives the
//! median rate over the rounds and the median of the per-round ratios to the no-spool run of
//! the same round, which is what cancels most of a shared machine's drift, with the smallest
//! and largest of those ratios (how noisy the rounds were), and the CPU time of the whole
//! process per 1000 points or lines (median): what the spool costs in CPU, apart from the
//! waiting on the disk that `always` adds (the kernel's own writeback is not in it).
//!
//! InfluxDB here is a local loopback HTTP server that answers 204 to every write, not a real
//! influxd: on this 2-core machine influxd's own CPU (parsing, WAL, compactions) would take the
//! core the sink runs on and vary from round to round, so the ratios would measure influxd, not
//! the spool. Against the null server the sink is the only thing working, so the ratios are an
//! upper bound of the spool's relative cost (a real InfluxDB makes the whole path slower and the
//! spool's share smaller). The spool is on the build directory's file system
//! (`CARGO_TARGET_TMPDIR`, a real disk: fsync on tmpfs would cost nothing).
//!
//! Every run must deliver every point or line (written == submitted, nothing dropped, every
//! relay answer a 204, the spool empty afterwards), else the bench fails.
//! `cargo bench --bench spool -- sink` or `-- relay` runs one part.

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use perfsink::model::now_ns;
use perfsink::sources::relay::{Relay, RelayOptions};
use perfsink::writer::spool::pending_user_lines;
use perfsink::{Field, FieldValue, Point, SeriesId, Sink, Tag};

const ROUNDS: usize = 7;
const SINK_POINTS: u64 = 2_000_000;
const SINK_BATCH: usize = 1000;
const CLIENTS: usize = 4;
const BODY_LINES: usize = 1000;
const RELAY_TIME: Duration = Duration::from_millis(1200);
const FLUSH: Duration = Duration::from_secs(60);
const SERIES: usize = 8;

#[derive(Clone, Copy, PartialEq)]
enum Setting {
    NoSpool,
    Never,
    Interval,
    Always,
}

const SETTINGS: [Setting; 4] = [
    Setting::NoSpool,
    Setting::Never,
    Setting::Interval,
    Setting::Always,
];

impl Setting {
    fn name(self) -> &'static str {
        match self {
            Setting::NoSpool => "no spool",
            Setting::Never => "spool, fsync never",
            Setting::Interval => "spool, fsync interval 1000 ms",
            Setting::Always => "spool, fsync always",
        }
    }

    /// The configuration keys of this setting, its spool in `dir` (emptied first).
    fn keys(self, dir: &Path) -> String {
        let fsync = match self {
            Setting::NoSpool => return String::new(),
            Setting::Never => "never",
            Setting::Interval => "interval;PERFSINK_SPOOL_FSYNC_INTERVAL_MS=1000",
            Setting::Always => "always",
        };
        let _ = std::fs::remove_dir_all(dir);
        format!(
            "PERFSINK_SPOOL_DIR={};PERFSINK_SPOOL_FSYNC={fsync}",
            dir.display()
        )
    }
}

fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |key: &str| wanted.is_empty() || wanted.iter().any(|w| key.starts_with(w.as_str()));
    let started = Instant::now();
    let null = NullServer::start();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("spool-bench");
    eprintln!(
        "spool bench: null HTTP server on 127.0.0.1:{}, spool in {}",
        null.port,
        dir.display()
    );
    let base = format!(
        "INFLUXDB_URL=http://127.0.0.1:{};INFLUXDB_DB=bench;INFLUXDB_VERSION=1;\
         PERFSINK_CREATE_DATABASE=false;PERFSINK_QUEUE_POLICY=block;\
         PERFSINK_BLOCK_TIMEOUT_MS=600000;PERFSINK_SELF_METRICS_INTERVAL_MS=0",
        null.port
    );
    let mut sink_runs: Vec<[(f64, f64); 4]> = Vec::new();
    let mut relay_runs: Vec<[(f64, f64, f64); 4]> = Vec::new();
    for round in 0..ROUNDS {
        let order: Vec<usize> = (0..4).map(|i| (i + round) % 4).collect();
        if run("sink") {
            let mut rates = [(0.0, 0.0); 4];
            for &i in &order {
                let s = SETTINGS[i];
                rates[i] = sink_run(&format!("{base};{}", s.keys(&dir)), &dir, s);
                eprintln!(
                    "round {round}, sink, {}: {} points/s, {:.0} µs CPU / 1000 points",
                    s.name(),
                    si(rates[i].0),
                    rates[i].1
                );
            }
            sink_runs.push(rates);
        }
        if run("relay") {
            let mut rates = [(0.0, 0.0, 0.0); 4];
            for &i in &order {
                let s = SETTINGS[i];
                rates[i] = relay_run(&format!("{base};{}", s.keys(&dir)), &dir, s);
                eprintln!(
                    "round {round}, relay, {}: {:.1} requests/s, {} lines/s, {:.0} µs CPU / 1000 \
                     lines",
                    s.name(),
                    rates[i].0,
                    si(rates[i].1),
                    rates[i].2
                );
            }
            relay_runs.push(rates);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);

    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "perfsink spool bench — cores (available_parallelism): {cores}; {ROUNDS} rounds, the \
         4 settings alternated in each; medians; ratios per round to the no-spool run of the \
         same round; InfluxDB: a loopback null server (204); spool on {}",
        fs_type(&dir)
    );
    if !sink_runs.is_empty() {
        println!(
            "\nsink: {SINK_POINTS} k6-like points a run, batches of {SINK_BATCH}, submit until \
             flushed\n"
        );
        println!("| setting | points/s | vs no spool | ratio min–max | CPU µs / 1000 points |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for (i, s) in SETTINGS.iter().enumerate() {
            let rates: Vec<f64> = sink_runs.iter().map(|r| r[i].0).collect();
            let ratios: Vec<f64> = sink_runs.iter().map(|r| r[i].0 / r[0].0).collect();
            let cpu: Vec<f64> = sink_runs.iter().map(|r| r[i].1).collect();
            println!(
                "| {} | {} | {:.2} | {} | {:.0} |",
                s.name(),
                si(median(rates)),
                median(ratios.clone()),
                spread(&ratios),
                median(cpu)
            );
        }
    }
    if !relay_runs.is_empty() {
        println!(
            "\nrelay: {CLIENTS} clients posting bodies of {BODY_LINES} lines for {:.1} s a run, \
             204 after the lines are kept\n",
            RELAY_TIME.as_secs_f64()
        );
        println!(
            "| setting | requests/s | lines/s | vs no spool | ratio min–max | CPU µs / 1000 lines |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: |");
        for (i, s) in SETTINGS.iter().enumerate() {
            let reqs: Vec<f64> = relay_runs.iter().map(|r| r[i].0).collect();
            let lines: Vec<f64> = relay_runs.iter().map(|r| r[i].1).collect();
            let ratios: Vec<f64> = relay_runs.iter().map(|r| r[i].1 / r[0].1).collect();
            let cpu: Vec<f64> = relay_runs.iter().map(|r| r[i].2).collect();
            println!(
                "| {} | {:.1} | {} | {:.2} | {} | {:.0} |",
                s.name(),
                median(reqs),
                si(median(lines)),
                median(ratios.clone()),
                spread(&ratios),
                median(cpu)
            );
        }
    }
    println!(
        "\nnull server: {} requests, {} MB received; took {:.1} s",
        null.requests.load(Relaxed),
        null.bytes.load(Relaxed) / 1_000_000,
        started.elapsed().as_secs_f64()
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// CPU seconds this process used so far (user + system, every thread: the sink, the relay, its
/// clients and the null server alike in every setting), from `/proc/self/stat` in clock ticks
/// (100 a second).
fn process_cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|t| t.parse().unwrap_or(0))
        .collect();
    f.get(11)
        .zip(f.get(12))
        .map_or(0.0, |(u, s)| (u + s) as f64 / 100.0)
}

/// The smallest and largest of the per-round ratios: how noisy the rounds were.
fn spread(v: &[f64]) -> String {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{min:.2}–{max:.2}")
}

fn si(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.1}")
    }
}

/// The file system type of the directory's mount (longest matching mount point).
fn fs_type(dir: &Path) -> String {
    let dir = dir.parent().unwrap_or(dir);
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 2 && dir.starts_with(f[1])).then(|| (f[1].len(), f[2].to_string()))
        })
        .max()
        .map_or("?".into(), |(_, t)| t)
}

/// After a run: everything delivered, nothing dropped, and the spool holds nothing.
fn check(what: &str, sink: &Sink, expected: u64, dir: &Path, setting: Setting) {
    let stats = sink.close().stats;
    assert!(
        stats.written == expected && stats.dropped == 0 && stats.rejected == 0,
        "{what}, {}: written {} of {expected}, dropped {}, rejected {}",
        setting.name(),
        stats.written,
        stats.dropped,
        stats.rejected
    );
    if setting != Setting::NoSpool {
        let left = pending_user_lines(dir).expect("read the spool");
        assert_eq!(
            left,
            0,
            "{what}, {}: lines left in the spool",
            setting.name()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The sink

const K6_TAGS: [(&str, &str); 6] = [
    ("expected_response", "true"),
    ("method", "GET"),
    ("name", "https://test.k6.io/"),
    ("proto", "HTTP/1.1"),
    ("scenario", "default"),
    ("status", "200"),
];

fn register_k6(sink: &Sink) -> Vec<SeriesId> {
    (0..SERIES)
        .map(|i| {
            let owned: Vec<(String, String)> = K6_TAGS
                .iter()
                .map(|&(k, v)| {
                    let v = if k == "name" {
                        format!("{v}{i}")
                    } else {
                        v.to_string()
                    };
                    (k.to_string(), v)
                })
                .collect();
            let tags: Vec<Tag> = owned.iter().map(|(k, v)| Tag::new(k, v)).collect();
            sink.register_series("http_req_duration", &tags, "value")
                .expect("register series")
        })
        .collect()
}

/// Points per second through the sink, submit to flushed, and the process's CPU µs per 1000.
fn sink_run(config: &str, dir: &Path, setting: Setting) -> (f64, f64) {
    let sink = Sink::from_kv(config).unwrap_or_else(|e| panic!("{config}: {e}"));
    let ids = register_k6(&sink);
    let fields: Vec<[Field; 2]> = (0..SINK_BATCH)
        .map(|i| {
            [
                Field::new("vu", FieldValue::Int((i % 50) as i64 + 1)),
                Field::new("iter", FieldValue::Int((i / 50) as i64)),
            ]
        })
        .collect();
    let mut points: Vec<Point> = (0..SINK_BATCH)
        .map(|i| Point {
            series: ids[i % SERIES],
            value: (1_000_000 + (i * 7919) % 50_000_000) as f64 / 1e6,
            timestamp_ns: 0,
            extra_fields: &fields[i],
        })
        .collect();
    // 1 µs apart: every point distinct without the dedup shift.
    let mut ts = now_ns() - SINK_POINTS as i64 * 1000;
    let (t0, cpu0) = (Instant::now(), process_cpu_s());
    let mut accepted = 0u64;
    while accepted < SINK_POINTS {
        for p in points.iter_mut() {
            ts += 1000;
            p.timestamp_ns = ts;
        }
        accepted += sink.submit(&points).accepted as u64;
    }
    sink.flush(FLUSH).expect("flush");
    let rate = SINK_POINTS as f64 / t0.elapsed().as_secs_f64();
    let cpu = (process_cpu_s() - cpu0) * 1e9 / SINK_POINTS as f64;
    check("sink", &sink, SINK_POINTS, dir, setting);
    (rate, cpu)
}

// ---------------------------------------------------------------------------------------------
// The relay

/// A body of `BODY_LINES` k6-like lines, timestamps from `ts` 1 µs apart.
fn body(ts: i64) -> Vec<u8> {
    let mut b = Vec::with_capacity(BODY_LINES * 180);
    for i in 0..BODY_LINES {
        writeln!(
            b,
            "http_req_duration,expected_response=true,method=GET,name=https://test.k6.io/{},\
             proto=HTTP/1.1,scenario=default,status=200 vu={}i,iter={}i,value={} {}",
            i % SERIES,
            i % 50 + 1,
            i / 50,
            (1_000_000 + (i * 7919) % 50_000_000) as f64 / 1e6,
            ts + i as i64 * 1000
        )
        .unwrap();
    }
    b
}

/// (requests/s, lines/s, the process's CPU µs per 1000 lines) through the relay, every answer
/// a 204.
fn relay_run(config: &str, dir: &Path, setting: Setting) -> (f64, f64, f64) {
    let sink = Arc::new(Sink::from_kv(config).unwrap_or_else(|e| panic!("{config}: {e}")));
    let mut relay = Relay::start(
        sink.clone(),
        RelayOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..RelayOptions::default()
        },
    )
    .expect("start the relay");
    let url = format!("{}/write?db=bench", relay.url());
    let stop = Arc::new(AtomicBool::new(false));
    let base = now_ns() - 3_600_000_000_000;
    let (t0, cpu0) = (Instant::now(), process_cpu_s());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (url, stop) = (url.clone(), stop.clone());
            thread::spawn(move || {
                let mut n = 0u64;
                // Client c's bodies do not overlap another's in time.
                let mut ts = base + c as i64 * 1_000_000_000_000;
                while !stop.load(Relaxed) {
                    let r = common::http::post(&url, "text/plain", &body(ts))
                        .unwrap_or_else(|e| panic!("POST: {e}"));
                    assert_eq!(r.status, 204, "{}", String::from_utf8_lossy(&r.body));
                    ts += BODY_LINES as i64 * 1000;
                    n += 1;
                }
                n
            })
        })
        .collect();
    thread::sleep(RELAY_TIME);
    stop.store(true, Relaxed);
    let requests: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    let elapsed = t0.elapsed().as_secs_f64();
    relay.shutdown(Duration::from_secs(10));
    sink.flush(FLUSH).expect("flush");
    let lines = requests * BODY_LINES as u64;
    // The CPU of delivering them too: the writer's work on the spool comes after the 204s.
    let cpu = (process_cpu_s() - cpu0) * 1e9 / lines.max(1) as f64;
    check("relay", &sink, lines, dir, setting);
    (requests as f64 / elapsed, lines as f64 / elapsed, cpu)
}

// ---------------------------------------------------------------------------------------------
// The null InfluxDB

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

/// Answers 204 to every request of a keep-alive connection.
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
