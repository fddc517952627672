//! RFC 3339 timestamps as k6 writes them (`2025-06-25T10:00:00.123456789Z`) to ns since the
//! epoch, without allocating; [`TimeCache`] skips the calendar arithmetic for timestamps that
//! share their date and time of day with the one before (k6's samples come in time order).

/// Parses the timestamps of one stream, reusing the date and time of day of the previous one
/// when they are the same bytes.
#[derive(Debug, Default)]
pub struct TimeCache {
    /// The first 19 bytes of the last timestamp and their seconds ([`rfc3339_seconds`]).
    prefix: [u8; 19],
    seconds: Option<i64>,
}

impl TimeCache {
    /// [`parse_rfc3339_ns`] of `b`.
    #[inline]
    pub fn parse(&mut self, b: &[u8]) -> Option<i64> {
        let prefix = b.get(..19)?;
        let seconds = match self.seconds {
            Some(s) if *prefix == self.prefix => s,
            _ => {
                let s = rfc3339_seconds(b)?;
                self.prefix.copy_from_slice(prefix);
                self.seconds = Some(s);
                s
            }
        };
        rfc3339_ns(seconds, b)
    }
}

/// Parses an RFC 3339 timestamp (`2025-06-25T10:00:00.123456789Z`, any number of fraction
/// digits, `Z` or a `±hh:mm` offset) to ns since the epoch. `None` when it is not one or is
/// outside the years 1678–2261 that ns in an i64 cover.
pub fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    rfc3339_ns(rfc3339_seconds(b)?, b)
}

/// The date and time of day of an RFC 3339 timestamp (`2025-06-25T10:00:00`, the first 19
/// bytes), validated, as seconds since the epoch before the offset is applied.
fn rfc3339_seconds(b: &[u8]) -> Option<i64> {
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // 60 is a leap second; Go never writes one, but RFC 3339 allows it.
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// ns since the epoch of the RFC 3339 timestamp `b` whose first 19 bytes are `seconds`
/// ([`rfc3339_seconds`]): the fraction and the offset are read here. `None` outside the years
/// that ns in an i64 cover.
#[inline]
fn rfc3339_ns(seconds: i64, b: &[u8]) -> Option<i64> {
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000i64;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            // Digits past ns are truncated, like Go's parser.
            frac_ns += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        &sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let digit = |j: usize| b[j].is_ascii_digit().then(|| i64::from(b[j] - b'0'));
            let oh = digit(i + 1)? * 10 + digit(i + 2)?;
            let om = digit(i + 4)? * 10 + digit(i + 5)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    (seconds - offset_s)
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T20:31:41.243487003Z"),
            Some(1_795_638_701_243_487_003)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T20:31:41.2434914Z"),
            Some(1_795_638_701_243_491_400)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T22:31:41.5+02:00"),
            Some(1_795_638_701_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T15:01:41.5-05:30"),
            Some(1_795_638_701_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2000-02-29T00:00:00.1234567891Z"),
            Some(951_782_400_123_456_789)
        );
        assert_eq!(
            parse_rfc3339_ns("1969-12-31T23:59:59.5Z"),
            Some(-500_000_000)
        );
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T20:31:41",
            "2026-13-25T20:31:41Z",
            "2026-02-29T20:31:41Z",
            "2026-11-25T24:31:41Z",
            "2026-11-25T20:31:41.Z",
            "2026-11-25T20:31:41.5",
            "2026-11-25T20:31:41+0200",
            "2026-11-25T20:31:41Zx",
            "9999-11-25T20:31:41Z",
            "2026-1a-25T20:31:41Z",
        ] {
            assert_eq!(parse_rfc3339_ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_days_match_a_known_table() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1600, 1, 1), -135_140);
        assert_eq!(days_from_civil(2262, 4, 11), 106_751);
    }

    #[test]
    fn timestamps_reuse_the_previous_date_and_time_of_day() {
        let mut cache = TimeCache::default();
        for t in [
            "2026-11-25T20:31:41.243487003Z",
            "2026-11-25T20:31:41.5Z",
            "2026-11-25T20:31:41+02:00",
            "2026-11-25T20:31:41.1-05:30",
            "2026-11-25T20:31:42Z",
            "2026-11-25T20:31:42.Z",
            "2026-11-25T20:31:42.7Z",
            "2026-13-25T20:31:42.7Z",
            "2026-11-25T20:31:42.7",
        ] {
            assert_eq!(cache.parse(t.as_bytes()), parse_rfc3339_ns(t), "{t}");
        }
    }
}
