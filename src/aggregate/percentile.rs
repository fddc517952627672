//! `PERFSINK_PERCENTILES`: which percentiles an interval's point carries, their field names,
//! and the nearest-rank rule that defines them.

use crate::error::{Error, Result};

/// The default of `PERFSINK_PERCENTILES`.
pub const DEFAULT_PERCENTILES: &str = "50,90,95,99";

/// At most this many percentiles (each is a field of every trend point).
const MAX_PERCENTILES: usize = 32;

/// One configured percentile: `p` in thousandths of a percent (99.9 → 99_900), exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Percentile {
    milli: u32,
    field: Box<str>,
}

impl Percentile {
    /// The field the percentile is written to: `p95`, `p99.9`.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// The percentile as a number (`99.9`).
    pub fn value(&self) -> f64 {
        f64::from(self.milli) / 1000.0
    }

    /// The nearest rank of this percentile among `n` samples, 1-based: the smallest rank `r`
    /// with `r >= p/100 * n`, computed exactly (no float rounding can move it by one).
    pub fn rank(&self, n: u64) -> u64 {
        let scaled = u128::from(self.milli) * u128::from(n);
        let rank = scaled.div_ceil(100_000);
        // At most n, since milli <= 100_000.
        (rank as u64).max(1)
    }
}

/// Parses `50,90,95,99`: numbers in (0, 100] with at most three decimals, each once; sorted.
pub fn parse_percentiles(key: &str, s: &str) -> Result<Vec<Percentile>> {
    let mut out: Vec<Percentile> = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let milli = parse_milli(part).ok_or_else(|| {
            Error::Config(format!(
                "{key}: {:?} is not a percentile (a number above 0 and at most 100, \
                 with at most three decimals)",
                part.chars().take(40).collect::<String>()
            ))
        })?;
        if out.iter().any(|p| p.milli == milli) {
            return Err(Error::Config(format!("{key}: {part} is given twice")));
        }
        out.push(Percentile {
            milli,
            field: field_name(milli).into(),
        });
    }
    if out.len() > MAX_PERCENTILES {
        return Err(Error::Config(format!(
            "{key}: at most {MAX_PERCENTILES} percentiles"
        )));
    }
    out.sort_by_key(|p| p.milli);
    Ok(out)
}

/// `99.9` → 99_900; `None` unless 0 < p <= 100 with at most three decimals.
fn parse_milli(s: &str) -> Option<u32> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let digits = |d: &str| d.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 3 || frac.len() > 3 || !digits(int) || !digits(frac) {
        return None;
    }
    let int: u32 = int.parse().ok()?;
    let frac: u32 = format!("{frac:0<3}").parse().ok()?;
    let milli = int * 1000 + frac;
    (milli > 0 && milli <= 100_000).then_some(milli)
}

/// `p` and the percentile without trailing zeros: 95_000 → `p95`, 99_900 → `p99.9`.
fn field_name(milli: u32) -> String {
    let (int, frac) = (milli / 1000, milli % 1000);
    if frac == 0 {
        return format!("p{int}");
    }
    let frac = format!("{frac:03}");
    format!("p{int}.{}", frac.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(s: &str) -> Vec<String> {
        parse_percentiles("K", s)
            .unwrap()
            .iter()
            .map(|p| p.field().to_string())
            .collect()
    }

    #[test]
    fn names_and_order() {
        assert_eq!(fields(DEFAULT_PERCENTILES), ["p50", "p90", "p95", "p99"]);
        assert_eq!(
            fields(" 99.90, 50 ,99.999,100"),
            ["p50", "p99.9", "p99.999", "p100"]
        );
        assert_eq!(fields(""), Vec::<String>::new());
    }

    #[test]
    fn refusals() {
        for bad in [
            "0", "100.001", "-5", "1e2", "99.9999", "abc", "50,50.0", "nan", ".5",
        ] {
            assert!(parse_percentiles("K", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nearest_rank_is_exact() {
        let p = |s: &str| parse_percentiles("K", s).unwrap().remove(0);
        // 0.95 * 100 is 95.00000000000001 in floats; the rank must still be 95.
        assert_eq!(p("95").rank(100), 95);
        assert_eq!(p("95").rank(101), 96);
        assert_eq!(p("50").rank(1), 1);
        assert_eq!(p("100").rank(7), 7);
        assert_eq!(p("0.001").rank(10), 1);
        assert_eq!(p("99.9").rank(1000), 999);
    }
}
