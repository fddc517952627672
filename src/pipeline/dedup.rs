//! Layer 4: timestamp de-duplication, one rule for the library and the relay. InfluxDB keeps
//! one point per series and timestamp, so two samples of a series at the same instant would be
//! merged. Only a timestamp EQUAL to one already written for that series moves, by the
//! smallest step (one unit of the sink's precision) that makes it unique: it probes `ts + 1`,
//! `ts + 2`, … until a free slot. Out-of-order samples keep their time.
//!
//! Which samples are the same point: a library call (`submit`, `record`) is a new sample every
//! time, so every tie moves; so does a relayed line without a timestamp (stamped with the
//! receive time: a retry of it gets another time anyway). A relayed line with its own
//! timestamp is a client's: a line identical to one already relayed at that (series,
//! timestamp) — same field-set bytes, compared by a 64-bit hash — is the same point sent again
//! (a client's retry) and takes the same slot, so InfluxDB's own idempotence survives; while
//! probing, a slot holding an identical line is taken, so a retried tie lands on the slot it
//! moved to the first time.
//!
//! Memory: per series, the runs of consecutive timestamps used within at least `window`
//! (precision units) of its latest, at most `max_runs` of them (24 bytes each); per sink, the
//! series cap. Ties of samples extend a run, so a burst of thousands of lines without a
//! timestamp costs one entry. An in-order sample is an O(1) push, an out-of-order one a binary
//! search; runs older than the window are dropped when the record would grow (or after an
//! out-of-order sample), the oldest eighth when it is at `max_runs`. What was forgotten cannot
//! be checked: such a sample keeps its time and is counted in `unchecked`; so is a relayed
//! line of a series past the cap.
//!
//! The state lives in the accumulator, under the lock `Queue::produce` holds for a whole batch
//! of points: no lock of its own, and concurrent producers (relay requests) go through it one
//! batch at a time.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;

use crate::config::Config;
use crate::series::KeyId;

/// Most runs of taken timestamps remembered per series (24 bytes each, 1.5 MiB at most, held
/// only by a series that fast): a series of up to 13 k distinct timestamps a second is checked
/// over the whole default window, a faster one over its last 65 536 (a producer thread lagging
/// further behind than that on a shared series is unchecked, counted).
const MAX_RUNS_PER_SERIES: usize = 1 << 16;

/// How many adjacent runs a tie walks before it takes the slot after the series' latest
/// instead (always free). Only thousands of relayed lines sent with one timestamp of one
/// series make runs adjacent; then a retry of them may land apart from the first copy.
const MAX_PROBES: usize = 1024;

/// De-duplication settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupConfig {
    /// How far behind a series' latest timestamp (precision units) samples are still checked.
    pub window: i64,
    /// Most runs of taken timestamps remembered per series.
    pub max_runs: usize,
    /// Most relayed series keys remembered (the sink's series cap).
    pub max_line_series: usize,
}

impl DedupConfig {
    /// `PERFSINK_DEDUP`, `PERFSINK_DEDUP_WINDOW_MS` (in the sink's precision), the series cap.
    pub fn from_config(config: &Config) -> Option<DedupConfig> {
        let window_ns = i64::try_from(config.dedup_window.as_nanos()).unwrap_or(i64::MAX);
        config.dedup.then(|| DedupConfig {
            window: config.precision.from_ns(window_ns),
            max_runs: MAX_RUNS_PER_SERIES,
            max_line_series: config.max_series,
        })
    }
}

/// Who a sample is, for the tie rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// A library sample: a new point every time.
    Sample,
    /// A relayed line with its field-set hash ([`field_hash`]): identical lines are one point.
    Line(u64),
}

/// Where a sample goes, before it is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A free slot `ts` (where its run goes: index `at`), asked for `from`.
    Free { from: i64, ts: i64, at: usize },
    /// The slot of an identical line: the same point again.
    Same { from: i64, ts: i64 },
    /// Cannot be checked: written at its own time, counted.
    Unchecked { from: i64 },
}

