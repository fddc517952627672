//! A loopback TCP proxy between perfsink and a real influxd that injects faults into the
//! write requests (`/write`, `/api/v2/write`), one scripted [`Fault`] per request, in the
//! order of a script the test builds from its seed ([`random_script`]); other requests
//! (`/ping`, `/query`: `CREATE DATABASE`) and writes once the script is used up are
//! forwarded untouched.
//!
//! * [`Fault::Forward`]: forwarded as it is;
//! * [`Fault::Latency`]: forwarded after a delay (longer than the client's timeout: the
//!   client gives up, influxd still stores it);
//! * [`Fault::Reset`]: the request's head is read, its body left unread and the connection
//!   closed: the kernel answers with a TCP RST (a close with unread data), nothing forwarded;
//! * [`Fault::Truncate`]: forwarded, and influxd's answer cut after a random number of bytes
//!   and the connection closed: stored, but the client cannot know it;
//! * [`Fault::Status`]: answered by the proxy with what InfluxDB 1.x sends for that status
//!   (JSON `error` body, `X-Influxdb-Error`, `Retry-After: 1` on 429 and 503), nothing
//!   forwarded.
//!
//! A scripted 400 calls the first line of its request unparseable, and every later request
//! holding that line gets the same 400 (a real server refuses a bad line each time), so the
//! client's bisection isolates it and counts it as refused (a 401 waits, up to 5 s, until it
//! did).
//!
//! The proxy behaves as a faulty *but honest* InfluxDB: a refusal (400, 401, 404, 413) is
//! only given to a request none of whose lines it ever forwarded (a real server that stored
//! a line does not call it refused on a resend); such a fault waits at the head of the
//! script, and the request is forwarded. Transient faults (latency, reset, truncation, 429,
//! 500, 503) apply to any request. Every line it forwarded is remembered, so a test can check
//! that InfluxDB holds exactly those.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http;

/// What the proxy does with one write request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    Forward,
    Latency(Duration),
    Reset,
    /// Forwarded; the answer cut after this many bytes (fewer if it is shorter).
    Truncate(usize),
    Status(u16),
}

impl Fault {
    /// The name a summary counts it under (`latency`, `reset`, `truncate`, `500`, ...).
    pub fn kind(&self) -> String {
        match self {
            Fault::Forward => "forward".into(),
            Fault::Latency(_) => "latency".into(),
            Fault::Reset => "reset".into(),
            Fault::Truncate(_) => "truncate".into(),
            Fault::Status(s) => s.to_string(),
        }
    }

    /// A definite refusal: only for lines never forwarded (see the module doc).
    fn is_refusal(&self) -> bool {
        matches!(self, Fault::Status(400 | 401 | 403 | 404 | 413))
    }
}

/// The transient faults and refusals every proxy scenario injects (401, which stops writing
/// for good, is added by the scenario where it wants it: last).
pub const STATUSES: [u16; 6] = [500, 503, 429, 413, 400, 404];

/// A script of `rounds` of each fault (latency up to `max_latency`, reset, truncation, each
/// of [`STATUSES`]) in random order, with 0–3 forwarded writes between two faults.
pub fn random_script(rng: &mut fastrand::Rng, rounds: usize, max_latency: Duration) -> Vec<Fault> {
    let mut faults = Vec::new();
    for _ in 0..rounds {
        faults.push(Fault::Latency(Duration::from_millis(
            rng.u64(20..max_latency.as_millis().max(21) as u64),
        )));
        faults.push(Fault::Reset);
        faults.push(Fault::Truncate(rng.usize(1..64)));
        faults.extend(STATUSES.iter().map(|s| Fault::Status(*s)));
    }
    rng.shuffle(&mut faults);
    let mut script = Vec::new();
    for f in faults {
        for _ in 0..rng.usize(0..4) {
            script.push(Fault::Forward);
        }
        script.push(f);
    }
    script
}

struct State {
    script: VecDeque<Fault>,
    /// Lines (gunzipped) of every write forwarded to influxd.
    forwarded: HashSet<Vec<u8>>,
    /// Lines a scripted 400 called unparseable: every later request holding one gets the
    /// same 400, as from a real server, so the client's bisection isolates and counts them.
    poisoned: HashSet<Vec<u8>>,
    /// Poisoned lines not yet refused alone (the client's bisection still looks for them).
    open_poison: HashSet<Vec<u8>>,
    /// When the 401 at the script's head first waited only for `open_poison`.
    waiting_401: Option<Instant>,
    /// Lines forwarded whose answer the client did not get whole (truncated), until a later
    /// request carrying them is answered whole.
    unacked: HashSet<Vec<u8>>,
    /// Write requests being forwarded right now.
    in_flight: usize,
    /// Faults applied, by kind.
    applied: BTreeMap<String, u64>,
    /// Refusals postponed because the request held forwarded lines.
    postponed: u64,
}

