//! The [`Store`]: every shard of a node, the background flush/compaction threads and the
//! engine's counters.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use sundial_lineproto::Point;

use crate::batch::WriteOutcome;
use crate::budget::MemoryBudget;
use crate::error::{Error, Result};
use crate::index::TagPredicate;
use crate::options::{EngineOptions, FsyncPolicy};
use crate::shard::{FieldData, ReadState, RecoveryReport, Scheduler, SeriesData, Shard};
use crate::stats::{EngineStats, Metrics};
use crate::types::FieldType;

enum Job {
    Flush(Weak<Shard>),
    Compact(Weak<Shard>),
}

/// Background work queues. Flushes and compactions have separate threads so a long
/// compaction never delays the flush that unblocks writers; the number of compaction
/// threads is the store-wide compaction concurrency limit.
#[derive(Debug)]
struct Background {
    flush_tx: Mutex<Option<Sender<Job>>>,
    compact_tx: Mutex<Option<Sender<Job>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Job::Flush(_) => "Flush",
            Job::Compact(_) => "Compact",
        })
    }
}

impl Scheduler for Background {
    fn flush(&self, shard: Weak<Shard>) {
        if let Some(s) = shard.upgrade() {
            if s.flush_queued.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        if let Some(tx) = &*self.flush_tx.lock() {
            let _ = tx.send(Job::Flush(shard));
        }
    }

    fn compact(&self, shard: Weak<Shard>) {
        if let Some(s) = shard.upgrade() {
            if s.compact_queued.swap(true, Ordering::AcqRel) {
                return;
            }
        }
        if let Some(tx) = &*self.compact_tx.lock() {
            let _ = tx.send(Job::Compact(shard));
        }
    }
}

fn worker(rx: Arc<Mutex<Receiver<Job>>>, stop: Arc<AtomicBool>) {
    loop {
        let job = {
            let rx = rx.lock();
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => {
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            }
        };
        match job {
            Job::Flush(w) => {
                let Some(s) = w.upgrade() else { continue };
                s.flush_queued.store(false, Ordering::Release);
                if let Err(e) = s.flush_frozen() {
                    if !matches!(e, Error::Closed) {
                        tracing::error!(shard_id = s.id, error = %e, "background flush failed; will retry");
                    }
                }
            }
            Job::Compact(w) => {
                let Some(s) = w.upgrade() else { continue };
                s.compact_queued.store(false, Ordering::Release);
                if stop.load(Ordering::Acquire) {
                    continue;
                }
                // One step per job; requeue while the policy finds more to do.
                match s.compact_once(false) {
                    Ok(true) => {
                        if !stop.load(Ordering::Acquire) {
                            // Requeue through the scheduler is not reachable here; loop.
                            while let Ok(true) = s.compact_once(false) {
                                if stop.load(Ordering::Acquire) {
                                    break;
                                }
                            }
                        }
                    }
                    Ok(false) | Err(Error::Closed) => {}
                    Err(e) => {
                        tracing::error!(shard_id = s.id, error = %e, "background compaction failed")
                    }
                }
            }
        }
    }
}

impl Background {
    fn start(opts: &EngineOptions) -> Arc<Background> {
        let (ftx, frx) = mpsc::channel();
        let (ctx, crx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let frx = Arc::new(Mutex::new(frx));
        let crx = Arc::new(Mutex::new(crx));
        let mut threads = Vec::new();
        for i in 0..opts.flush_threads {
            let (rx, st) = (frx.clone(), stop.clone());
            if let Ok(h) = std::thread::Builder::new()
                .name(format!("sundial-flush-{i}"))
                .spawn(move || worker(rx, st))
            {
                threads.push(h);
            }
        }
        for i in 0..opts.max_concurrent_compactions {
            let (rx, st) = (crx.clone(), stop.clone());
            if let Ok(h) = std::thread::Builder::new()
                .name(format!("sundial-compact-{i}"))
                .spawn(move || worker(rx, st))
            {
                threads.push(h);
            }
        }
        Arc::new(Background {
            flush_tx: Mutex::new(Some(ftx)),
            compact_tx: Mutex::new(Some(ctx)),
            threads: Mutex::new(threads),
            stop,
        })
    }

    fn shutdown(&self) {
        self.stop.store(true, Ordering::Release);
        self.flush_tx.lock().take();
        self.compact_tx.lock().take();
        for h in self.threads.lock().drain(..) {
            let _ = h.join();
        }
    }
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    opts: EngineOptions,
    shards: RwLock<HashMap<u64, Arc<Shard>>>,
    closed: AtomicBool,
    metrics: Arc<Metrics>,
    bg: Arc<Background>,
    budget: Arc<MemoryBudget>,
    syncer: Mutex<Option<JoinHandle<()>>>,
    governor: Mutex<Option<JoinHandle<()>>>,
}

/// All shards of one node. Cheap to clone (shared handle).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

/// A streaming scan: one series per `next()`, read lazily from a consistent snapshot.
#[derive(Debug)]
pub struct SeriesIter {
    shard: Arc<Shard>,
    snap: ReadState,
    keys: std::vec::IntoIter<(Arc<str>, u32)>,
    fields: Option<Vec<String>>,
    min: i64,
    max: i64,
}

impl Iterator for SeriesIter {
    type Item = Result<SeriesData>;

