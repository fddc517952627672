//! Fault injection, the C ABI / Rust API entry point: a producer submits numbered points
//! (series `faults`, value i, time T0 + i µs) while a real influxd is killed with -9 and
//! restarted, frozen longer than the request timeout, put behind a proxy that injects
//! latency, resets, truncated answers and InfluxDB's error answers, or while the spool's disk
//! is full; and a C host process (`tests/c/fault_host.c`, through the real C ABI) is killed
//! with -9 and started again on the same spool.
//!
//! The invariant of every scenario, exact: points in InfluxDB (`count` read back with
//! `/query`) + the losses the sink counted (its close report: rejected, dropped, kept in the
//! spool) == points submitted; and InfluxDB holds exactly what the sink counts as written.
//! Across a crash of the host: every point it synced is in InfluxDB after the restart.
//!
//! Random choices come from a seed printed on stderr; `PERFSINK_FAULT_SEED=N` replays it.

mod common;
mod native;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::fault_proxy::{random_script, Fault, FaultProxy};
use common::faults::{
    between, freeze_influxd, kill_influxd, seeded, signal, wait_until, TempDir, Tmpfs,
};
use common::Influx;
use native::{libs, root, Scratch};
use perfsink::{Point, Report, Sink};

const T0: i64 = 1_700_000_000_000_000_000;
const M: &str = "faults";

/// Short intervals and timeouts: faults are noticed and recovered from within the scenario.
const FAST: &str = "PERFSINK_FLUSH_INTERVAL_MS=50;PERFSINK_RETRY_INITIAL_MS=50;\
                    PERFSINK_RETRY_MAX_MS=500;PERFSINK_SELF_METRICS_INTERVAL_MS=0;\
                    PERFSINK_TIMEOUT_MS=1000;PERFSINK_CONNECT_TIMEOUT_MS=300;\
                    PERFSINK_BATCH_LINES=500";

fn open(url: &str, db: &str, extra: &str) -> Sink {
    let kv = format!("INFLUXDB_URL={url};INFLUXDB_DB={db};{FAST};{extra}");
    Sink::from_kv(&kv).unwrap_or_else(|e| panic!("{kv}: {e}"))
}

/// A producer thread: batches of `batch` points every `pause` until `stop`; returns how many
/// points it offered (taken or refused, every one counted by the sink).
fn produce(
    sink: Arc<Sink>,
    batch: i64,
    pause: Duration,
    stop: Arc<AtomicBool>,
    offered: Arc<AtomicU64>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let id = sink.register_series(M, &[], "value").unwrap();
        let mut n = 0i64;
        while !stop.load(Ordering::Relaxed) {
            let pts: Vec<Point> = (n..n + batch)
                .map(|i| Point::new(id, i as f64, T0 + i * 1000))
                .collect();
            let sub = sink.submit(&pts);
            assert_eq!(
                sub.accepted + sub.dropped + sub.rejected,
                pts.len(),
                "{sub:?}"
            );
            n += batch;
            offered.store(n as u64, Ordering::Relaxed);
            thread::sleep(pause);
        }
        n as u64
    })
}

/// The invariant: InfluxDB holds what the sink counts as written, and that plus the counted
/// losses is what was offered. Prints the numbers.
fn assert_invariant(scenario: &str, influx: &Influx, db: &str, offered: u64, r: &Report) {
    let stored = influx.count(db, M);
    let s = &r.stats;
    eprintln!(
        "{scenario}: offered {offered}, in InfluxDB {stored}; report: {r}; requests {}",
        s.requests
    );
    assert_eq!(
        stored, s.written,
        "{scenario}: InfluxDB holds what the sink counts as written; {r}"
    );
    assert_eq!(
        stored + r.lost(),
        offered,
        "{scenario}: in InfluxDB + counted losses == offered; {r}"
    );
    assert_eq!(
        s.accepted + s.rejected_invalid + s.dropped_queue_full,
        offered,
        "{r}"
    );
}

