//! Which JMeter sample counts where, per interval: the counting rules of JMeter 5.6.3's
//! `SamplerMetric.add`/`addCumulated` and `ErrorMetric`, over the engine's statistics
//! (`aggregate::window::Window`, true per-interval percentiles — the one intended difference:
//! the built-in listener reads its percentiles from the last 100 samples per label).
//!
//! Intervals are aligned to multiples of the interval since the epoch by the sample's own
//! timestamp (`SampleResult.getTimeStamp()`); they fall due by the stream's time as the
//! aggregated mode's do (`aggregate::due_horizon`). A sample of an interval already written
//! is *late*: it counts into the oldest interval still open (counted in `late`). The windows
//! of all open intervals share `PERFSINK_AGGREGATE_MEMORY_MAX_BYTES` as the aggregated mode's
//! do (`Window::add_within`); counts, sums, min and max stay exact beyond it.

use std::collections::BTreeMap;

use crate::aggregate::window::Window;
use crate::aggregate::MAX_OPEN;

/// `TransactionController.NUMBER_OF_SAMPLES_IN_TRANSACTION_PREFIX`: JMeter's own test of a
/// Transaction Controller's sample (`isFromTransactionController`), in both of its modes.
pub const TRANSACTION_PREFIX: &str = "Number of samples in transaction : ";
/// `MetricUtils.ASSERTION_FAILED`.
pub const ASSERTION_FAILED: &str = "Assertion failed";

/// Empty intervals written in a row at most (an hour at the default 5 s).
const MAX_EMPTY: i64 = 720;

/// One sample as the listener hands it over (`SampleResult`'s getters).
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample<'a> {
    pub timestamp_ms: i64,
    pub elapsed_ms: i64,
    pub latency_ms: i64,
    pub connect_ms: i64,
    pub bytes: i64,
    pub sent_bytes: i64,
    pub grp_threads: i32,
    pub all_threads: i32,
    pub label: &'a str,
    pub code: &'a str,
    pub message: &'a str,
    /// `getFirstAssertionFailureMessage()`, `""` when none.
    pub assertion: &'a str,
    pub thread: &'a str,
    pub success: bool,
    /// A sub-result handed over for `rawSamples` only: its parent's `sub_results` counts it.
    pub sub_result: bool,
    /// Sub-results below this sample, all levels (each is a hit).
    pub sub_results: u32,
}

impl Sample<'_> {
    /// `TransactionController.isFromTransactionController`.
    pub fn from_transaction_controller(&self) -> bool {
        self.message.starts_with(TRANSACTION_PREFIX)
    }
}

/// One label's (or the `all` summary's) statistics of one interval.
#[derive(Debug)]
pub struct LabelStats {
    pub ok: Window,
    pub ko: Window,
    pub all: Window,
    pub hits: u64,
    pub sent_bytes: i64,
    pub received_bytes: i64,
    /// (code, message) → count, compared ignoring case as `ErrorMetric.equals` does; the
    /// first spelling seen is kept.
    pub errors: Vec<ErrorCount>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    pub code: String,
    pub message: String,
    pub count: u64,
}

impl LabelStats {
    fn new(start: i64) -> Self {
        LabelStats {
            ok: Window::new(start),
            ko: Window::new(start),
            all: Window::new(start),
            hits: 0,
            sent_bytes: 0,
            received_bytes: 0,
            errors: Vec::new(),
        }
    }

    /// `SamplerMetric.add(result, cumulated)`. `getSampleCount()` is 1 (the ABI carries no
    /// other), so `getErrorCount()` is 1 for a failed sample, 0 otherwise.
    fn add(&mut self, s: &Sample<'_>, cumulated: bool, budget: &mut Budget) {
        let t = s.elapsed_ms as f64;
        // Each sample is in one summary `all` window: counted there, once.
        let counted = budget.fold(&mut self.all, t);
        if cumulated {
            budget.unranked += counted;
        }
        if s.success {
            budget.fold(&mut self.ok, t);
        } else {
            budget.fold(&mut self.ko, t);
            let (code, message) = error_of(s);
            match self.errors.iter_mut().find(|e| {
                same_ignoring_case(&e.code, code) && same_ignoring_case(&e.message, message)
            }) {
                Some(e) => e.count += 1,
                None => self.errors.push(ErrorCount {
                    code: code.to_string(),
                    message: message.to_string(),
                    count: 1,
                }),
            }
        }
        let tc = s.from_transaction_controller();
        // A Transaction Controller without "Generate parent sample" (no sub-results) is not
        // counted in the summary's hits and bytes: its children were.
        if cumulated && tc && s.sub_results == 0 {
            return;
        }
        // `addHits`: a parent sample of a Transaction Controller is not a hit itself, its
        // sub-results are; any other sample is one, and so are its sub-results.
        self.hits += u64::from(s.sub_results) + u64::from(!(tc && s.sub_results > 0));
        self.sent_bytes += s.sent_bytes;
        self.received_bytes += s.bytes;
    }

