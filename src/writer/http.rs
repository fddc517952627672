//! One write request and what its answer means. The classes follow Telegraf's `influxdb_v2`
//! output (`../shared/reference/influx.md` §0.5): back off on 429/5xx and connection errors,
//! split on 413, drop only the bad lines on 400/422, stop on 401/403.

use std::io::Write;
use std::time::Duration;

use flate2::write::GzEncoder;
use flate2::Compression;
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Client, StatusCode};

use crate::config::{Api, Config, Endpoint};
use crate::error::{Error, Result};

/// What the server said about one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx: every line stored.
    Written,
    /// Try again later: 429, 5xx, timeouts, connection errors. `after` is the server's
    /// `Retry-After`, if it sent one.
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// 413: the body is too large for the server; split it.
    TooLarge,
    /// 400/422 (and other 4xx): the server refused some or all lines; `refusal` is what its
    /// answer says about how many (see `policy` for how far that is trusted). Not retried.
    Rejected { refusal: Refusal, reason: String },
    /// v1 404 `database not found`.
    DatabaseNotFound,
    /// 401/403: credentials refused. Retrying cannot help.
    Unauthorized { reason: String },
    /// Not answered: the writer gave up waiting (the close deadline passed).
    Cancelled,
}

/// What a refusal's answer says about the lines refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refusal {
    /// `dropped=N` (1.x, 2.x partial writes).
    pub dropped: Option<u64>,
    /// The lines listed as `unable to parse '...'`.
    pub unparsed: u64,
    /// The message starts with `partial write:` (1.x: some lines were stored).
    pub partial: bool,
}

impl Refusal {
    /// Reads an error answer: `{"error":".."}` (1.x), `{"message":".."}` (2.x) or plain text.
    pub fn from_body(body: &str) -> Refusal {
        let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
        let text = json
            .as_ref()
            .and_then(|v| v.get("error").or_else(|| v.get("message")))
            .and_then(|e| e.as_str())
            .unwrap_or(body);
        let partial = text.starts_with("partial write:");
        // 1.x joins one `unable to parse '<line>': <why>` per line with newlines.
        let unparsed = text
            .split('\n')
            .map(|l| l.strip_prefix("partial write: ").unwrap_or(l))
            .filter(|l| l.starts_with("unable to parse '"))
            .count() as u64;
        Refusal {
            dropped: dropped_count(text),
            unparsed,
            partial,
        }
    }
}

/// The HTTP side of the writer: a pooled client and the prepared write URL and auth header.
pub struct HttpTarget {
    client: Client,
    write_url: String,
    query_url: String,
    auth: Option<HeaderValue>,
    gzip_level: u32,
    timeout: Duration,
    /// `scheme://host:port`, for messages (never holds credentials).
    pub base_url: String,
    pub database: Option<String>,
}

