//! Encoding: points to a version-1 payload.

use sundial_lineproto::{FieldValue, Point};

use super::{TYPE_BOOLEAN, TYPE_FLOAT, TYPE_INTEGER, TYPE_STRING, TYPE_UNSIGNED, VERSION};

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
pub(super) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
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
pub(super) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub(super) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}
