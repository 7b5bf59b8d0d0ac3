//! Booleans: one bit each.

use super::bits::{BitReader, BitWriter};
use crate::error::Result;

pub fn encode(v: &[bool], out: &mut Vec<u8>) {
    let mut w = BitWriter::new(out);
    for &b in v {
        w.write_bit(b);
    }
    w.finish();
}

pub fn decode(data: &[u8], n: usize) -> Result<Vec<bool>> {
    let mut r = BitReader::new(data);
    (0..n).map(|_| r.read_bit()).collect()
}
