//! The line-protocol relay: an InfluxDB-compatible HTTP ingest endpoint in front of a sink, so
//! anything that writes to InfluxDB (k6's `--out influxdb`, JMeter's InfluxDB listener,
//! Telegraf, curl) can write through perfsink instead, with its batching, gzip, retries,
//! spool and delivery report. It runs on a tokio runtime of its own (one thread for the
//! connections; parsing and forwarding run on its blocking pool, one request per thread).
//!
//! Endpoints, shaped like InfluxDB's:
//! - `POST /write` (1.x: `db`, `rp`, `precision` = `n`/`ns`, `u`/`us`, `ms`, `s`, `m`, `h`;
//!   `u`/`p` are credentials) and `POST /api/v2/write` (`org`, `bucket`, `precision` = `ns`,
//!   `us`, `ms`, `s`). Bodies may be gzipped (`Content-Encoding: gzip`). 204 when every line
//!   was taken. Malformed lines are refused one by one and the others kept: 400 with 1.x's
//!   partial-write shape `{"error":"partial write: unable to parse '...': ... dropped=N"}`
//!   (2.x shape `{"code":"invalid","message":...}` on `/api/v2/write`). A full sink queue is
//!   a 503 with `Retry-After` (the lines before it were taken; InfluxDB overwrites identical
//!   points, so a client that retries duplicates nothing that carries a timestamp). With a
//!   spool (`PERFSINK_SPOOL_DIR`) the 204 comes only once the lines are appended to it (or
//!   delivered), so a 204'd line survives a crash of the relay; lines not kept within 5 s
//!   (the spool's disk full or at its cap, see `Sink::sync`) are a 503 naming the cause.
//! - `POST /query`, `GET /query`: `CREATE DATABASE ...` is answered with 1.x's success shape
//!   (`{"results":[{"statement_id":0}]}`), since k6 sends it before writing; the sink creates
//!   its own database itself. Any other statement is a 400 that says so.
//! - `GET|HEAD /ping`: 204 with `X-Influxdb-Version`. `GET /health`: JSON with the sink's
//!   status (`pass`, `warn` while writes fail and are retried, `fail` while points are lost;
//!   see [`Sink::health`], a 503 with `fail`), the current error in `last_error` (`null` once
//!   writing gets through again), and the relay's and the sink's counters.
//!
//! Lines are forwarded as they came (see `ingest`): timestamps rescaled to the sink's
//! precision, the sink's global tags merged in, a timestamp equal to one already written for
//! its series moved by the smallest step unless the line is identical to the one written there
//! (`PERFSINK_DEDUP`), no series interning. In the aggregated mode (`PERFSINK_MODE=aggregate`)
//! k6's sample lines (a numeric `value` field) are folded into the sink's per-interval
//! statistics instead (see `samples`); with `both` they are forwarded and folded.
//!
//! Databases: the sink has one writer and one target database (`INFLUXDB_DB` /
//! `INFLUXDB_BUCKET`). A request's `db`/`bucket` does not route: every line goes to the sink's
//! database, and the first requests naming another one are logged once per name.
//!
//! Limits: bodies over `max_body_bytes` (default 128 MiB) are a 413, judged on
//! `Content-Length` before reading, while reading, and again on the inflated size of a gzipped
//! body, which is never inflated past the limit (a gzip bomb costs at most the limit). The
//! default is above InfluxDB 1.x's 25,000,000 because k6's influxdb output sends everything
//! since its last push (1 s) in one body, ~37 MB at 17 k requests/s, and drops the lot on a
//! 413; the relay hands InfluxDB batches of its own size whatever it receives.
//!
//! Memory: the bodies of all requests in progress together (compressed as received, plus the
//! inflated copy of a gzipped one) stay under `max_inflight_bytes` (default 512 MiB); a request
//! that would go past it is a 503 with `Retry-After` (one request alone is always let through,
//! so a cap below `max_body_bytes` cannot refuse a body forever). A body must arrive within
//! `body_timeout` (default 10 s, else 408): k6 and JMeter send a body at once, and a full
//! 128 MiB body takes about 1 s on a gigabit link, so only a stalled or trickling client
//! (which holds its share of the memory cap meanwhile) reaches it.
//!
//! Counters: a request's lines are counted when the sink took them, also when its client went
//! away before the answer (the work is not undone).
//!
//! Security: it listens on loopback unless told otherwise (`allow_remote`). With a token set,
//! writes and queries need it, as `Authorization: Bearer <token>`, `Token <token>`, `Basic`
//! with the token as password, or 1.x's `p=<token>` query parameter; `/ping` and `/health`
//! stay open, as on InfluxDB.

