//! The statistics of one series over one interval, and how they become fields.

use hdrhistogram::Histogram;

use super::fsum::ExactSum;
use super::percentile::Percentile;
use crate::error::Result;
use crate::lineproto::write_float;
use crate::model::MetricKind;

/// Values are recorded in the histogram in thousandths of the metric's unit (k6 durations in
/// ms: microseconds)...
pub const SCALE: f64 = 1000.0;
/// ...up to 1e9 units; below 0 counts as 0, above as the maximum (min, max, sum and mean
/// stay exact: only percentiles are read from the histogram).
pub const MAX_SCALED: u64 = 1_000_000_000_000;
/// Three significant digits: a percentile is within 0.1 % of the true one.
const SIGNIFICANT_DIGITS: u8 = 3;
/// A trend's first samples of an interval are kept as they are, and its percentiles are
/// exact, up to this many; beyond, they go into a histogram.
pub const EXACT_MAX: usize = 512;

/// One series' samples of one interval.
#[derive(Debug)]
pub struct Window {
    /// The interval's start, ns since the epoch (a multiple of the interval).
    pub start: i64,
    count: u64,
    sum: ExactSum,
    min: f64,
    max: f64,
    last: f64,
    last_ts: i64,
    passes: u64,
    /// Samples of an interval already emitted, counted here instead.
    late: u64,
    /// Trends: the values while there are at most `EXACT_MAX`...
    values: Vec<f64>,
    /// ...then a histogram of all of them (`None` until then).
    hist: Option<Histogram<u32>>,
    /// The memory cap left this interval without percentiles.
    unranked: bool,
}

/// What a trend's window needs after a sample.
#[derive(Debug, PartialEq, Eq)]
pub enum Need {
    Nothing,
    /// Its exact values are full: a histogram ([`Window::promote`]) or none ([`Window::unrank`]).
    Histogram,
}

impl Window {
    /// An empty window.
    pub fn new(start: i64) -> Window {
        Window {
            start,
            count: 0,
            sum: ExactSum::default(),
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            last: 0.0,
            last_ts: i64::MIN,
            passes: 0,
            late: 0,
            values: Vec::new(),
            hist: None,
            unranked: false,
        }
    }

    /// A new histogram, empty.
    pub fn new_histogram() -> Histogram<u32> {
        // Auto-resizing: memory follows the largest value recorded, not the configured range.
        let mut h = Histogram::new(SIGNIFICANT_DIGITS).expect("3 significant digits are valid");
        h.auto(true);
        h
    }

    /// Bytes a histogram holds (its counts; 4 bytes each).
    pub fn histogram_bytes(h: &Histogram<u32>) -> usize {
        h.distinct_values() * std::mem::size_of::<u32>()
    }

    pub fn histogram(&self) -> Option<&Histogram<u32>> {
        self.hist.as_ref()
    }

    /// Bytes of its values and histogram.
    pub fn memory(&self) -> usize {
        self.values.capacity() * std::mem::size_of::<f64>()
            + self.hist.as_ref().map_or(0, Self::histogram_bytes)
    }

    /// Moves its exact values into `h` (empty), which then takes every sample.
    pub fn promote(&mut self, mut h: Histogram<u32>) {
        for &v in &self.values {
            record(&mut h, v);
        }
        self.values = Vec::new();
        self.hist = Some(h);
    }

    /// No percentiles for this interval (memory cap): frees its values and histogram.
    pub fn unrank(&mut self) {
        self.values = Vec::new();
        self.hist = None;
        self.unranked = true;
    }

    /// Whether its percentiles were given up.
    pub fn is_unranked(&self) -> bool {
        self.unranked
    }

