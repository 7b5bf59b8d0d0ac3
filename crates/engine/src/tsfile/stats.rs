//! Per-block value statistics (IoTDB's chunk and page statistics): count, first and
//! last with their times, and per type min and max (with the time of each, the
//! earliest on ties, as InfluxDB's selectors pick) and sum. The query engine answers
//! count/sum/mean/min/max/first/last over a block that lies wholly inside a window
//! from these alone, without reading or decoding the block.

use std::ops::Range;

use crate::codec::{corrupt, get_uvarint, put_uvarint, take, unzigzag, zigzag};
use crate::error::Result;
use crate::types::{FieldType, Values};

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
    Float {
        min: f64,
        min_time: i64,
        max: f64,
        max_time: i64,
        sum: f64,
        first: f64,
        last: f64,
    },
    Integer {
        min: i64,
        min_time: i64,
        max: i64,
        max_time: i64,
        sum: i64,
        first: i64,
        last: i64,
    },
    Unsigned {
        min: u64,
        min_time: i64,
        max: u64,
        max_time: i64,
        sum: u64,
        first: u64,
        last: u64,
    },
    Boolean {
        trues: u32,
        first: bool,
        last: bool,
    },
    /// Strings keep only count and times: a first or last value can be 1 MiB.
    String,
}

