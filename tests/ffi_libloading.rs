//! `libperfsink.so` loaded at run time with `libloading`, as a foreign caller (Python ctypes,
//! JNA, a Go plugin loader) uses it: the functions are looked up by name and the structs are
//! this file's own `#[repr(C)]` copies of `include/perfsink.h`, not the crate's types. Driven
//! against a private InfluxDB: ABI version → open → register → submit → record → flush →
//! stats → close → free, and the refusals a binding must be able to read (code, name, the
//! message in the call's own buffer), also from two threads at once.

mod common;
mod native;

use std::ffi::{c_char, CStr};
use std::ptr;
use std::time::Duration;

/// A per-call error buffer, as a binding keeps one.
struct Msg([u8; 256]);

impl Msg {
    fn new() -> Msg {
        Msg([b'X'; 256])
    }

    fn arg(&mut self) -> Err {
        (self.0.as_mut_ptr().cast(), self.0.len())
    }

    fn text(&self) -> String {
        CStr::from_bytes_until_nul(&self.0)
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    }
}

use common::Influx;
use libloading::Library;
use serde_json::json;

// Result codes (`perfsink_result` is a uint32_t in C).
const OK: u32 = 0;
const NULL_PARAMETER: u32 = 1;
const INVALID_ARGUMENT: u32 = 3;
const CONFIG: u32 = 100;
const UNKNOWN_SERIES: u32 = 202;
const CLOSED: u32 = 302;
const ABI_1_0: u32 = 1 << 16;
const FIELD_INT: u32 = 1;
const TIMESTAMP_NOW: i64 = i64::MIN;

/// `struct perfsink_sink`, opaque.
#[repr(C)]
struct Sink {
    _private: [u8; 0],
}

#[repr(C)]
struct Tag {
    key: *const c_char,
    key_len: usize,
    value: *const c_char,
    value_len: usize,
}

#[repr(C)]
struct Field {
    key: *const c_char,
    key_len: usize,
    kind: u32,
    bool_value: u8,
    float_value: f64,
    int_value: i64,
    uint_value: u64,
    string_value: *const c_char,
    string_len: usize,
}

#[repr(C)]
struct Point {
    series: u32,
    field_count: u32,
    fields: *const Field,
    value: f64,
    timestamp_ns: i64,
}

#[repr(C)]
#[derive(Default, Debug)]
struct Stats {
    accepted: u64,
    replayed: u64,
    written: u64,
    retried: u64,
    rejected: u64,
    rejected_invalid: u64,
    rejected_server: u64,
    dropped: u64,
    dropped_queue_full: u64,
    dropped_undelivered: u64,
    spooled: u64,
    queue_depth: u64,
    deduplicated: u64,
    series: u64,
    series_rejected: u64,
    requests: u64,
    bytes_sent: u64,
    write_latency_us_mean: u64,
    write_latency_us_max: u64,
    dedup_unchecked: u64,
}

#[repr(C)]
#[derive(Default, Debug)]
struct CloseReport {
    kept_in_spool: u64,
    has_last_write_error: u32,
    delivered: u32,
    stats: Stats,
}

fn tag(key: &'static str, value: &'static str) -> Tag {
    Tag {
        key: key.as_ptr().cast(),
        key_len: key.len(),
        value: value.as_ptr().cast(),
        value_len: value.len(),
    }
}

fn int_field(key: &'static str, v: i64) -> Field {
    Field {
        key: key.as_ptr().cast(),
        key_len: key.len(),
        kind: FIELD_INT,
        bool_value: 0,
        float_value: 0.0,
        int_value: v,
        uint_value: 0,
        string_value: ptr::null(),
        string_len: 0,
    }
}

/// The trailing `char *err, size_t err_len` of every fallible function.
type Err = (*mut c_char, usize);
type Open = unsafe extern "C" fn(*const c_char, usize, *mut *mut Sink, *mut c_char, usize) -> u32;
type Register = unsafe extern "C" fn(
    *const Sink,
    *const c_char,
    usize,
    *const Tag,
    usize,
    *const c_char,
    usize,
    *mut u32,
    *mut c_char,
    usize,
) -> u32;
type Submit =
    unsafe extern "C" fn(*const Sink, *const Point, usize, *mut usize, *mut c_char, usize) -> u32;
