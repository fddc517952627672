//! perfsink: one native metric sink for k6, JMeter and scripted workflows, writing to InfluxDB.
//! Layers (see docs/ARCHITECTURE.md): model → series → lineproto → pipeline → writer; `sink` ties
//! them together, `ffi` is the C ABI on top.

pub mod aggregate;
pub mod config;
pub mod error;
pub mod ffi;
pub mod lineproto;
pub mod log;
pub mod model;
pub mod pipeline;
pub mod series;
pub mod sink;
pub mod sources;
pub mod stats;
pub mod writer;

pub use config::Config;
pub use error::{Error, Result};
pub use model::{Field, FieldValue, MetricKind, Point, Precision, SeriesId, Tag};
pub use sink::{Health, HealthStatus, Report, Sink, Submitted};
pub use sources::relay::Ingested;
pub use stats::Stats;
