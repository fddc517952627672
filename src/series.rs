//! Layer 2: series interning. A series (measurement + sorted tag set) is registered once and
//! gets a small key id — InfluxDB's series, counted by the series cap and `stats.series`, and
//! the unit of timestamp de-duplication. On top of it, each value field a fast-path caller
//! names gets an entry id whose escaped line-protocol prefix (`key value=`) is built once, so
//! hot-path points carry only `(id, value, timestamp)`. `register_series` and `record` of the
//! same measurement and tags share the key id.

use std::collections::HashMap;

use parking_lot::{RwLock, RwLockReadGuard};

use crate::error::{Error, Result};
use crate::lineproto;
use crate::model::{SeriesId, Tag};

/// The id of a series key (measurement + tag set), whatever the value field.
pub type KeyId = u32;

/// One registered series and value field.
#[derive(Debug)]
pub struct SeriesEntry {
    /// `measurement,tags ` — the series key and the space before the field set.
    key_len: usize,
    /// `measurement,tags value=` for the fast path (the key followed by the value field);
    /// for a series registered without a value field, just the key and the space.
    prefix: Box<[u8]>,
    /// The series key's id: entries of one key share it.
    key: KeyId,
}

impl SeriesEntry {
    /// The bytes a fast-path line starts with (up to and including `value=`).
    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// Whether fast-path points can use this series (it was registered with a value field).
    pub fn has_value_field(&self) -> bool {
        self.prefix.len() > self.key_len
    }

    /// The series key and the space before the fields (`measurement,tags `).
    pub fn key_and_space(&self) -> &[u8] {
        &self.prefix[..self.key_len]
    }

    /// The id of the series key, shared by every value field of the series.
    pub fn key_id(&self) -> KeyId {
        self.key
    }
}

/// The registry of all series of a sink.
pub struct SeriesRegistry {
    inner: RwLock<Inner>,
    max_series: usize,
    global_tags: Vec<(String, String)>,
    dialect: lineproto::Dialect,
}

#[derive(Default)]
struct Inner {
    by_prefix: HashMap<Box<[u8]>, SeriesId>,
    /// Series key (`measurement,tags `) to its id; ids are given in order.
    by_key: HashMap<Box<[u8]>, KeyId>,
    entries: Vec<SeriesEntry>,
}

/// Read access to the entries for the length of a batch (one lock per batch, not per point).
pub struct SeriesView<'a>(RwLockReadGuard<'a, Inner>);

impl SeriesView<'_> {
    pub fn get(&self, id: SeriesId) -> Option<&SeriesEntry> {
        self.0.entries.get(id as usize)
    }
}

impl SeriesRegistry {
    /// `global_tags` are merged into every series (a series' own tag of the same key wins).
    pub fn new(max_series: usize, global_tags: Vec<(String, String)>) -> Self {
        SeriesRegistry {
            inner: RwLock::new(Inner::default()),
            max_series,
            global_tags,
            dialect: lineproto::Dialect::default(),
        }
    }

