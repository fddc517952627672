//! The relay's ingest: a body of line protocol, as a client POSTs it to InfluxDB, into the
//! sink. Each valid line is copied into the pipeline as it came (`lineproto::Forward`): its
//! timestamp rescaled to the sink's precision (a line without one gets the receive time,
//! truncated to the request's precision as InfluxDB does), the global tags merged into its tag
//! set, and, for a v1 target, unsigned fields written as integers. Malformed lines are refused
//! one by one (counted in `rejected_invalid`); the others are still taken. Lines are not
//! interned: they reach InfluxDB with the series key their client wrote.
//!
//! Timestamps go through the sink's de-duplication (`pipeline::dedup`, `PERFSINK_DEDUP`), per
//! series key as the client wrote it: a line whose timestamp equals one already written for
//! its series moves by the smallest step that makes it unique, unless it is identical to the
//! line written there (a client's retry, which InfluxDB itself would store once). A line
//! without a timestamp is stamped with the receive time and then follows the same rule, so
//! concurrent clients lose nothing.
//!
//! With `PERFSINK_MODE=aggregate` the lines that are samples (`samples`: a numeric `value`
//! field, as k6 writes them) are folded into the sink's statistics instead of forwarded, and
//! count as taken; with `both` they are forwarded and folded. Other lines are forwarded in
//! every mode.

use std::collections::HashMap;
use std::hash::Hasher;

use super::samples::{sample_value, SampleSeries, SeriesLookup};
use crate::error::{Error, Result};
use crate::lineproto::{
    refusal, FieldOptions, Forward, InputPrecision, LineError, ParseError, ParsedLine,
};
use crate::pipeline::dedup::{field_hash, Identity};
use crate::sink::{PointHead, PointSource, Sink};

/// What `ingest` did with a body of line protocol.
#[derive(Debug, Default, PartialEq)]
pub struct Ingested {
    /// Lines taken: into the pipeline, or (aggregated mode) folded into the statistics.
    pub accepted: usize,
    /// Lines refused as malformed (InfluxDB's own rules, see `lineproto::parse`); counted in
    /// `rejected_invalid`.
    pub rejected: usize,
    /// Valid lines dropped by the full-queue policy (counted in `dropped_queue_full`), or not
    /// taken because the sink is closed.
    pub dropped: usize,
    /// The first ten refused lines: line number in the body and
    /// `unable to parse '<line>': <reason>`, as InfluxDB words it.
    pub errors: Vec<(usize, String)>,
    /// Why valid lines were dropped or will not reach InfluxDB: `QueueFull`, `Closed`, or the
    /// writer's fatal error (credentials refused).
    pub sink_error: Option<Error>,
}

/// How many refused lines `Ingested::errors` lists.
const MAX_INGEST_ERRORS: usize = 10;

/// Lines parsed (outside the queue lock) per `produce_lines` call.
const BATCH: usize = 512;

fn note_line_error(errors: &mut Vec<(usize, String)>, number: usize, e: LineError<'_>) {
    if errors.len() < MAX_INGEST_ERRORS {
        errors.push((number, e.to_string()));
    }
}

fn refused(
    number: usize,
    line: &ParsedLine<'_>,
    reason: &'static str,
    errors: &mut Vec<(usize, String)>,
) {
    let error = ParseError { reason, offset: 0 };
    note_line_error(
        errors,
        number,
        LineError {
            text: line.line(),
            error,
        },
    );
}

/// Takes the lines of `body`, its timestamps in `precision`, into `sink`.
pub fn ingest(sink: &Sink, body: &[u8], precision: InputPrecision) -> Ingested {
    ingest_with(sink, &SampleSeries::default(), body, precision)
}

