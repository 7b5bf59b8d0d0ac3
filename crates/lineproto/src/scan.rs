//! Finding the next delimiter byte, 16 bytes at a time.
//!
//! Tokens in line protocol are short, but a byte-at-a-time loop with a table
//! lookup still costs four or five instructions per byte, and the keys are
//! half of every line. On x86-64 we compare 16 bytes against each delimiter
//! with SSE2 (part of the x86-64 baseline, so there is no runtime check);
//! elsewhere, and for the last bytes of the body, a byte table is used.

/// A set of up to five delimiter bytes (repeat one to fill the slots).
#[derive(Debug)]
pub(crate) struct Stops {
    bytes: [u8; 5],
    table: [bool; 256],
}

impl Stops {
    pub(crate) const fn new(bytes: [u8; 5]) -> Self {
        let mut table = [false; 256];
        let mut i = 0;
        while i < 5 {
            table[bytes[i] as usize] = true;
            i += 1;
        }
        Stops { bytes, table }
    }

    #[inline(always)]
    pub(crate) fn contains(&self, c: u8) -> bool {
        self.table[c as usize]
    }
}

/// Ends or escapes a measurement.
pub(crate) static MEASUREMENT: Stops = Stops::new([b'\\', b',', b' ', b'\n', b'\n']);
/// Ends or escapes a tag key, tag value or field key.
pub(crate) static KEY: Stops = Stops::new([b'\\', b',', b'=', b' ', b'\n']);
/// Ends a series key that has no escapes (or stops at its first backslash).
pub(crate) static SERIES: Stops = Stops::new([b' ', b'\\', b'\n', b'\n', b'\n']);
/// Ends an unquoted field value.
pub(crate) static VALUE: Stops = Stops::new([b',', b' ', b'\t', b'\n', b'\r']);
/// Ends a timestamp.
pub(crate) static TIMESTAMP: Stops = Stops::new([b' ', b'\t', b'\n', b'\r', b'\r']);

/// Index of the first byte at or after `i` that is in `stops`, or `buf.len()`.
#[inline(always)]
pub(crate) fn find(buf: &[u8], mut i: usize, stops: &Stops) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    while let Some(chunk) = buf.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        let mask = sse2_mask(chunk, &stops.bytes);
        if mask != 0 {
            return i + mask.trailing_zeros() as usize;
        }
        i += 16;
    }
    while i < buf.len() && !stops.contains(buf[i]) {
        i += 1;
    }
    i
}

/// Bit `k` set when `chunk[k]` is one of `bytes`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[allow(unsafe_code)]
#[inline(always)]
fn sse2_mask(chunk: &[u8; 16], bytes: &[u8; 5]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    // SAFETY: SSE2 is enabled at compile time (the cfg above), and the
    // unaligned load reads exactly the 16 bytes `chunk` borrows.
    unsafe {
        let v = _mm_loadu_si128(chunk.as_ptr().cast());
        let eq = |c: u8| _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
        let any = _mm_or_si128(
            _mm_or_si128(eq(bytes[0]), eq(bytes[1])),
            _mm_or_si128(_mm_or_si128(eq(bytes[2]), eq(bytes[3])), eq(bytes[4])),
        );
        _mm_movemask_epi8(any) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector path and the byte loop agree at every offset and length,
    /// including matches in the last, partial chunk.
    #[test]
    fn find_matches_a_byte_loop() {
        let text = b"cpu,host=a\\ b,region=us-west c=1,d=\"x y\"\t2\r\n#comment\nmem free=3i 4";
        for stops in [&MEASUREMENT, &KEY, &SERIES, &VALUE, &TIMESTAMP] {
            for len in 0..=text.len() {
                let buf = &text[..len];
                for i in 0..=len {
                    let want = (i..len).find(|&j| stops.contains(buf[j])).unwrap_or(len);
                    assert_eq!(find(buf, i, stops), want, "len {len} from {i}");
                }
            }
        }
    }
}
