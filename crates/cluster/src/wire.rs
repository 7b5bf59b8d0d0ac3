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
//! decoded [`Point`] is as good as a parsed one. The encoder trusts its points
//! (they come from the parser): one the parser could not have produced, such as a
//! NaN float, encodes but does not decode.

use std::borrow::Cow;
use std::collections::HashMap;

use sundial_lineproto::{
    series_hash, short_eq, Field, FieldValue, Point, Tag, MAX_KEY_LENGTH, MAX_NANO_TIME,
    MAX_STRING_FIELD_LENGTH, MIN_NANO_TIME,
};
use thiserror::Error;

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

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// Appends the version-1 payload of `points` to `out`.
///
/// Takes an exact-size iterator of points by value, so a caller holding a
/// [`sundial_lineproto::ParsedBatch`] and the indices of one shard's points
/// encodes them without collecting them first:
/// `encode_points(indices.iter().map(|&i| parsed.get(i as usize)), &mut buf)`
/// (a slice works too: `encode_points(points.iter().copied(), &mut buf)`).
///
/// `out` is grown once from the size of the first point (at most a KiB a point
/// and 16 MiB in all are reserved ahead); later points grow it as usual.
pub fn encode_points<'p, I>(points: I, out: &mut Vec<u8>)
where
    I: IntoIterator<Item = Point<'p>>,
    I::IntoIter: ExactSizeIterator,
{
    /// Bytes of a point assumed for the ones after the first, at most.
    const GUESS_CAP: usize = 1 << 10;
    /// Bytes reserved ahead in all, at most.
    const RESERVE_CAP: usize = 16 << 20;

    let mut points = points.into_iter();
    let n = points.len();
    out.reserve(1 + 10);
    out.push(VERSION);
    put_uvarint(out, n as u64);
    let mut written = 0usize;
    if let Some(first) = points.next() {
        let start = out.len();
        encode_point(&first, out);
        written += 1;
        let guess = (out.len() - start).min(GUESS_CAP);
        out.reserve(guess.saturating_mul(n.saturating_sub(1)).min(RESERVE_CAP));
    }
    for p in points {
        encode_point(&p, out);
        written += 1;
    }
    debug_assert_eq!(written, n, "the iterator's len() was not exact");
}

#[inline]
fn encode_point(p: &Point<'_>, out: &mut Vec<u8>) {
    let key = p.series_key.as_bytes();
    put_uvarint(out, key.len() as u64);
    out.extend_from_slice(key);
    put_uvarint(out, zigzag(p.timestamp));
    put_uvarint(out, p.fields.len() as u64);
    for f in p.fields {
        put_uvarint(out, f.key.len() as u64);
        out.extend_from_slice(f.key.as_bytes());
        match &f.value {
            FieldValue::Float(v) => {
                out.push(TYPE_FLOAT);
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            FieldValue::Integer(v) => {
                out.push(TYPE_INTEGER);
                put_uvarint(out, zigzag(*v));
            }
            FieldValue::Unsigned(v) => {
                out.push(TYPE_UNSIGNED);
                put_uvarint(out, *v);
            }
            FieldValue::Boolean(v) => {
                out.push(TYPE_BOOLEAN);
                out.push(u8::from(*v));
            }
            FieldValue::String(s) => {
                out.push(TYPE_STRING);
                put_uvarint(out, s.len() as u64);
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

#[inline]
fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let mut tmp = [0u8; 10];
    let mut n = 0;
    while v >= 0x80 {
        tmp[n] = (v as u8) | 0x80;
        v >>= 7;
        n += 1;
    }
    tmp[n] = v as u8;
    out.extend_from_slice(&tmp[..=n]);
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

// ---------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------

/// Bounds a payload must stay within to be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Points in one payload.
    pub max_points: usize,
    /// Bytes of one string field value.
    pub max_string_len: usize,
    /// Bytes of a series key; also bounds `series key + 4 + field name`, as
    /// InfluxDB and the line-protocol parser do.
    pub max_key_len: usize,
}

impl DecodeLimits {
    /// Far above the gateway's 50,000-point write chunks.
    pub const DEFAULT_MAX_POINTS: usize = 1 << 20;
}

impl Default for DecodeLimits {
    /// What the line-protocol parser accepts: keys up to
    /// [`MAX_KEY_LENGTH`] (65,535) bytes and strings up to
    /// [`MAX_STRING_FIELD_LENGTH`] (1 MiB), so any point the gateway parsed
    /// decodes; [`DecodeLimits::DEFAULT_MAX_POINTS`] points.
    fn default() -> Self {
        DecodeLimits {
            max_points: Self::DEFAULT_MAX_POINTS,
            max_string_len: MAX_STRING_FIELD_LENGTH,
            max_key_len: MAX_KEY_LENGTH,
        }
    }
}

/// A decoded payload: its points' tags and fields in flat vectors, borrowing
/// from the payload (only a measurement, tag key or tag value with escapes is
/// copied, unescaped). Points of one series share its measurement and tags.
#[derive(Debug, Default)]
pub struct Decoded<'a> {
    points: Vec<RawPoint>,
    series: Vec<Series<'a>>,
    tags: Vec<Tag<'a>>,
    fields: Vec<Field<'a>>,
}

/// A series key and what it splits into.
#[derive(Debug)]
struct Series<'a> {
    key: &'a str,
    measurement: Cow<'a, str>,
    /// Range in `Decoded::tags`.
    tags: (usize, usize),
}

#[derive(Debug)]
struct RawPoint {
    /// Index in `Decoded::series`.
    series: usize,
    /// Range in `Decoded::fields`.
    fields: (usize, usize),
    timestamp: i64,
}

impl<'a> Decoded<'a> {
    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The `i`-th point, in payload order.
    pub fn get(&self, i: usize) -> Option<Point<'_>> {
        self.points.get(i).map(|p| self.point(p))
    }

    /// The points in payload order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Point<'_>> + '_ {
        self.points.iter().map(move |p| self.point(p))
    }

    /// The points in payload order, as the engine's `write_to_shard` takes them.
    pub fn points(&self) -> Vec<Point<'_>> {
        self.iter().collect()
    }

    #[inline]
    fn point(&self, p: &RawPoint) -> Point<'_> {
        // The indices were pushed by the decoder, so they are in bounds; `get`
        // keeps a bug from becoming a panic.
        let (key, measurement, tags) = match self.series.get(p.series) {
            Some(s) => (s.key, &*s.measurement, s.tags),
            None => ("", "", (0, 0)),
        };
        Point {
            measurement,
            series_key: key,
            tags: self.tags.get(tags.0..tags.1).unwrap_or_default(),
            fields: self.fields.get(p.fields.0..p.fields.1).unwrap_or_default(),
            timestamp: p.timestamp,
        }
    }
}

/// Why a `WriteToShard` payload was rejected. Messages are written for the
/// user who sees them in a gRPC error.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum WireError {
    #[error("bad WriteToShard payload: empty")]
    Empty,
    #[error("bad WriteToShard payload: unknown version {0} (this node reads version {VERSION})")]
    UnknownVersion(u8),
    #[error("bad WriteToShard payload: {0} (the point count)")]
    Header(ReadError),
    #[error("bad WriteToShard payload: {count} points, more than the limit of {max}")]
    TooManyPoints { count: u64, max: usize },
    #[error("bad WriteToShard payload: point {index}: {error}")]
    Point { index: usize, error: PointError },
    #[error(
        "bad WriteToShard payload: {count} unexpected bytes after the last point, at byte {offset}"
    )]
    TrailingBytes { offset: usize, count: usize },
}

/// A read that ran off the end of the payload, or a malformed varint.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReadError {
    #[error("truncated: {what} at byte {offset} runs past the end ({len} bytes)")]
    Truncated {
        what: &'static str,
        offset: usize,
        len: usize,
    },
    #[error("{what} at byte {offset}: varint longer than 64 bits")]
    VarintOverflow { what: &'static str, offset: usize },
}

