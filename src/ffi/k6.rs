//! `perfsink_k6`: k6's rules (`sources::k6`) for an xk6 output written in another language,
//! so that the Go output applies the same configuration resolution and schema as `perfsink k6`
//! instead of a copy of them.
//!
//! `perfsink_k6_resolve` resolves k6's configuration (the `--out` argument, the config file's
//! `collectors.perfsink`, the environment) and `perfsink_k6_open_sink` opens the sink it
//! describes; the `perfsink_k6` handle answers what the output asks per tag set (`perfsink_k6_split_tags`: which tags
//! are written as typed fields) and per metadata map (`perfsink_k6_metadata_fields`), never per
//! sample. The handle is immutable: it may be used from many threads at once; free it with
//! `perfsink_k6_free` once no thread uses it. It does not own the sink.

use std::ffi::c_char;

use super::boundary::{guard, infallible, out_arg, ref_arg, slice_arg, str_arg};
use super::error::{copy_str, FfiResult};
use super::result::perfsink_result;
use super::sink::{open_with, perfsink_sink};
use super::types::{perfsink_field, perfsink_field_type, perfsink_tag};
use crate::sources::k6::config::resolve;
use crate::sources::k6::schema::{typed, FieldKind, TagsAsFields, Typed};
use crate::Config;

/// k6's resolved settings: the schema and what the output tells its user.
pub struct perfsink_k6 {
    config: Config,
    tags_as_fields: TagsAsFields,
    description: String,
    notes: Vec<String>,
    push_interval_ms: u64,
}

/// The `kind` of an output entry of `perfsink_k6_split_tags` (the tag stays a tag) and of
/// `perfsink_k6_metadata_fields` (the entry is not written): not a `perfsink_field_type`.
pub const PERFSINK_K6_NOT_A_FIELD: u32 = 0xFFFF_FFFF;

/// Resolves k6's configuration. `arg` is the text after `--out perfsink=` (NULL: the output
/// was not asked for by name; `""` with length 0: asked for without an argument); `json` the
/// config file's `collectors.perfsink` value (NULL/0: none); `env` the environment as k6 sees
/// it, `KEY=value` entries each ended by a NUL byte (NULL/0: empty). The rules are those of
/// `perfsink k6` (README "k6"). On success `*out_k6` holds the handle (free it with
/// `perfsink_k6_free`); on failure it is not written and `err` says what is wrong (never
/// showing a secret). Nothing is opened yet: `perfsink_k6_open_sink` does that.
///
/// # Safety
/// Every `(ptr, len)` pair must be readable for its length; `out_k6` must be writable; `err`
/// must hold `err_len` writable bytes or be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_resolve(
    arg: *const c_char,
    arg_len: usize,
    json: *const c_char,
    json_len: usize,
    env: *const c_char,
    env_len: usize,
    out_k6: *mut *mut perfsink_k6,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let out_k6 = out_arg(out_k6, "out_k6")?;
        let arg = match arg.is_null() {
            true => None,
            false => Some(str_arg(arg, arg_len, "arg")?),
        };
        let json = slice_arg(json.cast::<u8>(), json_len, "json")?;
        let env = slice_arg(env.cast::<u8>(), env_len, "env")?;
        let env = env
            .split(|&b| b == 0)
            .filter_map(|entry| {
                let entry = String::from_utf8_lossy(entry);
                let (k, v) = entry.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect::<Vec<_>>();
        let settings = resolve(arg, (!json.is_empty()).then_some(json), env)?;
        let k6 = Box::new(perfsink_k6 {
            description: settings.describe(),
            push_interval_ms: settings.config.flush_interval.as_millis() as u64,
            notes: settings.notes,
            tags_as_fields: settings.tags_as_fields,
            config: settings.config,
        });
        // SAFETY: `out_k6` is non-NULL and the caller promises it is writable.
        *out_k6 = Box::into_raw(k6);
        Ok(())
    })
}

/// Opens a sink with the resolved configuration (as `perfsink_sink_open` does) and writes it
/// to `*out_sink`; free it with `perfsink_sink_free`. Every call opens a new sink.
///
/// # Safety
/// `k6` must be NULL or a handle not yet freed; `out_sink` must be writable; `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_open_sink(
    k6: *const perfsink_k6,
    out_sink: *mut *mut perfsink_sink,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let k6 = ref_arg(k6, "k6")?;
        open_with(Ok(k6.config.clone()), out_sink)
    })
}

