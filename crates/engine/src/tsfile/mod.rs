//! Immutable columnar data files (`*.tsf`).
//!
//! ```text
//! header   "SDTSF\0\0\x01"                                   8 bytes
//! blocks   per (series, field), up to max_points_per_block points (and 8 MiB of string
//!          bytes) each:
//!          uvarint ts_len | timestamps (integer codec) | values (typed codec)
//! index    per series, sorted by series key:
//!          uvarint key_len | key | uvarint nfields |
//!          per field: uvarint name_len | name | u8 type | uvarint nblocks |
//!            per block: uvarint offset | uvarint size | uvarint count |
//!                       zigzag min_time | uvarint (max_time-min_time) | u32 crc32c(block)
//! resource per series, same order (the TsFileResource; in memory as key hashes):
//!          uvarint key_len | key | zigzag min_time | zigzag max_time |
//!          uvarint index_entry_offset | uvarint index_entry_len | u32 crc32c(index entry)
//! footer   u64 index_off | u64 index_len | u64 res_off | u64 res_len |
//!          u32 crc32c(resource) | u32 reserved | "SDTSFEND"       48 bytes, little-endian
//! ```
//!
//! Opening a file reads only the footer and the resource section. A query reads the
//! index entry of each series it needs (one small read) and then only the blocks whose
//! time range intersects the query.

mod reader;
mod writer;

pub use reader::{BlockMeta, FieldIndex, ResourceReader, SeriesIndex, SeriesRef, TsFile};
pub use writer::TsFileWriter;

pub(crate) const MAGIC: &[u8; 8] = b"SDTSF\0\0\x01";
pub(crate) const END_MAGIC: &[u8; 8] = b"SDTSFEND";
pub(crate) const FOOTER_LEN: usize = 48;
