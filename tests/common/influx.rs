//! Throw-away InfluxDB 1.x (`influxd`) instances for integration tests.
//!
//! Every instance gets its own temp dir (meta/data/wal + config + log) and
//! its own loopback ports: the RPC and HTTP listeners bind `127.0.0.1:0`
//! and the HTTP port the kernel picked is read from influxd's log line
//! `msg="Listening on HTTP" ... addr=127.0.0.1:PORT`, so parallel tests and
//! parallel test binaries never race for a port. `start_again()` reuses the
//! same HTTP port and data.
//!
//! If no `influxd` is found (`$PERFSINK_INFLUXD`, `$PATH`, `/usr/bin`), it is
//! installed once with `apt-get install -y influxdb` under a `flock`.
//! `Influx::start_1_8()` runs InfluxDB 1.8.10 instead, which serves the v2 write
//! API (`/api/v2/write`): `scripts/setup.sh` builds it into
//! `~/.cache/perfsink/influxd-1.8.10/influxd` (or set `$PERFSINK_INFLUXD_18`); a
//! test that needs it fails, with that hint, when it is missing.
//! Each instance also has a tiny `sh` watchdog that SIGKILLs influxd if the
//! test process dies without running `Drop`.
//! Set `PERFSINK_KEEP_INFLUX_DIR=1` to keep temp dirs for debugging.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::http::{self, HttpResponse};

/// How long `start()` waits for `GET /ping` to answer 204.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `stop()` waits after SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `start_again()` retries while the old port is still busy.
pub const REBIND_TIMEOUT: Duration = Duration::from_secs(10);

const INSTALL_LOCK: &str = "/tmp/perfsink-influxdb-install.lock";

/// A running (or stopped) influxd with its own temp dir.
pub struct Influx {
    dir: PathBuf,
    port: u16,
    auth: Option<(String, String)>,
    binary: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
}

enum StartError {
    /// influxd exited before answering /ping.
    Exited(ExitStatus),
    /// /ping did not answer 204 in time.
    Timeout,
}

impl Influx {
    /// Starts a fresh instance without authentication.
    pub fn start() -> Influx {
        Influx::launch(None, influxd_binary())
    }

    /// Starts a fresh InfluxDB 1.8.10 (the v2 write API: `/api/v2/write`, token
    /// `user:password` or any token without auth, org ignored, bucket `db` or
    /// `db/rp`). Panics with a hint when it is not installed.
    pub fn start_1_8() -> Influx {
        Influx::launch(None, influxd_1_8_binary())
    }

    /// `start_1_8` with authentication, as `start_with_auth`.
    pub fn start_1_8_with_auth(admin_user: &str, admin_password: &str) -> Influx {
        let auth = (admin_user.to_string(), admin_password.to_string());
        let inf = Influx::launch(Some(auth), influxd_1_8_binary());
        inf.create_admin();
        inf
    }

    /// Starts a fresh instance with `auth-enabled = true` and an admin user
    /// (created via `CREATE USER ... WITH ALL PRIVILEGES`, which influxd
    /// allows unauthenticated while no user exists). The helper methods
    /// (`query`, `exec`, `write`, ...) then send these credentials.
    pub fn start_with_auth(admin_user: &str, admin_password: &str) -> Influx {
        let auth = (admin_user.to_string(), admin_password.to_string());
        let inf = Influx::launch(Some(auth), influxd_binary());
        inf.create_admin();
        inf
    }

    fn create_admin(&self) {
        let (user, password) = self.credentials().expect("started with auth");
        let q = format!(
            "CREATE USER {} WITH PASSWORD {} WITH ALL PRIVILEGES",
            quote_ident(user),
            quote_string(password)
        );
        let resp = self.query_http("POST", "", &q, None);
        let body = resp.text();
        assert!(
            resp.status == 200 && !body.contains("\"error\""),
            "creating admin user failed: {} {body}",
            resp.status
        );
    }

    fn launch(auth: Option<(String, String)>, binary: PathBuf) -> Influx {
        let dir = make_temp_dir();
        let mut inf = Influx {
            dir,
            port: 0,
            auth,
            binary,
            child: None,
            watchdog: None,
        };
        match inf.spawn_and_wait(0) {
            Ok(()) => inf,
            Err(e) => {
                let why = match e {
                    StartError::Exited(st) => format!("influxd exited ({st})"),
                    StartError::Timeout => format!("/ping not 204 within {START_TIMEOUT:?}"),
                };
                let tail = inf.log_tail(40);
                panic!(
                    "Influx::start failed: {why}; dir {}; log tail:\n{tail}",
                    inf.dir.display()
                );
            }
        }
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance's temp dir (config, log, meta/, data/, wal/).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("influxd.log")
    }

