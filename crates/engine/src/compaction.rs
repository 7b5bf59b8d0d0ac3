//! Compaction: choosing input files and merging them into one sequence file.
//!
//! Policy, in order:
//! 0. *Purge*: a file holding data a tombstone hides (rewritten, with the files its
//!    age and time range tie it to, so the space of deleted data comes back).
//! 1. *Unsequence merge*: the oldest unsequence file together with every sequence file
//!    whose time range it overlaps (IoTDB's cross-space compaction).
//! 2. *Leveled*: when a level holds `compaction_trigger` files (level 0:
//!    `l0_compaction_trigger`, 2 by default), its oldest ones merge into
//!    the next level (up to `max_level`), as many as fit `max_compaction_bytes` (two at
//!    least); at the top level, files under half the cap merge with each other.
//! 3. *Full* (on request): everything into one file.
//!
//! Last-write-wins needs files ordered by age (`max_seq`). A merged file takes the age of
//! its newest input, so any file whose age lies *between* the inputs' and whose time
//! range overlaps them must join the merge, or its newer values could end up ranked
//! older than the output. [`close_over`] adds such files until none is left.
//!
//! Merging applies tombstones that hide input data, so deleted points are dropped here;
//! the shard then discards tombstones that no longer hide anything.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use crate::error::Result;
use crate::manifest::{FileKind, Tombstone};
use crate::options::EngineOptions;
use crate::shard::DataFile;
use crate::tsfile::{BlockMeta, ResourceReader, SeriesIndex, TimeCache, TsFileWriter};
use crate::types::{Column, FieldType};
use crate::util::FastMap;

fn overlaps(a: &DataFile, min: i64, max: i64) -> bool {
    a.file.min_time <= max && a.file.max_time >= min
}

/// Can `f` hold data that `t` hides (older than it, and listing one of its series
/// in its time range)? Asked of the file's own summaries even when it is degraded:
/// its time range alone would keep every tombstone alive, and the compaction that
/// should retire it would run again and again. A file that cannot be read counts
/// as holding the data (the tombstone stays).
pub(crate) fn hides(t: &Tombstone, f: &DataFile) -> bool {
    t.seq > f.meta.max_seq
        && t.keys
            .iter()
            .any(|k| f.file.holds(k, t.min, t.max).unwrap_or(true))
}

/// Grow `set` (indices into `files`) until it is closed under "age in range and overlapping".
fn close_over(files: &[Arc<DataFile>], set: &mut BTreeSet<usize>) {
    loop {
        let lo = set
            .iter()
            .map(|&i| files[i].meta.max_seq)
            .min()
            .unwrap_or(0);
        let hi = set
            .iter()
            .map(|&i| files[i].meta.max_seq)
            .max()
            .unwrap_or(0);
        let tmin = set
            .iter()
            .map(|&i| files[i].file.min_time)
            .min()
            .unwrap_or(i64::MAX);
        let tmax = set
            .iter()
            .map(|&i| files[i].file.max_time)
            .max()
            .unwrap_or(i64::MIN);
        let add: Vec<usize> = (0..files.len())
            .filter(|i| !set.contains(i))
            .filter(|&i| {
                let f = &files[i];
                f.meta.max_seq >= lo && f.meta.max_seq <= hi && overlaps(f, tmin, tmax)
            })
            .collect();
        if add.is_empty() {
            return;
        }
        set.extend(add);
    }
}

