//! Fault injection, the `perfsink k6` entry point: the real k6 (v1.1.0) runs the shared test
//! script (`tests/common/k6.rs`) through `perfsink k6` into a real influxd that is killed with
//! -9 and restarted, frozen longer than the request timeout, put behind the fault proxy, or
//! whose spool disk fills; and `perfsink k6` itself is killed with -9 and its spool replayed.
//!
//! "Submitted" is k6's own record: its `--out json` file written beside perfsink. The
//! invariant, exact: points in InfluxDB (per metric, `count` with `/query`) + the losses of
//! perfsink's report (rejected, dropped, kept in the spool) == samples in k6's JSON output,
//! and perfsink accepted every one of them. For the kill of `perfsink k6` itself (k6 is
//! stopped by perfsink's watchdog and its JSON output closed) the exact count cannot include
//! what k6 wrote into the FIFO that perfsink never read; what is asserted there is stated on
//! the test.
//!
//! Random choices come from a seed printed on stderr; `PERFSINK_FAULT_SEED=N` replays it.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::fault_proxy::{random_script, Fault, FaultProxy};
use common::faults::{
    between, freeze_influxd, kill_influxd, seeded, signal, wait_until, TempDir, Tmpfs,
};
use common::influx::quote_ident;
use common::k6::{
    assert_counts_and_sums, clean_env, k6_args, k6_binary, number_after, perfsink_k6,
    read_reference, script_env, start_target, total, with, RefSample, Run, WorkDir,
};
use common::Influx;
use perfsink::Sink;

/// Settings of every run: short intervals, a 1 s request timeout.
const FAST: [(&str, &str); 5] = [
    ("PERFSINK_FLUSH_INTERVAL_MS", "100"),
    ("PERFSINK_RETRY_INITIAL_MS", "50"),
    ("PERFSINK_RETRY_MAX_MS", "500"),
    ("PERFSINK_CONNECT_TIMEOUT_MS", "300"),
    ("PERFSINK_SELF_METRICS_INTERVAL_MS", "0"),
];

/// Points per metric in InfluxDB.
fn stored(
    influx: &Influx,
    db: &str,
    reference: &BTreeMap<String, Vec<RefSample>>,
) -> BTreeMap<String, u64> {
    reference
        .keys()
        .map(|m| (m.clone(), influx.count_field(db, m, "value")))
        .collect()
}

/// The invariant against k6's JSON output and perfsink's report; returns the points stored.
fn assert_invariant(scenario: &str, influx: &Influx, db: &str, dir: &WorkDir, run: &Run) -> u64 {
    let reference = read_reference(&dir.path("ref.json"));
    let submitted = total(&reference);
    let per_metric = stored(influx, db, &reference);
    let in_influx: u64 = per_metric.values().sum();
    let report = run.report();
    let lost =
        run.reported("rejected") + run.reported("dropped") + number_after(report, "kept in spool");
    eprintln!(
        "{scenario}: k6 recorded {submitted} samples, in InfluxDB {in_influx}, counted lost {lost}; {report}"
    );
    assert!(submitted > 500, "a real run: {submitted} samples");
    assert_eq!(run.reported("accepted"), submitted, "{report}");
    assert_eq!(
        run.reported("written"),
        in_influx,
        "InfluxDB holds what perfsink counts as written: {report}"
    );
    assert_eq!(
        in_influx + lost,
        submitted,
        "{scenario}: in InfluxDB + counted losses == k6's samples; {report}"
    );
    for (m, n) in &per_metric {
        assert!(
            *n <= reference[m].len() as u64,
            "{m}: {n} points, k6 recorded {}",
            reference[m].len()
        );
    }
    in_influx
}

fn env_for<'a>(
    base: &'a [(&'static str, String)],
    url: &'a str,
    k6: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut env = with(
        base,
        &[
            ("INFLUXDB_URL", url),
            ("PERFSINK_K6", k6),
            ("SLEEP", "0.02"),
        ],
    );
    env.extend(FAST);
    env.extend_from_slice(extra);
    env
}

