//! A shard's index: which series of its database's catalog (see `catalog`) the shard
//! holds, and each measurement's field types.
//!
//! Series ids come from the catalog and are stable on disk for one catalog
//! generation. Data files and the WAL store series *keys*, so a shard can always
//! rebuild its list from them. The index is persisted as a checksummed snapshot
//! (`index.snap`, see [`ShardIndex::encode`]) written atomically after flushes and at
//! close; series that arrive later are recovered from the WAL, and a lost snapshot —
//! or one naming another catalog generation — is rebuilt from the data files.

mod predicate;
pub use predicate::TagPredicate;

use std::borrow::Cow;

use roaring::RoaringBitmap;

use crate::codec::{corrupt, get_uvarint, put_uvarint, take};
use crate::error::Result;
use crate::types::FieldType;
use crate::util::FastMap;

/// Snapshots written before the series catalog: a list of keys.
const SNAP_MAGIC_V1: &[u8; 8] = b"SDIDX001";
const SNAP_MAGIC: &[u8; 8] = b"SDIDX002";

/// Field name → type of one measurement.
pub(crate) type FieldTypes = FastMap<Box<str>, FieldType>;

#[derive(Debug, Default)]
pub(crate) struct ShardIndex {
    /// Catalog ids of the series this shard holds data for.
    pub present: RoaringBitmap,
    fields: FastMap<Box<str>, FieldTypes>,
    /// Changed since the last snapshot.
    pub dirty: bool,
    /// Bumped whenever a field type is forgotten (a dropped measurement), so a write
    /// validated before can tell, under the shard's write lock, that it must check
    /// its types again.
    pub schema_epoch: u64,
}

/// A decoded snapshot.
#[derive(Debug)]
pub(crate) enum Snapshot {
    /// Ids of catalog `generation`; every id is below `id_bound`.
    Ids {
        index: ShardIndex,
        generation: u64,
        id_bound: u32,
    },
    /// A pre-catalog snapshot: series keys (to be resolved) and field types.
    Keys {
        index: ShardIndex,
        keys: Vec<String>,
    },
}

/// The parts of a series key, borrowed from it unless they hold escapes.
pub(crate) type KeyParts<'a> = (Cow<'a, str>, Vec<(Cow<'a, str>, Cow<'a, str>)>);

/// Split a canonical series key (`m,k1=v1,k2=v2`, escaped) into unescaped parts,
/// without allocating for parts that have no escapes.
pub(crate) fn split_series_key(key: &str) -> KeyParts<'_> {
    let b = key.as_bytes();
    // Split on unescaped commas: the measurement, then `key=value` parts.
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
    let measurement = unescape(parts.remove(0), b", ");
    let tags = parts
        .into_iter()
        .map(|p| {
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
                None => (p, ""),
            };
            (unescape(k, b", ="), unescape(v, b", ="))
        })
        .collect();
    (measurement, tags)
}

/// [`split_series_key`] with owned parts.
pub fn parse_series_key(key: &str) -> (String, Vec<(String, String)>) {
    let (m, tags) = split_series_key(key);
    (
        m.into_owned(),
        tags.into_iter()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    )
}

