//! The points of one `perfsink_sink_submit` call, read straight from C memory: no copy of the
//! batch and no allocation per point; each point's extra fields are checked and written into
//! its line as they are read.

use super::boundary::slice_arg;
use super::error::{fail_with, Failure, FfiResult};
use super::result::perfsink_result;
use super::types::{self, perfsink_field, perfsink_point, PERFSINK_TIMESTAMP_NOW};
use crate::error::Error;
use crate::lineproto::{write_field, FieldOptions};
use crate::model::now_ns;
use crate::sink::{is_field_named, repeated_field, PointHead, PointSource, Submitted};

/// Why the extra fields of a fast-path point could not be read (NULL, invalid UTF-8, unknown
/// type): the code `perfsink_sink_record` would return for them, and the message.
struct Unreadable {
    code: perfsink_result,
    message: String,
    /// How the point is refused inside the sink; unique per point (the message names it).
    error: Error,
}

/// A submit's points. Points often share one field array (the fields of a tag set): when a
/// point has the same array (pointer and count: the same C memory, which cannot change during
/// the call) as the one before, its encoded bytes are kept, and the points after that copy them
/// instead of reading the array again.
pub(crate) struct CPoints<'a> {
    points: &'a [perfsink_point],
    /// The array of the previous point with fields.
    last_key: Option<FieldsKey>,
    /// `,k=v...` as written for `last_key`, once a second point used that array.
    encoded: Vec<u8>,
    /// Where each field's key starts in the last fields encoded (after its `,`), for the
    /// first `KEYS` fields: an array, so a call allocates nothing for it.
    key_offsets: [u32; KEYS],
    /// How many fields the last encoding had; over `KEYS` (or over u32 bytes) it is not kept.
    keys: usize,
    encoded_valid: bool,
    unreadable: Vec<Unreadable>,
}

type FieldsKey = (*const perfsink_field, u32);

/// Arrays of up to this many fields have their encoding kept for the points that repeat them.
const KEYS: usize = 16;

impl<'a> CPoints<'a> {
    pub(crate) fn new(points: &'a [perfsink_point]) -> Self {
        CPoints {
            points,
            last_key: None,
            encoded: Vec::new(),
            key_offsets: [0; KEYS],
            keys: 0,
            encoded_valid: false,
            unreadable: Vec::new(),
        }
    }

    /// Reads and writes the extra fields of point `i`.
    #[inline]
    fn encode_fields(
        &mut self,
        i: usize,
        key: FieldsKey,
        buf: &mut Vec<u8>,
        opts: FieldOptions,
        value_key: &[u8],
    ) -> Result<(), Error> {
        // SAFETY: the caller of `perfsink_sink_submit` promises that the field arrays and
        // their strings are readable for the call.
        let fields = match unsafe { slice_arg(key.0, key.1 as usize, "fields") } {
            Ok(fields) => fields,
            Err(f) => return Err(self.note_unreadable(i, f)),
        };
        let start = buf.len();
        self.keys = 0;
        for (j, f) in fields.iter().enumerate() {
            // SAFETY: as above.
            let field = match unsafe { types::field_fast(f) } {
                Some(field) => field,
                None => match unsafe { types::field(f) } {
                    Ok(field) => field,
                    Err(failure) => return Err(self.note_unreadable(i, failure)),
                },
            };
            // SAFETY: the keys before `j` were read (and checked) above.
            if fields[..j]
                .iter()
                .any(|g| unsafe { same_key(g, field.key) })
            {
                return Err(self.refused(i, repeated_field(field.key)));
            }
            buf.push(b',');
            let at = buf.len();
            if let Err(e) = write_field(buf, field.key, field.value, opts) {
                // A field after this one may be unreadable; that is reported first.
                return Err(self.refused(i, e));
            }
            if is_field_named(&buf[at..], value_key) {
                return Err(self.refused(i, repeated_field(field.key)));
            }
            if let (Some(slot), Ok(offset)) =
                (self.key_offsets.get_mut(j), u32::try_from(at - start))
            {
                *slot = offset;
                self.keys += 1;
            }
        }
        Ok(())
    }

