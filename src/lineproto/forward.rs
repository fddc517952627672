//! Forwarding of parsed lines (the relay): a valid line is copied as it came, with its
//! timestamp rescaled from the request's precision to the sink's, a receive-time timestamp
//! added when it has none, the sink's global tags merged into its tag set, and (for 1.x
//! targets) unsigned fields written as integers, as the encoder does.
//!
//! The client's escaping is kept as it is: a client writes line protocol for the server it
//! believes it talks to, and the relay cannot tell from a line which dialect its author had
//! in mind. Lines without a backslash in their names mean the same on every server; a line
//! written with 1.x escapes (`a\\,b` for the tag value `a\,b`) and forwarded to a 3.x target
//! is read by 3.x's rules (there `\\` is one backslash and the `,` splits the tag), so clients
//! of a relay in front of 3.x must escape for 3.x. Only the global tags the relay adds are
//! escaped, for the target's dialect.

use super::encode::{write_timestamp, FieldOptions};
use super::escape::{escape_identifier, Element};
use super::limits::{key_fits, timestamp_fits};
use super::parse::{parse_i64, reason, InputPrecision, ParsedLine, ValueKind};
use crate::model::Precision;

/// How lines of one request are rewritten for the sink.
#[derive(Debug, Clone)]
pub struct Forward {
    input: InputPrecision,
    output: Precision,
    /// The request's timestamps are already in the sink's precision.
    same_unit: bool,
    /// Timestamp of lines without one: the receive time, truncated to the request's precision
    /// as the servers do, in the sink's precision.
    default_ts: i64,
    /// Global tags, escaped, sorted by escaped key (the order InfluxDB sorts keys in).
    tags: Vec<(Vec<u8>, Vec<u8>)>,
    uint_as_int: bool,
}

impl Forward {
    /// `received_ns` stamps lines without a timestamp. `global_tags` are the sink's
    /// (`Config::global_tags`: checked, sorted, no empty values), escaped for `opts.dialect`; a
    /// tag that cannot be escaped (which the configuration refuses) is left out.
    pub fn new(
        input: InputPrecision,
        output: Precision,
        received_ns: i64,
        global_tags: &[(String, String)],
        opts: FieldOptions,
    ) -> Forward {
        let mut tags: Vec<(Vec<u8>, Vec<u8>)> = global_tags
            .iter()
            .filter_map(|(k, v)| {
                let (mut key, mut value) = (Vec::new(), Vec::new());
                escape_identifier(&mut key, k, Element::TagKey, opts.dialect).ok()?;
                escape_identifier(&mut value, v, Element::TagValue, opts.dialect).ok()?;
                (!key.is_empty() && !value.is_empty()).then_some((key, value))
            })
            .collect();
        tags.sort();
        tags.dedup_by(|a, b| a.0 == b.0);
        Forward {
            input,
            output,
            same_unit: input.unit_ns() == output.unit_ns(),
            default_ts: output.from_ns(input.truncate_ns(received_ns)),
            tags,
            uint_as_int: opts.uint_as_int,
        }
    }

