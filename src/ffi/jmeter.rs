//! `perfsink_jmeter`: JMeter's Backend Listener on the engine (ABI 1.2). The Java listener
//! passes its parameters to `perfsink_jmeter_open` and each batch of `SampleResult`s, copied
//! into `perfsink_jmeter_sample` records and one UTF-8 string arena, to one
//! `perfsink_jmeter_submit` call; every rule (parameters, counting, schema) is Rust's
//! (`sources::jmeter`).
//!
//! Lifetime as for `perfsink_sink`: close is idempotent and safe while other threads call
//! (they get `PERFSINK_CLOSED`); free once no thread uses the handle.

use std::ffi::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

use super::boundary::{guard, infallible, out_arg, ref_arg, slice_arg, str_arg};
use super::error::{copy_str, fail, fail_with, FfiResult};
use super::result::perfsink_result::{self, *};
use super::types::{close_outcome, perfsink_close_report, perfsink_tag};
use crate::error::Error;
use crate::sources::jmeter::stats::Sample;
use crate::sources::jmeter::Jmeter;

/// A JMeter listener handle: its sink, statistics and interval thread.
pub struct perfsink_jmeter {
    jmeter: Jmeter,
    closed: AtomicBool,
}

/// `flags` bit 0: `SampleResult.isSuccessful()`.
pub const PERFSINK_JMETER_SUCCESS: u32 = 1;
/// `flags` bit 1: reserved, ignored. Whether a sample is a Transaction Controller's is
/// decided by its message, as JMeter's `TransactionController.isFromTransactionController`
/// does, so the caller need not tell.
pub const PERFSINK_JMETER_TRANSACTION: u32 = 2;
/// `flags` bit 2: the record is a sub-result, passed only for `rawSamples`: it is written as
/// a raw sample but not counted in the statistics (its parent's `sub_results` counts it).
pub const PERFSINK_JMETER_SUB_RESULT: u32 = 4;

/// One `SampleResult`, 104 bytes, natural alignment, native byte order. Strings are
/// `(offset, length)` UTF-8 ranges into the `strings` arena of the call.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct perfsink_jmeter_sample {
    /// `getTimeStamp()`, ms since the epoch (the sample's start with JMeter's defaults).
    pub timestamp_ms: i64,
    /// `getTime()`.
    pub elapsed_ms: i64,
    /// `getLatency()`.
    pub latency_ms: i64,
    /// `getConnectTime()`.
    pub connect_ms: i64,
    /// `getBytesAsLong()`.
    pub bytes: i64,
    /// `getSentBytes()`.
    pub sent_bytes: i64,
    /// `getGroupThreads()`.
    pub grp_threads: i32,
    /// `getAllThreads()`: the `minAT`/`maxAT`/`meanAT` of the interval.
    pub all_threads: i32,
    /// `getSampleLabel()`.
    pub label_off: u32,
    pub label_len: u32,
    /// `getResponseCode()`.
    pub code_off: u32,
    pub code_len: u32,
    /// `getResponseMessage()`.
    pub message_off: u32,
    pub message_len: u32,
    /// `getFirstAssertionFailureMessage()`, 0/0 when none.
    pub assertion_off: u32,
    pub assertion_len: u32,
    /// `getThreadName()`.
    pub thread_off: u32,
    pub thread_len: u32,
    /// `PERFSINK_JMETER_*` bits.
    pub flags: u32,
    /// Sub-results below the sample, ALL levels (`getSubResults()` counted recursively):
    /// each is one hit, as JMeter's `SamplerMetric.addHits` counts them.
    pub sub_results: u32,
}

const _: () = assert!(std::mem::size_of::<perfsink_jmeter_sample>() == 104);

/// Opens a listener from the Backend Listener's parameters (`params`: name/value pairs; a
/// later pair wins) and the process environment (`INFLUXDB_URL`/`INFLUXDB_DB` when
/// `influxdbUrl` is left at its placeholder, `PERFSINK_*`). Names and defaults are the
/// built-in `InfluxdbBackendListenerClient`'s, plus `rawSamples`,
/// `backend_influxdb.send_interval` (seconds; JMeter's property of that name) and any engine
/// key (README). Writes the `started` annotation. On success `*out` holds the handle (free it
/// with `perfsink_jmeter_free`); on failure `err` names the parameter at fault (never a
/// secret).
///
/// # Safety
/// `params` must point to `param_count` tags whose strings are readable; `out` must be
/// writable; `err` must hold `err_len` writable bytes or be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_jmeter_open(
    params: *const perfsink_tag,
    param_count: usize,
    out: *mut *mut perfsink_jmeter,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let out = out_arg(out, "out")?;
        let mut pairs = Vec::with_capacity(param_count);
        for p in slice_arg(params, param_count, "params")? {
            let name = str_arg(p.key, p.key_len, "parameter name")?;
            let value = str_arg(p.value, p.value_len, "parameter value")?;
            pairs.push((name, value));
        }
        let jmeter = Jmeter::open_params(pairs)?;
        let handle = Box::new(perfsink_jmeter {
            jmeter,
            closed: AtomicBool::new(false),
        });
        // SAFETY: `out` is non-NULL and the caller promises it is writable.
        *out = Box::into_raw(handle);
        Ok(())
    })
}

