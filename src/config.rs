//! Configuration: the environment (the seed's contract) or the same keys as a `key=value;...`
//! string for the C ABI. Unknown keys and malformed values are errors, never silent defaults.
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `INFLUXDB_URL` | unset | unset: reporting disabled. `http://host:8086`, or k6 style `http://host:8086/k6` (path = db) |
//! | `INFLUXDB_DB` | `k6` | v1 database (a URL path wins; both set and different is an error) |
//! | `INFLUXDB_RP` | | v1 retention policy |
//! | `INFLUXDB_USERNAME`, `INFLUXDB_PASSWORD` | | v1 basic auth |
//! | `INFLUXDB_TOKEN` | | set: v2 `/api/v2/write` with `Authorization: Token` |
//! | `INFLUXDB_ORG` | | v2 org (name or id) |
//! | `INFLUXDB_BUCKET` | db, or `db/rp` | v2 bucket |
//! | `INFLUXDB_PRECISION` | `ns` | `ns`, `ms` or `s` |
//! | `INFLUXDB_VERSION` | `auto` | `1`, `2` or `3`: the server whose escaping rules names follow; `auto` asks `/ping` when the sink opens (1.x/2.x rules if it cannot tell) |
//! | `INFLUXDB_INSECURE_SKIP_VERIFY` | `false` | TLS: accept any certificate |
//! | `INFLUXDB_CA_FILE` | | TLS: extra PEM root certificate(s) |
//! | `PERFSINK_BATCH_LINES` | `5000` | lines per write request |
//! | `PERFSINK_BATCH_BYTES` | `4194304` | uncompressed bytes per write request |
//! | `PERFSINK_FLUSH_INTERVAL_MS` | `1000` | a partial batch is sent after this long |
//! | `PERFSINK_CONCURRENCY` | `4` | write requests in flight |
//! | `PERFSINK_QUEUE_CAPACITY` | `64` | batches queued between producers and the writer |
//! | `PERFSINK_QUEUE_POLICY` | `block` | full queue: `block` (up to `PERFSINK_BLOCK_TIMEOUT_MS`, then drop) or `drop` (drop newest) |
//! | `PERFSINK_BLOCK_TIMEOUT_MS` | `100` | longest wait of a producer under `block` |
//! | `PERFSINK_MEMORY_MAX_BYTES` | `268435456` | encoded bytes the writer holds in memory while InfluxDB cannot take them |
//! | `PERFSINK_SPOOL_DIR` | unset | directory of the disk spool (unset: no spool, overflow is dropped and counted) |
//! | `PERFSINK_SPOOL_MAX_BYTES` | `1073741824` | byte cap of the disk spool |
//! | `PERFSINK_SPOOL_FSYNC` | `interval` | when spool appends reach the disk: `always` (before a batch counts as kept), `interval`, `never` (the OS decides); a process crash loses nothing either way, this is about the machine crashing |
//! | `PERFSINK_SPOOL_FSYNC_INTERVAL_MS` | `1000` | fsync period under `interval` |
//! | `PERFSINK_GZIP_LEVEL` | `1` | gzip level of request bodies, `0` sends them uncompressed |
//! | `PERFSINK_TIMEOUT_MS` | `10000` | timeout of one write request |
//! | `PERFSINK_CONNECT_TIMEOUT_MS` | `2000` | TCP/TLS connect timeout |
//! | `PERFSINK_CLOSE_TIMEOUT_MS` | `10000` | how long close waits to deliver what is left |
//! | `PERFSINK_RETRY_INITIAL_MS` | `200` | first retry backoff (doubles, full jitter) |
//! | `PERFSINK_RETRY_MAX_MS` | `10000` | longest backoff between retries |
//! | `PERFSINK_MAX_SERIES` | `100000` | cap on distinct series |
//! | `PERFSINK_SELF_METRICS_INTERVAL_MS` | `10000` | self-metrics period, `0` disables them |
//! | `PERFSINK_CREATE_DATABASE` | `true` | v1: create the database when it is missing |
//! | `PERFSINK_DEDUP` | `true` | move a timestamp equal to one already written for its series by the smallest step, so InfluxDB keeps both |
//! | `PERFSINK_DEDUP_WINDOW_MS` | `5000` | how far behind a series' latest timestamp ties are still found |
//! | `PERFSINK_FAIL_ON_LOSS` | `false` | a run whose points did not all reach InfluxDB (rejected, dropped, left in the spool) fails: the tools exit non-zero |
//! | `PERFSINK_TAGS` | | global tags added to every point, `k=v,k2=v2` |
//! | `PERFSINK_SOURCE` | `api` | value of the `source` tag of self-metrics |
//! | `PERFSINK_MODE` | `raw` | samples of value series: `raw` lines, `aggregate` (per-interval statistics, `<measurement>_agg`), or `both` |
//! | `PERFSINK_AGGREGATE_INTERVAL_MS` | `1000` | aggregation interval, aligned to multiples since the epoch |
//! | `PERFSINK_AGGREGATE_GRACE_MS` | `2000` | an interval is written this long after it ends; later samples count into the next (`late`) |
//! | `PERFSINK_PERCENTILES` | `50,90,95,99` | percentiles of trend series, fields `p50`... |
//! | `PERFSINK_AGGREGATE_MEMORY_MAX_BYTES` | `134217728` | histogram memory of all open intervals; beyond it an interval has no percentiles (counted) |

use std::ffi::OsStr;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lineproto::escape::{escape_identifier, Element};
use crate::lineproto::Dialect;
use crate::model::Precision;

pub mod aggregate;
pub mod url;

pub use aggregate::{AggregateConfig, Mode};
use url::InfluxUrl;

/// A secret (password, token). Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which write API the writer speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// 1.x `POST /write?db=&rp=&precision=` with optional basic auth.
    V1 {
        db: String,
        rp: Option<String>,
        username: Option<String>,
        password: Option<Secret>,
    },
    /// 2.x `POST /api/v2/write?org=&bucket=&precision=` with `Authorization: Token`.
    V2 {
        org: Option<String>,
        bucket: String,
        token: Secret,
    },
}

/// Where points go: a base URL (`scheme://host:port`, no path) and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub base_url: String,
    pub api: Api,
}

impl Endpoint {
    /// Where points go, for humans and logs: `http://host:8086, db k6` (never credentials).
    pub fn describe(&self) -> String {
        match &self.api {
            Api::V1 { db, .. } => format!("{}, db {db}", self.base_url),
            Api::V2 { bucket, .. } => format!("{}, bucket {bucket}", self.base_url),
        }
    }

    /// The v1 database points go to (`None` for a v2 bucket).
    pub fn database(&self) -> Option<&str> {
        match &self.api {
            Api::V1 { db, .. } => Some(db),
            Api::V2 { .. } => None,
        }
    }
}

/// The InfluxDB major version whose line-protocol escaping names follow (`INFLUXDB_VERSION`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ServerVersion {
    /// Ask the server (`/ping`'s `X-Influxdb-Version`) when the sink opens.
    #[default]
    Auto,
    V1,
    V2,
    V3,
}

impl ServerVersion {
    /// The version of a server that answers `/ping` with this `X-Influxdb-Version`
    /// (`1.6.7~rc0`, `v2.7.11`, `3.0.1`); `None` for anything else.
    pub fn from_ping(header: &str) -> Option<ServerVersion> {
        let v = header.trim();
        let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
        let digits = v.bytes().take_while(u8::is_ascii_digit).count();
        match &v[..digits] {
            "1" => Some(ServerVersion::V1),
            "2" => Some(ServerVersion::V2),
            "3" => Some(ServerVersion::V3),
            _ => None,
        }
    }

    /// The dialect of a known version; `None` for `Auto`.
    pub fn dialect(self) -> Option<Dialect> {
        match self {
            ServerVersion::Auto => None,
            ServerVersion::V1 | ServerVersion::V2 => Some(Dialect::Go),
            ServerVersion::V3 => Some(Dialect::V3),
        }
    }
}

/// Behaviour of a producer when the queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueuePolicy {
    /// Wait up to the bound for room, then drop the newest points and count them.
    Block(Duration),
    /// Drop the newest points at once and count them.
    DropNewest,
}

/// When the spool's appends are forced to the disk (`fsync`). Appends reach the kernel before a
/// batch counts as kept, so a crash of the process loses nothing under any policy; the policy
/// decides what a crash of the machine (power, kernel) may lose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpoolFsync {
    /// Before a batch counts as kept (the relay's 204, `Sink::sync`).
    Always,
    /// At most this long after the append.
    Interval(Duration),
    /// When the OS writes its cache back.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tls {
    pub insecure_skip_verify: bool,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `None`: `INFLUXDB_URL` is unset and reporting is disabled.
    pub endpoint: Option<Endpoint>,
    pub precision: Precision,
    /// Whose escaping rules apply; `Sink::open` replaces `Auto` by what the server answers.
    pub server_version: ServerVersion,
    pub tls: Tls,
    pub batch_lines: usize,
    pub batch_bytes: usize,
    pub flush_interval: Duration,
    pub concurrency: usize,
    pub queue_capacity: usize,
    pub queue_policy: QueuePolicy,
    pub memory_max_bytes: usize,
    pub spool_dir: Option<PathBuf>,
    pub spool_max_bytes: u64,
    pub spool_fsync: SpoolFsync,
    pub gzip_level: u32,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub close_timeout: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    pub max_series: usize,
    /// `None` disables self-metrics.
    pub self_metrics_interval: Option<Duration>,
    pub create_database: bool,
    pub dedup: bool,
    /// How far behind a series' latest timestamp the de-duplication still checks for ties.
    pub dedup_window: Duration,
    /// Tools exit non-zero when the close report counts a lost point (`Report::failed`).
    pub fail_on_loss: bool,
    /// Global tags, sorted by key, empty values removed.
    pub global_tags: Vec<(String, String)>,
    pub source: String,
    pub mode: Mode,
    pub aggregate: AggregateConfig,
}

impl Default for Config {
    /// Every default of the table above, reporting disabled.
    fn default() -> Self {
        Config {
            endpoint: None,
            precision: Precision::Ns,
            server_version: ServerVersion::Auto,
            tls: Tls::default(),
            batch_lines: 5000,
            batch_bytes: 4 << 20,
            flush_interval: Duration::from_millis(1000),
            concurrency: 4,
            queue_capacity: 64,
            queue_policy: QueuePolicy::Block(Duration::from_millis(100)),
            memory_max_bytes: 256 << 20,
            spool_dir: None,
            spool_max_bytes: 1 << 30,
            spool_fsync: SpoolFsync::Interval(Duration::from_millis(1000)),
            gzip_level: 1,
            request_timeout: Duration::from_millis(10_000),
            connect_timeout: Duration::from_millis(2_000),
            close_timeout: Duration::from_millis(10_000),
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_millis(10_000),
            max_series: 100_000,
            self_metrics_interval: Some(Duration::from_millis(10_000)),
            create_database: true,
            dedup: true,
            fail_on_loss: false,
            dedup_window: Duration::from_millis(5000),
            global_tags: Vec::new(),
            source: "api".to_string(),
            mode: Mode::Raw,
            aggregate: AggregateConfig::default(),
        }
    }
}

