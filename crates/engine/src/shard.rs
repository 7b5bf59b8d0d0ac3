//! One shard: WAL + memtables + data files + series index + tombstones.
//!
//! Locks, always taken in this order when nested:
//! `write` (serializes WAL append and memtable apply) → `manifest` (serializes changes to
//! the file set) → `state` (the snapshot readers clone) → `index` → a memtable's lock.

use std::collections::{BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};
use roaring::RoaringBitmap;
use sundial_lineproto::Point;

use crate::batch::{self, BodyEncoder, WriteOutcome};
use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::index::{SeriesIndex, TagPredicate};
use crate::manifest::{FileKind, FileMeta, Manifest, Tombstone};
use crate::memtable::MemPair;
use crate::options::EngineOptions;
use crate::stats::Metrics;
use crate::tsfile::{TsFile, TsFileWriter};
use crate::types::{Column, FieldMerge, FieldType};
use crate::util::{seal, unseal, write_atomic, FastMap};
use crate::wal::{self, Wal, WalRecovery, FRAME_HEADER, KIND_DELETE, KIND_WRITE};

/// Asks the store's background threads for work.
pub(crate) trait Scheduler: Send + Sync + std::fmt::Debug {
    fn flush(&self, shard: Weak<Shard>);
    fn compact(&self, shard: Weak<Shard>);
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

#[derive(Debug)]
struct WriteState {
    /// Shard-wide field-name ids used by memtables.
    fields: FastMap<Box<str>, (u32, Arc<str>)>,
    /// Per series id: newest persisted (flushed or frozen) time. Newer points are
    /// sequence data, the rest unsequence.
    watermarks: Vec<i64>,
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
    /// Files moved to `quarantine/` (path, reason).
    pub quarantined: Vec<(PathBuf, String)>,
    /// Files listed in the manifest but missing on disk.
    pub missing: Vec<PathBuf>,
    /// Leftovers of interrupted flushes/compactions that were deleted.
    pub orphans_removed: usize,
}

/// One field of a series returned by a scan.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldData {
    pub name: String,
    pub column: Column,
}

/// One series returned by a scan: its fields' columns in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesData {
    pub key: String,
    pub measurement: String,
    pub tags: Vec<(String, String)>,
    pub fields: Vec<FieldData>,
}

#[derive(Debug)]
pub(crate) struct Shard {
    pub id: u64,
    dir: PathBuf,
    opts: EngineOptions,
    metrics: Arc<Metrics>,
    sched: Arc<dyn Scheduler>,
    budget: Arc<MemoryBudget>,
    /// Memtable bytes (active and frozen) last reported to `budget`.
    /// A mutex, not an atomic: measuring and reporting must be one step, or a stale
    /// measurement reported last would leave bytes in the budget that no longer exist.
    mem_reported: Mutex<usize>,
    wal: Wal,
    write: Mutex<WriteState>,
    stall: Condvar,
    manifest: Mutex<ManifestState>,
    state: RwLock<ReadState>,
    index: RwLock<SeriesIndex>,
    flush_lock: Mutex<()>,
    compact_lock: Mutex<()>,
    /// Serializes index snapshot writes (they share a temp file name).
    persist_lock: Mutex<()>,
    frames: Mutex<Vec<Vec<u8>>>,
    pub(crate) flush_queued: AtomicBool,
    pub(crate) compact_queued: AtomicBool,
    closed: AtomicBool,
    pub recovery: RecoveryReport,
}

fn data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn file_path(dir: &Path, id: u64) -> PathBuf {
    data_dir(dir).join(format!("{id:010}.tsf"))
}

const INDEX_SNAP: &str = "index.snap";

