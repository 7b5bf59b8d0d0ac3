//! A measurement's inverted index: tag key → tag value → series ids.
//!
//! Most tag values of a high-cardinality tag (a host name, a container id) belong
//! to one series, so a value keeps that series id inline and only values shared by
//! several series own a bitmap. A unique value then costs its bytes plus about 20
//! bytes, against well over 100 for a bitmap per value.

use roaring::RoaringBitmap;

use super::dict::Dict;
use crate::util::FastMap;

/// `one[v]`: no live series has value `v`.
const NONE: u32 = u32::MAX;
/// `one[v]`: several series have value `v`; see `many`.
const MANY: u32 = u32::MAX - 1;
/// Series ids must stay below the markers.
pub(crate) const MAX_SERIES_ID: u32 = u32::MAX - 2;

/// Values of one tag key and their series.
#[derive(Debug, Default)]
pub(crate) struct TagValues {
    values: Dict,
    one: Vec<u32>,
    many: FastMap<u32, RoaringBitmap>,
    /// Values with at least one live series (InfluxDB's `TagValueN`).
    live: usize,
    /// Members of the bitmaps in `many` (for the memory estimate).
    many_members: usize,
}

impl TagValues {
    pub fn live_values(&self) -> usize {
        self.live
    }

    /// Whether `value` has a live series.
    pub fn is_live(&self, value: &str) -> bool {
        self.values
            .find(value)
            .is_some_and(|v| self.one[v as usize] != NONE)
    }

    pub fn add(&mut self, value: &str, sid: u32) {
        let v = match self.values.find(value) {
            Some(v) => v,
            None => {
                let v = self.values.insert(value);
                self.one.push(NONE);
                v
            }
        } as usize;
        match self.one[v] {
            NONE => {
                self.one[v] = sid;
                self.live += 1;
            }
            MANY => {
                if let Some(b) = self.many.get_mut(&(v as u32)) {
                    if b.insert(sid) {
                        self.many_members += 1;
                    }
                }
            }
            x if x == sid => {}
            x => {
                self.one[v] = MANY;
                self.many
                    .insert(v as u32, RoaringBitmap::from_iter([x, sid]));
                self.many_members += 2;
            }
        }
    }

    pub fn remove(&mut self, value: &str, sid: u32) {
        let Some(v) = self.values.find(value) else {
            return;
        };
        let vi = v as usize;
        match self.one[vi] {
            x if x == sid => {
                self.one[vi] = NONE;
                self.live -= 1;
            }
            MANY => {
                let Some(b) = self.many.get_mut(&v) else {
                    return;
                };
                if b.remove(sid) {
                    self.many_members -= 1;
                }
                if b.len() <= 1 {
                    let last = b.min();
                    self.many_members -= b.len() as usize;
                    self.many.remove(&v);
                    match last {
                        Some(x) => self.one[vi] = x,
                        None => {
                            self.one[vi] = NONE;
                            self.live -= 1;
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Series with exactly `value`.
    pub fn postings(&self, value: &str) -> RoaringBitmap {
        match self.values.find(value) {
            Some(v) => self.postings_of(v),
            None => RoaringBitmap::new(),
        }
    }

    fn postings_of(&self, v: u32) -> RoaringBitmap {
        match self.one[v as usize] {
            NONE => RoaringBitmap::new(),
            MANY => self.many.get(&v).cloned().unwrap_or_default(),
            x => RoaringBitmap::from_iter([x]),
        }
    }

    /// Calls `f(value, series)` for every value with live series.
    pub fn for_each(&self, mut f: impl FnMut(&str, Postings<'_>)) {
        for (v, &one) in self.one.iter().enumerate() {
            let p = match one {
                NONE => continue,
                MANY => match self.many.get(&(v as u32)) {
                    Some(b) => Postings::Many(b),
                    None => continue,
                },
                x => Postings::One(x),
            };
            f(self.values.get(v as u32), p);
        }
    }

    /// An estimate kept in O(1): a shared value's bitmap costs about 2 bytes a member
    /// (array containers) plus ~112 bytes for the bitmap and its map entry.
    pub fn heap_bytes(&self) -> usize {
        self.values.heap_bytes()
            + self.one.capacity() * 4
            + self.many.capacity() * 112
            + self.many_members * 2
    }
}

/// The series of one tag value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Postings<'a> {
    One(u32),
    Many(&'a RoaringBitmap),
}

impl Postings<'_> {
    pub fn or_into(self, out: &mut RoaringBitmap) {
        match self {
            Postings::One(x) => {
                out.insert(x);
            }
            Postings::Many(b) => *out |= b,
        }
    }

    pub fn intersects(self, b: &RoaringBitmap) -> bool {
        match self {
            Postings::One(x) => b.contains(x),
            Postings::Many(m) => !m.is_disjoint(b),
        }
    }
}

/// One measurement: its series and its tags.
#[derive(Debug, Default)]
pub(crate) struct MeasurementIndex {
    pub series: RoaringBitmap,
    pub tags: FastMap<Box<str>, TagValues>,
}

impl MeasurementIndex {
    pub fn heap_bytes(&self) -> usize {
        self.series.serialized_size()
            + self
                .tags
                .iter()
                .map(|(k, t)| k.len() + 48 + t.heap_bytes())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postings_move_between_one_and_many() {
        let mut t = TagValues::default();
        t.add("a", 1);
        t.add("b", 2);
        assert_eq!(t.live_values(), 2);
        t.add("a", 3);
        assert_eq!(t.postings("a").iter().collect::<Vec<_>>(), vec![1, 3]);
        t.remove("a", 1);
        assert_eq!(t.postings("a").iter().collect::<Vec<_>>(), vec![3]);
        t.remove("a", 3);
        assert!(t.postings("a").is_empty());
        assert!(!t.is_live("a"));
        assert_eq!(t.live_values(), 1);
        t.add("a", 9);
        assert!(t.is_live("a"));
        let mut seen = Vec::new();
        t.for_each(|v, p| {
            let mut b = RoaringBitmap::new();
            p.or_into(&mut b);
            seen.push((v.to_string(), b.iter().collect::<Vec<_>>()));
        });
        assert_eq!(seen, vec![("a".into(), vec![9]), ("b".into(), vec![2])]);
    }
}
