//! The relay's line-protocol parser (`src/lineproto/parse.rs`) and forwarding
//! (`src/lineproto/forward.rs`) on arbitrary request bodies.
//!
//! Input: one options byte (request precision, sink precision, dialect, 1.x unsigned rewrite,
//! global tags), then the body. Besides "no panic, no sanitizer report", it checks what the
//! relay relies on:
//! - line numbers increase;
//! - a valid line parses alike again from its own text, and its `through_timestamp()` (what is
//!   forwarded untouched) is a valid line with the same key, fields and timestamp;
//! - every line `Forward::write` emits is one valid line again, with the same measurement and
//!   the timestamp `Forward::timestamp` gave, in the sink's precision (a forwarded line that
//!   InfluxDB would refuse or split would be data lost after a 204).
#![no_main]

use libfuzzer_sys::fuzz_target;
use perfsink::lineproto::escape::Element;
use perfsink::lineproto::{
    lines, parse_line, refusal, unescape_identifier, Dialect, FieldOptions, Forward, InputPrecision,
};
use perfsink::Precision;

const INPUTS: [InputPrecision; 6] = [
    InputPrecision::Ns,
    InputPrecision::Us,
    InputPrecision::Ms,
    InputPrecision::S,
    InputPrecision::M,
    InputPrecision::H,
];
const OUTPUTS: [Precision; 3] = [Precision::Ns, Precision::Ms, Precision::S];

/// 2023-11-14T22:13:20.123456789Z: the receive time of the request.
const RECEIVED_NS: i64 = 1_700_000_000_123_456_789;

fn global_tags(choice: u8) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = match choice % 3 {
        0 => &[],
        1 => &[("host", "fuzz-1")],
        // Sorted by key, as `Config::global_tags` are; escapes needed in both.
        _ => &[("a", "x=1"), ("region", "eu west,1"), ("zz", "z")],
    };
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn as_input(p: Precision) -> InputPrecision {
    match p {
        Precision::Ns => InputPrecision::Ns,
        Precision::Ms => InputPrecision::Ms,
        Precision::S => InputPrecision::S,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&opts, body)) = data.split_first() else {
        return;
    };
    let input = INPUTS[(opts % 6) as usize];
    let output = OUTPUTS[((opts / 6) % 3) as usize];
    let dialect = if opts & 0x20 != 0 {
        Dialect::V3
    } else {
        Dialect::Go
    };
    let field_options = FieldOptions {
        uint_as_int: opts & 0x40 != 0,
        dialect,
        ..Default::default()
    };
    let tags = global_tags(opts >> 7 | (opts >> 3 & 2));
    let forward = Forward::new(input, output, RECEIVED_NS, &tags, field_options);

    let mut out = Vec::new();
    let mut last_number = 0;
    for (number, item) in lines(body) {
        assert!(
            number > last_number,
            "line numbers go back: {number} after {last_number}"
        );
        last_number = number;
        let p = match item {
            Ok(p) => p,
            Err(e) => {
                let _ = e.to_string();
                let _ = refusal(e.text, &e.error);
                continue;
            }
        };

        // The accessors stay inside the line (a bad range panics here).
        let _ = (p.key(), p.measurement(), p.fields(), p.timestamp_bytes());
        let _ = (p.tags_sorted(), p.has_unsigned(), p.longest_field_key());
        let _ = unescape_identifier(p.measurement(), Element::Measurement, dialect);
        for (k, v) in p.tags() {
            let _ = unescape_identifier(k, Element::TagKey, dialect);
            let _ = unescape_identifier(v, Element::TagValue, dialect);
        }
        let fields = p.field_iter().count();
        assert!(fields > 0, "a valid line without fields: {:?}", p.line());
        for (k, _, _) in p.field_iter() {
            let _ = unescape_identifier(k, Element::FieldKey, dialect);
        }
        if let Some(ts) = p.timestamp() {
            for precision in INPUTS {
                let _ = precision.to_ns(ts);
            }
        }

        let again = parse_line(p.line());
        assert_eq!(
            again,
            Ok(p),
            "a valid line parses differently from its own text"
        );
        let through = parse_line(p.through_timestamp())
            .unwrap_or_else(|e| panic!("through_timestamp() of {:?} is refused: {e}", p.line()));
        assert_eq!(
            (through.key(), through.fields(), through.timestamp()),
            (p.key(), p.fields(), p.timestamp()),
            "through_timestamp() reads differently"
        );

        // What the relay hands to the sink.
        let Ok(ts) = forward.timestamp(&p) else {
            continue;
        };
        out.clear();
        if forward.write(&mut out, &p).is_err() {
            assert!(out.is_empty(), "a refused line left bytes behind");
            continue;
        }
        assert_eq!(out.last(), Some(&b'\n'));
        let mut forwarded = lines(&out);
        let (_, again) = forwarded.next().expect("a forwarded line reads as no line");
        let again = again.unwrap_or_else(|e| {
            panic!(
                "the forwarded line {:?} (of {:?}) is refused: {}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(p.line()),
                e.error
            )
        });
        assert!(
            forwarded.next().is_none(),
            "a forwarded line reads as two: {out:?}"
        );
        assert_eq!(again.measurement(), p.measurement());
        assert_eq!(again.field_iter().count(), fields);
        assert_eq!(again.timestamp(), Some(ts));
        assert!(
            as_input(output).to_ns(ts).is_some(),
            "forwarded timestamp out of range"
        );
        let own_tags = p.tags().count();
        assert!(again.tags().count() >= own_tags, "forwarding lost a tag");
    }
});
