//! The engine's metrics (`sundial_engine_…`): its counters and gauges read at
//! scrape time, and its latency histograms. Registered by the all-in-one's and
//! `sundial-store`'s `/metrics`.

use std::sync::Arc;

use sundial_common::metrics::{Collect, Emit, Registry};
use sundial_engine::{EngineStats, Store};

/// Registers the engine of `store` under `sundial_engine_`. Nothing is registered
/// when the engine does not count (`[data] metrics-enabled = false`).
pub fn register_engine(registry: &mut Registry, store: Arc<Store>, enabled: bool) {
    if !enabled {
        return;
    }
    let reg = registry.sub_registry_with_prefix("engine");
    let lat = store.latencies();
    reg.register(
        "wal_fsync_duration_seconds",
        "Time of one WAL fsync (group commit shares one among writers)",
        lat.wal_fsync.0,
    );
    reg.register(
        "flush_duration_seconds",
        "Time of one memtable flush into a level-0 file (count: flushes)",
        lat.flush.0,
    );
    reg.register(
        "compaction_duration_seconds",
        "Time of one compaction (count: compactions)",
        lat.compaction.0,
    );
    reg.register_collector(Box::new(Collect(move |e: &mut Emit<'_>| {
        emit_stats(&store.stats(), e)
    })));
}

fn emit_stats(s: &EngineStats, e: &mut Emit<'_>) -> std::fmt::Result {
    e.counter(
        "points_written",
        "Points written to shards.",
        s.points_written,
    )?;
    e.counter(
        "values_written",
        "Field values written to shards.",
        s.values_written,
    )?;
    e.counter(
        "points_dropped",
        "Points dropped by shards (type conflicts, reserved names).",
        s.points_dropped,
    )?;
    e.counter(
        "wal_fsyncs",
        "WAL fsync calls (group commit shares one among writers).",
        s.wal_fsyncs,
    )?;
    e.counter("wal_bytes", "Bytes appended to the WAL.", s.wal_bytes)?;
    e.counter(
        "wal_torn_tails_truncated",
        "Torn WAL tails truncated at recovery.",
        s.wal_torn_tails_truncated,
    )?;
    e.counter(
        "wal_corrupt_segments",
        "Corrupt WAL segments found at recovery.",
        s.wal_corrupt_segments,
    )?;
    e.counter("flushes", "Memtable flushes.", s.flushes)?;
    e.counter("compactions", "Compactions.", s.compactions)?;
    e.counter(
        "write_stalls",
        "Writes that waited for a flush (backpressure).",
        s.write_stalls,
    )?;
    e.counter(
        "writes_overloaded",
        "Writes refused as overloaded.",
        s.writes_overloaded,
    )?;
    e.counter(
        "corrupt_reads",
        "Reads and compactions that failed on a damaged data file (the data stays in place).",
        s.corrupt_reads,
    )?;
    e.counter(
        "query_blocks_decoded",
        "Data file blocks queries decoded.",
        s.blocks_decoded,
    )?;
    e.counter(
        "query_series_read",
        "Series queries read, once per shard holding them.",
        s.series_read,
    )?;
    e.counter(
        "query_blocks_from_stats",
        "Data file blocks aggregates answered from their statistics, without decoding them.",
        s.blocks_from_stats,
    )?;
    e.counter(
        "budget_freezes",
        "Memtables flushed early because all memtables together passed the budget.",
        s.budget_freezes,
    )?;
    e.counter(
        "series_refused",
        "New series refused by max-series-per-database or max-values-per-tag.",
        s.series_refused,
    )?;
    e.counter(
        "shards_opened",
        "Shards opened (on demand).",
        s.shards_opened,
    )?;
    e.counter(
        "shards_closed_idle",
        "Shards flushed and closed because they went idle or their descriptors or memory were needed.",
        s.shards_closed_idle,
    )?;
    e.counter(
        "shards_reopened",
        "Shards closed after their WAL failed, to reopen from disk.",
        s.shards_reopened,
    )?;
    e.counter(
        "writes_refused_disk",
        "Writes refused because free disk space fell below the reserve.",
        s.writes_refused_disk,
    )?;
    let g = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    for (name, help, v) in [
        (
            "memtable_bytes",
            "Bytes held by every shard's memtables.",
            s.memtable_bytes,
        ),
        (
            "memtable_budget_bytes",
            "The budget for all memtables together.",
            s.memtable_budget,
        ),
        ("shards", "Shards on this node.", s.shards),
        ("shards_open", "Shards open now.", s.shards_open),
        (
            "open_files",
            "Files held open by shards and series catalogs.",
            s.open_files,
        ),
        (
            "open_files_budget",
            "Files shards may hold open together (0: no budget).",
            s.open_files_budget,
        ),
        (
            "index_memory_bytes",
            "Bytes of per-series structures (series catalogs, shards' series lists, file summaries).",
            s.index_memory_bytes,
        ),
        (
            "index_memory_limit_bytes",
            "Limit of the per-series structures (0: none).",
            s.index_memory_limit,
        ),
        (
            "files_degraded",
            "Data files whose per-series summaries left memory (index memory past half its limit).",
            s.files_degraded,
        ),
        (
            "disk_free_bytes",
            "Free bytes on the data directory's file system.",
            s.disk_free_bytes,
        ),
        (
            "disk_free_reserve_bytes",
            "Writes are refused below this much free space.",
            s.disk_free_reserve,
        ),
    ] {
        e.gauge(name, help, g(v))?;
    }
    let levels: Vec<String> = (0..s.files_per_level.len())
        .map(|l| l.to_string())
        .collect();
    e.gauges(
        "files",
        "Data files per level (open shards, and closed ones as they were when last open).",
        "level",
        levels
            .iter()
            .zip(&s.files_per_level)
            .map(|(l, n)| (l.as_str(), *n as f64)),
    )?;
    e.gauges(
        "series",
        "Series of a database on this node (max-series-per-database counts these).",
        "database",
        s.databases
            .iter()
            .map(|d| (d.database.as_str(), d.series as f64)),
    )?;
    e.gauges(
        "max_tag_values",
        "The largest number of values of one tag key of a database (max-values-per-tag counts these).",
        "database",
        s.databases
            .iter()
            .map(|d| (d.database.as_str(), d.max_tag_values as f64)),
    )
}
