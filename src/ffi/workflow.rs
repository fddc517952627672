//! `perfsink_workflow_steps`: scripted workflow steps in the `workflow_step` schema (ABI 1.3).
//! A binding (Python's `InfluxDBPublisher`) copies its steps into fixed-size records whose
//! strings are `(offset, length)` ranges of one UTF-8 arena, and hands many of them to one
//! call: a foreign call costs microseconds, so one per step would cap a Python thread far
//! below the engine. The schema itself is `sources::workflow`'s.

use std::ffi::c_char;

use super::boundary::{guard, slice_arg};
use super::error::{fail, fail_with, Failure, FfiResult};
use super::result::perfsink_result::{self, *};
use super::sink::perfsink_sink;
use super::types::PERFSINK_TIMESTAMP_NOW;
use crate::model::{now_ns, Tag};
use crate::sources::workflow::{self, Step};

/// `flags` bit 0: the step succeeded (`status=success`, `success_count=1i`).
pub const PERFSINK_WORKFLOW_SUCCESS: u32 = 1;
/// `flags` bit 1: `iteration` holds the workflow iteration (written as an integer field).
pub const PERFSINK_WORKFLOW_ITERATION: u32 = 2;
const KNOWN_FLAGS: u32 = PERFSINK_WORKFLOW_SUCCESS | PERFSINK_WORKFLOW_ITERATION;

/// One step execution, 64 bytes, natural alignment, native byte order. Strings are
/// `(offset, length)` UTF-8 ranges of the call's `strings` arena.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct perfsink_workflow_step {
    /// The step's end, ns since the epoch (the point's timestamp), or
    /// `PERFSINK_TIMESTAMP_NOW`.
    pub end_ns: i64,
    /// How long the step took, seconds (finite, >= 0); always written as a float.
    pub duration_s: f64,
    /// The workflow iteration, read when `flags` has `PERFSINK_WORKFLOW_ITERATION`.
    pub iteration: i64,
    pub workflow_off: u32,
    pub workflow_len: u32,
    pub step_off: u32,
    pub step_len: u32,
    /// The action tag; length 0: `api_call`.
    pub action_off: u32,
    pub action_len: u32,
    /// The step's extra tags: `tags[tags_first .. tags_first + tag_count]` of the call.
    pub tags_first: u32,
    pub tag_count: u32,
    /// `PERFSINK_WORKFLOW_*` bits; any other bit refuses the step.
    pub flags: u32,
    /// 0.
    pub reserved: u32,
}

const _: () = assert!(std::mem::size_of::<perfsink_workflow_step>() == 64);

/// An extra tag of a step: key and value as ranges of the call's `strings` arena. An empty
/// value omits the tag.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct perfsink_workflow_tag {
    pub key_off: u32,
    pub key_len: u32,
    pub value_off: u32,
    pub value_len: u32,
}

