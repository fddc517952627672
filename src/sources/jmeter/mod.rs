//! Layer 6: JMeter, once. Everything perfsink knows about JMeter's Backend Listener lives
//! here; the Java listener (`jmeter/`, through `ffi::jmeter`) only adapts types:
//!
//! * [`params`]: the listener's parameters and the environment → sink configuration;
//! * [`stats`]: which sample counts where, per label and interval (JMeter's counting rules
//!   over the engine's statistics);
//! * [`render`]: the built-in `InfluxdbBackendListenerClient`'s line protocol;
//! * [`raw`]: `rawSamples=true`, one point per sample.
//!
//! A [`Jmeter`] owns its sink and a thread that writes intervals as they fall due (by the
//! stream's time, as the aggregated mode); producers fold samples under one lock and never
//! wait on the network.

pub mod params;
pub mod raw;
pub mod render;
pub mod stats;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::aggregate::due_horizon;
use crate::error::{Error, Result};
use crate::model::now_ns;
use crate::sink::{Report, Sink};

use params::{JmeterOptions, Resolved};
use render::{Output, Renderer};
use stats::{Interval, Intervals, Sample};

/// What a `submit` did.
#[derive(Debug, Default, PartialEq)]
pub struct Folded {
    /// Samples counted into the statistics.
    pub folded: usize,
    /// Raw-sample lines taken by the pipeline (`rawSamples`).
    pub raw_accepted: usize,
    /// Raw-sample lines refused or dropped (counted by the sink).
    pub raw_lost: usize,
}

struct State {
    intervals: Intervals,
    /// Wall clock of the latest submit, the latest sample timestamp (ns): the stream's time.
    last_arrival: i64,
    seen_max: i64,
    /// Set by `close` when it takes the last intervals: a submit racing it is refused
    /// (`Error::Closed`), never folded into intervals nobody writes.
    finished: bool,
}

struct Shared {
    sink: Sink,
    options: JmeterOptions,
    state: Mutex<State>,
    started_threads: AtomicI64,
    finished_threads: AtomicI64,
    /// Lines the listener could not render (a name no server can store), counted here and
    /// in the sink's `rejected_invalid`.
    refused: AtomicI64,
    grace_ns: i64,
}

/// A running JMeter listener: its sink, statistics and the thread writing them.
pub struct Jmeter {
    shared: Arc<Shared>,
    description: String,
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    report: Mutex<Option<Report>>,
}

impl Jmeter {
    /// Resolves the parameters with the process environment and opens the listener.
    pub fn open_params<'a>(params: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Jmeter> {
        Jmeter::open(params::resolve(params, std::env::vars_os())?)
    }

    /// Opens the sink, writes the `started` annotation and starts the interval thread.
    pub fn open(resolved: Resolved) -> Result<Jmeter> {
        let description = resolved.describe();
        let Resolved { config, options } = resolved;
        let grace_ns = i64::try_from(config.aggregate.grace.as_nanos()).unwrap_or(i64::MAX);
        let memory_max = config.aggregate.memory_max_bytes;
        let sink = Sink::open(config)?;
        let interval_ms = options.interval.as_millis() as i64;
        let now = now_ns();
        let shared = Arc::new(Shared {
            sink,
            state: Mutex::new(State {
                intervals: Intervals::new(interval_ms, now / 1_000_000, memory_max),
                last_arrival: now,
                seen_max: now,
                finished: false,
            }),
            options,
            started_threads: AtomicI64::new(0),
            finished_threads: AtomicI64::new(0),
            refused: AtomicI64::new(0),
            grace_ns,
        });
        shared.event(true);
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("perfsink-jmeter".into())
                .spawn(move || run(&shared, &stop))
                .map_err(|e| Error::Config(format!("cannot start a thread: {e}")))?
        };
        Ok(Jmeter {
            shared,
            description,
            stop,
            thread: Mutex::new(Some(thread)),
            closed: AtomicBool::new(false),
            report: Mutex::new(None),
        })
    }

    /// Where points go (never credentials).
    pub fn describe(&self) -> &str {
        &self.description
    }

    pub fn sink(&self) -> &Sink {
        &self.shared.sink
    }

    pub fn options(&self) -> &JmeterOptions {
        &self.shared.options
    }

    /// Samples folded since open, and how many of them were late.
    pub fn folded(&self) -> (u64, u64) {
        let st = self.shared.state.lock();
        (st.intervals.folded, st.intervals.late)
    }

    /// Folds a batch of samples (one lock; sub-results are not folded) and, with
    /// `rawSamples`, writes each as a line.
    pub fn submit(&self, samples: &[Sample<'_>]) -> Result<Folded> {
        if self.closed.load(Relaxed) {
            return Err(Error::Closed);
        }
        let sh = &*self.shared;
        let mut early: Vec<Interval> = Vec::new();
        let (folded, late, unranked) = {
            let mut st = sh.state.lock();
            if st.finished {
                return Err(Error::Closed);
            }
            st.last_arrival = now_ns();
            let (late_before, unranked_before) = (st.intervals.late, st.intervals.unranked());
            let mut folded = 0;
            for s in samples.iter().filter(|s| !s.sub_result) {
                let ts = s.timestamp_ms.saturating_mul(1_000_000);
                st.seen_max = st.seen_max.max(ts);
                early.extend(st.intervals.add(s, sh.options.per_label(s.label)));
                folded += 1;
            }
            (
                folded,
                st.intervals.late - late_before,
                st.intervals.unranked() - unranked_before,
            )
        };
        sh.sink.count_aggregated(folded, late, unranked);
        sh.write(&early);
        let mut done = Folded {
            folded: folded as usize,
            ..Folded::default()
        };
        if sh.options.raw_samples {
            let opts = sh.sink.field_options();
            let precision = sh.sink.config().precision;
            if let Some(p) = sh.sink.produce_lines(samples.len(), |i, buf, dedup| {
                raw::write_raw(
                    buf,
                    dedup,
                    &sh.options,
                    &samples[i],
                    opts.dialect,
                    precision,
                )?;
                Ok(1)
            }) {
                done.raw_accepted = p.accepted;
                done.raw_lost = p.rejected + p.dropped;
                if let Some(e) = p.first_error {
                    return Err(e);
                }
            }
        }
        Ok(done)
    }

    /// JMeter's thread counters (`startedT`, `endedT` of the `internal` lines).
    pub fn threads(&self, started: i64, finished: i64) -> Result<()> {
        if self.closed.load(Relaxed) {
            return Err(Error::Closed);
        }
        self.shared.started_threads.store(started, Relaxed);
        self.shared.finished_threads.store(finished, Relaxed);
        Ok(())
    }

    /// Writes every interval left and the `ended` annotation, closes the sink and reports.
    /// Idempotent: a second call returns the same report.
    pub fn close(&self) -> Report {
        let mut report = self.report.lock();
        if let Some(r) = report.as_ref() {
            return r.clone();
        }
        self.closed.store(true, Relaxed);
        {
            let (flag, signal) = &*self.stop;
            *flag.lock() = true;
            signal.notify_all();
        }
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
        let sh = &*self.shared;
        let rest = {
            let mut st = sh.state.lock();
            st.finished = true;
            st.intervals.take_all(now_ns() / 1_000_000)
        };
        sh.write(&rest);
        sh.event(false);
        let r = sh.sink.close();
        *report = Some(r.clone());
        r
    }
}