struct Shared {
    upstream: SocketAddr,
    state: Mutex<State>,
    shutdown: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The proxy; stops accepting on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0`, forwarding to `upstream` (`http://127.0.0.1:PORT`).
    pub fn start(upstream: &str, script: Vec<Fault>) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|e| panic!("upstream {upstream:?}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(State {
                script: script.into(),
                forwarded: HashSet::new(),
                poisoned: HashSet::new(),
                open_poison: HashSet::new(),
                waiting_401: None,
                unacked: HashSet::new(),
                in_flight: 0,
                applied: BTreeMap::new(),
                postponed: 0,
            }),
            shutdown: AtomicBool::new(false),
        });
        let sh = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if sh.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let sh = Arc::clone(&sh);
                thread::spawn(move || {
                    let _ = serve(conn, &sh);
                });
            }
        });
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Appends to the script.
    pub fn push(&self, fault: Fault) {
        self.shared.state().script.push_back(fault);
    }

    /// Script entries not used yet.
    pub fn remaining(&self) -> usize {
        self.shared.state().script.len()
    }

    /// Faults applied so far, by kind (`forward` included).
    pub fn applied(&self) -> BTreeMap<String, u64> {
        self.shared.state().applied.clone()
    }

    /// Number of distinct lines forwarded to influxd.
    pub fn forwarded_lines(&self) -> usize {
        self.shared.state().forwarded.len()
    }

    /// A one-line account: faults applied and refusals postponed.
    pub fn summary(&self) -> String {
        let st = self.shared.state();
        format!(
            "applied {:?}, {} refusals postponed (lines already stored), {} script entries left",
            st.applied,
            st.postponed,
            st.script.len()
        )
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

/// Reads a request head byte by byte, so that nothing of the body is taken from the socket
/// (a close then leaves the body unread: RST). `None` on EOF before the first byte.
fn read_head_unbuffered(s: &mut TcpStream) -> io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b)? == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        head.push(b[0]);
        if head.ends_with(b"\r\n\r\n") {
            return Ok(Some(head));
        }
        if head.len() > 64 * 1024 {
            return Err(io::ErrorKind::InvalidData.into());
        }
    }
}

/// One client connection: one request (every answer closes the connection).
fn serve(mut client: TcpStream, shared: &Shared) -> io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some(head_bytes) = read_head_unbuffered(&mut client)? else {
        return Ok(());
    };
    let (start, headers) = http::read_head(&mut &head_bytes[..])?
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))?;
    let target = start.split_whitespace().nth(1).unwrap_or("").to_string();
    let path = target.split('?').next().unwrap_or("");
    let is_write = path == "/write" || path == "/api/v2/write";

    let peek = if is_write {
        shared.state().script.front().cloned()
    } else {
        None
    };
    if peek == Some(Fault::Reset) {
        let mut st = shared.state();
        if st.script.front() == Some(&Fault::Reset) {
            st.script.pop_front();
            *st.applied.entry("reset".into()).or_default() += 1;
            drop(st);
            // Let the body arrive, then close with it unread: the kernel sends a RST.
            thread::sleep(Duration::from_millis(20));
            drop(client);
            return Ok(());
        }
    }

    let body = http::read_request_body(&mut BufReader::new(client.try_clone()?), &headers)?;
    let fault = if is_write {
        let lines = body_lines(&body, &headers);
        let mut st = shared.state();
        let poisoned = lines.iter().find(|l| st.poisoned.contains(*l)).cloned();
        let poison_wait = st.script.front() == Some(&Fault::Status(401))
            && !st.open_poison.is_empty()
            && st.waiting_401.get_or_insert_with(Instant::now).elapsed() < Duration::from_secs(5);
        let fault = match st.script.front() {
            _ if poisoned.is_some() => Fault::Status(400),
            None => Fault::Forward,
            Some(f) if f.is_refusal() && lines.iter().any(|l| st.forwarded.contains(l)) => {
                st.postponed += 1;
                Fault::Forward
            }
            // Writing stops on it: only when every line forwarded so far was acknowledged.
            Some(Fault::Status(401)) if st.in_flight > 0 || !st.unacked.is_empty() => {
                st.postponed += 1;
                Fault::Forward
            }
            // And once the client isolated the bad lines (so their refusal is counted), or
            // after waiting 5 s for it.
            Some(Fault::Status(401)) if poison_wait => {
                st.postponed += 1;
                Fault::Forward
            }
            // Its head was read before the reset came up: the next request gets it.
            Some(Fault::Reset) => Fault::Forward,
            Some(_) => st.script.pop_front().unwrap(),
        };
        if matches!(
            fault,
            Fault::Forward | Fault::Latency(_) | Fault::Truncate(_)
        ) {
            // Counted as stored before it is sent: a resend racing with it is not refused.
            st.in_flight += 1;
            if matches!(fault, Fault::Truncate(_)) {
                st.unacked.extend(lines.iter().cloned());
            }
            st.forwarded.extend(lines.iter().cloned());
        } else if fault == Fault::Status(400) && poisoned.is_none() {
            if let Some(first) = lines.first() {
                st.poisoned.insert(first.clone());
                if lines.len() > 1 {
                    st.open_poison.insert(first.clone());
                }
            }
        } else if let (Some(bad), 1) = (&poisoned, lines.len()) {
            st.open_poison.remove(bad);
        }
        let kind = match &poisoned {
            Some(_) => "400 (same bad line)".to_string(),
            None => fault.kind(),
        };
        *st.applied.entry(kind).or_default() += 1;
        (fault, poisoned, lines)
    } else {
        (Fault::Forward, None, Vec::new())
    };
    let (fault, poisoned, lines) = fault;
    let _done = is_write
        .then_some(())
        .filter(|_| {
            matches!(
                fault,
                Fault::Forward | Fault::Latency(_) | Fault::Truncate(_)
            )
        })
        .map(|_| InFlight(shared));

    match fault {
        Fault::Status(status) => {
            let db = http::parse_query(target.split_once('?').map_or("", |(_, q)| q))
                .into_iter()
                .find(|(k, _)| k == "db" || k == "bucket")
                .map(|(_, v)| v)
                .unwrap_or_default();
            client.write_all(&influx_answer(
                status,
                &db,
                poisoned.as_deref(),
                &body,
                &headers,
            ))?;
            let _ = client.shutdown(Shutdown::Write);
            Ok(())
        }
        Fault::Reset => unreachable!("handled before the body was read"),
        Fault::Truncate(cut) => forward(
            &mut client,
            shared.upstream,
            &start,
            &headers,
            &body,
            Some(cut),
        )
        .map(|_| ()),
        Fault::Latency(_) | Fault::Forward => {
            if let Fault::Latency(d) = fault {
                thread::sleep(d);
            }
            let whole = forward(&mut client, shared.upstream, &start, &headers, &body, None);
            if matches!(whole, Ok(true)) {
                let mut st = shared.state();
                for l in &lines {
                    st.unacked.remove(l);
                }
            }
            whole.map(|_| ())
        }
    }
}

