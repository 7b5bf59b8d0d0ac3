//! A store's health (free disk space, degraded shards) and its engine statistics.

use std::sync::Arc;

use super::slots::{Slot, SlotState};
use super::Store;
use crate::catalog::Catalog;
use crate::stats::{DatabaseStats, EngineStats};

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

impl Store {
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
