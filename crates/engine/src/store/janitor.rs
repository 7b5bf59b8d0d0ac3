//! Housekeeping: shards that went idle are flushed and closed; shards whose WAL
//! failed are reopened from disk; descriptor and memory pressure close the least
//! recently used shards; free disk space is watched so writes stop before the WAL
//! could fail.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::slots::{now_ms, Slot, SlotState};
use super::{background, Inner};
use crate::error::{Error, Result};
use crate::options::FsyncPolicy;
use crate::shard::{Shard, DEGRADE_SUMMARIES_PERCENT};

/// How long summaries a degraded file loaded for lookups stay unused in memory.
const SUMMARIES_IDLE: Duration = Duration::from_secs(30);

/// Descriptors counted as in use while a shard opens or closes.
pub(super) struct FdsInFlight<'a> {
    inner: &'a Inner,
    n: usize,
}

impl<'a> FdsInFlight<'a> {
    fn new(inner: &'a Inner, n: usize) -> Self {
        inner.fds_in_flight.fetch_add(n, Ordering::AcqRel);
        FdsInFlight { inner, n }
    }
}

impl Drop for FdsInFlight<'_> {
    fn drop(&mut self) {
        self.inner.fds_in_flight.fetch_sub(self.n, Ordering::AcqRel);
    }
}

/// Free space on the store's file system, re-read at most every 50 ms.
#[derive(Debug)]
pub(super) struct DiskGuard {
    path: PathBuf,
    reserve: u64,
    free: AtomicU64,
    /// Store-clock milliseconds of the last reading, plus one (0: never read).
    read_at: AtomicU64,
}

impl DiskGuard {
    pub fn new(path: &Path, reserve: u64) -> DiskGuard {
        DiskGuard {
            path: path.to_path_buf(),
            reserve,
            free: AtomicU64::new(u64::MAX),
            read_at: AtomicU64::new(0),
        }
    }

    pub fn free(&self, epoch: Instant) -> u64 {
        let now = now_ms(epoch) + 1;
        let at = self.read_at.load(Ordering::Relaxed);
        if at == 0 || now.saturating_sub(at) >= 50 {
            match rustix::fs::statvfs(&self.path) {
                Ok(st) => {
                    self.free
                        .store(st.f_bavail.saturating_mul(st.f_frsize), Ordering::Relaxed);
                }
                Err(e) => tracing::warn!(path = %self.path.display(), error = %e, "statvfs failed"),
            }
            self.read_at.store(now, Ordering::Relaxed);
        }
        self.free.load(Ordering::Relaxed)
    }

    /// Refuses a write while free space is below the reserve.
    pub fn check(&self, epoch: Instant) -> Result<()> {
        if self.reserve == 0 {
            return Ok(());
        }
        let free = self.free(epoch);
        if free < self.reserve {
            return Err(Error::DiskFull {
                path: self.path.clone(),
                free,
                reserve: self.reserve,
            });
        }
        Ok(())
    }
}

pub(super) fn start_threads(inner: &Arc<Inner>) {
    let mut threads = inner.threads.lock();
    let (weak, budget) = (Arc::downgrade(inner), inner.budget.clone());
    if let Ok(h) = std::thread::Builder::new()
        .name("sundial-mem-governor".into())
        .spawn(move || background::governor(&weak, &budget))
    {
        threads.push(h);
    }
    let weak = Arc::downgrade(inner);
    if let Ok(h) = std::thread::Builder::new()
        .name("sundial-janitor".into())
        .spawn(move || janitor(&weak))
    {
        threads.push(h);
    }
    if let FsyncPolicy::Every(interval) = inner.opts.fsync {
        let weak = Arc::downgrade(inner);
        if let Ok(h) = std::thread::Builder::new()
            .name("sundial-wal-sync".into())
            .spawn(move || loop {
                std::thread::sleep(interval);
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                for s in inner.open_shards() {
                    if let Err(e) = s.sync_wal() {
                        tracing::error!(shard_id = s.id, error = %e, "periodic WAL sync failed");
                    }
                }
            })
        {
            threads.push(h);
        }
    }
}