    /// Escapes names for `dialect` (the target server's) instead of 1.x/2.x.
    pub fn with_dialect(mut self, dialect: lineproto::Dialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// Distinct series keys (what InfluxDB counts as series).
    pub fn len(&self) -> usize {
        self.inner.read().by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn view(&self) -> SeriesView<'_> {
        SeriesView(self.inner.read())
    }

    /// Registers (or finds) a series and returns its id. `value_field` names the field that
    /// fast-path values are written to (k6 writes `value`); `None` registers a series for
    /// multi-field records only. The same measurement, tags and value field give the same id;
    /// the same measurement and tags the same key id. The cap counts series keys.
    pub fn register(
        &self,
        measurement: &str,
        tags: &[Tag<'_>],
        value_field: Option<&str>,
    ) -> Result<SeriesId> {
        let prefix = self.build_prefix(measurement, tags, value_field)?;
        if let Some(&id) = self.inner.read().by_prefix.get(&prefix.bytes[..]) {
            return Ok(id);
        }
        let mut inner = self.inner.write();
        if let Some(&id) = inner.by_prefix.get(&prefix.bytes[..]) {
            return Ok(id);
        }
        let key = match inner.by_key.get(&prefix.bytes[..prefix.key_len]) {
            Some(&key) => key,
            None if inner.by_key.len() >= self.max_series => {
                return Err(Error::SeriesLimit(self.max_series));
            }
            None => {
                let key = inner.by_key.len() as KeyId;
                inner
                    .by_key
                    .insert(prefix.bytes[..prefix.key_len].into(), key);
                key
            }
        };
        let id = inner.entries.len() as SeriesId;
        let bytes: Box<[u8]> = prefix.bytes.into_boxed_slice();
        inner.entries.push(SeriesEntry {
            key_len: prefix.key_len,
            prefix: bytes.clone(),
            key,
        });
        inner.by_prefix.insert(bytes, id);
        Ok(id)
    }

    fn build_prefix(
        &self,
        measurement: &str,
        tags: &[Tag<'_>],
        value_field: Option<&str>,
    ) -> Result<Prefix> {
        let mut merged: Vec<(&str, &str)> = tags.iter().map(|t| (t.key, t.value)).collect();
        // A stable sort keeps the caller's order among equal keys so duplicates are reported.
        merged.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        if let Some(w) = merged.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::InvalidInput(format!(
                "duplicate tag key {:?}",
                w[0].0
            )));
        }
        for (k, v) in &self.global_tags {
            if let Err(pos) = merged.binary_search_by(|t| t.0.as_bytes().cmp(k.as_bytes())) {
                merged.insert(pos, (k, v));
            }
        }
        let mut bytes = Vec::with_capacity(64);
        lineproto::write_series_key(&mut bytes, measurement, &merged, self.dialect)?;
        bytes.push(b' ');
        let key_len = bytes.len();
        if let Some(field) = value_field {
            let start = bytes.len();
            // Encode `field=0` to validate and escape the key, then drop the `0`.
            let opts = lineproto::FieldOptions {
                dialect: self.dialect,
                series_key_len: key_len - 1,
                ..Default::default()
            };
            lineproto::write_field(&mut bytes, field, crate::model::FieldValue::Int(0), opts)?;
            let eq = bytes[start..]
                .iter()
                .rposition(|&b| b == b'=')
                .map(|p| start + p)
                .unwrap_or(bytes.len());
            bytes.truncate(eq + 1);
        }
        Ok(Prefix { bytes, key_len })
    }
}

struct Prefix {
    bytes: Vec<u8>,
    key_len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_series_same_id_and_tag_order_does_not_matter() {
        let r = SeriesRegistry::new(10, vec![]);
        let a = r
            .register(
                "http_req",
                &[Tag::new("b", "2"), Tag::new("a", "1")],
                Some("value"),
            )
            .unwrap();
        let b = r
            .register(
                "http_req",
                &[Tag::new("a", "1"), Tag::new("b", "2")],
                Some("value"),
            )
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(
            r.view().get(a).unwrap().prefix(),
            b"http_req,a=1,b=2 value="
        );
        assert_eq!(
            r.view().get(a).unwrap().key_and_space(),
            b"http_req,a=1,b=2 "
        );
        let c = r.register("http_req", &[Tag::new("a", "1")], None).unwrap();
        assert_ne!(a, c);
        assert_eq!(r.view().get(c).unwrap().prefix(), b"http_req,a=1 ");
    }

    #[test]
    fn global_tags_merge_and_own_tags_win() {
        let r = SeriesRegistry::new(
            10,
            vec![("host".into(), "h1".into()), ("testid".into(), "t".into())],
        );
        let id = r
            .register(
                "m",
                &[Tag::new("testid", "mine"), Tag::new("a", "x")],
                Some("value"),
            )
            .unwrap();
        assert_eq!(
            r.view().get(id).unwrap().prefix(),
            b"m,a=x,host=h1,testid=mine value="
        );
    }

    #[test]
    fn cap_and_duplicates_are_errors() {
        let r = SeriesRegistry::new(1, vec![]);
        r.register("m", &[], Some("value")).unwrap();
        assert_eq!(
            r.register("m2", &[], Some("value")),
            Err(Error::SeriesLimit(1))
        );
        assert!(matches!(
            r.register("m", &[Tag::new("a", "1"), Tag::new("a", "2")], None),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn value_fields_of_one_series_share_its_key_and_count_once() {
        let r = SeriesRegistry::new(2, vec![]);
        let tags = [Tag::new("a", "1")];
        let fast = r.register("m", &tags, Some("value")).unwrap();
        let other = r.register("m", &tags, Some("other")).unwrap();
        let multi = r.register("m", &tags, None).unwrap();
        assert!(fast != other && other != multi);
        let v = r.view();
        let key = v.get(fast).unwrap().key_id();
        assert_eq!(v.get(other).unwrap().key_id(), key);
        assert_eq!(v.get(multi).unwrap().key_id(), key);
        drop(v);
        assert_eq!(r.len(), 1);
        // The cap counts series keys, not value fields.
        r.register("m2", &[], None).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r.register("m3", &[], None), Err(Error::SeriesLimit(2)));
        assert!(r.register("m2", &[], Some("value")).is_ok());
    }
}
