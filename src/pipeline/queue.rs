//! The bounded queue of batches, the accumulator producers encode into, and the full-queue
//! policy. Producers never touch the network: the worst they do is wait up to the configured
//! bound for room, and under `drop` they never wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, SendTimeoutError, Sender, TrySendError};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::chunk::{Chunk, ChunkKind};
use super::dedup::{Dedup, DedupConfig};
use crate::config::QueuePolicy;
use crate::error::{Error, Result};
use crate::stats::Counters;

/// Lines being gathered into the next chunk.
pub struct Accumulator {
    pub buf: Vec<u8>,
    pub lines: u64,
    since: Option<Instant>,
    /// Set by the writer's last step (`take_rest`): nothing is taken after it.
    closed: bool,
    /// The timestamps written per series, under the same lock as the lines they go into.
    dedup: Dedup,
    /// The number the batch being gathered gets when it is taken (from 1, in order of taking):
    /// `Sink::sync` waits until the writer kept every batch up to a number.
    seq: u64,
}

/// What one producer call did with its points.
#[derive(Debug, Default, PartialEq)]
pub struct Produced {
    pub accepted: usize,
    pub rejected: usize,
    pub dropped: usize,
    pub first_error: Option<Error>,
}

pub struct Queue {
    acc: Mutex<Accumulator>,
    tx: Sender<Chunk>,
    rx: Receiver<Chunk>,
    /// Emptied buffers the writer hands back, so chunks do not allocate afresh. Up to as many
    /// as the queue holds (the same bound as the queue's own memory): the buffers of a burst
    /// serve the next one instead of being freed and their pages faulted in again, which
    /// costs about as much as encoding into them.
    free_tx: Sender<Vec<u8>>,
    free_rx: Receiver<Vec<u8>>,
    batch_lines: u64,
    batch_bytes: usize,
    policy: QueuePolicy,
    wake: Arc<Notify>,
    counters: Arc<Counters>,
}

impl Queue {
    pub fn new(
        capacity: usize,
        batch_lines: usize,
        batch_bytes: usize,
        policy: QueuePolicy,
        dedup: Option<DedupConfig>,
        wake: Arc<Notify>,
        counters: Arc<Counters>,
    ) -> Self {
        let (tx, rx) = bounded(capacity);
        let (free_tx, free_rx) = bounded(capacity);
        Queue {
            acc: Mutex::new(Accumulator {
                buf: Vec::new(),
                lines: 0,
                since: None,
                closed: false,
                dedup: Dedup::new(dedup),
                seq: 1,
            }),
            tx,
            rx,
            free_tx,
            free_rx,
            batch_lines: batch_lines as u64,
            batch_bytes,
            policy,
            wake,
            counters,
        }
    }

    /// Encodes `n` items into the accumulator, one lock for the whole call.
    /// `encode(i, buf, dedup)` appends item `i` as complete lines (their timestamps placed by
    /// `dedup`) and returns how many, or an error after leaving `buf` and `dedup` as they were.
    /// A full queue drops the rest of the call under the policy, counted.
    pub fn produce<F>(&self, n: usize, mut encode: F) -> Produced
    where
        F: FnMut(usize, &mut Vec<u8>, &mut Dedup) -> Result<u64>,
    {
        let mut out = Produced::default();
        let mut acc = self.acc.lock();
        if acc.closed {
            // The writer has stopped: refused like a call on a closed sink.
            out.first_error = Some(Error::Closed);
            return out;
        }
        let mut unpublished = 0u64;
        for i in 0..n {
            if acc.lines >= self.batch_lines || acc.buf.len() >= self.batch_bytes {
                Counters::add(&self.counters.accepted, unpublished);
                unpublished = 0;
                if self.hand_off(&mut acc).is_err() {
                    out.dropped = n - i;
                    Counters::add(&self.counters.dropped_queue_full, out.dropped as u64);
                    out.first_error.get_or_insert(Error::QueueFull);
                    break;
                }
            }
            if acc.since.is_none() {
                acc.since = Some(Instant::now());
            }
            let acc = &mut *acc;
            match encode(i, &mut acc.buf, &mut acc.dedup) {
                Ok(lines) => {
                    acc.lines += lines;
                    unpublished += lines;
                    out.accepted += 1;
                }
                Err(e) => {
                    out.rejected += 1;
                    out.first_error.get_or_insert(e);
                }
            }
        }
        Counters::add(&self.counters.accepted, unpublished);
        Counters::add(&self.counters.rejected_invalid, out.rejected as u64);
        let (moved, unchecked) = acc.dedup.take_counts();
        Counters::add(&self.counters.deduplicated, moved);
        Counters::add(&self.counters.dedup_unchecked, unchecked);
        out
    }

