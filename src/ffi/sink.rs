//! `perfsink_sink`: the sink handle and its exported functions.
//!
//! Lifetime: `perfsink_sink_close` ends the sink's work but does not free the handle, so a
//! close racing other calls, a second close and a call after close are all safe (they get
//! `PERFSINK_CLOSED`, a repeated close the same report); `perfsink_sink_free` frees it once no
//! thread uses it any more (a garbage-collected host: from its finalizer).

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::boundary::{guard, infallible, out_arg, ref_arg, slice_arg, str_arg, write_sized};
use super::error::{copy_str, fail, fail_with, FfiResult};
use super::points::CPoints;
use super::result::perfsink_result;
use super::types::{
    self, close_outcome, perfsink_close_report, perfsink_field, perfsink_metric_kind,
    perfsink_point, perfsink_stats, perfsink_tag, PERFSINK_TIMESTAMP_NOW, STATS_SIZE_1_0,
};
use crate::error::Error;
use crate::model::now_ns;
use crate::sink::Sink;
use crate::Config;

/// A sink handle. Safe to use from many threads at once, and closing it while other threads
/// still call in is safe too; free it (`perfsink_sink_free`) once no thread uses it.
pub struct perfsink_sink {
    sink: Sink,
    /// Set by the first `perfsink_sink_close`: from then on every call but close, free and
    /// `perfsink_sink_last_write_error` returns `PERFSINK_CLOSED`.
    closed: AtomicBool,
}

impl perfsink_sink {
    /// The sink, unless the handle was closed. A call that passes this check while another
    /// thread closes is refused by the sink itself (`Error::Closed`) or counted as usual.
    fn live(&self) -> FfiResult<&Sink> {
        if self.closed.load(Ordering::Acquire) {
            return Err(fail_with(&Error::Closed));
        }
        Ok(&self.sink)
    }

    #[cfg(test)]
    pub(crate) fn sink(&self) -> &Sink {
        &self.sink
    }
}

/// The live sink behind a handle.
///
/// # Safety
/// `sink` must be NULL or a handle that was not freed.
pub(super) unsafe fn live<'a>(sink: *const perfsink_sink) -> FfiResult<&'a Sink> {
    ref_arg(sink, "sink")?.live()
}

pub(super) fn open_with(config: Result<Config, Error>, out: *mut *mut perfsink_sink) -> FfiResult {
    let out = out_arg(out, "out")?;
    let sink = config.and_then(Sink::open)?;
    let handle = Box::new(perfsink_sink {
        sink,
        closed: AtomicBool::new(false),
    });
    // SAFETY: `out` is non-NULL and the caller promises it is writable.
    unsafe { *out = Box::into_raw(handle) };
    Ok(())
}

/// Opens a sink from a `KEY=value;KEY=value` configuration string (`(ptr, len)` UTF-8; the keys
/// are the environment variable names of the README). `INFLUXDB_URL` absent: reporting is
/// disabled (logged as a warning; `perfsink_sink_enabled` tells) and every call succeeds
/// without doing anything. On success `*out` holds the handle; free it with
/// `perfsink_sink_free`.
///
/// # Safety
/// `config` must point to `config_len` readable bytes; `out` must be writable; `err` must hold
/// `err_len` writable bytes or be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_open(
    config: *const c_char,
    config_len: usize,
    out: *mut *mut perfsink_sink,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let text = str_arg(config, config_len, "config")?;
        open_with(Config::from_kv(text), out)
    })
}

/// Opens a sink configured from the `INFLUXDB_*` and `PERFSINK_*` environment variables.
///
/// # Safety
/// `out` must be writable; `err` as for `perfsink_sink_open`.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_open_env(
    out: *mut *mut perfsink_sink,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || open_with(Config::from_env(), out))
}

