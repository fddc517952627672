//! The C ABI's batch entry, `perfsink_sink_submit` (`src/ffi/points.rs`, `src/ffi/sink.rs`),
//! with `perfsink_sink_register_series`, `perfsink_sink_set_series_kind` and
//! `perfsink_sink_record`, on records built from the input as a C caller may hand them: any
//! series id, NaN and infinite values, any timestamp, field arrays shared between points (the
//! encoding cache), unknown field types, invalid UTF-8, NULL with a length, error buffers of
//! every size. Pointers are always valid for their lengths: that is the caller's side of the
//! contract, and what is checked here is the engine's.
//!
//! Three enabled sinks that never connect: raw 1.x (Go escaping, unsigned as integers), `both`
//! on 3.x (its escaping, ms) and `aggregate` on 2.x (s). Besides "no panic (a panic caught at
//! the boundary aborts here too), no sanitizer report", it checks:
//! - every refusal leaves a NUL-terminated message in the caller's buffer;
//! - `out_accepted` is at most the count; on the raw sink every point of a call is counted
//!   exactly once, in `accepted`, `rejected_invalid` or `dropped_queue_full`, and `accepted`
//!   grows by `out_accepted` (`perfsink_sink_record`: by 1 exactly when it returns OK).
#![no_main]

mod common;

use std::ffi::c_char;
use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use perfsink::ffi::result::perfsink_result;
use perfsink::ffi::sink::{
    perfsink_sink, perfsink_sink_describe, perfsink_sink_last_write_error, perfsink_sink_open,
    perfsink_sink_record, perfsink_sink_register_series, perfsink_sink_set_series_kind,
    perfsink_sink_stats, perfsink_sink_submit,
};
use perfsink::ffi::types::{
    perfsink_field, perfsink_point, perfsink_stats, perfsink_tag, PERFSINK_TIMESTAMP_NOW,
};

use perfsink_result::PERFSINK_OK;

/// A sink handle, shared by every input (opening one per input would start a writer each).
struct Handle(*const perfsink_sink);
// SAFETY: the ABI's handles are thread-safe (src/ffi/sink.rs); this one is never freed.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

const RAW: usize = 0;

fn sinks() -> &'static [Handle; 3] {
    static SINKS: OnceLock<[Handle; 3]> = OnceLock::new();
    SINKS.get_or_init(|| {
        [
            open(&common::unreachable_config("")),
            open(&common::unreachable_config(
                "INFLUXDB_TOKEN=t;INFLUXDB_ORG=o;INFLUXDB_BUCKET=b;INFLUXDB_VERSION=3;\
                 INFLUXDB_PRECISION=ms;PERFSINK_MODE=both",
            )),
            open(&common::unreachable_config(
                "INFLUXDB_TOKEN=t;INFLUXDB_BUCKET=b;INFLUXDB_VERSION=2;INFLUXDB_PRECISION=s;\
                 PERFSINK_MODE=aggregate;PERFSINK_AGGREGATE_MEMORY_MAX_BYTES=1048576",
            )),
        ]
    })
}

fn open(config: &str) -> Handle {
    let mut out: *mut perfsink_sink = ptr::null_mut();
    let mut err = [0u8; 512];
    // SAFETY: every pointer is valid for its length.
    let r = unsafe {
        perfsink_sink_open(
            config.as_ptr().cast(),
            config.len(),
            &mut out,
            err.as_mut_ptr().cast(),
            err.len(),
        )
    };
    assert_eq!(r, PERFSINK_OK, "{}", String::from_utf8_lossy(&err));
    Handle(out)
}

/// Names that mean something to the engine, so that the fuzzer meets them often.
const NAMES: [&str; 16] = [
    "value",
    "vu",
    "iter",
    "url",
    "status",
    "time",
    "_field",
    "_measurement",
    "http_req_duration",
    "a b",
    "k=v",
    "c,d",
    "é",
    "x\\",
    "#c",
    "\t",
];

/// A `(ptr, len)` string: a name, bytes of the input (any bytes), or NULL (with 0, or with a
/// length: refused).
fn string(u: &mut Unstructured<'_>) -> Result<(*const c_char, usize)> {
    Ok(match u.int_in_range(0u8..=15)? {
        0 => (ptr::null(), 0),
        1 => (ptr::null(), u.int_in_range(1usize..=8)?),
        2..=7 => {
            let name = NAMES[u.choose_index(NAMES.len())?];
            (name.as_ptr().cast(), name.len())
        }
        _ => {
            let len = u.int_in_range(0usize..=20)?;
            let b = u.bytes(len)?;
            (b.as_ptr().cast(), b.len())
        }
    })
}

fn float(u: &mut Unstructured<'_>) -> Result<f64> {
    Ok(match u.int_in_range(0u8..=9)? {
        0 => f64::from_bits(u.arbitrary()?),
        1 => f64::NAN,
        2 => f64::NEG_INFINITY,
        3 => f64::MAX,
        _ => f64::from(u.arbitrary::<i16>()?) / 8.0,
    })
}

