//! The InfluxDB URL, parsed in one place for every caller: the engine's `INFLUXDB_URL`
//! (`http://host:8086`, or k6 style `http://host:8086/k6`, the path naming the database) and
//! k6's `--out` form (`http[s]://[user:pass@]host:port[/db][?query]`), which may also carry
//! credentials and options. Each caller decides what it accepts of the parts
//! (`INFLUXDB_URL` refuses credentials and queries); the parser never quotes the URL in its
//! errors, since it may hold a password.

use std::net::IpAddr;

use super::Secret;

/// A parsed InfluxDB URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfluxUrl {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// The host as written; an IPv6 address in brackets.
    pub host: String,
    pub port: Option<u16>,
    /// The path's one segment, k6 style: the database, percent-decoded.
    pub db: Option<String>,
    /// The path was percent-encoded.
    pub path_encoded: bool,
    /// `user[:password]@`, percent-decoded.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The query's `key=value` pairs in order, percent-decoded (`+` is a space).
    pub query: Vec<(String, String)>,
}

impl InfluxUrl {
    /// Parses `url`. The error says why, never quoting the URL.
    pub fn parse(url: &str) -> Result<InfluxUrl, &'static str> {
        let (mut parsed, path) = split(url)?;
        (parsed.db, parsed.path_encoded) = match path {
            "" | "/" => (None, false),
            _ => {
                let segment = path[1..].strip_suffix('/').unwrap_or(&path[1..]);
                if segment.is_empty() || segment.contains('/') {
                    return Err("the path names the database and must be one segment, like /k6");
                }
                let db =
                    percent_decode(segment, false).ok_or("invalid percent-encoding in the path")?;
                (Some(db), segment.contains('%'))
            }
        };
        Ok(parsed)
    }

    /// `scheme://host[:port]`: where requests go, without credentials, path or query.
    pub fn base_url(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{port}", self.scheme, self.host),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    /// Whether the host is this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
    pub fn is_loopback(&self) -> bool {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        host.eq_ignore_ascii_case("localhost")
            || host.parse::<IpAddr>().is_ok_and(|a| a.is_loopback())
    }
}

/// Settings that suit an InfluxDB on this machine, as fallbacks (a value the user sets wins):
/// `PERFSINK_GZIP_LEVEL=0`. Over loopback compressing saves no bandwidth and costs CPU twice,
/// in the sink and in influxd (7 % of influxd's CPU per point and 15 % of `perfsink k6`'s,
/// measured with InfluxDB 1.6), CPU that the load generator on the same machine wants.
pub fn loopback_fallbacks(url: Option<&str>) -> Vec<(&'static str, String)> {
    match url.map(InfluxUrl::parse) {
        Some(Ok(url)) if url.is_loopback() => vec![("PERFSINK_GZIP_LEVEL", "0".to_string())],
        _ => Vec::new(),
    }
}

/// Everything of `url` but its path, which is returned raw: the k6 form reads it as the
/// database, the write-endpoint form as `/write` or `/api/v2/write`.
fn split(url: &str) -> Result<(InfluxUrl, &str), &'static str> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain whitespace");
    }
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("expected http://host[:port][/db] or https://...")?;
    let scheme = if scheme.eq_ignore_ascii_case("http") {
        "http"
    } else if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else {
        return Err("the scheme must be http or https");
    };
    if rest.contains('#') {
        return Err("must not contain a fragment (#...)");
    }
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, Some(query)),
        None => (rest, None),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // Go's url.Parse splits at the last '@' too.
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => {
            let (user, pass) = match u.split_once(':') {
                Some((user, pass)) => (user, Some(pass)),
                None => (u, None),
            };
            let bad = "invalid percent-encoding in the user or password";
            let user = percent_decode(user, false).ok_or(bad)?;
            let pass = pass
                .map(|p| percent_decode(p, false).ok_or(bad))
                .transpose()?;
            (Some(user), pass.map(Secret::new))
        }
    };
    let (host, port) = host_and_port(host_port)?;
    let mut pairs = Vec::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = "invalid percent-encoding in the query";
        pairs.push((
            percent_decode(k, true).ok_or(bad)?,
            percent_decode(v, true).ok_or(bad)?,
        ));
    }
    let parsed = InfluxUrl {
        scheme,
        host: host.to_string(),
        port,
        db: None,
        path_encoded: false,
        username,
        password,
        query: pairs,
    };
    Ok((parsed, path))
}

