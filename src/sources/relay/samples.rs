//! The relay's aggregated mode (`PERFSINK_MODE=aggregate|both`): which incoming lines are
//! samples, and the sink series each one folds into.
//!
//! A valid line with a numeric field named `value` (float, integer or unsigned) is a sample of
//! the series its measurement and tags name: k6's `influxdb` output writes every sample so
//! (`http_req_duration,status=200 value=12.3,vu=1i,url="..." <ts>`); its other fields are not
//! part of the statistics. Its metric kind comes from k6's built-in metric names
//! (`sources::k6::schema::builtin_metric_kind`), a custom metric being a trend. Any other line
//! (JMeter's multi-field lines, anything without a numeric `value`) is not a sample: the relay
//! forwards it as it came in every mode.
//!
//! Series are registered in the sink by name, the line's escapes undone as the target server
//! reads them (`lineproto::unescape_identifier`), so the registry's rules apply as on every
//! other path: global tags, names the target cannot store, the series cap. A cache from the
//! series key as the line writes it to the series id makes a sample cost one hash lookup, not
//! a registration; it holds at most as many keys as the sink holds series (`max_series`).

use std::borrow::Cow;
use std::collections::HashMap;

use parking_lot::{Mutex, MutexGuard};

use crate::error::{Error, Result};
use crate::lineproto::{unescape_identifier, Element, ParsedLine, ValueKind};
use crate::model::{MetricKind, SeriesId, Tag};
use crate::sink::Sink;
use crate::sources::k6::schema::builtin_metric_kind;

/// The field holding a sample's value, and the value field of the series it is registered as.
pub const VALUE_FIELD: &str = "value";

/// The value of sample line `line`: its field `value` when numeric; `None` when the line is
/// not a sample.
pub fn sample_value(line: &ParsedLine<'_>) -> Option<f64> {
    let (_, text, kind) = line
        .field_iter()
        .find(|(key, _, _)| *key == VALUE_FIELD.as_bytes())?;
    let text = std::str::from_utf8(text).ok()?;
    match kind {
        ValueKind::Float => text.parse().ok(),
        ValueKind::Int => text
            .strip_suffix('i')?
            .parse::<i64>()
            .ok()
            .map(|v| v as f64),
        ValueKind::UInt => text
            .strip_suffix('u')?
            .parse::<u64>()
            .ok()
            .map(|v| v as f64),
        ValueKind::Bool | ValueKind::Str => None,
    }
}

/// The series of sample lines seen so far, by series key as written. Shared by the relay's
/// requests.
#[derive(Default)]
pub struct SampleSeries {
    ids: Mutex<HashMap<Box<[u8]>, SeriesId>>,
}

/// [`SampleSeries`] locked for one batch of lines.
pub struct SeriesLookup<'a> {
    ids: MutexGuard<'a, HashMap<Box<[u8]>, SeriesId>>,
}

impl SampleSeries {
    pub fn lock(&self) -> SeriesLookup<'_> {
        SeriesLookup {
            ids: self.ids.lock(),
        }
    }
}

impl SeriesLookup<'_> {
    /// The series of sample line `line` in `sink`, registered with its kind when first seen;
    /// why it cannot be (a name the target cannot store, the series cap) otherwise.
    pub fn series_of(&mut self, sink: &Sink, line: &ParsedLine<'_>) -> Result<SeriesId> {
        if let Some(&id) = self.ids.get(line.key()) {
            return Ok(id);
        }
        let id = register(sink, line)?;
        if self.ids.len() < sink.config().max_series {
            self.ids.insert(line.key().into(), id);
        }
        Ok(id)
    }
}

/// A name of a line with its escapes undone.
type Name<'a> = Cow<'a, [u8]>;

fn register(sink: &Sink, line: &ParsedLine<'_>) -> Result<SeriesId> {
    let dialect = sink.field_options().dialect;
    let unescape = |name, element| unescape_identifier(name, element, dialect);
    let measurement = unescape(line.measurement(), Element::Measurement);
    let tags: Vec<(Name<'_>, Name<'_>)> = line
        .tags()
        .map(|(k, v)| (unescape(k, Element::TagKey), unescape(v, Element::TagValue)))
        .collect();
    let measurement = utf8(&measurement, Element::Measurement)?;
    let tags = tags
        .iter()
        .map(|(k, v)| {
            Ok(Tag::new(
                utf8(k, Element::TagKey)?,
                utf8(v, Element::TagValue)?,
            ))
        })
        .collect::<Result<Vec<Tag<'_>>>>()?;
    let id = sink.register_series(measurement, &tags, VALUE_FIELD)?;
    let kind = builtin_metric_kind(measurement).unwrap_or(MetricKind::Trend);
    sink.set_series_kind(id, kind)?;
    Ok(id)
}

fn utf8(name: &[u8], element: Element) -> Result<&str> {
    std::str::from_utf8(name)
        .map_err(|_| Error::InvalidInput(format!("{} is not valid UTF-8", element.name())))
}
