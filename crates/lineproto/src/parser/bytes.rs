//! Byte-level helpers shared by the parts of the parser: key comparison and
//! hashing (also used by the cluster's wire decoder), and body slicing.

use crate::error::ParseErrorKind as E;

/// Whether `buf[i..]` starts with `key=`. For a remembered key (no
/// delimiter, no backslash) that is exactly when scanning a key token at `i`
/// would yield `key`, so the scan can be skipped.
#[inline(always)]
pub(super) fn predicted(buf: &[u8], i: usize, key: &str) -> bool {
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
pub(super) fn body_str<'a>(
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

pub(super) fn idx(i: usize) -> Result<u32, E> {
    // A body has far fewer than 4 G tags/fields (it is bounded by max-body-size).
    u32::try_from(i).map_err(|_| E::InvalidFieldFormat)
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