/// Opens a sink configured from the `INFLUXDB_*` and `PERFSINK_*` environment variables with
/// the `KEY=value;...` pairs of `config` (as `perfsink_sink_open` reads them) winning over
/// them: a binding's arguments (`INFLUXDB_URL`, `INFLUXDB_DB`, any key) over the
/// environment the user set. A key may also be given as its short lowercase name
/// (`batch_lines` for `PERFSINK_BATCH_LINES`, `token` for `INFLUXDB_TOKEN`); an unknown key
/// is `PERFSINK_CONFIG`. An empty value unsets the key (`INFLUXDB_URL=` disables
/// reporting). ABI 1.3.
///
/// # Safety
/// As for `perfsink_sink_open`.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_open_env_with(
    config: *const c_char,
    config_len: usize,
    out: *mut *mut perfsink_sink,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let text = str_arg(config, config_len, "config")?;
        open_with(Config::from_env_with_overrides(text), out)
    })
}

/// Writes to `*out` whether the sink reports to InfluxDB (`false`: opened without
/// `INFLUXDB_URL`, every call succeeds and nothing is sent).
///
/// # Safety
/// `sink` must be NULL or a handle not yet freed; `out` must be writable; `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_enabled(
    sink: *const perfsink_sink,
    out: *mut bool,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        *out_arg(out, "out")? = sink.enabled();
        Ok(())
    })
}

/// Registers a series (measurement + tags) for the fast path and writes its id to
/// `*out_series`. Values of its points go to the field `value_field` (NULL/0: `value`).
/// Registering the same series again returns the same id.
///
/// # Safety
/// Every `(ptr, len)` pair must be readable for its length; `out_series` must be writable;
/// `sink` and `err` as above.
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
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        let out_series = out_arg(out_series, "out_series")?;
        let measurement = str_arg(measurement, measurement_len, "measurement")?;
        let tags = types::tags(tags, tag_count)?;
        let field = str_arg(value_field, value_field_len, "value_field")?;
        let field = if field.is_empty() { "value" } else { field };
        *out_series = sink.register_series(measurement, &tags, field)?;
        Ok(())
    })
}

/// Sets what the values of series `series` mean (one of `perfsink_metric_kind`): which
/// statistics its intervals carry in the aggregated mode (a series nobody set is a trend).
/// Accepted and without effect in raw mode. ABI 1.1.
///
/// # Safety
/// `sink` and `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_set_series_kind(
    sink: *const perfsink_sink,
    series: u32,
    kind: u32,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        let Some(kind) = perfsink_metric_kind::from_u32(kind) else {
            return Err(fail(
                perfsink_result::PERFSINK_INVALID_ARGUMENT,
                format!("kind {kind} is not a perfsink_metric_kind"),
            ));
        };
        sink.set_series_kind(series, kind.into())?;
        Ok(())
    })
}

/// The fast path: submits `count` points. Never waits on the network (at most the queue
/// policy's bound). Returns `PERFSINK_OK` when every point was taken; otherwise the code of
/// the first refusal (the other points are still taken, and every refused one is counted).
/// `*out_accepted` (optional) receives how many were taken. A point's `timestamp_ns` may be
/// `PERFSINK_TIMESTAMP_NOW`; an extra field named like the series' value field, or a key
/// given twice, refuses the point (`PERFSINK_INVALID_INPUT`, counted in `rejected_invalid`).
///
/// Consecutive points with the same `fields` array (pointer and count, as the points of one
/// tag set may share) reuse its encoding instead of reading it again.
///
/// # Safety
/// `points` must point to `count` points whose field arrays and strings are readable;
/// `sink` and `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_submit(
    sink: *const perfsink_sink,
    points: *const perfsink_point,
    count: usize,
    out_accepted: *mut usize,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        let points = slice_arg(points, count, "points")?;
        let mut source = CPoints::new(points);
        let submitted = sink.submit_source(points.len(), &mut source);
        if !out_accepted.is_null() {
            *out_accepted = submitted.accepted;
        }
        source.finish(submitted)
    })
}

/// The convenience path: one point with a measurement, tags and typed fields (each key once),
/// in one call. `timestamp_ns` is ns since the epoch, or `PERFSINK_TIMESTAMP_NOW`.
///
/// # Safety
/// Every pointer must be readable for its length or count; `sink` and `err` as above.
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
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        let read = (|| -> FfiResult<_> {
            Ok((
                str_arg(measurement, measurement_len, "measurement")?,
                types::tags(tags, tag_count)?,
                types::fields(fields, field_count)?,
            ))
        })();
        // A point that cannot be read is refused like an invalid one, and counted as such.
        let (measurement, tags, fields) = read.inspect_err(|_| sink.count_unreadable(1))?;
        let ts = match timestamp_ns {
            PERFSINK_TIMESTAMP_NOW => now_ns(),
            ts => ts,
        };
        Ok(sink.record(measurement, &tags, &fields, ts)?)
    })
}

