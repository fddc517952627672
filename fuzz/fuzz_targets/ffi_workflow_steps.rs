//! The C ABI's batch entry of scripted workflows, `perfsink_workflow_steps`
//! (`src/ffi/workflow.rs`, `src/sources/workflow.rs`): fixed-size step records whose strings
//! are `(offset, length)` ranges of one arena, as the Python binding packs them, here with any
//! offsets, lengths, tag ranges, flags, durations and timestamps, and an arena of any bytes.
//!
//! An enabled raw sink that never connects. Besides "no panic, no sanitizer report", it checks
//! that every step of a call is counted exactly once (`accepted`, `rejected_invalid` or
//! `dropped_queue_full`), that `accepted` grows by `out_accepted`, and that a refusal leaves a
//! NUL-terminated message naming a step.
#![no_main]

mod common;

use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use perfsink::ffi::result::perfsink_result;
use perfsink::ffi::sink::{perfsink_sink, perfsink_sink_open, perfsink_sink_stats};
use perfsink::ffi::types::{perfsink_stats, PERFSINK_TIMESTAMP_NOW};
use perfsink::ffi::workflow::{
    perfsink_workflow_step, perfsink_workflow_steps, perfsink_workflow_tag,
};

use perfsink_result::PERFSINK_OK;

struct Handle(*const perfsink_sink);
// SAFETY: the ABI's handles are thread-safe (src/ffi/sink.rs); this one is never freed.
unsafe impl Send for Handle {}
unsafe impl Sync for Handle {}

fn sink() -> *const perfsink_sink {
    static SINK: OnceLock<Handle> = OnceLock::new();
    SINK.get_or_init(|| {
        let config = common::unreachable_config("PERFSINK_SOURCE=workflow");
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
    })
    .0
}

fn stats() -> perfsink_stats {
    let mut s = perfsink_stats::default();
    // SAFETY: `s` is writable for its size; NULL err.
    let r = unsafe {
        perfsink_sink_stats(
            sink(),
            &mut s,
            std::mem::size_of::<perfsink_stats>(),
            ptr::null_mut(),
            0,
        )
    };
    assert_eq!(r, PERFSINK_OK);
    s
}

/// A range of an arena of `len` bytes: mostly inside it, sometimes anywhere.
fn range(u: &mut Unstructured<'_>, len: usize) -> Result<(u32, u32)> {
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    Ok(match u.int_in_range(0u8..=9)? {
        0 => (u.arbitrary()?, u.arbitrary()?),
        1 => (len, u.int_in_range(0u32..=2)?),
        2 => (0, 0),
        _ => {
            let off = u.int_in_range(0..=len)?;
            (off, u.int_in_range(0..=(len - off).min(24))?)
        }
    })
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    // The arena first: the records refer into it.
    let arena_len = u.int_in_range(0usize..=96)?;
    let arena = u.bytes(arena_len)?;

    let mut tags = Vec::new();
    for _ in 0..u.int_in_range(0u8..=6)? {
        let (key_off, key_len) = range(u, arena.len())?;
        let (value_off, value_len) = range(u, arena.len())?;
        tags.push(perfsink_workflow_tag {
            key_off,
            key_len,
            value_off,
            value_len,
        });
    }

    let mut steps = Vec::new();
    for _ in 0..u.int_in_range(0u8..=24)? {
        let (workflow_off, workflow_len) = range(u, arena.len())?;
        let (step_off, step_len) = range(u, arena.len())?;
        let (action_off, action_len) = range(u, arena.len())?;
        let (tags_first, tag_count) = match u.int_in_range(0u8..=5)? {
            0 => (u.arbitrary()?, u.arbitrary()?),
            1..=2 => (0, 0),
            _ => {
                let n = tags.len() as u32;
                let first = u.int_in_range(0..=n)?;
                (first, u.int_in_range(0..=n - first)?)
            }
        };
        let flags = match u.int_in_range(0u8..=9)? {
            0 => u.arbitrary()?,
            f => u32::from(f % 4),
        };
        let duration_s = match u.int_in_range(0u8..=7)? {
            0 => f64::from_bits(u.arbitrary()?),
            1 => f64::NAN,
            2 => -1.0,
            _ => f64::from(u.arbitrary::<u16>()?) / 1000.0,
        };
        let end_ns = match u.int_in_range(0u8..=5)? {
            0 => PERFSINK_TIMESTAMP_NOW,
            1 => u.arbitrary()?,
            _ => 1_700_000_000_000_000_000 + i64::from(u.arbitrary::<u8>()?) * 1_000_000,
        };
        steps.push(perfsink_workflow_step {
            end_ns,
            duration_s,
            iteration: u.arbitrary()?,
            workflow_off,
            workflow_len,
            step_off,
            step_len,
            action_off,
            action_len,
            tags_first,
            tag_count,
            flags,
            reserved: 0,
        });
    }

    let want_accepted: bool = u.arbitrary()?;
    let mut accepted = usize::MAX;
    let out_accepted: *mut usize = if want_accepted {
        &mut accepted
    } else {
        ptr::null_mut()
    };
    let mut err = vec![0xAAu8; usize::from(u.arbitrary::<u8>()?)];
    let err_ptr = if err.is_empty() {
        ptr::null_mut()
    } else {
        err.as_mut_ptr().cast()
    };
    let before = stats();
    // SAFETY: `steps`, `tags` and `arena` are valid for their lengths.
    let r = unsafe {
        perfsink_workflow_steps(
            sink(),
            steps.as_ptr(),
            steps.len(),
            tags.as_ptr(),
            tags.len(),
            arena.as_ptr().cast(),
            arena.len(),
            out_accepted,
            err_ptr,
            err.len(),
        )
    };
    let after = stats();
    assert_ne!(r, perfsink_result::PERFSINK_PANIC);
    let taken = after.accepted - before.accepted;
    let refused = (after.rejected_invalid - before.rejected_invalid)
        + (after.dropped_queue_full - before.dropped_queue_full);
    assert_eq!(
        taken + refused,
        steps.len() as u64,
        "steps not counted once: {r:?}"
    );
    assert_eq!(
        r == PERFSINK_OK,
        taken == steps.len() as u64,
        "{r:?}, {taken} taken"
    );
    if want_accepted {
        assert_eq!(
            taken, accepted as u64,
            "accepted counter and out_accepted differ"
        );
    }
    if r != PERFSINK_OK && !err.is_empty() {
        let end = err
            .iter()
            .position(|&b| b == 0)
            .expect("a NUL-terminated message");
        let message = std::str::from_utf8(&err[..end]).expect("a message cut inside a character");
        if err.len() > 64 {
            assert!(
                message.contains("steps["),
                "a refusal that names no step: {message}"
            );
        }
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
