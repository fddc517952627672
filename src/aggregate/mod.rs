//! Layer 4, beside `pipeline`: the aggregated mode (`PERFSINK_MODE=aggregate|both`). Samples of
//! value series are folded, per series and interval, into statistics — count, exact sum, min,
//! max, mean and nearest-rank percentiles from an HDR histogram for trends; sums for counters;
//! passes per total for rates; last/min/max for gauges (the series' [`MetricKind`]) — and each
//! interval becomes one point of the **aggregated schema** (`<measurement>_agg`, the series' tags
//! plus `instance`, timestamped at the interval's start; `window` writes the fields).
//!
//! Intervals are aligned to multiples of `PERFSINK_AGGREGATE_INTERVAL_MS` since the epoch, so
//! generators line up. A sample belongs to the interval of its own timestamp. An interval is
//! emitted once the **stream's time** passes its end plus `PERFSINK_AGGREGATE_GRACE_MS` (or at
//! close): the latest sample timestamp seen (never beyond the wall clock), or the wall clock
//! once no sample came for the grace. Stream time, not the wall clock, because a loaded
//! generator's samples arrive seconds after they happened (k6's JSON stream on a saturated
//! 2-core box lags 3 s and more): by the wall clock a whole interval would be late, by the
//! stream's time none is. A sample whose interval was already emitted is **late**: it is
//! counted into the series' next open interval, whose point then carries `late=<n>i`, and in
//! `stats.aggregated_late`.
//!
//! Memory: a series holds at most [`MAX_OPEN`] intervals (a sample needing one more emits the
//! oldest early); histograms of all open intervals together stay under
//! `PERFSINK_AGGREGATE_MEMORY_MAX_BYTES` — an interval that would exceed it has no percentiles,
//! its samples counted in `stats.aggregated_no_percentiles`. The series cap bounds the rest.
//!
//! Producers fold a whole batch under one lock; rendering and handing points to the pipeline
//! happen on the stage's own thread (`stage`), never in a producer.

pub mod fsum;
pub mod percentile;
pub mod stage;
pub mod window;

use std::sync::Arc;

use parking_lot::Mutex;

use crate::config::AggregateConfig;
use crate::model::{now_ns, MetricKind, Precision, SeriesId};
use crate::series::SeriesView;
use crate::stats::Counters;
use window::Window;

pub use stage::Stage;

/// Open intervals per series at most.
pub const MAX_OPEN: usize = 8;

/// Emptied windows kept for reuse (their histograms keep their size).
const POOL_MAX: usize = 256;

/// The per-series, per-interval statistics of a sink.
pub struct Aggregator {
    interval_ns: i64,
    grace_ns: i64,
    config: AggregateConfig,
    precision: Precision,
    state: Mutex<State>,
    counters: Arc<Counters>,
}

#[derive(Default)]
struct State {
    /// By the raw series id.
    slots: Vec<Slot>,
    /// Series with open windows.
    active: Vec<SeriesId>,
    pool: Vec<Window>,
    /// Bytes of all windows' values and histograms, open or pooled.
    memory: usize,
    /// The latest sample timestamp seen, and when (wall clock) the latest batch came.
    seen_max: i64,
    last_arrival: i64,
    /// Lines rendered outside a tick (a series needing more than `MAX_OPEN` windows), handed
    /// to the pipeline by the next tick.
    early: Rendered,
}

#[derive(Default)]
struct Slot {
    /// The series its points are written to (`<measurement>_agg`...); `None`: not aggregated.
    out: Option<SeriesId>,
    kind: MetricKind,
    /// Intervals starting before this were emitted.
    emitted_until: i64,
    /// Sorted by start.
    open: Vec<Window>,
    active: bool,
}

/// Complete lines of line protocol, ready for the pipeline.
#[derive(Default, Debug)]
pub struct Rendered {
    pub buf: Vec<u8>,
    /// End offset of each line in `buf`.
    pub ends: Vec<usize>,
}

