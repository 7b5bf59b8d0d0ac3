//! Reading: bytes, fixed-size values and varints off a payload.

use super::{ReadError, TYPE_FLOAT};

pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Reader<'a> {
    #[inline]
    pub(super) fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    #[inline]
    fn truncated(&self, what: &'static str, offset: usize) -> ReadError {
        ReadError::Truncated {
            what,
            offset,
            len: self.buf.len(),
        }
    }

    #[inline]
    pub(super) fn byte(&mut self, what: &'static str) -> Result<u8, ReadError> {
        match self.buf.get(self.pos) {
            Some(&c) => {
                self.pos += 1;
                Ok(c)
            }
            None => Err(self.truncated(what, self.pos)),
        }
    }

    #[inline]
    pub(super) fn bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], ReadError> {
        let buf = self.buf;
        match self
            .pos
            .checked_add(len)
            .and_then(|end| buf.get(self.pos..end))
        {
            Some(s) => {
                self.pos += len;
                Ok(s)
            }
            None => Err(self.truncated(what, self.pos)),
        }
    }

    #[inline]
    pub(super) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], ReadError> {
        match self.buf.get(self.pos..).and_then(<[u8]>::first_chunk::<N>) {
            Some(a) => {
                self.pos += N;
                Ok(*a)
            }
            None => Err(self.truncated(what, self.pos)),
        }
    }

    /// A float field's type byte and finite value, if that is what comes
    /// next; anything else (a bad float too) is left to `read_value`.
    #[inline(always)]
    pub(super) fn float_fast(&mut self) -> Option<f64> {
        let b = self.buf.get(self.pos..)?.first_chunk::<9>()?;
        let v = f64::from_bits(u64::from_le_bytes(*b[1..].first_chunk::<8>()?));
        if b[0] != TYPE_FLOAT || !v.is_finite() {
            return None;
        }
        self.pos += 9;
        Some(v)
    }

    /// An unsigned LEB128 of at most 10 bytes that fits 64 bits.
    #[inline]
    pub(super) fn uvarint(&mut self, what: &'static str) -> Result<u64, ReadError> {
        let start = self.pos;
        match self.buf.get(start) {
            Some(&c) if c < 0x80 => {
                self.pos = start + 1;
                Ok(u64::from(c))
            }
            _ => self.uvarint_long(what, start),
        }
    }

    fn uvarint_long(&mut self, what: &'static str, start: usize) -> Result<u64, ReadError> {
        let mut v = 0u64;
        let mut shift = 0u32;
        let mut pos = start;
        loop {
            let Some(&c) = self.buf.get(pos) else {
                return Err(self.truncated(what, start));
            };
            pos += 1;
            if shift == 63 && c > 1 {
                return Err(ReadError::VarintOverflow {
                    what,
                    offset: start,
                });
            }
            v |= u64::from(c & 0x7f) << shift;
            if c < 0x80 {
                self.pos = pos;
                return Ok(v);
            }
            shift += 7;
        }
    }
}
