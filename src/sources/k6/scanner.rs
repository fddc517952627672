//! A JSON scanner over one line of k6's JSON output, just enough for it: it validates what it
//! reads and never allocates. Plain bytes are skipped eight at a time (SWAR word tests), and
//! [`k6_point`] reads a `Point` line laid out the way k6 writes it without the general scanner.

/// with no escape in the name and the time. `None` for any other layout, which the general
/// scanner then reads (it accepts keys in any order, whitespace and escapes).
pub(super) fn k6_point(text: &str) -> Option<(JStr, PointData)> {
    let mut s = Scan::new(text);
    s.literal(b"{\"metric\":\"").ok()?;
    let metric = s.plain_string_rest()?;
    s.literal(b",\"type\":\"Point\",\"data\":{\"time\":\"")
        .ok()?;
    let time = s.plain_string_rest()?;
    s.literal(b",\"value\":").ok()?;
    let value = s.number().ok()?;
    s.literal(b",\"tags\":").ok()?;
    let tags = match s.b.get(s.pos) {
        Some(b'{') => Some(s.flat_object().ok()?),
        _ => {
            s.literal(b"null").ok()?;
            None
        }
    };
    let metadata = match s.literal(b",\"metadata\":") {
        Ok(()) if s.b.get(s.pos) == Some(&b'{') => Some(s.flat_object().ok()?),
        Ok(()) => return None,
        Err(_) => None,
    };
    s.literal(b"}}").ok()?;
    s.end().ok()?;
    Some((
        metric,
        PointData {
            time: Some(time),
            value: Some(value),
            tags,
            metadata,
        },
    ))
}

/// The `data` object of a `Point` line.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct PointData {
    pub(super) time: Option<JStr>,
    pub(super) value: Option<f64>,
    /// Byte range of the `tags` object.
    pub(super) tags: Option<(usize, usize)>,
    /// Byte range of the `metadata` value.
    pub(super) metadata: Option<(usize, usize)>,
}

/// A JSON string in the line: the bytes between its quotes.
#[derive(Debug, Clone, Copy)]
pub(super) struct JStr {
    pub(super) start: usize,
    pub(super) end: usize,
    pub(super) escaped: bool,
}

impl JStr {
    /// The raw text between the quotes (escapes not decoded).
    pub(super) fn raw(self, text: &str) -> &str {
        &text[self.start..self.end]
    }

    /// The decoded string: borrowed from the line when it has no escape, else decoded into
    /// `buf` (cleared first).
    pub(super) fn decoded<'a>(self, text: &'a str, buf: &'a mut String) -> &'a str {
        if !self.escaped {
            return self.raw(text);
        }
        buf.clear();
        unescape(self.raw(text), buf);
        buf
    }
}

/// Decodes JSON escapes (already validated by the scanner). Lone surrogates become U+FFFD.
fn unescape(raw: &str, out: &mut String) {
    let b = raw.as_bytes();
    let mut i = 0;
    let mut plain = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&raw[plain..i]);
        let c = b[i + 1];
        i += 2;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            _ => {
                let hi = hex4(&b[i..i + 4]);
                i += 4;
                let c = if (0xD800..0xDC00).contains(&hi)
                    && b.get(i) == Some(&b'\\')
                    && b.get(i + 1) == Some(&b'u')
                    && b.len() >= i + 6
                {
                    let lo = hex4(&b[i + 2..i + 6]);
                    if (0xDC00..0xE000).contains(&lo) {
                        i += 6;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                    } else {
                        None
                    }
                } else {
                    char::from_u32(hi)
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
        }
        plain = i;
    }
    out.push_str(&raw[plain..]);
}

fn hex4(b: &[u8]) -> u32 {
    b.iter().fold(0, |acc, &c| {
        acc * 16 + (c as char).to_digit(16).unwrap_or(0)
    })
}

pub(super) type ScanResult<T> = std::result::Result<T, &'static str>;

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The first eight bytes of `b` (at least eight) as a word, first byte lowest.
#[inline]
pub(super) fn word_at(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Up to eight bytes of `b` as a word, first byte lowest, zeros past its end.
#[inline]
fn word_padded(b: &[u8]) -> u64 {
    match b.get(..8) {
        Some(w) => word_at(w),
        None => {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        }
    }
}

/// The high bit of each byte of `w` that is `byte`, no other bit (exact per byte).
#[inline]
fn byte_mask(w: u64, byte: u8) -> u64 {
    const LOWS: u64 = !HIGHS;
    let t = w ^ (ONES * u64::from(byte));
    !(((t & LOWS).wrapping_add(LOWS)) | t) & HIGHS
}

/// Whether any byte of `w` is zero (exact as a yes/no answer; not which byte).
#[inline]
fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(ONES) & !w & HIGHS != 0
}

