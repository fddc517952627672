//! Layer 6: adapters that turn a foreign stream into sink calls.

pub mod k6env;
pub mod k6json;
pub mod relay;
