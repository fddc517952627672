//! k6's JSON output stream (`k6 run --out json=FILE`, one JSON object a line) into the sink, in
//! the **k6 raw schema**: exactly what k6's built-in `influxdb` output writes (measurement =
//! metric name; tags = sample tags minus `tagsAsFields`, empty values omitted; field `value`
//! (float) plus the `tagsAsFields` entries, typed per `K6_INFLUXDB_TAGS_AS_FIELDS`; timestamp in
//! ns), plus the sample metadata k6 drops: `vu` and `iter` as integer fields, any other metadata
//! key as a string field (typed per `tagsAsFields` when it is listed there).
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
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::model::{Field, FieldValue, Point, SeriesId, Tag};
use crate::sink::Sink;

/// The default of k6's `tagsAsFields` (`K6_INFLUXDB_TAGS_AS_FIELDS`).
pub const DEFAULT_TAGS_AS_FIELDS: &str = "vu:int,iter:int,url";

/// Bytes read from the stream at once.
const READ_BUFFER: usize = 256 << 10;

/// Samples handed to the sink per `submit_with` call at most.
const BATCH: usize = 1024;

/// Distinct (metric, raw tag set) entries the cache holds before it is emptied. Registration is
/// idempotent, so emptying it only costs re-registration; it bounds memory when a test tags
/// every request with a unique value (k6 itself grows too then).
const CACHE_MAX: usize = 200_000;

/// k6's metric types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Trend,
    Rate,
}

impl MetricType {
    fn parse(s: &str) -> Option<MetricType> {
        match s {
            "counter" => Some(MetricType::Counter),
            "gauge" => Some(MetricType::Gauge),
            "trend" => Some(MetricType::Trend),
            "rate" => Some(MetricType::Rate),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Trend => "trend",
            MetricType::Rate => "rate",
        }
    }
}

/// The type a `tagsAsFields` entry is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Int,
    Float,
    Bool,
}

/// k6's `tagsAsFields`: tags written as fields instead of tags, each with a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagsAsFields(Vec<(String, FieldKind)>);

impl Default for TagsAsFields {
    fn default() -> Self {
        // The default spec is valid by construction.
        TagsAsFields::parse(DEFAULT_TAGS_AS_FIELDS).unwrap_or(TagsAsFields(Vec::new()))
    }
}

impl TagsAsFields {
    /// Parses k6's syntax: `name[:string|int|float|bool]`, comma-separated (`vu:int,iter:int,url`).
    pub fn parse(spec: &str) -> Result<TagsAsFields> {
        let mut out: Vec<(String, FieldKind)> = Vec::new();
        for entry in spec.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (name, kind) = match entry.split_once(':') {
                None => (entry, FieldKind::String),
                Some((name, kind)) => {
                    let kind = match kind.trim() {
                        "string" => FieldKind::String,
                        "int" => FieldKind::Int,
                        "float" => FieldKind::Float,
                        "bool" => FieldKind::Bool,
                        other => {
                            return Err(Error::Config(format!(
                                "K6_INFLUXDB_TAGS_AS_FIELDS: {other:?} in {entry:?} is not a type \
                                 (expected string, int, float or bool)"
                            )))
                        }
                    };
                    (name.trim(), kind)
                }
            };
            if name.is_empty() {
                return Err(Error::Config(format!(
                    "K6_INFLUXDB_TAGS_AS_FIELDS: {entry:?} has an empty name"
                )));
            }
            if name == "value" {
                return Err(Error::Config(
                    "K6_INFLUXDB_TAGS_AS_FIELDS: \"value\" is the field of the sample value".into(),
                ));
            }
            if out.iter().any(|(n, _)| n == name) {
                return Err(Error::Config(format!(
                    "K6_INFLUXDB_TAGS_AS_FIELDS: {name:?} is given twice"
                )));
            }
            out.push((name.to_string(), kind));
        }
        Ok(TagsAsFields(out))
    }

    /// The type `key` is written as, when it is listed.
    pub fn kind(&self, key: &str) -> Option<FieldKind> {
        self.0.iter().find(|(n, _)| n == key).map(|(_, k)| *k)
    }

    pub fn entries(&self) -> &[(String, FieldKind)] {
        &self.0
    }
}

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

