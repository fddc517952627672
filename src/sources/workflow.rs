//! Layer 6: scripted workflow steps (Python's `InfluxDBPublisher`, C callers through
//! `ffi::workflow`), the `workflow_step` schema of docs/ARCHITECTURE.md, once:
//!
//! `workflow_step,action=<action>,status=success|failure,step=<step>,workflow=<workflow>[,<caller tags>]
//!  duration=<seconds, always a float>,success_count=1i|0i[,iteration=<n>i] <end of the step>`
//!
//! `iteration` is a field, not a tag: iteration numbers would multiply series.

use crate::error::{Error, Result};
use crate::model::{Field, FieldValue, Tag};
use crate::sink::Sink;

/// The measurement every step is written to.
pub const MEASUREMENT: &str = "workflow_step";
/// The `action` tag of a step that names none (APT's default action).
pub const DEFAULT_ACTION: &str = "api_call";
/// Tag keys the schema sets itself; a caller tag of the same key is refused.
pub const SCHEMA_TAGS: [&str; 4] = ["workflow", "step", "status", "action"];

/// One execution of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Step<'a> {
    pub workflow: &'a str,
    pub step: &'a str,
    /// `None` or empty: [`DEFAULT_ACTION`].
    pub action: Option<&'a str>,
    pub success: bool,
    /// How long the step took, in seconds (finite, not negative).
    pub duration_s: f64,
    /// The workflow iteration the step ran in, when the caller counts them.
    pub iteration: Option<i64>,
    /// The step's end, ns since the epoch: the point's timestamp.
    pub end_ns: i64,
    /// Extra tags (for example a test id), none of [`SCHEMA_TAGS`].
    pub tags: &'a [Tag<'a>],
}

/// Writes `step` as one `workflow_step` point. A step the schema refuses (an empty workflow
/// or step name, a negative or non-finite duration, a caller tag named like a schema tag) is
/// counted in `rejected_invalid`, as the sink counts the points it refuses itself.
pub fn record(sink: &Sink, step: &Step<'_>) -> Result<()> {
    let mut tags = Vec::with_capacity(SCHEMA_TAGS.len() + step.tags.len());
    tags.extend_from_slice(step.tags);
    record_in(sink, step, &mut tags)
}

/// [`record`] for a batch, which reuses one tag list: `tags` holds the step's extra tags
/// (`step.tags` is not read) and is left holding the point's.
pub fn record_in<'a>(sink: &Sink, step: &Step<'a>, tags: &mut Vec<Tag<'a>>) -> Result<()> {
    if let Err(e) = check(step, tags) {
        sink.count_unreadable(1);
        return Err(e);
    }
    tags.extend_from_slice(&[
        Tag::new("workflow", step.workflow),
        Tag::new("step", step.step),
        Tag::new("status", if step.success { "success" } else { "failure" }),
        Tag::new(
            "action",
            step.action
                .filter(|a| !a.is_empty())
                .unwrap_or(DEFAULT_ACTION),
        ),
    ]);
    let fields = [
        Field::new("duration", FieldValue::Float(step.duration_s)),
        Field::new("success_count", FieldValue::Int(step.success.into())),
        Field::new("iteration", FieldValue::Int(step.iteration.unwrap_or(0))),
    ];
    let n = if step.iteration.is_some() { 3 } else { 2 };
    sink.record(MEASUREMENT, tags, &fields[..n], step.end_ns)
}

/// The schema's own rules; names and values InfluxDB cannot store are the sink's to refuse.
fn check(step: &Step<'_>, extra: &[Tag<'_>]) -> Result<()> {
    if step.workflow.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{MEASUREMENT}: the workflow name is empty"
        )));
    }
    if step.step.is_empty() {
        return Err(Error::InvalidInput(format!(
            "{MEASUREMENT}: the step name is empty (workflow {:?})",
            step.workflow
        )));
    }
    if !(step.duration_s >= 0.0 && step.duration_s.is_finite()) {
        return Err(Error::InvalidValue(format!(
            "{MEASUREMENT}: duration {} s of step {:?} is not a finite number of seconds >= 0",
            step.duration_s, step.step
        )));
    }
    if let Some(t) = extra.iter().find(|t| SCHEMA_TAGS.contains(&t.key)) {
        return Err(Error::InvalidInput(format!(
            "{MEASUREMENT}: tag {:?} is set by the schema (workflow, step, status, action); \
             pass the step's action as its own argument",
            t.key
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "workflow_tests.rs"]
mod tests;
