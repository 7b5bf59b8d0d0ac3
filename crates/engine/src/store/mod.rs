//! The [`Store`]: every shard of a node, opened on demand; the series catalogs of
//! its databases; background flush, compaction, memory and housekeeping threads;
//! the engine's counters.
//!
//! Files: `background.rs` (flush/compaction threads, memtable governor), `slots.rs`
//! (open/closed shard slots), `janitor.rs` (idle shards, descriptor and memory
//! pressure, degraded shards, free disk space), `catalogs.rs` (the databases' series
//! catalogs), `create_drop.rs` (creating and dropping shards), `query.rs` (scans,
//! summaries, deletes, schema lookups), `health.rs` (health and statistics).

mod background;
mod catalogs;
mod create_drop;
mod health;
mod janitor;
mod query;
mod slots;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use sundial_lineproto::Point;

use crate::budget::{IndexMemory, MemoryBudget};
use crate::error::{Error, Result};
use crate::options::EngineOptions;
use crate::shard::{RecoveryReport, Scheduler, Shard, ShardEnv};
use crate::stats::Metrics;
use background::Background;
use catalogs::CatalogSlot;
use janitor::DiskGuard;
use slots::{Slot, SlotState};
use sundial_common::WriteOutcome;

pub use health::StoreHealth;
pub use query::SeriesIter;

/// The suffix of a shard directory being removed.
const DROPPING_SUFFIX: &str = ".dropping";
/// A shard being created: its directory gets its final name only once it holds
/// what says which database it belongs to.
const CREATING_SUFFIX: &str = ".creating";

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    opts: EngineOptions,
    slots: RwLock<HashMap<u64, Arc<Slot>>>,
    /// Shards being dropped: their ids cannot be created again until the old
    /// directory is gone (it is renamed away first, then removed).
    dropping: Mutex<std::collections::HashSet<u64>>,
    catalogs: Mutex<HashMap<Arc<str>, Arc<CatalogSlot>>>,
    closed: AtomicBool,
    metrics: Arc<Metrics>,
    bg: Arc<Background>,
    budget: Arc<MemoryBudget>,
    index_mem: Arc<IndexMemory>,
    epoch: Instant,
    disk: DiskGuard,
    /// Descriptors of shards being opened or closed, which `open_shards` misses.
    fds_in_flight: AtomicUsize,
    /// Serializes openers' budget checks, so concurrent opens cannot all see room.
    fd_room: Mutex<()>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// All shards of one node. Cheap to clone (shared handle).
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

fn parse_shard_dir(p: &Path) -> Option<u64> {
    p.file_name()?.to_str()?.parse().ok()
}

impl Inner {
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    fn slot(&self, id: u64) -> Result<Arc<Slot>> {
        self.check_open()?;
        self.slots
            .read()
            .get(&id)
            .cloned()
            .ok_or(Error::ShardNotFound(id))
    }

    /// Every shard open right now.
    pub(crate) fn open_shards(&self) -> Vec<Arc<Shard>> {
        let slots: Vec<Arc<Slot>> = self.slots.read().values().cloned().collect();
        slots.iter().filter_map(|s| s.open_shard()).collect()
    }

    /// The shard of `slot`, opening it when it is closed.
    fn shard_of(&self, slot: &Arc<Slot>) -> Result<Arc<Shard>> {
        slots::touch(slot, self.epoch);
        {
            let mut st = slot.state.lock();
            loop {
                match &*st {
                    SlotState::Open(s) => return Ok(s.clone()),
                    SlotState::Busy => slot.changed.wait(&mut st),
                    SlotState::Dropped => return Err(Error::ShardNotFound(slot.id)),
                    SlotState::Closed => {
                        *st = SlotState::Busy;
                        break;
                    }
                }
            }
        }
        let opened = self.open_slot(slot);
        *slot.open_error.lock() = opened
            .as_ref()
            .err()
            .map(|e| format!("cannot be opened: {e}"));
        let mut st = slot.state.lock();
        *st = match &opened {
            Ok(s) => SlotState::Open(s.clone()),
            Err(_) => SlotState::Closed,
        };
        slot.changed.notify_all();
        opened
    }

    fn open_slot(&self, slot: &Slot) -> Result<Arc<Shard>> {
        self.check_open()?;
        let database = slot.database().ok_or_else(|| {
            Error::InvalidArgument(format!(
                "shard {} does not say which database it belongs to (written by an older version); ensure_shard names it",
                slot.id
            ))
        })?;
        let _room = self.make_descriptor_room(slot.id)?;
        let catalog = self.catalog(&database)?;
        let sched: Arc<dyn crate::shard::Scheduler> = self.bg.clone();
        let shard = Shard::open(
            slot.id,
            &slot.dir,
            ShardEnv {
                opts: self.opts.clone(),
                metrics: self.metrics.clone(),
                sched,
                budget: self.budget.clone(),
                index_mem: self.index_mem.clone(),
                catalog,
            },
        )?;
        self.metrics.add(&self.metrics.shards_opened, 1);
        // Files left by an earlier run may be due for compaction.
        if self.opts.auto_compaction {
            self.bg.compact(Arc::downgrade(&shard));
        }
        Ok(shard)
    }
}