use std::collections::HashSet;
use std::convert::Infallible;
use std::io::Read;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::config::{Api, Secret};
use crate::error::{Error, Result};
use crate::lineproto::InputPrecision;
use crate::sink::{HealthStatus, Sink};

mod ingest;
mod samples;
pub use ingest::{ingest, ingest_with, Ingested};
pub use samples::SampleSeries;

// Constants are not `pub`: cbindgen would put them into the C header. The defaults are those
// of `RelayOptions::default()`.

/// Where the relay listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8186";
/// Largest request body, compressed or inflated: room for several seconds of a fast k6 run
/// (k6 sends one body a push interval; InfluxDB 1.x's own limit, 25,000,000, is one second
/// of ~12 k requests/s).
const DEFAULT_MAX_BODY_BYTES: usize = 128 << 20;
/// The 1.x API level the relay speaks, sent as `X-Influxdb-Version` (1.x clients check that
/// the header is there; 1.8 is the release that added `/api/v2/write`).
const INFLUXDB_VERSION: &str = concat!("1.8.10-perfsink-", env!("CARGO_PKG_VERSION"));
/// Request body memory of all requests in progress (see the module's "Memory").
const DEFAULT_MAX_INFLIGHT_BYTES: usize = 512 << 20;
/// Longest time to receive a request body (see the module's "Memory").
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// The first step of the inflated copy of a gzipped body (it then doubles, reserved as it grows).
const INFLATE_STEP: usize = 256 << 10;
/// How long a client may take to send a request head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest `/query` form body.
const MAX_QUERY_BODY: usize = 1 << 20;
/// How many distinct foreign database names are logged.
const MAX_DB_NOTES: usize = 8;

/// How the relay runs.
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Address to listen on (default `127.0.0.1:8186`); port 0 picks a free one (see
    /// [`Relay::addr`]).
    pub listen: SocketAddr,
    /// Must be set to listen on anything but a loopback address.
    pub allow_remote: bool,
    /// When set, writes and queries must carry it.
    pub token: Option<Secret>,
    /// Largest request body, compressed or inflated (default 128 MiB).
    pub max_body_bytes: usize,
    /// Request body memory of all requests in progress together (default 512 MiB); past it
    /// a request is a 503 with `Retry-After`.
    pub max_inflight_bytes: usize,
    /// Longest time to receive a request body (default 10 s), else 408.
    pub body_timeout: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            listen: DEFAULT_LISTEN.parse().expect("a valid default address"),
            allow_remote: false,
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_inflight_bytes: DEFAULT_MAX_INFLIGHT_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
        }
    }
}

/// What the relay did so far. Lines are counted by what became of them in the sink.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RelayStats {
    /// HTTP requests answered, any path and status.
    pub requests: u64,
    /// Write requests whose body was read (`/write`, `/api/v2/write`).
    pub writes: u64,
    /// Lines taken into the sink.
    pub lines_accepted: u64,
    /// Lines refused as malformed.
    pub lines_rejected: u64,
    /// Valid lines the sink could not take (queue full, closing).
    pub lines_dropped: u64,
    /// Body bytes received, after gunzip.
    pub bytes_received: u64,
    /// Requests refused before their lines were read (auth, limits, bad parameters, busy).
    pub refused: u64,
    /// Of `refused`: 503s because the bodies in progress hold `max_inflight_bytes`.
    pub refused_busy: u64,
    /// Request body bytes held right now (received and inflated bodies in progress).
    pub inflight_bytes: u64,
}

impl RelayStats {
    /// Lines received: accepted, rejected or dropped.
    pub fn lines(&self) -> u64 {
        self.lines_accepted + self.lines_rejected + self.lines_dropped
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    writes: AtomicU64,
    lines_accepted: AtomicU64,
    lines_rejected: AtomicU64,
    lines_dropped: AtomicU64,
    bytes_received: AtomicU64,
    refused: AtomicU64,
    refused_busy: AtomicU64,
}

/// The memory of request bodies in progress, against `max_inflight_bytes`.
struct Budget {
    used: AtomicUsize,
    max: usize,
}

/// Bytes of the [`Budget`] one request holds; given back on drop (also when the request's
/// future is dropped because its client went away).
struct Reservation {
    budget: Arc<Budget>,
    held: usize,
}

impl Reservation {
    fn new(budget: Arc<Budget>) -> Reservation {
        Reservation { budget, held: 0 }
    }

