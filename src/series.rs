//! Layer 2: series interning. A series (measurement + sorted tag set, plus the name of its main
//! value field) is registered once and gets a small id; its escaped line-protocol prefix is
//! built once, so hot-path points carry only `(id, value, timestamp)`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::{RwLock, RwLockReadGuard};

use crate::error::{Error, Result};
use crate::lineproto;
use crate::model::{SeriesId, Tag};

/// One registered series.
#[derive(Debug)]
pub struct SeriesEntry {
    /// `measurement,tags ` — the series key and the space before the field set.
    key_len: usize,
    /// `measurement,tags value=` for the fast path (the key followed by the value field);
    /// for a series registered without a value field, just the key and the space.
    prefix: Box<[u8]>,
    /// Last timestamp written, in precision units, for de-duplication.
    last_ts: AtomicI64,
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

    /// Returns a timestamp that no earlier line of this series used: `ts`, or one unit after the
    /// latest timestamp written when `ts` is not after it. The flag says whether it moved.
    /// A series fed faster than one sample per precision unit drifts forward; with the default
    /// `ns` precision that never happens in practice.
    pub fn unique_timestamp(&self, ts: i64) -> (i64, bool) {
        let mut last = self.last_ts.load(Ordering::Relaxed);
        loop {
            let (next, moved) = if ts > last {
                (ts, false)
            } else {
                (last.saturating_add(1), true)
            };
            match self.last_ts.compare_exchange_weak(
                last,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return (next, moved),
                Err(seen) => last = seen,
            }
        }
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

    pub fn len(&self) -> usize {
        self.inner.read().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn view(&self) -> SeriesView<'_> {
        SeriesView(self.inner.read())
    }

    /// Registers (or finds) a series and returns its id. `value_field` names the field that
    /// fast-path values are written to (k6 writes `value`); `None` registers a series for
    /// multi-field records only. The same measurement, tags and value field give the same id.
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
        if inner.entries.len() >= self.max_series {
            return Err(Error::SeriesLimit(self.max_series));
        }
        let id = inner.entries.len() as SeriesId;
        let bytes: Box<[u8]> = prefix.bytes.into_boxed_slice();
        inner.entries.push(SeriesEntry {
            key_len: prefix.key_len,
            prefix: bytes.clone(),
            last_ts: AtomicI64::new(i64::MIN),
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
    fn unique_timestamps_move_forward_only_on_collision() {
        let r = SeriesRegistry::new(1, vec![]);
        let id = r.register("m", &[], Some("value")).unwrap();
        let v = r.view();
        let e = v.get(id).unwrap();
        assert_eq!(e.unique_timestamp(100), (100, false));
        assert_eq!(e.unique_timestamp(100), (101, true));
        assert_eq!(e.unique_timestamp(100), (102, true));
        assert_eq!(e.unique_timestamp(200), (200, false));
    }
}