/// Pick the files of the next compaction and the output level.
pub(crate) fn pick(
    files: &[Arc<DataFile>],
    opts: &EngineOptions,
    full: bool,
    tombstones: &[Arc<Tombstone>],
) -> Option<(Vec<Arc<DataFile>>, u8)> {
    let finish = |set: BTreeSet<usize>| {
        let level = set.iter().map(|&i| files[i].meta.level).max().unwrap_or(0);
        (
            set.into_iter()
                .map(|i| files[i].clone())
                .collect::<Vec<_>>(),
            level,
        )
    };
    if full {
        // A single file is rewritten only to purge what tombstones hide.
        let purge = files.len() == 1 && tombstones.iter().any(|t| t.seq > files[0].meta.max_seq);
        if files.is_empty() || (files.len() == 1 && !purge) {
            return None;
        }
        let (v, l) = finish((0..files.len()).collect());
        return Some((v, l.max(1)));
    }
    // 0. Files holding data that tombstones hide: rewritten to reclaim the space.
    if let Some(i) = files
        .iter()
        .position(|f| tombstones.iter().any(|t| hides(t, f)))
    {
        let mut set = BTreeSet::from([i]);
        close_over(files, &mut set);
        let (v, l) = finish(set);
        return Some((v, l.max(1)));
    }
    // 1. Unsequence merge (files are sorted oldest first).
    if let Some(u) = files.iter().position(|f| f.meta.kind == FileKind::Unseq) {
        let mut set = BTreeSet::from([u]);
        let uf = &files[u];
        for (i, f) in files.iter().enumerate() {
            if f.meta.kind == FileKind::Seq && overlaps(f, uf.file.min_time, uf.file.max_time) {
                set.insert(i);
            }
        }
        close_over(files, &mut set);
        let (v, l) = finish(set);
        return Some((v, l.max(1)));
    }
    // 2. Leveled, the oldest files of a level while their sizes fit the cap; files
    //    at the top level merge with each other while they are small.
    let cap = opts.max_compaction_bytes;
    for level in 0..=opts.max_level {
        let top = level == opts.max_level;
        let at: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].meta.level == level)
            .filter(|&i| !top || files[i].file.size() < cap / 2)
            .collect();
        let trigger = if level == 0 {
            opts.l0_compaction_trigger
        } else {
            opts.compaction_trigger
        }
        .max(2);
        if at.len() < trigger {
            continue;
        }
        let mut set = BTreeSet::new();
        let mut total = 0u64;
        for i in at {
            let size = files[i].file.size();
            if set.len() == trigger || (set.len() >= 2 && total + size > cap) {
                break;
            }
            set.insert(i);
            total += size;
        }
        close_over(files, &mut set);
        let (v, _) = finish(set);
        return Some((v, (level + 1).min(opts.max_level)));
    }
    None
}

/// Merge `inputs` (sorted oldest first) into a new file at `path`, applying tombstones.
/// Returns `None` (and writes nothing) when no point survives.
///
/// Series are walked in key order straight from the inputs' resource sections.
/// Within a series, the inputs' chunks are taken in time order: a chunk that no
/// other overlaps, that no tombstone touches and that is full (as InfluxDB does) is
/// copied as it is (checksums verified, nothing decoded); overlapping chunks are
/// decoded together, merged last-write-wins by input age, and re-chunked with what
/// came before. Only one run of overlapping chunks is held decoded at a time.
pub(crate) fn merge(
    inputs: &[Arc<DataFile>],
    tombs: &[Arc<Tombstone>],
    path: &Path,
    max_per_block: usize,
) -> Result<Option<()>> {
    let mut cursors = Vec::with_capacity(inputs.len());
    for f in inputs {
        let mut r = f
            .file
            .resource_reader()
            .map_err(|e| e.with_path(f.file.path()))?;
        r.advance().map_err(|e| e.with_path(f.file.path()))?;
        cursors.push(r);
    }
    let mut w = TsFileWriter::create(path, max_per_block)?;
    let mut key = String::new();
    while let Some(min) = cursors.iter().filter_map(ResourceReader::key).min() {
        key.clear();
        key.push_str(min);
        let mut sources = Vec::new();
        for (f, r) in inputs.iter().zip(cursors.iter_mut()) {
            if r.key() != Some(key.as_str()) {
                continue;
            }
            let si = f.file.series_index_at(r)?;
            r.advance().map_err(|e| e.with_path(f.file.path()))?;
            let Some(si) = si else { continue };
            let hidden: Vec<(i64, i64)> = tombs
                .iter()
                .filter(|t| t.applies(&key, f.meta.max_seq))
                .map(|t| (t.min, t.max))
                .collect();
            sources.push(Source {
                file: f.as_ref(),
                si,
                hidden,
            });
        }
        merge_series(&mut w, &key, &sources, max_per_block)?;
    }
    if w.series_count() == 0 {
        drop(w);
        let _ = crate::vfs::remove_file(path);
        return Ok(None);
    }
    w.finish()?;
    Ok(Some(()))
}

