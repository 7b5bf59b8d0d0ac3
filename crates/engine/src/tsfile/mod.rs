//! Immutable columnar data files (`*.tsf`).
//!
//! Format v2 (written since issue 14; v1 files stay readable and are rewritten as
//! v2 by compaction):
//!
//! ```text
//! header   "SDTSF\0\0\x02"                                   8 bytes
//! blocks   per series, per group of fields sharing a time column, per chunk of up to
//!          max_points_per_block rows (and 8 MiB of any string field's bytes):
//!            time block   timestamps (integer codec)
//!            value block  per member present in the chunk, contiguous after the time
//!                         block: [presence bitmap, 1 bit a row, LSB first, only when
//!                         the field lacks some rows] | values (typed codec)
//! index    per series, sorted by series key:
//!          u32 key_check = crc32c(seed, key) | uvarint nfields | per field:
//!            uvarint code (n ≥ 1: the dictionary's field n−1; 0: uvarint name_len |
//!            name | u8 type follow)
//!          uvarint ngroups | per group: uvarint nmembers | uvarint field_index* |
//!            uvarint nchunks | per chunk:
//!              uvarint offset | uvarint size | uvarint rows | zigzag min_time |
//!              uvarint unit | uvarint (max_time-min_time)/unit | u32 crc32c(time block)
//!              per member: uvarint count (0: no value in this chunk, nothing follows)
//!                | uvarint size | u32 crc32c(value block) | statistics
//! stats    (times in the chunk's unit: the common divisor of its rows' offsets)
//!          uvarint (first_time-min_time) | uvarint (last_time-first_time) | by type:
//!            float    uvarint (min_at-first_time) | uvarint (max_at-first_time) |
//!                     u8 e | min, max, first, last as zigzag uvarints of v·10^e
//!                     (e = 0xff: as f64) | f64 sum                  (little-endian)
//!            integer  the two times | zigzag min | max | sum | first | last
//!            unsigned the two times | uvarint min | max | sum | first | last
//!            boolean  uvarint trues | u8 (first | last << 1)
//!            string   nothing more
//! resource uvarint raw_len | zstd frame of: uvarint nseries | per series, same order
//!          (the TsFileResource; in memory as key hashes): uvarint key_len | key |
//!          zigzag min_time | zigzag max_time | uvarint index_entry_offset |
//!          uvarint index_entry_len | u32 crc32c(index entry)
//!          then the field dictionary: uvarint n | (uvarint len | name | u8 type)*
//!          (at most 4096; kept in memory while the file is open)
//! footer   u64 index_off | u64 index_len | u64 res_off | u64 res_len |
//!          u32 crc32c(resource) | u32 seed | "SDTSFEND"           48 bytes, little-endian
//! ```
//!
//! Fields a series receives together share one time column (IoTDB's aligned
//! series); a field present in at least half of a group's rows joins it with a
//! presence bitmap, sparser ones get a group of their own. Value blocks of a chunk
//! follow its time block, so their offsets are implied. A field may sit in several
//! groups of one entry (compaction copies whole chunks as they are next to chunks it
//! re-encoded) as long as its blocks do not overlap in time; a short tail (up to a
//! quarter chunk) joins the chunk before it.
//!
//! v1 differs in the blocks and the index: one block per field and chunk holding
//! `uvarint ts_len | timestamps | values`, and per field `uvarint nblocks` entries of
//! `uvarint offset | uvarint size | uvarint count | zigzag min_time | uvarint span |
//! u32 crc32c`, without statistics.
//!
//! Opening a file reads only the footer and the resource section. A query reads the
//! index entry of each series it needs (one small read) and then only the blocks whose
//! time range intersects the query; each time block is decoded once for all the
//! fields that share it.

mod entry;
mod reader;
mod stats;
mod writer;

pub use entry::{BlockMeta, BlockRef, FieldIndex, SeriesIndex};
pub use reader::{FileCheck, ResourceReader, SeriesRef, TimeCache, TsFile};
pub use stats::{BlockStats, NumStats, TypedStats};
pub use writer::TsFileWriter;

pub(crate) const MAGIC_V1: &[u8; 8] = b"SDTSF\0\0\x01";
pub(crate) const MAGIC_V2: &[u8; 8] = b"SDTSF\0\0\x02";
pub(crate) const END_MAGIC: &[u8; 8] = b"SDTSFEND";
pub(crate) const FOOTER_LEN: usize = 48;

/// What a v2 index entry stores in place of its key: a checksum of the key seeded
/// per file. Lookups find entries by a per-process hash of the key; this confirms
/// the entry is the key's (an unpredictable 32-bit check on top of a 64-bit hash
/// collision), and walks in key order take keys from the resource section.
pub(crate) fn key_check(seed: u32, key: &str) -> u32 {
    crc32c::crc32c_append(seed, key.as_bytes())
}
