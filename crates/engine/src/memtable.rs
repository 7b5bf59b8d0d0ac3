//! In-memory column buffers per series and field.
//!
//! A shard has one active [`MemPair`]: the *sequence* table takes points newer than the
//! series' watermark (its last persisted time), the *unsequence* table the older ones,
//! as in IoTDB. Appends are plain pushes; sorting and last-write-wins deduplication
//! happen when a column is read or flushed.
//!
//! `bytes` counts what the buffers really take: per-series and per-field structures
//! and the vectors' capacity (a vector that doubles is charged for the doubling), so
//! the memtable size and the store-wide budget hold with a million sparse series, not
//! only with dense ones.

use std::sync::Arc;

use crate::types::{Column, FieldType, Values};
use crate::util::FastMap;

/// One field's buffer. In dense mode `col.times` is empty and the values line up with
/// the series' shared time column.
#[derive(Debug)]
pub(crate) struct FieldBuf {
    pub fid: u32,
    pub name: Arc<str>,
    pub col: Column,
}

/// All buffers of one series.
///
/// Most series receive the same fields in every point (TSBS, Telegraf): while that holds
/// the series stays *dense*, keeping one time column for all fields, which halves the
/// appends and the memory per value. The first point with another field set switches
/// the series to per-field time columns for the rest of the memtable's life.
#[derive(Debug)]
pub(crate) struct SeriesBuf {
    dense: bool,
    times: Vec<i64>,
    pub fields: Vec<FieldBuf>,
    /// Field id → position in `fields`, for wide series whose points come in other
    /// orders (a scan per field would make a point quadratic). Filled lazily; fields
    /// are only ever appended, so it covers a prefix of `fields`. Boxed: most series
    /// never need it, and every series pays for the slot.
    by_fid: Option<Box<FastMap<u32, usize>>>,
}

/// Heap bytes added by pushing one more element onto `v` (its growth, if it must grow).
#[inline]
fn growth<T>(v: &Vec<T>) -> usize {
    if v.len() < v.capacity() {
        return 0;
    }
    let min = if std::mem::size_of::<T>() == 1 { 8 } else { 4 };
    let cap = v.capacity();
    (cap * 2).max(min).saturating_sub(cap) * std::mem::size_of::<T>()
}

/// Memory a series entry costs its memtable's map (slot, control byte, load slack).
pub(crate) const SERIES_ENTRY_BYTES: usize = (std::mem::size_of::<(u32, SeriesBuf)>() + 1) * 8 / 7;

/// Series with at most this many fields look a field up by scanning.
const SCAN_FIELDS: usize = 16;

impl Default for SeriesBuf {
    fn default() -> Self {
        SeriesBuf {
            dense: true,
            times: Vec::new(),
            fields: Vec::new(),
            by_fid: None,
        }
    }
}

/// Pushes a value; returns the heap bytes it added.
#[inline]
fn push_value(values: &mut Values, v: ValRef<'_>) -> usize {
    match (values, v) {
        (Values::Float(c), ValRef::Float(x)) => {
            let g = growth(c);
            c.push(x);
            g
        }
        (Values::Integer(c), ValRef::Integer(x)) => {
            let g = growth(c);
            c.push(x);
            g
        }
        (Values::Unsigned(c), ValRef::Unsigned(x)) => {
            let g = growth(c);
            c.push(x);
            g
        }
        (Values::Boolean(c), ValRef::Boolean(x)) => {
            let g = growth(c);
            c.push(x);
            g
        }
        (Values::String(c), ValRef::String(x)) => {
            let g = growth(c);
            c.push(x.to_owned());
            g + x.len()
        }
        _ => 0,
    }
}

