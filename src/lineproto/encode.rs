//! Encoding of series keys, fields and timestamps.
use crate::error::{Error, Result};
use crate::model::FieldValue;

use super::escape::{escape_identifier, escape_string_field, show, trim_identifier, Element};

/// Longest string field value InfluxDB takes (64 KiB).
pub const MAX_STRING_FIELD: usize = 64 * 1024;

/// How field values are written for the target server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldOptions {
    /// 1.x rejects the `u` suffix: write unsigned values as `i` (error above i64::MAX).
    pub uint_as_int: bool,
}

/// Appends `measurement[,k=v...]` (no trailing space). `tags` must be sorted by key in byte
/// order; empty values (after trimming) are skipped. Errors: empty measurement, empty tag key,
/// duplicate tag keys, a key named `time`, `_field` or `_measurement`, a forbidden control char.
/// Also a measurement starting with `#`, which the servers would skip as a comment line.
/// On error `out` is left as it was.
pub fn write_series_key(out: &mut Vec<u8>, measurement: &str, tags: &[(&str, &str)]) -> Result<()> {
    debug_assert!(
        tags.windows(2).all(|w| w[0].0 <= w[1].0),
        "tags must be sorted by key"
    );
    let start = out.len();
    let result = series_key(out, measurement, tags);
    if result.is_err() {
        out.truncate(start);
    }
    result
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

/// Appends a finite float with ryu (`1.0`, `1e16`, `1.5e-7`); `Err` for NaN/±Inf.
#[inline]
pub fn write_float(out: &mut Vec<u8>, v: f64) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::InvalidValue(format!(
            "float {v} is not finite; InfluxDB rejects NaN and infinities"
        )));
    }
    out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    Ok(())
}

/// Appends an integer timestamp with itoa.
#[inline]
pub fn write_timestamp(out: &mut Vec<u8>, ts: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
}

fn series_key(out: &mut Vec<u8>, measurement: &str, tags: &[(&str, &str)]) -> Result<()> {
    let m = trim_identifier(measurement);
    if m.is_empty() {
        return Err(empty(Element::Measurement, measurement));
    }
    if m.starts_with('#') {
        // The servers skip any line whose first character is `#`, so the point would vanish
        // without an error, and the Go servers do not unescape `\#`.
        return Err(Error::InvalidInput(format!(
            "measurement {} starts with '#', which line protocol reads as a comment",
            show(measurement)
        )));
    }
    escape_identifier(out, measurement, Element::Measurement)?;
    for (i, &(key, value)) in tags.iter().enumerate() {
        let k = check_key(key, Element::TagKey)?;
        if (i > 0 && tags[i - 1].0 == key) || is_trimmed_duplicate(tags, i, k) {
            return Err(Error::InvalidInput(format!(
                "duplicate tag key {}",
                show(k)
            )));
        }
        let mark = out.len();
        out.push(b',');
        // Escaped even when the value is skipped, so a bad key is reported either way.
        escape_identifier(out, key, Element::TagKey)?;
        if trim_identifier(value).is_empty() {
            out.truncate(mark);
            continue;
        }
        out.push(b'=');
        escape_identifier(out, value, Element::TagValue)?;
    }
    Ok(())
}

/// Whether tag `i`, whose key trims to `k`, collides with another tag only once trailing
/// backslashes are trimmed (`a` and `a\`). Sorting does not make those neighbours, but such
/// keys are rare, so the quadratic scan runs almost never.
fn is_trimmed_duplicate(tags: &[(&str, &str)], i: usize, k: &str) -> bool {
    k.len() != tags[i].0.len()
        && tags
            .iter()
            .enumerate()
            .any(|(j, &(other, _))| j != i && trim_identifier(other) == k)
}

