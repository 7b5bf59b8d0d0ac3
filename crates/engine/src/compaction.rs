//! Compaction: choosing input files and merging them into one sequence file.
//!
//! Policy, in order:
//! 1. *Unsequence merge*: the oldest unsequence file together with every sequence file
//!    whose time range it overlaps (IoTDB's cross-space compaction).
//! 2. *Leveled*: when a level holds `compaction_trigger` files, its oldest ones merge into
//!    the next level (up to `max_level`).
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
use crate::tsfile::{ResourceReader, TimeCache, TsFileWriter};
use crate::types::{Column, FieldMerge};

fn overlaps(a: &DataFile, min: i64, max: i64) -> bool {
    a.file.min_time <= max && a.file.max_time >= min
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
    // 2. Leveled.
    for level in 0..opts.max_level {
        let at: Vec<usize> = (0..files.len())
            .filter(|&i| files[i].meta.level == level)
            .collect();
        if at.len() >= opts.compaction_trigger {
            let mut set: BTreeSet<usize> = at.into_iter().take(opts.compaction_trigger).collect();
            close_over(files, &mut set);
            let (v, _) = finish(set);
            return Some((v, level + 1));
        }
    }
    None
}

/// Merge `inputs` (sorted oldest first) into a new file at `path`, applying tombstones.
/// Returns `None` (and writes nothing) when no point survives.
pub(crate) fn merge(
    inputs: &[Arc<DataFile>],
    tombs: &[Arc<Tombstone>],
    path: &Path,
    max_per_block: usize,
) -> Result<Option<()>> {
    // Each input's series in key order, walked side by side straight from the
    // resource sections (no copy of every key: files can hold millions).
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
        let mut acc = FieldMerge::<String>::new();
        for (f, r) in inputs.iter().zip(cursors.iter_mut()) {
            if r.key() != Some(key.as_str()) {
                continue;
            }
            let Some(si) = f.file.series_index_at(r)? else {
                continue;
            };
            if si.key != key {
                return Err(crate::error::Error::corrupt(
                    f.file.path(),
                    format!("index entry of {key:?} names {:?}", si.key),
                ));
            }
            r.advance().map_err(|e| e.with_path(f.file.path()))?;
            let mut times = TimeCache::default();
            for fi in &si.fields {
                let mut c = f
                    .file
                    .read_field_cached(fi, i64::MIN, i64::MAX, &mut times)?;
                for t in tombs {
                    if t.applies(&key, f.meta.max_seq) {
                        c.delete_range(t.min, t.max);
                    }
                }
                acc.add(fi.name.clone(), c);
            }
        }
        let refs: Vec<(&str, &Column)> =
            acc.columns().iter().map(|(n, c)| (n.as_str(), c)).collect();
        w.add_series(&key, &refs)?;
    }
    if w.series_count() == 0 {
        drop(w);
        let _ = std::fs::remove_file(path);
        return Ok(None);
    }
    w.finish()?;
    Ok(Some(()))
}
