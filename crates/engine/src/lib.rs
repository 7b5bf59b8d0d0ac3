//! # sundial-engine
//!
//! The per-shard LSM time-series engine and the [`Store`] that owns a node's shards.
//! No networking lives here: the gateway and the gRPC store service call [`Store`].
//!
//! ## Data flow
//!
//! ```text
//! write_to_shard(points)
//!   │ validate (InfluxDB 1.x rules: `time` tag → drop, `time` field → removed,
//!   │           field type fixed per measurement at first write → conflicts dropped)
//!   │ encode once into a compact binary WAL body                       (batch.rs)
//!   ▼
//! WAL append (shard write lock) ──► wake a sync-pool thread (fsync starts)
//!   │ ──► decode body ──► apply to active memtables
//!   │                                               seq table: t > series watermark
//!   │                                               unseq table: t <= watermark
//!   ▼ (lock released)
//! wait for the fsync covering this entry; group commit: one fsync serves every
//! writer that appended before it                                   (wal.rs)
//!   ▼
//! ack ──► WriteOutcome { points_written, values_written, points_dropped, reasons }
//!
//! active memtable full ─► frozen (WAL segment rolled) ─► flush thread writes one
//! sequence and one unsequence file ─► index snapshot ─► manifest (atomic) ─► old WAL
//! segments deleted. Too many frozen memtables ⇒ writers wait, then `Overloaded`.
//!
//! compaction threads (store-wide limit): unsequence files merged into the sequence
//! files they overlap; leveled merges; duplicates resolved last-write-wins; tombstones
//! applied and then discarded once nothing older can hold hidden data.
//!
//! scan(measurement, tag predicate, fields, [min,max])
//!   series index → series ids (roaring bitmaps) → per series, lazily:
//!   files (oldest first; pruned by the in-memory resource and block time ranges)
//!   → frozen memtables → active memtable; newer wins; tombstones hide older data.
//! ```
//!
//! ## Modules
//!
//! * [`codec`] — hand-written block codecs: integer/timestamp (RLE, delta, raw and
//!   delta-of-delta frame-of-reference bit-packing, zigzag), float (Gorilla XOR or an
//!   ALP-style decimal codec chosen per block), boolean bit-packing, zstd strings.
//! * `wal` — segments, checksummed entries, group commit, recovery.
//! * `memtable` — column buffers per series and field; sequence/unsequence split. A
//!   series whose points always carry the same fields keeps one shared time column
//!   ("dense"); the first differing point switches it to per-field time columns.
//! * [`tsfile`] — immutable columnar data files and their in-memory resource.
//! * `compaction` — picking inputs (closed over overlapping, same-age files so that
//!   last-write-wins by file age stays correct) and merging.
//! * [`index`] — series key ↔ id, measurement → tag → value → ids, field types,
//!   [`TagPredicate`] (=, !=, =~, !~, and, or).
//! * [`manifest`] — live files, WAL progress and tombstones, replaced atomically.
//! * `shard` — ties the above together; `store` — shards, background threads, stats.
//!
//! ## Shard directory
//!
//! ```text
//! <store>/_series/d<escaped db>/series.log   the database's series catalog
//! <store>/<shard id>/
//!   DATABASE          the database the shard belongs to
//!   MANIFEST          JSON + u32 crc32c; written to MANIFEST.tmp, fsync, rename, fsync dir
//!   TOMBSTONES        append-only tombstone log (`tombstones.rs`)
//!   index.snap        series index snapshot (below), same atomic protocol
//!   index.log         changes to the series index since the snapshot (below)
//!   wal/NNNNNNNNNN.wal WAL segments;  wal/corrupt/ copies of damaged segments
//!   data/NNNNNNNNNN.tsf data files
//! ```
//!
//! ## WAL
//!
//! ```text
//! segment  "SDWAL\0\0\x01" entry*
//! entry    u32 len | u32 crc32c(payload) | payload               (little-endian)
//! payload  u8 kind (1 write, 2 delete) | u64 seq | body
//! write    u64 keys_off | u64 names_off | u64 npoints | point* | keys | names
//!          point = uvarint key_idx, i64 time, uvarint nfields, u32 fields_len,
//!                  field* = uvarint name_idx, u8 type, value
//!          keys, names = uvarint n, (uvarint len, bytes)*   (series keys, field names)
//!          value: f64 8 bytes | i64 zigzag uvarint | u64 uvarint | bool 1 byte |
//!                 string uvarint len + bytes
//! delete   zigzag min | zigzag max | uvarint nkeys | (uvarint len, series key)*
//! ```
//!
//! Sequence numbers increase across segments. Recovery replays entries with
//! `seq > MANIFEST.flushed_seq`. A damaged tail of the last segment (torn write, bad
//! length, bad CRC) is truncated, logged and counted (`wal_torn_tails_truncated`).
//! Damage in an earlier segment is logged as an error, counted
//! (`wal_corrupt_segments`), the original copied to `wal/corrupt/`, the valid prefix
//! kept, later segments replayed, and the loss listed in
//! [`RecoveryReport`]; with `wal_strict_recovery` the open fails instead.
//! Segments are deleted once a flush has made their data part of the manifest.
//!
//! Type codes (WAL, file index, snapshot): 1 float, 2 integer, 3 unsigned, 4 boolean,
//! 5 string.
//!
//! ## Data file (`.tsf`)
//!
//! Format v2 (v1 still read): see [`tsfile`]. A series' fields written together share
//! time blocks; every value block carries statistics ([`tsfile::BlockStats`]); the
//! resource (per-series time ranges) is what stays in memory, until past half the
//! index memory limit a file keeps only its own time range. A damaged block fails
//! the reads and compactions that touch it with [`Error::Corrupt`] naming the file —
//! never a panic, never a quiet answer without the block's points.
//!
//! Codec streams start with a mode byte. Integers/timestamps: 0 RLE (first, delta),
//! 1 delta (first, min, width, packed zigzag deltas − min), 2 raw (min, width, packed
//! v − min), 3 delta-of-delta. Floats: 0 Gorilla, 1 decimal (u8 exponent e, then the
//! integer stream of `v·10^e`, used only when every value round-trips bit-exactly).
//! Booleans: packed bits. Strings: 0 plain / 1 zstd (uvarint raw size, frame) over
//! `(uvarint len, bytes)*`.
//!
//! ## Manifest
//!
//! `{"version":1,"next_file_id":N,"flushed_seq":S,"files":[{"id","level","kind":"Seq"|
//! "Unseq","min_seq","max_seq"}]}` + crc. Files are ordered by `max_seq` for
//! last-write-wins. Tombstones are in their own append-only log (`TOMBSTONES`): one
//! hides data of the listed series in `[min, max]` from every source (file or frozen
//! memtable) whose `max_seq < seq`; the active memtable is edited in place and the
//! delete is in the WAL.
//! Crash safety: new files are fsynced before the manifest naming them is renamed into
//! place; inputs of a compaction are unlinked only after that; unlisted files found at
//! open are deleted. So an interrupted flush or compaction loses and duplicates nothing.
//!
//! ## Index snapshot (`index.snap`, `index.log`)
//!
//! A whole snapshot of the catalog ids the shard holds and its field types, then a
//! log of the changes since (see `index::snapshot`); written before each flush's
//! manifest, after drops, and at close, whole again once the log outgrows the
//! snapshot. A snapshot of another catalog
//! generation, missing or corrupt, is rebuilt from the data files; series newer than
//! the snapshot come back with WAL replay. The series keys themselves live in the
//! database's catalog (`catalog`, `<store>/_series/d<db>/series.log`).
//!
//! ## Metrics
//!
//! [`Store::stats`] returns [`EngineStats`]: points/values written and dropped, WAL
//! fsyncs and bytes, torn tails truncated, corrupt segments, flush and compaction
//! counts, write stalls, overloaded writes, reads failed on damaged files, files per level.
//! [`Store::latencies`] shares the histograms of WAL fsyncs, flushes and
//! compactions. `EngineOptions::metrics_enabled(false)` stops counting.
//!
//! ## Tests and benchmarks
//!
//! `cargo nextest run -p sundial-engine` runs codec property tests (`codec_props`), the
//! model-based test (`model`, `MODEL_CASES=n` for more cases), WAL damage tests
//! (`wal_recovery`), data-file damage tests (`corrupt_files`), store behaviour
//! (`engine`), the SIGKILL crash test (`crash`, driving `src/bin/engine-crash-writer.rs`)
//! and the power-cut test (`crash_fs`: every file-system call recorded through
//! [`vfs`], every state a power cut could leave rebuilt and opened).
//! `cargo bench -p sundial-engine` runs `benches/engine.rs` (TSBS write throughput with
//! fsync `always`, codec speed and bytes/value, single-series scan);
//! `examples/write_profile.rs` is a standalone write loop for profiling.

mod applog;
mod batch;
mod budget;
mod catalog;
pub mod codec;
mod compaction;
pub mod error;
pub mod index;
pub mod manifest;
mod memtable;
pub mod options;
mod shard;
mod stats;
mod store;
mod tombstones;
pub mod tsfile;
pub mod types;
mod util;
pub mod vfs;
mod wal;

pub use catalog::SeriesLimits;
pub use error::{Error, Result};
pub use index::TagPredicate;
pub use options::{EngineOptions, EngineOptionsBuilder, FsyncPolicy};
pub use shard::{FieldData, RecoveryReport, SeriesData, Summarized};
pub use stats::{DatabaseStats, EngineLatencies, EngineStats};
pub use store::{SeriesIter, Store, StoreHealth};
pub use sundial_common::{ErrorClass, WriteOutcome};
pub use types::{Column, FieldType, Value, Values};
pub use wal::WalRecovery;
