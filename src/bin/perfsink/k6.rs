//! `perfsink k6`: runs the stock k6 binary with `--out json=<FIFO>` and streams every sample
//! into the sink while k6 runs (k6 raw schema, `perfsink::sources::k6`).
//!
//! * Arguments: `perfsink k6 [--progress|--no-progress] [--] [run] <k6 run arguments>`. A
//!   leading `run` is optional, so `perfsink k6 script.js` and `perfsink k6 run script.js` are
//!   the same; only `k6 run` is supported (other k6 commands produce no samples).
//! * k6 is `$PERFSINK_K6`, else `k6` from `PATH`. It inherits stdin, stdout and stderr, and its
//!   exit code is perfsink's (128 + N when a signal N ended it).
//! * The stream is a named pipe in a private (0700) temporary directory
//!   (`$TMPDIR/perfsink-k6-<pid>-<random>`), removed at the end. k6 opens its `--out json` file
//!   read-write, so it never sees the end of the pipe: the reader keeps reading until k6 exits,
//!   and perfsink ignores Ctrl-C (the terminal sends it to k6 too, which stops gracefully) so
//!   that the reader never disappears under a writing k6. SIGTERM is forwarded to k6.
//! * k6 dies with perfsink: a watchdog (`sh`, see [`WATCHDOG`]) holds the read end of a pipe
//!   only perfsink writes to. When perfsink ends in any way, `kill -9` included, the kernel
//!   closes that pipe; unless perfsink said k6 had exited, the watchdog drains the FIFO (so
//!   k6's graceful stop cannot block on it), sends k6 SIGTERM, SIGKILL after 5 s, and removes
//!   the pipe directory. (k6 cannot see the end of the FIFO itself, and a parent-death signal
//!   would need `unsafe` in `pre_exec` or an external `setpriv`, and leaves the directory.)
//!   Directories of earlier runs whose perfsink is gone (the watchdog killed too) are removed
//!   by the next run.
//! * With neither `INFLUXDB_URL` nor any `K6_INFLUXDB_*` set, reporting is disabled: k6 runs
//!   plainly, without the JSON output.

use std::ffi::OsStr;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use perfsink::config::{Api, Config};
use perfsink::sources::k6::config as k6config;
use perfsink::sources::k6::json::{K6Counters, K6JsonSource, K6Stats};
use perfsink::sources::k6::schema::TagsAsFields;
use perfsink::Sink;

pub const USAGE: &str =
    "usage: perfsink k6 [--progress|--no-progress] [--fail-on-loss] [--] [run] <k6 run arguments...>

Runs `k6 run --out json=<pipe> <arguments>` and streams every sample into InfluxDB in the schema
of k6's own influxdb output (dashboard 2587 works), while k6 runs. k6's output and exit code pass
through unchanged; a one-line delivery report is printed on stderr at the end.

  --progress      a progress line on stderr every 2 s (default: only when stderr is a terminal)
  --no-progress   no progress line
  --fail-on-loss  exit 3 (unless k6 itself failed) when a sample did not reach InfluxDB
                  (rejected, dropped, left in the spool); also PERFSINK_FAIL_ON_LOSS=true

k6 is $PERFSINK_K6, else `k6` from PATH. Configuration: INFLUXDB_* / PERFSINK_* (README.md), and
k6's own K6_INFLUXDB_* variables (INFLUXDB_* / PERFSINK_* win when both are set). With neither
INFLUXDB_URL nor K6_INFLUXDB_* set, reporting is disabled and k6 runs on its own.
InfluxDB on this machine (localhost, 127.x, [::1]) gets uncompressed request bodies unless
PERFSINK_GZIP_LEVEL is set: on loopback gzip saves nothing and costs CPU k6 could use.
To write vu and iter as fields, enable them in k6: --system-tags with vu,iter added.";

/// How often the progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long the reader may take to finish once k6 has exited (it only drains the pipe).
const READER_GRACE: Duration = Duration::from_secs(30);

