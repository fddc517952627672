//! Escaping of identifiers (measurement, tag keys and values, field keys) and string field
//! values for the target server's [`Dialect`]. See the module docs of `lineproto` for the rules
//! and why.
//!
//! Every function scans first and copies the whole string with one `extend_from_slice` when
//! nothing needs escaping, which is what nearly all real names look like; only strings with a
//! special byte pay for the byte-by-byte path.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// The part of a line an identifier goes into: it picks the escape set and names the
/// identifier in error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    Measurement,
    TagKey,
    TagValue,
    FieldKey,
}

impl Element {
    /// How error messages call this element.
    pub fn name(self) -> &'static str {
        match self {
            Element::Measurement => "measurement",
            Element::TagKey => "tag key",
            Element::TagValue => "tag value",
            Element::FieldKey => "field key",
        }
    }

    /// Every server reads an unescaped `=` in a measurement as part of it; elsewhere it ends
    /// a key.
    fn escapes_eq(self) -> bool {
        !matches!(self, Element::Measurement)
    }
}

/// Which parser reads the lines: the servers unescape identifiers differently.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    /// InfluxDB 1.x and 2.x (one Go parser, `models/points.go`): only `\,` `\ ` `\=` (and in
    /// field keys and measurements `\"`) lose their backslash; every other backslash is kept,
    /// so a backslash is never doubled.
    #[default]
    Go,
    /// InfluxDB 3.x (the Rust parser, crate `influxdb-line-protocol`): `\\` also reads as one
    /// backslash, so every backslash is doubled.
    V3,
}

impl Dialect {
    /// How messages name the servers of this dialect.
    pub fn servers(self) -> &'static str {
        match self {
            Dialect::Go => "InfluxDB 1.x/2.x",
            Dialect::V3 => "InfluxDB 3.x",
        }
    }
}

/// Appends `s` escaped for `element` as `dialect` reads it back, byte for byte: `,` and space
/// get a backslash, and `=` too unless `element` is the measurement; on [`Dialect::V3`] a
/// backslash is doubled, on [`Dialect::Go`] it is written as it is (and a `"` in a field key
/// gets one). Everything else, control characters and non-ASCII included, is copied.
///
/// A string the server cannot read back as it is is refused with `Error::InvalidInput`, out
/// left as it was: a trailing backslash (it would escape the separator after it), a newline,
/// and per dialect the cases listed in the `lineproto` module docs. Emptiness and reserved
/// names are the caller's business.
#[inline]
pub fn escape_identifier(
    out: &mut Vec<u8>,
    s: &str,
    element: Element,
    dialect: Dialect,
) -> Result<()> {
    let bytes = s.as_bytes();
    let eq = element.escapes_eq();
    match find(bytes, |w| special_bytes(w, eq)) {
        None => {
            out.extend_from_slice(bytes);
            Ok(())
        }
        Some(first) => {
            let start = out.len();
            let result = match dialect {
                Dialect::Go => escape_go(out, bytes, first, element),
                Dialect::V3 => escape_v3(out, bytes, first, element),
            };
            result.map_err(|why| {
                out.truncate(start);
                Error::InvalidInput(format!(
                    "{} {} {why}, which {} cannot store",
                    element.name(),
                    show(s),
                    dialect.servers()
                ))
            })
        }
    }
}

/// Appends the content of a string field value (without the quotes) with `"` and `\`
/// escaped. Everything else, newlines included, goes out raw: every server reads a quoted
/// string up to the next unescaped `"` and unescapes exactly these two.
#[inline]
pub fn escape_string_field(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    let mut done = 0;
    while let Some(off) = find(&bytes[done..], string_special_bytes) {
        let at = done + off;
        out.reserve(bytes.len() - done + 1);
        out.extend_from_slice(&bytes[done..at]);
        out.push(b'\\');
        out.push(bytes[at]);
        done = at + 1;
    }
    out.extend_from_slice(&bytes[done..]);
}

