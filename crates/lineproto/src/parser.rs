//! The line-protocol parser: one pass over the body, no allocation per field.
//!
//! Parsed data lands in flat vectors owned by [`ParsedBatch`] (all tags of all
//! points in one `Vec`, all fields in another, rebuilt series keys in one
//! `String`); strings borrow from the body unless they had escapes. A bad line is
//! rolled back and recorded with its line number; parsing resumes at the next line.

use crate::error::{LineError, ParseErrorKind as E};
use crate::escape::{unescape, Ctx};
use crate::number::{parse_float, parse_i64, parse_i64_in, parse_u64, scan_decimal};
use crate::point::{Field, FieldValue, Point, Tag};
use crate::precision::Precision;
use crate::scan::{self, Stops};
use crate::{
    MAX_KEY_LENGTH, MAX_LINE_ERRORS, MAX_NANO_TIME, MAX_STRING_FIELD_LENGTH, MIN_NANO_TIME,
};
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
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

/// Series keys shorter than this are parsed every time, not looked up.
const MIN_REUSED_KEY: usize = 32;
/// Fields of one point checked for duplicates by a scan of one-byte fingerprints;
/// past this a map takes over.
const FIELD_SET_FROM: usize = 32;

/// Where a point's series key lives.
#[derive(Debug, Clone, Copy)]
enum KeyLoc<'a> {
    /// Tags were already sorted: the key is a slice of the body.
    Body(&'a str),
    /// Rebuilt in sorted order into `ParsedBatch::keys[start..end]`.
    Built(usize, usize),
}

/// A parsed series key: shared by every point of the body with the same key.
#[derive(Debug)]
struct Series<'a> {
    measurement: Cow<'a, str>,
    key: KeyLoc<'a>,
    /// Range in `ParsedBatch::tags`.
    tags: (u32, u32),
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
    error_count: usize,
    lines: usize,
    /// Where the next chunk starts, when [`parse_chunk`] stopped early.
    next: Option<Cursor>,
}

/// A place in a body between lines: byte offset and 1-based line number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub offset: usize,
    pub line: usize,
}

impl Cursor {
    pub const START: Cursor = Cursor { offset: 0, line: 1 };
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

    /// The first [`MAX_LINE_ERRORS`] rejected lines, in body order.
    pub fn errors(&self) -> &[LineError] {
        &self.errors
    }

    /// Number of rejected lines, including those past [`MAX_LINE_ERRORS`].
    pub fn error_count(&self) -> usize {
        self.error_count
    }

    /// Physical lines seen (including blank and comment lines).
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Total number of field values in the good points.
    pub fn value_count(&self) -> usize {
        self.fields.len()
    }

    /// Where to resume when [`parse_chunk`] stopped before the end of the body.
    pub fn next(&self) -> Option<Cursor> {
        self.next
    }
}

/// Bytes validated as UTF-8 up front for one chunk; tokens past them are checked
/// one by one.
const CHUNK_TEXT_WINDOW: usize = 8 << 20;

/// Parses from `from` until `max_points` good points are read (stopping between
/// lines) or the body ends; [`ParsedBatch::next`] tells where to go on. Line
/// numbers stay those of the whole body. A huge body is parsed (and written) a
/// chunk at a time, so its parsed form never has to be in memory at once.
pub fn parse_chunk<'a>(
    body: &'a [u8],
    from: Cursor,
    max_points: usize,
    opts: &ParseOptions,
) -> ParsedBatch<'a> {
    let start = from.offset.min(body.len());
    let window = &body[start..body.len().min(start.saturating_add(CHUNK_TEXT_WINDOW))];
    let text = match std::str::from_utf8(window) {
        Ok(t) => t,
        // The window may cut a character (or the body is bad further on): keep
        // the valid prefix.
        Err(e) => std::str::from_utf8(&window[..e.valid_up_to()]).unwrap_or_default(),
    };
    let mut batch = ParsedBatch::default();
    Parser::new(body, Some(text), start, max_points.max(1), &mut batch, opts).run_from(from);
    batch
}

