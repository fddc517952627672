//! `rawSamples=true`: one point per sample, something no JMeter listener writes at full rate.
//!
//! ```text
//! <measurement>_raw,application=A,transaction=<label>,statut=ok|ko,responseCode=C,threadName=T<ut>
//!     elapsed=Ni,latency=Ni,connect=Ni,bytes=Ni,sentBytes=Ni,grpThreads=Ni,allThreads=Ni,success=true <sample ms>
//! ```
//!
//! Its own measurement (`_raw`), so the built-in schema's queries (`SHOW TAG VALUES ... WITH
//! KEY = "transaction"`, `sum("count")`) never see it; integers, since no earlier schema
//! fixed the types. `threadName` keeps two threads' samples of one millisecond apart (as in
//! the built-in raw client, apache/jmeter#5654); ties left within one thread (two samples
//! ending in the same millisecond) go through the engine's de-duplication, which moves the
//! later one by the smallest step.

use crate::error::Result;
use crate::lineproto::escape::escape_identifier;
use crate::lineproto::{write_timestamp, Dialect, Element};
use crate::model::Precision;
use crate::pipeline::dedup::Identity;
use crate::pipeline::Dedup;

use super::params::JmeterOptions;
use super::stats::Sample;

/// Suffix of the raw samples' measurement.
pub const RAW_SUFFIX: &str = "_raw";

/// Appends sample `s` as a line (through `dedup`), or returns why it cannot be written (`buf`
/// then may hold a partial line: the caller cuts it).
pub fn write_raw(
    buf: &mut Vec<u8>,
    dedup: &mut Dedup,
    o: &JmeterOptions,
    s: &Sample<'_>,
    dialect: Dialect,
    precision: Precision,
) -> Result<()> {
    let key_start = buf.len();
    escape_identifier(buf, &o.measurement, Element::Measurement, dialect)?;
    buf.extend_from_slice(RAW_SUFFIX.as_bytes());
    let status = if s.success { "ok" } else { "ko" };
    let tags = [
        ("application", o.application.as_str()),
        ("transaction", s.label),
        ("statut", status),
        ("responseCode", s.code),
        ("threadName", s.thread),
    ];
    let user = o.user_tags.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    for (k, v) in tags.into_iter().chain(user) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        buf.push(b',');
        escape_identifier(buf, k, Element::TagKey, dialect)?;
        buf.push(b'=');
        if v.contains('\n') {
            escape_identifier(buf, &v.replace('\n', "\\n"), Element::TagValue, dialect)?;
        } else {
            escape_identifier(buf, v, Element::TagValue, dialect)?;
        }
    }
    let key_end = buf.len();
    super::render::check_key(&buf[key_start..key_end], dialect)?;
    for (i, (k, v)) in [
        ("elapsed", s.elapsed_ms),
        ("latency", s.latency_ms),
        ("connect", s.connect_ms),
        ("bytes", s.bytes),
        ("sentBytes", s.sent_bytes),
        ("grpThreads", i64::from(s.grp_threads)),
        ("allThreads", i64::from(s.all_threads)),
    ]
    .into_iter()
    .enumerate()
    {
        buf.push(if i == 0 { b' ' } else { b',' });
        buf.extend_from_slice(k.as_bytes());
        buf.push(b'=');
        buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        buf.push(b'i');
    }
    buf.extend_from_slice(if s.success {
        b",success=true"
    } else {
        b",success=false"
    });
    crate::lineproto::encode::check_timestamp(s.timestamp_ms.saturating_mul(1_000_000), precision)?;
    let ts = precision.from_ns(s.timestamp_ms * 1_000_000);
    // No copy of the key: `dedup` only keeps one for a series it has not seen.
    let key = &buf[key_start..key_end];
    let probe = dedup.probe_line(key, ts, Identity::Sample);
    dedup.commit_line(key, probe, Identity::Sample);
    buf.push(b' ');
    write_timestamp(buf, probe.ts());
    buf.push(b'\n');
    Ok(())
}
