//! The C ABI from real C programs (style reference, habits 7–8), each run against a private
//! InfluxDB and checked from `/query`:
//! * `examples/c/workflow_steps.c` linked (a) against `libperfsink.so` with an rpath, (b)
//!   statically against `libperfsink.a` and [`NATIVE_STATIC_LIBS`], (c) both run under
//!   valgrind, (d) built with AddressSanitizer + UBSan, LeakSanitizer on;
//! * `tests/c/abi_errors.c`: misuse returns the documented codes (plain, sanitized, valgrind);
//! * `tests/c/threads.c`: four pthreads submit through one handle, each reading its own
//!   refusals' messages (plain and sanitized);
//! * `tests/c/close_race.c`: seven pthreads call in while the handle is closed, then it is
//!   closed again and freed (plain, sanitized, valgrind);
//! * the header compiles on its own as C99/C11/C17/C2x and C++11/17;
//! * the README's build-and-run lines of the C example, run verbatim.
//!
//! Compilers: `$CC` (default `cc`) and `$CXX` (default `c++`). The native libraries are built
//! first when missing or stale (`tests/native/mod.rs`). Valgrind suppressions, each explained:
//! `tests/c/valgrind.supp`; the sanitizers need none.

mod common;
mod native;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::Influx;
use native::{libs, root, Scratch, NATIVE_STATIC_LIBS};
use serde_json::{json, Value};

const EXAMPLE: &str = "examples/c/workflow_steps.c";
const ABI_ERRORS: &str = "tests/c/abi_errors.c";
const THREADS: &str = "tests/c/threads.c";
const CLOSE_RACE: &str = "tests/c/close_race.c";

/// Flags of every C build: the example must stay clean under them.
const STRICT: &[&str] = &["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-g"];
const SANITIZE: &[&str] = &[
    "-fsanitize=address,undefined",
    "-fno-sanitize-recover=all",
    "-fno-omit-frame-pointer",
];
/// Points of the fast path in `workflow_steps.c` (`FAST_POINTS`).
const FAST_POINTS: usize = 100;
/// Longest a C program may run (valgrind included) before the test kills it.
const RUN_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Clone, Copy, PartialEq)]
enum Link {
    /// `-lperfsink` with an rpath to `target/<profile>`.
    Shared,
    /// `libperfsink.a` plus the native static libs.
    Static,
    /// Shared, built with `-fsanitize=address,undefined`.
    Sanitized,
}

fn cc() -> String {
    std::env::var("CC").unwrap_or_else(|_| "cc".into())
}

fn cxx() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".into())
}