fn janitor(inner: &Weak<Inner>) {
    loop {
        let Some(i) = inner.upgrade() else { return };
        let (bg, tick) = (i.bg.clone(), i.janitor_tick());
        drop(i);
        bg.janitor_wait(tick);
        let Some(i) = inner.upgrade() else { return };
        if i.closed.load(Ordering::Acquire) || bg.stopping() {
            return;
        }
        i.janitor_pass();
    }
}

impl Inner {
    fn janitor_tick(&self) -> Duration {
        let idle = self.opts.shard_idle_timeout;
        if idle.is_zero() {
            return Duration::from_secs(5);
        }
        (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    fn slots_vec(&self) -> Vec<Arc<Slot>> {
        self.slots.read().values().cloned().collect()
    }

    /// Closes the shard of `slot` if nobody uses it and `pick` agrees; with `flush`
    /// its memtables go to files first. True when it was closed.
    fn close_unused(
        &self,
        slot: &Slot,
        flush: bool,
        pick: impl FnOnce(&Arc<Shard>) -> bool,
    ) -> bool {
        let Some(s) = slot.take_if_unused(pick) else {
            return false;
        };
        let _closing = FdsInFlight::new(self, s.open_files());
        let res = if flush {
            s.flush_and_close()
        } else {
            s.close()
        };
        if let Err(e) = res {
            tracing::warn!(shard_id = slot.id, error = %e, "closing a shard reported errors");
        }
        // What the flush left, for `Store::stats` while the shard is closed.
        *slot.files_by_level.lock() = s.files_per_level();
        drop(s);
        slot.finish_close();
        true
    }

    pub(super) fn janitor_pass(&self) {
        let now = now_ms(self.epoch);
        let slots = self.slots_vec();
        for slot in &slots {
            // A failed WAL takes nothing more: reopening from disk (as a restart
            // would) replays what it acknowledged and starts a fresh segment.
            let mut why = None;
            if self.close_unused(slot, false, |s| {
                why = s.wal_failure();
                why.is_some()
            }) {
                // Reported by /health until the shard opens again.
                *slot.open_error.lock() = why.map(|w| {
                    format!("WAL failed ({w}); the shard reopens from disk at its next use")
                });
                tracing::warn!(
                    shard_id = slot.id,
                    "shard closed after its WAL failed; it reopens from disk at its next use"
                );
                self.metrics.add(&self.metrics.shards_reopened, 1);
            }
        }
        let idle = self.opts.shard_idle_timeout.as_millis() as u64;
        if idle > 0 {
            for slot in &slots {
                let last = slot.last_used.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= idle && self.close_unused(slot, true, |_| true) {
                    tracing::debug!(shard_id = slot.id, "idle shard closed");
                    self.metrics.add(&self.metrics.shards_closed_idle, 1);
                }
            }
        }
        self.compact_cold(now, &slots);
        self.fit_file_summaries();
        self.relieve_pressure(None);
    }

    /// Over half the index memory limit, data files' series summaries leave memory
    /// (files with the most series first) before any shard has to close; summaries
    /// loaded back for lookups go again once unused for a while.
    fn fit_file_summaries(&self) {
        let shards = self.open_shards();
        for s in &shards {
            s.release_idle_summaries(SUMMARIES_IDLE);
        }
        let over = || self.index_mem.above(DEGRADE_SUMMARIES_PERCENT);
        for s in &shards {
            if !over() {
                break;
            }
            s.degrade_summaries(&over);
        }
    }

    /// Shards that went write-cold are compacted into one file once (InfluxDB's
    /// `compact-full-write-cold-duration`): fewer, larger blocks on disk, one file
    /// per series for queries. A closed shard is opened for it when it was left
    /// with more than one file; the compaction threads do the work and the shard
    /// stays open while they do.
    fn compact_cold(&self, now: u64, slots: &[Arc<Slot>]) {
        let cold = self.opts.compact_full_write_cold.as_millis() as u64;
        if cold == 0 || !self.opts.auto_compaction {
            return;
        }
        for slot in slots {
            let last = slot.last_write.load(Ordering::Relaxed);
            if now.saturating_sub(last) < cold || slot.cold_compacted.load(Ordering::Relaxed) {
                continue;
            }
            let shard = match slot.open_shard() {
                Some(s) => s,
                None if slot.files_by_level.lock().iter().sum::<u64>() > 1 => {
                    match self.shard_of(slot) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(shard_id = slot.id, error = %e, "cold shard did not open for its full compaction");
                            slot.cold_compacted.store(true, Ordering::Relaxed);
                            continue;
                        }
                    }
                }
                None => continue,
            };
            slot.cold_compacted.store(true, Ordering::Relaxed);
            if shard.file_count() > 1 || shard.tombstone_count() > 0 {
                tracing::info!(shard_id = slot.id, "shard is write-cold: full compaction");
                self.bg.compact_full(shard);
            }
        }
    }

