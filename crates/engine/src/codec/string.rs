//! Strings: varint lengths then bytes, zstd-compressed when that helps.

use super::{corrupt, get_uvarint, put_uvarint, take};
use crate::error::Result;

const PLAIN: u8 = 0;
const ZSTD: u8 = 1;
/// Refuse to inflate beyond this (a corrupt size must not trigger a huge allocation).
pub(crate) const MAX_RAW: u64 = 256 << 20;

pub fn encode(v: &[String], out: &mut Vec<u8>) {
    let mut raw = Vec::with_capacity(v.iter().map(|s| s.len() + 2).sum());
    for s in v {
        put_uvarint(&mut raw, s.len() as u64);
        raw.extend_from_slice(s.as_bytes());
    }
    if raw.len() >= 64 {
        if let Ok(z) = zstd::bulk::compress(&raw, 3) {
            if z.len() + 10 < raw.len() {
                out.push(ZSTD);
                put_uvarint(out, raw.len() as u64);
                out.extend_from_slice(&z);
                return;
            }
        }
    }
    out.push(PLAIN);
    out.extend_from_slice(&raw);
}

pub fn decode(data: &[u8], n: usize) -> Result<Vec<String>> {
    let mut pos = 0;
    let mode = take(data, &mut pos, 1)?[0];
    let inflated;
    let raw: &[u8] = match mode {
        PLAIN => &data[pos..],
        ZSTD => {
            let size = get_uvarint(data, &mut pos)?;
            if size > MAX_RAW {
                return Err(corrupt(format!("string block claims {size} bytes")));
            }
            inflated = zstd::bulk::decompress(&data[pos..], size as usize)
                .map_err(|e| corrupt(format!("zstd: {e}")))?;
            &inflated
        }
        m => return Err(corrupt(format!("unknown string codec mode {m}"))),
    };
    let mut p = 0;
    let mut out = Vec::with_capacity(n.min(raw.len() + 1));
    for _ in 0..n {
        let len = get_uvarint(raw, &mut p)?;
        let len = usize::try_from(len).map_err(|_| corrupt("string length"))?;
        let bytes = take(raw, &mut p, len)?;
        let s = std::str::from_utf8(bytes).map_err(|_| corrupt("string is not UTF-8"))?;
        out.push(s.to_owned());
    }
    Ok(out)
}