/// Whether a series key escaped for [`Dialect::Go`] leaves the Go servers' line splitter
/// where it must be at the space after the key. That splitter (`scanLine`) skips every `\x`
/// pair, unlike the key scanner, which only looks one byte back: a tag value such as `a\ b`
/// (written `a\\ b`) makes it take the rest of the key for fields, counting its `=` and `,`
/// and toggling on `"`. When those counts do not balance, a `"` later opens or fails to open
/// a string and the line's own newline is taken as part of a string: the next line is lost
/// with it. Escaping cannot fix that (the key scanner needs exactly one backslash before
/// the separator), so such keys are refused.
pub fn go_key_splits_cleanly(key: &[u8]) -> bool {
    if !key.contains(&b'\\') {
        return true;
    }
    // A port of `scanLine` in models/points.go, 1.x and 2.x alike.
    let (mut fields, mut quoted, mut equals, mut commas) = (false, false, 0usize, 0usize);
    let mut i = 0;
    while i < key.len() {
        let c = key[i];
        if c == b'\\' {
            i += 2;
            continue;
        }
        if c == b' ' {
            fields = true;
        } else if fields {
            if !quoted && c == b'=' {
                equals += 1;
            } else if !quoted && c == b',' {
                commas += 1;
            } else if c == b'"' && equals > commas {
                quoted = !quoted;
            }
        }
        i += 1;
    }
    !fields || (!quoted && equals == commas)
}

/// A value as an error message shows it: quoted, escaped and cut when long, so a 64 KiB name
/// does not end up in a log line.
pub(crate) fn show(s: &str) -> String {
    const MAX_SHOWN: usize = 64;
    match s.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// Whether byte `c` of an identifier may need more than a plain copy in some dialect. Other
/// control characters below 0x21 are included only because one range test is cheaper; the
/// slow path copies them.
#[inline(always)]
pub(super) fn is_special(c: u8, eq: bool) -> bool {
    // Space is 0x20, so `< 0x21` covers it together with the C0 controls.
    (c < 0x21) | (c == b',') | (c == b'\\') | (c == b'"') | (eq & (c == b'='))
}

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `w` that is zero. A borrow can only mark bytes above a real
/// match, so the lowest marked byte is always a real one.
#[inline(always)]
fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(LOW) & !w & HIGH
}

/// High bit set in each byte of `w` equal to `c` (exact for the lowest one).
#[inline(always)]
pub(super) fn bytes_eq(w: u64, c: u8) -> u64 {
    zero_bytes(w ^ (LOW * c as u64))
}

/// [`is_special`] for eight bytes at once. `!w` drops bytes >= 0x80, which are all parts of
/// multi-byte UTF-8 characters, so scanning bytes never splits a character.
#[inline(always)]
fn special_bytes(w: u64, eq: bool) -> u64 {
    let below_0x21 = w.wrapping_sub(LOW * 0x21) & !w & HIGH;
    let m = below_0x21 | bytes_eq(w, b',') | bytes_eq(w, b'\\') | bytes_eq(w, b'"');
    if eq {
        m | bytes_eq(w, b'=')
    } else {
        m
    }
}

#[inline(always)]
fn string_special_bytes(w: u64) -> u64 {
    bytes_eq(w, b'"') | bytes_eq(w, b'\\')
}