impl Config {
    /// Reads `INFLUXDB_*` and `PERFSINK_*` from the process environment. Unknown `PERFSINK_*`
    /// variables are errors (except the tools' own, such as `PERFSINK_K6`); unknown `INFLUXDB_*`
    /// ones are ignored (influxd itself reads `INFLUXDB_HTTP_*` and friends from the same
    /// environment).
    pub fn from_env() -> Result<Config> {
        // `vars_os`, not `vars`: `vars` panics on any non-UTF-8 variable, even one that is not ours.
        Self::from_env_vars(std::env::vars_os())
    }

    /// `from_env` over any environment, so tests never touch the shared process environment.
    fn from_env_vars<I, K, V>(vars: I) -> Result<Config>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Self::from_vars_with_fallbacks(vars, &[])
    }

    /// `from_env`, with `fallbacks` (keys of the table above) used for the keys the environment
    /// leaves unset or empty. `perfsink k6` maps k6's own `K6_INFLUXDB_*` variables here, so
    /// `INFLUXDB_*` and `PERFSINK_*` win when both are set.
    pub fn from_env_with_fallbacks(fallbacks: &[(&str, &str)]) -> Result<Config> {
        Self::from_vars_with_fallbacks(std::env::vars_os(), fallbacks)
    }

    /// `from_env_with_fallbacks` over any environment.
    pub fn from_vars_with_fallbacks<I, K, V>(vars: I, fallbacks: &[(&str, &str)]) -> Result<Config>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let ours = env_pairs(vars)?;
        let has_fallback = |key: &str| fallbacks.iter().any(|(k, _)| *k == key);
        let set_here = |key: &str| ours.iter().any(|(k, v)| k == key && !v.is_empty());
        let fallbacks = fallbacks.iter().copied().filter(|(k, _)| !set_here(k));
        // An empty variable counts as unset and must not hide its fallback.
        let own = ours
            .iter()
            .filter(|(k, v)| !(v.is_empty() && has_fallback(k)))
            .map(|(k, v)| (k.as_str(), v.as_str()));
        Self::from_pairs(fallbacks.chain(own))
    }

    /// `from_env`, with the `KEY=value;...` pairs of `overrides` (read as `from_kv` reads
    /// them) winning over the environment. A key may also be its short lowercase name
    /// ([`option_key`]). A binding's arguments (`InfluxDBPublisher(url=..., batch_lines=...)`).
    pub fn from_env_with_overrides(overrides: &str) -> Result<Config> {
        Self::from_vars_with_overrides(std::env::vars_os(), overrides)
    }

    /// `from_env_with_overrides` over any environment.
    fn from_vars_with_overrides<I, K, V>(vars: I, overrides: &str) -> Result<Config>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let env = env_pairs(vars)?;
        let entries = split_kv(overrides);
        let given = kv_pairs(&entries, option_key)?;
        let env = env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
        Self::from_pairs(env.chain(given))
    }

    /// Parses `KEY=value;KEY=value`. Whitespace around keys and values is trimmed, empty
    /// entries are skipped, `\;` and `\\` escape a semicolon and a backslash inside a value.
    /// Every key must be one of the table above.
    pub fn from_kv(s: &str) -> Result<Config> {
        let entries = split_kv(s);
        Self::from_pairs(kv_pairs(&entries, |k| key_index(k).map(|i| KEYS[i]))?)
    }

    /// Builds a config from key/value pairs; later pairs win. The core of both entry points.
    ///
    /// An empty value of a text key (URL, names, credentials, paths, tags, source) means the
    /// key is unset, so `INFLUXDB_URL=` disables reporting; numbers, booleans and choices
    /// must not be empty.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Config> {
        let mut raw = Raw {
            values: [None; KEYS.len()],
        };
        for (key, value) in pairs {
            let Some(i) = key_index(key) else {
                return Err(unknown_key(key));
            };
            raw.values[i] = Some(value);
        }
        raw.build()
    }

    /// `true` when `INFLUXDB_URL` was given.
    pub fn enabled(&self) -> bool {
        self.endpoint.is_some()
    }
}

/// The `(key, value)` pairs of a split `KEY=value;...` string, each key as `canonical` names it
/// (a key it does not know is kept, for `from_pairs` to refuse with its suggestions).
fn kv_pairs(
    entries: &[String],
    canonical: impl Fn(&str) -> Option<&'static str>,
) -> Result<Vec<(&str, &str)>> {
    let mut pairs = Vec::with_capacity(entries.len());
    let mut after_secret: Option<&str> = None;
    for (i, entry) in entries.iter().enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        // The entry itself is never quoted: it may be a mistyped `INFLUXDB_PASSWORD:secret`.
        let Some((key, value)) = entry.split_once('=') else {
            return Err(Error::Config(format!(
                "entry {} of the configuration string has no '=' (expected KEY=value)",
                i + 1
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(Error::Config(format!(
                "entry {} of the configuration string has an empty key",
                i + 1
            )));
        }
        let known = canonical(key);
        // `INFLUXDB_PASSWORD=ab;cd=ef` splits a secret at an unescaped ';': the "key" of
        // the next entry is then part of the secret and must not be echoed.
        if let (Some(secret), None) = (after_secret, known) {
            return Err(Error::Config(format!(
                "entry {} of the configuration string, after {secret}, is not a known key \
                 (not shown: if the {secret} value contains ';', write it as '\\;')",
                i + 1
            )));
        }
        let key = known.unwrap_or(key);
        after_secret = SECRET_KEYS.iter().find(|k| **k == key).copied();
        pairs.push((key, value.trim()));
    }
    Ok(pairs)
}

/// The `INFLUXDB_*` and `PERFSINK_*` variables of an environment that are ours, sorted.
fn env_pairs<I, K, V>(vars: I) -> Result<Vec<(String, String)>>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut ours: Vec<(String, String)> = Vec::new();
    for (name, value) in vars {
        let (name, value) = (name.as_ref(), value.as_ref());
        let Some(name) = env_name(name)? else {
            continue;
        };
        if !is_env_key(name) {
            continue;
        }
        let Some(value) = value.to_str() else {
            return Err(Error::Config(format!("{name}: value is not valid UTF-8")));
        };
        ours.push((name.to_string(), value.to_string()));
    }
    // The environment has no order; sorting makes the first reported error reproducible.
    ours.sort();
    Ok(ours)
}

/// A key of the table above by its name or its short lowercase name: `token` is
/// `INFLUXDB_TOKEN`, `batch_lines` is `PERFSINK_BATCH_LINES` (no short name is both).
pub fn option_key(name: &str) -> Option<&'static str> {
    if let Some(i) = key_index(name) {
        return Some(KEYS[i]);
    }
    if name.is_empty()
        || name
            .bytes()
            .any(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
    {
        return None;
    }
    KEYS.iter().copied().find(|k| {
        ["INFLUXDB_", "PERFSINK_"].iter().any(|p| {
            k.strip_prefix(p)
                .is_some_and(|rest| rest.eq_ignore_ascii_case(name))
        })
    })
}

/// Every key of the table in the module doc, in its order.
const KEYS: &[&str] = &[
    "INFLUXDB_URL",
    "INFLUXDB_DB",
    "INFLUXDB_RP",
    "INFLUXDB_USERNAME",
    "INFLUXDB_PASSWORD",
    "INFLUXDB_TOKEN",
    "INFLUXDB_ORG",
    "INFLUXDB_BUCKET",
    "INFLUXDB_PRECISION",
    "INFLUXDB_VERSION",
    "INFLUXDB_INSECURE_SKIP_VERIFY",
    "INFLUXDB_CA_FILE",
    "PERFSINK_BATCH_LINES",
    "PERFSINK_BATCH_BYTES",
    "PERFSINK_FLUSH_INTERVAL_MS",
    "PERFSINK_CONCURRENCY",
    "PERFSINK_QUEUE_CAPACITY",
    "PERFSINK_QUEUE_POLICY",
    "PERFSINK_BLOCK_TIMEOUT_MS",
    "PERFSINK_MEMORY_MAX_BYTES",
    "PERFSINK_SPOOL_DIR",
    "PERFSINK_SPOOL_MAX_BYTES",
    "PERFSINK_SPOOL_FSYNC",
    "PERFSINK_SPOOL_FSYNC_INTERVAL_MS",
    "PERFSINK_GZIP_LEVEL",
    "PERFSINK_TIMEOUT_MS",
    "PERFSINK_CONNECT_TIMEOUT_MS",
    "PERFSINK_CLOSE_TIMEOUT_MS",
    "PERFSINK_RETRY_INITIAL_MS",
    "PERFSINK_RETRY_MAX_MS",
    "PERFSINK_MAX_SERIES",
    "PERFSINK_SELF_METRICS_INTERVAL_MS",
    "PERFSINK_CREATE_DATABASE",
    "PERFSINK_DEDUP",
    "PERFSINK_DEDUP_WINDOW_MS",
    "PERFSINK_FAIL_ON_LOSS",
    "PERFSINK_TAGS",
    "PERFSINK_SOURCE",
    "PERFSINK_MODE",
    "PERFSINK_AGGREGATE_INTERVAL_MS",
    "PERFSINK_AGGREGATE_GRACE_MS",
    "PERFSINK_PERCENTILES",
    "PERFSINK_AGGREGATE_MEMORY_MAX_BYTES",
];

/// `PERFSINK_*` variables of the perfsink tools that are not sink keys; `from_env` skips them.
const TOOL_VARIABLES: &[&str] = &[
    "PERFSINK_K6",
    "PERFSINK_INFLUXD",
    "PERFSINK_KEEP_INFLUX_DIR",
    "PERFSINK_BLESS",
    "PERFSINK_RELAY_TOKEN",
    // The JMeter listener's override of its bundled native library (read by Java).
    "PERFSINK_LIB",
    // The Python package's tool lookups (python/perfsink/tools.py) and JMeter cache directory
    // (python/perfsink/jmeter_home.sh): set for the runner, inherited by `perfsink k6` and JMeter.
    "PERFSINK_BIN",
    "PERFSINK_JMETER_JAR",
    "PERFSINK_CACHE",
];

/// Keys whose values never appear in a message.
const SECRET_KEYS: &[&str] = &["INFLUXDB_PASSWORD", "INFLUXDB_TOKEN"];

/// Upper bound of every `*_MS` key (one day). Far above any sensible setting, and it keeps
/// `Instant + Duration` elsewhere from overflowing and panicking on absurd input.
const MAX_MS: u64 = 86_400_000;

/// Upper bound of `PERFSINK_CONCURRENCY`.
const MAX_CONCURRENCY: u64 = 256;

/// Upper bound of `PERFSINK_QUEUE_CAPACITY`: a bounded channel allocates all its slots up front,
/// so an absurd capacity would abort the process instead of failing here.
const MAX_QUEUE_CAPACITY: u64 = 1 << 16;

/// Smallest `PERFSINK_BATCH_BYTES`: below this a request's overhead dwarfs its payload.
const MIN_BATCH_BYTES: u64 = 1024;

/// Values longer than this are cut in messages, which end up in one log line.
const MAX_SHOWN: usize = 80;

/// An environment variable's name as text, `None` for one that is not UTF-8 (not ours: our
/// keys are ASCII), or an error when such a name starts with `PERFSINK_` (surely meant for us).
pub(crate) fn env_name(name: &OsStr) -> Result<Option<&str>> {
    match name.to_str() {
        Some(name) => Ok(Some(name)),
        None if name.as_encoded_bytes().starts_with(b"PERFSINK_") => Err(Error::Config(
            "an environment variable named PERFSINK_... is not valid UTF-8".into(),
        )),
        None => Ok(None),
    }
}

/// Whether `from_env` reads the environment variable `name`: a `PERFSINK_*` key (an unknown one
/// is then an error) or one of the `INFLUXDB_*` keys above (influxd reads other `INFLUXDB_*`
/// variables from the same environment).
pub fn is_env_key(name: &str) -> bool {
    (name.starts_with("PERFSINK_") && !TOOL_VARIABLES.contains(&name))
        || (name.starts_with("INFLUXDB_") && key_index(name).is_some())
}

fn key_index(key: &str) -> Option<usize> {
    KEYS.iter().position(|k| *k == key)
}

fn unknown_key(key: &str) -> Error {
    // The value is not quoted: a misspelled key may well be a password.
    let shown: String = key.chars().take(MAX_SHOWN).collect();
    let mut msg = format!("unknown key {}", shown.escape_debug());
    if let Some(known) = KEYS.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        msg.push_str(&format!(
            " (keys are case-sensitive: did you mean {known}?)"
        ));
    } else if let Some(known) = closest_key(key) {
        msg.push_str(&format!(" (did you mean {known}?)"));
    }
    Error::Config(msg)
}

