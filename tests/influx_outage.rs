//! Real failures of a real InfluxDB: stopped mid-run and restarted, not running at open, down
//! for the whole run, with and without a disk spool, with a small memory cap. Counts are exact:
//! every point offered is written, kept in the spool, or counted as dropped.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::Influx;
use perfsink::{Point, Sink, Stats, Tag};
use serde_json::json;

const T0: i64 = 1_700_000_000_000_000_000;

const FAST: &str = "PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_RETRY_INITIAL_MS=50;\
                    PERFSINK_RETRY_MAX_MS=500;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_TIMEOUT_MS=2000;PERFSINK_CONNECT_TIMEOUT_MS=500";

fn open_url(url: &str, db: &str, extra: &str) -> Sink {
    let kv = format!("INFLUXDB_URL={url};INFLUXDB_DB={db};{FAST};{extra}");
    Sink::from_kv(&kv).unwrap_or_else(|e| panic!("{kv}: {e}"))
}

fn assert_accounted(s: &Stats) {
    assert_eq!(
        s.accepted + s.replayed,
        s.written + s.rejected_server + s.dropped_undelivered + s.queue_depth,
        "{s:?}"
    );
}

/// `count` and `sum` of `value` in `m`: together they show that no point is missing,
/// duplicated or merged with another.
fn count_and_sum(influx: &Influx, db: &str, m: &str) -> (u64, f64) {
    let rows = influx.query_rows(db, &format!("SELECT count(value), sum(value) FROM {m}"));
    match rows.first() {
        Some(r) => (r[1].as_u64().unwrap(), r[2].as_f64().unwrap()),
        None => (0, 0.0),
    }
}

/// Points `0..n` of series `m` as `value = i`, 1 ms apart.
fn submit_range(sink: &Sink, id: u32, from: i64, to: i64) {
    let pts: Vec<Point> = (from..to)
        .map(|i| Point::new(id, i as f64, T0 + i * 1_000_000))
        .collect();
    let sub = sink.submit(&pts);
    assert_eq!(
        (sub.accepted, sub.dropped, sub.rejected),
        (pts.len(), 0, 0),
        "{sub:?}"
    );
}

fn sum_to(n: i64) -> f64 {
    (n * (n - 1) / 2) as f64
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!(
            "perfsink-outage-{name}-{}-{}",
            std::process::id(),
            T0 ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as i64
        ));
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    fn kv(&self) -> String {
        format!("PERFSINK_SPOOL_DIR={}", self.0.display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The spool's segment files (beside them is its `lock`).
fn spool_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock")
        .collect();
    v.sort();
    v
}

/// A loopback URL nobody listens on.
fn dead_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn influxdb_stopped_mid_run_and_restarted_loses_nothing() {
    let mut influx = Influx::start();
    let db = "outage";
    let sink = Arc::new(open_url(
        &influx.url(),
        db,
        "PERFSINK_CLOSE_TIMEOUT_MS=5000",
    ));
    let id = sink
        .register_series("load", &[Tag::new("host", "gen-1")], "value")
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (sink, stop) = (sink.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0i64;
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                submit_range(&sink, id, n, n + 20);
                slowest = slowest.max(t.elapsed());
                n += 20;
                thread::sleep(Duration::from_millis(10));
            }
            (n, slowest)
        })
    };
    thread::sleep(Duration::from_secs(2));
    let before = sink.stats().written;
    assert!(before > 0, "writing before the outage");
    influx.stop();
    let down_at = Instant::now();
    thread::sleep(Duration::from_secs(10));
    let during = sink.stats();
    assert!(during.retried > 0, "{during:?}");
    assert!(
        during.queue_depth > 1000,
        "points wait while InfluxDB is down: {during:?}"
    );
    assert_eq!(during.dropped, 0, "{during:?}");
    let e = sink.last_error().unwrap();
    assert!(e.contains(&influx.url()), "{e}");
    influx.start_again();
    assert!(down_at.elapsed() >= Duration::from_secs(10));
    thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    let (n, slowest) = producer.join().unwrap();
    assert!(
        slowest < Duration::from_millis(500),
        "producers never wait on the network: {slowest:?}"
    );
    sink.flush(Duration::from_secs(30)).unwrap();
    assert_eq!(count_and_sum(&influx, db, "load"), (n as u64, sum_to(n)));
    // The first and last points are exact too.
    assert_eq!(
        influx.query_rows(db, "SELECT first(value) FROM load")[0][0],
        json!(T0)
    );
    assert_eq!(
        influx.query_rows(db, "SELECT last(value) FROM load")[0],
        vec![json!(T0 + (n - 1) * 1_000_000), json!(n - 1)]
    );
    let s = sink.close().stats;
    assert_eq!(
        (s.accepted, s.written, s.dropped, s.rejected),
        (n as u64, n as u64, 0, 0),
        "{s:?}"
    );
    assert_accounted(&s);
}