/// Fault 1: influxd killed with -9 three times at random points of an ~8 s run, down for a random
/// 0.3–2 s each time, started again on the same data.
#[test]
fn influxd_killed_and_restarted_at_random_points() {
    let mut rng = seeded("sink/influxd-killed");
    let mut influx = Influx::start();
    let db = "f_killed";
    let sink = Arc::new(open(&influx.url(), db, "PERFSINK_CLOSE_TIMEOUT_MS=20000"));
    let (stop, offered) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let producer = produce(
        sink.clone(),
        50,
        Duration::from_millis(5),
        stop.clone(),
        Arc::clone(&offered),
    );
    for k in 0..3 {
        thread::sleep(between(
            &mut rng,
            Duration::from_millis(300),
            Duration::from_secs(2),
        ));
        let down = between(&mut rng, Duration::from_millis(300), Duration::from_secs(2));
        eprintln!(
            "kill -9 influxd #{k} after {} points, down {down:?}",
            offered.load(Ordering::Relaxed)
        );
        kill_influxd(&mut influx, down);
    }
    thread::sleep(between(
        &mut rng,
        Duration::from_millis(200),
        Duration::from_secs(1),
    ));
    stop.store(true, Ordering::Relaxed);
    let offered = producer.join().unwrap();
    sink.flush(Duration::from_secs(60)).unwrap_or_else(|e| {
        panic!("{e}: {:?} {:?}", sink.stats(), sink.last_error());
    });
    let r = sink.close();
    assert!(r.stats.retried > 0, "the kills were noticed: {r}");
    assert_invariant("sink/influxd-killed", &influx, db, offered, &r);
    assert_eq!(r.lost(), 0, "nothing is lost while influxd restarts: {r}");
}

/// Fault 2: influxd frozen (SIGSTOP) twice for longer than the request timeout (1 s), then SIGCONT:
/// requests time out, are sent again, and what the frozen influxd stored late is not counted
/// twice.
#[test]
fn influxd_frozen_longer_than_the_request_timeout() {
    let mut rng = seeded("sink/influxd-frozen");
    let influx = Influx::start();
    let db = "f_frozen";
    let sink = Arc::new(open(&influx.url(), db, "PERFSINK_CLOSE_TIMEOUT_MS=20000"));
    let (stop, offered) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let producer = produce(
        sink.clone(),
        50,
        Duration::from_millis(5),
        stop.clone(),
        Arc::clone(&offered),
    );
    for k in 0..2 {
        thread::sleep(between(
            &mut rng,
            Duration::from_millis(300),
            Duration::from_millis(1500),
        ));
        let frozen = between(
            &mut rng,
            Duration::from_millis(1500),
            Duration::from_millis(3000),
        );
        eprintln!(
            "SIGSTOP influxd #{k} after {} points for {frozen:?}",
            offered.load(Ordering::Relaxed)
        );
        freeze_influxd(&influx, frozen);
    }
    thread::sleep(between(
        &mut rng,
        Duration::from_millis(200),
        Duration::from_secs(1),
    ));
    stop.store(true, Ordering::Relaxed);
    let offered = producer.join().unwrap();
    sink.flush(Duration::from_secs(60)).unwrap_or_else(|e| {
        panic!("{e}: {:?} {:?}", sink.stats(), sink.last_error());
    });
    let r = sink.close();
    assert!(r.stats.retried > 0, "the timeouts were noticed: {r}");
    assert_invariant("sink/influxd-frozen", &influx, db, offered, &r);
    assert_eq!(r.lost(), 0, "nothing is lost while influxd is frozen: {r}");
}