impl HttpTarget {
    pub fn new(config: &Config, endpoint: &Endpoint) -> Result<Self> {
        let mut builder = Client::builder()
            .no_proxy()
            .connect_timeout(config.connect_timeout)
            .pool_max_idle_per_host(config.concurrency)
            .danger_accept_invalid_certs(config.tls.insecure_skip_verify)
            .user_agent(concat!("perfsink/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.tls.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| Error::Config(format!("INFLUXDB_CA_FILE {}: {e}", path.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| Error::Config(format!("INFLUXDB_CA_FILE {}: {e}", path.display())))?;
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let precision = config.precision.as_query();
        let base = endpoint.base_url.trim_end_matches('/');
        let (write_url, auth, database) = match &endpoint.api {
            Api::V1 {
                db,
                rp,
                username,
                password,
            } => {
                let mut url = format!("{base}/write?db={}&precision={precision}", enc(db));
                if let Some(rp) = rp {
                    url.push_str(&format!("&rp={}", enc(rp)));
                }
                let auth = username.as_ref().map(|u| {
                    let pass = password.as_ref().map(|p| p.expose()).unwrap_or("");
                    basic_auth(u, pass)
                });
                (url, auth, Some(db.clone()))
            }
            Api::V2 { org, bucket, token } => {
                let mut url = format!(
                    "{base}/api/v2/write?bucket={}&precision={precision}",
                    enc(bucket)
                );
                if let Some(org) = org {
                    url.push_str(&format!("&org={}", enc(org)));
                }
                let mut auth = HeaderValue::from_str(&format!("Token {}", token.expose()))
                    .map_err(|_| {
                        Error::Config(
                            "INFLUXDB_TOKEN holds characters not allowed in an HTTP header".into(),
                        )
                    })?;
                auth.set_sensitive(true);
                (url, Some(auth), None)
            }
        };
        Ok(HttpTarget {
            client,
            write_url,
            query_url: format!("{base}/query"),
            auth,
            gzip_level: config.gzip_level,
            timeout: config.request_timeout,
            base_url: base.to_string(),
            database,
        })
    }

    /// Compresses a body at the configured level (`None`: send it as it is).
    pub fn compress(&self, body: &[u8]) -> Option<Vec<u8>> {
        if self.gzip_level == 0 {
            return None;
        }
        let mut gz = GzEncoder::new(
            Vec::with_capacity(body.len() / 8 + 64),
            Compression::new(self.gzip_level),
        );
        gz.write_all(body).ok()?;
        gz.finish().ok()
    }

    /// Sends one body, waiting at most `timeout` (capped by the request timeout).
    pub async fn write(&self, body: Vec<u8>, gzipped: bool, timeout: Duration) -> Outcome {
        let mut req = self
            .client
            .post(&self.write_url)
            .timeout(timeout.min(self.timeout))
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(body);
        if gzipped {
            req = req.header(CONTENT_ENCODING, "gzip");
        }
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    after: None,
                    reason: describe_send_error(&e),
                }
            }
        };
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = resp.text().await.unwrap_or_default();
        classify(status, retry_after, &text)
    }

    /// v1: `CREATE DATABASE` (idempotent on 1.x). Errors are returned as text for the log.
    pub async fn create_database(&self) -> std::result::Result<(), String> {
        let Some(db) = &self.database else {
            return Ok(());
        };
        let q = format!(
            "CREATE DATABASE \"{}\"",
            db.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut req = self
            .client
            .post(&self.query_url)
            .timeout(self.timeout)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("q={}", enc(&q)));
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                // 1.x answers 200 with the statement's error in the body (`invalid name`).
                let body = r.text().await.unwrap_or_default();
                match statement_error(&body) {
                    Some(e) => Err(format!("CREATE DATABASE failed: {}", short(&e))),
                    None => Ok(()),
                }
            }
            Ok(r) => Err(format!("CREATE DATABASE answered {}", r.status())),
            Err(e) => Err(describe_send_error(&e)),
        }
    }
}

impl HttpTarget {
    /// `GET /ping`: the server's version header, or why it could not be reached.
    pub async fn ping(&self) -> std::result::Result<String, String> {
        let url = format!("{}/ping", self.base_url);
        let resp = self
            .client
            .get(&url)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| describe_send_error(&e))?;
        if !resp.status().is_success() {
            return Err(format!("/ping answered {}", resp.status()));
        }
        let version = resp
            .headers()
            .get("x-influxdb-version")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("unknown");
        Ok(version.to_string())
    }

    /// Asks `/ping` for the server's version once, within `limit`, on a thread of its own (the
    /// caller may be inside a tokio runtime): for `INFLUXDB_VERSION=auto` when a sink opens.
    pub fn probe_version(&self, limit: Duration) -> std::result::Result<String, String> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("tokio runtime: {e}"))?;
                // The timer must be made inside the runtime.
                runtime
                    .block_on(async { tokio::time::timeout(limit, self.ping()).await })
                    .unwrap_or_else(|_| Err(format!("/ping did not answer within {limit:?}")))
            })
            .join()
            .unwrap_or_else(|_| Err("the /ping probe panicked".into()))
        })
    }

    /// v1: checks the credentials and the database with `SHOW DATABASES`.
    pub async fn check_database(&self) -> std::result::Result<bool, String> {
        let Some(db) = &self.database else {
            return Ok(true);
        };
        let mut req = self
            .client
            .get(format!("{}?q={}", self.query_url, enc("SHOW DATABASES")))
            .timeout(self.timeout);
        if let Some(auth) = &self.auth {
            req = req.header(AUTHORIZATION, auth.clone());
        }
        let resp = req.send().await.map_err(|e| describe_send_error(&e))?;
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!(
                "SHOW DATABASES answered {} {}",
                status.as_u16(),
                short(&body)
            ));
        }
        Ok(body.contains(&format!("[\"{db}\"]")))
    }
}

/// The class of an answer. Pure, so it is tested without a server.
pub fn classify(status: StatusCode, retry_after: Option<Duration>, body: &str) -> Outcome {
    let reason = || format!("{} {}", status.as_u16(), short(body));
    match status.as_u16() {
        200..=299 => Outcome::Written,
        401 | 403 => Outcome::Unauthorized { reason: reason() },
        404 if body.contains("database not found") => Outcome::DatabaseNotFound,
        413 => Outcome::TooLarge,
        408 | 429 | 500..=599 => Outcome::Retry {
            after: retry_after,
            reason: reason(),
        },
        _ => Outcome::Rejected {
            refusal: Refusal::from_body(body),
            reason: reason(),
        },
    }
}

