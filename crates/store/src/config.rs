//! The `[data]` section, shared by `sundial-store` and the all-in-one `sundial`:
//! the engine's settings, with the engine's own defaults (written once, in
//! [`EngineOptions::default`]), and the open-file budget both binaries derive.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sundial_common::config::{duration, ConfigError};
use sundial_engine::{EngineOptions, FsyncPolicy};

/// The `[data]` settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct DataConfig {
    /// The node's data directory.
    pub dir: PathBuf,
    /// `always` (fsync before acknowledging; default), `never`, or an interval like
    /// `100ms`.
    #[serde(with = "fsync")]
    pub wal_fsync: FsyncPolicy,
    /// Bytes a memtable may hold before it is frozen and flushed.
    pub memtable_size: usize,
    /// Bytes all memtables of the node may hold together before the largest are
    /// flushed early.
    pub memtable_budget: usize,
    /// InfluxDB's limit on series per database (counted on this node); 0: none.
    pub max_series_per_database: usize,
    /// InfluxDB's limit on values of one tag key per measurement; 0: none.
    pub max_values_per_tag: usize,
    /// Bytes the per-series structures (series catalogs, shards' series lists, data
    /// files' summaries) may take before new series are refused with 503; 0: none.
    pub index_memory_limit: usize,
    /// Open files the shards may hold together; 0: derived from the process's
    /// open-file limit (what is left after connections and a reserve).
    pub max_open_files: usize,
    /// Shards without reads or writes for this long are flushed and closed (`0s`:
    /// never); they reopen on use.
    #[serde(with = "duration")]
    pub shard_idle_timeout: Duration,
    /// Shards without writes for this long are compacted into one file, ready for
    /// queries (InfluxDB's `compact-full-write-cold-duration`; `0s`: never).
    #[serde(with = "duration")]
    pub compact_full_write_cold_duration: Duration,
    /// Writes are refused with 503 while the data directory's file system has less
    /// free space than this (bytes; 0: no reserve).
    pub disk_free_reserve: u64,
    /// Keep the engine's statistics and latency histograms (`/metrics`); `false`
    /// spares the counting on the write path.
    pub metrics_enabled: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        let e = EngineOptions::default();
        DataConfig {
            dir: PathBuf::from("./data"),
            wal_fsync: e.fsync,
            memtable_size: e.memtable_size,
            memtable_budget: e.memtable_budget,
            max_series_per_database: e.series_limits.max_series_per_database,
            max_values_per_tag: e.series_limits.max_values_per_tag,
            index_memory_limit: e.index_memory_limit,
            max_open_files: 0,
            shard_idle_timeout: e.shard_idle_timeout,
            compact_full_write_cold_duration: e.compact_full_write_cold,
            disk_free_reserve: e.disk_free_reserve,
            metrics_enabled: e.metrics_enabled,
        }
    }
}

impl DataConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.dir.as_os_str().is_empty() {
            return Err(ConfigError("data.dir must not be empty".into()));
        }
        Ok(())
    }

    /// The engine's options; `connections` is what the HTTP or gRPC listener may
    /// hold open, for the open-file budget when `max-open-files` is 0.
    pub fn engine_options(&self, connections: usize) -> EngineOptions {
        let max_open_files = match self.max_open_files {
            0 => shard_file_budget(open_file_limit(), connections),
            n => n,
        };
        EngineOptions::builder()
            .fsync(self.wal_fsync)
            .memtable_size(self.memtable_size)
            .memtable_budget(self.memtable_budget)
            .series_limits(self.max_series_per_database, self.max_values_per_tag)
            .index_memory_limit(self.index_memory_limit)
            .max_open_files(max_open_files)
            .shard_idle_timeout(self.shard_idle_timeout)
            .compact_full_write_cold(self.compact_full_write_cold_duration)
            .disk_free_reserve(self.disk_free_reserve)
            .metrics_enabled(self.metrics_enabled)
            .build()
    }
}

/// The process's open-file (soft) limit.
pub fn open_file_limit() -> usize {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, Resource};
        getrlimit(Resource::Nofile)
            .current
            .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
    }
    #[cfg(not(unix))]
    {
        usize::MAX
    }
}

/// Descriptors the shards may use: what the limit leaves after the connections and
/// a reserve (meta, logs, sockets to peers, the WAL sync and compaction files).
pub fn shard_file_budget(limit: usize, connections: usize) -> usize {
    const RESERVE: usize = 128;
    limit
        .saturating_sub(connections)
        .saturating_sub(RESERVE)
        .max(64)
}

/// Every shard holds open files (WAL segment, data files). Like Go programs such as
/// InfluxDB, take the hard limit on open files rather than the often small soft one.
pub fn raise_fd_limit() {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
        let lim = getrlimit(Resource::Nofile);
        if lim.current < lim.maximum {
            let raised = Rlimit {
                current: lim.maximum,
                maximum: lim.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => tracing::debug!(limit = ?lim.maximum, "raised the open-file limit"),
                Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
            }
        }
    }
}

/// `wal-fsync` as the text [`FsyncPolicy::parse`] reads.
mod fsync {
    use serde::{Deserialize, Deserializer, Serializer};
    use sundial_engine::FsyncPolicy;

    pub fn serialize<S: Serializer>(p: &FsyncPolicy, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&p.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<FsyncPolicy, D::Error> {
        let s = String::deserialize(d)?;
        FsyncPolicy::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_leaves_room_for_connections_and_a_reserve() {
        assert_eq!(shard_file_budget(1024, 256), 640);
        assert_eq!(shard_file_budget(100, 256), 64);
    }

    #[test]
    fn wal_fsync_reads_back_what_it_prints() {
        for p in [
            FsyncPolicy::Always,
            FsyncPolicy::Never,
            FsyncPolicy::Every(Duration::from_millis(100)),
        ] {
            assert_eq!(FsyncPolicy::parse(&p.to_string()).unwrap(), p);
        }
    }
}
