//! Writes one data file; series must be added in ascending key order.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::{END_MAGIC, MAGIC};
use crate::codec::{encode_timestamps, encode_values, put_uvarint, zigzag};
use crate::error::{Error, Result};
use crate::types::Column;

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
            let nblocks = n.div_ceil(self.max_per_block);
            put_uvarint(&mut entry, nblocks as u64);
            let mut start = 0;
            while start < n {
                let end = (start + self.max_per_block).min(n);
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

    /// Write index, resource and footer, then fsync. Returns the file size.
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
        Ok(self.offset)
    }
}
