//! The k6 configuration of a sink: k6's own options of its influxdb outputs (the built-in one
//! and xk6-output-influxdb, `../reference/k6.md` §2–3) resolved onto the engine's keys, so a
//! user's existing k6 setup carries over, plus the k6 schema ([`TagsAsFields`]). One rule set
//! for every k6 path: `perfsink k6` (the environment) and the xk6 output (the `--out` argument,
//! the config file's `collectors.perfsink` object and the environment k6 hands its outputs).
//!
//! Sources, lowest precedence first:
//! 1. k6 options, by their JSON names: defaults < `collectors.perfsink` < `K6_INFLUXDB_*`
//!    variables < the `--out perfsink=ARG` argument;
//! 2. the engine's keys (`INFLUXDB_*`, `PERFSINK_*`): `collectors.perfsink` < the environment
//!    < the `--out` argument. They win over anything derived from (1). Within one source an
//!    `INFLUXDB_URL` with a database path counts as `INFLUXDB_URL` + `INFLUXDB_DB`, so a URL of
//!    a higher source and a database of a lower one combine key by key.
//!
//! `ARG` is k6's URL form `http[s]://[user:pass@]host:port[/db][?query]` (query keys as k6:
//! `precision`, `pushInterval`, `concurrentWrites`, `tagsAsFields` (repeatable), `retention`,
//! `insecure`, `consistency`, `payload_size`) or `KEY=value;...` with engine keys and
//! `K6_INFLUXDB_*` names (`\;` and `\\` escape, as in the engine's configuration string).
//!
//! | JSON | variable | engine key it sets |
//! | --- | --- | --- |
//! | `addr` | `K6_INFLUXDB_ADDR` | `INFLUXDB_URL` (default `http://localhost:8086`; a path is the db, `user:pass@` the credentials) |
//! | `db` | `K6_INFLUXDB_DB` | `INFLUXDB_DB` |
//! | `retention` | `K6_INFLUXDB_RETENTION` | `INFLUXDB_RP` |
//! | `username`, `password` | `K6_INFLUXDB_USERNAME`, `_PASSWORD` | `INFLUXDB_USERNAME`, `INFLUXDB_PASSWORD` |
//! | `token`, `organization`, `bucket` | `K6_INFLUXDB_TOKEN`, `_ORGANIZATION`, `_BUCKET` | `INFLUXDB_TOKEN`, `_ORG`, `_BUCKET` |
//! | `insecure` (`insecureSkipTLSVerify`) | `K6_INFLUXDB_INSECURE` | `INFLUXDB_INSECURE_SKIP_VERIFY` |
//! | `precision` | `K6_INFLUXDB_PRECISION` | `INFLUXDB_PRECISION`: `ns`, `ms`, `s` (also `n`, `1ms`, ...; `u` is written as `ns`) |
//! | `pushInterval` | `K6_INFLUXDB_PUSH_INTERVAL` | `PERFSINK_FLUSH_INTERVAL_MS` (a Go duration; a number is ms) |
//! | `concurrentWrites` | `K6_INFLUXDB_CONCURRENT_WRITES` | `PERFSINK_CONCURRENCY` |
//! | `tagsAsFields` | `K6_INFLUXDB_TAGS_AS_FIELDS` | the schema (default `vu:int,iter:int,url`; empty: none) |
//! | `consistency`, `payloadSize` | `K6_INFLUXDB_CONSISTENCY`, `_PAYLOAD_SIZE` | ignored, with a note |
//! | `proxy` | `K6_INFLUXDB_PROXY` | refused: not supported |
//!
//! Further rules: reporting is on when the output was asked for (`--out perfsink`), or any k6
//! option or `INFLUXDB_URL` is set; an empty `INFLUXDB_URL` disables it. Credentials go
//! together: any of `INFLUXDB_USERNAME`, `_PASSWORD`, `_TOKEN` set makes every k6 credential
//! (and org and bucket) ignored, so that k6's and the engine's never mix. An empty k6 option
//! counts as unset (except `tagsAsFields`). Defaults of k6 paths: `PERFSINK_SOURCE=k6`, and
//! `PERFSINK_GZIP_LEVEL=0` for an InfluxDB on this machine
//! ([`loopback_fallbacks`]). Messages name where a bad value came from and never show
//! passwords, tokens or URLs that may hold them.

