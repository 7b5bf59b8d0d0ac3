//! Reads a data file: footer and resource at open, index entries and blocks on demand.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{END_MAGIC, FOOTER_LEN, MAGIC};
use crate::codec::{corrupt, decode_timestamps, decode_values, get_uvarint, take, unzigzag};
use crate::error::{Error, Result};
use crate::types::{Column, FieldType};

/// In-memory per-series summary (IoTDB's TsFileResource): enough to prune files.
/// It keeps a hash of the series key, not the key: 40 bytes a series in memory,
/// however long the key. The index entry a lookup reads names the key, so a hash
/// collision costs one more small read, never a wrong answer.
#[derive(Debug, Clone, Copy)]
struct ResourceEntry {
    hash: u64,
    min_time: i64,
    max_time: i64,
    entry_off: u64,
    entry_len: u32,
    entry_crc: u32,
}

/// A series of a file as its resource section on disk lists it (see
/// [`TsFile::series_refs`]).
#[derive(Debug, Clone)]
pub struct SeriesRef {
    pub key: Box<str>,
    pub min_time: i64,
    pub max_time: i64,
    entry: ResourceEntry,
}

/// Hash of a series key for resource lookups: seeded once per process (clients
/// choose keys; a fixed hash would let them line up collisions).
fn key_hash(key: &str) -> u64 {
    use std::hash::BuildHasher;
    static STATE: std::sync::OnceLock<foldhash::fast::FixedState> = std::sync::OnceLock::new();
    STATE
        .get_or_init(|| foldhash::fast::FixedState::with_seed(rand::random()))
        .hash_one(key.as_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    pub offset: u64,
    pub size: u32,
    pub count: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub crc: u32,
}

#[derive(Debug, Clone)]
pub struct FieldIndex {
    pub name: String,
    pub ty: FieldType,
    pub blocks: Vec<BlockMeta>,
}

#[derive(Debug, Clone)]
pub struct SeriesIndex {
    pub key: String,
    pub fields: Vec<FieldIndex>,
}

/// An open, immutable data file. Holds its descriptor, so reads keep working after the
/// file is unlinked by a compaction that finished while a query was running.
#[derive(Debug)]
pub struct TsFile {
    path: PathBuf,
    file: File,
    size: u64,
    index_off: u64,
    index_len: u64,
    res_off: u64,
    res_len: u64,
    res_crc: u32,
    /// Sorted by hash.
    resource: Vec<ResourceEntry>,
    pub min_time: i64,
    pub max_time: i64,
}

fn read_exact_at(file: &File, path: &Path, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, off).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corrupt(
                path,
                format!("read of {len} bytes at {off} past end of file"),
            )
        } else {
            Error::io(path, e)
        }
    })?;
    Ok(buf)
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[i..i + 4]);
    u32::from_le_bytes(a)
}

