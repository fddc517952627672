//! The plain C structs of the ABI and their conversion to the crate's model.

use std::ffi::c_char;

use super::boundary::{slice_arg, str_arg, write_sized};
use super::c_enum::c_enum_table;
use super::error::{fail, FfiResult};
use super::result::perfsink_result;
use crate::model::{Field, FieldValue, MetricKind, Tag};
use crate::sink::Report;
use crate::stats::Stats;

use perfsink_field_type::*;

/// A tag: key and value as `(ptr, len)` UTF-8. An empty value omits the tag.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct perfsink_tag {
    pub key: *const c_char,
    pub key_len: usize,
    pub value: *const c_char,
    pub value_len: usize,
}

/// The type of a field value.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum perfsink_field_type {
    PERFSINK_FIELD_FLOAT = 0,
    PERFSINK_FIELD_INT = 1,
    PERFSINK_FIELD_UINT = 2,
    PERFSINK_FIELD_BOOL = 3,
    PERFSINK_FIELD_STRING = 4,
}

c_enum_table!(perfsink_field_type {
    PERFSINK_FIELD_FLOAT,
    PERFSINK_FIELD_INT,
    PERFSINK_FIELD_UINT,
    PERFSINK_FIELD_BOOL,
    PERFSINK_FIELD_STRING,
});

/// What a series' values mean (`perfsink_sink_set_series_kind`), numbered as k6 numbers its
/// metric types. Only the aggregated mode (`PERFSINK_MODE=aggregate|both`) reads it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum perfsink_metric_kind {
    /// Values add up: an interval's point has `count` and `sum`.
    PERFSINK_METRIC_COUNTER = 0,
    /// A level: `count`, `last`, `min`, `max`.
    PERFSINK_METRIC_GAUGE = 1,
    /// A distribution (the kind of a series nobody set): `count`, `sum`, `mean`, `min`,
    /// `max` and the percentiles.
    PERFSINK_METRIC_TREND = 2,
    /// Pass (non-zero) or fail samples: `count`, `passes`, `rate`.
    PERFSINK_METRIC_RATE = 3,
}

c_enum_table!(perfsink_metric_kind {
    PERFSINK_METRIC_COUNTER,
    PERFSINK_METRIC_GAUGE,
    PERFSINK_METRIC_TREND,
    PERFSINK_METRIC_RATE,
});

impl From<perfsink_metric_kind> for MetricKind {
    fn from(k: perfsink_metric_kind) -> MetricKind {
        match k {
            perfsink_metric_kind::PERFSINK_METRIC_COUNTER => MetricKind::Counter,
            perfsink_metric_kind::PERFSINK_METRIC_GAUGE => MetricKind::Gauge,
            perfsink_metric_kind::PERFSINK_METRIC_TREND => MetricKind::Trend,
            perfsink_metric_kind::PERFSINK_METRIC_RATE => MetricKind::Rate,
        }
    }
}

/// A field: a key, a type, and the member of that type set (the others are ignored).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct perfsink_field {
    pub key: *const c_char,
    pub key_len: usize,
    /// One of `perfsink_field_type` (a plain integer so that a bad value is an error, not UB).
    pub kind: u32,
    /// 0 is false, anything else true (a byte, so no C value can be an invalid Rust bool).
    pub bool_value: u8,
    pub float_value: f64,
    pub int_value: i64,
    pub uint_value: u64,
    pub string_value: *const c_char,
    pub string_len: usize,
}

/// Pass as a timestamp (`perfsink_sink_record`'s `timestamp_ns`, a `perfsink_point`'s) to
/// stamp the point with the current time.
pub const PERFSINK_TIMESTAMP_NOW: i64 = -0x7FFF_FFFF_FFFF_FFFF - 1;

/// A fast-path point: a series id from `perfsink_sink_register_series`, the value written to
/// the series' value field, optional extra fields (keys other than the value field's, each
/// once), and a timestamp in ns since the epoch or `PERFSINK_TIMESTAMP_NOW`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct perfsink_point {
    pub series: u32,
    pub field_count: u32,
    /// `field_count` extra fields, or NULL when there are none.
    pub fields: *const perfsink_field,
    pub value: f64,
    pub timestamp_ns: i64,
}

