//! Flushing frozen memtables into files, and compactions.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::{file_path, open_data_file, sort_files, DataFile, Frozen, Shard};
use crate::error::Result;
use crate::manifest::{FileKind, FileMeta, Tombstone};
use crate::tsfile::TsFileWriter;
use crate::types::{Column, FieldMerge};

impl Shard {
    // ---------------------------------------------------------------- flush

    /// Freeze the active memtable and flush everything (used by tests and shutdown).
    pub fn flush(self: &Arc<Self>) -> Result<()> {
        self.check_open()?;
        {
            let mut ws = self.write.lock();
            self.freeze_locked(&mut ws)?;
        }
        self.flush_frozen()
    }

    /// Flush frozen memtables, oldest first, until none is left.
    pub fn flush_frozen(self: &Arc<Self>) -> Result<()> {
        let _g = self.flush_lock.lock();
        loop {
            if self.closed.load(Ordering::Acquire) {
                // The WAL still holds the data; the next open replays it.
                return Ok(());
            }
            let Some(fz) = self.state.read().frozen.front().cloned() else {
                return Ok(());
            };
            let started = Instant::now();
            self.flush_one(&fz)?;
            self.metrics.add(&self.metrics.flushes, 1);
            self.metrics
                .observe(&self.metrics.latencies.flush, started.elapsed());
            // Wake stalled writers (taking the lock orders this after their check).
            drop(self.write.lock());
            self.stall.notify_all();
            if self.opts.auto_compaction {
                self.sched.compact(Arc::downgrade(self));
            }
        }
    }

    fn alloc_file_id(&self) -> u64 {
        let mut m = self.manifest.lock();
        let id = m.next_file_id;
        m.next_file_id += 1;
        id
    }

    fn flush_one(&self, fz: &Frozen) -> Result<()> {
        let span = tracing::info_span!("shard.flush", shard_id = self.id, max_seq = fz.max_seq);
        let _e = span.enter();
        let min_seq = self.manifest.lock().flushed_seq + 1;
        let mut new_files = Vec::new();
        {
            let mem = fz.mem.read();
            for (kind, table) in [(FileKind::Seq, &mem.seq), (FileKind::Unseq, &mem.unseq)] {
                if table.is_empty() {
                    continue;
                }
                // Series in key order, as the file format requires. Sorted by (key,
                // sid): several ids can share a key after a drop and re-create; older
                // ids come first and newer ones win on equal times. Only ids are
                // sorted; keys are fetched one at a time (a memtable can hold
                // millions of series).
                let sids = self.catalog.sorted_by_key(table.series.keys().copied());
                let fid = self.alloc_file_id();
                let path = file_path(&self.dir, fid);
                let mut w = TsFileWriter::create(&path, self.opts.max_points_per_block)?;
                let mut cols = FieldMerge::<Arc<str>>::new();
                let mut key: Option<Box<str>> = None;
                for sid in sids {
                    let Some(k) = self.catalog.key(sid) else {
                        continue;
                    };
                    if key.as_ref().is_some_and(|p| *p != k) {
                        if let Some(p) = key.take() {
                            let done = std::mem::replace(&mut cols, FieldMerge::new());
                            let refs: Vec<(&str, &Column)> =
                                done.columns().iter().map(|(n, c)| (&**n, c)).collect();
                            w.add_series(&p, &refs)?;
                        }
                    }
                    key = Some(k);
                    for (name, c) in table.read_series(sid, &|_| true, i64::MIN, i64::MAX) {
                        cols.add(name, c);
                    }
                }
                if let Some(p) = key {
                    let refs: Vec<(&str, &Column)> =
                        cols.columns().iter().map(|(n, c)| (&**n, c)).collect();
                    w.add_series(&p, &refs)?;
                }
                if w.series_count() == 0 {
                    drop(w);
                    let _ = crate::vfs::remove_file(&path);
                    continue;
                }
                w.finish()?;
                let file = open_data_file(&path, &self.index_mem, &mut 0)?;
                new_files.push(Arc::new(DataFile {
                    meta: FileMeta {
                        id: fid,
                        level: 0,
                        kind,
                        min_seq,
                        max_seq: fz.max_seq,
                    },
                    file,
                }));
            }
        }
        // The index snapshot must cover every series the new files name.
        self.persist_index()?;
        {
            let mut ms = self.manifest.lock();
            ms.flushed_seq = ms.flushed_seq.max(fz.max_seq);
            let mut files = self.state.read().files.clone();
            files.extend(new_files);
            sort_files(&mut files);
            self.manifest_of(&ms, &files).store(&self.dir)?;
            // Publish files and retire the memtable in one step so readers never miss data.
            let mut st = self.state.write();
            st.files = files;
            if st
                .frozen
                .front()
                .is_some_and(|f| Arc::ptr_eq(&f.mem, &fz.mem))
            {
                st.frozen.pop_front();
            }
        }
        self.report_mem();
        self.report_index_mem();
        self.wal.remove_upto(fz.wal_upto)
    }