/// Fault 1: influxd killed with -9 twice at random points of a 10 s run, down 0.3–2 s, restarted:
/// every sample of k6's JSON output is in InfluxDB, exactly (counts and sums per metric).
#[test]
fn influxd_killed_and_restarted_during_a_k6_run() {
    let mut rng = seeded("k6/influxd-killed");
    let k6 = k6_binary();
    let mut influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("faults-killed");
    let db = "k6f_killed";
    let url = format!("{}/{db}", influx.url());
    let base = script_env(&target);
    let env = env_for(&base, &url, &k6, &[("PERFSINK_CLOSE_TIMEOUT_MS", "30000")]);
    let mut args = vec!["run"];
    args.extend(k6_args("2", "10s", &[]));
    let plan: Vec<(Duration, Duration)> = (0..2)
        .map(|_| {
            (
                between(
                    &mut rng,
                    Duration::from_millis(1000),
                    Duration::from_millis(3000),
                ),
                between(&mut rng, Duration::from_millis(300), Duration::from_secs(2)),
            )
        })
        .collect();
    let run = thread::scope(|s| {
        let influx = &mut influx;
        s.spawn(move || {
            for (k, (before, down)) in plan.into_iter().enumerate() {
                thread::sleep(before);
                eprintln!("kill -9 influxd #{k}, down {down:?}");
                kill_influxd(influx, down);
            }
        });
        perfsink_k6(&dir, &env, &args, Duration::from_secs(90))
    });
    assert!(run.status.success(), "{}", run.stderr);
    assert_invariant("k6/influxd-killed", &influx, db, &dir, &run);
    assert_eq!(run.reported("dropped") + run.reported("rejected"), 0);
    assert!(run.reported("retried requests") > 0, "{}", run.report());
    assert_counts_and_sums(&influx, db, &read_reference(&dir.path("ref.json")));
}

/// Fault 2: influxd frozen twice for 1.5–3 s, longer than the 1 s request timeout.
#[test]
fn influxd_frozen_during_a_k6_run() {
    let mut rng = seeded("k6/influxd-frozen");
    let k6 = k6_binary();
    let influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("faults-frozen");
    let db = "k6f_frozen";
    let url = format!("{}/{db}", influx.url());
    let base = script_env(&target);
    let env = env_for(
        &base,
        &url,
        &k6,
        &[
            ("PERFSINK_CLOSE_TIMEOUT_MS", "30000"),
            ("PERFSINK_TIMEOUT_MS", "1000"),
        ],
    );
    let mut args = vec!["run"];
    args.extend(k6_args("2", "10s", &[]));
    let plan: Vec<(Duration, Duration)> = (0..2)
        .map(|_| {
            (
                between(
                    &mut rng,
                    Duration::from_millis(1000),
                    Duration::from_millis(2500),
                ),
                between(
                    &mut rng,
                    Duration::from_millis(1500),
                    Duration::from_millis(3000),
                ),
            )
        })
        .collect();
    let run = thread::scope(|s| {
        let influx = &influx;
        s.spawn(move || {
            for (k, (before, frozen)) in plan.into_iter().enumerate() {
                thread::sleep(before);
                eprintln!("SIGSTOP influxd #{k} for {frozen:?}");
                freeze_influxd(influx, frozen);
            }
        });
        perfsink_k6(&dir, &env, &args, Duration::from_secs(90))
    });
    assert!(run.status.success(), "{}", run.stderr);
    assert_invariant("k6/influxd-frozen", &influx, db, &dir, &run);
    assert_eq!(run.reported("dropped") + run.reported("rejected"), 0);
    assert!(run.reported("retried requests") > 0, "{}", run.report());
    assert_counts_and_sums(&influx, db, &read_reference(&dir.path("ref.json")));
}

/// Fault 3: The proxy: one round of latency, resets, truncated answers, 500, 503, 429, 413, 400 and
/// 404 in random order, then a 401 (the rest of the run is counted as undelivered).
#[test]
fn proxy_faults_during_a_k6_run() {
    let mut rng = seeded("k6/proxy");
    let k6 = k6_binary();
    let influx = Influx::start();
    influx.create_db("k6f_proxy");
    let target = start_target();
    let dir = WorkDir::new("faults-proxy");
    let db = "k6f_proxy";
    let mut script = random_script(&mut rng, 1, Duration::from_millis(1500));
    script.push(Fault::Status(401));
    let proxy = FaultProxy::start(&influx.url(), script);
    let url = format!("{}/{db}", proxy.url());
    let base = script_env(&target);
    let env = env_for(
        &base,
        &url,
        &k6,
        &[
            ("PERFSINK_CLOSE_TIMEOUT_MS", "10000"),
            ("PERFSINK_TIMEOUT_MS", "5000"),
            ("PERFSINK_BATCH_LINES", "300"),
        ],
    );
    let mut args = vec!["run"];
    args.extend(k6_args("2", "12s", &[]));
    let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(90));
    eprintln!("proxy: {}", proxy.summary());
    assert_eq!(
        proxy.remaining(),
        0,
        "the script was used up: {}",
        proxy.summary()
    );
    // The log says it; the report's last error may be a later one of a request in flight.
    assert!(
        run.stderr.contains("refused the credentials (401"),
        "writing stopped on the 401:\n{}",
        common::k6::tail(&run.stderr, 20)
    );
    let stored = assert_invariant("k6/proxy", &influx, db, &dir, &run);
    assert_eq!(stored, proxy.forwarded_lines() as u64);
    assert!(run.reported("rejected") > 0, "{}", run.report());
}

