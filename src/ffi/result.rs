//! `perfsink_result`: the code every fallible C function returns, and its names.

use std::ffi::c_char;

use super::c_enum::c_enum_table;
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
    /// A name, tag or field cannot be written (a field key twice in one point, too).
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
    /// Close: accepted points were not delivered (timed out, writing stopped) or are kept in
    /// the spool; the report says how many.
    PERFSINK_UNDELIVERED = 303,
    /// InfluxDB refused the credentials; writing stopped.
    PERFSINK_AUTH = 400,
    /// An I/O error (spool directory, thread or runtime start).
    PERFSINK_IO = 500,
}

c_enum_table!(perfsink_result {
    PERFSINK_OK,
    PERFSINK_NULL_PARAMETER,
    PERFSINK_INVALID_UTF8,
    PERFSINK_INVALID_ARGUMENT,
    PERFSINK_PANIC,
    PERFSINK_CONFIG,
    PERFSINK_INVALID_INPUT,
    PERFSINK_INVALID_VALUE,
    PERFSINK_UNKNOWN_SERIES,
    PERFSINK_SERIES_LIMIT,
    PERFSINK_QUEUE_FULL,
    PERFSINK_TIMEOUT,
    PERFSINK_CLOSED,
    PERFSINK_UNDELIVERED,
    PERFSINK_AUTH,
    PERFSINK_IO,
});

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

/// The name of a result code as a static NUL-terminated string (`"PERFSINK_TIMEOUT"`), or
/// `"PERFSINK_UNKNOWN"` for a number that is not a result code. Infallible.
#[no_mangle]
pub extern "C" fn perfsink_result_name(result: u32) -> *const c_char {
    perfsink_result::from_u32(result)
        .map_or(c"PERFSINK_UNKNOWN", perfsink_result::name)
        .as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn every_code_has_its_name_and_numbers_are_unique() {
        for (i, r) in perfsink_result::ALL.iter().enumerate() {
            let name = unsafe { CStr::from_ptr(perfsink_result_name(*r as u32)) };
            assert_eq!(name.to_str().unwrap(), format!("{r:?}"));
            assert_eq!(perfsink_result::from_u32(*r as u32), Some(*r));
            assert!(perfsink_result::ALL[..i]
                .iter()
                .all(|o| *o as u32 != *r as u32));
        }
        assert_eq!(perfsink_result::ALL.len(), 16);
        for n in [5, 99, 304, 9999, u32::MAX] {
            let name = unsafe { CStr::from_ptr(perfsink_result_name(n)) };
            assert_eq!(name.to_str().unwrap(), "PERFSINK_UNKNOWN");
        }
    }
}