pub fn run(args: &[String]) -> ExitCode {
    let mut progress: Option<bool> = None;
    let mut fail_on_loss = false;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        match a.as_str() {
            "--progress" => progress = Some(true),
            "--no-progress" => progress = Some(false),
            "--fail-on-loss" => fail_on_loss = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "--" => {
                i += 1;
                break;
            }
            _ => break,
        }
        i += 1;
    }
    let mut k6_args = &args[i..];
    if k6_args.first().map(String::as_str) == Some("run") {
        k6_args = &k6_args[1..];
    }
    let progress = progress.unwrap_or_else(|| io::stderr().is_terminal());
    let k6 = std::env::var_os("PERFSINK_K6")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "k6".into());

    let mut settings = match k6config::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("perfsink: {e}");
            return ExitCode::from(2);
        }
    };
    for note in &settings.notes {
        eprintln!("perfsink: note: {note}");
    }
    settings.config.fail_on_loss |= fail_on_loss;
    let signals = Signals::install();

    if !settings.config.enabled() {
        eprintln!(
            "perfsink: reporting disabled (INFLUXDB_URL and K6_INFLUXDB_* are unset); running k6 on its own"
        );
        clean_stale_pipes(&std::env::temp_dir());
        let mut watchdog = Watchdog::start(None);
        let mut cmd = Command::new(&k6);
        cmd.arg("run").args(k6_args);
        let code = match cmd.spawn() {
            Ok(child) => {
                watchdog.watch(child.id());
                let status = supervise(child, &signals, || {});
                watchdog.k6_exited();
                exit_code(status)
            }
            Err(e) => spawn_failed(&k6, &e),
        };
        watchdog.finish();
        return code;
    }

    eprintln!("perfsink: {}", describe_target(&settings.config));
    let sink = match Sink::open(settings.config) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            eprintln!("perfsink: {e}");
            return ExitCode::from(2);
        }
    };
    let pipe = match Pipe::create() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("perfsink: cannot create the pipe for k6's samples: {e}");
            return ExitCode::from(2);
        }
    };
    let mut watchdog = Watchdog::start(Some(&pipe));
    let counters = Arc::new(K6Counters::default());
    let reader = start_reader(
        pipe.path.clone(),
        sink.clone(),
        settings.tags_as_fields,
        counters.clone(),
    );

    let mut cmd = Command::new(&k6);
    let mut out = std::ffi::OsString::from("json=");
    out.push(&pipe.path);
    cmd.arg("run").arg("--out").arg(out).args(k6_args);
    let (code, k6_ok) = match cmd.spawn() {
        Ok(child) => {
            watchdog.watch(child.id());
            let mut meter = Progress::new(progress, &sink, &counters);
            let status = supervise(child, &signals, || meter.tick());
            watchdog.k6_exited();
            (exit_code(status), status.success())
        }
        Err(e) => {
            signals.k6_exited.store(true, Ordering::Relaxed);
            (spawn_failed(&k6, &e), false)
        }
    };

    let stats = finish_reader(&pipe.path, reader, &counters);
    let report = sink.close();
    eprintln!("{report}; {stats}");
    drop(pipe);
    watchdog.finish();
    if report.failed() {
        eprintln!(
            "perfsink: {} sample(s) did not reach InfluxDB and loss fails the run \
             (--fail-on-loss, PERFSINK_FAIL_ON_LOSS)",
            report.lost()
        );
        // k6's own failure (thresholds 99, script errors) says more; it is kept.
        if k6_ok {
            return ExitCode::from(LOSS_EXIT);
        }
    }
    code
}

/// The exit code of a k6 run that succeeded but lost samples under `--fail-on-loss`.
const LOSS_EXIT: u8 = 3;

fn describe_target(config: &Config) -> String {
    match config.endpoint.as_ref().map(|e| (&e.base_url, &e.api)) {
        Some((url, Api::V1 { db, .. })) => {
            format!("streaming k6 samples to InfluxDB at {url}, database {db:?}")
        }
        Some((url, Api::V2 { bucket, .. })) => {
            format!("streaming k6 samples to InfluxDB at {url}, bucket {bucket:?}")
        }
        None => "reporting disabled".into(),
    }
}

