//! The write-ahead spool: every batch the writer takes is appended here before it is sent, and
//! settled (acked) only once InfluxDB answered for it, so a process that dies at any moment
//! leaves on disk everything it had taken and not delivered; the next process on the directory
//! replays it, oldest first.
//!
//! Layout: segment files `SEQ.wal` of records (`record.rs`: checksummed header + payload), one
//! active segment taking appends, older ones taking only acks. A segment whose every record is
//! settled is deleted (the active one is emptied). A `lock` file, held with an exclusive lock
//! while the spool is open, keeps a second process off the directory; the kernel releases it
//! when the process dies, however it dies.
//!
//! Durability: an append is in the kernel before the batch counts as kept (the relay's 204,
//! `Sink::sync`), which is all a crash of the process needs; `PERFSINK_SPOOL_FSYNC` decides when
//! it is forced to the disk, which is what a crash of the machine needs. A lost ack (the
//! machine died before it reached the disk) replays a delivered batch: InfluxDB overwrites a
//! point with the same series and timestamp, so a replay stores nothing twice.

pub mod record;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::config::SpoolFsync;
use crate::pipeline::{Chunk, ChunkKind, Loc};
use record::{Found, Header, Kind, HEADER};

/// A record an earlier process left unsettled, to replay.
#[derive(Debug, Clone, Copy)]
pub struct Pending {
    pub loc: Loc,
    pub lines: u64,
    pub kind: ChunkKind,
}

/// What opening found besides the records to replay.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Damaged records (bad checksum, cut short) and damaged stretches of unknown records.
    pub records: u64,
    /// User lines of the damaged records whose header was intact: lost, counted.
    pub user_lines: u64,
    /// Bytes of damaged stretches whose header was damaged too (their line count is unknown).
    pub unknown_bytes: u64,
}

pub struct Opened {
    pub spool: Spool,
    pub pending: Vec<Pending>,
    pub damage: Damage,
}

/// Why an append was refused.
#[derive(Debug)]
pub enum Refused {
    /// The spool holds `PERFSINK_SPOOL_MAX_BYTES`.
    Cap(u64),
    /// The disk refused the write (ENOSPC, EIO, ...).
    Io(io::Error),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Cap(cap) => write!(
                f,
                "the spool holds its cap (PERFSINK_SPOOL_MAX_BYTES={cap})"
            ),
            Refused::Io(e) if e.raw_os_error() == Some(28) => {
                write!(f, "the spool's disk is full (ENOSPC: {e})")
            }
            Refused::Io(e) => write!(f, "the spool's disk refused a write ({e})"),
        }
    }
}

struct Segment {
    file: File,
    len: u64,
    /// Records not settled yet.
    live: u64,
    live_user_lines: u64,
}

pub struct Spool {
    dir: PathBuf,
    /// Held (exclusively locked) while the spool is open.
    _lock: File,
    max_bytes: u64,
    segment_max: u64,
    fsync: SpoolFsync,
    segments: BTreeMap<u64, Segment>,
    active: u64,
    next_id: u64,
    /// Bytes of all segment files.
    bytes: u64,
    /// Appends or acks since the last fsync.
    unsynced: bool,
    synced_at: Instant,
    /// Under `interval`: a background fsync is running (see `commit`).
    syncing: Arc<AtomicBool>,
}

const LOCK: &str = "lock";

fn segment_name(seq: u64) -> String {
    format!("{seq:016}.wal")
}

fn open_segment(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(create)
        .open(path)
}

