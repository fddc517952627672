//! A batch of encoded lines: what travels from producers to the writer, and what the writer
//! sends, retries, splits and spools.

/// Whose lines a chunk holds. Self-metrics are kept apart so user counters stay exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    User,
    SelfMetrics,
}

#[derive(Debug)]
pub struct Chunk {
    /// Complete lines, each ending in `\n`.
    pub data: Vec<u8>,
    pub lines: u64,
    pub kind: ChunkKind,
    /// How many times this chunk was sent and failed with a retryable error.
    pub attempts: u32,
}

impl Chunk {
    pub fn new(data: Vec<u8>, lines: u64, kind: ChunkKind) -> Self {
        Chunk {
            data,
            lines,
            kind,
            attempts: 0,
        }
    }

    /// Counts the lines of `data` (for chunks read back from the spool).
    pub fn from_lines(data: Vec<u8>, kind: ChunkKind) -> Self {
        let lines = data.iter().filter(|&&b| b == b'\n').count() as u64;
        Chunk::new(data, lines, kind)
    }

    /// Splits at the line boundary nearest the middle; `None` for a single line.
    pub fn split(self) -> Option<(Chunk, Chunk)> {
        if self.lines < 2 {
            return None;
        }
        let half = self.lines / 2;
        let mut seen = 0;
        let cut = self.data.iter().position(|&b| {
            if b == b'\n' {
                seen += 1;
            }
            seen == half
        })? + 1;
        let mut first = self.data;
        let second = first.split_off(cut);
        let a = Chunk {
            data: first,
            lines: half,
            kind: self.kind,
            attempts: self.attempts,
        };
        let b = Chunk {
            data: second,
            lines: self.lines - half,
            kind: self.kind,
            attempts: self.attempts,
        };
        Some((a, b))
    }
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
        assert!(a.split().is_none());
    }
}