fn unescape<'a>(s: &'a str, escapable: &[u8]) -> Cow<'a, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
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
    Cow::Owned(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

impl ShardIndex {
    pub fn fields_of(&self, measurement: &str) -> Option<&FieldTypes> {
        self.fields.get(measurement)
    }

    #[cfg(test)]
    pub fn field_type(&self, measurement: &str, field: &str) -> Option<FieldType> {
        self.fields.get(measurement)?.get(field).copied()
    }

    /// Register a field type unless one exists; returns the type in force.
    pub fn register_field(&mut self, measurement: &str, field: &str, ty: FieldType) -> FieldType {
        let m = match self.fields.get_mut(measurement) {
            Some(m) => m,
            None => self.fields.entry(measurement.into()).or_default(),
        };
        if let Some(t) = m.get(field) {
            return *t;
        }
        m.insert(field.into(), ty);
        self.dirty = true;
        ty
    }

    pub fn field_keys(&self, measurement: &str) -> Vec<(String, FieldType)> {
        let mut v: Vec<(String, FieldType)> =
            self.fields.get(measurement).map_or_else(Vec::new, |m| {
                m.iter().map(|(k, t)| (k.to_string(), *t)).collect()
            });
        v.sort();
        v
    }

    /// Whether any of `ids` (other than `u32::MAX`) is not in the list yet.
    pub fn misses(&self, ids: &[u32]) -> bool {
        ids.iter()
            .any(|&i| i != u32::MAX && !self.present.contains(i))
    }

    /// No field types known (a snapshot never saw a write).
    pub fn is_empty_schema(&self) -> bool {
        self.fields.is_empty()
    }

    /// Adds series ids; true when one was new.
    pub fn add_series(&mut self, ids: impl IntoIterator<Item = u32>) -> bool {
        let before = self.present.len();
        self.present
            .extend(ids.into_iter().filter(|&i| i != u32::MAX));
        let grew = self.present.len() != before;
        self.dirty |= grew;
        grew
    }

    pub fn remove_series(&mut self, ids: &RoaringBitmap) {
        self.present -= ids;
        self.dirty = true;
    }

    /// Forget a measurement's field types (its series are removed by the caller).
    pub fn drop_measurement_schema(&mut self, measurement: &str) {
        if self.fields.remove(measurement).is_some() {
            self.dirty = true;
            self.schema_epoch += 1;
        }
    }

    pub fn heap_bytes(&self) -> usize {
        self.present.serialized_size()
            + self
                .fields
                .iter()
                .map(|(m, f)| m.len() + 64 + f.len() * 48)
                .sum::<usize>()
    }

    /// What a snapshot holds, copied (to encode outside the shard's lock).
    pub fn snapshot_copy(&self) -> ShardIndex {
        ShardIndex {
            present: self.present.clone(),
            fields: self.fields.clone(),
            dirty: false,
            schema_epoch: self.schema_epoch,
        }
    }

    /// Snapshot: magic | u64 generation | u32 id bound | uvarint len | roaring bitmap |
    /// uvarint nm | per measurement: name, uvarint nf, per field: name, u8 type.
    /// Sealed with a crc32c by the caller.
    pub fn encode(&self, generation: u64, id_bound: u32) -> Vec<u8> {
        let size = self.present.serialized_size();
        let mut out = Vec::with_capacity(size + 64);
        out.extend_from_slice(SNAP_MAGIC);
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&id_bound.to_le_bytes());
        put_uvarint(&mut out, size as u64);
        // Writing into a Vec cannot fail.
        let _ = self.present.serialize_into(&mut out);
        put_uvarint(&mut out, self.fields.len() as u64);
        for (name, m) in &self.fields {
            put_uvarint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            put_uvarint(&mut out, m.len() as u64);
            for (f, t) in m {
                put_uvarint(&mut out, f.len() as u64);
                out.extend_from_slice(f.as_bytes());
                out.push(*t as u8);
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Snapshot> {
        let mut pos = 0;
        let magic = take(b, &mut pos, 8)?;
        let s = |b: &[u8], pos: &mut usize| -> Result<String> {
            let n = get_uvarint(b, pos)? as usize;
            let raw = take(b, pos, n)?;
            std::str::from_utf8(raw)
                .map(str::to_owned)
                .map_err(|_| corrupt("index snapshot string is not UTF-8"))
        };
        let mut index = ShardIndex::default();
        let mut keys = Vec::new();
        let mut ids = None;
        if magic == SNAP_MAGIC {
            let g = take(b, &mut pos, 8)?;
            let generation = u64::from_le_bytes(g.try_into().map_err(|_| corrupt("generation"))?);
            let n = take(b, &mut pos, 4)?;
            let id_bound = u32::from_le_bytes(n.try_into().map_err(|_| corrupt("id bound"))?);
            let len = get_uvarint(b, &mut pos)? as usize;
            let raw = take(b, &mut pos, len)?;
            index.present = RoaringBitmap::deserialize_from(raw)
                .map_err(|e| corrupt(format!("index snapshot bitmap: {e}")))?;
            if index.present.max().is_some_and(|m| m >= id_bound) {
                return Err(corrupt("index snapshot names ids past its bound"));
            }
            ids = Some((generation, id_bound));
        } else if magic == SNAP_MAGIC_V1 {
            let n = get_uvarint(b, &mut pos)?;
            for _ in 0..n {
                keys.push(s(b, &mut pos)?);
            }
        } else {
            return Err(corrupt("bad index snapshot magic"));
        }
        let nm = get_uvarint(b, &mut pos)?;
        for _ in 0..nm {
            let m = s(b, &mut pos)?;
            let nf = get_uvarint(b, &mut pos)?;
            for _ in 0..nf {
                let f = s(b, &mut pos)?;
                let t = FieldType::from_u8(take(b, &mut pos, 1)?[0])
                    .ok_or_else(|| corrupt("index snapshot field type"))?;
                index.register_field(&m, &f, t);
            }
        }
        index.dirty = false;
        Ok(match ids {
            Some((generation, id_bound)) => Snapshot::Ids {
                index,
                generation,
                id_bound,
            },
            None => Snapshot::Keys { index, keys },
        })
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
    fn snapshot_round_trip() {
        let mut idx = ShardIndex::default();
        assert!(idx.add_series([3, 7, 100_000]));
        assert!(!idx.add_series([7]));
        idx.register_field("cpu", "v", FieldType::Float);
        let Snapshot::Ids {
            index,
            generation,
            id_bound,
        } = ShardIndex::decode(&idx.encode(42, 100_001)).unwrap()
        else {
            panic!("expected ids")
        };
        assert_eq!((generation, id_bound), (42, 100_001));
        assert_eq!(
            index.present.iter().collect::<Vec<_>>(),
            vec![3, 7, 100_000]
        );
        assert_eq!(index.field_type("cpu", "v"), Some(FieldType::Float));
        // Ids past the recorded bound are refused.
        assert!(ShardIndex::decode(&idx.encode(42, 50)).is_err());
    }
}
