//! Layer 5: the one InfluxDB writer. It runs on its own thread with a tokio runtime the sink
//! owns, takes chunks off the queue, and sends them with several requests in flight, gzip,
//! timeouts, retries with backoff, splitting on 413, exact counting of partial writes
//! (bisection where InfluxDB's answer does not give the count), a stop on 401/403, a memory
//! cap, the write-ahead disk spool (every batch appended before it is sent, settled once
//! InfluxDB answered for it), and self-metrics. What to do with an answer is decided by
//! `policy::decide`, a pure function; `Run::settle` carries it out.

mod backlog;
pub mod http;
pub mod policy;
pub mod retry;
pub mod secured;
pub mod selfmetrics;
pub mod spool;

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::config::{Api, Config, Endpoint};
use crate::error::{Error, Result};
use crate::lineproto::Dialect;
use crate::model::now_ns;
use crate::pipeline::{Chunk, ChunkKind, Hold, Queue};
use crate::stats::Counters;
use backlog::Backlog;
use http::{HttpTarget, Outcome};
use policy::{Decision, Facts};
use secured::Secured;
use spool::Spool;

/// How long the writer leaves a spool that refused an append (disk full) before trying again.
const SPOOL_RETRY: Duration = Duration::from_millis(250);
// While the spool refuses, the writer holds the refused batch aside and takes nothing more
// (producers meet the queue policy; the relay answers 503 naming the cause). When nothing else
// is waiting or in flight, the refused batch is sent without its record, so with InfluxDB up
// writing goes on a batch at a time (each kept by its delivery) however long the disk is full.

/// State the sink and the writer thread share.
#[derive(Default)]
pub struct WriterState {
    shutdown: AtomicBool,
    deadline: Mutex<Option<Instant>>,
    /// Set once writing stopped for good (credentials refused, writer crashed).
    pub fatal: Mutex<Option<Error>>,
    /// The latest write failure, for reports (never holds a secret).
    pub last_error: Mutex<Option<String>>,
    /// Why writing does not get through right now (InfluxDB unreachable or failing, the
    /// database missing, credentials refused): set with each failure, cleared when InfluxDB
    /// answers a write again. `last_error` keeps the history; this is the present.
    pub current_error: Mutex<Option<String>>,
    /// The writer holds all it may (memory cap, and the spool's when there is one): it leaves
    /// chunks on the queue, so producers meet the full-queue policy.
    pub backlog_full: AtomicBool,
    /// Why the spool takes nothing now (its cap, a full disk), for the full queue's cause.
    pub spool_refusal: Mutex<Option<String>>,
    /// User points left in the spool at close, replayed by the next sink on the same directory.
    pub kept_in_spool: AtomicU64,
    /// Which batches are kept (in the spool or delivered), for `Sink::sync`.
    pub secured: Secured,
}

pub struct Writer {
    thread: Option<JoinHandle<()>>,
    pub state: Arc<WriterState>,
    wake: Arc<Notify>,
}