/// Sends everything submitted so far and waits until InfluxDB confirmed or refused it, at
/// most `timeout_ms`. `PERFSINK_TIMEOUT` when that was not enough (nothing is lost: the
/// points stay queued).
///
/// # Safety
/// `sink` and `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_flush(
    sink: *const perfsink_sink,
    timeout_ms: u32,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        Ok(sink.flush(Duration::from_millis(timeout_ms.into()))?)
    })
}

/// Waits until every point accepted so far is kept — appended to the spool (forced to the
/// disk first under `PERFSINK_SPOOL_FSYNC=always`) or delivered — at most `timeout_ms`. A
/// process killed after it returned `PERFSINK_OK` loses none of those points: the next sink
/// on the same `PERFSINK_SPOOL_DIR` delivers them. Without a spool it is
/// `perfsink_sink_flush`. `PERFSINK_TIMEOUT` when that was not enough (the spool's disk full
/// or at its cap, see the last write error). Since ABI 1.4.
///
/// # Safety
/// `sink` and `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_sync(
    sink: *const perfsink_sink,
    timeout_ms: u32,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        Ok(sink.sync(Duration::from_millis(timeout_ms.into()))?)
    })
}

/// Copies the sink's counters into `*out`: at most `out_size` bytes, pass `sizeof *out`
/// (a program built against an older, shorter `perfsink_stats` keeps working; counters are
/// only ever appended). `PERFSINK_INVALID_ARGUMENT` when `out_size` is below the size of the
/// first version. After close: `PERFSINK_CLOSED` (the close report has the final counters).
///
/// # Safety
/// `out` must hold `out_size` writable bytes; `sink` and `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_stats(
    sink: *const perfsink_sink,
    out: *mut perfsink_stats,
    out_size: usize,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let sink = live(sink)?;
        let stats: perfsink_stats = sink.stats().into();
        write_sized(&stats, out, out_size, STATS_SIZE_1_0, "out")
    })
}

/// Copies the latest write failure the sink saw (NUL-terminated, truncated at a character
/// boundary) into `buf` and returns its full length; 0 when there was none. Works after
/// close too. Infallible; NULL `sink` gives 0.
///
/// # Safety
/// `buf` must hold `buf_len` writable bytes, or be NULL; `sink` must be NULL or a handle not
/// yet freed.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_last_write_error(
    sink: *const perfsink_sink,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    infallible(0, || {
        let Some(sink) = sink.as_ref() else {
            return 0;
        };
        copy_str(&sink.sink.last_error().unwrap_or_default(), buf, buf_len)
    })
}

/// Copies where the sink's points go, for humans (`http://127.0.0.1:8086, db k6`; never
/// credentials; `disabled (no INFLUXDB_URL)` for a disabled sink) into `buf` (NUL-terminated,
/// truncated at a character boundary) and returns its full length. Works after close too.
/// Infallible; NULL `sink` gives 0. (ABI 1.3)
///
/// # Safety
/// As `perfsink_sink_last_write_error`.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_describe(
    sink: *const perfsink_sink,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    infallible(0, || {
        let Some(sink) = sink.as_ref() else {
            return 0;
        };
        let text = match &sink.sink.config().endpoint {
            Some(e) => e.describe(),
            None => "disabled (no INFLUXDB_URL)".to_string(),
        };
        copy_str(&text, buf, buf_len)
    })
}

/// Copies the v1 database the sink writes to, as the configuration resolved it (`INFLUXDB_DB`,
/// the URL's path, or the default `k6`), into `buf` like `perfsink_sink_describe` and returns
/// its full length; 0 for a disabled sink or a v2 bucket. A host that starts other tools can
/// hand them this name so that everything lands in one database. Infallible. (ABI 1.3)
///
/// # Safety
/// As `perfsink_sink_last_write_error`.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_database(
    sink: *const perfsink_sink,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    infallible(0, || {
        let Some(sink) = sink.as_ref() else {
            return 0;
        };
        match sink
            .sink
            .config()
            .endpoint
            .as_ref()
            .and_then(|e| e.database())
        {
            Some(db) => copy_str(db, buf, buf_len),
            None => 0,
        }
    })
}

