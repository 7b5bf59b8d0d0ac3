//! One node's durable hint queue: append-only, checksummed segment files and a
//! head pointer.
//!
//! ```text
//! <dir>/<node id>/NNNNNNNNNN.seg   "SDHH0001" | record*        (rolled at 16 MiB)
//! record   u32 len | u32 crc32c(payload) | payload           (little-endian)
//! payload  i64 enqueued (ms since the epoch) | u64 shard id |
//!          u16 database length | database | points (WriteToShard payload)
//! <dir>/<node id>/HEAD             "SDHHHEAD" | u64 segment | u64 offset | u32 crc32c
//! ```
//!
//! Appends are fsynced before they return (a hint stands in for an acknowledged
//! write). The head is replaced atomically but not fsynced: after a crash a few
//! delivered hints may be delivered again, which rewrites the same points. At open
//! a torn tail of the last segment (a crash mid-append) is truncated, never
//! replayed; damage earlier in a segment skips the rest of that segment, counted as
//! dropped.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const SEG_MAGIC: &[u8; 8] = b"SDHH0001";
const HEAD_MAGIC: &[u8; 8] = b"SDHHHEAD";
const HEADER: u64 = 8;
const SEGMENT_SIZE: u64 = 16 << 20;
/// A record larger than this is damage, not data (messages are bounded far below).
const MAX_RECORD: u32 = 256 << 20;

/// One queued write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub enqueued_ms: i64,
    pub shard_id: u64,
    pub database: String,
    pub points: bytes::Bytes,
}

impl Hint {
    fn encode(&self) -> Result<Vec<u8>> {
        let db = self.database.as_bytes();
        let db_len = u16::try_from(db.len())
            .map_err(|_| Error::BadRequest("database name too long for a hint".into()))?;
        let len = 8 + 8 + 2 + db.len() + self.points.len();
        let len32 = u32::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_RECORD)
            .ok_or_else(|| Error::BadRequest("write too large for a hint".into()))?;
        let mut out = Vec::with_capacity(8 + len);
        out.extend_from_slice(&len32.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&self.enqueued_ms.to_le_bytes());
        out.extend_from_slice(&self.shard_id.to_le_bytes());
        out.extend_from_slice(&db_len.to_le_bytes());
        out.extend_from_slice(db);
        out.extend_from_slice(&self.points);
        let crc = crc32c::crc32c(&out[8..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }

    fn decode(p: &[u8]) -> Option<Hint> {
        let enqueued_ms = i64::from_le_bytes(p.get(0..8)?.try_into().ok()?);
        let shard_id = u64::from_le_bytes(p.get(8..16)?.try_into().ok()?);
        let db_len = u16::from_le_bytes(p.get(16..18)?.try_into().ok()?) as usize;
        let database = std::str::from_utf8(p.get(18..18 + db_len)?)
            .ok()?
            .to_string();
        let points = bytes::Bytes::copy_from_slice(p.get(18 + db_len..)?);
        Some(Hint {
            enqueued_ms,
            shard_id,
            database,
            points,
        })
    }
}

/// Where a record starts: segment id and byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub segment: u64,
    pub offset: u64,
}

/// What reading at a position found.
enum Read {
    Record(Hint, u64),
    End,
    Damaged,
}

