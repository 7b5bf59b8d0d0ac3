//! Append-only files of checksummed records: the tombstone log and the index
//! snapshot's log of changes.
//!
//! ```text
//! record   u32 len | u32 crc32c(len) | u32 crc32c(payload) | payload (little-endian)
//! ```
//!
//! Each append is fsynced (a new file's directory too). The length has a checksum
//! of its own, so a damaged length is told apart from a record a crash cut short:
//! a torn last record is cut off at open, damage before it is an error.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::vfs::{sync_dir, VFile};

/// Appends one framed record holding `payload` to `out`.
pub(crate) fn frame(payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() as u32).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32c::crc32c(&len).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The file's records in order (empty when it does not exist). A torn last record
/// is left out, and with `repair` cut off the file (fsynced; only its owner may:
/// a reader of a closed shard's files does not write them); damage before it is
/// `Error::Corrupt`.
pub(crate) fn read(path: &Path, what: &str, repair: bool) -> Result<Vec<Vec<u8>>> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let corrupt =
            |why: &str| Error::corrupt(path, format!("{what} record at offset {pos}: {why}"));
        let Some(head) = data.get(pos..pos + 12) else {
            break; // a torn header
        };
        if crc32c::crc32c(&head[..4]) != u32_at(head, 4) {
            return Err(corrupt("length checksum mismatch"));
        }
        let end = pos + 12 + u32_at(head, 0) as usize;
        let Some(body) = data.get(pos + 12..end) else {
            break; // cut short by a crash
        };
        if crc32c::crc32c(body) != u32_at(head, 8) {
            if end == data.len() {
                break; // the last append, torn
            }
            return Err(corrupt("checksum mismatch"));
        }
        out.push(body.to_vec());
        pos = end;
    }
    if pos < data.len() && repair {
        tracing::warn!(path = %path.display(), cut = data.len() - pos, "torn {what} record cut off");
        let file = VFile::existing(path).map_err(|e| Error::io(path, e))?;
        file.set_len(pos as u64).map_err(|e| Error::io(path, e))?;
        file.sync_all().map_err(|e| Error::io(path, e))?;
    }
    Ok(out)
}

/// Appends framed records and fsyncs; the first append creates the file and
/// fsyncs its directory, so the new name survives a power cut. Callers order
/// their appends.
pub(crate) fn append(path: &Path, bytes: &[u8]) -> Result<()> {
    let existed = path.exists();
    let mut f = VFile::append(path, true).map_err(|e| Error::io(path, e))?;
    let before = f.size().map_err(|e| Error::io(path, e))?;
    if let Err(e) = f.write_all(bytes).and_then(|()| f.sync_data()) {
        // A part written (a full disk) would read as damage before the next
        // record: cut it off, so the log stays readable.
        if let Err(c) = f.set_len(before).and_then(|()| f.sync_data()) {
            tracing::error!(path = %path.display(), error = %c, "could not cut back a failed append");
        }
        return Err(Error::io(path, e));
    }
    if !existed {
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    Ok(())
}
