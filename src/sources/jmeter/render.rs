//! The built-in `InfluxdbBackendListenerClient`'s line protocol (JMeter 5.6.3,
//! `sendMetrics`/`addMetric`/`addCumulatedMetrics`/`addErrorMetric`/`addAnnotation`), from an
//! [`Interval`] of statistics:
//!
//! ```text
//! <m>,application=A,transaction=<label>,statut=all|ok|ko<ut> count=N,avg=,min=,max=,hit=,sb=,rb=,pct<P>=
//! <m>,application=A,transaction=<label>,responseCode=C,responseMessage=M<ut> count=N
//! <m>,application=A,transaction=all,statut=all<ut> count=,countError=,avg=,min=,max=,hit=,sb=,rb=,pct<P>=
//! <m>,application=A,transaction=internal<ut> minAT=,maxAT=,meanAT=,startedT=,endedT=
//! events,application=A,title=ApacheJMeter<ut>[,tags=T] text="<title> started|ended"
//! ```
//!
//! Numbers carry no `i` (InfluxDB stores floats, as for the built-in listener); counts are
//! written as integers (`count=17`), statistics as shortest round-trip floats (`min=5.0`).
//! Tag values are trimmed and a newline becomes `\n` as the built-in does; the rest of the
//! escaping is the engine's for the server's dialect, so a name the built-in would write as a
//! broken line (a trailing backslash) is refused and counted instead. An empty tag value
//! (`application` unset) is left out: InfluxDB refuses `application=`. Each line's timestamp
//! is its interval's start (the built-in stamps the flush's wall clock).

use crate::aggregate::window::Window;
use crate::aggregate::Rendered;
use crate::error::{Error, Result};
use crate::lineproto::escape::{escape_identifier, escape_string_field, go_key_splits_cleanly};
use crate::lineproto::{write_float, write_timestamp, Dialect, Element};
use crate::model::Precision;

use super::params::JmeterOptions;
use super::stats::{Interval, LabelStats};

/// How lines are written for one sink.
pub struct Renderer<'a> {
    pub options: &'a JmeterOptions,
    pub dialect: Dialect,
    pub precision: Precision,
}

/// Lines, and those that could not be written.
#[derive(Debug, Default)]
pub struct Output {
    pub lines: Rendered,
    pub refused: u64,
    pub first_error: Option<Error>,
}

