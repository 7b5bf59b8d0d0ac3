//! The on-disk format: file names and magic numbers, the log and snapshot records,
//! CRC-checked frames, and atomic file replacement.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kv::{KeyValue, LeaseId};

pub(super) const WAL_MAGIC: &[u8; 8] = b"SDLWAL01";
pub(super) const SNAP_MAGIC: &[u8; 8] = b"SDLSNAP1";
pub(super) const WAL_FILE: &str = "wal";
pub(super) const SNAP_FILE: &str = "snapshot";
pub(super) const LOCK_FILE: &str = "LOCK";

/// One primitive change in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum LogOp {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: LeaseId,
    },
    Delete {
        key: Vec<u8>,
    },
    Grant {
        id: LeaseId,
        ttl: i64,
    },
    Revoke {
        id: LeaseId,
    },
}

/// One frame of the log: a sequence number, the revision after applying, the changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LogRecord {
    pub(super) seq: u64,
    pub(super) rev: i64,
    pub(super) ops: Vec<LogOp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SnapshotLease {
    pub(super) id: LeaseId,
    pub(super) ttl: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SnapshotFile {
    pub(super) seq: u64,
    pub(super) revision: i64,
    pub(super) next_lease: LeaseId,
    pub(super) kvs: Vec<KeyValue>,
    pub(super) leases: Vec<SnapshotLease>,
}

pub(super) fn io_err(ctx: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{ctx} {}: {e}", path.display()))
}

pub(super) fn encode_frame(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::Storage("meta record larger than 4 GiB".into()))?;
    let mut buf = Vec::with_capacity(payload.len() + 8);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
    Ok(buf)
}

/// Parses frames from `data` (after the magic); returns payloads and the byte length of
/// the valid prefix.
pub(super) fn decode_frames(data: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while data.len() - pos >= 8 {
        let len =
            u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let Some(end) = (pos + 8).checked_add(len) else {
            break;
        };
        if end > data.len() {
            break;
        }
        let payload = &data[pos + 8..end];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        out.push(payload);
        pos = end;
    }
    (out, pos)
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync dir", dir, e))
}

/// Writes `contents` to `dir/name` atomically (tmp + fsync + rename + dir fsync).
pub(super) fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
    f.write_all(contents)
        .map_err(|e| io_err("write", &tmp, e))?;
    f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &dst).map_err(|e| io_err("rename", &dst, e))?;
    fsync_dir(dir)
}