impl Probe {
    /// The timestamp to write.
    pub fn ts(self) -> i64 {
        match self {
            Probe::Free { ts, .. } | Probe::Same { ts, .. } => ts,
            Probe::Unchecked { from } => from,
        }
    }
}

/// The timestamps used by one series: runs of consecutive taken slots, sorted, apart or
/// adjacent, never overlapping. Library samples (and relayed lines without a timestamp) merge
/// into runs, so a burst of ties costs one entry; a relayed line with its own timestamp is a
/// run of one that keeps its line's hash.
#[derive(Debug, Default)]
struct Slots {
    runs: VecDeque<Run>,
    /// Below this the record is incomplete (runs were forgotten): samples are unchecked.
    checked_from: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    start: i64,
    /// Inclusive.
    end: i64,
    /// The field-set hash of the relayed line in this run of one; [`NO_LINE`] for samples.
    line: u64,
}

/// The `line` of a run of samples ([`field_hash`] is never 0).
const NO_LINE: u64 = 0;

impl Slots {
    fn probe(&self, ts: i64, who: Identity) -> Probe {
        if self.checked_from.is_some_and(|from| ts < from) {
            return Probe::Unchecked { from: ts };
        }
        // The run that holds `ts`, if any: the last one starting at or before it.
        let at = match self.runs.back() {
            None => {
                return Probe::Free {
                    from: ts,
                    ts,
                    at: 0,
                }
            }
            Some(last) if ts > last.end => {
                let at = self.runs.len();
                return Probe::Free { from: ts, ts, at };
            }
            _ => self.runs.partition_point(|r| r.start <= ts),
        };
        if at == 0 || ts > self.runs[at - 1].end {
            return Probe::Free { from: ts, ts, at };
        }
        // A tie: walk the adjacent runs from there to the first free slot.
        let mut i = at - 1;
        for _ in 0..MAX_PROBES {
            let run = self.runs[i];
            if let Identity::Line(hash) = who {
                if run.line == hash {
                    return Probe::Same {
                        from: ts,
                        ts: run.start,
                    };
                }
            }
            let Some(next) = run.end.checked_add(1) else {
                return Probe::Unchecked { from: ts };
            };
            i += 1;
            if i == self.runs.len() || self.runs[i].start != next {
                return Probe::Free {
                    from: ts,
                    ts: next,
                    at: i,
                };
            }
        }
        // Thousands of adjacent relayed lines: past the latest is free too.
        match self.runs.back().and_then(|last| last.end.checked_add(1)) {
            Some(next) => Probe::Free {
                from: ts,
                ts: next,
                at: self.runs.len(),
            },
            None => Probe::Unchecked { from: ts },
        }
    }

    /// Takes the slot `probe` found (nothing for `Same`/`Unchecked`), and forgets what fell
    /// out of the window or past `max_runs`.
    fn commit(&mut self, probe: Probe, line: u64, config: &DedupConfig) {
        let Probe::Free { ts, at, .. } = probe else {
            return;
        };
        let joins = |r: &Run| r.line == NO_LINE && line == NO_LINE;
        let after_previous = at > 0 && joins(&self.runs[at - 1]) && self.runs[at - 1].end + 1 == ts;
        let before_next =
            at < self.runs.len() && joins(&self.runs[at]) && self.runs[at].start - 1 == ts;
        match (after_previous, before_next) {
            (true, true) => {
                self.runs[at - 1].end = self.runs[at].end;
                self.runs.remove(at);
            }
            (true, false) => self.runs[at - 1].end = ts,
            (false, true) => self.runs[at].start = ts,
            (false, false) => self.runs.insert(
                at,
                Run {
                    start: ts,
                    end: ts,
                    line,
                },
            ),
        }
        let latest = self.runs.back().map_or(ts, |last| last.end);
        self.forget(latest, config, 0);
    }