/// Runs a compiler (or any build tool) and panics with its output when it fails.
fn tool(mut cmd: Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Compiles `source` (relative to the repository root) into the scratch dir.
fn compile(scratch: &Scratch, source: &str, link: Link, extra: &[&str]) -> PathBuf {
    let libs = libs();
    let stem = Path::new(source).file_stem().unwrap().to_string_lossy();
    let suffix = match link {
        Link::Shared => "shared",
        Link::Static => "static",
        Link::Sanitized => "asan",
    };
    let exe = scratch.join(&format!("{stem}-{suffix}"));
    let mut cmd = Command::new(cc());
    cmd.args(STRICT)
        .args(extra)
        .arg("-I")
        .arg(root().join("include"))
        .arg(root().join(source));
    match link {
        Link::Static => {
            cmd.arg("-O2").arg(&libs.staticlib).args(NATIVE_STATIC_LIBS);
        }
        Link::Shared | Link::Sanitized => {
            if link == Link::Sanitized {
                cmd.args(SANITIZE).arg("-O1");
            } else {
                cmd.arg("-O2");
            }
            cmd.arg("-L")
                .arg(&libs.dir)
                .arg("-lperfsink")
                .arg(format!("-Wl,-rpath,{}", libs.dir.display()));
        }
    }
    cmd.arg("-o").arg(&exe);
    tool(cmd);
    exe
}

/// A command for a C program (or valgrind): the perfsink libraries are found through the rpath
/// alone, and no INFLUXDB_*/PERFSINK_*/K6_* variable of the test's environment leaks in.
fn program(path: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(path);
    cmd.env_remove("LD_LIBRARY_PATH");
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if ["INFLUXDB_", "PERFSINK_", "K6_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd
}

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed ({}):\n--- stdout\n{}--- stderr\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// Runs `cmd` with its output in files of the scratch dir; kills it after [`RUN_TIMEOUT`].
fn run(scratch: &Scratch, name: &str, mut cmd: Command) -> Ran {
    let (out, err) = (
        scratch.join(&format!("{name}.stdout")),
        scratch.join(&format!("{name}.stderr")),
    );
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out).unwrap())
        .stderr(File::create(&err).unwrap());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{cmd:?} still running after {RUN_TIMEOUT:?}; stderr:\n{}",
                fs::read_to_string(&err).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(10));
    };
    Ran {
        status,
        stdout: fs::read_to_string(&out).unwrap_or_default(),
        stderr: fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// Generous for a loaded machine under valgrind: a bound, not a wait.
const CLOSE_TIMEOUT_MS: &str = "30000";

/// The configuration string of a sink writing to database `db` of `influx`.
fn config(influx: &Influx, db: &str) -> String {
    format!(
        "INFLUXDB_URL={};INFLUXDB_DB={db};PERFSINK_FLUSH_INTERVAL_MS=100;\
         PERFSINK_CLOSE_TIMEOUT_MS={CLOSE_TIMEOUT_MS}",
        influx.url()
    )
}

/// Runs a sanitized program with LeakSanitizer on and checks no sanitizer said anything.
fn run_sanitized(scratch: &Scratch, name: &str, mut cmd: Command) -> Ran {
    // verify_asan_link_order=0: an LD_PRELOAD of the environment (CI helpers) must not stop it.
    cmd.env(
        "ASAN_OPTIONS",
        "detect_leaks=1:abort_on_error=0:verify_asan_link_order=0",
    )
    .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1");
    let ran = run(scratch, name, cmd);
    ran.assert_success(name);
    for report in ["Sanitizer", "runtime error:"] {
        assert!(
            !ran.stderr.contains(report),
            "{name}: sanitizer report:\n{}",
            ran.stderr
        );
    }
    ran
}

/// `valgrind` with leak checking; errors (leaks included) make it exit 99.
fn valgrind() -> Command {
    let found = Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "valgrind is not installed: run scripts/setup.sh (or apt-get install valgrind)"
    );
    let mut cmd = program("valgrind");
    cmd.args([
        "--error-exitcode=99",
        "--leak-check=full",
        "--errors-for-leak-kinds=definite,possible",
        "--gen-suppressions=all",
        "--quiet",
    ])
    .arg(format!(
        "--suppressions={}",
        root().join("tests/c/valgrind.supp").display()
    ));
    cmd
}

// ---- checking what landed in InfluxDB ----

