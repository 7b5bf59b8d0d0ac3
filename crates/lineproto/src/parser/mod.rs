//! The line-protocol parser: one pass over the body, no allocation per field.
//!
//! Parsed data lands in flat vectors owned by [`ParsedBatch`] (all tags of all
//! points in one `Vec`, all fields in another, rebuilt series keys in one
//! `String`); strings borrow from the body unless they had escapes. A bad line is
//! rolled back and recorded with its line number; parsing resumes at the next line.

use crate::error::LineError;
use crate::point::{Field, Point, Tag};
use crate::precision::Precision;
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

mod bytes;
mod fields;
mod key;
mod line;

pub use bytes::{series_hash, short_eq};

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

    /// The first [`MAX_LINE_ERRORS`](crate::MAX_LINE_ERRORS) rejected lines, in body order.
    pub fn errors(&self) -> &[LineError] {
        &self.errors
    }

    /// Number of rejected lines, including those past
    /// [`MAX_LINE_ERRORS`](crate::MAX_LINE_ERRORS).
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
