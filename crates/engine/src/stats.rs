//! Engine counters. Atomic, shared by every shard of a store; `Store::stats` snapshots them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub enabled: bool,
    pub points_written: AtomicU64,
    pub values_written: AtomicU64,
    pub points_dropped: AtomicU64,
    pub wal_fsyncs: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_torn_tails_truncated: AtomicU64,
    pub wal_corrupt_segments: AtomicU64,
    pub flushes: AtomicU64,
    pub flush_nanos: AtomicU64,
    pub compactions: AtomicU64,
    pub compaction_nanos: AtomicU64,
    pub write_stalls: AtomicU64,
    pub writes_overloaded: AtomicU64,
    pub files_quarantined: AtomicU64,
    pub budget_freezes: AtomicU64,
}

impl Metrics {
    pub fn new(enabled: bool) -> Self {
        Metrics {
            enabled,
            ..Default::default()
        }
    }

    #[inline]
    pub fn add(&self, c: &AtomicU64, n: u64) {
        if self.enabled {
            c.fetch_add(n, Relaxed);
        }
    }

    #[inline]
    pub fn add_duration(&self, c: &AtomicU64, d: Duration) {
        self.add(c, d.as_nanos().min(u128::from(u64::MAX)) as u64)
    }

    pub fn snapshot(&self) -> EngineStats {
        let g = |c: &AtomicU64| c.load(Relaxed);
        EngineStats {
            points_written: g(&self.points_written),
            values_written: g(&self.values_written),
            points_dropped: g(&self.points_dropped),
            wal_fsyncs: g(&self.wal_fsyncs),
            wal_bytes: g(&self.wal_bytes),
            wal_torn_tails_truncated: g(&self.wal_torn_tails_truncated),
            wal_corrupt_segments: g(&self.wal_corrupt_segments),
            flushes: g(&self.flushes),
            flush_duration: Duration::from_nanos(g(&self.flush_nanos)),
            compactions: g(&self.compactions),
            compaction_duration: Duration::from_nanos(g(&self.compaction_nanos)),
            write_stalls: g(&self.write_stalls),
            writes_overloaded: g(&self.writes_overloaded),
            files_quarantined: g(&self.files_quarantined),
            budget_freezes: g(&self.budget_freezes),
            memtable_bytes: 0,
            memtable_budget: 0,
        }
    }
}

/// A point-in-time copy of the engine's counters (monotonic since the store opened).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub points_written: u64,
    pub values_written: u64,
    pub points_dropped: u64,
    pub wal_fsyncs: u64,
    pub wal_bytes: u64,
    pub wal_torn_tails_truncated: u64,
    pub wal_corrupt_segments: u64,
    pub flushes: u64,
    /// Total time spent flushing.
    pub flush_duration: Duration,
    pub compactions: u64,
    pub compaction_duration: Duration,
    /// Writes that had to wait for a flush.
    pub write_stalls: u64,
    /// Writes rejected with `Overloaded`.
    pub writes_overloaded: u64,
    pub files_quarantined: u64,
    /// Memtables frozen early because the store's memory budget was exceeded.
    pub budget_freezes: u64,
    /// Bytes in every shard's memtables now (a gauge), and the budget for them.
    pub memtable_bytes: u64,
    pub memtable_budget: u64,
}
