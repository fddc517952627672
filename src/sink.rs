//! The sink: the public Rust API that ties the layers together. Producers call `submit` (the
//! fast path, points by series id) or `record` (one multi-field point by names); both encode
//! in the caller's thread and never wait on the network.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::aggregate::{Sample, Stage};
use crate::config::{Api, Config, Endpoint, ServerVersion};
use crate::error::{Error, Result};
use crate::lineproto::{write_field, write_float, write_timestamp, FieldOptions, TimestampRange};
use crate::model::{Field, MetricKind, Point, Precision, SeriesId, Tag};
use crate::pipeline::queue::Produced;
use crate::pipeline::{Dedup, DedupConfig, Queue};
use crate::series::{KeyId, SeriesEntry, SeriesRegistry, SeriesView};
use crate::stats::{Counters, Stats};
use crate::writer::secured::Waited;
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

/// The final account of a sink, given by `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub stats: Stats,
    /// User points left in the disk spool, replayed by the next sink on that directory.
    pub kept_in_spool: u64,
    /// The latest write failure, if any.
    pub last_error: Option<String>,
    /// `PERFSINK_FAIL_ON_LOSS`: whether [`Report::failed`] counts a lost point as a failure.
    pub fail_on_loss: bool,
}

impl Report {
    /// Accepted points that did not reach InfluxDB: dropped undelivered (close timed out,
    /// writing stopped) or kept in the spool. 0 when everything was delivered.
    pub fn undelivered(&self) -> u64 {
        self.stats.dropped_undelivered + self.kept_in_spool
    }

    /// Points handed to the sink that are not in InfluxDB: rejected (invalid, or refused by the
    /// server), dropped (queue full, undeliverable) or left in the spool for a later run.
    pub fn lost(&self) -> u64 {
        self.stats.rejected + self.stats.dropped + self.kept_in_spool
    }

    /// The rule every tool applies to its exit code: with `PERFSINK_FAIL_ON_LOSS` (or a tool's
    /// `--fail-on-loss`) a run that lost a point failed, however the tool itself ended.
    pub fn failed(&self) -> bool {
        self.fail_on_loss && self.lost() > 0
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = &self.stats;
        write!(f, "perfsink: accepted {}", s.accepted + s.replayed)?;
        if s.replayed > 0 {
            write!(f, " ({} replayed from the spool)", s.replayed)?;
        }
        write!(
            f,
            ", written {}, rejected {} (invalid {}, by server {}), dropped {} (queue full {}, undelivered {}), kept in spool {}, retried requests {}",
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
        if s.deduplicated > 0 {
            write!(
                f,
                ", {} timestamps moved to stay unique in their series (PERFSINK_DEDUP)",
                s.deduplicated
            )?;
        }
        if s.aggregated > 0 {
            write!(
                f,
                ", {} samples aggregated into the accepted points (late {}, without percentiles {})",
                s.aggregated, s.aggregated_late, s.aggregated_no_percentiles
            )?;
        }
        if s.dedup_unchecked > 0 {
            write!(
                f,
                ", {} timestamps not checked for ties (older than PERFSINK_DEDUP_WINDOW_MS)",
                s.dedup_unchecked
            )?;
        }
        if let Some(e) = &self.last_error {
            write!(f, "; last error: {e}")?;
        }
        Ok(())
    }
}

/// How a sink is doing now: [`Sink::health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HealthStatus {
    /// Writing gets through (or reporting is disabled).
    Pass,
    /// Writes fail and are retried: points are held (memory, spool), none lost yet.
    Warn,
    /// Points are being lost: writing stopped for good (credentials refused), or points were
    /// dropped lately (queue full; memory and spool full; undeliverable): since the previous
    /// check, or within 10 s after the check that saw them.
    Fail,
}

impl HealthStatus {
    /// `pass`, `warn` or `fail`, as InfluxDB's `/health` spells them.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Pass => "pass",
            HealthStatus::Warn => "warn",
            HealthStatus::Fail => "fail",
        }
    }
}