impl Shard {
    pub fn open(
        id: u64,
        dir: &Path,
        opts: EngineOptions,
        metrics: Arc<Metrics>,
        sched: Arc<dyn Scheduler>,
        budget: Arc<MemoryBudget>,
    ) -> Result<Arc<Shard>> {
        let span = tracing::info_span!("shard.open", shard_id = id);
        let _e = span.enter();
        let started = Instant::now();
        crate::util::create_dir_durable(&data_dir(dir))?;
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
                std::fs::remove_file(e.path()).map_err(|er| Error::io(e.path(), er))?;
                report.orphans_removed += 1;
            }
        }
        let mut files = Vec::new();
        let mut kept_meta = Vec::new();
        for fm in &manifest.files {
            let path = file_path(dir, fm.id);
            match TsFile::open(&path) {
                Ok(f) => {
                    kept_meta.push(fm.clone());
                    files.push(Arc::new(DataFile {
                        meta: fm.clone(),
                        file: f,
                    }));
                }
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    tracing::error!(path = %path.display(), "data file listed in manifest is missing");
                    report.missing.push(path);
                }
                Err(e) if e.is_corruption() => {
                    let reason = e.to_string();
                    quarantine_file(dir, &path, &reason, &metrics);
                    report.quarantined.push((path, reason));
                }
                Err(e) => return Err(e),
            }
        }
        sort_files(&mut files);
        let tombstones: Vec<Arc<Tombstone>> =
            manifest.tombstones.iter().cloned().map(Arc::new).collect();

        // Series index: snapshot, then make sure every series in a file is known.
        let snap_path = dir.join(INDEX_SNAP);
        let mut index = match std::fs::read(&snap_path) {
            Ok(d) => match unseal(&d).map(SeriesIndex::decode) {
                Some(Ok(idx)) => Some(idx),
                _ => {
                    tracing::warn!(path = %snap_path.display(), "index snapshot is corrupt; rebuilding from data files");
                    None
                }
            },
            Err(_) => None,
        };
        let rebuild = index.is_none();
        let idx = index.get_or_insert_with(SeriesIndex::default);
        let mut watermarks: Vec<i64> = Vec::new();
        for f in &files {
            for r in f.file.resource() {
                let sid = match idx.get(&r.key) {
                    Some(s) => s,
                    None => {
                        let dropped = tombstones.iter().any(|t| {
                            t.min == i64::MIN
                                && t.max == i64::MAX
                                && t.applies(&r.key, f.meta.max_seq)
                        });
                        if dropped {
                            continue;
                        }
                        if !rebuild {
                            tracing::warn!(series = %r.key, "series found in a data file but not in the index snapshot; re-adding");
                        }
                        idx.insert(&r.key)
                    }
                };
                if watermarks.len() <= sid as usize {
                    watermarks.resize(sid as usize + 1, i64::MIN);
                }
                watermarks[sid as usize] = watermarks[sid as usize].max(r.max_time);
                if rebuild {
                    // Field types live in the index entries; only needed without a snapshot.
                    if let Ok(Some(si)) = f.file.series_index(&r.key) {
                        let m = idx
                            .entry(sid)
                            .map(|e| e.measurement.to_string())
                            .unwrap_or_default();
                        for fi in &si.fields {
                            idx.register_field(&m, &fi.name, fi.ty);
                        }
                    }
                }
            }
        }
        let index = index.unwrap_or_default();

        let active = Arc::new(RwLock::new(MemPair::default()));
        let mut ws = WriteState {
            fields: FastMap::default(),
            watermarks,
        };
        let state = ReadState {
            active: active.clone(),
            frozen: VecDeque::new(),
            files,
            tombstones,
        };
        let index = RwLock::new(index);
        let state = RwLock::new(state);
        // Replay the WAL into the fresh memtable.
        let flushed = manifest.flushed_seq;
        let mut new_tombs = Vec::new();
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
                let mut mem = active.write();
                match kind {
                    KIND_WRITE => apply_write(&mut ws, &index, &mut mem, seq, body, true),
                    KIND_DELETE => {
                        let (min, max, keys) = batch::decode_delete(body)?;
                        let sids: Vec<u32> = {
                            let idx = index.read();
                            keys.iter().filter_map(|k| idx.get(k)).collect()
                        };
                        mem.seq.delete(&sids, min, max);
                        mem.unseq.delete(&sids, min, max);
                        mem.max_seq = seq;
                        if !state.read().tombstones.iter().any(|t| t.seq == seq) {
                            new_tombs.push(Arc::new(Tombstone {
                                seq,
                                min,
                                max,
                                keys: keys.iter().map(|k| k.to_string()).collect(),
                            }));
                        }
                        if min == i64::MIN && max == i64::MAX {
                            let mut bm = RoaringBitmap::new();
                            bm.extend(sids.iter().copied());
                            index.write().remove_series(&bm);
                        }
                        Ok(())
                    }
                    k => Err(Error::CorruptBlock(format!("unknown WAL entry kind {k}"))),
                }
            },
        )?;
        wal.bump_seq(flushed);
        report.wal = wal_rec;
        let shard = Arc::new(Shard {
            id,
            dir: dir.to_path_buf(),
            opts,
            metrics,
            sched,
            budget,
            mem_reported: Mutex::new(0),
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
            persist_lock: Mutex::new(()),
            frames: Mutex::new(Vec::new()),
            flush_queued: AtomicBool::new(false),
            compact_queued: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            recovery: report,
        });
        let repaired = !shard.recovery.quarantined.is_empty()
            || !shard.recovery.missing.is_empty()
            || kept_meta.len() != manifest.files.len();
        if !new_tombs.is_empty() || repaired {
            let _m = shard.manifest.lock();
            let mut st = shard.state.write();
            st.tombstones.extend(new_tombs);
            let m = shard.manifest_of(&shard.manifest_state_locked(&_m), &st.files, &st.tombstones);
            drop(st);
            m.store(dir)?;
        }
        tracing::info!(
            shard_id = id,
            files = shard.state.read().files.len(),
            series = shard.index.read().series_count(),
            wal_entries = shard.recovery.wal.entries,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "shard opened"
        );
        // Replayed WAL entries sit in the memtables now.
        shard.report_mem();
        Ok(shard)
    }

    fn manifest_state_locked(&self, m: &ManifestState) -> (u64, u64) {
        (m.next_file_id, m.flushed_seq)
    }

    fn manifest_of(
        &self,
        (next_file_id, flushed_seq): &(u64, u64),
        files: &[Arc<DataFile>],
        tombstones: &[Arc<Tombstone>],
    ) -> Manifest {
        Manifest {
            version: 1,
            next_file_id: *next_file_id,
            flushed_seq: *flushed_seq,
            files: files.iter().map(|f| f.meta.clone()).collect(),
            tombstones: tombstones.iter().map(|t| (**t).clone()).collect(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    // ---------------------------------------------------------------- writes

    /// Validate, log and apply a batch. Points rejected by validation are counted in the
    /// outcome; the rest are durable (per the fsync policy) when this returns `Ok`.
    pub fn write(self: &Arc<Self>, points: &[Point<'_>]) -> Result<WriteOutcome> {
        self.check_open()?;
        let mut outcome = WriteOutcome::default();
        let accepted = self.validate(points, &mut outcome);
        if accepted.is_empty() {
            self.metrics
                .add(&self.metrics.points_dropped, outcome.points_dropped as u64);
            return Ok(outcome);
        }
        let mut frame = self.take_frame(KIND_WRITE);
        let mut enc = BodyEncoder::new(&mut frame);
        for &i in &accepted {
            outcome.values_written += enc.push(&mut frame, &points[i]);
        }
        outcome.points_written = accepted.len();
        enc.finish(&mut frame);

        let stall = self.opts.write_stall_timeout;
        if !self.budget.wait_for_room(stall) {
            self.metrics.add(&self.metrics.writes_overloaded, 1);
            return Err(Error::Overloaded {
                waited_ms: stall.as_millis() as u64,
            });
        }
        let seq = {
            let mut ws = self.write.lock();
            // The wait above may have spanned a close (drop_shard, shutdown).
            self.check_open()?;
            self.make_room(&mut ws)?;
            let seq = self.wal.append(&mut frame)?;
            // The fsync runs while this batch is applied to the memtable.
            self.wal.start_sync(seq);
            let active = self.state.read().active.clone();
            let mut mem = active.write();
            apply_write(
                &mut ws,
                &self.index,
                &mut mem,
                seq,
                &frame[FRAME_HEADER..],
                false,
            )?;
            drop(mem);
            self.report_mem();
            seq
        };
        self.give_frame(frame);
        self.wal.commit(seq)?;
        let m = &self.metrics;
        m.add(&m.points_written, outcome.points_written as u64);
        m.add(&m.values_written, outcome.values_written as u64);
        m.add(&m.points_dropped, outcome.points_dropped as u64);
        Ok(outcome)
    }

    /// A reusable frame buffer: WAL frames are megabytes, and fresh allocations of that
    /// size cost page faults on every write.
    fn take_frame(&self, kind: u8) -> Vec<u8> {
        let mut f = self.frames.lock().pop().unwrap_or_default();
        f.clear();
        f.extend_from_slice(&wal::new_frame(kind, 0));
        f
    }

    fn give_frame(&self, f: Vec<u8>) {
        if f.capacity() <= 64 << 20 {
            let mut pool = self.frames.lock();
            if pool.len() < 4 {
                pool.push(f);
            }
        }
    }

    /// Indices of acceptable points; registers new field types. InfluxDB 1.x rules:
    /// a `time` tag drops the point, `time` fields are removed, and a field whose type
    /// differs from the measurement's drops the point.
    fn validate(&self, points: &[Point<'_>], out: &mut WriteOutcome) -> Vec<usize> {
        // Fast pass under the read lock; redo under the write lock only if a field is new.
        {
            let idx = self.index.read();
            let mut ok = Vec::with_capacity(points.len());
            let mut tmp = WriteOutcome::default();
            // Points of a batch mostly share a measurement: look its schema up once.
            let mut cache: Option<(&str, Option<&crate::index::FieldTypes>)> = None;
            if self.validate_with(points, &mut tmp, &mut ok, &mut |m, f, _| {
                let fields = match cache {
                    Some((cm, fl)) if cm == m => fl,
                    _ => {
                        let fl = idx.fields_of(m);
                        cache = Some((m, fl));
                        fl
                    }
                };
                fields?.get(f).copied()
            }) {
                out.absorb(tmp);
                return ok;
            }
        }
        let mut idx = self.index.write();
        let mut ok = Vec::with_capacity(points.len());
        self.validate_with(points, out, &mut ok, &mut |m, f, t| {
            Some(idx.register_field(m, f, t))
        });
        ok
    }

    /// Returns false if a field type was unknown (the caller retries with registration).
    fn validate_with<'a>(
        &self,
        points: &[Point<'a>],
        out: &mut WriteOutcome,
        ok: &mut Vec<usize>,
        lookup: &mut dyn FnMut(&'a str, &str, FieldType) -> Option<FieldType>,
    ) -> bool {
        // The previous accepted point: a point with the same measurement and the same
        // field names and types needs no lookups.
        let mut prev: Option<&Point<'a>> = None;
        'points: for (i, p) in points.iter().enumerate() {
            if let Some(q) = prev {
                if q.measurement == p.measurement
                    && q.fields.len() == p.fields.len()
                    && !p.tags.iter().any(|t| t.key == "time")
                    && q.fields.iter().zip(p.fields.iter()).all(|(a, b)| {
                        a.key == b.key
                            && std::mem::discriminant(&a.value) == std::mem::discriminant(&b.value)
                    })
                {
                    ok.push(i);
                    continue;
                }
            }
            if p.tags.iter().any(|t| t.key == "time") {
                out.drop_point(format!(
                    "invalid tag key: input tag \"time\" on measurement \"{}\" is invalid",
                    p.measurement
                ));
                continue;
            }
            let mut nfields = 0;
            for f in p.fields.iter() {
                if f.key == "time" {
                    continue;
                }
                nfields += 1;
                let ty = batch::value_type(&f.value);
                match lookup(p.measurement, &f.key, ty) {
                    None => return false,
                    Some(existing) if existing != ty => {
                        out.drop_point(format!(
                            "field type conflict: input field \"{}\" on measurement \"{}\" is type {}, already exists as type {}",
                            f.key, p.measurement, ty, existing
                        ));
                        continue 'points;
                    }
                    Some(_) => {}
                }
            }
            if nfields == 0 {
                out.drop_point(format!(
                    "invalid field name: input field \"time\" on measurement \"{}\" is invalid",
                    p.measurement
                ));
                continue;
            }
            ok.push(i);
            prev = Some(p);
        }
        true
    }

    /// Freeze the active memtable when it is full; stall (bounded) when flushing is behind.
    fn make_room(self: &Arc<Self>, ws: &mut parking_lot::MutexGuard<'_, WriteState>) -> Result<()> {
        let started = Instant::now();
        let deadline = started + self.opts.write_stall_timeout;
        let mut stalled = false;
        loop {
            let (bytes, nfrozen) = self.memtable_load();
            if bytes < self.opts.memtable_size {
                return Ok(());
            }
            if nfrozen < self.opts.max_frozen_memtables {
                self.freeze_locked(ws)?;
                self.sched.flush(Arc::downgrade(self));
                return Ok(());
            }
            if !stalled {
                stalled = true;
                self.metrics.add(&self.metrics.write_stalls, 1);
                self.sched.flush(Arc::downgrade(self));
            }
            if self.closed.load(Ordering::Acquire) {
                return Err(Error::Closed);
            }
            if Instant::now() >= deadline {
                self.metrics.add(&self.metrics.writes_overloaded, 1);
                return Err(Error::Overloaded {
                    waited_ms: started.elapsed().as_millis() as u64,
                });
            }
            self.stall.wait_until(ws, deadline);
        }
    }

    /// Swap in a fresh memtable; the old one joins the flush queue.
    fn freeze_locked(&self, ws: &mut WriteState) -> Result<bool> {
        let active = self.state.read().active.clone();
        let (empty, max_seq) = {
            let m = active.read();
            (m.is_empty(), m.max_seq)
        };
        if empty {
            return Ok(false);
        }
        let wal_upto = self.wal.roll()?;
        {
            let m = active.read();
            for (sid, t) in m.seq.max_times() {
                if let Some(w) = ws.watermarks.get_mut(sid as usize) {
                    *w = (*w).max(t);
                }
            }
        }
        let mut st = self.state.write();
        st.frozen.push_back(Frozen {
            mem: active,
            max_seq,
            wal_upto,
        });
        st.active = Arc::new(RwLock::new(MemPair::default()));
        Ok(true)
    }

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
                .add_duration(&self.metrics.flush_nanos, started.elapsed());
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
        let span = tracing::debug_span!("shard.flush", shard_id = self.id, max_seq = fz.max_seq);
        let _e = span.enter();
        let min_seq = self.manifest.lock().flushed_seq + 1;
        let mut new_files = Vec::new();
        {
            let mem = fz.mem.read();
            for (kind, table) in [(FileKind::Seq, &mem.seq), (FileKind::Unseq, &mem.unseq)] {
                if table.is_empty() {
                    continue;
                }
                // Series in key order, as the file format requires.
                let mut series: Vec<(Arc<str>, u32)> = {
                    let idx = self.index.read();
                    table
                        .series
                        .keys()
                        .filter_map(|&sid| idx.key_of(sid).map(|k| (k, sid)))
                        .collect()
                };
                // Sorted by (key, sid): several ids can share a key after a drop and
                // re-create; older ids come first and newer ones win on equal times.
                series.sort_unstable();
                let fid = self.alloc_file_id();
                let path = file_path(&self.dir, fid);
                let mut w = TsFileWriter::create(&path, self.opts.max_points_per_block)?;
                for group in series.chunk_by(|a, b| a.0 == b.0) {
                    let key = &group[0].0;
                    let mut cols = FieldMerge::<Arc<str>>::new();
                    for &(_, sid) in group {
                        for (name, c) in table.read_series(sid, &|_| true, i64::MIN, i64::MAX) {
                            cols.add(name, c);
                        }
                    }
                    let refs: Vec<(&str, &Column)> =
                        cols.columns().iter().map(|(n, c)| (&**n, c)).collect();
                    w.add_series(key, &refs)?;
                }
                if w.series_count() == 0 {
                    drop(w);
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                w.finish()?;
                let file = TsFile::open(&path)?;
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
            let tombs = self.state.read().tombstones.clone();
            self.manifest_of(&self.manifest_state_locked(&ms), &files, &tombs)
                .store(&self.dir)?;
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
        self.wal.remove_upto(fz.wal_upto)
    }

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

    pub fn persist_index(&self) -> Result<()> {
        let _p = self.persist_lock.lock();
        let body = {
            let mut idx = self.index.write();
            if !idx.dirty {
                return Ok(());
            }
            idx.dirty = false;
            idx.encode()
        };
        write_atomic(&self.dir.join(INDEX_SNAP), &seal(body)).inspect_err(|_| {
            self.index.write().dirty = true;
        })
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
                let _ = std::fs::remove_file(&path);
                if e.is_corruption() {
                    self.quarantine_from_error(&e);
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
                file: TsFile::open(&path)?,
            })),
            None => None, // everything was deleted
        };
        {
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
            let tombs: Vec<Arc<Tombstone>> = current_tombs
                .into_iter()
                .filter(|t| {
                    !applied.contains(&t.seq)
                        || frozen.iter().any(|f| f.max_seq < t.seq)
                        || files.iter().any(|f| {
                            f.meta.max_seq < t.seq
                                && t.keys.iter().any(|k| f.file.may_contain(k, t.min, t.max))
                        })
                })
                .collect();
            self.manifest_of(&self.manifest_state_locked(&ms), &files, &tombs)
                .store(&self.dir)?;
            let mut st = self.state.write();
            st.files = files;
            st.tombstones = tombs;
        }
        for f in &inputs {
            // Open readers keep their descriptors; the data stays readable for them.
            let p = f.file.path();
            if let Err(e) = std::fs::remove_file(p) {
                tracing::warn!(path = %p.display(), error = %e, "could not remove compacted file");
            }
        }
        self.metrics.add(&self.metrics.compactions, 1);
        self.metrics
            .add_duration(&self.metrics.compaction_nanos, started.elapsed());
        Ok(true)
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

    // ---------------------------------------------------------------- deletes

    /// Delete points of the matching series in `[min, max]`. With the full time range the
    /// series also leave the index (InfluxDB's DROP SERIES).
    pub fn delete(&self, measurement: &str, pred: &TagPredicate, min: i64, max: i64) -> Result<()> {
        self.check_open()?;
        let keys: Vec<Arc<str>> = {
            let idx = self.index.read();
            idx.select(measurement, pred)
                .iter()
                .filter_map(|sid| idx.key_of(sid))
                .collect()
        };
        self.delete_keys(&keys, min, max)?;
        Ok(())
    }

    pub fn drop_measurement(&self, measurement: &str) -> Result<()> {
        self.delete(measurement, &TagPredicate::All, i64::MIN, i64::MAX)?;
        self.index.write().drop_measurement_schema(measurement);
        self.persist_index()
    }

    fn delete_keys(&self, keys: &[Arc<str>], min: i64, max: i64) -> Result<()> {
        if keys.is_empty() || min > max {
            return Ok(());
        }
        let refs: Vec<&str> = keys.iter().map(|k| &**k).collect();
        let mut frame = wal::new_frame(KIND_DELETE, keys.len() * 64);
        batch::encode_delete(&mut frame, &refs, min, max);
        let seq = {
            let _ws = self.write.lock();
            let seq = self.wal.append(&mut frame)?;
            let sids: Vec<u32> = {
                let idx = self.index.read();
                refs.iter().filter_map(|k| idx.get(k)).collect()
            };
            let active = self.state.read().active.clone();
            {
                let mut mem = active.write();
                mem.seq.delete(&sids, min, max);
                mem.unseq.delete(&sids, min, max);
                mem.max_seq = seq;
            }
            let tomb = Arc::new(Tombstone {
                seq,
                min,
                max,
                keys: refs.iter().map(|k| k.to_string()).collect(),
            });
            let ms = self.manifest.lock();
            let mut st = self.state.write();
            st.tombstones.push(tomb);
            let m = self.manifest_of(&self.manifest_state_locked(&ms), &st.files, &st.tombstones);
            drop(st);
            m.store(&self.dir)?;
            if min == i64::MIN && max == i64::MAX {
                let mut bm = RoaringBitmap::new();
                bm.extend(sids);
                self.index.write().remove_series(&bm);
            }
            seq
        };
        self.wal.commit(seq)?;
        Ok(())
    }

    // ---------------------------------------------------------------- reads

    pub fn snapshot(&self) -> ReadState {
        self.state.read().clone()
    }

    pub fn index(&self) -> &RwLock<SeriesIndex> {
        &self.index
    }

    /// Series keys matching a predicate, sorted, with their ids.
    pub fn select(&self, measurement: &str, pred: &TagPredicate) -> Vec<(Arc<str>, u32)> {
        let idx = self.index.read();
        let mut v: Vec<(Arc<str>, u32)> = idx
            .select(measurement, pred)
            .iter()
            .filter_map(|sid| idx.key_of(sid).map(|k| (k, sid)))
            .collect();
        v.sort_unstable();
        v
    }

    /// Read one series from a snapshot: files oldest first, then frozen memtables, then
    /// the active one; newer sources win on equal timestamps; tombstones hide data of
    /// sources older than themselves.
    pub fn read_series(
        &self,
        snap: &ReadState,
        key: &str,
        sid: u32,
        want: &dyn Fn(&str) -> bool,
        min: i64,
        max: i64,
    ) -> Result<Vec<(String, Column)>> {
        let mut acc: Vec<(String, Column)> = Vec::new();
        let merge_in = |acc: &mut Vec<(String, Column)>, name: &str, c: Column| match acc
            .iter_mut()
            .find(|(n, _)| n == name)
        {
            Some((_, prev)) => {
                let p = std::mem::replace(prev, Column::new(c.field_type()));
                *prev = Column::merge(p, c);
            }
            None => acc.push((name.to_owned(), c)),
        };
        let hide = |c: &mut Column, source_seq: u64| {
            for t in &snap.tombstones {
                if t.applies(key, source_seq) {
                    c.delete_range(t.min, t.max);
                }
            }
        };
        for f in &snap.files {
            if f.file.max_time < min || f.file.min_time > max || !f.file.may_contain(key, min, max)
            {
                continue;
            }
            let si = match f.file.series_index(key) {
                Ok(Some(si)) => si,
                Ok(None) => continue,
                Err(e) => return Err(self.on_read_error(e)),
            };
            for fi in &si.fields {
                if !want(&fi.name) {
                    continue;
                }
                let mut c = f
                    .file
                    .read_field(fi, min, max)
                    .map_err(|e| self.on_read_error(e))?;
                hide(&mut c, f.meta.max_seq);
                merge_in(&mut acc, &fi.name, c);
            }
        }
        for fz in &snap.frozen {
            for (name, mut c) in fz.mem.read().read_series(sid, want, min, max) {
                hide(&mut c, fz.max_seq);
                merge_in(&mut acc, &name, c);
            }
        }
        for (name, c) in snap.active.read().read_series(sid, want, min, max) {
            merge_in(&mut acc, &name, c);
        }
        acc.retain(|(_, c)| !c.is_empty());
        acc.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(acc)
    }

    fn on_read_error(&self, e: Error) -> Error {
        if e.is_corruption() {
            self.quarantine_from_error(&e);
        }
        e
    }

    /// Move a corrupt data file aside and drop it from the file set.
    fn quarantine_from_error(&self, e: &Error) {
        let Error::Corrupt { path, reason } = e else {
            return;
        };
        let ms = self.manifest.lock();
        let mut files = self.state.read().files.clone();
        let before = files.len();
        files.retain(|f| f.file.path() != path.as_path());
        if files.len() == before {
            return;
        }
        let tombs = self.state.read().tombstones.clone();
        if let Err(err) = self
            .manifest_of(&self.manifest_state_locked(&ms), &files, &tombs)
            .store(&self.dir)
        {
            tracing::error!(error = %err, "could not record quarantined file in the manifest");
            return;
        }
        self.state.write().files = files;
        quarantine_file(&self.dir, path, reason, &self.metrics);
    }

    // ---------------------------------------------------------------- lifecycle

    /// Make the WAL durable and persist the index. Memtables are not flushed: the WAL
    /// replays them at the next open, which keeps shutdown fast.
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
        if let Err(e) = self.wal.sync_all() {
            errs.push(e);
        }
        if let Err(e) = self.persist_index() {
            errs.push(e);
        }
        self.report_mem();
        Error::from_many(errs)
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

    pub fn tombstone_count(&self) -> usize {
        self.state.read().tombstones.len()
    }
}

fn sort_files(files: &mut [Arc<DataFile>]) {
    files.sort_by_key(|f| (f.meta.max_seq, f.meta.id));
}

fn quarantine_file(dir: &Path, path: &Path, reason: &str, metrics: &Metrics) {
    let qdir = dir.join("quarantine");
    let dest = qdir.join(path.file_name().unwrap_or_default());
    let res = std::fs::create_dir_all(&qdir).and_then(|_| std::fs::rename(path, &dest));
    tracing::error!(path = %path.display(), moved_to = %dest.display(), reason, ok = res.is_ok(),
        "corrupt data file quarantined");
    metrics.add(&metrics.files_quarantined, 1);
}

/// Apply a write body to a memtable (live writes and WAL replay share this).
fn apply_write(
    ws: &mut WriteState,
    index: &RwLock<SeriesIndex>,
    mem: &mut MemPair,
    seq: u64,
    body: &[u8],
    replay: bool,
) -> Result<()> {
    let b = batch::decode_write(body)?;
    let fids: Vec<(u32, Arc<str>)> = b
        .names
        .iter()
        .map(|n| {
            if let Some(v) = ws.fields.get(*n) {
                return v.clone();
            }
            let v = (ws.fields.len() as u32, Arc::<str>::from(*n));
            ws.fields.insert((*n).into(), v.clone());
            v
        })
        .collect();
    // Resolve series ids once per distinct key; create missing series.
    let mut sids: Vec<u32> = Vec::with_capacity(b.keys.len());
    let mut missing = false;
    {
        let idx = index.read();
        for k in &b.keys {
            let s = idx.get(k).unwrap_or(u32::MAX);
            missing |= s == u32::MAX;
            sids.push(s);
        }
    }
    if missing {
        let mut idx = index.write();
        for (i, k) in b.keys.iter().enumerate() {
            if sids[i] == u32::MAX {
                sids[i] = idx.insert(k);
            }
        }
    }
    if replay {
        // Field types normally come from validation; during replay, from the log.
        let mut idx = index.write();
        let mut cur = b.cursor();
        while let Some((ki, _, nf)) = cur.next_point()? {
            let m = idx.entry(sids[ki]).map(|e| e.measurement.clone());
            for _ in 0..nf {
                let (fi, v) = cur.next_field()?;
                if let Some(m) = &m {
                    idx.register_field(m, b.names[fi], v.field_type());
                }
            }
        }
    }
    let nseries = sids.iter().map(|&s| s as usize + 1).max().unwrap_or(0);
    if ws.watermarks.len() < nseries {
        ws.watermarks.resize(nseries, i64::MIN);
    }
    // Group points by series (stable, so arrival order is kept within a series): the
    // appends of one series then hit warm cache lines instead of one miss per value.
    let mut order: Vec<(u32, i64, u32, u32)> = Vec::with_capacity(sids.len());
    let mut cur = b.cursor();
    while let Some((ki, time, nf)) = cur.next_point()? {
        let pos = cur.skip_fields()?;
        order.push((sids[ki], time, pos as u32, nf as u32));
    }
    order.sort_by_key(|p| p.0);
    let mut vals = Vec::with_capacity(16);
    let mut last: Option<(u32, bool)> = None;
    let mut s: Option<&mut crate::memtable::SeriesBuf> = None;
    let (mut seq_bytes, mut unseq_bytes, mut seq_pts, mut unseq_pts) = (0, 0, 0, 0);
    for &(sid, time, pos, nf) in &order {
        let is_seq = time > ws.watermarks[sid as usize];
        if last != Some((sid, is_seq)) {
            let table = if is_seq { &mut mem.seq } else { &mut mem.unseq };
            s = Some(table.series.entry(sid).or_default());
            last = Some((sid, is_seq));
        }
        let Some(sb) = s.as_deref_mut() else { continue };
        let mut fc = cur.fields_at(pos as usize, u64::from(nf));
        vals.clear();
        for _ in 0..nf {
            let (fi, v) = fc.next_field()?;
            let (fid, name) = &fids[fi];
            vals.push((*fid, name, v));
        }
        let bytes = sb.append_point(time, &vals);
        if is_seq {
            seq_bytes += bytes;
            seq_pts += nf as usize;
        } else {
            unseq_bytes += bytes;
            unseq_pts += nf as usize;
        }
    }
    mem.seq.bytes += seq_bytes;
    mem.seq.points += seq_pts;
    mem.unseq.bytes += unseq_bytes;
    mem.unseq.points += unseq_pts;
    mem.max_seq = seq;
    Ok(())
}
