//! The sink: the public Rust API that ties the layers together. Producers call `submit` (the
//! fast path, points by series id) or `record` (one multi-field point by names); both encode
//! in the caller's thread and never wait on the network.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::config::{Api, Config};
use crate::error::{Error, Result};
use crate::lineproto::{write_field, write_float, write_timestamp, FieldOptions};
use crate::lineproto::{Forward, InputPrecision, LineError, ParseError, ParsedLine};
use crate::model::{Field, Point, Precision, SeriesId, Tag};
use crate::pipeline::queue::Produced;
use crate::pipeline::Queue;
use crate::series::{SeriesEntry, SeriesRegistry};
use crate::stats::{Counters, Stats};
use crate::writer::{Writer, WriterState};

/// What `submit` did with a batch.
#[derive(Debug, Default, PartialEq)]
pub struct Submitted {
    /// Points taken into the pipeline.
    pub accepted: usize,
    /// Points refused (invalid value, unknown series); counted in `rejected_invalid`.
    pub rejected: usize,
    /// Points dropped by the full-queue policy; counted in `dropped_queue_full`.
    pub dropped: usize,
    /// The first reason a point was not taken.
    pub first_error: Option<Error>,
}

impl Submitted {
    /// `Ok(accepted)` when every point was taken, else the first error.
    pub fn into_result(self) -> Result<usize> {
        match self.first_error {
            None => Ok(self.accepted),
            Some(e) => Err(e),
        }
    }
}

impl From<Produced> for Submitted {
    fn from(p: Produced) -> Self {
        Submitted {
            accepted: p.accepted,
            rejected: p.rejected,
            dropped: p.dropped,
            first_error: p.first_error,
        }
    }
}

/// What `ingest` did with a body of line protocol.
#[derive(Debug, Default, PartialEq)]
pub struct Ingested {
    /// Lines taken into the pipeline.
    pub accepted: usize,
    /// Lines refused as malformed (InfluxDB's own rules, see `lineproto::parse`); counted in
    /// `rejected_invalid`.
    pub rejected: usize,
    /// Valid lines dropped by the full-queue policy (counted in `dropped_queue_full`), or not
    /// taken because the sink is closed.
    pub dropped: usize,
    /// The first ten refused lines: line number in the body and
    /// `unable to parse '<line>': <reason>`, as InfluxDB words it.
    pub errors: Vec<(usize, String)>,
    /// Why valid lines were dropped or will not reach InfluxDB: `QueueFull`, `Closed`, or the
    /// writer's fatal error (credentials refused).
    pub sink_error: Option<Error>,
}

/// How many refused lines `Ingested::errors` lists.
const MAX_INGEST_ERRORS: usize = 10;

fn note_line_error(errors: &mut Vec<(usize, String)>, number: usize, e: LineError<'_>) {
    if errors.len() < MAX_INGEST_ERRORS {
        errors.push((number, e.to_string()));
    }
}

/// The final account of a sink, given by `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub stats: Stats,
    /// User points left in the disk spool, replayed by the next sink on that directory.
    pub kept_in_spool: u64,
    /// The latest write failure, if any.
    pub last_error: Option<String>,
}