#[test]
fn influxdb_not_running_at_open_gets_the_points_once_it_starts() {
    let mut influx = Influx::start();
    influx.stop();
    let db = "late";
    let sink = open_url(&influx.url(), db, "");
    let id = sink.register_series("m", &[], "value").unwrap();
    submit_range(&sink, id, 0, 300);
    assert_eq!(
        sink.flush(Duration::from_millis(800)),
        Err(perfsink::Error::Timeout)
    );
    let s = sink.stats();
    assert_eq!((s.written, s.queue_depth, s.dropped), (0, 300, 0), "{s:?}");
    assert!(s.retried >= 1, "{s:?}");
    let e = sink.last_error().unwrap();
    assert!(e.contains(&influx.url()), "names the server: {e}");
    influx.start_again();
    submit_range(&sink, id, 300, 400);
    sink.flush(Duration::from_secs(20)).unwrap();
    // The database did not exist: the sink created it when InfluxDB came up.
    assert_eq!(count_and_sum(&influx, db, "m"), (400, sum_to(400)));
    let s = sink.close().stats;
    assert_eq!((s.written, s.dropped), (400, 0));
}

#[test]
fn influxdb_down_for_the_whole_run_close_is_prompt_and_counts_the_loss() {
    let url = dead_url();
    let sink = open_url(&url, "k6", "PERFSINK_CLOSE_TIMEOUT_MS=500");
    let id = sink.register_series("m", &[], "value").unwrap();
    submit_range(&sink, id, 0, 1000);
    thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    let r = sink.close();
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "close took {:?}",
        t.elapsed()
    );
    let s = r.stats;
    assert_eq!(
        (
            s.accepted,
            s.written,
            s.dropped_undelivered,
            s.dropped,
            s.queue_depth
        ),
        (1000, 0, 1000, 1000, 0),
        "{s:?}"
    );
    assert_eq!(r.kept_in_spool, 0);
    let e = r.last_error.clone().unwrap();
    assert!(e.contains(&url), "{e}");
    assert!(r.to_string().contains("undelivered 1000"), "{}", r);
}