fn closest_key(key: &str) -> Option<&'static str> {
    // A third of the key may differ; beyond that the "suggestion" is noise.
    let bound = (key.len() / 3).max(2);
    // The distance is at least the difference in length: a key longer than every known one by
    // more than the bound has no suggestion, and its distances (quadratic) are not computed.
    if KEYS
        .iter()
        .all(|k| key.len().saturating_sub(k.len()) > bound)
    {
        return None;
    }
    let (dist, best) = KEYS
        .iter()
        .map(|k| (edit_distance(key, k), *k))
        .min_by_key(|(d, _)| *d)?;
    (dist <= bound).then_some(best)
}

/// Levenshtein distance over bytes; keys are ASCII.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A value as a message quotes it: escaped, and cut when long.
fn show(v: &str) -> String {
    match v.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{:?}...", &v[..cut]),
        None => format!("{v:?}"),
    }
}

fn invalid(key: &str, value: &str, why: impl fmt::Display) -> Error {
    if SECRET_KEYS.contains(&key) {
        Error::Config(format!("{key}: invalid value (not shown): {why}"))
    } else {
        Error::Config(format!("{key}: invalid value {}: {why}", show(value)))
    }
}

/// Splits on `;` not preceded by a backslash and resolves `\;` and `\\`. Any other backslash is
/// kept as it is, so Windows paths (`C:\certs\ca.pem`) need no doubling.
pub(crate) fn split_kv(s: &str) -> Vec<String> {
    let mut entries = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&next @ (';' | '\\')) => {
                    cur.push(next);
                    chars.next();
                }
                _ => cur.push('\\'),
            },
            ';' => entries.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    entries.push(cur);
    entries
}

/// The last value given for each key, indexed like `KEYS`.
struct Raw<'a> {
    values: [Option<&'a str>; KEYS.len()],
}

impl<'a> Raw<'a> {
    fn get(&self, key: &'static str) -> Option<&'a str> {
        let i = key_index(key);
        debug_assert!(i.is_some(), "{key} is missing from KEYS");
        i.and_then(|i| self.values[i])
    }

    /// A text key; empty means unset.
    fn text(&self, key: &'static str) -> Option<&'a str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    fn uint(&self, key: &'static str, min: u64, max: u64) -> Result<Option<u64>> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(key, v, "expected an unsigned decimal integer"));
        }
        let n: u64 = v
            .parse()
            .map_err(|_| invalid(key, v, format!("must be at most {max}")))?;
        if n < min || n > max {
            let why = if max == u64::MAX {
                format!("must be at least {min}")
            } else {
                format!("must be between {min} and {max}")
            };
            return Err(invalid(key, v, why));
        }
        Ok(Some(n))
    }

    fn usize(&self, key: &'static str, min: u64, max: u64, field: &mut usize) -> Result<()> {
        let max = max.min(u64::try_from(usize::MAX).unwrap_or(u64::MAX));
        if let Some(n) = self.uint(key, min, max)? {
            // In range by the bound just applied.
            *field = usize::try_from(n).unwrap_or(usize::MAX);
        }
        Ok(())
    }

    fn millis(&self, key: &'static str, min: u64, field: &mut Duration) -> Result<()> {
        if let Some(n) = self.uint(key, min, MAX_MS)? {
            *field = Duration::from_millis(n);
        }
        Ok(())
    }

    fn boolean(&self, key: &'static str, field: &mut bool) -> Result<()> {
        let Some(v) = self.get(key) else {
            return Ok(());
        };
        *field = match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => {
                return Err(invalid(
                    key,
                    v,
                    "expected true/false, 1/0, yes/no or on/off",
                ))
            }
        };
        Ok(())
    }

    fn build(&self) -> Result<Config> {
        let mut c = Config::default();

        if let Some(v) = self.get("INFLUXDB_PRECISION") {
            c.precision = match v {
                "ns" => Precision::Ns,
                "ms" => Precision::Ms,
                "s" => Precision::S,
                _ => {
                    return Err(invalid(
                        "INFLUXDB_PRECISION",
                        v,
                        "expected ns, ms or s (u and us are not accepted: \
                         InfluxDB 1.x and 2.x spell microseconds differently)",
                    ))
                }
            };
        }
        if let Some(v) = self.get("INFLUXDB_VERSION") {
            c.server_version = match v.to_ascii_lowercase().as_str() {
                "auto" => ServerVersion::Auto,
                "1" => ServerVersion::V1,
                "2" => ServerVersion::V2,
                "3" => ServerVersion::V3,
                _ => return Err(invalid("INFLUXDB_VERSION", v, "expected 1, 2, 3 or auto")),
            };
        }
        self.boolean(
            "INFLUXDB_INSECURE_SKIP_VERIFY",
            &mut c.tls.insecure_skip_verify,
        )?;
        c.tls.ca_file = self.text("INFLUXDB_CA_FILE").map(PathBuf::from);

        self.usize("PERFSINK_BATCH_LINES", 1, u64::MAX, &mut c.batch_lines)?;
        self.usize(
            "PERFSINK_BATCH_BYTES",
            MIN_BATCH_BYTES,
            u64::MAX,
            &mut c.batch_bytes,
        )?;
        self.millis("PERFSINK_FLUSH_INTERVAL_MS", 1, &mut c.flush_interval)?;
        self.usize(
            "PERFSINK_CONCURRENCY",
            1,
            MAX_CONCURRENCY,
            &mut c.concurrency,
        )?;
        self.usize(
            "PERFSINK_QUEUE_CAPACITY",
            1,
            MAX_QUEUE_CAPACITY,
            &mut c.queue_capacity,
        )?;

        // The timeout is read whatever the policy, so a bad value is reported even under `drop`.
        let mut block_timeout = match c.queue_policy {
            QueuePolicy::Block(d) => d,
            QueuePolicy::DropNewest => Duration::ZERO,
        };
        // 0 would be `drop` in disguise; say `drop` instead.
        self.millis("PERFSINK_BLOCK_TIMEOUT_MS", 1, &mut block_timeout)?;
        c.queue_policy = match self.get("PERFSINK_QUEUE_POLICY") {
            None | Some("block") => QueuePolicy::Block(block_timeout),
            Some("drop") => QueuePolicy::DropNewest,
            Some(v) => {
                return Err(invalid(
                    "PERFSINK_QUEUE_POLICY",
                    v,
                    "expected block or drop",
                ))
            }
        };

        self.usize(
            "PERFSINK_MEMORY_MAX_BYTES",
            1,
            u64::MAX,
            &mut c.memory_max_bytes,
        )?;
        c.spool_dir = self.text("PERFSINK_SPOOL_DIR").map(PathBuf::from);
        // A zero cap is a spool that takes nothing; leaving the directory unset says that.
        if let Some(n) = self.uint("PERFSINK_SPOOL_MAX_BYTES", 1, u64::MAX)? {
            c.spool_max_bytes = n;
        }
        let mut fsync_interval = Duration::from_millis(1000);
        self.millis("PERFSINK_SPOOL_FSYNC_INTERVAL_MS", 1, &mut fsync_interval)?;
        c.spool_fsync = match self.get("PERFSINK_SPOOL_FSYNC") {
            None | Some("interval") => SpoolFsync::Interval(fsync_interval),
            Some("always") => SpoolFsync::Always,
            Some("never") => SpoolFsync::Never,
            Some(v) => {
                return Err(invalid(
                    "PERFSINK_SPOOL_FSYNC",
                    v,
                    "expected always, interval or never",
                ))
            }
        };
        if let Some(n) = self.uint("PERFSINK_GZIP_LEVEL", 0, 9)? {
            // At most 9 by the bound just applied.
            c.gzip_level = u32::try_from(n).unwrap_or(9);
        }
        self.millis("PERFSINK_TIMEOUT_MS", 1, &mut c.request_timeout)?;
        self.millis("PERFSINK_CONNECT_TIMEOUT_MS", 1, &mut c.connect_timeout)?;
        self.millis("PERFSINK_CLOSE_TIMEOUT_MS", 1, &mut c.close_timeout)?;
        self.millis("PERFSINK_RETRY_INITIAL_MS", 1, &mut c.retry_initial)?;
        self.millis("PERFSINK_RETRY_MAX_MS", 1, &mut c.retry_max)?;
        if c.retry_initial > c.retry_max {
            return Err(Error::Config(format!(
                "PERFSINK_RETRY_INITIAL_MS ({}) must not exceed PERFSINK_RETRY_MAX_MS ({})",
                c.retry_initial.as_millis(),
                c.retry_max.as_millis()
            )));
        }
        // Series ids are u32; more series than ids cannot be told apart.
        self.usize(
            "PERFSINK_MAX_SERIES",
            1,
            u64::from(u32::MAX),
            &mut c.max_series,
        )?;
        if let Some(n) = self.uint("PERFSINK_SELF_METRICS_INTERVAL_MS", 0, MAX_MS)? {
            c.self_metrics_interval = (n > 0).then(|| Duration::from_millis(n));
        }
        self.boolean("PERFSINK_CREATE_DATABASE", &mut c.create_database)?;
        self.boolean("PERFSINK_DEDUP", &mut c.dedup)?;
        self.millis("PERFSINK_DEDUP_WINDOW_MS", 0, &mut c.dedup_window)?;
        self.boolean("PERFSINK_FAIL_ON_LOSS", &mut c.fail_on_loss)?;
        if let Some(v) = self.text("PERFSINK_TAGS") {
            c.global_tags = parse_tags(v)?;
        }
        if let Some(v) = self.text("PERFSINK_SOURCE") {
            if v.chars().any(char::is_control) {
                return Err(invalid(
                    "PERFSINK_SOURCE",
                    v,
                    "must not contain control characters",
                ));
            }
            storable_everywhere("PERFSINK_SOURCE", v, Element::TagValue)?;
            c.source = v.to_string();
        }

        (c.mode, c.aggregate) = self.aggregate(c.precision)?;

        c.endpoint = self.endpoint()?;
        Ok(c)
    }