/// Fault 4: The spool's disk fills: influxd down for the whole run, a 4 MiB tmpfs spool, memory
/// capped at 256 KiB, k6 producing ~10 MB. What did not fit is counted (dropped) and named
/// (ENOSPC); what was kept is delivered by the next sink on that spool once influxd is up:
/// in InfluxDB + dropped == k6's samples.
#[test]
fn spool_disk_full_during_a_k6_run() {
    let k6 = k6_binary();
    let mut influx = Influx::start();
    influx.stop();
    let fs_ = Tmpfs::mount("k6-enospc", "4m");
    let spool = fs_.path().join("spool");
    let target = start_target();
    let dir = WorkDir::new("faults-enospc");
    let db = "k6f_enospc";
    let url = format!("{}/{db}", influx.url());
    let base = script_env(&target);
    let spool_s = spool.display().to_string();
    let env = env_for(
        &base,
        &url,
        &k6,
        &[
            ("PERFSINK_SPOOL_DIR", &spool_s),
            ("PERFSINK_MEMORY_MAX_BYTES", "262144"),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "1000"),
            ("TREND_SAMPLES", "30"),
            ("SLEEP", "0.005"),
        ],
    );
    let mut args = vec!["run"];
    args.extend(k6_args("2", "8s", &[]));
    let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(90));
    eprintln!("k6/spool-disk-full: tmpfs holds {} bytes", fs_.used_bytes());
    assert!(fs_.used_bytes() > 3_000_000, "the spool filled the disk");
    let kept = number_after(run.report(), "kept in spool");
    influx.start_again();
    let sink = Sink::from_kv(&format!(
        "INFLUXDB_URL={url};PERFSINK_SPOOL_DIR={spool_s};PERFSINK_SELF_METRICS_INTERVAL_MS=0"
    ))
    .unwrap();
    sink.flush(Duration::from_secs(60)).unwrap();
    let replay = sink.close();
    eprintln!("replayed by the next sink: {replay}");
    assert_eq!(
        replay.stats.replayed, kept,
        "the next sink replays what was kept"
    );
    let reference = read_reference(&dir.path("ref.json"));
    let submitted = total(&reference);
    let in_influx: u64 = stored(&influx, db, &reference).values().sum();
    let lost = run.reported("rejected") + run.reported("dropped");
    eprintln!(
        "k6/spool-disk-full: k6 recorded {submitted}, in InfluxDB {in_influx} after the replay, \
         counted lost {lost}; {}",
        run.report()
    );
    assert_eq!(run.reported("accepted"), submitted, "{}", run.report());
    assert_eq!(
        in_influx + lost,
        submitted,
        "in InfluxDB + counted losses == k6's samples"
    );
    assert!(
        run.stderr.contains("ENOSPC") || run.stderr.contains("No space left on device"),
        "the full disk is named:\n{}",
        common::k6::tail(&run.stderr, 20)
    );
}

/// Children of `parent` (pid, comm), zombies left out.
fn children(parent: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let mut rest = stat[close + 1..].split_whitespace();
        let (state, ppid) = (rest.next(), rest.next().and_then(|p| p.parse::<u32>().ok()));
        if ppid == Some(parent) && state != Some("Z") {
            found.push((pid, stat[open + 1..close].to_string()));
        }
    }
    found
}

fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Window between k6 stamping a sample and perfsink's writer appending it to the spool: k6's
/// output flush, the FIFO, perfsink's batching (`PERFSINK_FLUSH_INTERVAL_MS`, 100 ms) and the
/// spool's fsync interval, with room for a loaded machine.
const WINDOW: Duration = Duration::from_secs(3);