    /// Empties the window for reuse at `start`, keeping its memory (values, histogram).
    pub fn recycle(mut self, start: i64) -> Window {
        self.values.clear();
        if let Some(h) = &mut self.hist {
            h.reset();
        }
        self.sum.clear();
        Window {
            sum: std::mem::take(&mut self.sum),
            values: std::mem::take(&mut self.values),
            hist: self.hist.take(),
            ..Window::new(start)
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds one finite sample. `late`: it belongs to an interval already emitted. `trend`:
    /// keep what its percentiles need.
    #[inline]
    pub fn add(&mut self, value: f64, ts: i64, late: bool, trend: bool) -> Need {
        self.count += 1;
        self.sum.add(value);
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        // The latest sample wins; of equal timestamps, the one that came later.
        if ts >= self.last_ts {
            self.last = value;
            self.last_ts = ts;
        }
        self.passes += u64::from(value != 0.0);
        self.late += u64::from(late);
        if !trend || self.unranked {
            return Need::Nothing;
        }
        match &mut self.hist {
            Some(h) => record(h, value),
            None if self.values.len() < EXACT_MAX => self.values.push(value),
            None => {
                self.values.push(value);
                return Need::Histogram;
            }
        }
        Need::Nothing
    }

    /// [`add`](Self::add) within a memory budget shared by many windows: `used` holds the
    /// bytes of all of them (this one's included) and is kept up to date, `max` caps it. When
    /// its percentiles would need more (a histogram, more exact values), the window gives them
    /// up for the interval ([`unrank`](Self::unrank)). Returns how many samples that leaves
    /// without percentiles: all of the window's when it gives them up now, 1 once it has.
    #[inline]
    pub fn add_within(
        &mut self,
        value: f64,
        ts: i64,
        late: bool,
        trend: bool,
        used: &mut usize,
        max: usize,
    ) -> u64 {
        let (before, was_unranked) = (self.memory(), self.unranked);
        let mut need = self.add(value, ts, late, trend);
        if need == Need::Histogram {
            let h = Window::new_histogram();
            let room = *used - before + self.memory() + Window::histogram_bytes(&h);
            if room <= max {
                self.promote(h);
                need = Need::Nothing;
            }
        }
        if need == Need::Histogram
            || (self.memory() > before && *used - before + self.memory() > max)
        {
            // No room for what its percentiles need: this interval has none.
            self.unrank();
        }
        *used = *used - before + self.memory();
        match (trend && self.unranked, was_unranked) {
            (false, _) => 0,
            (true, true) => 1,
            (true, false) => self.count,
        }
    }

    /// The smallest value, `None` when empty.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest value, `None` when empty.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// The mean (exact sum / count), `None` when empty or the sum left the float range.
    pub fn mean(&self) -> Option<f64> {
        let sum = self.sum.value();
        (self.count > 0 && sum.is_finite()).then(|| sum / self.count as f64)
    }

    /// Calls `each` with every percentile of `percentiles` and its value, in order, by the
    /// rules `write_fields` uses (exact up to `EXACT_MAX` samples, then the histogram); nothing
    /// when the window is empty or its percentiles were given up. For renderers of other
    /// schemas (JMeter's).
    pub fn percentiles(&self, percentiles: &[Percentile], mut each: impl FnMut(&Percentile, f64)) {
        if let Some(h) = &self.hist {
            self.histogram_percentiles(h, percentiles, &mut each);
        } else if !self.unranked {
            self.exact_percentiles(percentiles, &mut each);
        }
    }

    /// Appends the fields of `kind` (`count=3i,sum=...`) to `buf`.
    pub fn write_fields(
        &self,
        buf: &mut Vec<u8>,
        kind: MetricKind,
        percentiles: &[Percentile],
    ) -> Result<()> {
        int_field(buf, "count", self.count);
        match kind {
            MetricKind::Counter => self.write_sum(buf, false)?,
            MetricKind::Rate => {
                int_field(buf, "passes", self.passes);
                float_field(buf, "rate", self.passes as f64 / self.count as f64)?;
            }
            MetricKind::Gauge => {
                float_field(buf, "last", self.last)?;
                float_field(buf, "min", self.min)?;
                float_field(buf, "max", self.max)?;
            }
            MetricKind::Trend => {
                self.write_sum(buf, true)?;
                float_field(buf, "min", self.min)?;
                float_field(buf, "max", self.max)?;
                let mut result = Ok(());
                self.percentiles(percentiles, |p, v| {
                    if result.is_ok() {
                        result = float_field(buf, p.field(), v);
                    }
                });
                result?;
            }
        }
        if self.late > 0 {
            int_field(buf, "late", self.late);
        }
        Ok(())
    }

    /// `sum` (and `mean`), unless the exact sum left the float range.
    fn write_sum(&self, buf: &mut Vec<u8>, mean: bool) -> Result<()> {
        let sum = self.sum.value();
        if sum.is_finite() {
            float_field(buf, "sum", sum)?;
            if mean {
                float_field(buf, "mean", sum / self.count as f64)?;
            }
        }
        Ok(())
    }

    /// Nearest-rank percentiles of the values themselves.
    fn exact_percentiles(
        &self,
        percentiles: &[Percentile],
        each: &mut impl FnMut(&Percentile, f64),
    ) {
        if self.values.is_empty() {
            return;
        }
        let mut sorted = self.values.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        for p in percentiles {
            each(p, sorted[p.rank(sorted.len() as u64) as usize - 1]);
        }
    }

    /// Nearest-rank percentiles: the histogram's bucket holding the rank-th smallest sample,
    /// its highest equivalent value (within 0.1 %), kept within the exact min and max.
    fn histogram_percentiles(
        &self,
        h: &Histogram<u32>,
        percentiles: &[Percentile],
        each: &mut impl FnMut(&Percentile, f64),
    ) {
        let n = h.len();
        if n == 0 {
            return;
        }
        // A quantile half a rank below `rank / n`: hdrhistogram takes ceil(q * n) as the rank,
        // which is then exactly `rank` whatever the float rounding of q.
        let quantiles = percentiles
            .iter()
            .map(|p| (p.rank(n) as f64 - 0.5) / n as f64);
        for (p, v) in percentiles.iter().zip(h.value_at_quantiles(quantiles)) {
            each(p, (v as f64 / SCALE).clamp(self.min, self.max));
        }
    }
}

/// Records `value` scaled: `as` saturates (negative → 0, beyond u64 → u64::MAX), then capped.
#[inline]
fn record(h: &mut Histogram<u32>, value: f64) {
    let v = ((value * SCALE).round() as u64).min(MAX_SCALED);
    // `record` grows the histogram to the value (`saturating_record` would clamp it to the
    // current size); it fails only when one count passes u32::MAX.
    if h.record(v).is_err() {
        h.saturating_record(v);
    }
}

fn sep(buf: &mut Vec<u8>) {
    if !matches!(buf.last(), Some(b' ') | None) {
        buf.push(b',');
    }
}

fn int_field(buf: &mut Vec<u8>, key: &str, v: u64) {
    sep(buf);
    buf.extend_from_slice(key.as_bytes());
    buf.push(b'=');
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    buf.push(b'i');
}

fn float_field(buf: &mut Vec<u8>, key: &str, v: f64) -> Result<()> {
    sep(buf);
    buf.extend_from_slice(key.as_bytes());
    buf.push(b'=');
    write_float(buf, v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::percentile::parse_percentiles;

    fn fields(w: &Window, kind: MetricKind, p: &str) -> String {
        let mut buf = b"m ".to_vec();
        w.write_fields(&mut buf, kind, &parse_percentiles("K", p).unwrap())
            .unwrap();
        String::from_utf8(buf[2..].to_vec()).unwrap()
    }

    fn window(values: &[(f64, i64)], trend: bool) -> Window {
        let mut w = Window::new(0);
        for &(v, ts) in values {
            if w.add(v, ts, false, trend) == Need::Histogram {
                w.promote(Window::new_histogram());
            }
        }
        w
    }

    #[test]
    fn fields_per_kind() {
        let w = window(&[(1.0, 3), (0.0, 1), (2.5, 2)], true);
        assert_eq!(fields(&w, MetricKind::Counter, ""), "count=3i,sum=3.5");
        assert_eq!(
            fields(&w, MetricKind::Rate, ""),
            "count=3i,passes=2i,rate=0.6666666666666666"
        );
        assert_eq!(
            fields(&w, MetricKind::Gauge, ""),
            "count=3i,last=1.0,min=0.0,max=2.5"
        );
        assert_eq!(
            fields(&w, MetricKind::Trend, "50,100"),
            "count=3i,sum=3.5,mean=1.1666666666666667,min=0.0,max=2.5,p50=1.0,p100=2.5"
        );
    }

    #[test]
    fn last_is_the_latest_timestamp_and_late_shows() {
        let mut w = window(&[(5.0, 10), (7.0, 4), (9.0, 10)], false);
        w.add(1.0, 2, true, false);
        assert_eq!(
            fields(&w, MetricKind::Gauge, ""),
            "count=4i,last=9.0,min=1.0,max=9.0,late=1i"
        );
    }

    #[test]
    fn percentiles_are_nearest_rank_within_a_thousandth() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut values: Vec<f64> = (0..10_007).map(|_| rng.f64() * 5000.0).collect();
        let w = window(&values.iter().map(|&v| (v, 0)).collect::<Vec<_>>(), true);
        values.sort_by(f64::total_cmp);
        let ps = parse_percentiles("K", "1,50,90,95,99,99.9,100").unwrap();
        let mut buf = b"m ".to_vec();
        w.write_fields(&mut buf, MetricKind::Trend, &ps).unwrap();
        let text = String::from_utf8(buf).unwrap();
        for p in &ps {
            let exact = values[p.rank(values.len() as u64) as usize - 1];
            let key = format!("{}=", p.field());
            let at = text.find(&key).unwrap() + key.len();
            let got: f64 = text[at..].split(',').next().unwrap().parse().unwrap();
            let tolerance = (exact * 0.001).max(0.001);
            assert!(
                (got - exact).abs() <= tolerance,
                "{}: {got} vs {exact}",
                p.field()
            );
        }
    }

    #[test]
    fn up_to_exact_max_samples_percentiles_are_exact() {
        let values: Vec<(f64, i64)> = (0..EXACT_MAX).map(|i| (i as f64 + 0.123, 0)).collect();
        let w = window(&values, true);
        assert!(w.histogram().is_none());
        let text = fields(&w, MetricKind::Trend, "50,99");
        assert!(text.ends_with(",p50=255.123,p99=506.123"), "{text}");
        let mut w = window(&values, true);
        assert_eq!(w.add(1e6, 0, false, true), Need::Histogram);
        w.unrank();
        assert!(!fields(&w, MetricKind::Trend, "50").contains("p50"));
    }

    #[test]
    fn a_huge_or_negative_trend_value_keeps_exact_min_max() {
        let w = window(&[(-3.0, 0), (1e15, 0)], true);
        assert_eq!(
            fields(&w, MetricKind::Trend, "50"),
            "count=2i,sum=999999999999997.0,mean=499999999999998.5,min=-3.0,\
             max=1000000000000000.0,p50=-3.0"
        );
    }
}