/// Copies where points go, for humans (`http://host:8086, db k6`; never credentials), into
/// `buf` (NUL-terminated, truncated at a character boundary) and returns its full length.
/// Infallible; NULL `k6` gives 0.
///
/// # Safety
/// `k6` must be NULL or a handle not yet freed; `buf` must hold `buf_len` writable bytes or
/// be NULL.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_describe(
    k6: *const perfsink_k6,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    infallible(0, || match k6.as_ref() {
        Some(k6) => copy_str(&k6.description, buf, buf_len),
        None => 0,
    })
}

/// How many notes the resolution left (settings accepted but ignored, values adjusted): the
/// output shows them as warnings. Infallible; NULL `k6` gives 0.
///
/// # Safety
/// `k6` must be NULL or a handle not yet freed.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_note_count(k6: *const perfsink_k6) -> usize {
    infallible(0, || k6.as_ref().map_or(0, |k6| k6.notes.len()))
}

/// Copies note `index` (below `perfsink_k6_note_count`) into `buf` like
/// `perfsink_k6_describe` and returns its full length; 0 for an index out of range or NULL
/// `k6`. Notes never hold secrets. Infallible.
///
/// # Safety
/// As for `perfsink_k6_describe`.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_note(
    k6: *const perfsink_k6,
    index: usize,
    buf: *mut c_char,
    buf_len: usize,
) -> usize {
    infallible(0, || match k6.as_ref().and_then(|k6| k6.notes.get(index)) {
        Some(note) => copy_str(note, buf, buf_len),
        None => 0,
    })
}

/// The sink's flush interval in ms (k6's `pushInterval`): how often the engine sends.
/// Infallible; NULL `k6` gives 0.
///
/// # Safety
/// `k6` must be NULL or a handle not yet freed.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_push_interval_ms(k6: *const perfsink_k6) -> u64 {
    infallible(0, || k6.as_ref().map_or(0, |k6| k6.push_interval_ms))
}

/// Classifies a tag set by k6's `tagsAsFields`: `out_fields[i]` (`count` entries) says what
/// `tags[i]` becomes. `kind` `PERFSINK_K6_NOT_A_FIELD`: it stays a tag (register the series
/// with the tags that stay); otherwise a field of that type, its key `tags[i].key`, its value
/// typed as k6 types it (a value that does not parse is a `PERFSINK_FIELD_STRING` whose
/// `string_value` is `tags[i].value`). Pass the tags sorted by key to get the fields in the
/// order `perfsink k6` writes them. Call it once per tag set, not per sample.
///
/// # Safety
/// `tags` must point to `count` tags whose strings are readable; `out_fields` must hold
/// `count` writable fields; `k6` must be NULL or a handle not yet freed; `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_split_tags(
    k6: *const perfsink_k6,
    tags: *const perfsink_tag,
    count: usize,
    out_fields: *mut perfsink_field,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let k6 = ref_arg(k6, "k6")?;
        let tags = slice_arg(tags, count, "tags")?;
        let out = out_slice(out_fields, count)?;
        for (t, out) in tags.iter().zip(out) {
            let key = str_arg(t.key, t.key_len, "tag key")?;
            let value = str_arg(t.value, t.value_len, "tag value")?;
            *out = match k6.tags_as_fields.kind(key) {
                Some(kind) => c_field(t, typed(value, kind)),
                None => not_a_field(t),
            };
        }
        Ok(())
    })
}

/// Types a sample's metadata (k6: `vu`, `iter`, ...) as k6's schema writes it:
/// `out_fields[i]` (`count` entries) is the field `metadata[i]` becomes, or has `kind`
/// `PERFSINK_K6_NOT_A_FIELD` when it is not written (`value`, an empty key, or a key among
/// `tag_fields`: the keys the sample's tag set already wrote as fields, from
/// `perfsink_k6_split_tags`; their values are ignored). Fields are typed and their strings
/// point as in `perfsink_k6_split_tags`; pass the entries sorted by key for `perfsink k6`'s
/// order. Call it once per distinct metadata map (k6 shares one among a request's samples).
///
/// # Safety
/// `metadata` and `tag_fields` must point to `count` and `tag_field_count` readable tags;
/// `out_fields` must hold `count` writable fields; `k6` and `err` as above.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_metadata_fields(
    k6: *const perfsink_k6,
    metadata: *const perfsink_tag,
    count: usize,
    tag_fields: *const perfsink_tag,
    tag_field_count: usize,
    out_fields: *mut perfsink_field,
    err: *mut c_char,
    err_len: usize,
) -> perfsink_result {
    guard(err, err_len, || {
        let k6 = ref_arg(k6, "k6")?;
        let metadata = slice_arg(metadata, count, "metadata")?;
        let written = slice_arg(tag_fields, tag_field_count, "tag_fields")?;
        // Keys compared as bytes: nothing to allocate or validate per call (this runs once
        // per k6 request).
        let wrote = |key: &str| {
            written.iter().any(|t| {
                slice_arg(t.key.cast::<u8>(), t.key_len, "tag field key").ok()
                    == Some(key.as_bytes())
            })
        };
        let out = out_slice(out_fields, count)?;
        for (t, out) in metadata.iter().zip(out) {
            let key = str_arg(t.key, t.key_len, "metadata key")?;
            let value = str_arg(t.value, t.value_len, "metadata value")?;
            let kind = k6.tags_as_fields.metadata_kind_beside(key, wrote);
            *out = match kind {
                Some(kind) => c_field(t, typed(value, kind)),
                None => not_a_field(t),
            };
        }
        Ok(())
    })
}