    /// Moves the accumulator onto the queue, or leaves it in place when the policy gives up.
    fn hand_off(&self, acc: &mut Accumulator) -> Result<()> {
        let chunk = self.take(acc);
        let sent = match self.policy {
            QueuePolicy::DropNewest => self.tx.try_send(chunk).map_err(|e| match e {
                TrySendError::Full(c) | TrySendError::Disconnected(c) => c,
            }),
            QueuePolicy::Block(bound) => self.tx.send_timeout(chunk, bound).map_err(|e| match e {
                SendTimeoutError::Timeout(c) | SendTimeoutError::Disconnected(c) => c,
            }),
        };
        match sent {
            Ok(()) => {
                self.wake.notify_one();
                Ok(())
            }
            Err(chunk) => {
                self.restore(acc, chunk);
                Err(Error::QueueFull)
            }
        }
    }

    fn take(&self, acc: &mut Accumulator) -> Chunk {
        let fresh = self
            .free_rx
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(self.batch_bytes.min(1 << 20)));
        let data = std::mem::replace(&mut acc.buf, fresh);
        let lines = std::mem::take(&mut acc.lines);
        acc.since = None;
        let mut chunk = Chunk::new(data, lines, ChunkKind::User);
        chunk.seq = acc.seq;
        acc.seq += 1;
        chunk
    }

    /// Undoes `take` (right after it, under the same lock).
    fn restore(&self, acc: &mut Accumulator, chunk: Chunk) {
        let spare = std::mem::replace(&mut acc.buf, chunk.data);
        self.recycle(spare);
        acc.lines = chunk.lines;
        acc.since = Some(Instant::now());
        acc.seq = chunk.seq;
    }

    /// Puts the accumulator on the queue now, waiting up to `timeout` for room. Returns the
    /// number of the last batch taken so far: every line produced before the call is in a
    /// batch up to it.
    pub fn flush_accumulator(&self, timeout: Duration) -> Result<u64> {
        // Never wait for room while holding the accumulator: producers and the writer
        // (which takes partial batches) would wait behind us, and the writer is the one
        // that makes room.
        let deadline = Instant::now() + timeout;
        loop {
            {
                let mut acc = self.acc.lock();
                if acc.lines == 0 {
                    return Ok(acc.seq - 1);
                }
                let chunk = self.take(&mut acc);
                match self.tx.try_send(chunk) {
                    Ok(()) => {
                        self.wake.notify_one();
                        return Ok(acc.seq - 1);
                    }
                    Err(TrySendError::Full(c)) | Err(TrySendError::Disconnected(c)) => {
                        self.restore(&mut acc, c);
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// For the writer's loop: the accumulator's lines when they have waited at least `age`.
    /// Never waits for the lock: a producer holding it may itself be waiting for the writer
    /// to make room on the queue.
    pub fn take_partial(&self, age: Duration) -> Option<Chunk> {
        let mut acc = self.acc.try_lock()?;
        match acc.since {
            Some(since) if acc.lines > 0 && since.elapsed() >= age => Some(self.take(&mut acc)),
            _ => None,
        }
    }

    /// For the writer's loop: nothing waits in the accumulator (a held lock counts as
    /// something: a producer is adding to it).
    pub fn accumulator_is_empty(&self) -> bool {
        self.acc.try_lock().is_some_and(|acc| acc.lines == 0)
    }

    /// For the writer's last step: whatever the accumulator holds, and no producer adds to it
    /// afterwards. The queue is drained before, so a producer holding the lock gets room at
    /// once; what it hands off meanwhile is on the queue, which the writer drains again after.
    pub fn take_rest(&self) -> Option<Chunk> {
        let mut acc = self.acc.lock();
        acc.closed = true;
        (acc.lines > 0).then(|| self.take(&mut acc))
    }

    /// For the writer: the next queued chunk, without waiting.
    pub fn try_recv(&self) -> Option<Chunk> {
        self.rx.try_recv().ok()
    }

    /// Chunks waiting on the queue.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Gives an emptied buffer back for reuse.
    pub fn recycle(&self, mut buf: Vec<u8>) {
        if buf.capacity() >= 4096 && buf.capacity() <= 2 * self.batch_bytes.max(1 << 20) {
            buf.clear();
            let _ = self.free_tx.try_send(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue(capacity: usize, lines: usize, policy: QueuePolicy) -> (Queue, Arc<Counters>) {
        let counters = Arc::new(Counters::default());
        let q = Queue::new(
            capacity,
            lines,
            1 << 20,
            policy,
            None,
            Arc::new(Notify::new()),
            counters.clone(),
        );
        (q, counters)
    }

    fn line(_: usize, buf: &mut Vec<u8>, _: &mut Dedup) -> Result<u64> {
        buf.extend_from_slice(b"m v=1 1\n");
        Ok(1)
    }

    #[test]
    fn nothing_is_taken_after_the_writers_last_step() {
        let (q, counters) = queue(4, 10, QueuePolicy::DropNewest);
        assert_eq!(q.produce(3, line).accepted, 3);
        assert_eq!(q.take_rest().unwrap().lines, 3);
        let p = q.produce(2, line);
        assert_eq!(
            (p.accepted, p.dropped, p.first_error),
            (0, 0, Some(Error::Closed))
        );
        assert!(q.take_rest().is_none() && q.is_empty());
        assert_eq!(counters.snapshot().accepted, 3);
    }

    #[test]
    fn full_batches_go_on_the_queue_and_partial_ones_wait() {
        let (q, c) = queue(4, 2, QueuePolicy::DropNewest);
        let p = q.produce(5, line);
        assert_eq!(p.accepted, 5);
        assert_eq!(q.len(), 2);
        assert_eq!(c.accepted.load(std::sync::atomic::Ordering::Relaxed), 5);
        let partial = q.take_partial(Duration::ZERO).unwrap();
        assert_eq!(partial.lines, 1);
        assert!(q.take_partial(Duration::ZERO).is_none());
    }

    #[test]
    fn drop_newest_counts_what_it_drops_and_keeps_the_oldest() {
        let (q, c) = queue(1, 2, QueuePolicy::DropNewest);
        let p = q.produce(7, line);
        // 2 lines on the queue, 2 in the full accumulator, the other 3 dropped.
        assert_eq!((p.accepted, p.dropped), (4, 3));
        assert_eq!(p.first_error, Some(Error::QueueFull));
        assert_eq!(
            c.dropped_queue_full
                .load(std::sync::atomic::Ordering::Relaxed),
            3
        );
        assert_eq!(q.try_recv().unwrap().lines, 2);
        assert_eq!(q.take_partial(Duration::ZERO).unwrap().lines, 2);
    }

    #[test]
    fn block_waits_up_to_its_bound_then_drops() {
        let (q, _) = queue(1, 1, QueuePolicy::Block(Duration::from_millis(50)));
        let t = Instant::now();
        let p = q.produce(3, line);
        assert!(t.elapsed() >= Duration::from_millis(50));
        assert_eq!((p.accepted, p.dropped), (2, 1));
    }

    #[test]
    fn encode_errors_are_counted_and_do_not_stop_the_batch() {
        let (q, c) = queue(4, 100, QueuePolicy::DropNewest);
        let p = q.produce(3, |i, buf, dedup| {
            if i == 1 {
                Err(Error::InvalidValue("NaN".into()))
            } else {
                line(i, buf, dedup)
            }
        });
        assert_eq!((p.accepted, p.rejected), (2, 1));
        assert_eq!(
            c.rejected_invalid
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );
    }
}