    /// Forgets the runs that ended before `latest - window`, and, to leave room for `room`
    /// more within `max_runs`, the oldest others (an eighth of `max_runs` at once, so a series
    /// at the cap does not pay this on every sample).
    #[cold]
    fn forget(&mut self, latest: i64, config: &DedupConfig, room: usize) {
        let horizon = latest.saturating_sub(config.window);
        let len = self.runs.len();
        let mut drop = self.runs.iter().take_while(|r| r.end < horizon).count();
        let limit = config.max_runs.saturating_sub(room);
        if len - drop > limit {
            drop = (len - limit + config.max_runs / 8).min(len);
        }
        if drop > 0 {
            self.checked_from = Some(self.runs[drop - 1].end.saturating_add(1));
            self.runs.drain(..drop);
        }
    }
}

/// The de-duplication state of a sink: library series by key id, relayed lines by the series
/// key their client wrote (the two are kept apart: a sink fed the same series both ways can
/// merge a library sample and a relayed line at one instant).
#[derive(Debug)]
pub struct Dedup {
    config: Option<DedupConfig>,
    by_key: Vec<Slots>,
    by_line_key: HashMap<Box<[u8]>, Slots>,
    /// Samples moved / unchecked since the last `take_counts`.
    moved: u64,
    unchecked: u64,
}

impl Dedup {
    /// `None`: de-duplication off, every timestamp is written as it came.
    pub fn new(config: Option<DedupConfig>) -> Dedup {
        Dedup {
            config,
            by_key: Vec::new(),
            by_line_key: HashMap::new(),
            moved: 0,
            unchecked: 0,
        }
    }

    /// A library sample of series key `key` at `ts`: the timestamp to write, recorded.
    #[inline]
    pub fn place(&mut self, key: KeyId, ts: i64) -> i64 {
        let Some(config) = &self.config else {
            return ts;
        };
        let key = key as usize;
        if key >= self.by_key.len() {
            self.by_key.resize_with(key + 1, Slots::default);
        }
        let slots = &mut self.by_key[key];
        if let Some(last) = slots.runs.back_mut() {
            if ts > last.end {
                // In order, the common case: extend the latest run or start one, O(1). Old
                // runs are forgotten only when the deque would grow or is at the cap.
                if last.line == NO_LINE && last.end + 1 == ts {
                    last.end = ts;
                    return ts;
                }
                let len = slots.runs.len();
                if len == slots.runs.capacity() || len >= config.max_runs {
                    slots.forget(ts, config, 1);
                }
                slots.runs.push_back(Run {
                    start: ts,
                    end: ts,
                    line: NO_LINE,
                });
                return ts;
            }
        }
        let probe = slots.probe(ts, Identity::Sample);
        slots.commit(probe, NO_LINE, config);
        self.count(probe);
        probe.ts()
    }

    /// Where a relayed line of series `key` at `ts` goes; nothing is recorded until
    /// [`Dedup::commit_line`] (the line may still fail to be written).
    pub fn probe_line(&self, key: &[u8], ts: i64, who: Identity) -> Probe {
        if self.config.is_none() {
            return Probe::Unchecked { from: ts };
        }
        match self.by_line_key.get(key) {
            Some(slots) => slots.probe(ts, who),
            None => Probe::Free {
                from: ts,
                ts,
                at: 0,
            },
        }
    }

    /// Records a relayed line written where `probe_line` said.
    pub fn commit_line(&mut self, key: &[u8], probe: Probe, who: Identity) {
        let Some(config) = &self.config else {
            return;
        };
        let line = match who {
            Identity::Line(hash) => hash,
            Identity::Sample => NO_LINE,
        };
        let tracked = self.by_line_key.len();
        let probe = match self.by_line_key.get_mut(key) {
            Some(slots) => {
                slots.commit(probe, line, config);
                probe
            }
            None if tracked < config.max_line_series => {
                let mut slots = Slots::default();
                slots.commit(probe, line, config);
                self.by_line_key.insert(key.into(), slots);
                probe
            }
            // Past the cap a new series is not tracked: its lines cannot be checked.
            None => Probe::Unchecked { from: probe.ts() },
        };
        self.count(probe);
    }

