//! The spool's record format, and the reader that finds every intact record in a segment and
//! nothing else. Pure functions over bytes (no files), so they are fuzzed directly
//! (`fuzz/fuzz_targets/spool_records.rs`).
//!
//! A record is a 36-byte header and a payload, little-endian:
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | magic `PSR1` |
//! | 4 | 1 | kind: 1 user lines, 2 self-metrics lines, 3 ack, 4 padding |
//! | 5 | 3 | zero |
//! | 8 | 8 | id (an ack: the id of the record it settles) |
//! | 16 | 8 | lines in the payload |
//! | 24 | 4 | payload length |
//! | 28 | 4 | CRC-32 of the payload |
//! | 32 | 4 | CRC-32 of bytes 0..32 |
//!
//! The header has its own checksum so a damaged payload is skipped by its (trusted) length and
//! counted by its (trusted) line count: damage costs the damaged record only. A damaged header
//! is skipped up to the next intact header. Padding records cover damage already counted, so
//! a later reader does not count it again.

use std::ops::Range;

use crate::pipeline::ChunkKind;

pub const MAGIC: [u8; 4] = *b"PSR1";
pub const HEADER: usize = 36;
/// The largest payload a reader believes: bigger lengths are damage (a chunk is at most
/// `PERFSINK_BATCH_BYTES`, far below this).
pub const MAX_PAYLOAD: u32 = 1 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Lines(ChunkKind),
    /// Settles the record with the same id: it was delivered (or counted) and is not replayed.
    Ack,
    /// Covers bytes found damaged and counted once; readers skip it silently.
    Padding,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Kind::Lines(ChunkKind::User) => 1,
            Kind::Lines(ChunkKind::SelfMetrics) => 2,
            Kind::Ack => 3,
            Kind::Padding => 4,
        }
    }

    fn from_code(c: u8) -> Option<Kind> {
        Some(match c {
            1 => Kind::Lines(ChunkKind::User),
            2 => Kind::Lines(ChunkKind::SelfMetrics),
            3 => Kind::Ack,
            4 => Kind::Padding,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub id: u64,
    pub lines: u64,
    pub len: u32,
    pub payload_crc: u32,
}

pub fn crc(data: &[u8]) -> u32 {
    zlib_rs::crc32::crc32(0, data)
}

impl Header {
    pub fn new(kind: Kind, id: u64, lines: u64, payload: &[u8]) -> Header {
        Header {
            kind,
            id,
            lines,
            // Callers pass chunks, bounded by the batch size (`MAX_PAYLOAD` is far above it).
            len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
            payload_crc: crc(payload),
        }
    }

    pub fn encode(&self) -> [u8; HEADER] {
        let mut h = [0u8; HEADER];
        h[0..4].copy_from_slice(&MAGIC);
        h[4] = self.kind.code();
        h[8..16].copy_from_slice(&self.id.to_le_bytes());
        h[16..24].copy_from_slice(&self.lines.to_le_bytes());
        h[24..28].copy_from_slice(&self.len.to_le_bytes());
        h[28..32].copy_from_slice(&self.payload_crc.to_le_bytes());
        let own = crc(&h[0..32]);
        h[32..36].copy_from_slice(&own.to_le_bytes());
        h
    }

    /// An intact header at the start of `b`, or `None`.
    pub fn decode(b: &[u8]) -> Option<Header> {
        let h = b.get(..HEADER)?;
        if h[0..4] != MAGIC || h[5..8] != [0, 0, 0] || crc(&h[0..32]) != le32(&h[32..36]) {
            return None;
        }
        let header = Header {
            kind: Kind::from_code(h[4])?,
            id: le64(&h[8..16]),
            lines: le64(&h[16..24]),
            len: le32(&h[24..28]),
            payload_crc: le32(&h[28..32]),
        };
        (header.len <= MAX_PAYLOAD).then_some(header)
    }
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// A header and its payload, ready to append in one write.
pub fn encode(kind: Kind, id: u64, lines: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&Header::new(kind, id, lines, payload).encode());
    out.extend_from_slice(payload);
    out
}

/// What the reader found at one place of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// An intact record; `payload` is its range in the segment.
    Record {
        at: usize,
        header: Header,
        payload: Range<usize>,
    },
    /// Damaged bytes `range`. `header` is set when the header was intact and only the payload
    /// is bad (or cut short): then its kind and line count are known.
    Damaged {
        range: Range<usize>,
        header: Option<Header>,
    },
}

/// Reads a segment front to back. Every byte ends up in exactly one `Found`, in order; a cut
/// end (a record the writer was appending when the process or machine died) is one
/// `Damaged` reaching the end.
pub fn scan(seg: &[u8]) -> Vec<Found> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < seg.len() {
        let Some(header) = Header::decode(&seg[at..]) else {
            let next = next_header(seg, at + 1);
            out.push(Found::Damaged {
                range: at..next,
                header: None,
            });
            at = next;
            continue;
        };
        let start = at + HEADER;
        let end = start.saturating_add(header.len as usize);
        if end > seg.len() {
            out.push(Found::Damaged {
                range: at..seg.len(),
                header: Some(header),
            });
            break;
        }
        if crc(&seg[start..end]) == header.payload_crc {
            out.push(Found::Record {
                at,
                header,
                payload: start..end,
            });
        } else {
            out.push(Found::Damaged {
                range: at..end,
                header: Some(header),
            });
        }
        at = end;
    }
    out
}