    /// Cross-key checks live here and only run with a URL: without one nothing is sent, and
    /// influxd's own `INFLUXDB_*` settings in the same environment must not make us fail.
    fn endpoint(&self) -> Result<Option<Endpoint>> {
        let Some(url) = self.text("INFLUXDB_URL") else {
            return Ok(None);
        };
        let url = parse_url(url)?;

        let db = match (url.db.clone(), self.text("INFLUXDB_DB")) {
            (Some(path_db), Some(db)) if path_db != db => {
                return Err(Error::Config(format!(
                    "INFLUXDB_URL names database {} in its path but INFLUXDB_DB is {}; \
                     set only one of them",
                    show(&path_db),
                    show(db)
                )))
            }
            (Some(path_db), _) => path_db,
            (None, Some(db)) => db.to_string(),
            (None, None) => "k6".to_string(),
        };
        let rp = self.text("INFLUXDB_RP");
        let username = self.text("INFLUXDB_USERNAME");
        let password = self.text("INFLUXDB_PASSWORD");
        let token = self.text("INFLUXDB_TOKEN");
        for (key, secret) in [("INFLUXDB_PASSWORD", password), ("INFLUXDB_TOKEN", token)] {
            // Such a value cannot travel in an HTTP header; the check must not quote it.
            if secret.is_some_and(|s| s.chars().any(char::is_control)) {
                return Err(invalid(key, "", "contains a control character"));
            }
        }
        if password.is_some() && username.is_none() {
            return Err(Error::Config(
                "INFLUXDB_PASSWORD is set but INFLUXDB_USERNAME is not".into(),
            ));
        }
        if let Some(user) = username {
            // Basic auth joins user and password with ':', so a ':' in the user is ambiguous.
            if user.contains(':') || user.chars().any(char::is_control) {
                return Err(invalid(
                    "INFLUXDB_USERNAME",
                    user,
                    "must not contain ':' or control characters",
                ));
            }
        }

        let api = match token {
            Some(token) => {
                if username.is_some() {
                    return Err(Error::Config(
                        "INFLUXDB_TOKEN (v2) and INFLUXDB_USERNAME/INFLUXDB_PASSWORD (v1) \
                         are exclusive; set only one kind of credentials"
                            .into(),
                    ));
                }
                let bucket = match (self.text("INFLUXDB_BUCKET"), rp) {
                    (Some(bucket), _) => bucket.to_string(),
                    (None, Some(rp)) => format!("{db}/{rp}"),
                    (None, None) => db,
                };
                Api::V2 {
                    org: self.text("INFLUXDB_ORG").map(str::to_string),
                    bucket,
                    token: Secret::new(token),
                }
            }
            None => {
                // Without a token they would be ignored, and a forgotten token is the likely cause.
                for key in ["INFLUXDB_ORG", "INFLUXDB_BUCKET"] {
                    if self.text(key).is_some() {
                        return Err(Error::Config(format!(
                            "{key} is set but INFLUXDB_TOKEN is not; \
                             {key} only applies to the v2 API"
                        )));
                    }
                }
                Api::V1 {
                    db,
                    rp: rp.map(str::to_string),
                    username: username.map(str::to_string),
                    password: password.map(Secret::new),
                }
            }
        };
        Ok(Some(Endpoint {
            base_url: url.base_url(),
            api,
        }))
    }
}

/// `INFLUXDB_URL`: the shared parser, without credentials, query or percent-encoded path.
fn parse_url(url: &str) -> Result<InfluxUrl> {
    const KEY: &str = "INFLUXDB_URL";
    // These two checks come first and do not quote the value: userinfo holds a password, and
    // InfluxDB 1.x takes `?u=...&p=...` credentials in the query.
    if url.contains('@') {
        return Err(Error::Config(format!(
            "{KEY} must not contain '@' (user:password@host); use INFLUXDB_USERNAME and \
             INFLUXDB_PASSWORD or INFLUXDB_TOKEN (value not shown)"
        )));
    }
    if url.contains('?') || url.contains('#') {
        return Err(Error::Config(format!(
            "{KEY} must not contain a query string or fragment; use the INFLUXDB_* keys \
             instead (value not shown)"
        )));
    }
    let parsed = InfluxUrl::parse(url).map_err(|why| invalid(KEY, url, why))?;
    if parsed.path_encoded {
        return Err(invalid(
            KEY,
            url,
            "percent-encoded paths are not supported; name the database in INFLUXDB_DB",
        ));
    }
    Ok(parsed)
}

fn parse_tags(v: &str) -> Result<Vec<(String, String)>> {
    const KEY: &str = "PERFSINK_TAGS";
    let mut tags: Vec<(String, String)> = Vec::new();
    for entry in v.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| invalid(KEY, entry, "expected key=value entries separated by ','"))?;
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            return Err(invalid(KEY, entry, "the tag key is empty"));
        }
        // Line protocol has no escape for a newline.
        if entry.chars().any(char::is_control) {
            return Err(invalid(
                KEY,
                entry,
                "tags must not contain control characters",
            ));
        }
        storable_everywhere(KEY, key, Element::TagKey)?;
        if !value.is_empty() {
            storable_everywhere(KEY, value, Element::TagValue)?;
        }
        tags.push((key.to_string(), value.to_string()));
    }
    // Stable sort, `String` order is byte order.
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = tags.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(invalid(
            KEY,
            v,
            format!("tag key {} is given twice", show(&pair[0].0)),
        ));
    }
    tags.retain(|(_, value)| !value.is_empty());
    Ok(tags)
}