/// [`Sink::health`]: the status and, unless it is `Pass`, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub status: HealthStatus,
    /// The current problem (never holds a secret); `None` once writing gets through again.
    pub error: Option<String>,
}

/// How long dropped points keep [`Sink::health`] at `Fail`: drops seen by a health check
/// count until this long after that check (and any drop since the previous check counts).
const DROP_WINDOW: Duration = Duration::from_secs(10);

/// What [`Sink::health`] has seen of the drop counters.
#[derive(Default)]
struct DropWatch {
    /// `dropped_queue_full`, `dropped_undelivered` at the previous check.
    seen: (u64, u64),
    /// When a check last saw them grow, and by how much.
    at: Option<(Instant, u64, u64)>,
}

/// How long `open` waits for `/ping` with `INFLUXDB_VERSION=auto`.
const VERSION_PROBE_LIMIT: Duration = Duration::from_millis(1500);

/// The configured server version, or with `auto` the one `/ping` reports within
/// [`VERSION_PROBE_LIMIT`]. When the server cannot be reached or does not tell, it stays
/// `Auto` (names follow the 1.x/2.x rules) and a line says so; producers never wait on the
/// network after this.
fn resolve_server_version(config: &Config, endpoint: &Endpoint) -> Result<ServerVersion> {
    if config.server_version != ServerVersion::Auto {
        return Ok(config.server_version);
    }
    let target = crate::writer::http::HttpTarget::new(config, endpoint)?;
    let why = match target.probe_version(VERSION_PROBE_LIMIT) {
        Ok(header) => match ServerVersion::from_ping(&header) {
            Some(version) => return Ok(version),
            None => format!("/ping reports version {header:?}"),
        },
        Err(e) => e,
    };
    crate::log::warn(format_args!(
        "server version of {} unknown ({why}): names are escaped for InfluxDB 1.x/2.x; \
         set INFLUXDB_VERSION to choose",
        target.base_url
    ));
    Ok(ServerVersion::Auto)
}

/// The running parts of an enabled sink.
struct Engine {
    queue: Arc<Queue>,
    writer: Mutex<Writer>,
    /// The writer's shared state, read on every call without taking the writer's lock.
    state: Arc<WriterState>,
    /// `PERFSINK_MODE=aggregate|both`: the aggregated mode.
    stage: Option<Stage>,
}

/// A metric sink. Thread-safe: share it (`Arc<Sink>`) between producer threads.
pub struct Sink {
    config: Config,
    counters: Arc<Counters>,
    series: Arc<SeriesRegistry>,
    /// `None` when reporting is disabled (`INFLUXDB_URL` unset): calls succeed and do nothing.
    engine: Option<Engine>,
    field_options: FieldOptions,
    closed: AtomicBool,
    report: Mutex<Option<Report>>,
    drops: Mutex<DropWatch>,
}