/// One input's view of the series being merged.
struct Source<'a> {
    file: &'a DataFile,
    si: SeriesIndex,
    /// Time ranges that tombstones newer than the input hide.
    hidden: Vec<(i64, i64)>,
}

/// Blocks of one source sharing a time column (v2), or one v1 block.
struct Chunk {
    src: usize,
    min: i64,
    max: i64,
    rows: u32,
    /// (field index in the source's entry, block index), in order on disk.
    members: Vec<(usize, usize)>,
    copyable: bool,
}

fn chunks_of(
    src: usize,
    s: &Source<'_>,
    out_ty: &dyn Fn(&str) -> Option<FieldType>,
    full: u32,
) -> Vec<Chunk> {
    let mut by_time: FastMap<u64, Chunk> = FastMap::default();
    let mut out = Vec::new();
    for (fi, f) in s.si.fields.iter().enumerate() {
        for (bi, b) in f.blocks.iter().enumerate() {
            let Some(t) = b.times else {
                out.push(Chunk {
                    src,
                    min: b.min_time,
                    max: b.max_time,
                    rows: b.rows,
                    members: vec![(fi, bi)],
                    copyable: false,
                });
                continue;
            };
            let c = by_time.entry(t.offset).or_insert_with(|| Chunk {
                src,
                min: b.chunk_min,
                max: b.chunk_max,
                rows: b.rows,
                members: Vec::new(),
                copyable: true,
            });
            c.members.push((fi, bi));
            c.copyable &= out_ty(&f.name) == Some(f.ty) && b.stats.is_some();
        }
    }
    for mut c in by_time.into_values() {
        let si = &s.si;
        c.members
            .sort_by_key(|&(fi, bi)| si.fields[fi].blocks[bi].values.offset);
        c.copyable &= c.rows >= full && !s.hidden.iter().any(|&(a, b)| a <= c.max && b >= c.min);
        out.push(c);
    }
    out
}