/// Parses a whole body. Good lines become points; bad lines become errors and
/// never stop the rest of the body from being read.
pub fn parse_lines<'a>(body: &'a [u8], opts: &ParseOptions) -> ParsedBatch<'a> {
    let mut batch = ParsedBatch::default();
    // One validation pass for the whole body; tokens are then sliced, not re-checked.
    let text = std::str::from_utf8(body).ok();
    Parser::new(body, text, 0, usize::MAX, &mut batch, opts).run_from(Cursor::START);
    batch
}

impl<'a, 'b> Parser<'a, 'b> {
    fn new(
        body: &'a [u8],
        text: Option<&'a str>,
        text_at: usize,
        max_points: usize,
        out: &'b mut ParsedBatch<'a>,
        opts: &ParseOptions,
    ) -> Self {
        Parser {
            buf: body,
            text,
            text_at,
            max_points,
            out,
            precision: opts.precision,
            default_time: opts.precision.truncate(opts.default_time),
            fingerprints: Vec::new(),
            field_set: HashMap::new(),
            tags: Vec::new(),
            tag_meta: Vec::new(),
            perm: Vec::new(),
            last_tags: Vec::new(),
            last_fields: Vec::new(),
            fields_match: false,
            series: HashMap::new(),
            series_hits: 0,
            series_misses: 0,
            reuse_series: true,
        }
    }
}

#[derive(Clone, Copy)]
enum Escape {
    Preceded,
    Pairs,
}

