//! Validation of incoming points and the binary WAL body of a write.
//!
//! ```text
//! write body   u64 keys_off | u64 names_off | u64 npoints | points | key table | name table
//! point        uvarint key_idx | i64 timestamp | uvarint nfields | u32 fields_len |
//!              per field: uvarint name_idx | u8 type | value
//! value        float: 8 bytes | integer: zigzag uvarint | unsigned: uvarint |
//!              boolean: 1 byte | string: uvarint len + bytes
//! table        uvarint n | per entry: uvarint len + bytes (series keys, field names)
//! delete body  zigzag min | zigzag max | uvarint nkeys | per key: uvarint len + bytes
//! ```
//!
//! The live write path encodes this once and then applies the *decoded* body to the
//! memtable, exactly like recovery does, so replay can never diverge from live writes.

use sundial_lineproto::{FieldValue, Point};

use crate::codec::{corrupt, get_uvarint, put_uvarint, take, unzigzag, zigzag};
use crate::error::Result;
use crate::memtable::ValRef;
use crate::types::FieldType;
use crate::util::FastMap;

pub(crate) fn value_type(v: &FieldValue<'_>) -> FieldType {
    match v {
        FieldValue::Float(_) => FieldType::Float,
        FieldValue::Integer(_) => FieldType::Integer,
        FieldValue::Unsigned(_) => FieldType::Unsigned,
        FieldValue::Boolean(_) => FieldType::Boolean,
        FieldValue::String(_) => FieldType::String,
    }
}

/// Encodes accepted points into a WAL body, straight into the frame buffer.
#[derive(Debug)]
pub(crate) struct BodyEncoder<'p> {
    names: Vec<&'p str>,
    lookup: FastMap<&'p str, u32>,
    last_keys: Vec<(&'p str, u32)>,
    keys: Vec<&'p str>,
    key_lookup: FastMap<&'p str, u32>,
    start: usize,
    npoints: u64,
}

/// Fixed part of a write body: table offsets and the point count.
const BODY_HEADER: usize = 24;

impl<'p> BodyEncoder<'p> {
    /// Start a body at the end of `frame`.
    pub fn new(frame: &mut Vec<u8>) -> Self {
        let start = frame.len();
        frame.extend_from_slice(&[0u8; BODY_HEADER]);
        BodyEncoder {
            names: Vec::new(),
            lookup: FastMap::default(),
            last_keys: Vec::new(),
            keys: Vec::new(),
            key_lookup: FastMap::default(),
            start,
            npoints: 0,
        }
    }

    #[inline]
    fn name_idx(&mut self, pos: usize, key: &'p str) -> u32 {
        // Consecutive points usually share their field list: compare before hashing.
        if let Some(&(k, i)) = self.last_keys.get(pos) {
            if k == key {
                return i;
            }
        }
        let next = self.names.len() as u32;
        let i = *self.lookup.entry(key).or_insert(next);
        if i == next {
            self.names.push(key);
        }
        if pos < self.last_keys.len() {
            self.last_keys[pos] = (key, i);
        } else {
            self.last_keys.push((key, i));
        }
        i
    }

    /// Encode one point, skipping fields named `time`. Returns the values written.
    pub fn push(&mut self, out: &mut Vec<u8>, p: &'p Point<'p>) -> usize {
        // Series keys are long; each distinct key is stored once per body.
        let next = self.keys.len() as u32;
        let ki = *self.key_lookup.entry(p.series_key).or_insert(next);
        if ki == next {
            self.keys.push(p.series_key);
        }
        put_uvarint(out, u64::from(ki));
        out.extend_from_slice(&p.timestamp.to_le_bytes());
        let nf = p.fields.iter().filter(|f| f.key != "time").count();
        put_uvarint(out, nf as u64);
        // Byte length of the fields, so readers can skip a point without decoding it.
        let len_at = out.len();
        out.extend_from_slice(&[0u8; 4]);
        let mut pos = 0;
        for f in p.fields.iter() {
            if f.key == "time" {
                continue;
            }
            let idx = self.name_idx(pos, &f.key);
            pos += 1;
            put_uvarint(out, u64::from(idx));
            out.push(value_type(&f.value) as u8);
            match &f.value {
                FieldValue::Float(v) => out.extend_from_slice(&v.to_le_bytes()),
                FieldValue::Integer(v) => put_uvarint(out, zigzag(*v)),
                FieldValue::Unsigned(v) => put_uvarint(out, *v),
                FieldValue::Boolean(v) => out.push(u8::from(*v)),
                FieldValue::String(s) => {
                    put_uvarint(out, s.len() as u64);
                    out.extend_from_slice(s.as_bytes());
                }
            }
        }
        let flen = (out.len() - len_at - 4) as u32;
        out[len_at..len_at + 4].copy_from_slice(&flen.to_le_bytes());
        self.npoints += 1;
        nf
    }