fn merge_series(
    w: &mut TsFileWriter,
    key: &str,
    sources: &[Source<'_>],
    max_per_block: usize,
) -> Result<()> {
    // The output's fields: each name with its newest type (older data of another
    // type cannot survive a merge: the newer source wins, as on reads).
    let mut fields: Vec<(String, FieldType)> = Vec::new();
    let mut at: FastMap<String, usize> = FastMap::default();
    for s in sources.iter().rev() {
        for f in &s.si.fields {
            if !at.contains_key(&f.name) {
                at.insert(f.name.clone(), fields.len());
                fields.push((f.name.clone(), f.ty));
            }
        }
    }
    let out_ty = |name: &str| at.get(name).map(|&i| fields[i].1);
    let full = max_per_block.max(1) as u32;
    let mut chunks: Vec<Chunk> = sources
        .iter()
        .enumerate()
        .flat_map(|(i, s)| chunks_of(i, s, &out_ty, full))
        .collect();
    chunks.sort_by_key(|c| (c.min, c.src));
    let decl: Vec<(&str, FieldType)> = fields.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    w.begin_series(key, &decl)?;
    let mut pending = Pending::new(fields.len(), max_per_block);
    let mut i = 0;
    while i < chunks.len() {
        // A run of chunks overlapping one another (transitively).
        let mut end = chunks[i].max;
        let mut j = i + 1;
        while j < chunks.len() && chunks[j].min <= end {
            end = end.max(chunks[j].max);
            j += 1;
        }
        let run = &chunks[i..j];
        if run.len() == 1 && run[0].copyable {
            pending.flush_all(w)?;
            let c = &run[0];
            let s = &sources[c.src];
            let members: Vec<(usize, &BlockMeta)> = c
                .members
                .iter()
                .map(|&(fi, bi)| {
                    let f = &s.si.fields[fi];
                    (at[&f.name], &f.blocks[bi])
                })
                .collect();
            w.copy_chunk(&s.file.file, &members)?;
        } else {
            // Decode the run, source by source (oldest first), newer winning.
            let mut merged: Vec<Option<Column>> = vec![None; fields.len()];
            let mut order: Vec<&Chunk> = run.iter().collect();
            order.sort_by_key(|c| (c.src, c.min));
            let mut cache = TimeCache::default();
            let mut cache_src = usize::MAX;
            for c in order {
                let s = &sources[c.src];
                if cache_src != c.src {
                    cache = TimeCache::default();
                    cache_src = c.src;
                }
                for &(fi, bi) in &c.members {
                    let f = &s.si.fields[fi];
                    let out = at[&f.name];
                    if fields[out].1 != f.ty {
                        continue; // hidden by the newer type, as on reads
                    }
                    let mut col = s
                        .file
                        .file
                        .read_block_cached(f.ty, &f.blocks[bi], &mut cache)?;
                    for &(a, b) in &s.hidden {
                        col.delete_range(a, b);
                    }
                    merged[out] = Some(match merged[out].take() {
                        None => col,
                        Some(prev) => Column::merge(prev, col),
                    });
                }
            }
            pending.append(merged);
            pending.flush_full(w)?;
        }
        i = j;
    }
    pending.flush_all(w)?;
    w.end_series()
}

/// Decoded rows waiting to fill whole chunks.
struct Pending {
    cols: Vec<Option<Column>>,
    max_rows: usize,
}

impl Pending {
    fn new(nfields: usize, max_rows: usize) -> Self {
        Pending {
            cols: vec![None; nfields],
            max_rows: max_rows.max(1),
        }
    }

    /// Adds columns that all lie after what is pending.
    fn append(&mut self, cols: Vec<Option<Column>>) {
        for (slot, c) in self.cols.iter_mut().zip(cols) {
            let Some(c) = c.filter(|c| !c.is_empty()) else {
                continue;
            };
            *slot = Some(match slot.take() {
                None => c,
                Some(prev) => Column::merge(prev, c),
            });
        }
    }

    /// Distinct times over all fields.
    fn rows(&self) -> Vec<i64> {
        let mut t: Vec<i64> = self
            .cols
            .iter()
            .flatten()
            .flat_map(|c| c.times.iter().copied())
            .collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    /// Writes whole chunks' worth of the earliest rows; keeps the rest.
    fn flush_full(&mut self, w: &mut TsFileWriter) -> Result<()> {
        let rows = self.rows();
        // Keep at least a quarter chunk back, so that a short tail can still join
        // the last chunk (see the writer's chunking).
        let whole = rows.len().saturating_sub(self.max_rows / 4) / self.max_rows * self.max_rows;
        if whole == 0 {
            return Ok(());
        }
        let cut = rows[whole - 1];
        let mut head = Vec::new();
        for (i, slot) in self.cols.iter_mut().enumerate() {
            let Some(c) = slot.take() else { continue };
            let (a, b) = (
                c.slice_time(i64::MIN, cut),
                c.slice_time(cut.saturating_add(1), i64::MAX),
            );
            if !a.is_empty() {
                head.push((i, a));
            }
            if !b.is_empty() {
                *slot = Some(b);
            }
        }
        let refs: Vec<(usize, &Column)> = head.iter().map(|(i, c)| (*i, c)).collect();
        w.add_columns(&refs)
    }

    fn flush_all(&mut self, w: &mut TsFileWriter) -> Result<()> {
        let cols: Vec<(usize, Column)> = self
            .cols
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| c.take().map(|c| (i, c)))
            .collect();
        let refs: Vec<(usize, &Column)> = cols.iter().map(|(i, c)| (*i, c)).collect();
        w.add_columns(&refs)
    }
}
