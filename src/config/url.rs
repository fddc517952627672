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
        let (db, path_encoded) = match path {
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
        let mut pairs = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let bad = "invalid percent-encoding in the query";
            pairs.push((
                percent_decode(k, true).ok_or(bad)?,
                percent_decode(v, true).ok_or(bad)?,
            ));
        }
        Ok(InfluxUrl {
            scheme,
            host: host.to_string(),
            port,
            db,
            path_encoded,
            username,
            password,
            query: pairs,
        })
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
}
