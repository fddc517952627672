//! Shared integration-test harness. Use from a test file with `mod common;`.
//!
//! * [`Influx`]: throw-away `influxd` 1.x instances (own temp dir, own
//!   loopback ports, installs Debian's `influxdb` package if missing).
//! * [`FaultServer`] / [`Resp`] / [`Request`]: scripted loopback HTTP/1.1
//!   server that records what a client sent (gunzipped).
//! * [`http`]: tiny blocking HTTP/1.1 client and URL helpers.
//!
//! Not every test binary uses every item, hence the blanket allows.
#![allow(dead_code, unused_imports)]

pub mod fault_server;
pub mod http;
pub mod influx;

pub use fault_server::{FaultServer, Request, Resp};
pub use http::HttpResponse;
pub use influx::Influx;
