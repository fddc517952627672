//! Encoding of series keys, fields and timestamps.
use crate::error::{Error, Result};
use crate::model::{FieldValue, Precision};

use super::escape::{escape_identifier, escape_string_field, go_key_splits_cleanly, show};
use super::escape::{is_special, Dialect, Element};
use super::limits::{key_fits, string_fits, timestamp_ns_range, MAX_KEY_LENGTH, MAX_STRING_FIELD};

/// How fields are written for the target server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldOptions {
    /// 1.x rejects the `u` suffix: write unsigned values as `i` (error above i64::MAX).
    pub uint_as_int: bool,
    /// How field keys are escaped.
    pub dialect: Dialect,
    /// Length of the escaped series key the fields join (0: not known, only the field key
    /// is checked): InfluxDB refuses a series key plus field key over 65535 bytes.
    pub series_key_len: usize,
}

/// Appends `measurement[,k=v...]` (no trailing space) escaped for `dialect`. `tags` must be
/// sorted by key in byte order; empty values are skipped (InfluxDB has no empty tag value: a
/// missing tag reads as empty). Errors: empty measurement, empty tag key, duplicate tag keys,
/// a key named `time`, `_field` or `_measurement`, a name `dialect` cannot store as it is
/// (`escape_identifier`), a key the Go servers would split wrongly (`go_key_splits_cleanly`),
/// a measurement starting with `#`, which the servers would skip as a comment line.
/// On error `out` is left as it was.
pub fn write_series_key(
    out: &mut Vec<u8>,
    measurement: &str,
    tags: &[(&str, &str)],
    dialect: Dialect,
) -> Result<()> {
    debug_assert!(
        tags.windows(2).all(|w| w[0].0 <= w[1].0),
        "tags must be sorted by key"
    );
    let start = out.len();
    let mut result = series_key(out, measurement, tags, dialect);
    if result.is_ok() && dialect == Dialect::Go && !go_key_splits_cleanly(&out[start..]) {
        result = Err(Error::InvalidInput(format!(
            "series {} with tags {} has backslashes before separators that would make \
             InfluxDB 1.x/2.x split its line in the wrong place",
            show(measurement),
            show(&format!("{tags:?}"))
        )));
    }
    if result.is_ok() && !key_fits(out.len() - start, 1) {
        result = Err(Error::InvalidInput(format!(
            "max key length exceeded: the series key of measurement {} is {} bytes, which \
             leaves no room for a field key within the {MAX_KEY_LENGTH} bytes InfluxDB takes",
            show(measurement),
            out.len() - start
        )));
    }
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// `Ok` for a timestamp (ns since the epoch) InfluxDB takes once written in `precision`
/// (1677-09-21T00:12:43.145224194Z ..= 2262-04-11T23:47:16.854775806Z); else
/// `Error::InvalidValue`. Callers checking many use a [`TimestampRange`].
pub fn check_timestamp(ts_ns: i64, precision: Precision) -> Result<()> {
    TimestampRange::new(precision).check(ts_ns)
}

/// [`check_timestamp`] for one precision, its bounds computed once: one compare a sample.
#[derive(Debug, Clone, Copy)]
pub struct TimestampRange {
    lo: i64,
    hi: i64,
}

impl TimestampRange {
    pub fn new(precision: Precision) -> TimestampRange {
        let range = timestamp_ns_range(precision.unit_ns());
        TimestampRange {
            lo: *range.start(),
            hi: *range.end(),
        }
    }

    /// See [`check_timestamp`].
    #[inline]
    pub fn check(self, ts_ns: i64) -> Result<()> {
        if (self.lo..=self.hi).contains(&ts_ns) {
            return Ok(());
        }
        Err(timestamp_out_of_range(ts_ns))
    }
}

#[cold]
fn timestamp_out_of_range(ts_ns: i64) -> Error {
    Error::InvalidValue(format!(
        "timestamp {ts_ns} ns is outside the range InfluxDB takes \
         (-9223372036854775806 to 9223372036854775806 ns, 1677-09-21 to 2262-04-11)"
    ))
}

/// Appends `key=value` (no separator before it). NaN/±Inf, empty or reserved keys, strings over
/// MAX_STRING_FIELD and (with `uint_as_int`) unsigned values above i64::MAX are errors
/// (`Error::InvalidValue` for the value, `Error::InvalidInput` for the key); `out` is then
/// left as it was.
pub fn write_field(
    out: &mut Vec<u8>,
    key: &str,
    value: FieldValue<'_>,
    opts: FieldOptions,
) -> Result<()> {
    let start = out.len();
    let result = field(out, key, value, opts);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Appends a finite float as ryu prints it (`1.0`, `1e16`, `1.5e-7`); `Err` for NaN/±Inf.
#[inline]
pub fn write_float(out: &mut Vec<u8>, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::InvalidValue(format!(
            "float {v} is not finite; InfluxDB rejects NaN and infinities"
        )));
    }
    push_float(out, v);
    Ok(())
}

