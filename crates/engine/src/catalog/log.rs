//! The catalog's file: `<store>/_series/<db>/series.log`.
//!
//! ```text
//! header  "SDSERLG1" | u64 generation                             (16 bytes)
//! record  u32 len | u32 crc32c(payload) | payload                  (little-endian)
//! payload u8 kind | u32 series id | key bytes (kind 1, add) — nothing more (kind 2, drop)
//! ```
//!
//! Additions are fsynced before any shard may use their ids, so a torn tail only ever
//! holds ids nobody used and is truncated. Damage followed by valid records (bit rot,
//! not a crash) loses ids that shards may have recorded: the file then starts a new
//! generation, and shards whose index snapshot names another generation rebuild their
//! series lists from their data files.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::vfs::{self, create_dir_durable, sync_dir, VFile};

const MAGIC: &[u8; 8] = b"SDSERLG1";
const HEADER: usize = 16;
pub(crate) const KIND_ADD: u8 = 1;
pub(crate) const KIND_DROP: u8 = 2;
const MAX_RECORD: u32 = 1 << 20;

/// One record read back.
#[derive(Debug)]
pub(crate) enum Record<'a> {
    Add(u32, &'a str),
    Drop(u32),
}

/// The open log, positioned at its end.
#[derive(Debug)]
pub(crate) struct SeriesLog {
    path: PathBuf,
    file: VFile,
    len: u64,
    pub generation: u64,
    /// Records appended but not yet fsynced.
    unsynced: bool,
}