use std::collections::BTreeMap;
use std::ffi::OsStr;

use serde_json::Value;

use super::schema::{parse_go_bool, TagsAsFields};
use crate::config::url::{loopback_fallbacks, InfluxUrl};
use crate::config::{env_name, is_env_key, split_kv, Api, Config};
use crate::error::{Error, Result};

/// k6's default address.
pub const K6_DEFAULT_ADDR: &str = "http://localhost:8086";

/// k6's options: JSON name and the suffix of its `K6_INFLUXDB_*` variable.
const OPTIONS: &[(&str, &str)] = &[
    ("addr", "ADDR"),
    ("proxy", "PROXY"),
    ("username", "USERNAME"),
    ("password", "PASSWORD"),
    ("insecure", "INSECURE"),
    ("payloadSize", "PAYLOAD_SIZE"),
    ("pushInterval", "PUSH_INTERVAL"),
    ("concurrentWrites", "CONCURRENT_WRITES"),
    ("db", "DB"),
    ("precision", "PRECISION"),
    ("retention", "RETENTION"),
    ("consistency", "CONSISTENCY"),
    ("tagsAsFields", "TAGS_AS_FIELDS"),
    ("token", "TOKEN"),
    ("organization", "ORGANIZATION"),
    ("bucket", "BUCKET"),
];

/// The query keys of k6's `--out influxdb=URL` and the options they set.
const URL_QUERY: &[(&str, &str)] = &[
    ("insecure", "insecure"),
    ("payload_size", "payloadSize"),
    ("precision", "precision"),
    ("retention", "retention"),
    ("consistency", "consistency"),
    ("pushInterval", "pushInterval"),
    ("concurrentWrites", "concurrentWrites"),
    ("tagsAsFields", "tagsAsFields"),
];

/// Options whose values are never shown.
const SECRET_OPTIONS: &[&str] = &["password", "token"];

/// The configuration of a k6 run through the sink.
#[derive(Debug)]
pub struct K6Settings {
    pub config: Config,
    pub tags_as_fields: TagsAsFields,
    /// Things worth telling the user (ignored options, adjusted values). Never secrets.
    pub notes: Vec<String>,
}

impl K6Settings {
    /// Where points go, for humans: `http://host:8086, db k6` (never credentials).
    pub fn describe(&self) -> String {
        match self.config.endpoint.as_ref() {
            None => "disabled (INFLUXDB_URL is empty)".into(),
            Some(e) => match &e.api {
                Api::V1 { db, .. } => format!("{}, db {db}", e.base_url),
                Api::V2 { bucket, .. } => format!("{}, bucket {bucket}", e.base_url),
            },
        }
    }
}

/// `perfsink k6`: the process environment (no `--out` argument, no config file).
pub fn from_env() -> Result<K6Settings> {
    resolve(None, None, std::env::vars_os())
}

/// Resolves a k6 configuration. `out_argument` is `Some` when the output was asked for with
/// `--out perfsink[=ARG]` (the text after `=`, empty without one): reporting is then on at
/// k6's default address even with nothing else set. `json_config` is the config file's
/// `collectors.perfsink` value, `env` the environment as k6 sees it.
pub fn resolve<I, K, V>(
    out_argument: Option<&str>,
    json_config: Option<&[u8]>,
    env: I,
) -> Result<K6Settings>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let resolved = resolve_keys(out_argument, json_config, env)?;
    let derived = resolved.derived;
    let config = Config::from_pairs(resolved.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| match e {
        Error::Config(m) if derived => Error::Config(format!(
            "{m} (k6's options are read as the INFLUXDB_*/PERFSINK_* keys they map to)"
        )),
        e => e,
    })?;
    Ok(K6Settings {
        config,
        tags_as_fields: resolved.tags_as_fields,
        notes: resolved.notes,
    })
}

/// What [`resolve`] hands the engine's configuration.
struct Resolved {
    /// Engine key/value pairs, later ones win.
    pairs: Vec<(String, String)>,
    /// Some pair was derived from a k6 option.
    derived: bool,
    tags_as_fields: TagsAsFields,
    notes: Vec<String>,
}

/// Where an option's value came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Default,
    Json,
    Env,
    OutUrl,
    OutKeys,
}

#[derive(Debug, Clone)]
struct Opt {
    value: String,
    origin: Origin,
}