/// What is wrong with one point of a payload.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PointError {
    #[error("{0}")]
    Read(ReadError),
    #[error("series key of {len} bytes, more than the limit of {max}")]
    KeyTooLong { len: u64, max: usize },
    #[error("series key at byte {offset} is not valid UTF-8")]
    KeyNotUtf8 { offset: usize },
    #[error("series key {key}: {problem}")]
    SeriesKey { key: String, problem: KeyProblem },
    #[error("timestamp {0} is outside the range InfluxDB can store")]
    TimestampOutOfRange(i64),
    #[error("no fields")]
    NoFields,
    #[error("field {field}: name at byte {offset} is not valid UTF-8")]
    FieldNameNotUtf8 { field: usize, offset: usize },
    #[error("field {field}: empty name")]
    EmptyFieldName { field: usize },
    #[error("field {name}: newline in the name")]
    NewlineInFieldName { name: String },
    #[error("field {name}: an odd number of backslashes before ',', '=', space or the end of the name (line protocol cannot express it)")]
    OddBackslashesInFieldName { name: String },
    #[error(
        "field {name}: the first field's name starts with a tab (line protocol cannot express it)"
    )]
    FirstFieldNameStartsWithTab { name: String },
    #[error("field {name}: series key and field name are {len} bytes together, more than the limit of {max}")]
    FieldKeyTooLong {
        name: String,
        len: usize,
        max: usize,
    },
    #[error("field {name} appears twice")]
    DuplicateField { name: String },
    #[error(
        "field {name}: unknown type {code} (1 float, 2 integer, 3 unsigned, 4 boolean, 5 string)"
    )]
    UnknownType { name: String, code: u8 },
    #[error("field {name}: float {value} is not finite")]
    NonFiniteFloat { name: String, value: f64 },
    #[error("field {name}: boolean byte {byte} is neither 0 nor 1")]
    BadBoolean { name: String, byte: u8 },
    #[error("field {name}: string of {len} bytes, more than the limit of {max}")]
    StringTooLong { name: String, len: u64, max: usize },
    #[error("field {name}: string value at byte {offset} is not valid UTF-8")]
    StringNotUtf8 { name: String, offset: usize },
}

/// What is wrong with a series key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyProblem {
    #[error("empty measurement")]
    EmptyMeasurement,
    #[error("empty tag key")]
    EmptyTagKey,
    #[error("tag {tag} has no '='")]
    MissingEquals { tag: String },
    #[error("tag {tag} has an empty value")]
    EmptyTagValue { tag: String },
    #[error("unescaped '=' in the value of tag {tag}")]
    EqualsInTagValue { tag: String },
    #[error("unescaped space at byte {at} of the key")]
    UnescapedSpace { at: usize },
    #[error("newline at byte {at} of the key")]
    Newline { at: usize },
    #[error("ends in a lone backslash")]
    DanglingBackslash,
    #[error("starts with {0} (line protocol cannot express it)")]
    BadFirstByte(&'static str),
    #[error("tag keys out of order: {before} before {after}")]
    TagsOutOfOrder { before: String, after: String },
    #[error("duplicate tag key {tag}")]
    DuplicateTag { tag: String },
}

impl From<ReadError> for PointError {
    fn from(e: ReadError) -> Self {
        PointError::Read(e)
    }
}

/// Decodes a version-1 payload.
///
/// Checks, besides the framing (version, truncation, varints, trailing bytes):
/// - at most `limits.max_points` points;
/// - the series key: at most `limits.max_key_len` bytes, UTF-8, a non-empty
///   measurement and `,key=value` tags with non-empty key and value, every
///   `,`, `=` and space that belongs to a part escaped, no newline, no
///   trailing lone backslash, tag keys strictly increasing by their unescaped
///   bytes (the line-protocol parser's canonical order), and not starting
///   with `#`, tab, CR or NUL (no line can);
/// - the timestamp is within InfluxDB's range;
/// - at least one field; names non-empty, UTF-8, unique, and `key + 4 + name`
///   within `limits.max_key_len`, without newline or an odd run of
///   backslashes before `,`, `=`, space or the end, the first not starting
///   with a tab; a known type; floats finite; booleans 0 or 1; strings UTF-8
///   and at most `limits.max_string_len` bytes.
///
/// So every decoded point is one the parser could have produced, and its
/// [`Point::to_line`] parses back to it.
pub fn decode_points<'a>(buf: &'a [u8], limits: &DecodeLimits) -> Result<Decoded<'a>, WireError> {
    let Some(&version) = buf.first() else {
        return Err(WireError::Empty);
    };
    if version != VERSION {
        return Err(WireError::UnknownVersion(version));
    }
    let mut r = Reader { buf, pos: 1 };
    let count = r.uvarint("point count").map_err(WireError::Header)?;
    if count > limits.max_points as u64 {
        return Err(WireError::TooManyPoints {
            count,
            max: limits.max_points,
        });
    }
    let count = count as usize;
    let mut out = Decoded {
        // Not more than the rest of the payload could hold.
        points: Vec::with_capacity(count.min(r.left() / MIN_POINT_BYTES)),
        ..Decoded::default()
    };
    let mut state = State::default();
    for index in 0..count {
        decode_point(&mut r, limits, &mut out, &mut state)
            .map_err(|error| WireError::Point { index, error })?;
        if index == 0 {
            // Size the fields from the first point, no larger than the rest
            // of the payload could fill.
            let fields = out.fields.len().saturating_mul(count - 1);
            out.fields.reserve(fields.min(r.left() / MIN_FIELD_BYTES));
        }
    }
    if r.pos != buf.len() {
        return Err(WireError::TrailingBytes {
            offset: r.pos,
            count: buf.len() - r.pos,
        });
    }
    Ok(out)
}

/// Series keys shorter than this are split every time, not looked up.
const MIN_CACHED_KEY: usize = 32;

/// What decoding carries from point to point.
#[derive(Default)]
struct State<'a> {
    /// Series seen so far, by [`series_hash`] of their key: index in
    /// `Decoded::series`. The map hashes that hash again with a random key
    /// (std's SipHash), so crafted keys cannot pile up in one part of the
    /// table; keys whose `series_hash` collide share one entry (the later ones
    /// are split every time), and the key bytes are compared on every hit.
    series: HashMap<u64, usize>,
    hits: usize,
    misses: usize,
    /// Off once misses far outnumber hits (every key new): the lookups would
    /// only cost.
    no_cache: bool,
    /// Field names of the last point whose names were checked (valid and
    /// unique): a point with the same names needs no checks but the length.
    names: Vec<&'a str>,
    /// For the duplicate check.
    fingerprints: Vec<u8>,
    sorted: Vec<&'a str>,
}

impl State<'_> {
    /// Counts a lookup; gives up on the map after 1,024 misses with fewer than
    /// one hit for every eight.
    #[inline]
    fn count(&mut self, hit: bool) {
        if hit {
            self.hits += 1;
            return;
        }
        self.misses += 1;
        if self.misses > 1024 && self.misses > 8 * self.hits {
            self.no_cache = true;
            self.series = HashMap::new();
        }
    }
}

/// Field counts up to this are checked for duplicates pairwise (by one-byte
/// fingerprints first); larger ones by sorting.
const PAIRWISE_MAX: usize = 64;

fn decode_point<'a>(
    r: &mut Reader<'a>,
    limits: &DecodeLimits,
    out: &mut Decoded<'a>,
    state: &mut State<'a>,
) -> Result<(), PointError> {
    // Series key.
    let key_len = r.uvarint("series key length")?;
    if key_len > limits.max_key_len as u64 {
        return Err(PointError::KeyTooLong {
            len: key_len,
            max: limits.max_key_len,
        });
    }
    let key_at = r.pos;
    let key_bytes = r.bytes(key_len as usize, "series key")?;
    let series = series(key_bytes, key_at, out, state)?;
    let key_len = key_bytes.len();

    let timestamp = unzigzag(r.uvarint("timestamp")?);
    if !(MIN_NANO_TIME..=MAX_NANO_TIME).contains(&timestamp) {
        return Err(PointError::TimestampOutOfRange(timestamp));
    }

    // Fields.
    let nfields = r.uvarint("field count")?;
    if nfields == 0 {
        return Err(PointError::NoFields);
    }
    let field_lo = out.fields.len();
    // No field count is trusted for an allocation: the fields are pushed one
    // by one and each one read takes at least MIN_FIELD_BYTES bytes.
    let mut field = 0usize;
    // Whether the names so far are those of `state.names`.
    let mut same = true;
    while (field as u64) < nfields {
        let name_at = r.pos;
        let name_len = r.uvarint("field name length")?;
        let raw = r.bytes(
            usize::try_from(name_len).unwrap_or(usize::MAX),
            "field name",
        )?;
        let name = match state.names.get(field) {
            Some(&known) if same && short_eq(known.as_bytes(), raw) => known,
            _ => {
                same = false;
                check_name(raw, field, name_at)?
            }
        };
        let field_key_len = key_len + FIELD_KEY_SEPARATOR_LEN + name.len();
        if field_key_len > limits.max_key_len {
            return Err(PointError::FieldKeyTooLong {
                name: quote(name),
                len: field_key_len,
                max: limits.max_key_len,
            });
        }
        // Floats, the common case, are pushed straight from the bytes: a
        // value that comes back through a `Result` (large, so through memory)
        // is copied into the vector with loads that stall on store forwarding.
        // About 6% of the decode time.
        if let Some(v) = r.float_fast() {
            out.fields.push(Field {
                key: Cow::Borrowed(name),
                value: FieldValue::Float(v),
            });
        } else {
            let value = read_value(r, name, limits)?;
            out.fields.push(Field {
                key: Cow::Borrowed(name),
                value,
            });
        }
        field += 1;
    }
    let field_hi = out.fields.len();
    if !same || field != state.names.len() {
        let fields = out.fields.get(field_lo..field_hi).unwrap_or_default();
        check_unique(fields, state)?;
        state.names.clear();
        state
            .names
            .extend(fields.iter().filter_map(|f| match f.key {
                Cow::Borrowed(k) => Some(k),
                Cow::Owned(_) => None,
            }));
    }

    out.points.push(RawPoint {
        series,
        fields: (field_lo, field_hi),
        timestamp,
    });
    Ok(())
}