/// The first offset at or after `from` where an intact header starts, or the end.
fn next_header(seg: &[u8], from: usize) -> usize {
    let mut at = from;
    while at + HEADER <= seg.len() {
        match seg[at..].windows(4).position(|w| w == MAGIC) {
            None => break,
            Some(i) => {
                at += i;
                if Header::decode(&seg[at..]).is_some() {
                    return at;
                }
                at += 1;
            }
        }
    }
    seg.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: u64, payload: &[u8]) -> Vec<u8> {
        encode(Kind::Lines(ChunkKind::User), id, 1, payload)
    }

    fn records(found: &[Found]) -> Vec<u64> {
        found
            .iter()
            .filter_map(|f| match f {
                Found::Record { header, .. } => Some(header.id),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn round_trip() {
        let mut seg = user(1, b"a v=1 1\n");
        seg.extend(encode(Kind::Ack, 1, 0, b""));
        seg.extend(encode(Kind::Lines(ChunkKind::SelfMetrics), 2, 2, b"x\ny\n"));
        let found = scan(&seg);
        assert_eq!(records(&found), [1, 1, 2]);
        let Found::Record {
            header, payload, ..
        } = &found[2]
        else {
            panic!("{found:?}")
        };
        assert_eq!(header.kind, Kind::Lines(ChunkKind::SelfMetrics));
        assert_eq!((header.lines, &seg[payload.clone()]), (2, &b"x\ny\n"[..]));
    }

    #[test]
    fn a_bad_payload_costs_that_record_only() {
        let mut seg = user(1, b"a v=1 1\n");
        let second = seg.len();
        seg.extend(user(2, b"b v=2 2\n"));
        seg.extend(user(3, b"c v=3 3\n"));
        seg[second + HEADER + 2] ^= 0x20;
        let found = scan(&seg);
        assert_eq!(records(&found), [1, 3]);
        assert!(matches!(
            &found[1],
            Found::Damaged { header: Some(h), range } if h.id == 2 && range.start == second
        ));
    }

    #[test]
    fn a_bad_header_is_skipped_to_the_next_intact_one() {
        let mut seg = user(1, b"a v=1 1\n");
        let second = seg.len();
        seg.extend(user(2, b"b v=2 2\n"));
        let third = seg.len();
        seg.extend(user(3, b"c v=3 3\n"));
        seg[second + 17] ^= 1; // the line count, under the header's checksum
        let found = scan(&seg);
        assert_eq!(records(&found), [1, 3]);
        assert_eq!(
            found[1],
            Found::Damaged {
                range: second..third,
                header: None
            }
        );
    }

    #[test]
    fn a_cut_end_is_one_damaged_tail() {
        let mut seg = user(1, b"a v=1 1\n");
        let whole = user(2, b"b v=2 2\n");
        for cut in 1..whole.len() {
            let mut s = seg.clone();
            s.extend_from_slice(&whole[..cut]);
            let found = scan(&s);
            assert_eq!(records(&found), [1], "cut at {cut}");
            assert_eq!(found.len(), 2, "cut at {cut}: {found:?}");
            let Found::Damaged { range, header } = &found[1] else {
                panic!("{found:?}")
            };
            assert_eq!(range.clone(), seg.len()..s.len());
            assert_eq!(header.is_some(), cut >= HEADER, "cut at {cut}");
        }
        seg.clear();
        assert!(scan(&seg).is_empty());
    }
}