/// Position of the first byte `mask` marks, testing eight bytes per step (SWAR). Several
/// times faster than a byte loop on typical names, without `unsafe` or a dependency.
#[inline(always)]
pub(super) fn find(bytes: &[u8], mask: impl Fn(u64) -> u64) -> Option<usize> {
    let word_at = |at: usize| {
        let mut word = [0; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(word)
    };
    let first = |at: usize, m: u64| at + (m.trailing_zeros() / 8) as usize;
    let len = bytes.len();
    if len < 8 {
        // Padding with a byte no mask marks lets short names take a single step too. Shifting
        // bytes in avoids the `memcpy` call a copy into a padded array compiles to.
        let word = bytes
            .iter()
            .rev()
            .fold(LOW * b'a' as u64, |w, &c| (w << 8) | c as u64);
        let m = mask(word);
        return (m != 0).then(|| first(0, m));
    }
    let mut at = 0;
    while at + 8 <= len {
        let m = mask(word_at(at));
        if m != 0 {
            return Some(first(at, m));
        }
        at += 8;
    }
    if at == len {
        return None;
    }
    // The last word overlaps bytes already found clean; they hold no match and so no borrow
    // can mark them, so the lowest mark is still the first match.
    let m = mask(word_at(len - 8));
    (m != 0).then(|| first(len - 8, m))
}

/// The Go servers' rules (`models/points.go`, identical in 1.x and 2.x), read from the code and
/// checked against influxd 1.6.7:
/// - The key scanner ends a measurement, tag key or tag value at a `,`, space (or `=`) unless
///   the byte before it is a backslash; tags are then unescaped by deleting the backslash
///   before each `,` ` ` `=`, so a literal run of backslashes before one of them is written
///   as it is plus the escaping one.
/// - Field keys are scanned by skipping `\x` pairs and unescaped like tags plus `\"`, so a run
///   before `,` ` ` `=` reads back only if it is even; before `"` any run does.
/// - Measurements are unescaped (`\,` `\ ` `\=` `\"`) once by a tsi1 index and twice by the
///   default inmem one: no backslash before those four reads back on both, so it is refused.
/// - Leading spaces, tabs and NULs of a line and of the field set are skipped: a measurement
///   or field key cannot start with a tab or NUL. A raw newline ends the line and an escaped
///   one keeps its backslash: no identifier can hold one.
fn escape_go(
    out: &mut Vec<u8>,
    bytes: &[u8],
    first: usize,
    element: Element,
) -> std::result::Result<(), &'static str> {
    let eq = element.escapes_eq();
    if matches!(element, Element::Measurement | Element::FieldKey)
        && matches!(bytes.first(), Some(b'\t' | 0))
    {
        return Err("starts with a tab or NUL, which the parser skips");
    }
    out.reserve(bytes.len() + 8);
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let c = bytes[i];
        if !is_special(c, eq) {
            let end = find(&bytes[i..], |w| special_bytes(w, eq)).map_or(bytes.len(), |p| i + p);
            out.extend_from_slice(&bytes[i..end]);
            i = end;
            continue;
        }
        match c {
            b'\\' => {
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b != b'\\')
                    .map_or(bytes.len(), |p| i + p);
                let run = end - i;
                match (bytes.get(end), element) {
                    (None, _) => return Err("ends with a backslash"),
                    (Some(b',' | b' ' | b'=' | b'"'), Element::Measurement) => {
                        return Err("has a backslash before ',', ' ', '=' or '\"'")
                    }
                    (Some(b',' | b' ' | b'='), Element::FieldKey) if run % 2 == 1 => {
                        return Err("has an odd run of backslashes before ',', ' ' or '='")
                    }
                    _ => {}
                }
                out.resize(out.len() + run, b'\\');
                i = end;
                continue;
            }
            b'\n' => return Err("contains a newline"),
            b',' | b' ' => out.extend_from_slice(&[b'\\', c]),
            b'=' if eq => out.extend_from_slice(&[b'\\', c]),
            b'"' if element == Element::FieldKey => out.extend_from_slice(&[b'\\', c]),
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(())
}

