//! The Backend Listener's parameters (name, value) and the environment, resolved into the
//! sink's [`Config`] and the listener's [`JmeterOptions`]: the built-in
//! `InfluxdbBackendListenerClient`'s names and defaults (so a plan switches by its class name
//! only), perfsink's own (`rawSamples`, `backend_influxdb.send_interval`) and any engine key
//! (`PERFSINK_*`, `INFLUXDB_*`) as a parameter. Every error names the parameter.

use std::ffi::OsStr;
use std::time::Duration;

use regex::Regex;

use crate::aggregate::percentile::{parse_percentiles, Percentile};
use crate::config::is_env_key;
use crate::config::url::{write_endpoint_keys, InfluxUrl};
use crate::error::{Error, Result};
use crate::Config;

/// The built-in listener's `influxdbUrl` default: left as it is, the environment decides.
pub const PLACEHOLDER_URL: &str = "http://host_to_change:8086/write?db=jmeter";
/// The database of the placeholder URL, used when the environment names none.
const DEFAULT_DB: &str = "jmeter";
/// JMeter's `backend_influxdb.send_interval` default, seconds.
const DEFAULT_INTERVAL_S: u64 = 5;
/// The parameter carrying JMeter's `backend_influxdb.send_interval` property (seconds).
pub const INTERVAL_PARAM: &str = "backend_influxdb.send_interval";
/// The built-in listener's HTTP sender, the only one perfsink stands in for.
const HTTP_SENDER: &str = "org.apache.jmeter.visualizers.backend.influxdb.HttpMetricsSender";

/// What the listener writes, beside where (the [`Config`]).
#[derive(Debug, Clone)]
pub struct JmeterOptions {
    /// `application` tag value (trimmed; empty: the tag is left out).
    pub application: String,
    pub measurement: String,
    pub summary_only: bool,
    /// `samplersRegex`; `None` matches every label (an empty regex).
    pub samplers: Option<Regex>,
    /// `percentiles`, ascending, and their fields (`pct90.0`), index by index.
    pub percentiles: Vec<Percentile>,
    pub pct_fields: Vec<String>,
    pub test_title: String,
    pub event_tags: String,
    /// `TAG_<name>` parameters, in the order given (trimmed, blank values left out).
    pub user_tags: Vec<(String, String)>,
    pub raw_samples: bool,
    pub interval: Duration,
}

impl JmeterOptions {
    /// Whether a label gets its own lines (`summaryOnly`, `samplersRegex` as `find`). A label
    /// written `all` never does: its lines would be the summary's series (the built-in keeps
    /// it in the summary's own metric and so counts its samples there twice).
    pub fn per_label(&self, label: &str) -> bool {
        !self.summary_only
            && label.trim() != "all"
            && self.samplers.as_ref().is_none_or(|r| r.is_match(label))
    }
}

/// The resolved listener.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub config: Config,
    pub options: JmeterOptions,
}

impl Resolved {
    /// Where points go, for humans (never credentials).
    pub fn describe(&self) -> String {
        let target = match self.config.endpoint.as_ref() {
            None => "disabled (influxdbUrl is the placeholder and INFLUXDB_URL is unset)".into(),
            Some(e) => e.describe(),
        };
        format!(
            "{target}, measurement {}, interval {} s{}",
            self.options.measurement,
            self.options.interval.as_secs(),
            if self.options.raw_samples {
                ", raw samples"
            } else {
                ""
            }
        )
    }
}

