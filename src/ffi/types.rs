//! The plain C structs of the ABI and their conversion to the crate's model.

use std::ffi::c_char;

use super::boundary::{slice_arg, str_arg};
use super::error::{fail, perfsink_result};
use crate::model::{Field, FieldValue, Tag};
use crate::stats::Stats;

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

/// A fast-path point: a series id from `perfsink_sink_register_series`, the value written to
/// the series' value field, optional extra fields, and a timestamp in ns since the epoch.
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
        }
    }
}

/// # Safety
/// The pointers of `t` must be valid for their lengths for `'a`.
pub(crate) unsafe fn tag<'a>(t: &perfsink_tag) -> Result<Tag<'a>, perfsink_result> {
    Ok(Tag::new(
        str_arg(t.key, t.key_len, "tag key")?,
        str_arg(t.value, t.value_len, "tag value")?,
    ))
}

/// # Safety
/// `tags` must point to `count` valid tags whose strings live for `'a`.
pub(crate) unsafe fn tags<'a>(
    tags: *const perfsink_tag,
    count: usize,
) -> Result<Vec<Tag<'a>>, perfsink_result> {
    slice_arg(tags, count, "tags")?
        .iter()
        .map(|t| tag(t))
        .collect()
}

/// # Safety
/// The pointers of `f` must be valid for their lengths for `'a`.
pub(crate) unsafe fn field<'a>(f: &perfsink_field) -> Result<Field<'a>, perfsink_result> {
    let key = str_arg(f.key, f.key_len, "field key")?;
    let value = match f.kind {
        0 => FieldValue::Float(f.float_value),
        1 => FieldValue::Int(f.int_value),
        2 => FieldValue::UInt(f.uint_value),
        3 => FieldValue::Bool(f.bool_value != 0),
        4 => FieldValue::Str(str_arg(f.string_value, f.string_len, "string field value")?),
        other => {
            return Err(fail(
                perfsink_result::PERFSINK_INVALID_ARGUMENT,
                format!("field {key:?} has unknown type {other}"),
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
    let value = match f.kind {
        0 => FieldValue::Float(f.float_value),
        1 => FieldValue::Int(f.int_value),
        2 => FieldValue::UInt(f.uint_value),
        3 => FieldValue::Bool(f.bool_value != 0),
        4 => FieldValue::Str(str_arg(f.string_value, f.string_len, "string field value").ok()?),
        _ => return None,
    };
    Some(Field::new(key, value))
}

/// # Safety
/// `fields` must point to `count` valid fields whose strings live for `'a`.
pub(crate) unsafe fn fields<'a>(
    fields: *const perfsink_field,
    count: usize,
) -> Result<Vec<Field<'a>>, perfsink_result> {
    slice_arg(fields, count, "fields")?
        .iter()
        .map(|f| field(f))
        .collect()
}
