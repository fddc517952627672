//! Counters of everything the sink did with the points it was given. Every point offered ends
//! in exactly one place: refused (`rejected_invalid`, `dropped_queue_full`), or accepted and then
//! written, rejected by the server, dropped undelivered, or still pending.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
        }
    }
}
