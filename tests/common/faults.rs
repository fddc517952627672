//! Shared pieces of the fault-injection suite (`tests/faults_*.rs`): the seed every random
//! choice comes from, signals to processes (influxd killed, frozen), a small tmpfs for the
//! spool, private directories.
//!
//! Every scenario takes its random choices from [`seeded`]: the seed is printed on stderr
//! (`cargo test` shows it when the test fails) and `PERFSINK_FAULT_SEED=N` replays it.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::influx::Influx;

/// The random source of one scenario: `PERFSINK_FAULT_SEED` when set, else a fresh seed;
/// printed either way with the scenario's name.
pub fn seeded(scenario: &str) -> fastrand::Rng {
    let seed = match std::env::var("PERFSINK_FAULT_SEED") {
        Ok(s) => s
            .trim()
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("PERFSINK_FAULT_SEED={s:?} is not a u64")),
        Err(_) => {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
            t ^ (u64::from(std::process::id()) << 32)
        }
    };
    eprintln!("{scenario}: fault seed {seed} (replay: PERFSINK_FAULT_SEED={seed})");
    fastrand::Rng::with_seed(seed)
}

/// A random duration in `[lo, hi)`.
pub fn between(rng: &mut fastrand::Rng, lo: Duration, hi: Duration) -> Duration {
    let (lo_ms, hi_ms) = (lo.as_millis() as u64, hi.as_millis() as u64);
    Duration::from_millis(rng.u64(lo_ms..hi_ms.max(lo_ms + 1)))
}

/// Sends `signal` (`KILL`, `STOP`, `CONT`, `TERM`) to `pid` with `sh`'s builtin kill.
pub fn signal(pid: u32, signal: &str) {
    let st = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {pid}")])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "kill -{signal} {pid}: {st}");
}

/// influxd killed with `-9` and started again (same port and data) after `down`.
pub fn kill_influxd(influx: &mut Influx, down: Duration) {
    let pid = influx.pid().expect("influxd runs");
    signal(pid, "KILL");
    thread::sleep(down);
    influx.start_again();
}

/// influxd frozen (`SIGSTOP`) for `frozen`, then `SIGCONT`.
pub fn freeze_influxd(influx: &Influx, frozen: Duration) {
    let pid = influx.pid().expect("influxd runs");
    signal(pid, "STOP");
    thread::sleep(frozen);
    signal(pid, "CONT");
}

/// A private directory under the system temp dir, removed on drop unless the test failed.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "perfsink-faults-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("kept {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A tmpfs of `size` (`mount -t tmpfs -o size=4m`) on a fresh directory, unmounted on drop.
/// The suite runs as root; when the mount is refused the test fails saying so (it does not
/// skip: a disk-full scenario that never ran proves nothing).
pub struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    pub fn mount(name: &str, size: &str) -> Tmpfs {
        let dir = TempDir::new(name);
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run mount(8) for the disk-full scenario: {e}"));
        assert!(
            out.status.success(),
            "the disk-full scenario needs a {size} tmpfs, but `mount -t tmpfs -o size={size} \
             tmpfs {}` was refused ({}): {}; run the suite as root (or with CAP_SYS_ADMIN)",
            dir.path().display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Tmpfs { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Bytes used on the tmpfs (what its files hold).
    pub fn used_bytes(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            fs::read_dir(p)
                .map(|rd| {
                    rd.flatten()
                        .map(|e| match e.metadata() {
                            Ok(m) if m.is_dir() => walk(&e.path()),
                            Ok(m) => m.len(),
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(self.path())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let st = Command::new("umount").arg(self.path()).output();
            if matches!(&st, Ok(o) if o.status.success()) || Instant::now() > deadline {
                break;
            }
            thread::sleep(Duration::from_millis(100));
        }
        // Still busy (a process of the test holds a file): detach it.
        let _ = Command::new("umount").arg("-l").arg(self.path()).output();
    }
}

/// Polls `done` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}
