//! Layer 6: adapters that turn a foreign stream into sink calls.

pub mod jmeter;
pub mod k6;
pub mod relay;
pub mod workflow;