/// Whether any byte of `w` is `"`, `\\` or a control character (below 0x20): the bytes that
/// end a plain run in a JSON string.
#[inline]
fn has_string_special(w: u64) -> bool {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    // The zero-byte test of each, and "a byte below 0x20" (exact for limits up to 0x80).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    (zero(quote) | zero(backslash) | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGHS != 0
}

/// The position of the first `a` or `b` in `bytes` (eight bytes at a time).
fn find_either(a: u8, b: u8, bytes: &[u8]) -> Option<usize> {
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let w = word_at(word);
        let (x, y) = (w ^ pa, w ^ pb);
        if (x.wrapping_sub(ONES) & !x | y.wrapping_sub(ONES) & !y) & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&c| c == a || c == b)
        .map(|p| i + p)
}

/// The position of the first `byte` in `b` (eight bytes at a time).
pub(super) fn find_byte(byte: u8, b: &[u8]) -> Option<usize> {
    let pattern = ONES * u64::from(byte);
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        if has_zero_byte(word_at(word) ^ pattern) {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == byte).map(|p| i + p)
}

/// A JSON scanner over one line, just enough for k6's output: it validates what it reads and
/// never allocates.
pub(super) struct Scan<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Scan<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Scan::at(text, 0)
    }

    pub(super) fn at(text: &'a str, pos: usize) -> Self {
        Scan {
            b: text.as_bytes(),
            pos,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    #[inline]
    pub(super) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.pos).copied()
    }

    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub(super) fn expect(&mut self, c: u8) -> ScanResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(match c {
                b'{' => "expected '{'",
                b'}' => "expected '}'",
                b':' => "expected ':'",
                b'"' => "expected a string",
                _ => "unexpected character",
            })
        }
    }

    pub(super) fn end(&mut self) -> ScanResult<()> {
        self.ws();
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err("text after the JSON object")
        }
    }

    /// A string; the scanner stands after its closing quote.
    pub(super) fn string(&mut self) -> ScanResult<JStr> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain bytes eight at a time; the byte loop below sees only the word with a
            // quote, backslash or control character in it.
            while let Some(word) = self.b.get(self.pos..self.pos + 8) {
                if has_string_special(word_at(word)) {
                    break;
                }
                self.pos += 8;
            }
            let Some(&c) = self.b.get(self.pos) else {
                return Err("unterminated string");
            };
            match c {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok(JStr {
                        start,
                        end,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    match self.b.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 2
                        }
                        Some(b'u') => {
                            let hex = self.b.get(self.pos + 2..self.pos + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err("bad \\u escape");
                            }
                            self.pos += 6;
                        }
                        _ => return Err("bad escape"),
                    }
                }
                0..=0x1f => return Err("control character in a string"),
                _ => self.pos += 1,
            }
        }
    }

    /// The rest of a string whose opening quote was read, when it has no escape and no
    /// control character (`None` otherwise); the scanner stands after its closing quote.
    fn plain_string_rest(&mut self) -> Option<JStr> {
        let start = self.pos;
        let rest = self.b.get(start..)?;
        let mut i = 0;
        while let Some(word) = rest.get(i..i + 8) {
            if has_string_special(word_at(word)) {
                break;
            }
            i += 8;
        }
        let end = start
            + i
            + rest[i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        Some(JStr {
            start,
            end,
            escaped: false,
        })
    }

    fn number(&mut self) -> ScanResult<f64> {
        self.ws();
        let start = self.pos;
        while let Some(&c) = self.b.get(self.pos) {
            if !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                break;
            }
            self.pos += 1;
        }
        // ASCII only, so always valid UTF-8.
        let s = std::str::from_utf8(&self.b[start..self.pos]).map_err(|_| "bad number")?;
        if s.is_empty() {
            return Err("expected a number");
        }
        s.parse::<f64>().map_err(|_| "bad number")
    }

    fn literal(&mut self, word: &[u8]) -> ScanResult<()> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err("unexpected character")
        }
    }

    /// Skips any JSON value.
    pub(super) fn skip_value(&mut self) -> ScanResult<()> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => {
                self.pos += 1;
                if self.eat(b'}') {
                    return Ok(());
                }
                loop {
                    self.string()?;
                    self.expect(b':')?;
                    self.skip_value()?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.expect(b'}');
                }
            }
            Some(b'[') => {
                self.pos += 1;
                if self.eat(b']') {
                    return Ok(());
                }
                loop {
                    self.skip_value()?;
                    if self.eat(b',') {
                        continue;
                    }
                    return if self.eat(b']') {
                        Ok(())
                    } else {
                        Err("expected ']'")
                    };
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => Err("expected a value"),
        }
    }

    /// Skips a value and returns its byte range.
    fn span(&mut self) -> ScanResult<(usize, usize)> {
        self.ws();
        let start = self.pos;
        self.skip_value()?;
        Ok((start, self.pos))
    }

    /// The byte range of an object whose values are strings or scalars (k6's `tags` and
    /// `metadata`), found fast and not validated: its end is the first `}` outside a string.
    /// The caller validates the range when it reads it (a cache hit is a copy of bytes that
    /// were validated). The scanner stands at the `{`.
    pub(super) fn flat_object(&mut self) -> ScanResult<(usize, usize)> {
        let start = self.pos;
        // Without a backslash, a `}` is outside the strings when an even number of quotes
        // stands before it: count them a word at a time.
        let mut pos = start + 1;
        let mut quotes = 0u32;
        while pos < self.b.len() {
            let w = word_padded(&self.b[pos..]);
            if byte_mask(w, b'\\') != 0 {
                break;
            }
            let q = byte_mask(w, b'"');
            let mut close = byte_mask(w, b'}');
            while close != 0 {
                let bit = close.trailing_zeros();
                if (quotes + (q & ((1u64 << bit) - 1)).count_ones()) % 2 == 0 {
                    self.pos = pos + bit as usize / 8 + 1;
                    return Ok((start, self.pos));
                }
                close &= close - 1;
            }
            quotes += q.count_ones();
            pos += 8;
        }
        // With escapes (or no end): string by string.
        self.pos = start + 1;
        loop {
            let rest = self.b.get(self.pos..).unwrap_or_default();
            let i = find_either(b'"', b'}', rest).ok_or("unterminated object")?;
            self.pos += i + 1;
            if rest[i] == b'}' {
                return Ok((start, self.pos));
            }
            // Inside a string: to its closing quote, stepping over escapes.
            loop {
                let rest = self.b.get(self.pos..).unwrap_or_default();
                let i = find_either(b'"', b'\\', rest).ok_or("unterminated string")?;
                if rest[i] == b'"' {
                    self.pos += i + 1;
                    break;
                }
                self.pos += i + 2;
            }
        }
    }

    /// The `data` object of a `Point` line.
    pub(super) fn point_data(&mut self) -> ScanResult<PointData> {
        let mut d = PointData::default();
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok(d);
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            match &self.b[key.start..key.end] {
                b"time" => d.time = Some(self.string()?),
                b"value" => d.value = Some(self.number()?),
                b"tags" => {
                    if self.peek() == Some(b'n') {
                        self.skip_value()?;
                    } else if self.peek() == Some(b'{') {
                        // Validated by `register` when its bytes are new to the cache.
                        d.tags = Some(self.flat_object()?);
                    } else {
                        return Err("tags is not an object");
                    }
                }
                b"metadata" => {
                    d.metadata = Some(if self.peek() == Some(b'{') {
                        // Validated by `metadata`.
                        self.flat_object()?
                    } else {
                        self.span()?
                    })
                }
                _ => self.skip_value()?,
            }
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Ok(d);
        }
    }

    /// `name` and `type` of the `data` object of a `Metric` line.
    pub(super) fn metric_data(&mut self) -> ScanResult<(Option<JStr>, Option<JStr>)> {
        let (mut name, mut ty) = (None, None);
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok((name, ty));
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            match &self.b[key.start..key.end] {
                b"name" => name = Some(self.string()?),
                b"type" => ty = Some(self.string()?),
                _ => self.skip_value()?,
            }
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Ok((name, ty));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_decodes_every_escape() {
        let mut out = String::new();
        unescape(r#"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800x"#, &mut out);
        assert_eq!(out, "a\"b\\c/d\u{8}\u{c}\n\r\té😀\u{FFFD}x");
    }

    #[test]
    fn word_tests_match_byte_by_byte_ones() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = b"\"\\}{\n\x00\x1f\x20\x7f\x80\xffa0";
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.usize(0..20))
                .map(|_| {
                    if rng.bool() {
                        alphabet[rng.usize(..alphabet.len())]
                    } else {
                        rng.u8(..)
                    }
                })
                .collect();
            let w = word_padded(&bytes);
            let shown = &bytes[..bytes.len().min(8)];
            let special = shown.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20);
            if bytes.len() >= 8 {
                assert_eq!(has_string_special(w), special, "{bytes:?}");
            }
            for probe in [b'"', b'}', b'\\', 0] {
                let mask: u64 = (0..8)
                    .filter(|&i| shown.get(i) == Some(&probe) || (i >= shown.len() && probe == 0))
                    .map(|i| 0x80u64 << (8 * i))
                    .sum();
                assert_eq!(byte_mask(w, probe), mask, "{bytes:?} {probe}");
                assert_eq!(
                    find_byte(probe, &bytes),
                    bytes.iter().position(|&c| c == probe),
                    "{bytes:?} {probe}"
                );
                assert_eq!(
                    find_either(probe, b'x', &bytes),
                    bytes.iter().position(|&c| c == probe || c == b'x'),
                    "{bytes:?} {probe}"
                );
            }
        }
    }

    #[test]
    fn flat_objects_end_at_the_first_brace_outside_strings() {
        for (text, end) in [
            ("{}", 2),
            (r#"{"a":"b"}"#, 9),
            (r#"{"a":"}"}, x"#, 9),
            (r#"{"a}":"}}}"}}"#, 12),
            (r#"{"a":"\"}"}"#, 11),
            (r#"{"a":"x\\"}"#, 11),
            (r#"{"a":"\\\"}","b":"c"}}"#, 21),
            (
                r#"{"long key beyond a word":"and a value \u00fc","n":null}}"#,
                56,
            ),
            (r#"{"ü✓":"é"}"#, 14),
        ] {
            let mut s = Scan::new(text);
            assert_eq!(s.flat_object(), Ok((0, end)), "{text}");
            assert_eq!(s.pos, end, "{text}");
        }
        for bad in [r#"{"a":"b""#, r#"{"a":"b\"}"#, r#"{"a"#, "{"] {
            let mut s = Scan::new(bad);
            assert!(s.flat_object().is_err(), "{bad}");
        }
    }

    #[test]
    fn k6s_own_layout_reads_like_the_general_scanner() {
        let lines = [
            r#"{"metric":"http_reqs","type":"Point","data":{"time":"2025-06-25T10:00:00.123456789Z","value":1,"tags":{"group":"","method":"GET","url":"http://x/}"}}}"#,
            r#"{"metric":"vus","type":"Point","data":{"time":"2025-06-25T10:00:01Z","value":-2.5e-3,"tags":{}}}"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:01+02:00","value":3,"tags":null,"metadata":{"vu":"1","iter":"2"}}}  "#,
        ];
        for line in lines {
            let (metric, fast) = k6_point(line).unwrap_or_else(|| panic!("{line}"));
            let mut s = Scan::new(line);
            s.expect(b'{').unwrap();
            let mut general = None;
            let mut name = None;
            loop {
                let key = s.string().unwrap();
                s.expect(b':').unwrap();
                match key.raw(line) {
                    "metric" => name = Some(s.string().unwrap().raw(line)),
                    "data" => general = Some(s.point_data().unwrap()),
                    _ => s.skip_value().unwrap(),
                }
                if !s.eat(b',') {
                    break;
                }
            }
            let general = general.unwrap();
            assert_eq!(Some(metric.raw(line)), name, "{line}");
            assert_eq!(
                fast.time.map(|t| t.raw(line)),
                general.time.map(|t| t.raw(line))
            );
            assert_eq!(fast.value, general.value, "{line}");
            assert_eq!(fast.tags, general.tags, "{line}");
            assert_eq!(fast.metadata, general.metadata, "{line}");
        }
        // Other layouts are left to the general scanner.
        for line in [
            r#"{"type":"Point","metric":"m","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{}}}"#,
            r#"{"metric":"m\u0041","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{}}}"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{}}}x"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{},"metadata":null}}"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":"x"}}"#,
        ] {
            assert!(k6_point(line).is_none(), "{line}");
        }
    }

    #[test]
    fn scanner_skips_and_rejects() {
        let text = r#"{"a":[1,-2.5e3,{"b":null}],"c":true,"d":"x\"y"}"#;
        let mut s = Scan::new(text);
        s.skip_value().unwrap();
        s.end().unwrap();
        for bad in [
            r#"{"a":}"#,
            r#"{"a":"x}"#,
            r#"{"a":"\q"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":[1,}"#,
            "{\"a\":\"\u{1}\"}",
        ] {
            let mut s = Scan::new(bad);
            assert!(s.skip_value().is_err(), "{bad}");
        }
    }
}