    /// Holds `total` bytes in all, taking more when needed: `false` (and nothing taken) when
    /// that would go past the cap while other requests hold some of it.
    fn hold(&mut self, total: usize) -> bool {
        let Some(more) = total.checked_sub(self.held).filter(|&n| n > 0) else {
            return true;
        };
        let used = &self.budget.used;
        let mut now = used.load(Relaxed);
        loop {
            if now.saturating_add(more) > self.budget.max && now > self.held {
                return false;
            }
            match used.compare_exchange_weak(now, now + more, Relaxed, Relaxed) {
                Ok(_) => {
                    self.held = total;
                    return true;
                }
                Err(actual) => now = actual,
            }
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.held, Relaxed);
    }
}

struct Shared {
    sink: Arc<Sink>,
    token: Option<Secret>,
    max_body: usize,
    budget: Arc<Budget>,
    body_timeout: Duration,
    /// The sink's database (v1 `db`, v2 `bucket`), for the notes on foreign names.
    database: Option<String>,
    noted: Mutex<HashSet<String>>,
    /// The series of sample lines, for the aggregated mode (see `samples`).
    samples: SampleSeries,
    counters: Counters,
    started: Instant,
}

/// A running relay. Dropping it stops it (see [`Relay::shutdown`]); the sink stays open.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<Duration>>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Binds `options.listen` and serves in the background. Fails when the address cannot be
    /// bound, or is not a loopback address and `allow_remote` is not set.
    pub fn start(sink: Arc<Sink>, options: RelayOptions) -> Result<Relay> {
        if !options.listen.ip().is_loopback() && !options.allow_remote {
            return Err(Error::Config(format!(
                "the relay would listen on {}, which is not a loopback address: anyone who \
                 reaches it could write to InfluxDB; allow it explicitly (perfsink serve \
                 --allow-remote) and consider a token",
                options.listen
            )));
        }
        let listener = StdListener::bind(options.listen)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
            .map_err(|e| Error::Io(format!("relay: cannot listen on {}: {e}", options.listen)))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Io(format!("relay: {e}")))?;
        let database = sink.config().endpoint.as_ref().map(|e| match &e.api {
            Api::V1 { db, .. } => db.clone(),
            Api::V2 { bucket, .. } => bucket.clone(),
        });
        let shared = Arc::new(Shared {
            sink,
            token: options.token,
            max_body: options.max_body_bytes,
            budget: Arc::new(Budget {
                used: AtomicUsize::new(0),
                max: options.max_inflight_bytes,
            }),
            body_timeout: options.body_timeout,
            database,
            noted: Mutex::new(HashSet::new()),
            samples: SampleSeries::default(),
            counters: Counters::default(),
            started: Instant::now(),
        });
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(threads)
            .thread_name("perfsink-relay-work")
            .build()
            .map_err(|e| Error::Io(format!("relay: tokio runtime: {e}")))?;
        let (stop, stopped) = oneshot::channel();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name("perfsink-relay".into())
            .spawn(move || {
                let grace = runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, serving, stopped).await,
                        Err(e) => {
                            crate::log::error(format_args!("relay: {e}"));
                            Duration::ZERO
                        }
                    }
                });
                runtime.shutdown_timeout(grace);
            })
            .map_err(|e| Error::Io(format!("relay thread: {e}")))?;
        Ok(Relay {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`, for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn stats(&self) -> RelayStats {
        self.shared.stats()
    }

    /// Stops accepting connections, lets requests in progress finish for up to `grace`, and
    /// returns once the relay is down. The sink is not closed: its owner closes it after this,
    /// so that the lines of those last requests are delivered too.
    pub fn shutdown(&mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(grace);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shutdown(Duration::from_secs(1));
    }
}

/// Accepts connections until told to stop; returns the grace period it was given.
async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<Duration>,
) -> Duration {
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let grace = loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    let service = service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(req, shared).await) }
                    });
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            grace = &mut stop => break grace.unwrap_or(Duration::ZERO),
        }
    };
    drop(listener);
    let _ = tokio::time::timeout(grace, graceful.shutdown()).await;
    grace
}

impl Shared {
    fn stats(&self) -> RelayStats {
        let c = &self.counters;
        RelayStats {
            requests: c.requests.load(Relaxed),
            writes: c.writes.load(Relaxed),
            lines_accepted: c.lines_accepted.load(Relaxed),
            lines_rejected: c.lines_rejected.load(Relaxed),
            lines_dropped: c.lines_dropped.load(Relaxed),
            bytes_received: c.bytes_received.load(Relaxed),
            refused: c.refused.load(Relaxed),
            refused_busy: c.refused_busy.load(Relaxed),
            inflight_bytes: self.budget.used.load(Relaxed) as u64,
        }
    }

    /// Whether the request carries the token (or none is required).
    fn authorized(&self, headers: &HeaderMap, params: &Params) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let token = token.expose().as_bytes();
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .unwrap_or("");
        let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
        let credentials = credentials.trim();
        let by_header =
            if scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token") {
                same(credentials.as_bytes(), token)
            } else if scheme.eq_ignore_ascii_case("basic") {
                base64_decode(credentials).is_some_and(|pair| {
                    match pair.iter().position(|&b| b == b':') {
                        Some(colon) => same(&pair[colon + 1..], token),
                        None => false,
                    }
                })
            } else {
                false
            };
        by_header || params.get("p").is_some_and(|p| same(p.as_bytes(), token))
    }

    /// A request refused for its body.
    fn count_refusal(&self, e: &BodyError) {
        self.counters.refused.fetch_add(1, Relaxed);
        if matches!(e, BodyError::Busy) {
            self.counters.refused_busy.fetch_add(1, Relaxed);
        }
    }

    /// Logs, once per name, that a request named another database than the sink's.
    fn note_database(&self, named: Option<&str>) {
        let (Some(named), Some(ours)) = (named, self.database.as_deref()) else {
            return;
        };
        // `bucket=db/rp` is the 1.8 compatibility spelling of a database.
        if named.is_empty() || named == ours || named.split('/').next() == Some(ours) {
            return;
        }
        let mut noted = self.noted.lock();
        if noted.len() < MAX_DB_NOTES && noted.insert(named.to_string()) {
            crate::log::warn(format_args!(
                "relay: a request names database {named:?}; the relay writes \
                 everything to the sink's database {ours:?}"
            ));
        }
    }
}

/// Constant-time comparison of a presented credential with the token.
fn same(presented: &[u8], token: &[u8]) -> bool {
    presented.len() == token.len()
        && presented
            .iter()
            .zip(token)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Which write API a request came in on: it decides precision spellings and error shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    V1,
    V2,
}

async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Response<Full<Bytes>> {
    shared.counters.requests.fetch_add(1, Relaxed);
    let path = req.uri().path().to_string();
    let params = Params::parse(req.uri().query().unwrap_or(""));
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::GET | Method::HEAD, "/ping") => ping(&params),
        (Method::GET | Method::HEAD, "/health") => health(&shared),
        (Method::POST, "/write") => write(req, params, shared, Flavor::V1).await,
        (Method::POST, "/api/v2/write") => write(req, params, shared, Flavor::V2).await,
        (Method::GET | Method::POST, "/query") => query(req, params, shared).await,
        (_, "/ping" | "/health" | "/write" | "/api/v2/write" | "/query") => {
            let allow = match path.as_str() {
                "/ping" | "/health" => "GET, HEAD",
                "/query" => "GET, POST",
                _ => "POST",
            };
            let mut r = error(
                Flavor::V1,
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
            r
        }
        _ => error(
            Flavor::V1,
            StatusCode::NOT_FOUND,
            "not found: the perfsink relay serves /write, /api/v2/write, /query, /ping and /health",
        ),
    }
}

/// A response with the headers InfluxDB puts on every answer (1.x clients check them).
fn respond(status: StatusCode, body: Option<Value>) -> Response<Full<Bytes>> {
    let mut r = Response::new(match &body {
        Some(v) => Full::new(Bytes::from(v.to_string())),
        None => Full::new(Bytes::new()),
    });
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        "X-Influxdb-Version",
        HeaderValue::from_static(INFLUXDB_VERSION),
    );
    h.insert("X-Influxdb-Build", HeaderValue::from_static("perfsink"));
    if body.is_some() {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    r
}

/// An error in the shape of the API the request used, with the message also in
/// `X-Influxdb-Error` (one line, at most 1024 bytes) as 1.x sends it.
fn error(flavor: Flavor, status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = match flavor {
        Flavor::V1 => json!({ "error": message }),
        Flavor::V2 => {
            let code = match status {
                StatusCode::UNAUTHORIZED => "unauthorized",
                StatusCode::NOT_FOUND => "not found",
                StatusCode::PAYLOAD_TOO_LARGE => "request too large",
                StatusCode::SERVICE_UNAVAILABLE => "unavailable",
                StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
                s if s.is_server_error() => "internal error",
                _ => "invalid",
            };
            json!({ "code": code, "message": message })
        }
    };
    let mut r = respond(status, Some(body));
    let mut line: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if line.len() > 1024 {
        let mut cut = 1024;
        while !line.is_char_boundary(cut) {
            cut -= 1;
        }
        line.truncate(cut);
    }
    if let Ok(v) = HeaderValue::from_str(&line) {
        r.headers_mut().insert("X-Influxdb-Error", v);
    }
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"perfsink\""),
        );
    }
    r
}

fn ping(params: &Params) -> Response<Full<Bytes>> {
    if params.get("verbose").is_some_and(|v| v == "true") {
        return respond(StatusCode::OK, Some(json!({ "version": INFLUXDB_VERSION })));
    }
    respond(StatusCode::NO_CONTENT, None)
}

fn health(shared: &Shared) -> Response<Full<Bytes>> {
    let r = shared.stats();
    let s = shared.sink.stats();
    let health = shared.sink.health();
    let message = match (health.status, &health.error) {
        (HealthStatus::Pass, _) | (_, None) => "ready for writes".to_string(),
        (HealthStatus::Warn, Some(e)) => {
            format!("writes to InfluxDB fail and are retried, points are held: {e}")
        }
        (HealthStatus::Fail, Some(e)) => format!("points are being lost: {e}"),
    };
    let body = json!({
        "name": "perfsink-relay",
        "message": message,
        "status": health.status.as_str(),
        "checks": [],
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": shared.started.elapsed().as_secs(),
        "database": shared.database,
        "relay": {
            "requests": r.requests,
            "writes": r.writes,
            "lines_accepted": r.lines_accepted,
            "lines_rejected": r.lines_rejected,
            "lines_dropped": r.lines_dropped,
            "bytes_received": r.bytes_received,
            "refused": r.refused,
            "refused_busy": r.refused_busy,
            "inflight_bytes": r.inflight_bytes,
        },
        "sink": {
            "accepted": s.accepted,
            "replayed": s.replayed,
            "written": s.written,
            "retried": s.retried,
            "rejected": s.rejected,
            "rejected_invalid": s.rejected_invalid,
            "rejected_server": s.rejected_server,
            "dropped": s.dropped,
            "dropped_queue_full": s.dropped_queue_full,
            "dropped_undelivered": s.dropped_undelivered,
            "spooled": s.spooled,
            "queue_depth": s.queue_depth,
            "requests": s.requests,
            "bytes_sent": s.bytes_sent,
            "write_latency_us_mean": s.write_latency_us_mean,
            "write_latency_us_max": s.write_latency_us_max,
            "aggregated": s.aggregated,
            "aggregated_late": s.aggregated_late,
            "aggregated_no_percentiles": s.aggregated_no_percentiles,
        },
        // The current error: `null` once writing gets through again.
        "last_error": health.error,
    });
    // As InfluxDB 2.x: 503 with `fail`, so load balancers and health checks notice.
    let status = match health.status {
        HealthStatus::Fail => StatusCode::SERVICE_UNAVAILABLE,
        HealthStatus::Pass | HealthStatus::Warn => StatusCode::OK,
    };
    respond(status, Some(body))
}

/// Why a request body could not be had.
enum BodyError {
    TooLarge,
    /// The bodies in progress hold `max_inflight_bytes`.
    Busy,
    Timeout,
    Broken(String),
}

/// Reads a body of at most `max` bytes within `timeout`, judging `Content-Length` before
/// reading anything, and holding its memory in `held` (the buffer's capacity) as it grows.
async fn read_body(
    req: Request<Incoming>,
    max: usize,
    timeout: Duration,
    held: &mut Reservation,
) -> std::result::Result<Vec<u8>, BodyError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let declared = declared.unwrap_or(0) as usize;
    if !held.hold(declared) {
        return Err(BodyError::Busy);
    }
    let mut buf = Vec::with_capacity(declared);
    let mut body = req.into_body();
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| BodyError::Broken(e.to_string()))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let want = buf.len() + data.len();
            if want > max {
                return Err(BodyError::TooLarge);
            }
            if want > buf.capacity() {
                let capacity = want.max(buf.capacity() * 2).min(max);
                if !held.hold(capacity) {
                    return Err(BodyError::Busy);
                }
                buf.reserve_exact(capacity - buf.len());
            }
            buf.extend_from_slice(&data);
        }
        Ok(())
    };
    match tokio::time::timeout(timeout, read).await {
        Err(_) => Err(BodyError::Timeout),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(buf),
    }
}

/// Inflates a gzip body (several members allowed), never past `max` bytes, holding the
/// inflated copy's memory in `held` (on top of what it holds for `data`).
fn gunzip(
    data: &[u8],
    max: usize,
    held: &mut Reservation,
) -> std::result::Result<Vec<u8>, BodyError> {
    let base = held.held;
    let mut out: Vec<u8> = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(data).take(max as u64 + 1);
    loop {
        // Doubling: few copies; what is held is the capacity, at most twice the data.
        let capacity = out.len().saturating_mul(2).max(INFLATE_STEP).min(max + 1);
        if !held.hold(base + capacity) {
            return Err(BodyError::Busy);
        }
        out.reserve_exact(capacity - out.len());
        let room = (capacity - out.len()) as u64;
        let n = (&mut decoder)
            .take(room)
            .read_to_end(&mut out)
            .map_err(|e| BodyError::Broken(format!("gzip: {e}")))?;
        if (n as u64) < room || out.len() > max {
            break;
        }
    }
    if out.len() > max {
        return Err(BodyError::TooLarge);
    }
    Ok(out)
}

fn too_large(flavor: Flavor, max: usize) -> Response<Full<Bytes>> {
    error(
        flavor,
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "Request Entity Too Large: the body is over {max} bytes (compressed or inflated; \
             see --max-body-bytes)"
        ),
    )
}

async fn write(
    req: Request<Incoming>,
    params: Params,
    shared: Arc<Shared>,
    flavor: Flavor,
) -> Response<Full<Bytes>> {
    let refuse = |r: Response<Full<Bytes>>| {
        shared.counters.refused.fetch_add(1, Relaxed);
        r
    };
    if !shared.authorized(req.headers(), &params) {
        return refuse(unauthorized(flavor));
    }
    let given = params.get("precision").unwrap_or("");
    let precision = match flavor {
        Flavor::V1 => InputPrecision::from_v1(given),
        Flavor::V2 => InputPrecision::from_v2(given),
    };
    let Some(precision) = precision else {
        let allowed = match flavor {
            Flavor::V1 => "n, ns, u, us, ms, s, m or h",
            Flavor::V2 => "ns, us, ms or s",
        };
        return refuse(error(
            flavor,
            StatusCode::BAD_REQUEST,
            &format!("invalid precision {given:?}: use {allowed}"),
        ));
    };
    shared.note_database(match flavor {
        Flavor::V1 => params.get("db"),
        Flavor::V2 => params.get("bucket"),
    });
    let encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let gzipped = match encoding.as_deref() {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            return refuse(error(
                flavor,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                &format!("unsupported Content-Encoding {other:?}: send gzip or identity"),
            ))
        }
    };
    // The spool refuses appends (its disk is full, it holds its cap): nothing taken now could
    // be kept, so the request is refused before its body is read.
    if let Some(cause) = shared.sink.spool_refusal() {
        return refuse(unavailable(
            flavor,
            &format!("perfsink is not taking writes now: {cause}; retry later"),
        ));
    }
    let max = shared.max_body;
    let mut held = Reservation::new(shared.budget.clone());
    let body = match read_body(req, max, shared.body_timeout, &mut held).await {
        Ok(b) => b,
        Err(e) => {
            shared.count_refusal(&e);
            return body_error(flavor, e, &shared);
        }
    };
    let work = shared.clone();
    // Everything from here on is counted in the blocking task: when the client goes away
    // meanwhile, this future is dropped, but the task runs to its end and its lines, taken
    // by the sink, show in the counters.
    let done = tokio::task::spawn_blocking(move || {
        let c = &work.counters;
        let inflated;
        let data: &[u8] = if gzipped {
            match gunzip(&body, max, &mut held) {
                Ok(d) => {
                    inflated = d;
                    &inflated
                }
                Err(e) => {
                    work.count_refusal(&e);
                    return Err(e);
                }
            }
        } else {
            &body
        };
        c.bytes_received.fetch_add(data.len() as u64, Relaxed);
        let mut ingested = ingest_with(&work.sink, &work.samples, data, precision);
        drop(held);
        // With a spool, the 204 promises the lines survive a crash of this process: answer
        // only once they are appended to it (or delivered).
        if work.sink.config().spool_dir.is_some()
            && ingested.accepted > 0
            && ingested.sink_error.is_none()
        {
            if let Err(e) = work.sink.sync(KEEP_TIMEOUT) {
                ingested.sink_error = Some(e);
            }
        }
        c.writes.fetch_add(1, Relaxed);
        c.lines_accepted
            .fetch_add(ingested.accepted as u64, Relaxed);
        c.lines_rejected
            .fetch_add(ingested.rejected as u64, Relaxed);
        c.lines_dropped.fetch_add(ingested.dropped as u64, Relaxed);
        Ok(ingested)
    })
    .await;
    match done {
        Ok(Ok(ingested)) => write_answer(flavor, &ingested, &shared),
        // Counted in the task.
        Ok(Err(e)) => body_error(flavor, e, &shared),
        Err(e) => error(
            flavor,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("perfsink relay: {e}"),
        ),
    }
}

/// How long a write waits for its lines to be kept in the spool before it is a 503.
const KEEP_TIMEOUT: Duration = Duration::from_secs(5);

/// 503 with `Retry-After`.
fn unavailable(flavor: Flavor, message: &str) -> Response<Full<Bytes>> {
    let mut r = error(flavor, StatusCode::SERVICE_UNAVAILABLE, message);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

fn body_error(flavor: Flavor, e: BodyError, shared: &Shared) -> Response<Full<Bytes>> {
    match e {
        BodyError::TooLarge => too_large(flavor, shared.max_body),
        BodyError::Busy => unavailable(
            flavor,
            &format!(
                "perfsink relay busy: the request bodies in progress hold its memory cap for \
                 them ({} bytes, see --max-inflight-bytes); retry later",
                shared.budget.max
            ),
        ),
        BodyError::Timeout => error(
            flavor,
            StatusCode::REQUEST_TIMEOUT,
            &format!(
                "timed out reading the request body (more than {} ms, see --body-timeout-ms)",
                shared.body_timeout.as_millis()
            ),
        ),
        BodyError::Broken(m) => error(
            flavor,
            StatusCode::BAD_REQUEST,
            &format!("reading the request body: {m}"),
        ),
    }
}

fn unauthorized(flavor: Flavor) -> Response<Full<Bytes>> {
    let message = match flavor {
        Flavor::V1 => "authorization failed: the perfsink relay needs its token",
        Flavor::V2 => "unauthorized access: the perfsink relay needs its token",
    };
    error(flavor, StatusCode::UNAUTHORIZED, message)
}

/// The answer to a write, from what the sink did with its lines.
fn write_answer(flavor: Flavor, i: &Ingested, shared: &Shared) -> Response<Full<Bytes>> {
    match &i.sink_error {
        Some(Error::Closed) => {
            return error(
                flavor,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!(
                    "perfsink relay is shutting down: {} lines not taken",
                    i.dropped
                ),
            )
        }
        Some(Error::QueueFull) => {
            return unavailable(
                flavor,
                &format!(
                    "perfsink queue full: {} lines dropped, {} taken, {} malformed; retry later. \
                     Cause: {}",
                    i.dropped,
                    i.accepted,
                    i.rejected,
                    shared.sink.queue_full_cause()
                ),
            );
        }
        Some(Error::Timeout) => {
            return unavailable(
                flavor,
                &format!(
                    "perfsink took {} lines but could not keep them in its spool within {} s; \
                     retry later. Cause: {}",
                    i.accepted,
                    KEEP_TIMEOUT.as_secs(),
                    shared.sink.queue_full_cause()
                ),
            );
        }
        Some(e) if i.rejected == 0 => {
            return error(
                flavor,
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "perfsink took {} lines but cannot deliver them: {e}",
                    i.accepted
                ),
            )
        }
        _ => {}
    }
    if i.rejected == 0 {
        return respond(StatusCode::NO_CONTENT, None);
    }
    let mut reason = i
        .errors
        .iter()
        .map(|(_, m)| m.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    if i.rejected > i.errors.len() {
        reason.push_str(&format!(
            "\n(and {} more malformed lines)",
            i.rejected - i.errors.len()
        ));
    }
    // InfluxDB 1.x: a body with no valid line is a plain parse error; otherwise the good lines
    // are written and the answer is a partial write.
    let message = if i.accepted == 0 {
        reason
    } else {
        format!("partial write: {reason} dropped={}", i.rejected)
    };
    error(flavor, StatusCode::BAD_REQUEST, &message)
}

async fn query(
    req: Request<Incoming>,
    mut params: Params,
    shared: Arc<Shared>,
) -> Response<Full<Bytes>> {
    let refuse = |r: Response<Full<Bytes>>| {
        shared.counters.refused.fetch_add(1, Relaxed);
        r
    };
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    let headers = req.headers().clone();
    if req.method() == Method::POST && form {
        let mut held = Reservation::new(shared.budget.clone());
        match read_body(req, MAX_QUERY_BODY, shared.body_timeout, &mut held).await {
            // Form values come first, as Go's `FormValue` takes them.
            Ok(body) => {
                let mut from_body = Params::parse(&String::from_utf8_lossy(&body));
                from_body.0.append(&mut params.0);
                params = from_body;
            }
            Err(BodyError::TooLarge) => {
                return refuse(too_large(Flavor::V1, MAX_QUERY_BODY));
            }
            Err(e) => {
                shared.count_refusal(&e);
                return body_error(Flavor::V1, e, &shared);
            }
        }
    }
    if !shared.authorized(&headers, &params) {
        return refuse(unauthorized(Flavor::V1));
    }
    let Some(q) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return refuse(error(
            Flavor::V1,
            StatusCode::BAD_REQUEST,
            "missing required parameter \"q\"",
        ));
    };
    let statements: Vec<&str> = q
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if statements.iter().all(|s| is_create_database(s)) {
        let results: Vec<Value> = (0..statements.len())
            .map(|i| json!({ "statement_id": i }))
            .collect();
        return respond(StatusCode::OK, Some(json!({ "results": results })));
    }
    let database = shared
        .database
        .as_deref()
        .unwrap_or("(none: reporting disabled)");
    refuse(error(
        Flavor::V1,
        StatusCode::BAD_REQUEST,
        &format!(
            "the perfsink relay answers only CREATE DATABASE on /query (it writes to the \
             sink's database {database:?}, which the sink creates itself); send other \
             queries to InfluxDB: {q:?}"
        ),
    ))
}

/// `CREATE DATABASE <name> [WITH ...]`, keywords in any case.
fn is_create_database(statement: &str) -> bool {
    let mut words = statement.split_ascii_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some(c), Some(d), Some(_)) => {
            c.eq_ignore_ascii_case("create") && d.eq_ignore_ascii_case("database")
        }
        _ => false,
    }
}

/// Decoded `application/x-www-form-urlencoded` pairs, in order.
#[derive(Debug, Default)]
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(s: &str) -> Params {
        Params(
            s.split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (url_decode(k), url_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `key`, as Go's `Values.Get`.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decoding with `+` as space; malformed escapes stay as they are.
fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Standard base64 (padding optional), for `Authorization: Basic`.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_decode_like_go() {
        let p = Params::parse("db=k6&q=CREATE+DATABASE+%22k6%22&precision=&rp=&x=%zz&db=other");
        assert_eq!(p.get("db"), Some("k6"));
        assert_eq!(p.get("q"), Some("CREATE DATABASE \"k6\""));
        assert_eq!(p.get("precision"), Some(""));
        assert_eq!(p.get("x"), Some("%zz"));
        assert_eq!(p.get("nope"), None);
        assert_eq!(url_decode("a%2"), "a%2");
        assert_eq!(url_decode("%41%62%"), "Ab%");
        assert_eq!(url_decode("%C3%BC"), "ü");
    }

    #[test]
    fn create_database_statements() {
        for s in [
            "CREATE DATABASE k6",
            "create database \"k6\"",
            "CREATE  DATABASE jmeter WITH DURATION 1d",
        ] {
            assert!(is_create_database(s), "{s}");
        }
        for s in [
            "CREATE DATABASE",
            "SHOW DATABASES",
            "DROP DATABASE k6",
            "SELECT 1",
        ] {
            assert!(!is_create_database(s), "{s}");
        }
    }

    #[test]
    fn base64_and_token_comparison() {
        assert_eq!(base64_decode("dXNlcjpzM2NyM3Q=").unwrap(), b"user:s3cr3t");
        assert_eq!(base64_decode("dXNlcjpzM2NyM3Q").unwrap(), b"user:s3cr3t");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a b").is_none());
        assert!(same(b"tok", b"tok"));
        assert!(!same(b"tok", b"toK"));
        assert!(!same(b"to", b"tok"));
    }
}