/// The hash of the cache's keys (metric name and raw tag set, ~200 bytes a sample): eight
/// bytes a step with a multiply (FxHash's), seeded per source, a final mix for the high bits the
/// table uses. SipHash, the default, costs several times more on keys this long, and the keys
/// come from the user's own k6 run, so flooding it with collisions would only slow that run.
#[derive(Debug, Clone, Copy)]
struct KeyHash(u64);

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;
    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(self.0)
    }
}

struct KeyHasher(u64);

const HASH_K: u64 = 0xf135_7aea_2e62_a9c5;

impl KeyHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0 ^ word).wrapping_mul(HASH_K).rotate_left(26);
    }
}

impl Hasher for KeyHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.add(word_at(w));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let h = self.0;
        (h ^ (h >> 29)).wrapping_mul(HASH_K) ^ (h >> 32)
    }
}

/// The reusable state of the stream: cache, metric types and the pending batch.
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
    /// The first 19 bytes of the last timestamp (k6's samples come in time order, so most
    /// share them) and their seconds ([`rfc3339_seconds`]).
    time_prefix: [u8; 19],
    time_seconds: Option<i64>,
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
            cache: HashMap::with_hasher(KeyHash(fastrand::u64(..))),
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
            time_prefix: [0; 19],
            time_seconds: None,
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
            .timestamp(time.raw(text).as_bytes())
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

    /// [`parse_rfc3339_ns`], reusing the date and time of day of the previous timestamp when
    /// they are the same bytes.
    fn timestamp(&mut self, b: &[u8]) -> Option<i64> {
        let prefix = b.get(..19)?;
        let seconds = match self.time_seconds {
            Some(s) if *prefix == self.time_prefix => s,
            _ => {
                let s = rfc3339_seconds(b)?;
                self.time_prefix.copy_from_slice(prefix);
                self.time_seconds = Some(s);
                s
            }
        };
        rfc3339_ns(seconds, b)
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
        let mut fields: Vec<(Box<str>, OwnedValue)> = Vec::new();
        for &((ka, kb), (va, vb)) in &ranges {
            let (key, value) = (&decoded[ka..kb], &decoded[va..vb]);
            match self.tags_as_fields.kind(key) {
                Some(kind) => fields.push((key.into(), typed(value, kind))),
                None => tags.push(Tag::new(key, value)),
            }
        }
        let series = self.sink.register_series(&measurement, &tags, "value").ok();
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
                let taken = key == "value"
                    || self.entries[entry as usize]
                        .fields
                        .iter()
                        .any(|(f, _)| &**f == key);
                if !taken && !key.is_empty() {
                    let kind = self.tags_as_fields.kind(key);
                    let (mkey, kind) = match key {
                        "vu" => (MetaKey::Vu, kind.unwrap_or(FieldKind::Int)),
                        "iter" => (MetaKey::Iter, kind.unwrap_or(FieldKind::Int)),
                        _ => (
                            MetaKey::Other(push_arena(&mut self.arena, key)),
                            kind.unwrap_or(FieldKind::String),
                        ),
                    };
                    let raw = v.decoded(text, &mut self.scratch);
                    let value = match typed_scalar(raw, kind) {
                        Some(v) => v,
                        None => MetaValue::Str(push_arena(&mut self.arena, raw)),
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

/// A tag value converted per its `tagsAsFields` type; like k6, a value that does not parse is
/// written as a string.
fn typed(value: &str, kind: FieldKind) -> OwnedValue {
    match typed_scalar(value, kind) {
        Some(MetaValue::Float(v)) => OwnedValue::Float(v),
        Some(MetaValue::Int(v)) => OwnedValue::Int(v),
        Some(MetaValue::Bool(v)) => OwnedValue::Bool(v),
        Some(MetaValue::Str(_)) | None => OwnedValue::Str(value.into()),
    }
}

/// `Some` for a value that parses as `kind` (strings are left to the caller).
fn typed_scalar(value: &str, kind: FieldKind) -> Option<MetaValue> {
    match kind {
        FieldKind::String => None,
        FieldKind::Int => value.parse::<i64>().ok().map(MetaValue::Int),
        FieldKind::Float => value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(MetaValue::Float),
        // Go's strconv.ParseBool, which k6 uses.
        FieldKind::Bool => match value {
            "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(MetaValue::Bool(true)),
            "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(MetaValue::Bool(false)),
            _ => None,
        },
    }
}

/// A `Point` line laid out the way k6 writes it, read without the general scanner:
/// `{"metric":"NAME","type":"Point","data":{"time":"T","value":V,"tags":{..}[,"metadata":{..}]}}`
/// with no escape in the name and the time. `None` for any other layout, which the general
/// scanner then reads (it accepts keys in any order, whitespace and escapes).
fn k6_point(text: &str) -> Option<(JStr, PointData)> {
    let mut s = Scan::new(text);
    s.literal(b"{\"metric\":\"").ok()?;
    let metric = s.plain_string_rest()?;
    s.literal(b",\"type\":\"Point\",\"data\":{\"time\":\"")
        .ok()?;
    let time = s.plain_string_rest()?;
    s.literal(b",\"value\":").ok()?;
    let value = s.number().ok()?;
    s.literal(b",\"tags\":").ok()?;
    let tags = match s.b.get(s.pos) {
        Some(b'{') => Some(s.flat_object().ok()?),
        _ => {
            s.literal(b"null").ok()?;
            None
        }
    };
    let metadata = match s.literal(b",\"metadata\":") {
        Ok(()) if s.b.get(s.pos) == Some(&b'{') => Some(s.flat_object().ok()?),
        Ok(()) => return None,
        Err(_) => None,
    };
    s.literal(b"}}").ok()?;
    s.end().ok()?;
    Some((
        metric,
        PointData {
            time: Some(time),
            value: Some(value),
            tags,
            metadata,
        },
    ))
}

/// The `data` object of a `Point` line.
#[derive(Debug, Default, Clone, Copy)]
struct PointData {
    time: Option<JStr>,
    value: Option<f64>,
    /// Byte range of the `tags` object.
    tags: Option<(usize, usize)>,
    /// Byte range of the `metadata` value.
    metadata: Option<(usize, usize)>,
}

/// A JSON string in the line: the bytes between its quotes.
#[derive(Debug, Clone, Copy)]
struct JStr {
    start: usize,
    end: usize,
    escaped: bool,
}

impl JStr {
    /// The raw text between the quotes (escapes not decoded).
    fn raw(self, text: &str) -> &str {
        &text[self.start..self.end]
    }

    /// The decoded string: borrowed from the line when it has no escape, else decoded into
    /// `buf` (cleared first).
    fn decoded<'a>(self, text: &'a str, buf: &'a mut String) -> &'a str {
        if !self.escaped {
            return self.raw(text);
        }
        buf.clear();
        unescape(self.raw(text), buf);
        buf
    }
}

/// Decodes JSON escapes (already validated by the scanner). Lone surrogates become U+FFFD.
fn unescape(raw: &str, out: &mut String) {
    let b = raw.as_bytes();
    let mut i = 0;
    let mut plain = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&raw[plain..i]);
        let c = b[i + 1];
        i += 2;
        match c {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            _ => {
                let hi = hex4(&b[i..i + 4]);
                i += 4;
                let c = if (0xD800..0xDC00).contains(&hi)
                    && b.get(i) == Some(&b'\\')
                    && b.get(i + 1) == Some(&b'u')
                    && b.len() >= i + 6
                {
                    let lo = hex4(&b[i + 2..i + 6]);
                    if (0xDC00..0xE000).contains(&lo) {
                        i += 6;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                    } else {
                        None
                    }
                } else {
                    char::from_u32(hi)
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
        }
        plain = i;
    }
    out.push_str(&raw[plain..]);
}

fn hex4(b: &[u8]) -> u32 {
    b.iter().fold(0, |acc, &c| {
        acc * 16 + (c as char).to_digit(16).unwrap_or(0)
    })
}

type ScanResult<T> = std::result::Result<T, &'static str>;

const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);

/// The first eight bytes of `b` (at least eight) as a word, first byte lowest.
#[inline]
fn word_at(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    u64::from_le_bytes(w)
}

/// Up to eight bytes of `b` as a word, first byte lowest, zeros past its end.
#[inline]
fn word_padded(b: &[u8]) -> u64 {
    match b.get(..8) {
        Some(w) => word_at(w),
        None => {
            let mut w = [0u8; 8];
            w[..b.len()].copy_from_slice(b);
            u64::from_le_bytes(w)
        }
    }
}

/// The high bit of each byte of `w` that is `byte`, no other bit (exact per byte).
#[inline]
fn byte_mask(w: u64, byte: u8) -> u64 {
    const LOWS: u64 = !HIGHS;
    let t = w ^ (ONES * u64::from(byte));
    !(((t & LOWS).wrapping_add(LOWS)) | t) & HIGHS
}

/// Whether any byte of `w` is zero (exact as a yes/no answer; not which byte).
#[inline]
fn has_zero_byte(w: u64) -> bool {
    w.wrapping_sub(ONES) & !w & HIGHS != 0
}

/// Whether any byte of `w` is `"`, `\\` or a control character (below 0x20): the bytes that
/// end a plain run in a JSON string.
#[inline]
fn has_string_special(w: u64) -> bool {
    let quote = w ^ (ONES * u64::from(b'"'));
    let backslash = w ^ (ONES * u64::from(b'\\'));
    // The zero-byte test of each, and "a byte below 0x20" (exact for limits up to 0x80).
    let zero = |v: u64| v.wrapping_sub(ONES) & !v;
    (zero(quote) | zero(backslash) | (w.wrapping_sub(ONES * 0x20) & !w)) & HIGHS != 0
}

/// The position of the first `a` or `b` in `bytes` (eight bytes at a time).
fn find_either(a: u8, b: u8, bytes: &[u8]) -> Option<usize> {
    let (pa, pb) = (ONES * u64::from(a), ONES * u64::from(b));
    let mut i = 0;
    while let Some(word) = bytes.get(i..i + 8) {
        let w = word_at(word);
        let (x, y) = (w ^ pa, w ^ pb);
        if (x.wrapping_sub(ONES) & !x | y.wrapping_sub(ONES) & !y) & HIGHS != 0 {
            break;
        }
        i += 8;
    }
    bytes[i..]
        .iter()
        .position(|&c| c == a || c == b)
        .map(|p| i + p)
}

/// The position of the first `byte` in `b` (eight bytes at a time).
fn find_byte(byte: u8, b: &[u8]) -> Option<usize> {
    let pattern = ONES * u64::from(byte);
    let mut i = 0;
    while let Some(word) = b.get(i..i + 8) {
        if has_zero_byte(word_at(word) ^ pattern) {
            break;
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == byte).map(|p| i + p)
}

/// A JSON scanner over one line, just enough for k6's output: it validates what it reads and
/// never allocates.
struct Scan<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Scan<'a> {
    fn new(text: &'a str) -> Self {
        Scan::at(text, 0)
    }

    fn at(text: &'a str, pos: usize) -> Self {
        Scan {
            b: text.as_bytes(),
            pos,
        }
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.pos) {
            if !matches!(c, b' ' | b'\t' | b'\n' | b'\r') {
                break;
            }
            self.pos += 1;
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.pos).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    fn expect(&mut self, c: u8) -> ScanResult<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(match c {
                b'{' => "expected '{'",
                b'}' => "expected '}'",
                b':' => "expected ':'",
                b'"' => "expected a string",
                _ => "unexpected character",
            })
        }
    }

    fn end(&mut self) -> ScanResult<()> {
        self.ws();
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err("text after the JSON object")
        }
    }

    /// A string; the scanner stands after its closing quote.
    fn string(&mut self) -> ScanResult<JStr> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        loop {
            // Plain bytes eight at a time; the byte loop below sees only the word with a
            // quote, backslash or control character in it.
            while let Some(word) = self.b.get(self.pos..self.pos + 8) {
                if has_string_special(word_at(word)) {
                    break;
                }
                self.pos += 8;
            }
            let Some(&c) = self.b.get(self.pos) else {
                return Err("unterminated string");
            };
            match c {
                b'"' => {
                    let end = self.pos;
                    self.pos += 1;
                    return Ok(JStr {
                        start,
                        end,
                        escaped,
                    });
                }
                b'\\' => {
                    escaped = true;
                    match self.b.get(self.pos + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 2
                        }
                        Some(b'u') => {
                            let hex = self.b.get(self.pos + 2..self.pos + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err("bad \\u escape");
                            }
                            self.pos += 6;
                        }
                        _ => return Err("bad escape"),
                    }
                }
                0..=0x1f => return Err("control character in a string"),
                _ => self.pos += 1,
            }
        }
    }

    /// The rest of a string whose opening quote was read, when it has no escape and no
    /// control character (`None` otherwise); the scanner stands after its closing quote.
    fn plain_string_rest(&mut self) -> Option<JStr> {
        let start = self.pos;
        let rest = self.b.get(start..)?;
        let mut i = 0;
        while let Some(word) = rest.get(i..i + 8) {
            if has_string_special(word_at(word)) {
                break;
            }
            i += 8;
        }
        let end = start
            + i
            + rest[i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if self.b[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        Some(JStr {
            start,
            end,
            escaped: false,
        })
    }

    fn number(&mut self) -> ScanResult<f64> {
        self.ws();
        let start = self.pos;
        while let Some(&c) = self.b.get(self.pos) {
            if !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') {
                break;
            }
            self.pos += 1;
        }
        // ASCII only, so always valid UTF-8.
        let s = std::str::from_utf8(&self.b[start..self.pos]).map_err(|_| "bad number")?;
        if s.is_empty() {
            return Err("expected a number");
        }
        s.parse::<f64>().map_err(|_| "bad number")
    }

    fn literal(&mut self, word: &[u8]) -> ScanResult<()> {
        if self.b[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err("unexpected character")
        }
    }

    /// Skips any JSON value.
    fn skip_value(&mut self) -> ScanResult<()> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => {
                self.pos += 1;
                if self.eat(b'}') {
                    return Ok(());
                }
                loop {
                    self.string()?;
                    self.expect(b':')?;
                    self.skip_value()?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.expect(b'}');
                }
            }
            Some(b'[') => {
                self.pos += 1;
                if self.eat(b']') {
                    return Ok(());
                }
                loop {
                    self.skip_value()?;
                    if self.eat(b',') {
                        continue;
                    }
                    return if self.eat(b']') {
                        Ok(())
                    } else {
                        Err("expected ']'")
                    };
                }
            }
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number().map(|_| ()),
            _ => Err("expected a value"),
        }
    }

    /// Skips a value and returns its byte range.
    fn span(&mut self) -> ScanResult<(usize, usize)> {
        self.ws();
        let start = self.pos;
        self.skip_value()?;
        Ok((start, self.pos))
    }

    /// The byte range of an object whose values are strings or scalars (k6's `tags` and
    /// `metadata`), found fast and not validated: its end is the first `}` outside a string.
    /// The caller validates the range when it reads it (a cache hit is a copy of bytes that
    /// were validated). The scanner stands at the `{`.
    fn flat_object(&mut self) -> ScanResult<(usize, usize)> {
        let start = self.pos;
        // Without a backslash, a `}` is outside the strings when an even number of quotes
        // stands before it: count them a word at a time.
        let mut pos = start + 1;
        let mut quotes = 0u32;
        while pos < self.b.len() {
            let w = word_padded(&self.b[pos..]);
            if byte_mask(w, b'\\') != 0 {
                break;
            }
            let q = byte_mask(w, b'"');
            let mut close = byte_mask(w, b'}');
            while close != 0 {
                let bit = close.trailing_zeros();
                if (quotes + (q & ((1u64 << bit) - 1)).count_ones()) % 2 == 0 {
                    self.pos = pos + bit as usize / 8 + 1;
                    return Ok((start, self.pos));
                }
                close &= close - 1;
            }
            quotes += q.count_ones();
            pos += 8;
        }
        // With escapes (or no end): string by string.
        self.pos = start + 1;
        loop {
            let rest = self.b.get(self.pos..).unwrap_or_default();
            let i = find_either(b'"', b'}', rest).ok_or("unterminated object")?;
            self.pos += i + 1;
            if rest[i] == b'}' {
                return Ok((start, self.pos));
            }
            // Inside a string: to its closing quote, stepping over escapes.
            loop {
                let rest = self.b.get(self.pos..).unwrap_or_default();
                let i = find_either(b'"', b'\\', rest).ok_or("unterminated string")?;
                if rest[i] == b'"' {
                    self.pos += i + 1;
                    break;
                }
                self.pos += i + 2;
            }
        }
    }

    /// The `data` object of a `Point` line.
    fn point_data(&mut self) -> ScanResult<PointData> {
        let mut d = PointData::default();
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok(d);
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            match &self.b[key.start..key.end] {
                b"time" => d.time = Some(self.string()?),
                b"value" => d.value = Some(self.number()?),
                b"tags" => {
                    if self.peek() == Some(b'n') {
                        self.skip_value()?;
                    } else if self.peek() == Some(b'{') {
                        // Validated by `register` when its bytes are new to the cache.
                        d.tags = Some(self.flat_object()?);
                    } else {
                        return Err("tags is not an object");
                    }
                }
                b"metadata" => {
                    d.metadata = Some(if self.peek() == Some(b'{') {
                        // Validated by `metadata`.
                        self.flat_object()?
                    } else {
                        self.span()?
                    })
                }
                _ => self.skip_value()?,
            }
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Ok(d);
        }
    }

    /// `name` and `type` of the `data` object of a `Metric` line.
    fn metric_data(&mut self) -> ScanResult<(Option<JStr>, Option<JStr>)> {
        let (mut name, mut ty) = (None, None);
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok((name, ty));
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            match &self.b[key.start..key.end] {
                b"name" => name = Some(self.string()?),
                b"type" => ty = Some(self.string()?),
                _ => self.skip_value()?,
            }
            if self.eat(b',') {
                continue;
            }
            self.expect(b'}')?;
            return Ok((name, ty));
        }
    }
}