/// Frees a handle from `perfsink_k6_resolve`. NULL is a no-op. Call it once, when no thread uses
/// the handle any more. Infallible.
///
/// # Safety
/// `k6` must be NULL or a handle from `perfsink_k6_resolve` not yet freed, that no other thread
/// uses any more.
#[no_mangle]
pub unsafe extern "C" fn perfsink_k6_free(k6: *mut perfsink_k6) {
    if k6.is_null() {
        return;
    }
    // SAFETY: the caller gives up the handle.
    let handle = Box::from_raw(k6);
    infallible((), move || drop(handle));
}

/// `count` writable output fields.
///
/// # Safety
/// A non-NULL `ptr` must hold `count` writable fields.
unsafe fn out_slice<'a>(
    ptr: *mut perfsink_field,
    count: usize,
) -> FfiResult<&'a mut [perfsink_field]> {
    if count == 0 {
        return Ok(&mut []);
    }
    let ptr = out_arg(ptr, "out_fields")?;
    // `slice_arg` checks the length; the memory is the caller's to write.
    slice_arg(ptr.cast_const(), count, "out_fields")?;
    Ok(std::slice::from_raw_parts_mut(ptr, count))
}

/// The field an entry becomes: its key, and a typed value (a string points at the entry's).
fn c_field(t: &perfsink_tag, v: Typed<'_>) -> perfsink_field {
    let mut f = not_a_field(t);
    match v {
        Typed::Float(x) => (f.kind, f.float_value) = (field_type(FieldKind::Float), x),
        Typed::Int(x) => (f.kind, f.int_value) = (field_type(FieldKind::Int), x),
        Typed::Bool(x) => (f.kind, f.bool_value) = (field_type(FieldKind::Bool), x.into()),
        Typed::Str(_) => {
            f.kind = field_type(FieldKind::String);
            (f.string_value, f.string_len) = (t.value, t.value_len);
        }
    }
    f
}

fn not_a_field(t: &perfsink_tag) -> perfsink_field {
    perfsink_field {
        key: t.key,
        key_len: t.key_len,
        kind: PERFSINK_K6_NOT_A_FIELD,
        bool_value: 0,
        float_value: 0.0,
        int_value: 0,
        uint_value: 0,
        string_value: std::ptr::null(),
        string_len: 0,
    }
}

