//! Shards open on demand: each shard a store knows has a slot, open or closed. A
//! closed shard costs no descriptor and no memory; it is opened by its first read or
//! write and closed again when it goes idle or the store needs its descriptors or
//! memory (least recently used first, never while in use).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::shard::Shard;
use crate::vfs::write_atomic;

/// The file in a shard's directory naming its database.
const DATABASE_FILE: &str = "DATABASE";

#[derive(Debug)]
pub(super) enum SlotState {
    Closed,
    /// Someone is opening or closing it: wait.
    Busy,
    Open(Arc<Shard>),
    Dropped,
}

#[derive(Debug)]
pub(super) struct Slot {
    pub id: u64,
    pub dir: PathBuf,
    /// `None` for a shard written before shards recorded their database, until the
    /// server tells (`Store::ensure_shard`).
    pub database: RwLock<Option<Arc<str>>>,
    pub state: Mutex<SlotState>,
    pub changed: Condvar,
    /// Milliseconds since the store opened, at the last use.
    pub last_used: AtomicU64,
    /// Milliseconds since the store opened, at the last write (0: none since).
    pub last_write: AtomicU64,
    /// A full compaction was started since the last write (the shard went cold).
    pub cold_compacted: AtomicBool,
    /// Why it cannot take writes while closed: its last open failed, or it was
    /// closed because its WAL failed. Cleared by a successful open; `/health`
    /// reports it.
    pub open_error: Mutex<Option<String>>,
    /// Data files per level when last closed (`Store::stats` reads a closed
    /// shard's from here; shards not opened since start are not counted).
    pub files_by_level: Mutex<Vec<u64>>,
}

impl Slot {
    pub fn new(id: u64, dir: PathBuf, database: Option<Arc<str>>) -> Arc<Slot> {
        Arc::new(Slot {
            id,
            dir,
            database: RwLock::new(database),
            state: Mutex::new(SlotState::Closed),
            changed: Condvar::new(),
            last_used: AtomicU64::new(0),
            last_write: AtomicU64::new(0),
            cold_compacted: AtomicBool::new(false),
            open_error: Mutex::new(None),
            files_by_level: Mutex::new(Vec::new()),
        })
    }

    pub fn database(&self) -> Option<Arc<str>> {
        self.database.read().clone()
    }

    /// The open shard, if it is open right now (no waiting, no opening).
    pub fn open_shard(&self) -> Option<Arc<Shard>> {
        match &*self.state.lock() {
            SlotState::Open(s) => Some(s.clone()),
            _ => None,
        }
    }

    /// Takes the shard out of the slot if nobody but the slot holds it and `pick`
    /// agrees; the slot is `Busy` until [`Slot::finish_close`].
    pub fn take_if_unused(&self, pick: impl FnOnce(&Arc<Shard>) -> bool) -> Option<Arc<Shard>> {
        let mut st = self.state.lock();
        let SlotState::Open(s) = &*st else {
            return None;
        };
        // Clones are made under this lock (or by background jobs, which cope with a
        // closed shard), so one strong reference means nobody is using it.
        if Arc::strong_count(s) != 1 || !pick(s) {
            return None;
        }
        let SlotState::Open(s) = std::mem::replace(&mut *st, SlotState::Busy) else {
            return None;
        };
        Some(s)
    }

    pub fn finish_close(&self) {
        let mut st = self.state.lock();
        if matches!(*st, SlotState::Busy) {
            *st = SlotState::Closed;
        }
        self.changed.notify_all();
    }
}

/// Reads the database a shard directory belongs to.
pub(super) fn read_database(dir: &Path) -> Result<Option<Arc<str>>> {
    let p = dir.join(DATABASE_FILE);
    match std::fs::read(&p) {
        Ok(b) => String::from_utf8(b)
            .map(|s| Some(Arc::from(s)))
            .map_err(|_| Error::corrupt(&p, "database name is not UTF-8")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(&p, e)),
    }
}

pub(super) fn write_database(dir: &Path, database: &str) -> Result<()> {
    write_atomic(&dir.join(DATABASE_FILE), database.as_bytes())
}

/// Milliseconds on the store's clock.
pub(super) fn now_ms(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

pub(super) fn touch(slot: &Slot, epoch: Instant) {
    slot.last_used.store(now_ms(epoch), Ordering::Relaxed);
}

/// After a write got its shard (which stamped `last_used`): the clock of the
/// cold-shard compaction restarts. No clock read and, mostly, no shared store.
pub(super) fn wrote(slot: &Slot) {
    let now = slot.last_used.load(Ordering::Relaxed).max(1);
    if slot.last_write.load(Ordering::Relaxed) != now {
        slot.last_write.store(now, Ordering::Relaxed);
    }
    if slot.cold_compacted.load(Ordering::Relaxed) {
        slot.cold_compacted.store(false, Ordering::Relaxed);
    }
}
