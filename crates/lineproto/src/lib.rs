//! InfluxDB 1.x line protocol for Sundial.
//!
//! ```text
//! measurement[,tag=value...] field=value[,field=value...] [timestamp]
//! ```
//!
//! - [`parse_lines`] reads a whole request body in one pass. Points borrow from
//!   the body; nothing is allocated per field unless a token has escapes. Bad
//!   lines are reported with their line number and InfluxDB's reason text, and
//!   the good lines of the same body are still returned.
//! - [`Point::write_line`] / [`OwnedPoint::to_line`] write canonical line
//!   protocol (tags sorted, minimal escapes, explicit timestamp).
//! - [`Point::hash_id`] is InfluxDB's FNV-64a series-key hash used for sharding.
//!
//! Rules follow InfluxDB 1.x; the choices where it is silent or loose:
//! - duplicate field keys in one line: the last value wins (as InfluxDB's
//!   storage ends up doing); duplicate tag keys are rejected (`duplicate tags`);
//! - string field values longer than 1 MiB are rejected;
//! - an unclosed quote loses only its own line, not the rest of the body;
//! - a backslash never escapes a newline;
//! - `CRLF` line ends are accepted;
//! - tags are sorted by their unescaped key (InfluxDB sorts the escaped bytes;
//!   the two differ only for keys with escapes).

mod error;
mod escape;
mod hash;
mod number;
mod parser;
mod point;
mod precision;
mod scan;

pub use error::{InvalidPrecision, LineError, ParseErrorKind, MAX_ERROR_LINE_LEN};
pub use hash::fnv64a;
pub use parser::{
    parse_chunk, parse_lines, series_hash, short_eq, Cursor, ParseOptions, ParsedBatch,
};
pub use point::{series_key, Field, FieldValue, OwnedFieldValue, OwnedPoint, Point, Tag};
pub use precision::Precision;

/// Longest series key (measurement and tags, escaped) InfluxDB accepts.
pub const MAX_KEY_LENGTH: usize = 65535;
/// Longest string field value we accept (bytes, unescaped).
pub const MAX_STRING_FIELD_LENGTH: usize = 1 << 20;
/// Rejected lines kept with their text per body; later ones are only counted, so a
/// body of garbage costs a bounded amount of memory (InfluxDB keeps them all).
pub const MAX_LINE_ERRORS: usize = 1000;
/// Smallest timestamp InfluxDB can store (ns).
pub const MIN_NANO_TIME: i64 = i64::MIN + 2;
/// Largest timestamp InfluxDB can store (ns).
pub const MAX_NANO_TIME: i64 = i64::MAX - 1;

#[cfg(test)]
mod tests;
