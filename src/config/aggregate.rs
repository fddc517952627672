//! The aggregated mode's keys: `PERFSINK_MODE`, `PERFSINK_AGGREGATE_*`, `PERFSINK_PERCENTILES`.

use std::time::Duration;

use super::{invalid, Raw, MAX_MS};
use crate::aggregate::percentile::{parse_percentiles, Percentile, DEFAULT_PERCENTILES};
use crate::error::{Error, Result};
use crate::model::Precision;

/// What the sink writes of the samples of value series (`submit`, k6 samples, relayed k6 lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every sample as a line (k6's raw schema).
    #[default]
    Raw,
    /// Per series and interval, one point of statistics (the aggregated schema).
    Aggregate,
    /// Both.
    Both,
}

impl Mode {
    pub fn raw(self) -> bool {
        matches!(self, Mode::Raw | Mode::Both)
    }

    pub fn aggregate(self) -> bool {
        matches!(self, Mode::Aggregate | Mode::Both)
    }
}

/// How the aggregated mode groups and summarises.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateConfig {
    /// Intervals are aligned to multiples of this since the Unix epoch.
    pub interval: Duration,
    /// An interval is emitted this long after its end (samples may still arrive meanwhile).
    pub grace: Duration,
    pub percentiles: Vec<Percentile>,
    /// Histogram memory of all open intervals together.
    pub memory_max_bytes: usize,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        AggregateConfig {
            interval: Duration::from_millis(1000),
            grace: Duration::from_millis(2000),
            percentiles: parse_percentiles("PERFSINK_PERCENTILES", DEFAULT_PERCENTILES)
                .expect("the default percentiles parse"),
            memory_max_bytes: 128 << 20,
        }
    }
}

impl Raw<'_> {
    /// `PERFSINK_MODE` and the aggregation keys (read whatever the mode, so a bad value is
    /// reported even in raw mode).
    pub(super) fn aggregate(&self, precision: Precision) -> Result<(Mode, AggregateConfig)> {
        let mode = match self.get("PERFSINK_MODE") {
            None | Some("raw") => Mode::Raw,
            Some("aggregate") => Mode::Aggregate,
            Some("both") => Mode::Both,
            Some(v) => {
                return Err(invalid(
                    "PERFSINK_MODE",
                    v,
                    "expected raw, aggregate or both",
                ))
            }
        };
        let mut c = AggregateConfig::default();
        self.millis("PERFSINK_AGGREGATE_INTERVAL_MS", 1, &mut c.interval)?;
        self.millis("PERFSINK_AGGREGATE_GRACE_MS", 0, &mut c.grace)?;
        self.usize(
            "PERFSINK_AGGREGATE_MEMORY_MAX_BYTES",
            1,
            u64::MAX,
            &mut c.memory_max_bytes,
        )?;
        if let Some(v) = self.get("PERFSINK_PERCENTILES") {
            c.percentiles = parse_percentiles("PERFSINK_PERCENTILES", v)?;
        }
        // An interval's timestamp is its start: it must be one the precision can write, and
        // two intervals must never share one.
        let unit_ms = (precision.unit_ns() / 1_000_000) as u128;
        if unit_ms > 1 && c.interval.as_millis() % unit_ms != 0 {
            return Err(Error::Config(format!(
                "PERFSINK_AGGREGATE_INTERVAL_MS ({}) must be a multiple of INFLUXDB_PRECISION \
                 ({}): interval starts are the points' timestamps",
                c.interval.as_millis(),
                precision.as_query()
            )));
        }
        debug_assert!(c.interval.as_millis() <= u128::from(MAX_MS));
        Ok((mode, c))
    }
}