/// The URL of InfluxDB's write endpoint, as JMeter's `HttpMetricsSender` takes it —
/// `http(s)://host:port/write?db=D[&rp=R][&u=U&p=P]` (v1) or
/// `http(s)://host:port/api/v2/write?org=O&bucket=B` (v2) — as engine configuration keys
/// (`INFLUXDB_URL`, `INFLUXDB_DB`, …). A `precision` parameter is ignored: the engine's
/// timestamps follow `INFLUXDB_PRECISION`. The error says why, never quoting the URL.
pub fn write_endpoint_keys(url: &str) -> Result<Vec<(&'static str, String)>, String> {
    let (parsed, path) = split(url).map_err(str::to_string)?;
    let path = path.trim_end_matches('/');
    let v2 = match path {
        "/api/v2/write" => true,
        "/write" => false,
        _ if path.ends_with("/write") => {
            // A prefix (a proxy) would read as a k6-style database name.
            return Err("a path before /write or /api/v2/write is not supported".into());
        }
        _ => return Err("the path must be /write (v1) or /api/v2/write (v2)".into()),
    };
    let mut keys = vec![("INFLUXDB_URL", parsed.base_url())];
    if let Some(user) = parsed.username {
        keys.push(("INFLUXDB_USERNAME", user));
    }
    if let Some(password) = parsed.password {
        keys.push(("INFLUXDB_PASSWORD", password.expose().to_string()));
    }
    let mut named_db = false;
    for (k, v) in parsed.query {
        let key = match (k.as_str(), v2) {
            ("db", false) | ("bucket", true) => {
                named_db = true;
                if v2 {
                    "INFLUXDB_BUCKET"
                } else {
                    "INFLUXDB_DB"
                }
            }
            ("rp", false) => "INFLUXDB_RP",
            ("u", false) => "INFLUXDB_USERNAME",
            ("p", false) => "INFLUXDB_PASSWORD",
            ("org", true) => "INFLUXDB_ORG",
            ("precision", _) => continue,
            _ => {
                let k: String = k.chars().take(20).collect();
                return Err(format!(
                    "query parameter {k:?} is not supported (v1: db, rp, u, p; v2: org, bucket)"
                ));
            }
        };
        keys.push((key, v));
    }
    if !named_db {
        return Err(if v2 { "needs bucket=" } else { "needs db=" }.into());
    }
    Ok(keys)
}

fn host_and_port(authority: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or("unterminated '[' in the host")?;
        if addr.is_empty()
            || !addr
                .chars()
                .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        {
            return Err("invalid IPv6 address");
        }
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or("unexpected text after the IPv6 address")?,
            ),
        };
        (&authority[..addr.len() + 2], port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if host.is_empty() {
            return Err("the host is missing");
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        {
            return Err("invalid host (IPv6 addresses go in brackets: http://[::1]:8086)");
        }
        (host, port)
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => return Err("the port must be a number from 1 to 65535"),
        },
    };
    Ok((host, port))
}