    // ---------------------------------------------------------------- compaction

    /// Run one compaction if the policy picks one. Returns whether it did.
    pub fn compact_once(self: &Arc<Self>, full: bool) -> Result<bool> {
        self.check_open()?;
        let _g = self.compact_lock.lock();
        let (files, tombs) = {
            let st = self.state.read();
            (st.files.clone(), st.tombstones.clone())
        };
        let Some((inputs, level)) = crate::compaction::pick(&files, &self.opts, full, &tombs)
        else {
            return Ok(false);
        };
        let started = Instant::now();
        let span = tracing::info_span!(
            "shard.compact",
            shard_id = self.id,
            inputs = inputs.len(),
            level
        );
        let _e = span.enter();
        let fid = self.alloc_file_id();
        let path = file_path(&self.dir, fid);
        let out = crate::compaction::merge(&inputs, &tombs, &path, self.opts.max_points_per_block);
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                // The inputs stay in place: nothing is lost, and a damaged block
                // keeps failing the reads that touch it until it is repaired.
                let _ = crate::vfs::remove_file(&path);
                if e.is_corruption() {
                    self.corrupt_read(&e);
                    self.compaction_halted.store(true, Ordering::Release);
                }
                return Err(e);
            }
        };
        let meta = FileMeta {
            id: fid,
            level,
            kind: FileKind::Seq,
            min_seq: inputs.iter().map(|f| f.meta.min_seq).min().unwrap_or(0),
            max_seq: inputs.iter().map(|f| f.meta.max_seq).max().unwrap_or(0),
        };
        let new_file = match out {
            Some(()) => Some(Arc::new(DataFile {
                meta,
                file: open_data_file(&path, &self.index_mem, &mut 0)?,
            })),
            None => None, // everything was deleted
        };
        let dead = {
            let ms = self.manifest.lock();
            let applied: BTreeSet<u64> = tombs.iter().map(|t| t.seq).collect();
            let (mut files, frozen, current_tombs) = {
                let st = self.state.read();
                (st.files.clone(), st.frozen.clone(), st.tombstones.clone())
            };
            files.retain(|f| !inputs.iter().any(|i| i.meta.id == f.meta.id));
            files.extend(new_file);
            sort_files(&mut files);
            // A tombstone is dead once no older source can hold data it hides.
            let (tombs, dead): (Vec<Arc<Tombstone>>, Vec<Arc<Tombstone>>) =
                current_tombs.into_iter().partition(|t| {
                    !applied.contains(&t.seq)
                        || frozen.iter().any(|f| f.max_seq < t.seq)
                        || files.iter().any(|f| crate::compaction::hides(t, f))
                });
            self.manifest_of(&ms, &files).store(&self.dir)?;
            {
                let mut st = self.state.write();
                st.files = files;
                st.tombstones = tombs.clone();
            }
            // The files no longer hold what they hid: the log may forget them (a
            // crash before this only keeps tombstones that hide nothing).
            let seqs: Vec<u64> = dead.iter().map(|t| t.seq).collect();
            self.tomb_log.remove(&seqs, &tombs)?;
            dead
        };
        // Outside the manifest lock: deletes take the write lock before it.
        self.forget_emptied_series(&dead)?;
        for f in &inputs {
            // Open readers keep their descriptors; the data stays readable for them.
            let p = f.file.path();
            if let Err(e) = crate::vfs::remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove compacted file");
            }
        }
        self.report_index_mem();
        self.metrics.add(&self.metrics.compactions, 1);
        self.metrics
            .observe(&self.metrics.latencies.compaction, started.elapsed());
        Ok(true)
    }

    /// Series of `dead` tombstones that no file or memtable holds any more leave the
    /// shard's series list (InfluxDB drops a series whose data is all deleted).
    fn forget_emptied_series(&self, dead: &[Arc<Tombstone>]) -> Result<()> {
        if dead.is_empty() {
            return Ok(());
        }
        // Files and frozen memtables change together under the state lock.
        let keys = dead.iter().flat_map(|t| t.keys.iter().map(String::as_str));
        self.forget_unheld(keys, |st, key, sid| {
            Ok(st
                .files
                .iter()
                .any(|f| f.file.holds(key, i64::MIN, i64::MAX).unwrap_or(true))
                || st.active.read().has_series(sid)
                || st.frozen.iter().any(|f| f.mem.read().has_series(sid)))
        })
    }

    /// Compact until the policy has nothing left (with `full`, into one file).
    pub fn compact(self: &Arc<Self>, full: bool) -> Result<()> {
        let mut rounds = 0;
        while self.compact_once(full)? {
            rounds += 1;
            if full {
                break;
            }
            if rounds > 64 {
                break;
            }
        }
        Ok(())
    }
}
