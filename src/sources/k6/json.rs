//! k6's JSON output stream (`k6 run --out json=FILE`, one JSON object a line) into the sink, in
//! the **k6 raw schema**: exactly what k6's built-in `influxdb` output writes (measurement =
//! metric name; tags = sample tags minus `tagsAsFields`, empty values omitted; field `value`
//! (float) plus the `tagsAsFields` entries, typed per `K6_INFLUXDB_TAGS_AS_FIELDS`; timestamp in
//! ns), plus the sample metadata k6 drops (the rules of both: [`super::schema`]).
//!
//! The stream has two kinds of lines:
//! ```text
//! {"type":"Metric","data":{"name":"http_reqs","type":"counter","contains":"default",...},"metric":"http_reqs"}
//! {"metric":"http_reqs","type":"Point","data":{"time":"2025-06-25T10:00:00.123456789Z","value":1,"tags":{...},"metadata":{"vu":"1","iter":"0"}}}
//! ```
//! `Metric` lines write nothing; their metric type is kept ([`K6JsonSource::metric_type`]).
//!
//! The hot path allocates nothing per sample: a line is parsed in place (strings borrowed from
//! it, escapes decoded into reused buffers), its series is found in a local cache keyed by the
//! metric name and the raw bytes of its `tags` object (k6 writes a tag set the same way every
//! time), so a sample costs a hash lookup, and samples are handed to the sink in batches through
//! [`Sink::submit_with`]. Tags are decoded and the series registered only on a cache miss.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::hash::KeyHash;
use super::rfc3339::TimeCache;
use super::scanner::{find_byte, k6_point, JStr, PointData, Scan};
use super::schema::{builtin_metric_kind, typed, TagsAsFields, Typed};
use crate::model::{Field, FieldValue, Point, SeriesId, Tag};
use crate::sink::Sink;

/// Bytes read from the stream at once.
const READ_BUFFER: usize = 256 << 10;

/// Samples handed to the sink per `submit_with` call at most.
const BATCH: usize = 1024;

/// Distinct (metric, raw tag set) entries the cache holds before it is emptied. Registration is
/// idempotent, so emptying it only costs re-registration; it bounds memory when a test tags
/// every request with a unique value (k6 itself grows too then).
const CACHE_MAX: usize = 200_000;

/// k6's metric types: the engine's [`MetricKind`], which the aggregated mode reads.
pub use crate::model::MetricKind as MetricType;

/// Live counters of a source, shared with whoever shows progress.
#[derive(Debug, Default)]
pub struct K6Counters {
    /// Lines read (all kinds).
    pub lines: AtomicU64,
    /// `Point` lines turned into sink points.
    pub samples: AtomicU64,
    /// `Metric` definition lines.
    pub metrics: AtomicU64,
    /// Lines that are not k6 JSON output (counted, skipped).
    pub malformed: AtomicU64,
    /// Samples whose series the sink refused to register (series cap, invalid name).
    pub refused: AtomicU64,
}

/// A copy of [`K6Counters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct K6Stats {
    pub lines: u64,
    pub samples: u64,
    pub metrics: u64,
    pub malformed: u64,
    pub refused: u64,
}

impl K6Counters {
    pub fn snapshot(&self) -> K6Stats {
        K6Stats {
            lines: self.lines.load(Relaxed),
            samples: self.samples.load(Relaxed),
            metrics: self.metrics.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            refused: self.refused.load(Relaxed),
        }
    }
}

impl std::fmt::Display for K6Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "k6 stream: {} samples, {} metric definitions",
            self.samples, self.metrics
        )?;
        if self.malformed > 0 {
            write!(f, ", {} lines not understood (skipped)", self.malformed)?;
        }
        if self.refused > 0 {
            write!(
                f,
                ", {} samples refused (series not registered)",
                self.refused
            )?;
        }
        Ok(())
    }
}

/// An owned field value of a cached series (the typed `tagsAsFields` entries of its tag set).
#[derive(Debug, Clone, PartialEq)]
enum OwnedValue {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(Box<str>),
}

impl From<Typed<'_>> for OwnedValue {
    fn from(t: Typed<'_>) -> Self {
        match t {
            Typed::Float(v) => OwnedValue::Float(v),
            Typed::Int(v) => OwnedValue::Int(v),
            Typed::Bool(v) => OwnedValue::Bool(v),
            Typed::Str(s) => OwnedValue::Str(s.into()),
        }
    }
}

