//! The shard index on disk: a whole snapshot (`index.snap`, replaced atomically)
//! and a log of the changes since (`index.log`, framed as in `applog`), so a flush
//! appends what changed instead of rewriting every series id.
//!
//! ```text
//! snapshot  "SDIDX003" | u64 generation | u32 id bound | u64 log id | uvarint len |
//!           roaring bitmap of ids | uvarint nm | per measurement: (uvarint len, name),
//!           uvarint nf, per field: (uvarint len, name), u8 type        + u32 crc32c
//! record    u64 log id | u64 generation | u32 id bound | uvarint len | roaring added |
//!           uvarint len | roaring removed | uvarint n | ((uvarint len, measurement),
//!           (uvarint len, field), u8 type)*
//! ```
//!
//! Records count only when their log id is the snapshot's: a new snapshot takes a
//! new id, so a log left from before it (the crash came between the two) is void.
//! `SDIDX002` (no log id, no log) and `SDIDX001` (series keys, before the catalog)
//! are still read.

use roaring::RoaringBitmap;

use super::ShardIndex;
use crate::codec::{corrupt, get_uvarint, put_uvarint, take};
use crate::error::Result;
use crate::types::FieldType;

/// Snapshots written before the series catalog: a list of keys.
const SNAP_MAGIC_V1: &[u8; 8] = b"SDIDX001";
/// Ids without a log.
const SNAP_MAGIC_V2: &[u8; 8] = b"SDIDX002";
const SNAP_MAGIC: &[u8; 8] = b"SDIDX003";

/// A decoded snapshot.
#[derive(Debug)]
pub(crate) enum Snapshot {
    /// Ids of catalog `generation`; every id is below `id_bound`; records of log
    /// `log_id` follow (0: none).
    Ids {
        index: ShardIndex,
        generation: u64,
        id_bound: u32,
        log_id: u64,
    },
    /// A pre-catalog snapshot: series keys (to be resolved) and field types.
    Keys {
        index: ShardIndex,
        keys: Vec<String>,
    },
}

/// What changed in a shard index since it was last written.
#[derive(Debug, Default)]
pub(crate) struct Delta {
    pub added: RoaringBitmap,
    pub removed: RoaringBitmap,
    pub fields: Vec<(Box<str>, Box<str>, FieldType)>,
    /// A change the log cannot say (a measurement's types forgotten, a list
    /// rebuilt, a write that failed): the next write is a whole snapshot.
    pub whole: bool,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn get_str(b: &[u8], pos: &mut usize) -> Result<String> {
    let n = get_uvarint(b, pos)? as usize;
    let raw = take(b, pos, n)?;
    std::str::from_utf8(raw)
        .map(str::to_owned)
        .map_err(|_| corrupt("index snapshot string is not UTF-8"))
}

fn put_bitmap(out: &mut Vec<u8>, b: &RoaringBitmap) {
    put_uvarint(out, b.serialized_size() as u64);
    // Writing into a Vec cannot fail.
    let _ = b.serialize_into(out);
}

fn get_bitmap(b: &[u8], pos: &mut usize) -> Result<RoaringBitmap> {
    let len = get_uvarint(b, pos)? as usize;
    RoaringBitmap::deserialize_from(take(b, pos, len)?)
        .map_err(|e| corrupt(format!("index snapshot bitmap: {e}")))
}

fn get_type(b: &[u8], pos: &mut usize) -> Result<FieldType> {
    FieldType::from_u8(take(b, pos, 1)?[0]).ok_or_else(|| corrupt("index snapshot field type"))
}

fn get_u64(b: &[u8], pos: &mut usize) -> Result<u64> {
    let raw = take(b, pos, 8)?;
    Ok(u64::from_le_bytes(
        raw.try_into().map_err(|_| corrupt("u64"))?,
    ))
}

fn get_u32(b: &[u8], pos: &mut usize) -> Result<u32> {
    let raw = take(b, pos, 4)?;
    Ok(u32::from_le_bytes(
        raw.try_into().map_err(|_| corrupt("u32"))?,
    ))
}

impl Delta {
    /// Anything to write?
    pub fn is_empty(&self) -> bool {
        !self.whole && self.added.is_empty() && self.removed.is_empty() && self.fields.is_empty()
    }

    /// One log record.
    pub fn encode(&self, log_id: u64, generation: u64, id_bound: u32) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(32 + self.added.serialized_size() + self.removed.serialized_size());
        out.extend_from_slice(&log_id.to_le_bytes());
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&id_bound.to_le_bytes());
        put_bitmap(&mut out, &self.added);
        put_bitmap(&mut out, &self.removed);
        put_uvarint(&mut out, self.fields.len() as u64);
        for (m, f, t) in &self.fields {
            put_str(&mut out, m);
            put_str(&mut out, f);
            out.push(*t as u8);
        }
        out
    }
}

impl ShardIndex {
    /// What a snapshot holds, copied (to encode outside the shard's lock).
    pub fn snapshot_copy(&self) -> ShardIndex {
        ShardIndex {
            present: self.present.clone(),
            fields: self.fields.clone(),
            delta: Delta::default(),
            schema_epoch: self.schema_epoch,
            stamp: self.stamp,
        }
    }

