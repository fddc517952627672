//! Turning C arguments into Rust values, and the panic boundary every export goes through.

use std::ffi::c_char;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::error::{fail, report, Failure, FfiResult};
use super::result::perfsink_result;

/// Runs an export's body and reports its outcome in `err` (see `error.rs`); a panic becomes
/// `PERFSINK_PANIC` and never unwinds into C. The sink stays usable after a caught panic: its
/// locks do not poison and its counters are atomics.
///
/// # Safety
/// `err` must hold `err_len` writable bytes, or be NULL.
pub(crate) unsafe fn guard(
    err: *mut c_char,
    err_len: usize,
    body: impl FnOnce() -> FfiResult,
) -> perfsink_result {
    let outcome = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|p| Err(panicked(p)));
    report(outcome, err, err_len)
}

/// Runs the body of an infallible export: a panic is swallowed, `fallback` returned.
pub(crate) fn infallible<T>(fallback: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(fallback)
}

#[cold]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> Failure {
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

/// A `(ptr, len)` UTF-8 string. NULL is allowed only with length 0 (the empty string).
///
/// # Safety
/// `ptr` must point to `len` readable bytes that stay valid for `'a`.
pub(crate) unsafe fn str_arg<'a>(ptr: *const c_char, len: usize, what: &str) -> FfiResult<&'a str> {
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
) -> FfiResult<&'a [T]> {
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
pub(crate) unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    ptr.as_ref().ok_or_else(|| {
        fail(
            perfsink_result::PERFSINK_NULL_PARAMETER,
            format!("{what} is NULL"),
        )
    })
}

/// A required output pointer.
pub(crate) fn out_arg<T>(ptr: *mut T, what: &str) -> FfiResult<*mut T> {
    if ptr.is_null() {
        return Err(fail(
            perfsink_result::PERFSINK_NULL_PARAMETER,
            format!("{what} is NULL"),
        ));
    }
    Ok(ptr)
}

/// Writes the first `out_size` bytes of `value` to `out`: a struct that grows only at its end
/// (`perfsink_stats`), given to callers built against an older, shorter version of it.
/// `out_size` below `min_size` (the struct's first version) is `PERFSINK_INVALID_ARGUMENT`;
/// bytes past `size_of::<T>()` are left as they were.
///
/// # Safety
/// `out` must hold `out_size` writable bytes, or be NULL.
pub(crate) unsafe fn write_sized<T: Copy>(
    value: &T,
    out: *mut T,
    out_size: usize,
    min_size: usize,
    what: &str,
) -> FfiResult {
    let out = out_arg(out, what)?;
    if out_size < min_size {
        return Err(fail(
            perfsink_result::PERFSINK_INVALID_ARGUMENT,
            format!("{what}: size {out_size} is smaller than the smallest version ({min_size} bytes); pass sizeof *{what}"),
        ));
    }
    let n = out_size.min(std::mem::size_of::<T>());
    // SAFETY: `value` is a plain `#[repr(C)]` struct of integers; n <= its size and <= what
    // the caller promised writable.
    std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), out.cast::<u8>(), n);
    Ok(())
}
