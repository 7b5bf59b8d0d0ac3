//! One shard: WAL + memtables + data files + its series list + tombstones.
//!
//! Locks, always taken in this order when nested:
//! `write` (serializes WAL append and memtable apply) → `manifest` (serializes changes to
//! the file set) → `state` (the snapshot readers clone) → `index` → the catalog's
//! state → a memtable's lock.
//!
//! Files: `write.rs` (validation, series, WAL, memtables), `flush.rs` (flushes and
//! compactions), `read.rs` (scans and deletes).

mod flush;
mod read;
mod write;

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use roaring::RoaringBitmap;

use crate::applog;
use crate::batch;
use crate::budget::{IndexMemory, MemoryBudget};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::index::{ShardIndex, Snapshot};
use crate::manifest::{FileMeta, Manifest, Tombstone};
use crate::memtable::MemPair;
use crate::options::EngineOptions;
use crate::stats::Metrics;
use crate::tombstones::TombstoneLog;
use crate::tsfile::TsFile;
use crate::util::{seal, unseal, FastMap};
use crate::vfs::{self, write_atomic};
use crate::wal::{Wal, WalRecovery, KIND_DELETE, KIND_WRITE};

use write::apply_write;

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

const INDEX_SNAP: &str = "index.snap";

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

const INDEX_LOG: &str = "index.log";

/// Where the index snapshot and its log stand (`log_id` 0: the next write is a
/// whole snapshot).
#[derive(Debug, Default)]
struct SnapState {
    log_id: u64,
    generation: u64,
    base_len: u64,
    log_len: u64,
}

/// The index snapshot with its log applied; `None` when there is none or it is
/// damaged (then the list is rebuilt from the data files). `repair`: the shard
/// opening may cut a torn last record off the log.
fn read_snapshot(dir: &Path, repair: bool) -> Option<(Snapshot, SnapState)> {
    let path = dir.join(INDEX_SNAP);
    let d = std::fs::read(&path).ok()?;
    let snap = match unseal(&d).map(ShardIndex::decode) {
        Some(Ok(s)) => s,
        _ => {
            tracing::warn!(path = %path.display(), "index snapshot is corrupt; rebuilding from data files");
            return None;
        }
    };
    let Snapshot::Ids {
        mut index,
        generation,
        id_bound,
        log_id,
    } = snap
    else {
        return Some((snap, SnapState::default()));
    };
    let mut st = SnapState {
        log_id,
        generation,
        base_len: d.len() as u64,
        log_len: 0,
    };
    let mut bound = id_bound;
    if log_id != 0 {
        let applied = applog::read(&dir.join(INDEX_LOG), "index log", repair).and_then(|recs| {
            for r in recs {
                if let Some(b) = index.apply_record(&r, log_id, generation)? {
                    bound = bound.max(b);
                    st.log_len += r.len() as u64 + 12;
                }
            }
            Ok(())
        });
        if let Err(e) = applied {
            tracing::warn!(path = %path.display(), error = %e, "index log is damaged; rebuilding from data files");
            return None;
        }
    }
    let snap = Snapshot::Ids {
        index,
        generation,
        id_bound: bound,
        log_id,
    };
    Some((snap, st))
}

/// The series list a shard starts from (before WAL replay).
fn load_index(
    dir: &Path,
    catalog: &Catalog,
    files: &[Arc<DataFile>],
    tombstones: &[Arc<Tombstone>],
    report: &mut RecoveryReport,
) -> Result<(ShardIndex, SnapState)> {
    let snap_path = dir.join(INDEX_SNAP);
    let (mut index, rebuild) = match read_snapshot(dir, true) {
        Some((
            Snapshot::Ids {
                index,
                generation,
                id_bound,
                ..
            },
            st,
        )) => {
            if generation == catalog.generation() && id_bound <= catalog.id_bound() {
                return Ok((index, st));
            }
            tracing::warn!(path = %snap_path.display(), "index snapshot names another series catalog generation; rebuilding from data files");
            let mut index = index;
            index.present = RoaringBitmap::new();
            (index, true)
        }
        Some((Snapshot::Keys { mut index, keys }, _)) => {
            // Written before the catalog existed: resolve its keys once.
            let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
            let ids = catalog.create(&refs, None)?;
            index.add_series(ids.into_iter().flatten());
            index.delta.whole = true;
            (index, false)
        }
        None => (ShardIndex::default(), true),
    };
    let need_fields = index.is_empty_schema();
    for f in files {
        let refs = f.file.series_refs()?;
        let mut keys = Vec::with_capacity(refs.len());
        for r in &refs {
            // Series dropped for good (full-range tombstone newer than the file).
            let dropped = tombstones.iter().any(|t| {
                t.min == i64::MIN && t.max == i64::MAX && t.applies(&r.key, f.meta.max_seq)
            });
            if !dropped {
                keys.push(&*r.key);
            }
        }
        let ids = catalog.create(&keys, None)?;
        index.add_series(ids.into_iter().flatten());
        if rebuild && need_fields {
            // Field types live in the index entries; only needed without a snapshot.
            for r in &refs {
                let si = f.file.series_index_of(r)?;
                let (m, _) = crate::index::parse_series_key(&r.key);
                for fi in &si.fields {
                    index.register_field(&m, &fi.name, fi.ty);
                }
            }
        }
    }
    report.index_rebuilt = rebuild;
    index.delta.whole = true;
    Ok((index, SnapState::default()))
}

