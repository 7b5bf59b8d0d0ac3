//! Reads a data file: footer and resource at open, index entries and blocks on demand.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::entry::{
    parse_dict, parse_entry_v1, parse_entry_v2, parse_resource, resource_record, u32_at, BlockMeta,
    BlockRef, FieldDict, FieldIndex, ResourceEntry, SeriesIndex,
};
use super::stats::BlockStats;
use super::{END_MAGIC, FOOTER_LEN, MAGIC_V1, MAGIC_V2};
use crate::codec::{corrupt, decode_timestamps, decode_values, get_uvarint, take};
use crate::error::{Error, Result};
use crate::types::{Column, FieldType, Values};

/// What [`TsFile::check`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileCheck {
    pub series: usize,
    pub blocks: usize,
    /// One line per damaged block.
    pub broken: Vec<String>,
}

/// Time columns decoded during one read, by block offset: the fields of a group
/// share them, so each is read and decoded once.
#[derive(Debug, Default)]
pub struct TimeCache(crate::util::FastMap<u64, std::sync::Arc<[i64]>>);

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

/// An open, immutable data file. Holds its descriptor, so reads keep working after the
/// file is unlinked by a compaction that finished while a query was running.
#[derive(Debug)]
pub struct TsFile {
    path: PathBuf,
    version: u8,
    /// Seed of the v2 index entries' key checks.
    seed: u32,
    /// Field names and types v2 entries refer to by number.
    dict: FieldDict,
    /// What `dict` takes (counted with the summaries; computed once: shards add
    /// up their files' memory after every write that adds series).
    dict_bytes: usize,
    file: File,
    size: u64,
    index_off: u64,
    index_len: u64,
    res_off: u64,
    res_len: u64,
    res_crc: u32,
    /// The per-series summaries (key hash, time range, where the index entry is),
    /// sorted by hash; `None` once degraded under memory pressure to the file's
    /// time range, when lookups load them from disk for a while ([`Self::summaries`]).
    resident: RwLock<Option<Arc<Summaries>>>,
    /// Summaries of a degraded file loaded for lookups, and when they were last used.
    on_demand: Mutex<Option<(Arc<Summaries>, Instant)>>,
    series: usize,
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

impl TsFile {
    pub fn open(path: &Path) -> Result<TsFile> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if size < (MAGIC_V2.len() + FOOTER_LEN) as u64 {
            return Err(Error::corrupt(
                path,
                format!("file too short ({size} bytes)"),
            ));
        }
        let head = read_exact_at(&file, path, 0, MAGIC_V2.len())?;
        let version = match head.as_slice() {
            h if h == MAGIC_V1 => 1,
            h if h == MAGIC_V2 => 2,
            _ => return Err(Error::corrupt(path, "bad file magic")),
        };
        let f = read_exact_at(&file, path, size - FOOTER_LEN as u64, FOOTER_LEN)?;
        if &f[40..48] != END_MAGIC {
            return Err(Error::corrupt(path, "bad footer magic (truncated file?)"));
        }
        let (index_off, index_len, res_off, res_len) =
            (u64_at(&f, 0), u64_at(&f, 8), u64_at(&f, 16), u64_at(&f, 24));
        let res_crc = u32_at(&f, 32);
        let body_end = size - FOOTER_LEN as u64;
        let in_body = |off: u64, len: u64| {
            off >= MAGIC_V2.len() as u64 && off.checked_add(len).is_some_and(|e| e <= body_end)
        };
        if !in_body(index_off, index_len) || !in_body(res_off, res_len) || res_len > 1 << 32 {
            return Err(Error::corrupt(path, "footer offsets out of range"));
        }
        let seed = u32_at(&f, 36);
        let res = read_resource(&file, path, version, res_off, res_len, res_crc)?;
        let (resource, end) = summaries_of(&res, index_len).map_err(|e| e.with_path(path))?;
        let dict = match version {
            1 => FieldDict::from(Vec::new()),
            _ => parse_dict(&res, end).map_err(|e| e.with_path(path))?,
        };
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
            version,
            seed,
            dict_bytes: dict.iter().map(|(n, _)| n.len() + 24).sum(),
            dict,
            file,
            size,
            index_off,
            index_len,
            res_off,
            res_len,
            res_crc,
            series: resource.len(),
            resident: RwLock::new(Some(resource)),
            on_demand: Mutex::new(None),
            min_time,
            max_time,
        })
    }

    /// Drops the per-series summaries from memory (keeping the file's time range).
    /// Lookups then load them from disk while they are in use
    /// ([`Self::release_idle`] lets them go).
    pub fn degrade(&self) {
        *self.resident.write() = None;
    }

    pub fn is_degraded(&self) -> bool {
        self.resident.read().is_none()
    }

    /// Lets go of summaries loaded for lookups and unused for `idle`.
    pub fn release_idle(&self, idle: Duration) {
        let mut od = self.on_demand.lock();
        if od.as_ref().is_some_and(|(_, at)| at.elapsed() >= idle) {
            *od = None;
        }
    }

    /// The per-series summaries: resident, or (degraded) loaded from the file and
    /// kept while lookups keep coming.
    fn summaries(&self) -> Result<Arc<Summaries>> {
        if let Some(r) = self.resident.read().as_ref() {
            return Ok(r.clone());
        }
        let mut od = self.on_demand.lock();
        if let Some((r, at)) = od.as_mut() {
            *at = Instant::now();
            return Ok(r.clone());
        }
        let res = self.resource_bytes()?;
        let (r, _) = summaries_of(&res, self.index_len).map_err(|e| e.with_path(&self.path))?;
        *od = Some((r.clone(), Instant::now()));
        Ok(r)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Format version (1: one block per field holding its times; 2: time columns
    /// shared by a series' fields, block statistics).
    pub fn version(&self) -> u8 {
        self.version
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Series in the file.
    pub fn series_count(&self) -> usize {
        self.series
    }

    /// Bytes this open file keeps in memory for its series (summaries loaded for a
    /// degraded file's lookups are transient and not counted).
    pub fn mem_bytes(&self) -> usize {
        let summaries = self.resident.read().as_ref().map_or(0, |r| r.bytes());
        summaries + self.dict_bytes + 256
    }

    /// Every series in the file, sorted by key, read from the file's resource section
    /// (keys are not kept in memory).
    pub fn series_refs(&self) -> Result<Vec<SeriesRef>> {
        let res = self.resource_bytes()?;
        let mut out = Vec::with_capacity(self.series);
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
        let buf = self.resource_bytes()?;
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

    fn resource_bytes(&self) -> Result<Vec<u8>> {
        read_resource(
            &self.file,
            &self.path,
            self.version,
            self.res_off,
            self.res_len,
            self.res_crc,
        )
    }

    /// The index entry of the series a [`ResourceReader`] stands on.
    pub fn series_index_at(&self, r: &ResourceReader) -> Result<Option<SeriesIndex>> {
        match (r.entry, r.key()) {
            (Some(e), Some(key)) => self.entry_of(&e, key).map(Some),
            _ => Ok(None),
        }
    }

    /// Time range of `key` in this file (a hash collision can widen it; never
    /// narrow). A degraded file answers with its own range for any key, so a new
    /// point below it counts as out of order (merged by compaction; still correct).
    pub fn series_range(&self, key: &str) -> Option<(i64, i64)> {
        let guard = self.resident.read();
        let Some(res) = guard.as_ref() else {
            return (self.series > 0).then_some((self.min_time, self.max_time));
        };
        candidates(res, key).iter().fold(None, |acc, r| {
            Some(match acc {
                None => (r.min_time, r.max_time),
                Some((a, b)) => (a.min(r.min_time), b.max(r.max_time)),
            })
        })
    }

    /// Could this file hold points of `key` within `[min, max]`?
    pub fn may_contain(&self, key: &str, min: i64, max: i64) -> bool {
        match self.resident.read().as_ref() {
            Some(res) => overlaps(res, key, min, max),
            None => self.series > 0 && self.min_time <= max && self.max_time >= min,
        }
    }

    /// Does this file hold points of `key` within `[min, max]`, by its summaries
    /// (loaded from disk when the file is degraded)? Decisions that must not be
    /// fooled by a degraded file's answer for any key (compaction dropping a
    /// tombstone, the series list forgetting a series) ask this.
    pub fn holds(&self, key: &str, min: i64, max: i64) -> Result<bool> {
        Ok(overlaps(&*self.summaries()?, key, min, max))
    }

    /// Read the index entry of one series (one small read, checksummed).
    pub fn series_index(&self, key: &str) -> Result<Option<SeriesIndex>> {
        let res = self.summaries()?;
        for r in candidates(&res, key) {
            if let Some(si) = self.read_entry(r, key)? {
                return Ok(Some(si));
            }
        }
        Ok(None)
    }

    /// The index entry of a series listed by [`TsFile::series_refs`].
    pub fn series_index_of(&self, r: &SeriesRef) -> Result<SeriesIndex> {
        self.entry_of(&r.entry, &r.key)
    }

    /// The entry the resource lists for `key`: it must be the key's.
    fn entry_of(&self, r: &ResourceEntry, key: &str) -> Result<SeriesIndex> {
        self.read_entry(r, key)?.ok_or_else(|| {
            Error::corrupt(
                &self.path,
                format!("index entry at offset {} is not {key:?}'s", r.entry_off),
            )
        })
    }

    /// The entry at `r` if it is `key`'s (`None`: another series whose key hash
    /// collides).
    fn read_entry(&self, r: &ResourceEntry, key: &str) -> Result<Option<SeriesIndex>> {
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
        let si = match self.version {
            1 => parse_entry_v1(&buf, self.index_off).map(|si| (si.key == key).then_some(si)),
            _ => parse_entry_v2(&buf, self.index_off, key, self.seed, &self.dict),
        };
        si.map_err(|e| e.with_path(&self.path))
    }

    /// `len` bytes at `offset` as they are (compaction's copies check them).
    pub fn read_range(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        if offset.checked_add(len).is_none_or(|e| e > self.index_off) {
            return Err(Error::corrupt(&self.path, "block range past the blocks"));
        }
        read_exact_at(&self.file, &self.path, offset, len as usize)
    }

    /// Read one checksummed block.
    fn read_ref(&self, r: &BlockRef) -> Result<Vec<u8>> {
        let buf = read_exact_at(&self.file, &self.path, r.offset, r.size as usize)?;
        if crc32c::crc32c(&buf) != r.crc {
            return Err(Error::corrupt(
                &self.path,
                format!("block at offset {} checksum mismatch", r.offset),
            ));
        }
        Ok(buf)
    }

    /// The decoded time column at `r` with `rows` rows, through `cache`.
    fn times(
        &self,
        r: &BlockRef,
        rows: u32,
        cache: &mut TimeCache,
    ) -> Result<std::sync::Arc<[i64]>> {
        if let Some(t) = cache.0.get(&r.offset) {
            return Ok(t.clone());
        }
        let buf = self.read_ref(r)?;
        let times = decode_timestamps(&buf, rows as usize).map_err(|e| e.with_path(&self.path))?;
        if times.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "time block at offset {} is not strictly increasing",
                    r.offset
                ),
            ));
        }
        let t: std::sync::Arc<[i64]> = times.into();
        cache.0.insert(r.offset, t.clone());
        Ok(t)
    }

    /// Read and decode one block of a field (checksums verified).
    pub fn read_block(&self, ty: FieldType, b: &BlockMeta) -> Result<Column> {
        self.read_block_cached(ty, b, &mut TimeCache::default())
    }

    /// [`TsFile::read_block`] sharing decoded time columns through `cache`.
    pub fn read_block_cached(
        &self,
        ty: FieldType,
        b: &BlockMeta,
        cache: &mut TimeCache,
    ) -> Result<Column> {
        let buf = self.read_ref(&b.values)?;
        let Some(tref) = &b.times else {
            return decode_block_v1(&buf, ty, b.count as usize)
                .map_err(|e| e.with_path(&self.path));
        };
        let rows = self.times(tref, b.rows, cache)?;
        let col = if b.count == b.rows {
            decode_values(ty, &buf, rows.len()).map(|values| Column {
                times: rows.to_vec(),
                values,
            })
        } else {
            decode_sparse(&buf, ty, &rows, b.count as usize)
        };
        let col = col.map_err(|e| e.with_path(&self.path))?;
        if col.times.first() != Some(&b.min_time) || col.times.last() != Some(&b.max_time) {
            return Err(Error::corrupt(
                &self.path,
                format!(
                    "block at offset {} disagrees with its index entry",
                    b.values.offset
                ),
            ));
        }
        Ok(col)
    }

    /// All points of one field within `[min, max]`, skipping blocks outside the range.
    pub fn read_field(&self, f: &FieldIndex, min: i64, max: i64) -> Result<Column> {
        self.read_field_cached(f, min, max, &mut TimeCache::default())
    }

    /// [`TsFile::read_field`] sharing decoded time columns through `cache` (pass one
    /// cache for the fields of one series).
    pub fn read_field_cached(
        &self,
        f: &FieldIndex,
        min: i64,
        max: i64,
        cache: &mut TimeCache,
    ) -> Result<Column> {
        let mut out: Option<Column> = None;
        for b in &f.blocks {
            if b.max_time < min || b.min_time > max {
                continue;
            }
            let mut c = self.read_block_cached(f.ty, b, cache)?;
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

    /// Check every checksum and every block's statistics (`sundial verify`, like
    /// `influx_inspect verify`). Damaged blocks are listed and the check goes on;
    /// damage to the index or resource, which hides what follows, ends it with an
    /// error.
    pub fn check(&self) -> Result<FileCheck> {
        let mut out = FileCheck::default();
        for r in self.series_refs()? {
            let s = self.series_index_of(&r)?;
            if *s.key != *r.key {
                return Err(Error::corrupt(
                    &self.path,
                    format!("index entry of {:?} names {:?}", r.key, s.key),
                ));
            }
            out.series += 1;
            let mut cache = TimeCache::default();
            for f in &s.fields {
                for b in &f.blocks {
                    out.blocks += 1;
                    let problem = match self.read_block_cached(f.ty, b, &mut cache) {
                        Err(e) => Some(e.to_string()),
                        Ok(c)
                            if b.stats.is_some()
                                && b.stats != BlockStats::of(&c.times, &c.values) =>
                        {
                            Some("statistics disagree with the values".into())
                        }
                        Ok(_) => None,
                    };
                    if let Some(p) = problem {
                        out.broken.push(format!(
                            "series {:?} field {:?} block at offset {}: {p}",
                            s.key, f.name, b.values.offset
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// [`TsFile::check`] as one result: the first damage found is the error.
    pub fn verify(&self) -> Result<()> {
        match self.check()?.broken.into_iter().next() {
            Some(b) => Err(Error::corrupt(&self.path, b)),
            None => Ok(()),
        }
    }

    pub fn index_len(&self) -> u64 {
        self.index_len
    }
}

/// A file's per-series summaries, sorted by key hash, with a directory on the
/// hashes' top bits: a lookup is two cache misses, where a binary search over a
/// million entries (40 MB) would take twenty (it was a third of the write path's
/// time after a restart, filling watermarks).
#[derive(Debug)]
pub(super) struct Summaries {
    entries: Box<[ResourceEntry]>,
    /// `dir[b]..dir[b + 1]`: the entries whose hash's top bits are `b`.
    dir: Box<[u32]>,
    shift: u32,
}

impl Summaries {
    fn new(mut entries: Vec<ResourceEntry>) -> Summaries {
        entries.sort_unstable_by_key(|r| r.hash);
        // Eight to sixteen entries a bucket (at least two buckets: a shift by 64
        // would overflow).
        let bits = (entries.len() / 8).max(2).ilog2().min(24);
        let shift = 64 - bits;
        let mut dir = vec![0u32; (1usize << bits) + 1];
        for r in &entries {
            dir[(r.hash >> shift) as usize + 1] += 1;
        }
        for b in 1..dir.len() {
            dir[b] += dir[b - 1];
        }
        Summaries {
            entries: entries.into_boxed_slice(),
            dir: dir.into_boxed_slice(),
            shift,
        }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.entries) + std::mem::size_of_val(&*self.dir)
    }

    fn iter(&self) -> impl Iterator<Item = &ResourceEntry> {
        self.entries.iter()
    }
}

/// Resource entries with the hash of `key` (almost always none or one).
fn candidates<'a>(res: &'a Summaries, key: &str) -> &'a [ResourceEntry] {
    let h = key_hash(key);
    let b = (h >> res.shift) as usize;
    let bucket = &res.entries[res.dir[b] as usize..res.dir[b + 1] as usize];
    let lo = bucket.partition_point(|r| r.hash < h);
    let hi = lo + bucket[lo..].partition_point(|r| r.hash == h);
    &bucket[lo..hi]
}

/// Does a summary of `key` overlap `[min, max]`?
fn overlaps(res: &Summaries, key: &str, min: i64, max: i64) -> bool {
    candidates(res, key)
        .iter()
        .any(|r| r.min_time <= max && r.max_time >= min)
}

/// The per-series summaries of a resource section, sorted by key hash, and where
/// the section's series end.
fn summaries_of(res: &[u8], index_len: u64) -> Result<(Arc<Summaries>, usize)> {
    // Sized from the series count up front: no doubling, no copy to shrink.
    let mut out =
        Vec::with_capacity((get_uvarint(res, &mut 0).unwrap_or(0) as usize).min(res.len() / 8));
    let end = parse_resource(res, index_len, &mut |key, e| {
        out.push(ResourceEntry {
            hash: key_hash(key),
            ..e
        })
    })?;
    Ok((Arc::new(Summaries::new(out)), end))
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

/// A v1 block: its times, then its values.
fn decode_block_v1(buf: &[u8], ty: FieldType, n: usize) -> Result<Column> {
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

/// The resource section, checksum verified (and in v2 decompressed).
fn read_resource(
    file: &File,
    path: &Path,
    version: u8,
    off: u64,
    len: u64,
    crc: u32,
) -> Result<Vec<u8>> {
    let res = read_exact_at(file, path, off, len as usize)?;
    if crc32c::crc32c(&res) != crc {
        return Err(Error::corrupt(path, "resource section checksum mismatch"));
    }
    if version == 1 {
        return Ok(res);
    }
    let mut pos = 0;
    let raw = get_uvarint(&res, &mut pos).map_err(|e| e.with_path(path))?;
    // The section's checksum already matched: a wild size means a writer bug, but
    // the cap still bounds what it may allocate.
    if raw > 1 << 32 {
        return Err(Error::corrupt(path, "resource section too large"));
    }
    let out = zstd::bulk::decompress(&res[pos..], raw as usize)
        .map_err(|e| Error::corrupt(path, format!("resource section does not inflate: {e}")))?;
    if out.len() as u64 != raw {
        return Err(Error::corrupt(
            path,
            "resource section inflates to the wrong size",
        ));
    }
    Ok(out)
}

/// A v2 value block of a field missing from some rows: presence bitmap, values.
fn decode_sparse(buf: &[u8], ty: FieldType, rows: &[i64], count: usize) -> Result<Column> {
    let mut pos = 0;
    let bitmap = take(buf, &mut pos, rows.len().div_ceil(8))?;
    let times: Vec<i64> = rows
        .iter()
        .enumerate()
        .filter(|(r, _)| bitmap[r / 8] & (1 << (r % 8)) != 0)
        .map(|(_, &t)| t)
        .collect();
    if times.len() != count {
        return Err(corrupt("presence bitmap disagrees with the value count"));
    }
    let values: Values = decode_values(ty, &buf[pos..], count)?;
    Ok(Column { times, values })
}
