//! Layer 3: InfluxDB line protocol. Pure functions over byte buffers, no I/O, no allocation
//! beyond growing the output buffer.
//!
//! Escaping follows what the Go servers (1.x/2.x) unescape and Telegraf's serializer, see
//! `../shared/reference/influx.md` §1.2: measurement escapes `,` and space; tag keys, tag
//! values and field keys escape `,`, `=` and space; `\t \n \r \f` become the two-character
//! escapes `\t \n \r \f`; other control characters are refused; trailing backslashes are
//! trimmed (a trailing `\` would escape the separator after it); backslashes elsewhere are
//! written as they are. String field values escape `"` and `\`.

pub mod encode;
pub mod escape;
pub mod forward;
pub mod limits;
pub mod parse;

pub use encode::{
    check_timestamp, write_field, write_float, write_series_key, write_timestamp, FieldOptions,
};
pub use forward::Forward;
pub use limits::MAX_STRING_FIELD;
pub use parse::{lines, parse_line, InputPrecision, LineError, ParseError, ParsedLine};