impl Report {
    /// Accepted points that did not reach InfluxDB: dropped undelivered (close timed out,
    /// writing stopped) or kept in the spool. 0 when everything was delivered.
    pub fn undelivered(&self) -> u64 {
        self.stats.dropped_undelivered + self.kept_in_spool
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "perfsink: accepted {}, written {}, rejected {} (invalid {}, by server {}), dropped {} (queue full {}, undelivered {}), kept in spool {}, retried requests {}",
            s.accepted + s.replayed,
            s.written,
            s.rejected,
            s.rejected_invalid,
            s.rejected_server,
            s.dropped,
            s.dropped_queue_full,
            s.dropped_undelivered,
            self.kept_in_spool,
            s.retried
        )?;
        if let Some(e) = &self.last_error {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

/// The running parts of an enabled sink.
struct Engine {
    queue: Arc<Queue>,
    writer: Mutex<Writer>,
    /// The writer's shared state, read on every call without taking the writer's lock.
    state: Arc<WriterState>,
}

/// A metric sink. Thread-safe: share it (`Arc<Sink>`) between producer threads.
pub struct Sink {
    config: Config,
    counters: Arc<Counters>,
    series: SeriesRegistry,
    /// `None` when reporting is disabled (`INFLUXDB_URL` unset): calls succeed and do nothing.
    engine: Option<Engine>,
    field_options: FieldOptions,
    closed: AtomicBool,
    report: Mutex<Option<Report>>,
    /// The relay's de-duplication: per series key, the latest timestamp in and out.
    relay_last_ts: Mutex<RelayTimes>,
}

impl Sink {
    /// Opens a sink and starts its writer (unless reporting is disabled).
    pub fn open(config: Config) -> Result<Sink> {
        let counters = Arc::new(Counters::default());
        let uint_as_int = matches!(
            config.endpoint.as_ref().map(|e| &e.api),
            Some(Api::V1 { .. })
        );
        let engine = match &config.endpoint {
            None => None,
            Some(endpoint) => {
                let wake = Arc::new(Notify::new());
                let queue = Arc::new(Queue::new(
                    config.queue_capacity,
                    config.batch_lines,
                    config.batch_bytes,
                    config.queue_policy,
                    wake.clone(),
                    counters.clone(),
                ));
                let writer =
                    Writer::start(&config, endpoint, queue.clone(), counters.clone(), wake)?;
                Some(Engine {
                    queue,
                    state: writer.state.clone(),
                    writer: Mutex::new(writer),
                })
            }
        };
        if engine.is_none() {
            crate::log::warn(format_args!(
                "INFLUXDB_URL is not set: reporting is disabled, points are accepted and discarded"
            ));
        }
        Ok(Sink {
            series: SeriesRegistry::new(config.max_series, config.global_tags.clone()),
            config,
            counters,
            engine,
            field_options: FieldOptions { uint_as_int },
            closed: AtomicBool::new(false),
            report: Mutex::new(None),
            relay_last_ts: Mutex::new(HashMap::new()),
        })
    }

    /// Opens a sink configured from `INFLUXDB_*` and `PERFSINK_*` environment variables.
    pub fn from_env() -> Result<Sink> {
        Sink::open(Config::from_env()?)
    }

    /// Opens a sink from a `KEY=value;...` string.
    pub fn from_kv(s: &str) -> Result<Sink> {
        Sink::open(Config::from_kv(s)?)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// `false` when `INFLUXDB_URL` is unset and nothing is reported.
    pub fn enabled(&self) -> bool {
        self.engine.is_some()
    }

    /// Registers a series for the fast path; its values are written to `value_field`.
    pub fn register_series(
        &self,
        measurement: &str,
        tags: &[Tag<'_>],
        value_field: &str,
    ) -> Result<SeriesId> {
        self.intern(measurement, tags, Some(value_field))
    }

    fn intern(
        &self,
        measurement: &str,
        tags: &[Tag<'_>],
        value_field: Option<&str>,
    ) -> Result<SeriesId> {
        let id = self.series.register(measurement, tags, value_field);
        match &id {
            Err(Error::SeriesLimit(_)) => Counters::add(&self.counters.series_rejected, 1),
            Ok(_) => self
                .counters
                .series
                .store(self.series.len() as u64, Relaxed),
            Err(_) => {}
        }
        id
    }

    /// The fast path: encodes a batch of points of registered series. One lock per call.
    pub fn submit(&self, points: &[Point<'_>]) -> Submitted {
        self.submit_with(points.len(), |i| Ok(points[i]))
    }

    /// `submit` for callers whose points live in another shape: `point(i)` gives point `i`,
    /// or the reason it cannot be read; no copy of the batch is made.
    pub fn submit_with<'p, F>(&self, n: usize, point: F) -> Submitted
    where
        F: FnMut(usize) -> Result<Point<'p>>,
    {
        self.submit_source(n, &mut ClosurePoints { point, extra: &[] })
    }

    /// The fast path over any [`PointSource`] (the C ABI reads its points straight from C
    /// memory, and writes their extra fields into the line without building `Field`s).
    pub fn submit_source<S: PointSource>(&self, n: usize, source: &mut S) -> Submitted {
        let Some(engine) = self.live_engine() else {
            return self.not_live(n);
        };
        let view = self.series.view();
        let precision = self.config.precision;
        let dedup = self.config.dedup;
        let opts = self.field_options;
        let mut shifted = 0u64;
        let produced = engine.queue.produce(n, |i, buf| {
            let head = source.read(i)?;
            let entry = match view.get(head.series) {
                Some(entry) if entry.has_value_field() => entry,
                Some(_) => return Err(source.refused(i, no_value_field(head.series))),
                None => return Err(source.refused(i, Error::UnknownSeries(head.series))),
            };
            let start = buf.len();
            buf.extend_from_slice(entry.prefix());
            if let Err(e) = write_float(buf, head.value) {
                buf.truncate(start);
                return Err(source.refused(i, e));
            }
            if let Err(e) = source.write_fields(i, buf, opts, value_key(entry)) {
                buf.truncate(start);
                return Err(e);
            }
            finish_line(
                buf,
                entry,
                head.timestamp_ns,
                precision,
                dedup,
                &mut shifted,
            );
            Ok(1)
        });
        Counters::add(&self.counters.deduplicated, shifted);
        self.with_fatal(produced.into())
    }

    /// Counts points a foreign caller handed over that could not even be read (invalid
    /// UTF-8, NULL with a length...) in `rejected_invalid`, so every refused point shows.
    #[doc(hidden)]
    pub fn count_unreadable(&self, points: u64) {
        Counters::add(&self.counters.rejected_invalid, points);
    }

    /// The convenience path: one point with any number of typed fields, by names.
    pub fn record(
        &self,
        measurement: &str,
        tags: &[Tag<'_>],
        fields: &[Field<'_>],
        timestamp_ns: i64,
    ) -> Result<()> {
        let Some(engine) = self.live_engine() else {
            return self.not_live(1).into_result().map(|_| ());
        };
        if fields.is_empty() {
            Counters::add(&self.counters.rejected_invalid, 1);
            return Err(Error::InvalidInput(
                "a point needs at least one field".into(),
            ));
        }
        let repeated =
            (1..fields.len()).find(|&i| fields[..i].iter().any(|g| g.key == fields[i].key));
        if let Some(i) = repeated {
            Counters::add(&self.counters.rejected_invalid, 1);
            return Err(repeated_field(fields[i].key));
        }
        let id = match self.intern(measurement, tags, None) {
            Ok(id) => id,
            Err(e) => {
                Counters::add(&self.counters.rejected_invalid, 1);
                return Err(e);
            }
        };
        let view = self.series.view();
        let entry = view.get(id).ok_or(Error::UnknownSeries(id))?;
        let (precision, dedup, opts) =
            (self.config.precision, self.config.dedup, self.field_options);
        let mut shifted = 0u64;
        let produced = engine.queue.produce(1, |_, buf| {
            let start = buf.len();
            buf.extend_from_slice(entry.key_and_space());
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                if let Err(e) = write_field(buf, f.key, f.value, opts) {
                    buf.truncate(start);
                    return Err(e);
                }
            }
            finish_line(buf, entry, timestamp_ns, precision, dedup, &mut shifted);
            Ok(1)
        });
        Counters::add(&self.counters.deduplicated, shifted);
        self.with_fatal(produced.into()).into_result().map(|_| ())
    }

    /// The relay's path: a body of line protocol as a client POSTs it to InfluxDB (`/write`,
    /// `/api/v2/write`), its timestamps in `precision`. Each valid line is copied into the
    /// pipeline as it came, with its timestamp rescaled to the sink's precision (a line without
    /// one gets the receive time, truncated to `precision` as InfluxDB does), the global tags
    /// merged into its tag set, and, for a v1 target, unsigned fields written as integers.
    /// Malformed lines are refused one by one (counted in `rejected_invalid`); the others are
    /// still taken. Lines are not interned: they reach InfluxDB with the series key their
    /// client wrote. With `PERFSINK_DEDUP` a line tied with the latest timestamp of its series
    /// moves just after it (`write_unique`), so InfluxDB keeps both.
    pub fn ingest(&self, body: &[u8], precision: InputPrecision) -> Ingested {
        /// Lines parsed (outside the queue lock) per `produce` call.
        const BATCH: usize = 512;
        let forward = Forward::new(
            precision,
            self.config.precision,
            crate::model::now_ns(),
            &self.config.global_tags,
            self.field_options.uint_as_int,
        );
        let engine = self.live_engine();
        let disabled = self.engine.is_none() && !self.closed.load(Relaxed);
        let mut out = Ingested::default();
        let mut lines = crate::lineproto::lines(body);
        let mut batch: Vec<(usize, ParsedLine<'_>)> = Vec::with_capacity(BATCH);
        let mut scratch = Vec::new();
        loop {
            batch.clear();
            for (number, line) in lines.by_ref() {
                match line {
                    Ok(line) => {
                        batch.push((number, line));
                        if batch.len() == BATCH {
                            break;
                        }
                    }
                    Err(e) => {
                        out.rejected += 1;
                        if engine.is_some() {
                            Counters::add(&self.counters.rejected_invalid, 1);
                        }
                        note_line_error(&mut out.errors, number, e);
                    }
                }
            }
            if batch.is_empty() {
                break;
            }
            let refused = |number: usize, line: &ParsedLine<'_>, reason, errors: &mut _| {
                let error = ParseError { reason, offset: 0 };
                let text = line.line();
                note_line_error(errors, number, LineError { text, error });
            };
            match engine {
                Some(engine) => {
                    let errors = &mut out.errors;
                    let mut last_ts = self.config.dedup.then(|| self.relay_last_ts.lock());
                    let cap = self.config.max_series;
                    let mut shifted = 0u64;
                    let p = engine.queue.produce(batch.len(), |i, buf| {
                        let (number, line) = &batch[i];
                        let written = forward.timestamp(line).and_then(|ts| match &mut last_ts {
                            Some(map) => {
                                let moved = write_unique(map, cap, &forward, buf, line, ts)?;
                                shifted += u64::from(moved);
                                Ok(())
                            }
                            None => forward.write_at(buf, line, ts, false),
                        });
                        written.map(|()| 1).map_err(|reason| {
                            refused(*number, line, reason, errors);
                            Error::InvalidInput(reason.into())
                        })
                    });
                    drop(last_ts);
                    Counters::add(&self.counters.deduplicated, shifted);
                    out.accepted += p.accepted;
                    out.rejected += p.rejected;
                    out.dropped += p.dropped;
                    if p.dropped > 0 {
                        out.sink_error.get_or_insert(Error::QueueFull);
                    }
                }
                None => {
                    for (number, line) in &batch {
                        scratch.clear();
                        match forward.write(&mut scratch, line) {
                            Ok(()) if disabled => out.accepted += 1,
                            Ok(()) => out.dropped += 1,
                            Err(reason) => {
                                out.rejected += 1;
                                refused(*number, line, reason, &mut out.errors);
                            }
                        }
                    }
                }
            }
        }
        if engine.is_none() && !disabled {
            out.sink_error = Some(Error::Closed);
        } else if out.sink_error.is_none() {
            out.sink_error = self.fatal().err();
        }
        out
    }

    /// Sends everything submitted so far and waits until InfluxDB confirmed (or refused) it,
    /// at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        let Some(engine) = self.live_engine() else {
            return if self.enabled() {
                Err(Error::Closed)
            } else {
                Ok(())
            };
        };
        let deadline = Instant::now() + timeout;
        self.fatal()?;
        engine.queue.flush_accumulator(timeout)?;
        let target = self.counters.entered();
        while self.counters.settled() < target {
            self.fatal()?;
            if Instant::now() >= deadline {
                return Err(Error::Timeout);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.fatal()
    }

    pub fn stats(&self) -> Stats {
        self.counters.snapshot()
    }

    /// The latest write failure the writer saw, if any.
    pub fn last_error(&self) -> Option<String> {
        let engine = self.engine.as_ref()?;
        let writer = engine.writer.lock();
        let e = writer.state.last_error.lock().clone();
        e
    }

    /// Delivers what is left within `PERFSINK_CLOSE_TIMEOUT_MS`, stops the writer, and reports.
    /// What could not be delivered is kept in the spool (if configured) or counted as dropped.
    /// Calling it again returns the same report.
    pub fn close(&self) -> Report {
        let mut report = self.report.lock();
        if let Some(r) = report.as_ref() {
            return r.clone();
        }
        self.closed.store(true, Relaxed);
        let mut kept_in_spool = 0;
        let mut last_error = None;
        if let Some(engine) = &self.engine {
            let deadline = Instant::now() + self.config.close_timeout;
            let _ = engine.queue.flush_accumulator(self.config.close_timeout);
            let mut writer = engine.writer.lock();
            writer.stop(deadline);
            kept_in_spool = writer.state.kept_in_spool.load(Relaxed);
            last_error = writer.state.last_error.lock().clone();
        }
        let r = Report {
            stats: self.stats(),
            kept_in_spool,
            last_error,
        };
        *report = Some(r.clone());
        r
    }

    fn live_engine(&self) -> Option<&Engine> {
        if self.closed.load(Relaxed) {
            return None;
        }
        self.engine.as_ref()
    }

    /// A disabled sink takes everything and does nothing; a closed one refuses.
    fn not_live(&self, n: usize) -> Submitted {
        if self.engine.is_none() && !self.closed.load(Relaxed) {
            return Submitted {
                accepted: n,
                ..Default::default()
            };
        }
        Submitted {
            first_error: Some(Error::Closed),
            ..Default::default()
        }
    }

    fn fatal(&self) -> Result<()> {
        match &self.engine {
            Some(engine) => match engine.state.fatal.lock().clone() {
                Some(e) => Err(e),
                None => Ok(()),
            },
            None => Ok(()),
        }
    }

    /// After a fatal write error, points are still taken (and counted as undelivered by the
    /// writer) but the caller is told why nothing reaches InfluxDB.
    fn with_fatal(&self, mut s: Submitted) -> Submitted {
        if s.first_error.is_none() {
            if let Err(e) = self.fatal() {
                s.first_error = Some(e);
            }
        }
        s
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.close();
    }
}

/// The parts of a fast-path point the sink reads before its extra fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PointHead {
    pub series: SeriesId,
    pub value: f64,
    pub timestamp_ns: i64,
}

/// Points of a `submit_source` call, read one at a time: `read(i)` first, then (when the
/// point's series and value are good) `write_fields(i, ..)` for the same `i`.
pub trait PointSource {
    /// The head of point `i`, or why the point cannot be read.
    fn read(&mut self, i: usize) -> Result<PointHead>;
    /// Appends `,key=value` for each extra field of point `i` (nothing when it has none).
    /// A key given twice, or written as `value_key` (the series' value field as the line
    /// holds it, see [`is_field_named`]), refuses the point with [`repeated_field`].
    /// On error `buf` may hold a partial field; the caller cuts the line back.
    fn write_fields(
        &mut self,
        i: usize,
        buf: &mut Vec<u8>,
        opts: FieldOptions,
        value_key: &[u8],
    ) -> Result<()>;
    /// Point `i` is refused for `reason` (its series or value) before its fields were
    /// written: the error to report. A source whose fields can be unreadable (the C ABI)
    /// reports that first, as if the fields had been read before anything else.
    #[cold]
    fn refused(&mut self, _i: usize, reason: Error) -> Error {
        reason
    }
}

/// `submit_with`'s source: a closure giving `Point`s.
struct ClosurePoints<'p, F> {
    point: F,
    extra: &'p [Field<'p>],
}

impl<'p, F> PointSource for ClosurePoints<'p, F>
where
    F: FnMut(usize) -> Result<Point<'p>>,
{
    #[inline]
    fn read(&mut self, i: usize) -> Result<PointHead> {
        let p = (self.point)(i)?;
        self.extra = p.extra_fields;
        Ok(PointHead {
            series: p.series,
            value: p.value,
            timestamp_ns: p.timestamp_ns,
        })
    }

    #[inline]
    fn write_fields(
        &mut self,
        _: usize,
        buf: &mut Vec<u8>,
        opts: FieldOptions,
        value_key: &[u8],
    ) -> Result<()> {
        write_fields(buf, self.extra, opts, value_key)
    }
}

/// Appends `,key=value` for each field; see [`PointSource::write_fields`].
#[inline]
fn write_fields(
    buf: &mut Vec<u8>,
    fields: &[Field<'_>],
    opts: FieldOptions,
    value_key: &[u8],
) -> Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if fields[..i].iter().any(|g| g.key == f.key) {
            return Err(repeated_field(f.key));
        }
        buf.push(b',');
        let at = buf.len();
        write_field(buf, f.key, f.value, opts)?;
        if is_field_named(&buf[at..], value_key) {
            return Err(repeated_field(f.key));
        }
    }
    Ok(())
}

/// The series' value field as its lines hold it (escaped), `value` in `m,t=a value=`.
#[inline]
fn value_key(entry: &SeriesEntry) -> &[u8] {
    let prefix = entry.prefix();
    &prefix[entry.key_and_space().len()..prefix.len() - 1]
}

/// Whether `written` (`key=value...`, as `write_field` wrote it) is a field with the key
/// written as `key`. Exact: the `=` right after a written key is the separator, never part
/// of the key, since an escaped key never ends with the backslash of an escape.
#[inline]
pub(crate) fn is_field_named(written: &[u8], key: &[u8]) -> bool {
    written.len() > key.len() && written[key.len()] == b'=' && written.starts_with(key)
}

/// A point holds each field key once, its series' value field included: InfluxDB would
/// keep only the last value of a repeated key.
#[cold]
pub(crate) fn repeated_field(key: &str) -> Error {
    Error::InvalidInput(format!(
        "field key {key:?} is used twice in one point (the series' value field counts)"
    ))
}

#[cold]
fn no_value_field(series: SeriesId) -> Error {
    Error::InvalidInput(format!(
        "series {series} was registered without a value field; use record()"
    ))
}

/// ` timestamp\n`, the timestamp made unique within its series when de-duplication is on.
fn finish_line(
    buf: &mut Vec<u8>,
    entry: &SeriesEntry,
    ts_ns: i64,
    precision: Precision,
    dedup: bool,
    shifted: &mut u64,
) {
    let mut ts = precision.from_ns(ts_ns);
    if dedup {
        let (unique, moved) = entry.unique_timestamp(ts);
        ts = unique;
        *shifted += moved as u64;
    }
    buf.push(b' ');
    write_timestamp(buf, ts);
    buf.push(b'\n');
}

/// Per series key as the client wrote it: the latest timestamp in and the latest out.
type RelayTimes = HashMap<Box<[u8]>, (i64, i64)>;

/// The relay's de-duplication. InfluxDB keeps one point per series and timestamp, so a line
/// whose timestamp falls between the latest one its client sent for the series and the latest
/// one written for it (a tie, or a tie moved earlier) is written one unit after the latest
/// written; other lines (later ones, and out-of-order ones) keep theirs. Per series key as the
/// client wrote it: `(latest in, latest out)`. Series past `cap` are not tracked (memory stays
/// bounded). The state changes only when the line was written. Returns whether it moved.
fn write_unique(
    last: &mut RelayTimes,
    cap: usize,
    forward: &Forward,
    buf: &mut Vec<u8>,
    line: &ParsedLine<'_>,
    ts: i64,
) -> std::result::Result<bool, &'static str> {
    match last.get_mut(line.key()) {
        Some((last_in, last_out)) => {
            let out = if *last_in <= ts && ts <= *last_out {
                last_out.saturating_add(1)
            } else {
                ts
            };
            forward.write_at(buf, line, out, out != ts)?;
            *last_in = (*last_in).max(ts);
            *last_out = (*last_out).max(out);
            Ok(out != ts)
        }
        None => {
            forward.write_at(buf, line, ts, false)?;
            if last.len() < cap {
                last.insert(line.key().into(), (ts, ts));
            }
            Ok(false)
        }
    }
}

#[cfg(test)]
mod relay_dedup_tests {
    use super::*;
    use crate::lineproto::lines;
    use crate::model::Precision;

    /// The timestamps `write_unique` gives the lines of `body` (all of one or more series).
    fn times(body: &str, cap: usize) -> Vec<i64> {
        let forward = Forward::new(InputPrecision::Ns, Precision::Ns, 0, &[], false);
        let mut map = HashMap::new();
        let mut out = Vec::new();
        for (_, line) in lines(body.as_bytes()) {
            let line = line.unwrap();
            let mut buf = Vec::new();
            let ts = forward.timestamp(&line).unwrap();
            write_unique(&mut map, cap, &forward, &mut buf, &line, ts).unwrap();
            let text = String::from_utf8(buf).unwrap();
            out.push(text.trim_end().rsplit(' ').next().unwrap().parse().unwrap());
        }
        out
    }

    #[test]
    fn ties_move_past_the_latest_written_and_nothing_else_moves() {
        let b = "m v=1 100\nm v=2 100\nm v=3 100\nm v=4 101\nm v=5 50\nm v=6 200\n";
        assert_eq!(times(b, 10), [100, 101, 102, 103, 50, 200]);
        // Another series is its own.
        assert_eq!(times("m,t=a v=1 7\nm,t=b v=1 7\n", 10), [7, 7]);
        // Past the cap a new series is not tracked.
        assert_eq!(
            times("m,t=a v=1 7\nm,t=b v=1 7\nm,t=b v=2 7\n", 1),
            [7, 7, 7]
        );
    }
}