impl Rendered {
    pub fn line(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn append(&mut self, other: &mut Rendered) {
        let base = self.buf.len();
        self.buf.append(&mut other.buf);
        self.ends.extend(other.ends.drain(..).map(|e| e + base));
    }
}

/// One sample for [`Aggregator::add`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub series: SeriesId,
    pub value: f64,
    pub timestamp_ns: i64,
}

impl Aggregator {
    pub fn new(config: &AggregateConfig, precision: Precision, counters: Arc<Counters>) -> Self {
        Aggregator {
            interval_ns: nanos(config.interval),
            grace_ns: nanos(config.grace),
            config: config.clone(),
            precision,
            state: Mutex::new(State::default()),
            counters,
        }
    }

    pub fn interval_ns(&self) -> i64 {
        self.interval_ns
    }

    pub fn grace_ns(&self) -> i64 {
        self.grace_ns
    }

    /// Series `raw`'s intervals are written to series `out`. Idempotent.
    pub fn bind(&self, raw: SeriesId, out: SeriesId) {
        let mut st = self.state.lock();
        st.slot(raw).out = Some(out);
    }

    /// Whether `raw` has an output series.
    pub fn is_bound(&self, raw: SeriesId) -> bool {
        let st = self.state.lock();
        st.slots.get(raw as usize).is_some_and(|s| s.out.is_some())
    }

    pub fn set_kind(&self, raw: SeriesId, kind: MetricKind) {
        self.state.lock().slot(raw).kind = kind;
    }