impl OwnedValue {
    fn as_field_value(&self) -> FieldValue<'_> {
        match self {
            OwnedValue::Float(v) => FieldValue::Float(*v),
            OwnedValue::Int(v) => FieldValue::Int(*v),
            OwnedValue::Bool(v) => FieldValue::Bool(*v),
            OwnedValue::Str(s) => FieldValue::Str(s),
        }
    }
}

/// What the cache knows about one (metric, raw tag set).
#[derive(Debug)]
struct Entry {
    /// `None`: the sink refused the series; its samples are counted in `refused`.
    series: Option<SeriesId>,
    /// The `tagsAsFields` entries of this tag set, typed.
    fields: Box<[(Box<str>, OwnedValue)]>,
}

/// A byte range of the arena (metadata keys and string values of the pending batch).
#[derive(Debug, Clone, Copy)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy)]
enum MetaKey {
    Vu,
    Iter,
    Other(Span),
}

#[derive(Debug, Clone, Copy)]
enum MetaValue {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(Span),
}

/// A metadata field of a pending sample.
#[derive(Debug, Clone, Copy)]
struct MetaField {
    key: MetaKey,
    value: MetaValue,
}

/// A parsed sample waiting for the next `submit_with`.
#[derive(Debug, Clone, Copy)]
struct Pending {
    entry: u32,
    series: SeriesId,
    value: f64,
    timestamp_ns: i64,
    meta_start: u32,
    meta_end: u32,
    /// This sample's extra fields in the field list built by `flush`.
    fields_start: u32,
    fields_end: u32,
}

pub struct K6JsonSource<'s> {
    sink: &'s Sink,
    tags_as_fields: TagsAsFields,
    counters: Arc<K6Counters>,
    /// metric name, `\0`, raw `tags` object → index into `entries`.
    cache: HashMap<Box<[u8]>, u32, KeyHash>,
    entries: Vec<Entry>,
    metric_types: HashMap<Box<str>, MetricType>,
    pending: Vec<Pending>,
    meta: Vec<MetaField>,
    /// Metadata keys and string values of the pending batch.
    arena: String,
    key_buf: Vec<u8>,
    /// Decoded escapes of the line being parsed.
    scratch: String,
    line: Vec<u8>,
    /// The allocation of the field list handed to the sink, kept between batches.
    fields_store: Vec<Field<'static>>,
    first_error: Option<String>,
    times: TimeCache,
    /// Lines and samples not yet added to `counters` (added once a batch, not once a line).
    unpublished_lines: u64,
    unpublished_samples: u64,
}

impl<'s> K6JsonSource<'s> {
    pub fn new(sink: &'s Sink, tags_as_fields: TagsAsFields) -> Self {
        Self::with_counters(sink, tags_as_fields, Arc::default())
    }

    /// `new`, counting into `counters` (created before the source, for another thread to watch).
    pub fn with_counters(
        sink: &'s Sink,
        tags_as_fields: TagsAsFields,
        counters: Arc<K6Counters>,
    ) -> Self {
        K6JsonSource {
            sink,
            tags_as_fields,
            counters,
            cache: HashMap::with_hasher(KeyHash::new(fastrand::u64(..))),
            entries: Vec::new(),
            metric_types: HashMap::new(),
            pending: Vec::with_capacity(BATCH),
            meta: Vec::with_capacity(BATCH * 2),
            arena: String::new(),
            key_buf: Vec::with_capacity(256),
            scratch: String::new(),
            line: Vec::with_capacity(1024),
            fields_store: Vec::new(),
            first_error: None,
            times: TimeCache::default(),
            unpublished_lines: 0,
            unpublished_samples: 0,
        }
    }

    /// The live counters, for a progress display in another thread.
    pub fn counters(&self) -> Arc<K6Counters> {
        self.counters.clone()
    }

    pub fn stats(&self) -> K6Stats {
        let mut stats = self.counters.snapshot();
        stats.lines += self.unpublished_lines;
        stats.samples += self.unpublished_samples;
        stats
    }

    fn publish_counts(&mut self) {
        if self.unpublished_lines > 0 {
            let lines = std::mem::take(&mut self.unpublished_lines);
            self.counters.lines.fetch_add(lines, Relaxed);
        }
        if self.unpublished_samples > 0 {
            let samples = std::mem::take(&mut self.unpublished_samples);
            self.counters.samples.fetch_add(samples, Relaxed);
        }
    }

