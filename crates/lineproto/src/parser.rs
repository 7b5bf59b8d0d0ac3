//! The line-protocol parser: one pass over the body, no allocation per field.
//!
//! Parsed data lands in flat vectors owned by [`ParsedBatch`] (all tags of all
//! points in one `Vec`, all fields in another, rebuilt series keys in one
//! `String`); strings borrow from the body unless they had escapes. A bad line is
//! rolled back and recorded with its line number; parsing resumes at the next line.

use crate::error::{LineError, ParseErrorKind as E};
use crate::escape::{unescape, Ctx};
use crate::number::{parse_float, parse_i64, parse_u64, scan_decimal};
use crate::point::{Field, FieldValue, Point, Tag};
use crate::precision::Precision;
use crate::{MAX_KEY_LENGTH, MAX_NANO_TIME, MAX_STRING_FIELD_LENGTH, MIN_NANO_TIME};
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// How to read a body: the timestamp unit, and the time of lines that have none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseOptions {
    pub precision: Precision,
    /// Nanoseconds; truncated to `precision` like InfluxDB does.
    pub default_time: i64,
}

impl ParseOptions {
    pub fn new(precision: Precision, default_time: i64) -> Self {
        ParseOptions {
            precision,
            default_time,
        }
    }
}

impl Default for ParseOptions {
    /// Nanosecond precision; lines without a timestamp get the current time.
    fn default() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        ParseOptions::new(Precision::Nanosecond, now)
    }
}

/// Where a point's series key lives.
#[derive(Debug, Clone, Copy)]
enum KeyLoc<'a> {
    /// Tags were already sorted: the key is a slice of the body.
    Body(&'a str),
    /// Rebuilt in sorted order into `ParsedBatch::keys[start..end]`.
    Built(usize, usize),
}

#[derive(Debug)]
struct RawPoint<'a> {
    measurement: Cow<'a, str>,
    key: KeyLoc<'a>,
    tags: (u32, u32),
    fields: (u32, u32),
    timestamp: i64,
}

/// The result of parsing one body: the good points and the bad lines.
#[derive(Debug, Default)]
pub struct ParsedBatch<'a> {
    points: Vec<RawPoint<'a>>,
    tags: Vec<Tag<'a>>,
    fields: Vec<Field<'a>>,
    keys: String,
    errors: Vec<LineError>,
    lines: usize,
}

impl<'a> ParsedBatch<'a> {
    /// Number of good points.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The `i`-th good point, in body order. Panics if `i >= len()`.
    pub fn get(&self, i: usize) -> Point<'_> {
        let p = &self.points[i];
        Point {
            measurement: &p.measurement,
            series_key: match p.key {
                KeyLoc::Body(s) => s,
                KeyLoc::Built(a, b) => &self.keys[a..b],
            },
            tags: &self.tags[p.tags.0 as usize..p.tags.1 as usize],
            fields: &self.fields[p.fields.0 as usize..p.fields.1 as usize],
            timestamp: p.timestamp,
        }
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Point<'_>> + '_ {
        (0..self.points.len()).map(move |i| self.get(i))
    }

    /// The rejected lines, in body order.
    pub fn errors(&self) -> &[LineError] {
        &self.errors
    }

    /// Physical lines seen (including blank and comment lines).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Total number of field values in the good points.
    pub fn value_count(&self) -> usize {
        self.fields.len()
    }
}

/// Parses a whole body. Good lines become points; bad lines become errors and
/// never stop the rest of the body from being read.
pub fn parse_lines<'a>(body: &'a [u8], opts: &ParseOptions) -> ParsedBatch<'a> {
    let mut batch = ParsedBatch::default();
    let mut p = Parser {
        buf: body,
        // One validation pass for the whole body; tokens are then sliced, not re-checked.
        text: std::str::from_utf8(body).ok(),
        out: &mut batch,
        precision: opts.precision,
        default_time: opts.precision.truncate(opts.default_time),
        fingerprints: Vec::new(),
        order: Vec::new(),
        scratch: Vec::new(),
    };
    p.run();
    batch
}

const fn table(chars: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < chars.len() {
        t[chars[i] as usize] = true;
        i += 1;
    }
    t
}

/// Bytes that end or escape a measurement.
static MEASUREMENT_STOP: [bool; 256] = table(b"\\, \n");
/// Bytes that end or escape a tag key, tag value or field key.
static KEY_STOP: [bool; 256] = table(b"\\,= \n");

#[derive(Clone, Copy)]
enum Escape {
    Preceded,
    Pairs,
}