    /// `(user, password)` if started with auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// influxd's pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Last `n` lines of influxd's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Raw `/query` call. `method` is `GET` (params in the URL) or `POST`
    /// (params form-encoded in the body). `db` may be empty. Always adds
    /// `epoch=ns`. `creds` = `Some((user, password))` sends them as
    /// `Authorization: Basic` (influxd ignores `u`/`p` in a POST *body*: it
    /// only reads them from the URL).
    pub fn query_http(
        &self,
        method: &str,
        db: &str,
        q: &str,
        creds: Option<(&str, &str)>,
    ) -> HttpResponse {
        let mut params: Vec<(&str, &str)> = vec![("q", q), ("epoch", "ns")];
        if !db.is_empty() {
            params.push(("db", db));
        }
        let qs = http::encode_query(&params);
        let auth = creds.map(|(u, p)| http::basic_auth(u, p));
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        let res = if method == "POST" {
            headers.push(("Content-Type", "application/x-www-form-urlencoded"));
            http::request(
                "POST",
                &format!("{}/query", self.url()),
                &headers,
                qs.as_bytes(),
            )
        } else {
            http::request(method, &format!("{}/query?{qs}", self.url()), &headers, &[])
        };
        res.unwrap_or_else(|e| panic!("/query {q:?} on {}: {e}", self.url()))
    }

    /// `GET /query?db=..&q=..&epoch=ns` (with the instance's credentials).
    /// Panics unless HTTP 200 without a top-level `error`; statement
    /// errors stay in `results[i].error` (checked by `query_rows` /
    /// `query_series`).
    pub fn query(&self, db: &str, q: &str) -> Value {
        checked_json(self.query_http("GET", db, q, self.credentials()), q)
    }

    /// Like `query` but `POST`, for statements that change state
    /// (`CREATE`, `DROP`, `GRANT`, ...); panics on any error.
    pub fn exec(&self, db: &str, q: &str) -> Value {
        let v = checked_json(self.query_http("POST", db, q, self.credentials()), q);
        if let Some(err) = v["results"]
            .as_array()
            .and_then(|rs| rs.iter().find_map(|r| r.get("error")))
        {
            panic!("{q:?} failed: {err}");
        }
        v
    }

    /// All series objects (`{"name","columns","values",...}`) of the first
    /// statement; empty if none. Panics on a statement error.
    pub fn query_series(&self, db: &str, q: &str) -> Vec<Value> {
        let v = self.query(db, q);
        let first = &v["results"][0];
        if let Some(err) = first.get("error") {
            panic!("query {q:?} failed: {err}");
        }
        first["series"].as_array().cloned().unwrap_or_default()
    }

