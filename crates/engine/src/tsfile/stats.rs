//! Per-block value statistics (IoTDB's chunk and page statistics): count, first and
//! last with their times, and per type min and max (with the time of each, the
//! earliest on ties, as InfluxDB's selectors pick) and sum. The query engine answers
//! count/sum/mean/min/max/first/last over a block that lies wholly inside a window
//! from these alone, without reading or decoding the block.

use std::ops::Range;

use crate::codec::{corrupt, get_uvarint, put_uvarint, take, unzigzag, zigzag};
use crate::error::Result;
use crate::types::{FieldType, Values};

/// Float statistics stored as raw bits (not as decimals).
const RAW_FLOATS: u8 = 0xff;

/// Statistics of the values of one field in one block.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockStats {
    pub count: u32,
    /// Time of the first and the last value.
    pub first_time: i64,
    pub last_time: i64,
    pub values: TypedStats,
}

/// The part of [`BlockStats`] that depends on the field's type. Sums wrap on
/// overflow for integers, as InfluxDB's do; float sums add in time order.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedStats {
    Float(NumStats<f64>),
    Integer(NumStats<i64>),
    Unsigned(NumStats<u64>),
    Boolean {
        trues: u32,
        first: bool,
        last: bool,
    },
    /// Strings keep only count and times: a first or last value can be 1 MiB.
    String,
}

/// Statistics of numbers: min and max with the time of each (the earliest on
/// ties), sum, first and last.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumStats<T> {
    pub min: T,
    pub min_time: i64,
    pub max: T,
    pub max_time: i64,
    pub sum: T,
    pub first: T,
    pub last: T,
}

impl<T: Copy + PartialOrd> NumStats<T> {
    /// Of non-empty `v` at `times`, with `sum` computed by the caller (per type).
    fn of(times: &[i64], v: &[T], sum: T) -> Self {
        let (mut lo, mut hi) = (0, 0);
        for i in 1..v.len() {
            if v[i] < v[lo] {
                lo = i;
            }
            if v[i] > v[hi] {
                hi = i;
            }
        }
        NumStats {
            min: v[lo],
            min_time: times[lo],
            max: v[hi],
            max_time: times[hi],
            sum,
            first: v[0],
            last: v[v.len() - 1],
        }
    }

    /// Writes the two times (relative, through `rel`) and the five values.
    fn encode(&self, rel: impl Fn(i64) -> u64, put: impl Fn(T, &mut Vec<u8>), out: &mut Vec<u8>) {
        put_uvarint(out, rel(self.min_time));
        put_uvarint(out, rel(self.max_time));
        for x in [self.min, self.max, self.sum, self.first, self.last] {
            put(x, out);
        }
    }

    /// Reads what [`NumStats::encode`] wrote.
    fn decode(
        b: &[u8],
        pos: &mut usize,
        time: &dyn Fn(&[u8], &mut usize) -> Result<i64>,
        get: impl Fn(&[u8], &mut usize) -> Result<T>,
    ) -> Result<Self> {
        let (min_time, max_time) = (time(b, pos)?, time(b, pos)?);
        Ok(NumStats {
            min: get(b, pos)?,
            min_time,
            max: get(b, pos)?,
            max_time,
            sum: get(b, pos)?,
            first: get(b, pos)?,
            last: get(b, pos)?,
        })
    }
}

impl BlockStats {
    /// Statistics of a sorted column (`None` when empty).
    pub fn of(times: &[i64], values: &Values) -> Option<BlockStats> {
        BlockStats::of_range(times, values, 0..times.len())
    }

    /// Statistics of rows `r` of a sorted column (`None` when empty).
    pub fn of_range(times: &[i64], values: &Values, r: Range<usize>) -> Option<BlockStats> {
        if r.is_empty() || r.end > times.len() || values.len() != times.len() {
            return None;
        }
        let times = &times[r.clone()];
        let n = times.len();
        let values = match values {
            Values::Float(v) => {
                let v = &v[r];
                TypedStats::Float(NumStats::of(times, v, v.iter().sum()))
            }
            Values::Integer(v) => {
                let v = &v[r];
                let sum = v.iter().fold(0i64, |a, &x| a.wrapping_add(x));
                TypedStats::Integer(NumStats::of(times, v, sum))
            }
            Values::Unsigned(v) => {
                let v = &v[r];
                let sum = v.iter().fold(0u64, |a, &x| a.wrapping_add(x));
                TypedStats::Unsigned(NumStats::of(times, v, sum))
            }
            Values::Boolean(v) => {
                let v = &v[r];
                TypedStats::Boolean {
                    trues: v.iter().filter(|&&b| b).count() as u32,
                    first: v[0],
                    last: v[n - 1],
                }
            }
            Values::String(_) => TypedStats::String,
        };
        Some(BlockStats {
            count: n as u32,
            first_time: times[0],
            last_time: times[n - 1],
            values,
        })
    }

