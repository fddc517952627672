//! Layer 1: the values a producer hands to the sink. Borrowed, so the hot path never allocates.

/// Small integer naming one interned series (measurement + sorted tag set), see `series`.
pub type SeriesId = u32;

/// One field value, in the five types line protocol knows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldValue<'a> {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(&'a str),
}

/// A named field of a point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    pub key: &'a str,
    pub value: FieldValue<'a>,
}

impl<'a> Field<'a> {
    pub fn new(key: &'a str, value: FieldValue<'a>) -> Self {
        Field { key, value }
    }
}

/// A tag of a series. Empty values are omitted when the series is registered, as InfluxDB requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    pub key: &'a str,
    pub value: &'a str,
}

impl<'a> Tag<'a> {
    pub fn new(key: &'a str, value: &'a str) -> Self {
        Tag { key, value }
    }
}

/// The fast-path point: a registered series, its main float value (written under the series'
/// value field, `value` by default), optional extra fields and a timestamp in ns since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    pub series: SeriesId,
    pub value: f64,
    pub timestamp_ns: i64,
    pub extra_fields: &'a [Field<'a>],
}

impl Point<'static> {
    pub fn new(series: SeriesId, value: f64, timestamp_ns: i64) -> Self {
        Point {
            series,
            value,
            timestamp_ns,
            extra_fields: &[],
        }
    }
}

/// What a series' values mean, as k6 types its metrics (numbered as k6 and the C ABI do). Only
/// the aggregated mode reads it: it decides which statistics an interval's point carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricKind {
    /// Values add up: the interval's total.
    Counter = 0,
    /// A level: the latest value, and the interval's min and max.
    Gauge = 1,
    /// A distribution: count, sum, min, max, mean and percentiles. A series without a kind.
    #[default]
    Trend = 2,
    /// Pass/fail samples (non-zero passes): passes per total.
    Rate = 3,
}

impl MetricKind {
    /// k6's name of the kind (`counter`, `gauge`, `trend`, `rate`).
    pub fn parse(s: &str) -> Option<MetricKind> {
        Some(match s {
            "counter" => MetricKind::Counter,
            "gauge" => MetricKind::Gauge,
            "trend" => MetricKind::Trend,
            "rate" => MetricKind::Rate,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Trend => "trend",
            MetricKind::Rate => "rate",
        }
    }
}

/// Timestamp precision of the write requests. Only the spellings every server reads alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Ns,
    Ms,
    S,
}

impl Precision {
    /// The `precision=` query value, the same on 1.x `/write` and 2.x `/api/v2/write`.
    pub fn as_query(self) -> &'static str {
        match self {
            Precision::Ns => "ns",
            Precision::Ms => "ms",
            Precision::S => "s",
        }
    }

    /// Nanoseconds in one unit of this precision.
    pub fn unit_ns(self) -> i64 {
        match self {
            Precision::Ns => 1,
            Precision::Ms => 1_000_000,
            Precision::S => 1_000_000_000,
        }
    }

    /// A ns timestamp in this precision, rounded toward minus infinity like InfluxDB truncates.
    pub fn from_ns(self, ns: i64) -> i64 {
        // Constant divisors: the compiler turns them into multiplications, and `ns` costs
        // nothing (a division by the run-time `unit_ns()` is an `idiv` on every point).
        match self {
            Precision::Ns => ns,
            Precision::Ms => ns.div_euclid(1_000_000),
            Precision::S => ns.div_euclid(1_000_000_000),
        }
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}
