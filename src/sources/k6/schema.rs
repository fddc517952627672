//! k6's raw InfluxDB schema: which sample tags are written as fields instead of tags
//! (`tagsAsFields`, each typed `name[:int|float|bool|string]`; default `vu:int,iter:int,url`,
//! the default of k6's xk6-output-influxdb), and how sample metadata (`vu`, `iter`, ...) is
//! written. Every k6 path (`perfsink k6` over k6's JSON stream, the xk6 output over the C ABI)
//! asks these rules, so one test writes the same fields, of the same types, on every path.
//!
//! * A tag listed in `tagsAsFields` is a field of its type; a value that does not parse as that
//!   type is written as a string, as k6 does. A float that is not finite stays a string too
//!   (InfluxDB refuses NaN and ±Inf).
//! * Metadata (k6 ≥ 0.41 puts `vu` and `iter` there when those system tags are enabled; k6's
//!   own influxdb output drops it) is written as fields: `vu` and `iter` as integers, any other
//!   key as a string — unless `tagsAsFields` lists the key *with* a type, which then applies.
//!   An entry without a type (`vu` in k6's built-in default `vu,iter,url`) names a tag to move,
//!   and leaves metadata typed as above. `value` (the sample's field) and empty keys are never
//!   written from metadata, nor a key the sample's tags already wrote as a field.

use crate::error::{Error, Result};
use crate::model::{MetricKind, Tag};

/// The default of k6's `tagsAsFields` (`K6_INFLUXDB_TAGS_AS_FIELDS`).
pub const DEFAULT_TAGS_AS_FIELDS: &str = "vu:int,iter:int,url";

/// The type a field is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    String,
    Int,
    Float,
    Bool,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::String => "string",
            FieldKind::Int => "int",
            FieldKind::Float => "float",
            FieldKind::Bool => "bool",
        }
    }
}

/// One `tagsAsFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagField {
    pub name: String,
    pub kind: FieldKind,
    /// The entry named its type (`vu:int`, not `vu`): then the type applies to metadata too.
    pub typed: bool,
}

/// What a sample tag becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagRole {
    Tag,
    Field(FieldKind),
}

/// k6's `tagsAsFields`: tags written as fields instead of tags, each with a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagsAsFields(Vec<TagField>);

impl Default for TagsAsFields {
    fn default() -> Self {
        // The default spec is valid by construction.
        TagsAsFields::parse(DEFAULT_TAGS_AS_FIELDS).unwrap_or(TagsAsFields(Vec::new()))
    }
}

