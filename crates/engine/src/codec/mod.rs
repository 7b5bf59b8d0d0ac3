//! Typed block codecs, written by hand.
//!
//! Every codec encodes a whole block (at most a few thousand values) and is given the
//! value count when decoding, so blocks carry no per-value framing. Each encoded value
//! stream starts with a mode byte so the writer can pick, per block, whichever
//! encoding is smallest. Decoders treat their input as untrusted: every read is
//! bounds-checked and malformed input becomes [`Error::CorruptBlock`], never a panic.

pub mod bits;
pub mod boolean;
pub mod float;
pub mod integer;
pub mod string;

use crate::error::{Error, Result};
use crate::types::{FieldType, Values};

/// Upper bound on values per block accepted by decoders (guards allocations).
pub const MAX_BLOCK_VALUES: usize = 1 << 16;

pub(crate) fn corrupt(msg: impl Into<String>) -> Error {
    Error::CorruptBlock(msg.into())
}

/// Append an unsigned LEB128 varint.
#[inline]
pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Read an unsigned LEB128 varint at `*pos`, advancing it.
#[inline(always)]
pub fn get_uvarint(data: &[u8], pos: &mut usize) -> Result<u64> {
    let mut v: u64 = 0;
    let mut shift = 0u32;
    loop {
        let b = *data.get(*pos).ok_or_else(|| corrupt("truncated varint"))?;
        *pos += 1;
        if shift == 63 && b > 1 {
            return Err(corrupt("varint overflows 64 bits"));
        }
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Ok(v);
        }
        shift += 7;
        if shift > 63 {
            return Err(corrupt("varint too long"));
        }
    }
}

#[inline]
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
pub fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Take `n` bytes at `*pos`, advancing it.
#[inline(always)]
pub fn take<'a>(data: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8]> {
    let end = pos
        .checked_add(n)
        .filter(|&e| e <= data.len())
        .ok_or_else(|| corrupt("truncated block"))?;
    let s = &data[*pos..end];
    *pos = end;
    Ok(s)
}

/// Encode a column of values with the codec for its type.
pub fn encode_values(values: &Values, out: &mut Vec<u8>) {
    encode_values_range(values, 0..values.len(), out)
}

/// Encode rows `r` of a column of values (no copy of the rows).
pub fn encode_values_range(values: &Values, r: std::ops::Range<usize>, out: &mut Vec<u8>) {
    match values {
        Values::Float(v) => float::encode(&v[r], out),
        Values::Integer(v) => integer::encode(&v[r], out),
        Values::Unsigned(v) => {
            // Same bit patterns, wrapping arithmetic: the integer codec is a bijection on u64.
            let as_i: Vec<i64> = v[r].iter().map(|&x| x as i64).collect();
            integer::encode(&as_i, out)
        }
        Values::Boolean(v) => boolean::encode(&v[r], out),
        Values::String(v) => string::encode(&v[r], out),
    }
}

/// Decode `n` values of type `ty`.
pub fn decode_values(ty: FieldType, data: &[u8], n: usize) -> Result<Values> {
    if n > MAX_BLOCK_VALUES {
        return Err(corrupt(format!("block claims {n} values")));
    }
    Ok(match ty {
        FieldType::Float => Values::Float(float::decode(data, n)?),
        FieldType::Integer => Values::Integer(integer::decode(data, n)?),
        FieldType::Unsigned => Values::Unsigned(
            integer::decode(data, n)?
                .into_iter()
                .map(|x| x as u64)
                .collect(),
        ),
        FieldType::Boolean => Values::Boolean(boolean::decode(data, n)?),
        FieldType::String => Values::String(string::decode(data, n)?),
    })
}

/// Timestamps use the integer codec, whose delta and delta-of-delta modes fit them.
pub fn encode_timestamps(ts: &[i64], out: &mut Vec<u8>) {
    integer::encode(ts, out)
}

pub fn decode_timestamps(data: &[u8], n: usize) -> Result<Vec<i64>> {
    if n > MAX_BLOCK_VALUES {
        return Err(corrupt(format!("block claims {n} timestamps")));
    }
    integer::decode(data, n)
}