    /// `values` rows of the first series (column 0 is `time` in ns);
    /// empty if there is no series.
    pub fn query_rows(&self, db: &str, q: &str) -> Vec<Vec<Value>> {
        self.query_series(db, q)
            .first()
            .and_then(|s| s["values"].as_array())
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Number of points in `measurement` (all time, all series), from
    /// `SELECT count(*)`: influxd returns one `count_<field>` column per
    /// field, and this takes the largest. Exact when every point carries
    /// one common field (the usual case: e.g. `value`); if field sets are
    /// disjoint use `count_field` or `SELECT *`. 0 if it does not exist.
    pub fn count(&self, db: &str, measurement: &str) -> u64 {
        let q = format!("SELECT count(*) FROM {}", quote_ident(measurement));
        self.query_rows(db, &q)
            .first()
            .map(|row| {
                row.iter()
                    .skip(1)
                    .filter_map(Value::as_u64)
                    .max()
                    .unwrap_or(0)
            })
            .unwrap_or(0)
    }

    /// Number of non-null values of `field` in `measurement`.
    pub fn count_field(&self, db: &str, measurement: &str, field: &str) -> u64 {
        let q = format!(
            "SELECT count({}) FROM {}",
            quote_ident(field),
            quote_ident(measurement)
        );
        self.query_rows(db, &q)
            .first()
            .and_then(|row| row.get(1))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// Polls `count(db, measurement)` until it reaches `n` or `timeout`
    /// passes; returns the last count seen (sinks flush asynchronously).
    pub fn wait_for_count(&self, db: &str, measurement: &str, n: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.count(db, measurement);
            if c >= n || Instant::now() >= deadline {
                return c;
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// `CREATE DATABASE "name"` (idempotent in influxd).
    pub fn create_db(&self, name: &str) {
        self.exec("", &format!("CREATE DATABASE {}", quote_ident(name)));
    }

    /// `POST /write?db=..&precision=..` with the instance's credentials
    /// (Basic auth);
    /// returns the raw response (204 on success).
    pub fn write(&self, db: &str, precision: &str, body: &str) -> HttpResponse {
        let url = format!(
            "{}/write?{}",
            self.url(),
            http::encode_query(&[("db", db), ("precision", precision)])
        );
        let auth = self.credentials().map(|(u, p)| http::basic_auth(u, p));
        let mut headers = vec![("Content-Type", "text/plain; charset=utf-8")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a));
        }
        http::request("POST", &url, &headers, body.as_bytes())
            .unwrap_or_else(|e| panic!("/write on {}: {e}", self.url()))
    }

    /// Writes line protocol (ns precision) and asserts 204.
    pub fn write_lines(&self, db: &str, lines: &str) {
        let r = self.write(db, "ns", lines);
        assert_eq!(r.status, 204, "write to {db} failed: {}", r.text());
    }

    /// True if `GET /ping` answers 204 right now.
    pub fn ping(&self) -> bool {
        ping(self.port)
    }

    /// SIGTERM, wait up to 10 s, then SIGKILL. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // `sh`'s builtin kill: no dependency on procps' /bin/kill.
            let _ = Command::new("sh")
                .args(["-c", &format!("kill -TERM {}", child.id())])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + STOP_TIMEOUT;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }

    /// Restarts on the same HTTP port with the same data (stops first if
    /// still running). Retries for up to 10 s while the port is busy.
    pub fn start_again(&mut self) {
        self.stop();
        let deadline = Instant::now() + REBIND_TIMEOUT;
        loop {
            let log_len = fs::metadata(self.log_path()).map(|m| m.len()).unwrap_or(0);
            match self.spawn_and_wait(self.port) {
                Ok(()) => return,
                Err(StartError::Exited(st)) => {
                    let new_log = fs::read(self.log_path()).unwrap_or_default();
                    let new_log =
                        String::from_utf8_lossy(&new_log[(log_len as usize).min(new_log.len())..])
                            .into_owned();
                    if new_log.contains("address already in use") && Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(200));
                        continue;
                    }
                    panic!(
                        "start_again: influxd exited ({st}); log tail:\n{}",
                        self.log_tail(40)
                    );
                }
                Err(StartError::Timeout) => {
                    self.stop();
                    panic!(
                        "start_again: /ping not 204 within {START_TIMEOUT:?}; log tail:\n{}",
                        self.log_tail(40)
                    );
                }
            }
        }
    }

    /// Writes the config for `http_port` (0 = let the kernel choose), starts
    /// influxd and waits for /ping. Sets `self.port`.
    fn spawn_and_wait(&mut self, http_port: u16) -> Result<(), StartError> {
        let config = self.dir.join("influxdb.conf");
        fs::write(&config, self.config_text(http_port)).expect("write influxdb.conf");
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open influxd.log");
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(&self.binary);
        cmd.arg("run").arg("-config").arg(&config);
        // influxd lets INFLUXDB_* variables override the config file.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("INFLUXDB_") {
                cmd.env_remove(k);
            }
        }
        let child = cmd
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.binary.display()));
        self.watchdog = spawn_watchdog(child.id());
        self.child = Some(child);

        let deadline = Instant::now() + START_TIMEOUT;
        let mut port = http_port;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    self.stop(); // reaps the watchdog
                    return Err(StartError::Exited(status));
                }
            }
            if port == 0 {
                port = self.http_port_from_log(log_start).unwrap_or(0);
            }
            if port != 0 && ping(port) {
                self.port = port;
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.stop();
                return Err(StartError::Timeout);
            }
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Parses `msg="Listening on HTTP" ... addr=127.0.0.1:PORT` written
    /// after byte offset `from` of the log.
    fn http_port_from_log(&self, from: u64) -> Option<u16> {
        let bytes = fs::read(self.log_path()).ok()?;
        let text = String::from_utf8_lossy(&bytes[(from as usize).min(bytes.len())..]).into_owned();
        text.lines()
            .filter(|l| l.contains("Listening on HTTP"))
            .filter_map(|l| l.split_whitespace().find_map(|kv| kv.strip_prefix("addr=")))
            .filter_map(|addr| addr.rsplit(':').next()?.parse::<u16>().ok())
            .find(|p| *p != 0)
    }

    fn config_text(&self, http_port: u16) -> String {
        let d = |sub: &str| toml_str(&self.dir.join(sub).to_string_lossy());
        format!(
            r#"reporting-enabled = false
bind-address = "127.0.0.1:0"

[meta]
  dir = {meta}
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = {data}
  wal-dir = {wal}
  index-version = "inmem"
  query-log-enabled = false
  trace-logging-enabled = false

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = {auth}
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  unix-socket-enabled = false

[logging]
  format = "logfmt"
  level = "info"
  suppress-logo = true

[ifql]
  enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false
"#,
            meta = d("meta"),
            data = d("data"),
            wal = d("wal"),
            auth = self.auth.is_some(),
        )
    }
}