    fn next(&mut self) -> Option<Self::Item> {
        for (key, sid) in self.keys.by_ref() {
            let want = |n: &str| {
                self.fields
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|x| x == n))
            };
            match self
                .shard
                .read_series(&self.snap, &key, sid, &want, self.min, self.max)
            {
                Ok(cols) if cols.is_empty() => continue,
                Ok(cols) => {
                    let (measurement, tags) = crate::index::parse_series_key(&key);
                    return Some(Ok(SeriesData {
                        key: key.to_string(),
                        measurement,
                        tags,
                        fields: cols
                            .into_iter()
                            .map(|(name, column)| FieldData { name, column })
                            .collect(),
                    }));
                }
                Err(e) => return Some(Err(e)),
            }
        }
        None
    }
}

fn parse_shard_dir(p: &Path) -> Option<u64> {
    p.file_name()?.to_str()?.parse().ok()
}

impl Store {
    /// Open (or create) a store in `dir`, opening every shard found there concurrently.
    pub fn open(dir: impl AsRef<Path>, opts: EngineOptions) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        let span = tracing::info_span!("store.open", dir = %dir.display());
        let _e = span.enter();
        crate::util::create_dir_durable(&dir)?;
        let metrics = Arc::new(Metrics::new(opts.metrics_enabled));
        let bg = Background::start(&opts);
        let budget = Arc::new(MemoryBudget::new(opts.memtable_budget));
        let mut ids = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                if let Some(id) = parse_shard_dir(&e.path()) {
                    ids.push(id);
                }
            }
        }
        ids.sort_unstable();
        let par = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(1);
        let mut opened: Vec<(u64, Result<Arc<Shard>>)> = Vec::new();
        for chunk in ids.chunks(par) {
            std::thread::scope(|s| {
                let hs: Vec<_> = chunk
                    .iter()
                    .map(|&id| {
                        let (dir, opts, m, bg, budget) = (&dir, &opts, &metrics, &bg, &budget);
                        let span = span.clone();
                        s.spawn(move || {
                            let _e = span.enter();
                            let sched: Arc<dyn Scheduler> = bg.clone();
                            (
                                id,
                                Shard::open(
                                    id,
                                    &dir.join(id.to_string()),
                                    opts.clone(),
                                    m.clone(),
                                    sched,
                                    budget.clone(),
                                ),
                            )
                        })
                    })
                    .collect();
                for h in hs {
                    match h.join() {
                        Ok(r) => opened.push(r),
                        Err(_) => opened
                            .push((0, Err(Error::Internal("shard open thread panicked".into())))),
                    }
                }
            });
        }
        let mut shards = HashMap::new();
        let mut errs = Vec::new();
        for (id, r) in opened {
            match r {
                Ok(s) => {
                    shards.insert(id, s);
                }
                Err(e) => errs.push(e),
            }
        }
        if !errs.is_empty() {
            for s in shards.values() {
                let _ = s.close();
            }
            bg.shutdown();
            return Err(if errs.len() == 1 {
                errs.remove(0)
            } else {
                Error::Multiple(errs)
            });
        }
        let inner = Arc::new(Inner {
            dir,
            opts,
            shards: RwLock::new(shards),
            closed: AtomicBool::new(false),
            metrics,
            bg,
            budget,
            syncer: Mutex::new(None),
            governor: Mutex::new(None),
        });
        let weak = Arc::downgrade(&inner);
        let budget = inner.budget.clone();
        *inner.governor.lock() = std::thread::Builder::new()
            .name("sundial-mem-governor".into())
            .spawn(move || governor(&weak, &budget))
            .ok();
        if let FsyncPolicy::Every(interval) = inner.opts.fsync {
            let weak = Arc::downgrade(&inner);
            let h = std::thread::Builder::new()
                .name("sundial-wal-sync".into())
                .spawn(move || loop {
                    std::thread::sleep(interval);
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.closed.load(Ordering::Acquire) {
                        return;
                    }
                    let shards: Vec<Arc<Shard>> = inner.shards.read().values().cloned().collect();
                    for s in shards {
                        if let Err(e) = s.sync_wal() {
                            tracing::error!(shard_id = s.id, error = %e, "periodic WAL sync failed");
                        }
                    }
                })
                .ok();
            *inner.syncer.lock() = h;
        }
        let store = Store { inner };
        // Files left by an earlier run may be due for compaction.
        for s in store.inner.shards.read().values() {
            store.inner.bg.compact(Arc::downgrade(s));
        }
        Ok(store)
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn shard(&self, id: u64) -> Result<Arc<Shard>> {
        self.check_open()?;
        self.inner
            .shards
            .read()
            .get(&id)
            .cloned()
            .ok_or(Error::ShardNotFound(id))
    }

    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.opts
    }

    /// Close every shard and stop background work. Returns every error, not just the
    /// first. Closing twice is harmless.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            tracing::info!("close() called on an already-closed store");
            return Ok(());
        }
        let span = tracing::info_span!("store.close", dir = %self.inner.dir.display());
        let _e = span.enter();
        let shards: Vec<Arc<Shard>> = self.inner.shards.read().values().cloned().collect();
        let mut errs = Vec::new();
        // Mark shards closed first so background jobs stop picking up work.
        for s in &shards {
            if let Err(e) = s.close() {
                errs.push(Error::Internal(format!(
                    "error closing shard {}: {e}",
                    s.id
                )));
            }
        }
        self.inner.bg.shutdown();
        if let Some(h) = self.inner.syncer.lock().take() {
            let _ = h.join();
        }
        self.inner.budget.wake_all();
        if let Some(h) = self.inner.governor.lock().take() {
            let _ = h.join();
        }
        Error::from_many(errs)
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    pub fn shard_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.inner.shards.read().keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn has_shard(&self, id: u64) -> bool {
        self.inner.shards.read().contains_key(&id)
    }

    /// Create an empty shard; creating an existing one is an error.
    pub fn create_shard(&self, id: u64) -> Result<()> {
        self.check_open()?;
        let mut shards = self.inner.shards.write();
        if shards.contains_key(&id) {
            return Err(Error::ShardExists(id));
        }
        let sched: Arc<dyn Scheduler> = self.inner.bg.clone();
        let s = Shard::open(
            id,
            &self.inner.dir.join(id.to_string()),
            self.inner.opts.clone(),
            self.inner.metrics.clone(),
            sched,
            self.inner.budget.clone(),
        )?;
        shards.insert(id, s);
        Ok(())
    }

    /// Create the shard unless it exists.
    pub fn ensure_shard(&self, id: u64) -> Result<()> {
        match self.create_shard(id) {
            Err(Error::ShardExists(_)) => Ok(()),
            r => r,
        }
    }

    /// Close a shard and delete all its data.
    pub fn drop_shard(&self, id: u64) -> Result<()> {
        self.check_open()?;
        let s = self
            .inner
            .shards
            .write()
            .remove(&id)
            .ok_or(Error::ShardNotFound(id))?;
        let close = s.close();
        let dir = s.dir().to_path_buf();
        drop(s);
        std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        close
    }

    /// Write points to a shard. Invalid points are dropped and reported in the outcome;
    /// the others are durable (per the fsync policy) when this returns.
    pub fn write_to_shard(&self, shard_id: u64, points: &[Point<'_>]) -> Result<WriteOutcome> {
        let span = tracing::info_span!(
            "store.write",
            shard_id,
            points = points.len(),
            values = tracing::field::Empty,
            dropped = tracing::field::Empty
        );
        let _e = span.enter();
        let s = self.shard(shard_id)?;
        let out = s.write(points)?;
        span.record("values", out.values_written);
        span.record("dropped", out.points_dropped);
        Ok(out)
    }

    /// Stream the series of `measurement` matching `pred`, with the requested fields (all
    /// when `None`) in `[min, max]` (inclusive, ns). Series without data are skipped.
    pub fn scan(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
        fields: Option<&[&str]>,
        min: i64,
        max: i64,
    ) -> Result<SeriesIter> {
        let s = self.shard(shard_id)?;
        let keys = s.select(measurement, pred);
        let snap = s.snapshot();
        Ok(SeriesIter {
            shard: s,
            snap,
            keys: keys.into_iter(),
            fields: fields.map(|f| f.iter().map(|x| x.to_string()).collect()),
            min,
            max,
        })
    }

    /// Delete points in `[min, max]` of the matching series. Deleting the full time
    /// range also removes the series from the index.
    pub fn delete(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
        min: i64,
        max: i64,
    ) -> Result<()> {
        self.shard(shard_id)?.delete(measurement, pred, min, max)
    }

    pub fn drop_measurement(&self, shard_id: u64, measurement: &str) -> Result<()> {
        self.shard(shard_id)?.drop_measurement(measurement)
    }

    pub fn measurements(&self, shard_id: u64) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.index().read().measurements())
    }

    pub fn tag_keys(&self, shard_id: u64, measurement: &str) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.index().read().tag_keys(measurement))
    }

    pub fn tag_values(&self, shard_id: u64, measurement: &str, key: &str) -> Result<Vec<String>> {
        Ok(self
            .shard(shard_id)?
            .index()
            .read()
            .tag_values(measurement, key))
    }

    pub fn field_keys(&self, shard_id: u64, measurement: &str) -> Result<Vec<(String, FieldType)>> {
        Ok(self.shard(shard_id)?.index().read().field_keys(measurement))
    }

    /// Series keys of a measurement matching a predicate, sorted.
    pub fn series_keys(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
    ) -> Result<Vec<String>> {
        Ok(self
            .shard(shard_id)?
            .select(measurement, pred)
            .into_iter()
            .map(|(k, _)| k.to_string())
            .collect())
    }

    /// Flush the shard's memtables to files now (and wait).
    pub fn flush_shard(&self, shard_id: u64) -> Result<()> {
        self.shard(shard_id)?.flush()
    }

    /// Run compactions now: the normal policy until idle, or with `full` everything into
    /// one file (dropping what tombstones hide).
    pub fn compact_shard(&self, shard_id: u64, full: bool) -> Result<()> {
        self.shard(shard_id)?.compact(full)
    }

    pub fn recovery_report(&self, shard_id: u64) -> Result<RecoveryReport> {
        Ok(self.shard(shard_id)?.recovery.clone())
    }

    /// Description of the shard's data files (for tests and diagnostics).
    pub fn shard_files(&self, shard_id: u64) -> Result<Vec<crate::manifest::FileMeta>> {
        Ok(self.shard(shard_id)?.file_metas())
    }

    pub fn tombstone_count(&self, shard_id: u64) -> Result<usize> {
        Ok(self.shard(shard_id)?.tombstone_count())
    }

    /// A snapshot of the engine's counters.
    pub fn stats(&self) -> EngineStats {
        let mut s = self.inner.metrics.snapshot();
        s.memtable_bytes = self.inner.budget.used() as u64;
        let limit = self.inner.budget.limit();
        s.memtable_budget = if limit == usize::MAX { 0 } else { limit as u64 };
        s
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.load(Ordering::Acquire) {
            self.closed.store(true, Ordering::Release);
            for s in self.shards.read().values() {
                if let Err(e) = s.close() {
                    tracing::error!(shard_id = s.id, error = %e, "error closing shard on drop");
                }
            }
            self.bg.shutdown();
        }
        self.budget.wake_all();
    }
}