    fn count(&mut self, probe: Probe) {
        match probe {
            Probe::Free { from, ts, .. } | Probe::Same { from, ts } => {
                self.moved += u64::from(from != ts)
            }
            Probe::Unchecked { .. } => self.unchecked += 1,
        }
    }

    /// `(moved, unchecked)` since the last call.
    pub fn take_counts(&mut self) -> (u64, u64) {
        (
            std::mem::take(&mut self.moved),
            std::mem::take(&mut self.unchecked),
        )
    }
}

/// The hash that tells identical relayed lines apart from different ones: of the field set's
/// bytes as the client wrote them, and of `occurrence`, the number of identical lines (same
/// series key, timestamp and fields) before it in the same request. A retried body repeats
/// the same occurrences and so lands on the same slots; two identical lines within one body
/// are two samples (k6's `influxdb` output writes no `vu`, so two VUs counting at the same
/// nanosecond send the same line twice) and the second one moves.
pub fn field_hash(fields: &[u8], occurrence: u32) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(fields);
    if occurrence > 0 {
        h.write_u32(occurrence);
    }
    h.finish().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dedup(window: i64, max_runs: usize) -> Dedup {
        Dedup::new(Some(DedupConfig {
            window,
            max_runs,
            max_line_series: 2,
        }))
    }

    fn places(d: &mut Dedup, times: &[i64]) -> Vec<i64> {
        times.iter().map(|&ts| d.place(0, ts)).collect()
    }

    /// Relays `(key, fields, ts)` lines; gives the timestamps written.
    fn relay(d: &mut Dedup, lines: &[(&str, &str, i64)]) -> Vec<i64> {
        lines
            .iter()
            .map(|&(key, fields, ts)| {
                let who = Identity::Line(field_hash(fields.as_bytes(), 0));
                let probe = d.probe_line(key.as_bytes(), ts, who);
                d.commit_line(key.as_bytes(), probe, who);
                probe.ts()
            })
            .collect()
    }

    #[test]
    fn only_ties_move_by_the_smallest_free_step() {
        let mut d = dedup(1_000, 100);
        assert_eq!(places(&mut d, &[100, 100, 200]), [100, 101, 200]);
        assert_eq!(d.take_counts(), (1, 0));
        // Another series is its own.
        assert_eq!(d.place(1, 100), 100);
    }

    #[test]
    fn out_of_order_samples_keep_their_time() {
        let mut d = dedup(1_000, 100);
        assert_eq!(places(&mut d, &[500, 300, 400, 299]), [500, 300, 400, 299]);
        // A tie with an out-of-order one moves to the next free unit, not past the latest.
        assert_eq!(places(&mut d, &[300, 300]), [301, 302]);
        assert_eq!(d.take_counts(), (2, 0));
    }

    #[test]
    fn three_way_ties_and_taken_neighbours() {
        let mut d = dedup(1_000, 100);
        assert_eq!(places(&mut d, &[100, 100, 100]), [100, 101, 102]);
        // 103 is taken by a real sample: the next tie of 100 skips the whole run.
        assert_eq!(places(&mut d, &[103, 100, 104]), [103, 104, 105]);
        assert_eq!(d.take_counts(), (4, 0));
    }

    #[test]
    fn an_identical_relayed_line_is_the_same_point() {
        let mut d = dedup(1_000, 100);
        let body = [("dup,s=a", "value=1", 1000), ("dup,s=a", "value=2", 2000)];
        assert_eq!(relay(&mut d, &body), [1000, 2000]);
        assert_eq!(relay(&mut d, &body), [1000, 2000]);
        assert_eq!(d.take_counts(), (0, 0));
        // A different line at a taken timestamp is a tie.
        assert_eq!(relay(&mut d, &[("dup,s=a", "value=3", 1000)]), [1001]);
    }

    #[test]
    fn a_retried_moved_tie_lands_on_its_moved_slot() {
        let mut d = dedup(1_000, 100);
        let body = [("m", "v=1", 100), ("m", "v=2", 100), ("m", "v=3", 100)];
        assert_eq!(relay(&mut d, &body), [100, 101, 102]);
        assert_eq!(relay(&mut d, &body), [100, 101, 102]);
        // The retry is written where the first copy was (two moved lines again), adding none.
        assert_eq!(d.take_counts(), (4, 0));
        assert_eq!(relay(&mut d, &[("m", "v=4", 100)]), [103]);
    }

    #[test]
    fn samples_older_than_the_window_keep_their_time_and_are_counted() {
        let mut d = dedup(10, 100);
        // Still remembered, 100 is checked exactly, even out of the window of 200.
        assert_eq!(places(&mut d, &[100, 200, 100]), [100, 200, 101]);
        // The record is trimmed when it grows or, as here, after an out-of-order sample:
        // 100 is forgotten, cannot be checked, and keeps its time.
        assert_eq!(places(&mut d, &[150, 100, 190, 190]), [150, 100, 190, 191]);
        assert_eq!(d.take_counts(), (2, 1));
        // Nothing was forgotten below the first sample of a series: no false "unchecked".
        assert_eq!(d.place(1, 500), 500);
        assert_eq!(d.place(1, 5), 5);
        assert_eq!(d.take_counts(), (0, 0));
    }

    #[test]
    fn the_run_cap_shrinks_the_window() {
        let mut d = dedup(1_000, 3);
        assert_eq!(places(&mut d, &[10, 20, 30, 40]), [10, 20, 30, 40]);
        // Four runs: the first was forgotten, so 10 is unchecked; 20 is still known.
        assert_eq!(places(&mut d, &[10, 20]), [10, 21]);
        assert_eq!(d.take_counts(), (1, 1));
    }

    #[test]
    fn a_burst_of_ties_is_one_run() {
        let mut d = dedup(1_000_000, 4);
        let burst = places(&mut d, &[100; 10_000]);
        assert_eq!(burst, (100..10_100).collect::<Vec<_>>());
        assert_eq!(d.by_key[0].runs.len(), 1);
        // A tie anywhere inside it goes to the first free slot after it.
        assert_eq!(
            places(&mut d, &[5_000, 10_101, 100]),
            [10_100, 10_101, 10_102]
        );
        assert_eq!(d.by_key[0].runs.len(), 1);
        // Relayed lines and samples in one series: lines stay runs of one, samples join.
        let who = Identity::Line(field_hash(b"v=1", 0));
        let probe = d.probe_line(b"m", 7, who);
        d.commit_line(b"m", probe, who);
        assert_eq!(d.probe_line(b"m", 7, Identity::Sample).ts(), 8);
        assert_eq!(d.probe_line(b"m", 7, who), Probe::Same { from: 7, ts: 7 });
    }

    #[test]
    fn relayed_series_past_the_cap_are_not_tracked() {
        let mut d = dedup(1_000, 100);
        let lines = [
            ("m,t=a", "v=1", 7),
            ("m,t=b", "v=1", 7),
            ("m,t=c", "v=1", 7),
            ("m,t=c", "v=2", 7),
        ];
        assert_eq!(relay(&mut d, &lines), [7, 7, 7, 7]);
        assert_eq!(d.take_counts(), (0, 2));
    }

    #[test]
    fn off_writes_every_timestamp_as_it_came() {
        let mut d = Dedup::new(None);
        assert_eq!(places(&mut d, &[5, 5]), [5, 5]);
        assert_eq!(relay(&mut d, &[("m", "v=1", 5), ("m", "v=2", 5)]), [5, 5]);
        assert_eq!(d.take_counts(), (0, 0));
    }
}