/// Counters of a sink; see `perfsink_sink_stats`. The meaning of each is in the README.
/// Versioned by size: new counters are only ever appended, so pass `sizeof *out` and a
/// program built against an older header keeps working.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct perfsink_stats {
    pub accepted: u64,
    pub replayed: u64,
    pub written: u64,
    pub retried: u64,
    pub rejected: u64,
    pub rejected_invalid: u64,
    pub rejected_server: u64,
    pub dropped: u64,
    pub dropped_queue_full: u64,
    pub dropped_undelivered: u64,
    pub spooled: u64,
    pub queue_depth: u64,
    pub deduplicated: u64,
    pub series: u64,
    pub series_rejected: u64,
    pub requests: u64,
    pub bytes_sent: u64,
    pub write_latency_us_mean: u64,
    pub write_latency_us_max: u64,
    /// Samples too old for the de-duplication window: written with their own timestamp,
    /// unchecked for ties.
    pub dedup_unchecked: u64,
    /// ABI 1.1. Samples folded into per-interval statistics (aggregated mode); the points
    /// written of them count as lines in `accepted`, `written`...
    pub aggregated: u64,
    /// ABI 1.1. Aggregated samples that came after their interval was written (counted into
    /// the next one, whose point has a `late` field).
    pub aggregated_late: u64,
    /// ABI 1.1. Aggregated trend samples whose interval has no percentiles (histogram memory
    /// cap, `PERFSINK_AGGREGATE_MEMORY_MAX_BYTES`).
    pub aggregated_no_percentiles: u64,
}

/// The size of `perfsink_stats` in ABI 1.0, the smallest `out_size` accepted.
pub(crate) const STATS_SIZE_1_0: usize = 20 * 8;
const _: () = assert!(std::mem::size_of::<perfsink_stats>() == 23 * 8);
const _: () = assert!(std::mem::size_of::<perfsink_stats>() >= STATS_SIZE_1_0);

/// The final account `perfsink_sink_close` gives. Versioned by size like `perfsink_stats`,
/// which is its last member: counters appended to `perfsink_stats` extend this struct at its
/// end too (so the report itself gains no other members; what it may need is a counter).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct perfsink_close_report {
    /// Points left in the disk spool (delivered by the next sink opened on that directory).
    pub kept_in_spool: u64,
    /// 1 when a write failed at some point: `perfsink_sink_last_write_error` gives the
    /// latest message (also after close). 0 otherwise.
    pub has_last_write_error: u32,
    /// 1 when every accepted point was delivered (close returned `PERFSINK_OK`), else 0.
    pub delivered: u32,
    /// The final counters.
    pub stats: perfsink_stats,
}

/// The size of `perfsink_close_report` in ABI 1.0, the smallest `out_size` accepted.
pub(crate) const CLOSE_REPORT_SIZE_1_0: usize = 16 + STATS_SIZE_1_0;
const _: () = assert!(std::mem::size_of::<perfsink_close_report>() >= CLOSE_REPORT_SIZE_1_0);

impl From<&Report> for perfsink_close_report {
    fn from(r: &Report) -> Self {
        perfsink_close_report {
            kept_in_spool: r.kept_in_spool,
            has_last_write_error: r.last_error.is_some().into(),
            delivered: (r.undelivered() == 0).into(),
            stats: r.stats.into(),
        }
    }
}

/// A close's outcome for every handle type: the report written to `out` (NULL: not wanted),
/// `PERFSINK_UNDELIVERED` with the counts when some accepted points did not reach InfluxDB.
///
/// # Safety
/// `out` must hold `out_size` writable bytes, or be NULL.
pub(crate) unsafe fn close_outcome(
    report: &Report,
    out: *mut perfsink_close_report,
    out_size: usize,
) -> FfiResult {
    if !out.is_null() {
        let c: perfsink_close_report = report.into();
        write_sized(&c, out, out_size, CLOSE_REPORT_SIZE_1_0, "out")?;
    }
    match report.undelivered() {
        0 => Ok(()),
        n => Err(fail(
            perfsink_result::PERFSINK_UNDELIVERED,
            format!(
                "{n} accepted points were not delivered ({} dropped, {} kept in the spool){}",
                report.stats.dropped_undelivered,
                report.kept_in_spool,
                match &report.last_error {
                    Some(e) => format!("; last write error: {e}"),
                    None => String::new(),
                }
            ),
        )),
    }
}