/// Submits `count` samples whose strings are ranges of `strings` (`strings_len` bytes). Never
/// waits on the network. A batch with a record out of range or not UTF-8 is refused whole
/// (`PERFSINK_INVALID_ARGUMENT`/`PERFSINK_INVALID_UTF8`, nothing counted into the
/// statistics, the records counted in `rejected_invalid`). With `rawSamples`, a raw line
/// refused or dropped makes the call return its code (the statistics still hold the sample).
///
/// # Safety
/// `samples` must point to `count` records, `strings` to `strings_len` bytes; `j` must be
/// NULL or a handle not yet freed; `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_jmeter_submit(
    j: *const perfsink_jmeter,
    samples: *const perfsink_jmeter_sample,
    count: usize,
    strings: *const c_char,
    strings_len: usize,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let handle = live(j)?;
        let records = slice_arg(samples, count, "samples")?;
        let arena = slice_arg(strings.cast::<u8>(), strings_len, "strings")?;
        let batch: FfiResult<Vec<Sample<'_>>> = records
            .iter()
            .enumerate()
            .map(|(i, r)| sample(r, arena, i))
            .collect();
        let batch = batch.inspect_err(|_| handle.jmeter.sink().count_unreadable(count as u64))?;
        handle.jmeter.submit(&batch)?;
        Ok(())
    })
}

/// Sets JMeter's thread counters (`JMeterContextService.getThreadCounts()`: started and
/// finished threads), written as `startedT`/`endedT` on the next `internal` lines.
///
/// # Safety
/// `j` must be NULL or a handle not yet freed; `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_jmeter_threads(
    j: *const perfsink_jmeter,
    started: i64,
    finished: i64,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        live(j)?.jmeter.threads(started, finished)?;
        Ok(())
    })
}

/// Copies where points go, for jmeter.log (`http://host:8086, db jmeter, measurement jmeter,
/// interval 5 s`; never credentials), into `buf` (NUL-terminated, truncated at a character
/// boundary) and returns its full length. Infallible; NULL `j` gives 0.
///
/// # Safety
/// `j` must be NULL or a handle not yet freed; `buf` must hold `buf_len` writable bytes or
/// be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_jmeter_describe(
    j: *const perfsink_jmeter,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    infallible(0, || match j.as_ref() {
        Some(j) => copy_str(j.jmeter.describe(), buf, buf_len),
        None => 0,
    })
}

/// Writes the intervals left and the `ended` annotation, delivers (within
/// `PERFSINK_CLOSE_TIMEOUT_MS`), stops, and writes the final report to `out` (at most
/// `out_size` bytes: `sizeof *out`; NULL: not wanted). `PERFSINK_OK` when everything was
/// delivered, `PERFSINK_UNDELIVERED` otherwise (the report says how many). Idempotent and
/// thread-safe like `perfsink_sink_close`. NULL `j` is a no-op (OK).
///
/// # Safety
/// `j` must be NULL or a handle not yet freed; `out` must hold `out_size` writable bytes or
/// be NULL; `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_jmeter_close(
    j: *const perfsink_jmeter,
    out: *mut perfsink_close_report,
    out_size: usize,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let Some(handle) = j.as_ref() else {
            return Ok(());
        };
        handle.closed.store(true, Ordering::Release);
        close_outcome(&handle.jmeter.close(), out, out_size)
    })
}

/// Frees the handle, closing it first if that was not done. NULL is a no-op. Infallible.
///
/// # Safety
/// `j` must be NULL or a handle from `perfsink_jmeter_open` not yet freed, that no other
/// thread uses any more.
#[no_mangle]
pub unsafe extern "C" fn perfsink_jmeter_free(j: *mut perfsink_jmeter) {
    if j.is_null() {
        return;
    }
    // SAFETY: the caller gives up the handle; dropping the listener closes it.
    let handle = Box::from_raw(j);
    infallible((), move || drop(handle));
}

/// The live listener behind a handle.
///
/// # Safety
/// `j` must be NULL or a handle that was not freed.
unsafe fn live<'a>(j: *const perfsink_jmeter) -> FfiResult<&'a perfsink_jmeter> {
    let handle = ref_arg(j, "jmeter")?;
    if handle.closed.load(Ordering::Acquire) {
        return Err(fail_with(&Error::Closed));
    }
    Ok(handle)
}

/// Record `i` with its strings resolved in `arena`.
fn sample<'a>(r: &perfsink_jmeter_sample, arena: &'a [u8], i: usize) -> FfiResult<Sample<'a>> {
    let text = |off: u32, len: u32, what: &str| -> FfiResult<&'a str> {
        let (off, len) = (off as usize, len as usize);
        let bytes = arena.get(off..off.saturating_add(len)).ok_or_else(|| {
            fail(
                PERFSINK_INVALID_ARGUMENT,
                format!(
                    "samples[{i}].{what}: range {off}+{len} is outside strings ({} bytes)",
                    arena.len()
                ),
            )
        })?;
        std::str::from_utf8(bytes).map_err(|e| {
            fail(
                perfsink_result::PERFSINK_INVALID_UTF8,
                format!(
                    "samples[{i}].{what} is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                ),
            )
        })
    };
    Ok(Sample {
        timestamp_ms: r.timestamp_ms,
        elapsed_ms: r.elapsed_ms,
        latency_ms: r.latency_ms,
        connect_ms: r.connect_ms,
        bytes: r.bytes,
        sent_bytes: r.sent_bytes,
        grp_threads: r.grp_threads,
        all_threads: r.all_threads,
        label: text(r.label_off, r.label_len, "label")?,
        code: text(r.code_off, r.code_len, "code")?,
        message: text(r.message_off, r.message_len, "message")?,
        assertion: text(r.assertion_off, r.assertion_len, "assertion")?,
        thread: text(r.thread_off, r.thread_len, "thread")?,
        success: r.flags & PERFSINK_JMETER_SUCCESS != 0,
        sub_result: r.flags & PERFSINK_JMETER_SUB_RESULT != 0,
        sub_results: r.sub_results,
    })
}
