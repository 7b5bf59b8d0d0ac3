//! Engine counters. Atomic, shared by every shard of a store; `Store::stats` snapshots them.
//! Latencies are histograms ([`EngineLatencies`]), observed where the work happens.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use sundial_common::metrics::Latency;

/// Latency histograms of the engine's slow operations (seconds; clones share them).
#[derive(Debug, Clone, Default)]
pub struct EngineLatencies {
    /// One WAL fsync (group commit shares one among writers).
    pub wal_fsync: Latency,
    /// One memtable flush into a level-0 file.
    pub flush: Latency,
    /// One compaction.
    pub compaction: Latency,
}

#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub enabled: bool,
    pub latencies: EngineLatencies,
    pub points_written: AtomicU64,
    pub values_written: AtomicU64,
    pub points_dropped: AtomicU64,
    pub wal_fsyncs: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_torn_tails_truncated: AtomicU64,
    pub wal_corrupt_segments: AtomicU64,
    pub flushes: AtomicU64,
    pub compactions: AtomicU64,
    pub write_stalls: AtomicU64,
    pub writes_overloaded: AtomicU64,
    pub corrupt_reads: AtomicU64,
    /// Query reads: blocks decoded, and blocks answered from their statistics.
    pub blocks_decoded: AtomicU64,
    pub blocks_from_stats: AtomicU64,
    pub series_read: AtomicU64,
    pub budget_freezes: AtomicU64,
    pub series_refused: AtomicU64,
    pub shards_opened: AtomicU64,
    pub shards_closed_idle: AtomicU64,
    pub shards_reopened: AtomicU64,
    pub writes_refused_disk: AtomicU64,
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
    pub fn observe(&self, h: &Latency, d: Duration) {
        if self.enabled {
            h.observe(d);
        }
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
            compactions: g(&self.compactions),
            write_stalls: g(&self.write_stalls),
            writes_overloaded: g(&self.writes_overloaded),
            corrupt_reads: g(&self.corrupt_reads),
            blocks_decoded: g(&self.blocks_decoded),
            blocks_from_stats: g(&self.blocks_from_stats),
            series_read: g(&self.series_read),
            budget_freezes: g(&self.budget_freezes),
            series_refused: g(&self.series_refused),
            shards_opened: g(&self.shards_opened),
            shards_closed_idle: g(&self.shards_closed_idle),
            shards_reopened: g(&self.shards_reopened),
            writes_refused_disk: g(&self.writes_refused_disk),
            ..Default::default()
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
    /// Memtable flushes and compactions done (their latencies:
    /// [`EngineLatencies`]).
    pub flushes: u64,
    pub compactions: u64,
    /// Writes that had to wait for a flush.
    pub write_stalls: u64,
    /// Writes rejected with `Overloaded`.
    pub writes_overloaded: u64,
    pub corrupt_reads: u64,
    /// Blocks reads decoded, and blocks an aggregate took from their statistics
    /// without decoding.
    pub blocks_decoded: u64,
    pub blocks_from_stats: u64,
    /// Series query reads looked into (one per series and shard).
    pub series_read: u64,
    /// Memtables frozen early because the store's memory budget was exceeded.
    pub budget_freezes: u64,
    /// Bytes in every shard's memtables now (a gauge), and the budget for them.
    pub memtable_bytes: u64,
    pub memtable_budget: u64,
    /// New series refused by a series limit.
    pub series_refused: u64,
    /// Shards opened (on demand), closed because they went idle or for room, and
    /// reopened after their WAL failed.
    pub shards_opened: u64,
    pub shards_closed_idle: u64,
    pub shards_reopened: u64,
    /// Writes refused because free disk space fell below the reserve.
    pub writes_refused_disk: u64,
    /// Gauges: shards known and open, descriptors they hold, and the budget.
    pub shards: u64,
    pub shards_open: u64,
    /// Data files per level (index: level), over open shards and the closed ones
    /// opened since start.
    pub files_per_level: Vec<u64>,
    pub open_files: u64,
    pub open_files_budget: u64,
    /// Bytes of per-series structures (catalogs, series lists, file summaries) and
    /// their limit (0: none).
    pub index_memory_bytes: u64,
    pub index_memory_limit: u64,
    /// Data files of open shards whose per-series summaries left memory (past half
    /// the index memory limit; read from disk while lookups use them).
    pub files_degraded: u64,
    /// Free bytes on the store's file system and the reserve below which writes stop.
    pub disk_free_bytes: u64,
    pub disk_free_reserve: u64,
    /// Per database whose series catalog is loaded: live series and the largest
    /// number of values of one tag key (what `max-series-per-database` and
    /// `max-values-per-tag` count).
    pub databases: Vec<DatabaseStats>,
}

/// Cardinality of one database on this store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DatabaseStats {
    pub database: String,
    pub series: u64,
    pub max_tag_values: u64,
}