    /// The series keys of the body so far, in the order of its key table.
    pub fn keys(&self) -> &[&'p str] {
        &self.keys
    }

    /// Append the key and field-name tables and fill in the header.
    pub fn finish(self, frame: &mut Vec<u8>) {
        let keys_off = (frame.len() - self.start) as u64;
        put_uvarint(frame, self.keys.len() as u64);
        for k in &self.keys {
            put_uvarint(frame, k.len() as u64);
            frame.extend_from_slice(k.as_bytes());
        }
        let names_off = (frame.len() - self.start) as u64;
        put_uvarint(frame, self.names.len() as u64);
        for n in &self.names {
            put_uvarint(frame, n.len() as u64);
            frame.extend_from_slice(n.as_bytes());
        }
        let h = &mut frame[self.start..self.start + BODY_HEADER];
        h[0..8].copy_from_slice(&keys_off.to_le_bytes());
        h[8..16].copy_from_slice(&names_off.to_le_bytes());
        h[16..24].copy_from_slice(&self.npoints.to_le_bytes());
    }
}

fn get_str<'a>(b: &'a [u8], pos: &mut usize) -> Result<&'a str> {
    let n = get_uvarint(b, pos)?;
    let n = usize::try_from(n).map_err(|_| corrupt("length"))?;
    std::str::from_utf8(take(b, pos, n)?).map_err(|_| corrupt("WAL string is not UTF-8"))
}

#[inline(always)]
fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// A write body with its tables decoded; points are streamed with [`WriteBody::points`].
#[derive(Debug)]
pub(crate) struct WriteBody<'a> {
    pub keys: Vec<&'a str>,
    pub names: Vec<&'a str>,
    points: &'a [u8],
    npoints: u64,
}

fn table(b: &[u8], off: usize) -> Result<Vec<&str>> {
    let mut pos = off;
    let n = get_uvarint(b, &mut pos)?;
    let mut v = Vec::with_capacity((n as usize).min(b.len()));
    for _ in 0..n {
        v.push(get_str(b, &mut pos)?);
    }
    Ok(v)
}

pub(crate) fn decode_write(b: &[u8]) -> Result<WriteBody<'_>> {
    if b.len() < BODY_HEADER {
        return Err(corrupt("WAL write body too short"));
    }
    let keys_off = u64_at(b, 0);
    let names_off = u64_at(b, 8);
    let npoints = u64_at(b, 16);
    if keys_off < BODY_HEADER as u64 || keys_off > names_off || names_off > b.len() as u64 {
        return Err(corrupt("WAL table offsets out of range"));
    }
    Ok(WriteBody {
        keys: table(b, keys_off as usize)?,
        names: table(b, names_off as usize)?,
        points: &b[BODY_HEADER..keys_off as usize],
        npoints,
    })
}

/// One decoded point; its fields are read with [`PointCursor::next_field`].
#[derive(Debug)]
pub(crate) struct PointCursor<'a> {
    data: &'a [u8],
    pos: usize,
    left: u64,
    fields_left: u64,
    fields_len: usize,
    nkeys: usize,
    nnames: usize,
}