/// Appends an integer timestamp as itoa prints it. Always inlined: every line ends with one,
/// and inlined its 19 digits are three fixed-size steps.
#[inline(always)]
pub fn write_timestamp(out: &mut Vec<u8>, ts: i64) {
    // Every ns timestamp from 2001-09-09 to 2262 has 19 digits: a fixed-size copy, no call.
    if ts >= 1_000_000_000_000_000_000 {
        let mut digits = [0u8; 19];
        put_digits(&mut digits, ts as u64);
        out.extend_from_slice(&digits);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
    }
}

/// Appends a finite float exactly as `ryu::Buffer::format_finite` does (the tests compare the
/// two), with a fast path for the values metrics are made of.
#[inline]
fn push_float(out: &mut Vec<u8>, v: f64) {
    if !push_short_decimal(out, v) {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    }
}

/// The fast path of [`push_float`]: `v` is the double nearest to a decimal `m / 10^6` with
/// `10 <= m < 10^15` (so `1e-5 <= |v| < 1e9` with at most six fraction digits: k6's
/// milliseconds, which are nanoseconds / 1e6, and every integer up to 1e9). Returns `false`,
/// writing nothing, for any other value.
///
/// Why it prints what ryu prints: ryu writes the shortest decimal within half an ulp of `v`.
/// `m / 10^6` is within it, and it has at most 15 significant digits; two different decimals
/// of at most 15 digits are at least 10^-15 apart relative to their size, an ulp at most
/// 2^-52 (2.2e-16), so no other decimal as short or shorter is within it. For that range ryu
/// writes the digits in plain notation, `ddd.ddd`, `0.000ddd` or `ddd.0`, as below.
#[inline]
fn push_short_decimal(out: &mut Vec<u8>, v: f64) -> bool {
    let a = v.abs();
    if !(1e-5..1e9).contains(&a) {
        return false;
    }
    // Any rounding of the product is caught by the check, which is exact: `m` and 1e6 are
    // exact doubles and IEEE division rounds to nearest.
    let m = (a * 1e6 + 0.5) as u64;
    if m < 10 || m as f64 / 1e6 != a {
        return false;
    }
    let (int, frac) = (m / 1_000_000, m % 1_000_000);
    // Sign, up to 9 integer digits, point, 6 fraction digits.
    let mut text = [0u8; 17];
    text[0] = b'-';
    let mut n = usize::from(v < 0.0);
    let int_digits = decimal_digits(int);
    put_digits(&mut text[n..n + int_digits], int);
    n += int_digits;
    text[n] = b'.';
    n += 1;
    if frac == 0 {
        text[n] = b'0';
        n += 1;
    } else {
        put_digits(&mut text[n..n + 6], frac);
        n += 6;
        while text[n - 1] == b'0' {
            n -= 1;
        }
    }
    push_prefix(out, &text, n);
    true
}