/// Resolves the listener's parameters (later ones win) and the environment `env`.
pub fn resolve<'a, I, K, V>(
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    env: I,
) -> Result<Resolved>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<OsStr>,
    V: AsRef<OsStr>,
{
    let mut o = JmeterOptions {
        application: String::new(),
        measurement: "jmeter".into(),
        summary_only: false,
        samplers: None,
        percentiles: Vec::new(),
        pct_fields: Vec::new(),
        test_title: "Test".into(),
        event_tags: String::new(),
        user_tags: Vec::new(),
        raw_samples: false,
        interval: Duration::from_secs(DEFAULT_INTERVAL_S),
    };
    let mut url: Option<String> = None;
    let mut token: Option<String> = None;
    let mut percentiles = "99;95;90".to_string();
    let mut engine: Vec<(String, String)> = Vec::new();
    for (name, value) in params {
        let v = value.trim();
        match name.trim() {
            "influxdbMetricsSender" if !v.is_empty() && v != HTTP_SENDER => {
                return Err(bad(
                    name,
                    value,
                    "perfsink writes over HTTP only (HttpMetricsSender)",
                ));
            }
            "influxdbMetricsSender" => {}
            "influxdbUrl" => url = Some(v.to_string()),
            "influxdbToken" => token = Some(v.to_string()),
            "application" => o.application = v.to_string(),
            "measurement" => o.measurement = nonempty(name, v)?.to_string(),
            "summaryOnly" => o.summary_only = boolean(name, v, false)?,
            "samplersRegex" => {
                o.samplers = match value {
                    "" => None,
                    r => Some(Regex::new(r).map_err(|e| bad(name, value, &e.to_string()))?),
                }
            }
            "percentiles" => percentiles = value.to_string(),
            "testTitle" => o.test_title = value.to_string(),
            "eventTags" => o.event_tags = v.to_string(),
            "rawSamples" => o.raw_samples = boolean(name, v, false)?,
            INTERVAL_PARAM => {
                let s: u64 = v
                    .parse()
                    .ok()
                    .filter(|&s| s > 0 && s <= 3600)
                    .ok_or_else(|| bad(name, value, "expected whole seconds from 1 to 3600"))?;
                o.interval = Duration::from_secs(s);
            }
            n if n.starts_with("TAG_") => {
                let key = &n[4..];
                if key.is_empty() || ["application", "transaction", "statut"].contains(&key) {
                    return Err(bad(name, value, "needs a tag name other than application, transaction and statut after TAG_"));
                }
                if !v.is_empty() {
                    o.user_tags.retain(|(k, _)| k != key);
                    o.user_tags.push((key.to_string(), v.to_string()));
                }
            }
            n if is_env_key(n) => engine.push((n.to_string(), value.to_string())),
            // JMeter itself ignores rows it does not know; so does the built-in listener.
            _ => {}
        }
    }
    (o.percentiles, o.pct_fields) = parse_pcts(&percentiles)?;
    let env: Vec<(String, String)> = env
        .into_iter()
        .filter_map(|(k, v)| {
            let (k, v) = (k.as_ref().to_str()?, v.as_ref().to_str()?);
            is_env_key(k).then(|| (k.to_string(), v.to_string()))
        })
        .collect();
    // The self-metrics' `source` tag tells the listener's sinks from the other paths' (k6,
    // relay, api) on the health dashboard; PERFSINK_SOURCE from the environment or a parameter wins.
    let mut pairs: Vec<(String, String)> = vec![("PERFSINK_SOURCE".into(), "jmeter".into())];
    let url = url.filter(|u| !u.is_empty() && u != PLACEHOLDER_URL);
    match &url {
        None => {
            // The environment decides; the placeholder's database unless it names one.
            let set = |key: &str| env.iter().any(|(k, v)| k == key && !v.is_empty());
            let env_url_has_db = env.iter().any(|(k, v)| {
                k == "INFLUXDB_URL" && InfluxUrl::parse(v).is_ok_and(|u| u.db.is_some())
            });
            if !set("INFLUXDB_DB") && !env_url_has_db {
                pairs.push(("INFLUXDB_DB".into(), DEFAULT_DB.into()));
            }
            pairs.extend(env);
        }
        Some(u) => {
            pairs.extend(env);
            // The error never quotes the URL: its query may hold a password (`p=`).
            let keys = write_endpoint_keys(u)
                .map_err(|why| Error::Config(format!("JMeter parameter influxdbUrl: {why}")))?;
            pairs.extend(keys.into_iter().map(|(k, v)| (k.to_string(), v)));
        }
    }
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        pairs.push(("INFLUXDB_TOKEN".into(), t));
    }
    pairs.extend(engine);
    let config = Config::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(Resolved { config, options: o })
}

/// `99;95;90`: JMeter's `;`-separated floats (returned in ascending order), each in (0, 100] with at most three decimals
/// (the engine's exact nearest rank); the same value twice is one, as in JMeter's map.
fn parse_pcts(s: &str) -> Result<(Vec<Percentile>, Vec<String>)> {
    let (mut out, mut fields): (Vec<Percentile>, Vec<String>) = (Vec::new(), Vec::new());
    for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let parsed = part
            .parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .and_then(|v| parse_percentiles("percentiles", &v.to_string()).ok())
            .and_then(|mut v| v.pop())
            .ok_or_else(|| {
                bad(
                    "percentiles",
                    part,
                    "expected numbers above 0 and at most 100 with at most three decimals, separated by ';'",
                )
            })?;
        if out.contains(&parsed) {
            continue;
        }
        fields.push(format!(
            "pct{}",
            java_float(part.parse::<f32>().unwrap_or(0.0))
        ));
        out.push(parsed);
    }
    // Ascending, as the engine's own lists (parse_percentiles): past the exact window the
    // histogram answers every quantile in one ascending pass and stops at the first smaller one,
    // so JMeter's default `99;95;90` would lose pct95.0 and pct90.0 on busy intervals. A line's
    // field order carries no meaning (the built-in's follows a HashMap).
    let mut pairs: Vec<_> = out.into_iter().zip(fields).collect();
    pairs.sort_by(|(a, _), (b, _)| a.value().total_cmp(&b.value()));
    Ok(pairs.into_iter().unzip())
}

/// Java's `Float.toString` for the values percentiles take (0.001 to 100): the shortest
/// decimal that reads back as the same float, with at least one digit after the point.
pub fn java_float(v: f32) -> String {
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

fn boolean(name: &str, v: &str, default: bool) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "" => Ok(default),
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(bad(name, v, "expected true or false")),
    }
}

fn nonempty<'v>(name: &str, v: &'v str) -> Result<&'v str> {
    if v.is_empty() {
        return Err(bad(name, v, "must not be empty"));
    }
    Ok(v)
}

fn bad(name: &str, value: &str, why: &str) -> Error {
    let shown: String = value.chars().take(60).collect();
    Error::Config(format!("JMeter parameter {name}: {shown:?} {why}"))
}

#[cfg(test)]
#[path = "params_tests.rs"]
mod tests;
