//! Failures of C calls and the per-call message buffer they are reported in.
//!
//! Every fallible export takes `char *err, size_t err_len` last: on failure the message is
//! written there (NUL-terminated, truncated at a character boundary), on success `err[0]` is
//! set to 0. Nothing is kept per thread, so a host that moves a call between OS threads (Go,
//! JVM virtual threads, Python releasing the GIL) reads the message of its own call.

use std::ffi::c_char;

use super::result::perfsink_result;
use crate::error::Error;

/// Why a C call failed: its code and message.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: perfsink_result,
    pub(crate) message: String,
}

/// The outcome of an export's body.
pub(crate) type FfiResult<T = ()> = Result<T, Failure>;

#[cold]
pub(crate) fn fail(code: perfsink_result, message: impl Into<String>) -> Failure {
    Failure {
        code,
        message: message.into(),
    }
}

#[cold]
pub(crate) fn fail_with(e: &Error) -> Failure {
    fail(e.into(), e.to_string())
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        fail_with(&e)
    }
}

/// Reports `outcome` in the caller's buffer and returns its code.
///
/// # Safety
/// `err` must hold `err_len` writable bytes, or be NULL.
pub(crate) unsafe fn report(
    outcome: FfiResult,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    match outcome {
        Ok(()) => {
            if !err.is_null() && err_len > 0 {
                *err = 0;
            }
            perfsink_result::PERFSINK_OK
        }
        Err(f) => {
            copy_str(&f.message, err, err_len);
            f.code
        }
    }
}

/// Copies `msg` into `buf` (NUL-terminated, truncated at a character boundary) and returns
/// its full length. NULL `buf` or `buf_len` 0 copies nothing.
///
/// # Safety
/// `buf` must hold `buf_len` writable bytes, or be NULL.
pub(crate) unsafe fn copy_str(msg: &str, buf: *mut c_char, buf_len: usize) -> usize {
    if !buf.is_null() && buf_len > 0 {
        let mut n = msg.len().min(buf_len - 1);
        while !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: the caller promises `buf` holds `buf_len` writable bytes; n < buf_len.
        std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
        *buf.add(n) = 0;
    }
    msg.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copied(msg: &str, len: usize) -> (usize, Vec<u8>) {
        let mut buf = vec![b'X'; 16];
        let n = unsafe { copy_str(msg, buf.as_mut_ptr().cast(), len) };
        (n, buf)
    }

    #[test]
    fn copies_stop_at_a_character_boundary_and_never_past_the_buffer() {
        assert_eq!(copied("abc", 16).1[..4], *b"abc\0");
        // "é" is two bytes: room for one of them copies none.
        let (n, buf) = copied("aé", 3);
        assert_eq!((n, &buf[..3]), (3, &b"a\0X"[..]));
        assert_eq!(copied("aé", 4).1[..4], *"aé\0".as_bytes());
        assert_eq!(copied("abc", 0).1[0], b'X');
        assert_eq!(unsafe { copy_str("abc", std::ptr::null_mut(), 8) }, 3);
    }

    #[test]
    fn success_clears_the_buffer_and_failure_fills_it() {
        let mut buf = [b'X' as c_char; 8];
        let code = unsafe {
            report(
                Err(fail(perfsink_result::PERFSINK_TIMEOUT, "late")),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        assert_eq!(code, perfsink_result::PERFSINK_TIMEOUT);
        assert_eq!(
            buf[..5].iter().map(|&c| c as u8).collect::<Vec<_>>(),
            b"late\0"
        );
        let code = unsafe { report(Ok(()), buf.as_mut_ptr(), buf.len()) };
        assert_eq!(
            (code, buf[0], buf[1] as u8),
            (perfsink_result::PERFSINK_OK, 0, b'a')
        );
        assert_eq!(
            unsafe { report(Ok(()), std::ptr::null_mut(), 0) },
            perfsink_result::PERFSINK_OK
        );
    }
}