    pub fn count(&self) -> u64 {
        self.all.count()
    }

    fn memory(&self) -> usize {
        self.ok.memory() + self.ko.memory() + self.all.memory()
    }
}

/// The histogram memory of all open intervals (`PERFSINK_AGGREGATE_MEMORY_MAX_BYTES`, as in
/// the aggregated mode): a window that would exceed it has no percentiles.
#[derive(Debug)]
struct Budget {
    used: usize,
    max: usize,
    /// Samples whose summary (`transaction=all`) line has no percentiles; the lines of their
    /// labels can lack them too under the same cap.
    unranked: u64,
}

impl Budget {
    /// Adds `v` to `w`; returns the samples this leaves without percentiles.
    fn fold(&mut self, w: &mut Window, v: f64) -> u64 {
        w.add_within(v, 0, false, true, &mut self.used, self.max)
    }
}

/// `ErrorMetric`: an assertion failure message makes the code `Assertion failed` and the
/// message that text (even for a 5xx: the check reads the still-empty code field); an empty
/// code reads `0`, an empty message `None`; both trimmed.
pub fn error_of<'a>(s: &Sample<'a>) -> (&'a str, &'a str) {
    let (code, message) = if s.assertion.is_empty() {
        (s.code, s.message)
    } else {
        (ASSERTION_FAILED, s.assertion)
    };
    let code = if code.is_empty() { "0" } else { code.trim() };
    let message = if message.is_empty() {
        "None"
    } else {
        message.trim()
    };
    (code, message)
}

/// `String.equalsIgnoreCase`, without allocating for ASCII (nearly every code and message).
fn same_ignoring_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        a.eq_ignore_ascii_case(b)
    } else {
        a.to_lowercase() == b.to_lowercase()
    }
}

/// Active threads (`getAllThreads()`) over an interval's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Threads {
    pub min: i32,
    pub max: i32,
    pub sum: i64,
    pub n: u64,
}

impl Threads {
    fn add(&mut self, v: i32) {
        if self.n == 0 {
            (self.min, self.max) = (v, v);
        }
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += i64::from(v);
        self.n += 1;
    }

    /// `UserMetric.getMeanActiveThreads()`: truncated to an integer.
    pub fn mean(&self) -> i64 {
        if self.n == 0 {
            0
        } else {
            self.sum / self.n as i64
        }
    }
}

/// One interval of statistics.
#[derive(Debug)]
pub struct Interval {
    /// Start, ms since the epoch (a multiple of the interval).
    pub start_ms: i64,
    /// Labels with their own lines (`summaryOnly`, `samplersRegex`), by label.
    pub labels: BTreeMap<String, LabelStats>,
    /// The `transaction=all` summary: every sample (`addCumulated`).
    pub total: LabelStats,
    /// Active threads over the interval's samples; when none, the last interval's values
    /// (the built-in listener's window of 100 is never cleared either).
    pub threads: Threads,
    /// Samples counted here although their own interval was already written.
    pub late: u64,
}

impl Interval {
    fn new(start_ms: i64) -> Self {
        Interval {
            start_ms,
            labels: BTreeMap::new(),
            total: LabelStats::new(start_ms),
            threads: Threads::default(),
            late: 0,
        }
    }
}

