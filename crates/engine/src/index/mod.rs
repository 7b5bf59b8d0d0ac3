//! Series index: series key ↔ series id, and measurement → tag key → tag value →
//! series ids (roaring bitmaps), plus each measurement's field types.
//!
//! Ids are dense `u32`s assigned in arrival order and only meaningful inside one
//! process: files and the WAL store series *keys*, so nothing on disk depends on ids.
//! The index is persisted as a checksummed snapshot (`index.snap`, see
//! `SeriesIndex::encode`) written atomically after flushes and at close; series that
//! arrive later are recovered from the WAL, and a lost snapshot is rebuilt from files.

mod predicate;
pub use predicate::TagPredicate;

use std::collections::BTreeMap;
use std::sync::Arc;

use roaring::RoaringBitmap;

use crate::codec::{corrupt, get_uvarint, put_uvarint, take};
use crate::error::Result;
use crate::types::FieldType;
use crate::util::FastMap;

const SNAP_MAGIC: &[u8; 8] = b"SDIDX001";

#[derive(Debug)]
pub(crate) struct SeriesEntry {
    pub key: Arc<str>,
    pub measurement: Arc<str>,
    pub alive: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Measurement {
    pub series: RoaringBitmap,
    pub tags: BTreeMap<Box<str>, BTreeMap<Box<str>, RoaringBitmap>>,
    pub fields: FieldTypes,
}

/// Field name → type of one measurement.
pub(crate) type FieldTypes = FastMap<Box<str>, FieldType>;

#[derive(Debug, Default)]
pub(crate) struct SeriesIndex {
    by_key: FastMap<Arc<str>, u32>,
    series: Vec<SeriesEntry>,
    measurements: FastMap<Arc<str>, Measurement>,
    /// Changed since the last snapshot.
    pub dirty: bool,
}

/// Split a canonical series key (`m,k1=v1,k2=v2`, escaped) into unescaped parts.
pub fn parse_series_key(key: &str) -> (String, Vec<(String, String)>) {
    let b = key.as_bytes();
    // Split on unescaped commas.
    let mut parts: Vec<&str> = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b',' => {
                parts.push(&key[start..i]);
                start = i + 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    parts.push(&key[start.min(key.len())..]);
    let measurement = unescape(parts[0], b", ");
    let mut tags = Vec::with_capacity(parts.len() - 1);
    for p in &parts[1..] {
        let pb = p.as_bytes();
        let mut j = 0;
        let mut eq = None;
        while j < pb.len() {
            match pb[j] {
                b'\\' => j += 2,
                b'=' => {
                    eq = Some(j);
                    break;
                }
                _ => j += 1,
            }
        }
        let (k, v) = match eq {
            Some(e) => (&p[..e], &p[e + 1..]),
            None => (*p, ""),
        };
        tags.push((unescape(k, b", ="), unescape(v, b", =")));
    }
    (measurement, tags)
}

fn unescape(s: &str, escapable: &[u8]) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && escapable.contains(&b[i + 1]) {
            out.push(b[i + 1]);
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

impl SeriesIndex {
    #[inline]
    pub fn get(&self, key: &str) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    pub fn entry(&self, sid: u32) -> Option<&SeriesEntry> {
        self.series.get(sid as usize)
    }

    pub fn key_of(&self, sid: u32) -> Option<Arc<str>> {
        self.series.get(sid as usize).map(|e| e.key.clone())
    }

    pub fn series_count(&self) -> usize {
        self.by_key.len()
    }

    /// Add a series (or return its id).
    pub fn insert(&mut self, key: &str) -> u32 {
        if let Some(id) = self.get(key) {
            return id;
        }
        let (m, tags) = parse_series_key(key);
        let sid = self.series.len() as u32;
        let key: Arc<str> = Arc::from(key);
        let m: Arc<str> = match self.measurements.get_key_value(m.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(m.as_str()),
        };
        let meas = self.measurements.entry(m.clone()).or_default();
        meas.series.insert(sid);
        for (k, v) in tags {
            meas.tags
                .entry(k.into_boxed_str())
                .or_default()
                .entry(v.into_boxed_str())
                .or_default()
                .insert(sid);
        }
        self.series.push(SeriesEntry {
            key: key.clone(),
            measurement: m,
            alive: true,
        });
        self.by_key.insert(key, sid);
        self.dirty = true;
        sid
    }

    pub fn fields_of(&self, measurement: &str) -> Option<&FieldTypes> {
        self.measurements.get(measurement).map(|m| &m.fields)
    }

    #[cfg(test)]
    pub fn field_type(&self, measurement: &str, field: &str) -> Option<FieldType> {
        self.measurements
            .get(measurement)?
            .fields
            .get(field)
            .copied()
    }

    /// Register a field type unless one exists; returns the type in force.
    pub fn register_field(&mut self, measurement: &str, field: &str, ty: FieldType) -> FieldType {
        let m = match self.measurements.get_mut(measurement) {
            Some(m) => m,
            None => self.measurements.entry(Arc::from(measurement)).or_default(),
        };
        if let Some(t) = m.fields.get(field) {
            return *t;
        }
        m.fields.insert(field.into(), ty);
        self.dirty = true;
        ty
    }

    /// Series ids of a measurement that match a predicate.
    pub fn select(&self, measurement: &str, pred: &TagPredicate) -> RoaringBitmap {
        match self.measurements.get(measurement) {
            Some(m) => pred.eval(m),
            None => RoaringBitmap::new(),
        }
    }

    pub fn measurements(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .measurements
            .iter()
            .filter(|(_, m)| !m.series.is_empty())
            .map(|(k, _)| k.to_string())
            .collect();
        v.sort();
        v
    }

    pub fn tag_keys(&self, measurement: &str) -> Vec<String> {
        self.measurements
            .get(measurement)
            .map_or_else(Vec::new, |m| {
                m.tags
                    .iter()
                    .filter(|(_, vals)| vals.values().any(|b| !b.is_empty()))
                    .map(|(k, _)| k.to_string())
                    .collect()
            })
    }

    pub fn tag_values(&self, measurement: &str, key: &str) -> Vec<String> {
        self.measurements
            .get(measurement)
            .and_then(|m| m.tags.get(key))
            .map_or_else(Vec::new, |vals| {
                vals.iter()
                    .filter(|(_, b)| !b.is_empty())
                    .map(|(v, _)| v.to_string())
                    .collect()
            })
    }

    pub fn field_keys(&self, measurement: &str) -> Vec<(String, FieldType)> {
        let mut v: Vec<(String, FieldType)> = self
            .measurements
            .get(measurement)
            .map_or_else(Vec::new, |m| {
                m.fields.iter().map(|(k, t)| (k.to_string(), *t)).collect()
            });
        v.sort();
        v
    }

    /// Remove series from the index; drops a measurement (and its field types) once it
    /// has no series left.
    pub fn remove_series(&mut self, sids: &RoaringBitmap) {
        for sid in sids {
            let Some(e) = self.series.get_mut(sid as usize) else {
                continue;
            };
            if !e.alive {
                continue;
            }
            e.alive = false;
            let key = e.key.clone();
            let mname = e.measurement.clone();
            self.by_key.remove(&*key);
            if let Some(m) = self.measurements.get_mut(&*mname) {
                m.series.remove(sid);
                let (_, tags) = parse_series_key(&key);
                for (k, v) in tags {
                    if let Some(vals) = m.tags.get_mut(k.as_str()) {
                        if let Some(b) = vals.get_mut(v.as_str()) {
                            b.remove(sid);
                            if b.is_empty() {
                                vals.remove(v.as_str());
                            }
                        }
                        if vals.is_empty() {
                            m.tags.remove(k.as_str());
                        }
                    }
                }
                if m.series.is_empty() {
                    self.measurements.remove(&*mname);
                }
            }
        }
        self.dirty = true;
    }

    /// Forget a measurement entirely (its series must be removed by the caller first).
    pub fn drop_measurement_schema(&mut self, measurement: &str) {
        if self.measurements.remove(measurement).is_some() {
            self.dirty = true;
        }
    }

    /// Snapshot: magic | uvarint n | keys | uvarint nm | per measurement: name,
    /// uvarint nf, per field: name, u8 type. Sealed with a crc32c by the caller.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.by_key.len() * 64 + 64);
        out.extend_from_slice(SNAP_MAGIC);
        let alive: Vec<&SeriesEntry> = self.series.iter().filter(|e| e.alive).collect();
        put_uvarint(&mut out, alive.len() as u64);
        for e in alive {
            put_uvarint(&mut out, e.key.len() as u64);
            out.extend_from_slice(e.key.as_bytes());
        }
        put_uvarint(&mut out, self.measurements.len() as u64);
        for (name, m) in &self.measurements {
            put_uvarint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put_uvarint(&mut out, m.fields.len() as u64);
            for (f, t) in &m.fields {
                put_uvarint(&mut out, f.len() as u64);
                out.extend_from_slice(f.as_bytes());
                out.push(*t as u8);
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<SeriesIndex> {
        let mut pos = 0;
        if take(b, &mut pos, 8)? != SNAP_MAGIC {
            return Err(corrupt("bad index snapshot magic"));
        }
        let mut idx = SeriesIndex::default();
        let s = |b: &[u8], pos: &mut usize| -> Result<String> {
            let n = get_uvarint(b, pos)? as usize;
            let raw = take(b, pos, n)?;
            std::str::from_utf8(raw)
                .map(str::to_owned)
                .map_err(|_| corrupt("index snapshot string is not UTF-8"))
        };
        let n = get_uvarint(b, &mut pos)?;
        for _ in 0..n {
            let k = s(b, &mut pos)?;
            idx.insert(&k);
        }
        let nm = get_uvarint(b, &mut pos)?;
        for _ in 0..nm {
            let m = s(b, &mut pos)?;
            let nf = get_uvarint(b, &mut pos)?;
            for _ in 0..nf {
                let f = s(b, &mut pos)?;
                let t = FieldType::from_u8(take(b, &mut pos, 1)?[0])
                    .ok_or_else(|| corrupt("index snapshot field type"))?;
                idx.register_field(&m, &f, t);
            }
        }
        idx.dirty = false;
        Ok(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_keys() {
        let (m, t) = parse_series_key(r"c\ p\,u,h\=x=a\ b,z=1");
        assert_eq!(m, "c p,u");
        assert_eq!(
            t,
            vec![("h=x".into(), "a b".into()), ("z".into(), "1".into())]
        );
        assert_eq!(parse_series_key("cpu").0, "cpu");
    }

    #[test]
    fn predicates_and_snapshot() {
        let mut idx = SeriesIndex::default();
        let a = idx.insert("cpu,host=a,region=eu");
        let b = idx.insert("cpu,host=b,region=us");
        let c = idx.insert("cpu,region=us");
        idx.register_field("cpu", "v", FieldType::Float);
        let sel = |p: &TagPredicate| idx.select("cpu", p).iter().collect::<Vec<_>>();
        assert_eq!(sel(&TagPredicate::eq("host", "a")), vec![a]);
        assert_eq!(sel(&TagPredicate::not_eq("host", "a")), vec![b, c]);
        assert_eq!(sel(&TagPredicate::eq("host", "")), vec![c]);
        assert_eq!(
            sel(&TagPredicate::regex("host", "^[ab]$").unwrap()),
            vec![a, b]
        );
        assert_eq!(
            sel(&TagPredicate::not_regex("region", "^u").unwrap()),
            vec![a]
        );
        assert_eq!(
            sel(&TagPredicate::eq("region", "us").and(TagPredicate::eq("host", "b"))),
            vec![b]
        );
        let snap = SeriesIndex::decode(&idx.encode()).unwrap();
        assert_eq!(snap.series_count(), 3);
        assert_eq!(snap.field_type("cpu", "v"), Some(FieldType::Float));
        assert_eq!(snap.tag_values("cpu", "region"), vec!["eu", "us"]);
    }
}