impl Output {
    /// Ends the line started at `start` (fields written) with the timestamp, or cuts it
    /// and counts it when writing it failed.
    fn finish(&mut self, start: usize, written: Result<()>, ts_ms: i64, precision: Precision) {
        let buf = &mut self.lines.buf;
        match written {
            Ok(()) => {
                buf.push(b' ');
                write_timestamp(buf, precision.from_ns(ts_ms.saturating_mul(1_000_000)));
                buf.push(b'\n');
                self.lines.ends.push(buf.len());
            }
            Err(e) => {
                buf.truncate(start);
                self.refused += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }
}

impl Renderer<'_> {
    /// Every line of an interval: per label all/ok/ko and its errors, the summary, the
    /// threads. `started`/`ended`: JMeter's thread counters (`startedT`, `endedT`).
    pub fn interval(&self, iv: &Interval, started: i64, ended: i64, out: &mut Output) {
        for (label, stats) in &iv.labels {
            for (status, w) in [("all", &stats.all), ("ok", &stats.ok), ("ko", &stats.ko)] {
                if w.count() > 0 {
                    let start = out.lines.buf.len();
                    let r = self.status_line(&mut out.lines.buf, label, status, w, stats);
                    out.finish(start, r, iv.start_ms, self.precision);
                }
            }
            for e in &stats.errors {
                let start = out.lines.buf.len();
                let r = self.error_line(&mut out.lines.buf, label, &e.code, &e.message, e.count);
                out.finish(start, r, iv.start_ms, self.precision);
            }
        }
        if iv.total.count() > 0 {
            let start = out.lines.buf.len();
            let r = self.summary_line(&mut out.lines.buf, &iv.total);
            out.finish(start, r, iv.start_ms, self.precision);
        }
        let start = out.lines.buf.len();
        let r = self.threads_line(&mut out.lines.buf, iv, started, ended);
        out.finish(start, r, iv.start_ms, self.precision);
    }

    /// The `events` annotation at the test's start or end.
    pub fn event(&self, started: bool, ts_ms: i64, out: &mut Output) {
        let buf = &mut out.lines.buf;
        let start = buf.len();
        let r = (|| {
            buf.extend_from_slice(b"events");
            self.tag(buf, "application", &self.options.application)?;
            buf.extend_from_slice(b",title=ApacheJMeter");
            self.user_tags(buf)?;
            self.tag(buf, "tags", &self.options.event_tags)?;
            check_key(&buf[start..], self.dialect)?;
            buf.extend_from_slice(b" text=\"");
            let text = format!(
                "{} {}",
                self.options.test_title,
                if started { "started" } else { "ended" }
            );
            escape_string_field(buf, text.trim());
            buf.push(b'"');
            Ok(())
        })();
        out.finish(start, r, ts_ms, self.precision);
    }

    fn head(&self, buf: &mut Vec<u8>, transaction: &str) -> Result<()> {
        escape_identifier(
            buf,
            &self.options.measurement,
            Element::Measurement,
            self.dialect,
        )?;
        self.tag(buf, "application", &self.options.application)?;
        self.tag(buf, "transaction", transaction)
    }

    fn status_line(
        &self,
        buf: &mut Vec<u8>,
        label: &str,
        status: &str,
        w: &Window,
        stats: &LabelStats,
    ) -> Result<()> {
        self.head(buf, label)?;
        self.tag(buf, "statut", status)?;
        self.user_tags(buf)?;
        check_key(buf, self.dialect)?;
        int(buf, " count=", w.count() as i64);
        self.times(buf, w)?;
        self.traffic(buf, stats);
        self.percentiles(buf, w)
    }

    fn summary_line(&self, buf: &mut Vec<u8>, total: &LabelStats) -> Result<()> {
        self.head(buf, "all")?;
        self.tag(buf, "statut", "all")?;
        self.user_tags(buf)?;
        check_key(buf, self.dialect)?;
        int(buf, " count=", total.count() as i64);
        int(buf, ",countError=", total.ko.count() as i64);
        // avg/min/max of the OK samples only, as the built-in (apache/jmeter#5724).
        self.times(buf, &total.ok)?;
        self.traffic(buf, total);
        self.percentiles(buf, &total.all)
    }

    fn error_line(
        &self,
        buf: &mut Vec<u8>,
        label: &str,
        code: &str,
        message: &str,
        n: u64,
    ) -> Result<()> {
        self.head(buf, label)?;
        self.tag(buf, "responseCode", code)?;
        self.tag(buf, "responseMessage", message)?;
        self.user_tags(buf)?;
        check_key(buf, self.dialect)?;
        int(buf, " count=", n as i64);
        Ok(())
    }

    fn threads_line(
        &self,
        buf: &mut Vec<u8>,
        iv: &Interval,
        started: i64,
        ended: i64,
    ) -> Result<()> {
        self.head(buf, "internal")?;
        self.user_tags(buf)?;
        check_key(buf, self.dialect)?;
        let t = &iv.threads;
        int(buf, " minAT=", i64::from(t.min));
        int(buf, ",maxAT=", i64::from(t.max));
        int(buf, ",meanAT=", t.mean());
        int(buf, ",startedT=", started);
        int(buf, ",endedT=", ended);
        Ok(())
    }

    /// `avg`, `min`, `max`, each left out when there is none (the built-in's NaN check).
    fn times(&self, buf: &mut Vec<u8>, w: &Window) -> Result<()> {
        for (key, v) in [(",avg=", w.mean()), (",min=", w.min()), (",max=", w.max())] {
            if let Some(v) = v {
                buf.extend_from_slice(key.as_bytes());
                write_float(buf, v)?;
            }
        }
        Ok(())
    }

    /// `hit`, `sb`, `rb`: the label's interval totals, the same on its all/ok/ko lines.
    fn traffic(&self, buf: &mut Vec<u8>, stats: &LabelStats) {
        int(buf, ",hit=", stats.hits as i64);
        int(buf, ",sb=", stats.sent_bytes);
        int(buf, ",rb=", stats.received_bytes);
    }

    fn percentiles(&self, buf: &mut Vec<u8>, w: &Window) -> Result<()> {
        let fields = &self.options.pct_fields;
        let (mut result, mut k) = (Ok(()), 0);
        // Called in the order of `percentiles`, which `pct_fields` follows.
        w.percentiles(&self.options.percentiles, |_, v| {
            if result.is_ok() {
                buf.push(b',');
                buf.extend_from_slice(fields[k].as_bytes());
                buf.push(b'=');
                result = write_float(buf, v);
            }
            k += 1;
        });
        result
    }

    fn user_tags(&self, buf: &mut Vec<u8>) -> Result<()> {
        for (k, v) in &self.options.user_tags {
            self.tag(buf, k, v)?;
        }
        Ok(())
    }

    /// `,key=value`, the value trimmed with newlines as `\n` (the built-in's
    /// `tagToStringValue`); nothing for an empty value.
    fn tag(&self, buf: &mut Vec<u8>, key: &str, value: &str) -> Result<()> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(());
        }
        buf.push(b',');
        escape_identifier(buf, key, Element::TagKey, self.dialect)?;
        buf.push(b'=');
        if value.contains('\n') {
            let value = value.replace('\n', "\\n");
            escape_identifier(buf, &value, Element::TagValue, self.dialect)
        } else {
            escape_identifier(buf, value, Element::TagValue, self.dialect)
        }
    }
}

/// Refuses a series key that InfluxDB 1.x/2.x would split in the wrong place (see
/// `go_key_splits_cleanly`: a backslash before an escaped separator), so such a line is
/// counted instead of taking the next line with it. `key`: the line so far, only its key.
pub fn check_key(key: &[u8], dialect: Dialect) -> Result<()> {
    let start = key.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    if dialect == Dialect::Go && !go_key_splits_cleanly(&key[start..]) {
        return Err(Error::InvalidInput(
            "a name with a backslash before an escaped character, which InfluxDB 1.x/2.x reads wrongly".into(),
        ));
    }
    Ok(())
}

/// `key` then an integer written without `i`: a float to InfluxDB, as the built-in writes it.
fn int(buf: &mut Vec<u8>, key: &str, v: i64) {
    buf.extend_from_slice(key.as_bytes());
    buf.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
