//! Integers (and timestamps, unsigned, decimal-encoded floats): zigzag + delta +
//! frame-of-reference bit-packing. Four modes, the smallest wins per block:
//!
//! * `RLE`      all deltas equal (regular timestamps): first value, delta.
//! * `DELTA`    `zigzag(v[i] - v[i-1])` minus its minimum, bit-packed.
//! * `RAW`      `v[i] - min(v)`, bit-packed (noisy values around a level).
//! * `DOD`      zigzag of delta-of-delta minus its minimum, bit-packed (jittery clocks).
//!
//! All arithmetic wraps, so the codec is a bijection on 64-bit patterns (i64::MIN/MAX
//! and u64 reinterpreted as i64 round-trip).

use super::bits::{pack, width, BitReader};
use super::{corrupt, get_uvarint, put_uvarint, take, unzigzag, zigzag};
use crate::error::Result;

const RLE: u8 = 0;
const DELTA: u8 = 1;
const RAW: u8 = 2;
const DOD: u8 = 3;

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
    let cost_r = packed_len(wr, n);
    let cost_dd = packed_len(wdd, n - 2) + 20;
    if cost_dd < cost_d && cost_dd < cost_r {
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
        m => return Err(corrupt(format!("unknown integer codec mode {m}"))),
    }
    Ok(out)
}
