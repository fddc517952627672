//! Layer 4: timestamp de-duplication, one rule for the library and the relay. InfluxDB keeps
//! one point per series and timestamp, so two samples of a series at the same instant would be
//! merged. Only a timestamp EQUAL to one already written for that series moves, by the
//! smallest step (one unit of the sink's precision) that makes it unique: it probes `ts + 1`,
//! `ts + 2`, … until a free slot. Out-of-order samples keep their time.
//!
//! Which samples are the same point: a library call (`submit`, `record`) is a new sample every
//! time, so every tie moves. A relayed line is a client's: a line identical to one already
//! relayed at that (series, timestamp) — same field-set bytes, compared by a 64-bit hash — is
//! the same point sent again (a client's retry) and takes the same slot, so InfluxDB's own
//! idempotence survives; while probing, a slot holding an identical line is taken, so a retried
//! tie lands on the slot it moved to the first time.
//!
//! Memory: per series, the timestamps used within `window` (precision units) of its latest, at
//! most `max_slots` of them (16 bytes each); per sink, the series cap. In-order samples are an
//! O(1) push, out-of-order ones a binary search. What was forgotten (older than the window, or
//! pushed out by `max_slots`) cannot be checked: such a sample keeps its time and is counted in
//! `unchecked`; so is a relayed line of a series past the cap.
//!
//! The state lives in the accumulator, under the lock `Queue::produce` holds for a whole batch
//! of points: no lock of its own, and concurrent producers (relay requests) go through it one
//! batch at a time.

use std::collections::{HashMap, VecDeque};
use std::hash::Hasher;

use crate::config::Config;
use crate::series::KeyId;

/// Most timestamps remembered per series: with the default window, a series of up to 13 k
/// samples/s is checked over the whole window; a faster one over its last 65 536 samples.
/// (1 MiB per series at most; in practice memory follows the sample rate times the window.)
const MAX_SLOTS_PER_SERIES: usize = 1 << 16;

/// How far the probe looks for an identical line among consecutive taken slots before it
/// skips the rest of the run (bounds the cost of many lines tied at one timestamp; a retry of
/// a body with more ties than that at one timestamp of one series may duplicate the rest).
const MAX_IDENTITY_PROBES: usize = 1024;

/// De-duplication settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupConfig {
    /// How far behind a series' latest timestamp (precision units) samples are still checked.
    pub window: i64,
    /// Most timestamps remembered per series.
    pub max_slots: usize,
    /// Most relayed series keys remembered (the sink's series cap).
    pub max_line_series: usize,
}

impl DedupConfig {
    /// `PERFSINK_DEDUP`, `PERFSINK_DEDUP_WINDOW_MS` (in the sink's precision), the series cap.
    pub fn from_config(config: &Config) -> Option<DedupConfig> {
        let window_ns = i64::try_from(config.dedup_window.as_nanos()).unwrap_or(i64::MAX);
        config.dedup.then(|| DedupConfig {
            window: config.precision.from_ns(window_ns),
            max_slots: MAX_SLOTS_PER_SERIES,
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
    /// A free slot `ts` (index `at` in the series' slots), asked for `from`.
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

/// The timestamps used by one series, sorted, each once.
#[derive(Debug, Default)]
struct Slots {
    used: VecDeque<Slot>,
    /// Below this the record is incomplete (slots were forgotten): samples are unchecked.
    checked_from: Option<i64>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    ts: i64,
    /// The field-set hash of a relayed line; 0 for a library sample (never compared).
    line: u64,
}

impl Slots {
    fn probe(&self, ts: i64, who: Identity) -> Probe {
        if self.checked_from.is_some_and(|from| ts < from) {
            return Probe::Unchecked { from: ts };
        }
        let at = match self.used.back() {
            None => {
                return Probe::Free {
                    from: ts,
                    ts,
                    at: 0,
                }
            }
            Some(last) if ts > last.ts => {
                return Probe::Free {
                    from: ts,
                    ts,
                    at: self.used.len(),
                }
            }
            _ => match self.used.binary_search_by_key(&ts, |s| s.ts) {
                Err(at) => return Probe::Free { from: ts, ts, at },
                Ok(at) => at,
            },
        };
        // A tie: walk the run of consecutive taken slots from `at` to the first free one.
        let mut i = at;
        let mut probes = 0;
        loop {
            let slot = self.used[i];
            if let Identity::Line(hash) = who {
                if slot.line == hash {
                    return Probe::Same {
                        from: ts,
                        ts: slot.ts,
                    };
                }
                probes += 1;
            }
            if who == Identity::Sample || probes >= MAX_IDENTITY_PROBES {
                i = self.run_end(i) - 1;
            }
            let Some(next) = self.used[i].ts.checked_add(1) else {
                return Probe::Unchecked { from: ts };
            };
            i += 1;
            if i == self.used.len() || self.used[i].ts != next {
                return Probe::Free {
                    from: ts,
                    ts: next,
                    at: i,
                };
            }
        }
    }

    /// The index just past the run of consecutive timestamps that holds index `i`: slot
    /// timestamps are increasing integers, so `ts - index` is constant along a run and grows
    /// after it, which a binary search finds.
    fn run_end(&self, i: usize) -> usize {
        let base = self.used[i].ts as i128 - i as i128;
        let (mut lo, mut hi) = (i + 1, self.used.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.used[mid].ts as i128 - mid as i128 == base {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Takes the slot `probe` found (nothing for `Same`/`Unchecked`), and forgets what fell
    /// out of the window or past `max_slots`.
    fn commit(&mut self, probe: Probe, line: u64, config: &DedupConfig) {
        let Probe::Free { ts, at, .. } = probe else {
            return;
        };
        self.used.insert(at, Slot { ts, line });
        let horizon = self
            .used
            .back()
            .map_or(ts, |last| last.ts)
            .saturating_sub(config.window);
        while let Some(first) = self.used.front() {
            if first.ts >= horizon && self.used.len() <= config.max_slots {
                break;
            }
            self.checked_from = Some(first.ts.saturating_add(1));
            self.used.pop_front();
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
        let probe = slots.probe(ts, Identity::Sample);
        slots.commit(probe, 0, config);
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
            Identity::Sample => 0,
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
/// bytes as the client wrote them.
pub fn field_hash(fields: &[u8]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(fields);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dedup(window: i64, max_slots: usize) -> Dedup {
        Dedup::new(Some(DedupConfig {
            window,
            max_slots,
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
                let who = Identity::Line(field_hash(fields.as_bytes()));
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
        assert_eq!(places(&mut d, &[100, 200]), [100, 200]);
        // 100 fell out of the window of 200: it cannot be checked, so it keeps its time.
        assert_eq!(places(&mut d, &[100, 190, 190]), [100, 190, 191]);
        assert_eq!(d.take_counts(), (1, 1));
        // Nothing was forgotten below the first sample of a series: no false "unchecked".
        assert_eq!(d.place(1, 500), 500);
        assert_eq!(d.place(1, 5), 5);
        assert_eq!(d.take_counts(), (0, 0));
    }

    #[test]
    fn the_slot_cap_shrinks_the_window() {
        let mut d = dedup(1_000, 3);
        assert_eq!(places(&mut d, &[1, 2, 3, 4]), [1, 2, 3, 4]);
        assert_eq!(places(&mut d, &[1, 2]), [1, 5]);
        assert_eq!(d.take_counts(), (1, 1));
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