/// Fault 3: The proxy: two rounds of latency (up to 1.5 s; the request timeout is 5 s here, the
/// frozen influxd tests the timeout), resets,
/// truncated answers, 500, 503, 429, 413, 400 and 404 in random order, then a 401 (writing
/// stops for good; what follows is counted as undelivered).
#[test]
fn proxy_injects_latency_resets_truncation_and_error_answers() {
    let mut rng = seeded("sink/proxy");
    let influx = Influx::start();
    let db = "f_proxy";
    let mut script = random_script(&mut rng, 2, Duration::from_millis(1500));
    script.push(Fault::Status(401));
    let proxy = FaultProxy::start(&influx.url(), script);
    let sink = Arc::new(open(
        &proxy.url(),
        db,
        "PERFSINK_CLOSE_TIMEOUT_MS=5000;PERFSINK_BATCH_LINES=200;PERFSINK_TIMEOUT_MS=5000",
    ));
    let (stop, offered) = (Arc::new(AtomicBool::new(false)), Arc::default());
    let producer = produce(
        sink.clone(),
        20,
        Duration::from_millis(5),
        stop.clone(),
        Arc::clone(&offered),
    );
    let done = wait_until(Duration::from_secs(60), || proxy.remaining() == 0);
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let offered = producer.join().unwrap();
    eprintln!("proxy: {}", proxy.summary());
    assert!(
        done,
        "the proxy's script was not used up: {}",
        proxy.summary()
    );
    let h = sink.health();
    let e = h.error.clone().unwrap_or_default();
    assert!(e.contains("401"), "writing stopped on the 401: {h:?}");
    let r = sink.close();
    assert_invariant("sink/proxy", &influx, db, offered, &r);
    assert_eq!(
        influx.count(db, M),
        proxy.forwarded_lines() as u64,
        "InfluxDB holds exactly the lines the proxy forwarded"
    );
    assert!(
        r.stats.rejected_server > 0,
        "400/413 refusals are counted: {r}"
    );
    assert!(r.stats.dropped_undelivered > 0, "after the 401: {r}");
}

/// Fault 4: The spool's disk is full: a 4 MiB tmpfs, influxd down, memory capped at 256 KiB, 8 MB
/// of points offered. What neither memory nor disk takes is refused or dropped, counted; once
/// influxd is back everything else arrives. The sink names the cause (ENOSPC).
#[test]
fn spool_disk_full() {
    let mut influx = Influx::start();
    influx.stop();
    let fs = Tmpfs::mount("sink-enospc", "4m");
    let spool = fs.path().join("spool");
    let db = "f_enospc";
    let sink = open(
        &influx.url(),
        db,
        &format!(
            "PERFSINK_SPOOL_DIR={};PERFSINK_MEMORY_MAX_BYTES=262144;PERFSINK_CLOSE_TIMEOUT_MS=30000;\
             PERFSINK_BLOCK_TIMEOUT_MS=10",
            spool.display()
        ),
    );
    let id = sink
        .register_series(M, &[perfsink::Tag::new("pad", &"p".repeat(60))], "value")
        .unwrap();
    let mut offered = 0u64;
    let mut cause = String::new();
    for k in 0..100i64 {
        let pts: Vec<Point> = (k * 1000..(k + 1) * 1000)
            .map(|i| Point::new(id, i as f64, T0 + i * 1000))
            .collect();
        let sub = sink.submit(&pts);
        assert_eq!(sub.accepted + sub.dropped + sub.rejected, 1000, "{sub:?}");
        offered += 1000;
        let h = sink.health();
        if let Some(e) = h.error {
            if cause.is_empty() || e.contains("ENOSPC") || e.contains("No space left") {
                cause = e;
            }
        }
    }
    thread::sleep(Duration::from_millis(300));
    let full = sink.stats();
    eprintln!(
        "spool disk full: tmpfs holds {} bytes; {full:?}; cause {cause:?}",
        fs.used_bytes()
    );
    assert!(fs.used_bytes() > 3_000_000, "the spool filled the disk");
    influx.start_again();
    let _ = sink.flush(Duration::from_secs(60));
    let r = sink.close();
    assert_invariant("sink/spool-disk-full", &influx, db, offered, &r);
    assert!(r.lost() > 0, "8 MB do not fit in 256 KiB + 4 MiB: {r}");
    assert_eq!(r.kept_in_spool, 0, "{r}");
    assert!(
        cause.contains("ENOSPC") || cause.contains("No space left on device"),
        "the sink names the full disk as the cause: {cause:?}"
    );
}