    /// Appends `line` as the sink writes it, ending in `\n`. On error (timestamp out of range,
    /// an unsigned value a 1.x server cannot take) `out` is left as it was.
    #[inline]
    pub fn write(&self, out: &mut Vec<u8>, line: &ParsedLine<'_>) -> Result<(), &'static str> {
        let ts = self.timestamp(line)?;
        self.write_at(out, line, ts, false)
    }

    /// The line's timestamp in the sink's precision (the receive time when it has none).
    #[inline]
    pub fn timestamp(&self, line: &ParsedLine<'_>) -> Result<i64, &'static str> {
        Ok(match line.timestamp() {
            Some(ts) => {
                let ns = self.input.to_ns(ts).ok_or(reason::TIME_RANGE)?;
                if self.same_unit {
                    ts
                } else {
                    // Rounded down to a coarser unit, 1677-09-21 can fall off the range.
                    let out = self.output.from_ns(ns);
                    if !timestamp_fits(out, self.output.unit_ns()) {
                        return Err(reason::TIME_RANGE);
                    }
                    out
                }
            }
            None => self.default_ts,
        })
    }

    /// `write` with the timestamp `ts` (from `timestamp`, or moved by the de-duplication:
    /// `moved`).
    #[inline]
    pub fn write_at(
        &self,
        out: &mut Vec<u8>,
        line: &ParsedLine<'_>,
        ts: i64,
        moved: bool,
    ) -> Result<(), &'static str> {
        let rewrite_fields = self.uint_as_int && line.has_unsigned();
        if self.tags.is_empty()
            && !rewrite_fields
            && self.same_unit
            && !moved
            && line.timestamp().is_some()
        {
            out.extend_from_slice(line.through_timestamp());
            out.push(b'\n');
            return Ok(());
        }
        let start = out.len();
        if self.tags.is_empty() {
            out.extend_from_slice(line.key());
        } else {
            self.write_key(out, line);
            // The parser checked the line's own key; the global tags lengthen it.
            if !key_fits(out.len() - start, line.longest_field_key()) {
                out.truncate(start);
                return Err(reason::KEY_TOO_LONG);
            }
        }
        out.push(b' ');
        if rewrite_fields {
            if let Err(e) = write_fields_as_int(out, line) {
                out.truncate(start);
                return Err(e);
            }
        } else {
            out.extend_from_slice(line.fields());
        }
        out.push(b' ');
        write_timestamp(out, ts);
        out.push(b'\n');
        Ok(())
    }

    /// The measurement and the line's tags with the global tags merged in: each global tag
    /// goes before the first line tag with a greater key, unless the line has its own tag of
    /// that key (the line's wins, as for series registered through the API).
    fn write_key(&self, out: &mut Vec<u8>, line: &ParsedLine<'_>) {
        out.extend_from_slice(line.measurement());
        // Bit `g`: the line has its own tag with the key of global tag `g` (one pass over
        // the line's tags; past 64 global tags, a pass per global tag).
        let mut own = 0u64;
        if self.tags.len() <= 64 {
            for (k, _) in line.tags() {
                if let Ok(g) = self.tags.binary_search_by(|t| t.0.as_slice().cmp(k)) {
                    own |= 1 << g;
                }
            }
        }
        let has = |g: usize| {
            if self.tags.len() <= 64 {
                own & (1 << g) != 0
            } else {
                line.tags().any(|(k, _)| k == self.tags[g].0.as_slice())
            }
        };
        let mut next = 0;
        let mut pending = |out: &mut Vec<u8>, below: Option<&[u8]>| {
            while let Some((k, v)) = self.tags.get(next) {
                if below.is_some_and(|b| k.as_slice() >= b) {
                    break;
                }
                if !has(next) {
                    out.push(b',');
                    out.extend_from_slice(k);
                    out.push(b'=');
                    out.extend_from_slice(v);
                }
                next += 1;
            }
        };
        for (k, v) in line.tags() {
            pending(out, Some(k));
            out.push(b',');
            out.extend_from_slice(k);
            out.push(b'=');
            out.extend_from_slice(v);
        }
        pending(out, None);
    }
}

/// The field set with `123u` written as `123i` (1.x has no unsigned type; the encoder writes
/// unsigned values as integers for v1 targets too).
#[cold]
fn write_fields_as_int(out: &mut Vec<u8>, line: &ParsedLine<'_>) -> Result<(), &'static str> {
    for (i, (key, value, kind)) in line.field_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(key);
        out.push(b'=');
        if kind == ValueKind::UInt {
            let digits = &value[..value.len() - 1];
            if parse_i64(digits).is_none() {
                return Err(
                    "unsigned value above the integer maximum 9223372036854775807 \
                     (InfluxDB 1.x has no unsigned type; it is written as an integer)",
                );
            }
            out.extend_from_slice(digits);
            out.push(b'i');
        } else {
            out.extend_from_slice(value);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineproto::parse::parse_line;

    const T: i64 = 1_700_000_000_123_456_789;

    fn fwd(input: InputPrecision, output: Precision, tags: &[(&str, &str)], v1: bool) -> Forward {
        let tags: Vec<(String, String)> = tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = FieldOptions {
            uint_as_int: v1,
            ..Default::default()
        };
        Forward::new(input, output, T, &tags, opts)
    }

    fn run(f: &Forward, line: &str) -> Result<String, &'static str> {
        let p = parse_line(line.as_bytes()).unwrap();
        let mut out = b"before\n".to_vec();
        match f.write(&mut out, &p) {
            Ok(()) => Ok(String::from_utf8(out[7..].to_vec()).unwrap()),
            Err(e) => {
                assert_eq!(out, b"before\n");
                Err(e)
            }
        }
    }

    #[test]
    fn same_precision_copies_the_line() {
        let f = fwd(InputPrecision::Ns, Precision::Ns, &[], false);
        assert_eq!(run(&f, "m,t=a v=1 5").unwrap(), "m,t=a v=1 5\n");
        assert_eq!(run(&f, "m,t=a  v=1   5   ").unwrap(), "m,t=a  v=1   5\n");
        let f = fwd(InputPrecision::Ms, Precision::Ms, &[], false);
        assert_eq!(run(&f, "m v=1 5").unwrap(), "m v=1 5\n");
    }

    #[test]
    fn timestamps_are_rescaled_to_the_sink_precision() {
        use InputPrecision as I;
        for (input, ts, output, want) in [
            (I::S, "1700000000", Precision::Ns, "1700000000000000000"),
            (I::Ms, "1700000000123", Precision::Ns, "1700000000123000000"),
            (
                I::Us,
                "1700000000123456",
                Precision::Ns,
                "1700000000123456000",
            ),
            (I::M, "28333333", Precision::Ns, "1699999980000000000"),
            (I::H, "472222", Precision::Ns, "1699999200000000000"),
            (I::Ns, "1700000000123456789", Precision::Ms, "1700000000123"),
            (I::Ns, "1700000000123456789", Precision::S, "1700000000"),
            (I::Us, "-1", Precision::Ms, "-1"),
            (I::S, "-1", Precision::Ms, "-1000"),
        ] {
            let f = fwd(input, output, &[], false);
            assert_eq!(
                run(&f, &format!("m v=1 {ts}")).unwrap(),
                format!("m v=1 {want}\n")
            );
        }
        let f = fwd(InputPrecision::S, Precision::Ns, &[], false);
        assert_eq!(run(&f, "m v=1 10000000000"), Err(reason::TIME_RANGE));
        let f = fwd(InputPrecision::Ns, Precision::Ns, &[], false);
        assert_eq!(
            run(&f, "m v=1 9223372036854775807"),
            Err(reason::TIME_RANGE)
        );
    }

    #[test]
    fn lines_without_timestamp_get_the_receive_time_truncated_to_the_request_precision() {
        let f = fwd(InputPrecision::Ns, Precision::Ns, &[], false);
        assert_eq!(run(&f, "m v=1").unwrap(), format!("m v=1 {T}\n"));
        let f = fwd(InputPrecision::S, Precision::Ns, &[], false);
        assert_eq!(run(&f, "m v=1 ").unwrap(), "m v=1 1700000000000000000\n");
        let f = fwd(InputPrecision::Ns, Precision::Ms, &[], false);
        assert_eq!(run(&f, "m v=1").unwrap(), "m v=1 1700000000123\n");
    }

    #[test]
    fn global_tags_merge_in_order_and_own_tags_win() {
        let f = fwd(
            InputPrecision::Ns,
            Precision::Ns,
            &[("host", "h 1"), ("testid", "t"), ("a", "x")],
            false,
        );
        assert_eq!(
            run(&f, "m v=1 5").unwrap(),
            "m,a=x,host=h\\ 1,testid=t v=1 5\n"
        );
        assert_eq!(
            run(&f, "m,b=1,host=mine,z=2 v=1 5").unwrap(),
            "m,a=x,b=1,host=mine,testid=t,z=2 v=1 5\n"
        );
        // Unsorted tags keep their order; nothing is lost or doubled.
        assert_eq!(
            run(
                &f,
                "jmeter,application=app,transaction=all,statut=all count=1 5"
            )
            .unwrap(),
            "jmeter,a=x,application=app,host=h\\ 1,testid=t,transaction=all,statut=all count=1 5\n"
        );
        let p = parse_line(b"m\\ x,t=a\\,b v=1").unwrap();
        let mut out = Vec::new();
        f.write(&mut out, &p).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            format!("m\\ x,a=x,host=h\\ 1,t=a\\,b,testid=t v=1 {T}\n")
        );
    }

    #[test]
    fn global_tags_count_in_the_key_limit() {
        let f = fwd(InputPrecision::Ns, Precision::Ns, &[("host", "h")], false);
        // 65530 bytes of key with the tag, + 4 + a 1-byte field key: the limit exactly.
        let m = "k".repeat(65530 - ",host=h".len());
        assert!(run(&f, &format!("{m} f=1 5")).is_ok());
        assert_eq!(run(&f, &format!("{m} ff=1 5")), Err(reason::KEY_TOO_LONG));
        let bare = fwd(InputPrecision::Ns, Precision::Ns, &[], false);
        assert!(run(&bare, &format!("{m} ff=1 5")).is_ok());
    }

    #[test]
    fn coarser_output_keeps_the_earliest_timestamps_in_range() {
        let f = fwd(InputPrecision::Ns, Precision::Ms, &[], false);
        // Floored to ms, -9223372036854775806 ns becomes -9223372036855 ms, which scales
        // to before the earliest time InfluxDB takes.
        assert_eq!(
            run(&f, "m v=1 -9223372036854775806"),
            Err(reason::TIME_RANGE)
        );
        assert!(run(&f, "m v=1 -9223372036854000000").is_ok());
    }

    #[test]
    fn many_global_tags() {
        let names: Vec<(String, String)> = (0..70)
            .map(|i| (format!("g{i:02}"), format!("v{i}")))
            .collect();
        let f = Forward::new(
            InputPrecision::Ns,
            Precision::Ns,
            T,
            &names,
            Default::default(),
        );
        let out = run(&f, "m,g05=own,h=1 v=1 5").unwrap();
        assert_eq!(out.matches(",g").count(), 70);
        assert!(out.contains(",g04=v4,g05=own,g06=v6,"), "{out}");
        assert!(out.contains(",g69=v69,h=1 v=1 5\n"), "{out}");
    }

    #[test]
    fn unsigned_fields_for_v1_targets() {
        let v2 = fwd(InputPrecision::Ns, Precision::Ns, &[], false);
        assert_eq!(run(&v2, "m a=1u,b=\"x\" 5").unwrap(), "m a=1u,b=\"x\" 5\n");
        let v1 = fwd(InputPrecision::Ns, Precision::Ns, &[], true);
        assert_eq!(
            run(&v1, "m a=1u,s=\"1u, b=2u\",c=9223372036854775807u 5").unwrap(),
            "m a=1i,s=\"1u, b=2u\",c=9223372036854775807i 5\n"
        );
        assert!(run(&v1, "m a=9223372036854775808u 5")
            .unwrap_err()
            .contains("integer maximum"));
        assert_eq!(run(&v1, "m a=1i 5").unwrap(), "m a=1i 5\n");
    }
}
