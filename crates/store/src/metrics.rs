//! Engine statistics in Prometheus text format: appended to the all-in-one's
//! `/metrics`, and served by `sundial-store`'s metrics listener.

use std::fmt::Write as _;
use sundial_engine::EngineStats;

pub fn render_engine(s: &EngineStats, out: &mut String) {
    let mut put = |name: &str, help: &str, v: String| {
        let kind = if name.ends_with("_total") {
            "counter"
        } else {
            "gauge"
        };
        let _ = writeln!(out, "# HELP sundial_engine_{name} {help}");
        let _ = writeln!(out, "# TYPE sundial_engine_{name} {kind}");
        let _ = writeln!(out, "sundial_engine_{name} {v}");
    };
    put(
        "points_written_total",
        "Points written to shards.",
        s.points_written.to_string(),
    );
    put(
        "values_written_total",
        "Field values written to shards.",
        s.values_written.to_string(),
    );
    put(
        "points_dropped_total",
        "Points dropped by shards (type conflicts, reserved names).",
        s.points_dropped.to_string(),
    );
    put(
        "wal_fsyncs_total",
        "WAL fsync calls (group commit shares one among writers).",
        s.wal_fsyncs.to_string(),
    );
    put(
        "wal_bytes_total",
        "Bytes appended to the WAL.",
        s.wal_bytes.to_string(),
    );
    put(
        "wal_torn_tails_truncated_total",
        "Torn WAL tails truncated at recovery.",
        s.wal_torn_tails_truncated.to_string(),
    );
    put(
        "wal_corrupt_segments_total",
        "Corrupt WAL segments found at recovery.",
        s.wal_corrupt_segments.to_string(),
    );
    put("flushes_total", "Memtable flushes.", s.flushes.to_string());
    put(
        "flush_duration_seconds_total",
        "Time spent flushing memtables.",
        format!("{:.6}", s.flush_duration.as_secs_f64()),
    );
    put(
        "compactions_total",
        "Compactions.",
        s.compactions.to_string(),
    );
    put(
        "compaction_duration_seconds_total",
        "Time spent compacting.",
        format!("{:.6}", s.compaction_duration.as_secs_f64()),
    );
    put(
        "write_stalls_total",
        "Writes that waited for a flush (backpressure).",
        s.write_stalls.to_string(),
    );
    put(
        "writes_overloaded_total",
        "Writes refused as overloaded.",
        s.writes_overloaded.to_string(),
    );
    put(
        "files_quarantined_total",
        "Corrupt files moved aside.",
        s.files_quarantined.to_string(),
    );
    put(
        "budget_freezes_total",
        "Memtables flushed early because all memtables together passed the budget.",
        s.budget_freezes.to_string(),
    );
    put(
        "memtable_bytes",
        "Bytes held by every shard's memtables.",
        s.memtable_bytes.to_string(),
    );
    put(
        "memtable_budget_bytes",
        "The budget for all memtables together.",
        s.memtable_budget.to_string(),
    );
    put(
        "series_refused_total",
        "New series refused by max-series-per-database or max-values-per-tag.",
        s.series_refused.to_string(),
    );
    put(
        "shards_opened_total",
        "Shards opened (on demand).",
        s.shards_opened.to_string(),
    );
    put(
        "shards_closed_idle_total",
        "Shards flushed and closed because they went idle or their descriptors or memory were needed.",
        s.shards_closed_idle.to_string(),
    );
    put(
        "shards_reopened_total",
        "Shards closed after their WAL failed, to reopen from disk.",
        s.shards_reopened.to_string(),
    );
    put(
        "writes_refused_disk_total",
        "Writes refused because free disk space fell below the reserve.",
        s.writes_refused_disk.to_string(),
    );
    put("shards", "Shards on this node.", s.shards.to_string());
    put("shards_open", "Shards open now.", s.shards_open.to_string());
    put(
        "open_files",
        "Files held open by shards and series catalogs.",
        s.open_files.to_string(),
    );
    put(
        "open_files_budget",
        "Files shards may hold open together (0: no budget).",
        s.open_files_budget.to_string(),
    );
    put(
        "index_memory_bytes",
        "Bytes of per-series structures (series catalogs, shards' series lists, file summaries).",
        s.index_memory_bytes.to_string(),
    );
    put(
        "index_memory_limit_bytes",
        "Limit of the per-series structures (0: none).",
        s.index_memory_limit.to_string(),
    );
    put(
        "disk_free_bytes",
        "Free bytes on the data directory's file system.",
        s.disk_free_bytes.to_string(),
    );
    put(
        "disk_free_reserve_bytes",
        "Writes are refused below this much free space.",
        s.disk_free_reserve.to_string(),
    );
    labelled(
        out,
        "series",
        "Series of a database on this node (max-series-per-database counts these).",
        s.databases.iter().map(|d| (d.database.as_str(), d.series)),
    );
    labelled(
        out,
        "max_tag_values",
        "The largest number of values of one tag key of a database (max-values-per-tag counts these).",
        s.databases.iter().map(|d| (d.database.as_str(), d.max_tag_values)),
    );
}

/// A gauge per database (Prometheus label values escape `\`, `"` and newlines).
fn labelled<'a>(
    out: &mut String,
    name: &str,
    help: &str,
    rows: impl Iterator<Item = (&'a str, u64)>,
) {
    let _ = writeln!(out, "# HELP sundial_engine_{name} {help}");
    let _ = writeln!(out, "# TYPE sundial_engine_{name} gauge");
    for (db, v) in rows {
        let db = db
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(out, "sundial_engine_{name}{{database=\"{db}\"}} {v}");
    }
}

/// A storage node's `/metrics` page: the engine's statistics.
pub fn render_store(store: &sundial_engine::Store) -> String {
    let mut out = String::new();
    render_engine(&store.stats(), &mut out);
    out
}