type Record = unsafe extern "C" fn(
    *const Sink,
    *const c_char,
    usize,
    *const Tag,
    usize,
    *const Field,
    usize,
    i64,
    *mut c_char,
    usize,
) -> u32;
type Flush = unsafe extern "C" fn(*const Sink, u32, *mut c_char, usize) -> u32;
type GetStats = unsafe extern "C" fn(*const Sink, *mut Stats, usize, *mut c_char, usize) -> u32;
type Close = unsafe extern "C" fn(*const Sink, *mut CloseReport, usize, *mut c_char, usize) -> u32;
type Free = unsafe extern "C" fn(*mut Sink);
type Name = unsafe extern "C" fn(u32) -> *const c_char;
type Version = unsafe extern "C" fn() -> *const c_char;
type AbiVersion = unsafe extern "C" fn() -> u32;

/// The functions of the loaded library; valid while `_lib` is.
struct Api {
    open: Open,
    register: Register,
    submit: Submit,
    record: Record,
    flush: Flush,
    stats: GetStats,
    close: Close,
    free: Free,
    result_name: Name,
    version: Version,
    abi_version: AbiVersion,
    _lib: Library,
}

impl Api {
    fn load() -> Api {
        let path = &native::libs().cdylib;
        // SAFETY: loading runs no initialisers of note; the symbols' types are the header's.
        unsafe {
            let lib =
                Library::new(path).unwrap_or_else(|e| panic!("dlopen {}: {e}", path.display()));
            macro_rules! sym {
                ($name:literal) => {
                    *lib.get(concat!($name, "\0").as_bytes())
                        .unwrap_or_else(|e| panic!("dlsym {}: {e}", $name))
                };
            }
            Api {
                open: sym!("perfsink_sink_open"),
                register: sym!("perfsink_sink_register_series"),
                submit: sym!("perfsink_sink_submit"),
                record: sym!("perfsink_sink_record"),
                flush: sym!("perfsink_sink_flush"),
                stats: sym!("perfsink_sink_stats"),
                close: sym!("perfsink_sink_close"),
                free: sym!("perfsink_sink_free"),
                result_name: sym!("perfsink_result_name"),
                version: sym!("perfsink_version"),
                abi_version: sym!("perfsink_abi_version"),
                _lib: lib,
            }
        }
    }

    fn open(&self, config: &str) -> Result<*mut Sink, (u32, String)> {
        let mut sink = ptr::null_mut();
        let mut msg = Msg::new();
        // SAFETY: (ptr, len) of a live str; `sink` and the buffer are writable.
        match unsafe {
            (self.open)(
                config.as_ptr().cast(),
                config.len(),
                &mut sink,
                msg.0.as_mut_ptr().cast(),
                msg.0.len(),
            )
        } {
            OK => Ok(sink),
            code => Err((code, msg.text())),
        }
    }

    fn name(&self, code: u32) -> &'static str {
        // SAFETY: a static NUL-terminated string.
        unsafe { CStr::from_ptr((self.result_name)(code)) }
            .to_str()
            .unwrap()
    }
}