/// Fault 5: `perfsink k6` with a spool, influxd down, killed with -9 at a random point 6–9 s
/// into a run; its watchdog stops k6 (which closes its JSON output). The next `perfsink k6` on
/// that spool (a 1 s k6 run of its own), with influxd up, replays it. Asserted, of the killed
/// run's samples (all stamped before the kill; the second run's all after it): InfluxDB holds
/// exactly what was replayed, never more points of a metric than k6 recorded, and every sample
/// k6 stamped at least [`WINDOW`] before the kill (what perfsink had read and spooled; the
/// rest may have been in the FIFO).
#[test]
fn perfsink_k6_killed_and_its_spool_replayed() {
    let mut rng = seeded("k6/perfsink-killed");
    let k6 = k6_binary();
    let mut influx = Influx::start();
    influx.stop();
    let target = start_target();
    let dir = WorkDir::new("faults-k6-killed");
    let spool = TempDir::new("k6-killed-spool");
    let spool_s = spool.path().display().to_string();
    let db = "k6f_crash";
    let url = format!("{}/{db}", influx.url());
    let base = script_env(&target);
    let env = env_for(&base, &url, &k6, &[("PERFSINK_SPOOL_DIR", &spool_s)]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfsink"));
    clean_env(&mut cmd)
        .arg("k6")
        .arg("--no-progress")
        .args(k6_args("2", "60s", &[]))
        .current_dir(&dir.0)
        .env("TMPDIR", dir.path("tmp"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.path("stdout.txt")).unwrap())
        .stderr(fs::File::create(dir.path("stderr.txt")).unwrap());
    let mut perfsink = cmd.spawn().unwrap();
    let started = Instant::now();
    let mut k6_pid = None;
    assert!(
        wait_until(Duration::from_secs(30), || {
            k6_pid = children(perfsink.id())
                .into_iter()
                .find(|(_, c)| c == "k6")
                .map(|(p, _)| p);
            k6_pid.is_some()
        }),
        "no k6 child"
    );
    let k6_pid = k6_pid.unwrap();
    let after = between(&mut rng, Duration::from_secs(6), Duration::from_secs(9));
    thread::sleep(after.saturating_sub(started.elapsed()));
    let killed_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    signal(perfsink.id(), "KILL");
    perfsink.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || !alive(k6_pid)),
        "k6 still runs after perfsink was killed"
    );
    let cutoff = killed_at - WINDOW.as_nanos() as i64;

    // The next run of `perfsink k6` on that spool, influxd up: a short k6 run of its own
    // (samples stamped after the kill) and the replay of what the killed one kept.
    influx.start_again();
    let dir2 = WorkDir::new("faults-k6-restart");
    let run2 = perfsink_k6(
        &dir2,
        &env,
        &k6_args("1", "1s", &[]),
        Duration::from_secs(60),
    );
    assert!(run2.status.success(), "{}", run2.stderr);
    let own = total(&read_reference(&dir2.path("ref.json")));
    let replayed = run2.reported("accepted") - own;
    assert_eq!(
        run2.reported("written"),
        run2.reported("accepted"),
        "the restart delivers its own samples and the replay: {}",
        run2.report()
    );
    let reference = read_reference(&dir.path("ref.json"));
    let count_until = |m: &str, t: i64| -> u64 {
        let q = format!(
            "SELECT count(value) FROM {} WHERE time <= {t}",
            quote_ident(m)
        );
        influx
            .query_rows(db, &q)
            .first()
            .and_then(|r| r[1].as_u64())
            .unwrap_or(0)
    };
    let (mut in_influx, mut before_cutoff) = (0, 0);
    let mut missing = BTreeMap::new();
    for (m, samples) in &reference {
        // The killed run's points: stamped before the kill (the dedup moves a tie by ns).
        let stored = count_until(m, killed_at);
        in_influx += stored;
        assert!(
            stored <= samples.len() as u64,
            "{m}: {stored} points, k6 recorded {}",
            samples.len()
        );
        let want = samples.iter().filter(|s| s.time_ns <= cutoff).count() as u64;
        before_cutoff += want;
        let got = count_until(m, cutoff + 1_000_000);
        if got < want {
            missing.insert(m.clone(), (got, want));
        }
    }
    eprintln!(
        "k6/perfsink-killed after {after:?}: k6 recorded {} samples, {before_cutoff} of them at \
         least {WINDOW:?} before the kill; replayed {replayed}, in InfluxDB {in_influx}; missing \
         (in InfluxDB, recorded) {missing:?}; restart: {}",
        total(&reference),
        run2.report()
    );
    assert_eq!(
        in_influx,
        replayed,
        "InfluxDB holds what was replayed of the killed run: {}",
        run2.report()
    );
    assert!(
        missing.is_empty(),
        "samples stamped {WINDOW:?} before the kill are lost: {missing:?}"
    );
}