fn frame(out: &mut Vec<u8>, kind: u8, id: u32, key: &str) {
    let len = 5 + key.len() as u32;
    let at = out.len();
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    let crc = crc32c::crc32c(&out[at + 8..]);
    out[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes the record at `pos`; `None` when it is damaged or cut short.
fn record_at(data: &[u8], pos: usize) -> Option<(Record<'_>, usize)> {
    let head = data.get(pos..pos + 8)?;
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(5..=MAX_RECORD).contains(&len) {
        return None;
    }
    let payload = data.get(pos + 8..pos + 8 + len as usize)?;
    if crc32c::crc32c(payload) != crc {
        return None;
    }
    let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
    let rec = match payload[0] {
        KIND_ADD => Record::Add(id, std::str::from_utf8(&payload[5..]).ok()?),
        KIND_DROP if len == 5 => Record::Drop(id),
        _ => return None,
    };
    Some((rec, pos + 8 + len as usize))
}

/// Whether a valid record starts anywhere after `from` (damage in the middle of the
/// file rather than a torn tail).
fn valid_record_after(data: &[u8], from: usize) -> bool {
    (from + 1..data.len().saturating_sub(12)).any(|p| record_at(data, p).is_some())
}

impl SeriesLog {
    /// Opens (or creates) the log in `dir`, replaying every record through `apply`.
    /// Returns the log and whether earlier generations' ids are void. The file is
    /// read a megabyte at a time: it holds every key of the database.
    pub fn open(dir: &Path, apply: &mut dyn FnMut(Record<'_>)) -> Result<(SeriesLog, bool)> {
        create_dir_durable(dir)?;
        let path = dir.join("series.log");
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((Self::create(dir, &path, &[])?, false));
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let file_len = f.metadata().map_err(|e| Error::io(&path, e))?.len();
        let mut head = [0u8; HEADER];
        if file_len < HEADER as u64 || f.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
            if file_len > 0 {
                tracing::error!(path = %path.display(), "series catalog header is damaged; starting a new generation");
            }
            return Ok((Self::create(dir, &path, &[])?, file_len > 0));
        }
        let mut generation = [0u8; 8];
        generation.copy_from_slice(&head[8..16]);
        let generation = u64::from_le_bytes(generation);
        // Replay: `buf[at..]` holds unread bytes starting at file offset `off`.
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 20);
        let mut off = HEADER as u64;
        let mut at = 0;
        let mut eof = false;
        loop {
            match record_at(&buf, at) {
                Some((rec, next)) => {
                    apply(rec);
                    off += (next - at) as u64;
                    at = next;
                }
                None if eof => break,
                None => {
                    // Keep the partial record, read more (a record is at most 1 MiB).
                    buf.drain(..at);
                    at = 0;
                    let have = buf.len();
                    buf.resize(have + (1 << 20), 0);
                    let n = f.read(&mut buf[have..]).map_err(|e| Error::io(&path, e))?;
                    buf.truncate(have + n);
                    eof = n == 0;
                }
            }
        }
        let pos = off;
        if pos == file_len {
            return Ok((Self::reopen(&path, pos, generation)?, false));
        }
        let lost = file_len - pos;
        let mut rest = Vec::new();
        f.seek(SeekFrom::Start(pos))
            .and_then(|_| f.read_to_end(&mut rest))
            .map_err(|e| Error::io(&path, e))?;
        if valid_record_after(&rest, 0) {
            tracing::error!(path = %path.display(), offset = pos, lost_bytes = lost,
                "series catalog is damaged in the middle; keeping the valid prefix as a new generation (shards rebuild their series lists)");
            let mut prefix = vec![0u8; (pos - HEADER as u64) as usize];
            f.seek(SeekFrom::Start(HEADER as u64))
                .and_then(|_| f.read_exact(&mut prefix))
                .map_err(|e| Error::io(&path, e))?;
            let log = Self::create(dir, &path, &prefix)?;
            return Ok((log, true));
        }
        tracing::warn!(path = %path.display(), offset = pos, lost_bytes = lost,
            "series catalog: truncating a torn tail (never used by any shard)");
        let file = VFile::existing(&path).map_err(|e| Error::io(&path, e))?;
        file.set_len(pos).map_err(|e| Error::io(&path, e))?;
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        Ok((Self::reopen(&path, pos, generation)?, false))
    }

    fn reopen(path: &Path, len: u64, generation: u64) -> Result<SeriesLog> {
        let file = VFile::append(path, false).map_err(|e| Error::io(path, e))?;
        Ok(SeriesLog {
            path: path.to_path_buf(),
            file,
            len,
            generation,
            unsynced: false,
        })
    }

    /// A new file under a new generation holding `records`, replacing any old one.
    fn create(dir: &Path, path: &Path, records: &[u8]) -> Result<SeriesLog> {
        let generation: u64 = rand::random();
        let tmp = path.with_extension("tmp");
        let mut f = VFile::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        let mut head = Vec::with_capacity(HEADER + records.len());
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&generation.to_le_bytes());
        head.extend_from_slice(records);
        f.write_all(&head).map_err(|e| Error::io(&tmp, e))?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        vfs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
        sync_dir(dir)?;
        Self::reopen(path, head.len() as u64, generation)
    }

    /// Appends additions `(id, key)` and drops (`key` None); with `sync`, they are
    /// durable when this returns. On failure the file is cut back to where it was, so
    /// a half-written batch is never replayed.
    pub fn append(&mut self, recs: &[(u32, Option<&str>)], sync: bool) -> Result<()> {
        let mut buf = Vec::with_capacity(recs.len() * 48);
        for (id, key) in recs {
            match key {
                Some(k) => frame(&mut buf, KIND_ADD, *id, k),
                None => frame(&mut buf, KIND_DROP, *id, ""),
            }
        }
        let res =
            self.file.write_all(&buf).and_then(
                |()| {
                    if sync {
                        self.file.sync_data()
                    } else {
                        Ok(())
                    }
                },
            );
        match res {
            Ok(()) => {
                self.len += buf.len() as u64;
                self.unsynced = !sync;
                Ok(())
            }
            Err(e) => {
                let cut = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.seek(SeekFrom::End(0)).map(|_| ()));
                if let Err(c) = cut {
                    tracing::error!(path = %self.path.display(), error = %c, "could not cut back the series catalog after a failed append");
                }
                Err(Error::io(&self.path, e))
            }
        }
    }

    /// Makes every appended record durable.
    pub fn sync(&mut self) -> Result<()> {
        if self.unsynced {
            self.file
                .sync_data()
                .map_err(|e| Error::io(&self.path, e))?;
            self.unsynced = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replay(dir: &Path) -> (Vec<String>, u64, bool) {
        let mut seen = Vec::new();
        let (log, void) = SeriesLog::open(dir, &mut |r| match r {
            Record::Add(id, k) => seen.push(format!("+{id}:{k}")),
            Record::Drop(id) => seen.push(format!("-{id}")),
        })
        .unwrap();
        (seen, log.generation, void)
    }

    #[test]
    fn appends_replay_and_torn_tails_are_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("db");
        let (mut log, void) = SeriesLog::open(&dir, &mut |_| {}).unwrap();
        assert!(!void);
        let gen = log.generation;
        log.append(&[(0, Some("cpu,host=a")), (1, Some("cpu,host=b"))], true)
            .unwrap();
        log.append(&[(0, None)], false).unwrap();
        log.sync().unwrap();
        drop(log);
        let (seen, g, void) = replay(&dir);
        assert_eq!(seen, vec!["+0:cpu,host=a", "+1:cpu,host=b", "-0"]);
        assert_eq!((g, void), (gen, false));
        // A torn tail: cut, same generation.
        let path = dir.join("series.log");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let (seen, g, void) = replay(&dir);
        assert_eq!(seen.len(), 3);
        assert_eq!((g, void), (gen, false));
        // Damage before valid records: new generation, prefix kept.
        let mut data = std::fs::read(&path).unwrap();
        data[HEADER + 10] ^= 0xff;
        std::fs::write(&path, &data).unwrap();
        let (seen, g, void) = replay(&dir);
        assert!(seen.is_empty());
        assert!(void);
        assert_ne!(g, gen);
    }
}