fn timestamp(u: &mut Unstructured<'_>) -> Result<i64> {
    Ok(match u.int_in_range(0u8..=7)? {
        0 => PERFSINK_TIMESTAMP_NOW,
        1 => u.arbitrary()?,
        2 => i64::MAX - i64::from(u.arbitrary::<u8>()?),
        // Close together, so that the de-duplication meets ties.
        _ => 1_700_000_000_000_000_000 + i64::from(u.arbitrary::<u8>()?) * 1_000_000,
    })
}

fn field(u: &mut Unstructured<'_>) -> Result<perfsink_field> {
    let key = string(u)?;
    let kind = match u.int_in_range(0u8..=10)? {
        10 => u.arbitrary()?,
        k => u32::from(k % 5),
    };
    let s = string(u)?;
    Ok(perfsink_field {
        key: key.0,
        key_len: key.1,
        kind,
        bool_value: u.arbitrary()?,
        float_value: float(u)?,
        int_value: u.arbitrary()?,
        uint_value: u.arbitrary()?,
        string_value: s.0,
        string_len: s.1,
    })
}

/// An error buffer: NULL, or 1 to 300 bytes.
fn err_buf(u: &mut Unstructured<'_>) -> Result<Vec<u8>> {
    Ok(match u.int_in_range(0u8..=3)? {
        0 => Vec::new(),
        1 => vec![0xAA; 1],
        2 => vec![0xAA; usize::from(u.arbitrary::<u8>()?) + 1],
        _ => vec![0xAA; 300],
    })
}

fn err_ptr(buf: &mut [u8]) -> *mut c_char {
    if buf.is_empty() {
        ptr::null_mut()
    } else {
        buf.as_mut_ptr().cast()
    }
}

/// A refusal wrote a NUL-terminated message into a buffer that had room for one.
fn check_refusal(what: &str, r: perfsink_result, err: &[u8]) {
    assert_ne!(r, perfsink_result::PERFSINK_PANIC, "{what}: panic");
    if r != PERFSINK_OK && !err.is_empty() {
        assert!(
            err.contains(&0),
            "{what}: {r:?} without a NUL-terminated message"
        );
    }
}

fn stats(sink: *const perfsink_sink) -> perfsink_stats {
    let mut s = perfsink_stats::default();
    // SAFETY: `s` is writable for its size; NULL err.
    let r = unsafe {
        perfsink_sink_stats(
            sink,
            &mut s,
            std::mem::size_of::<perfsink_stats>(),
            ptr::null_mut(),
            0,
        )
    };
    assert_eq!(r, PERFSINK_OK);
    s
}