/// The series of a point's key: one seen before (when the key is long enough
/// to be worth a lookup), or a new one, split and checked.
#[inline]
fn series<'a>(
    key: &'a [u8],
    key_at: usize,
    out: &mut Decoded<'a>,
    state: &mut State<'a>,
) -> Result<usize, PointError> {
    let mut hash = None;
    if !state.no_cache && key.len() >= MIN_CACHED_KEY {
        let h = series_hash(key);
        let seen = state
            .series
            .get(&h)
            .copied()
            .filter(|&s| out.series.get(s).is_some_and(|s| s.key.as_bytes() == key));
        state.count(seen.is_some());
        if let Some(s) = seen {
            return Ok(s);
        }
        hash = Some(h);
    }
    let key = std::str::from_utf8(key).map_err(|_| PointError::KeyNotUtf8 { offset: key_at })?;
    let tag_lo = out.tags.len();
    let measurement = split_key(key, &mut out.tags).map_err(|problem| {
        out.tags.truncate(tag_lo);
        PointError::SeriesKey {
            key: quote(key),
            problem,
        }
    })?;
    let index = out.series.len();
    out.series.push(Series {
        key,
        measurement,
        tags: (tag_lo, out.tags.len()),
    });
    if let (Some(h), false) = (hash, state.no_cache) {
        state.series.entry(h).or_insert(index);
    }
    Ok(index)
}

/// A field name read for the first time: UTF-8, not empty, no newline.
#[inline]
fn check_name(raw: &[u8], field: usize, offset: usize) -> Result<&str, PointError> {
    let name =
        std::str::from_utf8(raw).map_err(|_| PointError::FieldNameNotUtf8 { field, offset })?;
    if name.is_empty() {
        return Err(PointError::EmptyFieldName { field });
    }
    if raw.contains(&b'\n') {
        return Err(PointError::NewlineInFieldName { name: quote(name) });
    }
    // The parser skips blanks before the first field.
    if field == 0 && raw.first() == Some(&b'\t') {
        return Err(PointError::FirstFieldNameStartsWithTab { name: quote(name) });
    }
    if memchr::memchr(b'\\', raw).is_some() && has_odd_escape_run(raw) {
        return Err(PointError::OddBackslashesInFieldName { name: quote(name) });
    }
    Ok(name)
}

/// Whether an (unescaped) field name has an odd run of backslashes before
/// `,`, `=`, space or its end. Line protocol reads a field key a backslash
/// pair at a time, so `\\,` ends the key at the comma and a trailing `\`
/// escapes the `=`: no line has such a name, and writing one out (escaped)
/// would give a line that reads differently.
#[cold]
fn has_odd_escape_run(b: &[u8]) -> bool {
    let mut i = 0;
    while let Some(o) = b.get(i..).and_then(|rest| memchr::memchr(b'\\', rest)) {
        let start = i + o;
        let end = b[start..]
            .iter()
            .position(|&c| c != b'\\')
            .map_or(b.len(), |k| start + k);
        if (end - start) % 2 == 1 && matches!(b.get(end), None | Some(b',' | b'=' | b' ')) {
            return true;
        }
        i = end;
    }
    false
}

#[inline]
fn read_value<'a>(
    r: &mut Reader<'a>,
    name: &str,
    limits: &DecodeLimits,
) -> Result<FieldValue<'a>, PointError> {
    let code = r.byte("field type")?;
    Ok(match code {
        TYPE_FLOAT => {
            let b = r.array::<8>("float value")?;
            let v = f64::from_bits(u64::from_le_bytes(b));
            if !v.is_finite() {
                return Err(PointError::NonFiniteFloat {
                    name: quote(name),
                    value: v,
                });
            }
            FieldValue::Float(v)
        }
        TYPE_INTEGER => FieldValue::Integer(unzigzag(r.uvarint("integer value")?)),
        TYPE_UNSIGNED => FieldValue::Unsigned(r.uvarint("unsigned value")?),
        TYPE_BOOLEAN => match r.byte("boolean value")? {
            0 => FieldValue::Boolean(false),
            1 => FieldValue::Boolean(true),
            byte => {
                return Err(PointError::BadBoolean {
                    name: quote(name),
                    byte,
                })
            }
        },
        TYPE_STRING => {
            let len = r.uvarint("string length")?;
            if len > limits.max_string_len as u64 {
                return Err(PointError::StringTooLong {
                    name: quote(name),
                    len,
                    max: limits.max_string_len,
                });
            }
            let at = r.pos;
            let s = r.bytes(len as usize, "string value")?;
            let s = std::str::from_utf8(s).map_err(|_| PointError::StringNotUtf8 {
                name: quote(name),
                offset: at,
            })?;
            FieldValue::String(Cow::Borrowed(s))
        }
        code => {
            return Err(PointError::UnknownType {
                name: quote(name),
                code,
            })
        }
    })
}

/// Fails on the first field name that appears twice.
fn check_unique<'a>(fields: &[Field<'a>], state: &mut State<'a>) -> Result<(), PointError> {
    let dup = |name: &str| PointError::DuplicateField { name: quote(name) };
    if fields.len() <= PAIRWISE_MAX {
        let fps = &mut state.fingerprints;
        fps.clear();
        for (j, f) in fields.iter().enumerate() {
            let fp = fingerprint(f.key.as_bytes());
            for (k, &g) in fps.iter().enumerate() {
                if g == fp && fields.get(k).is_some_and(|e| e.key == f.key) {
                    return Err(dup(&f.key));
                }
            }
            debug_assert_eq!(fps.len(), j);
            fps.push(fp);
        }
        return Ok(());
    }
    // The names borrow from the payload (`Cow::Borrowed`); take them as such.
    let names = &mut state.sorted;
    names.clear();
    names.extend(fields.iter().filter_map(|f| match f.key {
        Cow::Borrowed(k) => Some(k),
        Cow::Owned(_) => None,
    }));
    names.sort_unstable();
    match names.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(dup(w[0])),
        None => Ok(()),
    }
}

