//! The [`Store`]: every shard of a node, opened on demand; the series catalogs of
//! its databases; background flush, compaction, memory and housekeeping threads;
//! the engine's counters.
//!
//! Files: `background.rs` (flush/compaction threads, memtable governor), `slots.rs`
//! (open/closed shard slots), `janitor.rs` (idle shards, descriptor and memory
//! pressure, degraded shards, free disk space).

mod background;
mod janitor;
mod slots;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use roaring::RoaringBitmap;
use sundial_lineproto::Point;

use crate::budget::{IndexMemory, MemoryBudget};
use crate::catalog::{dir_name, Catalog};
use crate::error::{Error, Result};
use crate::index::TagPredicate;
use crate::options::{EngineOptions, FsyncPolicy};
use crate::shard::{
    snapshot_series, FieldData, ReadState, RecoveryReport, Scheduler, SeriesData, Shard, ShardEnv,
    Summarized,
};
use crate::stats::{DatabaseStats, EngineStats, Metrics};
use crate::types::FieldType;
use background::Background;
use janitor::DiskGuard;
use slots::{Slot, SlotState};
use sundial_common::WriteOutcome;

/// A database's catalog, loaded while any of its shards is open.
#[derive(Debug, Default)]
struct CatalogSlot {
    loaded: Mutex<Weak<Catalog>>,
}

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

/// What a node's storage says about its health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreHealth {
    /// Free bytes on the store's file system, and the reserve below which writes stop.
    pub disk_free: u64,
    pub disk_reserve: u64,
    /// Shards that cannot take writes, with the reason: open ones whose WAL failed
    /// (each is reopened from disk as soon as nobody uses it) and closed ones whose
    /// last open failed (until an open succeeds).
    pub degraded_shards: Vec<(u64, String)>,
}

impl StoreHealth {
    pub fn disk_ok(&self) -> bool {
        self.disk_reserve == 0 || self.disk_free >= self.disk_reserve
    }
}

/// A streaming scan: one series per `next()`, read lazily from a consistent snapshot.
#[derive(Debug)]
pub struct SeriesIter {
    shard: Arc<Shard>,
    snap: ReadState,
    keys: std::vec::IntoIter<(Box<str>, u32)>,
    fields: Option<Vec<String>>,
    min: i64,
    max: i64,
}

/// What [`Store::summarize`] calls per series: its tags and its summarized
/// fields; false stops.
pub type SummaryVisitor<'a> =
    dyn FnMut(Vec<(String, String)>, Vec<(String, Summarized)>) -> bool + 'a;

impl Iterator for SeriesIter {
    type Item = Result<SeriesData>;