impl TagsAsFields {
    /// Parses k6's syntax: `name[:string|int|float|bool]`, comma-separated
    /// (`vu:int,iter:int,url`); an empty spec lists nothing. The error does not name the
    /// option: the caller knows where the spec came from.
    pub fn parse(spec: &str) -> Result<TagsAsFields> {
        let mut out: Vec<TagField> = Vec::new();
        for entry in spec.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                continue;
            }
            let (name, kind, typed) = match entry.split_once(':') {
                None => (entry, FieldKind::String, false),
                Some((name, kind)) => {
                    let kind = match kind.trim() {
                        "string" => FieldKind::String,
                        "int" => FieldKind::Int,
                        "float" => FieldKind::Float,
                        "bool" => FieldKind::Bool,
                        other => {
                            return Err(Error::Config(format!(
                                "invalid type {other:?} in {entry:?} (expected string, int, float \
                                 or bool)"
                            )))
                        }
                    };
                    (name.trim(), kind, true)
                }
            };
            if name.is_empty() {
                return Err(Error::Config(format!("{entry:?} has an empty name")));
            }
            if name == "value" {
                return Err(Error::Config(
                    "\"value\" would collide with the field of the sample value".into(),
                ));
            }
            if out.iter().any(|f| f.name == name) {
                return Err(Error::Config(format!("{name:?} is listed twice")));
            }
            out.push(TagField {
                name: name.to_string(),
                kind,
                typed,
            });
        }
        Ok(TagsAsFields(out))
    }

    /// The type `key` is written as, when it is listed.
    pub fn kind(&self, key: &str) -> Option<FieldKind> {
        self.entry(key).map(|f| f.kind)
    }

    pub fn entries(&self) -> &[TagField] {
        &self.0
    }

    fn entry(&self, key: &str) -> Option<&TagField> {
        self.0.iter().find(|f| f.name == key)
    }

    /// What the sample tag `key` becomes.
    pub fn tag_role(&self, key: &str) -> TagRole {
        match self.kind(key) {
            Some(kind) => TagRole::Field(kind),
            None => TagRole::Tag,
        }
    }

    /// A sample's tags as the schema writes them, in their order: tags stay tags (pushed to
    /// `tags`), the `tagsAsFields` ones become typed fields (pushed to `fields`).
    pub fn split_tags<'a>(
        &self,
        sample_tags: impl IntoIterator<Item = (&'a str, &'a str)>,
        tags: &mut Vec<Tag<'a>>,
        fields: &mut Vec<(&'a str, Typed<'a>)>,
    ) {
        for (key, value) in sample_tags {
            match self.tag_role(key) {
                TagRole::Field(kind) => fields.push((key, typed(value, kind))),
                TagRole::Tag => tags.push(Tag::new(key, value)),
            }
        }
    }

    /// The type the metadata entry `key` is written as; `None`: it is not written.
    pub fn metadata_kind(&self, key: &str) -> Option<FieldKind> {
        if key.is_empty() || key == "value" {
            return None;
        }
        Some(match self.entry(key) {
            Some(f) if f.typed => f.kind,
            _ if key == "vu" || key == "iter" => FieldKind::Int,
            _ => FieldKind::String,
        })
    }

    /// [`metadata_kind`](Self::metadata_kind) on a sample whose tag set already wrote some
    /// fields (`tag_set_wrote(key)`: it wrote `key`): a key written there is not written twice.
    pub fn metadata_kind_beside(
        &self,
        key: &str,
        tag_set_wrote: impl FnOnce(&str) -> bool,
    ) -> Option<FieldKind> {
        self.metadata_kind(key).filter(|_| !tag_set_wrote(key))
    }
}

/// A tag or metadata value converted to the type of its field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Typed<'a> {
    Float(f64),
    Int(i64),
    Bool(bool),
    Str(&'a str),
}

/// `value` as a field of `kind`; like k6, a value that does not parse is a string.
pub fn typed(value: &str, kind: FieldKind) -> Typed<'_> {
    let parsed = match kind {
        FieldKind::String => None,
        FieldKind::Int => value.parse::<i64>().ok().map(Typed::Int),
        FieldKind::Float => value
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .map(Typed::Float),
        FieldKind::Bool => parse_go_bool(value).map(Typed::Bool),
    };
    parsed.unwrap_or(Typed::Str(value))
}