/// Parses an RFC 3339 timestamp (`2025-06-25T10:00:00.123456789Z`, any number of fraction
/// digits, `Z` or a `±hh:mm` offset) to ns since the epoch. `None` when it is not one or is
/// outside the years 1678–2261 that ns in an i64 cover.
pub fn parse_rfc3339_ns(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    rfc3339_ns(rfc3339_seconds(b)?, b)
}

/// The date and time of day of an RFC 3339 timestamp (`2025-06-25T10:00:00`, the first 19
/// bytes), validated, as seconds since the epoch before the offset is applied.
fn rfc3339_seconds(b: &[u8]) -> Option<i64> {
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // 60 is a leap second; Go never writes one, but RFC 3339 allows it.
    if hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec)
}

/// ns since the epoch of the RFC 3339 timestamp `b` whose first 19 bytes are `seconds`
/// ([`rfc3339_seconds`]): the fraction and the offset are read here. `None` outside the years
/// that ns in an i64 cover.
fn rfc3339_ns(seconds: i64, b: &[u8]) -> Option<i64> {
    let mut i = 19;
    let mut frac_ns = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        let mut scale = 100_000_000i64;
        while let Some(&c) = b.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            // Digits past ns are truncated, like Go's parser.
            frac_ns += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset_s = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        &sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let digit = |j: usize| b[j].is_ascii_digit().then(|| i64::from(b[j] - b'0'));
            let oh = digit(i + 1)? * 10 + digit(i + 2)?;
            let om = digit(i + 4)? * 10 + digit(i + 5)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if sign == b'+' {
                o
            } else {
                -o
            }
        }
        _ => return None,
    };
    (seconds - offset_s)
        .checked_mul(1_000_000_000)?
        .checked_add(frac_ns)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T20:31:41.243487003Z"),
            Some(1_795_638_701_243_487_003)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T20:31:41.2434914Z"),
            Some(1_795_638_701_243_491_400)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T22:31:41.5+02:00"),
            Some(1_795_638_701_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2026-11-25T15:01:41.5-05:30"),
            Some(1_795_638_701_500_000_000)
        );
        assert_eq!(
            parse_rfc3339_ns("2000-02-29T00:00:00.1234567891Z"),
            Some(951_782_400_123_456_789)
        );
        assert_eq!(
            parse_rfc3339_ns("1969-12-31T23:59:59.5Z"),
            Some(-500_000_000)
        );
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T20:31:41",
            "2026-13-25T20:31:41Z",
            "2026-02-29T20:31:41Z",
            "2026-11-25T24:31:41Z",
            "2026-11-25T20:31:41.Z",
            "2026-11-25T20:31:41.5",
            "2026-11-25T20:31:41+0200",
            "2026-11-25T20:31:41Zx",
            "9999-11-25T20:31:41Z",
            "2026-1a-25T20:31:41Z",
        ] {
            assert_eq!(parse_rfc3339_ns(bad), None, "{bad}");
        }
    }

    #[test]
    fn civil_days_match_a_known_table() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1600, 1, 1), -135_140);
        assert_eq!(days_from_civil(2262, 4, 11), 106_751);
    }

    #[test]
    fn tags_as_fields_spec() {
        let t = TagsAsFields::default();
        assert_eq!(t.kind("vu"), Some(FieldKind::Int));
        assert_eq!(t.kind("iter"), Some(FieldKind::Int));
        assert_eq!(t.kind("url"), Some(FieldKind::String));
        assert_eq!(t.kind("name"), None);
        let t = TagsAsFields::parse(" a:float , b:bool,c:string,d ,").unwrap();
        assert_eq!(
            t.entries(),
            &[
                ("a".to_string(), FieldKind::Float),
                ("b".to_string(), FieldKind::Bool),
                ("c".to_string(), FieldKind::String),
                ("d".to_string(), FieldKind::String),
            ]
        );
        assert!(TagsAsFields::parse("").unwrap().entries().is_empty());
        for bad in ["a:integer", ":int", "a,a", "value"] {
            assert!(TagsAsFields::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn typed_values_fall_back_to_strings_like_k6() {
        assert_eq!(typed("12", FieldKind::Int), OwnedValue::Int(12));
        assert_eq!(typed("-3", FieldKind::Int), OwnedValue::Int(-3));
        assert_eq!(typed("1.5", FieldKind::Int), OwnedValue::Str("1.5".into()));
        assert_eq!(typed("1.5", FieldKind::Float), OwnedValue::Float(1.5));
        assert_eq!(
            typed("NaN", FieldKind::Float),
            OwnedValue::Str("NaN".into())
        );
        assert_eq!(typed("T", FieldKind::Bool), OwnedValue::Bool(true));
        assert_eq!(typed("False", FieldKind::Bool), OwnedValue::Bool(false));
        assert_eq!(typed("yes", FieldKind::Bool), OwnedValue::Str("yes".into()));
        assert_eq!(typed("7", FieldKind::String), OwnedValue::Str("7".into()));
    }

    #[test]
    fn unescape_decodes_every_escape() {
        let mut out = String::new();
        unescape(r#"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00\ud800x"#, &mut out);
        assert_eq!(out, "a\"b\\c/d\u{8}\u{c}\n\r\té😀\u{FFFD}x");
    }

    #[test]
    fn word_tests_match_byte_by_byte_ones() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = b"\"\\}{\n\x00\x1f\x20\x7f\x80\xffa0";
        for _ in 0..20_000 {
            let bytes: Vec<u8> = (0..rng.usize(0..20))
                .map(|_| {
                    if rng.bool() {
                        alphabet[rng.usize(..alphabet.len())]
                    } else {
                        rng.u8(..)
                    }
                })
                .collect();
            let w = word_padded(&bytes);
            let shown = &bytes[..bytes.len().min(8)];
            let special = shown.iter().any(|&c| c == b'"' || c == b'\\' || c < 0x20);
            if bytes.len() >= 8 {
                assert_eq!(has_string_special(w), special, "{bytes:?}");
            }
            for probe in [b'"', b'}', b'\\', 0] {
                let mask: u64 = (0..8)
                    .filter(|&i| shown.get(i) == Some(&probe) || (i >= shown.len() && probe == 0))
                    .map(|i| 0x80u64 << (8 * i))
                    .sum();
                assert_eq!(byte_mask(w, probe), mask, "{bytes:?} {probe}");
                assert_eq!(
                    find_byte(probe, &bytes),
                    bytes.iter().position(|&c| c == probe),
                    "{bytes:?} {probe}"
                );
                assert_eq!(
                    find_either(probe, b'x', &bytes),
                    bytes.iter().position(|&c| c == probe || c == b'x'),
                    "{bytes:?} {probe}"
                );
            }
        }
    }

    #[test]
    fn flat_objects_end_at_the_first_brace_outside_strings() {
        for (text, end) in [
            ("{}", 2),
            (r#"{"a":"b"}"#, 9),
            (r#"{"a":"}"}, x"#, 9),
            (r#"{"a}":"}}}"}}"#, 12),
            (r#"{"a":"\"}"}"#, 11),
            (r#"{"a":"x\\"}"#, 11),
            (r#"{"a":"\\\"}","b":"c"}}"#, 21),
            (
                r#"{"long key beyond a word":"and a value \u00fc","n":null}}"#,
                56,
            ),
            (r#"{"ü✓":"é"}"#, 14),
        ] {
            let mut s = Scan::new(text);
            assert_eq!(s.flat_object(), Ok((0, end)), "{text}");
            assert_eq!(s.pos, end, "{text}");
        }
        for bad in [r#"{"a":"b""#, r#"{"a":"b\"}"#, r#"{"a"#, "{"] {
            let mut s = Scan::new(bad);
            assert!(s.flat_object().is_err(), "{bad}");
        }
    }

    #[test]
    fn k6s_own_layout_reads_like_the_general_scanner() {
        let lines = [
            r#"{"metric":"http_reqs","type":"Point","data":{"time":"2025-06-25T10:00:00.123456789Z","value":1,"tags":{"group":"","method":"GET","url":"http://x/}"}}}"#,
            r#"{"metric":"vus","type":"Point","data":{"time":"2025-06-25T10:00:01Z","value":-2.5e-3,"tags":{}}}"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:01+02:00","value":3,"tags":null,"metadata":{"vu":"1","iter":"2"}}}  "#,
        ];
        for line in lines {
            let (metric, fast) = k6_point(line).unwrap_or_else(|| panic!("{line}"));
            let mut s = Scan::new(line);
            s.expect(b'{').unwrap();
            let mut general = None;
            let mut name = None;
            loop {
                let key = s.string().unwrap();
                s.expect(b':').unwrap();
                match key.raw(line) {
                    "metric" => name = Some(s.string().unwrap().raw(line)),
                    "data" => general = Some(s.point_data().unwrap()),
                    _ => s.skip_value().unwrap(),
                }
                if !s.eat(b',') {
                    break;
                }
            }
            let general = general.unwrap();
            assert_eq!(Some(metric.raw(line)), name, "{line}");
            assert_eq!(
                fast.time.map(|t| t.raw(line)),
                general.time.map(|t| t.raw(line))
            );
            assert_eq!(fast.value, general.value, "{line}");
            assert_eq!(fast.tags, general.tags, "{line}");
            assert_eq!(fast.metadata, general.metadata, "{line}");
        }
        // Other layouts are left to the general scanner.
        for line in [
            r#"{"type":"Point","metric":"m","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{}}}"#,
            r#"{"metric":"m\u0041","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{}}}"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{}}}x"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":{},"metadata":null}}"#,
            r#"{"metric":"m","type":"Point","data":{"time":"2025-06-25T10:00:00Z","value":1,"tags":"x"}}"#,
        ] {
            assert!(k6_point(line).is_none(), "{line}");
        }
    }

    #[test]
    fn timestamps_reuse_the_previous_date_and_time_of_day() {
        let sink = Sink::from_kv("").unwrap();
        let mut source = K6JsonSource::new(&sink, TagsAsFields::default());
        for t in [
            "2026-11-25T20:31:41.243487003Z",
            "2026-11-25T20:31:41.5Z",
            "2026-11-25T20:31:41+02:00",
            "2026-11-25T20:31:41.1-05:30",
            "2026-11-25T20:31:42Z",
            "2026-11-25T20:31:42.Z",
            "2026-11-25T20:31:42.7Z",
            "2026-13-25T20:31:42.7Z",
            "2026-11-25T20:31:42.7",
        ] {
            assert_eq!(source.timestamp(t.as_bytes()), parse_rfc3339_ns(t), "{t}");
        }
    }

    #[test]
    fn scanner_skips_and_rejects() {
        let text = r#"{"a":[1,-2.5e3,{"b":null}],"c":true,"d":"x\"y"}"#;
        let mut s = Scan::new(text);
        s.skip_value().unwrap();
        s.end().unwrap();
        for bad in [
            r#"{"a":}"#,
            r#"{"a":"x}"#,
            r#"{"a":"\q"}"#,
            r#"{"a":"\u12"}"#,
            r#"{"a":[1,}"#,
            "{\"a\":\"\u{1}\"}",
        ] {
            let mut s = Scan::new(bad);
            assert!(s.skip_value().is_err(), "{bad}");
        }
    }
}