impl TsFile {
    pub fn open(path: &Path) -> Result<TsFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if size < (MAGIC.len() + FOOTER_LEN) as u64 {
            return Err(Error::corrupt(
                path,
                format!("file too short ({size} bytes)"),
            ));
        }
        let head = read_exact_at(&file, path, 0, MAGIC.len())?;
        if head != MAGIC {
            return Err(Error::corrupt(path, "bad file magic"));
        }
        let f = read_exact_at(&file, path, size - FOOTER_LEN as u64, FOOTER_LEN)?;
        if &f[40..48] != END_MAGIC {
            return Err(Error::corrupt(path, "bad footer magic (truncated file?)"));
        }
        let (index_off, index_len, res_off, res_len) =
            (u64_at(&f, 0), u64_at(&f, 8), u64_at(&f, 16), u64_at(&f, 24));
        let res_crc = u32_at(&f, 32);
        let body_end = size - FOOTER_LEN as u64;
        let in_body = |off: u64, len: u64| {
            off >= MAGIC.len() as u64 && off.checked_add(len).is_some_and(|e| e <= body_end)
        };
        if !in_body(index_off, index_len) || !in_body(res_off, res_len) || res_len > 1 << 32 {
            return Err(Error::corrupt(path, "footer offsets out of range"));
        }
        let res = read_exact_at(&file, path, res_off, res_len as usize)?;
        if crc32c::crc32c(&res) != res_crc {
            return Err(Error::corrupt(path, "resource section checksum mismatch"));
        }
        // Sized from the series count up front: no doubling, no copy to shrink.
        let mut resource = Vec::with_capacity(
            (get_uvarint(&res, &mut 0).unwrap_or(0) as usize).min(res.len() / 8),
        );
        parse_resource(&res, index_len, &mut |key, e| {
            resource.push(ResourceEntry {
                hash: key_hash(key),
                ..e
            })
        })
        .map_err(|e| e.with_path(path))?;
        resource.sort_unstable_by_key(|r| r.hash);
        let min_time = resource
            .iter()
            .map(|r| r.min_time)
            .min()
            .unwrap_or(i64::MAX);
        let max_time = resource
            .iter()
            .map(|r| r.max_time)
            .max()
            .unwrap_or(i64::MIN);
        Ok(TsFile {
            path: path.to_path_buf(),
            file,
            size,
            index_off,
            index_len,
            res_off,
            res_len,
            res_crc,
            resource,
            min_time,
            max_time,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Series in the file.
    pub fn series_count(&self) -> usize {
        self.resource.len()
    }

    /// Bytes this open file keeps in memory for its series.
    pub fn mem_bytes(&self) -> usize {
        self.resource.capacity() * std::mem::size_of::<ResourceEntry>() + 256
    }

    /// Every series in the file, sorted by key, read from the file's resource section
    /// (keys are not kept in memory).
    pub fn series_refs(&self) -> Result<Vec<SeriesRef>> {
        let res = read_exact_at(&self.file, &self.path, self.res_off, self.res_len as usize)?;
        if crc32c::crc32c(&res) != self.res_crc {
            return Err(Error::corrupt(
                &self.path,
                "resource section checksum mismatch",
            ));
        }
        let mut out = Vec::with_capacity(self.resource.len());
        parse_resource(&res, self.index_len, &mut |key, entry| {
            out.push(SeriesRef {
                key: key.into(),
                min_time: entry.min_time,
                max_time: entry.max_time,
                entry,
            })
        })
        .map_err(|e| e.with_path(&self.path))?;
        Ok(out)
    }

    /// The resource section, to walk series in key order without a copy of each key
    /// (compaction's merge).
    pub fn resource_reader(&self) -> Result<ResourceReader> {
        let buf = read_exact_at(&self.file, &self.path, self.res_off, self.res_len as usize)?;
        if crc32c::crc32c(&buf) != self.res_crc {
            return Err(Error::corrupt(
                &self.path,
                "resource section checksum mismatch",
            ));
        }
        let mut pos = 0;
        let left = get_uvarint(&buf, &mut pos).map_err(|e| e.with_path(&self.path))?;
        Ok(ResourceReader {
            buf,
            pos,
            left,
            index_len: self.index_len,
            key: 0..0,
            entry: None,
        })
    }

    /// The index entry of the series a [`ResourceReader`] stands on.
    pub fn series_index_at(&self, r: &ResourceReader) -> Result<Option<SeriesIndex>> {
        r.entry.map(|e| self.read_entry(&e)).transpose()
    }

    /// Resource entries with the hash of `key` (almost always none or one).
    fn candidates(&self, key: &str) -> &[ResourceEntry] {
        let h = key_hash(key);
        let lo = self.resource.partition_point(|r| r.hash < h);
        let hi = lo + self.resource[lo..].partition_point(|r| r.hash == h);
        &self.resource[lo..hi]
    }

    /// Time range of `key` in this file (a hash collision can widen it; never narrow).
    pub fn series_range(&self, key: &str) -> Option<(i64, i64)> {
        self.candidates(key).iter().fold(None, |acc, r| {
            Some(match acc {
                None => (r.min_time, r.max_time),
                Some((a, b)) => (a.min(r.min_time), b.max(r.max_time)),
            })
        })
    }

    /// Could this file hold points of `key` within `[min, max]`?
    pub fn may_contain(&self, key: &str, min: i64, max: i64) -> bool {
        self.candidates(key)
            .iter()
            .any(|r| r.min_time <= max && r.max_time >= min)
    }

    /// Read the index entry of one series (one small read, checksummed).
    pub fn series_index(&self, key: &str) -> Result<Option<SeriesIndex>> {
        for r in self.candidates(key) {
            let si = self.read_entry(r)?;
            if si.key == key {
                return Ok(Some(si));
            }
        }
        Ok(None)
    }

    /// The index entry of a series listed by [`TsFile::series_refs`].
    pub fn series_index_of(&self, r: &SeriesRef) -> Result<SeriesIndex> {
        self.read_entry(&r.entry)
    }

    fn read_entry(&self, r: &ResourceEntry) -> Result<SeriesIndex> {
        let buf = read_exact_at(
            &self.file,
            &self.path,
            self.index_off + r.entry_off,
            r.entry_len as usize,
        )?;
        if crc32c::crc32c(&buf) != r.entry_crc {
            return Err(Error::corrupt(
                &self.path,
                format!("index entry at offset {} checksum mismatch", r.entry_off),
            ));
        }
        parse_entry(&buf, self.index_off, self.size).map_err(|e| e.with_path(&self.path))
    }

    /// Read and decode one block (checksum verified).
    pub fn read_block(&self, ty: FieldType, b: &BlockMeta) -> Result<Column> {
        let buf = read_exact_at(&self.file, &self.path, b.offset, b.size as usize)?;
        if crc32c::crc32c(&buf) != b.crc {
            return Err(Error::corrupt(
                &self.path,
                format!("block at offset {} checksum mismatch", b.offset),
            ));
        }
        decode_block(&buf, ty, b.count as usize).map_err(|e| e.with_path(&self.path))
    }

    /// All points of one field within `[min, max]`, skipping blocks outside the range.
    pub fn read_field(&self, f: &FieldIndex, min: i64, max: i64) -> Result<Column> {
        let mut out: Option<Column> = None;
        for b in &f.blocks {
            if b.max_time < min || b.min_time > max {
                continue;
            }
            let mut c = self.read_block(f.ty, b)?;
            if b.min_time < min || b.max_time > max {
                c = c.slice_time(min, max);
            }
            out = Some(match out {
                None => c,
                Some(prev) => Column::merge(prev, c),
            });
        }
        Ok(out.unwrap_or_else(|| Column::new(f.ty)))
    }

    /// Check every checksum in the file (used by tests and offline verification).
    pub fn verify(&self) -> Result<()> {
        for r in self.series_refs()? {
            let s = self.series_index_of(&r)?;
            if *s.key != *r.key {
                return Err(Error::corrupt(
                    &self.path,
                    format!("index entry of {:?} names {:?}", r.key, s.key),
                ));
            }
            for f in &s.fields {
                for b in &f.blocks {
                    self.read_block(f.ty, b)?;
                }
            }
        }
        Ok(())
    }

    pub fn index_len(&self) -> u64 {
        self.index_len
    }
}

/// A cursor over a file's resource section (series in key order).
#[derive(Debug)]
pub struct ResourceReader {
    buf: Vec<u8>,
    pos: usize,
    left: u64,
    index_len: u64,
    key: std::ops::Range<usize>,
    entry: Option<ResourceEntry>,
}

impl ResourceReader {
    /// Moves to the next series; false at the end.
    pub fn advance(&mut self) -> Result<bool> {
        if self.left == 0 {
            self.entry = None;
            return Ok(false);
        }
        self.left -= 1;
        let (start, key, entry) = resource_record(&self.buf, &mut self.pos, self.index_len)?;
        let range = start..start + key.len();
        if self.entry.is_some() && self.buf[self.key.clone()] >= self.buf[range.clone()] {
            return Err(corrupt("resource keys not sorted"));
        }
        self.key = range;
        self.entry = Some(entry);
        Ok(true)
    }

    /// The current series' key (`None` before the first or after the last).
    pub fn key(&self) -> Option<&str> {
        self.entry?;
        std::str::from_utf8(&self.buf[self.key.clone()]).ok()
    }
}

fn decode_block(buf: &[u8], ty: FieldType, n: usize) -> Result<Column> {
    let mut pos = 0;
    let ts_len = get_uvarint(buf, &mut pos)?;
    let ts_len = usize::try_from(ts_len).map_err(|_| corrupt("timestamp length"))?;
    let ts = take(buf, &mut pos, ts_len)?;
    let times = decode_timestamps(ts, n)?;
    let values = decode_values(ty, &buf[pos..], n)?;
    if values.len() != times.len() {
        return Err(corrupt("value count differs from timestamp count"));
    }
    if times.windows(2).any(|w| w[0] >= w[1]) {
        return Err(corrupt("block timestamps are not strictly increasing"));
    }
    Ok(Column { times, values })
}

fn get_str<'a>(b: &'a [u8], pos: &mut usize) -> Result<&'a str> {
    let len = get_uvarint(b, pos)?;
    let len = usize::try_from(len).map_err(|_| corrupt("string length"))?;
    std::str::from_utf8(take(b, pos, len)?).map_err(|_| corrupt("key is not UTF-8"))
}