impl Drop for Jmeter {
    fn drop(&mut self) {
        self.close();
    }
}

impl Shared {
    fn renderer(&self) -> Renderer<'_> {
        Renderer {
            options: &self.options,
            dialect: self.sink.field_options().dialect,
            precision: self.sink.config().precision,
        }
    }

    /// Renders intervals and hands their lines to the pipeline.
    fn write(&self, intervals: &[Interval]) {
        if intervals.is_empty() {
            return;
        }
        let mut out = Output::default();
        let (started, ended) = (
            self.started_threads.load(Relaxed),
            self.finished_threads.load(Relaxed),
        );
        let r = self.renderer();
        for iv in intervals {
            r.interval(iv, started, ended, &mut out);
        }
        self.hand_over(out);
    }

    fn event(&self, started: bool) {
        let mut out = Output::default();
        self.renderer()
            .event(started, now_ns() / 1_000_000, &mut out);
        self.hand_over(out);
    }

    fn hand_over(&self, out: Output) {
        if out.refused > 0 {
            self.refused.fetch_add(out.refused as i64, Relaxed);
            self.sink.count_unreadable(out.refused);
            if let Some(e) = &out.first_error {
                crate::log::warn(format_args!("JMeter line not written: {e}"));
            }
        }
        let lines = &out.lines;
        // Counted like any producer's lines: accepted, or dropped by the full-queue policy.
        self.sink.produce_lines(lines.len(), |i, buf, _| {
            buf.extend_from_slice(lines.line(i));
            Ok(1)
        });
    }

    /// Writes the intervals due now by the stream's time.
    fn tick(&self) {
        let due = {
            let mut st = self.state.lock();
            let horizon = due_horizon(now_ns(), st.last_arrival, st.seen_max, self.grace_ns);
            st.intervals.take_until(horizon / 1_000_000)
        };
        self.write(&due);
    }
}

/// The interval thread: wakes a millisecond after each interval boundary plus the grace.
fn run(sh: &Shared, stop: &(Mutex<bool>, Condvar)) {
    let (flag, signal) = stop;
    let interval = sh.options.interval.as_nanos() as i64;
    loop {
        let since = now_ns().saturating_sub(sh.grace_ns).rem_euclid(interval);
        let wait = (interval - since).saturating_add(1_000_000);
        let mut stopped = flag.lock();
        if !*stopped {
            signal.wait_for(&mut stopped, Duration::from_nanos(wait as u64));
        }
        if *stopped {
            return;
        }
        drop(stopped);
        sh.tick();
    }
}
