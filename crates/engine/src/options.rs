//! Engine options, set with a builder.

use std::time::Duration;

use crate::catalog::SeriesLimits;

/// When WAL writes reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every write is fsynced before it is acknowledged (concurrent writers share one
    /// fsync: group commit). The default.
    Always,
    /// A background thread fsyncs at this interval; a crash may lose that much.
    Every(Duration),
    /// Never fsync explicitly (the OS decides); for tests and bulk loads.
    Never,
}

impl FsyncPolicy {
    /// `always`, `never`, or an interval like `100ms` (the `wal-fsync` setting).
    pub fn parse(s: &str) -> Result<FsyncPolicy, String> {
        match s {
            "always" => Ok(FsyncPolicy::Always),
            "never" => Ok(FsyncPolicy::Never),
            every => sundial_common::duration::parse_duration(every)
                .map(FsyncPolicy::Every)
                .map_err(|e| format!("wal-fsync {every:?}: always, never or a duration ({e})")),
        }
    }
}

impl std::fmt::Display for FsyncPolicy {
    /// As [`FsyncPolicy::parse`] reads it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FsyncPolicy::Always => f.write_str("always"),
            FsyncPolicy::Never => f.write_str("never"),
            FsyncPolicy::Every(d) => f.write_str(&sundial_common::duration::format_duration(*d)),
        }
    }
}

/// Options for a [`crate::Store`] and its shards. Build with [`EngineOptions::builder`].
#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub fsync: FsyncPolicy,
    /// Approximate bytes of a shard's active memtables (sequence + unsequence) before
    /// they are frozen and flushed.
    pub memtable_size: usize,
    /// Bytes all memtables of the store may hold together (see `budget.rs`); 0: no
    /// limit.
    pub memtable_budget: usize,
    /// Frozen memtables allowed to wait for flushing before writers stall.
    pub max_frozen_memtables: usize,
    /// How long a stalled writer waits before failing with `Overloaded`.
    pub write_stall_timeout: Duration,
    /// WAL segment size before rolling to a new segment.
    pub wal_segment_size: u64,
    /// Fail open when a non-final WAL segment is corrupt, instead of keeping the valid
    /// prefix and reporting the loss.
    pub wal_strict_recovery: bool,
    /// Points per file block.
    pub max_points_per_block: usize,
    /// Files of one level that trigger a compaction into the next level.
    pub compaction_trigger: usize,
    /// The same for level 0, whose files are memtable-sized and cheap to merge:
    /// merging them early gives fuller blocks (smaller files) and fewer files per
    /// read, as IoTDB's inner-space and VictoriaMetrics' small-part merges do.
    pub l0_compaction_trigger: usize,
    /// Highest level; files there merge with each other while they are small.
    pub max_level: u8,
    /// Compactions running at once across the whole store.
    pub max_concurrent_compactions: usize,
    /// Run compactions automatically after flushes.
    pub auto_compaction: bool,
    /// Threads that flush memtables.
    pub flush_threads: usize,
    /// Keep the engine's counters (`Store::stats`).
    pub metrics_enabled: bool,
    /// InfluxDB's `max-series-per-database` and `max-values-per-tag`, per database on
    /// this store.
    pub series_limits: SeriesLimits,
    /// Bytes the per-series structures (series catalogs, shards' series lists, files'
    /// summaries) may take before new series are refused; 0: no limit.
    pub index_memory_limit: usize,
    /// Descriptors the store's shards may hold open together (idle shards are closed
    /// to stay under it); 0: no budget.
    pub max_open_files: usize,
    /// A shard without reads or writes for this long is flushed and closed (its
    /// memory and descriptors released); it reopens on use. Zero: never.
    pub shard_idle_timeout: Duration,
    /// Bytes of input one leveled compaction takes at most (it always takes two
    /// files); top-level files under half of it keep merging with each other.
    pub max_compaction_bytes: u64,
    /// A shard that received no write for this long is compacted into one file
    /// (InfluxDB's `compact-full-write-cold-duration`); zero: never.
    pub compact_full_write_cold: Duration,
    /// Writes are refused (503) while the store's file system has less free space.
    pub disk_free_reserve: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            fsync: FsyncPolicy::Always,
            memtable_size: 64 << 20,
            memtable_budget: 1 << 30,
            max_frozen_memtables: 2,
            write_stall_timeout: Duration::from_secs(10),
            wal_segment_size: 64 << 20,
            wal_strict_recovery: false,
            max_points_per_block: 1000,
            compaction_trigger: 4,
            l0_compaction_trigger: 2,
            max_level: 3,
            max_concurrent_compactions: 1,
            auto_compaction: true,
            flush_threads: 1,
            metrics_enabled: true,
            series_limits: SeriesLimits {
                max_series_per_database: 1_000_000,
                max_values_per_tag: 100_000,
            },
            index_memory_limit: 2 << 30,
            max_open_files: 0,
            shard_idle_timeout: Duration::from_secs(600),
            compact_full_write_cold: Duration::from_secs(4 * 3600),
            max_compaction_bytes: 2 << 30,
            disk_free_reserve: 64 << 20,
        }
    }
}