fn spawn_failed(k6: &std::ffi::OsStr, e: &io::Error) -> ExitCode {
    eprintln!(
        "perfsink: cannot run {}: {e} (install k6, or point PERFSINK_K6 at it)",
        Path::new(k6).display()
    );
    // The shell's conventions: 127 not found, 126 found but not runnable.
    ExitCode::from(if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

/// Waits for k6, forwarding SIGTERM and calling `tick` about every 50 ms.
fn supervise(child: Child, signals: &Signals, tick: impl FnMut()) -> ExitStatus {
    let status = wait_for(child, signals, tick);
    signals.k6_exited.store(true, Ordering::Relaxed);
    status
}

fn wait_for(mut child: Child, signals: &Signals, mut tick: impl FnMut()) -> ExitStatus {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) => {}
            Err(e) => {
                eprintln!("perfsink: waiting for k6: {e}");
                if let Ok(status) = child.wait() {
                    return status;
                }
                return ExitStatus::from_raw(1 << 8);
            }
        }
        if signals.terminate.swap(false, Ordering::Relaxed) {
            forward_sigterm(child.id());
        }
        tick();
        thread::sleep(Duration::from_millis(50));
    }
}

/// k6's exit code, or 128 + the signal that ended it (the shell's convention).
fn exit_code(status: ExitStatus) -> ExitCode {
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(sig)) => ExitCode::from((128 + sig) as u8),
        _ => ExitCode::FAILURE,
    }
}

fn forward_sigterm(pid: u32) {
    // `sh`'s builtin kill: sending a signal needs no `unsafe` this way.
    let _ = Command::new("sh")
        .args(["-c", &format!("kill -TERM {pid}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// While k6 runs, SIGINT is ignored (k6 gets it from the terminal and stops gracefully) and
/// SIGTERM is remembered and forwarded. Once k6 has exited (`k6_exited`), either signal ends
/// perfsink at once, so a Ctrl-C cuts a slow final delivery short.
struct Signals {
    terminate: Arc<AtomicBool>,
    k6_exited: Arc<AtomicBool>,
}

impl Signals {
    fn install() -> Signals {
        use signal_hook::consts::{SIGINT, SIGTERM};
        use signal_hook::flag;
        let terminate = Arc::new(AtomicBool::new(false));
        let k6_exited = Arc::new(AtomicBool::new(false));
        let r = flag::register_conditional_default(SIGINT, k6_exited.clone())
            .and_then(|_| flag::register_conditional_default(SIGTERM, k6_exited.clone()))
            .and_then(|_| flag::register(SIGTERM, terminate.clone()));
        if let Err(e) = r {
            eprintln!(
                "perfsink: note: cannot handle signals ({e}); Ctrl-C may cut the report short"
            );
        }
        Signals {
            terminate,
            k6_exited,
        }
    }
}

/// The named pipe k6 writes its samples to, in a private temporary directory; both are removed
/// on drop.
struct Pipe {
    dir: PathBuf,
    path: PathBuf,
}

impl Pipe {
    fn create() -> io::Result<Pipe> {
        let base = std::env::temp_dir();
        let mut attempt = 0;
        let dir = loop {
            let dir = base.join(format!(
                "{PIPE_DIR_PREFIX}{}-{:08x}",
                std::process::id(),
                fastrand::u32(..)
            ));
            match DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => return Err(e),
            }
        };
        let pipe = Pipe {
            path: dir.join(PIPE_NAME),
            dir,
        };
        clean_stale_pipes(&base);
        // `mkfifo(1)`: creating a FIFO needs no `unsafe` this way.
        let status = Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&pipe.path)
            .stdin(Stdio::null())
            .status()
            .map_err(|e| io::Error::new(e.kind(), format!("mkfifo: {e}")))?;
        if !status.success() {
            return Err(io::Error::other(format!("mkfifo failed ({status})")));
        }
        Ok(pipe)
    }
}

impl Drop for Pipe {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The pipe directory's name: this prefix, perfsink's pid, `-`, 8 hex digits.
const PIPE_DIR_PREFIX: &str = "perfsink-k6-";
/// The FIFO's name in it.
const PIPE_NAME: &str = "samples.json";

/// The pid in a pipe directory's name, `None` for any other name.
fn pipe_dir_pid(name: &str) -> Option<u32> {
    let (pid, tag) = name.strip_prefix(PIPE_DIR_PREFIX)?.split_once('-')?;
    let hex = tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_hexdigit());
    let digits = !pid.is_empty() && pid.len() <= 10 && pid.bytes().all(|b| b.is_ascii_digit());
    if hex && digits {
        pid.parse().ok()
    } else {
        None
    }
}

/// Removes the pipe directories in `base` that earlier runs left behind: only directories
/// named as [`Pipe::create`] names them, owned by this user, whose perfsink (the pid in the
/// name) is gone, holding nothing but the FIFO.
fn clean_stale_pipes(base: &Path) {
    // Without `/proc` (where a pid's liveness and our uid are read) nothing is removed.
    let Some(uid) = current_uid() else {
        return;
    };
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(pipe_dir_pid) else {
            continue;
        };
        if pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let dir = entry.path();
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() && m.uid() == uid => {}
            _ => continue,
        }
        // Nothing but the FIFO (or nothing at all): anything else means it is not ours.
        let Ok(mut inside) = fs::read_dir(&dir) else {
            continue;
        };
        let only_the_fifo = inside.all(|e| {
            e.is_ok_and(|e| e.file_name() == PIPE_NAME && e.file_type().is_ok_and(|t| t.is_fifo()))
        });
        if !only_the_fifo {
            continue;
        }
        let _ = fs::remove_file(dir.join(PIPE_NAME));
        if fs::remove_dir(&dir).is_ok() {
            eprintln!(
                "perfsink: removed {}, left by an earlier run (pid {pid}) that did not end cleanly",
                dir.display()
            );
        }
    }
}