#[test]
fn open_register_submit_flush_stats_close() {
    const BATCHES: usize = 5;
    const BATCH: usize = 1000;
    let api = Api::load();
    // SAFETY: a static NUL-terminated string; a plain function.
    let version = unsafe { CStr::from_ptr((api.version)()) };
    assert_eq!(version.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    // A program written for 1.0 (this one: its `Stats` has the 1.0 counters) loads any 1.x.
    let abi = unsafe { (api.abi_version)() };
    assert!(abi >> 16 == 1 && abi >= ABI_1_0, "{abi:#x}");

    let influx = Influx::start();
    let config = format!(
        "INFLUXDB_URL={};INFLUXDB_DB=loaded;PERFSINK_FLUSH_INTERVAL_MS=100;\
         PERFSINK_SELF_METRICS_INTERVAL_MS=0",
        influx.url()
    );
    let sink = api
        .open(&config)
        .unwrap_or_else(|(code, msg)| panic!("open: {}: {msg}", api.name(code)));
    assert!(!sink.is_null());

    let tags = [tag("host", "a"), tag("test", "libloading")];
    let (measurement, value_field) = ("ffi_loaded", "latency");
    let mut series = u32::MAX;
    let mut msg = Msg::new();
    let (e, e_len) = msg.arg();
    // SAFETY: every (ptr, len) is a live str or array; `series` and the buffer are writable.
    let rc = unsafe {
        (api.register)(
            sink,
            measurement.as_ptr().cast(),
            measurement.len(),
            tags.as_ptr(),
            tags.len(),
            value_field.as_ptr().cast(),
            value_field.len(),
            &mut series,
            e,
            e_len,
        )
    };
    assert_eq!(rc, OK, "{}", msg.text());
    assert_eq!(msg.text(), "", "success clears the buffer");

    // Every tenth point carries an extra integer field.
    let t0: i64 = 1_700_000_000_000_000_000;
    let extras: Vec<Field> = (0..BATCH as i64).map(|i| int_field("seq", i)).collect();
    for b in 0..BATCHES {
        let points: Vec<Point> = (0..BATCH)
            .map(|i| Point {
                series,
                field_count: u32::from(i % 10 == 0),
                fields: if i % 10 == 0 { &extras[i] } else { ptr::null() },
                value: (b * BATCH + i) as f64,
                timestamp_ns: t0 + ((b * BATCH + i) as i64) * 1000,
            })
            .collect();
        let mut accepted = 0usize;
        let (e, e_len) = msg.arg();
        // SAFETY: `points` and the fields they point to are live.
        let rc =
            unsafe { (api.submit)(sink, points.as_ptr(), points.len(), &mut accepted, e, e_len) };
        assert_eq!((rc, accepted), (OK, BATCH), "{}", msg.text());
    }
    let steps = [tag("step", "login")];
    let fields = [int_field("success_count", 1)];
    let (e, e_len) = msg.arg();
    // SAFETY: as above.
    let rc = unsafe {
        (api.record)(
            sink,
            c"workflow_step".as_ptr(),
            "workflow_step".len(),
            steps.as_ptr(),
            steps.len(),
            fields.as_ptr(),
            fields.len(),
            TIMESTAMP_NOW,
            e,
            e_len,
        )
    };
    assert_eq!(rc, OK, "{}", msg.text());

    let (e, e_len) = msg.arg();
    // SAFETY: a live handle.
    let rc = unsafe { (api.flush)(sink, 30_000, e, e_len) };
    assert_eq!(rc, OK, "flush: {}: {}", api.name(rc), msg.text());
    let mut stats = Stats::default();
    let size = std::mem::size_of::<Stats>();
    // SAFETY: a live handle; `stats` is writable for its size.
    assert_eq!(
        unsafe { (api.stats)(sink, &mut stats, size, ptr::null_mut(), 0) },
        OK
    );
    let total = (BATCHES * BATCH) as u64 + 1;
    assert_eq!(
        (
            stats.accepted,
            stats.written,
            stats.queue_depth,
            stats.series
        ),
        (total, total, 0, 2),
        "{stats:?}"
    );
    assert_eq!(
        influx.count("loaded", measurement),
        (BATCHES * BATCH) as u64
    );

    let mut last = CloseReport::default();
    let size = std::mem::size_of::<CloseReport>();
    // SAFETY: a live handle; the report is writable for its size.
    assert_eq!(
        unsafe { (api.close)(sink, &mut last, size, ptr::null_mut(), 0) },
        OK
    );
    let s = &last.stats;
    assert_eq!(
        (s.accepted, s.written, s.rejected, s.dropped, last.delivered),
        (total, total, 0, 0, 1),
        "{last:?}"
    );
    // SAFETY: no thread uses the handle any more.
    unsafe { (api.free)(sink) };

    let rows = influx.query_rows(
        "loaded",
        "SELECT count(latency), sum(latency), count(seq), sum(seq) FROM ffi_loaded \
         WHERE host = 'a' AND test = 'libloading'",
    );
    let n = (BATCHES * BATCH) as u64;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][1], json!(n));
    assert_eq!(rows[0][2].as_f64(), Some((n * (n - 1) / 2) as f64));
    // seq = i for every tenth i of each batch: BATCHES * (0 + 10 + ... + 990).
    let seq_sum: u64 = (0..BATCH as u64).step_by(10).sum::<u64>() * BATCHES as u64;
    assert_eq!(rows[0][3], json!(n / 10));
    assert_eq!(rows[0][4], json!(seq_sum));
    assert_eq!(
        influx.wait_for_count("loaded", "workflow_step", 1, Duration::from_secs(5)),
        1
    );
}