/// Decodes the resource record at `pos`: where its key starts in `b`, the key, and
/// its entry (the hash left 0).
fn resource_record<'a>(
    b: &'a [u8],
    pos: &mut usize,
    index_len: u64,
) -> Result<(usize, &'a str, ResourceEntry)> {
    let len = usize::try_from(get_uvarint(b, pos)?).map_err(|_| corrupt("key length"))?;
    let start = *pos;
    let key = std::str::from_utf8(take(b, pos, len)?).map_err(|_| corrupt("key is not UTF-8"))?;
    let min_time = unzigzag(get_uvarint(b, pos)?);
    let max_time = unzigzag(get_uvarint(b, pos)?);
    let entry_off = get_uvarint(b, pos)?;
    let entry_len = get_uvarint(b, pos)?;
    let entry_crc = u32_at(take(b, pos, 4)?, 0);
    if entry_off
        .checked_add(entry_len)
        .is_none_or(|e| e > index_len)
        || entry_len > u64::from(u32::MAX)
        || min_time > max_time
    {
        return Err(corrupt("resource entry out of range"));
    }
    let entry = ResourceEntry {
        hash: 0,
        min_time,
        max_time,
        entry_off,
        entry_len: entry_len as u32,
        entry_crc,
    };
    Ok((start, key, entry))
}