/// This process's user id, as the owner of `/proc/self` says it (no `unsafe` `getuid`).
fn current_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// The watchdog's script: `$1` the pipe directory, `$2` the FIFO (both empty without a pipe).
/// Its stdin is a pipe only perfsink writes to: `k6 <pid>` once k6 runs, `exited` once k6 has
/// exited. At the end of its stdin (perfsink ended, however), it stops a k6 still running:
/// drains the FIFO so that k6's graceful stop does not block on it, SIGTERM, up to 5 s,
/// SIGKILL. Then it removes the FIFO and the directory. Signals from the terminal (Ctrl-C,
/// hang-up) and SIGTERM are ignored: perfsink alone decides when it ends.
const WATCHDOG: &str = r#"trap '' INT TERM HUP
dir=$1 fifo=$2 pid=
while IFS= read -r line; do
  case $line in
    "k6 "*) pid=${line#k6 } ;;
    exited) pid= ;;
  esac
done
if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
  drain=
  if [ -n "$fifo" ] && [ -p "$fifo" ]; then
    cat <>"$fifo" >/dev/null 2>&1 &
    drain=$!
  fi
  kill -TERM "$pid" 2>/dev/null
  n=0
  while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 10 ]; do
    sleep 0.5 2>/dev/null || sleep 1
    n=$((n + 1))
  done
  kill -KILL "$pid" 2>/dev/null
  if [ -n "$drain" ]; then kill -KILL "$drain" 2>/dev/null; fi
fi
if [ -n "$dir" ]; then
  rm -f "$fifo"
  rmdir "$dir" 2>/dev/null
fi
exit 0
"#;

/// Stops k6 and removes the pipe directory when perfsink dies (see [`WATCHDOG`]). Every call
/// is best effort: without `sh` k6 runs unwatched (said once).
struct Watchdog {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    fn start(pipe: Option<&Pipe>) -> Watchdog {
        let (dir, fifo) = match pipe {
            Some(p) => (p.dir.as_os_str(), p.path.as_os_str()),
            None => (OsStr::new(""), OsStr::new("")),
        };
        // Its stdin's write end is close-on-exec (std creates pipes so): k6 never holds it, so
        // perfsink's end is the only one.
        let spawned = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("perfsink-k6-watchdog")
            .arg(dir)
            .arg(fifo)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        match spawned {
            Ok(mut child) => Watchdog {
                stdin: child.stdin.take(),
                child: Some(child),
            },
            Err(e) => {
                eprintln!(
                    "perfsink: note: cannot start the watchdog (sh: {e}); if perfsink is killed, \
                     k6 keeps running"
                );
                Watchdog {
                    child: None,
                    stdin: None,
                }
            }
        }
    }

    fn tell(&mut self, line: &str) {
        if let Some(stdin) = &mut self.stdin {
            if stdin.write_all(line.as_bytes()).is_err() {
                self.stdin = None;
            }
        }
    }

