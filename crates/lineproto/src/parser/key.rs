//! The series key: measurement and tags, sorted into the canonical key when
//! the body's order is not.

use super::bytes::{body_str, idx, predicted};
use super::{Escape, KeyLoc, Parser, Series};
use crate::error::ParseErrorKind as E;
use crate::escape::{unescape, Ctx};
use crate::point::Tag;
use crate::scan;
use crate::MAX_KEY_LENGTH;
use std::borrow::Cow;

impl<'a> Parser<'a, '_> {
    /// Parses a series key: measurement and tags. Returns it and where it ends.
    pub(super) fn series(&mut self, start: usize) -> Result<(Series<'a>, usize), E> {
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