impl Shard {
    pub fn open(id: u64, dir: &Path, env: ShardEnv) -> Result<Arc<Shard>> {
        let ShardEnv {
            opts,
            metrics,
            sched,
            budget,
            index_mem,
            catalog,
        } = env;
        let span = tracing::info_span!("shard.open", shard_id = id);
        let _e = span.enter();
        let started = Instant::now();
        vfs::create_dir_durable(&data_dir(dir))?;
        let mut report = RecoveryReport::default();
        let manifest = Manifest::load(dir)?.unwrap_or(Manifest {
            version: 1,
            next_file_id: 1,
            ..Default::default()
        });

        // Data files listed in the manifest; anything else is an orphan.
        let listed: BTreeSet<u64> = manifest.files.iter().map(|f| f.id).collect();
        for e in std::fs::read_dir(data_dir(dir)).map_err(|e| Error::io(dir, e))? {
            let e = e.map_err(|e| Error::io(dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let orphan = match name
                .strip_suffix(".tsf")
                .and_then(|s| s.parse::<u64>().ok())
            {
                Some(fid) => !listed.contains(&fid),
                None => name.ends_with(".tmp"),
            };
            if orphan {
                vfs::remove_file(&e.path()).map_err(|er| Error::io(e.path(), er))?;
                report.orphans_removed += 1;
            }
        }
        let mut files = Vec::new();
        let mut unreported = 0;
        for fm in &manifest.files {
            let path = file_path(dir, fm.id);
            match open_data_file(&path, &index_mem, &mut unreported) {
                Ok(f) => {
                    files.push(Arc::new(DataFile {
                        meta: fm.clone(),
                        file: f,
                    }));
                }
                // Its points were acknowledged and its WAL entries are gone: dropping
                // it from the manifest would lose them silently. The shard stays
                // closed (degraded in /health) until the file is put back.
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    tracing::error!(path = %path.display(), "data file listed in manifest is missing");
                    return Err(Error::Corrupt {
                        path,
                        reason: "a data file the manifest lists is missing (restore it from a backup or a replica; the shard stays closed until then)".into(),
                    });
                }
                // Damaged beyond opening: its points are acknowledged too, so the
                // shard stays closed (naming the file) rather than answering without
                // them. `sundial verify` reports; a replica restores.
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "data file does not open");
                    return Err(e);
                }
            }
        }
        sort_files(&mut files);
        // Tombstones live in their own log; a manifest written by an earlier version
        // still carries them, and they move to the log (then leave the manifest).
        let (tomb_log, mut logged) = TombstoneLog::open(dir)?;
        let legacy: Vec<Tombstone> = manifest
            .tombstones
            .iter()
            .filter(|t| !logged.iter().any(|l| l.seq == t.seq))
            .cloned()
            .collect();
        for t in &legacy {
            tomb_log.add(t)?;
        }
        logged.extend(legacy);
        logged.sort_by_key(|t| t.seq);
        let migrated = !manifest.tombstones.is_empty();
        let tomb_seen = tomb_log.max_seen();
        let tombstones: Vec<Arc<Tombstone>> = logged.into_iter().map(Arc::new).collect();
        let (index, snap_state) = load_index(dir, &catalog, &files, &tombstones, &mut report)?;

