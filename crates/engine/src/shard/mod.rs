//! One shard: WAL + memtables + data files + its series list + tombstones.
//!
//! Locks, always taken in this order when nested:
//! `write` (serializes WAL append and memtable apply) → `manifest` (serializes changes to
//! the file set) → `state` (the snapshot readers clone) → `index` → the catalog's
//! state → a memtable's lock.
//!
//! Files: `open.rs` (opening and WAL replay), `index_snapshot.rs` (the series list's
//! snapshot and log), `write.rs` (validation, series, WAL, memtables), `flush.rs`
//! (flushes and compactions), `read.rs` (scans and deletes).

mod flush;
mod index_snapshot;
mod open;
mod read;
mod write;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};
use roaring::RoaringBitmap;

use crate::budget::{IndexMemory, MemoryBudget};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::index::ShardIndex;
use crate::manifest::{FileMeta, Manifest, Tombstone};
use crate::memtable::MemPair;
use crate::options::EngineOptions;
use crate::stats::Metrics;
use crate::tombstones::TombstoneLog;
use crate::tsfile::TsFile;
use crate::util::FastMap;
use crate::wal::{Wal, WalRecovery};

pub(crate) use index_snapshot::snapshot_series;
use index_snapshot::SnapState;

/// Asks the store's background threads for work.
pub(crate) trait Scheduler: Send + Sync + std::fmt::Debug {
    fn flush(&self, shard: Weak<Shard>);
    fn compact(&self, shard: Weak<Shard>);
    /// The per-series structures are near their memory limit: free what can be freed
    /// (idle shards).
    fn index_pressure(&self);
}

/// What a shard shares with the rest of its store.
#[derive(Debug, Clone)]
pub(crate) struct ShardEnv {
    pub opts: EngineOptions,
    pub metrics: Arc<Metrics>,
    pub sched: Arc<dyn Scheduler>,
    pub budget: Arc<MemoryBudget>,
    pub index_mem: Arc<IndexMemory>,
    pub catalog: Arc<Catalog>,
}

/// An open data file plus its manifest entry.
#[derive(Debug)]
pub(crate) struct DataFile {
    pub meta: FileMeta,
    pub file: TsFile,
}

#[derive(Debug, Clone)]
pub(crate) struct Frozen {
    pub mem: Arc<RwLock<MemPair>>,
    pub max_seq: u64,
    pub wal_upto: u64,
}

/// What a reader snapshots. Changed only under the manifest lock (files, tombstones)
/// or the write lock (memtables), always by replacing whole entries.
#[derive(Debug, Clone)]
pub(crate) struct ReadState {
    pub active: Arc<RwLock<MemPair>>,
    pub frozen: VecDeque<Frozen>,
    /// Sorted by (max_seq, id): oldest data first.
    pub files: Vec<Arc<DataFile>>,
    pub tombstones: Vec<Arc<Tombstone>>,
}

impl ReadState {
    /// The newest persisted (flushed or frozen) time of a series: what a new point
    /// must be newer than to be sequence data.
    fn persisted_max(&self, key: &str, sid: u32) -> i64 {
        // Newest files first: once a file gives the series' newest time, files that
        // end before it cannot raise it and are not looked into (with data written
        // in order that is one lookup, not one per file).
        let mut files: Option<i64> = None;
        for f in self.files.iter().rev() {
            if files.is_some_and(|m| f.file.max_time <= m) {
                continue;
            }
            if let Some((_, max)) = f.file.series_range(key) {
                files = Some(files.map_or(max, |m| m.max(max)));
            }
        }
        let frozen = self
            .frozen
            .iter()
            .filter_map(|f| f.mem.read().seq.max_time_of(sid))
            .max();
        files.max(frozen).unwrap_or(i64::MIN)
    }
}

#[derive(Debug)]
struct WriteState {
    /// Shard-wide field-name ids used by memtables.
    fields: FastMap<Box<str>, (u32, Arc<str>)>,
    /// Per series id: newest persisted (flushed or frozen) time. Newer points are
    /// sequence data, the rest unsequence. Filled lazily from the files when a series
    /// is first written after the shard opened.
    watermarks: FastMap<u32, i64>,
}

#[derive(Debug)]
struct ManifestState {
    next_file_id: u64,
    flushed_seq: u64,
}

/// What opening a shard found and repaired.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub wal: WalRecovery,
    /// Leftovers of interrupted flushes/compactions that were deleted.
    pub orphans_removed: usize,
    /// The series list was rebuilt from the data files (no usable snapshot).
    pub index_rebuilt: bool,
}

pub use read::{FieldData, SeriesData, Summarized};

