//! The sink's own line in measurement `perfsink`, written every self-metrics interval so a
//! dashboard shows what the sink accepted, wrote, retried, rejected, dropped and spooled.

use crate::lineproto::{write_field, write_series_key, write_timestamp, Dialect, FieldOptions};
use crate::model::{FieldValue, Precision};
use crate::stats::Stats;

/// Encodes one `perfsink` line (tags `host`, `source` and the global tags) into `out`, names
/// escaped for `dialect`.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    out: &mut Vec<u8>,
    host: &str,
    source: &str,
    global_tags: &[(String, String)],
    stats: &Stats,
    ts_ns: i64,
    precision: Precision,
    dialect: Dialect,
) {
    let mut tags: Vec<(&str, &str)> = global_tags
        .iter()
        .filter(|(k, _)| k != "host" && k != "source")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    tags.push(("host", host));
    tags.push(("source", source));
    tags.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let start = out.len();
    if write_series_key(out, "perfsink", &tags, dialect).is_err() {
        out.truncate(start);
        return;
    }
    out.push(b' ');
    let fields: [(&str, u64); 14] = [
        ("accepted", stats.accepted),
        ("written", stats.written),
        ("retried", stats.retried),
        ("rejected", stats.rejected),
        ("dropped", stats.dropped),
        ("spooled", stats.spooled),
        ("queue_depth", stats.queue_depth),
        ("deduplicated", stats.deduplicated),
        ("series", stats.series),
        ("requests", stats.requests),
        ("bytes_sent", stats.bytes_sent),
        ("write_latency_us_max", stats.write_latency_us_max),
        ("aggregated", stats.aggregated),
        ("aggregated_late", stats.aggregated_late),
    ];
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let v = FieldValue::Int(i64::try_from(*v).unwrap_or(i64::MAX));
        let _ = write_field(out, k, v, FieldOptions::default());
    }
    out.push(b',');
    let mean = stats.write_latency_us_mean as f64 / 1000.0;
    let _ = write_field(
        out,
        "write_latency_ms",
        FieldValue::Float(mean),
        FieldOptions::default(),
    );
    out.push(b' ');
    write_timestamp(out, precision.from_ns(ts_ns));
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_all_counters() {
        let mut out = Vec::new();
        let stats = Stats {
            accepted: 5,
            written: 4,
            write_latency_us_mean: 1500,
            ..Default::default()
        };
        encode(
            &mut out,
            "box 1",
            "k6",
            &[("testid".into(), "t1".into())],
            &stats,
            2_000_000_000,
            Precision::S,
            Dialect::Go,
        );
        let line = String::from_utf8(out).unwrap();
        assert!(
            line.starts_with("perfsink,host=box\\ 1,source=k6,testid=t1 accepted=5i,written=4i,"),
            "{line}"
        );
        assert!(line.ends_with(",write_latency_ms=1.5 2\n"), "{line}");
    }
}
