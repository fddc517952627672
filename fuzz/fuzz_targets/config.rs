//! The configuration parsers: `Config::from_kv` (the C ABI's `KEY=value;...` string) and
//! `Config::from_pairs` (the environment), the InfluxDB URL parsers of `src/config/url.rs`
//! (`INFLUXDB_URL`, k6's `--out` URL, JMeter's write-endpoint URL), k6's configuration
//! (`sources::k6::config::resolve`: the `--out` argument, `collectors.perfsink` JSON,
//! `K6_INFLUXDB_*`) and the `tagsAsFields` spec, all on the same text.
//!
//! Besides "no panic, no sanitizer report", it checks that a secret never shows: passwords and
//! tokens given by key (`INFLUXDB_PASSWORD`, `INFLUXDB_TOKEN`, `K6_INFLUXDB_PASSWORD`,
//! `K6_INFLUXDB_TOKEN`) or inside a URL (`http://user:secret@...`) appear in no error message,
//! no k6 note or description and no `Debug` output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfsink::config::url::{loopback_fallbacks, write_endpoint_keys, InfluxUrl};
use perfsink::sources::k6::config::resolve;
use perfsink::sources::k6::schema::TagsAsFields;
use perfsink::Config;

/// Put in front of every secret value; no message may ever hold it.
const SECRET: &str = "S3CRET-7f3a";

const SECRET_KEYS: [&str; 4] = [
    "INFLUXDB_PASSWORD",
    "INFLUXDB_TOKEN",
    "K6_INFLUXDB_PASSWORD",
    "K6_INFLUXDB_TOKEN",
];

type Env = Vec<(String, String)>;

fn no_env() -> Env {
    Vec::new()
}

/// Panics when `text` shows the secret (only called when the input itself does not hold it,
/// so it can only have come from a secret value).
fn hidden(what: &str, text: &str) {
    assert!(!text.contains(SECRET), "{what} shows a secret: {text}");
}

fn check_config(what: &str, r: perfsink::Result<Config>) {
    match r {
        Ok(c) => {
            hidden(what, &format!("{c:?}"));
            if let Some(e) = &c.endpoint {
                hidden(what, &e.describe());
            }
        }
        Err(e) => hidden(what, &e.to_string()),
    }
}

fn check_k6(what: &str, r: perfsink::Result<perfsink::sources::k6::config::K6Settings>) {
    match r {
        Ok(s) => {
            hidden(what, &s.describe());
            hidden(what, &format!("{:?}", s.config));
            for note in &s.notes {
                hidden(what, note);
            }
        }
        Err(e) => hidden(what, &e.to_string()),
    }
}

fn check_url(url: &str) {
    match InfluxUrl::parse(url) {
        Ok(u) => {
            hidden("InfluxUrl", &format!("{u:?}"));
            hidden("base_url", &u.base_url());
            let _ = u.is_loopback();
        }
        Err(e) => hidden("InfluxUrl::parse", e),
    }
    match write_endpoint_keys(url) {
        Ok(keys) => check_config(
            "write_endpoint_keys + from_pairs",
            Config::from_pairs(keys.iter().map(|(k, v)| (*k, v.as_str()))),
        ),
        Err(e) => hidden("write_endpoint_keys", &e),
    }
    let _ = loopback_fallbacks(Some(url));
    check_config("INFLUXDB_URL", Config::from_pairs([("INFLUXDB_URL", url)]));
    check_k6("k6 --out URL", resolve(Some(url), None, no_env()));
    let env = vec![("K6_INFLUXDB_ADDR".to_string(), url.to_string())];
    check_k6("K6_INFLUXDB_ADDR", resolve(None, None, env));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s: &str = &text;
    let checked = !s.contains(SECRET);

    // Each parser on the text as it is.
    if checked {
        check_config("from_kv", Config::from_kv(s));
        check_url(s);
        check_k6("k6 --out argument", resolve(Some(s), None, no_env()));
        check_k6("collectors.perfsink", resolve(None, Some(data), no_env()));
    } else {
        let _ = Config::from_kv(s);
        let _ = InfluxUrl::parse(s);
        let _ = write_endpoint_keys(s);
        let _ = resolve(Some(s), None, no_env());
        let _ = resolve(None, Some(data), no_env());
    }
    let _ = TagsAsFields::parse(s);
    if !checked {
        return;
    }

    // The lines as `KEY=value` pairs (the environment), every secret marked.
    let env: Env = s
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = if SECRET_KEYS.contains(&k) {
                format!("{SECRET}{v}")
            } else {
                v.to_string()
            };
            (k.to_string(), v)
        })
        .collect();
    let engine = env
        .iter()
        .filter(|(k, _)| !k.starts_with("K6_"))
        .map(|(k, v)| (k.as_str(), v.as_str()));
    check_config("from_pairs", Config::from_pairs(engine));
    check_k6("k6 environment", resolve(None, None, env.clone()));
    check_k6("k6 environment + --out", resolve(Some(""), None, env));

    // A URL whose password is secret: `http://u:<secret><text before @>@<the rest>`.
    let url = match s.split_once('@') {
        Some((password, rest)) => format!("http://u:{SECRET}{password}@{rest}"),
        None => format!("http://u:{SECRET}@{s}"),
    };
    check_url(&url);
});