impl EngineOptions {
    pub fn builder() -> EngineOptionsBuilder {
        EngineOptionsBuilder {
            o: EngineOptions::default(),
        }
    }
}

/// Builder for [`EngineOptions`]; every setter is optional.
#[derive(Debug, Clone)]
pub struct EngineOptionsBuilder {
    o: EngineOptions,
}

impl EngineOptionsBuilder {
    pub fn fsync(mut self, p: FsyncPolicy) -> Self {
        self.o.fsync = p;
        self
    }
    /// 0: no store-wide budget.
    pub fn memtable_budget(mut self, bytes: usize) -> Self {
        self.o.memtable_budget = bytes;
        self
    }

    pub fn memtable_size(mut self, bytes: usize) -> Self {
        self.o.memtable_size = bytes.max(1);
        self
    }
    pub fn max_frozen_memtables(mut self, n: usize) -> Self {
        self.o.max_frozen_memtables = n.max(1);
        self
    }
    pub fn write_stall_timeout(mut self, d: Duration) -> Self {
        self.o.write_stall_timeout = d;
        self
    }
    pub fn wal_segment_size(mut self, bytes: u64) -> Self {
        self.o.wal_segment_size = bytes.max(1);
        self
    }
    pub fn wal_strict_recovery(mut self, strict: bool) -> Self {
        self.o.wal_strict_recovery = strict;
        self
    }
    pub fn max_points_per_block(mut self, n: usize) -> Self {
        self.o.max_points_per_block = n.clamp(1, crate::codec::MAX_BLOCK_VALUES);
        self
    }
    /// Files of a level that start a merge into the next, level 0 included.
    pub fn compaction_trigger(mut self, n: usize) -> Self {
        self.o.compaction_trigger = n.max(2);
        self.o.l0_compaction_trigger = n.max(2);
        self
    }
    pub fn l0_compaction_trigger(mut self, n: usize) -> Self {
        self.o.l0_compaction_trigger = n.max(2);
        self
    }
    pub fn max_level(mut self, l: u8) -> Self {
        self.o.max_level = l.max(1);
        self
    }
    pub fn max_concurrent_compactions(mut self, n: usize) -> Self {
        self.o.max_concurrent_compactions = n.max(1);
        self
    }
    pub fn auto_compaction(mut self, on: bool) -> Self {
        self.o.auto_compaction = on;
        self
    }
    pub fn flush_threads(mut self, n: usize) -> Self {
        self.o.flush_threads = n.max(1);
        self
    }
    pub fn metrics_enabled(mut self, on: bool) -> Self {
        self.o.metrics_enabled = on;
        self
    }
    /// 0 disables a limit.
    pub fn series_limits(
        mut self,
        max_series_per_database: usize,
        max_values_per_tag: usize,
    ) -> Self {
        self.o.series_limits = SeriesLimits {
            max_series_per_database,
            max_values_per_tag,
        };
        self
    }
    /// 0: no limit.
    pub fn index_memory_limit(mut self, bytes: usize) -> Self {
        self.o.index_memory_limit = bytes;
        self
    }
    /// 0: no budget.
    pub fn max_open_files(mut self, n: usize) -> Self {
        self.o.max_open_files = n;
        self
    }
    /// Zero: shards stay open until the store closes.
    pub fn max_compaction_bytes(mut self, n: u64) -> Self {
        self.o.max_compaction_bytes = n.max(1);
        self
    }
    pub fn compact_full_write_cold(mut self, d: Duration) -> Self {
        self.o.compact_full_write_cold = d;
        self
    }
    pub fn shard_idle_timeout(mut self, d: Duration) -> Self {
        self.o.shard_idle_timeout = d;
        self
    }
    pub fn disk_free_reserve(mut self, bytes: u64) -> Self {
        self.o.disk_free_reserve = bytes;
        self
    }
    pub fn build(self) -> EngineOptions {
        self.o
    }
}