/// The 3.x rules (`core/influxdb_line_protocol/src/lib.rs`): `\\`, `\,`, `\ ` and (not in a
/// measurement) `\=` are escapes, any other backslash is kept; a name whose unescaped value
/// ends in a backslash is an error (`EndsWithBackslash`); tab and newline end every name,
/// NUL ends a measurement, and none of them can be escaped.
fn escape_v3(
    out: &mut Vec<u8>,
    bytes: &[u8],
    first: usize,
    element: Element,
) -> std::result::Result<(), &'static str> {
    let eq = element.escapes_eq();
    if bytes.last() == Some(&b'\\') {
        return Err("ends with a backslash");
    }
    out.reserve(bytes.len() + 8);
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        let c = bytes[i];
        if !is_special(c, eq) {
            let end = find(&bytes[i..], |w| special_bytes(w, eq)).map_or(bytes.len(), |p| i + p);
            out.extend_from_slice(&bytes[i..end]);
            i = end;
            continue;
        }
        match c {
            b'\\' | b',' | b' ' => out.extend_from_slice(&[b'\\', c]),
            b'=' if eq => out.extend_from_slice(&[b'\\', c]),
            b'\n' => return Err("contains a newline"),
            b'\t' => return Err("contains a tab"),
            0 if element == Element::Measurement => return Err("contains a NUL"),
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(())
}

