//! The spool's record reader, `writer::spool::record::scan` (`src/writer/spool/record.rs`), and
//! `Spool::open` over what it reads (`src/writer/spool/mod.rs`).
//!
//! The first input byte picks a mode (`% 3`); the rest is:
//! - 0, raw: a segment of arbitrary bytes, scanned;
//! - 1, structured: records built from the input with `record::encode` (any kind, id, line
//!   count, payload), then damaged (bit flips, zeroed stretches, inserted garbage, a cut end),
//!   scanned;
//! - 2, the same segment as 1, written to a spool directory and opened with `Spool::open`,
//!   twice.
//!
//! Checked, besides "no panic, no hang, no sanitizer report":
//! - every mode: the `Found` items cover every byte exactly once, in order; every `Record`
//!   re-decodes to its header, its payload matches its checksum and re-encoding it gives its
//!   bytes back; a `Damaged` with a header holds an intact header whose payload is bad or cut
//!   short; a `Damaged` without one starts where no intact header does and holds none;
//! - 1 and 2: damage costs the damaged records only: every record no damage touched is found,
//!   at its new offset, with its kind, id, line count and payload; and what is reported
//!   damaged with a header is a record the damage touched. (Unless the damage forged an
//!   intact header somewhere else, garbage a reader cannot tell from a record: then only the
//!   checks of every mode apply.)
//! - 2: `Spool::open` counts exactly the damage the reader found (records, user lines of
//!   damaged records with an intact header, bytes of the others), hands back for replay every
//!   line record not acked in the segment, in order, readable with its payload; so damaged user
//!   lines + pending user lines == the user lines of intact unacked and damaged-with-header
//!   records. A second open finds the same records to replay and no damage (it was covered on
//!   the first), except for damaged stretches shorter than a header between two records, which
//!   no padding record fits in and are counted again (only inserted bytes make those).
#![no_main]

use std::fs;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use perfsink::config::SpoolFsync;
use perfsink::pipeline::ChunkKind;
use perfsink::writer::spool::record::{self, Found, Header, Kind, HEADER};
use perfsink::writer::spool::{Damage, Spool};

/// The generic properties of `scan` on `seg`; returns what it found.
fn check_scan(seg: &[u8]) -> Vec<Found> {
    let found = record::scan(seg);
    let mut at = 0;
    for f in &found {
        match f {
            Found::Record {
                at: start,
                header,
                payload,
            } => {
                assert_eq!(*start, at, "a gap or overlap before {f:?}");
                assert_eq!(payload.start, start + HEADER, "{f:?}");
                assert_eq!(payload.len(), header.len as usize, "{f:?}");
                assert_eq!(Header::decode(&seg[*start..]), Some(*header), "{f:?}");
                let body = &seg[payload.clone()];
                assert_eq!(record::crc(body), header.payload_crc, "{f:?}");
                assert_eq!(
                    record::encode(header.kind, header.id, header.lines, body),
                    &seg[*start..payload.end],
                    "{f:?} does not re-encode to its bytes"
                );
                at = payload.end;
            }
            Found::Damaged { range, header } => {
                assert_eq!(range.start, at, "a gap or overlap before {f:?}");
                assert!(range.end > range.start, "an empty {f:?}");
                let here = Header::decode(&seg[range.start..]);
                match header {
                    Some(h) => {
                        assert_eq!(here, Some(*h), "{f:?}");
                        let end = range.start + HEADER + h.len as usize;
                        if end > seg.len() {
                            assert_eq!(range.end, seg.len(), "a cut record {f:?}");
                        } else {
                            assert_eq!(range.end, end, "{f:?}");
                            let body = &seg[range.start + HEADER..end];
                            assert_ne!(record::crc(body), h.payload_crc, "an intact {f:?}");
                        }
                    }
                    None => {
                        assert_eq!(here, None, "{f:?} starts at an intact header");
                        for p in range.start + 1..range.end {
                            assert_eq!(
                                Header::decode(&seg[p..]),
                                None,
                                "{f:?} skips an intact header at {p}"
                            );
                        }
                        assert!(
                            range.end == seg.len() || Header::decode(&seg[range.end..]).is_some(),
                            "{f:?} stops short of the next intact header"
                        );
                    }
                }
                at = range.end;
            }
        }
    }
    assert_eq!(at, seg.len(), "the end is not covered");
    found
}