/// The first `error` of a `/query` answer (`{"error":..}` or `{"results":[{"error":..}]}`).
fn statement_error(body: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let text = |e: &serde_json::Value| e.as_str().map(str::to_string);
    if let Some(e) = v.get("error") {
        return text(e);
    }
    v.get("results")?
        .as_array()?
        .iter()
        .find_map(|r| r.get("error").and_then(text))
}

/// `dropped=N` from a 1.x/2.x partial-write message (the last one: a quoted line may hold
/// the words too).
fn dropped_count(body: &str) -> Option<u64> {
    let at = body.rfind("dropped=")? + "dropped=".len();
    let digits: String = body[at..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// `Retry-After` in seconds (the HTTP-date form is rare from InfluxDB and treated as absent).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: u64 = v.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(600)))
}

fn short(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(200) {
        Some((i, _)) => format!("{}...", &body[..i]),
        None => body.to_string(),
    }
}

fn describe_send_error(e: &reqwest::Error) -> String {
    // reqwest's Display names the URL, which carries no credentials here (auth is a header).
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

fn basic_auth(user: &str, pass: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(&format!(
        "Basic {}",
        base64(format!("{user}:{pass}").as_bytes())
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    v.set_sensitive(true);
    v
}

fn base64(input: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let s = |n| StatusCode::from_u16(n).unwrap();
        assert_eq!(classify(s(204), None, ""), Outcome::Written);
        assert!(matches!(
            classify(s(401), None, "x"),
            Outcome::Unauthorized { .. }
        ));
        assert!(matches!(
            classify(s(403), None, "x"),
            Outcome::Unauthorized { .. }
        ));
        assert_eq!(classify(s(413), None, ""), Outcome::TooLarge);
        assert_eq!(
            classify(s(404), None, r#"{"error":"database not found: \"k6\""}"#),
            Outcome::DatabaseNotFound
        );
        assert_eq!(
            classify(s(429), Some(Duration::from_secs(3)), ""),
            Outcome::Retry {
                after: Some(Duration::from_secs(3)),
                reason: "429 ".into()
            }
        );
        assert!(matches!(classify(s(503), None, ""), Outcome::Retry { .. }));
        assert_eq!(
            classify(
                s(400),
                None,
                r#"{"error":"partial write: field type conflict: dropped=2"}"#
            ),
            Outcome::Rejected {
                refusal: Refusal {
                    dropped: Some(2),
                    unparsed: 0,
                    partial: true
                },
                reason: r#"400 {"error":"partial write: field type conflict: dropped=2"}"#.into()
            }
        );
        assert!(matches!(
            classify(s(422), None, "unprocessable"),
            Outcome::Rejected {
                refusal: Refusal {
                    dropped: None,
                    unparsed: 0,
                    partial: false
                },
                ..
            }
        ));
    }

    #[test]
    fn refusals_as_influxdb_words_them() {
        // InfluxDB 1.6.7 and 1.8.10, bodies as answered.
        let r = Refusal::from_body(
            r#"{"error":"partial write: unable to parse 'm bad': invalid field format\nunable to parse 'm v=1 9223372036854775807': time outside range -9223372036854775806 - 9223372036854775806 dropped=0"}"#,
        );
        assert_eq!(
            r,
            Refusal {
                dropped: Some(0),
                unparsed: 2,
                partial: true
            }
        );
        let r = Refusal::from_body(
            r#"{"error":"unable to parse 'm bad': invalid field format\nunable to parse 'm bad2': invalid field format"}"#,
        );
        assert_eq!((r.unparsed, r.partial, r.dropped), (2, false, None));
        let r = Refusal::from_body(r#"{"error":"field type conflict"}"#);
        assert_eq!(r, Refusal::default());
        // A line quoting the words does not count twice; the last `dropped=` is the server's.
        let r = Refusal::from_body(
            r#"{"error":"partial write: unable to parse 'm s=\"unable to parse 'x' dropped=9\"': bad dropped=0"}"#,
        );
        assert_eq!((r.unparsed, r.dropped), (1, Some(0)));
        // 2.x words it as `message`.
        let r = Refusal::from_body(
            r#"{"code":"invalid","message":"partial write: field type conflict dropped=3"}"#,
        );
        assert_eq!((r.dropped, r.partial), (Some(3), true));
    }

    #[test]
    fn helpers() {
        assert_eq!(base64(b"admin:s3cret"), "YWRtaW46czNjcmV0");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(enc("my db/rp"), "my%20db%2Frp");
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(statement_error(r#"{"results":[{"statement_id":0}]}"#), None);
        assert_eq!(
            statement_error(r#"{"results":[{"statement_id":0,"error":"invalid name"}]}"#),
            Some("invalid name".into())
        );
        assert_eq!(statement_error(r#"{"error":"x"}"#), Some("x".into()));
        assert_eq!(statement_error(""), None);
    }
}
