//! Value types shared by the memtable, files, compaction and reads.

use serde::{Deserialize, Serialize};

/// InfluxDB field types. The discriminant is the on-disk tag (WAL, file index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum FieldType {
    Float = 1,
    Integer = 2,
    Unsigned = 3,
    Boolean = 4,
    String = 5,
}

impl FieldType {
    pub fn from_u8(v: u8) -> Option<FieldType> {
        Some(match v {
            1 => FieldType::Float,
            2 => FieldType::Integer,
            3 => FieldType::Unsigned,
            4 => FieldType::Boolean,
            5 => FieldType::String,
            _ => return None,
        })
    }

    /// The name InfluxDB uses in messages and `SHOW FIELD KEYS`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Float => "float",
            FieldType::Integer => "integer",
            FieldType::Unsigned => "unsigned",
            FieldType::Boolean => "boolean",
            FieldType::String => "string",
        }
    }
}

impl std::fmt::Display for FieldType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One owned value (used by models, tests and small paths; columns are the hot form).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(String),
}

impl Value {
    pub fn field_type(&self) -> FieldType {
        match self {
            Value::Float(_) => FieldType::Float,
            Value::Integer(_) => FieldType::Integer,
            Value::Unsigned(_) => FieldType::Unsigned,
            Value::Boolean(_) => FieldType::Boolean,
            Value::String(_) => FieldType::String,
        }
    }

    /// Bit-exact equality (NaN payloads and -0.0 compare by bits).
    pub fn bits_eq(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => a.to_bits() == b.to_bits(),
            _ => self == other,
        }
    }
}

/// A typed column of values.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Float(Vec<f64>),
    Integer(Vec<i64>),
    Unsigned(Vec<u64>),
    Boolean(Vec<bool>),
    String(Vec<String>),
}

impl Values {
    pub fn new(ty: FieldType) -> Values {
        Self::with_capacity(ty, 0)
    }

    pub fn with_capacity(ty: FieldType, n: usize) -> Values {
        match ty {
            FieldType::Float => Values::Float(Vec::with_capacity(n)),
            FieldType::Integer => Values::Integer(Vec::with_capacity(n)),
            FieldType::Unsigned => Values::Unsigned(Vec::with_capacity(n)),
            FieldType::Boolean => Values::Boolean(Vec::with_capacity(n)),
            FieldType::String => Values::String(Vec::with_capacity(n)),
        }
    }

    pub fn field_type(&self) -> FieldType {
        match self {
            Values::Float(_) => FieldType::Float,
            Values::Integer(_) => FieldType::Integer,
            Values::Unsigned(_) => FieldType::Unsigned,
            Values::Boolean(_) => FieldType::Boolean,
            Values::String(_) => FieldType::String,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Values::Float(v) => v.len(),
            Values::Integer(v) => v.len(),
            Values::Unsigned(v) => v.len(),
            Values::Boolean(v) => v.len(),
            Values::String(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, i: usize) -> Option<Value> {
        Some(match self {
            Values::Float(v) => Value::Float(*v.get(i)?),
            Values::Integer(v) => Value::Integer(*v.get(i)?),
            Values::Unsigned(v) => Value::Unsigned(*v.get(i)?),
            Values::Boolean(v) => Value::Boolean(*v.get(i)?),
            Values::String(v) => Value::String(v.get(i)?.clone()),
        })
    }

    /// Append `other[i]`; a type mismatch is ignored (callers check types first).
    pub(crate) fn push_from(&mut self, other: &Values, i: usize) {
        match (self, other) {
            (Values::Float(a), Values::Float(b)) => a.push(b[i]),
            (Values::Integer(a), Values::Integer(b)) => a.push(b[i]),
            (Values::Unsigned(a), Values::Unsigned(b)) => a.push(b[i]),
            (Values::Boolean(a), Values::Boolean(b)) => a.push(b[i]),
            (Values::String(a), Values::String(b)) => a.push(b[i].clone()),
            _ => {}
        }
    }

    /// Keep only the entries whose mask bit is set.
    pub(crate) fn retain_mask(&mut self, keep: &[bool]) {
        fn r<T>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                let k = keep.get(i).copied().unwrap_or(true);
                i += 1;
                k
            });
        }
        match self {
            Values::Float(v) => r(v, keep),
            Values::Integer(v) => r(v, keep),
            Values::Unsigned(v) => r(v, keep),
            Values::Boolean(v) => r(v, keep),
            Values::String(v) => r(v, keep),
        }
    }

    /// Reorder by `perm` (new[i] = old[perm[i]]).
    pub(crate) fn permute(&self, perm: &[u32]) -> Values {
        fn p<T: Clone>(v: &[T], perm: &[u32]) -> Vec<T> {
            perm.iter().map(|&i| v[i as usize].clone()).collect()
        }
        match self {
            Values::Float(v) => Values::Float(p(v, perm)),
            Values::Integer(v) => Values::Integer(p(v, perm)),
            Values::Unsigned(v) => Values::Unsigned(p(v, perm)),
            Values::Boolean(v) => Values::Boolean(p(v, perm)),
            Values::String(v) => Values::String(p(v, perm)),
        }
    }
}

/// Timestamps and values of one field of one series, sorted by time, unique times.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub times: Vec<i64>,
    pub values: Values,
}