// ---- structured segments --------------------------------------------------------------------

struct Rec {
    kind: Kind,
    id: u64,
    lines: u64,
    payload: Vec<u8>,
    /// Where it was in the undamaged segment.
    range: Range<usize>,
}

/// A byte of the damaged segment: where it came from in the undamaged one (`None`: inserted).
#[derive(Clone, Copy)]
struct Byte {
    value: u8,
    origin: Option<usize>,
}

const KINDS: [Kind; 4] = [
    Kind::Lines(ChunkKind::User),
    Kind::Lines(ChunkKind::SelfMetrics),
    Kind::Ack,
    Kind::Padding,
];

/// `n` bytes from the input, then a pattern when it runs out.
fn bytes(u: &mut Unstructured, n: usize) -> Vec<u8> {
    let take = n.min(u.len());
    let mut v = u.bytes(take).map(<[u8]>::to_vec).unwrap_or_default();
    v.extend((v.len()..n).map(|i| b"cpu,host=a v=1 1\n"[i % 17]));
    v
}

/// Records built from the input. `realistic`: ids and line counts in the ranges a writer
/// produces (`Spool::open` trusts an intact header's numbers, see the module doc of mode 2).
fn records(u: &mut Unstructured, realistic: bool) -> Result<Vec<Rec>> {
    let n = u.int_in_range(0..=12u8)?;
    let mut out = Vec::new();
    let mut at = 0;
    for i in 0..n as u64 {
        let kind = KINDS[u.int_in_range(0..=3u8)? as usize];
        let (id, lines) = if realistic || u.ratio(3, 4)? {
            // Acks mostly settle an earlier record; ids and counts stay small.
            let id = match kind {
                Kind::Ack => u.int_in_range(1..=i.max(1))?,
                _ => i + 1 + u.int_in_range(0..=3u64)?,
            };
            (id, u.int_in_range(0..=5000u64)?)
        } else {
            (u.arbitrary()?, u.arbitrary()?)
        };
        let len = match kind {
            Kind::Ack if u.ratio(7, 8)? => 0,
            _ => u.int_in_range(0..=200u16)? as usize,
        };
        let payload = bytes(u, len);
        let size = HEADER + payload.len();
        out.push(Rec {
            kind,
            id,
            lines,
            payload,
            range: at..at + size,
        });
        at += size;
    }
    Ok(out)
}

/// Damage `seg` as the input says; returns the damaged bytes and which original bytes were
/// changed in place.
fn damage(u: &mut Unstructured, seg: &[u8]) -> Result<(Vec<Byte>, Vec<bool>)> {
    let mut bytes: Vec<Byte> = seg
        .iter()
        .enumerate()
        .map(|(i, &value)| Byte {
            value,
            origin: Some(i),
        })
        .collect();
    let mut changed = vec![false; seg.len()];
    let ops = u.int_in_range(0..=4u8)?;
    for _ in 0..ops {
        let len = bytes.len();
        match u.int_in_range(0..=3u8)? {
            // A bit flipped.
            0 if len > 0 => {
                let b = &mut bytes[u.int_in_range(0..=len - 1)?];
                b.value ^= 1 << u.int_in_range(0..=7u8)?;
                if let Some(o) = b.origin {
                    changed[o] = true;
                }
            }
            // A stretch zeroed (or set to one byte), as a lost sector reads.
            1 if len > 0 => {
                let start = u.int_in_range(0..=len - 1)?;
                let end = (start + u.int_in_range(1..=600usize)?).min(len);
                let value = if u.ratio(3, 4)? { 0 } else { u.arbitrary()? };
                for b in &mut bytes[start..end] {
                    if b.value != value {
                        b.value = value;
                        if let Some(o) = b.origin {
                            changed[o] = true;
                        }
                    }
                }
            }
            // Garbage inserted.
            2 => {
                let at = u.int_in_range(0..=len)?;
                let n = u.int_in_range(1..=80usize)?;
                let garbage = bytes_or_zeros(u, n);
                bytes.splice(
                    at..at,
                    garbage.into_iter().map(|value| Byte {
                        value,
                        origin: None,
                    }),
                );
            }
            // The end cut.
            _ => {
                let keep = u.int_in_range(0..=len)?;
                bytes.truncate(keep);
            }
        }
    }
    Ok((bytes, changed))
}