impl SeriesBuf {
    /// Append one point's fields (`(field id, name, value)`, unique ids). Returns the
    /// bytes added.
    #[inline]
    pub fn append_point(&mut self, t: i64, vals: &[(u32, &Arc<str>, ValRef<'_>)]) -> usize {
        let mut bytes = 0;
        if self.dense {
            if self.fields.is_empty() {
                self.fields.reserve_exact(vals.len());
                bytes += self.fields.capacity() * std::mem::size_of::<FieldBuf>();
                for (fid, name, v) in vals {
                    self.fields.push(FieldBuf {
                        fid: *fid,
                        name: Arc::clone(name),
                        col: Column::new(v.field_type()),
                    });
                }
            }
            let same_layout = vals.len() == self.fields.len()
                && vals
                    .iter()
                    .zip(&self.fields)
                    .all(|((fid, _, v), f)| *fid == f.fid && v.field_type() == f.col.field_type());
            if same_layout {
                bytes += growth(&self.times);
                for ((_, _, v), f) in vals.iter().zip(self.fields.iter_mut()) {
                    bytes += push_value(&mut f.col.values, *v);
                }
                self.times.push(t);
                return bytes;
            }
            bytes += self.make_sparse();
        }
        for (i, (fid, name, v)) in vals.iter().enumerate() {
            bytes += self.append_sparse(i, *fid, name, t, *v);
        }
        bytes
    }

    /// Gives every field its own copy of the time column; returns the bytes added.
    fn make_sparse(&mut self) -> usize {
        let mut added = 0;
        for f in &mut self.fields {
            f.col.times = self.times.clone();
            added += f.col.times.capacity() * 8;
        }
        added = added.saturating_sub(self.times.capacity() * 8);
        self.times = Vec::new();
        self.dense = false;
        added
    }

    fn position(&mut self, fid: u32) -> Option<usize> {
        if self.fields.len() <= SCAN_FIELDS {
            return self.fields.iter().position(|f| f.fid == fid);
        }
        let map = self.by_fid.get_or_insert_with(Default::default);
        let known = map.len();
        let newer = self.fields[known..].iter().enumerate();
        map.extend(newer.map(|(i, f)| (f.fid, known + i)));
        map.get(&fid).copied()
    }

    /// Append one value in sparse mode; `hint` is where the field usually sits. Returns
    /// the bytes added, or 0 when the buffer holds another type.
    fn append_sparse(
        &mut self,
        hint: usize,
        fid: u32,
        name: &Arc<str>,
        t: i64,
        v: ValRef<'_>,
    ) -> usize {
        let mut extra = 0;
        let pos = if self.fields.get(hint).is_some_and(|f| f.fid == fid) {
            hint
        } else {
            match self.position(fid) {
                Some(p) => p,
                None => {
                    // A new field; wide series also index it (~16 bytes an entry).
                    extra += growth(&self.fields) + if self.by_fid.is_some() { 16 } else { 0 };
                    self.fields.push(FieldBuf {
                        fid,
                        name: name.clone(),
                        col: Column::new(v.field_type()),
                    });
                    self.fields.len() - 1
                }
            }
        };
        let col = &mut self.fields[pos].col;
        if col.field_type() != v.field_type() {
            // A type change can only follow a dropped measurement (whose data is already
            // deleted); an emptied buffer may switch type.
            if !col.is_empty() {
                return 0;
            }
            *col = Column::new(v.field_type());
        }
        extra += push_value(&mut col.values, v) + growth(&col.times);
        col.times.push(t);
        extra
    }

    /// The (unsorted) column of one field.
    fn column(&self, f: &FieldBuf) -> Column {
        if self.dense {
            Column {
                times: self.times.clone(),
                values: f.col.values.clone(),
            }
        } else {
            f.col.clone()
        }
    }

    fn delete_range(&mut self, min: i64, max: i64) {
        if !self.dense {
            for f in &mut self.fields {
                f.col.delete_range(min, max);
            }
            return;
        }
        if !self.times.iter().any(|&t| t >= min && t <= max) {
            return;
        }
        let keep: Vec<bool> = self.times.iter().map(|&t| t < min || t > max).collect();
        self.times.retain(|&t| t < min || t > max);
        for f in &mut self.fields {
            f.col.values.retain_mask(&keep);
        }
    }

    fn max_time(&self) -> i64 {
        if self.dense {
            return self.times.iter().max().copied().unwrap_or(i64::MIN);
        }
        self.fields
            .iter()
            .filter_map(|f| f.col.times.iter().max().copied())
            .max()
            .unwrap_or(i64::MIN)
    }
}

#[derive(Debug, Default)]
pub(crate) struct MemTable {
    pub series: FastMap<u32, SeriesBuf>,
    pub bytes: usize,
    pub points: usize,
}

/// A borrowed value from a decoded WAL entry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ValRef<'a> {
    Float(f64),
    Integer(i64),
    Unsigned(u64),
    Boolean(bool),
    String(&'a str),
}

impl ValRef<'_> {
    pub fn field_type(&self) -> FieldType {
        match self {
            ValRef::Float(_) => FieldType::Float,
            ValRef::Integer(_) => FieldType::Integer,
            ValRef::Unsigned(_) => FieldType::Unsigned,
            ValRef::Boolean(_) => FieldType::Boolean,
            ValRef::String(_) => FieldType::String,
        }
    }
}

impl MemTable {
    pub fn is_empty(&self) -> bool {
        self.points == 0
    }

