//! Writes one data file (format v2); series must be added in ascending key order.

use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::entry::BlockMeta;
use super::stats::BlockStats;
use super::TsFile;
use super::{END_MAGIC, MAGIC_V2};
use crate::codec::integer::gcd;
use crate::codec::{encode_timestamps, encode_values_range, put_uvarint, zigzag};
use crate::error::{Error, Result};
use crate::types::{Column, FieldType, Values};
use crate::util::FastMap;
use crate::vfs::VFile;

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

/// Fields of a series that share one time column on disk: the first member's
/// times, which every other member's times are a subset of.
struct Group<'a> {
    times: &'a [i64],
    members: Vec<usize>,
}

/// Is sorted, unique `a` a subset of sorted, unique `b`?
fn is_subset(a: &[i64], b: &[i64]) -> bool {
    if a.len() >= b.len() {
        return a == b;
    }
    let (Some(&a0), Some(&a1), Some(&b0), Some(&b1)) = (a.first(), a.last(), b.first(), b.last())
    else {
        return a.is_empty();
    };
    if a0 < b0 || a1 > b1 {
        return false;
    }
    let mut j = 0;
    for &x in a {
        j += b[j..].partition_point(|&y| y < x);
        if b.get(j) != Some(&x) {
            return false;
        }
        j += 1;
    }
    true
}

/// Groups fields by time column (IoTDB's aligned series): fields written together
/// share their times; a field present in at least half of a group's rows joins it
/// with a presence bitmap (at most two bits a value); sparser ones get their own
/// time column, which costs less than a mostly empty bitmap.
fn group_fields<'a>(cols: &[&'a Column]) -> Vec<Group<'a>> {
    let mut order: Vec<usize> = (0..cols.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cols[i].len()));
    let mut groups: Vec<Group<'a>> = Vec::new();
    for i in order {
        let t = &cols[i].times[..];
        match groups
            .iter_mut()
            .find(|g| t.len() * 2 >= g.times.len() && is_subset(t, g.times))
        {
            Some(g) => g.members.push(i),
            None => groups.push(Group {
                times: t,
                members: vec![i],
            }),
        }
    }
    groups
}

/// Where each chunk of a group ends: at most `max_rows` rows, and at most
/// `MAX_BLOCK_STRING_BYTES` of any string member's values (never fewer than one row).
fn chunk_ends(g: &Group<'_>, cols: &[&Column], max_rows: usize) -> Vec<usize> {
    let n = g.times.len();
    let mut row_bytes: Vec<usize> = Vec::new();
    for &m in &g.members {
        let Values::String(v) = &cols[m].values else {
            continue;
        };
        if row_bytes.is_empty() {
            row_bytes = vec![0; n];
        }
        let mut r = 0;
        for (t, s) in cols[m].times.iter().zip(v) {
            r += g.times[r..].partition_point(|x| x < t);
            row_bytes[r] = row_bytes[r].max(s.len());
        }
    }
    if row_bytes.is_empty() {
        let mut ends: Vec<usize> = (1..=n.div_ceil(max_rows))
            .map(|b| (b * max_rows).min(n))
            .collect();
        // A short tail joins the chunk before it (up to 1.25 × max_rows): a chunk
        // of a few rows would cost its index entry and statistics for little.
        if ends.len() >= 2
            && !n.is_multiple_of(max_rows)
            && n % max_rows <= max_rows / 4
            && max_rows + n % max_rows <= crate::codec::MAX_BLOCK_VALUES
        {
            let last = ends.len() - 2;
            ends.remove(last);
        }
        return ends;
    }
    let mut ends = Vec::new();
    let (mut rows, mut bytes) = (0, 0);
    for (i, &b) in row_bytes.iter().enumerate() {
        if rows > 0 && (rows == max_rows || bytes + b > MAX_BLOCK_STRING_BYTES) {
            ends.push(i);
            (rows, bytes) = (0, 0);
        }
        rows += 1;
        bytes += b;
    }
    if rows > 0 {
        ends.push(n);
    }
    ends
}

/// The series being written: its entry's head (key check, fields) and groups.
#[derive(Debug)]
struct SeriesState {
    key: String,
    head: Vec<u8>,
    groups: Vec<u8>,
    ngroups: u64,
    /// Chunks copied as they are, not yet closed into a group.
    copied: Option<CopiedGroup>,
    min: i64,
    max: i64,
}

#[derive(Debug)]
struct CopiedGroup {
    members: Vec<usize>,
    chunks: Vec<u8>,
    nchunks: u64,
}