struct Parser<'a, 'b> {
    buf: &'a [u8],
    text: Option<&'a str>,
    out: &'b mut ParsedBatch<'a>,
    precision: Precision,
    default_time: i64,
    /// One byte of hash per field of the current point, to find duplicate keys cheaply.
    fingerprints: Vec<u8>,
    /// Scratch space for sorting a point's tags.
    order: Vec<(u64, u32)>,
    scratch: Vec<Tag<'a>>,
}

impl<'a> Parser<'a, '_> {
    fn run(&mut self) {
        let buf = self.buf;
        let n = buf.len();
        let mut i = 0;
        let mut line = 1;
        while i < n {
            match buf[i] {
                b'\n' => {
                    line += 1;
                    i += 1;
                    continue;
                }
                b' ' | b'\t' | b'\r' | 0 => {
                    i += 1;
                    continue;
                }
                b'#' => {
                    i = memchr::memchr(b'\n', &buf[i..]).map_or(n, |o| i + o);
                    continue;
                }
                _ => {}
            }
            let start = i;
            let mark = (
                self.out.tags.len(),
                self.out.fields.len(),
                self.out.keys.len(),
            );
            match self.point(start) {
                Ok((end, newlines)) if self.out.points.len() == 1 => {
                    // Size the arenas from the first point and the line count,
                    // so big bodies do not regrow (and copy) them repeatedly.
                    let lines = memchr::memchr_iter(b'\n', &buf[end..]).count() + 1;
                    let (t, f) = (self.out.tags.len(), self.out.fields.len());
                    self.out.points.reserve(lines);
                    self.out.tags.reserve(lines * t);
                    self.out.fields.reserve(lines * f);
                    self.out.keys.reserve(lines * self.out.keys.len());
                    i = end;
                    line += newlines;
                }
                Ok((end, newlines)) => {
                    i = end;
                    line += newlines;
                }
                Err(kind) => {
                    self.out.tags.truncate(mark.0);
                    self.out.fields.truncate(mark.1);
                    self.out.keys.truncate(mark.2);
                    let end = if kind == E::UnbalancedQuotes {
                        // The quote never closes: the rest of the body is not one
                        // huge line (as InfluxDB assumes); resume at the next line.
                        memchr::memchr(b'\n', &buf[start..]).map_or(n, |o| start + o)
                    } else {
                        scan_line(buf, start)
                    };
                    let mut text = &buf[start..end];
                    if let Some(t) = text.strip_suffix(b"\r") {
                        text = t;
                    }
                    self.out.errors.push(LineError::new(line, text, kind));
                    line += memchr::memchr_iter(b'\n', text).count();
                    i = end;
                }
            }
        }
        self.out.lines = if n == 0 {
            0
        } else {
            line - usize::from(buf[n - 1] == b'\n')
        };
    }

    #[inline]
    fn str(&self, a: usize, b: usize) -> Result<&'a str, E> {
        match self.text {
            Some(t) => t.get(a..b).ok_or(E::InvalidUtf8),
            None => std::str::from_utf8(&self.buf[a..b]).map_err(|_| E::InvalidUtf8),
        }
    }

    #[inline]
    fn at_eol(&self, i: usize) -> bool {
        let b = self.buf;
        i >= b.len() || b[i] == b'\n' || (b[i] == b'\r' && (i + 1 >= b.len() || b[i + 1] == b'\n'))
    }

    /// Advances `i` over the body of a key-like token until a stop byte that is
    /// not escaped. Returns whether a backslash was seen.
    ///
    /// InfluxDB 1.x has two escape rules and so do we: in the series key
    /// (`Escape::Preceded`) a stop byte is escaped when the byte before it is a
    /// backslash, even if that backslash follows another (`a\\,b` is one token);
    /// in field keys (`Escape::Pairs`) a backslash escapes the next byte.
    #[inline]
    fn scan_token(&self, i: &mut usize, stop: &[bool; 256], rule: Escape) -> bool {
        let b = self.buf;
        let n = b.len();
        let mut esc = false;
        loop {
            while *i < n && !stop[b[*i] as usize] {
                *i += 1;
            }
            if *i < n && b[*i] == b'\\' {
                esc = true;
                let next = b.get(*i + 1).copied();
                // A backslash never escapes a newline.
                let skip = match (rule, next) {
                    (_, None | Some(b'\n')) => false,
                    (Escape::Pairs, _) => true,
                    (Escape::Preceded, Some(c)) => c != b'\\' && stop[c as usize],
                };
                *i += if skip { 2 } else { 1 };
                continue;
            }
            return esc;
        }
    }

    /// Parses the point starting at `start`. Returns the index of its line end
    /// (`\n`, `\r` or the body's end) and the newlines inside string fields.
    fn point(&mut self, start: usize) -> Result<(usize, usize), E> {
        let buf = self.buf;
        let n = buf.len();
        let mut i = start;

        // Measurement.
        let esc = self.scan_token(&mut i, &MEASUREMENT_STOP, Escape::Preceded);
        if i == start {
            return Err(E::MissingMeasurement);
        }
        if i >= n || buf[i] == b'\n' {
            return Err(E::MissingFields);
        }
        let measurement = unescape(self.str(start, i)?, Ctx::Measurement, esc);

        // Tag set.
        let tag_lo = self.out.tags.len();
        let mut sorted = true;
        let mut prev_prefix = 0u64;
        while buf[i] == b',' {
            i += 1;
            let ks = i;
            let kesc = self.scan_token(&mut i, &KEY_STOP, Escape::Preceded);
            if i == ks {
                return Err(E::MissingTagKey);
            }
            if i >= n || buf[i] != b'=' {
                return Err(E::MissingTagValue);
            }
            let key = unescape(self.str(ks, i)?, Ctx::Key, kesc);
            i += 1;
            let vs = i;
            let vesc = self.scan_token(&mut i, &KEY_STOP, Escape::Preceded);
            if i < n && buf[i] == b'=' {
                return Err(E::InvalidTagFormat);
            }
            if i == vs {
                return Err(E::MissingTagValue);
            }
            let value = unescape(self.str(vs, i)?, Ctx::Key, vesc);
            let pre = key_prefix(key.as_bytes());
            if sorted {
                if let Some(prev) = self.out.tags[tag_lo..].last() {
                    sorted = prev_prefix < pre || (prev_prefix == pre && prev.key < key);
                }
            }
            prev_prefix = pre;
            self.out.tags.push(Tag { key, value });
            if i >= n || buf[i] == b'\n' {
                return Err(E::MissingFields);
            }
        }
        let key_end = i;
        let key_len = key_end - start;
        if key_len > MAX_KEY_LENGTH {
            return Err(E::MaxKeyLength(key_len));
        }
        let series_key = if sorted {
            KeyLoc::Body(self.str(start, key_end)?)
        } else {
            self.build_key(&measurement, tag_lo)?
        };

        // Field set.
        while i < n && (buf[i] == b' ' || buf[i] == b'\t') {
            i += 1;
        }
        if self.at_eol(i) {
            return Err(E::MissingFields);
        }
        let field_lo = self.out.fields.len();
        self.fingerprints.clear();
        let mut newlines = 0;
        loop {
            let ks = i;
            let kesc = self.scan_token(&mut i, &KEY_STOP, Escape::Pairs);
            if i == ks {
                return Err(E::MissingFieldKey);
            }
            if i >= n || buf[i] != b'=' {
                return Err(E::InvalidFieldFormat);
            }
            let key = unescape(self.str(ks, i)?, Ctx::Key, kesc);
            if key_len + 4 + key.len() > MAX_KEY_LENGTH {
                // InfluxDB also bounds the per-field key `series#!~#field`.
                return Err(E::MaxKeyLength(key_len + 4 + key.len()));
            }
            i += 1;
            if i >= n || matches!(buf[i], b' ' | b',' | b'\n') || self.at_eol(i) {
                return Err(E::MissingFieldValue);
            }
            let value = match buf[i] {
                b'"' => {
                    let (v, end, nl) = self.string_value(i)?;
                    newlines += nl;
                    i = end;
                    v
                }
                b'-' | b'.' | b'0'..=b'9' => {
                    let (v, end) = self.number_value(i)?;
                    i = end;
                    v
                }
                _ => {
                    let end = self.value_end(i);
                    let v = parse_bool(&buf[i..end])?;
                    i = end;
                    v
                }
            };
            self.push_field(field_lo, key, value);
            if i < n && buf[i] == b',' {
                i += 1;
                continue;
            }
            if self.at_eol(i) || buf[i] == b' ' || buf[i] == b'\t' {
                break;
            }
            return Err(E::InvalidFieldFormat);
        }

        // Optional timestamp, then only whitespace.
        let mut timestamp = self.default_time;
        while i < n && (buf[i] == b' ' || buf[i] == b'\t') {
            i += 1;
        }
        if !self.at_eol(i) {
            let ts = i;
            while i < n && !matches!(buf[i], b' ' | b'\t' | b'\n' | b'\r') {
                i += 1;
            }
            let raw = match parse_i64(&buf[ts..i]) {
                None => return Err(E::BadTimestamp),
                Some(None) => return Err(E::TimeOutsideRange),
                Some(Some(v)) => v,
            };
            timestamp = raw
                .checked_mul(self.precision.multiplier())
                .filter(|t| (MIN_NANO_TIME..=MAX_NANO_TIME).contains(t))
                .ok_or(E::TimeOutsideRange)?;
            while i < n && (buf[i] == b' ' || buf[i] == b'\t') {
                i += 1;
            }
            if !self.at_eol(i) {
                return Err(E::BadTimestamp);
            }
        }

        let (tag_hi, field_hi) = (self.out.tags.len(), self.out.fields.len());
        self.out.points.push(RawPoint {
            measurement,
            key: series_key,
            tags: (idx(tag_lo)?, idx(tag_hi)?),
            fields: (idx(field_lo)?, idx(field_hi)?),
            timestamp,
        });
        Ok((i, newlines))
    }

    /// Sorts the point's tags and writes the canonical series key into `keys`.
    #[cold]
    fn build_key(&mut self, measurement: &Cow<'a, str>, tag_lo: usize) -> Result<KeyLoc<'a>, E> {
        // Sort (prefix, index) pairs: integer compares, full compares only on
        // equal 8-byte prefixes; then move the tags once into that order.
        let tags = &self.out.tags[tag_lo..];
        self.order.clear();
        self.order.extend(
            tags.iter()
                .enumerate()
                .map(|(j, t)| (key_prefix(t.key.as_bytes()), j as u32)),
        );
        let full =
            |a: &(u64, u32), b: &(u64, u32)| tags[a.1 as usize].key.cmp(&tags[b.1 as usize].key);
        self.order
            .sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| full(a, b)));
        if self
            .order
            .windows(2)
            .any(|w| w[0].0 == w[1].0 && full(&w[0], &w[1]).is_eq())
        {
            return Err(E::DuplicateTags);
        }
        self.scratch.clear();
        self.scratch.extend(self.out.tags.drain(tag_lo..));
        for &(_, j) in &self.order {
            let t = std::mem::take(&mut self.scratch[j as usize]);
            self.out.tags.push(t);
        }
        let tags = &self.out.tags[tag_lo..];
        let keys = &mut self.out.keys;
        let start = keys.len();
        // Tokens borrowed from the body had no backslash, hence nothing to
        // escape (a measurement's '=' is never escaped).
        let put = |keys: &mut String, s: &Cow<'_, str>, ctx| match s {
            Cow::Borrowed(b) => keys.push_str(b),
            Cow::Owned(o) => crate::escape::escape_into(keys, o, ctx),
        };
        put(keys, measurement, Ctx::Measurement);
        for t in tags.iter() {
            keys.push(',');
            put(keys, &t.key, Ctx::Key);
            keys.push('=');
            put(keys, &t.value, Ctx::Key);
        }
        Ok(KeyLoc::Built(start, keys.len()))
    }

    /// End of an unquoted field value.
    #[inline]
    fn value_end(&self, mut i: usize) -> usize {
        let b = self.buf;
        while i < b.len() && !matches!(b[i], b',' | b' ' | b'\t' | b'\n' | b'\r') {
            i += 1;
        }
        i
    }

    #[inline]
    fn number_value(&self, i: usize) -> Result<(FieldValue<'a>, usize), E> {
        // Most values are plain decimals: parse them while scanning.
        if let Some((v, end)) = scan_decimal(self.buf, i) {
            return Ok((FieldValue::Float(v), end));
        }
        self.number_value_general(i)
    }

    /// Integers, unsigned, exponents, long mantissas, and every malformed number.
    #[inline(never)]
    fn number_value_general(&self, i: usize) -> Result<(FieldValue<'a>, usize), E> {
        let end = self.value_end(i);
        let tok = &self.buf[i..end];
        let v = match tok.last() {
            Some(b'i') => {
                let digits = &tok[..tok.len() - 1];
                match parse_i64(digits) {
                    Some(Some(v)) => FieldValue::Integer(v),
                    Some(None) => {
                        let s = String::from_utf8_lossy(digits).into_owned();
                        return Err(E::IntegerOutOfRange(s));
                    }
                    None => return Err(E::InvalidNumber),
                }
            }
            Some(b'u') => {
                let digits = &tok[..tok.len() - 1];
                match parse_u64(digits) {
                    Some(Some(v)) => FieldValue::Unsigned(v),
                    // InfluxDB's scanner accepts the shape of `-1u`, then ParseUint fails.
                    _ if digits.len() > 1
                        && digits[0] == b'-'
                        && digits[1..].iter().all(u8::is_ascii_digit) =>
                    {
                        let s = String::from_utf8_lossy(digits).into_owned();
                        return Err(E::InvalidUnsigned(s));
                    }
                    Some(None) => {
                        let s = String::from_utf8_lossy(digits).into_owned();
                        return Err(E::InvalidUnsigned(s));
                    }
                    None => return Err(E::InvalidNumber),
                }
            }
            _ => FieldValue::Float(parse_float(tok)?),
        };
        Ok((v, end))
    }

    /// A quoted string starting at the quote `i`. Returns the value, the index
    /// after the closing quote, and the newlines inside it.
    fn string_value(&self, i: usize) -> Result<(FieldValue<'a>, usize, usize), E> {
        let b = self.buf;
        let s = i + 1;
        let mut j = s;
        let mut esc = false;
        loop {
            match memchr::memchr2(b'"', b'\\', b.get(j..).unwrap_or_default()) {
                None => return Err(E::UnbalancedQuotes),
                Some(o) if b[j + o] == b'\\' => {
                    esc = true;
                    j += o + 2;
                }
                Some(o) => {
                    j += o;
                    break;
                }
            }
        }
        let raw = self.str(s, j)?;
        let value = unescape(raw, Ctx::StringField, esc);
        if value.len() > MAX_STRING_FIELD_LENGTH {
            return Err(E::StringFieldTooLong(value.len()));
        }
        let newlines = memchr::memchr_iter(b'\n', raw.as_bytes()).count();
        Ok((FieldValue::String(value), j + 1, newlines))
    }

    /// Appends a field; a repeated key overwrites the earlier value (last wins).
    #[inline]
    fn push_field(&mut self, field_lo: usize, key: Cow<'a, str>, value: FieldValue<'a>) {
        let fp = fingerprint(key.as_bytes());
        for (j, &f) in self.fingerprints.iter().enumerate() {
            if f == fp && self.out.fields[field_lo + j].key == key {
                self.out.fields[field_lo + j].value = value;
                return;
            }
        }
        self.fingerprints.push(fp);
        self.out.fields.push(Field { key, value });
    }
}

