//! Layer 3: InfluxDB line protocol. Pure functions over byte buffers, no I/O, no allocation
//! beyond growing the output buffer.
//!
//! Escaping is exact for the target server's [`Dialect`]: every name it can store reads back
//! byte for byte (`SHOW MEASUREMENTS`, `SHOW TAG VALUES`, `SHOW FIELD KEYS`, string fields
//! in `SELECT`), and a name it cannot store is refused with `Error::InvalidInput` (the point
//! is counted in `rejected_invalid`), never altered. Measured on influxd 1.6.7 and read from
//! `models/points.go` (1.x, 2.x) and `core/influxdb_line_protocol` (3.x); see `escape.rs`.
//!
//! | | 1.x / 2.x (`Dialect::Go`) | 3.x (`Dialect::V3`) |
//! | --- | --- | --- |
//! | `,` and space | `\,` `\ ` | `\,` `\ ` |
//! | `=` | `\=`, raw in a measurement | `\=`, raw in a measurement |
//! | `\` | raw | `\\` |
//! | `"` | raw; `\"` in a field key | raw |
//! | control characters, non-ASCII | raw | raw |
//! | refused | a trailing `\`; a newline; a measurement with `\` before `,` ` ` `=` `"`; a field key with an odd run of `\` before `,` ` ` `=`; a measurement or field key starting with a tab or NUL; a series key the line splitter would misread | a trailing `\`; a newline or tab; a NUL in a measurement |
//!
//! Everywhere: an empty tag value leaves the tag out (InfluxDB reads a missing tag as empty);
//! an empty name and a measurement starting with `#` are refused. String field values escape
//! `"` and `\` and are exact on every server.

pub mod encode;
pub mod escape;
pub mod forward;
pub mod limits;
pub mod parse;

pub use encode::{
    check_timestamp, write_field, write_float, write_series_key, write_timestamp, FieldOptions,
    TimestampRange,
};
pub use escape::{unescape_identifier, Dialect, Element};
pub use forward::Forward;
pub use limits::MAX_STRING_FIELD;
pub use parse::{
    lines, parse_line, refusal, InputPrecision, LineError, ParseError, ParsedLine, ValueKind,
};
