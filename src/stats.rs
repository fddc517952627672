//! Counters of everything the sink did with the points it was given. Every point offered ends
//! in exactly one place: refused (`rejected_invalid`, `dropped_queue_full`), or accepted and then
//! written, rejected by the server, dropped undelivered, or still pending.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

/// Live counters, shared by producers and the writer.
#[derive(Default, Debug)]
pub struct Counters {
    pub accepted: AtomicU64,
    pub replayed: AtomicU64,
    pub written: AtomicU64,
    pub retried: AtomicU64,
    pub rejected_invalid: AtomicU64,
    pub rejected_server: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_undelivered: AtomicU64,
    pub spooled: AtomicU64,
    pub deduplicated: AtomicU64,
    pub dedup_unchecked: AtomicU64,
    pub series: AtomicU64,
    pub series_rejected: AtomicU64,
    pub requests: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub write_latency_us_total: AtomicU64,
    pub write_latency_us_max: AtomicU64,
    pub self_metrics_written: AtomicU64,
    pub aggregated: AtomicU64,
    pub aggregated_late: AtomicU64,
    pub aggregated_no_percentiles: AtomicU64,
    /// Signalled by the writer when points settle (or writing stops), for `Sink::flush`.
    settle_lock: Mutex<()>,
    settle_signal: Condvar,
}

/// A consistent-enough copy of the counters (each read is atomic, the set is not).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Points taken into the pipeline.
    pub accepted: u64,
    /// Points read back from the disk spool of an earlier run.
    pub replayed: u64,
    /// Points InfluxDB confirmed.
    pub written: u64,
    /// Write requests sent again after a failure.
    pub retried: u64,
    /// `rejected_invalid + rejected_server`.
    pub rejected: u64,
    /// Points refused at submit (NaN/±Inf, bad names, unknown series, series cap).
    pub rejected_invalid: u64,
    /// Points InfluxDB refused (parse errors, partial writes, a single line over the body limit).
    pub rejected_server: u64,
    /// `dropped_queue_full + dropped_undelivered`.
    pub dropped: u64,
    /// Points dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Points that could not be delivered (memory/spool full, close deadline, auth failure).
    pub dropped_undelivered: u64,
    /// Points written to the disk spool.
    pub spooled: u64,
    /// Points accepted and not yet written, rejected or dropped.
    pub queue_depth: u64,
    /// Timestamps shifted so two samples of one series do not overwrite each other.
    pub deduplicated: u64,
    /// Points whose timestamp the de-duplication could not check (older than its window, or
    /// a relayed series past the cap): written at their own time, a tie there may merge.
    pub dedup_unchecked: u64,
    /// Distinct series (measurement + tag set) registered, however many value fields each.
    pub series: u64,
    /// Registrations refused by the series cap.
    pub series_rejected: u64,
    /// Write requests answered (any status).
    pub requests: u64,
    /// Request body bytes sent (after gzip).
    pub bytes_sent: u64,
    /// Mean and max write latency in microseconds.
    pub write_latency_us_mean: u64,
    pub write_latency_us_max: u64,
    /// Samples folded into per-interval statistics (`PERFSINK_MODE=aggregate|both`); the
    /// points written of them are counted as lines above.
    pub aggregated: u64,
    /// Aggregated samples that came after their interval was written: counted into the
    /// series' next interval (its `late` field).
    pub aggregated_late: u64,
    /// Aggregated trend samples whose interval has no percentiles (histogram memory cap).
    pub aggregated_no_percentiles: u64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        if n != 0 {
            counter.fetch_add(n, Relaxed);
        }
    }

    /// Points that reached a final state after being accepted.
    pub fn settled(&self) -> u64 {
        self.written.load(Relaxed)
            + self.rejected_server.load(Relaxed)
            + self.dropped_undelivered.load(Relaxed)
    }

    /// Points that entered the pipeline (this run's and those replayed from the spool).
    pub fn entered(&self) -> u64 {
        self.accepted.load(Relaxed) + self.replayed.load(Relaxed)
    }

    /// Wakes the threads in `wait_settled` (the writer calls it after counting points as
    /// written, rejected or dropped, and when writing stops).
    pub fn notify_settled(&self) {
        let _guard = self.settle_lock.lock();
        self.settle_signal.notify_all();
    }

    /// Waits until `done()` holds or `deadline` passes; returns `done()`. `done` is checked
    /// under the lock `notify_settled` takes, so no signal is missed between check and wait.
    pub fn wait_settled(&self, deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
        let mut guard = self.settle_lock.lock();
        loop {
            if done() {
                return true;
            }
            if self
                .settle_signal
                .wait_until(&mut guard, deadline)
                .timed_out()
            {
                return done();
            }
        }
    }

    pub fn record_latency(&self, us: u64) {
        self.write_latency_us_total.fetch_add(us, Relaxed);
        self.write_latency_us_max.fetch_max(us, Relaxed);
    }

    pub fn snapshot(&self) -> Stats {
        let r = |c: &AtomicU64| c.load(Relaxed);
        let accepted = r(&self.accepted);
        let replayed = r(&self.replayed);
        let written = r(&self.written);
        let rejected_invalid = r(&self.rejected_invalid);
        let rejected_server = r(&self.rejected_server);
        let dropped_queue_full = r(&self.dropped_queue_full);
        let dropped_undelivered = r(&self.dropped_undelivered);
        let requests = r(&self.requests);
        Stats {
            accepted,
            replayed,
            written,
            retried: r(&self.retried),
            rejected: rejected_invalid + rejected_server,
            rejected_invalid,
            rejected_server,
            dropped: dropped_queue_full + dropped_undelivered,
            dropped_queue_full,
            dropped_undelivered,
            spooled: r(&self.spooled),
            queue_depth: (accepted + replayed)
                .saturating_sub(written + rejected_server + dropped_undelivered),
            deduplicated: r(&self.deduplicated),
            dedup_unchecked: r(&self.dedup_unchecked),
            series: r(&self.series),
            series_rejected: r(&self.series_rejected),
            requests,
            bytes_sent: r(&self.bytes_sent),
            write_latency_us_mean: r(&self.write_latency_us_total)
                .checked_div(requests)
                .unwrap_or(0),
            write_latency_us_max: r(&self.write_latency_us_max),
            aggregated: r(&self.aggregated),
            aggregated_late: r(&self.aggregated_late),
            aggregated_no_percentiles: r(&self.aggregated_no_percentiles),
        }
    }
}

#[cfg(test)]
mod settle_tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn waiters_wake_on_the_signal_and_give_up_at_the_deadline() {
        let c = Arc::new(Counters::default());
        Counters::add(&c.accepted, 3);
        let writer = {
            let c = c.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                Counters::add(&c.written, 3);
                c.notify_settled();
            })
        };
        let started = Instant::now();
        let far = started + Duration::from_secs(10);
        assert!(c.wait_settled(far, || c.settled() >= c.entered()));
        assert!(started.elapsed() < Duration::from_secs(5));
        writer.join().unwrap();
        let soon = Instant::now() + Duration::from_millis(30);
        assert!(!c.wait_settled(soon, || c.settled() > c.entered()));
        assert!(Instant::now() >= soon);
    }
}