/// (min, time of min, max, time of max): strict comparisons keep the earliest on ties.
fn extremes<T: Copy + PartialOrd>(times: &[i64], v: &[T]) -> (T, i64, T, i64) {
    let (mut lo, mut hi) = (0, 0);
    for i in 1..v.len() {
        if v[i] < v[lo] {
            lo = i;
        }
        if v[i] > v[hi] {
            hi = i;
        }
    }
    (v[lo], times[lo], v[hi], times[hi])
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
                let (min, min_time, max, max_time) = extremes(times, v);
                TypedStats::Float {
                    min,
                    min_time,
                    max,
                    max_time,
                    sum: v.iter().sum(),
                    first: v[0],
                    last: v[n - 1],
                }
            }
            Values::Integer(v) => {
                let v = &v[r];
                let (min, min_time, max, max_time) = extremes(times, v);
                TypedStats::Integer {
                    min,
                    min_time,
                    max,
                    max_time,
                    sum: v.iter().fold(0i64, |a, &x| a.wrapping_add(x)),
                    first: v[0],
                    last: v[n - 1],
                }
            }
            Values::Unsigned(v) => {
                let v = &v[r];
                let (min, min_time, max, max_time) = extremes(times, v);
                TypedStats::Unsigned {
                    min,
                    min_time,
                    max,
                    max_time,
                    sum: v.iter().fold(0u64, |a, &x| a.wrapping_add(x)),
                    first: v[0],
                    last: v[n - 1],
                }
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
    /// names it anyway) and times are offsets from `base` (the block's first row).
    pub(crate) fn encode(&self, base: i64, out: &mut Vec<u8>) {
        let off = |t: i64| t.wrapping_sub(base) as u64;
        put_uvarint(out, off(self.first_time));
        put_uvarint(out, self.last_time.wrapping_sub(self.first_time) as u64);
        let rel = |t: i64| t.wrapping_sub(self.first_time) as u64;
        match &self.values {
            TypedStats::Float {
                min,
                min_time,
                max,
                max_time,
                sum,
                first,
                last,
            } => {
                put_uvarint(out, rel(*min_time));
                put_uvarint(out, rel(*max_time));
                for x in [min, max, sum, first, last] {
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            TypedStats::Integer {
                min,
                min_time,
                max,
                max_time,
                sum,
                first,
                last,
            } => {
                put_uvarint(out, rel(*min_time));
                put_uvarint(out, rel(*max_time));
                for &x in [min, max, sum, first, last] {
                    put_uvarint(out, zigzag(x));
                }
            }
            TypedStats::Unsigned {
                min,
                min_time,
                max,
                max_time,
                sum,
                first,
                last,
            } => {
                put_uvarint(out, rel(*min_time));
                put_uvarint(out, rel(*max_time));
                for &x in [min, max, sum, first, last] {
                    put_uvarint(out, x);
                }
            }
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
        b: &[u8],
        pos: &mut usize,
    ) -> Result<BlockStats> {
        let first_time = base.wrapping_add(get_uvarint(b, pos)? as i64);
        let last_time = first_time.wrapping_add(get_uvarint(b, pos)? as i64);
        if last_time < first_time || (count == 1 && last_time != first_time) {
            return Err(corrupt("block statistics: bad time range"));
        }
        let time = |b: &[u8], pos: &mut usize| -> Result<i64> {
            let t = first_time.wrapping_add(get_uvarint(b, pos)? as i64);
            if t < first_time || t > last_time {
                return Err(corrupt("block statistics: time outside the block"));
            }
            Ok(t)
        };
        let values = match ty {
            FieldType::Float => {
                let (min_time, max_time) = (time(b, pos)?, time(b, pos)?);
                let mut f = [0f64; 5];
                for x in &mut f {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(take(b, pos, 8)?);
                    *x = f64::from_le_bytes(a);
                }
                TypedStats::Float {
                    min: f[0],
                    min_time,
                    max: f[1],
                    max_time,
                    sum: f[2],
                    first: f[3],
                    last: f[4],
                }
            }
            FieldType::Integer => {
                let (min_time, max_time) = (time(b, pos)?, time(b, pos)?);
                let mut f = [0i64; 5];
                for x in &mut f {
                    *x = unzigzag(get_uvarint(b, pos)?);
                }
                TypedStats::Integer {
                    min: f[0],
                    min_time,
                    max: f[1],
                    max_time,
                    sum: f[2],
                    first: f[3],
                    last: f[4],
                }
            }
            FieldType::Unsigned => {
                let (min_time, max_time) = (time(b, pos)?, time(b, pos)?);
                let mut f = [0u64; 5];
                for x in &mut f {
                    *x = get_uvarint(b, pos)?;
                }
                TypedStats::Unsigned {
                    min: f[0],
                    min_time,
                    max: f[1],
                    max_time,
                    sum: f[2],
                    first: f[3],
                    last: f[4],
                }
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
        for values in [
            Values::Float(vec![2.5, -1.0, 7.0, -1.0]),
            Values::Integer(vec![i64::MAX, 1, i64::MAX, -3]),
            Values::Unsigned(vec![u64::MAX, 0, 5, 0]),
            Values::Boolean(vec![true, false, true, true]),
            Values::String(vec!["a".into(), "b".into(), "c".into(), "d".into()]),
        ] {
            let s = BlockStats::of(&times, &values).unwrap();
            let mut buf = Vec::new();
            s.encode(5, &mut buf);
            let mut pos = 0;
            let back = BlockStats::decode(values.field_type(), 4, 5, &buf, &mut pos).unwrap();
            assert_eq!(back, s);
            assert_eq!(pos, buf.len());
        }
        let s = BlockStats::of(&times, &Values::Float(vec![2.5, -1.0, 7.0, -1.0])).unwrap();
        let TypedStats::Float {
            min_time, max_time, ..
        } = s.values
        else {
            unreachable!()
        };
        assert_eq!((min_time, max_time), (20, 30));
        let s = BlockStats::of(&times, &Values::Integer(vec![i64::MAX, 1, i64::MAX, -3])).unwrap();
        assert!(matches!(
            s.values,
            TypedStats::Integer { max_time: 10, sum, .. } if sum == i64::MAX.wrapping_add(1).wrapping_add(i64::MAX).wrapping_sub(3)
        ));
    }

    #[test]
    fn damaged_statistics_are_an_error() {
        let s = BlockStats::of(&[10, 20], &Values::Float(vec![1.0, 2.0])).unwrap();
        let mut buf = Vec::new();
        s.encode(0, &mut buf);
        for cut in 0..buf.len() {
            assert!(BlockStats::decode(FieldType::Float, 2, 0, &buf[..cut], &mut 0).is_err());
        }
        // A min time outside the block's range.
        let mut bad = Vec::new();
        put_uvarint(&mut bad, 10);
        put_uvarint(&mut bad, 10);
        put_uvarint(&mut bad, 99);
        assert!(BlockStats::decode(FieldType::Float, 2, 0, &bad, &mut 0).is_err());
    }
}
