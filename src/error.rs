//! The crate's error type. Its `code()` is the stable number the C ABI returns.

use std::fmt;

/// Why a call was refused. Messages never contain secrets (passwords, tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A configuration key is unknown or its value malformed.
    Config(String),
    /// A name, tag or field cannot be written (empty measurement, empty field key, ...).
    InvalidInput(String),
    /// A float field is NaN or infinite; InfluxDB rejects those.
    InvalidValue(String),
    /// A series id that was never registered.
    UnknownSeries(u32),
    /// The cap on distinct series is reached.
    SeriesLimit(usize),
    /// The queue is full and the policy dropped the points.
    QueueFull,
    /// A flush did not settle within its timeout.
    Timeout,
    /// The sink is closed or its writer stopped.
    Closed,
    /// InfluxDB refused the credentials (401/403); writing stopped.
    Auth(String),
    /// An I/O error (spool, runtime start).
    Io(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "configuration error: {m}"),
            Error::InvalidInput(m) => write!(f, "invalid input: {m}"),
            Error::InvalidValue(m) => write!(f, "invalid value: {m}"),
            Error::UnknownSeries(id) => write!(f, "unknown series id {id}"),
            Error::SeriesLimit(max) => write!(
                f,
                "series limit of {max} reached; raise PERFSINK_MAX_SERIES or move high-cardinality tags to fields"
            ),
            Error::QueueFull => write!(f, "queue full: points dropped (see PERFSINK_QUEUE_POLICY)"),
            Error::Timeout => write!(f, "timed out before all points were settled"),
            Error::Closed => write!(f, "sink is closed"),
            Error::Auth(m) => write!(f, "authentication failed: {m}"),
            Error::Io(m) => write!(f, "I/O error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