impl SeriesState {
    fn close_copied(&mut self) {
        let Some(c) = self.copied.take() else { return };
        self.ngroups += 1;
        put_uvarint(&mut self.groups, c.members.len() as u64);
        for m in &c.members {
            put_uvarint(&mut self.groups, *m as u64);
        }
        put_uvarint(&mut self.groups, c.nchunks);
        self.groups.extend_from_slice(&c.chunks);
    }
}

#[derive(Debug)]
pub struct TsFileWriter {
    path: PathBuf,
    out: BufWriter<VFile>,
    offset: u64,
    index: Vec<u8>,
    resource: Vec<u8>,
    last_key: Option<String>,
    max_per_block: usize,
    scratch: Vec<u8>,
    series: usize,
    /// Seeds each index entry's key check (stored in the footer).
    seed: u32,
    cur: Option<SeriesState>,
    /// Field names and types the file's entries refer to by number (kept in the
    /// resource section); past `MAX_DICT` fields, entries spell them out.
    dict: FastMap<(Box<str>, FieldType), u32>,
    dict_order: Vec<(Box<str>, FieldType)>,
}

/// Fields a file's dictionary holds at most (bounds what an open file keeps).
const MAX_DICT: usize = 4096;

impl TsFileWriter {
    pub fn create(path: &Path, max_per_block: usize) -> Result<Self> {
        let f = VFile::create(path).map_err(|e| Error::io(path, e))?;
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
            seed: rand::random(),
            cur: None,
            dict: FastMap::default(),
            dict_order: Vec::new(),
        };
        w.write(MAGIC_V2)?;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.out
            .write_all(b)
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += b.len() as u64;
        Ok(())
    }

    /// Write `scratch` as a block; returns its size and checksum.
    fn write_scratch(&mut self) -> Result<(u64, u32)> {
        let block = std::mem::take(&mut self.scratch);
        let crc = crc32c::crc32c(&block);
        let r = self.write(&block);
        self.scratch = block;
        r.map(|()| (self.scratch.len() as u64, crc))
    }

    pub fn series_count(&self) -> usize {
        self.series
    }

    /// Write every field of one series. Columns must be sorted with unique times;
    /// empty columns are skipped, and a series with no points is not recorded.
    pub fn add_series(&mut self, key: &str, fields: &[(&str, &Column)]) -> Result<()> {
        let nonempty: Vec<&(&str, &Column)> =
            fields.iter().filter(|(_, c)| !c.is_empty()).collect();
        if nonempty.is_empty() {
            return Ok(());
        }
        let decl: Vec<(&str, FieldType)> =
            nonempty.iter().map(|(n, c)| (*n, c.field_type())).collect();
        self.begin_series(key, &decl)?;
        let cols: Vec<(usize, &Column)> = nonempty
            .iter()
            .enumerate()
            .map(|(i, (_, c))| (i, *c))
            .collect();
        self.add_columns(&cols)?;
        self.end_series()
    }

    /// Start a series with these fields (their positions are the field indices of
    /// [`TsFileWriter::add_columns`] and [`TsFileWriter::copy_chunk`]). Its data then
    /// comes in time order: each call covers times after the previous one's.
    pub fn begin_series(&mut self, key: &str, fields: &[(&str, FieldType)]) -> Result<()> {
        if let Some(last) = &self.last_key {
            if last.as_str() >= key {
                return Err(Error::Internal(format!(
                    "series {key:?} added out of order after {last:?}"
                )));
            }
        }
        if self.cur.is_some() {
            return Err(Error::Internal(format!(
                "series {key:?} begun inside another"
            )));
        }
        let mut head = Vec::new();
        // The key itself is in the resource section; the entry only confirms it.
        head.extend_from_slice(&super::key_check(self.seed, key).to_le_bytes());
        put_uvarint(&mut head, fields.len() as u64);
        for (name, ty) in fields {
            let known = (Box::<str>::from(*name), *ty);
            let id = match self.dict.get(&known) {
                Some(&id) => Some(id),
                None if self.dict_order.len() < MAX_DICT => {
                    let id = self.dict_order.len() as u32;
                    self.dict.insert(known.clone(), id);
                    self.dict_order.push(known);
                    Some(id)
                }
                None => None,
            };
            match id {
                Some(id) => put_uvarint(&mut head, u64::from(id) + 1),
                None => {
                    put_uvarint(&mut head, 0);
                    put_uvarint(&mut head, name.len() as u64);
                    head.extend_from_slice(name.as_bytes());
                    head.push(*ty as u8);
                }
            }
        }
        self.cur = Some(SeriesState {
            key: key.to_owned(),
            head,
            groups: Vec::new(),
            ngroups: 0,
            copied: None,
            min: i64::MAX,
            max: i64::MIN,
        });
        Ok(())
    }

    /// Columns of the current series' fields (by index; sorted, unique times, each
    /// after all data added before), grouped and chunked as in `add_series`.
    pub fn add_columns(&mut self, cols: &[(usize, &Column)]) -> Result<()> {
        let cols: Vec<(usize, &Column)> = cols
            .iter()
            .filter(|(_, c)| !c.is_empty())
            .copied()
            .collect();
        if cols.is_empty() {
            return Ok(());
        }
        let plain: Vec<&Column> = cols.iter().map(|(_, c)| *c).collect();
        self.with_series(|w, st| {
            st.close_copied();
            for g in group_fields(&plain) {
                st.ngroups += 1;
                put_uvarint(&mut st.groups, g.members.len() as u64);
                for &m in &g.members {
                    put_uvarint(&mut st.groups, cols[m].0 as u64);
                }
                st.min = st.min.min(g.times[0]);
                st.max = st.max.max(g.times[g.times.len() - 1]);
                w.write_group(&g, &plain, &mut st.groups)?;
            }
            Ok(())
        })
    }

    /// Copy one chunk of `src` as it is (checksums verified on the way): its time
    /// block and value blocks, contiguous there and here. `members` are the
    /// chunk's blocks in their order on disk, each with the field index it takes in
    /// this series. Consecutive copies with the same members share one group.
    pub fn copy_chunk(&mut self, src: &TsFile, members: &[(usize, &BlockMeta)]) -> Result<()> {
        let Some(times) = members.first().and_then(|(_, b)| b.times) else {
            return Err(Error::Internal("copy_chunk: not a v2 chunk".into()));
        };
        let first = members[0].1;
        let end = members
            .iter()
            .map(|(_, b)| b.values.offset + u64::from(b.values.size))
            .max()
            .unwrap_or(times.offset);
        let bytes = src.read_range(times.offset, end - times.offset)?;
        let check = |r: &super::BlockRef| -> Result<()> {
            let at = (r.offset - times.offset) as usize;
            let part = bytes.get(at..at + r.size as usize);
            if part.map(crc32c::crc32c) != Some(r.crc) {
                return Err(Error::corrupt(
                    src.path(),
                    format!("block at offset {} checksum mismatch", r.offset),
                ));
            }
            Ok(())
        };
        check(&times)?;
        let mut stats = Vec::with_capacity(members.len());
        for (_, b) in members {
            check(&b.values)?;
            stats.push(
                b.stats.as_ref().ok_or_else(|| {
                    Error::Internal("copy_chunk: block without statistics".into())
                })?,
            );
        }
        self.with_series(|w, st| {
            let base = w.offset;
            w.write(&bytes)?;
            let ids: Vec<usize> = members.iter().map(|(i, _)| *i).collect();
            if st.copied.as_ref().is_some_and(|c| c.members != ids) {
                st.close_copied();
            }
            let c = st.copied.get_or_insert_with(|| CopiedGroup {
                members: ids,
                chunks: Vec::new(),
                nchunks: 0,
            });
            let (t0, t1, unit) = (first.chunk_min, first.chunk_max, first.unit.max(1));
            let out = &mut c.chunks;
            put_uvarint(out, base);
            put_uvarint(out, u64::from(times.size));
            put_uvarint(out, u64::from(first.rows));
            put_uvarint(out, zigzag(t0));
            put_uvarint(out, unit);
            put_uvarint(out, t1.wrapping_sub(t0) as u64 / unit);
            out.extend_from_slice(&times.crc.to_le_bytes());
            for ((_, b), stats) in members.iter().zip(stats) {
                put_uvarint(out, u64::from(b.count));
                put_uvarint(out, u64::from(b.values.size));
                out.extend_from_slice(&b.values.crc.to_le_bytes());
                stats.encode(t0, unit, out);
            }
            c.nchunks += 1;
            st.min = st.min.min(t0);
            st.max = st.max.max(t1);
            Ok(())
        })
    }

    /// Finish the current series (a series that got no data is left out).
    pub fn end_series(&mut self) -> Result<()> {
        let mut st = self.take_series()?;
        st.close_copied();
        if st.ngroups == 0 {
            return Ok(());
        }
        let mut entry = st.head;
        put_uvarint(&mut entry, st.ngroups);
        entry.extend_from_slice(&st.groups);
        let entry_off = self.index.len() as u64;
        self.index.extend_from_slice(&entry);
        let key = st.key;
        put_uvarint(&mut self.resource, key.len() as u64);
        self.resource.extend_from_slice(key.as_bytes());
        put_uvarint(&mut self.resource, zigzag(st.min));
        put_uvarint(&mut self.resource, zigzag(st.max));
        put_uvarint(&mut self.resource, entry_off);
        put_uvarint(&mut self.resource, entry.len() as u64);
        self.resource
            .extend_from_slice(&crc32c::crc32c(&entry).to_le_bytes());
        self.last_key = Some(key);
        self.series += 1;
        Ok(())
    }

    /// Runs `f` on the current series, which stays current whatever `f` returns.
    fn with_series<R>(
        &mut self,
        f: impl FnOnce(&mut Self, &mut SeriesState) -> Result<R>,
    ) -> Result<R> {
        let mut st = self.take_series()?;
        let r = f(self, &mut st);
        self.cur = Some(st);
        r
    }

    fn take_series(&mut self) -> Result<SeriesState> {
        self.cur
            .take()
            .ok_or_else(|| Error::Internal("no series begun".into()))
    }

    /// A group's chunks: per chunk its time block, then each member's value block
    /// (presence bitmap first when the member lacks some rows), contiguous on disk.
    fn write_group(&mut self, g: &Group<'_>, cols: &[&Column], entry: &mut Vec<u8>) -> Result<()> {
        let ends = chunk_ends(g, cols, self.max_per_block);
        put_uvarint(entry, ends.len() as u64);
        // Each member's position in its own column.
        let mut at = vec![0usize; g.members.len()];
        let mut start = 0;
        for end in ends {
            let times = &g.times[start..end];
            let (t0, t1) = (times[0], times[times.len() - 1]);
            let unit = time_unit(times);
            self.scratch.clear();
            encode_timestamps(times, &mut self.scratch);
            let off = self.offset;
            let (size, crc) = self.write_scratch()?;
            put_uvarint(entry, off);
            put_uvarint(entry, size);
            put_uvarint(entry, times.len() as u64);
            put_uvarint(entry, zigzag(t0));
            put_uvarint(entry, unit);
            put_uvarint(entry, t1.wrapping_sub(t0) as u64 / unit);
            entry.extend_from_slice(&crc.to_le_bytes());
            for (k, &m) in g.members.iter().enumerate() {
                let col = cols[m];
                let lo = at[k];
                let hi = lo + col.times[lo..].partition_point(|&t| t <= t1);
                at[k] = hi;
                put_uvarint(entry, (hi - lo) as u64);
                if hi == lo {
                    continue;
                }
                self.scratch.clear();
                if hi - lo < times.len() {
                    presence_bitmap(times, &col.times[lo..hi], &mut self.scratch);
                }
                let range: Range<usize> = lo..hi;
                encode_values_range(&col.values, range.clone(), &mut self.scratch);
                let (size, crc) = self.write_scratch()?;
                put_uvarint(entry, size);
                entry.extend_from_slice(&crc.to_le_bytes());
                let stats = BlockStats::of_range(&col.times, &col.values, range)
                    .ok_or_else(|| Error::Internal("statistics of an empty block".into()))?;
                stats.encode(t0, unit, entry);
            }
            start = end;
        }
        Ok(())
    }

    /// Write index, resource and footer, then fsync the file and its directory (the
    /// manifest names it next: its entry must survive a power cut too). Returns
    /// the file size.
    pub fn finish(mut self) -> Result<u64> {
        let index = std::mem::take(&mut self.index);
        let mut raw = Vec::with_capacity(self.resource.len() + 10);
        put_uvarint(&mut raw, self.series as u64);
        raw.extend_from_slice(&self.resource);
        put_uvarint(&mut raw, self.dict_order.len() as u64);
        for (name, ty) in &self.dict_order {
            put_uvarint(&mut raw, name.len() as u64);
            raw.extend_from_slice(name.as_bytes());
            raw.push(*ty as u8);
        }
        // Sorted series keys share long prefixes: compressed they take a fraction.
        let mut resource = Vec::new();
        put_uvarint(&mut resource, raw.len() as u64);
        let packed = zstd::bulk::compress(&raw, 3).map_err(|e| Error::io(&self.path, e))?;
        resource.extend_from_slice(&packed);
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
        footer.extend_from_slice(&self.seed.to_le_bytes());
        footer.extend_from_slice(END_MAGIC);
        self.write(&footer)?;
        let f = self
            .out
            .into_inner()
            .map_err(|e| Error::io(&self.path, e.into_error()))?;
        f.sync_all().map_err(|e| Error::io(&self.path, e))?;
        if let Some(dir) = self.path.parent() {
            crate::vfs::sync_dir(dir)?;
        }
        Ok(self.offset)
    }
}