/// `%XX` decoded (and `+` as a space in a query); `None` for a bad escape or a result that is
/// not UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> Option<String> {
    if !s.contains(['%', '+']) {
        return Some(s.to_string());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
                continue;
            }
            b'+' if plus_is_space => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k6_form_with_credentials_database_and_query() {
        let u = InfluxUrl::parse(
            "HTTPS://me:s3cr%3Bt@influx:8087/perf?precision=ms&tagsAsFields=vu:int&tagsAsFields=url&x=a+b%26c",
        )
        .unwrap();
        assert_eq!(u.base_url(), "https://influx:8087");
        assert_eq!(u.db.as_deref(), Some("perf"));
        assert_eq!(u.username.as_deref(), Some("me"));
        assert_eq!(u.password.as_ref().unwrap().expose(), "s3cr;t");
        assert_eq!(
            u.query,
            [
                ("precision", "ms"),
                ("tagsAsFields", "vu:int"),
                ("tagsAsFields", "url"),
                ("x", "a b&c")
            ]
            .map(|(k, v)| (k.to_string(), v.to_string()))
        );
        let u = InfluxUrl::parse("http://[::1]:8086/my%20db/").unwrap();
        assert_eq!(u.base_url(), "http://[::1]:8086");
        assert_eq!((u.db.as_deref(), u.path_encoded), (Some("my db"), true));
        let u = InfluxUrl::parse("http://user@h").unwrap();
        assert_eq!((u.username.as_deref(), u.password), (Some("user"), None));
    }

    #[test]
    fn errors_never_quote_the_url() {
        for url in [
            "udp://u:hunter2@h:8089",
            "http://u:hunter2@h:0",
            "http://u:hunter2%zz@h",
            "http://u:hunter2@h/a/b",
            "http://u:hunter2@h/db?p=%zz",
            "http://u:hunter2@h#frag",
            "http://u:hunter2@[::1",
        ] {
            let why = InfluxUrl::parse(url).unwrap_err();
            assert!(!why.contains("hunter2"), "{url}: {why}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for (url, loopback) in [
            ("http://127.0.0.2", true),
            ("http://user:pw@localhost:1/x", true),
            ("http://LOCALHOST:8086", true),
            ("http://[::1]", true),
            ("https://[::1]:8086/k6", true),
            ("http://[::2]:8086", false),
            ("http://0.0.0.0:8086", false),
            ("http://127.example.com", false),
            ("http://10.0.0.1:8086", false),
            ("localhost:8086", false), // not a URL
        ] {
            let got = InfluxUrl::parse(url).is_ok_and(|u| u.is_loopback());
            assert_eq!(got, loopback, "{url}");
            assert_eq!(loopback_fallbacks(Some(url)).is_empty(), !loopback, "{url}");
        }
        assert!(loopback_fallbacks(None).is_empty());
    }

    #[test]
    fn write_endpoint_forms() {
        let keys = write_endpoint_keys("https://h:8086/write?db=my%20db&rp=week&u=bob&p=s3%2Bcret")
            .unwrap();
        assert_eq!(
            keys,
            vec![
                ("INFLUXDB_URL", "https://h:8086".to_string()),
                ("INFLUXDB_DB", "my db".to_string()),
                ("INFLUXDB_RP", "week".to_string()),
                ("INFLUXDB_USERNAME", "bob".to_string()),
                ("INFLUXDB_PASSWORD", "s3+cret".to_string()),
            ]
        );
        let keys =
            write_endpoint_keys("http://[::1]:8086/api/v2/write/?org=o&bucket=b&precision=ms")
                .unwrap();
        assert_eq!(
            keys,
            vec![
                ("INFLUXDB_URL", "http://[::1]:8086".to_string()),
                ("INFLUXDB_ORG", "o".to_string()),
                ("INFLUXDB_BUCKET", "b".to_string()),
            ]
        );
        let keys = write_endpoint_keys("http://al:pw@h/write?db=x").unwrap();
        assert!(
            keys.contains(&("INFLUXDB_PASSWORD", "pw".to_string())),
            "{keys:?}"
        );
        for (url, why) in [
            ("http://h:8086/write", "needs db="),
            ("http://h:8086/api/v2/write?org=o", "needs bucket="),
            ("http://h:8086/query?db=x", "must be /write"),
            ("http://h:8086/proxy/write?db=x", "a path before"),
            (
                "http://h:8086/write?db=x&bucket=y",
                "\"bucket\" is not supported",
            ),
            ("h:8086/write?db=x", "expected http"),
        ] {
            let e = write_endpoint_keys(url).unwrap_err();
            assert!(e.contains(why), "{url}: {e}");
        }
        let e = write_endpoint_keys("http://h:8086/writ?db=x&u=a&p=s3cret").unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
    }
}