fn field(out: &mut Vec<u8>, key: &str, value: FieldValue<'_>, opts: FieldOptions) -> Result<()> {
    check_key(key, Element::FieldKey)?;
    escape_identifier(out, key, Element::FieldKey)?;
    out.push(b'=');
    match value {
        FieldValue::Float(v) => {
            if !v.is_finite() {
                return Err(Error::InvalidValue(format!(
                    "field {} is {v}; InfluxDB rejects NaN and infinities",
                    show(key)
                )));
            }
            out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
        }
        FieldValue::Int(v) => {
            out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
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
            if s.len() > MAX_STRING_FIELD {
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

/// The trimmed key, or an error if it is empty or a name InfluxDB reserves (1.x rejects
/// `time`; `_field` and `_measurement` collide with the 2.x data model).
#[inline]
fn check_key(key: &str, element: Element) -> Result<&str> {
    let k = trim_identifier(key);
    if k.is_empty() {
        return Err(empty(element, key));
    }
    if matches!(k, "time" | "_field" | "_measurement") {
        return Err(Error::InvalidInput(format!(
            "{} {} is reserved by InfluxDB",
            element.name(),
            show(k)
        )));
    }
    Ok(k)
}

#[cold]
fn empty(element: Element, raw: &str) -> Error {
    Error::InvalidInput(if raw.is_empty() {
        format!("{} is empty", element.name())
    } else {
        format!(
            "{} {} is empty once its trailing backslashes are trimmed",
            element.name(),
            show(raw)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PREFIX: &[u8] = b"earlier line\n";

    fn key(measurement: &str, tags: &[(&str, &str)]) -> Result<String> {
        let mut out = PREFIX.to_vec();
        match write_series_key(&mut out, measurement, tags) {
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

    const UINT_AS_INT: FieldOptions = FieldOptions { uint_as_int: true };

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
        write_series_key(&mut out, "m", &[("a", "1")]).unwrap();
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
            key("m\tx", &[("k\n", "a\r\u{c}")]).unwrap(),
            "m\\tx,k\\n=a\\r\\f"
        );
    }

    #[test]
    fn series_key_nasty_names() {
        assert_eq!(
            key("Zürich ✓", &[("city", "Zürich ✓"), ("q", "\"quoted\"")]).unwrap(),
            "Zürich\\ ✓,city=Zürich\\ ✓,q=\"quoted\""
        );
        assert_eq!(
            key("C:\\path\\", &[("dir", "C:\\Program Files\\")]).unwrap(),
            "C:\\path,dir=C:\\Program\\ Files"
        );
        assert_eq!(
            key("m", &[("a\\,b", "x\\ y"), ("c", "#not a comment")]).unwrap(),
            "m,a\\\\\\,b=x\\\\\\ y,c=#not\\ a\\ comment"
        );
        assert_eq!(
            key("m", &[("k", "line1\nline2")]).unwrap(),
            "m,k=line1\\nline2"
        );
    }

    #[test]
    fn empty_tag_values_are_skipped() {
        assert_eq!(
            key("m", &[("a", ""), ("b", "1"), ("c", "\\\\"), ("d", "\\")]).unwrap(),
            "m,b=1"
        );
        assert_eq!(key("m", &[("a", "")]).unwrap(), "m");
        assert_eq!(key("m", &[("a", "x\\")]).unwrap(), "m,a=x");
    }

    #[test]
    fn empty_measurement_is_refused() {
        assert_eq!(input_err(key("", &[])), "measurement is empty");
        assert_eq!(
            input_err(key("\\\\", &[("a", "1")])),
            "measurement \"\\\\\\\\\" is empty once its trailing backslashes are trimmed"
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
        assert!(m.contains("trailing backslashes"), "{m}");
    }

    #[test]
    fn reserved_tag_keys_are_refused() {
        for k in ["_field", "_measurement", "time"] {
            assert_eq!(
                input_err(key("m", &[(k, "v")])),
                format!("tag key {k:?} is reserved by InfluxDB")
            );
        }
        assert!(input_err(key("m", &[("time\\", "v")])).contains("reserved"));
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
        // Equal only once trimmed, and not neighbours in byte order.
        assert!(
            input_err(key("m", &[("a", "1"), ("a ", "2"), ("a\\", "3")])).contains("duplicate")
        );
        assert!(input_err(key("m", &[("a\\", "1"), ("a\\\\", "2")])).contains("duplicate"));
    }

    #[test]
    fn control_characters_are_refused_everywhere() {
        assert_eq!(
            input_err(key("m\u{0}", &[])),
            "measurement \"m\\0\" contains control character U+0000"
        );
        assert_eq!(
            input_err(key("m", &[("a\u{1}", "v")])),
            "tag key \"a\\u{1}\" contains control character U+0001"
        );
        assert_eq!(
            input_err(key("m", &[("a", "1"), ("b", "v\u{7f}")])),
            "tag value \"v\\u{7f}\" contains control character U+007F"
        );
        // A bad key is reported even when its value is skipped.
        assert!(input_err(key("m", &[("a\u{1b}", "")])).contains("U+001B"));
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
        assert_eq!(f("k\\", FieldValue::Int(1)), "k=1i");
        assert_eq!(f("a\\b", FieldValue::Int(1)), "a\\b=1i");
        assert_eq!(f("a\tb", FieldValue::Int(1)), "a\\tb=1i");
        assert_eq!(f("\"q\"", FieldValue::Int(1)), "\"q\"=1i");
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
        assert!(input_err(fld("\\\\", FieldValue::Int(1), d)).contains("trailing backslashes"));
        for k in ["time", "_field", "_measurement"] {
            assert_eq!(
                input_err(fld(k, FieldValue::Float(1.0), d)),
                format!("field key {k:?} is reserved by InfluxDB")
            );
        }
        assert_eq!(
            input_err(fld("k\u{2}", FieldValue::Int(1), d)),
            "field key \"k\\u{2}\" contains control character U+0002"
        );
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
}