    /// A whole snapshot (sealed with a crc32c by the caller).
    pub fn encode(&self, generation: u64, id_bound: u32, log_id: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.present.serialized_size() + 64);
        out.extend_from_slice(SNAP_MAGIC);
        out.extend_from_slice(&generation.to_le_bytes());
        out.extend_from_slice(&id_bound.to_le_bytes());
        out.extend_from_slice(&log_id.to_le_bytes());
        put_bitmap(&mut out, &self.present);
        put_uvarint(&mut out, self.fields.len() as u64);
        for (name, m) in &self.fields {
            put_str(&mut out, name);
            put_uvarint(&mut out, m.len() as u64);
            for (f, t) in m {
                put_str(&mut out, f);
                out.push(*t as u8);
            }
        }
        out
    }

    pub fn decode(b: &[u8]) -> Result<Snapshot> {
        let mut pos = 0;
        let magic = take(b, &mut pos, 8)?;
        let mut index = ShardIndex::default();
        let mut keys = Vec::new();
        let mut ids = None;
        if magic == SNAP_MAGIC || magic == SNAP_MAGIC_V2 {
            let generation = get_u64(b, &mut pos)?;
            let id_bound = get_u32(b, &mut pos)?;
            let log_id = if magic == SNAP_MAGIC {
                get_u64(b, &mut pos)?
            } else {
                0
            };
            index.present = get_bitmap(b, &mut pos)?;
            if index.present.max().is_some_and(|m| m >= id_bound) {
                return Err(corrupt("index snapshot names ids past its bound"));
            }
            ids = Some((generation, id_bound, log_id));
        } else if magic == SNAP_MAGIC_V1 {
            let n = get_uvarint(b, &mut pos)?;
            for _ in 0..n {
                keys.push(get_str(b, &mut pos)?);
            }
        } else {
            return Err(corrupt("bad index snapshot magic"));
        }
        let nm = get_uvarint(b, &mut pos)?;
        for _ in 0..nm {
            let m = get_str(b, &mut pos)?;
            let nf = get_uvarint(b, &mut pos)?;
            for _ in 0..nf {
                let f = get_str(b, &mut pos)?;
                index.register_field(&m, &f, get_type(b, &mut pos)?);
            }
        }
        index.delta = Delta::default();
        Ok(match ids {
            Some((generation, id_bound, log_id)) => Snapshot::Ids {
                index,
                generation,
                id_bound,
                log_id,
            },
            None => Snapshot::Keys { index, keys },
        })
    }

    /// Applies one log record if it belongs to log `log_id` of catalog
    /// `generation`; returns its id bound then.
    pub fn apply_record(
        &mut self,
        rec: &[u8],
        log_id: u64,
        generation: u64,
    ) -> Result<Option<u32>> {
        let mut pos = 0;
        if get_u64(rec, &mut pos)? != log_id || get_u64(rec, &mut pos)? != generation {
            return Ok(None);
        }
        let bound = get_u32(rec, &mut pos)?;
        let added = get_bitmap(rec, &mut pos)?;
        let removed = get_bitmap(rec, &mut pos)?;
        if added.max().is_some_and(|m| m >= bound) {
            return Err(corrupt("index log names ids past its bound"));
        }
        self.present |= added;
        self.present -= removed;
        let nf = get_uvarint(rec, &mut pos)?;
        for _ in 0..nf {
            let m = get_str(rec, &mut pos)?;
            let f = get_str(rec, &mut pos)?;
            self.register_field(&m, &f, get_type(rec, &mut pos)?);
        }
        self.delta = Delta::default();
        Ok(Some(bound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_and_log_round_trip() {
        let mut idx = ShardIndex::default();
        assert!(idx.add_series([3, 7, 100_000]));
        assert!(!idx.add_series([7]));
        idx.register_field("cpu", "v", FieldType::Float);
        let base = idx.encode(42, 100_001, 9);
        let mut removed = RoaringBitmap::new();
        removed.insert(3);
        let d = std::mem::take(&mut idx.delta);
        assert_eq!(d.added.len(), 3);
        idx.add_series([5]);
        idx.remove_series(&removed);
        idx.register_field("cpu", "w", FieldType::Integer);
        let rec = std::mem::take(&mut idx.delta).encode(9, 42, 100_001);
        let Snapshot::Ids {
            mut index,
            generation,
            id_bound,
            log_id,
        } = ShardIndex::decode(&base).unwrap()
        else {
            panic!("expected ids")
        };
        assert_eq!((generation, id_bound, log_id), (42, 100_001, 9));
        assert_eq!(
            index.present.iter().collect::<Vec<_>>(),
            vec![3, 7, 100_000]
        );
        // A record of another log (an older snapshot's) does nothing.
        assert_eq!(index.apply_record(&rec, 8, 42).unwrap(), None);
        assert_eq!(index.apply_record(&rec, 9, 42).unwrap(), Some(100_001));
        assert_eq!(
            index.present.iter().collect::<Vec<_>>(),
            vec![5, 7, 100_000]
        );
        assert_eq!(index.field_type("cpu", "v"), Some(FieldType::Float));
        assert_eq!(index.field_type("cpu", "w"), Some(FieldType::Integer));
        // Ids past the recorded bound are refused.
        assert!(ShardIndex::decode(&idx.encode(42, 50, 1)).is_err());
    }
}