// ------------------------------------------------------------------------------------------
// Fault 5: A C host killed with -9 and started again on the same spool.

/// `tests/c/fault_host.c` linked against `libperfsink.so`; with `-DPERFSINK_HAVE_SYNC` when
/// the header declares `perfsink_sink_sync` (the write-ahead spool's call).
fn fault_host(scratch: &Scratch) -> (PathBuf, bool) {
    let libs = libs();
    let header = std::fs::read_to_string(root().join("include/perfsink.h")).unwrap();
    let have_sync = header.contains("perfsink_sink_sync(");
    let exe = scratch.join("fault_host");
    let mut cmd = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cmd.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1", "-g", "-I"])
        .arg(root().join("include"))
        .arg(root().join("tests/c/fault_host.c"))
        .arg("-L")
        .arg(&libs.dir)
        .arg("-lperfsink")
        .arg(format!("-Wl,-rpath,{}", libs.dir.display()))
        .arg("-o")
        .arg(&exe);
    if have_sync {
        cmd.arg("-DPERFSINK_HAVE_SYNC");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (exe, have_sync)
}

fn host(exe: &PathBuf, config: &str, arg: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.env_remove("LD_LIBRARY_PATH");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("INFLUXDB_") || k.starts_with("PERFSINK_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg(config).arg(arg);
    cmd
}

/// Runs the host until it printed `synced N`, lets it submit for `after`, kills it with -9;
/// returns the last `submitted M` it printed (M ≥ N: points it offered in all).
fn run_and_kill(mut cmd: Command, after: Duration) -> u64 {
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let started = Instant::now();
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "the host ended before it synced: {:?}", child.wait());
        if line.starts_with("synced ") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no sync");
    }
    let synced: u64 = line["synced ".len()..].trim().parse().unwrap();
    thread::sleep(after);
    signal(child.id(), "KILL");
    child.wait().unwrap();
    let mut last = synced;
    for l in out.lines() {
        if let Some(n) = l.unwrap().strip_prefix("submitted ") {
            last = n.trim().parse().unwrap();
        }
    }
    // A batch may have been taken when the kill came, before it was printed.
    last + 100
}

/// `replayed R accepted A written W rejected X dropped D kept K` of `fault_host drain`.
fn drain(exe: &PathBuf, config: &str) -> std::collections::BTreeMap<String, u64> {
    let out = host(exe, config, "drain").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "drain: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let words: Vec<&str> = text.split_whitespace().collect();
    words
        .chunks(2)
        .map(|kv| (kv[0].to_string(), kv[1].parse().unwrap()))
        .collect()
}

/// Points `0..n` of `crash` in InfluxDB.
fn synced_in_influx(influx: &Influx, db: &str, n: u64) -> u64 {
    let rows = influx.query_rows(
        db,
        &format!("SELECT count(value) FROM crash WHERE value < {n}"),
    );
    rows.first().and_then(|r| r[1].as_u64()).unwrap_or(0)
}

/// A spool policy from the seed once the write-ahead spool has landed (its setting did not
/// exist before: an unknown key is refused).
fn fsync_setting(rng: &mut fastrand::Rng, have_sync: bool) -> String {
    if !have_sync {
        return String::new();
    }
    let policy = ["always", "interval", "never"][rng.usize(0..3)];
    eprintln!("PERFSINK_SPOOL_FSYNC={policy}");
    format!(";PERFSINK_SPOOL_FSYNC={policy}")
}