        let active = Arc::new(RwLock::new(MemPair::default()));
        let mut ws = WriteState {
            fields: FastMap::default(),
            watermarks: FastMap::default(),
        };
        let state = ReadState {
            active: active.clone(),
            frozen: VecDeque::new(),
            files,
            tombstones,
        };
        let index = RwLock::new(index);
        // Replay the WAL into the fresh memtable.
        let flushed = manifest.flushed_seq;
        let mut new_tombs = Vec::new();
        // A delete's tombstone is fsynced before its WAL entry, so a power cut can
        // keep the one without the other: logged tombstones newer than the flush are
        // applied to the replayed memtable at their place in the sequence (unless
        // their WAL entry survived and applies itself), so no delete comes back
        // half done.
        let mut logged_deletes: VecDeque<Arc<Tombstone>> = state
            .tombstones
            .iter()
            .filter(|t| t.seq > flushed)
            .cloned()
            .collect();
        let replay_delete = |min: i64, max: i64, keys: &mut dyn Iterator<Item = &str>| {
            let sids: Vec<u32> = keys.filter_map(|k| catalog.get(k)).collect();
            {
                let mut mem = active.write();
                mem.seq.delete(&sids, min, max);
                mem.unseq.delete(&sids, min, max);
            }
            if min == i64::MIN && max == i64::MAX {
                let mut bm = RoaringBitmap::new();
                bm.extend(sids.iter().copied());
                index.write().remove_series(&bm);
            }
        };
        let (wal, wal_rec) = Wal::open(
            &dir.join("wal"),
            opts.fsync,
            opts.wal_segment_size,
            opts.wal_strict_recovery,
            metrics.clone(),
            &mut |seq, kind, body| {
                if seq <= flushed {
                    return Ok(());
                }
                while logged_deletes.front().is_some_and(|t| t.seq < seq) {
                    if let Some(t) = logged_deletes.pop_front() {
                        replay_delete(t.min, t.max, &mut t.keys.iter().map(String::as_str));
                    }
                }
                match kind {
                    KIND_WRITE => {
                        let b = batch::decode_write(body)?;
                        let sids: Vec<u32> = catalog
                            .create(&b.keys, None)?
                            .into_iter()
                            .map(|r| r.unwrap_or(u32::MAX))
                            .collect();
                        {
                            let mut idx = index.write();
                            idx.add_series(sids.iter().copied().filter(|&s| s != u32::MAX));
                            // Field types normally come from validation; here from the log.
                            write::register_replayed_fields(&b, &sids, &mut idx)?;
                        }
                        for (k, &sid) in b.keys.iter().zip(&sids) {
                            if sid != u32::MAX && !ws.watermarks.contains_key(&sid) {
                                ws.watermarks.insert(sid, state.persisted_max(k, sid));
                            }
                        }
                        let mut mem = active.write();
                        apply_write(&mut ws, &mut mem, seq, &b, &sids)
                    }
                    KIND_DELETE => {
                        let (min, max, keys) = batch::decode_delete(body)?;
                        replay_delete(min, max, &mut keys.iter().copied());
                        active.write().max_seq = seq;
                        // Its logged tombstone, if any, need not be applied again.
                        if logged_deletes.front().is_some_and(|t| t.seq == seq) {
                            logged_deletes.pop_front();
                        }
                        // At or below max_seen the log has it, or had it and
                        // found it hides nothing any more.
                        if seq > tomb_seen {
                            new_tombs.push(Arc::new(Tombstone {
                                seq,
                                min,
                                max,
                                keys: keys.iter().map(|k| k.to_string()).collect(),
                            }));
                        }
                        Ok(())
                    }
                    k => Err(Error::CorruptBlock(format!("unknown WAL entry kind {k}"))),
                }
            },
        )?;
        for t in logged_deletes {
            replay_delete(t.min, t.max, &mut t.keys.iter().map(String::as_str));
        }
        // Above every tombstone ever logged too: a delete whose tombstone reached
        // the log but whose WAL entry did not must not lend its sequence number to
        // a later write (its tombstone would then hide that write at the next
        // replay).
        wal.bump_seq(flushed.max(tomb_seen));
        report.wal = wal_rec;
        let state = RwLock::new(state);
        let shard = Arc::new(Shard {
            id,
            dir: dir.to_path_buf(),
            opts,
            metrics,
            sched,
            budget,
            index_mem,
            catalog,
            mem_reported: Mutex::new(0),
            index_reported: Mutex::new(0),
            wal,
            write: Mutex::new(ws),
            stall: Condvar::new(),
            manifest: Mutex::new(ManifestState {
                next_file_id: manifest.next_file_id.max(1),
                flushed_seq: flushed,
            }),
            state,
            index,
            flush_lock: Mutex::new(()),
            compact_lock: Mutex::new(()),
            persist: Mutex::new(snap_state),
            frames: Mutex::new(Vec::new()),
            flush_queued: AtomicBool::new(false),
            compact_queued: AtomicBool::new(false),
            compaction_halted: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            tomb_log,
            recovery: report,
        });
        for t in &new_tombs {
            shard.tomb_log.add(t)?;
        }
        if !new_tombs.is_empty() {
            shard.state.write().tombstones.extend(new_tombs);
        }
        if migrated {
            let ms = shard.manifest.lock();
            let files = shard.state.read().files.clone();
            shard.manifest_of(&ms, &files).store(dir)?;
        }
        if shard.recovery.index_rebuilt {
            shard.persist_index()?;
        }
        tracing::info!(
            shard_id = id,
            files = shard.state.read().files.len(),
            series = shard.index.read().present.len(),
            wal_entries = shard.recovery.wal.entries,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shard opened"
        );
        // Replayed WAL entries sit in the memtables now.
        shard.report_mem();
        shard.report_index_mem();
        // A large shard opening past half the index memory limit sheds its files'
        // summaries now rather than at the janitor's next pass.
        let over = || shard.index_mem.above(DEGRADE_SUMMARIES_PERCENT);
        if over() {
            shard.degrade_summaries(&over);
        }
        Ok(shard)
    }

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

    /// Writes what changed in the index: a record appended to the snapshot's log,
    /// or a whole new snapshot when the log has grown past the snapshot (or a change
    /// needs one).
    pub fn persist_index(&self) -> Result<()> {
        let mut p = self.persist.lock();
        let generation = self.catalog.generation();
        let (delta, whole) = {
            let mut idx = self.index.write();
            if idx.delta.is_empty() {
                return Ok(());
            }
            let delta = std::mem::take(&mut idx.delta);
            let whole = delta.whole
                || p.log_id == 0
                || p.generation != generation
                || p.log_len > p.base_len.max(64 << 10);
            // A whole one is encoded from a copy: writers adding series wait for a
            // memcpy of the bitmap, not for its encoding.
            (delta, whole.then(|| idx.snapshot_copy()))
        };
        // Every id taken above was created before this: the bound covers them, and
        // the catalog's sync makes them durable before the list names them.
        let bound = self.catalog.id_bound();
        let res = self.catalog.sync().and_then(|()| match whole {
            Some(copy) => self.write_whole_index(&mut p, &copy, generation, bound),
            None => {
                let mut buf = Vec::new();
                applog::frame(&delta.encode(p.log_id, generation, bound), &mut buf);
                applog::append(&self.dir.join(INDEX_LOG), &buf)?;
                p.log_len += buf.len() as u64;
                Ok(())
            }
        });
        // Whatever was taken is written whole next time.
        res.inspect_err(|_| self.index.write().delta.whole = true)
    }

    /// A new snapshot under a new log id; the old log is void from then on (its
    /// records name the old id) and removed.
    fn write_whole_index(
        &self,
        p: &mut SnapState,
        copy: &ShardIndex,
        generation: u64,
        bound: u32,
    ) -> Result<()> {
        let log_id = rand::random::<u64>() | 1;
        let body = seal(copy.encode(generation, bound, log_id));
        write_atomic(&self.dir.join(INDEX_SNAP), &body)?;
        let log = self.dir.join(INDEX_LOG);
        match vfs::remove_file(&log) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(&log, e)),
            _ => {}
        }
        *p = SnapState {
            log_id,
            generation,
            base_len: body.len() as u64,
            log_len: 0,
        };
        Ok(())
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

/// The series ids recorded in a closed shard's snapshot, if it names `generation`.
pub(crate) fn snapshot_series(dir: &Path, generation: u64) -> Option<RoaringBitmap> {
    match read_snapshot(dir, false)?.0 {
        Snapshot::Ids {
            index,
            generation: g,
            ..
        } if g == generation => Some(index.present),
        _ => None,
    }
}

fn sort_files(files: &mut [Arc<DataFile>]) {
    files.sort_by_key(|f| (f.meta.max_seq, f.meta.id));
}