    /// Append the statistics; `count` is written by the caller (the index entry
    /// names it anyway). Times are offsets from `base` (the block's first row) in
    /// units of `unit` (the common divisor of the block's time offsets, so that
    /// they take a byte or two).
    pub(crate) fn encode(&self, base: i64, unit: u64, out: &mut Vec<u8>) {
        let unit = unit.max(1);
        let off = |t: i64| t.wrapping_sub(base) as u64 / unit;
        put_uvarint(out, off(self.first_time));
        put_uvarint(
            out,
            self.last_time.wrapping_sub(self.first_time) as u64 / unit,
        );
        let rel = |t: i64| t.wrapping_sub(self.first_time) as u64 / unit;
        match &self.values {
            TypedStats::Float(f) => {
                put_uvarint(out, rel(f.min_time));
                put_uvarint(out, rel(f.max_time));
                // Decimal values (23.45) as integers at one exponent: a byte or two
                // each instead of eight. The sum stays a float (it need not be a
                // short decimal).
                match crate::codec::float::as_decimals(&[f.min, f.max, f.first, f.last]) {
                    Some((e, ints)) => {
                        out.push(e);
                        for i in ints {
                            put_uvarint(out, zigzag(i));
                        }
                    }
                    None => {
                        out.push(RAW_FLOATS);
                        for x in [f.min, f.max, f.first, f.last] {
                            out.extend_from_slice(&x.to_le_bytes());
                        }
                    }
                }
                out.extend_from_slice(&f.sum.to_le_bytes());
            }
            TypedStats::Integer(n) => n.encode(rel, |x, o| put_uvarint(o, zigzag(x)), out),
            TypedStats::Unsigned(n) => n.encode(rel, |x, o| put_uvarint(o, x), out),
            TypedStats::Boolean { trues, first, last } => {
                put_uvarint(out, u64::from(*trues));
                out.push(u8::from(*first) | (u8::from(*last) << 1));
            }
            TypedStats::String => {}
        }
    }