/// Writes `count` steps, one `workflow_step` point each (docs/ARCHITECTURE.md's schema: tags
/// `workflow`, `step`, `status`, `action` and the step's extra tags, fields `duration`,
/// `success_count`, `iteration`, the step's end as the timestamp). Never waits on the network. Each step stands alone: one
/// that cannot be read (a range outside `strings` or `tags`, invalid UTF-8, an unknown flag)
/// or that the schema or the sink refuses is counted in `rejected_invalid` (a dropped one in
/// `dropped_queue_full`), and the others are taken. Returns `PERFSINK_OK` when every step was
/// taken, else the code of the first refusal, its message naming the step.
/// `*out_accepted` (optional) receives how many were taken. With reporting disabled every
/// step is taken and nothing is sent.
///
/// # Safety
/// `steps` must point to `count` records, `tags` to `tag_count`, `strings` to `strings_len`
/// bytes; `sink` must be NULL or a handle not yet freed; `out_accepted` must be NULL or
/// writable; `err` must hold `err_len` writable bytes or be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_workflow_steps(
    sink: *const perfsink_sink,
    steps: *const perfsink_workflow_step,
    count: usize,
    tags: *const perfsink_workflow_tag,
    tag_count: usize,
    strings: *const c_char,
    strings_len: usize,
    out_accepted: *mut usize,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        if !out_accepted.is_null() {
            *out_accepted = 0;
        }
        let sink = super::sink::live(sink)?;
        let records = slice_arg(steps, count, "steps")?;
        let tag_records = slice_arg(tags, tag_count, "tags")?;
        let arena = slice_arg(strings.cast::<u8>(), strings_len, "strings")?;
        // The point's tags, reused across the batch: no allocation per step.
        let mut tag_buf: Vec<Tag<'_>> = Vec::new();
        let (mut accepted, mut first) = (0usize, None::<(usize, Failure)>);
        for (i, r) in records.iter().enumerate() {
            tag_buf.clear();
            let outcome = match read_step(r, tag_records, arena, &mut tag_buf) {
                Ok(step) => {
                    workflow::record_in(sink, &step, &mut tag_buf).map_err(|e| fail_with(&e))
                }
                Err(f) => {
                    sink.count_unreadable(1);
                    Err(f)
                }
            };
            match outcome {
                Ok(()) => accepted += 1,
                // Closed while this call ran: the rest would be refused alike, uncounted.
                Err(f) if f.code == PERFSINK_CLOSED => {
                    first.get_or_insert((i, f));
                    break;
                }
                Err(f) => {
                    first.get_or_insert((i, f));
                }
            }
        }
        if !out_accepted.is_null() {
            *out_accepted = accepted;
        }
        match first {
            None => Ok(()),
            Some((i, f)) => Err(fail(
                f.code,
                format!(
                    "{} of {count} steps not taken; first: steps[{i}]: {}",
                    count - accepted,
                    f.message
                ),
            )),
        }
    })
}

/// Record `r` with its strings resolved in `arena`; its extra tags are appended to `extra`.
fn read_step<'a>(
    r: &perfsink_workflow_step,
    tags: &[perfsink_workflow_tag],
    arena: &'a [u8],
    extra: &mut Vec<Tag<'a>>,
) -> FfiResult<Step<'a>> {
    if r.flags & !KNOWN_FLAGS != 0 {
        return Err(fail(
            PERFSINK_INVALID_ARGUMENT,
            format!("unknown flags {:#x}", r.flags & !KNOWN_FLAGS),
        ));
    }
    let (first, n) = (r.tags_first as usize, r.tag_count as usize);
    let own = tags.get(first..first.saturating_add(n)).ok_or_else(|| {
        fail(
            PERFSINK_INVALID_ARGUMENT,
            format!(
                "tags range {first}+{n} is outside tags ({} records)",
                tags.len()
            ),
        )
    })?;
    for t in own {
        extra.push(Tag::new(
            text(arena, t.key_off, t.key_len, "tag key")?,
            text(arena, t.value_off, t.value_len, "tag value")?,
        ));
    }
    let action = text(arena, r.action_off, r.action_len, "action")?;
    Ok(Step {
        workflow: text(arena, r.workflow_off, r.workflow_len, "workflow")?,
        step: text(arena, r.step_off, r.step_len, "step")?,
        action: (!action.is_empty()).then_some(action),
        success: r.flags & PERFSINK_WORKFLOW_SUCCESS != 0,
        duration_s: r.duration_s,
        iteration: (r.flags & PERFSINK_WORKFLOW_ITERATION != 0).then_some(r.iteration),
        end_ns: match r.end_ns {
            PERFSINK_TIMESTAMP_NOW => now_ns(),
            ts => ts,
        },
        tags: &[],
    })
}

/// The UTF-8 range `off`+`len` of `arena`.
fn text<'a>(arena: &'a [u8], off: u32, len: u32, what: &str) -> FfiResult<&'a str> {
    let (off, len) = (off as usize, len as usize);
    let bytes = arena.get(off..off.saturating_add(len)).ok_or_else(|| {
        fail(
            PERFSINK_INVALID_ARGUMENT,
            format!(
                "{what}: range {off}+{len} is outside strings ({} bytes)",
                arena.len()
            ),
        )
    })?;
    std::str::from_utf8(bytes).map_err(|e| {
        fail(
            perfsink_result::PERFSINK_INVALID_UTF8,
            format!("{what} is not valid UTF-8 (at byte {})", e.valid_up_to()),
        )
    })
}

#[cfg(test)]
#[path = "workflow_tests.rs"]
mod tests;
