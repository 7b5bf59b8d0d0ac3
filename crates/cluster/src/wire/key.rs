//! Series keys: splitting a canonical key into measurement and tags.

use std::borrow::Cow;

use sundial_lineproto::Tag;

use super::messages::quote;
use super::KeyProblem;

/// Splits a canonical series key into its measurement (returned) and tags
/// (appended to `tags`, unescaped), checking that it is canonical.
pub(super) fn split_key<'a>(
    key: &'a str,
    tags: &mut Vec<Tag<'a>>,
) -> Result<Cow<'a, str>, KeyProblem> {
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
