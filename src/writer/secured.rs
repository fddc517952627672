//! Which batches are kept: in the spool (appended, and fsynced when the policy says `always`)
//! or delivered. Batches are numbered by the queue in the order producers handed them over
//! (`Chunk::seq`); the writer keeps them out of that order (a partial batch, a refused append
//! kept only by delivery), so this tracks the highest number below which all are kept, which
//! is what `Sink::sync` (and through it the relay's 204) waits for.

use std::collections::BTreeSet;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

#[derive(Default)]
struct State {
    /// Every batch numbered up to this one is kept.
    upto: u64,
    /// Kept batches above `upto + 1`.
    ahead: BTreeSet<u64>,
    /// The writer has stopped: nothing more will be kept.
    stopped: bool,
}

#[derive(Default)]
pub struct Secured {
    state: Mutex<State>,
    changed: Condvar,
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Waited {
    Kept,
    TimedOut,
    Stopped,
}

impl Secured {
    /// Batches `seqs` are kept (0, the writer's own batches, is ignored).
    pub fn keep(&self, seqs: &[u64]) {
        if seqs.is_empty() {
            return;
        }
        let mut s = self.state.lock();
        for &seq in seqs {
            if seq > s.upto {
                s.ahead.insert(seq);
            }
        }
        while s.ahead.first() == Some(&(s.upto + 1)) {
            s.ahead.pop_first();
            s.upto += 1;
        }
        self.changed.notify_all();
    }

    pub fn stop(&self) {
        self.state.lock().stopped = true;
        self.changed.notify_all();
    }

    /// Waits until every batch up to `seq` is kept, at most until `deadline`.
    pub fn wait(&self, seq: u64, deadline: Instant) -> Waited {
        let mut s = self.state.lock();
        loop {
            if s.upto >= seq {
                return Waited::Kept;
            }
            if s.stopped {
                return Waited::Stopped;
            }
            if self.changed.wait_until(&mut s, deadline).timed_out() {
                return if s.upto >= seq {
                    Waited::Kept
                } else {
                    Waited::TimedOut
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn out_of_order_keeps_wait_for_the_gap() {
        let s = Secured::default();
        let soon = || Instant::now() + Duration::from_millis(20);
        s.keep(&[2, 3, 0]);
        assert_eq!(s.wait(1, soon()), Waited::TimedOut);
        assert_eq!(s.wait(0, soon()), Waited::Kept);
        s.keep(&[1]);
        assert_eq!(s.wait(3, soon()), Waited::Kept);
        assert_eq!(s.wait(4, soon()), Waited::TimedOut);
        s.keep(&[3, 5]);
        s.stop();
        assert_eq!(s.wait(5, soon()), Waited::Stopped);
        s.keep(&[4]);
        assert_eq!(s.wait(5, soon()), Waited::Kept);
    }
}