impl Writer {
    /// Starts the writer thread. Fails on a bad TLS file or an unusable spool directory.
    pub fn start(
        config: &Config,
        endpoint: &Endpoint,
        queue: Arc<Queue>,
        counters: Arc<Counters>,
        wake: Arc<Notify>,
    ) -> Result<Writer> {
        let target = Arc::new(HttpTarget::new(config, endpoint)?);
        let mut backlog = Backlog::new(config.memory_max_bytes, None);
        if let Some(dir) = &config.spool_dir {
            let opened = Spool::open(dir, config.spool_max_bytes, config.spool_fsync)
                .map_err(|e| Error::Io(format!("PERFSINK_SPOOL_DIR {}: {e}", dir.display())))?;
            Counters::add(&counters.replayed, opened.spool.user_lines());
            let d = &opened.damage;
            if d.records > 0 {
                // Counted as entered and lost, so the books of this run still balance.
                Counters::add(&counters.replayed, d.user_lines);
                Counters::add(&counters.dropped_undelivered, d.user_lines);
                crate::log::warn(format_args!(
                    "PERFSINK_SPOOL_DIR {}: {} damaged record(s) skipped: {} point(s) lost{}",
                    dir.display(),
                    d.records,
                    d.user_lines,
                    if d.unknown_bytes > 0 {
                        format!(
                            ", and {} damaged byte(s) of unknown records",
                            d.unknown_bytes
                        )
                    } else {
                        String::new()
                    }
                ));
            }
            backlog.spool = Some(opened.spool);
            backlog.replay(opened.pending);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::Io(format!("tokio runtime: {e}")))?;
        let state = Arc::new(WriterState::default());
        let run = Run {
            target,
            create_database: config.create_database && matches!(endpoint.api, Api::V1 { .. }),
            queue,
            counters,
            backlog,
            state: state.clone(),
            wake: wake.clone(),
            inflight: JoinSet::new(),
            cancel: tokio::sync::watch::channel(false).0,
            concurrency: config.concurrency,
            flush_interval: config.flush_interval,
            request_timeout: config.request_timeout,
            retry_initial: config.retry_initial,
            retry_max: config.retry_max,
            self_metrics: config.self_metrics_interval,
            precision: config.precision,
            global_tags: config.global_tags.clone(),
            dialect: config.server_version.dialect().unwrap_or_default(),
            source: config.source.clone(),
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            failures: 0,
            db_created_at: None,
            not_before: Instant::now(),
            logged: HashSet::new(),
            spool_retry_at: None,
            refused: None,
            kept: Vec::new(),
        };
        let thread_state = state.clone();
        let thread_counters = run.counters.clone();
        let thread = std::thread::Builder::new()
            .name("perfsink-writer".into())
            .spawn(move || {
                let result =
                    std::panic::catch_unwind(AssertUnwindSafe(|| runtime.block_on(run.run())));
                if result.is_err() {
                    *thread_state.fatal.lock() = Some(Error::Closed);
                    *thread_state.last_error.lock() = Some("the writer thread panicked".into());
                    thread_counters.notify_settled();
                }
                thread_state.secured.stop();
            })
            .map_err(|e| Error::Io(format!("writer thread: {e}")))?;
        Ok(Writer {
            thread: Some(thread),
            state,
            wake,
        })
    }

    /// Asks the writer to deliver what it holds until `deadline`, then spool or count the rest,
    /// and waits for it to finish.
    pub fn stop(&mut self, deadline: Instant) {
        *self.state.deadline.lock() = Some(deadline);
        self.state.shutdown.store(true, Relaxed);
        self.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop(Instant::now());
        }
    }
}

/// The result of one request task.
struct Done {
    chunk: Chunk,
    outcome: Outcome,
    latency: Duration,
    sent_bytes: usize,
    started: Instant,
}

struct Run {
    target: Arc<HttpTarget>,
    create_database: bool,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    backlog: Backlog,
    state: Arc<WriterState>,
    wake: Arc<Notify>,
    inflight: JoinSet<Done>,
    /// Set at the close deadline: requests still in flight stop waiting for their answer.
    cancel: tokio::sync::watch::Sender<bool>,
    concurrency: usize,
    flush_interval: Duration,
    request_timeout: Duration,
    retry_initial: Duration,
    retry_max: Duration,
    self_metrics: Option<Duration>,
    precision: crate::model::Precision,
    global_tags: Vec<(String, String)>,
    /// How self-metrics names are escaped (the sink's resolved server version).
    dialect: Dialect,
    source: String,
    host: String,
    /// Failed requests in a row, for the backoff.
    failures: u32,
    /// When a "database not found" made us create the database, until a write succeeds.
    db_created_at: Option<Instant>,
    /// No request starts before this instant (backoff after a failure).
    not_before: Instant,
    logged: HashSet<&'static str>,
    /// When to try the refused batch's append again.
    spool_retry_at: Option<Instant>,
    /// The batch the spool refused (disk full, cap), held aside: see `SPOOL_RETRY`.
    refused: Option<Chunk>,
    /// Batches appended since the last `commit`, made known as kept after it.
    kept: Vec<u64>,
}

