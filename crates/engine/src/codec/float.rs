//! Floats: Gorilla XOR, or a decimal codec in the spirit of ALP when it wins.
//!
//! Decimal mode: if every value `v` in the block equals `(i as f64) / 10^e` for some
//! integer `i` and one exponent `e` (bit-exact, so -0.0, NaN and infinities never
//! qualify), the integers go through the integer codec. Sensor values such as `23.45`
//! become small deltas of 2345-ish and pack into a few bits. Otherwise the block uses
//! Gorilla XOR, which keeps every bit pattern (NaN payloads included).

use super::bits::{BitReader, BitWriter};
use super::{corrupt, integer, take};
use crate::error::Result;

const GORILLA: u8 = 0;
const DECIMAL: u8 = 1;
const MAX_EXP: usize = 15;
/// Integers above this lose exactness as f64; refuse them.
const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53

const POW10: [f64; MAX_EXP + 1] = [
    1.0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
];

#[inline]
fn decimal_of(v: f64, e: usize) -> Option<i64> {
    let r = (v * POW10[e]).round();
    // Also rejects NaN (which compares as unordered).
    if r.abs().partial_cmp(&MAX_EXACT) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    let i = r as i64;
    ((i as f64) / POW10[e])
        .to_bits()
        .eq(&v.to_bits())
        .then_some(i)
}

/// The smallest exponent `e` at which every value is `i / 10^e` exactly, with the
/// integers (block statistics store decimal values this way).
///
/// A value exact at one exponent need not be at a larger one (`90.1283965645679`
/// is `i / 10^13` but at 10^14 its integer passes 2^53), so the integers are
/// taken again from the first value whenever a value raises the exponent.
pub(crate) fn as_decimals(v: &[f64]) -> Option<(u8, Vec<i64>)> {
    let mut e = 0usize;
    let mut ints = Vec::with_capacity(v.len());
    'exponent: loop {
        ints.clear();
        for &x in v {
            match decimal_of(x, e) {
                Some(i) => ints.push(i),
                None => {
                    // Raise to where this value fits, then take them all again.
                    while decimal_of(x, e).is_none() {
                        e += 1;
                        if e > MAX_EXP {
                            return None;
                        }
                    }
                    continue 'exponent;
                }
            }
        }
        return Some((e as u8, ints));
    }
}

/// The value of integer `i` at exponent `e` (the inverse of [`as_decimals`]).
pub(crate) fn from_decimal(i: i64, e: u8) -> Option<f64> {
    POW10.get(usize::from(e)).map(|p| i as f64 / p)
}

pub fn encode(v: &[f64], out: &mut Vec<u8>) {
    if v.len() >= 2 {
        if let Some((e, ints)) = as_decimals(v) {
            let start = out.len();
            out.push(DECIMAL);
            out.push(e);
            integer::encode(&ints, out);
            // Keep it only if it beats Gorilla's best case of ~1 bit per repeated value.
            let dec_len = out.len() - start;
            let mut g = Vec::with_capacity(dec_len + 16);
            gorilla_encode(v, &mut g);
            if g.len() < dec_len {
                out.truncate(start);
                out.extend_from_slice(&g);
            }
            return;
        }
    }
    gorilla_encode(v, out);
}

/// Gorilla XOR alone, whatever the values (benchmarks compare against it).
pub fn gorilla_encode(v: &[f64], out: &mut Vec<u8>) {
    out.push(GORILLA);
    let Some(first) = v.first() else {
        return;
    };
    let mut w = BitWriter::new(out);
    let mut prev = first.to_bits();
    w.write(prev, 64);
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for x in &v[1..] {
        let cur = x.to_bits();
        let xor = cur ^ prev;
        prev = cur;
        if xor == 0 {
            w.write_bit(false);
            continue;
        }
        w.write_bit(true);
        let l = xor.leading_zeros().min(31);
        let t = xor.trailing_zeros();
        if lead != u32::MAX && l >= lead && t >= trail {
            w.write_bit(false);
            w.write(xor >> trail, 64 - lead - trail);
        } else {
            lead = l;
            trail = t;
            let sig = 64 - l - t; // 1..=64
            w.write_bit(true);
            w.write(u64::from(l), 5);
            w.write(u64::from(sig - 1), 6);
            w.write(xor >> t, sig);
        }
    }
    w.finish();
}

pub fn decode(data: &[u8], n: usize) -> Result<Vec<f64>> {
    let mut pos = 0;
    let mode = take(data, &mut pos, 1)?[0];
    match mode {
        GORILLA => gorilla_decode(&data[pos..], n),
        DECIMAL => {
            let e = usize::from(take(data, &mut pos, 1)?[0]);
            if e > MAX_EXP {
                return Err(corrupt(format!("decimal exponent {e}")));
            }
            let ints = integer::decode(&data[pos..], n)?;
            Ok(ints.into_iter().map(|i| (i as f64) / POW10[e]).collect())
        }
        m => Err(corrupt(format!("unknown float codec mode {m}"))),
    }
}

fn gorilla_decode(data: &[u8], n: usize) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let mut r = BitReader::new(data);
    let mut prev = r.read(64)?;
    out.push(f64::from_bits(prev));
    let (mut lead, mut trail) = (u32::MAX, 0u32);
    for _ in 1..n {
        if r.read_bit()? {
            if r.read_bit()? {
                lead = r.read(5)? as u32;
                let sig = r.read(6)? as u32 + 1;
                if lead + sig > 64 {
                    return Err(corrupt("gorilla window out of range"));
                }
                trail = 64 - lead - sig;
            } else if lead == u32::MAX {
                return Err(corrupt("gorilla reuses a window before defining one"));
            }
            let sig = 64 - lead - trail;
            prev ^= r.read(sig)? << trail;
        }
        out.push(f64::from_bits(prev));
    }
    Ok(out)
}
