//! `perfsink_sink`: the exported functions of the sink handle.

use std::ffi::c_char;
use std::time::Duration;

use super::boundary::{guard, ref_arg, slice_arg, str_arg, try_ffi};
use super::error::{copy_last_error, fail, fail_with, last_error_message, perfsink_result};
use super::types::{self, perfsink_field, perfsink_point, perfsink_stats, perfsink_tag};
use crate::error::Error;
use crate::lineproto::write_field;
use crate::lineproto::FieldOptions;
use crate::model::now_ns;
use crate::sink::{PointHead, PointSource, Sink, Submitted};
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
/// Consecutive points with the same `fields` array (pointer and count, as the points of one
/// tag set may share) reuse its encoding instead of reading it again.
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
        let mut source = CPoints::new(points);
        let submitted = sink.0.submit_source(points.len(), &mut source);
        if !out_accepted.is_null() {
            *out_accepted = submitted.accepted;
        }
        finish_submit(submitted, &source.unreadable)
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

/// The points of one `perfsink_sink_submit` call, read straight from C memory: no copy of the
/// batch and no allocation per point; each point's extra fields are checked and written into
/// its line as they are read. Points often share one field array (the fields of a tag set):
/// when a point has the same array (pointer and count: the same C memory, which cannot change
/// during the call) as the one before, its encoded bytes are kept, and the points after that
/// copy them instead of reading the array again.
struct CPoints<'a> {
    points: &'a [perfsink_point],
    /// The array of the previous point with fields.
    last_key: Option<FieldsKey>,
    /// `,k=v...` as written for `last_key`, once a second point used that array.
    encoded: Vec<u8>,
    encoded_valid: bool,
    unreadable: Vec<Unreadable>,
}

type FieldsKey = (*const perfsink_field, u32);

impl<'a> CPoints<'a> {
    fn new(points: &'a [perfsink_point]) -> Self {
        CPoints {
            points,
            last_key: None,
            encoded: Vec::new(),
            encoded_valid: false,
            unreadable: Vec::new(),
        }
    }

    /// Reads and writes the extra fields of point `i`.
    #[inline]
    fn encode_fields(
        &mut self,
        i: usize,
        key: FieldsKey,
        buf: &mut Vec<u8>,
        opts: FieldOptions,
    ) -> Result<(), Error> {
        // SAFETY: the caller of `perfsink_sink_submit` promises that the field arrays and
        // their strings are readable for the call.
        let fields = match unsafe { slice_arg(key.0, key.1 as usize, "fields") } {
            Ok(fields) => fields,
            Err(code) => return Err(self.note_unreadable(i, code)),
        };
        for f in fields {
            // SAFETY: as above.
            let field = match unsafe { types::field_fast(f) } {
                Some(field) => field,
                None => match unsafe { types::field(f) } {
                    Ok(field) => field,
                    Err(code) => return Err(self.note_unreadable(i, code)),
                },
            };
            buf.push(b',');
            if let Err(e) = write_field(buf, field.key, field.value, opts) {
                // A field after this one may be unreadable; that is reported first.
                return Err(self.refused(i, e));
            }
        }
        Ok(())
    }

    /// Records why point `i`'s fields cannot be read (the message `fail` just set).
    #[cold]
    fn note_unreadable(&mut self, i: usize, code: perfsink_result) -> Error {
        let message = format!("point {i}: {}", last_error_message());
        let error = Error::InvalidInput(message.clone());
        self.unreadable.push(Unreadable {
            code,
            message,
            error: error.clone(),
        });
        error
    }
}

