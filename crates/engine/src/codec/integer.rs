//! Integers (and timestamps, unsigned, decimal-encoded floats): zigzag + delta +
//! frame-of-reference bit-packing. Five modes, the smallest wins per block:
//!
//! * `RLE`      all deltas equal (regular timestamps): first value, delta.
//! * `DELTA`    `zigzag(v[i] - v[i-1])` minus its minimum, bit-packed.
//! * `RAW`      `v[i] - min(v)`, bit-packed (noisy values around a level).
//! * `DOD`      zigzag of delta-of-delta minus its minimum, bit-packed (jittery clocks).
//! * `PFOR`     deltas divided by their greatest common divisor, minus their median
//!   (the usual step), zigzagged, bit-packed at the width most of them fit, with the
//!   few that do not patched in afterwards (timestamps with a late batch or a gap: a
//!   handful of exceptions instead of a wide width for the whole block;
//!   second-aligned times in nanoseconds lose their nine zero digits).
//! * `RANGE`    like `DELTA`, for deltas spanning r values where r is not a power of
//!   two: k deltas at a time as one number in base r (`r^k ≤ 2^32`), written in
//!   just the bits r^k needs: 201 possible steps (a two-decimal walk of ±1.00)
//!   take 7.75 bits a value instead of 8.
//!
//! All arithmetic wraps, so the codec is a bijection on 64-bit patterns (i64::MIN/MAX
//! and u64 reinterpreted as i64 round-trip).

use super::bits::{mask, pack, width, BitReader, BitWriter};
use super::{corrupt, get_uvarint, put_uvarint, take, unzigzag, zigzag};
use crate::error::Result;

const RLE: u8 = 0;
const DELTA: u8 = 1;
const RAW: u8 = 2;
const DOD: u8 = 3;
const PFOR: u8 = 4;
const RANGE: u8 = 5;

/// Largest range `RANGE` packs (beyond, its saving over plain widths is nil).
const MAX_RANGE: u64 = 1 << 16;

/// For range `r`: digits per group (`r^k ≤ 2^32`) and bits per full group.
fn range_group(r: u64) -> (usize, u32) {
    let (mut p, mut k) = (1u64, 0usize);
    while p * r <= 1 << 32 {
        p *= r;
        k += 1;
    }
    (k, width(p - 1))
}

/// Bits of a group of `k` digits in base `r`.
fn range_bits(r: u64, k: usize) -> u32 {
    width(r.pow(k as u32) - 1)
}

/// Bytes `RANGE` takes for `n` deltas of range `r` (none when it cannot).
fn range_len(r: u64, n: usize) -> Option<usize> {
    if !(3..=MAX_RANGE).contains(&r) || r.is_power_of_two() {
        return None;
    }
    let (k, b) = range_group(r);
    let bits = (n / k) * b as usize
        + if !n.is_multiple_of(k) {
            range_bits(r, n % k) as usize
        } else {
            0
        };
    Some(bits.div_ceil(8))
}

/// Exact division of 32-bit numbers by a fixed divisor through one multiplication
/// (Lemire, Kaser and Kurz, "Faster remainder by direct computation").
#[derive(Clone, Copy)]
struct FastDiv {
    d: u64,
    m: u64,
}

impl FastDiv {
    fn new(d: u64) -> Self {
        FastDiv {
            d,
            m: (u64::MAX / d).wrapping_add(1),
        }
    }

    /// (x / d, x % d) for x < 2^32.
    #[inline]
    fn div_rem(self, x: u64) -> (u64, u64) {
        let q = ((u128::from(self.m) * u128::from(x)) >> 64) as u64;
        (q, x - q * self.d)
    }
}

pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The deltas' common divisor (1 when there is none worth dividing by), their
/// median after dividing (the usual step, taken as the reference), and each scaled
/// delta's distance from it, zigzagged: 0 for every usual step.
fn pfor_values(v: &[i64]) -> (u64, i64, Vec<u64>) {
    let g = v
        .windows(2)
        .fold(0u64, |g, w| gcd(g, w[1].wrapping_sub(w[0]).unsigned_abs()));
    // 0: all deltas zero; above i64::MAX only for deltas of i64::MIN: no scaling.
    let g = if g == 0 || g > i64::MAX as u64 { 1 } else { g };
    let q: Vec<i64> = v
        .windows(2)
        .map(|w| w[1].wrapping_sub(w[0]) / g as i64)
        .collect();
    let mut sorted = q.clone();
    let mid = sorted.len() / 2;
    let reference = *sorted.select_nth_unstable(mid).1;
    let z = q
        .into_iter()
        .map(|x| zigzag(x.wrapping_sub(reference)))
        .collect();
    (g, reference, z)
}