    /// Does the table hold any value of series `sid`?
    fn holds(&self, sid: u32) -> bool {
        self.series
            .get(&sid)
            .is_some_and(|s| s.fields.iter().any(|f| !f.col.values.is_empty()))
    }

    /// Sorted, deduplicated copies of a series' fields within `[min, max]`.
    pub fn read_series(
        &self,
        sid: u32,
        want: &dyn Fn(&str) -> bool,
        min: i64,
        max: i64,
    ) -> Vec<(Arc<str>, Column)> {
        let Some(s) = self.series.get(&sid) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(s.fields.len());
        for f in &s.fields {
            if f.col.values.is_empty() || !want(&f.name) {
                continue;
            }
            let mut c = s.column(f);
            c.sort_dedup();
            let c = c.into_time_range(min, max);
            if !c.is_empty() {
                out.push((f.name.clone(), c));
            }
        }
        out
    }

    /// Remove points of the given series within `[min, max]`.
    pub fn delete(&mut self, sids: &[u32], min: i64, max: i64) {
        for sid in sids {
            if let Some(s) = self.series.get_mut(sid) {
                s.delete_range(min, max);
            }
        }
    }

    /// Per-series maximum time (for the sequence watermark at freeze).
    pub fn max_times(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.series.iter().map(|(sid, s)| (*sid, s.max_time()))
    }

    /// The newest time of one series, if it has points here.
    pub fn max_time_of(&self, sid: u32) -> Option<i64> {
        self.series
            .get(&sid)
            .map(SeriesBuf::max_time)
            .filter(|&t| t != i64::MIN)
    }

    /// The buffer of a series, created when missing; also returns the bytes creating
    /// it cost (its map entry, with the table's growth spread over its entries).
    #[inline]
    pub fn series_buf(&mut self, sid: u32) -> (&mut SeriesBuf, usize) {
        use std::collections::hash_map::Entry;
        match self.series.entry(sid) {
            Entry::Occupied(o) => (o.into_mut(), 0),
            Entry::Vacant(v) => (v.insert(SeriesBuf::default()), SERIES_ENTRY_BYTES),
        }
    }
}

/// The sequence and unsequence tables that are frozen and flushed together (they share
/// the WAL segments that back them).
#[derive(Debug, Default)]
pub(crate) struct MemPair {
    pub seq: MemTable,
    pub unseq: MemTable,
    /// Highest WAL sequence applied.
    pub max_seq: u64,
}

impl MemPair {
    pub fn bytes(&self) -> usize {
        self.seq.bytes + self.unseq.bytes
    }

    pub fn is_empty(&self) -> bool {
        self.seq.is_empty() && self.unseq.is_empty()
    }

    pub fn has_series(&self, sid: u32) -> bool {
        self.seq.holds(sid) || self.unseq.holds(sid)
    }

    pub fn read_series(
        &self,
        sid: u32,
        want: &dyn Fn(&str) -> bool,
        min: i64,
        max: i64,
    ) -> Vec<(Arc<str>, Column)> {
        let mut a = self.seq.read_series(sid, want, min, max);
        for (name, c) in self.unseq.read_series(sid, want, min, max) {
            match a.iter_mut().find(|(n, _)| *n == name) {
                Some((_, prev)) => {
                    let p = std::mem::replace(prev, Column::new(c.field_type()));
                    *prev = Column::merge(p, c);
                }
                None => a.push((name, c)),
            }
        }
        a
    }
}