/// A one-byte hash of a name, O(1) in its length.
#[inline]
fn fingerprint(k: &[u8]) -> u8 {
    let n = k.len();
    let v = match (k.first_chunk::<8>(), k.last_chunk::<8>()) {
        (Some(a), Some(b)) => u64::from_le_bytes(*a) ^ u64::from_le_bytes(*b).rotate_left(29),
        _ => match (k.first_chunk::<4>(), k.last_chunk::<4>()) {
            (Some(a), Some(b)) => {
                u64::from(u32::from_le_bytes(*a)) | u64::from(u32::from_le_bytes(*b)) << 32
            }
            _ => k.iter().fold(0, |v, &c| v << 8 | u64::from(c)),
        },
    };
    ((v ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

// ---------------------------------------------------------------------------
// Series keys
// ---------------------------------------------------------------------------

/// Splits a canonical series key into its measurement (returned) and tags
/// (appended to `tags`, unescaped), checking that it is canonical.
fn split_key<'a>(key: &'a str, tags: &mut Vec<Tag<'a>>) -> Result<Cow<'a, str>, KeyProblem> {
    let b = key.as_bytes();
    // A line starting with '#' is a comment; blanks before a line are skipped.
    match b.first() {
        Some(b'#') => return Err(KeyProblem::BadFirstByte("'#'")),
        Some(b'\t') => return Err(KeyProblem::BadFirstByte("a tab")),
        Some(b'\r') => return Err(KeyProblem::BadFirstByte("a carriage return")),
        Some(0) => return Err(KeyProblem::BadFirstByte("a NUL byte")),
        _ => {}
    }
    if memchr::memchr3(b'\\', b' ', b'\n', b).is_none() {
        split_plain_key(key, tags)
    } else {
        split_escaped_key(key, tags)
    }
}

/// [`split_key`] for a key with no backslash, space or newline: every `,` and
/// `=` is a separator and every part borrows.
#[inline]
fn split_plain_key<'a>(key: &'a str, tags: &mut Vec<Tag<'a>>) -> Result<Cow<'a, str>, KeyProblem> {
    let b = key.as_bytes();
    let n = b.len();
    // `=` is plain text in a measurement.
    let m_end = memchr::memchr(b',', b).unwrap_or(n);
    if m_end == 0 {
        return Err(KeyProblem::EmptyMeasurement);
    }
    let mut prev: Option<&'a str> = None;
    // `,` or `=`, in turn, after the measurement.
    let mut seps = memchr::memchr2_iter(b',', b'=', &b[m_end..]).map(|o| m_end + o);
    let mut comma = m_end;
    while comma < n {
        let k = comma + 1;
        let eq = match seps.next() {
            // The measurement's own comma, when the iterator starts there.
            Some(c) if c == comma => seps.next(),
            other => other,
        };
        let tk = part(key, k, eq.unwrap_or(n));
        if tk.is_empty() {
            return Err(KeyProblem::EmptyTagKey);
        }
        let eq = match eq {
            Some(e) if b[e] == b'=' => e,
            _ => return Err(KeyProblem::MissingEquals { tag: quote(tk) }),
        };
        let next = seps.next();
        let end = next.unwrap_or(n);
        let tv = part(key, eq + 1, end);
        if next.is_some_and(|e| b[e] == b'=') {
            return Err(KeyProblem::EqualsInTagValue { tag: quote(tk) });
        }
        if tv.is_empty() {
            return Err(KeyProblem::EmptyTagValue { tag: quote(tk) });
        }
        if let Some(pk) = prev {
            check_order(pk, tk)?;
        }
        prev = Some(tk);
        tags.push(Tag {
            key: Cow::Borrowed(tk),
            value: Cow::Borrowed(tv),
        });
        comma = end;
    }
    Ok(Cow::Borrowed(part(key, 0, m_end)))
}

/// `key[a..b]`, or "" for a range that is not one (never the case for the
/// separators found above, which are ASCII).
#[inline]
fn part(key: &str, a: usize, b: usize) -> &str {
    key.get(a..b).unwrap_or_default()
}

/// Tags must be strictly increasing by their unescaped keys' bytes (as the
/// line-protocol parser sorts them).
#[inline]
fn check_order(prev: &str, key: &str) -> Result<(), KeyProblem> {
    let (a, b) = (prev.as_bytes(), key.as_bytes());
    // Tag keys mostly differ in their first bytes: a loop beats a memcmp call.
    let n = a.len().min(b.len());
    let mut i = 0;
    while i < n && a[i] == b[i] {
        i += 1;
    }
    let less = match (a.get(i), b.get(i)) {
        (Some(x), Some(y)) => x < y,
        (None, Some(_)) => true,
        _ => false,
    };
    if less {
        return Ok(());
    }
    Err(if a == b {
        KeyProblem::DuplicateTag { tag: quote(key) }
    } else {
        KeyProblem::TagsOutOfOrder {
            before: quote(prev),
            after: quote(key),
        }
    })
}

/// Which part of a series key a byte is in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    Measurement,
    TagKey,
    TagValue,
}

/// [`split_key`] for a key with a backslash, space or newline: a byte at a
/// time, by line protocol's rule that a separator is escaped when the byte
/// before it is a backslash.
#[cold]
#[inline(never)]
fn split_escaped_key<'a>(
    key: &'a str,
    tags: &mut Vec<Tag<'a>>,
) -> Result<Cow<'a, str>, KeyProblem> {
    let b = key.as_bytes();
    let tag_lo = tags.len();
    let mut state = Part::Measurement;
    let mut start = 0;
    let mut escaped = false;
    let mut measurement: Option<Cow<'a, str>> = None;
    let mut tag_key: Option<Cow<'a, str>> = None;
    let mut i = 0;
    // Each arm either moves `i` on or returns.
    loop {
        let c = b.get(i).copied();
        match c {
            Some(b'\\') => match b.get(i + 1) {
                None => return Err(KeyProblem::DanglingBackslash),
                Some(&next) if is_escapable(state, next) => {
                    escaped = true;
                    i += 2;
                }
                Some(_) => i += 1,
            },
            Some(b' ') => return Err(KeyProblem::UnescapedSpace { at: i }),
            Some(b'\n') => return Err(KeyProblem::Newline { at: i }),
            Some(b'=') if state == Part::TagKey => {
                let k = unescape(part(key, start, i), state, escaped);
                if k.is_empty() {
                    return Err(KeyProblem::EmptyTagKey);
                }
                tag_key = Some(k);
                state = Part::TagValue;
                (start, escaped) = (i + 1, false);
                i += 1;
            }
            Some(b'=') if state == Part::TagValue => {
                let tag = tag_key.as_deref().unwrap_or_default();
                return Err(KeyProblem::EqualsInTagValue { tag: quote(tag) });
            }
            Some(b',') | None => {
                let raw = part(key, start, i);
                match state {
                    Part::Measurement => {
                        if raw.is_empty() {
                            return Err(KeyProblem::EmptyMeasurement);
                        }
                        measurement = Some(unescape(raw, state, escaped));
                    }
                    Part::TagKey => {
                        if raw.is_empty() {
                            return Err(KeyProblem::EmptyTagKey);
                        }
                        let tag = unescape(raw, state, escaped);
                        return Err(KeyProblem::MissingEquals { tag: quote(&tag) });
                    }
                    Part::TagValue => {
                        let k = tag_key.take().unwrap_or_default();
                        if raw.is_empty() {
                            return Err(KeyProblem::EmptyTagValue { tag: quote(&k) });
                        }
                        if let Some(prev) = tags.get(tag_lo..).and_then(<[Tag<'_>]>::last) {
                            check_order(&prev.key, &k)?;
                        }
                        let value = unescape(raw, state, escaped);
                        tags.push(Tag { key: k, value });
                    }
                }
                if c.is_none() {
                    break;
                }
                state = Part::TagKey;
                (start, escaped) = (i + 1, false);
                i += 1;
            }
            Some(_) => i += 1,
        }
    }
    Ok(measurement.unwrap_or_default())
}

/// The bytes a backslash escapes in a part of a series key.
#[inline]
fn is_escapable(part: Part, c: u8) -> bool {
    match part {
        Part::Measurement => c == b',' || c == b' ',
        Part::TagKey | Part::TagValue => c == b',' || c == b' ' || c == b'=',
    }
}

/// Removes the escapes of `raw` (a backslash before a byte it escapes); other
/// backslashes stay. Borrows when there were none.
fn unescape(raw: &str, part: Part, escaped: bool) -> Cow<'_, str> {
    if !escaped {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if next.is_ascii() && is_escapable(part, next as u8) {
                    continue;
                }
            }
        }
        out.push(c);
    }
    Cow::Owned(out)
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn truncated(&self, what: &'static str, offset: usize) -> ReadError {
        ReadError::Truncated {
            what,
            offset,
            len: self.buf.len(),
        }
    }

    #[inline]
    fn byte(&mut self, what: &'static str) -> Result<u8, ReadError> {
        match self.buf.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                Ok(c)
            }
            None => Err(self.truncated(what, self.pos)),
        }
    }

    #[inline]
    fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ReadError> {
        let buf = self.buf;
        match self
            .pos
            .checked_add(len)
            .and_then(|end| buf.get(self.pos..end))
        {
            Some(s) => {
                self.pos += len;
                Ok(s)
            }
            None => Err(self.truncated(what, self.pos)),
        }
    }

    #[inline]
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], ReadError> {
        match self.buf.get(self.pos..).and_then(<[u8]>::first_chunk::<N>) {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.truncated(what, self.pos)),
        }
    }

    /// A float field's type byte and finite value, if that is what comes
    /// next; anything else (a bad float too) is left to `read_value`.
    #[inline(always)]
    fn float_fast(&mut self) -> Option<f64> {
        let b = self.buf.get(self.pos..)?.first_chunk::<9>()?;
        let v = f64::from_bits(u64::from_le_bytes(*b[1..].first_chunk::<8>()?));
        if b[0] != TYPE_FLOAT || !v.is_finite() {
            return None;
        }
        self.pos += 9;
        Some(v)
    }

    /// An unsigned LEB128 of at most 10 bytes that fits 64 bits.
    #[inline]
    fn uvarint(&mut self, what: &'static str) -> Result<u64, ReadError> {
        let start = self.pos;
        match self.buf.get(start) {
            Some(&c) if c < 0x80 => {
                self.pos = start + 1;
                Ok(u64::from(c))
            }
            _ => self.uvarint_long(what, start),
        }
    }

    fn uvarint_long(&mut self, what: &'static str, start: usize) -> Result<u64, ReadError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        let mut pos = start;
        loop {
            let Some(&c) = self.buf.get(pos) else {
                return Err(self.truncated(what, start));
            };
            pos += 1;
            if shift == 63 && c > 1 {
                return Err(ReadError::VarintOverflow {
                    what,
                    offset: start,
                });
            }
            v |= u64::from(c & 0x7f) << shift;
            if c < 0x80 {
                self.pos = pos;
                return Ok(v);
            }
            shift += 7;
        }
    }
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// `s` in double quotes for a message: cut to about [`QUOTE_MAX`] bytes (on a
/// character boundary, marked with `…`), control characters and quotes
/// escaped. Backslashes stay as they are, so a series key reads as written in
/// line protocol.
fn quote(s: &str) -> String {
    let mut cut = s.len().min(QUOTE_MAX);
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut out = String::with_capacity(cut + 8);
    out.push('"');
    for c in s[..cut].chars() {
        if c.is_control() || c == '"' {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if cut < s.len() {
        out.push('…');
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use sundial_lineproto::{parse_lines, OwnedFieldValue, OwnedPoint, ParseOptions, Precision};

    fn opts() -> ParseOptions {
        ParseOptions::new(Precision::Nanosecond, 1_700_000_000_000_000_000)
    }

    fn encode_all(points: &[Point<'_>]) -> Vec<u8> {
        let mut buf = Vec::new();
        encode_points(points.iter().copied(), &mut buf);
        buf
    }

    fn assert_same(a: &Point<'_>, b: &Point<'_>) {
        assert_eq!(a.measurement, b.measurement);
        assert_eq!(a.series_key, b.series_key);
        assert_eq!(a.tags, b.tags);
        assert_eq!(a.fields, b.fields);
        assert_eq!(a.timestamp, b.timestamp);
        assert_eq!(a.to_line(), b.to_line());
    }

    /// Parses `body`, sends every good point through the wire and back, and
    /// checks nothing changed. Returns the number of points.
    fn round_trip_body(body: &str) -> usize {
        let parsed = parse_lines(body.as_bytes(), &opts());
        let points: Vec<Point<'_>> = parsed.iter().collect();
        let buf = encode_all(&points);
        let decoded = match decode_points(&buf, &DecodeLimits::default()) {
            Ok(d) => d,
            Err(e) => panic!("{body:?}: {e}"),
        };
        assert_eq!(decoded.len(), points.len());
        let back = decoded.points();
        for (a, b) in points.iter().zip(&back) {
            assert_same(a, b);
        }
        // Encoding the decoded points gives the same bytes.
        assert_eq!(encode_all(&back), buf, "{body:?}");
        points.len()
    }

    #[test]
    fn round_trip_of_parsed_lines() {
        let body = concat!(
            "cpu,host=a,region=us-west usage=1.5,count=3i,big=18446744073709551615u,ok=true,msg=\"hi\" 1\n",
            // Tags out of order in the body: the canonical key sorts them.
            "cpu,zone=z,host=b,az=1 usage=-0.25 -5\n",
            // Escapes in measurement, tag keys and values, field keys.
            "we\\ ather\\,x,k\\ 1=v\\,1,k\\=2=v\\=2 f\\ 1=1,f\\,2=2i,f\\=3=F 1700000000000000000\n",
            "a=b,t=1 v=1 2\n",
            "a\\=b,t=\\x v=1 3\n",
            "m,t=x\\\\,u v=1 4\n",
            "m\\\\,t=1 v=1 5\n",
            // Strings with quotes, backslashes, newlines and unicode.
            "s,host=h str=\"say \\\"hi\\\" \\\\ back\\\\slash \\n and\nnewline\",e=\"\" 6\n",
            "日本,地域=東京,ключ=значение température=21.5,名前=\"값 🎉\" 7\n",
            "m,b=2,a=1,c=3 i=-9223372036854775808i,u=0u,x=1e300,y=5e-324,z=-0 8\n",
            "m v=1 -9223372036854775806\n",
            "m v=1 9223372036854775806\n",
            "m,t=\\ lead\\ and\\ trail\\  v=1 9\n",
            "m\tx\r,t=a\tb v=1 10\n",
            "many a=1,b=2,c=3,d=4,e=5,f=6,g=7,h=8,i=9,j=10,k=11,l=12 11\n",
            // Field names with backslashes, a tab after the first field.
            "m a=1,\tb=2,f\\\\=3,g\\x=4,h\\\\\\,i=5 12\n",
            "a#b,t=# v=1 13\n",
        );
        assert_eq!(round_trip_body(body), 17);
        let parsed = parse_lines(body.as_bytes(), &opts());
        assert!(parsed.errors().is_empty(), "{:?}", parsed.errors());
    }

    #[test]
    fn parts_without_escapes_borrow_from_the_payload() {
        let body = "we\\ ather,a\\=b=c,d=e\\,f,g=h v=1 1\nplain,x=y v=1 2\n";
        let parsed = parse_lines(body.as_bytes(), &opts());
        let buf = encode_all(&parsed.iter().collect::<Vec<_>>());
        let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
        let range = buf.as_ptr_range();
        let in_buf = |s: &str| range.contains(&s.as_ptr());
        let p = d.get(0).unwrap();
        assert_eq!(p.measurement, "we ather");
        assert!(!in_buf(p.measurement));
        assert!(in_buf(p.series_key));
        let owned = |c: &Cow<'_, str>| matches!(c, Cow::Owned(_));
        let kinds: Vec<(bool, bool)> = p
            .tags
            .iter()
            .map(|t| (owned(&t.key), owned(&t.value)))
            .collect();
        assert_eq!(kinds, [(true, false), (false, true), (false, false)]);
        let p = d.get(1).unwrap();
        assert!(in_buf(p.measurement));
        assert!(p.tags.iter().all(|t| in_buf(&t.key) && in_buf(&t.value)));
        assert!(p.fields.iter().all(|f| in_buf(&f.key)));
        assert!(d.get(2).is_none());
    }

    #[test]
    fn empty_payload_round_trips() {
        let buf = encode_all(&[]);
        assert_eq!(buf, [VERSION, 0]);
        let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
        assert!(d.is_empty());
        assert!(d.points().is_empty());
    }

    #[test]
    fn encodes_from_batch_indices() {
        let body = cpu_body();
        let parsed = parse_lines(body.as_bytes(), &opts());
        let indices: Vec<u32> = vec![3, 1, 4, 1, 5];
        let mut buf = Vec::new();
        encode_points(indices.iter().map(|&i| parsed.get(i as usize)), &mut buf);
        let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
        assert_eq!(d.len(), 5);
        for (p, &i) in d.iter().zip(&indices) {
            assert_same(&p, &parsed.get(i as usize));
        }
    }

    #[test]
    fn points_of_a_series_share_its_tags() {
        let mut body = String::new();
        for i in 0..10 {
            let host = i % 2;
            body.push_str(&format!(
                "cpu,datacenter=us-east-1a,hostname=host_{host},rack=4 v={i} {i}\n"
            ));
        }
        // A short key is split every time.
        body.push_str("m,t=1 v=1 1\nm,t=1 v=2 2\n");
        assert_eq!(round_trip_body(&body), 12);
        let parsed = parse_lines(body.as_bytes(), &opts());
        let buf = encode_all(&parsed.iter().collect::<Vec<_>>());
        let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
        assert_eq!(d.series.len(), 4);
        assert_eq!(d.tags.len(), 3 + 3 + 1 + 1);

        // All keys new: the lookups stop after 1,024 misses, points stay right.
        let mut body = String::new();
        for i in 0..1500 {
            body.push_str(&format!(
                "cpu,hostname=a_rather_long_host_name_{i} v=1 {i}\n"
            ));
        }
        body.push_str("cpu,hostname=a_rather_long_host_name_0 v=2 1\n");
        assert_eq!(round_trip_body(&body), 1501);
    }

    fn cpu_body() -> String {
        let mut s = String::new();
        for i in 0..8 {
            s.push_str(&format!(
                "cpu,hostname=host_{i},region=r{i} usage_user={i}.5,usage_idle=3 {i}\n"
            ));
        }
        s
    }

    #[test]
    fn varints_and_zigzag() {
        for v in [0u64, 1, 127, 128, 300, 1 << 35, u64::MAX - 1, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            let mut r = Reader { buf: &b, pos: 0 };
            assert_eq!(r.uvarint("x"), Ok(v));
            assert_eq!(r.pos, b.len());
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX, -123_456_789] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
        // 11 bytes, and a 10th byte above 1, overflow.
        let long = [0xffu8; 10];
        let mut r = Reader { buf: &long, pos: 0 };
        assert!(matches!(
            r.uvarint("x"),
            Err(ReadError::VarintOverflow { offset: 0, .. })
        ));
        let mut two = [0xffu8; 10];
        two[9] = 0x02;
        let mut r = Reader { buf: &two, pos: 0 };
        assert!(matches!(
            r.uvarint("x"),
            Err(ReadError::VarintOverflow { .. })
        ));
        let mut r = Reader {
            buf: &[0x80, 0x80],
            pos: 0,
        };
        assert!(matches!(
            r.uvarint("x"),
            Err(ReadError::Truncated { offset: 0, .. })
        ));
    }

    // ---- hand-built payloads for the error cases --------------------------

    fn uv(v: u64) -> Vec<u8> {
        let mut b = Vec::new();
        put_uvarint(&mut b, v);
        b
    }

    /// One point: key, timestamp, and (name, type, raw value bytes) fields.
    fn point(key: &[u8], ts: i64, fields: &[(&[u8], u8, Vec<u8>)]) -> Vec<u8> {
        let mut b = uv(key.len() as u64);
        b.extend_from_slice(key);
        b.extend(uv(zigzag(ts)));
        b.extend(uv(fields.len() as u64));
        for (name, code, value) in fields {
            b.extend(uv(name.len() as u64));
            b.extend_from_slice(name);
            b.push(*code);
            b.extend_from_slice(value);
        }
        b
    }

    fn float(v: f64) -> (&'static [u8], u8, Vec<u8>) {
        (b"v", TYPE_FLOAT, v.to_le_bytes().to_vec())
    }

    fn payload(points: &[Vec<u8>]) -> Vec<u8> {
        let mut b = vec![VERSION];
        b.extend(uv(points.len() as u64));
        for p in points {
            b.extend_from_slice(p);
        }
        b
    }

    fn good() -> Vec<u8> {
        point(b"m,t=1", 1, &[float(1.0)])
    }

    fn err(buf: &[u8]) -> WireError {
        err_with(buf, &DecodeLimits::default())
    }

    fn err_with(buf: &[u8], limits: &DecodeLimits) -> WireError {
        match decode_points(buf, limits) {
            Ok(d) => panic!("decoded {} points from {buf:?}", d.len()),
            Err(e) => e,
        }
    }

    /// The error of a payload whose second point is `p` (the first is good).
    fn point_err(p: Vec<u8>) -> PointError {
        match err(&payload(&[good(), p])) {
            WireError::Point { index: 1, error } => error,
            e => panic!("{e}"),
        }
    }

    fn key_err(key: &str) -> KeyProblem {
        match point_err(point(key.as_bytes(), 1, &[float(1.0)])) {
            PointError::SeriesKey { key: k, problem } => {
                assert!(k.starts_with('"'), "{k}");
                problem
            }
            e => panic!("{key:?}: {e}"),
        }
    }

    #[test]
    fn hand_built_payload_decodes() {
        let fields = [
            (&b"f"[..], TYPE_FLOAT, 2.5f64.to_le_bytes().to_vec()),
            (b"i", TYPE_INTEGER, uv(zigzag(-3))),
            (b"u", TYPE_UNSIGNED, uv(u64::MAX)),
            (b"b", TYPE_BOOLEAN, vec![1]),
            (b"s", TYPE_STRING, [uv(2), b"ok".to_vec()].concat()),
        ];
        let buf = payload(&[point(b"m,a=1,b=2", -7, &fields)]);
        let d = decode_points(&buf, &DecodeLimits::default()).unwrap();
        assert_eq!(
            d.get(0).unwrap().to_line(),
            "m,a=1,b=2 f=2.5,i=-3i,u=18446744073709551615u,b=true,s=\"ok\" -7"
        );
    }

    #[test]
    fn rejects_bad_framing() {
        assert_eq!(err(&[]), WireError::Empty);
        assert_eq!(err(&[2, 0]), WireError::UnknownVersion(2));
        assert_eq!(err(&[0]), WireError::UnknownVersion(0));
        assert!(matches!(
            err(&[VERSION]),
            WireError::Header(ReadError::Truncated { offset: 1, .. })
        ));
        let mut b = vec![VERSION];
        b.extend([0xff; 10]);
        assert!(matches!(
            err(&b),
            WireError::Header(ReadError::VarintOverflow { offset: 1, .. })
        ));
        // Fewer points than announced.
        let mut b = payload(&[good()]);
        b[1] = 2;
        assert!(matches!(
            err(&b),
            WireError::Point {
                index: 1,
                error: PointError::Read(ReadError::Truncated { .. })
            }
        ));
        // More bytes than the points take.
        let mut b = payload(&[good()]);
        let len = b.len();
        b.extend([0, 0]);
        assert_eq!(
            err(&b),
            WireError::TrailingBytes {
                offset: len,
                count: 2
            }
        );
    }

    #[test]
    fn enforces_limits() {
        let limits = DecodeLimits {
            max_points: 2,
            max_string_len: 4,
            max_key_len: 16,
        };
        let three = payload(&[good(), good(), good()]);
        assert_eq!(
            err_with(&three, &limits),
            WireError::TooManyPoints { count: 3, max: 2 }
        );
        assert!(decode_points(&payload(&[good(), good()]), &limits).is_ok());

        let key = "m,t=0123456789ab"; // 16 bytes: at the limit
        assert!(decode_points(&payload(&[point(key.as_bytes(), 1, &[])]), &limits).is_err());
        let at_limit = payload(&[point(key.as_bytes(), 1, &[float(1.0)])]);
        // 16 + 4 + 1 > 16: the field key is too long.
        assert!(matches!(
            err_with(&at_limit, &limits),
            WireError::Point {
                error: PointError::FieldKeyTooLong {
                    len: 21,
                    max: 16,
                    ..
                },
                ..
            }
        ));
        let long = payload(&[point(b"m,t=0123456789abc", 1, &[float(1.0)])]);
        assert!(matches!(
            err_with(&long, &limits),
            WireError::Point {
                error: PointError::KeyTooLong { len: 17, max: 16 },
                ..
            }
        ));
        let limits = DecodeLimits {
            max_key_len: 64,
            ..limits
        };
        let s = |v: &[u8]| {
            payload(&[point(
                b"m",
                1,
                &[(b"s", TYPE_STRING, [uv(v.len() as u64), v.to_vec()].concat())],
            )])
        };
        assert!(decode_points(&s(b"abcd"), &limits).is_ok());
        assert!(matches!(
            err_with(&s(b"abcde"), &limits),
            WireError::Point {
                error: PointError::StringTooLong { len: 5, max: 4, .. },
                ..
            }
        ));
        // A length far past the limit is refused before anything is read.
        let mut b = payload(&[]);
        b.truncate(1);
        b.extend(uv(1));
        b.extend(uv(u64::MAX));
        assert!(matches!(
            err(&b),
            WireError::Point {
                error: PointError::KeyTooLong { .. },
                ..
            }
        ));
    }

    #[test]
    fn huge_counts_are_not_trusted() {
        let all = DecodeLimits {
            max_points: usize::MAX,
            max_string_len: usize::MAX,
            max_key_len: usize::MAX,
        };
        let mut b = vec![VERSION];
        b.extend(uv(u64::MAX));
        b.extend(good());
        assert!(matches!(
            err_with(&b, &all),
            WireError::Point { index: 1, .. }
        ));
        // A point announcing 2^62 fields, a key length and a string length
        // near 2^64.
        let mut p = uv(1);
        p.extend(b"m");
        p.extend(uv(0));
        p.extend(uv(1 << 62));
        let b = payload(&[p]);
        assert!(matches!(
            err_with(&b, &all),
            WireError::Point {
                error: PointError::Read(ReadError::Truncated { .. }),
                ..
            }
        ));
        let b = payload(&[[uv(u64::MAX), b"m".to_vec()].concat()]);
        assert!(err_with(&b, &all).to_string().contains("series key"));
        let b = payload(&[point(
            b"m",
            0,
            &[(
                b"s",
                TYPE_STRING,
                [uv(u64::MAX - 1), b"x".to_vec()].concat(),
            )],
        )]);
        assert!(err_with(&b, &all).to_string().contains("string value"));
    }

    #[test]
    fn rejects_bad_series_keys() {
        use KeyProblem as K;
        let tag = |s: &str| quote(s);
        assert_eq!(key_err(",t=1"), K::EmptyMeasurement);
        assert_eq!(key_err(",t\\ x=1"), K::EmptyMeasurement);
        assert_eq!(key_err("m,"), K::EmptyTagKey);
        assert_eq!(key_err("m,=1"), K::EmptyTagKey);
        assert_eq!(key_err("m\\ ,=1"), K::EmptyTagKey);
        assert_eq!(key_err("m,t=1,"), K::EmptyTagKey);
        assert_eq!(key_err("m,t"), K::MissingEquals { tag: tag("t") });
        assert_eq!(key_err("m,t,u=1"), K::MissingEquals { tag: tag("t") });
        assert_eq!(key_err("m,t\\=1"), K::MissingEquals { tag: tag("t=1") });
        assert_eq!(key_err("m,t="), K::EmptyTagValue { tag: tag("t") });
        assert_eq!(key_err("m,t=,u=1"), K::EmptyTagValue { tag: tag("t") });
        assert_eq!(key_err("m,t\\ =,u=1"), K::EmptyTagValue { tag: tag("t ") });
        assert_eq!(key_err("m,t=1=2"), K::EqualsInTagValue { tag: tag("t") });
        assert_eq!(key_err("m,t=\\ 1=2"), K::EqualsInTagValue { tag: tag("t") });
        assert_eq!(key_err("m x"), K::UnescapedSpace { at: 1 });
        assert_eq!(key_err("m,t=a b"), K::UnescapedSpace { at: 5 });
        assert_eq!(key_err("m,t b=a"), K::UnescapedSpace { at: 3 });
        assert_eq!(key_err("m\n,t=1"), K::Newline { at: 1 });
        assert_eq!(key_err("m,t=1\\\n"), K::Newline { at: 6 });
        assert_eq!(key_err("#m"), K::BadFirstByte("'#'"));
        assert_eq!(key_err("\tm"), K::BadFirstByte("a tab"));
        assert_eq!(key_err("\rm,t=1"), K::BadFirstByte("a carriage return"));
        assert_eq!(key_err("\0m"), K::BadFirstByte("a NUL byte"));
        assert_eq!(key_err("m\\"), K::DanglingBackslash);
        assert_eq!(key_err("m,t=1\\"), K::DanglingBackslash);
        assert_eq!(key_err("m,t=1\\\\"), K::DanglingBackslash);
        assert_eq!(
            key_err("m,b=1,a=2"),
            K::TagsOutOfOrder {
                before: tag("b"),
                after: tag("a")
            }
        );
        assert_eq!(
            key_err("m,service_version=1,service_environment=2"),
            K::TagsOutOfOrder {
                before: tag("service_version"),
                after: tag("service_environment")
            }
        );
        assert_eq!(key_err("m,a=1,a=2"), K::DuplicateTag { tag: tag("a") });
        assert_eq!(key_err("m\\ x,a=1,a=2"), K::DuplicateTag { tag: tag("a") });
        // Order is by unescaped key: "a b" < "a,b" < "a=b" < "ab" by bytes.
        assert!(decode_points(
            &payload(&[point(b"m,a\\ b=1,a\\,b=1,a\\=b=1,ab=1", 1, &[float(1.0)])]),
            &DecodeLimits::default()
        )
        .is_ok());
        assert_eq!(
            key_err("m,a\\=b=1,a\\,b=1"),
            K::TagsOutOfOrder {
                before: tag("a=b"),
                after: tag("a,b")
            }
        );
        // "a" and "a\0": equal 8-byte prefixes, the shorter first.
        assert!(decode_points(
            &payload(&[point(b"m,a=1,a\0=1", 1, &[float(1.0)])]),
            &DecodeLimits::default()
        )
        .is_ok());
        assert!(matches!(key_err("m,a\0=1,a=1"), K::TagsOutOfOrder { .. }));
        assert!(matches!(
            point_err(point(b"", 1, &[float(1.0)])),
            PointError::SeriesKey {
                problem: K::EmptyMeasurement,
                ..
            }
        ));
        assert!(matches!(
            point_err(point(b"m,t=\xff", 1, &[float(1.0)])),
            PointError::KeyNotUtf8 { .. }
        ));
    }

    #[test]
    fn rejects_bad_points_and_fields() {
        use PointError as P;
        let name = |s: &str| quote(s);
        assert_eq!(point_err(point(b"m", 1, &[])), P::NoFields);
        for ts in [i64::MIN, i64::MIN + 1, i64::MAX] {
            assert_eq!(
                point_err(point(b"m", ts, &[float(1.0)])),
                P::TimestampOutOfRange(ts)
            );
        }
        assert!(decode_points(
            &payload(&[
                point(b"m", MIN_NANO_TIME, &[float(1.0)]),
                point(b"m", MAX_NANO_TIME, &[float(1.0)])
            ]),
            &DecodeLimits::default()
        )
        .is_ok());
        let f = |name: &'static [u8], code: u8, v: &[u8]| (name, code, v.to_vec());
        assert_eq!(
            point_err(point(b"m", 1, &[f(b"", TYPE_BOOLEAN, &[0])])),
            P::EmptyFieldName { field: 0 }
        );
        assert!(matches!(
            point_err(point(
                b"m",
                1,
                &[f(b"a", TYPE_BOOLEAN, &[0]), f(b"\xc3", TYPE_BOOLEAN, &[0])]
            )),
            P::FieldNameNotUtf8 { field: 1, .. }
        ));
        assert_eq!(
            point_err(point(b"m", 1, &[f(b"a\nb", TYPE_BOOLEAN, &[0])])),
            P::NewlineInFieldName { name: name("a\nb") }
        );
        for bad in [
            &b"a\\"[..],
            b"a\\\\\\",
            b"a\\,b",
            b"\\=",
            b"a\\ b",
            b"a\\\\\\=b",
        ] {
            assert!(
                matches!(
                    point_err(point(b"m", 1, &[f(bad, TYPE_BOOLEAN, &[0])])),
                    P::OddBackslashesInFieldName { .. }
                ),
                "{bad:?}"
            );
        }
        // Even runs, and any run before another byte, are fine.
        for good in [&b"a\\\\"[..], b"a\\b", b"a\\\\,b", b"\\\\\\x"] {
            let ok = payload(&[point(b"m", 1, &[float(1.0), f(good, TYPE_BOOLEAN, &[0])])]);
            assert!(
                decode_points(&ok, &DecodeLimits::default()).is_ok(),
                "{good:?}"
            );
        }
        assert_eq!(
            point_err(point(b"m", 1, &[f(b"\tx", TYPE_BOOLEAN, &[0])])),
            P::FirstFieldNameStartsWithTab { name: name("\tx") }
        );
        let later_tab = payload(&[point(b"m", 1, &[float(1.0), f(b"\tx", TYPE_BOOLEAN, &[0])])]);
        assert!(decode_points(&later_tab, &DecodeLimits::default()).is_ok());
        assert_eq!(
            point_err(point(
                b"m",
                1,
                &[
                    f(b"a", TYPE_BOOLEAN, &[0]),
                    f(b"b", TYPE_BOOLEAN, &[0]),
                    f(b"a", TYPE_INTEGER, &[0])
                ]
            )),
            P::DuplicateField { name: name("a") }
        );
        assert_eq!(
            point_err(point(b"m", 1, &[f(b"x", 0, &[0])])),
            P::UnknownType {
                name: name("x"),
                code: 0
            }
        );
        assert_eq!(
            point_err(point(b"m", 1, &[f(b"x", 6, &[0])])),
            P::UnknownType {
                name: name("x"),
                code: 6
            }
        );
        for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert!(matches!(
                point_err(point(b"m", 1, &[f(b"x", TYPE_FLOAT, &v.to_le_bytes())])),
                P::NonFiniteFloat { .. }
            ));
        }
        assert_eq!(
            point_err(point(b"m", 1, &[f(b"x", TYPE_BOOLEAN, &[2])])),
            P::BadBoolean {
                name: name("x"),
                byte: 2
            }
        );
        assert!(matches!(
            point_err(point(b"m", 1, &[f(b"x", TYPE_STRING, &[2, b'a', 0xff])])),
            P::StringNotUtf8 { .. }
        ));
        assert!(matches!(
            point_err(point(b"m", 1, &[f(b"x", TYPE_INTEGER, &[0xff; 10])])),
            P::Read(ReadError::VarintOverflow {
                what: "integer value",
                ..
            })
        ));
    }

    #[test]
    fn duplicate_fields_among_many() {
        let names: Vec<Vec<u8>> = (0..200).map(|i| format!("f{i}").into_bytes()).collect();
        let fields = |n: usize, dup: bool| -> Vec<(&[u8], u8, Vec<u8>)> {
            let mut v: Vec<(&[u8], u8, Vec<u8>)> = names[..n]
                .iter()
                .map(|k| (&k[..], TYPE_BOOLEAN, vec![1]))
                .collect();
            if dup {
                v.push((&names[n / 2][..], TYPE_BOOLEAN, vec![0]));
            }
            v
        };
        for n in [
            1,
            2,
            10,
            PAIRWISE_MAX - 1,
            PAIRWISE_MAX,
            PAIRWISE_MAX + 1,
            199,
        ] {
            let ok = payload(&[point(b"m", 1, &fields(n, false))]);
            assert!(decode_points(&ok, &DecodeLimits::default()).is_ok(), "{n}");
            let bad = payload(&[point(b"m", 1, &fields(n, true))]);
            assert!(
                matches!(
                    err(&bad),
                    WireError::Point {
                        error: PointError::DuplicateField { .. },
                        ..
                    }
                ),
                "{n}"
            );
        }
    }

    #[test]
    fn messages_name_the_point_and_quote_briefly() {
        let b = payload(&[
            good(),
            good(),
            good(),
            point(b"m,b=1,a=2", 1, &[float(1.0)]),
        ]);
        assert_eq!(
            err(&b).to_string(),
            "bad WriteToShard payload: point 3: series key \"m,b=1,a=2\": tag keys out of order: \"b\" before \"a\""
        );
        let b = payload(&[point(b"m", 1, &[(b"x", 9, vec![0])])]);
        assert_eq!(
            err(&b).to_string(),
            "bad WriteToShard payload: point 0: field \"x\": unknown type 9 (1 float, 2 integer, 3 unsigned, 4 boolean, 5 string)"
        );
        let b = payload(&[good()]);
        assert_eq!(
            err(&b[..b.len() - 3]).to_string(),
            "bad WriteToShard payload: point 0: truncated: float value at byte 13 runs past the end (18 bytes)"
        );
        let long = format!("m{} x", "é".repeat(100));
        let msg = err(&payload(&[point(long.as_bytes(), 1, &[float(1.0)])])).to_string();
        assert!(msg.contains("…\": unescaped space at byte 201"), "{msg}");
        assert!(msg.len() < 220, "{msg}");
        assert_eq!(quote("a\"b\\c\n"), r#""a\"b\c\n""#);
    }

    #[test]
    fn every_truncation_is_an_error() {
        let body = concat!(
            "cpu,host=a,region=us-west usage=1.5,count=3i,big=4u,ok=true,msg=\"hi\" 1\n",
            "we\\ ather\\,x,k\\ 1=v\\,1 f=1 1700000000000000000\n",
        );
        let parsed = parse_lines(body.as_bytes(), &opts());
        let buf = encode_all(&parsed.iter().collect::<Vec<_>>());
        assert!(decode_points(&buf, &DecodeLimits::default()).is_ok());
        for n in 0..buf.len() {
            let e = decode_points(&buf[..n], &DecodeLimits::default());
            assert!(e.is_err(), "prefix of {n} bytes decoded");
        }
    }

    // ---- generated input ---------------------------------------------------

    /// Text heavy in the characters line protocol escapes.
    fn text(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("[a-c ,=\\\\\"\t#é日0-9]{{1,{max}}}"))
            .expect("regex")
    }

    fn value() -> impl Strategy<Value = OwnedFieldValue> {
        prop_oneof![
            any::<f64>()
                .prop_filter("finite", |v| v.is_finite())
                .prop_map(OwnedFieldValue::Float),
            any::<i64>().prop_map(OwnedFieldValue::Integer),
            any::<u64>().prop_map(OwnedFieldValue::Unsigned),
            any::<bool>().prop_map(OwnedFieldValue::Boolean),
            proptest::string::string_regex("[a-c \"\\\\\n,=é]{0,12}")
                .expect("regex")
                .prop_map(OwnedFieldValue::String),
        ]
    }

    fn owned_point() -> impl Strategy<Value = OwnedPoint> {
        (
            text(6),
            proptest::collection::vec((text(5), text(5)), 0..4),
            proptest::collection::vec((text(5), value()), 1..5),
            sundial_lineproto::MIN_NANO_TIME..=sundial_lineproto::MAX_NANO_TIME,
        )
            .prop_map(|(measurement, tags, fields, timestamp)| OwnedPoint {
                measurement,
                tags,
                fields,
                timestamp,
            })
    }

    /// Up to three lines of `measurement[,tag=value…] field=value[,…] [time]`
    /// whose tokens are mostly letters, with escapes, lone backslashes and
    /// bare separators mixed in.
    const LINES: &str = concat!(
        r#"((a|b|c|é|\\[,= \\]|\\|[,= ]){1,5}"#,
        r#"(,(a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}=(a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}){0,3}"#,
        r#" (a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}=(1|-2.5e3|3i|4u|t|FALSE|"[a-c\\ ",=]{0,5}")"#,
        r#"(,(a|b|c|é|\\[,= \\]|\\|[,= ]){1,4}=(1|3i|"x")){0,2}( [0-9]{1,3})?\n){1,3}"#,
    );

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Whatever the parser makes of lines written from generated points,
        /// the wire carries unchanged.
        #[test]
        fn generated_points_round_trip(points in proptest::collection::vec(owned_point(), 1..6)) {
            let body: String = points.iter().map(|p| p.to_line() + "\n").collect();
            round_trip_body(&body);
        }


        #[test]
        fn garbage_never_panics(mut buf in proptest::collection::vec(any::<u8>(), 0..256), v1 in any::<bool>()) {
            if v1 && !buf.is_empty() {
                buf[0] = VERSION;
            }
            check_garbage(&buf);
        }

        #[test]
        fn mutated_payloads_never_panic(
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let body = "cpu,host=a\\ b,region=us usage=1.5,n=3i,u=7u,ok=true,s=\"x\\\"y\" 1\nm v=2 3\n";
            let parsed = parse_lines(body.as_bytes(), &opts());
            let mut buf = encode_all(&parsed.iter().collect::<Vec<_>>());
            for (at, byte) in edits {
                let n = buf.len();
                buf[at % n] = byte;
            }
            let cut = cut % (buf.len() + 1);
            check_garbage(&buf);
            check_garbage(&buf[..cut]);
        }
    }

    proptest! {
        // About one body in five has a good line.
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// The same for lines shaped like line protocol, with noise (escapes,
        /// separators) inside their tokens.
        #[test]
        fn generated_lines_round_trip(body in LINES) {
            round_trip_body(&body);
        }
    }

    /// A decoded point is as good as a parsed one: its line protocol parses
    /// back to the same point.
    fn assert_reparses(p: &Point<'_>) {
        let line = p.to_line();
        let parsed = parse_lines(line.as_bytes(), &opts());
        assert!(
            parsed.errors().is_empty() && parsed.len() == 1,
            "{line:?}: {:?}",
            parsed.errors()
        );
        assert_same(p, &parsed.get(0));
    }

    /// Keys and names over an alphabet of separators, escapes and the bytes
    /// line protocol treats specially.
    fn wild(max: usize) -> impl Strategy<Value = String> {
        proptest::string::string_regex(&format!("(a|b|\\\\|,|=| |\t|\r|#|\\x00|\"|é){{0,{max}}}"))
            .expect("regex")
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever series key and field names the decoder accepts, the point
        /// survives line protocol.
        #[test]
        fn accepted_points_reparse(
            key in wild(12),
            names in proptest::collection::vec(wild(4), 1..4),
        ) {
            let fields: Vec<(&[u8], u8, Vec<u8>)> = names
                .iter()
                .map(|n| (n.as_bytes(), TYPE_BOOLEAN, vec![1]))
                .collect();
            let buf = payload(&[point(key.as_bytes(), 1, &fields)]);
            if let Ok(d) = decode_points(&buf, &DecodeLimits::default()) {
                for p in d.iter() {
                    assert_reparses(&p);
                }
            }
        }
    }

    /// Decodes `buf`; when that works, re-encoding gives a payload that
    /// decodes to the same points.
    fn check_garbage(buf: &[u8]) {
        let Ok(d) = decode_points(buf, &DecodeLimits::default()) else {
            return;
        };
        let points = d.points();
        let again = encode_all(&points);
        let d2 = decode_points(&again, &DecodeLimits::default()).unwrap();
        assert_eq!(d2.len(), points.len());
        for (a, b) in points.iter().zip(d2.iter()) {
            assert_same(a, &b);
            assert_reparses(a);
        }
    }
}