    /// Folds `n` samples, one lock for all; `sample(i)` gives sample `i` (checked by the
    /// caller: a finite value, a writable timestamp) or `None` to skip it. A sample of a
    /// series without an output series is skipped. Returns how many were folded.
    pub fn add<F>(&self, view: &SeriesView<'_>, n: usize, mut sample: F) -> usize
    where
        F: FnMut(usize) -> Option<Sample>,
    {
        let now = now_ns();
        let mut st = self.state.lock();
        let st = &mut *st;
        st.last_arrival = now;
        let (mut folded, mut late, mut unranked) = (0u64, 0u64, 0u64);
        for i in 0..n {
            let Some(s) = sample(i) else { continue };
            st.seen_max = st.seen_max.max(s.timestamp_ns);
            let start = s.timestamp_ns - s.timestamp_ns.rem_euclid(self.interval_ns);
            let Some((at, is_late)) = self.locate(st, view, s.series, start) else {
                continue;
            };
            let slot = &mut st.slots[s.series as usize];
            let trend = slot.kind == MetricKind::Trend;
            let window = &mut slot.open[at];
            let max = self.config.memory_max_bytes;
            unranked +=
                window.add_within(s.value, s.timestamp_ns, is_late, trend, &mut st.memory, max);
            folded += 1;
            late += u64::from(is_late);
        }
        Counters::add(&self.counters.aggregated, folded);
        Counters::add(&self.counters.aggregated_late, late);
        Counters::add(&self.counters.aggregated_no_percentiles, unranked);
        folded as usize
    }

    /// The index of the window a sample of `raw` at interval `start` goes into (opened if
    /// needed), and whether the sample is late; `None` for a series that is not aggregated.
    #[inline]
    fn locate(
        &self,
        st: &mut State,
        view: &SeriesView<'_>,
        raw: SeriesId,
        mut start: i64,
    ) -> Option<(usize, bool)> {
        let slot = st.slots.get(raw as usize)?;
        slot.out?;
        let late = start < slot.emitted_until;
        if late {
            start = slot.emitted_until;
        }
        // Usually the newest window: samples come roughly in time order.
        match slot.open.iter().rposition(|w| w.start <= start) {
            Some(i) if slot.open[i].start == start => Some((i, late)),
            found => {
                let at = found.map_or(0, |i| i + 1);
                Some((self.open_window(st, view, raw, start, at), late))
            }
        }
    }

    /// Opens a window at `start` (index `at` of the series' sorted windows).
    #[cold]
    fn open_window(
        &self,
        st: &mut State,
        view: &SeriesView<'_>,
        raw: SeriesId,
        start: i64,
        mut at: usize,
    ) -> usize {
        if st.slots[raw as usize].open.len() >= MAX_OPEN {
            // Too many open intervals (a clock far ahead): the oldest is written now.
            let oldest = st.slots[raw as usize].open.remove(0);
            let mut early = std::mem::take(&mut st.early);
            self.emit(st, view, raw, oldest, &mut early);
            st.early = early;
            at = at.saturating_sub(1);
        }
        let window = match st.pool.pop() {
            Some(w) => w.recycle(start),
            None => Window::new(start),
        };
        let slot = &mut st.slots[raw as usize];
        slot.open.insert(at, window);
        if !slot.active {
            slot.active = true;
            st.active.push(raw);
        }
        at
    }

    /// Renders the windows due at wall-clock time `now_ns` (all of them with `all`), oldest
    /// first, and those emitted early since the last call.
    pub fn due(&self, view: &SeriesView<'_>, now_ns: i64, all: bool) -> Rendered {
        let mut st = self.state.lock();
        let st = &mut *st;
        let mut out = std::mem::take(&mut st.early);
        let horizon = due_horizon(now_ns, st.last_arrival, st.seen_max, self.grace_ns);
        let active = std::mem::take(&mut st.active);
        let mut still = Vec::with_capacity(active.len());
        for raw in active {
            loop {
                let slot = &mut st.slots[raw as usize];
                let due = slot
                    .open
                    .first()
                    .is_some_and(|w| all || w.start.saturating_add(self.interval_ns) <= horizon);
                if !due {
                    break;
                }
                let w = slot.open.remove(0);
                self.emit(st, view, raw, w, &mut out);
            }
            let slot = &mut st.slots[raw as usize];
            if slot.open.is_empty() {
                slot.active = false;
            } else {
                still.push(raw);
            }
        }
        st.active = still;
        out
    }

    /// Writes window `w` of `raw` as a line into `out` and keeps the window for reuse.
    fn emit(
        &self,
        st: &mut State,
        view: &SeriesView<'_>,
        raw: SeriesId,
        w: Window,
        out: &mut Rendered,
    ) {
        let slot = &mut st.slots[raw as usize];
        slot.emitted_until = slot
            .emitted_until
            .max(w.start.saturating_add(self.interval_ns));
        let kind = slot.kind;
        if let Some(entry) = slot.out.and_then(|id| view.get(id)) {
            let start = out.buf.len();
            out.buf.extend_from_slice(entry.key_and_space());
            let ok = w
                .write_fields(&mut out.buf, kind, &self.config.percentiles)
                .is_ok();
            if ok {
                out.buf.push(b' ');
                crate::lineproto::write_timestamp(&mut out.buf, self.precision.from_ns(w.start));
                out.buf.push(b'\n');
                out.ends.push(out.buf.len());
            } else {
                // Only a non-finite statistic can fail; the point is dropped, counted.
                out.buf.truncate(start);
                Counters::add(&self.counters.rejected_invalid, 1);
            }
        }
        if st.pool.len() < POOL_MAX {
            st.pool.push(w);
        } else {
            st.memory -= w.memory();
        }
    }
}

impl State {
    fn slot(&mut self, raw: SeriesId) -> &mut Slot {
        let i = raw as usize;
        if self.slots.len() <= i {
            self.slots.resize_with(i + 1, Slot::default);
        }
        &mut self.slots[i]
    }
}

impl Rendered {
    /// Moves the lines of `other` after these.
    pub fn extend(&mut self, mut other: Rendered) {
        self.append(&mut other);
    }
}

/// Intervals ending at or before the returned time are due: the stream's time (see the
/// module doc) less the grace. `last_arrival`: when (wall clock) the latest samples came;
/// `seen_max`: the latest sample timestamp seen. Shared by every aggregating source.
pub fn due_horizon(now_ns: i64, last_arrival: i64, seen_max: i64, grace_ns: i64) -> i64 {
    let idle = now_ns.saturating_sub(last_arrival) >= grace_ns;
    let stream_time = if idle { now_ns } else { seen_max.min(now_ns) };
    stream_time.saturating_sub(grace_ns)
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