fn idx(i: usize) -> Result<u32, E> {
    // A body has far fewer than 4 G tags/fields (it is bounded by max-body-size).
    u32::try_from(i).map_err(|_| E::InvalidFieldFormat)
}

#[inline]
fn parse_bool(tok: &[u8]) -> Result<FieldValue<'static>, E> {
    match tok {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Ok(FieldValue::Boolean(true)),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Ok(FieldValue::Boolean(false)),
        _ => Err(E::InvalidBoolean),
    }
}

/// The first 8 bytes of a key as a big-endian integer (zero padded): orders
/// like the bytes themselves, except that ties need a full compare.
#[inline]
fn key_prefix(k: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = k.len().min(8);
    a[..n].copy_from_slice(&k[..n]);
    u64::from_be_bytes(a)
}

/// A one-byte hash of a field key, O(1) in the key length.
#[inline]
fn fingerprint(k: &[u8]) -> u8 {
    let n = k.len();
    let word = |s: &[u8]| {
        let mut a = [0u8; 8];
        a[..s.len()].copy_from_slice(s);
        u64::from_le_bytes(a)
    };
    let v = if n >= 8 {
        word(&k[..8]) ^ word(&k[n - 8..]).rotate_left(29)
    } else {
        word(k)
    };
    ((v ^ n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 56) as u8
}

/// Finds the end of the (bad) line starting at `start` by InfluxDB's rule:
/// newlines inside a quoted field value do not end it. If a quote never
/// closes, the line ends at the first newline instead.
fn scan_line(buf: &[u8], start: usize) -> usize {
    let n = buf.len();
    let mut i = start;
    let mut quoted = false;
    let mut in_fields = false;
    let (mut equals, mut commas) = (0usize, 0usize);
    while i < n {
        let c = buf[i];
        if c == b'\\' && i + 1 < n && buf[i + 1] != b'\n' {
            i += 2;
            continue;
        }
        if c == b'\n' && !quoted {
            return i;
        }
        if c == b' ' {
            in_fields = true;
        }
        if in_fields && !quoted && c == b'=' {
            equals += 1;
        } else if in_fields && !quoted && c == b',' {
            commas += 1;
        } else if in_fields && c == b'"' && equals > commas {
            quoted = !quoted;
        }
        i += 1;
    }
    if quoted {
        return memchr::memchr(b'\n', &buf[start..]).map_or(n, |o| start + o);
    }
    n
}
