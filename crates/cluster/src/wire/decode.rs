//! Decoding: a version-1 payload to points, checked as the line-protocol
//! parser checks its own.

use std::borrow::Cow;
use std::collections::HashMap;

use sundial_lineproto::{
    series_hash, short_eq, Field, FieldValue, Point, Tag, MAX_KEY_LENGTH, MAX_NANO_TIME,
    MAX_STRING_FIELD_LENGTH, MIN_NANO_TIME,
};
use thiserror::Error;

use super::encode::unzigzag;
use super::key::split_key;
use super::messages::quote;
use super::read::Reader;
use super::{
    FIELD_KEY_SEPARATOR_LEN, MIN_FIELD_BYTES, MIN_POINT_BYTES, TYPE_BOOLEAN, TYPE_FLOAT,
    TYPE_INTEGER, TYPE_STRING, TYPE_UNSIGNED, VERSION,
};

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
    pub(super) series: Vec<Series<'a>>,
    pub(super) tags: Vec<Tag<'a>>,
    fields: Vec<Field<'a>>,
}

/// A series key and what it splits into.
#[derive(Debug)]
pub(super) struct Series<'a> {
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
pub(super) const PAIRWISE_MAX: usize = 64;

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