impl PointSource for CPoints<'_> {
    #[inline]
    fn read(&mut self, i: usize) -> Result<PointHead, Error> {
        let p = &self.points[i];
        Ok(PointHead {
            series: p.series,
            value: p.value,
            timestamp_ns: p.timestamp_ns,
        })
    }

    #[inline]
    fn write_fields(
        &mut self,
        i: usize,
        buf: &mut Vec<u8>,
        opts: FieldOptions,
    ) -> Result<(), Error> {
        let p = &self.points[i];
        if p.field_count == 0 {
            return Ok(());
        }
        let key = (p.fields, p.field_count);
        if self.last_key == Some(key) {
            if self.encoded_valid {
                buf.extend_from_slice(&self.encoded);
                return Ok(());
            }
            // The second point with this array: keep its bytes for the points after it.
            let start = buf.len();
            self.encode_fields(i, key, buf, opts)?;
            self.encoded.clear();
            self.encoded.extend_from_slice(&buf[start..]);
            self.encoded_valid = true;
            return Ok(());
        }
        self.last_key = Some(key);
        self.encoded_valid = false;
        self.encode_fields(i, key, buf, opts)
    }

    /// A point with unreadable fields is refused for that first, as `perfsink_sink_record`
    /// refuses a point whose fields it cannot read before looking at anything else.
    #[cold]
    fn refused(&mut self, i: usize, reason: Error) -> Error {
        let p = &self.points[i];
        // SAFETY: as in `encode_fields`.
        let readable =
            unsafe { slice_arg(p.fields, p.field_count as usize, "fields") }.and_then(|fields| {
                fields
                    .iter()
                    .try_for_each(|f| unsafe { types::field(f) }.map(drop))
            });
        match readable {
            Ok(()) => reason,
            Err(code) => self.note_unreadable(i, code),
        }
    }
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
        let read = (|| {
            Ok((
                str_arg(measurement, measurement_len, "measurement")?,
                types::tags(tags, tag_count)?,
                types::fields(fields, field_count)?,
            ))
        })();
        // A point that cannot be read is refused like an invalid one, and counted as such.
        let (measurement, tags, fields) = match read {
            Ok(v) => v,
            Err(code) => {
                sink.0.count_unreadable(1);
                return code;
            }
        };
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

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::model::{Field, FieldValue, Point, Tag};
    use types::perfsink_field_type::*;

    /// A null InfluxDB on loopback that keeps the (gunzipped) bodies it is sent.
    fn capture() -> (u16, Arc<Mutex<Vec<u8>>>) {
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
        let rc = unsafe { perfsink_sink_open(cfg.as_ptr().cast(), cfg.len(), &mut sink) };
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

    fn submit(sink: *mut perfsink_sink, points: &[perfsink_point]) -> (perfsink_result, usize) {
        let mut accepted = usize::MAX;
        let rc =
            unsafe { perfsink_sink_submit(sink, points.as_ptr(), points.len(), &mut accepted) };
        (rc, accepted)
    }

    fn last_error() -> String {
        let mut buf = [0 as c_char; 512];
        let n = unsafe { perfsink_last_error(buf.as_mut_ptr(), buf.len()) };
        let bytes: Vec<u8> = buf[..n.min(511)].iter().map(|&c| c as u8).collect();
        String::from_utf8(bytes).unwrap()
    }

    /// Points sharing field arrays (in runs, alternating, interleaved with points without
    /// fields or with arrays of their own) are written byte for byte as the Rust API writes
    /// the same points.
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
                let a = unsafe { &(*c).0 }
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
        assert_eq!(unsafe { perfsink_sink_flush(c, 10_000) }, PERFSINK_OK);
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
        unsafe { perfsink_sink_close(c, std::ptr::null_mut()) };
        rust.close();
    }

    /// A point with unreadable fields is refused for them, even when its series, its value or
    /// an earlier field is bad too, and each such point gets its own message; a shared array
    /// with a bad value refuses every point that uses it.
    #[test]
    fn unreadable_fields_are_the_reason_given_first() {
        let (port, got) = capture();
        let c = open(port);
        let id = unsafe { &(*c).0 }
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
            assert_eq!(submit(c, &[p]), (PERFSINK_INVALID_ARGUMENT, 0));
            assert!(
                last_error().contains("point 0: field \"b\" has unknown type 77"),
                "{}",
                last_error()
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
        assert_eq!(submit(c, &points), (PERFSINK_INVALID_VALUE, 4));
        assert!(last_error().starts_with("5 of 9 points not taken (5 rejected, 0 dropped)"));
        assert_eq!(submit(c, &points[5..]), (PERFSINK_INVALID_ARGUMENT, 2));
        assert!(
            last_error().contains("first: point 0: field \"b\""),
            "{}",
            last_error()
        );
        assert_eq!(unsafe { perfsink_sink_flush(c, 10_000) }, PERFSINK_OK);
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
        unsafe { perfsink_sink_close(c, std::ptr::null_mut()) };
    }
}