impl Drop for Influx {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!(
                "--- influxd log tail ({}) ---\n{}\n---",
                self.log_path().display(),
                self.log_tail(20)
            );
        }
        self.stop();
        if std::env::var_os("PERFSINK_KEEP_INFLUX_DIR").is_none() {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

fn checked_json(resp: HttpResponse, q: &str) -> Value {
    assert_eq!(
        resp.status,
        200,
        "query {q:?}: HTTP {} {}",
        resp.status,
        resp.text()
    );
    let v = resp.json();
    if let Some(err) = v.get("error") {
        panic!("query {q:?} failed: {err}");
    }
    v
}

fn ping(port: u16) -> bool {
    if port == 0 {
        return false;
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Cheap connect probe first so a not-yet-listening server fails fast.
    if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        return false;
    }
    matches!(http::get(&format!("http://127.0.0.1:{port}/ping")), Ok(r) if r.status == 204)
}

/// The rows of the first series of a query answer as column → value maps (`time` included);
/// empty if there is no series.
pub fn series_rows(series: &[Value]) -> Vec<std::collections::BTreeMap<String, Value>> {
    let Some(s) = series.first() else {
        return Vec::new();
    };
    let cols: Vec<String> = s["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    s["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            cols.iter()
                .cloned()
                .zip(r.as_array().unwrap().iter().cloned())
                .collect()
        })
        .collect()
}

/// InfluxQL identifier in double quotes.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// InfluxQL string literal in single quotes.
pub fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn make_temp_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(sweep_stale_dirs);
    loop {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "perfsink-influx-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        match fs::create_dir(&dir) {
            Ok(()) => return dir,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => panic!("create {}: {e}", dir.display()),
        }
    }
}

/// Removes `perfsink-influx-<pid>-*` dirs left by killed test processes
/// (their pid no longer exists).
fn sweep_stale_dirs() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("perfsink-influx-")
            .and_then(|r| r.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// `sh` loop that SIGKILLs influxd once this test process is gone.
fn spawn_watchdog(influxd_pid: u32) -> Option<Child> {
    Command::new("sh")
        .args([
            "-c",
            "while kill -0 \"$0\" 2>/dev/null; do sleep 1; done; kill -9 \"$1\" 2>/dev/null",
            &std::process::id().to_string(),
            &influxd_pid.to_string(),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// Path of `influxd`, installing Debian's `influxdb` package if needed
/// (once per machine: `flock` serializes parallel test binaries).
pub fn influxd_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = find_influxd() {
            return p;
        }
        install_influxd();
        find_influxd().expect("influxd still not found after `apt-get install -y influxdb`")
    })
    .clone()
}

/// Path of InfluxDB 1.8.10's `influxd`: `$PERFSINK_INFLUXD_18`, else where
/// `scripts/setup.sh` builds it. Panics with the way to get it when missing.
pub fn influxd_1_8_binary() -> PathBuf {
    let path = std::env::var_os("PERFSINK_INFLUXD_18")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
            PathBuf::from(home).join(".cache/perfsink/influxd-1.8.10/influxd")
        });
    assert!(
        path.is_file(),
        "InfluxDB 1.8.10 (the v2 write API) is not installed at {}: run scripts/setup.sh, \
         which builds it with `go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10`, \
         or point PERFSINK_INFLUXD_18 at an influxd 1.8 binary",
        path.display()
    );
    path
}

fn find_influxd() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PERFSINK_INFLUXD") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let from_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join("influxd"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path
        .into_iter()
        .chain([
            PathBuf::from("/usr/bin/influxd"),
            PathBuf::from("/usr/sbin/influxd"),
        ])
        .find(|p| p.is_file())
}

fn install_influxd() {
    let script = "if command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ]; then exit 0; fi; \
                  export DEBIAN_FRONTEND=noninteractive; \
                  apt-get install -y influxdb || { apt-get update && apt-get install -y influxdb; }";
    let log = std::env::temp_dir().join(format!(
        "perfsink-influxdb-install-{}.log",
        std::process::id()
    ));
    let out = File::create(&log).expect("create install log");
    let have_flock = Path::new("/usr/bin/flock").is_file() || Path::new("/bin/flock").is_file();
    let mut cmd = if have_flock {
        let mut c = Command::new("flock");
        c.args([INSTALL_LOCK, "sh", "-c", script]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    };
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(out)
        .status()
        .expect("run apt-get install influxdb");
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success(),
        "installing influxdb failed ({status}):\n{text}"
    );
    let _ = fs::remove_file(&log);
}