impl Spool {
    /// Opens (creating) the directory, takes its lock, reads what an earlier process left and
    /// starts a fresh active segment. Damage is counted, then covered (a cut end truncated, a
    /// damaged stretch padded over) so it is counted once.
    pub fn open(dir: &Path, max_bytes: u64, fsync: SpoolFsync) -> io::Result<Opened> {
        fs::create_dir_all(dir)?;
        let lock = take_lock(dir)?;
        let mut segments = BTreeMap::new();
        let mut legacy = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                let _ = fs::remove_file(entry.path());
            } else if let Some(seq) = name.strip_suffix(".wal").and_then(|s| s.parse().ok()) {
                segments.insert(seq, entry.path());
            } else if let Some(old) = legacy_name(&name) {
                legacy.push((old, entry.path()));
            }
        }
        let mut spool = Spool {
            dir: dir.to_path_buf(),
            _lock: lock,
            max_bytes,
            segment_max: (max_bytes / 8).clamp(1 << 20, 64 << 20),
            fsync,
            segments: BTreeMap::new(),
            active: 0,
            next_id: 1,
            bytes: 0,
            unsynced: false,
            synced_at: Instant::now(),
            syncing: Arc::new(AtomicBool::new(false)),
        };
        let mut damage = Damage::default();
        let mut found: Vec<Pending> = Vec::new();
        let mut acked = HashSet::new();
        for (&seq, path) in &segments {
            spool.read_segment(seq, path, &mut found, &mut acked, &mut damage)?;
        }
        let mut pending = Vec::new();
        for p in found {
            if acked.contains(&p.loc.id) {
                continue;
            }
            let seg = spool.segments.get_mut(&p.loc.seg).expect("read above");
            seg.live += 1;
            if p.kind == ChunkKind::User {
                seg.live_user_lines += p.lines;
            }
            pending.push(p);
        }
        let settled: Vec<u64> = spool
            .segments
            .iter()
            .filter(|(_, s)| s.live == 0)
            .map(|(&k, _)| k)
            .collect();
        for seq in settled {
            spool.remove_segment(seq);
        }
        spool.active = segments.keys().last().map_or(0, |s| s + 1);
        spool.create_active()?;
        // Spool files of perfsink before the write-ahead log: one chunk per file.
        legacy.sort_by_key(|((seq, _), _)| *seq);
        for ((_, kind), path) in legacy {
            let chunk = Chunk::from_lines(fs::read(&path)?, kind);
            let loc = spool
                .append(kind, chunk.lines, &chunk.data)
                .map_err(|e| io::Error::other(format!("importing {}: {e}", path.display())))?;
            spool.sync_now()?;
            fs::remove_file(&path)?;
            pending.push(Pending {
                loc,
                lines: chunk.lines,
                kind,
            });
        }
        Ok(Opened {
            spool,
            pending,
            damage,
        })
    }

    fn read_segment(
        &mut self,
        seq: u64,
        path: &Path,
        found: &mut Vec<Pending>,
        acked: &mut HashSet<u64>,
        damage: &mut Damage,
    ) -> io::Result<()> {
        let file = open_segment(path, false)?;
        let mut bytes = Vec::new();
        (&file).read_to_end(&mut bytes)?;
        let mut len = bytes.len() as u64;
        for f in record::scan(&bytes) {
            match f {
                Found::Record { at, header, .. } => {
                    self.next_id = self.next_id.max(header.id + 1);
                    match header.kind {
                        Kind::Lines(kind) => found.push(Pending {
                            loc: Loc {
                                seg: seq,
                                at: at as u64,
                                len: header.len,
                                id: header.id,
                            },
                            lines: header.lines,
                            kind,
                        }),
                        Kind::Ack => {
                            acked.insert(header.id);
                        }
                        Kind::Padding => {}
                    }
                }
                Found::Damaged { range, header } => {
                    damage.records += 1;
                    match header {
                        Some(h) if h.kind == Kind::Lines(ChunkKind::User) => {
                            damage.user_lines += h.lines
                        }
                        Some(_) => {}
                        None => damage.unknown_bytes += range.len() as u64,
                    }
                    if range.end == bytes.len() {
                        // A cut end: the record the writer was appending when it died.
                        file.set_len(range.start as u64)?;
                        len = range.start as u64;
                    } else if range.len() >= HEADER {
                        let payload = &bytes[range.start + HEADER..range.end];
                        let pad = Header::new(Kind::Padding, 0, 0, payload).encode();
                        // Not through `file`: with O_APPEND, Linux's pwrite appends.
                        let place = OpenOptions::new().write(true).open(path)?;
                        place.write_all_at(&pad, range.start as u64)?;
                        place.sync_data()?;
                    }
                }
            }
        }
        self.bytes += len;
        self.segments.insert(
            seq,
            Segment {
                file,
                len,
                live: 0,
                live_user_lines: 0,
            },
        );
        Ok(())
    }

    fn create_active(&mut self) -> io::Result<()> {
        let file = open_segment(&self.dir.join(segment_name(self.active)), true)?;
        if self.fsync != SpoolFsync::Never {
            File::open(&self.dir)?.sync_all()?;
        }
        self.segments.insert(
            self.active,
            Segment {
                file,
                len: 0,
                live: 0,
                live_user_lines: 0,
            },
        );
        Ok(())
    }

    /// Appends a batch; returns where it is. The append is in the kernel when this returns;
    /// `commit` forces it to the disk as the fsync policy says.
    pub fn append(&mut self, kind: ChunkKind, lines: u64, data: &[u8]) -> Result<Loc, Refused> {
        if self.bytes >= self.max_bytes {
            return Err(Refused::Cap(self.max_bytes));
        }
        if self.segments[&self.active].len >= self.segment_max {
            self.roll().map_err(Refused::Io)?;
        }
        let id = self.next_id;
        // Header and payload in two writes: a batch is megabytes, not copied into a record.
        let header = Header::new(Kind::Lines(kind), id, lines, data).encode();
        let seg = self.segments.get_mut(&self.active).expect("active segment");
        let at = seg.len;
        let written = seg
            .file
            .write_all(&header)
            .and_then(|()| seg.file.write_all(data));
        if let Err(e) = written {
            // Take back a partial write, so the segment ends in whole records.
            let _ = seg.file.set_len(at);
            return Err(Refused::Io(e));
        }
        let len = (HEADER + data.len()) as u64;
        self.next_id += 1;
        seg.len += len;
        seg.live += 1;
        if kind == ChunkKind::User {
            seg.live_user_lines += lines;
        }
        self.bytes += len;
        self.unsynced = true;
        Ok(Loc {
            seg: self.active,
            at,
            len: data.len() as u32,
            id,
        })
    }

    /// Starts a new active segment; the old one keeps its records until they are settled.
    fn roll(&mut self) -> io::Result<()> {
        if self.fsync == SpoolFsync::Always {
            self.sync_now()?;
        }
        let old = self.active;
        self.active += 1;
        self.create_active()?;
        if self.segments[&old].live == 0 {
            self.remove_segment(old);
        }
        Ok(())
    }

    /// Forces appends to the disk as the policy says: `always` now, `interval` when the
    /// interval has passed since the last fsync, `never` not at all.
    ///
    /// Under `interval` the fsync runs on a thread of its own: it takes a second or more when
    /// the writer appends hundreds of MB a second, and the writer must not stop sending
    /// meanwhile (measured: 0.48 of the no-spool rate with the fsync on the writer's thread).
    /// Nothing waits for it, so a failure is logged there.
    pub fn commit(&mut self) -> io::Result<()> {
        match self.fsync {
            SpoolFsync::Always if self.unsynced => self.sync_now(),
            SpoolFsync::Interval(every)
                if self.unsynced
                    && self.synced_at.elapsed() >= every
                    && !self.syncing.swap(true, Ordering::AcqRel) =>
            {
                let files: Vec<File> = self
                    .segments
                    .values()
                    .filter_map(|s| s.file.try_clone().ok())
                    .collect();
                let syncing = self.syncing.clone();
                let spawned = std::thread::Builder::new()
                    .name("perfsink-fsync".into())
                    .spawn(move || {
                        for f in files {
                            if let Err(e) = f.sync_data() {
                                crate::log::warn(format_args!("fsync of the spool failed: {e}"));
                            }
                        }
                        syncing.store(false, Ordering::Release);
                    });
                if let Err(e) = spawned {
                    self.syncing.store(false, Ordering::Release);
                    return Err(e);
                }
                self.unsynced = false;
                self.synced_at = Instant::now();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn sync_now(&mut self) -> io::Result<()> {
        for seg in self.segments.values() {
            seg.file.sync_data()?;
        }
        self.unsynced = false;
        self.synced_at = Instant::now();
        Ok(())
    }

    /// The record at `loc` is settled (delivered, or counted as refused or lost): it is never
    /// replayed. A segment with nothing left is deleted (the active one emptied). A failed ack
    /// costs a replay of a delivered batch, which stores nothing twice; it is returned to log.
    pub fn ack(&mut self, loc: Loc, lines: u64, kind: ChunkKind) -> io::Result<()> {
        let Some(seg) = self.segments.get_mut(&loc.seg) else {
            return Ok(());
        };
        seg.live = seg.live.saturating_sub(1);
        if kind == ChunkKind::User {
            seg.live_user_lines = seg.live_user_lines.saturating_sub(lines);
        }
        if seg.live == 0 {
            if loc.seg != self.active {
                self.remove_segment(loc.seg);
                return Ok(());
            }
            let before = seg.len;
            seg.file.set_len(0)?;
            seg.len = 0;
            self.bytes -= before;
            self.unsynced = true;
            return Ok(());
        }
        let rec = record::encode(Kind::Ack, loc.id, 0, b"");
        seg.file.write_all(&rec)?;
        seg.len += rec.len() as u64;
        self.bytes += rec.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    fn remove_segment(&mut self, seq: u64) {
        if let Some(seg) = self.segments.remove(&seq) {
            self.bytes -= seg.len;
            let _ = fs::remove_file(self.dir.join(segment_name(seq)));
        }
    }

    /// Reads a record back (its checksum checked).
    pub fn read(&self, loc: Loc) -> io::Result<Vec<u8>> {
        let seg = self
            .segments
            .get(&loc.seg)
            .ok_or_else(|| io::Error::other(format!("segment {} is gone", loc.seg)))?;
        let mut buf = vec![0u8; HEADER + loc.len as usize];
        seg.file.read_exact_at(&mut buf, loc.at)?;
        match Header::decode(&buf) {
            Some(h) if h.id == loc.id && h.payload_crc == record::crc(&buf[HEADER..]) => {
                buf.drain(..HEADER);
                Ok(buf)
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "spool record {} in {} is damaged",
                    loc.id,
                    segment_name(loc.seg)
                ),
            )),
        }
    }

    pub fn has_room(&self) -> bool {
        self.bytes < self.max_bytes
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// User lines not settled yet.
    pub fn user_lines(&self) -> u64 {
        self.segments.values().map(|s| s.live_user_lines).sum()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// At close: what is left goes to the disk whatever the policy (unless `never`), and an
    /// empty active segment is removed.
    pub fn close(&mut self) -> io::Result<()> {
        if self.segments.get(&self.active).is_some_and(|s| s.live == 0) {
            self.remove_segment(self.active);
        }
        if self.fsync != SpoolFsync::Never && self.unsynced {
            self.sync_now()?;
        }
        Ok(())
    }
}

/// Takes the directory's lock, or says who holds it.
fn take_lock(dir: &Path) -> io::Result<File> {
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // flock(2): held by the open file, released by the kernel when the process ends.
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => {}
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!(
                    "in use by another perfsink process (pid {}); each process needs its own \
                     spool directory",
                    holder.trim()
                ),
            ));
        }
        Err(e) => return Err(e.into()),
    }
    file.set_len(0)?;
    write!(file, "{}", std::process::id())?;
    Ok(file)
}