/// One source: k6 options by JSON name, and engine keys (later ones win).
#[derive(Default)]
struct Layer {
    k6: BTreeMap<&'static str, Opt>,
    engine: Vec<(String, String)>,
}

impl Layer {
    fn option(&mut self, name: &'static str, value: String, origin: Origin) {
        self.k6.insert(name, Opt { value, origin });
    }

    /// Within one layer an `INFLUXDB_URL` with a database path is `INFLUXDB_URL` +
    /// `INFLUXDB_DB` (unless the layer names `INFLUXDB_DB` too), so that layers combine key by
    /// key. A URL the engine would refuse is left as it is, for the engine to report.
    fn split_url_path(&mut self) {
        let Some(i) = self.engine.iter().rposition(|(k, _)| k == "INFLUXDB_URL") else {
            return;
        };
        if self.engine.iter().any(|(k, _)| k == "INFLUXDB_DB") {
            return;
        }
        let raw = &self.engine[i].1;
        if raw.contains(['@', '?', '#']) {
            return;
        }
        if let Ok(url) = InfluxUrl::parse(raw) {
            if let (Some(db), false) = (url.db.clone(), url.path_encoded) {
                self.engine[i].1 = url.base_url();
                self.engine.push(("INFLUXDB_DB".into(), db));
            }
        }
    }
}

fn option_of_suffix(suffix: &str) -> Option<&'static str> {
    OPTIONS.iter().find(|(_, s)| *s == suffix).map(|(n, _)| *n)
}

fn suffix_of(name: &str) -> &'static str {
    OPTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, s)| *s)
}

/// How a message names option `name` given in `origin`.
fn label(name: &str, origin: Origin) -> String {
    match origin {
        Origin::Default => name.to_string(),
        Origin::Json => format!("{name} (collectors.perfsink)"),
        Origin::Env => format!("K6_INFLUXDB_{}", suffix_of(name)),
        Origin::OutUrl => format!("{name} in the --out URL"),
        Origin::OutKeys => format!("K6_INFLUXDB_{} in the --out argument", suffix_of(name)),
    }
}

fn invalid(name: &str, o: &Opt, why: &str) -> Error {
    if SECRET_OPTIONS.contains(&name) || name == "addr" {
        Error::Config(format!(
            "{}: invalid value (not shown): {why}",
            label(name, o.origin)
        ))
    } else {
        Error::Config(format!(
            "{}: invalid value {:?}: {why}",
            label(name, o.origin),
            o.value
        ))
    }
}

fn resolve_keys<I, K, V>(
    out_argument: Option<&str>,
    json_config: Option<&[u8]>,
    env: I,
) -> Result<Resolved>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut layers = Vec::with_capacity(3);
    if let Some(raw) = json_config {
        layers.push(json_layer(raw)?);
    }
    layers.push(env_layer(env)?);
    if let Some(arg) = out_argument {
        layers.push(argument_layer(arg)?);
    }
    let mut k6: BTreeMap<&'static str, Opt> = BTreeMap::new();
    let mut engine: Vec<(String, String)> = Vec::new();
    for mut layer in layers {
        layer.split_url_path();
        k6.append(&mut layer.k6);
        engine.append(&mut layer.engine);
    }
    // An empty option counts as unset; an empty tagsAsFields lists no tag.
    k6.retain(|name, o| !o.value.is_empty() || *name == "tagsAsFields");
    derive(out_argument.is_some(), k6, engine)
}