fn bytes_or_zeros(u: &mut Unstructured, n: usize) -> Vec<u8> {
    let take = n.min(u.len());
    let mut v = u.bytes(take).map(<[u8]>::to_vec).unwrap_or_default();
    v.resize(n, 0);
    v
}

/// A structured segment: its records, the damaged bytes, where each undamaged record starts
/// now if no damage touched it, and whether the damage forged an intact header.
struct Damaged {
    recs: Vec<Rec>,
    seg: Vec<u8>,
    /// Per record: its offset in `seg` when it is untouched.
    intact: Vec<Option<usize>>,
    /// Per record: its offset in `seg` when its header is untouched.
    header_at: Vec<Option<usize>>,
    /// An intact header decodes somewhere no original header is.
    forged: bool,
}

fn structured(u: &mut Unstructured, realistic: bool) -> Result<Damaged> {
    let recs = records(u, realistic)?;
    let mut clean = Vec::new();
    for r in &recs {
        clean.extend(record::encode(r.kind, r.id, r.lines, &r.payload));
    }
    let (bytes, changed) = damage(u, &clean)?;
    let seg: Vec<u8> = bytes.iter().map(|b| b.value).collect();
    let mut now = vec![None; clean.len()];
    for (p, b) in bytes.iter().enumerate() {
        if let Some(o) = b.origin {
            now[o] = Some(p);
        }
    }
    // Where `range` of the original is now, if it is all there, in one piece and unchanged.
    let whole = |range: Range<usize>| -> Option<usize> {
        let start = now[range.start]?;
        range
            .clone()
            .all(|o| now[o] == Some(start + (o - range.start)) && !changed[o])
            .then_some(start)
    };
    let intact: Vec<Option<usize>> = recs.iter().map(|r| whole(r.range.clone())).collect();
    let header_at: Vec<Option<usize>> = recs
        .iter()
        .map(|r| whole(r.range.start..r.range.start + HEADER))
        .collect();
    let forged = (0..seg.len()).any(|p| {
        seg[p..].starts_with(&record::MAGIC)
            && Header::decode(&seg[p..]).is_some()
            && !header_at.contains(&Some(p))
    });
    Ok(Damaged {
        recs,
        seg,
        intact,
        header_at,
        forged,
    })
}

/// Damage costs the damaged records only.
fn check_damage_costs_only_damaged(d: &Damaged, found: &[Found]) {
    if d.forged {
        return;
    }
    for (i, r) in d.recs.iter().enumerate() {
        let Some(at) = d.intact[i] else { continue };
        let hit = found.iter().find_map(|f| match f {
            Found::Record {
                at: a,
                header,
                payload,
            } if *a == at => Some((header, payload)),
            _ => None,
        });
        let Some((h, payload)) = hit else {
            panic!("untouched record {i} (now at {at}) is not found: {found:?}")
        };
        assert_eq!(
            (h.kind, h.id, h.lines, &d.seg[payload.clone()]),
            (r.kind, r.id, r.lines, &r.payload[..]),
            "record {i} is found changed"
        );
    }
    for f in found {
        if let Found::Damaged {
            range,
            header: Some(_),
        } = f
        {
            let i = d.header_at.iter().position(|&a| a == Some(range.start));
            let i = i.unwrap_or_else(|| panic!("{f:?} is no record's header"));
            assert!(d.intact[i].is_none(), "untouched record {i} reported {f:?}");
        }
    }
}

// ---- Spool::open --------------------------------------------------------------------------