    /// Descriptors held by open shards and loaded catalogs, and by shards being
    /// opened or closed.
    pub(super) fn descriptors_in_use(&self) -> usize {
        let shards: usize = self.open_shards().iter().map(|s| s.open_files()).sum();
        let catalogs = self
            .catalogs
            .lock()
            .values()
            .filter(|c| c.loaded.lock().strong_count() > 0)
            .count();
        shards + catalogs + self.fds_in_flight.load(Ordering::Acquire)
    }

    fn under_pressure(&self, extra_fds: usize) -> bool {
        let budget = self.opts.max_open_files;
        (budget > 0 && self.descriptors_in_use() + extra_fds > budget) || self.index_mem.above(90)
    }

    /// Closes least recently used shards (never `keep`, never one in use) while the
    /// descriptors (plus `extra_fds` about to be opened) pass the budget or the
    /// per-series structures pass 90% of their limit. False when pressure remains.
    fn relieve(&self, keep: Option<u64>, extra_fds: usize) -> bool {
        if !self.under_pressure(extra_fds) {
            return true;
        }
        let mut open: Vec<Arc<Slot>> = self
            .slots_vec()
            .into_iter()
            .filter(|s| Some(s.id) != keep && matches!(&*s.state.lock(), SlotState::Open(_)))
            .collect();
        open.sort_by_key(|s| s.last_used.load(Ordering::Relaxed));
        for slot in open {
            if self.close_unused(&slot, true, |_| true) {
                self.metrics.add(&self.metrics.shards_closed_idle, 1);
                if !self.under_pressure(extra_fds) {
                    return true;
                }
            }
        }
        !self.under_pressure(extra_fds)
    }

    pub(super) fn relieve_pressure(&self, keep: Option<u64>) {
        self.relieve(keep, 0);
    }

    /// Before opening shard `id`: room in the descriptor budget, closing idle shards
    /// if needed. The room is held (counted as in use) until the returned guard
    /// drops, when the open shard's own descriptors count instead. Shards in use
    /// finish soon, so an opener waits a little for one before giving up.
    pub(super) fn make_descriptor_room(&self, id: u64) -> Result<FdsInFlight<'_>> {
        let budget = self.opts.max_open_files;
        if budget == 0 {
            return Ok(FdsInFlight::new(self, 0));
        }
        // A shard opens its WAL segment, its data files, and briefly a directory.
        let need = 4;
        let deadline = Instant::now() + self.opts.write_stall_timeout.min(Duration::from_secs(2));
        loop {
            {
                let _one_at_a_time = self.fd_room.lock();
                if self.relieve(Some(id), need) {
                    return Ok(FdsInFlight::new(self, need));
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::TooManyOpenFiles { budget });
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes every open shard (store shutdown); with `flush` their memtables go
    /// to files first, so that the next open replays no WAL. Returns the errors.
    pub(super) fn close_all(&self, flush: bool) -> Vec<Error> {
        let mut errs = Vec::new();
        for slot in self.slots_vec() {
            let shard = {
                let mut st = slot.state.lock();
                while let SlotState::Busy = &*st {
                    slot.changed.wait(&mut st);
                }
                match std::mem::replace(&mut *st, SlotState::Closed) {
                    SlotState::Open(s) => Some(s),
                    other => {
                        *st = other;
                        None
                    }
                }
            };
            slot.changed.notify_all();
            if let Some(s) = shard {
                let closed = if flush {
                    s.flush_and_close()
                } else {
                    s.close()
                };
                if let Err(e) = closed {
                    errs.push(Error::Internal(format!(
                        "error closing shard {}: {e}",
                        s.id
                    )));
                }
            }
        }
        errs
    }

    pub(super) fn stop_threads(&self) {
        self.bg.shutdown();
        self.budget.wake_all();
        let threads: Vec<_> = self.threads.lock().drain(..).collect();
        for h in threads {
            let _ = h.join();
        }
    }
}
