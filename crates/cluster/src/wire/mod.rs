//! The versioned wire encoding of one shard's points: the payload of the
//! gateway → store gRPC `WriteToShard` call.
//!
//! ```text
//! WriteToShard payload, version 1
//!
//! uvarint        = unsigned LEB128, at most 10 bytes
//! zigzag-uvarint = uvarint of (n << 1) ^ (n >> 63), for an i64 n
//!
//! payload = u8 version (= 1)
//!           uvarint npoints
//!           point × npoints              nothing may follow the last point
//! point   = uvarint key_len
//!           series key (key_len bytes)   canonical, UTF-8: escaped measurement,
//!                                        then ",key=value" per tag (escaped),
//!                                        tags unique, sorted by unescaped key
//!           zigzag-uvarint timestamp     ns since the Unix epoch
//!           uvarint nfields              at least 1
//!           field × nfields
//! field   = uvarint name_len
//!           name (name_len bytes)        unescaped, UTF-8, non-empty, unique
//!                                        within the point
//!           u8 type                      the engine's codes, as below
//!           value
//! value   = type 1, float:    8 bytes, IEEE 754 binary64 little-endian, finite
//!         | type 2, integer:  zigzag-uvarint
//!         | type 3, unsigned: uvarint
//!         | type 4, boolean:  u8, 0 or 1
//!         | type 5, string:   uvarint len, len bytes of UTF-8 (unescaped)
//! ```
//!
//! Measurement and tags are not sent: the series key carries them, and the
//! decoder splits it on unescaped `,` and `=` (a separator is escaped when the
//! byte before it is a backslash, line protocol's rule for series keys) and
//! unescapes each part, borrowing from the payload when a part has no escapes.
//!
//! The decoder treats its input as hostile: it never panics, allocates
//! O(payload length) whatever the counts in it say, and checks everything the
//! line-protocol parser guarantees for its points (see [`decode_points`]), so a
//! decoded [`Point`](sundial_lineproto::Point) is as good as a parsed one. The
//! encoder trusts its points (they come from the parser): one the parser could
//! not have produced, such as a NaN float, encodes but does not decode.

mod decode;
mod encode;
mod key;
mod messages;
mod read;
#[cfg(test)]
mod tests;

pub use decode::{
    decode_points, DecodeLimits, Decoded, KeyProblem, PointError, ReadError, WireError,
};
pub use encode::encode_points;

/// The format version this module writes and reads.
pub const VERSION: u8 = 1;

const TYPE_FLOAT: u8 = 1;
const TYPE_INTEGER: u8 = 2;
const TYPE_UNSIGNED: u8 = 3;
const TYPE_BOOLEAN: u8 = 4;
const TYPE_STRING: u8 = 5;

/// The fewest bytes a point takes: key length, a one-byte key, timestamp,
/// field count, and one field.
const MIN_POINT_BYTES: usize = 4 + MIN_FIELD_BYTES;
/// The fewest bytes a field takes: name length, a one-byte name, type, value.
const MIN_FIELD_BYTES: usize = 4;

/// InfluxDB bounds `series key + "#!~#" + field name` by the key length limit.
const FIELD_KEY_SEPARATOR_LEN: usize = 4;

/// Quoted input in error messages is cut to about this many bytes.
const QUOTE_MAX: usize = 100;