impl Sink {
    /// Opens a sink and starts its writer (unless reporting is disabled). With
    /// `INFLUXDB_VERSION=auto` it first asks the server its version (`resolve_server_version`).
    pub fn open(mut config: Config) -> Result<Sink> {
        if let Some(endpoint) = &config.endpoint {
            config.server_version = resolve_server_version(&config, endpoint)?;
        }
        let dialect = config.server_version.dialect().unwrap_or_default();
        let counters = Arc::new(Counters::default());
        let uint_as_int = matches!(
            config.endpoint.as_ref().map(|e| &e.api),
            Some(Api::V1 { .. })
        );
        let series = Arc::new(
            SeriesRegistry::new(config.max_series, config.global_tags.clone())
                .with_dialect(dialect),
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
                    DedupConfig::from_config(&config),
                    wake.clone(),
                    counters.clone(),
                ));
                let writer =
                    Writer::start(&config, endpoint, queue.clone(), counters.clone(), wake)?;
                let stage = match config.mode.aggregate() {
                    true => Some(Stage::start(
                        &config,
                        series.clone(),
                        queue.clone(),
                        counters.clone(),
                    )?),
                    false => None,
                };
                Some(Engine {
                    queue,
                    state: writer.state.clone(),
                    writer: Mutex::new(writer),
                    stage,
                })
            }
        };
        if engine.is_none() {
            crate::log::warn(format_args!(
                "INFLUXDB_URL is not set: reporting is disabled, points are accepted and discarded"
            ));
        }
        Ok(Sink {
            series,
            config,
            counters,
            engine,
            field_options: FieldOptions {
                uint_as_int,
                dialect,
                ..Default::default()
            },
            closed: AtomicBool::new(false),
            report: Mutex::new(None),
            drops: Mutex::new(DropWatch::default()),
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

    /// Registers a series for the fast path; its values are written to `value_field`. In the
    /// aggregated mode it also registers the series its intervals are written to.
    pub fn register_series(
        &self,
        measurement: &str,
        tags: &[Tag<'_>],
        value_field: &str,
    ) -> Result<SeriesId> {
        let id = self.intern(measurement, tags, Some(value_field))?;
        if let Some(stage) = self.engine.as_ref().and_then(|e| e.stage.as_ref()) {
            if !stage.aggregator.is_bound(id) {
                let bound = stage.bind(&self.series, id, measurement, tags);
                if let Err(e) = bound {
                    if matches!(e, Error::SeriesLimit(_)) {
                        Counters::add(&self.counters.series_rejected, 1);
                    }
                    return Err(e);
                }
                self.counters
                    .series
                    .store(self.series.len() as u64, Relaxed);
            }
        }
        Ok(id)
    }

    /// What the values of series `id` mean: which statistics its intervals carry in the
    /// aggregated mode (a series without a kind is a trend). Ignored in raw mode.
    pub fn set_series_kind(&self, id: SeriesId, kind: MetricKind) -> Result<()> {
        if self.series.view().get(id).is_none() {
            return Err(Error::UnknownSeries(id));
        }
        if let Some(stage) = self.engine.as_ref().and_then(|e| e.stage.as_ref()) {
            stage.aggregator.set_kind(id, kind);
        }
        Ok(())
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
            // Series keys, so `register_series` and `record` of one series count once.
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
        let stage = engine.stage.as_ref();
        if let Some(stage) = stage.filter(|_| !self.config.mode.raw()) {
            return self.with_fatal(self.aggregate_only(stage, &view, n, source));
        }
        let precision = self.config.precision;
        let timestamps = TimestampRange::new(precision);
        let opts = self.field_options;
        // `both`: the samples written as lines, folded after the lines are taken.
        let mut samples: Vec<Sample> = Vec::with_capacity(if stage.is_some() { n } else { 0 });
        let produced = engine.queue.produce(n, |i, buf, dedup| {
            let head = source.read(i)?;
            let entry = match view.get(head.series) {
                Some(entry) if entry.has_value_field() => entry,
                Some(_) => return Err(source.refused(i, no_value_field(head.series))),
                None => return Err(source.refused(i, Error::UnknownSeries(head.series))),
            };
            if let Err(e) = timestamps.check(head.timestamp_ns) {
                return Err(source.refused(i, e));
            }
            let start = buf.len();
            buf.extend_from_slice(entry.prefix());
            if let Err(e) = write_float(buf, head.value) {
                buf.truncate(start);
                return Err(source.refused(i, e));
            }
            let opts = FieldOptions {
                series_key_len: entry.key_and_space().len() - 1,
                ..opts
            };
            if let Err(e) = source.write_fields(i, buf, opts, value_key(entry)) {
                buf.truncate(start);
                return Err(e);
            }
            finish_line(buf, dedup, entry.key_id(), head.timestamp_ns, precision);
            if stage.is_some() {
                samples.push(Sample {
                    series: head.series,
                    value: head.value,
                    timestamp_ns: head.timestamp_ns,
                });
            }
            Ok(1)
        });
        if let Some(stage) = stage {
            stage
                .aggregator
                .add(&view, samples.len(), |i| Some(samples[i]));
        }
        self.with_fatal(produced.into())
    }

    /// `PERFSINK_MODE=aggregate`: the samples are checked as a line would be (series, value,
    /// timestamp; their extra fields are not part of the statistics) and folded.
    fn aggregate_only<S: PointSource>(
        &self,
        stage: &Stage,
        view: &SeriesView<'_>,
        n: usize,
        source: &mut S,
    ) -> Submitted {
        let timestamps = TimestampRange::new(self.config.precision);
        let mut first_error = None;
        let folded = stage.aggregator.add(view, n, |i| {
            let checked = source.read(i).and_then(|head| {
                match view.get(head.series) {
                    Some(entry) if entry.has_value_field() => {}
                    Some(_) => return Err(source.refused(i, no_value_field(head.series))),
                    None => return Err(source.refused(i, Error::UnknownSeries(head.series))),
                }
                if let Err(e) = timestamps.check(head.timestamp_ns) {
                    return Err(source.refused(i, e));
                }
                if !head.value.is_finite() {
                    let e = write_float(&mut Vec::new(), head.value).unwrap_err();
                    return Err(source.refused(i, e));
                }
                Ok(Sample {
                    series: head.series,
                    value: head.value,
                    timestamp_ns: head.timestamp_ns,
                })
            });
            match checked {
                Ok(sample) => Some(sample),
                Err(e) => {
                    first_error.get_or_insert(e);
                    None
                }
            }
        });
        let rejected = n - folded;
        Counters::add(&self.counters.rejected_invalid, rejected as u64);
        Submitted {
            accepted: folded,
            rejected,
            dropped: 0,
            first_error: first_error.or_else(|| {
                // Only a series registered before the sink aggregated lacks an output series.
                (rejected > 0).then(|| Error::InvalidInput("series is not aggregated".into()))
            }),
        }
    }

    /// Counts points a foreign caller handed over that could not even be read (invalid
    /// UTF-8, NULL with a length...) in `rejected_invalid`, so every refused point shows.
    #[doc(hidden)]
    pub fn count_unreadable(&self, points: u64) {
        Counters::add(&self.counters.rejected_invalid, points);
    }

    /// A source that folds samples into statistics of its own schema (`sources::jmeter`)
    /// counts them as the aggregated mode counts its samples: `folded` in `aggregated`, of
    /// which `late` in `aggregated_late` and `unranked` in `aggregated_no_percentiles`.
    pub(crate) fn count_aggregated(&self, folded: u64, late: u64, unranked: u64) {
        Counters::add(&self.counters.aggregated, folded);
        Counters::add(&self.counters.aggregated_late, late);
        Counters::add(&self.counters.aggregated_no_percentiles, unranked);
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
        let (precision, opts, key) = (self.config.precision, self.field_options, entry.key_id());
        let opts = FieldOptions {
            series_key_len: entry.key_and_space().len() - 1,
            ..opts
        };
        let produced = engine.queue.produce(1, |_, buf, dedup| {
            TimestampRange::new(precision).check(timestamp_ns)?;
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
            finish_line(buf, dedup, key, timestamp_ns, precision);
            Ok(1)
        });
        self.with_fatal(produced.into()).into_result().map(|_| ())
    }

    /// The relay's hook (`sources::relay::ingest` writes lines as its clients sent them):
    /// encodes `n` lines like `submit` does — one lock, the same de-duplication state — or
    /// `None` when the sink takes nothing (disabled or closed; see [`Sink::is_disabled`]).
    pub(crate) fn produce_lines<F>(&self, n: usize, encode: F) -> Option<Produced>
    where
        F: FnMut(usize, &mut Vec<u8>, &mut Dedup) -> Result<u64>,
    {
        Some(self.live_engine()?.queue.produce(n, encode))
    }

    /// The relay's other hook (its aggregated mode): folds `n` samples of value series into
    /// the statistics, checked as `submit` checks them in `PERFSINK_MODE=aggregate`, whatever
    /// the mode (in `both` the relay forwards the lines themselves). `None` when the sink does
    /// not aggregate or takes nothing (disabled or closed).
    pub(crate) fn fold<S: PointSource>(&self, n: usize, source: &mut S) -> Option<Submitted> {
        let engine = self.live_engine()?;
        let stage = engine.stage.as_ref()?;
        let view = self.series.view();
        Some(self.with_fatal(self.aggregate_only(stage, &view, n, source)))
    }

    /// Open and reporting: calls reach InfluxDB.
    pub(crate) fn is_live(&self) -> bool {
        self.live_engine().is_some()
    }

    /// Reporting is off (`INFLUXDB_URL` unset): calls succeed and do nothing.
    pub(crate) fn is_disabled(&self) -> bool {
        self.engine.is_none() && !self.closed.load(Relaxed)
    }

    /// How field values are written for this sink's server.
    pub(crate) fn field_options(&self) -> FieldOptions {
        self.field_options
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
        if let Some(stage) = &engine.stage {
            // Intervals already due; the current one is written when it is.
            stage.emit(&self.series, &engine.queue, false);
        }
        engine.queue.flush_accumulator(timeout)?;
        let target = self.counters.entered();
        let settled = self.counters.wait_settled(deadline, || {
            self.counters.settled() >= target || engine.state.fatal.lock().is_some()
        });
        self.fatal()?;
        if settled {
            Ok(())
        } else {
            Err(Error::Timeout)
        }
    }

    /// Waits until every point accepted so far is kept: appended to the spool (and forced to
    /// the disk when `PERFSINK_SPOOL_FSYNC=always`) or delivered, at most `timeout`. A process
    /// killed after it returns loses none of those points: the next sink on the same spool
    /// delivers them. Without a spool only InfluxDB keeps points: it is `flush`.
    pub fn sync(&self, timeout: Duration) -> Result<()> {
        if self.config.spool_dir.is_none() {
            return self.flush(timeout);
        }
        let Some(engine) = self.live_engine() else {
            return if self.enabled() {
                Err(Error::Closed)
            } else {
                Ok(())
            };
        };
        let deadline = Instant::now() + timeout;
        if let Some(stage) = &engine.stage {
            stage.emit(&self.series, &engine.queue, false);
        }
        let last = engine.queue.flush_accumulator(timeout)?;
        match engine.state.secured.wait(last, deadline) {
            Waited::Kept => Ok(()),
            Waited::TimedOut => Err(Error::Timeout),
            Waited::Stopped => Err(self.fatal().err().unwrap_or(Error::Closed)),
        }
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

    /// How the sink is doing now, for health checks (the relay's `/health`). The rule, in
    /// order: writing stopped for good (credentials refused) is `Fail`; points dropped since
    /// the previous check or within 10 s after a check saw them is `Fail`; writes
    /// failing and retried (InfluxDB unreachable, 5xx, database missing) is `Warn`; else `Pass`,
    /// and the error is cleared as soon as InfluxDB answers a write again.
    pub fn health(&self) -> Health {
        let Some(engine) = &self.engine else {
            return Health {
                status: HealthStatus::Pass,
                error: None,
            };
        };
        let fail = |error: String| Health {
            status: HealthStatus::Fail,
            error: Some(error),
        };
        if let Some(e) = engine.state.fatal.lock().clone() {
            return fail(e.to_string());
        }
        if self.closed.load(Relaxed) {
            return fail("the sink is closed".into());
        }
        let current = engine.state.current_error.lock().clone();
        let s = self.stats();
        let dropped = {
            let mut w = self.drops.lock();
            let now = (s.dropped_queue_full, s.dropped_undelivered);
            if now.0 > w.seen.0 || now.1 > w.seen.1 {
                w.at = Some((Instant::now(), now.0 - w.seen.0, now.1 - w.seen.1));
                w.seen = now;
            }
            w.at.filter(|(t, _, _)| t.elapsed() < DROP_WINDOW)
        };
        if let Some((_, full, undelivered)) = dropped {
            let mut why = Vec::new();
            if full > 0 {
                why.push(format!(
                    "{full} refused, queue full: {}",
                    self.queue_full_cause()
                ));
            }
            if undelivered > 0 {
                why.push(format!(
                    "{undelivered} undeliverable (memory{} full)",
                    if self.config.spool_dir.is_some() {
                        " and spool"
                    } else {
                        ""
                    }
                ));
            }
            let mut msg = format!("points are being dropped: {}", why.join("; "));
            if let Some(e) = &current {
                msg.push_str(&format!("; {e}"));
            }
            return fail(msg);
        }
        // The spool refusing appends (disk full, cap): producers meet back-pressure.
        let refusal = engine.state.spool_refusal.lock().clone();
        let current = match (refusal, current) {
            (Some(r), Some(e)) => Some(format!("{r}; {e}")),
            (r, e) => r.or(e),
        };
        match current {
            Some(e) => Health {
                status: HealthStatus::Warn,
                error: Some(e),
            },
            None => Health {
                status: HealthStatus::Pass,
                error: None,
            },
        }
    }

    /// Why the spool takes no appends now (its disk is full, it holds its cap), while it does
    /// not: producers meet back-pressure, and the relay refuses writes at once with this.
    pub fn spool_refusal(&self) -> Option<String> {
        let engine = self.live_engine()?;
        let refusal = engine.state.spool_refusal.lock().clone()?;
        let influx = match engine.state.current_error.lock().clone() {
            Some(e) => format!("InfluxDB is not taking writes ({e})"),
            None => "InfluxDB takes writes slower than they come".to_string(),
        };
        Some(format!("{refusal}; {influx}"))
    }

    /// Why the queue is full, for a producer that met the full-queue policy (the relay's 503):
    /// the writer holds all it may because InfluxDB does not take writes (the memory cap,
    /// `PERFSINK_MEMORY_MAX_BYTES`, and the spool's), or because it takes them slower than they
    /// come; or, with room behind it, the queue itself is too small for the burst.
    pub fn queue_full_cause(&self) -> String {
        let Some(engine) = &self.engine else {
            return "reporting is disabled".into();
        };
        if let Some(e) = engine.state.fatal.lock().clone() {
            return format!("writing stopped: {e}");
        }
        let held = match &self.config.spool_dir {
            Some(_) => format!(
                "memory (PERFSINK_MEMORY_MAX_BYTES={}) and spool (PERFSINK_SPOOL_MAX_BYTES={})",
                self.config.memory_max_bytes, self.config.spool_max_bytes
            ),
            None => format!(
                "memory (PERFSINK_MEMORY_MAX_BYTES={}, no PERFSINK_SPOOL_DIR)",
                self.config.memory_max_bytes
            ),
        };
        let influx = match engine.state.current_error.lock().clone() {
            Some(e) => format!("InfluxDB is not taking writes ({e})"),
            None => "InfluxDB takes writes slower than they come".to_string(),
        };
        // With a spool, what it refuses is the cause: its disk is full or it holds its cap.
        if let Some(refusal) = self.spool_refusal() {
            return refusal;
        }
        if engine.state.backlog_full.load(Relaxed) {
            return format!("{influx} and what perfsink may hold meanwhile is full: {held}");
        }
        format!(
            "the queue (PERFSINK_QUEUE_CAPACITY={} batches) filled faster than the writer \
             empties it; raise PERFSINK_QUEUE_CAPACITY for such bursts",
            self.config.queue_capacity
        )
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
            if let Some(stage) = &engine.stage {
                stage.finish(&self.series, &engine.queue);
            }
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
            fail_on_loss: self.config.fail_on_loss,
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
        if self.is_disabled() {
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

    /// The writer's fatal error (credentials refused), if any.
    pub(crate) fn fatal(&self) -> Result<()> {
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

/// ` timestamp\n`, the timestamp made unique within its series by the de-duplication.
#[inline]
fn finish_line(buf: &mut Vec<u8>, dedup: &mut Dedup, key: KeyId, ts_ns: i64, precision: Precision) {
    let ts = dedup.place(key, precision.from_ns(ts_ns));
    buf.push(b' ');
    write_timestamp(buf, ts);
    buf.push(b'\n');
}
