//! Versions: the library's (`perfsink_version`) and the C ABI's (`perfsink_abi_version`).
//!
//! The ABI version changes by its own rules: minor when something is added (a function, a
//! result code, a counter appended to a size-versioned struct), major when anything a caller
//! may rely on changes. A binding checks `major == PERFSINK_ABI_VERSION_MAJOR` and
//! `minor >= ` the minor it was written for.

use std::ffi::c_char;

/// The major version of the C ABI this header describes.
pub const PERFSINK_ABI_VERSION_MAJOR: u32 = 1;
/// The minor version of the C ABI this header describes.
pub const PERFSINK_ABI_VERSION_MINOR: u32 = 4;

/// The C ABI version of the loaded library: `(major << 16) | minor`. Infallible.
#[no_mangle]
pub extern "C" fn perfsink_abi_version() -> u32 {
    (PERFSINK_ABI_VERSION_MAJOR << 16) | PERFSINK_ABI_VERSION_MINOR
}

/// The library version (`"0.1.0"`), a static NUL-terminated string. Infallible.
#[no_mangle]
pub extern "C" fn perfsink_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}
