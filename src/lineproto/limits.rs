//! What InfluxDB refuses inside a line although it is well formed: a series key plus field
//! key over 65535 bytes, a timestamp outside 1677-09-21..2262-04-11, a string value over its
//! documented 64 KiB (`../shared/reference/influx.md` §1.4, §1.7). One pure check each, used by
//! the encoder (`submit`, `record`, series registration) and the relay's parser and forwarder,
//! so a point the server would refuse is refused at submit with a clear error instead.
//! Each check is a compare or two: callers pass lengths they already know.

use std::ops::RangeInclusive;

// Not `pub`: cbindgen would put public constants into the C header.

/// Longest series key plus field key the servers take (`models.MaxKeyLength`).
pub(crate) const MAX_KEY_LENGTH: usize = 65535;
/// What the servers count between the series key and the field key (`seriesKeySize`: the
/// `#!~#` separator of their field index).
const KEY_SEPARATOR: usize = 4;
/// Earliest timestamp the servers take, in ns (`models.MinNanoTime`).
pub(crate) const MIN_NANO_TIME: i64 = i64::MIN + 2;
/// Latest timestamp the servers take, in ns (`models.MaxNanoTime`).
pub(crate) const MAX_NANO_TIME: i64 = i64::MAX - 1;
/// Longest string field value (64 KiB): documented for every server, enforced by 3.x
/// (1.x and 2.x store longer ones; the sink keeps to the limit all of them share).
pub const MAX_STRING_FIELD: usize = 64 * 1024;

/// Whether a series key of `series_key_len` bytes and a field key of `field_key_len` bytes
/// (both escaped, as in the line) fit InfluxDB's key limit.
#[inline]
pub fn key_fits(series_key_len: usize, field_key_len: usize) -> bool {
    series_key_len + KEY_SEPARATOR + field_key_len <= MAX_KEY_LENGTH
}

/// Whether timestamp `ts`, in a precision of `unit_ns` ns, is one InfluxDB takes (it scales
/// it to ns first).
#[inline]
pub fn timestamp_fits(ts: i64, unit_ns: i64) -> bool {
    ts.checked_mul(unit_ns)
        .is_some_and(|ns| (MIN_NANO_TIME..=MAX_NANO_TIME).contains(&ns))
}

/// The ns timestamps `t` for which `timestamp_fits(t.div_euclid(unit_ns), unit_ns)` holds
/// (the servers scale a floored timestamp back to ns): one range, so the encoder checks a
/// sample with one compare against bounds it computed once.
pub fn timestamp_ns_range(unit_ns: i64) -> RangeInclusive<i64> {
    // The least multiple of the unit at or above the earliest ns (`+ unit - 1` cannot
    // overflow there)...
    let lo = (MIN_NANO_TIME + unit_ns - 1).div_euclid(unit_ns) * unit_ns;
    // ...and the last ns before the first multiple past the latest (none within i64: all).
    let hi = (MAX_NANO_TIME.div_euclid(unit_ns) + 1)
        .checked_mul(unit_ns)
        .map_or(i64::MAX, |next| next - 1);
    lo..=hi
}

/// Whether a string field value of `len` bytes fits.
#[inline]
pub fn string_fits(len: usize) -> bool {
    len <= MAX_STRING_FIELD
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The edges as InfluxDB 1.6.7 and 1.8.10 answered them (measured with curl; the
    /// mixed-batch tests in `tests/influx_write.rs` check them live).
    #[test]
    fn edges_match_the_servers() {
        // `k`*65530 + ` f=1` is taken, a 2-byte field key is not.
        assert!(key_fits(65530, 1));
        assert!(!key_fits(65530, 2));
        assert!(!key_fits(10, 65535));
        assert!(timestamp_fits(-9223372036854775806, 1));
        assert!(!timestamp_fits(-9223372036854775807, 1));
        assert!(timestamp_fits(9223372036854775806, 1));
        assert!(!timestamp_fits(i64::MAX, 1));
        assert!(!timestamp_fits(i64::MIN, 1));
        // In ms: the scaled value must fit, and must not overflow.
        assert!(timestamp_fits(9_223_372_036_854, 1_000_000));
        assert!(!timestamp_fits(9_223_372_036_855, 1_000_000));
        assert!(!timestamp_fits(-9_223_372_036_855, 1_000_000));
        assert!(!timestamp_fits(i64::MAX / 2, 1_000_000_000));
        assert!(string_fits(65536));
        assert!(!string_fits(65537));
    }

    #[test]
    fn the_ns_range_is_timestamp_fits_of_the_floored_value() {
        for unit in [1, 1_000, 1_000_000, 1_000_000_000] {
            let range = timestamp_ns_range(unit);
            let (lo, hi) = (*range.start(), *range.end());
            let near = |t: i64| (-2..=2).filter_map(move |d| t.checked_add(d));
            let probes = near(lo)
                .chain(near(hi))
                .chain(near(i64::MIN + 2))
                .chain(near(i64::MAX - 2))
                .chain(near(0))
                .chain(near(1_700_000_000_123_456_789));
            for t in probes {
                let fits = timestamp_fits(t.div_euclid(unit), unit);
                assert_eq!(range.contains(&t), fits, "unit {unit}, ts {t}");
            }
        }
        assert_eq!(timestamp_ns_range(1), MIN_NANO_TIME..=MAX_NANO_TIME);
    }
}