/// `SEQ.KIND.LINES.lp`: the spool files of perfsink before the write-ahead log.
fn legacy_name(name: &str) -> Option<(u64, ChunkKind)> {
    let mut parts = name.strip_suffix(".lp")?.split('.');
    let seq = parts.next()?.parse().ok()?;
    let kind = match parts.next()? {
        "user" => ChunkKind::User,
        "self" => ChunkKind::SelfMetrics,
        _ => return None,
    };
    parts.next()?.parse::<u64>().ok()?;
    parts.next().is_none().then_some((seq, kind))
}

/// For tests and tools: the unsettled user lines a directory holds, read without the lock.
pub fn pending_user_lines(dir: &Path) -> io::Result<u64> {
    let mut lines: HashMap<u64, u64> = HashMap::new();
    let mut acked = HashSet::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wal") {
            let bytes = fs::read(&path)?;
            for f in record::scan(&bytes) {
                if let Found::Record { header, .. } = f {
                    match header.kind {
                        Kind::Lines(ChunkKind::User) => {
                            lines.insert(header.id, header.lines);
                        }
                        Kind::Ack => {
                            acked.insert(header.id);
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    Ok(lines
        .iter()
        .filter(|(id, _)| !acked.contains(id))
        .map(|(_, n)| n)
        .sum())
}

#[cfg(test)]
mod tests;
