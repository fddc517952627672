//! k6's own `K6_INFLUXDB_*` variables (built-in `influxdb` output and the `xk6-influxdb`
//! extension, `../reference/k6.md` §2–3) mapped onto the sink's configuration, so a user's
//! existing k6 setup carries over to `perfsink k6`. `INFLUXDB_*` and `PERFSINK_*` win when both
//! are set.
//!
//! | k6 variable | sink key |
//! | --- | --- |
//! | `K6_INFLUXDB_ADDR` | `INFLUXDB_URL` (default `http://localhost:8086` when any `K6_INFLUXDB_*` is set) |
//! | `K6_INFLUXDB_DB` | `INFLUXDB_DB` |
//! | `K6_INFLUXDB_RETENTION` | `INFLUXDB_RP` |
//! | `K6_INFLUXDB_USERNAME`, `K6_INFLUXDB_PASSWORD` | `INFLUXDB_USERNAME`, `INFLUXDB_PASSWORD` |
//! | `K6_INFLUXDB_TOKEN`, `K6_INFLUXDB_ORGANIZATION`, `K6_INFLUXDB_BUCKET` | `INFLUXDB_TOKEN`, `INFLUXDB_ORG`, `INFLUXDB_BUCKET` |
//! | `K6_INFLUXDB_INSECURE` | `INFLUXDB_INSECURE_SKIP_VERIFY` |
//! | `K6_INFLUXDB_PRECISION` | `INFLUXDB_PRECISION` (`ns`/`ms`/`s` or `1ns`/`1ms`/`1s`; `u`/`us` → `ns`) |
//! | `K6_INFLUXDB_PUSH_INTERVAL` | `PERFSINK_FLUSH_INTERVAL_MS` (a Go duration: `1s`, `500ms`, `1m30s`) |
//! | `K6_INFLUXDB_CONCURRENT_WRITES` | `PERFSINK_CONCURRENCY` |
//! | `K6_INFLUXDB_TAGS_AS_FIELDS` | the k6 source itself (default `vu:int,iter:int,url`) |
//!
//! `K6_INFLUXDB_PROXY`, `_PAYLOAD_SIZE` and `_CONSISTENCY` have no counterpart and are ignored
//! with a note.

use std::ffi::OsStr;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sources::k6json::TagsAsFields;

/// k6's default `K6_INFLUXDB_ADDR`.
pub const K6_DEFAULT_ADDR: &str = "http://localhost:8086";

/// The configuration of a k6 run through the sink.
#[derive(Debug)]
pub struct K6Settings {
    pub config: Config,
    pub tags_as_fields: TagsAsFields,
    /// Things worth telling the user (ignored variables, adjusted values). Never secrets.
    pub notes: Vec<String>,
}

/// Reads the process environment.
pub fn from_env() -> Result<K6Settings> {
    from_vars(std::env::vars_os())
}