/// The name an identifier written in a line stands for (`escaped` as the line holds it, e.g.
/// `ParsedLine::measurement` or a tag of `ParsedLine::tags`), as `dialect`'s servers read it:
/// the inverse of [`escape_identifier`]. [`Dialect::Go`] drops the backslash before `,`, space
/// and `=` (and `"` in a measurement or field key) and keeps every other one, as
/// `models/points.go` does; [`Dialect::V3`] also reads `\\` as one backslash. Borrowed when
/// the name has no backslash, which is what nearly all names look like.
pub fn unescape_identifier(escaped: &[u8], element: Element, dialect: Dialect) -> Cow<'_, [u8]> {
    if !escaped.contains(&b'\\') {
        return Cow::Borrowed(escaped);
    }
    let quote = matches!(element, Element::Measurement | Element::FieldKey);
    let unescapes = |c: u8| match c {
        b',' | b' ' | b'=' => true,
        b'"' => quote,
        b'\\' => dialect == Dialect::V3,
        _ => false,
    };
    let mut out = Vec::with_capacity(escaped.len());
    let mut i = 0;
    while i < escaped.len() {
        let c = escaped[i];
        match escaped.get(i + 1) {
            Some(&next) if c == b'\\' && unescapes(next) => {
                out.push(next);
                i += 2;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Element; 4] = [
        Element::Measurement,
        Element::TagKey,
        Element::TagValue,
        Element::FieldKey,
    ];
    const KEYS: [Element; 3] = [Element::TagKey, Element::TagValue, Element::FieldKey];
    const TAGS: [Element; 2] = [Element::TagKey, Element::TagValue];

    fn esc(s: &str, element: Element, dialect: Dialect) -> Result<String> {
        let mut out = b"prefix|".to_vec();
        let r = escape_identifier(&mut out, s, element, dialect);
        match r {
            Ok(()) => Ok(String::from_utf8(out[7..].to_vec()).unwrap()),
            Err(e) => {
                assert_eq!(out, b"prefix|", "error must leave out as it was");
                Err(e)
            }
        }
    }

    fn go(s: &str, element: Element) -> String {
        esc(s, element, Dialect::Go).unwrap_or_else(|e| panic!("{s:?} {element:?}: {e}"))
    }

    fn v3(s: &str, element: Element) -> String {
        esc(s, element, Dialect::V3).unwrap_or_else(|e| panic!("{s:?} {element:?}: {e}"))
    }

    fn refused(s: &str, element: Element, dialect: Dialect) -> String {
        match esc(s, element, dialect) {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("{s:?} {element:?} {dialect:?}: expected a refusal, got {other:?}"),
        }
    }

    fn string_field(s: &str) -> String {
        let mut out = Vec::new();
        escape_string_field(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    /// The word-at-a-time scan must find exactly what a byte loop finds, whatever surrounds
    /// the byte (borrows from neighbours are the classic SWAR pitfall).
    #[test]
    fn word_scan_matches_byte_scan() {
        let scalar = |b: &[u8], eq: bool| b.iter().position(|&c| is_special(c, eq));
        let scalar_str = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\');
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for len in 0..40 {
            for _ in 0..2000 {
                // Mostly harmless bytes, with a few near the class boundaries.
                let pool = [
                    b'a', 0x80, 0xff, 0x21, 0x22, 0x01, 0x00, 0x20, 0x7e, 0x7f, b'=', b'\\',
                ];
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        let r = next();
                        if r % 4 == 0 {
                            pool[(r >> 8) as usize % pool.len()]
                        } else {
                            (r >> 16) as u8
                        }
                    })
                    .collect();
                for eq in [false, true] {
                    assert_eq!(
                        find(&b, |w| special_bytes(w, eq)),
                        scalar(&b, eq),
                        "{b:?} eq={eq}"
                    );
                }
                assert_eq!(find(&b, string_special_bytes), scalar_str(&b), "{b:?}");
            }
        }
        for c in 0..=255u8 {
            for at in 0..17 {
                for fill in [b'a', 0x80, 0xff, 0x01, 0x21] {
                    let mut b = vec![fill; 17];
                    b[at] = c;
                    for eq in [false, true] {
                        assert_eq!(find(&b, |w| special_bytes(w, eq)), scalar(&b, eq));
                    }
                    assert_eq!(find(&b, string_special_bytes), scalar_str(&b));
                }
            }
        }
    }

    #[test]
    fn plain_names_are_copied() {
        for dialect in [Dialect::Go, Dialect::V3] {
            for el in ALL {
                for s in ["http_req_duration", "a-b.c_d:e/f", "", "#hash", "Zürich✓"] {
                    assert_eq!(esc(s, el, dialect).unwrap(), s);
                }
            }
        }
    }

    #[test]
    fn separators_get_a_backslash() {
        for dialect in [Dialect::Go, Dialect::V3] {
            let m = |s| esc(s, Element::Measurement, dialect).unwrap();
            assert_eq!(m("a b"), "a\\ b");
            assert_eq!(m("a,b"), "a\\,b");
            assert_eq!(m("a=b"), "a=b");
            for el in KEYS {
                let k = |s| esc(s, el, dialect).unwrap();
                assert_eq!(k("x=1,y=2 z"), "x\\=1\\,y\\=2\\ z");
                assert_eq!(k("  "), "\\ \\ ");
                assert_eq!(k("Zürich ✓"), "Zürich\\ ✓");
            }
        }
    }

    /// Measured on influxd 1.6.7 (tests/escape_roundtrip.rs checks the same through the
    /// engine): tag values and keys lose exactly the backslash before `,` ` ` `=`.
    #[test]
    fn go_writes_backslashes_as_they_are() {
        for el in TAGS {
            assert_eq!(go("a\\b", el), "a\\b");
            assert_eq!(go("a\\\\b", el), "a\\\\b");
            assert_eq!(go("a \\ b", el), "a\\ \\\\ b");
            assert_eq!(go("a\\,b", el), "a\\\\,b");
            assert_eq!(go("a\\\\=b", el), "a\\\\\\=b");
            assert_eq!(go("\\a", el), "\\a");
            assert_eq!(go("a\\\"b", el), "a\\\"b");
            assert_eq!(go("a\"b", el), "a\"b");
        }
        assert_eq!(go("C:\\temp\\x", Element::Measurement), "C:\\temp\\x");
        assert_eq!(go("a\"b", Element::Measurement), "a\"b");
    }

    #[test]
    fn go_field_keys_escape_quotes_and_need_even_runs() {
        let f = Element::FieldKey;
        assert_eq!(go("a\"b", f), "a\\\"b");
        assert_eq!(go("a\\\"b", f), "a\\\\\"b");
        assert_eq!(go("a\\\\ b", f), "a\\\\\\ b");
        assert_eq!(go("a\\\\,b", f), "a\\\\\\,b");
        assert_eq!(go("a\\b", f), "a\\b");
        for s in ["a\\ b", "a\\,b", "a\\=b", "a\\\\\\ b"] {
            let m = refused(s, f, Dialect::Go);
            assert!(m.contains("odd run of backslashes"), "{m}");
        }
    }

    #[test]
    fn go_measurements_refuse_a_backslash_before_an_escape() {
        for s in ["a\\ b", "a\\,b", "a\\=b", "a\\\"b", "a\\\\ b"] {
            let m = refused(s, Element::Measurement, Dialect::Go);
            assert!(m.contains("backslash before"), "{m}");
        }
    }

    #[test]
    fn v3_doubles_every_backslash() {
        for el in ALL {
            assert_eq!(v3("a\\b", el), "a\\\\b");
            assert_eq!(v3("\\\\a", el), "\\\\\\\\a");
            assert_eq!(v3("a\"b", el), "a\"b");
        }
        assert_eq!(v3("a\\ b", Element::TagValue), "a\\\\\\ b");
        assert_eq!(v3("a\\=b", Element::Measurement), "a\\\\=b");
        assert_eq!(v3("a\\=b", Element::FieldKey), "a\\\\\\=b");
    }

    #[test]
    fn trailing_backslashes_are_refused_by_both_dialects() {
        for dialect in [Dialect::Go, Dialect::V3] {
            for el in ALL {
                for s in ["a\\", "a\\\\", "\\", "a b\\"] {
                    let m = refused(s, el, dialect);
                    assert!(m.contains("ends with a backslash"), "{m}");
                }
            }
        }
        assert_eq!(
            refused("x\\", Element::TagValue, Dialect::Go),
            "tag value \"x\\\\\" ends with a backslash, which InfluxDB 1.x/2.x cannot store"
        );
    }

    #[test]
    fn control_characters() {
        for el in ALL {
            // Written raw on 1.x/2.x (influxd 1.6.7 stores them as they are)...
            assert_eq!(
                go("a\tb\r\u{c}\u{1}\u{7f}\u{0}c", el),
                "a\tb\r\u{c}\u{1}\u{7f}\u{0}c"
            );
            // ...except a newline, which ends the line even when escaped.
            assert!(refused("a\nb", el, Dialect::Go).contains("newline"));
            assert!(refused("a\nb", el, Dialect::V3).contains("newline"));
            assert!(refused("a\tb", el, Dialect::V3).contains("tab"));
            assert_eq!(v3("a\r\u{c}\u{1}\u{7f}b", el), "a\r\u{c}\u{1}\u{7f}b");
        }
        for el in [Element::Measurement, Element::FieldKey] {
            for s in ["\tab", "\u{0}ab"] {
                assert!(refused(s, el, Dialect::Go).contains("starts with a tab or NUL"));
            }
        }
        for el in TAGS {
            assert_eq!(go("\tab", el), "\tab");
        }
        assert!(refused("a\u{0}b", Element::Measurement, Dialect::V3).contains("NUL"));
        assert_eq!(v3("a\u{0}b", Element::TagValue), "a\u{0}b");
    }

    #[test]
    fn go_line_splitter_balance() {
        assert!(go_key_splits_cleanly(b"m,t=a\\ b,u=v"));
        // The k6 group ` \ `: the splitter starts fields early, but `,u=v` balances.
        assert!(go_key_splits_cleanly(b"m,t=a\\ \\\\ b,u=v"));
        assert!(go_key_splits_cleanly(b"m,t=a\\\\ b"));
        // An extra '=' or ',' after that, or a quote the splitter opens.
        assert!(!go_key_splits_cleanly(b"m,t=a\\\\ b,u=c\\\\=d"));
        assert!(!go_key_splits_cleanly(b"m,t=a\\\\ b,u=c\\\\,d"));
        assert!(!go_key_splits_cleanly(b"m,t=a\\\\ b\\\\=\",u=v"));
        assert!(go_key_splits_cleanly(b"m,t=a\\\\ \\=\",u=v"));
        assert!(go_key_splits_cleanly(b"m,t=a\\\\,b"));
    }

    /// 3.x has no server here, so its own parser (crate `influxdb-line-protocol`, the code 3.x
    /// runs) is the oracle. Random names over every special byte: each one the encoder takes
    /// reads back byte for byte, with the next line of the body intact; for each one it
    /// refuses, the plain escape (a backslash before every special byte) does not read back.
    #[test]
    fn v3_names_read_back_exactly_with_3x_own_parser() {
        use crate::lineproto::{write_field, write_series_key, FieldOptions};
        use crate::model::FieldValue;
        use influxdb_line_protocol::{parse_lines, FieldValue as Lp};
        let alphabet = [
            "a", "Z", "é", "✓", " ", ",", "=", "\\", "\"", "\t", "\n", "\r", "\u{0}", "\u{1}",
            "\u{7f}", "#",
        ];
        let mut rng = fastrand::Rng::with_seed(3);
        let mut name = || -> String {
            // Half plain letters, so that a fair share of names is storable.
            (0..rng.usize(1..7))
                .map(|_| match rng.bool() {
                    true => "b",
                    false => alphabet[rng.usize(..alphabet.len())],
                })
                .collect()
        };
        let opts = FieldOptions {
            dialect: Dialect::V3,
            ..FieldOptions::default()
        };
        // `(measurement, tag key, tag value, field key)` as the 3.x parser reads `line`.
        let read = |line: &str| {
            let body = format!("{line} 1\nnext v=1i 2\n");
            let parsed: Vec<_> = parse_lines(&body).collect();
            let p = match (parsed.len(), parsed.first()) {
                (2, Some(Ok(p))) if parsed[1].is_ok() => p,
                _ => return None,
            };
            let tags = p.series.tag_set.as_ref()?;
            let (fk, fv) = p.field_set.first()?;
            let Lp::String(sv) = fv else { return None };
            let names = [
                p.series.measurement.to_string(),
                tags[0].0.to_string(),
                tags[0].1.to_string(),
                fk.to_string(),
                sv.to_string(),
            ];
            (tags.len() == 1 && p.field_set.len() == 1).then_some(names)
        };
        let (mut taken, mut refused) = (0, 0);
        for _ in 0..10_000 {
            let names = [name(), name(), name(), name(), name()];
            let [m, tk, tv, fk, sv] = &names;
            let mut line = Vec::new();
            let written = write_series_key(&mut line, m, &[(tk, tv)], Dialect::V3).and_then(|()| {
                line.push(b' ');
                write_field(&mut line, fk, FieldValue::Str(sv), opts)
            });
            if written.is_ok() {
                let line = String::from_utf8(line).unwrap();
                assert_eq!(read(&line).as_ref(), Some(&names), "{line:?}");
                taken += 1;
                continue;
            }
            refused += 1;
            if m.starts_with('#') {
                continue; // a comment line, not a name
            }
            // The plain escape of each refused name, the others being plain.
            let plain = |s: &str, eq: bool| -> String {
                s.chars()
                    .flat_map(|c| {
                        let special =
                            matches!(c, '\\' | ',' | ' ' | '\t' | '\n' | '\0') || (eq && c == '=');
                        special.then_some('\\').into_iter().chain([c])
                    })
                    .collect()
            };
            let elements = [
                Element::Measurement,
                Element::TagKey,
                Element::TagValue,
                Element::FieldKey,
            ];
            for (i, el) in elements.into_iter().enumerate() {
                if escape_identifier(&mut Vec::new(), &names[i], el, Dialect::V3).is_ok() {
                    continue;
                }
                let mut parts = ["x".to_string(), "x".into(), "x".into(), "x".into()];
                parts[i] = plain(&names[i], el.escapes_eq());
                let line = format!("{},{}={} {}=\"s\"", parts[0], parts[1], parts[2], parts[3]);
                let got = read(&line);
                assert!(
                    got.as_ref().map(|g| &g[i]) != Some(&names[i]),
                    "{el:?} {:?} was refused but {line:?} reads back",
                    names[i]
                );
            }
        }
        assert!(taken > 2000 && refused > 1000, "{taken} {refused}");
    }

    #[test]
    fn long_names_take_the_chunked_scan() {
        let plain = "abcdefghij".repeat(10);
        assert_eq!(go(&plain, Element::TagValue), plain);
        for at in [0, 15, 16, 17, 31, 32, 99] {
            let mut s = plain.clone().into_bytes();
            s[at] = b' ';
            let s = String::from_utf8(s).unwrap();
            let want = format!("{}\\ {}", &plain[..at], &plain[at + 1..]);
            assert_eq!(go(&s, Element::TagValue), want, "space at {at}");
            assert_eq!(v3(&s, Element::TagValue), want, "space at {at}");
            let mut bad = s.clone().into_bytes();
            bad[at] = b'\n';
            assert!(esc(
                &String::from_utf8(bad).unwrap(),
                Element::TagKey,
                Dialect::Go
            )
            .is_err());
        }
    }

    #[test]
    fn error_messages_cut_long_values() {
        let s = format!("{}\n", "x".repeat(1000));
        let msg = esc(&s, Element::TagValue, Dialect::Go)
            .unwrap_err()
            .to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains("newline"), "{msg}");
        assert!(msg.contains("tag value \"xxxx"), "{msg}");
    }

    #[test]
    fn appends_after_existing_content() {
        let mut out = b"m,a=1,".to_vec();
        escape_identifier(&mut out, "b c", Element::TagKey, Dialect::Go).unwrap();
        assert_eq!(out, b"m,a=1,b\\ c");
    }

    #[test]
    fn string_fields_escape_quote_and_backslash_only() {
        assert_eq!(string_field("plain text"), "plain text");
        assert_eq!(string_field(""), "");
        assert_eq!(string_field("say \"hi\""), "say \\\"hi\\\"");
        assert_eq!(string_field("C:\\dir\\"), "C:\\\\dir\\\\");
        assert_eq!(string_field("\\\""), "\\\\\\\"");
        assert_eq!(string_field("a,b=c d"), "a,b=c d");
        assert_eq!(string_field("line1\nline2\ttab\r"), "line1\nline2\ttab\r");
        assert_eq!(string_field("\u{0}\u{7f}"), "\u{0}\u{7f}");
        assert_eq!(string_field("Zürich ✓"), "Zürich ✓");
    }

    #[test]
    fn long_string_fields() {
        let mut s = "x".repeat(1000);
        assert_eq!(string_field(&s), s);
        s.insert(500, '"');
        s.push('\\');
        let want = format!("{}\\\"{}\\\\", "x".repeat(500), "x".repeat(500));
        assert_eq!(string_field(&s), want);
        let many = "\"\\".repeat(100);
        assert_eq!(string_field(&many), "\\\"\\\\".repeat(100));
    }

    #[test]
    fn unescape_inverts_escape() {
        let names = [
            "plain",
            "a b,c=d",
            "back\\slash",
            "tail\\ x",
            "a\\,b",
            "a\\\\=b",
            "quo\"te",
            "\"quoted\"",
            "non-ascii é,",
        ];
        for dialect in [Dialect::Go, Dialect::V3] {
            for element in ALL {
                for name in names {
                    let Ok(escaped) = esc(name, element, dialect) else {
                        continue;
                    };
                    let back = unescape_identifier(escaped.as_bytes(), element, dialect);
                    assert_eq!(
                        std::str::from_utf8(&back).unwrap(),
                        name,
                        "{element:?} {dialect:?} {escaped:?}"
                    );
                }
            }
        }
        assert!(matches!(
            unescape_identifier(b"http_req_duration", Element::Measurement, Dialect::Go),
            Cow::Borrowed(_)
        ));
    }
}
