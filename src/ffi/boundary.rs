//! Turning C arguments into Rust values, and the panic boundary every export goes through.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{fail, perfsink_result};

/// Runs an export's body; a panic becomes `PERFSINK_PANIC` and never unwinds into C. The sink
/// stays usable after a caught panic: its locks do not poison and its counters are atomics.
pub(crate) fn guard(body: impl FnOnce() -> perfsink_result) -> perfsink_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            fail(
                perfsink_result::PERFSINK_PANIC,
                format!("internal error (panic): {what}"),
            )
        }
    }
}

/// Early return of an error code from an export body.
macro_rules! try_ffi {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(code) => return code,
        }
    };
}
pub(crate) use try_ffi;

/// A `(ptr, len)` UTF-8 string. NULL is allowed only with length 0 (the empty string).
///
/// # Safety
/// `ptr` must point to `len` readable bytes that stay valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(
    ptr: *const std::ffi::c_char,
    len: usize,
    what: &str,
) -> Result<&'a str, perfsink_result> {
    let bytes = slice_arg(ptr.cast::<u8>(), len, what)?;
    std::str::from_utf8(bytes).map_err(|e| {
        fail(
            perfsink_result::PERFSINK_INVALID_UTF8,
            format!("{what} is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

/// A `(ptr, count)` array. NULL is allowed only with count 0.
///
/// # Safety
/// `ptr` must point to `count` initialised values that stay valid for `'a`.
pub(crate) unsafe fn slice_arg<'a, T>(
    ptr: *const T,
    count: usize,
    what: &str,
) -> Result<&'a [T], perfsink_result> {
    if count == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(fail(
            perfsink_result::PERFSINK_NULL_PARAMETER,
            format!("{what} is NULL but its length is {count}"),
        ));
    }
    if count
        .checked_mul(std::mem::size_of::<T>())
        .is_none_or(|b| b > isize::MAX as usize)
    {
        return Err(fail(
            perfsink_result::PERFSINK_INVALID_ARGUMENT,
            format!("{what} length {count} is too large"),
        ));
    }
    Ok(std::slice::from_raw_parts(ptr, count))
}

/// A required pointer.
///
/// # Safety
/// A non-NULL `ptr` must point to a valid `T` that outlives `'a`.
pub(crate) unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> Result<&'a T, perfsink_result> {
    ptr.as_ref().ok_or_else(|| {
        fail(
            perfsink_result::PERFSINK_NULL_PARAMETER,
            format!("{what} is NULL"),
        )
    })
}