#[derive(Debug)]
pub struct NodeQueue {
    dir: PathBuf,
    /// Segment ids in order, with their lengths.
    segments: Vec<(u64, u64)>,
    head: Pos,
    tail: File,
    /// Records and bytes from the head on.
    pub records: u64,
    pub bytes: u64,
    /// Records skipped at open because of damage.
    pub damaged: u64,
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:010}.seg"))
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Internal(format!("hinted handoff {}: {e}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

fn create_segment(dir: &Path, id: u64) -> Result<File> {
    let p = seg_path(dir, id);
    let mut f = OpenOptions::new()
        .create_new(true)
        .read(true)
        .append(true)
        .open(&p)
        .map_err(|e| io(&p, e))?;
    f.write_all(SEG_MAGIC).map_err(|e| io(&p, e))?;
    f.sync_all().map_err(|e| io(&p, e))?;
    sync_dir(dir)?;
    Ok(f)
}

/// Reads the record at `off` of `f` (of length `len`).
fn read_at(f: &File, off: u64, len: u64) -> Read {
    if off >= len {
        return Read::End;
    }
    let mut head = [0u8; 8];
    if off + 8 > len || f.read_exact_at(&mut head, off).is_err() {
        return Read::Damaged;
    }
    let n = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if n > MAX_RECORD || off + 8 + u64::from(n) > len {
        return Read::Damaged;
    }
    let mut payload = vec![0u8; n as usize];
    if f.read_exact_at(&mut payload, off + 8).is_err() || crc32c::crc32c(&payload) != crc {
        return Read::Damaged;
    }
    match Hint::decode(&payload) {
        Some(h) => Read::Record(h, off + 8 + u64::from(n)),
        None => Read::Damaged,
    }
}

impl NodeQueue {
    /// Opens (or creates) the queue in `dir`.
    pub fn open(dir: &Path) -> Result<NodeQueue> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let mut ids: Vec<u64> = std::fs::read_dir(dir)
            .map_err(|e| io(dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                let s = name.to_str()?;
                s.strip_suffix(".seg")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let head = read_head(dir).unwrap_or(Pos {
            segment: ids.first().copied().unwrap_or(1),
            offset: HEADER,
        });
        // Segments wholly before the head were delivered (their deletion was cut short).
        for &id in ids.iter().filter(|&&id| id < head.segment) {
            let _ = std::fs::remove_file(seg_path(dir, id));
        }
        ids.retain(|&id| id >= head.segment);
        let mut q = NodeQueue {
            dir: dir.to_path_buf(),
            segments: Vec::new(),
            head,
            tail: create_or_reuse_tail(dir, &ids)?,
            records: 0,
            bytes: 0,
            damaged: 0,
        };
        if ids.is_empty() {
            q.segments.push((1, HEADER));
            q.head = Pos {
                segment: 1,
                offset: HEADER,
            };
            return Ok(q);
        }
        if q.head.segment != ids[0] {
            q.head = Pos {
                segment: ids[0],
                offset: HEADER,
            };
        }
        let last = ids[ids.len() - 1];
        for &id in &ids {
            let p = seg_path(dir, id);
            let f = File::open(&p).map_err(|e| io(&p, e))?;
            let len = f.metadata().map_err(|e| io(&p, e))?.len();
            let mut magic = [0u8; 8];
            let good_magic = f.read_exact_at(&mut magic, 0).is_ok() && &magic == SEG_MAGIC;
            let mut off = if id == q.head.segment {
                q.head.offset
            } else {
                HEADER
            };
            let mut end = len;
            if good_magic {
                loop {
                    match read_at(&f, off, len) {
                        Read::Record(_, next) => {
                            q.records += 1;
                            q.bytes += next - off;
                            off = next;
                        }
                        Read::End => break,
                        Read::Damaged => {
                            end = off;
                            break;
                        }
                    }
                }
            } else {
                end = HEADER.min(len);
            }
            if end < len {
                if id == last {
                    // A torn append: cut it off so it is never read as a record.
                    tracing::warn!(path = %p.display(), offset = end, lost_bytes = len - end, "hinted handoff: truncating a torn tail");
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&p)
                        .map_err(|e| io(&p, e))?;
                    f.set_len(end.max(HEADER)).map_err(|e| io(&p, e))?;
                    f.sync_all().map_err(|e| io(&p, e))?;
                    if !good_magic {
                        f.write_all_at(SEG_MAGIC, 0).map_err(|e| io(&p, e))?;
                    }
                    end = end.max(HEADER);
                } else {
                    tracing::error!(path = %p.display(), offset = end, "hinted handoff: damaged segment; the rest of it is skipped");
                    q.damaged += 1;
                }
            }
            q.segments.push((id, end));
        }
        Ok(q)
    }

    /// Appends `hint` durably; `Full` when the queue holds `max_bytes` already.
    pub fn append(&mut self, hint: &Hint, max_bytes: u64) -> Result<()> {
        let rec = hint.encode()?;
        if max_bytes > 0 && self.bytes + rec.len() as u64 > max_bytes {
            return Err(Error::HandoffFull {
                bytes: self.bytes,
                max: max_bytes,
            });
        }
        let (mut id, mut len) = self.segments.last().copied().unwrap_or((1, HEADER));
        if len >= SEGMENT_SIZE {
            id += 1;
            self.tail = create_segment(&self.dir, id)?;
            self.segments.push((id, HEADER));
            len = HEADER;
        }
        let p = seg_path(&self.dir, id);
        let res = (&self.tail)
            .write_all(&rec)
            .and_then(|()| self.tail.sync_data());
        if let Err(e) = res {
            // Leave no partial record behind for the next append to follow.
            let _ = self.tail.set_len(len);
            return Err(io(&p, e));
        }
        if let Some(last) = self.segments.last_mut() {
            last.1 = len + rec.len() as u64;
        }
        self.records += 1;
        self.bytes += rec.len() as u64;
        Ok(())
    }

    /// The hint at the head and the position after it; segments read to the end are
    /// deleted on the way.
    pub fn peek(&mut self) -> Result<Option<(Hint, Pos)>> {
        loop {
            let Some(&(id, len)) = self.segments.iter().find(|s| s.0 == self.head.segment) else {
                return Ok(None);
            };
            let p = seg_path(&self.dir, id);
            let f = File::open(&p).map_err(|e| io(&p, e))?;
            match read_at(&f, self.head.offset, len) {
                Read::Record(h, next) => {
                    return Ok(Some((
                        h,
                        Pos {
                            segment: id,
                            offset: next,
                        },
                    )))
                }
                Read::End | Read::Damaged => {
                    // The rest of this segment is gone: go on with the next one.
                    let Some(&(next, _)) = self.segments.iter().find(|s| s.0 > id) else {
                        return Ok(None);
                    };
                    self.head = Pos {
                        segment: next,
                        offset: HEADER,
                    };
                    write_head(&self.dir, self.head)?;
                    self.segments.retain(|s| s.0 >= next);
                    let _ = std::fs::remove_file(&p);
                }
            }
        }
    }

    /// Moves the head past a hint `peek` returned (delivered or dropped).
    pub fn advance(&mut self, to: Pos) -> Result<()> {
        if to <= self.head {
            return Ok(());
        }
        let size = to.offset - self.head.offset;
        self.head = to;
        self.records = self.records.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
        write_head(&self.dir, self.head)
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }
}

fn create_or_reuse_tail(dir: &Path, ids: &[u64]) -> Result<File> {
    match ids.last() {
        Some(&id) => {
            let p = seg_path(dir, id);
            OpenOptions::new()
                .read(true)
                .append(true)
                .open(&p)
                .map_err(|e| io(&p, e))
        }
        None => create_segment(dir, 1),
    }
}

fn read_head(dir: &Path) -> Option<Pos> {
    let b = std::fs::read(dir.join("HEAD")).ok()?;
    if b.len() != 28 || &b[0..8] != HEAD_MAGIC {
        return None;
    }
    let crc = u32::from_le_bytes(b[24..28].try_into().ok()?);
    if crc32c::crc32c(&b[..24]) != crc {
        return None;
    }
    Some(Pos {
        segment: u64::from_le_bytes(b[8..16].try_into().ok()?),
        offset: u64::from_le_bytes(b[16..24].try_into().ok()?),
    })
}

fn write_head(dir: &Path, pos: Pos) -> Result<()> {
    let mut b = Vec::with_capacity(28);
    b.extend_from_slice(HEAD_MAGIC);
    b.extend_from_slice(&pos.segment.to_le_bytes());
    b.extend_from_slice(&pos.offset.to_le_bytes());
    let crc = crc32c::crc32c(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join("HEAD.tmp");
    std::fs::write(&tmp, &b).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, dir.join("HEAD")).map_err(|e| io(dir, e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hint(i: u64) -> Hint {
        Hint {
            enqueued_ms: i as i64,
            shard_id: i,
            database: "db".into(),
            points: bytes::Bytes::from(vec![i as u8; 100]),
        }
    }

    fn drain(q: &mut NodeQueue) -> Vec<u64> {
        let mut got = Vec::new();
        while let Some((h, next)) = q.peek().unwrap() {
            got.push(h.shard_id);
            q.advance(next).unwrap();
        }
        got
    }

    #[test]
    fn hints_come_back_in_order_across_reopens() {
        let d = tempfile::tempdir().unwrap();
        let mut q = NodeQueue::open(d.path()).unwrap();
        for i in 0..10 {
            q.append(&hint(i), 0).unwrap();
        }
        let (h, next) = q.peek().unwrap().unwrap();
        assert_eq!(h, hint(0));
        q.advance(next).unwrap();
        drop(q);
        let mut q = NodeQueue::open(d.path()).unwrap();
        assert_eq!(q.records, 9);
        assert_eq!(drain(&mut q), (1..10).collect::<Vec<_>>());
        assert!(q.is_empty());
        q.append(&hint(42), 0).unwrap();
        drop(q);
        let mut q = NodeQueue::open(d.path()).unwrap();
        assert_eq!(drain(&mut q), vec![42]);
    }

    #[test]
    fn a_full_queue_refuses_and_a_torn_tail_is_truncated() {
        let d = tempfile::tempdir().unwrap();
        let mut q = NodeQueue::open(d.path()).unwrap();
        q.append(&hint(1), 1000).unwrap();
        let e = q.append(&hint(2), 200).unwrap_err();
        assert!(matches!(e, Error::HandoffFull { .. }), "{e}");
        q.append(&hint(3), 0).unwrap();
        drop(q);
        // Cut the last record in half, as a crash mid-append would.
        let seg = seg_path(d.path(), 1);
        let len = std::fs::metadata(&seg).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&seg)
            .unwrap()
            .set_len(len - 50)
            .unwrap();
        let mut q = NodeQueue::open(d.path()).unwrap();
        assert_eq!(q.records, 1);
        q.append(&hint(4), 0).unwrap();
        assert_eq!(drain(&mut q), vec![1, 4]);
        // Garbage bytes in place of a record are never delivered.
        drop(q);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[0xff; 40]).unwrap();
        let mut q = NodeQueue::open(d.path()).unwrap();
        assert!(q.peek().unwrap().is_none());
    }

    #[test]
    fn segments_roll_and_delivered_ones_are_deleted() {
        let d = tempfile::tempdir().unwrap();
        let mut q = NodeQueue::open(d.path()).unwrap();
        let big = Hint {
            points: bytes::Bytes::from(vec![7u8; 6 << 20]),
            ..hint(0)
        };
        for i in 0..5 {
            q.append(
                &Hint {
                    shard_id: i,
                    ..big.clone()
                },
                0,
            )
            .unwrap();
        }
        assert!(q.segments.len() >= 2);
        assert_eq!(drain(&mut q), (0..5).collect::<Vec<_>>());
        let segs = std::fs::read_dir(d.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".seg")
            })
            .count();
        assert_eq!(segs, 1);
        assert_eq!(q.bytes, 0);
    }
}