fn field_type(kind: FieldKind) -> u32 {
    use perfsink_field_type::*;
    (match kind {
        FieldKind::String => PERFSINK_FIELD_STRING,
        FieldKind::Int => PERFSINK_FIELD_INT,
        FieldKind::Float => PERFSINK_FIELD_FLOAT,
        FieldKind::Bool => PERFSINK_FIELD_BOOL,
    }) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffi::result::perfsink_result::*;
    use crate::ffi::sink::perfsink_sink_free;
    use perfsink_field_type::*;

    struct Opened {
        sink: *mut perfsink_sink,
        k6: *mut perfsink_k6,
    }

    impl Drop for Opened {
        fn drop(&mut self) {
            unsafe {
                perfsink_k6_free(self.k6);
                perfsink_sink_free(self.sink);
            }
        }
    }

    fn open(arg: Option<&str>, json: &str, env: &str) -> Result<Opened, (perfsink_result, String)> {
        let mut o = Opened {
            sink: std::ptr::null_mut(),
            k6: std::ptr::null_mut(),
        };
        let mut err = [0 as c_char; 256];
        // Nothing to create and no self-metrics: closing a sink that sent nothing is quick.
        let env =
            format!("{env}PERFSINK_CREATE_DATABASE=false\0PERFSINK_SELF_METRICS_INTERVAL_MS=0\0");
        let (ap, al) = arg.map_or((std::ptr::null(), 0), |a| (a.as_ptr(), a.len()));
        let rc = unsafe {
            perfsink_k6_resolve(
                ap.cast(),
                al,
                json.as_ptr().cast(),
                json.len(),
                env.as_ptr().cast(),
                env.len(),
                &mut o.k6,
                err.as_mut_ptr(),
                err.len(),
            )
        };
        let msg = |err: &[c_char]| {
            let msg = unsafe { std::ffi::CStr::from_ptr(err.as_ptr()) };
            msg.to_string_lossy().into_owned()
        };
        if rc != PERFSINK_OK {
            assert!(o.k6.is_null(), "handle written on failure");
            return Err((rc, msg(&err)));
        }
        let rc = unsafe { perfsink_k6_open_sink(o.k6, &mut o.sink, err.as_mut_ptr(), err.len()) };
        if rc != PERFSINK_OK {
            return Err((rc, msg(&err)));
        }
        Ok(o)
    }

    fn text(f: impl Fn(*mut c_char, usize) -> usize) -> String {
        let mut buf = [0 as c_char; 256];
        let n = f(buf.as_mut_ptr(), buf.len());
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        assert_eq!(n, s.to_bytes().len());
        s.to_string_lossy().into_owned()
    }

    fn tag(k: &'static str, v: &'static str) -> perfsink_tag {
        perfsink_tag {
            key: k.as_ptr().cast(),
            key_len: k.len(),
            value: v.as_ptr().cast(),
            value_len: v.len(),
        }
    }

    /// The three sources combine by the rules of `sources::k6::config`, and the handle tells
    /// what the output shows: description, notes, push interval.
    #[test]
    fn open_resolves_argument_json_and_environment() {
        let env = "K6_INFLUXDB_PUSH_INTERVAL=2s\0HOME=/root\0K6_INFLUXDB_DB=fromenv\0junk\0";
        let o = open(
            Some("http://127.0.0.1:1/argdb?consistency=all"),
            r#"{"db":"fromjson","tagsAsFields":["a:int"]}"#,
            env,
        )
        .unwrap();
        let describe = text(|b, l| unsafe { perfsink_k6_describe(o.k6, b, l) });
        assert_eq!(describe, "http://127.0.0.1:1, db argdb");
        assert_eq!(unsafe { perfsink_k6_push_interval_ms(o.k6) }, 2000);
        assert_eq!(unsafe { perfsink_k6_note_count(o.k6) }, 1);
        let note = text(|b, l| unsafe { perfsink_k6_note(o.k6, 0, b, l) });
        assert!(note.contains("consistency"), "{note}");
        assert_eq!(
            unsafe { perfsink_k6_note(o.k6, 1, std::ptr::null_mut(), 0) },
            0
        );
        // tagsAsFields came from the JSON config: `a` is an int field, `vu` a tag.
        let tags = [tag("a", "7"), tag("vu", "3")];
        let mut out = [not_a_field(&tags[0]); 2];
        let rc = unsafe {
            perfsink_k6_split_tags(
                o.k6,
                tags.as_ptr(),
                2,
                out.as_mut_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_OK);
        assert_eq!(
            (out[0].kind, out[0].int_value),
            (PERFSINK_FIELD_INT as u32, 7)
        );
        assert_eq!(out[1].kind, PERFSINK_K6_NOT_A_FIELD);
    }

    #[test]
    fn not_asked_for_and_nothing_set_is_disabled() {
        let o = open(None, "", "HOME=/root\0").unwrap();
        let describe = text(|b, l| unsafe { perfsink_k6_describe(o.k6, b, l) });
        assert_eq!(describe, "disabled (INFLUXDB_URL is empty)");
        // Asked for by name (an empty argument): k6's default address.
        let o = open(Some(""), "", "").unwrap();
        let describe = text(|b, l| unsafe { perfsink_k6_describe(o.k6, b, l) });
        assert_eq!(describe, "http://localhost:8086, db k6");
    }

    #[test]
    fn bad_configuration_fails_with_its_message_and_writes_no_handle() {
        let (rc, msg) = open(Some("K6_INFLUXDB_PROXY=http://p"), "", "")
            .err()
            .unwrap();
        assert_eq!(rc, PERFSINK_CONFIG);
        assert!(msg.contains("proxy"), "{msg}");
        let (rc, msg) = open(None, "[1]", "").err().unwrap();
        assert_eq!(rc, PERFSINK_CONFIG);
        assert!(msg.contains("collectors.perfsink"), "{msg}");
        let rc = unsafe {
            perfsink_k6_resolve(
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null(),
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_NULL_PARAMETER);
        let mut sink = std::ptr::null_mut();
        let rc =
            unsafe { perfsink_k6_open_sink(std::ptr::null(), &mut sink, std::ptr::null_mut(), 0) };
        assert_eq!((rc, sink.is_null()), (PERFSINK_NULL_PARAMETER, true));
    }

    /// The default `vu:int,iter:int,url`: typed tag fields, a value that does not parse stays
    /// a string pointing at the tag's own bytes, other tags stay tags.
    #[test]
    fn split_tags_types_tags_as_fields() {
        let o = open(Some("INFLUXDB_URL=http://127.0.0.1:1"), "", "").unwrap();
        let tags = [
            tag("iter", "x1"),
            tag("method", "GET"),
            tag("url", ""),
            tag("vu", "12"),
        ];
        let mut out = [not_a_field(&tags[0]); 4];
        let rc = unsafe {
            perfsink_k6_split_tags(
                o.k6,
                tags.as_ptr(),
                4,
                out.as_mut_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_OK);
        assert_eq!(out[0].kind, PERFSINK_FIELD_STRING as u32);
        assert_eq!((out[0].string_value, out[0].string_len), (tags[0].value, 2));
        assert_eq!(out[1].kind, PERFSINK_K6_NOT_A_FIELD);
        assert_eq!(
            (out[2].kind, out[2].string_len),
            (PERFSINK_FIELD_STRING as u32, 0)
        );
        assert_eq!(
            (out[3].kind, out[3].int_value),
            (PERFSINK_FIELD_INT as u32, 12)
        );
        assert_eq!(out[3].key, tags[3].key);
    }

    /// Metadata: vu/iter integers even when k6's built-in `vu,iter,url` names them untyped,
    /// other keys strings unless typed, `value` and keys the tag set wrote are not written.
    #[test]
    fn metadata_fields_follow_the_schema() {
        let o = open(
            Some("K6_INFLUXDB_TAGS_AS_FIELDS=vu,iter,url,trace:bool"),
            "",
            "",
        )
        .unwrap();
        let md = [
            tag("iter", "4"),
            tag("trace", "true"),
            tag("url", "u"),
            tag("value", "1"),
            tag("vu", "2"),
            tag("x", "5"),
        ];
        let written = [tag("url", "")];
        let mut out = [not_a_field(&md[0]); 6];
        let rc = unsafe {
            perfsink_k6_metadata_fields(
                o.k6,
                md.as_ptr(),
                md.len(),
                written.as_ptr(),
                1,
                out.as_mut_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_OK);
        let kinds: Vec<u32> = out.iter().map(|f| f.kind).collect();
        assert_eq!(
            kinds,
            [
                PERFSINK_FIELD_INT as u32,
                PERFSINK_FIELD_BOOL as u32,
                PERFSINK_K6_NOT_A_FIELD,
                PERFSINK_K6_NOT_A_FIELD,
                PERFSINK_FIELD_INT as u32,
                PERFSINK_FIELD_STRING as u32,
            ]
        );
        assert_eq!(
            (out[0].int_value, out[1].bool_value, out[4].int_value),
            (4, 1, 2)
        );
    }

    #[test]
    fn null_and_bad_arguments_are_refused() {
        let o = open(Some("INFLUXDB_URL=http://127.0.0.1:1"), "", "").unwrap();
        let tags = [tag("vu", "1")];
        let rc = unsafe {
            perfsink_k6_split_tags(
                o.k6,
                tags.as_ptr(),
                1,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_NULL_PARAMETER);
        let mut out = [not_a_field(&tags[0])];
        let rc = unsafe {
            perfsink_k6_split_tags(
                std::ptr::null(),
                tags.as_ptr(),
                1,
                out.as_mut_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_NULL_PARAMETER);
        let bad = [perfsink_tag {
            key: b"\xff".as_ptr().cast(),
            key_len: 1,
            value: std::ptr::null(),
            value_len: 0,
        }];
        let rc = unsafe {
            perfsink_k6_metadata_fields(
                o.k6,
                bad.as_ptr(),
                1,
                std::ptr::null(),
                0,
                out.as_mut_ptr(),
                std::ptr::null_mut(),
                0,
            )
        };
        assert_eq!(rc, PERFSINK_INVALID_UTF8);
        // Infallible calls on NULL.
        unsafe {
            assert_eq!(
                perfsink_k6_describe(std::ptr::null(), std::ptr::null_mut(), 0),
                0
            );
            assert_eq!(perfsink_k6_note_count(std::ptr::null()), 0);
            assert_eq!(perfsink_k6_push_interval_ms(std::ptr::null()), 0);
            perfsink_k6_free(std::ptr::null_mut());
        }
    }
}
