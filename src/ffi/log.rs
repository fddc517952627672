//! `perfsink_log_set`: routing the library's messages (`crate::log`) to the host.

use std::ffi::{c_char, c_void};
use std::sync::Arc;

use super::boundary::infallible;
use crate::log::{self, Level};

/// No message at all (a `max_level` for `perfsink_log_set`).
pub const PERFSINK_LOG_OFF: u32 = 0;
/// Something failed that the host must know about.
pub const PERFSINK_LOG_ERROR: u32 = 1;
/// Something failed and perfsink works around it (the default level).
pub const PERFSINK_LOG_WARN: u32 = 2;
/// Worth knowing once (a sink opened with reporting disabled).
pub const PERFSINK_LOG_INFO: u32 = 3;
/// Detail for debugging perfsink itself.
pub const PERFSINK_LOG_DEBUG: u32 = 4;

/// A log callback: `level` is one of `PERFSINK_LOG_ERROR..PERFSINK_LOG_DEBUG`; `msg` holds
/// `len` bytes of UTF-8 and is NUL-terminated too; it is valid only during the call.
pub type perfsink_log_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, level: u32, msg: *const c_char, len: usize)>;

/// The host's callback and its userdata. perfsink calls it from its own threads (the writer's
/// above all); making that safe is the host's promise in `perfsink_log_set`.
struct Callback {
    f: unsafe extern "C" fn(*mut c_void, u32, *const c_char, usize),
    userdata: *mut c_void,
}

// SAFETY: `perfsink_log_set` documents that the callback is called from any perfsink thread
// with this userdata; the host promises that is safe.
unsafe impl Send for Callback {}
unsafe impl Sync for Callback {}

impl log::Logger for Callback {
    fn log(&self, level: Level, message: &str) {
        let mut text = Vec::with_capacity(message.len() + 1);
        text.extend_from_slice(message.as_bytes());
        text.push(0);
        // SAFETY: the host's promise (see `perfsink_log_set`); `text` lives for the call.
        unsafe {
            (self.f)(
                self.userdata,
                level as u32,
                text.as_ptr().cast(),
                message.len(),
            )
        }
    }
}

/// Routes perfsink's messages, for the whole process, to `cb` (NULL: stderr, the default),
/// with `userdata` as its first argument, up to `max_level` (`PERFSINK_LOG_OFF`: nothing;
/// the default is `PERFSINK_LOG_WARN`; above `PERFSINK_LOG_DEBUG` counts as DEBUG).
///
/// The callback is called from perfsink's threads — the writer thread above all, also the
/// caller's own thread in `perfsink_sink_open*` — possibly from several at once. It must stay
/// valid (with its userdata) until it is replaced: when `perfsink_log_set` returns, no call of
/// the previous callback is still running and none follows. It must not call
/// `perfsink_log_set` itself. Infallible.
///
/// # Safety
/// `cb`, when not NULL, must be safe to call as described, with `userdata`, from any thread.
#[no_mangle]
pub unsafe extern "C" fn perfsink_log_set(
    cb: perfsink_log_fn,
    userdata: *mut c_void,
    max_level: u32,
) {
    infallible((), || {
        let logger = cb.map(|f| Arc::new(Callback { f, userdata }) as Arc<dyn log::Logger>);
        log::set_logger(logger, Level::from_u32(max_level));
    })
}
