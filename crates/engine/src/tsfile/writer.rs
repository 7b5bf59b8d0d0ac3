//! Writes one data file; series must be added in ascending key order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{END_MAGIC, MAGIC};
use crate::codec::{encode_timestamps, encode_values, put_uvarint, zigzag};
use crate::error::{Error, Result};
use crate::types::{Column, Values};

/// Raw string bytes per block. Strings may be 1 MiB each, so a count-only cut
/// could make blocks the reader refuses (codec::string's inflate cap) or whose
/// size does not fit the index's u32.
pub(crate) const MAX_BLOCK_STRING_BYTES: usize = 8 << 20;
// A block never exceeds the budget by more than one value, and values come from the
// line-protocol parser, which caps strings at 1 MiB.
const _: () = assert!(
    ((MAX_BLOCK_STRING_BYTES + 2 * sundial_lineproto::MAX_STRING_FIELD_LENGTH) as u64)
        < crate::codec::string::MAX_RAW
);

/// Where each block of `col` ends: at most `max_points` values, and for strings at
/// most `MAX_BLOCK_STRING_BYTES` (but never fewer than one value).
fn block_ends(col: &Column, max_points: usize) -> Vec<usize> {
    let n = col.len();
    let Values::String(v) = &col.values else {
        return (1..=n.div_ceil(max_points))
            .map(|b| (b * max_points).min(n))
            .collect();
    };
    let mut ends = Vec::new();
    let (mut count, mut bytes) = (0, 0);
    for (i, s) in v.iter().enumerate() {
        if count > 0 && (count == max_points || bytes + s.len() > MAX_BLOCK_STRING_BYTES) {
            ends.push(i);
            (count, bytes) = (0, 0);
        }
        count += 1;
        bytes += s.len();
    }
    if count > 0 {
        ends.push(n);
    }
    ends
}

#[derive(Debug)]
pub struct TsFileWriter {
    path: PathBuf,
    out: BufWriter<File>,
    offset: u64,
    index: Vec<u8>,
    resource: Vec<u8>,
    last_key: Option<String>,
    max_per_block: usize,
    scratch: Vec<u8>,
    series: usize,
}

impl TsFileWriter {
    pub fn create(path: &Path, max_per_block: usize) -> Result<Self> {
        let f = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut w = TsFileWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, f),
            offset: 0,
            index: Vec::new(),
            resource: Vec::new(),
            last_key: None,
            max_per_block: max_per_block.max(1),
            scratch: Vec::new(),
            series: 0,
        };
        w.write(MAGIC)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += b.len() as u64;
        Ok(())
    }

    pub fn series_count(&self) -> usize {
        self.series
    }

    /// Write every field of one series. Columns must be sorted with unique times;
    /// empty columns are skipped, and a series with no points is not recorded.
    pub fn add_series(&mut self, key: &str, fields: &[(&str, &Column)]) -> Result<()> {
        if let Some(last) = &self.last_key {
            if last.as_str() >= key {
                return Err(Error::Internal(format!(
                    "series {key:?} added out of order after {last:?}"
                )));
            }
        }
        let mut entry = Vec::new();
        put_uvarint(&mut entry, key.len() as u64);
        entry.extend_from_slice(key.as_bytes());
        let nonempty: Vec<&(&str, &Column)> =
            fields.iter().filter(|(_, c)| !c.is_empty()).collect();
        if nonempty.is_empty() {
            return Ok(());
        }
        put_uvarint(&mut entry, nonempty.len() as u64);
        let (mut smin, mut smax) = (i64::MAX, i64::MIN);
        for (name, col) in nonempty {
            put_uvarint(&mut entry, name.len() as u64);
            entry.extend_from_slice(name.as_bytes());
            entry.push(col.field_type() as u8);
            let n = col.len();
            let ends = block_ends(col, self.max_per_block);
            put_uvarint(&mut entry, ends.len() as u64);
            let mut start = 0;
            for end in ends {
                let owned;
                let part: &Column = if start == 0 && end == n {
                    col
                } else {
                    owned = col.slice_index(start, end);
                    &owned
                };
                self.scratch.clear();
                let mut ts = Vec::new();
                encode_timestamps(&part.times, &mut ts);
                put_uvarint(&mut self.scratch, ts.len() as u64);
                self.scratch.extend_from_slice(&ts);
                encode_values(&part.values, &mut self.scratch);
                let crc = crc32c::crc32c(&self.scratch);
                let off = self.offset;
                let size = self.scratch.len();
                let block = std::mem::take(&mut self.scratch);
                self.write(&block)?;
                self.scratch = block;
                let (bmin, bmax) = (part.times[0], part.times[part.times.len() - 1]);
                smin = smin.min(bmin);
                smax = smax.max(bmax);
                put_uvarint(&mut entry, off);
                put_uvarint(&mut entry, size as u64);
                put_uvarint(&mut entry, (end - start) as u64);
                put_uvarint(&mut entry, zigzag(bmin));
                put_uvarint(&mut entry, bmax.wrapping_sub(bmin) as u64);
                entry.extend_from_slice(&crc.to_le_bytes());
                start = end;
            }
        }
        let entry_off = self.index.len() as u64;
        self.index.extend_from_slice(&entry);
        put_uvarint(&mut self.resource, key.len() as u64);
        self.resource.extend_from_slice(key.as_bytes());
        put_uvarint(&mut self.resource, zigzag(smin));
        put_uvarint(&mut self.resource, zigzag(smax));
        put_uvarint(&mut self.resource, entry_off);
        put_uvarint(&mut self.resource, entry.len() as u64);
        self.resource
            .extend_from_slice(&crc32c::crc32c(&entry).to_le_bytes());
        self.last_key = Some(key.to_owned());
        self.series += 1;
        Ok(())
    }

    /// Write index, resource and footer, then fsync the file and its directory (the
    /// manifest names it next: its entry must survive a power cut too). Returns
    /// the file size.
    pub fn finish(mut self) -> Result<u64> {
        let index = std::mem::take(&mut self.index);
        let mut resource = Vec::new();
        put_uvarint(&mut resource, self.series as u64);
        resource.extend_from_slice(&self.resource);
        let index_off = self.offset;
        self.write(&index)?;
        let res_off = self.offset;
        self.write(&resource)?;
        let mut footer = Vec::with_capacity(super::FOOTER_LEN);
        footer.extend_from_slice(&index_off.to_le_bytes());
        footer.extend_from_slice(&(index.len() as u64).to_le_bytes());
        footer.extend_from_slice(&res_off.to_le_bytes());
        footer.extend_from_slice(&(resource.len() as u64).to_le_bytes());
        footer.extend_from_slice(&crc32c::crc32c(&resource).to_le_bytes());
        footer.extend_from_slice(&0u32.to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.write(&footer)?;
        let f = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            crate::util::sync_dir(dir)?;
        }
        Ok(self.offset)
    }
}