/// Refuses a tag every point gets (global tags, the self-metrics `source`) unless every
/// server can store it as it is (a trailing backslash cannot be), so that it cannot make
/// every registration fail later, whatever server `auto` finds.
fn storable_everywhere(key: &'static str, s: &str, element: Element) -> Result<()> {
    for dialect in [Dialect::Go, Dialect::V3] {
        escape_identifier(&mut Vec::new(), s, element, dialect).map_err(|e| {
            let why = match e {
                Error::InvalidInput(m) => m,
                other => other.to_string(),
            };
            invalid(key, s, why)
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config> {
        Config::from_pairs(pairs.iter().copied())
    }

    fn ok(pairs: &[(&str, &str)]) -> Config {
        cfg(pairs).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        match cfg(pairs) {
            Ok(c) => panic!("{pairs:?} was accepted: {c:?}"),
            Err(Error::Config(m)) => m,
            Err(e) => panic!("{pairs:?}: not a config error: {e:?}"),
        }
    }

    fn endpoint(pairs: &[(&str, &str)]) -> Endpoint {
        ok(pairs).endpoint.expect("endpoint")
    }

    fn v1(db: &str) -> Api {
        Api::V1 {
            db: db.into(),
            rp: None,
            username: None,
            password: None,
        }
    }

    const URL: (&str, &str) = ("INFLUXDB_URL", "http://localhost:8086");

    #[test]
    fn server_version() {
        assert_eq!(ok(&[]).server_version, ServerVersion::Auto);
        for (v, want) in [
            ("auto", ServerVersion::Auto),
            ("AUTO", ServerVersion::Auto),
            ("1", ServerVersion::V1),
            ("2", ServerVersion::V2),
            ("3", ServerVersion::V3),
        ] {
            assert_eq!(ok(&[("INFLUXDB_VERSION", v)]).server_version, want);
        }
        let e = err(&[("INFLUXDB_VERSION", "1.8")]);
        assert!(e.contains("expected 1, 2, 3 or auto"), "{e}");
        assert_eq!(ServerVersion::V2.dialect(), Some(Dialect::Go));
        assert_eq!(ServerVersion::V3.dialect(), Some(Dialect::V3));
        assert_eq!(ServerVersion::Auto.dialect(), None);
        for (header, want) in [
            ("1.6.7~rc0", Some(ServerVersion::V1)),
            ("1.8.10", Some(ServerVersion::V1)),
            ("v2.7.11", Some(ServerVersion::V2)),
            ("2.7.4", Some(ServerVersion::V2)),
            ("3.0.1", Some(ServerVersion::V3)),
            ("v3.2.0-nightly", Some(ServerVersion::V3)),
            ("", None),
            ("unknown", None),
            ("dev", None),
            ("10.0", None),
        ] {
            assert_eq!(ServerVersion::from_ping(header), want, "{header}");
        }
    }

    #[test]
    fn global_tags_every_server_can_store() {
        let e = err(&[("PERFSINK_TAGS", "testid=run\\")]);
        assert!(e.contains("ends with a backslash"), "{e}");
        let e = err(&[("PERFSINK_SOURCE", "k6\\")]);
        assert!(e.contains("ends with a backslash"), "{e}");
        let c = ok(&[("PERFSINK_TAGS", "dir=C:\\x y")]);
        assert_eq!(c.global_tags, [("dir".to_string(), "C:\\x y".to_string())]);
    }

    #[test]
    fn no_pairs_is_the_default() {
        let c = ok(&[]);
        assert_eq!(c, Config::default());
        assert!(!c.enabled());
        assert_eq!(Config::from_kv("").unwrap(), Config::default());
    }

    #[test]
    fn keys_match_the_table_of_the_module_doc() {
        let doc_keys: Vec<&str> = include_str!("config.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .filter_map(|l| l.strip_prefix("//! | `"))
            .flat_map(|l| l.split(" | ").next())
            .flat_map(|cell| cell.split(", "))
            .map(|k| k.trim_matches('`'))
            .collect();
        assert_eq!(doc_keys, KEYS);
    }

    #[test]
    fn every_key_is_read() {
        // One valid, non-default value per key; each must change the config.
        let samples: &[(&str, &str)] = &[
            ("INFLUXDB_URL", "http://h:1"),
            ("INFLUXDB_DB", "x"),
            ("INFLUXDB_RP", "x"),
            ("INFLUXDB_USERNAME", "x"),
            ("INFLUXDB_PASSWORD", "x"),
            ("INFLUXDB_TOKEN", "x"),
            ("INFLUXDB_ORG", "x"),
            ("INFLUXDB_BUCKET", "x"),
            ("INFLUXDB_PRECISION", "ms"),
            ("INFLUXDB_VERSION", "3"),
            ("INFLUXDB_INSECURE_SKIP_VERIFY", "true"),
            ("INFLUXDB_CA_FILE", "/ca.pem"),
            ("PERFSINK_BATCH_LINES", "7"),
            ("PERFSINK_BATCH_BYTES", "2048"),
            ("PERFSINK_FLUSH_INTERVAL_MS", "7"),
            ("PERFSINK_CONCURRENCY", "7"),
            ("PERFSINK_QUEUE_CAPACITY", "7"),
            ("PERFSINK_QUEUE_POLICY", "drop"),
            ("PERFSINK_BLOCK_TIMEOUT_MS", "7"),
            ("PERFSINK_MEMORY_MAX_BYTES", "7"),
            ("PERFSINK_SPOOL_DIR", "/spool"),
            ("PERFSINK_SPOOL_MAX_BYTES", "7"),
            ("PERFSINK_SPOOL_FSYNC", "always"),
            ("PERFSINK_SPOOL_FSYNC_INTERVAL_MS", "7"),
            ("PERFSINK_GZIP_LEVEL", "7"),
            ("PERFSINK_TIMEOUT_MS", "7"),
            ("PERFSINK_CONNECT_TIMEOUT_MS", "7"),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "7"),
            ("PERFSINK_RETRY_INITIAL_MS", "7"),
            ("PERFSINK_RETRY_MAX_MS", "70000"),
            ("PERFSINK_MAX_SERIES", "7"),
            ("PERFSINK_SELF_METRICS_INTERVAL_MS", "7"),
            ("PERFSINK_CREATE_DATABASE", "false"),
            ("PERFSINK_DEDUP", "false"),
            ("PERFSINK_DEDUP_WINDOW_MS", "7"),
            ("PERFSINK_FAIL_ON_LOSS", "true"),
            ("PERFSINK_TAGS", "a=b"),
            ("PERFSINK_SOURCE", "k6"),
            ("PERFSINK_MODE", "both"),
            ("PERFSINK_AGGREGATE_INTERVAL_MS", "7"),
            ("PERFSINK_AGGREGATE_GRACE_MS", "7"),
            ("PERFSINK_PERCENTILES", "7"),
            ("PERFSINK_AGGREGATE_MEMORY_MAX_BYTES", "7"),
        ];
        assert_eq!(samples.len(), KEYS.len());
        // Keys that only matter together with others get the context they need.
        let base: &[(&str, &str)] = &[("INFLUXDB_URL", "http://h:1")];
        let v2: &[(&str, &str)] = &[("INFLUXDB_URL", "http://h:1"), ("INFLUXDB_TOKEN", "t")];
        let v1_user: &[(&str, &str)] =
            &[("INFLUXDB_URL", "http://h:1"), ("INFLUXDB_USERNAME", "u")];
        for &(key, value) in samples {
            let context = match key {
                "INFLUXDB_ORG" | "INFLUXDB_BUCKET" => v2,
                "INFLUXDB_PASSWORD" => v1_user,
                "INFLUXDB_URL" => &[],
                _ => base,
            };
            let mut with: Vec<(&str, &str)> = context.to_vec();
            with.push((key, value));
            assert_ne!(ok(context), ok(&with), "{key} had no effect");
        }
    }

    #[test]
    fn numbers() {
        let c = ok(&[
            ("PERFSINK_BATCH_LINES", "1"),
            ("PERFSINK_BATCH_BYTES", "1024"),
            ("PERFSINK_FLUSH_INTERVAL_MS", "250"),
            ("PERFSINK_CONCURRENCY", "256"),
            ("PERFSINK_QUEUE_CAPACITY", "1"),
            ("PERFSINK_MEMORY_MAX_BYTES", "1000000"),
            ("PERFSINK_SPOOL_MAX_BYTES", "18446744073709551615"),
            ("PERFSINK_GZIP_LEVEL", "0"),
            ("PERFSINK_TIMEOUT_MS", "1"),
            ("PERFSINK_CONNECT_TIMEOUT_MS", "86400000"),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "30000"),
            ("PERFSINK_RETRY_INITIAL_MS", "50"),
            ("PERFSINK_RETRY_MAX_MS", "50"),
            ("PERFSINK_MAX_SERIES", "4294967295"),
        ]);
        assert_eq!(c.batch_lines, 1);
        assert_eq!(c.batch_bytes, 1024);
        assert_eq!(c.flush_interval, Duration::from_millis(250));
        assert_eq!(c.concurrency, 256);
        assert_eq!(c.queue_capacity, 1);
        assert_eq!(c.memory_max_bytes, 1_000_000);
        assert_eq!(c.spool_max_bytes, u64::MAX);
        assert_eq!(c.gzip_level, 0);
        assert_eq!(c.request_timeout, Duration::from_millis(1));
        assert_eq!(c.connect_timeout, Duration::from_secs(86_400));
        assert_eq!(c.close_timeout, Duration::from_secs(30));
        assert_eq!(c.retry_initial, Duration::from_millis(50));
        assert_eq!(c.retry_max, Duration::from_millis(50));
        assert_eq!(c.max_series, u32::MAX as usize);
        assert_eq!(ok(&[("PERFSINK_GZIP_LEVEL", "9")]).gzip_level, 9);
        assert_eq!(ok(&[("PERFSINK_BATCH_LINES", "007")]).batch_lines, 7);
    }

    #[test]
    fn malformed_numbers_name_key_and_value() {
        for bad in [
            "", " 5", "5 ", "+5", "-5", "5.0", "1e3", "0x10", "5_000", "five", "５",
        ] {
            let m = err(&[("PERFSINK_BATCH_LINES", bad)]);
            assert!(m.contains("PERFSINK_BATCH_LINES"), "{m}");
            assert!(m.contains(&format!("{bad:?}")), "{m}");
        }
        let m = err(&[("PERFSINK_SPOOL_MAX_BYTES", "18446744073709551616")]);
        assert!(
            m.contains("PERFSINK_SPOOL_MAX_BYTES") && m.contains("18446744073709551616"),
            "{m}"
        );
    }

    #[test]
    fn numbers_that_make_no_sense() {
        for (key, value) in [
            ("PERFSINK_BATCH_LINES", "0"),
            ("PERFSINK_BATCH_BYTES", "0"),
            ("PERFSINK_BATCH_BYTES", "1023"),
            ("PERFSINK_FLUSH_INTERVAL_MS", "0"),
            ("PERFSINK_CONCURRENCY", "0"),
            ("PERFSINK_CONCURRENCY", "257"),
            ("PERFSINK_QUEUE_CAPACITY", "0"),
            ("PERFSINK_QUEUE_CAPACITY", "65537"),
            ("PERFSINK_BLOCK_TIMEOUT_MS", "0"),
            ("PERFSINK_MEMORY_MAX_BYTES", "0"),
            ("PERFSINK_SPOOL_MAX_BYTES", "0"),
            ("PERFSINK_GZIP_LEVEL", "10"),
            ("PERFSINK_TIMEOUT_MS", "0"),
            ("PERFSINK_CONNECT_TIMEOUT_MS", "0"),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "0"),
            ("PERFSINK_RETRY_INITIAL_MS", "0"),
            ("PERFSINK_RETRY_MAX_MS", "0"),
            ("PERFSINK_MAX_SERIES", "0"),
            ("PERFSINK_MAX_SERIES", "4294967296"),
            ("PERFSINK_TIMEOUT_MS", "86400001"),
            ("PERFSINK_SELF_METRICS_INTERVAL_MS", "86400001"),
            ("PERFSINK_CLOSE_TIMEOUT_MS", "18446744073709551615"),
        ] {
            let m = err(&[(key, value)]);
            assert!(m.contains(key) && m.contains(&format!("{value:?}")), "{m}");
        }
    }

    #[test]
    fn retry_initial_above_max_is_an_error() {
        let m = err(&[("PERFSINK_RETRY_MAX_MS", "100")]);
        assert!(m.contains("PERFSINK_RETRY_INITIAL_MS (200)"), "{m}");
        let m = err(&[
            ("PERFSINK_RETRY_INITIAL_MS", "5000"),
            ("PERFSINK_RETRY_MAX_MS", "4999"),
        ]);
        assert!(m.contains("PERFSINK_RETRY_MAX_MS (4999)"), "{m}");
    }

    #[test]
    fn self_metrics_zero_disables() {
        assert_eq!(
            ok(&[("PERFSINK_SELF_METRICS_INTERVAL_MS", "0")]).self_metrics_interval,
            None
        );
        assert_eq!(
            ok(&[("PERFSINK_SELF_METRICS_INTERVAL_MS", "500")]).self_metrics_interval,
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn booleans() {
        for (v, want) in [
            ("true", true),
            ("TRUE", true),
            ("True", true),
            ("1", true),
            ("yes", true),
            ("YES", true),
            ("on", true),
            ("On", true),
            ("false", false),
            ("FALSE", false),
            ("0", false),
            ("no", false),
            ("No", false),
            ("off", false),
            ("OFF", false),
        ] {
            let c = ok(&[
                ("PERFSINK_DEDUP", v),
                ("PERFSINK_CREATE_DATABASE", v),
                ("INFLUXDB_INSECURE_SKIP_VERIFY", v),
            ]);
            assert_eq!(
                (c.dedup, c.create_database, c.tls.insecure_skip_verify),
                (want, want, want)
            );
        }
        for bad in ["", "t", "f", "2", "y", "n", "enabled", " true", "true "] {
            let m = err(&[("PERFSINK_DEDUP", bad)]);
            assert!(
                m.contains("PERFSINK_DEDUP") && m.contains(&format!("{bad:?}")),
                "{m}"
            );
        }
    }

    #[test]
    fn precision() {
        assert_eq!(ok(&[("INFLUXDB_PRECISION", "ns")]).precision, Precision::Ns);
        assert_eq!(ok(&[("INFLUXDB_PRECISION", "ms")]).precision, Precision::Ms);
        assert_eq!(ok(&[("INFLUXDB_PRECISION", "s")]).precision, Precision::S);
        for bad in ["u", "us", "µs", "n", "NS", "Ms", "", "h", "m"] {
            let m = err(&[("INFLUXDB_PRECISION", bad)]);
            assert!(
                m.contains("INFLUXDB_PRECISION") && m.contains(&format!("{bad:?}")),
                "{m}"
            );
        }
        let m = err(&[("INFLUXDB_PRECISION", "us")]);
        assert!(m.contains("u and us"), "{m}");
    }

    #[test]
    fn tls() {
        let c = ok(&[
            ("INFLUXDB_INSECURE_SKIP_VERIFY", "yes"),
            ("INFLUXDB_CA_FILE", "C:\\certs\\ca.pem"),
        ]);
        assert_eq!(
            c.tls,
            Tls {
                insecure_skip_verify: true,
                ca_file: Some(PathBuf::from("C:\\certs\\ca.pem")),
            }
        );
        assert_eq!(ok(&[("INFLUXDB_CA_FILE", "")]).tls.ca_file, None);
    }

    #[test]
    fn queue_policy_and_block_timeout_in_any_order() {
        let block = |ms| QueuePolicy::Block(Duration::from_millis(ms));
        assert_eq!(ok(&[]).queue_policy, block(100));
        assert_eq!(
            ok(&[("PERFSINK_QUEUE_POLICY", "block")]).queue_policy,
            block(100)
        );
        assert_eq!(
            ok(&[
                ("PERFSINK_QUEUE_POLICY", "block"),
                ("PERFSINK_BLOCK_TIMEOUT_MS", "250")
            ])
            .queue_policy,
            block(250)
        );
        assert_eq!(
            ok(&[
                ("PERFSINK_BLOCK_TIMEOUT_MS", "250"),
                ("PERFSINK_QUEUE_POLICY", "block")
            ])
            .queue_policy,
            block(250)
        );
        assert_eq!(
            ok(&[("PERFSINK_BLOCK_TIMEOUT_MS", "5")]).queue_policy,
            block(5)
        );
        assert_eq!(
            ok(&[
                ("PERFSINK_BLOCK_TIMEOUT_MS", "5"),
                ("PERFSINK_QUEUE_POLICY", "drop")
            ])
            .queue_policy,
            QueuePolicy::DropNewest
        );
        assert_eq!(
            ok(&[
                ("PERFSINK_QUEUE_POLICY", "drop"),
                ("PERFSINK_QUEUE_POLICY", "block")
            ])
            .queue_policy,
            block(100)
        );
        for bad in ["", "Block", "DROP", "drop_newest", "wait"] {
            let m = err(&[("PERFSINK_QUEUE_POLICY", bad)]);
            assert!(
                m.contains("PERFSINK_QUEUE_POLICY") && m.contains(&format!("{bad:?}")),
                "{m}"
            );
        }
        // A malformed timeout is reported even when the policy does not use it.
        err(&[
            ("PERFSINK_QUEUE_POLICY", "drop"),
            ("PERFSINK_BLOCK_TIMEOUT_MS", "x"),
        ]);
    }

    #[test]
    fn spool_dir() {
        assert_eq!(ok(&[("PERFSINK_SPOOL_DIR", "")]).spool_dir, None);
        assert_eq!(
            ok(&[("PERFSINK_SPOOL_DIR", "/var/spool/perfsink")]).spool_dir,
            Some(PathBuf::from("/var/spool/perfsink"))
        );
        assert_eq!(
            ok(&[("PERFSINK_SPOOL_DIR", "/x"), ("PERFSINK_SPOOL_DIR", "")]).spool_dir,
            None
        );
    }

    #[test]
    fn spool_fsync() {
        let fsync = |kv: &[(&str, &str)]| ok(kv).spool_fsync;
        let every = |ms| SpoolFsync::Interval(Duration::from_millis(ms));
        assert_eq!(fsync(&[]), every(1000));
        assert_eq!(
            fsync(&[("PERFSINK_SPOOL_FSYNC", "always")]),
            SpoolFsync::Always
        );
        assert_eq!(
            fsync(&[("PERFSINK_SPOOL_FSYNC", "never")]),
            SpoolFsync::Never
        );
        assert_eq!(
            fsync(&[
                ("PERFSINK_SPOOL_FSYNC_INTERVAL_MS", "250"),
                ("PERFSINK_SPOOL_FSYNC", "interval")
            ]),
            every(250)
        );
        let m = err(&[("PERFSINK_SPOOL_FSYNC", "sometimes")]);
        assert!(m.contains("PERFSINK_SPOOL_FSYNC") && m.contains("always, interval or never"));
        err(&[("PERFSINK_SPOOL_FSYNC_INTERVAL_MS", "0")]);
    }

    #[test]
    fn tags() {
        let tags = |v| ok(&[("PERFSINK_TAGS", v)]).global_tags;
        let owned = |t: &[(&str, &str)]| -> Vec<(String, String)> {
            t.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert_eq!(tags(""), owned(&[]));
        assert_eq!(tags(" , ,"), owned(&[]));
        assert_eq!(
            tags(" testid = run 1 , host=a,,region=eu-west-1,"),
            owned(&[("host", "a"), ("region", "eu-west-1"), ("testid", "run 1")])
        );
        // Byte order: upper case sorts before lower case, `_` between them.
        assert_eq!(
            tags("b=1,a=2,B=3,_=4"),
            owned(&[("B", "3"), ("_", "4"), ("a", "2"), ("b", "1")])
        );
        assert_eq!(tags("a=,b=1,c= "), owned(&[("b", "1")]));
        assert_eq!(
            tags("url=http://x/?a=b"),
            owned(&[("url", "http://x/?a=b")])
        );
        for (bad, why) in [
            ("a", "key=value"),
            ("a=1,b", "key=value"),
            ("=1", "empty"),
            (" = 1", "empty"),
            ("a=1,a=2", "twice"),
            ("a=1, a =", "twice"),
            ("a=x\ny", "control"),
        ] {
            let m = err(&[("PERFSINK_TAGS", bad)]);
            assert!(
                m.contains("PERFSINK_TAGS") && m.contains(why),
                "{bad:?}: {m}"
            );
        }
    }

    #[test]
    fn source() {
        assert_eq!(ok(&[("PERFSINK_SOURCE", "jmeter")]).source, "jmeter");
        assert_eq!(ok(&[("PERFSINK_SOURCE", "")]).source, "api");
        err(&[("PERFSINK_SOURCE", "a\nb")]);
    }

    #[test]
    fn later_pairs_win() {
        let c = ok(&[
            ("PERFSINK_BATCH_LINES", "10"),
            ("PERFSINK_BATCH_LINES", "20"),
        ]);
        assert_eq!(c.batch_lines, 20);
        // An overridden value is never parsed, as with environment overrides.
        let c = ok(&[
            ("PERFSINK_BATCH_LINES", "junk"),
            ("PERFSINK_BATCH_LINES", "30"),
        ]);
        assert_eq!(c.batch_lines, 30);
        assert!(!ok(&[URL, ("INFLUXDB_URL", "")]).enabled());
    }

    #[test]
    fn unknown_keys() {
        let m = err(&[("FOO", "1")]);
        assert!(m.starts_with("unknown key FOO"), "{m}");
        let m = err(&[("PERFSINK_BATCH_LINE", "1")]);
        assert!(m.contains("did you mean PERFSINK_BATCH_LINES?"), "{m}");
        let m = err(&[("INFLUXDB_PASWORD", "hunter2")]);
        assert!(m.contains("did you mean INFLUXDB_PASSWORD?"), "{m}");
        assert!(!m.contains("hunter2"), "{m}");
        let m = err(&[("influxdb_url", "http://h")]);
        assert!(
            m.contains("case-sensitive") && m.contains("INFLUXDB_URL"),
            "{m}"
        );
        let m = err(&[("XYZZY_SOMETHING_ELSE", "1")]);
        assert!(!m.contains("did you mean"), "{m}");
        // Even a valid pair before it does not hide it.
        err(&[URL, ("PERFSINK_NOPE", "1")]);
        err(&[(" INFLUXDB_URL", "http://h")]);
    }

    #[test]
    fn a_secret_split_at_an_unescaped_semicolon_is_not_echoed() {
        for s in [
            "INFLUXDB_URL=http://h;INFLUXDB_USERNAME=u;INFLUXDB_PASSWORD=ab;s3cr=et",
            "INFLUXDB_URL=http://h;INFLUXDB_TOKEN=ab;s3cr=et",
            "INFLUXDB_URL=http://h;INFLUXDB_TOKEN=ab;s3cret",
        ] {
            let m = Config::from_kv(s).unwrap_err().to_string();
            assert!(!m.contains("s3cr") && !m.contains("ab"), "{m}");
            assert!(m.contains("entry"), "{m}");
        }
        let m = Config::from_kv("INFLUXDB_URL=http://h;INFLUXDB_TOKEN=ab;s3cr=et")
            .unwrap_err()
            .to_string();
        assert!(m.contains("INFLUXDB_TOKEN") && m.contains("\\;"), "{m}");
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("PERFSINK_DEDUP", "PERFSINK_DEDUP"), 0);
    }

    #[test]
    fn no_url_means_disabled_whatever_else_is_set() {
        let c = ok(&[
            ("INFLUXDB_DB", "x"),
            ("INFLUXDB_PASSWORD", "p"),
            ("INFLUXDB_BUCKET", "b"),
            ("INFLUXDB_TOKEN", "t"),
            ("INFLUXDB_USERNAME", "u"),
        ]);
        assert_eq!(c.endpoint, None);
        assert!(!c.enabled());
        assert!(!ok(&[("INFLUXDB_URL", "")]).enabled());
        // Values are still checked.
        err(&[("INFLUXDB_PRECISION", "us")]);
    }

    #[test]
    fn urls() {
        for (url, base, db) in [
            ("http://localhost:8086", "http://localhost:8086", "k6"),
            ("http://localhost:8086/", "http://localhost:8086", "k6"),
            (
                "https://influx.example.com",
                "https://influx.example.com",
                "k6",
            ),
            (
                "HTTPS://Influx.example.com:443",
                "https://Influx.example.com:443",
                "k6",
            ),
            ("http://localhost:8086/k6", "http://localhost:8086", "k6"),
            (
                "http://localhost:8086/mydb/",
                "http://localhost:8086",
                "mydb",
            ),
            (
                "http://127.0.0.1:08086/db_1",
                "http://127.0.0.1:8086",
                "db_1",
            ),
            ("http://[::1]:8086/k6", "http://[::1]:8086", "k6"),
            ("http://[fe80::1]", "http://[fe80::1]", "k6"),
            ("http://influxdb", "http://influxdb", "k6"),
            ("http://my_host-1.local:1", "http://my_host-1.local:1", "k6"),
            ("http://h:65535", "http://h:65535", "k6"),
        ] {
            let e = endpoint(&[("INFLUXDB_URL", url)]);
            assert_eq!(e.base_url, base, "{url}");
            assert_eq!(e.api, v1(db), "{url}");
        }
    }

    #[test]
    fn bad_urls_name_key_and_value() {
        for url in [
            "localhost:8086",
            "ftp://h",
            "http:/h",
            "http://",
            "http:///k6",
            "http://:8086",
            "http://h:",
            "http://h:0",
            "http://h:65536",
            "http://h:80a",
            "http://h:+80",
            "http://h:-1",
            "http://h:1:2",
            "http://::1",
            "http://[::1",
            "http://[]:1",
            "http://[::1]x",
            "http://[zz]",
            "http://h/a/b",
            "http://h//",
            "http://h/a//",
            "http://h/my%20db",
            "http://h o",
            "http://h/ k6",
            "http://h\n",
            " http://h",
            "http://h*st",
        ] {
            let m = err(&[("INFLUXDB_URL", url)]);
            assert!(
                m.contains("INFLUXDB_URL") && m.contains(&format!("{url:?}")),
                "{url:?}: {m}"
            );
        }
    }

    #[test]
    fn urls_with_credentials_are_refused_without_quoting_them() {
        for url in [
            "http://admin:hunter2@h:8086",
            "http://hunter2@h",
            "http://admin:hunter2@h/k6",
            "http://h:8086/write?u=admin&p=hunter2",
            "http://h:8086/?p=hunter2",
            "http://h/k6#hunter2",
            "http://admin:hun/ter2@h",
        ] {
            let m = err(&[("INFLUXDB_URL", url)]);
            assert!(m.contains("INFLUXDB_URL"), "{m}");
            assert!(!m.contains("hunter2") && !m.contains("hun"), "{url}: {m}");
        }
    }

    #[test]
    fn database_resolution() {
        assert_eq!(endpoint(&[URL]).api, v1("k6"));
        assert_eq!(endpoint(&[URL, ("INFLUXDB_DB", "perf")]).api, v1("perf"));
        assert_eq!(endpoint(&[URL, ("INFLUXDB_DB", "")]).api, v1("k6"));
        let k6_url = ("INFLUXDB_URL", "http://h:8086/perf");
        assert_eq!(endpoint(&[k6_url]).api, v1("perf"));
        assert_eq!(endpoint(&[k6_url, ("INFLUXDB_DB", "perf")]).api, v1("perf"));
        assert_eq!(endpoint(&[("INFLUXDB_DB", "perf"), k6_url]).api, v1("perf"));
        let m = err(&[k6_url, ("INFLUXDB_DB", "other")]);
        assert!(
            m.contains("INFLUXDB_DB") && m.contains("\"perf\"") && m.contains("\"other\""),
            "{m}"
        );
        // The default `k6` does not conflict with a URL path.
        assert_eq!(endpoint(&[("INFLUXDB_URL", "http://h/x")]).api, v1("x"));
    }

    #[test]
    fn v1_api() {
        let e = endpoint(&[
            URL,
            ("INFLUXDB_DB", "perf"),
            ("INFLUXDB_RP", "autogen"),
            ("INFLUXDB_USERNAME", "admin"),
            ("INFLUXDB_PASSWORD", "pw"),
        ]);
        assert_eq!(e.base_url, "http://localhost:8086");
        assert_eq!(
            e.api,
            Api::V1 {
                db: "perf".into(),
                rp: Some("autogen".into()),
                username: Some("admin".into()),
                password: Some(Secret::new("pw")),
            }
        );
        let e = endpoint(&[URL, ("INFLUXDB_USERNAME", "admin")]);
        assert_eq!(
            e.api,
            Api::V1 {
                db: "k6".into(),
                rp: None,
                username: Some("admin".into()),
                password: None,
            }
        );
        let m = err(&[URL, ("INFLUXDB_PASSWORD", "hunter2")]);
        assert!(
            m.contains("INFLUXDB_USERNAME") && !m.contains("hunter2"),
            "{m}"
        );
        let m = err(&[URL, ("INFLUXDB_USERNAME", "a:b")]);
        assert!(
            m.contains("INFLUXDB_USERNAME") && m.contains("\"a:b\""),
            "{m}"
        );
        for key in ["INFLUXDB_ORG", "INFLUXDB_BUCKET"] {
            let m = err(&[URL, (key, "x")]);
            assert!(m.contains(key) && m.contains("INFLUXDB_TOKEN"), "{m}");
        }
    }

    #[test]
    fn v2_api() {
        let tok = ("INFLUXDB_TOKEN", "tok");
        let v2 = |org: Option<&str>, bucket: &str| Api::V2 {
            org: org.map(str::to_string),
            bucket: bucket.into(),
            token: Secret::new("tok"),
        };
        assert_eq!(endpoint(&[URL, tok]).api, v2(None, "k6"));
        assert_eq!(
            endpoint(&[URL, tok, ("INFLUXDB_ORG", "acme")]).api,
            v2(Some("acme"), "k6")
        );
        assert_eq!(
            endpoint(&[URL, tok, ("INFLUXDB_DB", "perf")]).api,
            v2(None, "perf")
        );
        assert_eq!(
            endpoint(&[("INFLUXDB_URL", "http://h/perf"), tok]).api,
            v2(None, "perf")
        );
        assert_eq!(
            endpoint(&[URL, tok, ("INFLUXDB_DB", "perf"), ("INFLUXDB_RP", "week")]).api,
            v2(None, "perf/week")
        );
        assert_eq!(
            endpoint(&[
                URL,
                tok,
                ("INFLUXDB_DB", "perf"),
                ("INFLUXDB_RP", "week"),
                ("INFLUXDB_BUCKET", "metrics"),
                ("INFLUXDB_ORG", "acme"),
            ])
            .api,
            v2(Some("acme"), "metrics")
        );
        // An empty token is an unset token.
        assert_eq!(endpoint(&[URL, ("INFLUXDB_TOKEN", "")]).api, v1("k6"));
        let m = err(&[URL, tok, ("INFLUXDB_USERNAME", "u")]);
        assert!(m.contains("exclusive"), "{m}");
        err(&[
            URL,
            tok,
            ("INFLUXDB_USERNAME", "u"),
            ("INFLUXDB_PASSWORD", "p"),
        ]);
        err(&[URL, tok, ("INFLUXDB_PASSWORD", "p")]);
    }

    #[test]
    fn secrets_never_appear_in_messages_or_debug() {
        const MARK: &str = "s3cr3t-MARK";
        let with_ctl = format!("{MARK}\n");
        for key in ["INFLUXDB_PASSWORD", "INFLUXDB_TOKEN"] {
            let mut cases: Vec<Vec<(&str, &str)>> = vec![
                vec![URL, (key, with_ctl.as_str()), ("INFLUXDB_USERNAME", "u")],
                vec![URL, (key, MARK)],
                vec![URL, (key, MARK), ("INFLUXDB_USERNAME", "u:x")],
                vec![
                    URL,
                    (key, MARK),
                    ("INFLUXDB_DB", "a"),
                    ("INFLUXDB_URL", "http://h/b"),
                ],
                vec![(key, MARK), ("PERFSINK_BATCH_LINES", "0")],
                vec![(key, MARK), ("NOPE", "1")],
            ];
            if key == "INFLUXDB_TOKEN" {
                cases.push(vec![URL, (key, MARK), ("INFLUXDB_USERNAME", "u")]);
            }
            for pairs in &cases {
                match cfg(pairs) {
                    Ok(c) => assert!(!format!("{c:?}").contains(MARK), "{pairs:?}"),
                    Err(e) => {
                        assert!(!e.to_string().contains(MARK), "{e}");
                        assert!(!format!("{e:?}").contains(MARK), "{e:?}");
                    }
                }
            }
        }
        assert!(invalid("INFLUXDB_TOKEN", MARK, "x")
            .to_string()
            .contains("not shown"));
        let m = err(&[URL, ("INFLUXDB_TOKEN", with_ctl.as_str())]);
        assert!(m.contains("INFLUXDB_TOKEN") && m.contains("control"), "{m}");

        let c = ok(&[URL, ("INFLUXDB_USERNAME", "u"), ("INFLUXDB_PASSWORD", MARK)]);
        let debug = format!("{c:?} {:#?}", c);
        assert!(
            !debug.contains(MARK) && debug.contains("Secret(***)"),
            "{debug}"
        );
        let c = ok(&[URL, ("INFLUXDB_TOKEN", MARK)]);
        assert!(!format!("{c:?}").contains(MARK));
        match c.endpoint.unwrap().api {
            Api::V2 { token, .. } => assert_eq!(token.expose(), MARK),
            api => panic!("{api:?}"),
        }
        // A secret in a kv string with a missing '=' is not quoted either.
        let e = Config::from_kv(&format!("INFLUXDB_URL=http://h; INFLUXDB_PASSWORD:{MARK}"))
            .unwrap_err();
        assert!(!e.to_string().contains(MARK), "{e}");
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let long = "x".repeat(10_000);
        let m = err(&[("PERFSINK_BATCH_LINES", long.as_str())]);
        assert!(m.len() < 300 && m.contains("..."), "{m}");
        let m = err(&[(long.as_str(), "1")]);
        assert!(m.len() < 300, "{m}");
    }

    #[test]
    fn closest_key_skips_only_keys_too_long_for_a_suggestion() {
        // Found by fuzzing (fuzz/ target `config`): the distance to each of the keys was
        // computed for keys of any length, quadratic work for nothing. The shortcut must not
        // change a suggestion: compare with the plain search around the length bound.
        let plain = |key: &str| {
            let (dist, best) = KEYS
                .iter()
                .map(|k| (edit_distance(key, k), *k))
                .min_by_key(|(d, _)| *d)
                .unwrap();
            (dist <= (key.len() / 3).max(2)).then_some(best)
        };
        for k in KEYS {
            for extra in 0..40 {
                let key = format!("{k}{}", "X".repeat(extra));
                assert_eq!(closest_key(&key), plain(&key), "{key}");
            }
        }
        assert_eq!(
            closest_key("PERFSINK_AGGREGATE_MEMORY_MAX_BYTES_EXTRA_TEXT"),
            Some("PERFSINK_AGGREGATE_MEMORY_MAX_BYTES")
        );
        assert_eq!(closest_key(&"INFLUXDB_URL".repeat(10_000)), None);
    }

    #[test]
    fn split_kv_escapes() {
        assert_eq!(split_kv(""), [""]);
        assert_eq!(split_kv("a;b"), ["a", "b"]);
        assert_eq!(split_kv("a\\;b;c"), ["a;b", "c"]);
        assert_eq!(split_kv("a\\\\;b"), ["a\\", "b"]);
        assert_eq!(split_kv("a\\\\\\;b"), ["a\\;b"]);
        assert_eq!(split_kv("C:\\dir\\x"), ["C:\\dir\\x"]);
        assert_eq!(split_kv("end\\"), ["end\\"]);
        assert_eq!(split_kv(";;"), ["", "", ""]);
    }

    #[test]
    fn from_kv() {
        let c = Config::from_kv(
            " INFLUXDB_URL = http://h:8086/perf ;; PERFSINK_TAGS= a=1 , b=2 ;\
             INFLUXDB_USERNAME=u;INFLUXDB_PASSWORD= p\\;w\\\\d ;\n\tPERFSINK_SPOOL_DIR=C:\\spool;",
        )
        .unwrap();
        assert_eq!(
            c.endpoint,
            Some(Endpoint {
                base_url: "http://h:8086".into(),
                api: Api::V1 {
                    db: "perf".into(),
                    rp: None,
                    username: Some("u".into()),
                    password: Some(Secret::new("p;w\\d")),
                },
            })
        );
        assert_eq!(
            c.global_tags,
            [
                ("a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string())
            ]
        );
        assert_eq!(c.spool_dir, Some(PathBuf::from("C:\\spool")));
        // `=` inside a value is kept.
        let c = Config::from_kv("PERFSINK_TAGS=k=v=w").unwrap();
        assert_eq!(c.global_tags, [("k".to_string(), "v=w".to_string())]);
        // Later entries win.
        let c = Config::from_kv("PERFSINK_CONCURRENCY=2;PERFSINK_CONCURRENCY=3").unwrap();
        assert_eq!(c.concurrency, 3);
        assert_eq!(Config::from_kv(" ; ;\n").unwrap(), Config::default());
    }

    #[test]
    fn from_kv_errors() {
        let e = Config::from_kv("PERFSINK_DEDUP=true;oops").unwrap_err();
        assert!(
            e.to_string().contains("entry 2") && e.to_string().contains("'='"),
            "{e}"
        );
        let e = Config::from_kv(" = 1").unwrap_err();
        assert!(e.to_string().contains("empty key"), "{e}");
        let e = Config::from_kv("FOO=1").unwrap_err();
        assert!(e.to_string().contains("unknown key FOO"), "{e}");
        let e = Config::from_kv("PERFSINK_CONCURRENCY=0").unwrap_err();
        assert!(e.to_string().contains("PERFSINK_CONCURRENCY"), "{e}");
        // An escaped `;` does not end the entry, so this is one malformed number.
        let e = Config::from_kv("PERFSINK_CONCURRENCY=2\\;PERFSINK_DEDUP=1").unwrap_err();
        assert!(e.to_string().contains("\"2;PERFSINK_DEDUP=1\""), "{e}");
    }

    #[test]
    fn from_env_vars_filters_and_reads() {
        let env = [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("INFLUXDB_URL", "http://influx:8086/k6"),
            ("INFLUXDB_HTTP_AUTH_ENABLED", "true"),
            ("INFLUXDB_ADMIN_USER", "admin"),
            ("INFLUXDB_PRECISION", "ms"),
            ("PERFSINK_BATCH_LINES", "100"),
            ("K6_INFLUXDB_PUSH_INTERVAL", "1s"),
            ("perfsink_lowercase_is_not_ours", "x"),
        ];
        let c = Config::from_env_vars(env).unwrap();
        assert_eq!(c.endpoint.unwrap().api, v1("k6"));
        assert_eq!(c.precision, Precision::Ms);
        assert_eq!(c.batch_lines, 100);

        let e = Config::from_env_vars([("PERFSINK_BATCH_LINE", "1")]).unwrap_err();
        assert!(
            e.to_string().contains("did you mean PERFSINK_BATCH_LINES"),
            "{e}"
        );
        let e = Config::from_env_vars([("PERFSINK_CONCURRENCY", "zero")]).unwrap_err();
        assert!(e.to_string().contains("PERFSINK_CONCURRENCY"), "{e}");
        assert_eq!(
            Config::from_env_vars(std::iter::empty::<(String, String)>()).unwrap(),
            Config::default()
        );
        // Environment values are taken as they are, not trimmed.
        Config::from_env_vars([("PERFSINK_DEDUP", " true")]).unwrap_err();
    }

    /// A binding's arguments win over the environment, by full or short lowercase name; an
    /// empty URL disables reporting; unknown names are refused, secrets never echoed.
    #[test]
    fn overrides_win_over_the_environment() {
        let env = [
            ("INFLUXDB_URL", "http://env:8086"),
            ("INFLUXDB_DB", "envdb"),
            ("PERFSINK_BATCH_LINES", "100"),
            ("PERFSINK_TAGS", "testid=t1"),
        ];
        let c = Config::from_vars_with_overrides(env, "").unwrap();
        assert_eq!(c.endpoint.unwrap().api, v1("envdb"));
        let c = Config::from_vars_with_overrides(
            env,
            "INFLUXDB_URL=http://arg:8086;INFLUXDB_DB=argdb;batch_lines=7;precision=ms",
        )
        .unwrap();
        let endpoint = c.endpoint.unwrap();
        assert_eq!(
            (endpoint.base_url.as_str(), endpoint.api),
            ("http://arg:8086", v1("argdb"))
        );
        assert_eq!((c.batch_lines, c.precision), (7, Precision::Ms));
        assert!(!Config::from_vars_with_overrides(env, "url=")
            .unwrap()
            .enabled());
        let e = Config::from_vars_with_overrides(env, "batch_line=1").unwrap_err();
        assert!(e.to_string().contains("unknown key batch_line"), "{e}");
        let e = Config::from_vars_with_overrides(env, "BATCH_LINES=1").unwrap_err();
        assert!(e.to_string().contains("unknown key BATCH_LINES"), "{e}");
        let e = Config::from_vars_with_overrides(env, "password=s3cret;x=1").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert_eq!(option_key("token"), Some("INFLUXDB_TOKEN"));
        assert_eq!(option_key("PERFSINK_TAGS"), Some("PERFSINK_TAGS"));
        assert_eq!(option_key("Token"), None);
        assert_eq!(option_key("influxdb_token"), None);
    }

    #[test]
    fn from_env_vars_reports_errors_in_a_stable_order() {
        let a = [("PERFSINK_GZIP_LEVEL", "99"), ("PERFSINK_ZZZ", "1")];
        let mut b = a;
        b.reverse();
        let ea = Config::from_env_vars(a).unwrap_err();
        assert_eq!(ea, Config::from_env_vars(b).unwrap_err());
        assert!(ea.to_string().contains("PERFSINK_ZZZ"), "{ea}");
    }

    #[cfg(unix)]
    #[test]
    fn from_env_vars_non_utf8() {
        use std::ffi::OsString;
        use std::os::unix::ffi::OsStringExt;
        let junk = || OsString::from_vec(vec![b'x', 0xff]);
        let s = |v: &str| OsString::from(v);
        // Other programs' variables may be anything.
        let c = Config::from_env_vars([
            (junk(), junk()),
            (s("LANG"), junk()),
            (s("INFLUXDB_HTTP_X"), junk()),
            (s("PERFSINK_BATCH_LINES"), s("9")),
        ])
        .unwrap();
        assert_eq!(c.batch_lines, 9);
        let e = Config::from_env_vars([(s("INFLUXDB_PASSWORD"), junk())]).unwrap_err();
        assert!(e.to_string().contains("INFLUXDB_PASSWORD") && e.to_string().contains("UTF-8"));
        let name = OsString::from_vec(b"PERFSINK_\xff".to_vec());
        Config::from_env_vars([(name, s("1"))]).unwrap_err();
    }

    #[test]
    fn from_env_reads_the_process_environment() {
        // Only reads: whatever this environment holds, it must not panic, and an error can only
        // come from PERFSINK_*/INFLUXDB_* variables set by whoever runs the tests.
        if let Err(Error::Config(m)) = Config::from_env() {
            assert!(m.contains("PERFSINK_") || m.contains("INFLUXDB_"), "{m}");
        }
    }

    #[test]
    fn fallbacks_fill_only_what_the_environment_leaves_unset() {
        let fallbacks = [
            ("INFLUXDB_URL", "http://k6host:8086"),
            ("INFLUXDB_DB", "fromk6"),
            ("PERFSINK_CONCURRENCY", "7"),
            ("PERFSINK_FLUSH_INTERVAL_MS", "250"),
        ];
        let env = [
            ("INFLUXDB_URL", "http://mine:8086"),
            ("INFLUXDB_DB", ""),
            ("PERFSINK_CONCURRENCY", "2"),
        ];
        let c = Config::from_vars_with_fallbacks(env, &fallbacks).unwrap();
        let e = c.endpoint.unwrap();
        assert_eq!(e.base_url, "http://mine:8086");
        assert_eq!(
            e.api,
            v1("fromk6"),
            "an empty variable does not hide its fallback"
        );
        assert_eq!(c.concurrency, 2);
        assert_eq!(c.flush_interval, Duration::from_millis(250));
        let tools = [
            ("PERFSINK_K6", "/opt/k6"),
            ("PERFSINK_BLESS", "1"),
            ("PERFSINK_BIN", "/opt/perfsink"),
            ("PERFSINK_JMETER_JAR", "/opt/perfsink-jmeter.jar"),
            ("PERFSINK_CACHE", "/tmp/cache"),
        ];
        assert!(Config::from_vars_with_fallbacks(tools, &[]).is_ok());
        let none: [(&str, &str); 0] = [];
        let c = Config::from_vars_with_fallbacks(none, &fallbacks).unwrap();
        assert_eq!(c.endpoint.unwrap().base_url, "http://k6host:8086");
        assert!(Config::from_vars_with_fallbacks(none, &[("NOPE", "1")]).is_err());
    }
}