    /// Records why point `i`'s fields cannot be read.
    #[cold]
    fn note_unreadable(&mut self, i: usize, failure: Failure) -> Error {
        let message = format!("point {i}: {}", failure.message);
        let error = Error::InvalidInput(message.clone());
        self.unreadable.push(Unreadable {
            code: failure.code,
            message,
            error: error.clone(),
        });
        error
    }

    /// The outcome of the call: OK, or the first refusal (a point whose fields could not be
    /// read keeps the code of the reason, as in `perfsink_sink_record`).
    pub(crate) fn finish(&self, s: Submitted) -> FfiResult {
        let Some(e) = s.first_error else {
            return Ok(());
        };
        let mut failure = match self.unreadable.iter().find(|u| u.error == e) {
            Some(u) => Failure {
                code: u.code,
                message: u.message.clone(),
            },
            None => fail_with(&e),
        };
        let total = s.accepted + s.rejected + s.dropped;
        if total > 1 {
            failure.message = format!(
                "{} of {total} points not taken ({} rejected, {} dropped); first: {}",
                s.rejected + s.dropped,
                s.rejected,
                s.dropped,
                failure.message
            );
        }
        Err(failure)
    }
}

/// Whether C field `g` has the key `key`.
///
/// # Safety
/// `g.key` must be readable for `g.key_len` bytes.
#[inline]
unsafe fn same_key(g: &perfsink_field, key: &str) -> bool {
    g.key_len == key.len()
        && std::slice::from_raw_parts(g.key.cast::<u8>(), g.key_len) == key.as_bytes()
}

impl PointSource for CPoints<'_> {
    #[inline]
    fn read(&mut self, i: usize) -> Result<PointHead, Error> {
        let p = &self.points[i];
        let timestamp_ns = match p.timestamp_ns {
            PERFSINK_TIMESTAMP_NOW => now_ns(),
            ts => ts,
        };
        Ok(PointHead {
            series: p.series,
            value: p.value,
            timestamp_ns,
        })
    }

    #[inline]
    fn write_fields(
        &mut self,
        i: usize,
        buf: &mut Vec<u8>,
        opts: FieldOptions,
        value_key: &[u8],
    ) -> Result<(), Error> {
        let p = &self.points[i];
        if p.field_count == 0 {
            return Ok(());
        }
        let key = (p.fields, p.field_count);
        if self.last_key == Some(key) {
            if self.encoded_valid {
                // Checked once when encoded, but the series (and its value field) may differ.
                let named = |&at: &u32| is_field_named(&self.encoded[at as usize..], value_key);
                if self.key_offsets[..self.keys].iter().any(named) {
                    let name = String::from_utf8_lossy(value_key).into_owned();
                    return Err(self.refused(i, repeated_field(&name)));
                }
                buf.extend_from_slice(&self.encoded);
                return Ok(());
            }
            // The second point with this array: keep its bytes for the points after it.
            let start = buf.len();
            self.encode_fields(i, key, buf, opts, value_key)?;
            // Kept only when every key's place is known (to check it against the value field).
            if self.keys == key.1 as usize {
                self.encoded.clear();
                self.encoded.extend_from_slice(&buf[start..]);
                self.encoded_valid = true;
            }
            return Ok(());
        }
        self.last_key = Some(key);
        self.encoded_valid = false;
        self.encode_fields(i, key, buf, opts, value_key)
    }

    /// A point with unreadable fields is refused for that first, as `perfsink_sink_record`
    /// refuses a point whose fields it cannot read before looking at anything else.
    #[cold]
    fn refused(&mut self, i: usize, reason: Error) -> Error {
        let p = &self.points[i];
        // SAFETY: as in `encode_fields`.
        let readable =
            unsafe { slice_arg(p.fields, p.field_count as usize, "fields") }.and_then(|fields| {
                fields
                    .iter()
                    .try_for_each(|f| unsafe { types::field(f) }.map(drop))
            });
        match readable {
            Ok(()) => reason,
            Err(failure) => self.note_unreadable(i, failure),
        }
    }
}
