//! What the writer holds: chunks in memory up to a byte cap, then in the disk spool, taken
//! out oldest first. Memory includes chunks in flight, so the cap bounds the writer's RAM.

use std::collections::VecDeque;

use super::spool::Spool;
use crate::pipeline::Chunk;

pub struct Backlog {
    mem: VecDeque<Chunk>,
    /// Bytes in `mem` plus bytes in flight.
    held: usize,
    max_mem: usize,
    pub spool: Option<Spool>,
}

/// Where `push` put a chunk.
pub enum Pushed {
    Memory,
    Spool,
    /// No room anywhere: the caller counts the lines as dropped.
    Refused(Chunk),
}

impl Backlog {
    pub fn new(max_mem: usize, spool: Option<Spool>) -> Self {
        Backlog {
            mem: VecDeque::new(),
            held: 0,
            max_mem,
            spool,
        }
    }

    /// Room for another chunk, in memory or on disk. Without room the writer leaves chunks on
    /// the queue, so producers feel the queue policy rather than losing points unseen.
    pub fn has_room(&self) -> bool {
        match &self.spool {
            // Once anything is on disk, `push` appends there (order of arrival).
            Some(s) if !s.is_empty() => s.has_room(),
            Some(s) => self.held < self.max_mem || s.has_room(),
            None => self.held < self.max_mem,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.mem.is_empty() && self.spool.as_ref().is_none_or(|s| s.is_empty())
    }

    /// Appends at the tail. Memory takes a chunk while it holds less than its cap (so it may
    /// end up one chunk over the cap, which `has_room` promised). Once anything is on disk,
    /// newer chunks go to disk too, so the order of delivery stays the order of arrival.
    pub fn push(&mut self, chunk: Chunk) -> Pushed {
        let len = chunk.data.len();
        let spool_busy = self.spool.as_ref().is_some_and(|s| !s.is_empty());
        if !spool_busy && self.held < self.max_mem {
            self.held += len;
            self.mem.push_back(chunk);
            return Pushed::Memory;
        }
        self.spill(chunk)
    }

    /// Puts a chunk on disk (when shutting down, or when memory is full).
    pub fn spill(&mut self, chunk: Chunk) -> Pushed {
        match &mut self.spool {
            Some(spool) => match spool.push(chunk) {
                Ok(()) => Pushed::Spool,
                Err((chunk, _)) => Pushed::Refused(chunk),
            },
            None => Pushed::Refused(chunk),
        }
    }

    /// Puts back a chunk that came out of `pop` (a retry or the halves of a split); its bytes
    /// are still counted as held.
    pub fn push_front(&mut self, chunk: Chunk) {
        self.mem.push_front(chunk);
    }

    /// The oldest chunk; its bytes stay held until `release`. `Err(lines)` for a spool file
    /// that could not be read.
    pub fn pop(&mut self) -> Option<Result<Chunk, u64>> {
        if let Some(c) = self.mem.pop_front() {
            return Some(Ok(c));
        }
        let popped = self.spool.as_mut()?.pop()?;
        if let Ok(c) = &popped {
            self.held += c.data.len();
        }
        Some(popped)
    }

    /// Takes a chunk of memory out, oldest first, without touching the spool (for shutdown).
    pub fn pop_memory(&mut self) -> Option<Chunk> {
        self.mem.pop_front()
    }

    /// A chunk taken by `pop` is done with (delivered or dropped).
    pub fn release(&mut self, bytes: usize) {
        self.held = self.held.saturating_sub(bytes);
    }
}
