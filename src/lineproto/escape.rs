//! Escaping of identifiers (measurement, tag keys and values, field keys) and string field
//! values. See the module docs of `lineproto` for the rules and `influx.md` §1.2 for why.
//!
//! Every function scans first and copies the whole string with one `extend_from_slice` when
//! nothing needs escaping, which is what nearly all real names look like; only strings with a
//! special byte pay for the byte-by-byte path.

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

    /// The Go servers unescape `\=` in keys and tag values but not in measurements, where an
    /// escaped `=` would be stored as a literal `\=`.
    fn escapes_eq(self) -> bool {
        !matches!(self, Element::Measurement)
    }
}

/// `s` without its trailing backslashes. A trailing `\` would escape the separator written
/// after it, and 3.x rejects a measurement ending in one, so Telegraf trims them too.
#[inline]
pub fn trim_identifier(s: &str) -> &str {
    // A byte loop: `trim_end_matches` decodes UTF-8 backwards and costs several ns per call.
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 0 && b[end - 1] == b'\\' {
        end -= 1;
    }
    // Only ASCII backslashes were cut, so `end` is a char boundary.
    &s[..end]
}

/// Appends `s`, trimmed with [`trim_identifier`] and escaped for `element`: `,` and space
/// (and `=` unless `element` is the measurement) get a backslash, `\t \n \r \f` become the
/// two characters `\t \n \r \f`, and a run of backslashes right before such an escape is
/// doubled. Other backslashes are written as they are.
///
/// Emptiness and reserved names are the caller's business. Errors with `Error::InvalidInput`
/// on any other control character (U+0000–U+001F, U+007F), leaving `out` as it was.
#[inline]
pub fn escape_identifier(out: &mut Vec<u8>, s: &str, element: Element) -> Result<()> {
    let bytes = trim_identifier(s).as_bytes();
    let eq = element.escapes_eq();
    match find(bytes, |w| special_bytes(w, eq)) {
        None => {
            out.extend_from_slice(bytes);
            Ok(())
        }
        Some(first) => escape_identifier_slow(out, s, bytes, first, element),
    }
}

/// Appends the content of a string field value (without the quotes) with `"` and `\`
/// escaped. Everything else, newlines included, goes out raw: the servers read a quoted
/// string up to the next unescaped `"`.
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

/// A value as an error message shows it: quoted, escaped and cut when long, so a 64 KiB name
/// does not end up in a log line.
pub(crate) fn show(s: &str) -> String {
    const MAX_SHOWN: usize = 64;
    match s.char_indices().nth(MAX_SHOWN) {
        Some((cut, _)) => format!("{:?}...", &s[..cut]),
        None => format!("{s:?}"),
    }
}