#[test]
fn spool_keeps_undelivered_points_and_a_new_sink_replays_them() {
    let mut influx = Influx::start();
    influx.stop();
    let dir = TempDir::new("replay");
    let db = "spooled";
    let sink = open_url(
        &influx.url(),
        db,
        &format!("{};PERFSINK_CLOSE_TIMEOUT_MS=300", dir.kv()),
    );
    let id = sink.register_series("m", &[], "value").unwrap();
    for k in 0..5 {
        submit_range(&sink, id, k * 100, (k + 1) * 100);
    }
    let t = Instant::now();
    let r = sink.close();
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "close took {:?}",
        t.elapsed()
    );
    assert_eq!(r.kept_in_spool, 500);
    assert_eq!(
        (r.stats.spooled, r.stats.dropped, r.stats.written),
        (500, 0, 0),
        "{:?}",
        r.stats
    );
    let files = spool_files(&dir.0);
    assert!(
        !files.is_empty() && files.iter().all(|f| f.ends_with(".wal")),
        "{files:?}"
    );
    assert_eq!(
        perfsink::writer::spool::pending_user_lines(&dir.0).unwrap(),
        500
    );
    drop(sink);

    influx.start_again();
    let sink = open_url(&influx.url(), db, &dir.kv());
    assert_eq!(
        sink.stats().replayed,
        500,
        "the spool is taken over at open"
    );
    let id = sink.register_series("m", &[], "value").unwrap();
    submit_range(&sink, id, 500, 600);
    sink.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(count_and_sum(&influx, db, "m"), (600, sum_to(600)));
    let r = sink.close();
    assert_eq!(
        (
            r.stats.replayed,
            r.stats.accepted,
            r.stats.written,
            r.kept_in_spool
        ),
        (500, 100, 600, 0),
        "{:?}",
        r.stats
    );
    assert_accounted(&r.stats);
    assert!(spool_files(&dir.0).is_empty(), "{:?}", spool_files(&dir.0));
}

