//! The shard manifest: which data files are live and WAL progress (tombstones are in
//! their own log, `tombstones.rs`).
//!
//! Stored as `MANIFEST`: JSON followed by a 4-byte little-endian crc32c of the JSON.
//! Every change (flush, compaction) writes a complete new manifest with
//! `write_atomic` (temp file, fsync, rename, fsync
//! directory), so a crash leaves either the old or the new file set, never a mix. Files
//! on disk that the manifest does not list are leftovers of an interrupted flush or
//! compaction and are deleted at open; files it lists are never deleted before a
//! manifest without them is durable.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::util::{seal, unseal};
use crate::vfs::write_atomic;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileKind {
    /// Per series, newer than everything flushed before it.
    Seq,
    /// Out-of-order data; merged into the sequence files it overlaps by compaction.
    Unseq,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    pub id: u64,
    pub level: u8,
    pub kind: FileKind,
    /// WAL sequence range of the data in the file. Files are ordered by `max_seq` for
    /// last-write-wins.
    pub min_seq: u64,
    pub max_seq: u64,
}

/// Deletes `[min, max]` of the listed series from every source older than `seq`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    pub seq: u64,
    pub min: i64,
    pub max: i64,
    pub keys: BTreeSet<String>,
}

impl Tombstone {
    /// Does this tombstone hide data of `key` in a source whose newest write is `max_seq`?
    #[inline]
    pub fn applies(&self, key: &str, source_max_seq: u64) -> bool {
        self.seq > source_max_seq && self.keys.contains(key)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub next_file_id: u64,
    /// Every WAL entry with seq <= this is in data files.
    pub flushed_seq: u64,
    pub files: Vec<FileMeta>,
    /// Only in manifests of earlier versions: tombstones live in `TOMBSTONES` now
    /// (see `tombstones.rs`) and move there when such a shard opens.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tombstones: Vec<Tombstone>,
}

pub(crate) const MANIFEST: &str = "MANIFEST";

impl Manifest {
    pub fn load(dir: &Path) -> Result<Option<Manifest>> {
        let path = dir.join(MANIFEST);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let body =
            unseal(&data).ok_or_else(|| Error::corrupt(&path, "manifest checksum mismatch"))?;
        let m: Manifest = serde_json::from_slice(body)
            .map_err(|e| Error::corrupt(&path, format!("manifest: {e}")))?;
        Ok(Some(m))
    }

    pub fn store(&self, dir: &Path) -> Result<()> {
        let body = serde_json::to_vec(self)
            .map_err(|e| Error::Internal(format!("manifest encode: {e}")))?;
        write_atomic(&dir.join(MANIFEST), &seal(body))
    }
}