#[derive(Debug)]
pub(crate) struct Shard {
    pub id: u64,
    dir: PathBuf,
    opts: EngineOptions,
    pub(crate) metrics: Arc<Metrics>,
    sched: Arc<dyn Scheduler>,
    budget: Arc<MemoryBudget>,
    index_mem: Arc<IndexMemory>,
    catalog: Arc<Catalog>,
    /// Memtable bytes (active and frozen) last reported to `budget`.
    /// A mutex, not an atomic: measuring and reporting must be one step, or a stale
    /// measurement reported last would leave bytes in the budget that no longer exist.
    mem_reported: Mutex<usize>,
    /// Bytes of the series list, watermarks and file summaries last reported to
    /// `index_mem` (same reasoning).
    index_reported: Mutex<usize>,
    wal: Wal,
    write: Mutex<WriteState>,
    stall: Condvar,
    manifest: Mutex<ManifestState>,
    state: RwLock<ReadState>,
    index: RwLock<ShardIndex>,
    flush_lock: Mutex<()>,
    compact_lock: Mutex<()>,
    /// Serializes index snapshots and their log.
    persist: Mutex<SnapState>,
    frames: Mutex<Vec<Vec<u8>>>,
    pub(crate) flush_queued: AtomicBool,
    pub(crate) compact_queued: AtomicBool,
    /// Set when a compaction met a damaged block: background compactions stop (their
    /// inputs stay as they are) until the shard is reopened; explicit ones still try.
    pub(crate) compaction_halted: AtomicBool,
    closed: AtomicBool,
    /// The shard's tombstones on disk (see `tombstones.rs`).
    tomb_log: TombstoneLog,
    pub recovery: RecoveryReport,
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn file_path(dir: &Path, id: u64) -> PathBuf {
    data_dir(dir).join(format!("{id:010}.tsf"))
}

/// Past this share of the index memory limit, data files keep only their time
/// range in memory (IoTDB's time-index degradation): their per-series summaries
/// are read from disk while lookups use them.
pub(crate) const DEGRADE_SUMMARIES_PERCENT: usize = 50;

/// Opens a data file, its summaries dropped at once under memory pressure
/// (`unreported`: bytes of files opened with it and not counted yet), so a large
/// shard opening does not hold them all first.
fn open_data_file(path: &Path, index_mem: &IndexMemory, unreported: &mut usize) -> Result<TsFile> {
    let f = TsFile::open(path)?;
    if index_mem.above_with(DEGRADE_SUMMARIES_PERCENT, *unreported + f.mem_bytes()) {
        f.degrade();
    }
    *unreported += f.mem_bytes();
    Ok(f)
}

impl Shard {
    fn manifest_of(&self, m: &ManifestState, files: &[Arc<DataFile>]) -> Manifest {
        Manifest {
            version: 1,
            next_file_id: m.next_file_id,
            flushed_seq: m.flushed_seq,
            files: files.iter().map(|f| f.meta.clone()).collect(),
            tombstones: Vec::new(),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Why the WAL refuses writes, when it does (a failed write or fsync); the shard
    /// must be reopened from disk.
    pub fn wal_failure(&self) -> Option<String> {
        self.wal.failure()
    }

    /// Descriptors this shard holds open: the WAL's segment and its data files.
    pub fn open_files(&self) -> usize {
        1 + self.file_count()
    }

    /// Data files.
    pub fn file_count(&self) -> usize {
        self.state.read().files.len()
    }

    // ---------------------------------------------------------------- memory

    /// Bytes in this shard's memtables, active and frozen.
    fn mem_bytes(&self) -> usize {
        let st = self.state.read();
        let frozen: usize = st.frozen.iter().map(|f| f.mem.read().bytes()).sum();
        let active = st.active.read().bytes();
        active + frozen
    }

    /// Bytes in the active memtable (the governor frees the largest first).
    pub fn active_bytes(&self) -> usize {
        self.memtable_load().0
    }

    /// Bytes in the active memtable, and how many frozen ones wait for a flush.
    fn memtable_load(&self) -> (usize, usize) {
        let st = self.state.read();
        let active = st.active.read().bytes();
        (active, st.frozen.len())
    }

    /// Tells the store-wide budget how much memtable memory this shard holds.
    pub fn report_mem(&self) {
        let mut reported = self.mem_reported.lock();
        let now = if self.closed.load(Ordering::Acquire) {
            0
        } else {
            self.mem_bytes()
        };
        self.budget.adjust(*reported, now);
        *reported = now;
    }

    /// Tells the store how much memory its per-series structures take: the series
    /// list, the watermarks and the data files' summaries.
    pub fn report_index_mem(&self) {
        let mut reported = self.index_reported.lock();
        let now = if self.closed.load(Ordering::Acquire) {
            0
        } else {
            let files: usize = self
                .state
                .read()
                .files
                .iter()
                .map(|f| f.file.mem_bytes())
                .sum();
            let watermarks = self.write.lock().watermarks.capacity() * 17;
            files + watermarks + self.index.read().heap_bytes()
        };
        self.index_mem.adjust(*reported, now);
        *reported = now;
    }

    /// The budget is exceeded: freeze the active memtable and queue its flush, unless
    /// this shard already has as many frozen memtables as it may. Returns the bytes
    /// frozen.
    pub fn freeze_for_budget(self: &Arc<Self>) -> Result<usize> {
        self.check_open()?;
        let mut ws = self.write.lock();
        let (bytes, nfrozen) = self.memtable_load();
        if nfrozen >= self.opts.max_frozen_memtables || !self.freeze_locked(&mut ws)? {
            return Ok(0);
        }
        drop(ws);
        self.metrics.add(&self.metrics.budget_freezes, 1);
        self.sched.flush(Arc::downgrade(self));
        Ok(bytes)
    }

    // ---------------------------------------------------------------- lifecycle

    /// Make the WAL durable and persist the index. Memtables are not flushed: the WAL
    /// replays them at the next open (`Store::close` flushes first, through
    /// [`Shard::flush_and_close`]).
    pub fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let span = tracing::info_span!("shard.close", shard_id = self.id);
        let _e = span.enter();
        // Wait for a running flush/compaction to finish its commit.
        let _f = self.flush_lock.lock();
        let _c = self.compact_lock.lock();
        drop(self.write.lock());
        self.stall.notify_all();
        let mut errs = Vec::new();
        if self.wal.failure().is_none() {
            if let Err(e) = self.wal.sync_all() {
                errs.push(e);
            }
        }
        if let Err(e) = self.persist_index() {
            errs.push(e);
        }
        self.report_mem();
        self.report_index_mem();
        Error::from_many(errs)
    }

    /// Flush the memtables into files, then close: what a shard that went idle does,
    /// so that reopening it replays nothing. A flush that fails (a full disk) leaves
    /// the data in the WAL, which the next open replays.
    pub fn flush_and_close(self: &Arc<Self>) -> Result<()> {
        if self.wal.failure().is_none() {
            if let Err(e) = self.flush() {
                tracing::warn!(shard_id = self.id, error = %e, "flush before closing an idle shard failed; the WAL keeps the data");
            }
        }
        self.close()
    }

    pub fn sync_wal(&self) -> Result<()> {
        self.wal.sync_all()
    }

    pub fn file_metas(&self) -> Vec<FileMeta> {
        self.state
            .read()
            .files
            .iter()
            .map(|f| f.meta.clone())
            .collect()
    }

    /// Under index memory pressure: drops its files' series summaries from memory,
    /// the files with the most series first, while `more()` holds.
    pub fn degrade_summaries(&self, more: &dyn Fn() -> bool) {
        let mut files = self.state.read().files.clone();
        files.sort_by_key(|f| std::cmp::Reverse(f.file.series_count()));
        for f in files {
            if !more() {
                break;
            }
            if !f.file.is_degraded() {
                f.file.degrade();
                self.report_index_mem();
            }
        }
    }

    /// Lets go of summaries that degraded files loaded for lookups and no longer use.
    pub fn release_idle_summaries(&self, idle: Duration) {
        for f in &self.state.read().files {
            f.file.release_idle(idle);
        }
    }

    pub fn files_degraded(&self) -> u64 {
        let st = self.state.read();
        st.files.iter().filter(|f| f.file.is_degraded()).count() as u64
    }

    /// How many data files the shard has at each level (index: level).
    pub fn files_per_level(&self) -> Vec<u64> {
        let mut levels = Vec::new();
        for f in &self.state.read().files {
            let l = usize::from(f.meta.level);
            if levels.len() <= l {
                levels.resize(l + 1, 0);
            }
            levels[l] += 1;
        }
        levels
    }

    pub fn tombstone_count(&self) -> usize {
        self.state.read().tombstones.len()
    }

    /// The series ids this shard holds (for the catalog's garbage collection).
    pub fn series_ids(&self) -> RoaringBitmap {
        self.index.read().present.clone()
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        // Whatever was reported leaves the store's accounting with the shard.
        let m = std::mem::take(&mut *self.mem_reported.lock());
        self.budget.adjust(m, 0);
        let i = std::mem::take(&mut *self.index_reported.lock());
        self.index_mem.adjust(i, 0);
    }
}

fn sort_files(files: &mut [Arc<DataFile>]) {
    files.sort_by_key(|f| (f.meta.max_seq, f.meta.id));
}
