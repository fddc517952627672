//! `perfsink_sink`: the exported functions of the sink handle.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{guard, ref_arg, slice_arg, str_arg, try_ffi};
use super::error::{copy_last_error, fail, fail_with, last_error_message, perfsink_result};
use super::types::{self, perfsink_field, perfsink_point, perfsink_stats, perfsink_tag};
use crate::error::Error;
use crate::model::{now_ns, Field, Point};
use crate::sink::{Sink, Submitted};
use crate::Config;

use perfsink_result::*;

/// A sink handle. Safe to use from many threads at once; close it exactly once.
pub struct perfsink_sink(Sink);

/// Pass as `timestamp_ns` to `perfsink_sink_record` to stamp the point with the current time.
pub const PERFSINK_TIMESTAMP_NOW: i64 = -0x7FFF_FFFF_FFFF_FFFF - 1;

fn open_with(config: Result<Config, Error>, out: *mut *mut perfsink_sink) -> perfsink_result {
    if out.is_null() {
        return fail(PERFSINK_NULL_PARAMETER, "out is NULL");
    }
    let sink = match config.and_then(Sink::open) {
        Ok(s) => s,
        Err(e) => return fail_with(&e),
    };
    // SAFETY: `out` is non-NULL and the caller promises it is writable.
    unsafe { *out = Box::into_raw(Box::new(perfsink_sink(sink))) };
    PERFSINK_OK
}

/// Opens a sink from a `KEY=value;KEY=value` configuration string (`(ptr, len)` UTF-8; the keys
/// are the environment variable names of the README). `INFLUXDB_URL` absent: reporting is
/// disabled and every call succeeds without doing anything. On success `*out` holds the handle.
///
/// # Safety
/// `config` must point to `config_len` readable bytes; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_open(
    config: *const c_char,
    config_len: usize,
    out: *mut *mut perfsink_sink,
) -> perfsink_result {
    guard(|| {
        let text = try_ffi!(str_arg(config, config_len, "config"));
        open_with(Config::from_kv(text), out)
    })
}

/// Opens a sink configured from the `INFLUXDB_*` and `PERFSINK_*` environment variables.
///
/// # Safety
/// `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_open_env(out: *mut *mut perfsink_sink) -> perfsink_result {
    guard(|| open_with(Config::from_env(), out))
}

/// Registers a series (measurement + tags) for the fast path and writes its id to
/// `*out_series`. Values of its points go to the field `value_field` (NULL/0: `value`).
/// Registering the same series again returns the same id.
///
/// # Safety
/// Every `(ptr, len)` pair must be readable for its length; `out_series` must be writable.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_register_series(
    sink: *const perfsink_sink,
    measurement: *const c_char,
    measurement_len: usize,
    tags: *const perfsink_tag,
    tag_count: usize,
    value_field: *const c_char,
    value_field_len: usize,
    out_series: *mut u32,
) -> perfsink_result {
    guard(|| {
        let sink = try_ffi!(ref_arg(sink, "sink"));
        if out_series.is_null() {
            return fail(PERFSINK_NULL_PARAMETER, "out_series is NULL");
        }
        let measurement = try_ffi!(str_arg(measurement, measurement_len, "measurement"));
        let tags = try_ffi!(types::tags(tags, tag_count));
        let field = try_ffi!(str_arg(value_field, value_field_len, "value_field"));
        let field = if field.is_empty() { "value" } else { field };
        match sink.0.register_series(measurement, &tags, field) {
            Ok(id) => {
                *out_series = id;
                PERFSINK_OK
            }
            Err(e) => fail_with(&e),
        }
    })
}