/// `from_env` over any environment.
pub fn from_vars<I, K, V>(vars: I) -> Result<K6Settings>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let all: Vec<(String, String)> = vars
        .into_iter()
        .filter_map(|(k, v)| {
            let k = k.as_ref().to_str()?.to_string();
            (k.starts_with("K6_INFLUXDB_")
                || k.starts_with("INFLUXDB_")
                || k.starts_with("PERFSINK_"))
            .then(|| (k, v.as_ref().to_string_lossy().into_owned()))
        })
        .collect();
    let get = |name: &str| -> Option<&str> {
        all.iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let mut notes = Vec::new();
    let mut fallbacks: Vec<(&'static str, String)> = vec![("PERFSINK_SOURCE", "k6".to_string())];

    let k6_set: Vec<&str> = all
        .iter()
        .filter(|(k, v)| k.starts_with("K6_INFLUXDB_") && !v.is_empty())
        .map(|(k, _)| k.as_str())
        .collect();
    let own_url = get("INFLUXDB_URL");
    if own_url.is_none() && !k6_set.is_empty() {
        let addr = get("K6_INFLUXDB_ADDR").unwrap_or(K6_DEFAULT_ADDR);
        if addr.starts_with("udp://") {
            return Err(Error::Config(
                "K6_INFLUXDB_ADDR: udp:// is not supported; use http:// or https://".into(),
            ));
        }
        if get("K6_INFLUXDB_ADDR").is_none() {
            notes.push(format!(
                "{} set without K6_INFLUXDB_ADDR: writing to k6's default {K6_DEFAULT_ADDR}",
                k6_set.join(", ")
            ));
        }
        fallbacks.push(("INFLUXDB_URL", addr.trim_end_matches('/').to_string()));
    }
    // InfluxDB on this machine: uncompressed bodies (see `loopback_fallbacks`).
    let url = own_url.or_else(|| {
        fallbacks
            .iter()
            .find(|(k, _)| *k == "INFLUXDB_URL")
            .map(|(_, v)| v.as_str())
    });
    let url = url.map(str::to_string);
    fallbacks.extend(loopback_fallbacks(url.as_deref()));
    // A database in the path of INFLUXDB_URL is the user's choice; K6_INFLUXDB_DB would clash.
    let own_url_has_db = own_url.is_some_and(url_has_path);
    if let Some(db) = get("K6_INFLUXDB_DB") {
        if !own_url_has_db {
            fallbacks.push(("INFLUXDB_DB", db.to_string()));
        }
    }
    if let Some(rp) = get("K6_INFLUXDB_RETENTION") {
        fallbacks.push(("INFLUXDB_RP", rp.to_string()));
    }
    // Credentials go together: mixing a user's INFLUXDB_TOKEN with k6's username would clash.
    let own_credentials = ["INFLUXDB_USERNAME", "INFLUXDB_PASSWORD", "INFLUXDB_TOKEN"]
        .iter()
        .any(|k| get(k).is_some());
    if !own_credentials {
        for (k6, ours) in [
            ("K6_INFLUXDB_USERNAME", "INFLUXDB_USERNAME"),
            ("K6_INFLUXDB_PASSWORD", "INFLUXDB_PASSWORD"),
            ("K6_INFLUXDB_TOKEN", "INFLUXDB_TOKEN"),
            ("K6_INFLUXDB_ORGANIZATION", "INFLUXDB_ORG"),
            ("K6_INFLUXDB_BUCKET", "INFLUXDB_BUCKET"),
        ] {
            if let Some(v) = get(k6) {
                fallbacks.push((ours, v.to_string()));
            }
        }
    }
    if let Some(v) = get("K6_INFLUXDB_INSECURE") {
        let b = go_bool(v).ok_or_else(|| {
            Error::Config(format!(
                "K6_INFLUXDB_INSECURE: invalid value {v:?}: expected true or false"
            ))
        })?;
        fallbacks.push(("INFLUXDB_INSECURE_SKIP_VERIFY", b.to_string()));
    }
    if let Some(v) = get("K6_INFLUXDB_PRECISION") {
        let p = match v {
            "ns" | "n" | "1ns" => "ns",
            "u" | "us" | "µs" | "1us" | "1µs" => {
                notes.push(
                    "K6_INFLUXDB_PRECISION=u: writing ns instead (finer, nothing lost)".into(),
                );
                "ns"
            }
            "ms" | "1ms" => "ms",
            "s" | "1s" => "s",
            _ => {
                return Err(Error::Config(format!(
                    "K6_INFLUXDB_PRECISION: invalid value {v:?}: expected ns, u, ms or s"
                )))
            }
        };
        fallbacks.push(("INFLUXDB_PRECISION", p.to_string()));
    }
    if let Some(v) = get("K6_INFLUXDB_PUSH_INTERVAL") {
        let ms = go_duration_ms(v).ok_or_else(|| {
            Error::Config(format!(
                "K6_INFLUXDB_PUSH_INTERVAL: invalid value {v:?}: expected a duration like 1s or 500ms"
            ))
        })?;
        fallbacks.push(("PERFSINK_FLUSH_INTERVAL_MS", ms.max(1).to_string()));
    }
    if let Some(v) = get("K6_INFLUXDB_CONCURRENT_WRITES") {
        match v.parse::<u32>() {
            Ok(n) if n > 0 => fallbacks.push(("PERFSINK_CONCURRENCY", n.to_string())),
            _ => {
                return Err(Error::Config(format!(
                    "K6_INFLUXDB_CONCURRENT_WRITES: invalid value {v:?}: expected a number above 0"
                )))
            }
        }
    }
    for ignored in [
        "K6_INFLUXDB_PROXY",
        "K6_INFLUXDB_PAYLOAD_SIZE",
        "K6_INFLUXDB_CONSISTENCY",
    ] {
        if get(ignored).is_some() {
            notes.push(format!(
                "{ignored} has no perfsink counterpart and is ignored"
            ));
        }
    }
    let tags_as_fields = match get("K6_INFLUXDB_TAGS_AS_FIELDS") {
        Some(spec) => TagsAsFields::parse(spec)?,
        None => TagsAsFields::default(),
    };

    let pairs: Vec<(&str, &str)> = fallbacks.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = Config::from_vars_with_fallbacks(
        all.iter()
            .filter(|(k, _)| !k.starts_with("K6_"))
            .map(|(k, v)| (k.as_str(), v.as_str())),
        &pairs,
    )
    .map_err(|e| match e {
        Error::Config(m) if fallbacks.len() > 1 => Error::Config(format!(
            "{m} (K6_INFLUXDB_* variables are read as the INFLUXDB_*/PERFSINK_* keys they map to)"
        )),
        e => e,
    })?;
    Ok(K6Settings {
        config,
        tags_as_fields,
        notes,
    })
}

/// Settings that suit an InfluxDB on this machine, as fallbacks (a value the user sets wins):
/// `PERFSINK_GZIP_LEVEL=0`. Over loopback compressing saves no bandwidth and costs CPU twice,
/// in the sink and in influxd (7 % of influxd's CPU per point and 15 % of `perfsink k6`'s,
/// measured with InfluxDB 1.6), CPU that the load generator on the same machine wants.
pub fn loopback_fallbacks(url: Option<&str>) -> Vec<(&'static str, String)> {
    match url {
        Some(url) if is_loopback_url(url) => vec![("PERFSINK_GZIP_LEVEL", "0".to_string())],
        _ => Vec::new(),
    }
}

/// Whether the host of `scheme://host[:port][/path]` is this machine: `localhost`, 127.0.0.0/8
/// or `[::1]`.
pub fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority
        .rsplit_once('@')
        .map(|(_, h)| h)
        .unwrap_or(authority);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// Whether `http://host:port/db` has a path naming a database.
fn url_has_path(url: &str) -> bool {
    let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
    rest.split_once('/')
        .is_some_and(|(_, path)| !path.trim_matches('/').is_empty())
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A Go duration (`1s`, `500ms`, `1m30s`, `1.5s`; k6 also takes `d` for days) in milliseconds,
/// rounded up; a bare number is milliseconds, as k6 reads durations given as numbers.
fn go_duration_ms(v: &str) -> Option<u64> {
    if let Ok(ms) = v.parse::<u64>() {
        return Some(ms);
    }
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
    let ms = (total_ns / 1e6).ceil();
    (0.0..1e15).contains(&ms).then_some(ms as u64)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::Api;
    use crate::model::Precision;
    use crate::sources::k6json::FieldKind;

    fn settings(env: &[(&str, &str)]) -> Result<K6Settings> {
        from_vars(env.iter().copied())
    }

    #[test]
    fn nothing_set_means_disabled_and_default_tags_as_fields() {
        let s = settings(&[("PATH", "/bin")]).unwrap();
        assert!(!s.config.enabled());
        assert_eq!(s.tags_as_fields, TagsAsFields::default());
        assert_eq!(s.config.source, "k6");
    }

    #[test]
    fn k6_variables_map_onto_the_sink() {
        let s = settings(&[
            ("K6_INFLUXDB_ADDR", "http://influx:8086/"),
            ("K6_INFLUXDB_DB", "loadtest"),
            ("K6_INFLUXDB_RETENTION", "week"),
            ("K6_INFLUXDB_USERNAME", "k6user"),
            ("K6_INFLUXDB_PASSWORD", "s3cret"),
            ("K6_INFLUXDB_INSECURE", "T"),
            ("K6_INFLUXDB_PRECISION", "ms"),
            ("K6_INFLUXDB_PUSH_INTERVAL", "1m30.5s"),
            ("K6_INFLUXDB_CONCURRENT_WRITES", "3"),
            (
                "K6_INFLUXDB_TAGS_AS_FIELDS",
                "vu:int,iter:int,url,name:string",
            ),
            ("K6_INFLUXDB_PROXY", "http://proxy"),
        ])
        .unwrap();
        let c = &s.config;
        let e = c.endpoint.as_ref().unwrap();
        assert_eq!(e.base_url, "http://influx:8086");
        match &e.api {
            Api::V1 {
                db,
                rp,
                username,
                password,
            } => {
                assert_eq!(db, "loadtest");
                assert_eq!(rp.as_deref(), Some("week"));
                assert_eq!(username.as_deref(), Some("k6user"));
                assert_eq!(password.as_ref().unwrap().expose(), "s3cret");
            }
            other => panic!("{other:?}"),
        }
        assert!(c.tls.insecure_skip_verify);
        assert_eq!(c.precision, Precision::Ms);
        assert_eq!(c.flush_interval, Duration::from_millis(90_500));
        assert_eq!(c.concurrency, 3);
        assert_eq!(s.tags_as_fields.kind("name"), Some(FieldKind::String));
        assert!(s.notes.iter().any(|n| n.contains("K6_INFLUXDB_PROXY")));
    }

    #[test]
    fn influxdb_on_this_machine_gets_uncompressed_bodies_unless_told_otherwise() {
        let gzip = |env: &[(&str, &str)]| settings(env).unwrap().config.gzip_level;
        assert_eq!(gzip(&[("INFLUXDB_URL", "http://127.0.0.1:8086/k6")]), 0);
        assert_eq!(gzip(&[("INFLUXDB_URL", "http://localhost:8086")]), 0);
        assert_eq!(gzip(&[("INFLUXDB_URL", "https://[::1]:8086/k6")]), 0);
        assert_eq!(gzip(&[("K6_INFLUXDB_DB", "k6")]), 0); // k6's default localhost:8086
        assert_eq!(gzip(&[("INFLUXDB_URL", "http://influx:8086/k6")]), 1);
        assert_eq!(gzip(&[("INFLUXDB_URL", "http://10.0.0.1:8086")]), 1);
        assert_eq!(gzip(&[("INFLUXDB_URL", "http://127.example.com")]), 1);
        assert_eq!(
            gzip(&[
                ("INFLUXDB_URL", "http://127.0.0.1:8086"),
                ("PERFSINK_GZIP_LEVEL", "1")
            ]),
            1
        );
        for (url, loopback) in [
            ("http://127.0.0.2", true),
            ("http://user:pw@localhost:1/x", true),
            ("http://[::1]", true),
            ("http://[::2]:8086", false),
            ("http://0.0.0.0:8086", false),
            ("localhost:8086", true),
        ] {
            assert_eq!(is_loopback_url(url), loopback, "{url}");
        }
    }

    #[test]
    fn any_k6_variable_enables_reporting_at_k6s_default_address() {
        let s = settings(&[("K6_INFLUXDB_PUSH_INTERVAL", "2s")]).unwrap();
        assert_eq!(s.config.endpoint.unwrap().base_url, "http://localhost:8086");
        assert_eq!(s.config.flush_interval, Duration::from_secs(2));
        assert!(s.notes.iter().any(|n| n.contains("localhost:8086")));
    }

    #[test]
    fn our_variables_win() {
        let s = settings(&[
            ("K6_INFLUXDB_ADDR", "http://k6:8086"),
            ("K6_INFLUXDB_DB", "k6db"),
            ("K6_INFLUXDB_USERNAME", "k6user"),
            ("K6_INFLUXDB_CONCURRENT_WRITES", "9"),
            ("K6_INFLUXDB_PUSH_INTERVAL", "5s"),
            ("K6_INFLUXDB_PRECISION", "s"),
            ("INFLUXDB_URL", "http://mine:8086/mydb"),
            ("INFLUXDB_TOKEN", "tok"),
            ("INFLUXDB_PRECISION", "ns"),
            ("PERFSINK_CONCURRENCY", "2"),
            ("PERFSINK_FLUSH_INTERVAL_MS", ""),
        ])
        .unwrap();
        let c = s.config;
        let e = c.endpoint.unwrap();
        assert_eq!(e.base_url, "http://mine:8086");
        assert!(matches!(e.api, Api::V2 { ref bucket, .. } if bucket == "mydb"));
        assert_eq!(c.precision, Precision::Ns);
        assert_eq!(c.concurrency, 2);
        assert_eq!(c.flush_interval, Duration::from_secs(5));
    }

    #[test]
    fn v2_extension_variables() {
        let s = settings(&[
            ("K6_INFLUXDB_ADDR", "https://cloud:8086"),
            ("K6_INFLUXDB_ORGANIZATION", "acme"),
            ("K6_INFLUXDB_BUCKET", "perf"),
            ("K6_INFLUXDB_TOKEN", "tok"),
            ("K6_INFLUXDB_PRECISION", "1ns"),
        ])
        .unwrap();
        match s.config.endpoint.unwrap().api {
            Api::V2 { org, bucket, token } => {
                assert_eq!(org.as_deref(), Some("acme"));
                assert_eq!(bucket, "perf");
                assert_eq!(token.expose(), "tok");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_values_name_the_k6_variable_and_hide_secrets() {
        for (k, v) in [
            ("K6_INFLUXDB_INSECURE", "maybe"),
            ("K6_INFLUXDB_PRECISION", "h"),
            ("K6_INFLUXDB_PUSH_INTERVAL", "soon"),
            ("K6_INFLUXDB_CONCURRENT_WRITES", "0"),
            ("K6_INFLUXDB_TAGS_AS_FIELDS", "vu:integer"),
            ("K6_INFLUXDB_ADDR", "udp://x:8089"),
        ] {
            let e = settings(&[(k, v)]).unwrap_err().to_string();
            assert!(e.contains(k), "{e}");
        }
        let e = settings(&[("K6_INFLUXDB_PASSWORD", "hunter2")])
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration_ms("1s"), Some(1000));
        assert_eq!(go_duration_ms("500ms"), Some(500));
        assert_eq!(go_duration_ms("1m30s"), Some(90_000));
        assert_eq!(go_duration_ms("1.5s"), Some(1500));
        assert_eq!(go_duration_ms("100us"), Some(1));
        assert_eq!(go_duration_ms("1h"), Some(3_600_000));
        assert_eq!(go_duration_ms("250"), Some(250));
        for bad in ["", "s", "1x", "-1s", "1s2"] {
            assert_eq!(go_duration_ms(bad), None, "{bad}");
        }
    }
}