/// The common divisor of a chunk's time offsets from its first row (1 when
/// there is none): statistics store their times in this unit.
fn time_unit(times: &[i64]) -> u64 {
    let t0 = times[0];
    times[1..]
        .iter()
        .fold(0u64, |g, &t| gcd(g, t.wrapping_sub(t0) as u64))
        .max(1)
}

/// One bit per row of `rows` (LSB first), set where `present` (a subset) has it.
fn presence_bitmap(rows: &[i64], present: &[i64], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + rows.len().div_ceil(8), 0);
    let mut j = 0;
    for (r, &t) in rows.iter().enumerate() {
        if present.get(j) == Some(&t) {
            out[start + r / 8] |= 1 << (r % 8);
            j += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::FieldType;

    fn col(times: &[i64]) -> Column {
        Column {
            times: times.to_vec(),
            values: Values::Float(times.iter().map(|&t| t as f64).collect()),
        }
    }

    #[test]
    fn fields_written_together_share_a_group() {
        let a = col(&[1, 2, 3, 4]);
        let b = col(&[1, 2, 3, 4]);
        let half = col(&[2, 4]);
        let sparse = col(&[3]);
        let other = col(&[5, 6]);
        let g = group_fields(&[&a, &sparse, &b, &half, &other]);
        let members: Vec<Vec<usize>> = g.iter().map(|g| g.members.clone()).collect();
        assert_eq!(members, vec![vec![0, 2, 3], vec![4], vec![1]]);
        assert!(is_subset(&[], &[1]));
        assert!(!is_subset(&[2, 5], &[1, 2, 3, 4, 6]));
        let _ = FieldType::Float;
    }

    #[test]
    fn fields_past_the_dictionary_are_spelled_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f.tsf");
        let mut w = TsFileWriter::create(&path, 100).expect("create");
        let n = MAX_DICT + 10;
        let c = col(&[1, 2]);
        let keys: Vec<String> = (0..n).map(|i| format!("m,k={i:06}")).collect();
        for (i, k) in keys.iter().enumerate() {
            let name = format!("f{i}");
            w.add_series(k, &[(name.as_str(), &c), ("shared", &c)])
                .expect("add");
        }
        w.finish().expect("finish");
        let f = TsFile::open(&path).expect("open");
        for i in [0, MAX_DICT - 1, MAX_DICT, n - 1] {
            let si = f.series_index(&keys[i]).expect("read").expect("present");
            let mut names: Vec<&str> = si.fields.iter().map(|f| f.name.as_str()).collect();
            names.sort_unstable();
            let own = format!("f{i}");
            let mut want = vec![own.as_str(), "shared"];
            want.sort_unstable();
            assert_eq!(names, want);
            assert_eq!(
                f.read_field(&si.fields[0], i64::MIN, i64::MAX)
                    .expect("col"),
                c
            );
        }
        f.verify().expect("verify");
    }

    #[test]
    fn string_chunks_respect_the_byte_cap() {
        let big = "x".repeat(MAX_BLOCK_STRING_BYTES / 2 + 1);
        let s = Column {
            times: vec![1, 2, 3],
            values: Values::String(vec![big.clone(), big.clone(), big]),
        };
        let t = col(&[1, 2, 3]);
        let cols = [&t, &s];
        let g = Group {
            times: &t.times,
            members: vec![0, 1],
        };
        assert_eq!(chunk_ends(&g, &cols, 1000), vec![1, 2, 3]);
        assert_eq!(chunk_ends(&g, &[&t, &t], 2), vec![2, 3]);
        let long: Vec<i64> = (0..1020).collect();
        let c = col(&long);
        let g = Group {
            times: &c.times,
            members: vec![0],
        };
        assert_eq!(
            chunk_ends(&g, &[&c], 1000),
            vec![1020],
            "a short tail joins"
        );
        assert_eq!(chunk_ends(&g, &[&c], 400), vec![400, 800, 1020]);
        assert_eq!(chunk_ends(&g, &[&c], 300), vec![300, 600, 900, 1020]);
    }
}