impl Column {
    pub fn new(ty: FieldType) -> Column {
        Column {
            times: Vec::new(),
            values: Values::new(ty),
        }
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn field_type(&self) -> FieldType {
        self.values.field_type()
    }

    /// Sort by time (stable) and keep the last value for duplicated times.
    pub(crate) fn sort_dedup(&mut self) {
        let n = self.times.len();
        let sorted_unique = self.times.windows(2).all(|w| w[0] < w[1]);
        if sorted_unique {
            return;
        }
        let mut perm: Vec<u32> = (0..n as u32).collect();
        // Stable sort keeps arrival order among equal times, so the last one is the newest.
        perm.sort_by_key(|&i| self.times[i as usize]);
        let mut keep: Vec<u32> = Vec::with_capacity(n);
        for (k, &i) in perm.iter().enumerate() {
            let t = self.times[i as usize];
            let next_same = perm
                .get(k + 1)
                .is_some_and(|&j| self.times[j as usize] == t);
            if !next_same {
                keep.push(i);
            }
        }
        self.times = keep.iter().map(|&i| self.times[i as usize]).collect();
        self.values = self.values.permute(&keep);
    }

    /// Remove points with `min <= t <= max`.
    pub(crate) fn delete_range(&mut self, min: i64, max: i64) {
        if !self.times.iter().any(|&t| t >= min && t <= max) {
            return;
        }
        let keep: Vec<bool> = self.times.iter().map(|&t| t < min || t > max).collect();
        self.times.retain(|&t| t < min || t > max);
        self.values.retain_mask(&keep);
    }

    /// Restrict a sorted column to `[min, max]`, without copying when it already fits.
    pub(crate) fn into_time_range(self, min: i64, max: i64) -> Column {
        match (self.times.first(), self.times.last()) {
            (Some(&a), Some(&b)) if a >= min && b <= max => self,
            (None, _) => self,
            _ => self.slice_time(min, max),
        }
    }

    /// Restrict a sorted column to `[min, max]`.
    pub(crate) fn slice_time(&self, min: i64, max: i64) -> Column {
        let lo = self.times.partition_point(|&t| t < min);
        let hi = self.times.partition_point(|&t| t <= max).max(lo);
        self.slice_index(lo, hi)
    }

    /// Rows `start..end` as a new column.
    pub(crate) fn slice_index(&self, start: usize, end: usize) -> Column {
        let values = match &self.values {
            Values::Float(v) => Values::Float(v[start..end].to_vec()),
            Values::Integer(v) => Values::Integer(v[start..end].to_vec()),
            Values::Unsigned(v) => Values::Unsigned(v[start..end].to_vec()),
            Values::Boolean(v) => Values::Boolean(v[start..end].to_vec()),
            Values::String(v) => Values::String(v[start..end].to_vec()),
        };
        Column {
            times: self.times[start..end].to_vec(),
            values,
        }
    }

    /// Merge two sorted unique columns; on equal times `newer` wins.
    pub(crate) fn merge(older: Column, newer: Column) -> Column {
        if older.is_empty() || older.field_type() != newer.field_type() {
            return newer;
        }
        if newer.is_empty() {
            return older;
        }
        // Fast path: disjoint and ordered (the common case for in-order data).
        if older.times.last() < newer.times.first() {
            let mut out = older;
            out.times.extend_from_slice(&newer.times);
            append_values(&mut out.values, newer.values);
            return out;
        }
        let n = older.len() + newer.len();
        let mut times = Vec::with_capacity(n);
        let mut values = Values::with_capacity(newer.field_type(), n);
        let (mut i, mut j) = (0, 0);
        while i < older.len() || j < newer.len() {
            let take_newer = match (older.times.get(i), newer.times.get(j)) {
                (Some(&a), Some(&b)) => {
                    if a == b {
                        i += 1; // overwritten by the newer source
                        true
                    } else {
                        b < a
                    }
                }
                (None, Some(_)) => true,
                _ => false,
            };
            if take_newer {
                times.push(newer.times[j]);
                values.push_from(&newer.values, j);
                j += 1;
            } else {
                times.push(older.times[i]);
                values.push_from(&older.values, i);
                i += 1;
            }
        }
        Column { times, values }
    }
}

fn append_values(dst: &mut Values, src: Values) {
    match (dst, src) {
        (Values::Float(a), Values::Float(b)) => a.extend(b),
        (Values::Integer(a), Values::Integer(b)) => a.extend(b),
        (Values::Unsigned(a), Values::Unsigned(b)) => a.extend(b),
        (Values::Boolean(a), Values::Boolean(b)) => a.extend(b),
        (Values::String(a), Values::String(b)) => a.extend(b),
        _ => {}
    }
}

/// Columns of one series gathered from sources in age order and merged by field
/// name (the newer value wins on equal times), kept in order of first appearance.
/// A map finds the field, so a series with many fields stays linear.
#[derive(Debug)]
pub(crate) struct FieldMerge<N> {
    cols: Vec<(N, Column)>,
    at: crate::util::FastMap<N, usize>,
}

impl<N: std::hash::Hash + Eq + Clone> FieldMerge<N> {
    pub fn new() -> Self {
        FieldMerge {
            cols: Vec::new(),
            at: Default::default(),
        }
    }

    pub fn add(&mut self, name: N, c: Column) {
        match self.at.get(&name) {
            Some(&i) => {
                let prev = &mut self.cols[i].1;
                let p = std::mem::replace(prev, Column::new(c.field_type()));
                *prev = Column::merge(p, c);
            }
            None => {
                self.at.insert(name.clone(), self.cols.len());
                self.cols.push((name, c));
            }
        }
    }

    pub fn columns(&self) -> &[(N, Column)] {
        &self.cols
    }
}
