//! Scripted loopback HTTP/1.1 server for fault injection.
//!
//! ```ignore
//! let srv = FaultServer::start(vec![Resp::status(503).header("Retry-After", "1"), Resp::status(204)])
//!     .with_default(Resp::status(204));
//! // point the sink at srv.url() ...
//! assert!(srv.wait_for_requests(2, Duration::from_secs(5)));
//! let reqs = srv.requests();
//! ```
//!
//! * keep-alive connections (HTTP/1.1 default; closes on `Connection: close`
//!   from either side), one thread per connection;
//! * request bodies with `Content-Length` or `Transfer-Encoding: chunked`,
//!   `Expect: 100-continue` answered;
//! * `Content-Encoding: gzip` bodies are gunzipped (`raw_body_len` keeps the
//!   on-the-wire size);
//! * responses are taken from the script in arrival order; when it is used
//!   up, the default (initially `204`) answers every request.

use std::collections::VecDeque;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http;

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// Sleep this long after reading the request, before answering.
    pub delay: Duration,
    /// Close the connection without any response (after `delay`).
    pub hangup: bool,
}

impl Resp {
    /// A response with this status, no headers, empty body, no delay.
    pub fn status(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: Duration::ZERO,
            hangup: false,
        }
    }

    /// Add a response header (`Content-Length` is added automatically).
    pub fn header(mut self, name: &str, value: &str) -> Resp {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: &str) -> Resp {
        self.body = body.to_string();
        self
    }

    pub fn delay(mut self, delay: Duration) -> Resp {
        self.delay = delay;
        self
    }

    /// Read the request, then drop the connection without answering.
    pub fn hangup() -> Resp {
        Resp {
            hangup: true,
            ..Resp::status(0)
        }
    }

    /// An InfluxDB-style JSON error: `{"error":"msg"}` with
    /// `Content-Type: application/json` and `X-Influxdb-Error`.
    pub fn influx_error(status: u16, msg: &str) -> Resp {
        Resp::status(status)
            .header("Content-Type", "application/json")
            .header("X-Influxdb-Error", msg)
            .body(&serde_json::json!({ "error": msg }).to_string())
    }
}

impl Default for Resp {
    fn default() -> Resp {
        Resp::status(204)
    }
}

/// One request as received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path as sent (not percent-decoded), without the query string.
    pub path: String,
    /// Query parameters, percent-decoded (`+` = space), in order.
    pub query: Vec<(String, String)>,
    /// Header names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
    /// Body with chunked framing removed and gzip decoded.
    pub body: Vec<u8>,
    /// Body size on the wire (after de-chunking, before gunzip).
    pub raw_body_len: usize,
    /// Set if `Content-Encoding: gzip` was sent but the body did not
    /// decode; `body` then holds the raw bytes.
    pub gzip_error: Option<String>,
    /// Which accepted connection (0, 1, ...) carried it: equal ids mean
    /// the client reused a keep-alive connection.
    pub conn_id: usize,
    pub received_at: Instant,
}

impl Request {
    /// First header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        http::find_header(&self.headers, name)
    }

    /// First query parameter with this name (already decoded).
    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Decoded body as (lossy) UTF-8.
    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Non-empty body lines (line protocol points).
    pub fn lines(&self) -> Vec<String> {
        self.body_str()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()
    }
}

struct State {
    script: VecDeque<Resp>,
    default: Resp,
    requests: Vec<Request>,
    connections: usize,
}