/// Whether byte `c` of an identifier needs more than a plain copy.
#[inline(always)]
fn is_special(c: u8, eq: bool) -> bool {
    // Space is 0x20, so `< 0x21` covers it together with the C0 controls.
    (c < 0x21) | (c == b',') | (c == b'\\') | (c == 0x7f) | (eq & (c == b'='))
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
    let m = below_0x21 | bytes_eq(w, b',') | bytes_eq(w, b'\\') | bytes_eq(w, 0x7f);
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

/// The escape written for a special byte, if it is written with a leading backslash at all.
#[inline]
fn escape_of(c: u8, eq: bool) -> Option<u8> {
    match c {
        b',' | b' ' => Some(c),
        b'=' if eq => Some(c),
        b'\t' => Some(b't'),
        b'\n' => Some(b'n'),
        b'\r' => Some(b'r'),
        0x0c => Some(b'f'),
        _ => None,
    }
}

#[cold]
fn escape_identifier_slow(
    out: &mut Vec<u8>,
    original: &str,
    bytes: &[u8],
    first: usize,
    element: Element,
) -> Result<()> {
    let start = out.len();
    let eq = element.escapes_eq();
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
        if c == b'\\' {
            let end = bytes[i..]
                .iter()
                .position(|&b| b != b'\\')
                .map_or(bytes.len(), |p| i + p);
            // The Go scanner skips every `\x` pair, so an odd run in front of `\,` would pair
            // its last backslash with ours and leave a bare separator that splits the line.
            // Doubling keeps the pairs aligned, and 3.x reads `\\` back as one backslash.
            let before_escape = bytes
                .get(end)
                .is_some_and(|&next| escape_of(next, eq).is_some());
            let run = (end - i) * if before_escape { 2 } else { 1 };
            out.resize(out.len() + run, b'\\');
            i = end;
            continue;
        }
        match escape_of(c, eq) {
            Some(e) => out.extend_from_slice(&[b'\\', e]),
            None => {
                out.truncate(start);
                return Err(Error::InvalidInput(format!(
                    "{} {} contains control character U+{:04X}",
                    element.name(),
                    show(original),
                    c
                )));
            }
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str, element: Element) -> Result<String> {
        let mut out = b"prefix|".to_vec();
        let r = escape_identifier(&mut out, s, element);
        match r {
            Ok(()) => Ok(String::from_utf8(out[7..].to_vec()).unwrap()),
            Err(e) => {
                assert_eq!(out, b"prefix|", "error must leave out as it was");
                Err(e)
            }
        }
    }

    fn ok(s: &str, element: Element) -> String {
        esc(s, element).unwrap()
    }

    fn string_field(s: &str) -> String {
        let mut out = Vec::new();
        escape_string_field(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    const KEYS: [Element; 3] = [Element::TagKey, Element::TagValue, Element::FieldKey];

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
        for el in [
            Element::Measurement,
            Element::TagKey,
            Element::TagValue,
            Element::FieldKey,
        ] {
            assert_eq!(ok("http_req_duration", el), "http_req_duration");
            assert_eq!(ok("a-b.c_d:e/f", el), "a-b.c_d:e/f");
            assert_eq!(ok("", el), "");
            assert_eq!(ok("\"quoted\"", el), "\"quoted\"");
            assert_eq!(ok("#hash", el), "#hash");
        }
    }

    #[test]
    fn measurement_escapes_comma_and_space_only() {
        assert_eq!(ok("a b", Element::Measurement), "a\\ b");
        assert_eq!(ok("a,b", Element::Measurement), "a\\,b");
        assert_eq!(ok("a=b", Element::Measurement), "a=b");
        assert_eq!(ok(" ,=", Element::Measurement), "\\ \\,=");
    }

    #[test]
    fn keys_and_tag_values_escape_comma_eq_and_space() {
        for el in KEYS {
            assert_eq!(ok("a b", el), "a\\ b");
            assert_eq!(ok("a,b", el), "a\\,b");
            assert_eq!(ok("a=b", el), "a\\=b");
            assert_eq!(ok("x=1,y=2 z", el), "x\\=1\\,y\\=2\\ z");
            assert_eq!(ok("  ", el), "\\ \\ ");
        }
    }

    #[test]
    fn whitespace_controls_become_two_character_escapes() {
        for el in [
            Element::Measurement,
            Element::TagKey,
            Element::TagValue,
            Element::FieldKey,
        ] {
            assert_eq!(ok("a\tb", el), "a\\tb");
            assert_eq!(ok("a\nb", el), "a\\nb");
            assert_eq!(ok("a\rb", el), "a\\rb");
            assert_eq!(ok("a\u{c}b", el), "a\\fb");
            assert_eq!(ok("\r\n", el), "\\r\\n");
        }
    }

    #[test]
    fn other_control_characters_are_refused() {
        for el in [
            Element::Measurement,
            Element::TagKey,
            Element::TagValue,
            Element::FieldKey,
        ] {
            for c in (0u8..0x20).chain([0x7f]) {
                if matches!(c, b'\t' | b'\n' | b'\r' | 0x0c) {
                    continue;
                }
                let s = format!("a b{}", c as char);
                let err = esc(&s, el).unwrap_err();
                let want = format!(
                    "{} {:?} contains control character U+{:04X}",
                    el.name(),
                    s,
                    c
                );
                assert_eq!(err, Error::InvalidInput(want));
            }
        }
        assert_eq!(
            esc("a\u{1}", Element::TagKey).unwrap_err().to_string(),
            "invalid input: tag key \"a\\u{1}\" contains control character U+0001"
        );
        // C1 controls are not in the grammar's forbidden range.
        assert_eq!(ok("a\u{85}b", Element::TagValue), "a\u{85}b");
    }

    #[test]
    fn trailing_backslashes_are_trimmed() {
        for el in [
            Element::Measurement,
            Element::TagKey,
            Element::TagValue,
            Element::FieldKey,
        ] {
            assert_eq!(ok("a\\", el), "a");
            assert_eq!(ok("a\\\\\\", el), "a");
            assert_eq!(ok("\\", el), "");
            assert_eq!(ok("\\\\", el), "");
        }
        assert_eq!(trim_identifier("a\\b\\\\"), "a\\b");
        assert_eq!(trim_identifier("\\\\"), "");
        assert_eq!(trim_identifier("ab"), "ab");
    }

    #[test]
    fn inner_backslashes_are_literal() {
        for el in [
            Element::Measurement,
            Element::TagKey,
            Element::TagValue,
            Element::FieldKey,
        ] {
            assert_eq!(ok("a\\b", el), "a\\b");
            assert_eq!(ok("C:\\temp\\x", el), "C:\\temp\\x");
            assert_eq!(ok("\\a", el), "\\a");
            assert_eq!(ok("a\\\\b", el), "a\\\\b");
        }
        // `=` is not escaped in a measurement, so a backslash before it stays single.
        assert_eq!(ok("a\\=b", Element::Measurement), "a\\=b");
    }

    #[test]
    fn backslash_runs_before_an_escape_are_doubled() {
        for el in [
            Element::Measurement,
            Element::TagKey,
            Element::TagValue,
            Element::FieldKey,
        ] {
            assert_eq!(ok("a\\,b", el), "a\\\\\\,b");
            assert_eq!(ok("a\\ b", el), "a\\\\\\ b");
            assert_eq!(ok("a\\\\ b", el), "a\\\\\\\\\\ b");
            assert_eq!(ok("a\\\tb", el), "a\\\\\\tb");
            assert_eq!(ok("\\\n", el), "\\\\\\n");
            // Trimming happens first: the space is now last and the run before it is doubled.
            assert_eq!(ok("a\\ \\", el), "a\\\\\\ ");
        }
        for el in KEYS {
            assert_eq!(ok("a\\=b", el), "a\\\\\\=b");
        }
    }

    /// Checks what the Go scanner does with our output: every `\x` pair is skipped, so no
    /// separator may be left bare. Applied to many nasty inputs.
    #[test]
    fn output_never_contains_a_bare_separator() {
        let parts = [
            "a", "\\", "\\\\", ",", "=", " ", "\t", "\n", "ü", "✓", "\"", "x\\y",
        ];
        let mut inputs = Vec::new();
        for a in parts {
            for b in parts {
                for c in parts {
                    inputs.push(format!("{a}{b}{c}"));
                }
            }
        }
        for s in &inputs {
            for el in [
                Element::Measurement,
                Element::TagKey,
                Element::TagValue,
                Element::FieldKey,
            ] {
                let out = ok(s, el);
                let b = out.as_bytes();
                let mut i = 0;
                while i < b.len() {
                    match b[i] {
                        b'\\' => {
                            assert!(
                                i + 1 < b.len(),
                                "{el:?} {s:?} -> {out:?} ends in a backslash"
                            );
                            i += 2;
                        }
                        b',' | b' ' | b'\n' | b'\t' => {
                            panic!("{el:?} {s:?} -> {out:?} has a bare separator at {i}")
                        }
                        b'=' if el.escapes_eq() => {
                            panic!("{el:?} {s:?} -> {out:?} has a bare '=' at {i}")
                        }
                        _ => i += 1,
                    }
                }
            }
        }
    }

    #[test]
    fn non_ascii_is_copied() {
        assert_eq!(ok("Zürich ✓", Element::TagValue), "Zürich\\ ✓");
        assert_eq!(ok("Zürich ✓", Element::Measurement), "Zürich\\ ✓");
        assert_eq!(ok("日本語", Element::FieldKey), "日本語");
        assert_eq!(ok("😀,😀", Element::TagKey), "😀\\,😀");
    }

    #[test]
    fn long_names_take_the_chunked_scan() {
        let plain = "abcdefghij".repeat(10);
        assert_eq!(ok(&plain, Element::TagValue), plain);
        for at in [0, 15, 16, 17, 31, 32, 99] {
            let mut s = plain.clone().into_bytes();
            s[at] = b' ';
            let s = String::from_utf8(s).unwrap();
            let want = format!("{}\\ {}", &plain[..at], &plain[at + 1..]);
            assert_eq!(ok(&s, Element::TagValue), want, "space at {at}");
            let mut bad = s.clone().into_bytes();
            bad[at] = 0;
            assert!(esc(&String::from_utf8(bad).unwrap(), Element::TagKey).is_err());
        }
    }

    #[test]
    fn error_messages_cut_long_values() {
        let s = format!("{}\u{0}", "x".repeat(1000));
        let msg = esc(&s, Element::TagValue).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
        assert!(msg.contains("U+0000"), "{msg}");
        assert!(msg.contains("tag value \"xxxx"), "{msg}");
    }

    #[test]
    fn appends_after_existing_content() {
        let mut out = b"m,a=1,".to_vec();
        escape_identifier(&mut out, "b c", Element::TagKey).unwrap();
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
}