/// Frees memtable memory when the store is over its budget: freezes the largest
/// active memtables (flushes are queued) until what stays active is well below it.
fn governor(inner: &Weak<Inner>, budget: &MemoryBudget) {
    loop {
        let over = budget.wait_for_pressure(std::time::Instant::now() + Duration::from_secs(1));
        let Some(inner) = inner.upgrade() else { return };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        let shards: Vec<Arc<Shard>> = inner.shards.read().values().cloned().collect();
        drop(inner);
        if !over {
            continue;
        }
        // Measure afresh: the budget must never act on (or keep) a stale count.
        for s in &shards {
            s.report_mem();
        }
        if budget.used() <= budget.limit() {
            continue;
        }
        let mut shards: Vec<(usize, Arc<Shard>)> =
            shards.into_iter().map(|s| (s.active_bytes(), s)).collect();
        shards.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        // Frozen memtables are already on their way out; what stays active should
        // come down to half the budget.
        let target = budget.limit() / 2;
        let mut pending: usize = shards.iter().map(|(b, _)| b).sum();
        for (bytes, s) in shards {
            if pending <= target || bytes == 0 {
                break;
            }
            match s.freeze_for_budget() {
                Ok(frozen) => pending = pending.saturating_sub(frozen),
                Err(Error::Closed) => {}
                Err(e) => tracing::warn!(shard_id = s.id, error = %e, "freezing a memtable failed"),
            }
        }
    }
}