/// Points counted by a call: taken, refused as invalid, dropped for a full queue.
fn counted(before: &perfsink_stats, after: &perfsink_stats) -> (u64, u64) {
    let accepted = after.accepted - before.accepted;
    let refused = (after.rejected_invalid - before.rejected_invalid)
        + (after.dropped_queue_full - before.dropped_queue_full);
    (accepted, refused)
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let which = u.choose_index(3)?;
    let sink = sinks()[which].0;

    // Series, as a binding registers them.
    let mut series: Vec<u32> = Vec::new();
    for _ in 0..u.int_in_range(0u8..=3)? {
        let measurement = string(u)?;
        let mut tags = Vec::new();
        for _ in 0..u.int_in_range(0u8..=4)? {
            let (key, value) = (string(u)?, string(u)?);
            tags.push(perfsink_tag {
                key: key.0,
                key_len: key.1,
                value: value.0,
                value_len: value.1,
            });
        }
        let tags_ptr = if tags.is_empty() && u.arbitrary()? {
            ptr::null()
        } else {
            tags.as_ptr()
        };
        let value_field = string(u)?;
        let mut id = u32::MAX;
        let mut err = err_buf(u)?;
        // SAFETY: every pointer is valid for its length (or NULL).
        let r = unsafe {
            perfsink_sink_register_series(
                sink,
                measurement.0,
                measurement.1,
                tags_ptr,
                tags.len(),
                value_field.0,
                value_field.1,
                &mut id,
                err_ptr(&mut err),
                err.len(),
            )
        };
        check_refusal("register_series", r, &err);
        if r == PERFSINK_OK {
            series.push(id);
            let kind = u.int_in_range(0u32..=4)?;
            // SAFETY: NULL err.
            let r = unsafe { perfsink_sink_set_series_kind(sink, id, kind, ptr::null_mut(), 0) };
            assert_eq!(r == PERFSINK_OK, kind < 4, "set_series_kind {kind}: {r:?}");
        }
    }

    // Field arrays, shared by the points.
    let mut arrays: Vec<Vec<perfsink_field>> = Vec::new();
    for _ in 0..u.int_in_range(0u8..=3)? {
        let mut fields = Vec::new();
        for _ in 0..u.int_in_range(1u8..=6)? {
            fields.push(field(u)?);
        }
        arrays.push(fields);
    }

    let mut points = Vec::new();
    for _ in 0..u.int_in_range(0u8..=40)? {
        let id = match u.int_in_range(0u8..=7)? {
            0 => u.arbitrary()?,
            _ if series.is_empty() => u.int_in_range(0u32..=3)?,
            _ => series[u.choose_index(series.len())?],
        };
        let (fields, field_count) = match u.int_in_range(0u8..=7)? {
            0 => (ptr::null(), u.int_in_range(1u32..=3)?),
            1 | 2 => (ptr::null(), 0),
            _ if arrays.is_empty() => (ptr::null(), 0),
            _ => {
                let a = &arrays[u.choose_index(arrays.len())?];
                (a.as_ptr(), u.int_in_range(0..=a.len() as u32)?)
            }
        };
        points.push(perfsink_point {
            series: id,
            field_count,
            fields,
            value: float(u)?,
            timestamp_ns: timestamp(u)?,
        });
    }
    let null_points = points.is_empty() && u.arbitrary()?;
    let count = if null_points {
        u.int_in_range(0usize..=2)?
    } else {
        points.len()
    };
    let points_ptr = if null_points {
        ptr::null()
    } else {
        points.as_ptr()
    };
    let want_accepted: bool = u.arbitrary()?;
    let mut accepted = usize::MAX;
    let out_accepted: *mut usize = if want_accepted {
        &mut accepted
    } else {
        ptr::null_mut()
    };
    let mut err = err_buf(u)?;
    let before = stats(sink);
    // SAFETY: `points_ptr` is valid for `count` points (or NULL), their field arrays for their
    // counts; every string for its length.
    let r = unsafe {
        perfsink_sink_submit(
            sink,
            points_ptr,
            count,
            out_accepted,
            err_ptr(&mut err),
            err.len(),
        )
    };
    let after = stats(sink);
    check_refusal("submit", r, &err);
    let (taken, refused) = counted(&before, &after);
    if null_points && count > 0 {
        assert_ne!(r, PERFSINK_OK, "NULL points taken");
        assert_eq!((taken, refused), (0, 0), "NULL points counted");
    } else {
        if want_accepted {
            assert!(accepted <= count, "{accepted} of {count} points accepted");
            assert_eq!(
                r == PERFSINK_OK,
                accepted == count,
                "{r:?}, {accepted} of {count}"
            );
        }
        if which == RAW {
            assert_eq!(
                taken + refused,
                count as u64,
                "points not counted once: {r:?}"
            );
            if want_accepted {
                assert_eq!(
                    taken, accepted as u64,
                    "accepted counter and out_accepted differ"
                );
            }
        }
    }

    // The convenience path, with one of the field arrays.
    let measurement = string(u)?;
    let mut tags = Vec::new();
    for _ in 0..u.int_in_range(0u8..=3)? {
        let (key, value) = (string(u)?, string(u)?);
        tags.push(perfsink_tag {
            key: key.0,
            key_len: key.1,
            value: value.0,
            value_len: value.1,
        });
    }
    let (fields, field_count) = match arrays.first() {
        Some(a) => (a.as_ptr(), u.int_in_range(0..=a.len())?),
        None => (ptr::null(), 0),
    };
    let ts = timestamp(u)?;
    let mut err = err_buf(u)?;
    let before = stats(sink);
    // SAFETY: as above.
    let r = unsafe {
        perfsink_sink_record(
            sink,
            measurement.0,
            measurement.1,
            tags.as_ptr(),
            tags.len(),
            fields,
            field_count,
            ts,
            err_ptr(&mut err),
            err.len(),
        )
    };
    let after = stats(sink);
    check_refusal("record", r, &err);
    if which == RAW {
        let (taken, refused) = counted(&before, &after);
        assert_eq!(taken + refused, 1, "record not counted once: {r:?}");
        assert_eq!(
            taken == 1,
            r == PERFSINK_OK,
            "record: {r:?} but accepted +{taken}"
        );
    }

    // Messages copied into buffers of any size stop at a character boundary.
    let mut buf = vec![0xAAu8; usize::from(u.arbitrary::<u8>()? % 48)];
    let bufp = err_ptr(&mut buf);
    // SAFETY: `buf` is writable for its length (or NULL with 0).
    let n = unsafe { perfsink_sink_last_write_error(sink, bufp, buf.len()) };
    let m = unsafe { perfsink_sink_describe(sink, bufp, buf.len()) };
    if !buf.is_empty() {
        let end = buf
            .iter()
            .position(|&b| b == 0)
            .expect("a NUL-terminated copy");
        assert!(end <= m, "describe copied {end} of {m} bytes");
        std::str::from_utf8(&buf[..end]).expect("a copy cut inside a character");
    }
    let _ = n;
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