/// A damaged spool costs the damaged record only, counted: a flipped bit in one batch's
/// payload, and a torn record at the end (a machine crash in the middle of an append).
#[test]
fn a_damaged_spool_loses_the_damaged_batch_only_counted_once() {
    let mut influx = Influx::start();
    influx.stop();
    let dir = TempDir::new("damaged");
    let db = "damaged";
    let kv = format!(
        "{};PERFSINK_BATCH_LINES=100;PERFSINK_CLOSE_TIMEOUT_MS=300",
        dir.kv()
    );
    let sink = open_url(&influx.url(), db, &kv);
    let id = sink.register_series("m", &[], "value").unwrap();
    submit_range(&sink, id, 0, 500);
    assert_eq!(sink.close().kept_in_spool, 500);
    drop(sink);
    let files = spool_files(&dir.0);
    assert_eq!(files.len(), 1, "{files:?}");
    let path = dir.0.join(&files[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    let records: Vec<usize> = bytes
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == b"PSR1")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(records.len(), 5, "five batches of 100");
    bytes[records[1] + 36 + 7] ^= 0x01;
    bytes.extend_from_slice(b"PSR1\x01\0\0\0torn");
    std::fs::write(&path, &bytes).unwrap();

    influx.start_again();
    let sink = open_url(&influx.url(), db, &kv);
    sink.flush(Duration::from_secs(20)).unwrap();
    let r = sink.close();
    assert_eq!(
        (
            r.stats.replayed,
            r.stats.written,
            r.stats.dropped_undelivered
        ),
        (500, 400, 100),
        "{:?}",
        r.stats
    );
    assert_eq!(influx.count(db, "m"), 400);
    assert_accounted(&r.stats);
    drop(sink);
    // Counted once: the next sink finds nothing left to replay and nothing damaged.
    let sink = open_url(&influx.url(), db, &kv);
    let s = sink.close().stats;
    assert_eq!((s.replayed, s.dropped), (0, 0), "{s:?}");
}

/// The spool at its cap is back-pressure: the writer takes nothing more, producers meet the
/// queue policy (here: wait 100 ms, then drop and count), and nothing taken is dropped later.
#[test]
fn spool_cap_overflow_is_counted_and_the_rest_replays() {
    let mut influx = Influx::start();
    influx.stop();
    let dir = TempDir::new("cap");
    let db = "capped";
    let sink = open_url(
        &influx.url(),
        db,
        &format!(
            "{};PERFSINK_SPOOL_MAX_BYTES=3000;PERFSINK_BATCH_LINES=10;PERFSINK_QUEUE_CAPACITY=2;\
             PERFSINK_CLOSE_TIMEOUT_MS=300",
            dir.kv()
        ),
    );
    let id = sink.register_series("m", &[], "value").unwrap();
    let pts: Vec<Point> = (0..500)
        .map(|i| Point::new(id, i as f64, T0 + i * 1_000_000))
        .collect();
    let sub = sink.submit(&pts);
    assert!(
        sub.dropped > 0 && sub.accepted + sub.dropped == 500,
        "{sub:?}"
    );
    let r = sink.close();
    let s = r.stats;
    assert!(r.kept_in_spool > 0 && s.dropped_queue_full > 0, "{r:?}");
    // Only what waited on the queue (2 batches) and in the accumulator when close gave up
    // is counted as undelivered; the rest met the policy when it was produced.
    assert!(s.dropped_undelivered <= 30, "taken, then dropped: {s:?}");
    assert_eq!(r.kept_in_spool + s.dropped, 500, "{s:?}");
    assert_eq!(s.dropped_queue_full, sub.dropped as u64);
    let bytes: u64 = spool_files(&dir.0)
        .iter()
        .map(|f| std::fs::metadata(dir.0.join(f)).unwrap().len())
        .sum();
    // The spool takes batches while under its cap: at most one batch (10 lines) beyond it.
    assert!(bytes < 3000 + 500, "{bytes}");
    drop(sink);

    influx.start_again();
    let sink = open_url(&influx.url(), db, &dir.kv());
    sink.flush(Duration::from_secs(20)).unwrap();
    assert_eq!(influx.count(db, "m"), r.kept_in_spool);
    assert_eq!(sink.close().stats.written, r.kept_in_spool);
}

#[test]
fn small_memory_cap_without_spool_drops_counted_and_never_hangs() {
    let mut influx = Influx::start();
    influx.stop();
    let db = "mem";
    let sink = open_url(
        &influx.url(),
        db,
        "PERFSINK_MEMORY_MAX_BYTES=4096;PERFSINK_QUEUE_CAPACITY=2;PERFSINK_BATCH_LINES=20;\
         PERFSINK_BLOCK_TIMEOUT_MS=20;PERFSINK_CLOSE_TIMEOUT_MS=5000",
    );
    let id = sink.register_series("m", &[], "value").unwrap();
    let offered = 20_000i64;
    let mut slowest = Duration::ZERO;
    let mut dropped_at_submit = 0;
    for k in 0..(offered / 100) {
        let pts: Vec<Point> = (k * 100..(k + 1) * 100)
            .map(|i| Point::new(id, i as f64, T0 + i * 1_000_000))
            .collect();
        let t = Instant::now();
        let sub = sink.submit(&pts);
        slowest = slowest.max(t.elapsed());
        assert_eq!(sub.accepted + sub.dropped, 100, "{sub:?}");
        dropped_at_submit += sub.dropped as u64;
    }
    assert!(
        slowest < Duration::from_millis(300),
        "a producer waited {slowest:?}"
    );
    let s = sink.stats();
    assert_eq!(s.dropped_queue_full, dropped_at_submit);
    assert!(s.dropped_queue_full > 0, "{s:?}");
    assert_eq!(s.accepted + s.dropped_queue_full, offered as u64, "{s:?}");
    assert!(s.queue_depth < 1000, "memory stays bounded: {s:?}");

    // InfluxDB comes back: what was kept is delivered, exactly.
    influx.start_again();
    sink.flush(Duration::from_secs(20)).unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}, last error {:?}",
            sink.stats(),
            sink.last_error()
        )
    });
    let s = sink.close().stats;
    assert_accounted(&s);
    assert_eq!(s.queue_depth, 0);
    assert!(s.written > 0, "{s:?}");
    assert_eq!(influx.count(db, "m"), s.written);
    assert_eq!(
        s.written + s.dropped_undelivered + s.dropped_queue_full,
        offered as u64,
        "{s:?}"
    );
}