impl From<Stats> for perfsink_stats {
    fn from(s: Stats) -> Self {
        perfsink_stats {
            accepted: s.accepted,
            replayed: s.replayed,
            written: s.written,
            retried: s.retried,
            rejected: s.rejected,
            rejected_invalid: s.rejected_invalid,
            rejected_server: s.rejected_server,
            dropped: s.dropped,
            dropped_queue_full: s.dropped_queue_full,
            dropped_undelivered: s.dropped_undelivered,
            spooled: s.spooled,
            queue_depth: s.queue_depth,
            deduplicated: s.deduplicated,
            series: s.series,
            series_rejected: s.series_rejected,
            requests: s.requests,
            bytes_sent: s.bytes_sent,
            write_latency_us_mean: s.write_latency_us_mean,
            write_latency_us_max: s.write_latency_us_max,
            dedup_unchecked: s.dedup_unchecked,
            aggregated: s.aggregated,
            aggregated_late: s.aggregated_late,
            aggregated_no_percentiles: s.aggregated_no_percentiles,
        }
    }
}

/// # Safety
/// The pointers of `t` must be valid for their lengths for `'a`.
pub(crate) unsafe fn tag<'a>(t: &perfsink_tag) -> FfiResult<Tag<'a>> {
    Ok(Tag::new(
        str_arg(t.key, t.key_len, "tag key")?,
        str_arg(t.value, t.value_len, "tag value")?,
    ))
}

/// # Safety
/// `tags` must point to `count` valid tags whose strings live for `'a`.
pub(crate) unsafe fn tags<'a>(tags: *const perfsink_tag, count: usize) -> FfiResult<Vec<Tag<'a>>> {
    slice_arg(tags, count, "tags")?
        .iter()
        .map(|t| tag(t))
        .collect()
}

/// # Safety
/// The pointers of `f` must be valid for their lengths for `'a`.
pub(crate) unsafe fn field<'a>(f: &perfsink_field) -> FfiResult<Field<'a>> {
    let key = str_arg(f.key, f.key_len, "field key")?;
    let value = match perfsink_field_type::from_u32(f.kind) {
        Some(PERFSINK_FIELD_FLOAT) => FieldValue::Float(f.float_value),
        Some(PERFSINK_FIELD_INT) => FieldValue::Int(f.int_value),
        Some(PERFSINK_FIELD_UINT) => FieldValue::UInt(f.uint_value),
        Some(PERFSINK_FIELD_BOOL) => FieldValue::Bool(f.bool_value != 0),
        Some(PERFSINK_FIELD_STRING) => {
            FieldValue::Str(str_arg(f.string_value, f.string_len, "string field value")?)
        }
        None => {
            return Err(fail(
                perfsink_result::PERFSINK_INVALID_ARGUMENT,
                format!("field {key:?} has unknown type {}", f.kind),
            ))
        }
    };
    Ok(Field::new(key, value))
}

/// [`field`] for the usual field, without its calls: a non-empty ASCII key of at most 64
/// bytes and a known type (a string value is checked as `field` checks it). `None` for
/// anything else, which `field` then reads or refuses with its message.
///
/// # Safety
/// As for [`field`].
#[inline]
pub(crate) unsafe fn field_fast<'a>(f: &perfsink_field) -> Option<Field<'a>> {
    if f.key.is_null() || f.key_len == 0 || f.key_len > 64 {
        return None;
    }
    let key = std::slice::from_raw_parts(f.key.cast::<u8>(), f.key_len);
    if !key.is_ascii() {
        return None;
    }
    // SAFETY: ASCII is UTF-8.
    let key = std::str::from_utf8_unchecked(key);
    let value = match perfsink_field_type::from_u32(f.kind)? {
        PERFSINK_FIELD_FLOAT => FieldValue::Float(f.float_value),
        PERFSINK_FIELD_INT => FieldValue::Int(f.int_value),
        PERFSINK_FIELD_UINT => FieldValue::UInt(f.uint_value),
        PERFSINK_FIELD_BOOL => FieldValue::Bool(f.bool_value != 0),
        PERFSINK_FIELD_STRING => {
            FieldValue::Str(str_arg(f.string_value, f.string_len, "string field value").ok()?)
        }
    };
    Some(Field::new(key, value))
}

/// # Safety
/// `fields` must point to `count` valid fields whose strings live for `'a`.
pub(crate) unsafe fn fields<'a>(
    fields: *const perfsink_field,
    count: usize,
) -> FfiResult<Vec<Field<'a>>> {
    slice_arg(fields, count, "fields")?
        .iter()
        .map(|f| field(f))
        .collect()
}