struct Parser<'a, 'b> {
    buf: &'a [u8],
    /// `buf[text_at..text_at + text.len()]`, validated as UTF-8 once.
    text: Option<&'a str>,
    text_at: usize,
    /// Stop (between lines) after this many good points.
    max_points: usize,
    out: &'b mut ParsedBatch<'a>,
    precision: Precision,
    default_time: i64,
    /// One byte of hash per field of the current point, to find duplicate keys
    /// cheaply when the point's field keys differ from the previous point's.
    fingerprints: Vec<u8>,
    /// Past [`FIELD_SET_FROM`] fields a point's keys go in a map instead (key →
    /// position in the point), so a line of a million fields is not quadratic.
    field_set: HashMap<Cow<'a, str>, usize>,
    /// The current point's tags in body order, and per tag its key's sort
    /// prefix and the body span of `,key=value`.
    tags: Vec<Tag<'a>>,
    tag_meta: Vec<(u64, usize, usize)>,
    /// The sorting permutation of the last unsorted tag set. Lines of one body
    /// mostly share their tag order, so it is tried first and checked.
    perm: Vec<u32>,
    /// Tag keys (in body order, with their sort prefixes) of the last tag set
    /// parsed in full: the next tag set's keys are first checked against them,
    /// byte for byte. Only a hint: a line that fails later may have set them.
    last_tags: Vec<(&'a str, u64)>,
    /// Field keys of the last good point (duplicate-free), and whether the
    /// current point's keys so far are the same, in the same order.
    last_fields: Vec<&'a str>,
    fields_match: bool,
    /// Series keys parsed so far, by [`series_hash`]: a point with the key and
    /// the key's span in the body. The map hashes that hash again with a random
    /// key (std's SipHash), so crafted keys cannot pile up in one part of the
    /// table; keys whose `series_hash` collide exactly share one entry, and the
    /// bytes are compared anyway.
    series: HashMap<u64, (usize, usize, usize)>,
    /// Lookups that found an earlier point, and those that did not. A body of
    /// distinct series gains nothing from the map, so it is dropped when
    /// misses outnumber hits by far.
    series_hits: usize,
    series_misses: usize,
    reuse_series: bool,
}

impl<'a> Parser<'a, '_> {
    fn run_from(&mut self, from: Cursor) {
        let buf = self.buf;
        let n = buf.len();
        let mut i = from.offset.min(n);
        let mut line = from.line;
        while i < n {
            if self.out.points.len() >= self.max_points {
                self.out.next = Some(Cursor { offset: i, line });
                self.out.lines = line - from.line;
                return;
            }
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
                    self.reserve_for_rest(start, end);
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
                    self.out.error_count += 1;
                    if self.out.errors.len() < MAX_LINE_ERRORS {
                        self.out.errors.push(LineError::new(line, text, kind));
                    }
                    line += memchr::memchr_iter(b'\n', text).count();
                    i = end;
                }
            }
        }
        self.out.lines = if n == 0 || from.offset >= n {
            0
        } else {
            line - usize::from(buf[n - 1] == b'\n') + 1 - from.line
        };
    }

    /// Sizes the arenas for the rest of the body from its first point (which
    /// spans `start..end`), so a big body does not regrow and copy them over
    /// and over. The guess scales the first point by bytes and is capped by the
    /// line count: a first point unlike the rest can make it too small (the
    /// arenas then grow as usual) but never larger than the body could fill.
    #[cold]
    fn reserve_for_rest(&mut self, start: usize, end: usize) {
        let mut rest = &self.buf[end..];
        if self.max_points != usize::MAX {
            // A chunk: only its share of the body.
            rest = &rest[..rest.len().min(CHUNK_TEXT_WINDOW)];
        }
        let lines = memchr::memchr_iter(b'\n', rest)
            .count()
            .min(self.max_points);
        let first = (end - start).max(1) as u128;
        // `x` items in `first` bytes: each takes at least a byte, so the
        // result is at most `rest.len()`.
        let guess = |x: usize| {
            let by_bytes = (x as u128 * rest.len() as u128 / first) as usize;
            by_bytes.min(lines.saturating_mul(x))
        };
        let out = &mut *self.out;
        out.points.reserve(guess(1));
        out.tags.reserve(guess(out.tags.len()));
        out.fields.reserve(guess(out.fields.len()));
        out.keys.reserve(guess(out.keys.len()));
    }

    #[inline]
    fn str(&self, a: usize, b: usize) -> Result<&'a str, E> {
        body_str(self.text, self.text_at, self.buf, a, b)
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
    fn scan_token(&self, i: &mut usize, stop: &Stops, rule: Escape) -> bool {
        let b = self.buf;
        let n = b.len();
        let mut esc = false;
        loop {
            *i = scan::find(b, *i, stop);
            if *i < n && b[*i] == b'\\' {
                esc = true;
                let next = b.get(*i + 1).copied();
                // A backslash never escapes a newline.
                let skip = match (rule, next) {
                    (_, None | Some(b'\n')) => false,
                    (Escape::Pairs, _) => true,
                    (Escape::Preceded, Some(c)) => c != b'\\' && stop.contains(c),
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

        // A series key seen earlier in this body is not parsed again: the same
        // bytes up to the first space (with no backslash before it, so the
        // space ends the key) give the same measurement, tags and key.
        let mut hash = None;
        let mut seen = None;
        let mut key_end = start;
        if self.reuse_series {
            key_end = scan::find(buf, start, &scan::SERIES);
            // A short key (a measurement and a tag or two) parses about as fast
            // as it hashes and looks up; reuse pays from a few tags on.
            if key_end < n && buf[key_end] == b' ' && key_end - start >= MIN_REUSED_KEY {
                let h = series_hash(&buf[start..key_end]);
                hash = Some(h);
                seen = match self.series.get(&h) {
                    Some(&(p, a, b)) if buf[a..b] == buf[start..key_end] => Some(p),
                    _ => None,
                };
                self.count_series_lookup(seen.is_some());
            }
        }
        let (series, mut i) = match seen {
            Some(p) => {
                let rp = &self.out.points[p];
                let series = Series {
                    measurement: rp.measurement.clone(),
                    key: rp.key,
                    tags: rp.tags,
                };
                (series, key_end)
            }
            None => self.series(start)?,
        };
        let key_len = i - start;

        // Field set.
        while i < n && (buf[i] == b' ' || buf[i] == b'\t') {
            i += 1;
        }
        if self.at_eol(i) {
            return Err(E::MissingFields);
        }
        let field_lo = self.out.fields.len();
        let (i, newlines) = self.fields(i, key_len)?;

        // Optional timestamp, then only whitespace.
        let (i, timestamp) = self.timestamp(i)?;

        let field_hi = self.out.fields.len();
        if !self.fields_match || self.last_fields.len() != field_hi - field_lo {
            self.remember_fields(field_lo);
        }
        if let (Some(h), None, true) = (hash, seen, self.reuse_series) {
            self.series
                .insert(h, (self.out.points.len(), start, key_end));
        }
        self.out.points.push(RawPoint {
            measurement: series.measurement,
            key: series.key,
            tags: series.tags,
            fields: (idx(field_lo)?, idx(field_hi)?),
            timestamp,
        });
        Ok((i, newlines))
    }

    /// Keeps the series map only while it pays: after 1,024 misses with fewer
    /// than one hit for every eight, the rest of the body is parsed without it.
    #[inline]
    fn count_series_lookup(&mut self, hit: bool) {
        if hit {
            self.series_hits += 1;
            return;
        }
        self.series_misses += 1;
        if self.series_misses > 1024 && self.series_misses > 8 * self.series_hits {
            self.reuse_series = false;
            self.series = HashMap::new();
        }
    }

    /// Parses a series key: measurement and tags. Returns it and where it ends.
    fn series(&mut self, start: usize) -> Result<(Series<'a>, usize), E> {
        let buf = self.buf;
        let n = buf.len();
        let mut i = start;

        // Measurement.
        let esc = self.scan_token(&mut i, &scan::MEASUREMENT, Escape::Preceded);
        if i == start {
            return Err(E::MissingMeasurement);
        }
        if i >= n || buf[i] == b'\n' {
            return Err(E::MissingFields);
        }
        let measurement = unescape(self.str(start, i)?, Ctx::Measurement, esc);

        // Tag set, gathered in body order.
        self.tags.clear();
        self.tag_meta.clear();
        let mut sorted = true;
        let mut tags_match = true;
        let mut prev_prefix = 0u64;
        while buf[i] == b',' {
            let comma = i;
            i += 1;
            let (key, pre) = match self.last_tags.get(self.tags.len()) {
                Some(&(k, pre)) if predicted(buf, i, k) => {
                    i += k.len();
                    (Cow::Borrowed(k), pre)
                }
                _ => {
                    tags_match = false;
                    let ks = i;
                    let kesc = self.scan_token(&mut i, &scan::KEY, Escape::Preceded);
                    if i == ks {
                        return Err(E::MissingTagKey);
                    }
                    if i >= n || buf[i] != b'=' {
                        return Err(E::MissingTagValue);
                    }
                    let key = unescape(self.str(ks, i)?, Ctx::Key, kesc);
                    let pre = key_prefix(key.as_bytes());
                    (key, pre)
                }
            };
            i += 1;
            let vs = i;
            let vesc = self.scan_token(&mut i, &scan::KEY, Escape::Preceded);
            if i < n && buf[i] == b'=' {
                return Err(E::InvalidTagFormat);
            }
            if i == vs {
                return Err(E::MissingTagValue);
            }
            let value = unescape(self.str(vs, i)?, Ctx::Key, vesc);
            if sorted {
                if let Some(prev) = self.tags.last() {
                    sorted = prev_prefix < pre || (prev_prefix == pre && prev.key < key);
                }
            }
            prev_prefix = pre;
            self.tags.push(Tag { key, value });
            self.tag_meta.push((pre, comma, i));
            if i >= n || buf[i] == b'\n' {
                return Err(E::MissingFields);
            }
        }
        let key_end = i;
        if !tags_match || self.last_tags.len() != self.tags.len() {
            self.remember_tags();
        }
        let key_len = key_end - start;
        if key_len > MAX_KEY_LENGTH {
            return Err(E::MaxKeyLength(key_len));
        }
        let tag_lo = self.out.tags.len();
        let key = if sorted {
            self.out.tags.append(&mut self.tags);
            KeyLoc::Body(self.str(start, key_end)?)
        } else {
            self.build_key(&measurement)?
        };
        let tags = (idx(tag_lo)?, idx(self.out.tags.len())?);
        let series = Series {
            measurement,
            key,
            tags,
        };
        Ok((series, key_end))
    }

    /// Parses the field set starting at `i`. Returns where it ends and the
    /// newlines inside string values.
    fn fields(&mut self, mut i: usize, key_len: usize) -> Result<(usize, usize), E> {
        let buf = self.buf;
        let n = buf.len();
        let field_lo = self.out.fields.len();
        self.fields_match = true;
        let mut newlines = 0;
        loop {
            let j = self.out.fields.len() - field_lo;
            let key = match self.last_fields.get(j) {
                Some(&k) if self.fields_match && predicted(buf, i, k) => {
                    i += k.len();
                    Cow::Borrowed(k)
                }
                _ => {
                    if self.fields_match {
                        self.stop_matching_fields(field_lo);
                    }
                    let ks = i;
                    let kesc = self.scan_token(&mut i, &scan::KEY, Escape::Pairs);
                    if i == ks {
                        return Err(E::MissingFieldKey);
                    }
                    if i >= n || buf[i] != b'=' {
                        return Err(E::InvalidFieldFormat);
                    }
                    unescape(self.str(ks, i)?, Ctx::Key, kesc)
                }
            };
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
        Ok((i, newlines))
    }

    /// Reads the optional timestamp at `i` and the whitespace after it.
    /// Returns the line end and the time in nanoseconds.
    #[inline]
    fn timestamp(&self, mut i: usize) -> Result<(usize, i64), E> {
        let buf = self.buf;
        let n = buf.len();
        let mut timestamp = self.default_time;
        while i < n && (buf[i] == b' ' || buf[i] == b'\t') {
            i += 1;
        }
        if !self.at_eol(i) {
            let ts = i;
            i = scan::find(buf, i, &scan::TIMESTAMP);
            let raw = match parse_i64_in(buf, ts, i) {
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

        Ok((i, timestamp))
    }

    /// Sorts the point's tags into `out.tags` and writes the canonical series
    /// key into `out.keys`.
    #[inline(never)]
    fn build_key(&mut self, measurement: &Cow<'a, str>) -> Result<KeyLoc<'a>, E> {
        let (tags, meta) = (&self.tags, &self.tag_meta);
        // Strictly increasing keys: compare 8-byte prefixes, whole keys on ties.
        let less = |a: u32, b: u32| {
            let (a, b) = (a as usize, b as usize);
            meta[a].0 < meta[b].0 || (meta[a].0 == meta[b].0 && tags[a].key < tags[b].key)
        };
        // The previous permutation is right iff it sorts these keys strictly
        // (which also rules out duplicates); that check is a handful of
        // integer compares, a sort is a hundred.
        let reuse = self.perm.len() == tags.len() && self.perm.windows(2).all(|w| less(w[0], w[1]));
        if !reuse {
            self.perm.clear();
            self.perm.extend(0..tags.len() as u32);
            self.perm.sort_unstable_by(|&a, &b| {
                let (x, y) = (a as usize, b as usize);
                meta[x]
                    .0
                    .cmp(&meta[y].0)
                    .then_with(|| tags[x].key.cmp(&tags[y].key))
            });
            if !self.perm.windows(2).all(|w| less(w[0], w[1])) {
                return Err(E::DuplicateTags);
            }
        }
        let keys = &mut self.out.keys;
        let key_start = keys.len();
        match measurement {
            // Borrowed tokens had no backslash, hence nothing to escape (a
            // measurement's '=' is never escaped): copy the body's bytes.
            Cow::Borrowed(m) => keys.push_str(m),
            Cow::Owned(o) => crate::escape::escape_into(keys, o, Ctx::Measurement),
        }
        for &j in &self.perm {
            let j = j as usize;
            let t = std::mem::take(&mut self.tags[j]);
            match (&t.key, &t.value) {
                // `,key=value` straight from the body.
                (Cow::Borrowed(_), Cow::Borrowed(_)) => {
                    let (_, a, b) = self.tag_meta[j];
                    keys.push_str(body_str(self.text, self.text_at, self.buf, a, b)?);
                }
                (k, v) => {
                    keys.push(',');
                    crate::escape::escape_into(keys, k, Ctx::Key);
                    keys.push('=');
                    crate::escape::escape_into(keys, v, Ctx::Key);
                }
            }
            self.out.tags.push(t);
        }
        Ok(KeyLoc::Built(key_start, keys.len()))
    }

    /// End of an unquoted field value.
    #[inline]
    fn value_end(&self, i: usize) -> usize {
        scan::find(self.buf, i, &scan::VALUE)
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
    #[inline(always)]
    fn push_field(&mut self, field_lo: usize, key: Cow<'a, str>, value: FieldValue<'a>) {
        if self.fields_match {
            // Same keys in the same order as the last point, which had no
            // duplicates: this one cannot be a duplicate either.
            self.out.fields.push(Field { key, value });
            return;
        }
        let count = self.out.fields.len() - field_lo;
        if count >= FIELD_SET_FROM {
            return self.push_field_by_set(field_lo, count, key, value);
        }
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

    #[cold]
    fn push_field_by_set(
        &mut self,
        field_lo: usize,
        count: usize,
        key: Cow<'a, str>,
        value: FieldValue<'a>,
    ) {
        if self.field_set.is_empty() {
            let fields = self.out.fields[field_lo..].iter().enumerate();
            self.field_set
                .extend(fields.map(|(j, f)| (f.key.clone(), j)));
        }
        match self.field_set.entry(key) {
            Entry::Occupied(e) => self.out.fields[field_lo + *e.get()].value = value,
            Entry::Vacant(e) => {
                let key = e.key().clone();
                e.insert(count);
                self.out.fields.push(Field { key, value });
            }
        }
    }

    /// The point's field keys stopped following the last point's: from here
    /// on, duplicates are looked for by fingerprint.
    #[cold]
    fn stop_matching_fields(&mut self, field_lo: usize) {
        self.fields_match = false;
        self.fingerprints.clear();
        self.field_set.clear();
        let keys = self.out.fields[field_lo..].iter();
        self.fingerprints
            .extend(keys.map(|f| fingerprint(f.key.as_bytes())));
    }

    /// Makes this point's tag keys (body order) the next point's prediction.
    #[cold]
    fn remember_tags(&mut self) {
        self.last_tags.clear();
        for (t, m) in self.tags.iter().zip(&self.tag_meta) {
            match t.key {
                Cow::Borrowed(k) => self.last_tags.push((k, m.0)),
                // Unescaped keys do not live in the body: predict no further.
                Cow::Owned(_) => return,
            }
        }
    }

    /// Makes this point's field keys the ones the next point is compared with.
    #[cold]
    fn remember_fields(&mut self, field_lo: usize) {
        self.last_fields.clear();
        for f in &self.out.fields[field_lo..] {
            match f.key {
                Cow::Borrowed(k) => self.last_fields.push(k),
                // Unescaped keys do not live in the body; compare nothing.
                Cow::Owned(_) => {
                    self.last_fields.clear();
                    return;
                }
            }
        }
    }
}

/// Whether `buf[i..]` starts with `key=`. For a remembered key (no
/// delimiter, no backslash) that is exactly when scanning a key token at `i`
/// would yield `key`, so the scan can be skipped.
#[inline(always)]
fn predicted(buf: &[u8], i: usize, key: &str) -> bool {
    let k = key.as_bytes();
    buf.get(i..i + k.len() + 1)
        .is_some_and(|s| s[k.len()] == b'=' && short_eq(&s[..k.len()], k))
}

/// `a == b` for slices of equal length, without a `memcmp` call for the
/// short keys line protocol is made of: two overlapping word compares. Public for
/// the other decoders of points (the cluster's wire format).
#[inline(always)]
pub fn short_eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let w8 = |s: &[u8]| s.first_chunk::<8>().map(|c| u64::from_le_bytes(*c));
    let l8 = |s: &[u8]| s.last_chunk::<8>().map(|c| u64::from_le_bytes(*c));
    let w4 = |s: &[u8]| s.first_chunk::<4>().map(|c| u32::from_le_bytes(*c));
    let l4 = |s: &[u8]| s.last_chunk::<4>().map(|c| u32::from_le_bytes(*c));
    match n {
        8..=16 => w8(a) == w8(b) && l8(a) == l8(b),
        4..=7 => w4(a) == w4(b) && l4(a) == l4(b),
        _ => a == b,
    }
}

/// `buf[a..b]` as text, through the body's one UTF-8 check when it passed.
#[inline(always)]
fn body_str<'a>(
    text: Option<&'a str>,
    text_at: usize,
    buf: &'a [u8],
    a: usize,
    b: usize,
) -> Result<&'a str, E> {
    // Inside the validated text a token is a slice of it; outside (before
    // `text_at` the offsets wrap and `get` refuses) it is checked on its own.
    match text.and_then(|t| t.get(a.wrapping_sub(text_at)..b.wrapping_sub(text_at))) {
        Some(s) => Ok(s),
        None => std::str::from_utf8(&buf[a..b]).map_err(|_| E::InvalidUtf8),
    }
}

/// A 64-bit hash of a series key's bytes, 16 bytes a step in two lanes (a
/// key is a few hundred bytes; a byte-wise hash would cost more than the
/// parse it saves). It is not keyed: the map hashes it again with a random
/// key, and equal hashes are confirmed by comparing the bytes. Public for the
/// other decoders of points (the cluster's wire format).
#[inline]
pub fn series_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let chunks = b.chunks_exact(16);
    let rest = chunks.remainder();
    let (mut x, mut y) = (b.len() as u64, K);
    let mut mix = |v: u128| {
        x = (x ^ v as u64).wrapping_mul(K).rotate_left(31);
        y = (y ^ (v >> 64) as u64).wrapping_mul(K).rotate_left(27);
    };
    for c in chunks.filter_map(<[u8]>::first_chunk::<16>) {
        mix(u128::from_le_bytes(*c));
    }
    let mut tail = [0u8; 16];
    tail[..rest.len()].copy_from_slice(rest);
    mix(u128::from_le_bytes(tail));
    let h = (x ^ y.rotate_left(17)).wrapping_mul(K);
    h ^ (h >> 29)
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

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn short_eq_is_slice_equality() {
        let base: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
        for n in 0..=base.len() {
            let a = &base[..n];
            assert!(short_eq(a, a), "{n}");
            for k in 0..n {
                let mut b = a.to_vec();
                b[k] ^= 0x20;
                assert!(!short_eq(a, &b), "{n} differs at {k}");
            }
            if n > 0 {
                assert!(!short_eq(a, &base[..n - 1]));
            }
        }
    }

    #[test]
    fn series_hash_depends_on_every_byte_and_the_length() {
        let key = b"cpu,hostname=host_0,region=us-east-1,datacenter=us-east-1a,rack=4";
        let h = series_hash(key);
        for k in 0..key.len() {
            let mut other = key.to_vec();
            other[k] ^= 1;
            assert_ne!(series_hash(&other), h, "byte {k}");
        }
        assert_ne!(series_hash(&key[..key.len() - 1]), h);
        assert_ne!(series_hash(b""), series_hash(b"\0"));
    }
}