/// The open intervals of a listener.
#[derive(Debug)]
pub struct Intervals {
    interval_ms: i64,
    open: BTreeMap<i64, Interval>,
    /// Intervals starting before this were written (their `internal` line too).
    written_until: i64,
    last_threads: Threads,
    budget: Budget,
    /// Samples folded, and how many of them late, since the start.
    pub folded: u64,
    pub late: u64,
}

impl Intervals {
    /// Intervals of `interval_ms`, the first written being the one holding `now_ms`; the
    /// windows of all open intervals hold at most `memory_max` bytes.
    pub fn new(interval_ms: i64, now_ms: i64, memory_max: usize) -> Self {
        Intervals {
            interval_ms,
            open: BTreeMap::new(),
            written_until: now_ms - now_ms.rem_euclid(interval_ms),
            last_threads: Threads::default(),
            budget: Budget {
                used: 0,
                max: memory_max,
                unranked: 0,
            },
            folded: 0,
            late: 0,
        }
    }

    /// Folds a sample; `per_label`: it also counts on its label's own lines. Returns
    /// intervals written early (more than `MAX_OPEN` open at once: a clock far off).
    pub fn add(&mut self, s: &Sample<'_>, per_label: bool) -> Vec<Interval> {
        let mut start = s.timestamp_ms - s.timestamp_ms.rem_euclid(self.interval_ms);
        let late = start < self.written_until;
        if late {
            start = self.written_until;
        }
        let mut early = Vec::new();
        if !self.open.contains_key(&start) && self.open.len() >= MAX_OPEN {
            let oldest = *self.open.keys().next().expect("MAX_OPEN > 0");
            if oldest < start {
                early = self.take_until(oldest + self.interval_ms);
            }
        }
        let iv = self
            .open
            .entry(start)
            .or_insert_with(|| Interval::new(start));
        iv.late += u64::from(late);
        let budget = &mut self.budget;
        iv.total.add(s, true, budget);
        if per_label {
            match iv.labels.get_mut(s.label) {
                Some(l) => l.add(s, false, budget),
                None => {
                    let mut l = LabelStats::new(start);
                    l.add(s, false, budget);
                    iv.labels.insert(s.label.to_string(), l);
                }
            }
        }
        iv.threads.add(s.all_threads);
        self.folded += 1;
        self.late += u64::from(late);
        early
    }

    /// Takes every interval ending at or before `horizon_ms`, oldest first, with an empty one
    /// for each such interval without samples (its `internal` line is still written).
    pub fn take_until(&mut self, horizon_ms: i64) -> Vec<Interval> {
        let mut out = Vec::new();
        // Empty intervals get an `internal` line each, but not unboundedly many (a sample
        // timestamp far ahead): the written ones end `MAX_EMPTY` before the next with data.
        let next_data = self.open.keys().next().copied().unwrap_or(i64::MAX);
        let target = next_data.min(horizon_ms.saturating_sub(self.interval_ms));
        let skip_to = target.saturating_sub(MAX_EMPTY * self.interval_ms);
        if skip_to > self.written_until {
            self.written_until = skip_to - skip_to.rem_euclid(self.interval_ms);
        }
        while self.written_until + self.interval_ms <= horizon_ms {
            let start = self.written_until;
            let mut iv = self
                .open
                .remove(&start)
                .unwrap_or_else(|| Interval::new(start));
            let held =
                iv.total.memory() + iv.labels.values().map(LabelStats::memory).sum::<usize>();
            self.budget.used = self.budget.used.saturating_sub(held);
            if iv.threads.n == 0 {
                iv.threads = self.last_threads;
            } else {
                self.last_threads = iv.threads;
            }
            out.push(iv);
            self.written_until += self.interval_ms;
        }
        out
    }

    /// Samples whose summary line has no percentiles (the memory cap).
    pub fn unranked(&self) -> u64 {
        self.budget.unranked
    }

    /// Every open interval, and the empty ones up to the one holding `now_ms` (closing).
    pub fn take_all(&mut self, now_ms: i64) -> Vec<Interval> {
        let last_open = self.open.keys().next_back().copied().unwrap_or(i64::MIN);
        let now_start = now_ms - now_ms.rem_euclid(self.interval_ms);
        self.take_until(last_open.max(now_start).saturating_add(self.interval_ms))
    }
}

#[cfg(test)]
#[path = "stats_tests.rs"]
mod tests;