/// The width that packs `z` smallest once exceptions (index gap and high bits as
/// varints) are paid for, and the encoded size at that width.
fn pfor_width(z: &[u64]) -> (u32, usize) {
    let mut count = [0usize; 65];
    for &x in z {
        count[width(x) as usize] += 1;
    }
    let (mut best_w, mut best) = (64, usize::MAX);
    for w in 0..=64u32 {
        // Exceptions: values wider than w; each costs its index gap (about a byte
        // when they are few) and its high bits.
        let exc: usize = (w as usize + 1..=64)
            .map(|bits| count[bits] * (1 + (bits - w as usize).div_ceil(7)))
            .sum();
        let cost = packed_len(w, z.len()) + exc;
        if cost < best {
            (best_w, best) = (w, cost);
        }
    }
    (best_w, best)
}

#[inline]
fn packed_len(w: u32, n: usize) -> usize {
    (w as usize * n).div_ceil(8)
}

pub fn encode(v: &[i64], out: &mut Vec<u8>) {
    let n = v.len();
    if n == 0 {
        out.push(RLE);
        return;
    }
    if n == 1 {
        out.push(RLE);
        put_uvarint(out, zigzag(v[0]));
        put_uvarint(out, 0);
        return;
    }
    let d0 = v[1].wrapping_sub(v[0]);
    // One pass gathers everything the mode choice needs.
    let (mut all_eq, mut dmin, mut dmax) = (true, u64::MAX, 0u64);
    let (mut vmin, mut vmax) = (v[0], v[0]);
    let (mut ddmin, mut ddmax) = (u64::MAX, 0u64);
    let mut prev_d = d0;
    for i in 1..n {
        let d = v[i].wrapping_sub(v[i - 1]);
        all_eq &= d == d0;
        let zd = zigzag(d);
        dmin = dmin.min(zd);
        dmax = dmax.max(zd);
        vmin = vmin.min(v[i]);
        vmax = vmax.max(v[i]);
        if i >= 2 {
            let zdd = zigzag(d.wrapping_sub(prev_d));
            ddmin = ddmin.min(zdd);
            ddmax = ddmax.max(zdd);
        }
        prev_d = d;
    }
    if all_eq {
        out.push(RLE);
        put_uvarint(out, zigzag(v[0]));
        put_uvarint(out, zigzag(d0));
        return;
    }
    let wd = width(dmax - dmin);
    let wr = width(vmax.wrapping_sub(vmin) as u64);
    let wdd = if n > 2 { width(ddmax - ddmin) } else { 64 };
    let cost_d = packed_len(wd, n - 1) + 10;
    let range = (dmax - dmin).checked_add(1);
    let cost_range = range.and_then(|r| range_len(r, n - 1)).map(|c| c + 12);
    let cost_r = packed_len(wr, n);
    let cost_dd = packed_len(wdd, n - 2) + 20;
    // Patched only when it beats every plain mode by a margin worth a second pass.
    let (g, reference, z) = pfor_values(v);
    let (wp, cost_p) = pfor_width(&z);
    let cost_p = cost_p + 20;
    let use_range = match (range, cost_range) {
        (Some(r), Some(c)) if c < cost_d && c < cost_r && c < cost_dd => Some(r),
        _ => None,
    };
    if cost_p
        < cost_d
            .min(cost_r)
            .min(cost_dd)
            .min(cost_range.unwrap_or(usize::MAX))
    {
        let exceptions: Vec<(usize, u64)> = z
            .iter()
            .enumerate()
            .filter(|(_, &x)| width(x) > wp)
            .map(|(i, &x)| (i, x >> wp))
            .collect();
        out.push(PFOR);
        put_uvarint(out, zigzag(v[0]));
        put_uvarint(out, g);
        put_uvarint(out, zigzag(reference));
        out.push(wp as u8);
        put_uvarint(out, exceptions.len() as u64);
        pack(z.iter().map(|&x| x & mask(wp)), wp, out);
        let mut last = 0;
        for (i, high) in exceptions {
            put_uvarint(out, (i - last) as u64);
            put_uvarint(out, high);
            last = i;
        }
    } else if let Some(r) = use_range {
        out.push(RANGE);
        put_uvarint(out, zigzag(v[0]));
        put_uvarint(out, dmin);
        put_uvarint(out, r);
        let (k, b) = range_group(r);
        let z: Vec<u64> = (1..n)
            .map(|i| zigzag(v[i].wrapping_sub(v[i - 1])) - dmin)
            .collect();
        let mut bw = BitWriter::new(out);
        for group in z.chunks(k) {
            let value = group.iter().rev().fold(0u64, |acc, &d| acc * r + d);
            let bits = if group.len() == k {
                b
            } else {
                range_bits(r, group.len())
            };
            bw.write(value, bits);
        }
        bw.finish();
    } else if cost_dd < cost_d && cost_dd < cost_r {
        out.push(DOD);
        put_uvarint(out, zigzag(v[0]));
        put_uvarint(out, zigzag(d0));
        put_uvarint(out, ddmin);
        out.push(wdd as u8);
        let mut prev = d0;
        let it = (2..n).map(|i| {
            let d = v[i].wrapping_sub(v[i - 1]);
            let z = zigzag(d.wrapping_sub(prev));
            prev = d;
            z - ddmin
        });
        pack(it, wdd, out);
    } else if cost_d <= cost_r {
        out.push(DELTA);
        put_uvarint(out, zigzag(v[0]));
        put_uvarint(out, dmin);
        out.push(wd as u8);
        pack(
            (1..n).map(|i| zigzag(v[i].wrapping_sub(v[i - 1])) - dmin),
            wd,
            out,
        );
    } else {
        out.push(RAW);
        put_uvarint(out, zigzag(vmin));
        out.push(wr as u8);
        pack(v.iter().map(|&x| x.wrapping_sub(vmin) as u64), wr, out);
    }
}