/// Walks the resource section: `f(key, entry)` per series in key order (the entry's
/// hash is left 0).
fn parse_resource(b: &[u8], index_len: u64, f: &mut dyn FnMut(&str, ResourceEntry)) -> Result<()> {
    let mut pos = 0;
    let n = get_uvarint(b, &mut pos)?;
    let mut prev: Option<&str> = None;
    for _ in 0..n {
        let (_, key, entry) = resource_record(b, &mut pos, index_len)?;
        if prev.is_some_and(|p| p >= key) {
            return Err(corrupt("resource keys not sorted"));
        }
        prev = Some(key);
        f(key, entry);
    }
    Ok(())
}

fn parse_entry(b: &[u8], blocks_end: u64, _size: u64) -> Result<SeriesIndex> {
    let mut pos = 0;
    let key = get_str(b, &mut pos)?.to_owned();
    let nf = get_uvarint(b, &mut pos)?;
    let mut fields = Vec::with_capacity((nf as usize).min(b.len()));
    for _ in 0..nf {
        let name = get_str(b, &mut pos)?.to_owned();
        let ty = FieldType::from_u8(take(b, &mut pos, 1)?[0])
            .ok_or_else(|| corrupt("unknown field type"))?;
        let nb = get_uvarint(b, &mut pos)?;
        let mut blocks = Vec::with_capacity((nb as usize).min(b.len()));
        for _ in 0..nb {
            let offset = get_uvarint(b, &mut pos)?;
            let size = get_uvarint(b, &mut pos)?;
            let count = get_uvarint(b, &mut pos)?;
            let min_time = unzigzag(get_uvarint(b, &mut pos)?);
            let span = get_uvarint(b, &mut pos)?;
            let crc = u32_at(take(b, &mut pos, 4)?, 0);
            if offset.checked_add(size).is_none_or(|e| e > blocks_end)
                || size > u64::from(u32::MAX)
                || count == 0
                || count > crate::codec::MAX_BLOCK_VALUES as u64
            {
                return Err(corrupt("block entry out of range"));
            }
            blocks.push(BlockMeta {
                offset,
                size: size as u32,
                count: count as u32,
                min_time,
                max_time: min_time.wrapping_add(span as i64),
                crc,
            });
        }
        fields.push(FieldIndex { name, ty, blocks });
    }
    Ok(SeriesIndex { key, fields })
}