impl Store {
    /// Open (or create) a store in `dir`. Shards are found but not opened: each opens
    /// at its first use.
    pub fn open(dir: impl AsRef<Path>, opts: EngineOptions) -> Result<Store> {
        let dir = dir.as_ref().to_path_buf();
        let span = tracing::info_span!("store.open", dir = %dir.display());
        let _e = span.enter();
        crate::vfs::create_dir_durable(&dir)?;
        let mut slots = HashMap::new();
        let mut legacy = 0;
        for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let e = e.map_err(|e| Error::io(&dir, e))?;
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            // A drop or a create interrupted by a crash: the shard was already
            // renamed away, or never got its name.
            if p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(DROPPING_SUFFIX) || n.ends_with(CREATING_SUFFIX))
            {
                tracing::info!(path = %p.display(), "removing the rest of a dropped or unfinished shard");
                crate::vfs::remove_dir_all(&p).map_err(|e| Error::io(&p, e))?;
                continue;
            }
            if let Some(id) = parse_shard_dir(&p) {
                let db = slots::read_database(&p)?;
                legacy += usize::from(db.is_none());
                slots.insert(id, Slot::new(id, p, db));
            }
        }
        if legacy > 0 {
            tracing::info!(
                shards = legacy,
                "shards without a recorded database wait for ensure_shard to name it"
            );
        }
        let metrics = Arc::new(Metrics::new(opts.metrics_enabled));
        let bg = Background::start(&opts);
        let inner = Arc::new(Inner {
            disk: DiskGuard::new(&dir, opts.disk_free_reserve),
            dir,
            budget: Arc::new(MemoryBudget::new(opts.memtable_budget)),
            index_mem: Arc::new(IndexMemory::new(opts.index_memory_limit)),
            opts,
            slots: RwLock::new(slots),
            dropping: Mutex::new(Default::default()),
            catalogs: Mutex::new(HashMap::new()),
            closed: AtomicBool::new(false),
            metrics,
            bg,
            epoch: Instant::now(),
            fds_in_flight: AtomicUsize::new(0),
            fd_room: Mutex::new(()),
            threads: Mutex::new(Vec::new()),
        });
        janitor::start_threads(&inner);
        tracing::info!(shards = inner.slots.read().len(), "store opened");
        Ok(Store { inner })
    }

    fn shard(&self, id: u64) -> Result<Arc<Shard>> {
        let slot = self.inner.slot(id)?;
        self.inner.shard_of(&slot)
    }

    pub fn path(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &EngineOptions {
        &self.inner.opts
    }

    /// Flush every open shard's memtables into files, close it and stop background
    /// work: the next open replays no WAL (a flush that fails, e.g. on a full disk,
    /// leaves the data in the WAL). Returns every error, not just the first.
    /// Closing twice is harmless.
    pub fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            tracing::info!("close() called on an already-closed store");
            return Ok(());
        }
        let span = tracing::info_span!("store.close", dir = %self.inner.dir.display());
        let _e = span.enter();
        let errs = self.inner.close_all(true);
        self.inner.stop_threads();
        Error::from_many(errs)
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Every shard of the store, open or not, sorted.
    pub fn shard_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.inner.slots.read().keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Shards open right now, sorted.
    pub fn open_shard_ids(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.inner.open_shards().iter().map(|s| s.id).collect();
        v.sort_unstable();
        v
    }

    pub fn has_shard(&self, id: u64) -> bool {
        self.inner.slots.read().contains_key(&id)
    }

    /// The database a shard belongs to (`None` for a shard of an older version that
    /// no `ensure_shard` has named yet).
    pub fn shard_database(&self, id: u64) -> Option<String> {
        let slot = self.inner.slots.read().get(&id).cloned()?;
        slot.database().map(|d| d.to_string())
    }

    /// Write points to a shard. Invalid points (and points of series a limit refuses)
    /// are dropped and reported in the outcome; the others are durable (per the fsync
    /// policy) when this returns.
    pub fn write_to_shard(&self, shard_id: u64, points: &[Point<'_>]) -> Result<WriteOutcome> {
        let span = tracing::info_span!(
            "shard.write",
            shard_id,
            points = points.len(),
            values = tracing::field::Empty,
            dropped = tracing::field::Empty
        );
        let _e = span.enter();
        if let Err(e) = self.inner.disk.check(self.inner.epoch) {
            self.inner
                .metrics
                .add(&self.inner.metrics.writes_refused_disk, 1);
            return Err(e);
        }
        let slot = self.inner.slot(shard_id)?;
        let s = self.inner.shard_of(&slot)?;
        slots::wrote(&slot);
        let out = s.write(points);
        if out.is_err() && s.wal_failure().is_some() {
            // The janitor reopens the shard from disk once nobody uses it.
            self.inner.bg.wake_janitor();
        }
        let out = out?;
        span.record("values", out.values_written);
        span.record("dropped", out.points_dropped);
        Ok(out)
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

    /// Live series of a database on this store (loads its catalog if needed).
    pub fn series_count(&self, database: &str) -> Result<usize> {
        self.inner.check_open()?;
        Ok(self.inner.catalog(&Arc::from(database))?.series_count())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            // Dropped without `close`: the WAL keeps the memtables' data.
            for e in self.close_all(false) {
                tracing::error!(error = %e, "error closing shard on drop");
            }
            self.bg.shutdown();
        }
        self.budget.wake_all();
    }
}