/// Go's `strconv.ParseBool`, which k6 uses for booleans.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// The type of a k6 built-in metric (k6's `metrics/builtin.go`), for paths that see samples
/// without k6's metric definitions (the relay reads k6's InfluxDB lines). `None`: a custom
/// metric, whose type only k6 knows.
pub fn builtin_metric_kind(name: &str) -> Option<MetricKind> {
    Some(match name {
        "vus" | "vus_max" => MetricKind::Gauge,
        "iterations"
        | "dropped_iterations"
        | "http_reqs"
        | "ws_sessions"
        | "ws_msgs_sent"
        | "ws_msgs_received"
        | "data_sent"
        | "data_received"
        | "grpc_streams"
        | "grpc_streams_msgs_sent"
        | "grpc_streams_msgs_received" => MetricKind::Counter,
        "checks" | "http_req_failed" => MetricKind::Rate,
        "iteration_duration"
        | "group_duration"
        | "http_req_duration"
        | "http_req_blocked"
        | "http_req_connecting"
        | "http_req_tls_handshaking"
        | "http_req_sending"
        | "http_req_waiting"
        | "http_req_receiving"
        | "ws_ping"
        | "ws_session_duration"
        | "ws_connecting"
        | "grpc_req_duration" => MetricKind::Trend,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_as_fields_spec() {
        let t = TagsAsFields::default();
        assert_eq!(t.kind("vu"), Some(FieldKind::Int));
        assert_eq!(t.kind("iter"), Some(FieldKind::Int));
        assert_eq!(t.kind("url"), Some(FieldKind::String));
        assert_eq!(t.kind("name"), None);
        let t = TagsAsFields::parse(" a:float , b:bool,c:string,d ,").unwrap();
        let shown: Vec<String> = t
            .entries()
            .iter()
            .map(|f| format!("{}:{}:{}", f.name, f.kind.as_str(), f.typed))
            .collect();
        assert_eq!(
            shown,
            [
                "a:float:true",
                "b:bool:true",
                "c:string:true",
                "d:string:false"
            ]
        );
        assert!(TagsAsFields::parse("").unwrap().entries().is_empty());
        for (bad, why) in [
            ("a:integer", "invalid type \"integer\""),
            (":int", "empty name"),
            ("a,a:int", "listed twice"),
            ("value", "collide"),
        ] {
            let e = TagsAsFields::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn tags_listed_become_typed_fields() {
        let t = TagsAsFields::parse("vu:int,url,ok:bool").unwrap();
        assert_eq!(t.tag_role("url"), TagRole::Field(FieldKind::String));
        assert_eq!(t.tag_role("ok"), TagRole::Field(FieldKind::Bool));
        assert_eq!(t.tag_role("method"), TagRole::Tag);
        let (mut tags, mut fields) = (Vec::new(), Vec::new());
        t.split_tags(
            [
                ("method", "GET"),
                ("ok", "maybe"),
                ("url", "u"),
                ("vu", "3"),
            ],
            &mut tags,
            &mut fields,
        );
        let tags: Vec<(&str, &str)> = tags.iter().map(|t| (t.key, t.value)).collect();
        assert_eq!(tags, [("method", "GET")]);
        assert_eq!(
            fields,
            [
                ("ok", Typed::Str("maybe")),
                ("url", Typed::Str("u")),
                ("vu", Typed::Int(3))
            ]
        );
    }

    /// k6's built-in default `vu,iter,url` names tags to move; it must not turn the `vu` and
    /// `iter` metadata into strings (an integer field on one path and a string on the other is
    /// a field-type conflict in one database).
    #[test]
    fn metadata_is_typed_only_by_entries_that_name_a_type() {
        let builtin = TagsAsFields::parse("vu,iter,url").unwrap();
        assert_eq!(builtin.metadata_kind("vu"), Some(FieldKind::Int));
        assert_eq!(builtin.metadata_kind("iter"), Some(FieldKind::Int));
        assert_eq!(builtin.metadata_kind("trace_id"), Some(FieldKind::String));
        let typed = TagsAsFields::parse("vu:string,trace:int,iter").unwrap();
        assert_eq!(typed.metadata_kind("vu"), Some(FieldKind::String));
        assert_eq!(typed.metadata_kind("trace"), Some(FieldKind::Int));
        assert_eq!(typed.metadata_kind("iter"), Some(FieldKind::Int));
        assert_eq!(typed.metadata_kind("value"), None);
        assert_eq!(typed.metadata_kind(""), None);
    }

    #[test]
    fn typed_values_fall_back_to_strings_like_k6() {
        assert_eq!(typed("12", FieldKind::Int), Typed::Int(12));
        assert_eq!(typed("-3", FieldKind::Int), Typed::Int(-3));
        assert_eq!(typed("1.5", FieldKind::Int), Typed::Str("1.5"));
        assert_eq!(typed("1.5", FieldKind::Float), Typed::Float(1.5));
        assert_eq!(typed("NaN", FieldKind::Float), Typed::Str("NaN"));
        assert_eq!(typed("T", FieldKind::Bool), Typed::Bool(true));
        assert_eq!(typed("False", FieldKind::Bool), Typed::Bool(false));
        assert_eq!(typed("yes", FieldKind::Bool), Typed::Str("yes"));
        assert_eq!(typed("7", FieldKind::String), Typed::Str("7"));
    }
}