/// The fast path: submits `count` points. Never waits on the network (at most the queue
/// policy's bound). Returns `PERFSINK_OK` when every point was taken; otherwise the code of
/// the first refusal (the other points are still taken, and every refused one is counted).
/// `*out_accepted` (optional) receives how many were taken.
///
/// # Safety
/// `points` must point to `count` points whose field arrays and strings are readable.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_submit(
    sink: *const perfsink_sink,
    points: *const perfsink_point,
    count: usize,
    out_accepted: *mut usize,
) -> perfsink_result {
    guard(|| {
        let sink = try_ffi!(ref_arg(sink, "sink"));
        let points = try_ffi!(slice_arg(points, count, "points"));
        let unreadable: Vec<Unreadable>;
        let submitted = if points.iter().all(|p| p.field_count == 0) {
            unreadable = Vec::new();
            sink.0.submit_with(points.len(), |i| {
                let p = &points[i];
                Ok(Point::new(p.series, p.value, p.timestamp_ns))
            })
        } else {
            let extra = point_fields(points);
            let submitted = sink.0.submit_with(points.len(), |i| {
                let p = &points[i];
                let fields = extra[i].as_ref().map_err(|u| u.error.clone())?;
                Ok(Point {
                    series: p.series,
                    value: p.value,
                    timestamp_ns: p.timestamp_ns,
                    extra_fields: fields,
                })
            });
            unreadable = extra.into_iter().filter_map(Result::err).collect();
            submitted
        };
        if !out_accepted.is_null() {
            *out_accepted = submitted.accepted;
        }
        finish_submit(submitted, &unreadable)
    })
}

/// Why the extra fields of a fast-path point could not be read (NULL, invalid UTF-8, unknown
/// type): the code `perfsink_sink_record` would return for them, and the message.
struct Unreadable {
    code: perfsink_result,
    message: String,
    /// How the point is refused inside the sink; unique per point (the message names it).
    error: Error,
}

/// Converts each point's extra fields; a point whose fields cannot be read gets the reason.
unsafe fn point_fields<'a>(
    points: &'a [perfsink_point],
) -> Vec<Result<Vec<Field<'a>>, Unreadable>> {
    points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            types::fields(p.fields, p.field_count as usize).map_err(|code| {
                let message = format!("point {i}: {}", last_error_message());
                Unreadable {
                    code,
                    error: Error::InvalidInput(message.clone()),
                    message,
                }
            })
        })
        .collect()
}

fn finish_submit(s: Submitted, unreadable: &[Unreadable]) -> perfsink_result {
    let Some(e) = s.first_error else {
        return PERFSINK_OK;
    };
    // A point whose fields could not be read keeps the code of the reason, as in `record`.
    let (code, first) = match unreadable.iter().find(|u| u.error == e) {
        Some(u) => (u.code, u.message.clone()),
        None => (perfsink_result::from(&e), e.to_string()),
    };
    let total = s.accepted + s.rejected + s.dropped;
    let msg = if total > 1 {
        format!(
            "{} of {total} points not taken ({} rejected, {} dropped); first: {first}",
            s.rejected + s.dropped,
            s.rejected,
            s.dropped
        )
    } else {
        first
    };
    fail(code, msg)
}

/// The convenience path: one point with a measurement, tags and typed fields, in one call.
/// `timestamp_ns` is ns since the epoch, or `PERFSINK_TIMESTAMP_NOW`.
///
/// # Safety
/// Every pointer must be readable for its length or count.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_record(
    sink: *const perfsink_sink,
    measurement: *const c_char,
    measurement_len: usize,
    tags: *const perfsink_tag,
    tag_count: usize,
    fields: *const perfsink_field,
    field_count: usize,
    timestamp_ns: i64,
) -> perfsink_result {
    guard(|| {
        let sink = try_ffi!(ref_arg(sink, "sink"));
        let measurement = try_ffi!(str_arg(measurement, measurement_len, "measurement"));
        let tags = try_ffi!(types::tags(tags, tag_count));
        let fields = try_ffi!(types::fields(fields, field_count));
        let ts = if timestamp_ns == PERFSINK_TIMESTAMP_NOW {
            now_ns()
        } else {
            timestamp_ns
        };
        match sink.0.record(measurement, &tags, &fields, ts) {
            Ok(()) => PERFSINK_OK,
            Err(e) => fail_with(&e),
        }
    })
}

