//! Shared integration-test harness. Use from a test file with `mod common;`.
//!
//! * [`Influx`]: throw-away `influxd` 1.x instances (own temp dir, own
//!   loopback ports, installs Debian's `influxdb` package if missing).
//! * [`FaultServer`] / [`Resp`] / [`Request`]: scripted loopback HTTP/1.1
//!   server that records what a client sent (gunzipped).
//! * [`fault_proxy`]: a loopback proxy in front of a real influxd injecting latency, resets,
//!   truncated answers and InfluxDB's error answers; [`faults`]: the seed, signals and tmpfs
//!   of the fault-injection suite (`tests/faults_*.rs`).
//! * [`http`]: tiny blocking HTTP/1.1 client and URL helpers.
//! * [`k6`]: the real k6 binary, its test script and load target, and the checks of what
//!   InfluxDB holds against k6's own references (`k6_runner.rs`, `k6_relay.rs`).
//! * [`aggregate`]: the aggregated schema against k6's own record, per metric, interval and
//!   series (`k6_aggregate.rs`); [`exact`]: exact float sums and JSON numbers for it.
//!
//! Not every test binary uses every item, hence the blanket allows.
#![allow(dead_code, unused_imports)]

pub mod aggregate;
pub mod exact;
pub mod fault_proxy;
pub mod fault_server;
pub mod faults;
pub mod http;
pub mod influx;
pub mod k6;

pub use fault_server::{FaultServer, Request, Resp};
pub use http::HttpResponse;
pub use influx::Influx;