    fn next(&mut self) -> Option<Self::Item> {
        for (key, sid) in self.keys.by_ref() {
            self.shard.metrics.add(&self.shard.metrics.series_read, 1);
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

    fn catalog_dir(&self, database: &str) -> PathBuf {
        self.dir.join("_series").join(dir_name(database))
    }

    fn catalog_slot(&self, database: &Arc<str>) -> Arc<CatalogSlot> {
        self.catalogs
            .lock()
            .entry(database.clone())
            .or_default()
            .clone()
    }

    /// The database's catalog, loaded if no open shard holds it.
    fn catalog(&self, database: &Arc<str>) -> Result<Arc<Catalog>> {
        let cs = self.catalog_slot(database);
        let mut loaded = cs.loaded.lock();
        if let Some(c) = loaded.upgrade() {
            return Ok(c);
        }
        let c = Catalog::open(
            &self.catalog_dir(database),
            database,
            self.opts.fsync == FsyncPolicy::Always,
            self.index_mem.clone(),
        )?;
        *loaded = Arc::downgrade(&c);
        Ok(c)
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

    /// Drops what a removed shard alone held from its database's catalog, or the
    /// whole catalog when no shard of the database is left. Failures only delay the
    /// cleanup (the series stay counted); they are logged, not returned.
    fn collect_series(&self, database: &Arc<str>, dropped: Option<RoaringBitmap>) {
        let others = |slots: &HashMap<u64, Arc<Slot>>| -> Vec<Arc<Slot>> {
            slots
                .values()
                .filter(|s| s.database().as_deref() == Some(&**database))
                .cloned()
                .collect()
        };
        let rest = others(&self.slots.read());
        if rest.is_empty() {
            let cs = self.catalog_slot(database);
            let mut loaded = cs.loaded.lock();
            // A shard created meanwhile waits on this lock for its catalog.
            if !others(&self.slots.read()).is_empty() || loaded.upgrade().is_some() {
                return;
            }
            *loaded = Weak::new();
            let dir = self.catalog_dir(database);
            if let Err(e) = crate::vfs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(database = %database, error = %e, "could not remove the series catalog of a database without shards");
                }
            }
            return;
        }
        let Some(dropped) = dropped else { return };
        let catalog = match self.catalog(database) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(database = %database, error = %e, "series catalog unavailable; dropped series stay counted");
                return;
            }
        };
        // No writer may resolve a series and record it in a shard while this runs.
        let _gc = catalog.gc_guard();
        let mut alive = RoaringBitmap::new();
        for s in rest {
            match s.open_shard() {
                Some(sh) => alive |= sh.series_ids(),
                None => {
                    // Read under the slot's lock, so a closed shard stays closed (its
                    // snapshot and log unchanged) while they are read. Being opened or
                    // closed, or unreadable: keep everything.
                    let st = s.state.lock();
                    let ids = matches!(*st, SlotState::Closed)
                        .then(|| snapshot_series(&s.dir, catalog.generation()))
                        .flatten();
                    drop(st);
                    match ids {
                        Some(b) => alive |= b,
                        None => return,
                    }
                }
            }
        }
        let doomed = dropped - alive;
        match catalog.drop_series(&doomed) {
            Ok(n) if n > 0 => {
                tracing::info!(database = %database, series = n, "series dropped from the catalog with their last shard")
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(database = %database, error = %e, "could not drop series from the catalog")
            }
        }
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

    /// Create an empty shard of `database`; creating an existing one is an error.
    pub fn create_shard(&self, id: u64, database: &str) -> Result<()> {
        self.inner.check_open()?;
        let slot = {
            let mut slots = self.inner.slots.write();
            if slots.contains_key(&id) {
                return Err(Error::ShardExists(id));
            }
            if self.inner.dropping.lock().contains(&id) {
                return Err(Error::ShardDegraded {
                    shard: id,
                    reason: "it is being dropped; try again".into(),
                });
            }
            let dir = self.inner.dir.join(id.to_string());
            let new = self.inner.dir.join(format!("{id}{CREATING_SUFFIX}"));
            let _ = crate::vfs::remove_dir_all(&new);
            crate::vfs::create_dir(&new).map_err(|e| Error::io(&new, e))?;
            slots::write_database(&new, database)?;
            crate::vfs::rename(&new, &dir).map_err(|e| Error::io(&dir, e))?;
            crate::vfs::sync_dir(&self.inner.dir)?;
            let slot = Slot::new(id, dir, Some(database.into()));
            slots.insert(id, slot.clone());
            slot
        };
        self.inner.shard_of(&slot).map(|_| ())
    }

    /// Create the shard unless it exists. A shard of an older version, which did not
    /// record its database, is told it here.
    pub fn ensure_shard(&self, id: u64, database: &str) -> Result<()> {
        let known = self.inner.slots.read().get(&id).cloned();
        let Some(slot) = known else {
            return match self.create_shard(id, database) {
                Err(Error::ShardExists(_)) => self.ensure_shard(id, database),
                r => r,
            };
        };
        match slot.database() {
            Some(d) if *d == *database => Ok(()),
            Some(d) => Err(Error::InvalidArgument(format!(
                "shard {id} belongs to database {d:?}, not {database:?}"
            ))),
            None => {
                slots::write_database(&slot.dir, database)?;
                *slot.database.write() = Some(database.into());
                Ok(())
            }
        }
    }