/// Counts a write request out of `in_flight` when its answer was sent.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.state().in_flight -= 1;
    }
}

/// The request's lines, gunzipped when it is gzip.
fn body_lines(body: &[u8], headers: &[(String, String)]) -> Vec<Vec<u8>> {
    let gz = http::find_header(headers, "content-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let plain = if gz {
        let mut out = Vec::new();
        match flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out) {
            Ok(_) => out,
            Err(_) => body.to_vec(),
        }
    } else {
        body.to_vec()
    };
    plain
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Sends the request to influxd on a connection of its own (`Connection: close`) and copies
/// the whole answer back, or its first `cut` bytes (fewer than it has) then closes. True when
/// the client got a whole answer.
fn forward(
    client: &mut TcpStream,
    upstream: SocketAddr,
    start: &str,
    headers: &[(String, String)],
    body: &[u8],
    cut: Option<usize>,
) -> io::Result<bool> {
    let mut up = match TcpStream::connect_timeout(&upstream, Duration::from_secs(2)) {
        Ok(s) => s,
        Err(_) => return Ok(false), // influxd down: the client sees the connection closed
    };
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req = format!("{start}\r\n");
    for (k, v) in headers {
        if ![
            "connection",
            "content-length",
            "transfer-encoding",
            "expect",
        ]
        .contains(&k.as_str())
        {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    up.write_all(req.as_bytes())?;
    up.write_all(body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let n = match cut {
        Some(c) => c.min(answer.len().saturating_sub(1)),
        None => answer.len(),
    };
    client.write_all(&answer[..n])?;
    let _ = client.shutdown(Shutdown::Write);
    Ok(n == answer.len() && !answer.is_empty())
}

/// What InfluxDB 1.x answers with `status`: its JSON error, headers and (429, 503)
/// `Retry-After`.
fn influx_answer(
    status: u16,
    db: &str,
    bad_line: Option<&[u8]>,
    body: &[u8],
    headers: &[(String, String)],
) -> Vec<u8> {
    let first_line = bad_line
        .map(<[u8]>::to_vec)
        .or_else(|| body_lines(body, headers).into_iter().next())
        .map(|l| String::from_utf8_lossy(&l).into_owned())
        .unwrap_or_default();
    let error = match status {
        400 => format!("unable to parse '{first_line}': invalid field format"),
        401 => "authorization failed".to_string(),
        404 => format!("database not found: \"{db}\""),
        413 => "Request Entity Too Large".to_string(),
        429 => "Too Many Requests".to_string(),
        500 => "timeout".to_string(),
        503 => "Service Unavailable".to_string(),
        _ => http::reason_phrase(status).to_string(),
    };
    let json = serde_json::json!({ "error": error }).to_string();
    let mut head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\n\
         Request-Id: 00000000-0000-0000-0000-000000000000\r\nX-Influxdb-Build: OSS\r\n\
         X-Influxdb-Version: 1.6.7~rc0\r\nX-Influxdb-Error: {}\r\n",
        http::reason_phrase(status),
        error
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .collect::<String>()
    );
    if status == 429 || status == 503 {
        head.push_str("Retry-After: 1\r\n");
    }
    if status == 401 {
        head.push_str("Www-Authenticate: Basic realm=\"InfluxDB\"\r\n");
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        json.len()
    ));
    let mut out = head.into_bytes();
    out.extend_from_slice(json.as_bytes());
    out
}