impl Run {
    async fn run(mut self) {
        if self.create_database {
            if let Err(e) = self.target.create_database().await {
                self.note(
                    "create-db",
                    format!("could not create the database yet: {e}"),
                );
            }
        }
        let tick_every =
            (self.flush_interval / 4).clamp(Duration::from_millis(5), Duration::from_millis(250));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_self_metrics = self.self_metrics.map(|d| Instant::now() + d);
        let mut final_report = false;
        let mut settled = self.counters.settled();
        loop {
            // `Sink::flush` waits for this instead of polling.
            let now_settled = self.counters.settled();
            if now_settled != settled || self.is_fatal() {
                settled = now_settled;
                self.counters.notify_settled();
            }
            let shutting = self.state.shutdown.load(Relaxed);
            self.intake(shutting);
            let deadline = *self.state.deadline.lock();
            let late = shutting && deadline.is_none_or(|d| Instant::now() >= d);
            // Past the close deadline nothing new is sent: what is left is spooled or dropped.
            if !late {
                self.dispatch();
            }
            if shutting {
                let drained = self.backlog.is_empty()
                    && self.refused.is_none()
                    && self.queue.is_empty()
                    && self.queue.accumulator_is_empty();
                // The last self-metrics line reports the final state (queue empty, every
                // point written), so it waits until the user's points have drained.
                if drained && self.inflight.is_empty() && !late && !self.is_fatal() && !final_report
                {
                    final_report = true;
                    self.emit_self_metrics();
                    continue;
                }
                if self.inflight.is_empty() && (drained || late || self.is_fatal()) {
                    break;
                }
                if late {
                    // A request started before the deadline has the full request timeout;
                    // close must not wait for it. Its chunk comes back as `Cancelled`.
                    self.cancel.send_replace(true);
                }
            }
            let backing_off = !self.backlog.is_empty() && Instant::now() < self.not_before;
            let far = Instant::now() + Duration::from_secs(3600);
            tokio::select! {
                _ = self.wake.notified() => {}
                Some(joined) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    if let Ok(done) = joined {
                        self.settle(done).await;
                    }
                }
                _ = tick.tick() => {
                    if let Some(at) = next_self_metrics {
                        if Instant::now() >= at {
                            self.emit_self_metrics();
                            next_self_metrics = self.self_metrics.map(|d| Instant::now() + d);
                        }
                    }
                }
                _ = tokio::time::sleep_until(self.not_before.into()), if backing_off => {}
                _ = tokio::time::sleep_until(deadline.unwrap_or(far).into()), if shutting => {}
            }
        }
        self.finish();
    }

    fn is_fatal(&self) -> bool {
        self.state.fatal.lock().is_some()
    }

    /// Moves chunks from the queue (and a partial batch that waited long enough) into the
    /// backlog while it has room; without room the queue fills and producers see the policy.
    fn intake(&mut self, shutting: bool) {
        let age = if shutting {
            Duration::ZERO
        } else {
            self.flush_interval
        };
        // Only take from the queue what the backlog has room for: a chunk left in the queue
        // makes producers wait (or count a drop by their own policy), which is the
        // backpressure they asked for; a chunk taken and then refused would be lost silently.
        self.retry_refused();
        if self.can_take() {
            if let Some(chunk) = self.queue.take_partial(age) {
                self.admit(chunk);
            }
        }
        while self.can_take() {
            match self.queue.try_recv() {
                Some(chunk) => self.admit(chunk),
                None => break,
            }
        }
        self.commit();
        let full = !self.can_take();
        self.state.backlog_full.store(full, Relaxed);
    }

    /// Room to take another batch off the queue.
    fn can_take(&mut self) -> bool {
        if self.is_fatal() {
            return true;
        }
        if self.refused.is_some() {
            return false;
        }
        if let Some(spool) = &self.backlog.spool {
            if !spool.has_room() {
                let refusal = spool::Refused::Cap(spool.max_bytes()).to_string();
                *self.state.spool_refusal.lock() = Some(refusal);
                return false;
            }
            // Room again and nothing refused: the cause is gone.
            self.state.spool_refusal.lock().take();
        }
        self.backlog.has_room()
    }

    /// Forces the appends to the disk as the fsync policy says, then tells `Sink::sync`
    /// their batches are kept.
    fn commit(&mut self) {
        if let Some(spool) = &mut self.backlog.spool {
            if let Err(e) = spool.commit() {
                let msg = format!("fsync of the spool failed: {e}");
                self.note("fsync", msg);
            }
        }
        let kept = std::mem::take(&mut self.kept);
        self.state.secured.keep(&kept);
    }

    /// Writing does not get through now, for `msg` (see `WriterState::current_error`).
    fn failing(&self, msg: String) {
        *self.state.current_error.lock() = Some(msg);
    }

    /// Takes a batch: with a spool, appends it first (a batch the spool refuses is held aside
    /// and nothing more is taken: see `SPOOL_RETRY`).
    fn admit(&mut self, mut chunk: Chunk) {
        if self.is_fatal() {
            return self.give_up(chunk);
        }
        if self.backlog.spool.is_some() {
            match self.append(&chunk) {
                Some(loc) => {
                    chunk.hold = Some(Hold::new(Some(loc), chunk.lines, chunk.kind, chunk.seq))
                }
                None => {
                    self.refused = Some(chunk);
                    return;
                }
            }
        }
        self.backlog.push(chunk);
    }

    /// The batch the spool refused: appended when it takes appends again, or sent without its
    /// record when the writer has nothing else to do (see `SPOOL_RETRY`).
    fn retry_refused(&mut self) {
        let Some(mut chunk) = self.refused.take() else {
            return;
        };
        if self.is_fatal() {
            return self.give_up(chunk);
        }
        if self.spool_retry_at.is_none_or(|t| Instant::now() >= t) {
            if let Some(loc) = self.append(&chunk) {
                chunk.hold = Some(Hold::new(Some(loc), chunk.lines, chunk.kind, chunk.seq));
                return self.backlog.push(chunk);
            }
        }
        if self.backlog.is_empty() && self.inflight.is_empty() {
            chunk.hold = Some(Hold::new(None, chunk.lines, chunk.kind, chunk.seq));
            return self.backlog.push(chunk);
        }
        self.refused = Some(chunk);
    }

    /// Appends a batch to the spool; `None` when the spool refused it (said; intake pauses).
    fn append(&mut self, chunk: &Chunk) -> Option<crate::pipeline::Loc> {
        let spool = self.backlog.spool.as_mut()?;
        match spool.append(chunk.kind, chunk.lines, &chunk.data) {
            Ok(loc) => {
                if chunk.kind == ChunkKind::User {
                    Counters::add(&self.counters.spooled, chunk.lines);
                }
                self.kept.push(chunk.seq);
                self.spool_retry_at = None;
                *self.state.spool_refusal.lock() = None;
                Some(loc)
            }
            Err(refused) => {
                let msg = format!("{} at {}", refused, spool.dir().display());
                self.spool_retry_at = Some(Instant::now() + SPOOL_RETRY);
                *self.state.spool_refusal.lock() = Some(msg.clone());
                self.note(
                    "spool-full",
                    format!("{msg}: taking no more points until it takes appends again"),
                );
                None
            }
        }
    }

    /// A batch (or part) that is settled: delivered, refused by InfluxDB, or counted as lost.
    /// When it was the last part of its batch, the batch's record is acked in the spool (or,
    /// for a batch the spool refused, it counts as kept now).
    fn settled(&mut self, chunk: &Chunk) {
        let Some(hold) = &chunk.hold else { return };
        if !hold.settle_part() {
            return;
        }
        match (hold.loc, &mut self.backlog.spool) {
            (Some(loc), Some(spool)) => {
                if let Err(e) = spool.ack(loc, hold.lines, hold.kind) {
                    let msg = format!(
                        "could not mark a delivered batch in the spool ({e}): the next \
                         process replays it (InfluxDB stores it once)"
                    );
                    self.note("ack", msg);
                }
            }
            _ => self.state.secured.keep(&[hold.seq]),
        }
    }

    /// A chunk that cannot be delivered now: left in the spool when it is there (appended
    /// now if it is not yet and the spool takes it), else counted as dropped.
    fn give_up(&mut self, chunk: Chunk) {
        let spooled = chunk.hold.as_ref().is_some_and(|h| h.loc.is_some());
        if spooled {
            return;
        }
        if chunk.hold.is_none() && self.append(&chunk).is_some() {
            return;
        }
        self.count_dropped(&chunk);
    }

    fn count_dropped(&self, chunk: &Chunk) {
        if chunk.kind == ChunkKind::User {
            Counters::add(&self.counters.dropped_undelivered, chunk.lines);
        }
    }

    fn dispatch(&mut self) {
        if self.is_fatal() {
            for chunk in self.backlog.drain_memory() {
                self.give_up(chunk);
            }
            return;
        }
        while self.inflight.len() < self.concurrency && Instant::now() >= self.not_before {
            match self.backlog.pop() {
                None => break,
                Some(Err(lost)) => {
                    let hold = lost.hold;
                    self.note(
                        "spool-read",
                        format!(
                            "a spool record could not be read back ({}): its {} point(s) are \
                             lost",
                            lost.error, hold.lines
                        ),
                    );
                    if hold.kind == ChunkKind::User {
                        Counters::add(&self.counters.dropped_undelivered, hold.lines);
                    }
                    let mut gone = Chunk::new(Vec::new(), hold.lines, hold.kind);
                    gone.hold = Some(hold);
                    self.settled(&gone);
                }
                Some(Ok(chunk)) => self.spawn_send(chunk),
            }
        }
    }

    fn spawn_send(&mut self, chunk: Chunk) {
        let target = self.target.clone();
        let timeout = match *self.state.deadline.lock() {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(50))
                .min(self.request_timeout),
            None => self.request_timeout,
        };
        let mut cancelled = self.cancel.subscribe();
        self.inflight.spawn(async move {
            let started = Instant::now();
            let (body, gzipped) = match target.compress(&chunk.data) {
                Some(gz) => (gz, true),
                None => (chunk.data.clone(), false),
            };
            let sent_bytes = body.len();
            let outcome = tokio::select! {
                outcome = target.write(body, gzipped, timeout) => outcome,
                _ = cancelled.wait_for(|c| *c) => Outcome::Cancelled,
            };
            Done {
                chunk,
                outcome,
                latency: started.elapsed(),
                sent_bytes,
                started,
            }
        });
    }

    /// Carries out `policy::decide` for one answered (or cancelled) request.
    async fn settle(&mut self, done: Done) {
        let Done {
            mut chunk,
            outcome,
            latency,
            sent_bytes,
            started,
        } = done;
        let c = &self.counters;
        if outcome != Outcome::Cancelled {
            Counters::add(&c.requests, 1);
            Counters::add(&c.bytes_sent, sent_bytes as u64);
            c.record_latency(latency.as_micros() as u64);
        }
        let len = chunk.data.len();
        let facts = Facts {
            lines: chunk.lines,
            sent_before_db_created: self.db_created_at.is_some_and(|t| started < t),
            may_create_database: self.create_database,
            probes_left: chunk
                .probes
                .as_ref()
                .map_or(policy::probe_budget(chunk.lines), |p| p.load(Relaxed)),
        };
        match policy::decide(&outcome, facts) {
            Decision::Keep | Decision::Resend => self.backlog.push_front(chunk),
            Decision::Count {
                written,
                rejected,
                kind,
                exact,
                reason,
            } => {
                if written == chunk.lines {
                    self.failures = 0;
                    self.db_created_at = None;
                }
                // InfluxDB answered and the chunk is settled: writing gets through again.
                *self.state.current_error.lock() = None;
                if rejected > 0 {
                    self.note(
                        kind,
                        format!("InfluxDB refused {rejected} line(s): {reason}"),
                    );
                }
                if !exact {
                    self.note(
                        "inexact",
                        format!(
                            "the bisection budget of a batch ran out: counted {rejected} of {} \
                             lines as refused from InfluxDB's answer, which may be inexact",
                            chunk.lines
                        ),
                    );
                }
                self.count_rejected(&chunk, rejected);
                self.count_written(&chunk, written);
                self.backlog.release(len);
                self.settled(&chunk);
                if rejected == 0 {
                    self.queue.recycle(chunk.data);
                }
            }
            Decision::Retry { after, reason } => {
                self.back_off(after);
                let wait = self.not_before.saturating_duration_since(Instant::now());
                self.note(
                    "retry",
                    format!("write failed, retrying in {wait:?}: {reason}"),
                );
                // The log line says when the next attempt comes; the last error is read later
                // (the close report), when that wait is stale or no attempt follows at all.
                *self.state.last_error.lock() = Some(format!("write failed: {reason}"));
                self.failing(format!("write failed, retrying: {reason}"));
                Counters::add(&self.counters.retried, 1);
                chunk.attempts += 1;
                self.backlog.push_front(chunk);
            }
            Decision::Split => {
                self.note(
                    "413",
                    "InfluxDB refused a batch as too large (413): splitting it".into(),
                );
                self.push_halves(chunk);
            }
            Decision::Bisect { reason } => {
                let probes = chunk.probes.get_or_insert_with(|| {
                    Arc::new(AtomicU32::new(policy::probe_budget(chunk.lines)))
                });
                probes.fetch_sub(2, Relaxed);
                self.note(
                    "bisect",
                    format!(
                        "InfluxDB refused some of {} lines without saying exactly which \
                         ({reason}): sending halves to count them",
                        chunk.lines
                    ),
                );
                self.push_halves(chunk);
            }
            Decision::CreateDatabase => {
                // Right after a creation the write is tried again at once, but only once until
                // a write succeeds: a server that keeps saying "not found" must not be hammered.
                let failed = match self.target.create_database().await {
                    Ok(()) => {
                        let first = self.db_created_at.is_none();
                        self.db_created_at = Some(Instant::now());
                        (!first).then(|| "it was created but is still not found".to_string())
                    }
                    Err(e) => Some(e),
                };
                if let Some(e) = failed {
                    self.database_missing(&e);
                }
                self.backlog.push_front(chunk);
            }
            Decision::MissingDatabase => {
                self.database_missing("PERFSINK_CREATE_DATABASE is off");
                self.backlog.push_front(chunk);
            }
            Decision::Stop { reason } => {
                let msg = format!(
                    "InfluxDB at {} refused the credentials ({reason}); writing stopped",
                    self.target.base_url
                );
                self.note("auth", msg.clone());
                self.failing(msg.clone());
                *self.state.fatal.lock() = Some(Error::Auth(msg));
                self.backlog.release(len);
                self.give_up(chunk);
            }
        }
    }

    /// The database is missing and was not created (`why`): back off, say so.
    fn database_missing(&mut self, why: &str) {
        let db = self.target.database.clone().unwrap_or_default();
        self.back_off(None);
        let msg = format!("database {db:?} not found and not created: {why}");
        self.failing(msg.clone());
        self.note("no-db", msg);
        Counters::add(&self.counters.retried, 1);
    }

    /// One more failure in a row: no request starts before the backoff (at least `after`).
    fn back_off(&mut self, after: Option<Duration>) {
        self.failures = self.failures.saturating_add(1);
        let wait = retry::backoff(self.retry_initial, self.retry_max, self.failures, after);
        self.not_before = self.not_before.max(Instant::now() + wait);
    }

    /// Sends a chunk of several lines again as two halves, first half first. A chunk that
    /// cannot be cut (no line boundary found) is counted as refused rather than sent forever.
    fn push_halves(&mut self, chunk: Chunk) {
        match chunk.split() {
            Ok((a, b)) => {
                self.backlog.push_front(b);
                self.backlog.push_front(a);
            }
            Err(chunk) => {
                self.note(
                    "uncut",
                    "InfluxDB refused a batch that cannot be cut into lines".into(),
                );
                self.count_rejected(&chunk, chunk.lines);
                self.backlog.release(chunk.data.len());
                self.settled(&chunk);
            }
        }
    }

    fn count_written(&self, chunk: &Chunk, lines: u64) {
        match chunk.kind {
            ChunkKind::User => Counters::add(&self.counters.written, lines),
            ChunkKind::SelfMetrics => Counters::add(&self.counters.self_metrics_written, lines),
        }
    }

    fn count_rejected(&self, chunk: &Chunk, lines: u64) {
        if chunk.kind == ChunkKind::User {
            Counters::add(&self.counters.rejected_server, lines);
        }
    }

    fn emit_self_metrics(&mut self) {
        if self.self_metrics.is_none() {
            return;
        }
        let stats = self.counters.snapshot();
        let mut data = Vec::with_capacity(512);
        selfmetrics::encode(
            &mut data,
            &self.host,
            &self.source,
            &self.global_tags,
            &stats,
            now_ns(),
            self.precision,
            self.dialect,
        );
        if !data.is_empty() {
            self.admit(Chunk::new(data, 1, ChunkKind::SelfMetrics));
        }
    }

    /// After the deadline: whatever is left stays in the spool (appended now if it is not
    /// there yet), or is counted as dropped.
    fn finish(&mut self) {
        if let Some(chunk) = self.refused.take() {
            self.give_up(chunk);
        }
        while let Some(chunk) = self.queue.try_recv() {
            self.give_up(chunk);
        }
        if let Some(chunk) = self.queue.take_rest() {
            self.give_up(chunk);
        }
        // A producer that held the accumulator while we drained may have queued more.
        while let Some(chunk) = self.queue.try_recv() {
            self.give_up(chunk);
        }
        for chunk in self.backlog.drain_memory() {
            self.give_up(chunk);
        }
        self.commit();
        if let Some(spool) = &mut self.backlog.spool {
            if let Err(e) = spool.close() {
                crate::log::warn(format_args!("closing the spool: {e}"));
            }
        }
        let kept = self.backlog.spool.as_ref().map_or(0, |s| s.user_lines());
        self.state.kept_in_spool.store(kept, Relaxed);
        self.counters.notify_settled();
    }

    /// Remembers the latest failure and logs each kind once, so a long outage does not flood
    /// the host's stderr. Messages never contain credentials.
    fn note(&mut self, kind: &'static str, msg: String) {
        if self.logged.insert(kind) {
            crate::log::warn(format_args!("{msg}"));
        }
        *self.state.last_error.lock() = Some(msg);
    }
}