fn strings(rows: Vec<Vec<Value>>) -> Vec<Vec<String>> {
    rows.into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| {
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
        .collect()
}

fn tag_keys(influx: &Influx, db: &str, m: &str) -> Vec<String> {
    strings(influx.query_rows(db, &format!("SHOW TAG KEYS FROM \"{m}\"")))
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

/// `(field, type)` pairs of `SHOW FIELD KEYS`, sorted by field.
fn field_keys(influx: &Influx, db: &str, m: &str) -> Vec<(String, String)> {
    strings(influx.query_rows(db, &format!("SHOW FIELD KEYS FROM \"{m}\"")))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn close_to(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// One step as `workflow_steps.c` records it: the same generator, seed and choices.
struct Step {
    workflow: &'static str,
    step: &'static str,
    success: bool,
    duration: f64,
    iteration: i64,
}

fn expected_steps(n: usize) -> Vec<Step> {
    let mut state: u64 = 42;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / 9007199254740992.0
    };
    (0..n)
        .map(|i| {
            let success = next() >= 0.1;
            let duration = 0.05 + 0.45 * next();
            Step {
                workflow: ["checkout", "search"][i % 2],
                step: ["login", "browse", "add_to_cart", "pay"][(i / 2) % 4],
                success,
                duration,
                iteration: (i / 8) as i64,
            }
        })
        .collect()
}

/// Everything `workflow_steps <config> n` wrote, checked exactly: the workflow_step schema
/// (tags, field types), per (workflow, step, status) the count and the sums of each field, and
/// the fast-path points one by one.
fn assert_example_wrote(influx: &Influx, db: &str, n: usize, ran: &Ran) {
    let total = n + FAST_POINTS;
    assert!(
        ran.stdout.contains(&format!(
            "closed: accepted {total}, written {total}, rejected 0, dropped 0, queue depth 0"
        )),
        "{}",
        ran.stdout
    );
    // The flush in the example waited for InfluxDB: everything is there already.
    let rows = influx.query_rows(
        db,
        "SELECT count(\"duration\"), count(success_count), count(iteration) FROM workflow_step",
    );
    assert_eq!(rows, [vec![json!(0), json!(n), json!(n), json!(n)]]);

    assert_eq!(
        tag_keys(influx, db, "workflow_step"),
        ["action", "status", "step", "workflow"]
    );
    let float = |f: &str| (f.to_string(), "float".to_string());
    let integer = |f: &str| (f.to_string(), "integer".to_string());
    assert_eq!(
        field_keys(influx, db, "workflow_step"),
        [
            float("duration"),
            integer("iteration"),
            integer("success_count")
        ]
    );

    // (workflow, step, status) -> (count, sum duration, sum success_count, sum iteration)
    type Group = (String, String, String);
    type Sums = (u64, f64, i64, i64);
    let mut want: BTreeMap<Group, Sums> = BTreeMap::new();
    for s in expected_steps(n) {
        let status = if s.success { "success" } else { "failure" };
        let e = want
            .entry((s.workflow.into(), s.step.into(), status.into()))
            .or_default();
        e.0 += 1;
        e.1 += s.duration;
        e.2 += i64::from(s.success);
        e.3 += s.iteration;
    }
    assert!(want.keys().any(|k| k.2 == "failure") && want.keys().any(|k| k.2 == "success"));
    let series = influx.query_series(
        db,
        "SELECT count(\"duration\"), sum(\"duration\"), sum(success_count), sum(iteration) \
         FROM workflow_step GROUP BY workflow, step, status, action",
    );
    let mut got: BTreeMap<Group, Sums> = BTreeMap::new();
    for s in &series {
        let tag = |k: &str| s["tags"][k].as_str().unwrap().to_string();
        assert_eq!(tag("action"), "api_call");
        let row = &s["values"][0];
        got.insert(
            (tag("workflow"), tag("step"), tag("status")),
            (
                row[1].as_u64().unwrap(),
                row[2].as_f64().unwrap(),
                row[3].as_i64().unwrap(),
                row[4].as_i64().unwrap(),
            ),
        );
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (k, w) in &want {
        let g = got[k];
        assert!(
            g.0 == w.0 && close_to(g.1, w.1) && g.2 == w.2 && g.3 == w.3,
            "{k:?}: got {g:?}, want {w:?}"
        );
    }

    // The fast path: one series, values in the field `duration`, an integer `iteration`, 1 ms
    // apart.
    assert_eq!(tag_keys(influx, db, "workflow_poll"), ["step", "workflow"]);
    assert_eq!(
        field_keys(influx, db, "workflow_poll"),
        [float("duration"), integer("iteration")]
    );
    let rows = influx.query_rows(
        db,
        "SELECT \"duration\", iteration, step, workflow FROM workflow_poll",
    );
    assert_eq!(rows.len(), FAST_POINTS);
    let t0 = rows[0][0].as_i64().unwrap();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r[0].as_i64().unwrap() - t0, i as i64 * 1_000_000, "{r:?}");
        assert!(
            close_to(r[1].as_f64().unwrap(), 0.001 * (i + 1) as f64),
            "{r:?}"
        );
        assert_eq!(
            r[2..],
            [json!(i), json!("poll_status"), json!("checkout")],
            "{r:?}"
        );
    }
}

// ---- the tests ----

#[test]
fn header_compiles_on_its_own_in_c_and_cpp() {
    let header = root().join("include/perfsink.h");
    for std in ["c99", "c11", "c17", "c2x"] {
        let mut cmd = Command::new(cc());
        cmd.arg(format!("-std={std}"))
            .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
            .args(["-x", "c"])
            .arg(&header);
        tool(cmd);
    }
    for std in ["c++11", "c++17"] {
        let mut cmd = Command::new(cxx());
        cmd.arg(format!("-std={std}"))
            .args(["-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
            .args(["-x", "c++"])
            .arg(&header);
        tool(cmd);
    }
}

#[test]
fn example_linked_against_the_shared_library() {
    let scratch = Scratch::new("example-shared");
    let exe = compile(&scratch, EXAMPLE, Link::Shared, &[]);
    let influx = Influx::start();
    let mut cmd = program(&exe);
    cmd.args([config(&influx, "shared").as_str(), "2000"]);
    let ran = run(&scratch, "workflow_steps", cmd);
    ran.assert_success("workflow_steps (shared)");
    assert_example_wrote(&influx, "shared", 2000, &ran);
}

#[test]
fn example_linked_statically_configured_from_the_environment() {
    let scratch = Scratch::new("example-static");
    let exe = compile(&scratch, EXAMPLE, Link::Static, &[]);
    let influx = Influx::start();
    let mut cmd = program(&exe);
    cmd.args(["-", "1500"])
        .env("INFLUXDB_URL", influx.url())
        .env("INFLUXDB_DB", "static")
        .env("PERFSINK_FLUSH_INTERVAL_MS", "100")
        .env("PERFSINK_CLOSE_TIMEOUT_MS", CLOSE_TIMEOUT_MS);
    let ran = run(&scratch, "workflow_steps", cmd);
    ran.assert_success("workflow_steps (static)");
    assert_example_wrote(&influx, "static", 1500, &ran);
}

fn example_under_valgrind(link: Link, db: &str) {
    let scratch = Scratch::new(&format!("example-valgrind-{db}"));
    let exe = compile(&scratch, EXAMPLE, link, &[]);
    let influx = Influx::start();
    let mut cmd = valgrind();
    cmd.arg(&exe).args([config(&influx, db).as_str(), "200"]);
    let ran = run(&scratch, "valgrind", cmd);
    ran.assert_success("workflow_steps under valgrind");
    assert_example_wrote(&influx, db, 200, &ran);
}

#[test]
fn example_linked_against_the_shared_library_under_valgrind() {
    example_under_valgrind(Link::Shared, "shared");
}

#[test]
fn example_linked_statically_under_valgrind() {
    example_under_valgrind(Link::Static, "static");
}

#[test]
fn example_with_address_and_undefined_behaviour_sanitizers() {
    let scratch = Scratch::new("example-asan");
    let exe = compile(&scratch, EXAMPLE, Link::Sanitized, &[]);
    let influx = Influx::start();
    let mut cmd = program(&exe);
    cmd.args([config(&influx, "asan").as_str(), "2000"]);
    let ran = run_sanitized(&scratch, "workflow_steps", cmd);
    assert_example_wrote(&influx, "asan", 2000, &ran);
}

/// What `abi_errors.c` leaves in InfluxDB: its 4 valid points and nothing it was refused.
fn assert_abi_errors_wrote(influx: &Influx, db: &str, ran: &Ran) {
    assert!(ran.stdout.contains(" checks, 0 failed"), "{}", ran.stdout);
    let measurements = strings(influx.query_rows(db, "SHOW MEASUREMENTS"));
    assert_eq!(measurements, [["abi_errors_ok"]]);
    let rows = influx.query_rows(
        db,
        "SELECT count(value), count(\"duration\") FROM abi_errors_ok",
    );
    assert_eq!(rows, [vec![json!(0), json!(3), json!(1)]]);
}

fn abi_errors_config(influx: &Influx, db: &str) -> String {
    // No self-metrics: the database must hold only what the program wrote.
    format!("{};PERFSINK_SELF_METRICS_INTERVAL_MS=0", config(influx, db))
}

#[test]
fn misuse_returns_the_documented_codes() {
    plain_and_sanitized(
        "abi_errors",
        ABI_ERRORS,
        &[],
        abi_errors_config,
        assert_abi_errors_wrote,
    );
}

/// Compiles `source` plain and with ASan/UBSan, runs each against a private influxd (database
/// `plain` or `asan`, configured by `config`) and checks what it did with `check`.
fn plain_and_sanitized(
    name: &str,
    source: &str,
    flags: &[&str],
    config: fn(&Influx, &str) -> String,
    check: fn(&Influx, &str, &Ran),
) {
    let scratch = Scratch::new(&name.replace('_', "-"));
    let influx = Influx::start();
    for link in [Link::Shared, Link::Sanitized] {
        let exe = compile(&scratch, source, link, flags);
        let db = if link == Link::Shared {
            "plain"
        } else {
            "asan"
        };
        let mut cmd = program(&exe);
        cmd.arg(config(&influx, db));
        let ran = if link == Link::Sanitized {
            run_sanitized(&scratch, &format!("{name}-asan"), cmd)
        } else {
            let ran = run(&scratch, name, cmd);
            ran.assert_success(name);
            ran
        };
        check(&influx, db, &ran);
    }
}

#[test]
fn misuse_under_valgrind() {
    let scratch = Scratch::new("abi-errors-valgrind");
    let exe = compile(&scratch, ABI_ERRORS, Link::Shared, &[]);
    let influx = Influx::start();
    let mut cmd = valgrind();
    cmd.arg(&exe).arg(abi_errors_config(&influx, "valgrind"));
    let ran = run(&scratch, "valgrind", cmd);
    ran.assert_success("abi_errors under valgrind");
    assert_abi_errors_wrote(&influx, "valgrind", &ran);
}

#[test]
fn four_pthreads_share_one_handle() {
    // threads.c: 4 threads x 50 batches x 100 points, thread t's k-th value t * 1e6 + k.
    const TOTAL: u64 = 4 * 50 * 100;
    let want_sum: f64 = (0..4u64)
        .flat_map(|t| (0..5000u64).map(move |k| (t * 1_000_000 + k) as f64))
        .sum();
    let scratch = Scratch::new("threads");
    let influx = Influx::start();
    for link in [Link::Shared, Link::Sanitized] {
        let exe = compile(&scratch, THREADS, link, &["-pthread"]);
        let db = if link == Link::Shared {
            "plain"
        } else {
            "asan"
        };
        let mut cmd = program(&exe);
        cmd.arg(config(&influx, db));
        let ran = if link == Link::Sanitized {
            run_sanitized(&scratch, "threads-asan", cmd)
        } else {
            let ran = run(&scratch, "threads", cmd);
            ran.assert_success("threads");
            ran
        };
        assert!(
            ran.stdout.contains(&format!(
                "accepted {TOTAL}, written {TOTAL}, rejected_invalid 20"
            )),
            "{}",
            ran.stdout
        );
        let rows = influx.query_rows(db, "SELECT count(value), sum(value) FROM c_threads");
        assert_eq!(rows.len(), 1, "{db}: {rows:?}");
        assert_eq!(rows[0][1], json!(TOTAL), "{db}: {rows:?}");
        assert_eq!(rows[0][2].as_f64(), Some(want_sum), "{db}: {rows:?}");
    }
}

/// The std part of [`NATIVE_STATIC_LIBS`] as this toolchain prints it, from an empty staticlib
/// (no rebuild of perfsink, which would race the other tests for `target/<profile>`). A
/// dependency adding a system library would make the static link above fail instead.
#[test]
fn native_static_libs_are_what_rustc_prints() {
    let scratch = Scratch::new("native-static-libs");
    let src = scratch.join("empty.rs");
    fs::write(&src, "").unwrap();
    // The rustc of the toolchain that runs this test: next to its cargo.
    let sibling = Path::new(env!("CARGO")).with_file_name("rustc");
    let rustc = std::env::var_os("RUSTC")
        .map(PathBuf::from)
        .unwrap_or_else(|| match sibling.is_file() {
            true => sibling,
            false => PathBuf::from("rustc"),
        });
    let out = Command::new(&rustc)
        .args(["--crate-type", "staticlib", "--crate-name", "empty"])
        .args(["--print", "native-static-libs", "-o"])
        .arg(scratch.join("libempty.a"))
        .arg(&src)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", rustc.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let printed: Vec<&str> = stderr
        .lines()
        .find_map(|l| l.strip_prefix("note: native-static-libs: "))
        .unwrap_or_else(|| panic!("no native-static-libs line in:\n{stderr}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        printed, NATIVE_STATIC_LIBS,
        "update NATIVE_STATIC_LIBS in tests/native/mod.rs and the static link line of the README"
    );
}

/// What `close_race.c` reports and leaves: every point a thread was told was taken is in
/// InfluxDB, and threads kept calling after the close.
fn assert_close_race(influx: &Influx, db: &str, ran: &Ran) {
    let line = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("close_race: accepted "))
        .unwrap_or_else(|| panic!("no report line:\n{}", ran.stdout));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (accepted, written, after) = (numbers[0], numbers[1], numbers[3]);
    assert!(accepted > 0 && after > 0, "{line}");
    assert_eq!(written, accepted, "{line}");
    let stored = influx.count(db, "c_race") + influx.count(db, "c_race_record");
    assert_eq!(stored, written, "{line}");
}

#[test]
fn closing_while_threads_call_in_is_safe() {
    plain_and_sanitized(
        "close_race",
        CLOSE_RACE,
        &["-pthread"],
        config,
        assert_close_race,
    );
}

#[test]
fn closing_while_threads_call_in_under_valgrind() {
    let scratch = Scratch::new("close-race-valgrind");
    let exe = compile(&scratch, CLOSE_RACE, Link::Shared, &["-pthread"]);
    let influx = Influx::start();
    let mut cmd = valgrind();
    cmd.arg(&exe).arg(config(&influx, "valgrind"));
    let ran = run(&scratch, "valgrind", cmd);
    ran.assert_success("close_race under valgrind");
    assert_close_race(&influx, "valgrind", &ran);
}

/// The README's two lines that build and run the C example (after `make build`): `cc ...
/// -lperfsink -Wl,-rpath,...` and `./workflow_steps ...`, run verbatim by `sh` from a scratch
/// copy of the repository's layout (`include/`, `examples/`, `target/release/` the libraries of
/// this test run), with `LD_LIBRARY_PATH` unset: the program finds the library by itself.
#[test]
fn readme_c_lines_build_and_run_as_printed() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let lines: Vec<&str> = readme.lines().collect();
    let build = lines
        .iter()
        .position(|l| l.starts_with("cc ") && l.contains("-lperfsink"))
        .expect("the README prints no `cc ... -lperfsink` line");
    let run_line = lines[build + 1];
    assert!(
        run_line.starts_with("./workflow_steps"),
        "the README's line after the cc line should run the program: {run_line:?}"
    );
    let scratch = Scratch::new("readme-c-lines");
    let libs = libs();
    fs::create_dir(scratch.join("target")).unwrap();
    for (link, to) in [
        ("include", root().join("include")),
        ("examples", root().join("examples")),
        ("target/release", libs.dir.clone()),
    ] {
        std::os::unix::fs::symlink(to, scratch.join(link)).unwrap();
    }
    let influx = Influx::start();
    let mut ran = Vec::new();
    for (name, line) in [("cc", lines[build]), ("run", run_line)] {
        let mut cmd = program("sh");
        // `$PWD` in the line: the scratch copy, as in a user's shell there (not the test's).
        cmd.args(["-c", line])
            .current_dir(scratch.path())
            .env("PWD", scratch.path())
            .env("INFLUXDB_URL", format!("{}/readme", influx.url()))
            .env("PERFSINK_FLUSH_INTERVAL_MS", "100");
        let r = run(&scratch, name, cmd);
        r.assert_success(line);
        ran.push(r);
    }
    let n: usize = run_line
        .split_whitespace()
        .nth(2)
        .and_then(|w| w.parse().ok())
        .expect("the run line is `./workflow_steps - <steps>`");
    assert_example_wrote(&influx, "readme", n, &ran[1]);
}