/// Delivers what is left (within `PERFSINK_CLOSE_TIMEOUT_MS`), stops the writer and, when
/// `out` is not NULL, writes the final report there (at most `out_size` bytes: pass
/// `sizeof *out`). Returns `PERFSINK_OK` when every accepted point was delivered, and
/// `PERFSINK_UNDELIVERED` when some were not (timed out, writing stopped) or are kept in the
/// spool — the report says how many. Idempotent and thread-safe: a repeated close returns the
/// same status and report; calls racing with it or made after it get `PERFSINK_CLOSED`. The
/// handle stays allocated: free it with `perfsink_sink_free`. NULL `sink` is a no-op (OK).
///
/// # Safety
/// `sink` must be NULL or a handle not yet freed; `out` must hold `out_size` writable bytes
/// or be NULL; `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_close(
    sink: *const perfsink_sink,
    out: *mut perfsink_close_report,
    out_size: usize,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let Some(handle) = sink.as_ref() else {
            return Ok(());
        };
        handle.closed.store(true, Ordering::Release);
        close_outcome(&handle.sink.close(), out, out_size)
    })
}

/// Frees the handle, closing it first if that was not done (its report is then lost: close
/// first to read it). NULL is a no-op. Call it once, when no thread uses the handle any more.
/// Infallible.
///
/// # Safety
/// `sink` must be NULL or a handle from `perfsink_sink_open*` not yet freed, that no other
/// thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn perfsink_sink_free(sink: *mut perfsink_sink) {
    if sink.is_null() {
        return;
    }
    // SAFETY: the caller gives up the handle; dropping the sink closes it.
    let handle = Box::from_raw(sink);
    infallible((), move || drop(handle));
}
#[cfg(test)]
pub(crate) mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::ffi::result::perfsink_result::*;
    use crate::ffi::types::perfsink_field_type::*;
    use crate::model::{Field, FieldValue, Point, Tag};

    /// A null InfluxDB on loopback that keeps the (gunzipped) bodies it is sent.
    pub(crate) fn capture() -> (u16, Arc<Mutex<Vec<u8>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let keep = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let keep = keep.clone();
                std::thread::spawn(move || {
                    let mut w = conn.try_clone().unwrap();
                    let mut r = BufReader::new(conn);
                    loop {
                        let (mut len, mut gzip, mut line) = (0usize, false, String::new());
                        loop {
                            line.clear();
                            if r.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            let l = line.to_ascii_lowercase();
                            if let Some(v) = l.strip_prefix("content-length:") {
                                len = v.trim().parse().unwrap();
                            }
                            gzip |= l.starts_with("content-encoding:") && l.contains("gzip");
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        if gzip {
                            let mut plain = Vec::new();
                            flate2::read::GzDecoder::new(&body[..])
                                .read_to_end(&mut plain)
                                .unwrap();
                            body = plain;
                        }
                        keep.lock().unwrap().extend_from_slice(&body);
                        w.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").unwrap();
                    }
                });
            }
        });
        (port, got)
    }

    fn open(port: u16) -> *mut perfsink_sink {
        let cfg = format!(
            "INFLUXDB_URL=http://127.0.0.1:{port}/db;PERFSINK_CREATE_DATABASE=false;\
             PERFSINK_SELF_METRICS_INTERVAL_MS=0"
        );
        let mut sink = std::ptr::null_mut();
        let rc = unsafe {
            perfsink_sink_open(
                cfg.as_ptr().cast(),
                cfg.len(),
                &mut sink,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_OK);
        sink
    }

    fn c_field(key: &'static str, value: FieldValue<'static>) -> perfsink_field {
        let mut f = perfsink_field {
            key: key.as_ptr().cast(),
            key_len: key.len(),
            kind: 0,
            bool_value: 0,
            float_value: 0.0,
            int_value: 0,
            uint_value: 0,
            string_value: std::ptr::null(),
            string_len: 0,
        };
        match value {
            FieldValue::Float(v) => (f.kind, f.float_value) = (PERFSINK_FIELD_FLOAT as u32, v),
            FieldValue::Int(v) => (f.kind, f.int_value) = (PERFSINK_FIELD_INT as u32, v),
            FieldValue::UInt(v) => (f.kind, f.uint_value) = (PERFSINK_FIELD_UINT as u32, v),
            FieldValue::Bool(v) => (f.kind, f.bool_value) = (PERFSINK_FIELD_BOOL as u32, v as u8),
            FieldValue::Str(s) => {
                f.kind = PERFSINK_FIELD_STRING as u32;
                (f.string_value, f.string_len) = (s.as_ptr().cast(), s.len());
            }
        }
        f
    }

    fn c_point(series: u32, value: f64, ts: i64, fields: &[perfsink_field]) -> perfsink_point {
        perfsink_point {
            series,
            field_count: fields.len() as u32,
            fields: if fields.is_empty() {
                std::ptr::null()
            } else {
                fields.as_ptr()
            },
            value,
            timestamp_ns: ts,
        }
    }

    /// Submits `points`: the code, how many were accepted and the call's message.
    fn submit_msg(
        sink: *mut perfsink_sink,
        points: &[perfsink_point],
    ) -> (perfsink_result, usize, String) {
        let mut accepted = usize::MAX;
        let mut buf = [b'X' as c_char; 512];
        let rc = unsafe {
            perfsink_sink_submit(
                sink,
                points.as_ptr(),
                points.len(),
                &mut accepted,
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        (rc, accepted, msg.to_str().unwrap().to_string())
    }

    fn submit(sink: *mut perfsink_sink, points: &[perfsink_point]) -> (perfsink_result, usize) {
        let (rc, accepted, _) = submit_msg(sink, points);
        (rc, accepted)
    }

    fn flush(sink: *mut perfsink_sink) -> perfsink_result {
        unsafe { perfsink_sink_flush(sink, 10_000, std::ptr::null_mut(), 0) }
    }

    fn close_and_free(sink: *mut perfsink_sink) {
        unsafe {
            perfsink_sink_close(sink, std::ptr::null_mut(), 0, std::ptr::null_mut(), 0);
            perfsink_sink_free(sink);
        }
    }

    /// Points sharing field arrays (in runs, alternating, interleaved with points without
    /// fields or with arrays of their own) are written byte for byte as the Rust API writes
    /// the same points.
    #[test]
    fn describe_and_database_tell_where_points_go_also_after_close() {
        let text = |f: unsafe extern "C" fn(*const perfsink_sink, *mut c_char, usize) -> usize,
                    sink: *mut perfsink_sink| {
            let mut buf = [0 as c_char; 128];
            let n = unsafe { f(sink, buf.as_mut_ptr(), buf.len()) };
            let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
            assert_eq!(n, s.to_bytes().len());
            s.to_str().unwrap().to_string()
        };
        // Nothing listens on port 9: the sink never needs to reach it for this.
        let sink = open(9);
        assert_eq!(
            text(perfsink_sink_describe, sink),
            "http://127.0.0.1:9, db db"
        );
        assert_eq!(text(perfsink_sink_database, sink), "db");
        close_only(sink);
        assert_eq!(text(perfsink_sink_database, sink), "db");
        unsafe { perfsink_sink_free(sink) };

        let mut off = std::ptr::null_mut();
        let cfg = "PERFSINK_BATCH_LINES=10";
        let rc = unsafe {
            perfsink_sink_open(
                cfg.as_ptr().cast(),
                cfg.len(),
                &mut off,
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_OK);
        assert_eq!(
            text(perfsink_sink_describe, off),
            "disabled (no INFLUXDB_URL)"
        );
        assert_eq!(text(perfsink_sink_database, off), "");
        unsafe { perfsink_sink_free(off) };
        assert_eq!(
            unsafe { perfsink_sink_database(std::ptr::null(), std::ptr::null_mut(), 0) },
            0
        );
    }

    /// Closes without freeing (the handle stays readable), not waiting on an absent server.
    fn close_only(sink: *mut perfsink_sink) {
        unsafe { perfsink_sink_close(sink, std::ptr::null_mut(), 0, std::ptr::null_mut(), 0) };
    }

    #[test]
    fn shared_field_arrays_are_written_as_the_rust_api_writes_them() {
        let (port, got) = capture();
        let c = open(port);
        let tags = [Tag::new("method", "GET"), Tag::new("name", "x")];
        let rust = Sink::open(
            Config::from_kv(&format!(
                "INFLUXDB_URL=http://127.0.0.1:{port}/db;PERFSINK_CREATE_DATABASE=false;\
             PERFSINK_SELF_METRICS_INTERVAL_MS=0"
            ))
            .unwrap(),
        )
        .unwrap();
        let ids: Vec<u32> = (0..3)
            .map(|i| {
                let m = format!("m{i}");
                let a = unsafe { (*c).sink() }
                    .register_series(&m, &tags, "value")
                    .unwrap();
                assert_eq!(rust.register_series(&m, &tags, "value").unwrap(), a);
                a
            })
            .collect();
        let sets: [&[Field<'static>]; 3] = [
            &[
                Field::new("url", FieldValue::Str("https://a/?q=\"x\\y\"")),
                Field::new("ok", FieldValue::Bool(true)),
            ],
            &[Field::new("vu", FieldValue::Int(7))],
            &[
                Field::new("n", FieldValue::UInt(3)),
                Field::new("f", FieldValue::Float(0.25)),
                Field::new("Zürich ✓", FieldValue::Str("")),
                Field::new(
                    "a key of more than sixty-four bytes, which is read the slower way: 70+",
                    FieldValue::Str("é"),
                ),
            ],
        ];
        let c_sets: Vec<Vec<perfsink_field>> = sets
            .iter()
            .map(|s| s.iter().map(|f| c_field(f.key, f.value)).collect())
            .collect();
        // Which set each point uses (3: none, 4: an array of its own with the same fields).
        let pattern = [0, 0, 0, 1, 1, 0, 3, 0, 0, 2, 4, 4, 1, 2, 1, 1, 1, 3, 3, 0];
        let own: Vec<Vec<perfsink_field>> = pattern
            .iter()
            .map(|_| sets[1].iter().map(|f| c_field(f.key, f.value)).collect())
            .collect();
        let t0 = 1_700_000_000_000_000_000i64;
        let mut c_points = Vec::new();
        let mut r_points = Vec::new();
        for (i, &s) in pattern.iter().enumerate() {
            let (series, value, ts) = (ids[i % 3], i as f64 * 1.5, t0 + i as i64);
            let (c_fields, r_fields): (&[perfsink_field], &[Field]) = match s {
                3 => (&[], &[]),
                4 => (&own[i], sets[1]),
                s => (&c_sets[s], sets[s]),
            };
            c_points.push(c_point(series, value, ts, c_fields));
            r_points.push(Point {
                series,
                value,
                timestamp_ns: ts,
                extra_fields: r_fields,
            });
        }
        assert_eq!(submit(c, &c_points), (PERFSINK_OK, pattern.len()));
        assert_eq!(flush(c), PERFSINK_OK);
        let from_c = std::mem::take(&mut *got.lock().unwrap());
        assert_eq!(rust.submit(&r_points).accepted, pattern.len());
        rust.flush(Duration::from_secs(10)).unwrap();
        let from_rust = std::mem::take(&mut *got.lock().unwrap());
        assert_eq!(
            from_c.iter().filter(|&&b| b == b'\n').count(),
            pattern.len()
        );
        assert_eq!(
            String::from_utf8(from_c).unwrap(),
            String::from_utf8(from_rust).unwrap()
        );
        assert!(String::from_utf8_lossy(&got.lock().unwrap()).is_empty());
        close_and_free(c);
        rust.close();
    }

    /// A point with unreadable fields is refused for them, even when its series, its value or
    /// an earlier field is bad too, and each such point gets its own message; a shared array
    /// with a bad value refuses every point that uses it.
    #[test]
    fn unreadable_fields_are_the_reason_given_first() {
        let (port, got) = capture();
        let c = open(port);
        let id = unsafe { (*c).sink() }
            .register_series("m", &[], "value")
            .unwrap();
        let t0 = 1_700_000_000_000_000_000i64;
        let mut bad = [
            c_field("a", FieldValue::Float(f64::NAN)),
            c_field("b", FieldValue::Int(1)),
        ];
        bad[1].kind = 77;
        let nan = [c_field("a", FieldValue::Float(f64::NAN))];
        let good = [c_field("a", FieldValue::Int(1))];
        for p in [
            c_point(id, 1.0, t0, &bad),
            c_point(999, 1.0, t0, &bad),
            c_point(id, f64::NAN, t0, &bad),
        ] {
            let (rc, accepted, msg) = submit_msg(c, &[p]);
            assert_eq!((rc, accepted), (PERFSINK_INVALID_ARGUMENT, 0));
            assert!(
                msg.contains("point 0: field \"b\" has unknown type 77"),
                "{msg}"
            );
        }
        let points = [
            c_point(id, 1.0, t0, &good),
            c_point(id, 2.0, t0 + 1, &nan),
            c_point(id, 3.0, t0 + 2, &nan),
            c_point(id, 4.0, t0 + 3, &nan),
            c_point(id, 5.0, t0 + 4, &good),
            c_point(id, 6.0, t0 + 5, &bad),
            c_point(id, 7.0, t0 + 6, &bad),
            c_point(id, 8.0, t0 + 7, &good),
            c_point(id, 9.0, t0 + 8, &good),
        ];
        let (rc, accepted, msg) = submit_msg(c, &points);
        assert_eq!((rc, accepted), (PERFSINK_INVALID_VALUE, 4));
        assert!(msg.starts_with("5 of 9 points not taken (5 rejected, 0 dropped)"));
        let (rc, accepted, msg) = submit_msg(c, &points[5..]);
        assert_eq!((rc, accepted), (PERFSINK_INVALID_ARGUMENT, 2));
        assert!(msg.contains("first: point 0: field \"b\""), "{msg}");
        assert_eq!(flush(c), PERFSINK_OK);
        let text = String::from_utf8(std::mem::take(&mut *got.lock().unwrap())).unwrap();
        assert_eq!(
            text,
            format!(
                "m value=1.0,a=1i {}\nm value=5.0,a=1i {}\nm value=8.0,a=1i {}\nm value=9.0,a=1i {}\n\
                 m value=8.0,a=1i {}\nm value=9.0,a=1i {}\n",
                t0,
                t0 + 4,
                t0 + 7,
                t0 + 8,
                t0 + 9,
                t0 + 10
            )
        );
        close_and_free(c);
    }

    /// An extra field named like the series' value field, or a key given twice, refuses the
    /// point, also when the array is shared and reused from the encoding cache, and for
    /// another series of the same array whose value field differs; `PERFSINK_TIMESTAMP_NOW`
    /// is the time of the call.
    #[test]
    fn repeated_field_keys_are_refused_and_now_is_now() {
        let (port, got) = capture();
        let c = open(port);
        let sink = unsafe { (*c).sink() };
        let value = sink.register_series("m", &[], "value").unwrap();
        let other = sink.register_series("m", &[], "v2").unwrap();
        let t0 = 1_700_000_000_000_000_000i64;
        let clash = [
            c_field("n", FieldValue::Int(1)),
            c_field("value", FieldValue::Int(2)),
        ];
        let twice = [
            c_field("n", FieldValue::Int(1)),
            c_field("n", FieldValue::Int(2)),
        ];
        let points = [
            c_point(other, 1.0, t0, &clash),
            c_point(other, 2.0, t0 + 1, &clash),
            c_point(value, 3.0, t0 + 2, &clash),
            c_point(other, 4.0, t0 + 3, &clash),
            c_point(value, 5.0, t0 + 4, &clash),
            c_point(other, 6.0, t0 + 5, &twice),
        ];
        let before = sink.stats().rejected_invalid;
        let (rc, accepted, msg) = submit_msg(c, &points);
        assert_eq!((rc, accepted), (PERFSINK_INVALID_INPUT, 3), "{msg}");
        assert!(msg.contains("\"value\" is used twice"), "{msg}");
        assert_eq!(sink.stats().rejected_invalid - before, 3);
        let start = now_ns();
        let (rc, _, msg) = submit_msg(c, &[c_point(value, 7.0, PERFSINK_TIMESTAMP_NOW, &[])]);
        assert_eq!(rc, PERFSINK_OK, "{msg}");
        assert_eq!(msg, "", "success clears the message buffer");
        assert_eq!(flush(c), PERFSINK_OK);
        let end = now_ns();
        let text = String::from_utf8(std::mem::take(&mut *got.lock().unwrap())).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..3],
            [
                format!("m v2=1.0,n=1i,value=2i {t0}"),
                format!("m v2=2.0,n=1i,value=2i {}", t0 + 1),
                format!("m v2=4.0,n=1i,value=2i {}", t0 + 3),
            ]
        );
        let now: i64 = lines[3]
            .strip_prefix("m value=7.0 ")
            .unwrap()
            .parse()
            .unwrap();
        assert!((start..=end).contains(&now), "{start} <= {now} <= {end}");
        close_and_free(c);
    }
}

#[cfg(test)]
mod log_tests {
    use std::ffi::{c_char, c_void};
    use std::sync::Mutex;

    use super::*;
    use crate::ffi::log::{perfsink_log_set, PERFSINK_LOG_INFO, PERFSINK_LOG_WARN};
    use crate::ffi::result::perfsink_result::*;

    unsafe extern "C" fn keep(userdata: *mut c_void, level: u32, msg: *const c_char, len: usize) {
        let got = &*(userdata as *const Mutex<Vec<(u32, String)>>);
        let text = std::slice::from_raw_parts(msg.cast::<u8>(), len);
        assert_eq!(*msg.add(len), 0, "NUL-terminated too");
        got.lock()
            .unwrap()
            .push((level, String::from_utf8(text.to_vec()).unwrap()));
    }

    /// A sink opened without INFLUXDB_URL says so through the host's log callback, and
    /// `perfsink_sink_enabled` tells; after close every call but close gets CLOSED.
    #[test]
    fn a_disabled_sink_says_so_in_the_log_and_is_closed_for_good() {
        let _serial = crate::log::tests::LOGGER_TESTS.lock();
        let got = Box::new(Mutex::new(Vec::<(u32, String)>::new()));
        let userdata = &*got as *const Mutex<Vec<(u32, String)>> as *mut c_void;
        let mut sink = std::ptr::null_mut();
        let mut enabled = true;
        let mut err = [1 as c_char; 64];
        unsafe {
            perfsink_log_set(Some(keep), userdata, PERFSINK_LOG_INFO);
            let cfg = "PERFSINK_BATCH_LINES=10";
            let rc = perfsink_sink_open(
                cfg.as_ptr().cast(),
                cfg.len(),
                &mut sink,
                err.as_mut_ptr(),
                64,
            );
            perfsink_log_set(None, std::ptr::null_mut(), PERFSINK_LOG_WARN);
            assert_eq!((rc, err[0]), (PERFSINK_OK, 0));
            let rc = perfsink_sink_enabled(sink, &mut enabled, err.as_mut_ptr(), 64);
            assert_eq!((rc, enabled), (PERFSINK_OK, false));
            assert_eq!(
                perfsink_sink_close(sink, std::ptr::null_mut(), 0, std::ptr::null_mut(), 0),
                PERFSINK_OK
            );
            let rc = perfsink_sink_enabled(sink, &mut enabled, err.as_mut_ptr(), 64);
            assert_eq!(rc, PERFSINK_CLOSED);
            let msg = std::ffi::CStr::from_ptr(err.as_ptr()).to_str().unwrap();
            assert_eq!(msg, "sink is closed");
            assert_eq!(
                perfsink_sink_flush(sink, 0, std::ptr::null_mut(), 0),
                PERFSINK_CLOSED
            );
            assert_eq!(
                perfsink_sink_close(sink, std::ptr::null_mut(), 0, std::ptr::null_mut(), 0),
                PERFSINK_OK
            );
            perfsink_sink_free(sink);
        }
        // Other tests may open disabled sinks meanwhile: the logger is process-wide.
        let got = got.lock().unwrap();
        assert!(!got.is_empty());
        for (level, msg) in got.iter() {
            assert_eq!(*level, PERFSINK_LOG_WARN);
            assert!(msg.contains("INFLUXDB_URL is not set"), "{got:?}");
        }
    }
}