impl<'a> WriteBody<'a> {
    pub fn cursor(&self) -> PointCursor<'a> {
        PointCursor {
            data: self.points,
            pos: 0,
            left: self.npoints,
            fields_left: 0,
            fields_len: 0,
            nkeys: self.keys.len(),
            nnames: self.names.len(),
        }
    }
}

impl<'a> PointCursor<'a> {
    /// Next point: (key index, time, field count). Unread fields of the previous point
    /// must have been consumed.
    #[inline]
    pub fn next_point(&mut self) -> Result<Option<(usize, i64, u64)>> {
        if self.left == 0 {
            return Ok(None);
        }
        if self.fields_left != 0 {
            return Err(corrupt("WAL point fields not consumed"));
        }
        self.left -= 1;
        let ki = get_uvarint(self.data, &mut self.pos)? as usize;
        if ki >= self.nkeys {
            return Err(corrupt("WAL key index out of range"));
        }
        let t = take(self.data, &mut self.pos, 8)?;
        let time = u64_at(t, 0) as i64;
        let nf = get_uvarint(self.data, &mut self.pos)?;
        let l = take(self.data, &mut self.pos, 4)?;
        self.fields_len = u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize;
        self.fields_left = nf;
        Ok(Some((ki, time, nf)))
    }

    /// Skip the current point's fields, returning where they start.
    pub fn skip_fields(&mut self) -> Result<usize> {
        let start = self.pos;
        take(self.data, &mut self.pos, self.fields_len)?;
        self.fields_left = 0;
        Ok(start)
    }

    /// A cursor over `nf` fields starting at `pos` (from [`Self::skip_fields`]).
    pub fn fields_at(&self, pos: usize, nf: u64) -> PointCursor<'a> {
        PointCursor {
            data: self.data,
            pos,
            left: 0,
            fields_left: nf,
            fields_len: 0,
            nkeys: self.nkeys,
            nnames: self.nnames,
        }
    }

    #[inline(always)]
    pub fn next_field(&mut self) -> Result<(usize, ValRef<'a>)> {
        if self.fields_left == 0 {
            return Err(corrupt("WAL point has no more fields"));
        }
        self.fields_left -= 1;
        let (d, pos) = (self.data, &mut self.pos);
        let idx = get_uvarint(d, pos)? as usize;
        if idx >= self.nnames {
            return Err(corrupt("WAL field index out of range"));
        }
        let ty = take(d, pos, 1)?[0];
        let v = match FieldType::from_u8(ty) {
            Some(FieldType::Float) => ValRef::Float(f64::from_bits(u64_at(take(d, pos, 8)?, 0))),
            Some(FieldType::Integer) => ValRef::Integer(unzigzag(get_uvarint(d, pos)?)),
            Some(FieldType::Unsigned) => ValRef::Unsigned(get_uvarint(d, pos)?),
            Some(FieldType::Boolean) => ValRef::Boolean(take(d, pos, 1)?[0] != 0),
            Some(FieldType::String) => ValRef::String(get_str(d, pos)?),
            None => return Err(corrupt("WAL value type")),
        };
        Ok((idx, v))
    }
}

pub(crate) fn encode_delete(frame: &mut Vec<u8>, keys: &[&str], min: i64, max: i64) {
    put_uvarint(frame, zigzag(min));
    put_uvarint(frame, zigzag(max));
    put_uvarint(frame, keys.len() as u64);
    for k in keys {
        put_uvarint(frame, k.len() as u64);
        frame.extend_from_slice(k.as_bytes());
    }
}

pub(crate) fn decode_delete(b: &[u8]) -> Result<(i64, i64, Vec<&str>)> {
    let mut pos = 0;
    let min = unzigzag(get_uvarint(b, &mut pos)?);
    let max = unzigzag(get_uvarint(b, &mut pos)?);
    let n = get_uvarint(b, &mut pos)?;
    let mut keys = Vec::with_capacity((n as usize).min(b.len()));
    for _ in 0..n {
        keys.push(get_str(b, &mut pos)?);
    }
    Ok((min, max, keys))
}