/// Sends everything submitted so far and waits until InfluxDB confirmed or refused it, at
/// most `timeout_ms`. `PERFSINK_TIMEOUT` when that was not enough (nothing is lost: the
/// points stay queued).
///
/// # Safety
/// `sink` must be a live handle or NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_flush(
    sink: *const perfsink_sink,
    timeout_ms: u32,
) -> perfsink_result {
    guard(|| {
        let sink = try_ffi!(ref_arg(sink, "sink"));
        match sink.0.flush(Duration::from_millis(timeout_ms.into())) {
            Ok(()) => PERFSINK_OK,
            Err(e) => fail_with(&e),
        }
    })
}

/// Copies the sink's counters into `*out`.
///
/// # Safety
/// `sink` must be a live handle or NULL; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_stats(
    sink: *const perfsink_sink,
    out: *mut perfsink_stats,
) -> perfsink_result {
    guard(|| {
        let sink = try_ffi!(ref_arg(sink, "sink"));
        if out.is_null() {
            return fail(PERFSINK_NULL_PARAMETER, "out is NULL");
        }
        *out = sink.0.stats().into();
        PERFSINK_OK
    })
}

/// Copies the latest write failure the sink saw (NUL-terminated, truncated) into `buf` and
/// returns its full length; 0 when there was none. Infallible; NULL `sink` gives 0.
///
/// # Safety
/// `buf` must hold `buf_len` writable bytes, or be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_last_write_error(
    sink: *const perfsink_sink,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    let mut n = 0;
    guard(|| {
        let sink = try_ffi!(ref_arg(sink, "sink"));
        let msg = sink.0.last_error().unwrap_or_default();
        n = copy_str(&msg, buf, buf_len);
        PERFSINK_OK
    });
    n
}

/// Delivers what is left (within `PERFSINK_CLOSE_TIMEOUT_MS`), stops the writer, frees the
/// handle and, when `out` is not NULL, writes the final counters there. NULL `sink` is a
/// no-op. The handle must not be used again, by any thread, once this is called.
///
/// # Safety
/// `sink` must come from `perfsink_sink_open*` and not be closed yet, or be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_close(
    sink: *mut perfsink_sink,
    out: *mut perfsink_stats,
) -> perfsink_result {
    guard(|| {
        if sink.is_null() {
            return PERFSINK_OK;
        }
        let sink = Box::from_raw(sink);
        let report = sink.0.close();
        if !out.is_null() {
            *out = report.stats.into();
        }
        drop(sink);
        PERFSINK_OK
    })
}

/// Copies this thread's last error message into `buf` (NUL-terminated, truncated) and returns
/// its full length in bytes. `buf` may be NULL to ask only the length. Infallible.
///
/// # Safety
/// `buf` must hold `buf_len` writable bytes, or be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_last_error(buf: *mut c_char, buf_len: usize) -> usize {
    copy_last_error(buf, buf_len)
}

/// The name of a result code as a static NUL-terminated string (`"PERFSINK_TIMEOUT"`), or
/// `"PERFSINK_UNKNOWN"` for a number that is not a result code. Infallible.
#[no_mangle]
pub extern "C" fn perfsink_result_name(result: u32) -> *const c_char {
    let name = (0..=600)
        .contains(&result)
        .then(|| code_from_u32(result))
        .flatten()
        .map(|r| r.name())
        .unwrap_or(c"PERFSINK_UNKNOWN");
    name.as_ptr()
}

fn code_from_u32(n: u32) -> Option<perfsink_result> {
    ALL_RESULTS.iter().copied().find(|r| *r as u32 == n)
}

const ALL_RESULTS: [perfsink_result; 15] = [
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
    PERFSINK_AUTH,
    PERFSINK_IO,
];

/// The library version (`"0.1.0"`), a static NUL-terminated string. Infallible.
#[no_mangle]
pub extern "C" fn perfsink_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// Copies `msg` into `buf` (NUL-terminated, truncated at a character boundary) and returns
/// its full length.
pub(crate) fn copy_str(msg: &str, buf: *mut c_char, buf_len: usize) -> usize {
    if !buf.is_null() && buf_len > 0 {
        let mut n = msg.len().min(buf_len - 1);
        while !msg.is_char_boundary(n) {
            n -= 1;
        }
        // SAFETY: the caller promises `buf` holds `buf_len` writable bytes; n < buf_len.
        unsafe {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), n);
            *buf.add(n) = 0;
        }
    }
    msg.len()
}
