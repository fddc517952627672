//! The disk spool: what InfluxDB cannot take yet, one file per chunk, replayed in order, up to a
//! byte cap. A file is written under a temporary name and renamed, so a crash never leaves a
//! half chunk to replay. Names carry order, kind and line count: `SEQ.KIND.LINES.lp`.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::pipeline::{Chunk, ChunkKind};

struct Entry {
    seq: u64,
    bytes: u64,
    lines: u64,
    kind: ChunkKind,
}

pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
    next_seq: u64,
    files: VecDeque<Entry>,
}

impl Spool {
    /// Opens (creating) the directory and takes over the chunks an earlier run left there.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let mut files = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            if let Some(parsed) = parse_name(&name) {
                let bytes = entry.metadata()?.len();
                files.push(Entry { bytes, ..parsed });
            }
        }
        files.sort_by_key(|e| e.seq);
        let bytes = files.iter().map(|e| e.bytes).sum();
        let next_seq = files.last().map(|e| e.seq + 1).unwrap_or(0);
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            bytes,
            next_seq,
            files: files.into(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// User lines held on disk.
    pub fn user_lines(&self) -> u64 {
        self.files
            .iter()
            .filter(|e| e.kind == ChunkKind::User)
            .map(|e| e.lines)
            .sum()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Room for another chunk: the spool takes chunks while it holds less than its cap, so
    /// it may end one chunk over it (as memory does; see `Backlog::push`).
    pub fn has_room(&self) -> bool {
        self.bytes < self.max_bytes
    }

    /// Stores a chunk at the tail; gives it back when the cap or the disk refuses it.
    pub fn push(&mut self, chunk: Chunk) -> Result<(), (Chunk, Option<io::Error>)> {
        let len = chunk.data.len() as u64;
        if !self.has_room() {
            return Err((chunk, None));
        }
        let seq = self.next_seq;
        let name = file_name(seq, chunk.kind, chunk.lines);
        let tmp = self.dir.join(format!("{name}.tmp"));
        let written =
            fs::write(&tmp, &chunk.data).and_then(|_| fs::rename(&tmp, self.dir.join(&name)));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err((chunk, Some(e)));
        }
        self.next_seq += 1;
        self.bytes += len;
        self.files.push_back(Entry {
            seq,
            bytes: len,
            lines: chunk.lines,
            kind: chunk.kind,
        });
        Ok(())
    }

    /// Takes the oldest chunk off the disk. A file that cannot be read is skipped and its
    /// lines returned as lost.
    pub fn pop(&mut self) -> Option<Result<Chunk, u64>> {
        let e = self.files.pop_front()?;
        self.bytes -= e.bytes;
        let path = self.dir.join(file_name(e.seq, e.kind, e.lines));
        let read = fs::read(&path);
        let _ = fs::remove_file(&path);
        Some(match read {
            Ok(data) => Ok(Chunk::new(data, e.lines, e.kind)),
            Err(_) => Err(e.lines),
        })
    }
}

fn file_name(seq: u64, kind: ChunkKind, lines: u64) -> String {
    let kind = match kind {
        ChunkKind::User => "user",
        ChunkKind::SelfMetrics => "self",
    };
    format!("{seq:016}.{kind}.{lines}.lp")
}

fn parse_name(name: &str) -> Option<Entry> {
    let mut parts = name.strip_suffix(".lp")?.split('.');
    let seq = parts.next()?.parse().ok()?;
    let kind = match parts.next()? {
        "user" => ChunkKind::User,
        "self" => ChunkKind::SelfMetrics,
        _ => return None,
    };
    let lines = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some(Entry {
        seq,
        bytes: 0,
        lines,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("perfsink-spool-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn fifo_cap_and_reopen() {
        let dir = tmpdir("fifo");
        let mut s = Spool::open(&dir, 16).unwrap();
        s.push(Chunk::from_lines(b"a v=1 1\n".to_vec(), ChunkKind::User))
            .unwrap();
        s.push(Chunk::from_lines(
            b"b v=1 1\n".to_vec(),
            ChunkKind::SelfMetrics,
        ))
        .unwrap();
        let (back, err) = s
            .push(Chunk::from_lines(b"c v=1 1\n".to_vec(), ChunkKind::User))
            .unwrap_err();
        assert!(err.is_none());
        assert_eq!(back.data, b"c v=1 1\n");
        assert_eq!(s.user_lines(), 1);
        drop(s);
        let mut s = Spool::open(&dir, 16).unwrap();
        assert_eq!(s.bytes(), 16);
        let first = s.pop().unwrap().unwrap();
        assert_eq!(
            (first.data.as_slice(), first.kind),
            (&b"a v=1 1\n"[..], ChunkKind::User)
        );
        assert_eq!(s.pop().unwrap().unwrap().kind, ChunkKind::SelfMetrics);
        assert!(s.pop().is_none());
        assert!(s.is_empty());
        let _ = fs::remove_dir_all(&dir);
    }
}
