//! The line loop: blank and comment lines, one point per line, a bad line
//! rolled back and recorded; and the token scanning shared by the parts of a
//! line.

use super::bytes::{body_str, idx, series_hash};
use super::{Cursor, Escape, Parser, RawPoint, Series, CHUNK_TEXT_WINDOW, MIN_REUSED_KEY};
use crate::error::{LineError, ParseErrorKind as E};
use crate::number::parse_i64_in;
use crate::scan::{self, Stops};
use crate::{MAX_LINE_ERRORS, MAX_NANO_TIME, MIN_NANO_TIME};
use std::collections::HashMap;

impl<'a> Parser<'a, '_> {
    pub(super) fn run_from(&mut self, from: Cursor) {
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
    pub(super) fn str(&self, a: usize, b: usize) -> Result<&'a str, E> {
        body_str(self.text, self.text_at, self.buf, a, b)
    }

    #[inline]
    pub(super) fn at_eol(&self, i: usize) -> bool {
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
    pub(super) fn scan_token(&self, i: &mut usize, stop: &Stops, rule: Escape) -> bool {
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