#[test]
fn refusals_carry_a_code_a_name_and_a_message() {
    let api = Api::load();
    let (code, msg) = api
        .open("INFLUXDB_URL=http://127.0.0.1:1;PERFSINK_BATCH_LINEZ=1")
        .map(|_| ())
        .unwrap_err();
    assert_eq!(code, CONFIG);
    assert_eq!(api.name(code), "PERFSINK_CONFIG");
    assert!(msg.contains("PERFSINK_BATCH_LINEZ"), "{msg}");
    assert_eq!(api.name(9999), "PERFSINK_UNKNOWN");
    assert_eq!(api.name(CLOSED), "PERFSINK_CLOSED");

    let influx = Influx::start();
    let sink = api
        .open(&format!(
            "INFLUXDB_URL={};INFLUXDB_DB=refusals",
            influx.url()
        ))
        .unwrap();
    let point = Point {
        series: 4242,
        field_count: 0,
        fields: ptr::null(),
        value: 1.0,
        timestamp_ns: 1,
    };
    let mut accepted = 7usize;
    let mut msg = Msg::new();
    let (e, e_len) = msg.arg();
    // SAFETY: a live handle and one live point.
    let rc = unsafe { (api.submit)(sink, &point, 1, &mut accepted, e, e_len) };
    assert_eq!((rc, accepted), (UNKNOWN_SERIES, 0));
    assert_eq!(msg.text(), "unknown series id 4242");
    // SAFETY: NULL with a non-zero count is refused, not read.
    let rc = unsafe { (api.submit)(sink, ptr::null(), 3, ptr::null_mut(), e, e_len) };
    assert_eq!(rc, NULL_PARAMETER);
    assert_eq!(msg.text(), "points is NULL but its length is 3");
    // A stats struct smaller than ABI 1.0's is refused.
    let mut stats = Stats::default();
    let rc = unsafe { (api.stats)(sink, &mut stats, 8, e, e_len) };
    assert_eq!(rc, INVALID_ARGUMENT, "{}", msg.text());
    let mut report = CloseReport::default();
    let size = std::mem::size_of::<CloseReport>();
    // SAFETY: the handle is live until freed; NULL handles are a no-op.
    unsafe {
        assert_eq!((api.close)(sink, &mut report, size, e, e_len), OK);
        assert_eq!((api.close)(ptr::null(), ptr::null_mut(), 0, e, e_len), OK);
        let rc = (api.submit)(sink, &point, 1, ptr::null_mut(), e, e_len);
        assert_eq!((rc, msg.text().as_str()), (CLOSED, "sink is closed"));
        (api.free)(sink);
        (api.free)(ptr::null_mut());
    }
    assert_eq!(
        (report.stats.accepted, report.stats.rejected_invalid),
        (0, 1)
    );
}

/// Two threads fail at the same time with different errors; each reads its own message, as a
/// binding whose calls move between OS threads (Go, JVM virtual threads) needs.
#[test]
fn each_call_reads_its_own_message_while_other_threads_fail() {
    let api = Api::load();
    let sink = api.open("PERFSINK_BATCH_LINES=10").unwrap() as usize;
    std::thread::scope(|scope| {
        for t in 0..2u32 {
            let api = &api;
            scope.spawn(move || {
                let mut msg = Msg::new();
                for i in 0..2000u32 {
                    let (e, e_len) = msg.arg();
                    let rc = if t == 0 {
                        // SAFETY: NULL points with a count are refused, not read.
                        unsafe {
                            (api.submit)(ptr::null(), ptr::null(), 0, ptr::null_mut(), e, e_len)
                        }
                    } else {
                        // SAFETY: a live handle; NULL with a non-zero count is refused.
                        unsafe {
                            (api.submit)(
                                sink as *const Sink,
                                ptr::null(),
                                1 + i as usize,
                                ptr::null_mut(),
                                e,
                                e_len,
                            )
                        }
                    };
                    assert_eq!(rc, NULL_PARAMETER);
                    let want = if t == 0 {
                        "sink is NULL".to_string()
                    } else {
                        format!("points is NULL but its length is {}", 1 + i)
                    };
                    assert_eq!(msg.text(), want);
                }
            });
        }
    });
    // SAFETY: no thread uses the handle any more.
    unsafe {
        (api.close)(sink as *const Sink, ptr::null_mut(), 0, ptr::null_mut(), 0);
        (api.free)(sink as *mut Sink);
    }
}
