//! A batch of encoded lines: what travels from producers to the writer, and what the writer
//! sends, retries, splits and spools.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// Whose lines a chunk holds. Self-metrics are kept apart so user counters stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    User,
    SelfMetrics,
}

/// Where a batch is in the write-ahead spool (`writer::spool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loc {
    pub seg: u64,
    pub at: u64,
    pub len: u32,
    pub id: u64,
}

/// A batch the writer took, shared by the parts it may be split into: settled (acked in the
/// spool, or secured by delivery) when its last part is.
#[derive(Debug)]
pub struct Hold {
    /// Its record in the spool; `None` when the spool refused it (it is then kept only by
    /// being delivered).
    pub loc: Option<Loc>,
    /// The batch's own lines and kind (its record's), whatever its parts hold.
    pub lines: u64,
    pub kind: ChunkKind,
    /// The queue's number of the batch, 0 for batches the writer made (self-metrics, replays).
    pub seq: u64,
    parts: AtomicU32,
}

impl Hold {
    pub fn new(loc: Option<Loc>, lines: u64, kind: ChunkKind, seq: u64) -> Arc<Hold> {
        Arc::new(Hold {
            loc,
            lines,
            kind,
            seq,
            parts: AtomicU32::new(1),
        })
    }

    /// One part is settled; true when it was the last.
    pub fn settle_part(&self) -> bool {
        self.parts.fetch_sub(1, Relaxed) == 1
    }
}

#[derive(Debug)]
pub struct Chunk {
    /// Complete lines, each ending in `\n`.
    pub data: Vec<u8>,
    pub lines: u64,
    pub kind: ChunkKind,
    /// How many times this chunk was sent and failed with a retryable error.
    pub attempts: u32,
    /// The bisection budget its batch still has, shared by all its parts (the writer sets it
    /// at the first bisection; see `writer::policy`).
    pub probes: Option<Arc<AtomicU32>>,
    /// The queue's number of this batch (producers' order, from 1); 0 for the writer's own.
    pub seq: u64,
    /// Set by the writer when it takes the batch (with a spool).
    pub hold: Option<Arc<Hold>>,
}

impl Chunk {
    pub fn new(data: Vec<u8>, lines: u64, kind: ChunkKind) -> Self {
        Chunk {
            data,
            lines,
            kind,
            attempts: 0,
            probes: None,
            seq: 0,
            hold: None,
        }
    }

    /// Counts the lines of `data` (for chunks read back from the spool).
    pub fn from_lines(data: Vec<u8>, kind: ChunkKind) -> Self {
        let mut lines = 0;
        let mut at = 0;
        while at < data.len() {
            at = line_end(&data, at);
            lines += 1;
        }
        Chunk::new(data, lines, kind)
    }

    /// Splits at the line boundary nearest the middle; gives the chunk back when it holds a
    /// single line (or no line boundary is found).
    pub fn split(self) -> Result<(Chunk, Chunk), Chunk> {
        if self.lines < 2 {
            return Err(self);
        }
        let half = self.lines / 2;
        let mut cut = 0;
        for _ in 0..half {
            cut = line_end(&self.data, cut);
        }
        if cut == 0 || cut >= self.data.len() {
            return Err(self);
        }
        let mut first = self.data;
        let second = first.split_off(cut);
        if let Some(h) = &self.hold {
            h.parts.fetch_add(1, Relaxed);
        }
        let a = Chunk {
            data: first,
            lines: half,
            kind: self.kind,
            attempts: self.attempts,
            probes: self.probes.clone(),
            seq: self.seq,
            hold: self.hold.clone(),
        };
        let b = Chunk {
            data: second,
            lines: self.lines - half,
            kind: self.kind,
            attempts: self.attempts,
            probes: self.probes,
            seq: self.seq,
            hold: self.hold,
        };
        Ok((a, b))
    }
}

/// Where the line starting at `start` ends (just past its `\n`), read as the servers read it
/// (Go `models.scanLine`): a raw newline inside a quoted string field value does not end the
/// line. Escaped bytes are skipped in pairs; in the field set a `"` opens or closes a string
/// only in value position (more unquoted `=` than `,` seen), so a `"` in a name is not one.
fn line_end(data: &[u8], start: usize) -> usize {
    let (mut fields, mut quoted) = (false, false);
    let (mut equals, mut commas) = (0u32, 0u32);
    let mut i = start;
    while i < data.len() {
        let c = data[i];
        if c == b'\\' && i + 1 < data.len() {
            i += 2;
            continue;
        }
        if c == b' ' {
            fields = true;
        }
        if fields {
            match c {
                b'=' if !quoted => equals += 1,
                b',' if !quoted => commas += 1,
                b'"' if equals > commas => quoted = !quoted,
                _ => {}
            }
        }
        if c == b'\n' && !quoted {
            return i + 1;
        }
        i += 1;
    }
    data.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_whole_lines() {
        let c = Chunk::from_lines(b"a v=1 1\nb v=2 2\nc v=3 3\n".to_vec(), ChunkKind::User);
        assert_eq!(c.lines, 3);
        let (a, b) = c.split().unwrap();
        assert_eq!(a.data, b"a v=1 1\n");
        assert_eq!((a.lines, b.lines), (1, 2));
        assert_eq!(b.data, b"b v=2 2\nc v=3 3\n");
        assert!(a.split().is_err());
    }

    #[test]
    fn newlines_inside_string_fields_do_not_end_lines() {
        let data = b"m,t=\"q\"\\ x s=\"a\nb \\\" c=\\\\\",\"f\"=1i 1\nm s=\"x\ny\nz\" 2\nm v=1 3\n";
        let c = Chunk::from_lines(data.to_vec(), ChunkKind::User);
        assert_eq!(c.lines, 3);
        let (a, b) = c.split().unwrap();
        assert_eq!(a.data, b"m,t=\"q\"\\ x s=\"a\nb \\\" c=\\\\\",\"f\"=1i 1\n");
        assert_eq!((a.lines, b.lines), (1, 2));
        let (b1, b2) = b.split().unwrap();
        assert_eq!(b1.data, b"m s=\"x\ny\nz\" 2\n");
        assert_eq!(b2.data, b"m v=1 3\n");
    }
}
