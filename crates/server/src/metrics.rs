//! Engine statistics in Prometheus text format, appended to `/metrics`.

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
}
