//! LSB-first bit writer/reader with a 64-bit accumulator.

use super::corrupt;
use crate::error::Result;

#[inline]
pub(crate) fn mask(w: u32) -> u64 {
    if w >= 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

/// Number of bits needed to represent `v` (0 for 0).
#[inline]
pub fn width(v: u64) -> u32 {
    64 - v.leading_zeros()
}

#[derive(Debug)]
pub struct BitWriter<'a> {
    buf: &'a mut Vec<u8>,
    acc: u64,
    nbits: u32,
}

impl<'a> BitWriter<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        BitWriter {
            buf,
            acc: 0,
            nbits: 0,
        }
    }

    /// Write the low `w` bits of `v` (`w <= 64`).
    #[inline]
    pub fn write(&mut self, v: u64, w: u32) {
        if w == 0 {
            return;
        }
        let v = v & mask(w);
        self.acc |= v << self.nbits;
        let total = self.nbits + w;
        if total >= 64 {
            self.buf.extend_from_slice(&self.acc.to_le_bytes());
            let consumed = 64 - self.nbits;
            self.acc = if consumed >= 64 { 0 } else { v >> consumed };
            self.nbits = total - 64;
        } else {
            self.nbits = total;
        }
    }

    #[inline]
    pub fn write_bit(&mut self, b: bool) {
        self.write(u64::from(b), 1)
    }

    /// Flush the pending bits (padded to a byte).
    pub fn finish(self) {
        let bytes = self.nbits.div_ceil(8) as usize;
        self.buf.extend_from_slice(&self.acc.to_le_bytes()[..bytes]);
    }
}

#[derive(Debug)]
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u64,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader {
            data,
            pos: 0,
            acc: 0,
            nbits: 0,
        }
    }

    /// Read `w` bits (`w <= 64`).
    #[inline]
    pub fn read(&mut self, w: u32) -> Result<u64> {
        if w == 0 {
            return Ok(0);
        }
        if self.nbits >= w {
            let out = self.acc & mask(w);
            self.acc = if w >= 64 { 0 } else { self.acc >> w };
            self.nbits -= w;
            return Ok(out);
        }
        let have = self.nbits;
        let low = self.acc;
        let rest = &self.data[self.pos.min(self.data.len())..];
        let n = rest.len().min(8);
        if n == 0 {
            return Err(corrupt("bit stream truncated"));
        }
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&rest[..n]);
        self.pos += n;
        let fresh = u64::from_le_bytes(b);
        let fresh_bits = (n * 8) as u32;
        let need = w - have;
        if need > fresh_bits {
            return Err(corrupt("bit stream truncated"));
        }
        let out = low | ((fresh & mask(need)) << have);
        self.acc = if need >= 64 { 0 } else { fresh >> need };
        self.nbits = fresh_bits - need;
        Ok(out)
    }

    #[inline]
    pub fn read_bit(&mut self) -> Result<bool> {
        Ok(self.read(1)? == 1)
    }
}

/// Pack every value with the same width.
pub fn pack(values: impl Iterator<Item = u64>, w: u32, out: &mut Vec<u8>) {
    let mut bw = BitWriter::new(out);
    for v in values {
        bw.write(v, w);
    }
    bw.finish();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_widths() {
        let mut buf = Vec::new();
        let mut w = BitWriter::new(&mut buf);
        let items: Vec<(u64, u32)> = (0..=64u32)
            .map(|w| (u64::MAX.wrapping_mul(0x9E37_79B9_7F4A_7C15) & mask(w), w))
            .collect();
        for &(v, wd) in &items {
            w.write(v, wd);
        }
        w.finish();
        let mut r = BitReader::new(&buf);
        for &(v, wd) in &items {
            assert_eq!(r.read(wd).unwrap(), v, "width {wd}");
        }
    }
}