    /// Read statistics written by [`BlockStats::encode`] for `count` values of `ty`.
    pub(crate) fn decode(
        ty: FieldType,
        count: u32,
        base: i64,
        unit: u64,
        b: &[u8],
        pos: &mut usize,
    ) -> Result<BlockStats> {
        let unit = unit.max(1);
        // Offsets wrap (a block may span the whole i64 range); the order checks
        // below catch any that wrapped past where they may.
        let scaled = |b: &[u8], pos: &mut usize| -> Result<i64> {
            get_uvarint(b, pos)?
                .checked_mul(unit)
                .map(|x| x as i64)
                .ok_or_else(|| corrupt("block statistics: time offset overflows"))
        };
        let first_time = base.wrapping_add(scaled(b, pos)?);
        let last_time = first_time.wrapping_add(scaled(b, pos)?);
        if first_time < base || last_time < first_time || (count == 1 && last_time != first_time) {
            return Err(corrupt("block statistics: bad time range"));
        }
        let time = |b: &[u8], pos: &mut usize| -> Result<i64> {
            let t = first_time.wrapping_add(scaled(b, pos)?);
            if t < first_time || t > last_time {
                return Err(corrupt("block statistics: time outside the block"));
            }
            Ok(t)
        };
        let values = match ty {
            FieldType::Float => {
                let (min_time, max_time) = (time(b, pos)?, time(b, pos)?);
                let f64_at = |b: &[u8], pos: &mut usize| -> Result<f64> {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(take(b, pos, 8)?);
                    Ok(f64::from_le_bytes(a))
                };
                let e = take(b, pos, 1)?[0];
                let mut f = [0f64; 4];
                for x in &mut f {
                    *x = if e == RAW_FLOATS {
                        f64_at(b, pos)?
                    } else {
                        crate::codec::float::from_decimal(unzigzag(get_uvarint(b, pos)?), e)
                            .ok_or_else(|| corrupt("block statistics: bad decimal exponent"))?
                    };
                }
                TypedStats::Float(NumStats {
                    min: f[0],
                    min_time,
                    max: f[1],
                    max_time,
                    sum: f64_at(b, pos)?,
                    first: f[2],
                    last: f[3],
                })
            }
            FieldType::Integer => TypedStats::Integer(NumStats::decode(b, pos, &time, |b, p| {
                Ok(unzigzag(get_uvarint(b, p)?))
            })?),
            FieldType::Unsigned => {
                TypedStats::Unsigned(NumStats::decode(b, pos, &time, get_uvarint)?)
            }
            FieldType::Boolean => {
                let trues = get_uvarint(b, pos)?;
                if trues > u64::from(count) {
                    return Err(corrupt("block statistics: more trues than values"));
                }
                let flags = take(b, pos, 1)?[0];
                TypedStats::Boolean {
                    trues: trues as u32,
                    first: flags & 1 != 0,
                    last: flags & 2 != 0,
                }
            }
            FieldType::String => TypedStats::String,
        };
        Ok(BlockStats {
            count,
            first_time,
            last_time,
            values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_ties_pick_the_earliest() {
        let times = [10, 20, 30, 40];
        let f = BlockStats::of(&times, &Values::Float(vec![23.45, 23.5, -0.01, 23.46])).unwrap();
        let mut buf = Vec::new();
        f.encode(10, 10, &mut buf);
        assert!(
            buf.len() <= 20,
            "decimal statistics stay small (raw floats: 44 bytes): {} bytes",
            buf.len()
        );
        for values in [
            Values::Float(vec![2.5, -1.0, 7.0, -1.0]),
            Values::Integer(vec![i64::MAX, 1, i64::MAX, -3]),
            Values::Unsigned(vec![u64::MAX, 0, 5, 0]),
            Values::Boolean(vec![true, false, true, true]),
            Values::String(vec!["a".into(), "b".into(), "c".into(), "d".into()]),
        ] {
            let s = BlockStats::of(&times, &values).unwrap();
            let mut buf = Vec::new();
            s.encode(5, 5, &mut buf);
            let mut pos = 0;
            let back = BlockStats::decode(values.field_type(), 4, 5, 5, &buf, &mut pos).unwrap();
            assert_eq!(back, s);
            assert_eq!(pos, buf.len());
        }
        let s = BlockStats::of(&times, &Values::Float(vec![2.5, -1.0, 7.0, -1.0])).unwrap();
        let TypedStats::Float(f) = s.values else {
            unreachable!()
        };
        assert_eq!((f.min_time, f.max_time), (20, 30));
        let s = BlockStats::of(&times, &Values::Integer(vec![i64::MAX, 1, i64::MAX, -3])).unwrap();
        assert!(matches!(
            s.values,
            TypedStats::Integer(NumStats { max_time: 10, sum, .. }) if sum == i64::MAX.wrapping_add(1).wrapping_add(i64::MAX).wrapping_sub(3)
        ));
    }

    #[test]
    fn damaged_statistics_are_an_error() {
        for v in [vec![1.5, 2.25], vec![0.1 + 0.2, f64::MIN_POSITIVE]] {
            let s = BlockStats::of(&[10, 20], &Values::Float(v)).unwrap();
            let mut buf = Vec::new();
            s.encode(0, 10, &mut buf);
            assert_eq!(
                BlockStats::decode(FieldType::Float, 2, 0, 10, &buf, &mut 0).unwrap(),
                s
            );
            for cut in 0..buf.len() {
                assert!(
                    BlockStats::decode(FieldType::Float, 2, 0, 10, &buf[..cut], &mut 0).is_err()
                );
            }
        }
        // A min time outside the block's range.
        let mut bad = Vec::new();
        put_uvarint(&mut bad, 10);
        put_uvarint(&mut bad, 10);
        put_uvarint(&mut bad, 99);
        assert!(BlockStats::decode(FieldType::Float, 2, 0, 1, &bad, &mut 0).is_err());
    }
}
