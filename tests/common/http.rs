//! Tiny blocking HTTP/1.1 helpers on `std::net` (no extra dependencies):
//! a `Connection: close` client, URL encoding/decoding, and the message
//! parsing shared with the fault server (request/response heads, bodies with
//! `Content-Length` or `Transfer-Encoding: chunked`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Upper bound for one head (start line + headers), to fail fast on garbage.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Upper bound for one body.
const MAX_BODY_BYTES: usize = 512 * 1024 * 1024;

/// Connect/read/write timeout of the client helpers.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A complete HTTP response as read by [`request`].
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names are lower-cased, values trimmed, order preserved.
    pub headers: Vec<(String, String)>,
    /// Body with any chunked transfer encoding removed.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    /// Body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Body parsed as JSON; panics with the body text if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response (status {}) is not JSON ({e}): {:?}",
                self.status,
                self.text()
            )
        })
    }
}

/// Case-insensitive header lookup in a `(name, value)` list.
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Splits `http://host:port/path?query` into (`host:port`, `/path?query`).
/// Only plain `http://` is supported.
pub fn split_url(url: &str) -> (String, String) {
    let rest = url
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("only http:// URLs are supported, got {url:?}"));
    match rest.find('/') {
        Some(i) => (rest[..i].to_string(), rest[i..].to_string()),
        None => (rest.to_string(), "/".to_string()),
    }
}

/// Sends one request on a fresh connection (`Connection: close`) and reads
/// the whole response. `url` is absolute (`http://127.0.0.1:PORT/path?q`).
/// `Host`, `Content-Length` and `Connection` are added automatically.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<HttpResponse> {
    let (authority, target) = split_url(url);
    let addr: SocketAddr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)?;
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
    stream.set_nodelay(true)?;

    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let sends_body = !body.is_empty() || !matches!(method, "GET" | "HEAD" | "DELETE" | "OPTIONS");
    if sends_body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body);
    stream.write_all(&msg)?;
    stream.flush()?;

    let mut reader = BufReader::new(stream);
    loop {
        let (start, headers) = read_head(&mut reader)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before response",
            )
        })?;
        let status = parse_status_line(&start)?;
        if (100..200).contains(&status) {
            continue; // e.g. 100 Continue: the real response follows
        }
        let body = if method == "HEAD" || status == 204 || status == 304 {
            Vec::new()
        } else if is_chunked(&headers) {
            read_chunked(&mut reader)?
        } else if let Some(len) = content_length(&headers)? {
            read_exact_vec(&mut reader, len)?
        } else {
            let mut v = Vec::new();
            reader.read_to_end(&mut v)?;
            v
        };
        return Ok(HttpResponse {
            status,
            headers,
            body,
        });
    }
}

/// `GET url`.
pub fn get(url: &str) -> io::Result<HttpResponse> {
    request("GET", url, &[], &[])
}

/// `POST url` with a body and a `Content-Type`.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> io::Result<HttpResponse> {
    request("POST", url, &[("Content-Type", content_type)], body)
}

/// Value for an `Authorization: Basic ...` header.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Percent-encodes everything except RFC 3986 unreserved characters
/// (safe for query names and values).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Builds `k1=v1&k2=v2` with both sides percent-encoded.
pub fn encode_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Decodes `%XX` escapes and `+` (as space), form/query style. Invalid
/// escapes are kept literally; invalid UTF-8 is replaced lossily.
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a query string (without `?`) into decoded pairs, in order.
/// A bare `key` yields `(key, "")`.
pub fn parse_query(qs: &str) -> Vec<(String, String)> {
    qs.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(p), String::new()),
        })
        .collect()
}

/// A start line plus its headers (names lower-cased).
pub type Head = (String, Vec<(String, String)>);

/// Reads a start line plus headers, up to and including the blank line.
/// Returns `Ok(None)` on a clean EOF before the first byte of a message.
/// Header names are lower-cased and values trimmed.
pub fn read_head<R: BufRead>(r: &mut R) -> io::Result<Option<Head>> {
    let mut total = 0usize;
    let mut line = Vec::new();
    // Skip stray blank lines between messages (RFC 9112 §2.2 robustness).
    let start = loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(invalid("head too large"));
        }
        let l = trim_eol(&line);
        if !l.is_empty() {
            break String::from_utf8_lossy(l).into_owned();
        }
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = r.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF inside headers",
            ));
        }
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(invalid("head too large"));
        }
        let l = trim_eol(&line);
        if l.is_empty() {
            break;
        }
        let l = String::from_utf8_lossy(l);
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| invalid("header line without ':'"))?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Some((start, headers)))
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// `HTTP/1.1 204 No Content` -> 204.
pub fn parse_status_line(line: &str) -> io::Result<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/") {
        return Err(invalid(&format!("bad status line {line:?}")));
    }
    parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(&format!("bad status line {line:?}")))
}

/// True if the last transfer coding is `chunked`.
pub fn is_chunked(headers: &[(String, String)]) -> bool {
    find_header(headers, "transfer-encoding")
        .and_then(|v| v.rsplit(',').next())
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

/// Parsed `Content-Length`, if present.
pub fn content_length(headers: &[(String, String)]) -> io::Result<Option<usize>> {
    match find_header(headers, "content-length") {
        None => Ok(None),
        Some(v) => {
            let n: usize = v
                .trim()
                .parse()
                .map_err(|_| invalid("bad content-length"))?;
            if n > MAX_BODY_BYTES {
                return Err(invalid("body too large"));
            }
            Ok(Some(n))
        }
    }
}

/// Reads a message body as framed by `headers` (chunked, `Content-Length`,
/// or none = empty, which is right for requests).
pub fn read_request_body<R: BufRead>(
    r: &mut R,
    headers: &[(String, String)],
) -> io::Result<Vec<u8>> {
    if is_chunked(headers) {
        read_chunked(r)
    } else if let Some(len) = content_length(headers)? {
        read_exact_vec(r, len)
    } else {
        Ok(Vec::new())
    }
}

fn read_exact_vec<R: Read>(r: &mut R, len: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    r.read_exact(&mut v)?;
    Ok(v)
}

/// Decodes a `Transfer-Encoding: chunked` body (extensions and trailers
/// are read and ignored).
pub fn read_chunked<R: BufRead>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "EOF in chunk size",
            ));
        }
        let l = String::from_utf8_lossy(trim_eol(&line)).into_owned();
        let size_str = l.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_str, 16).map_err(|_| invalid("bad chunk size"))?;
        if size == 0 {
            // Trailers until the blank line.
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line)? == 0 || trim_eol(&line).is_empty() {
                    return Ok(out);
                }
            }
        }
        if out.len() + size > MAX_BODY_BYTES {
            return Err(invalid("body too large"));
        }
        let start = out.len();
        out.resize(start + size, 0);
        r.read_exact(&mut out[start..])?;
        line.clear();
        r.read_until(b'\n', &mut line)?; // CRLF after the chunk data
        if !trim_eol(&line).is_empty() {
            return Err(invalid("missing CRLF after chunk"));
        }
    }
}

/// Reason phrase for the status codes a test is likely to script.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