    /// The type of a metric whose `Metric` line was seen.
    pub fn metric_type(&self, name: &str) -> Option<MetricType> {
        self.metric_types.get(name).copied()
    }

    /// Every metric seen so far, with its type.
    pub fn metric_types(&self) -> impl Iterator<Item = (&str, MetricType)> {
        self.metric_types.iter().map(|(k, v)| (&**k, *v))
    }

    /// The first line that was not understood, with why (for a diagnostic message).
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    /// Reads the stream to its end. Pending samples are handed to the sink whenever no more
    /// input is ready (so points flow while k6 runs) and at the end.
    pub fn run<R: Read>(&mut self, input: R) -> io::Result<K6Stats> {
        let mut reader = BufReader::with_capacity(READ_BUFFER, input);
        loop {
            let chunk = match reader.fill_buf() {
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.flush();
                    return Err(e);
                }
            };
            if chunk.is_empty() {
                break;
            }
            // Whole lines are parsed where they lie in the read buffer; only a line split
            // between two reads is copied (into `self.line`).
            let mut rest = chunk;
            if !self.line.is_empty() {
                let Some(nl) = find_byte(b'\n', rest) else {
                    self.line.extend_from_slice(rest);
                    let n = rest.len();
                    reader.consume(n);
                    continue;
                };
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&rest[..=nl]);
                self.feed_line(&line);
                line.clear();
                self.line = line;
                rest = &rest[nl + 1..];
            }
            while let Some(nl) = find_byte(b'\n', rest) {
                self.feed_line(&rest[..=nl]);
                rest = &rest[nl + 1..];
            }
            self.line.extend_from_slice(rest);
            let n = chunk.len();
            reader.consume(n);
            // Nothing more is buffered: hand over what is pending, so points flow while k6
            // runs.
            self.flush();
        }
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.feed_line(&line);
            self.line = line;
            self.line.clear();
        }
        self.flush();
        Ok(self.stats())
    }

    /// Parses one line (with or without its `\n`). Samples are queued and handed to the sink
    /// in batches; call [`flush`](Self::flush) to hand over what is queued.
    pub fn feed_line(&mut self, line: &[u8]) {
        let mut end = line.len();
        while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let line = &line[..end];
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.unpublished_lines += 1;
        let result = match std::str::from_utf8(line) {
            Ok(text) => self.parse_line(text),
            Err(_) => Err("not valid UTF-8"),
        };
        if let Err(why) = result {
            self.counters.malformed.fetch_add(1, Relaxed);
            if self.first_error.is_none() {
                let shown: String = String::from_utf8_lossy(line).chars().take(200).collect();
                self.first_error = Some(format!("{why}: {shown}"));
            }
        }
        if self.pending.len() >= BATCH {
            self.flush();
        }
    }

    fn parse_line(&mut self, text: &str) -> std::result::Result<(), &'static str> {
        if let Some((metric, point)) = k6_point(text) {
            return self.point(text, metric, point);
        }
        let mut s = Scan::new(text);
        s.expect(b'{')?;
        let mut kind: Option<&str> = None;
        let mut metric: Option<JStr> = None;
        let mut data: Option<usize> = None;
        let mut point: Option<PointData> = None;
        if !s.eat(b'}') {
            loop {
                let key = s.string()?;
                s.expect(b':')?;
                match key.raw(text) {
                    "type" => kind = Some(s.string()?.raw(text)),
                    "metric" => metric = Some(s.string()?),
                    "data" if kind == Some("Point") => point = Some(s.point_data()?),
                    "data" => {
                        // `type` not seen yet (or not a Point): look at it once the line is read.
                        data = Some(s.pos);
                        s.skip_value()?;
                    }
                    _ => s.skip_value()?,
                }
                if s.eat(b',') {
                    continue;
                }
                s.expect(b'}')?;
                break;
            }
        }
        s.end()?;
        match kind {
            Some("Point") => {
                let point = match (point, data) {
                    (Some(p), _) => p,
                    (None, Some(pos)) => {
                        let mut d = Scan::at(text, pos);
                        d.point_data()?
                    }
                    (None, None) => return Err("a Point line without data"),
                };
                let metric = metric.ok_or("a Point line without a metric name")?;
                self.point(text, metric, point)
            }
            Some("Metric") => {
                self.counters.metrics.fetch_add(1, Relaxed);
                let pos = data.ok_or("a Metric line without data")?;
                let mut d = Scan::at(text, pos);
                let (name, ty) = d.metric_data()?;
                let name = name.ok_or("a Metric line without a name")?;
                let ty = ty.and_then(|t| MetricType::parse(t.raw(text)));
                let ty = ty.ok_or("a Metric line without a known type")?;
                let name = name.decoded(text, &mut self.scratch);
                if self.metric_types.get(name) != Some(&ty) {
                    self.metric_types.insert(name.into(), ty);
                }
                Ok(())
            }
            _ => Err("neither a Point nor a Metric line"),
        }
    }

    fn point(
        &mut self,
        text: &str,
        metric: JStr,
        p: PointData,
    ) -> std::result::Result<(), &'static str> {
        let time = p.time.ok_or("a Point without time")?;
        let value = p.value.ok_or("a Point without value")?;
        if time.escaped {
            return Err("an escaped time");
        }
        let timestamp_ns = self
            .times
            .parse(time.raw(text).as_bytes())
            .ok_or("a time that is not RFC 3339")?;
        let tags_raw = p.tags.map(|(a, b)| &text[a..b]).unwrap_or("{}");

        self.key_buf.clear();
        self.key_buf.extend_from_slice(metric.raw(text).as_bytes());
        self.key_buf.push(0);
        self.key_buf.extend_from_slice(tags_raw.as_bytes());
        let entry = match self.cache.get(&self.key_buf[..]) {
            Some(&e) => e,
            None => self.register(text, metric, tags_raw)?,
        };
        let Some(series) = self.entries[entry as usize].series else {
            self.counters.refused.fetch_add(1, Relaxed);
            return Ok(());
        };

        let meta_start = self.meta.len();
        if let Some((a, b)) = p.metadata {
            if let Err(e) = self.metadata(&text[..b], a, entry) {
                self.meta.truncate(meta_start);
                return Err(e);
            }
        }
        self.pending.push(Pending {
            entry,
            series,
            value,
            timestamp_ns,
            meta_start: meta_start as u32,
            meta_end: self.meta.len() as u32,
            fields_start: 0,
            fields_end: 0,
        });
        self.unpublished_samples += 1;
        Ok(())
    }

    /// The cache miss: decodes the tags, registers the series and caches it.
    fn register(
        &mut self,
        text: &str,
        metric: JStr,
        tags_raw: &str,
    ) -> std::result::Result<u32, &'static str> {
        if self.entries.len() >= CACHE_MAX {
            // Pending samples point into `entries`.
            self.flush();
            self.cache.clear();
            self.entries.clear();
        }
        let mut names = String::new();
        let measurement = metric.decoded(text, &mut names).to_string();
        // Decoded tags as ranges of `decoded`, then borrowed from it.
        let mut decoded = String::new();
        let mut ranges: Vec<((usize, usize), (usize, usize))> = Vec::new();
        let mut s = Scan::new(tags_raw);
        s.expect(b'{')?;
        if !s.eat(b'}') {
            loop {
                let k = s.string()?;
                s.expect(b':')?;
                if s.peek() == Some(b'n') {
                    // `null`: no value, like an empty one.
                    s.skip_value()?;
                } else {
                    let v = s.string()?;
                    let ka = decoded.len();
                    decoded.push_str(k.decoded(tags_raw, &mut self.scratch));
                    let kb = decoded.len();
                    decoded.push_str(v.decoded(tags_raw, &mut self.scratch));
                    ranges.push(((ka, kb), (kb, decoded.len())));
                }
                if s.eat(b',') {
                    continue;
                }
                s.expect(b'}')?;
                break;
            }
        }
        s.end()?;

        let mut tags: Vec<Tag<'_>> = Vec::with_capacity(ranges.len());
        let mut typed_fields = Vec::new();
        self.tags_as_fields.split_tags(
            ranges
                .iter()
                .map(|&((ka, kb), (va, vb))| (&decoded[ka..kb], &decoded[va..vb])),
            &mut tags,
            &mut typed_fields,
        );
        let fields: Vec<(Box<str>, OwnedValue)> = typed_fields
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let series = self.sink.register_series(&measurement, &tags, "value").ok();
        if let Some(id) = series {
            // k6 defines a metric (a `Metric` line) before its first sample; a built-in one
            // is known anyway.
            let kind = self.metric_types.get(measurement.as_str()).copied();
            if let Some(kind) = kind.or_else(|| builtin_metric_kind(&measurement)) {
                let _ = self.sink.set_series_kind(id, kind);
            }
        }
        let id = self.entries.len() as u32;
        self.entries.push(Entry {
            series,
            fields: fields.into_boxed_slice(),
        });
        self.cache.insert(self.key_buf.as_slice().into(), id);
        Ok(id)
    }

    /// Queues the metadata fields of a sample: the object starting at `start` of `text`.
    fn metadata(
        &mut self,
        text: &str,
        start: usize,
        entry: u32,
    ) -> std::result::Result<(), &'static str> {
        // `text` ends where the value does: `end` checks that the value is all of it.
        let mut s = Scan::at(text, start);
        if s.peek() == Some(b'n') {
            s.skip_value()?;
            return s.end();
        }
        s.expect(b'{')?;
        if s.eat(b'}') {
            return s.end();
        }
        loop {
            let k = s.string()?;
            s.expect(b':')?;
            if s.peek() == Some(b'n') {
                s.skip_value()?;
            } else {
                let v = s.string()?;
                let key = k.decoded(text, &mut self.scratch);
                // A key the tag set already wrote as a field is not written twice.
                let written = &self.entries[entry as usize].fields;
                let kind = self
                    .tags_as_fields
                    .metadata_kind_beside(key, |k| written.iter().any(|(f, _)| &**f == k));
                if let Some(kind) = kind {
                    let mkey = match key {
                        "vu" => MetaKey::Vu,
                        "iter" => MetaKey::Iter,
                        _ => MetaKey::Other(push_arena(&mut self.arena, key)),
                    };
                    let raw = v.decoded(text, &mut self.scratch);
                    let value = match typed(raw, kind) {
                        Typed::Float(v) => MetaValue::Float(v),
                        Typed::Int(v) => MetaValue::Int(v),
                        Typed::Bool(v) => MetaValue::Bool(v),
                        Typed::Str(raw) => MetaValue::Str(push_arena(&mut self.arena, raw)),
                    };
                    self.meta.push(MetaField { key: mkey, value });
                }
            }
            if s.eat(b',') {
                continue;
            }
            s.expect(b'}')?;
            return s.end();
        }
    }

    /// Hands the queued samples to the sink (one `submit_with` call).
    pub fn flush(&mut self) {
        self.publish_counts();
        if self.pending.is_empty() {
            return;
        }
        let K6JsonSource {
            sink,
            entries,
            pending,
            meta,
            arena,
            fields_store,
            ..
        } = self;
        let mut fields: Vec<Field<'_>> = recycle(std::mem::take(fields_store));
        for p in pending.iter_mut() {
            p.fields_start = fields.len() as u32;
            for (k, v) in entries[p.entry as usize].fields.iter() {
                fields.push(Field::new(k, v.as_field_value()));
            }
            for m in &meta[p.meta_start as usize..p.meta_end as usize] {
                let key: &str = match m.key {
                    MetaKey::Vu => "vu",
                    MetaKey::Iter => "iter",
                    MetaKey::Other(span) => span_str(arena, span),
                };
                let value = match m.value {
                    MetaValue::Float(v) => FieldValue::Float(v),
                    MetaValue::Int(v) => FieldValue::Int(v),
                    MetaValue::Bool(v) => FieldValue::Bool(v),
                    MetaValue::Str(span) => FieldValue::Str(span_str(arena, span)),
                };
                fields.push(Field::new(key, value));
            }
            p.fields_end = fields.len() as u32;
        }
        let all = &fields;
        let pending_ref = &*pending;
        sink.submit_with(pending_ref.len(), |i| {
            let p = &pending_ref[i];
            Ok(Point {
                series: p.series,
                value: p.value,
                timestamp_ns: p.timestamp_ns,
                extra_fields: &all[p.fields_start as usize..p.fields_end as usize],
            })
        });
        *fields_store = recycle(fields);
        pending.clear();
        meta.clear();
        arena.clear();
    }
}

/// Empties a vector and gives back its allocation with another lifetime, so the field list of
/// each batch reuses the allocation of the previous one (`collect` reuses a vector's buffer
/// in place when the element layout is the same).
fn recycle<'a, 'b>(mut v: Vec<Field<'a>>) -> Vec<Field<'b>> {
    v.clear();
    v.into_iter().map(|_| unreachable!()).collect()
}

fn push_arena(arena: &mut String, s: &str) -> Span {
    let start = arena.len() as u32;
    arena.push_str(s);
    Span {
        start,
        end: arena.len() as u32,
    }
}

fn span_str(arena: &str, span: Span) -> &str {
    &arena[span.start as usize..span.end as usize]
}