/// `ingest`, finding the series of sample lines in `series` (the relay keeps one for all its
/// requests).
pub fn ingest_with(
    sink: &Sink,
    series: &SampleSeries,
    body: &[u8],
    precision: InputPrecision,
) -> Ingested {
    let config = sink.config();
    let forward = Forward::new(
        precision,
        config.precision,
        crate::model::now_ns(),
        &config.global_tags,
        sink.field_options(),
    );
    let disabled = sink.is_disabled();
    let mut out = Ingested::default();
    let mut lines = crate::lineproto::lines(body);
    let mut batch: Vec<(usize, ParsedLine<'_>)> = Vec::with_capacity(BATCH);
    let mut scratch = Vec::new();
    let mut closed = !disabled && !sink.is_live();
    // Identical lines (series key, timestamp, fields) seen so far in this body, by hash.
    let mut occurrences: HashMap<u64, u32> = HashMap::new();
    // `PERFSINK_MODE=aggregate|both`: sample lines are folded; `aggregate`: only folded.
    let folding = config.mode.aggregate() && sink.is_live();
    let forward_samples = config.mode.raw();
    let mut samples: Vec<Sampled<'_>> = Vec::new();
    loop {
        batch.clear();
        for (number, line) in lines.by_ref() {
            match line {
                Ok(line) => {
                    batch.push((number, line));
                    if batch.len() == BATCH {
                        break;
                    }
                }
                Err(e) => {
                    out.rejected += 1;
                    if !disabled && !closed {
                        sink.count_unreadable(1);
                    }
                    note_line_error(&mut out.errors, number, e);
                }
            }
        }
        if batch.is_empty() {
            break;
        }
        samples.clear();
        if folding && !closed {
            let mut lookup = series.lock();
            batch.retain(|(number, line)| {
                let sampled = sample(sink, &forward, &mut lookup, *number, line);
                match sampled {
                    Some(Ok(s)) => samples.push(s),
                    // In `both` the line is still forwarded; the registry counted the refusal
                    // of a series over the cap (`series_rejected`).
                    Some(Err(_)) if forward_samples => {}
                    Some(Err(e)) => {
                        out.rejected += 1;
                        sink.count_unreadable(1);
                        note_refusal(&mut out.errors, *number, line, &e);
                    }
                    None => return true,
                }
                forward_samples
            });
        }
        let errors = &mut out.errors;
        let produced = (!closed)
            .then(|| {
                sink.produce_lines(batch.len(), |i, buf, dedup| {
                    let (number, line) = &batch[i];
                    let written = forward.timestamp(line).and_then(|ts| {
                        // A line without a timestamp is a new sample: it was stamped here.
                        let who = match line.timestamp() {
                            Some(_) => {
                                let seen = occurrences.entry(line_hash(line, ts)).or_insert(0);
                                *seen += 1;
                                Identity::Line(field_hash(line.fields(), *seen - 1))
                            }
                            None => Identity::Sample,
                        };
                        let probe = dedup.probe_line(line.key(), ts, who);
                        forward.write_at(buf, line, probe.ts(), probe.ts() != ts)?;
                        dedup.commit_line(line.key(), probe, who);
                        Ok(())
                    });
                    written.map(|()| 1).map_err(|reason| {
                        refused(*number, line, reason, errors);
                        Error::InvalidInput(reason.into())
                    })
                })
            })
            .flatten();
        match produced {
            Some(p) => {
                if p.first_error == Some(Error::Closed) {
                    // The writer took its last batch meanwhile: none of these was taken.
                    closed = true;
                    out.dropped += batch.len() - p.accepted - p.rejected - p.dropped;
                }
                out.accepted += p.accepted;
                out.rejected += p.rejected;
                out.dropped += p.dropped;
                if p.dropped > 0 {
                    out.sink_error.get_or_insert(Error::QueueFull);
                }
            }
            // Disabled or closed: the lines are checked (a disabled sink takes them, a
            // closed one drops them), nothing is written.
            None => {
                closed = !disabled;
                for (number, line) in &batch {
                    scratch.clear();
                    match forward.write(&mut scratch, line) {
                        Ok(()) if disabled => out.accepted += 1,
                        Ok(()) => out.dropped += 1,
                        Err(reason) => {
                            out.rejected += 1;
                            refused(*number, line, reason, &mut out.errors);
                        }
                    }
                }
            }
        }
        if !samples.is_empty() {
            let mut source = Samples {
                samples: &samples,
                errors: (!forward_samples).then_some(&mut out.errors),
            };
            match sink.fold(samples.len(), &mut source) {
                // In `both` the lines were counted as forwarded.
                Some(_) if forward_samples => {}
                Some(folded) => {
                    out.accepted += folded.accepted;
                    out.rejected += folded.rejected;
                }
                None => {
                    closed = true;
                    if !forward_samples {
                        out.dropped += samples.len();
                    }
                }
            }
        }
    }
    if closed {
        out.sink_error = Some(Error::Closed);
    } else if out.sink_error.is_none() {
        out.sink_error = sink.fatal().err();
    }
    out
}

/// A line's series key, timestamp and field set as one hash: which lines of a body are
/// identical.
fn line_hash(line: &ParsedLine<'_>, ts: i64) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(line.key());
    h.write_i64(ts);
    h.write(line.fields());
    h.finish()
}

/// A sample line: where it is in the body, and the sample it holds.
struct Sampled<'a> {
    number: usize,
    line: ParsedLine<'a>,
    head: PointHead,
}

/// Line `line` as a sample of its series, `None` when it is not one (or its timestamp is out
/// of range, which forwarding refuses), or why its series cannot be registered.
fn sample<'a>(
    sink: &Sink,
    forward: &Forward,
    lookup: &mut SeriesLookup<'_>,
    number: usize,
    line: &ParsedLine<'a>,
) -> Option<Result<Sampled<'a>>> {
    let value = sample_value(line)?;
    let ts = forward.timestamp(line).ok()?;
    let timestamp_ns = ts.checked_mul(sink.config().precision.unit_ns())?;
    Some(lookup.series_of(sink, line).map(|series| Sampled {
        number,
        line: *line,
        head: PointHead {
            series,
            value,
            timestamp_ns,
        },
    }))
}

/// The samples of a batch, as the sink's fold reads them; refusals noted in `errors`
/// (`None`: the lines were forwarded, and answered for, already).
struct Samples<'s, 'a> {
    samples: &'s [Sampled<'a>],
    errors: Option<&'s mut Vec<(usize, String)>>,
}

impl PointSource for Samples<'_, '_> {
    fn read(&mut self, i: usize) -> Result<PointHead> {
        Ok(self.samples[i].head)
    }

    fn write_fields(&mut self, _: usize, _: &mut Vec<u8>, _: FieldOptions, _: &[u8]) -> Result<()> {
        Ok(())
    }

    fn refused(&mut self, i: usize, reason: Error) -> Error {
        if let Some(errors) = self.errors.as_deref_mut() {
            let s = &self.samples[i];
            note_refusal(errors, s.number, &s.line, &reason);
        }
        reason
    }
}

fn note_refusal(
    errors: &mut Vec<(usize, String)>,
    number: usize,
    line: &ParsedLine<'_>,
    e: &Error,
) {
    if errors.len() < MAX_INGEST_ERRORS {
        errors.push((number, refusal(line.line(), e)));
    }
}
