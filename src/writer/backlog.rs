//! What the writer holds, oldest first. Without a spool: chunks in memory up to a byte cap
//! (including chunks in flight), so the cap bounds the writer's RAM. With the write-ahead
//! spool every chunk is on disk already; memory keeps copies up to the same cap and the rest
//! is only a place in the spool, read back when its turn comes.

use std::collections::VecDeque;
use std::sync::Arc;

use super::spool::{Pending, Spool};
use crate::pipeline::{Chunk, Hold, Loc};

enum Entry {
    Mem(Chunk),
    Disk { loc: Loc, hold: Arc<Hold> },
}

pub struct Backlog {
    entries: VecDeque<Entry>,
    /// Bytes of chunks in memory plus bytes in flight.
    held: usize,
    max_mem: usize,
    pub spool: Option<Spool>,
}

/// A spool record that could not be read back: its lines are lost (counted by the caller).
pub struct Unreadable {
    pub hold: Arc<Hold>,
    pub error: std::io::Error,
}

impl Backlog {
    pub fn new(max_mem: usize, spool: Option<Spool>) -> Self {
        Backlog {
            entries: VecDeque::new(),
            held: 0,
            max_mem,
            spool,
        }
    }

    /// Records an earlier process left in the spool, to deliver before anything new.
    pub fn replay(&mut self, pending: Vec<Pending>) {
        for p in pending {
            let hold = Hold::new(Some(p.loc), p.lines, p.kind, 0);
            self.entries.push_back(Entry::Disk { loc: p.loc, hold });
        }
    }

    /// Room for another chunk. Without room the writer leaves chunks on the queue, so
    /// producers feel the queue policy rather than losing points unseen.
    pub fn has_room(&self) -> bool {
        match &self.spool {
            Some(s) => s.has_room(),
            None => self.held < self.max_mem,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends at the tail. Memory takes a chunk while it holds less than its cap (so it may
    /// end up one chunk over the cap, which `has_room` promised). A chunk that is in the spool
    /// and finds memory full is kept as its place only.
    pub fn push(&mut self, chunk: Chunk) {
        let on_disk = chunk
            .hold
            .as_ref()
            .and_then(|h| h.loc.map(|l| (l, h.clone())));
        match on_disk {
            Some((loc, hold)) if self.held >= self.max_mem => {
                self.entries.push_back(Entry::Disk { loc, hold })
            }
            _ => {
                self.held += chunk.data.len();
                self.entries.push_back(Entry::Mem(chunk));
            }
        }
    }

    /// Puts back a chunk that came out of `pop` (a retry or the halves of a split); its bytes
    /// are still counted as held.
    pub fn push_front(&mut self, chunk: Chunk) {
        self.entries.push_front(Entry::Mem(chunk));
    }

    /// The oldest chunk; its bytes stay held until `release`.
    pub fn pop(&mut self) -> Option<Result<Chunk, Unreadable>> {
        Some(match self.entries.pop_front()? {
            Entry::Mem(c) => Ok(c),
            Entry::Disk { loc, hold } => {
                let read = match &self.spool {
                    Some(s) => s.read(loc),
                    None => Err(std::io::Error::other("no spool")),
                };
                match read {
                    Ok(data) => {
                        self.held += data.len();
                        let mut c = Chunk::new(data, hold.lines, hold.kind);
                        c.seq = hold.seq;
                        c.hold = Some(hold);
                        Ok(c)
                    }
                    Err(error) => Err(Unreadable { hold, error }),
                }
            }
        })
    }

    /// Takes the chunks in memory out, oldest first, leaving places in the spool where they
    /// are (for shutdown, and when writing stopped for good).
    pub fn drain_memory(&mut self) -> Vec<Chunk> {
        let mut out = Vec::new();
        let mut keep = VecDeque::new();
        for e in self.entries.drain(..) {
            match e {
                Entry::Mem(c) => {
                    self.held = self.held.saturating_sub(c.data.len());
                    out.push(c);
                }
                disk => keep.push_back(disk),
            }
        }
        self.entries = keep;
        out
    }

    /// A chunk taken by `pop` is done with (delivered or dropped).
    pub fn release(&mut self, bytes: usize) {
        self.held = self.held.saturating_sub(bytes);
    }
}