    /// k6 runs as `pid`.
    fn watch(&mut self, pid: u32) {
        self.tell(&format!("k6 {pid}\n"));
    }

    /// k6 has exited (and was reaped): nothing to stop any more.
    fn k6_exited(&mut self) {
        self.tell("exited\n");
    }

    /// perfsink ends normally: the watchdog only removes what is left of the pipe directory.
    fn finish(mut self) {
        self.stdin = None;
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

type Reader = JoinHandle<io::Result<K6Stats>>;

fn start_reader(
    path: PathBuf,
    sink: Arc<Sink>,
    tags_as_fields: TagsAsFields,
    counters: Arc<K6Counters>,
) -> Reader {
    thread::spawn(move || {
        // Blocks until k6 opens the pipe (or `finish_reader` does).
        let file = File::open(&path)?;
        let mut source = K6JsonSource::with_counters(&sink, tags_as_fields, counters);
        let stats = source.run(file)?;
        if let Some(e) = source.first_error() {
            eprintln!("perfsink: a line of k6's output was not understood: {e}");
        }
        Ok(stats)
    })
}

/// Lets the reader see the end of the stream once k6 has exited, and waits for it. If k6 never
/// opened the pipe, the reader still waits in `open`: opening the pipe read-write here lets that
/// `open` return, and closing it again gives the reader its end of file.
fn finish_reader(path: &Path, reader: Reader, counters: &K6Counters) -> K6Stats {
    let deadline = Instant::now() + READER_GRACE;
    while !reader.is_finished() && Instant::now() < deadline {
        let held = OpenOptions::new().read(true).write(true).open(path);
        thread::sleep(Duration::from_millis(20));
        drop(held);
        thread::sleep(Duration::from_millis(5));
    }
    if !reader.is_finished() {
        eprintln!("perfsink: the k6 stream reader did not finish; reporting what it read");
        return counters.snapshot();
    }
    match reader.join() {
        Ok(Ok(stats)) => stats,
        Ok(Err(e)) => {
            eprintln!("perfsink: reading k6's samples: {e}");
            counters.snapshot()
        }
        Err(_) => {
            eprintln!("perfsink: the k6 stream reader panicked");
            counters.snapshot()
        }
    }
}

/// The progress line: samples/s, points written, queue depth, drops.
struct Progress<'a> {
    enabled: bool,
    sink: &'a Sink,
    counters: &'a K6Counters,
    last: Instant,
    last_samples: u64,
}

impl<'a> Progress<'a> {
    fn new(enabled: bool, sink: &'a Sink, counters: &'a K6Counters) -> Self {
        Progress {
            enabled,
            sink,
            counters,
            last: Instant::now(),
            last_samples: 0,
        }
    }

    fn tick(&mut self) {
        if !self.enabled || self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        let secs = self.last.elapsed().as_secs_f64();
        let k6 = self.counters.snapshot();
        let s = self.sink.stats();
        eprintln!(
            "perfsink: {:.0} samples/s, {} samples, written {}, queue {}, dropped {}{}",
            (k6.samples - self.last_samples) as f64 / secs,
            k6.samples,
            s.written,
            s.queue_depth,
            s.dropped,
            if s.rejected > 0 {
                format!(", rejected {}", s.rejected)
            } else {
                String::new()
            }
        );
        self.last = Instant::now();
        self.last_samples = k6.samples;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_directory_names() {
        assert_eq!(pipe_dir_pid("perfsink-k6-1234-0badf00d"), Some(1234));
        assert_eq!(pipe_dir_pid("perfsink-k6-1-ABCDEF01"), Some(1));
        for other in [
            "perfsink-k6-1234-0badf00",
            "perfsink-k6-1234-0badf00dd",
            "perfsink-k6-1234-notahex!",
            "perfsink-k6--0badf00d",
            "perfsink-k6-+12-0badf00d",
            "perfsink-k6-12345678901-0badf00d",
            "perfsink-k6test-x-1-2",
            "perfsink-k6-1234",
            "other-1234-0badf00d",
        ] {
            assert_eq!(pipe_dir_pid(other), None, "{other}");
        }
    }
}