/// Fault 5a: influxd down while the host runs: everything it synced is only in the spool when it
/// is killed; the next process on that spool, with influxd up, delivers all of it, and exactly
/// what it replayed.
#[test]
fn c_host_killed_while_influxd_is_down_loses_nothing_it_synced() {
    let mut rng = seeded("sink/c-host-killed-influxd-down");
    let scratch = Scratch::new("faults-c-host-down");
    let (exe, have_sync) = fault_host(&scratch);
    let mut influx = Influx::start();
    influx.stop();
    let spool = TempDir::new("c-host-down");
    let db = "f_crash_down";
    let config = format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};{FAST};PERFSINK_SPOOL_DIR={}{}",
        influx.url(),
        spool.path().display(),
        fsync_setting(&mut rng, have_sync)
    );
    let synced = rng.u64(20..80) * 100;
    let after = between(&mut rng, Duration::ZERO, Duration::from_millis(300));
    let submitted = run_and_kill(host(&exe, &config, &synced.to_string()), after);
    influx.start_again();
    let d = drain(&exe, &config);
    let stored = influx.count(db, "crash");
    let kept = synced_in_influx(&influx, db, synced);
    eprintln!(
        "c host killed (influxd down): synced {synced}, submitted at most {submitted}, \
         after restart {d:?}, in InfluxDB {stored} of which {kept} synced (sync: {have_sync})"
    );
    assert_eq!(
        kept, synced,
        "every synced point is in InfluxDB after the restart"
    );
    assert!(stored <= submitted, "nothing invented");
    assert_eq!(stored, d["replayed"], "the replay delivered what it read");
    assert_eq!(d["written"], d["replayed"], "{d:?}");
}

/// Fault 5b: influxd up: the host is killed at a random point after its sync; after the restart
/// every synced point is in InfluxDB, nothing beyond what it submitted.
#[test]
fn c_host_killed_while_writing_loses_nothing_it_synced() {
    let mut rng = seeded("sink/c-host-killed-influxd-up");
    let scratch = Scratch::new("faults-c-host-up");
    let (exe, have_sync) = fault_host(&scratch);
    let influx = Influx::start();
    let spool = TempDir::new("c-host-up");
    let db = "f_crash_up";
    let config = format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};{FAST};PERFSINK_SPOOL_DIR={}{}",
        influx.url(),
        spool.path().display(),
        fsync_setting(&mut rng, have_sync)
    );
    let synced = rng.u64(20..200) * 100;
    let after = between(&mut rng, Duration::ZERO, Duration::from_millis(500));
    let submitted = run_and_kill(host(&exe, &config, &synced.to_string()), after);
    let d = drain(&exe, &config);
    let stored = influx.count(db, "crash");
    let kept = synced_in_influx(&influx, db, synced);
    eprintln!(
        "c host killed (influxd up): synced {synced}, submitted at most {submitted}, \
         after restart {d:?}, in InfluxDB {stored} of which {kept} synced (sync: {have_sync})"
    );
    assert_eq!(
        kept, synced,
        "every synced point is in InfluxDB after the restart"
    );
    assert!(stored <= submitted, "nothing invented");
}

/// Two processes never share a spool: a second process (the C host) on the directory a live
/// sink uses fails to open, saying it is in use; once the first is closed it opens.
#[test]
fn a_second_process_on_a_spool_in_use_is_refused() {
    let scratch = Scratch::new("faults-in-use");
    let (exe, _) = fault_host(&scratch);
    let influx = Influx::start();
    let spool = TempDir::new("in-use");
    let kv = format!(
        "INFLUXDB_URL={};INFLUXDB_DB=f_lock;{FAST};PERFSINK_SPOOL_DIR={}",
        influx.url(),
        spool.path().display()
    );
    let first = Sink::from_kv(&kv).unwrap();
    let second = host(&exe, &kv, "drain").output().unwrap();
    let msg = String::from_utf8_lossy(&second.stderr).into_owned();
    eprintln!("second process on the same spool: {} {msg}", second.status);
    assert_eq!(
        second.status.code(),
        Some(2),
        "a second process opened the spool in use: {msg}"
    );
    assert!(msg.contains("in use"), "{msg}");
    first.close();
    drop(first);
    let third = host(&exe, &kv, "drain").output().unwrap();
    assert!(third.status.success(), "{:?}", third);
}
