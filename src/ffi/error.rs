//! Result codes of the C ABI and the per-thread message of the last error.

use std::cell::RefCell;
use std::ffi::c_char;

use crate::error::Error;

/// The result of every fallible C function. The numbers are stable and never reused; they are
/// banded: 0 success, 1–99 misuse of the ABI, 100s configuration, 200s input, 300s flow,
/// 400s server, 500s system.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum perfsink_result {
    PERFSINK_OK = 0,
    /// A required pointer was NULL (or NULL with a non-zero length).
    PERFSINK_NULL_PARAMETER = 1,
    /// A string was not valid UTF-8.
    PERFSINK_INVALID_UTF8 = 2,
    /// A size or enum value out of range.
    PERFSINK_INVALID_ARGUMENT = 3,
    /// perfsink panicked; the panic was caught at the boundary. Please report it.
    PERFSINK_PANIC = 4,
    /// Unknown configuration key or malformed value.
    PERFSINK_CONFIG = 100,
    /// A name, tag or field cannot be written.
    PERFSINK_INVALID_INPUT = 200,
    /// NaN or ±Inf (or an unsigned value too large for InfluxDB 1.x).
    PERFSINK_INVALID_VALUE = 201,
    /// A series id that was never registered.
    PERFSINK_UNKNOWN_SERIES = 202,
    /// The cap on distinct series (PERFSINK_MAX_SERIES) is reached.
    PERFSINK_SERIES_LIMIT = 203,
    /// The queue was full; points were dropped and counted.
    PERFSINK_QUEUE_FULL = 300,
    /// A flush did not settle within its timeout.
    PERFSINK_TIMEOUT = 301,
    /// The sink is closed.
    PERFSINK_CLOSED = 302,
    /// InfluxDB refused the credentials; writing stopped.
    PERFSINK_AUTH = 400,
    /// An I/O error (spool directory, thread or runtime start).
    PERFSINK_IO = 500,
}

impl From<&Error> for perfsink_result {
    fn from(e: &Error) -> Self {
        use perfsink_result::*;
        match e {
            Error::Config(_) => PERFSINK_CONFIG,
            Error::InvalidInput(_) => PERFSINK_INVALID_INPUT,
            Error::InvalidValue(_) => PERFSINK_INVALID_VALUE,
            Error::UnknownSeries(_) => PERFSINK_UNKNOWN_SERIES,
            Error::SeriesLimit(_) => PERFSINK_SERIES_LIMIT,
            Error::QueueFull => PERFSINK_QUEUE_FULL,
            Error::Timeout => PERFSINK_TIMEOUT,
            Error::Closed => PERFSINK_CLOSED,
            Error::Auth(_) => PERFSINK_AUTH,
            Error::Io(_) => PERFSINK_IO,
        }
    }
}

impl perfsink_result {
    pub(crate) fn name(self) -> &'static std::ffi::CStr {
        use perfsink_result::*;
        match self {
            PERFSINK_OK => c"PERFSINK_OK",
            PERFSINK_NULL_PARAMETER => c"PERFSINK_NULL_PARAMETER",
            PERFSINK_INVALID_UTF8 => c"PERFSINK_INVALID_UTF8",
            PERFSINK_INVALID_ARGUMENT => c"PERFSINK_INVALID_ARGUMENT",
            PERFSINK_PANIC => c"PERFSINK_PANIC",
            PERFSINK_CONFIG => c"PERFSINK_CONFIG",
            PERFSINK_INVALID_INPUT => c"PERFSINK_INVALID_INPUT",
            PERFSINK_INVALID_VALUE => c"PERFSINK_INVALID_VALUE",
            PERFSINK_UNKNOWN_SERIES => c"PERFSINK_UNKNOWN_SERIES",
            PERFSINK_SERIES_LIMIT => c"PERFSINK_SERIES_LIMIT",
            PERFSINK_QUEUE_FULL => c"PERFSINK_QUEUE_FULL",
            PERFSINK_TIMEOUT => c"PERFSINK_TIMEOUT",
            PERFSINK_CLOSED => c"PERFSINK_CLOSED",
            PERFSINK_AUTH => c"PERFSINK_AUTH",
            PERFSINK_IO => c"PERFSINK_IO",
        }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Records `msg` as this thread's last error and returns `code`.
pub(crate) fn fail(code: perfsink_result, msg: impl Into<String>) -> perfsink_result {
    let msg = msg.into();
    LAST_ERROR.with(|e| *e.borrow_mut() = msg);
    code
}

pub(crate) fn fail_with(e: &Error) -> perfsink_result {
    fail(e.into(), e.to_string())
}

/// This thread's last error message.
pub(crate) fn last_error_message() -> String {
    LAST_ERROR.with(|e| e.borrow().clone())
}

/// Copies this thread's last error message into `buf`; see `perfsink_last_error`.
pub(crate) fn copy_last_error(buf: *mut c_char, buf_len: usize) -> usize {
    LAST_ERROR.with(|e| super::sink::copy_str(&e.borrow(), buf, buf_len))
}