struct Shared {
    state: Mutex<State>,
    cond: Condvar,
    shutdown: AtomicBool,
    /// Open connections, so Drop can unblock their readers.
    open: Mutex<Vec<(usize, TcpStream)>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Loopback HTTP/1.1 server answering from a script; shuts down on Drop.
pub struct FaultServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultServer {
    /// Binds `127.0.0.1:0` and starts serving `responses` in order.
    pub fn start(responses: Vec<Resp>) -> FaultServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fault server");
        let addr = listener.local_addr().expect("local_addr");
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                script: responses.into(),
                default: Resp::status(204),
                requests: Vec::new(),
                connections: 0,
            }),
            cond: Condvar::new(),
            shutdown: AtomicBool::new(false),
            open: Mutex::new(Vec::new()),
            threads: Mutex::new(Vec::new()),
        });
        let sh = Arc::clone(&shared);
        let acceptor = thread::Builder::new()
            .name("fault-server-accept".into())
            .spawn(move || accept_loop(listener, sh))
            .expect("spawn acceptor");
        FaultServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Sets the answer used once the script is exhausted (builder style).
    pub fn with_default(self, resp: Resp) -> FaultServer {
        self.set_default(resp);
        self
    }

    /// Sets the answer used once the script is exhausted.
    pub fn set_default(&self, resp: Resp) {
        self.shared.state().default = resp;
    }

    /// Appends to the script.
    pub fn push(&self, resp: Resp) {
        self.shared.state().script.push_back(resp);
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Snapshot of all requests received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.state().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.state().requests.len()
    }

    /// Number of TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.state().connections
    }

    /// Scripted responses not yet used.
    pub fn remaining_script(&self) -> usize {
        self.shared.state().script.len()
    }

    /// Waits until at least `n` requests have arrived; false on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.state();
        while st.requests.len() < n {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .cond
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for (_, s) in self
            .shared
            .open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = s.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(
            &mut *self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for h in threads {
            let _ = h.join();
        }
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let conn_id = {
            let mut st = shared.state();
            st.connections += 1;
            st.connections - 1
        };
        if let Ok(clone) = stream.try_clone() {
            shared
                .open
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((conn_id, clone));
        }
        let sh = Arc::clone(&shared);
        let handle = thread::Builder::new()
            .name(format!("fault-server-conn-{conn_id}"))
            .spawn(move || {
                let _ = serve_connection(stream, conn_id, &sh);
                sh.open
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .retain(|(id, _)| *id != conn_id);
            })
            .expect("spawn connection thread");
        let mut threads = shared.threads.lock().unwrap_or_else(|e| e.into_inner());
        threads.retain(|h| !h.is_finished());
        threads.push(handle);
    }
}

fn serve_connection(stream: TcpStream, conn_id: usize, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        if shared.shutdown.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some((start, headers)) = http::read_head(&mut reader)? else {
            return Ok(()); // client closed the connection
        };
        let mut parts = start.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let version = parts.next().unwrap_or("HTTP/1.1").to_string();
        let is_head = method == "HEAD";

        if http::find_header(&headers, "expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            writer.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let raw = http::read_request_body(&mut reader, &headers)?;
        let raw_body_len = raw.len();
        let gzipped = http::find_header(&headers, "content-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"));
        let (body, gzip_error) = if gzipped {
            let mut out = Vec::new();
            match flate2::read::MultiGzDecoder::new(&raw[..]).read_to_end(&mut out) {
                Ok(_) => (out, None),
                Err(e) => (raw, Some(e.to_string())),
            }
        } else {
            (raw, None)
        };
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), http::parse_query(q)),
            None => (target.clone(), Vec::new()),
        };
        let client_close = match http::find_header(&headers, "connection") {
            Some(v) if v.eq_ignore_ascii_case("close") => true,
            Some(v) if v.eq_ignore_ascii_case("keep-alive") => false,
            _ => version == "HTTP/1.0",
        };

        let resp = {
            let mut st = shared.state();
            let resp = st.script.pop_front().unwrap_or_else(|| st.default.clone());
            st.requests.push(Request {
                method,
                path,
                query,
                headers,
                body,
                raw_body_len,
                gzip_error,
                conn_id,
                received_at: Instant::now(),
            });
            shared.cond.notify_all();
            resp
        };

        // Sleep in slices so Drop is not held up by a long delay.
        let until = Instant::now() + resp.delay;
        while Instant::now() < until {
            if shared.shutdown.load(Ordering::SeqCst) {
                return Ok(());
            }
            thread::sleep((until - Instant::now()).min(Duration::from_millis(10)));
        }
        if resp.hangup {
            let _ = writer.shutdown(Shutdown::Both);
            return Ok(());
        }

        let server_close = http::find_header(&resp.headers, "connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let close = client_close || server_close;
        let no_body = (100..200).contains(&resp.status) || resp.status == 204 || resp.status == 304;
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            resp.status,
            http::reason_phrase(resp.status)
        );
        for (k, v) in &resp.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !no_body && http::find_header(&resp.headers, "content-length").is_none() {
            head.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        }
        if close && !server_close {
            head.push_str("Connection: close\r\n");
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        if !no_body && !is_head {
            out.extend_from_slice(resp.body.as_bytes());
        }
        writer.write_all(&out)?;
        writer.flush()?;
        if close {
            let _ = writer.shutdown(Shutdown::Write);
            return Ok(());
        }
    }
}
