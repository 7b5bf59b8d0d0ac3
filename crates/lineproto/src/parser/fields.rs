//! The field set: keys, values, and last-wins handling of duplicate keys.

use super::bytes::predicted;
use super::{Escape, Parser, FIELD_SET_FROM};
use crate::error::ParseErrorKind as E;
use crate::escape::{unescape, Ctx};
use crate::number::{parse_float, parse_i64, parse_u64, scan_decimal};
use crate::point::{Field, FieldValue};
use crate::scan;
use crate::{MAX_KEY_LENGTH, MAX_STRING_FIELD_LENGTH};
use std::borrow::Cow;
use std::collections::hash_map::Entry;

impl<'a> Parser<'a, '_> {
    /// Parses the field set starting at `i`. Returns where it ends and the
    /// newlines inside string values.
    pub(super) fn fields(&mut self, mut i: usize, key_len: usize) -> Result<(usize, usize), E> {
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

    /// Makes this point's field keys the ones the next point is compared with.
    #[cold]
    pub(super) fn remember_fields(&mut self, field_lo: usize) {
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

#[inline]
fn parse_bool(tok: &[u8]) -> Result<FieldValue<'static>, E> {
    match tok {
        b"t" | b"T" | b"true" | b"True" | b"TRUE" => Ok(FieldValue::Boolean(true)),
        b"f" | b"F" | b"false" | b"False" | b"FALSE" => Ok(FieldValue::Boolean(false)),
        _ => Err(E::InvalidBoolean),
    }
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