fn spool_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if fs::metadata("/dev/shm").is_ok_and(|m| m.is_dir()) {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        base.join(format!("perfsink-fuzz-spool-{}", std::process::id()))
    })
}

/// What `Spool::open` should hand back for replay: (offset, id, lines, kind, payload) of every
/// line record not acked, in order.
type Replay = Vec<(u64, u64, u64, ChunkKind, Vec<u8>)>;

fn check_open(seg: &[u8], found: &[Found]) {
    let mut want_damage = Damage::default();
    let mut short = Damage::default();
    let mut acked = std::collections::HashSet::new();
    for f in found {
        match f {
            Found::Record { header, .. } if header.kind == Kind::Ack => {
                acked.insert(header.id);
            }
            Found::Record { .. } => {}
            Found::Damaged { range, header } => {
                want_damage.records += 1;
                match header {
                    Some(h) if h.kind == Kind::Lines(ChunkKind::User) => {
                        want_damage.user_lines += h.lines
                    }
                    Some(_) => {}
                    None => {
                        want_damage.unknown_bytes += range.len() as u64;
                        if range.len() < HEADER && range.end < seg.len() {
                            short.records += 1;
                            short.unknown_bytes += range.len() as u64;
                        }
                    }
                }
            }
        }
    }
    let want: Replay = found
        .iter()
        .filter_map(|f| match f {
            Found::Record {
                at,
                header,
                payload,
            } => match header.kind {
                Kind::Lines(kind) if !acked.contains(&header.id) => Some((
                    *at as u64,
                    header.id,
                    header.lines,
                    kind,
                    seg[payload.clone()].to_vec(),
                )),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let user = |r: &Replay| -> u64 {
        r.iter()
            .filter(|p| p.3 == ChunkKind::User)
            .map(|p| p.2)
            .sum()
    };

    let dir = spool_dir();
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("the spool directory");
    fs::write(dir.join(format!("{:016}.wal", 0)), seg).expect("the segment");
    for round in 0..2 {
        let mut opened = Spool::open(dir, 1 << 30, SpoolFsync::Never)
            .unwrap_or_else(|e| panic!("open {round}: {e}"));
        let expected_damage = match round {
            0 => want_damage.clone(),
            // Covered on the first open, but for the short stretches (kept only if the
            // segment was: it has records to replay).
            _ if want.is_empty() => Damage::default(),
            _ => short.clone(),
        };
        assert_eq!(opened.damage, expected_damage, "open {round}'s damage");
        let got: Replay = opened
            .pending
            .iter()
            .map(|p| {
                let payload = opened
                    .spool
                    .read(p.loc)
                    .unwrap_or_else(|e| panic!("open {round}: read {p:?}: {e}"));
                (p.loc.at, p.loc.id, p.lines, p.kind, payload)
            })
            .collect();
        assert_eq!(got, want, "open {round}'s records to replay");
        assert!(opened.pending.iter().all(|p| p.loc.seg == 0));
        assert_eq!(opened.spool.user_lines(), user(&want), "open {round}");
        if round == 0 {
            assert_eq!(
                opened.damage.user_lines + user(&got),
                user(&want) + want_damage.user_lines
            );
        }
        opened.spool.close().expect("close");
    }
    let _ = fs::remove_dir_all(dir);
}

/// `Spool::open` trusts an intact header's id and line count (a writer numbers its records from
/// 1 and counts a batch's lines, far below these); a segment that holds an intact header with
/// bigger ones (the fuzzer forging one in garbage) is not opened.
fn plausible(seg: &[u8]) -> bool {
    (0..seg.len()).all(|p| match Header::decode(&seg[p..]) {
        Some(h) => h.id < 1 << 48 && h.lines < 1 << 40,
        None => true,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            check_scan(rest);
        }
        m => {
            let mut u = Unstructured::new(rest);
            let Ok(d) = structured(&mut u, m == 2) else {
                return;
            };
            let found = check_scan(&d.seg);
            check_damage_costs_only_damaged(&d, &found);
            if m == 2 && plausible(&d.seg) {
                check_open(&d.seg, &found);
            }
        }
    }
});
