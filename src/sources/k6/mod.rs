//! Layer 6: k6, once. Everything perfsink knows about k6 lives here, for every k6 path (the
//! `perfsink k6` command over k6's JSON stream, and the xk6 output, which reaches it through the
//! C ABI):
//!
//! * [`schema`]: k6's raw InfluxDB schema: `tagsAsFields` and its typing, sample metadata;
//! * [`config`]: the k6 configuration (`--out perfsink=ARG`, the config file's
//!   `collectors.perfsink`, `K6_INFLUXDB_*`) resolved onto the engine's keys;
//! * [`json`]: k6's JSON output stream as a source, with its line [`scanner`](self), RFC 3339
//!   timestamps ([`rfc3339`]) and cache key hash.

pub mod config;
mod hash;
pub mod json;
pub mod rfc3339;
mod scanner;
pub mod schema;