    /// Close a shard and delete all its data.
    pub fn drop_shard(&self, id: u64) -> Result<()> {
        self.inner.check_open()?;
        let slot = {
            let mut slots = self.inner.slots.write();
            let slot = slots.remove(&id).ok_or(Error::ShardNotFound(id))?;
            // Under the slots lock: `create_shard` sees the slot or this mark.
            self.inner.dropping.lock().insert(id);
            slot
        };
        let dropped = self.drop_slot(&slot);
        self.inner.dropping.lock().remove(&id);
        dropped
    }

    fn drop_slot(&self, slot: &Arc<Slot>) -> Result<()> {
        let shard = {
            let mut st = slot.state.lock();
            loop {
                match std::mem::replace(&mut *st, SlotState::Dropped) {
                    SlotState::Busy => {
                        *st = SlotState::Busy;
                        slot.changed.wait(&mut st);
                    }
                    SlotState::Open(s) => break Some(s),
                    _ => break None,
                }
            }
        };
        slot.changed.notify_all();
        let database = slot.database();
        let series = match (&shard, &database) {
            (Some(s), _) => Some(s.series_ids()),
            (None, Some(db)) => self
                .inner
                .catalog(db)
                .ok()
                .and_then(|c| snapshot_series(&slot.dir, c.generation())),
            (None, None) => None,
        };
        let close = shard.as_ref().map_or(Ok(()), |s| s.close());
        drop(shard);
        // Renamed away first: a crash mid-removal leaves no half shard under its
        // id for the next open (which removes `*.dropping` directories).
        let mut away = slot.dir.clone().into_os_string();
        away.push(DROPPING_SUFFIX);
        let away = PathBuf::from(away);
        crate::vfs::rename(&slot.dir, &away).map_err(|e| Error::io(&slot.dir, e))?;
        crate::vfs::sync_dir(&self.inner.dir)?;
        crate::vfs::remove_dir_all(&away).map_err(|e| Error::io(&away, e))?;
        if let Some(db) = database {
            self.inner.collect_series(&db, series);
        }
        close
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

    /// For an aggregate: each series of `measurement` matching `pred`, with its
    /// tags and, per field of `fields`, the statistics of its whole blocks and
    /// its other points in `[min, max]` (see [`Summarized`]); `f` returns false
    /// to stop.
    #[allow(clippy::too_many_arguments)]
    pub fn summarize(
        &self,
        shard_id: u64,
        measurement: &str,
        pred: &TagPredicate,
        fields: &[&str],
        min: i64,
        max: i64,
        same_window: &dyn Fn(i64, i64) -> bool,
        f: &mut SummaryVisitor<'_>,
    ) -> Result<()> {
        let s = self.shard(shard_id)?;
        let keys = s.select(measurement, pred);
        let snap = s.snapshot();
        for (key, sid) in keys {
            s.metrics.add(&s.metrics.series_read, 1);
            let per_field =
                s.read_series_summarized(&snap, &key, sid, fields, min, max, same_window)?;
            if per_field.is_empty() {
                continue;
            }
            let (_, tags) = crate::index::parse_series_key(&key);
            if !f(tags, per_field) {
                break;
            }
        }
        Ok(())
    }

    /// Delete points in `[min, max]` of the matching series. Deleting the full time
    /// range also removes the series from the shard's list.
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

    /// Delete points in `[min, max]` of exactly the series `keys` (canonical
    /// series keys; those the shard lacks are skipped).
    pub fn delete_series(&self, shard_id: u64, keys: &[String], min: i64, max: i64) -> Result<()> {
        self.shard(shard_id)?.delete_series(keys, min, max)
    }

    pub fn drop_measurement(&self, shard_id: u64, measurement: &str) -> Result<()> {
        self.shard(shard_id)?.drop_measurement(measurement)
    }

    pub fn measurements(&self, shard_id: u64) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.measurements())
    }

    pub fn tag_keys(&self, shard_id: u64, measurement: &str) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.tag_keys(measurement))
    }

    pub fn tag_values(&self, shard_id: u64, measurement: &str, key: &str) -> Result<Vec<String>> {
        Ok(self.shard(shard_id)?.tag_values(measurement, key))
    }

    /// The stamp of a shard's schema now (see [`crate::index::SchemaStamp`]):
    /// read before its schema, it names a state no older than what is read.
    pub fn schema_stamp(&self, shard_id: u64) -> Result<u64> {
        Ok(self.shard(shard_id)?.index().read().stamp.0)
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
            .map(|(k, _)| k.into_string())
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

    /// Live series of a database on this store (loads its catalog if needed).
    pub fn series_count(&self, database: &str) -> Result<usize> {
        self.inner.check_open()?;
        Ok(self.inner.catalog(&Arc::from(database))?.series_count())
    }

    /// Disk space and shards that failed (for `/health`).
    pub fn health(&self) -> StoreHealth {
        let mut degraded_shards: Vec<(u64, String)> = self
            .inner
            .open_shards()
            .iter()
            .filter_map(|s| {
                s.wal_failure().map(|w| {
                    (
                        s.id,
                        format!("WAL failed ({w}); the shard reopens from disk"),
                    )
                })
            })
            .collect();
        for slot in self.inner.slots.read().values() {
            // An open shard's state is its WAL's (above); a note left by a close that
            // raced with a reopen is stale.
            if matches!(&*slot.state.lock(), SlotState::Open(_)) {
                continue;
            }
            if let Some(e) = slot.open_error.lock().clone() {
                degraded_shards.push((slot.id, e));
            }
        }
        degraded_shards.sort();
        StoreHealth {
            disk_free: self.inner.disk.free(self.inner.epoch),
            disk_reserve: self.inner.opts.disk_free_reserve,
            degraded_shards,
        }
    }

    /// The engine's latency histograms (shared: they keep counting).
    pub fn latencies(&self) -> crate::stats::EngineLatencies {
        self.inner.metrics.latencies.clone()
    }

    /// A snapshot of the engine's counters and gauges.
    pub fn stats(&self) -> EngineStats {
        let inner = &self.inner;
        let mut s = inner.metrics.snapshot();
        s.memtable_bytes = inner.budget.used() as u64;
        let limit = inner.budget.limit();
        s.memtable_budget = if limit == usize::MAX { 0 } else { limit as u64 };
        let slots: Vec<Arc<Slot>> = inner.slots.read().values().cloned().collect();
        s.shards = slots.len() as u64;
        for slot in &slots {
            let levels = match slot.open_shard() {
                Some(shard) => {
                    s.shards_open += 1;
                    s.files_degraded += shard.files_degraded();
                    shard.files_per_level()
                }
                None => slot.files_by_level.lock().clone(),
            };
            if s.files_per_level.len() < levels.len() {
                s.files_per_level.resize(levels.len(), 0);
            }
            for (total, n) in s.files_per_level.iter_mut().zip(levels) {
                *total += n;
            }
        }
        s.open_files = inner.descriptors_in_use() as u64;
        s.open_files_budget = inner.opts.max_open_files as u64;
        s.index_memory_bytes = inner.index_mem.used() as u64;
        let il = inner.index_mem.limit();
        s.index_memory_limit = if il == usize::MAX { 0 } else { il as u64 };
        s.disk_free_bytes = inner.disk.free(inner.epoch);
        s.disk_free_reserve = inner.opts.disk_free_reserve;
        let loaded: Vec<Arc<Catalog>> = inner
            .catalogs
            .lock()
            .values()
            .filter_map(|c| c.loaded.lock().upgrade())
            .collect();
        s.databases = loaded
            .iter()
            .map(|c| DatabaseStats {
                database: c.database.to_string(),
                series: c.series_count() as u64,
                max_tag_values: c.max_tag_values() as u64,
            })
            .collect();
        s.databases.sort_by(|a, b| a.database.cmp(&b.database));
        s
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