/// Appends an integer as itoa prints it; small non-negative values without a call.
#[inline]
fn push_i64(out: &mut Vec<u8>, v: i64) {
    if (0..100_000_000).contains(&v) {
        let mut text = [0u8; 8];
        let n = decimal_digits(v as u64);
        put_digits(&mut text[..n], v as u64);
        push_prefix(out, &text, n);
    } else {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
}

/// Appends `text[..n]`. Copying the whole fixed-size array and cutting it back compiles to a
/// few moves, where a copy of a variable length is a `memcpy` call.
#[inline(always)]
fn push_prefix<const N: usize>(out: &mut Vec<u8>, text: &[u8; N], n: usize) {
    let len = out.len();
    out.extend_from_slice(text);
    out.truncate(len + n);
}

/// Number of decimal digits of `v` (1 for 0).
#[inline]
fn decimal_digits(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

const DIGIT_PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Writes the last `out.len()` decimal digits of `v` into `out`, zero-padded on the left.
#[inline(always)]
fn put_digits(out: &mut [u8], mut v: u64) {
    // Eight digits at a time in 32-bit arithmetic, cheaper than 64-bit steps of two.
    let mut end = out.len();
    while end > 8 {
        put_digits_u32(&mut out[end - 8..end], (v % 100_000_000) as u32);
        v /= 100_000_000;
        end -= 8;
    }
    put_digits_u32(&mut out[..end], (v % 100_000_000) as u32);
}

/// [`put_digits`] for at most eight digits.
#[inline(always)]
fn put_digits_u32(out: &mut [u8], mut v: u32) {
    let mut end = out.len();
    while end >= 2 {
        let pair = (v % 100) as usize * 2;
        v /= 100;
        end -= 2;
        out[end] = DIGIT_PAIRS[pair];
        out[end + 1] = DIGIT_PAIRS[pair + 1];
    }
    if end == 1 {
        out[0] = b'0' + (v % 10) as u8;
    }
}

fn series_key(
    out: &mut Vec<u8>,
    measurement: &str,
    tags: &[(&str, &str)],
    dialect: Dialect,
) -> Result<()> {
    if measurement.is_empty() {
        return Err(Error::InvalidInput("measurement is empty".into()));
    }
    if measurement.starts_with('#') {
        // The servers skip any line whose first character is `#`, so the point would vanish
        // without an error, and no server unescapes `\#`.
        return Err(Error::InvalidInput(format!(
            "measurement {} starts with '#', which line protocol reads as a comment",
            show(measurement)
        )));
    }
    escape_identifier(out, measurement, Element::Measurement, dialect)?;
    for (i, &(key, value)) in tags.iter().enumerate() {
        check_key(key, Element::TagKey)?;
        if i > 0 && tags[i - 1].0 == key {
            return Err(Error::InvalidInput(format!(
                "duplicate tag key {}",
                show(key)
            )));
        }
        let mark = out.len();
        out.push(b',');
        // Escaped even when the value is skipped, so a bad key is reported either way.
        escape_identifier(out, key, Element::TagKey, dialect)?;
        if value.is_empty() {
            out.truncate(mark);
            continue;
        }
        out.push(b'=');
        escape_identifier(out, value, Element::TagValue, dialect)?;
    }
    Ok(())
}

fn field(out: &mut Vec<u8>, key: &str, value: FieldValue<'_>, opts: FieldOptions) -> Result<()> {
    let key_start = out.len();
    if !push_plain_short_key(out, key) {
        check_key(key, Element::FieldKey)?;
        escape_identifier(out, key, Element::FieldKey, opts.dialect)?;
    }
    if !key_fits(opts.series_key_len, out.len() - key_start) {
        return Err(field_key_too_long(
            opts.series_key_len,
            key,
            out.len() - key_start,
        ));
    }
    out.push(b'=');
    match value {
        FieldValue::Float(v) => {
            if !v.is_finite() {
                return Err(Error::InvalidValue(format!(
                    "field {} is {v}; InfluxDB rejects NaN and infinities",
                    show(key)
                )));
            }
            push_float(out, v);
        }
        FieldValue::Int(v) => {
            push_i64(out, v);
            out.push(b'i');
        }
        FieldValue::UInt(v) if opts.uint_as_int => {
            if v > i64::MAX as u64 {
                return Err(Error::InvalidValue(format!(
                    "field {} is {v}, above the integer maximum {} (unsigned values are \
                     written as integers for servers without `u` support)",
                    show(key),
                    i64::MAX
                )));
            }
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            out.push(b'i');
        }
        FieldValue::UInt(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            out.push(b'u');
        }
        FieldValue::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
        FieldValue::Str(s) => {
            if !string_fits(s.len()) {
                return Err(Error::InvalidValue(format!(
                    "string field {} is {} bytes, more than the {MAX_STRING_FIELD} InfluxDB takes",
                    show(key),
                    s.len()
                )));
            }
            out.push(b'"');
            escape_string_field(out, s);
            out.push(b'"');
        }
    }
    Ok(())
}

#[cold]
fn field_key_too_long(series_key_len: usize, key: &str, key_len: usize) -> Error {
    Error::InvalidInput(format!(
        "max key length exceeded: a series key of {series_key_len} bytes and field key {} of \
         {key_len} bytes make more than the {MAX_KEY_LENGTH} bytes InfluxDB takes",
        show(key)
    ))
}

/// Appends a field key of at most 8 bytes that is written as it is in every dialect (nothing
/// to escape, not reserved), which is what nearly every key looks like (`value`, `vu`, `iter`),
/// without the general path's calls. Writes nothing and returns `false` for any other key,
/// which then goes through `check_key` and `escape_identifier`.
#[inline]
fn push_plain_short_key(out: &mut Vec<u8>, key: &str) -> bool {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 8 || b == b"time" || b == b"_field" {
        return false;
    }
    let mut text = [0u8; 8];
    for (t, &c) in text.iter_mut().zip(b) {
        if is_special(c, true) {
            return false;
        }
        *t = c;
    }
    push_prefix(out, &text, b.len());
    true
}

/// An error if `key` is empty or a name InfluxDB reserves (1.x rejects `time`; `_field` and
/// `_measurement` collide with the 2.x data model).
#[inline]
fn check_key(key: &str, element: Element) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidInput(format!("{} is empty", element.name())));
    }
    if matches!(key, "time" | "_field" | "_measurement") {
        return Err(Error::InvalidInput(format!(
            "{} {} is reserved by InfluxDB",
            element.name(),
            show(key)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &[u8] = b"earlier line\n";

    fn key(measurement: &str, tags: &[(&str, &str)]) -> Result<String> {
        let mut out = PREFIX.to_vec();
        match write_series_key(&mut out, measurement, tags, Dialect::Go) {
            Ok(()) => Ok(String::from_utf8(out[PREFIX.len()..].to_vec()).unwrap()),
            Err(e) => {
                assert_eq!(out, PREFIX, "error must leave out as it was");
                Err(e)
            }
        }
    }

    fn fld(k: &str, value: FieldValue<'_>, opts: FieldOptions) -> Result<String> {
        let mut out = PREFIX.to_vec();
        match write_field(&mut out, k, value, opts) {
            Ok(()) => Ok(String::from_utf8(out[PREFIX.len()..].to_vec()).unwrap()),
            Err(e) => {
                assert_eq!(out, PREFIX, "error must leave out as it was");
                Err(e)
            }
        }
    }

    fn f(k: &str, value: FieldValue<'_>) -> String {
        fld(k, value, FieldOptions::default()).unwrap()
    }

    fn float(v: f64) -> String {
        let mut out = Vec::new();
        write_float(&mut out, v).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn input_err(r: Result<String>) -> String {
        match r {
            Err(Error::InvalidInput(m)) => m,
            other => panic!("expected InvalidInput, got {other:?}"),
        }
    }

    fn value_err(r: Result<String>) -> String {
        match r {
            Err(Error::InvalidValue(m)) => m,
            other => panic!("expected InvalidValue, got {other:?}"),
        }
    }

    const UINT_AS_INT: FieldOptions = FieldOptions {
        uint_as_int: true,
        dialect: Dialect::Go,
        series_key_len: 0,
    };

    // ---- InfluxDB's limits ----

    #[test]
    fn series_key_and_field_key_stay_within_influxdbs_key_limit() {
        // InfluxDB 1.6.7/1.8.10 take `k`*65530 + ` f=1` and refuse a 2-byte field key there.
        let m = "k".repeat(65530);
        assert_eq!(key(&m, &[]).unwrap().len(), 65530);
        let m_tagged = key("m", &[("t", &"x".repeat(1 << 20))]);
        assert!(input_err(m_tagged).contains("max key length exceeded"));
        let at = |series_key_len| FieldOptions {
            series_key_len,
            ..FieldOptions::default()
        };
        assert!(fld("f", FieldValue::Float(1.0), at(65530)).is_ok());
        let e = input_err(fld("ff", FieldValue::Float(1.0), at(65530)));
        assert!(e.contains("max key length exceeded"), "{e}");
        // The escaped length counts: `a b` is written `a\ b`.
        assert!(fld("a b", FieldValue::Float(1.0), at(65531 - 4)).is_ok());
        assert!(fld("a b", FieldValue::Float(1.0), at(65531 - 3)).is_err());
        // A 70 kB field key alone.
        let long = "f".repeat(70_000);
        assert!(
            input_err(fld(&long, FieldValue::Int(1), FieldOptions::default()))
                .contains("max key length exceeded")
        );
    }

    #[test]
    fn timestamps_outside_influxdbs_range_are_refused() {
        use crate::model::Precision::*;
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
            assert!(
                matches!(check_timestamp(ts, Ns), Err(Error::InvalidValue(_))),
                "{ts}"
            );
        }
        assert!(check_timestamp(i64::MIN + 2, Ns).is_ok());
        assert!(check_timestamp(i64::MAX - 1, Ns).is_ok());
        // Floored to ms or s, the earliest ns fall off the range.
        assert!(check_timestamp(i64::MIN + 2, Ms).is_err());
        assert!(check_timestamp(i64::MAX - 1, S).is_ok());
        assert!(check_timestamp(1_700_000_000_000_000_000, S).is_ok());
    }

    // ---- series keys ----

    #[test]
    fn series_key_plain() {
        assert_eq!(key("cpu", &[]).unwrap(), "cpu");
        assert_eq!(
            key("http_req", &[("method", "GET"), ("status", "200")]).unwrap(),
            "http_req,method=GET,status=200"
        );
    }

    #[test]
    fn series_key_appends() {
        let mut out = b"x".to_vec();
        write_series_key(&mut out, "m", &[("a", "1")], Dialect::Go).unwrap();
        assert_eq!(out, b"xm,a=1");
    }

    #[test]
    fn series_key_escapes_each_part_by_its_rules() {
        assert_eq!(
            key("my m,e=s", &[("k e,y=", "v a,l=ue")]).unwrap(),
            "my\\ m\\,e=s,k\\ e\\,y\\==v\\ a\\,l\\=ue"
        );
        assert_eq!(
            key("m", &[("url", "/a?b=c&d=e f")]).unwrap(),
            "m,url=/a?b\\=c&d\\=e\\ f"
        );
        assert_eq!(
            key("m\tx", &[("k\t", "a\r\u{c}")]).unwrap(),
            "m\tx,k\t=a\r\u{c}"
        );
    }

    #[test]
    fn series_key_nasty_names() {
        assert_eq!(
            key("Zürich ✓", &[("city", "Zürich ✓"), ("q", "\"quoted\"")]).unwrap(),
            "Zürich\\ ✓,city=Zürich\\ ✓,q=\"quoted\""
        );
        assert_eq!(
            key("C:\\path", &[("dir", "C:\\Program Files\\x")]).unwrap(),
            "C:\\path,dir=C:\\Program\\ Files\\x"
        );
        assert_eq!(
            key("m", &[("a\\,b", "x\\ y"), ("c", "#not a comment")]).unwrap(),
            "m,a\\\\,b=x\\\\ y,c=#not\\ a\\ comment"
        );
        assert!(input_err(key("m", &[("k", "line1\nline2")])).contains("newline"));
    }

    #[test]
    fn empty_tag_values_are_skipped() {
        assert_eq!(
            key("m", &[("a", ""), ("b", "1"), ("c", "")]).unwrap(),
            "m,b=1"
        );
        assert_eq!(key("m", &[("a", "")]).unwrap(), "m");
    }

    #[test]
    fn empty_measurement_is_refused() {
        assert_eq!(input_err(key("", &[])), "measurement is empty");
        assert_eq!(
            input_err(key("\\\\", &[("a", "1")])),
            "measurement \"\\\\\\\\\" ends with a backslash, which InfluxDB 1.x/2.x cannot store"
        );
    }

    #[test]
    fn comment_measurement_is_refused() {
        let m = input_err(key("#cpu", &[]));
        assert!(m.contains("\"#cpu\"") && m.contains("comment"), "{m}");
        assert_eq!(key("c#pu", &[]).unwrap(), "c#pu");
    }

    #[test]
    fn empty_tag_key_is_refused() {
        assert_eq!(input_err(key("m", &[("", "v")])), "tag key is empty");
        assert_eq!(input_err(key("m", &[("", "")])), "tag key is empty");
        let m = input_err(key("m", &[("\\", "v"), ("a", "1")]));
        assert!(m.contains("ends with a backslash"), "{m}");
    }

    #[test]
    fn reserved_tag_keys_are_refused() {
        for k in ["_field", "_measurement", "time"] {
            assert_eq!(
                input_err(key("m", &[(k, "v")])),
                format!("tag key {k:?} is reserved by InfluxDB")
            );
        }
        assert!(input_err(key("m", &[("time\\", "v")])).contains("backslash"));
        assert_eq!(
            key("m", &[("Time", "v"), ("times", "x")]).unwrap(),
            "m,Time=v,times=x"
        );
    }

    #[test]
    fn duplicate_tag_keys_are_refused() {
        assert_eq!(
            input_err(key("m", &[("a", "1"), ("a", "2")])),
            "duplicate tag key \"a\""
        );
        assert!(input_err(key("m", &[("a", "1"), ("a", "")])).contains("duplicate"));
        // Nothing is trimmed any more: keys that differ in a byte are different tags.
        assert_eq!(
            key("m", &[("a", "1"), ("a ", "2"), ("a\\b", "3")]).unwrap(),
            "m,a=1,a\\ =2,a\\b=3"
        );
    }

    #[test]
    fn control_characters_are_written_raw_except_newlines() {
        assert_eq!(
            key("m\u{1}", &[("a\u{7f}", "v\u{0}")]).unwrap(),
            "m\u{1},a\u{7f}=v\u{0}"
        );
        assert_eq!(
            input_err(key("m", &[("a", "1"), ("b", "v\n")])),
            "tag value \"v\\n\" contains a newline, which InfluxDB 1.x/2.x cannot store"
        );
        // A bad key is reported even when its value is skipped.
        assert!(input_err(key("m", &[("a\n", "")])).contains("newline"));
    }

    #[test]
    fn keys_the_go_line_splitter_would_misread_are_refused() {
        // `a\ b` then `c\=d`: the splitter sees one '=' too many (see `go_key_splits_cleanly`).
        let m = input_err(key("m", &[("t", "a\\ b"), ("u", "c\\=d")]));
        assert!(m.contains("split its line"), "{m}");
        // The k6 group ` \ ` alone is fine.
        assert_eq!(
            key("m", &[("group", "a \\ b"), ("u", "v")]).unwrap(),
            "m,group=a\\ \\\\ b,u=v"
        );
        // 3.x doubles the backslash, so nothing misaligns.
        let mut out = Vec::new();
        write_series_key(
            &mut out,
            "m",
            &[("t", "a\\ b"), ("u", "c\\=d")],
            Dialect::V3,
        )
        .unwrap();
        assert_eq!(out, b"m,t=a\\\\\\ b,u=c\\\\\\=d");
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "sorted")]
    fn unsorted_tags_trip_the_debug_assert() {
        let _ = key("m", &[("b", "1"), ("a", "2")]);
    }

    // ---- fields ----

    #[test]
    fn field_types() {
        assert_eq!(f("value", FieldValue::Float(1.0)), "value=1.0");
        assert_eq!(f("value", FieldValue::Float(-2.5)), "value=-2.5");
        assert_eq!(f("n", FieldValue::Int(0)), "n=0i");
        assert_eq!(f("n", FieldValue::Int(-42)), "n=-42i");
        assert_eq!(f("n", FieldValue::Int(i64::MIN)), "n=-9223372036854775808i");
        assert_eq!(f("n", FieldValue::Int(i64::MAX)), "n=9223372036854775807i");
        assert_eq!(f("u", FieldValue::UInt(7)), "u=7u");
        assert_eq!(f("ok", FieldValue::Bool(true)), "ok=true");
        assert_eq!(f("ok", FieldValue::Bool(false)), "ok=false");
        assert_eq!(f("s", FieldValue::Str("hi")), "s=\"hi\"");
        assert_eq!(f("s", FieldValue::Str("")), "s=\"\"");
        assert_eq!(f("s", FieldValue::Str("true")), "s=\"true\"");
    }

    #[test]
    fn field_appends() {
        let mut out = b"m,a=1 x=1i,".to_vec();
        write_field(
            &mut out,
            "y",
            FieldValue::Bool(true),
            FieldOptions::default(),
        )
        .unwrap();
        assert_eq!(out, b"m,a=1 x=1i,y=true");
    }

    #[test]
    fn unsigned_max_under_both_options() {
        assert_eq!(
            f("u", FieldValue::UInt(u64::MAX)),
            "u=18446744073709551615u"
        );
        let m = value_err(fld("u", FieldValue::UInt(u64::MAX), UINT_AS_INT));
        assert!(
            m.contains("\"u\"") && m.contains("18446744073709551615"),
            "{m}"
        );
        let above = i64::MAX as u64 + 1;
        assert!(value_err(fld("u", FieldValue::UInt(above), UINT_AS_INT))
            .contains("9223372036854775808"));
        assert_eq!(
            fld("u", FieldValue::UInt(i64::MAX as u64), UINT_AS_INT).unwrap(),
            "u=9223372036854775807i"
        );
        assert_eq!(fld("u", FieldValue::UInt(0), UINT_AS_INT).unwrap(), "u=0i");
        // The option only changes unsigned values.
        assert_eq!(fld("n", FieldValue::Int(-1), UINT_AS_INT).unwrap(), "n=-1i");
    }

    #[test]
    fn field_key_escaping() {
        assert_eq!(f("a b,c=d", FieldValue::Int(1)), "a\\ b\\,c\\=d=1i");
        assert_eq!(f("Zürich ✓", FieldValue::Int(1)), "Zürich\\ ✓=1i");
        assert_eq!(f("a\\b", FieldValue::Int(1)), "a\\b=1i");
        assert_eq!(f("a\tb", FieldValue::Int(1)), "a\tb=1i");
        // 1.x/2.x drop a backslash before '"' in a field key, 3.x keeps it.
        assert_eq!(f("\"q\"", FieldValue::Int(1)), "\\\"q\\\"=1i");
        let v3 = FieldOptions {
            dialect: Dialect::V3,
            ..FieldOptions::default()
        };
        assert_eq!(fld("\"q\"", FieldValue::Int(1), v3).unwrap(), "\"q\"=1i");
        assert_eq!(fld("a\\b", FieldValue::Int(1), v3).unwrap(), "a\\\\b=1i");
    }

    #[test]
    fn string_field_escaping() {
        assert_eq!(
            f("msg", FieldValue::Str("say \"hi\" to C:\\dir\\")),
            "msg=\"say \\\"hi\\\" to C:\\\\dir\\\\\""
        );
        assert_eq!(f("msg", FieldValue::Str("a,b=c d")), "msg=\"a,b=c d\"");
        assert_eq!(f("msg", FieldValue::Str("l1\nl2\tx")), "msg=\"l1\nl2\tx\"");
        assert_eq!(f("msg", FieldValue::Str("Zürich ✓")), "msg=\"Zürich ✓\"");
    }

    #[test]
    fn string_field_size_limit() {
        let max = "x".repeat(MAX_STRING_FIELD);
        let s = fld("s", FieldValue::Str(&max), FieldOptions::default()).unwrap();
        assert_eq!(s.len(), MAX_STRING_FIELD + 4);
        let over = "x".repeat(MAX_STRING_FIELD + 1);
        let m = value_err(fld("s", FieldValue::Str(&over), FieldOptions::default()));
        assert_eq!(
            m,
            "string field \"s\" is 65537 bytes, more than the 65536 InfluxDB takes"
        );
    }

    #[test]
    fn bad_field_keys_are_refused() {
        let d = FieldOptions::default();
        assert_eq!(
            input_err(fld("", FieldValue::Int(1), d)),
            "field key is empty"
        );
        assert!(input_err(fld("\\\\", FieldValue::Int(1), d)).contains("ends with a backslash"));
        for k in ["time", "_field", "_measurement"] {
            assert_eq!(
                input_err(fld(k, FieldValue::Float(1.0), d)),
                format!("field key {k:?} is reserved by InfluxDB")
            );
        }
        assert!(input_err(fld("k\n", FieldValue::Int(1), d)).contains("newline"));
        // The key is judged before the value.
        assert!(matches!(
            fld("", FieldValue::Float(f64::NAN), d),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn non_finite_field_values_are_refused() {
        for (v, shown) in [
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            let m = value_err(fld("v", FieldValue::Float(v), FieldOptions::default()));
            assert_eq!(
                m,
                format!("field \"v\" is {shown}; InfluxDB rejects NaN and infinities")
            );
        }
    }

    // ---- floats and timestamps ----

    #[test]
    fn float_forms() {
        assert_eq!(float(1.0), "1.0");
        assert_eq!(float(0.0), "0.0");
        assert_eq!(float(-0.0), "-0.0");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(123.456), "123.456");
        assert_eq!(float(1e16), "1e16");
        assert_eq!(float(1.5e-7), "1.5e-7");
        assert_eq!(float(-1.2e78), "-1.2e78");
        assert_eq!(float(f64::MAX), "1.7976931348623157e308");
        assert_eq!(float(f64::MIN), "-1.7976931348623157e308");
        assert_eq!(float(f64::MIN_POSITIVE), "2.2250738585072014e-308");
        assert_eq!(float(5e-324), "5e-324");
    }

    #[test]
    fn floats_round_trip() {
        for v in [
            1.0,
            1e16,
            1.5e-7,
            -0.0,
            f64::MAX,
            5e-324,
            0.1 + 0.2,
            1.0 / 3.0,
        ] {
            let s = float(v);
            assert_eq!(s.parse::<f64>().unwrap().to_bits(), v.to_bits(), "{s}");
            // Both the Go scanner and the 3.x grammar need digits on both sides of a point.
            assert!(
                !s.starts_with('.') && !s.ends_with('.') && !s.contains(".e"),
                "{s}"
            );
        }
    }

    #[test]
    fn write_float_refuses_non_finite_and_leaves_out() {
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let mut out = b"v=".to_vec();
            assert!(matches!(
                write_float(&mut out, v),
                Err(Error::InvalidValue(_))
            ));
            assert_eq!(out, b"v=");
        }
        let mut out = Vec::new();
        let e = write_float(&mut out, f64::NAN).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid value: float NaN is not finite; InfluxDB rejects NaN and infinities"
        );
    }

    #[test]
    fn timestamps() {
        for (ts, want) in [
            (0, "0"),
            (1_700_000_000_000_000_000, "1700000000000000000"),
            (-1, "-1"),
            (i64::MAX, "9223372036854775807"),
            (i64::MIN, "-9223372036854775808"),
        ] {
            let mut out = b"m v=1 ".to_vec();
            write_timestamp(&mut out, ts);
            assert_eq!(out, format!("m v=1 {want}").as_bytes());
        }
    }

    #[test]
    fn whole_line() {
        let mut out = Vec::new();
        write_series_key(
            &mut out,
            "http req",
            &[("name", "GET /a b"), ("status", "200")],
            Dialect::Go,
        )
        .unwrap();
        out.push(b' ');
        write_field(
            &mut out,
            "value",
            FieldValue::Float(12.5),
            FieldOptions::default(),
        )
        .unwrap();
        out.push(b',');
        write_field(
            &mut out,
            "err",
            FieldValue::Str("x\"y"),
            FieldOptions::default(),
        )
        .unwrap();
        out.push(b' ');
        write_timestamp(&mut out, 1_700_000_000_000_000_000);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "http\\ req,name=GET\\ /a\\ b,status=200 value=12.5,err=\"x\\\"y\" 1700000000000000000"
        );
    }

    fn ryu_text(v: f64) -> String {
        ryu::Buffer::new().format_finite(v).to_string()
    }

    fn ours(v: f64) -> String {
        let mut out = b"x".to_vec();
        write_float(&mut out, v).unwrap();
        String::from_utf8(out[1..].to_vec()).unwrap()
    }

    #[test]
    fn floats_are_written_exactly_as_ryu_writes_them() {
        let mut rng = fastrand::Rng::with_seed(0x5eed);
        let check = |v: f64| {
            if v.is_finite() {
                assert_eq!(ours(v), ryu_text(v), "{v:e} (bits {:#x})", v.to_bits());
            }
        };
        for _ in 0..50_000 {
            let m = rng.u64(..);
            // k6 milliseconds (ns / 1e6), integers, small and large decimals, any double.
            for v in [
                (m % 1_000_000_000_000_000) as f64 / 1e6,
                (m % 100_000_000) as f64 / 1e6,
                (m % 10_000) as f64 / 1e6,
                (m % 2_000_000_000) as f64,
                (m % 1_000_000_000) as f64 / 1e3 + 0.5,
                f64::from_bits(m),
            ] {
                check(v);
                check(-v);
            }
        }
        for x in (0..200_000u64).chain(999_999_000_000_000..999_999_000_010_000) {
            check(x as f64 / 1e6);
        }
        for v in [
            0.0,
            1e-5,
            1e-6,
            9e-6,
            1.5e-5,
            0.1,
            0.2,
            0.3,
            1.0 / 3.0,
            1.0,
            100.0,
            123456.789012,
            999_999_999.999_999,
            1e9,
            1e15,
            1e16,
            1e17,
            f64::MIN_POSITIVE,
            5e-324,
            f64::MAX,
        ] {
            for w in [
                v,
                f64::from_bits(v.to_bits() + 1),
                f64::from_bits(v.to_bits().max(1) - 1),
            ] {
                check(w);
                check(-w);
            }
        }
    }

    #[test]
    fn integers_and_timestamps_are_written_exactly_as_itoa_writes_them() {
        let mut rng = fastrand::Rng::with_seed(0x1d);
        let itoa_text = |v: i64| itoa::Buffer::new().format(v).to_string();
        let check = |v: i64| {
            let mut ts = Vec::new();
            write_timestamp(&mut ts, v);
            assert_eq!(String::from_utf8(ts).unwrap(), itoa_text(v));
            assert_eq!(f("n", FieldValue::Int(v)), format!("n={}i", itoa_text(v)));
        };
        for _ in 0..100_000 {
            let m = rng.u64(..);
            for v in [
                m as i64,
                (m % 100_000_000) as i64,
                (m % 1000) as i64,
                -((m % 1000) as i64),
                1_000_000_000_000_000_000 + (m % 8_000_000_000_000_000_000) as i64,
            ] {
                check(v);
            }
        }
        for v in [
            i64::MIN,
            i64::MIN + 1,
            -1,
            0,
            9,
            10,
            99_999_999,
            100_000_000,
            999_999_999_999_999_999,
            1_000_000_000_000_000_000,
            i64::MAX,
        ] {
            check(v);
        }
    }

    #[test]
    fn short_keys_take_the_fast_path_only_when_the_general_one_agrees() {
        let general = |key: &str| -> Result<String> {
            let mut out = Vec::new();
            check_key(key, Element::FieldKey)?;
            escape_identifier(&mut out, key, Element::FieldKey, Dialect::Go)?;
            out.extend_from_slice(b"=1i");
            Ok(String::from_utf8(out).unwrap())
        };
        let alphabet = [
            "a",
            "Z",
            "_",
            "0",
            " ",
            ",",
            "=",
            "\\",
            "\"",
            "\t",
            "\n",
            "\u{1}",
            "\u{7f}",
            "é",
            "✓",
            "time",
            "_field",
            "_measurement",
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let key: String = (0..rng.usize(0..5))
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect();
            let ours = fld(&key, FieldValue::Int(1), FieldOptions::default());
            assert_eq!(ours, general(&key), "key {key:?}");
        }
    }
}