/// The engine keys that k6's options give, under the engine keys given directly.
fn derive(
    asked_for: bool,
    mut k6: BTreeMap<&'static str, Opt>,
    engine: Vec<(String, String)>,
) -> Result<Resolved> {
    let own = |key: &str| -> Option<&str> {
        engine
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let set = |key: &str| own(key).is_some_and(|v| !v.is_empty());
    let mut notes = Vec::new();
    let mut fallbacks: Vec<(&'static str, String)> = vec![("PERFSINK_SOURCE", "k6".into())];
    let mut derived = false;
    let mut push = |fallbacks: &mut Vec<(&'static str, String)>, key, value: String| {
        derived = true;
        fallbacks.push((key, value));
    };

    if let Some(o) = k6.get("proxy") {
        return Err(Error::Config(format!(
            "{}: an HTTP proxy is not supported",
            label("proxy", o.origin)
        )));
    }
    for (name, why) in [
        ("consistency", "InfluxDB Enterprise only"),
        ("payloadSize", "UDP only"),
    ] {
        if let Some(o) = k6.get(name) {
            notes.push(format!("{} is ignored ({why})", label(name, o.origin)));
        }
    }

    // Where to write: the engine's INFLUXDB_URL (empty: disabled), else k6's address.
    let mut url = own("INFLUXDB_URL")
        .filter(|u| !u.is_empty())
        .map(str::to_string);
    if own("INFLUXDB_URL").is_none() && (asked_for || !k6.is_empty()) {
        let addr = match k6.get("addr") {
            Some(o) => o.clone(),
            None => {
                if !asked_for {
                    let given: Vec<String> = k6.iter().map(|(n, o)| label(n, o.origin)).collect();
                    notes.push(format!(
                        "{} set without an address: writing to k6's default {K6_DEFAULT_ADDR}",
                        given.join(", ")
                    ));
                }
                Opt {
                    value: K6_DEFAULT_ADDR.into(),
                    origin: Origin::Default,
                }
            }
        };
        if addr.value.to_ascii_lowercase().starts_with("udp://") {
            return Err(invalid(
                "addr",
                &addr,
                "UDP is not supported; use http:// or https://",
            ));
        }
        let parsed = InfluxUrl::parse(&addr.value).map_err(|why| invalid("addr", &addr, why))?;
        if !parsed.query.is_empty() {
            return Err(invalid("addr", &addr, "must not contain a query"));
        }
        // The address's user, password and database, unless given as options of their own.
        if let Some(user) = parsed.username.clone() {
            k6.entry("username").or_insert(Opt {
                value: user,
                origin: addr.origin,
            });
        }
        if let Some(password) = &parsed.password {
            k6.entry("password").or_insert(Opt {
                value: password.expose().to_string(),
                origin: addr.origin,
            });
        }
        if let Some(db) = parsed.db.clone() {
            k6.entry("db").or_insert(Opt {
                value: db,
                origin: addr.origin,
            });
        }
        url = Some(parsed.base_url());
        push(&mut fallbacks, "INFLUXDB_URL", parsed.base_url());
    }

    let simple = [("db", "INFLUXDB_DB"), ("retention", "INFLUXDB_RP")];
    for (name, key) in simple {
        if let Some(o) = k6.get(name) {
            push(&mut fallbacks, key, o.value.clone());
        }
    }
    // Credentials go together: k6's and the engine's never mix.
    let own_credentials = ["INFLUXDB_USERNAME", "INFLUXDB_PASSWORD", "INFLUXDB_TOKEN"]
        .iter()
        .any(|k| set(k));
    if !own_credentials {
        for (name, key) in [
            ("username", "INFLUXDB_USERNAME"),
            ("password", "INFLUXDB_PASSWORD"),
            ("token", "INFLUXDB_TOKEN"),
            ("organization", "INFLUXDB_ORG"),
            ("bucket", "INFLUXDB_BUCKET"),
        ] {
            if let Some(o) = k6.get(name) {
                push(&mut fallbacks, key, o.value.clone());
            }
        }
    }
    if let Some(o) = k6.get("insecure") {
        let b = parse_go_bool(&o.value)
            .ok_or_else(|| invalid("insecure", o, "not a boolean (true or false)"))?;
        push(
            &mut fallbacks,
            "INFLUXDB_INSECURE_SKIP_VERIFY",
            b.to_string(),
        );
    }
    if let Some(o) = k6.get("precision") {
        let p = match o.value.as_str() {
            "ns" | "n" | "1ns" => "ns",
            "u" | "us" | "µs" | "1us" | "1µs" => {
                notes.push(format!(
                    "{}={}: writing ns instead (finer, nothing lost)",
                    label("precision", o.origin),
                    o.value
                ));
                "ns"
            }
            "ms" | "1ms" => "ms",
            "s" | "1s" => "s",
            _ => return Err(invalid("precision", o, "expected ns, u, ms or s")),
        };
        push(&mut fallbacks, "INFLUXDB_PRECISION", p.into());
    }
    if let Some(o) = k6.get("pushInterval") {
        let ms = duration_ms(&o.value).ok_or_else(|| {
            invalid(
                "pushInterval",
                o,
                "not a positive duration like 1s or 500ms (a number is ms)",
            )
        })?;
        push(&mut fallbacks, "PERFSINK_FLUSH_INTERVAL_MS", ms.to_string());
    }
    if let Some(o) = k6.get("concurrentWrites") {
        match o.value.parse::<u32>() {
            Ok(n) if n > 0 => push(&mut fallbacks, "PERFSINK_CONCURRENCY", n.to_string()),
            _ => return Err(invalid("concurrentWrites", o, "not a positive integer")),
        }
    }
    let tags_as_fields = match k6.get("tagsAsFields") {
        Some(o) => TagsAsFields::parse(&o.value).map_err(|e| match e {
            Error::Config(why) => {
                Error::Config(format!("{}: {why}", label("tagsAsFields", o.origin)))
            }
            e => e,
        })?,
        None => TagsAsFields::default(),
    };
    fallbacks.extend(loopback_fallbacks(url.as_deref()));

    // Fallbacks first, then the engine keys given; an empty engine key does not hide its
    // fallback (an empty INFLUXDB_URL has none: it disables reporting).
    let has_fallback = |key: &str| fallbacks.iter().any(|(k, _)| *k == key);
    let mut pairs: Vec<(String, String)> = fallbacks
        .iter()
        .filter(|(k, _)| !set(k))
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    pairs.extend(
        engine
            .iter()
            .filter(|(k, v)| !(v.is_empty() && has_fallback(k)))
            .cloned(),
    );
    Ok(Resolved {
        pairs,
        derived,
        tags_as_fields,
        notes,
    })
}

/// The config file's `collectors.perfsink` object: k6 option names (and xk6-output-influxdb's
/// `insecureSkipTLSVerify`) and engine keys.
fn json_layer(raw: &[u8]) -> Result<Layer> {
    let mut layer = Layer::default();
    let value: Value = serde_json::from_slice(raw).map_err(|e| {
        Error::Config(format!(
            "collectors.perfsink must be a JSON object: {}",
            // The position only: the text may hold a password.
            format_args!("line {}, column {}", e.line(), e.column())
        ))
    })?;
    let object = match value {
        Value::Null => return Ok(layer),
        Value::Object(o) => o,
        _ => {
            return Err(Error::Config(
                "collectors.perfsink must be a JSON object".into(),
            ))
        }
    };
    for (key, v) in object {
        let name = if key == "insecureSkipTLSVerify" {
            Some("insecure")
        } else {
            OPTIONS.iter().find(|(n, _)| *n == key).map(|(n, _)| *n)
        };
        let text = match v {
            Value::Null => String::new(),
            Value::String(s) => s,
            Value::Bool(b) => b.to_string(),
            // k6 reads a duration given as a number as milliseconds.
            Value::Number(n) => n.to_string(),
            Value::Array(items) => {
                let strings: Option<Vec<String>> = items
                    .into_iter()
                    .map(|i| match i {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                strings.map(|s| s.join(",")).ok_or_else(|| {
                    Error::Config(format!(
                        "collectors.perfsink: {key}: a list must hold strings only"
                    ))
                })?
            }
            Value::Object(_) => {
                return Err(Error::Config(format!(
                    "collectors.perfsink: {key}: expected a string, number, boolean or list \
                     of strings"
                )))
            }
        };
        match name {
            Some(name) => layer.option(name, text, Origin::Json),
            None if is_env_key(&key) => layer.engine.push((key, text)),
            None => {
                return Err(Error::Config(format!(
                    "collectors.perfsink: unknown key {key:?} (k6 influxdb option names, \
                     INFLUXDB_* or PERFSINK_* keys)"
                )))
            }
        }
    }
    Ok(layer)
}

/// The environment: `K6_INFLUXDB_*` options and the engine's keys; everything else is
/// ignored.
fn env_layer<I, K, V>(env: I) -> Result<Layer>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut vars: Vec<(String, String)> = Vec::new();
    for (name, value) in env {
        let (name, value) = (name.as_ref(), value.as_ref());
        let Some(name) = env_name(name)? else {
            continue;
        };
        let option = name.strip_prefix("K6_INFLUXDB_").and_then(option_of_suffix);
        if option.is_none() && !is_env_key(name) {
            continue;
        }
        let Some(value) = value.to_str() else {
            return Err(Error::Config(format!("{name}: value is not valid UTF-8")));
        };
        vars.push((name.to_string(), value.to_string()));
    }
    // The environment has no order; sorting makes the first reported error reproducible.
    vars.sort();
    let mut layer = Layer::default();
    for (name, value) in vars {
        match name.strip_prefix("K6_INFLUXDB_").and_then(option_of_suffix) {
            Some(option) => layer.option(option, value, Origin::Env),
            None => layer.engine.push((name, value)),
        }
    }
    Ok(layer)
}

/// `--out perfsink=ARG`: k6's URL form, or `KEY=value;...`.
fn argument_layer(arg: &str) -> Result<Layer> {
    let mut layer = Layer::default();
    let arg = arg.trim();
    if arg.is_empty() {
        return Ok(layer);
    }
    if has_scheme(arg) {
        if arg.to_ascii_lowercase().starts_with("udp://") {
            return Err(Error::Config(
                "the --out URL: UDP is not supported; use http:// or https://".into(),
            ));
        }
        let url = InfluxUrl::parse(arg)
            .map_err(|why| Error::Config(format!("invalid URL in the --out argument: {why}")))?;
        let mut query: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
        for (k, v) in url.query.iter() {
            let Some((_, name)) = URL_QUERY.iter().find(|(q, _)| q == k) else {
                return Err(Error::Config(format!(
                    "unknown query key {k:?} in the --out URL (k6's: {})",
                    URL_QUERY
                        .iter()
                        .map(|(q, _)| *q)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            query.entry(name).or_default().push(v.clone());
        }
        for (name, values) in query {
            layer.option(name, values.join(","), Origin::OutUrl);
        }
        layer.option("addr", url.base_url(), Origin::OutUrl);
        if let Some(user) = url.username {
            layer.option("username", user, Origin::OutUrl);
        }
        if let Some(password) = url.password {
            layer.option("password", password.expose().to_string(), Origin::OutUrl);
        }
        if let Some(db) = url.db {
            layer.option("db", db, Origin::OutUrl);
        }
        return Ok(layer);
    }
    let mut after_secret: Option<String> = None;
    for (i, entry) in split_kv(arg).iter().enumerate() {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        // The entry itself is never quoted: it may be a mistyped `INFLUXDB_PASSWORD:secret`.
        let (key, value) = match entry.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => (k.trim(), v.trim()),
            _ => {
                return Err(Error::Config(format!(
                    "entry {} of the --out argument is not KEY=value",
                    i + 1
                )))
            }
        };
        let option = key.strip_prefix("K6_INFLUXDB_").and_then(option_of_suffix);
        if option.is_none() && !is_env_key(key) {
            // After a secret, an unknown "key" is likely the rest of the secret cut at a ';'.
            return Err(Error::Config(match &after_secret {
                Some(secret) => format!(
                    "entry {} of the --out argument, after {secret}, is not a known key (not \
                     shown: if the {secret} value contains ';', write it as '\\;')",
                    i + 1
                ),
                None => format!(
                    "unknown key {key:?} in the --out argument (INFLUXDB_*, PERFSINK_* or \
                     K6_INFLUXDB_* names, or a URL)"
                ),
            }));
        }
        after_secret =
            (key.ends_with("_PASSWORD") || key.ends_with("_TOKEN")).then(|| key.to_string());
        match option {
            Some(name) => layer.option(name, value.to_string(), Origin::OutKeys),
            None => layer.engine.push((key.to_string(), value.to_string())),
        }
    }
    Ok(layer)
}

/// `scheme://` at the start, as a URL has (`[a-zA-Z][a-zA-Z0-9+.-]*://`).
fn has_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
}

/// A positive duration in whole milliseconds, rounded up: a number of milliseconds (`250`,
/// `0.5`) as k6 reads durations given as numbers, or a Go duration (`1s`, `500ms`, `1m30s`,
/// `1.5s`; k6 also takes `d` for days).
fn duration_ms(v: &str) -> Option<u64> {
    let total_ns = match v.parse::<f64>() {
        Ok(ms) => ms * 1e6,
        Err(_) => go_duration_ns(v)?,
    };
    // NaN fails both comparisons.
    let ms = (total_ns / 1e6).ceil();
    (total_ns > 0.0 && ms < 1e15).then_some(ms as u64)
}

fn go_duration_ns(v: &str) -> Option<f64> {
    let mut rest = v;
    let mut total_ns = 0f64;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit_ns = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ns += n * unit_ns;
    }
    Some(total_ns)
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