fn read_width(data: &[u8], pos: &mut usize) -> Result<u32> {
    let w = u32::from(take(data, pos, 1)?[0]);
    if w > 64 {
        return Err(corrupt(format!("bit width {w} > 64")));
    }
    Ok(w)
}

pub fn decode(data: &[u8], n: usize) -> Result<Vec<i64>> {
    let mut pos = 0;
    let mode = take(data, &mut pos, 1)?[0];
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    match mode {
        RLE => {
            let first = unzigzag(get_uvarint(data, &mut pos)?);
            let d = unzigzag(get_uvarint(data, &mut pos)?);
            let mut x = first;
            for _ in 0..n {
                out.push(x);
                x = x.wrapping_add(d);
            }
        }
        DELTA => {
            let first = unzigzag(get_uvarint(data, &mut pos)?);
            let min = get_uvarint(data, &mut pos)?;
            let w = read_width(data, &mut pos)?;
            let mut r = BitReader::new(&data[pos..]);
            let mut x = first;
            out.push(x);
            for _ in 1..n {
                x = x.wrapping_add(unzigzag(r.read(w)?.wrapping_add(min)));
                out.push(x);
            }
        }
        RAW => {
            let min = unzigzag(get_uvarint(data, &mut pos)?);
            let w = read_width(data, &mut pos)?;
            let mut r = BitReader::new(&data[pos..]);
            for _ in 0..n {
                out.push(min.wrapping_add(r.read(w)? as i64));
            }
        }
        DOD => {
            let first = unzigzag(get_uvarint(data, &mut pos)?);
            let mut d = unzigzag(get_uvarint(data, &mut pos)?);
            let min = get_uvarint(data, &mut pos)?;
            let w = read_width(data, &mut pos)?;
            let mut r = BitReader::new(&data[pos..]);
            let mut x = first;
            out.push(x);
            if n > 1 {
                x = x.wrapping_add(d);
                out.push(x);
            }
            for _ in 2..n {
                d = d.wrapping_add(unzigzag(r.read(w)?.wrapping_add(min)));
                x = x.wrapping_add(d);
                out.push(x);
            }
        }
        RANGE => {
            let first = unzigzag(get_uvarint(data, &mut pos)?);
            let min = get_uvarint(data, &mut pos)?;
            let r = get_uvarint(data, &mut pos)?;
            if !(3..=MAX_RANGE).contains(&r) {
                return Err(corrupt(format!("range {r} out of bounds")));
            }
            let (k, b) = range_group(r);
            let div = FastDiv::new(r);
            let mut rd = BitReader::new(&data[pos..]);
            let mut x = first;
            out.push(x);
            let mut left = n - 1;
            while left > 0 {
                let here = left.min(k);
                let bits = if here == k { b } else { range_bits(r, here) };
                let mut value = rd.read(bits)?;
                if value >= r.pow(here as u32) {
                    return Err(corrupt("range group out of bounds"));
                }
                for _ in 0..here {
                    let (q, digit) = div.div_rem(value);
                    value = q;
                    x = x.wrapping_add(unzigzag(digit.wrapping_add(min)));
                    out.push(x);
                }
                left -= here;
            }
        }
        PFOR => {
            let first = unzigzag(get_uvarint(data, &mut pos)?);
            let g = get_uvarint(data, &mut pos)?;
            let reference = unzigzag(get_uvarint(data, &mut pos)?);
            let w = read_width(data, &mut pos)?;
            let n_exc = get_uvarint(data, &mut pos)?;
            if n_exc >= n as u64 {
                return Err(corrupt(format!("{n_exc} exceptions for {n} values")));
            }
            let packed = take(data, &mut pos, packed_len(w, n - 1))?;
            let mut r = BitReader::new(packed);
            let mut z = Vec::with_capacity(n - 1);
            for _ in 1..n {
                z.push(r.read(w)?);
            }
            let mut at = 0usize;
            for _ in 0..n_exc {
                at = at
                    .checked_add(get_uvarint(data, &mut pos)? as usize)
                    .filter(|&i| i < z.len())
                    .ok_or_else(|| corrupt("exception index out of the block"))?;
                let high = get_uvarint(data, &mut pos)?;
                let shifted = if w >= 64 { 0 } else { high << w };
                z[at] |= shifted;
            }
            let mut x = first;
            out.push(x);
            for zi in z {
                let d = unzigzag(zi).wrapping_add(reference).wrapping_mul(g as i64);
                x = x.wrapping_add(d);
                out.push(x);
            }
        }
        m => return Err(corrupt(format!("unknown integer codec mode {m}"))),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(v: &[i64]) -> usize {
        let mut out = Vec::new();
        encode(v, &mut out);
        assert_eq!(decode(&out, v.len()).unwrap(), v);
        out.len()
    }

    #[test]
    fn a_late_batch_costs_exceptions_not_a_wide_block() {
        // 10 s steps in nanoseconds, with one gap of 30 min and one step back.
        let step = 10_000_000_000i64;
        let mut t: Vec<i64> = (0..1000)
            .map(|i| 1_700_000_000_000_000_000 + i * step)
            .collect();
        for x in &mut t[500..] {
            *x += 1_800_000_000_000;
        }
        t[700] -= 5 * step / 10;
        let bytes = round_trip(&t);
        // Plain deltas would need ~41 bits each (over 5 KB).
        assert!(bytes < 64, "{bytes} bytes");
        let mut out = Vec::new();
        encode(&t, &mut out);
        assert_eq!(out[0], PFOR);
    }

    #[test]
    fn patched_mode_round_trips_extremes() {
        let mut v = vec![5i64; 16];
        v[..4].copy_from_slice(&[i64::MIN, i64::MAX, 0, i64::MIN]);
        round_trip(&v);
        let mut v: Vec<i64> = (0..300).map(|i| i * 1000).collect();
        v[17] = i64::MAX;
        v[200] = i64::MIN;
        round_trip(&v);
        let mut v: Vec<i64> = (0..300).map(|i| i * 7).collect();
        v[0] = -3;
        v[299] = 1 << 62;
        round_trip(&v);
    }

    #[test]
    fn ranges_that_are_not_powers_of_two_pack_tighter() {
        // A two-decimal random walk of up to ±1.00: 201 possible steps.
        let mut x = 5000i64;
        let mut seed = 7u64;
        let v: Vec<i64> = (0..1000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                x += (seed % 201) as i64 - 100;
                x
            })
            .collect();
        let bytes = round_trip(&v);
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(out[0], RANGE);
        // 8 bits a delta would take 999 bytes.
        assert!(bytes < 980, "{bytes} bytes");
        for r in [3u64, 5, 7, 100, 201, 1000, 65535, 65536] {
            let w: Vec<i64> = (0..77)
                .map(|i| ((i * 7919) % r as i64) * if i % 2 == 0 { 1 } else { -1 })
                .collect();
            round_trip(&w);
        }
        // Every group size's tail.
        for n in 1..20 {
            let w: Vec<i64> = (0..n).map(|i| (i * 37 % 201) as i64).collect();
            round_trip(&w);
        }
        let d = FastDiv::new(201);
        for x in [0u64, 1, 200, 201, 4_294_967_295, 1_632_240_800] {
            assert_eq!(d.div_rem(x), (x / 201, x % 201));
        }
    }

    #[test]
    fn damaged_patched_blocks_are_errors() {
        let t: Vec<i64> = (0..100)
            .map(|i| if i == 50 { 1 << 40 } else { i * 10 })
            .collect();
        let mut out = Vec::new();
        encode(&t, &mut out);
        assert_eq!(out[0], PFOR);
        for cut in 0..out.len() {
            let _ = decode(&out[..cut], t.len());
        }
        for i in 1..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0xff;
            let _ = decode(&bad, t.len());
        }
    }
}
