//! Index entries and resource records: decoding both file versions into one view.

use super::stats::BlockStats;
use crate::codec::{corrupt, get_uvarint, take, unzigzag, MAX_BLOCK_VALUES};
use crate::error::Result;
use crate::types::FieldType;

/// A checksummed byte range of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockRef {
    pub offset: u64,
    pub size: u32,
    pub crc: u32,
}

/// One block of one field.
#[derive(Debug, Clone, PartialEq)]
pub struct BlockMeta {
    /// v2: the time column of the block's rows, shared by the fields of its group;
    /// v1: `None` (the times lead the value block).
    pub times: Option<BlockRef>,
    pub values: BlockRef,
    /// Rows of the time column; the field has a value in `count` of them (a
    /// presence bitmap leads the values when fewer).
    pub rows: u32,
    pub count: u32,
    /// Times of the field's first and last value in the block.
    pub min_time: i64,
    pub max_time: i64,
    /// Times of the block's first and last row (v1: of its values), and the unit
    /// (common divisor of the row times' offsets) its statistics are stored in.
    pub chunk_min: i64,
    pub chunk_max: i64,
    pub unit: u64,
    /// v2 only.
    pub stats: Option<BlockStats>,
}

#[derive(Debug, Clone)]
pub struct FieldIndex {
    pub name: String,
    pub ty: FieldType,
    pub blocks: Vec<BlockMeta>,
}

#[derive(Debug, Clone)]
pub struct SeriesIndex {
    pub key: String,
    pub fields: Vec<FieldIndex>,
}

/// In-memory per-series summary (IoTDB's TsFileResource): enough to prune files.
/// It keeps a hash of the series key, not the key: 40 bytes a series in memory,
/// however long the key. The index entry a lookup reads names the key, so a hash
/// collision costs one more small read, never a wrong answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct ResourceEntry {
    pub hash: u64,
    pub min_time: i64,
    pub max_time: i64,
    pub entry_off: u64,
    pub entry_len: u32,
    pub entry_crc: u32,
}

pub(super) fn u32_at(b: &[u8], i: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[i..i + 4]);
    u32::from_le_bytes(a)
}

fn get_str<'a>(b: &'a [u8], pos: &mut usize) -> Result<&'a str> {
    let len = get_uvarint(b, pos)?;
    let len = usize::try_from(len).map_err(|_| corrupt("string length"))?;
    std::str::from_utf8(take(b, pos, len)?).map_err(|_| corrupt("key is not UTF-8"))
}

/// A field as every section spells it: `uvarint len | name | u8 type`.
fn get_field<'a>(b: &'a [u8], pos: &mut usize) -> Result<(&'a str, FieldType)> {
    let name = get_str(b, pos)?;
    let ty =
        FieldType::from_u8(take(b, pos, 1)?[0]).ok_or_else(|| corrupt("unknown field type"))?;
    Ok((name, ty))
}

fn get_u32(b: &[u8], pos: &mut usize) -> Result<u32> {
    Ok(u32_at(take(b, pos, 4)?, 0))
}

/// Decodes the resource record at `pos`: where its key starts in `b`, the key, and
/// its entry (the hash left 0).
pub(super) fn resource_record<'a>(
    b: &'a [u8],
    pos: &mut usize,
    index_len: u64,
) -> Result<(usize, &'a str, ResourceEntry)> {
    let len = usize::try_from(get_uvarint(b, pos)?).map_err(|_| corrupt("key length"))?;
    let start = *pos;
    let key = std::str::from_utf8(take(b, pos, len)?).map_err(|_| corrupt("key is not UTF-8"))?;
    let min_time = unzigzag(get_uvarint(b, pos)?);
    let max_time = unzigzag(get_uvarint(b, pos)?);
    let entry_off = get_uvarint(b, pos)?;
    let entry_len = get_uvarint(b, pos)?;
    let entry_crc = get_u32(b, pos)?;
    if entry_off
        .checked_add(entry_len)
        .is_none_or(|e| e > index_len)
        || entry_len > u64::from(u32::MAX)
        || min_time > max_time
    {
        return Err(corrupt("resource entry out of range"));
    }
    let entry = ResourceEntry {
        hash: 0,
        min_time,
        max_time,
        entry_off,
        entry_len: entry_len as u32,
        entry_crc,
    };
    Ok((start, key, entry))
}

/// A file's field dictionary (v2): names and types its entries refer to by number.
pub(super) type FieldDict = std::sync::Arc<[(Box<str>, FieldType)]>;

/// The dictionary that follows the series records of a v2 resource section.
pub(super) fn parse_dict(b: &[u8], mut pos: usize) -> Result<FieldDict> {
    let n = get_uvarint(b, &mut pos)?;
    let mut out = Vec::with_capacity((n as usize).min(b.len()));
    for _ in 0..n {
        let (name, ty) = get_field(b, &mut pos)?;
        out.push((name.into(), ty));
    }
    if pos != b.len() {
        return Err(corrupt("trailing bytes in the resource section"));
    }
    Ok(out.into())
}

/// Walks the resource section: `f(key, entry)` per series in key order (the entry's
/// hash is left 0). Returns where the records end.
pub(super) fn parse_resource(
    b: &[u8],
    index_len: u64,
    f: &mut dyn FnMut(&str, ResourceEntry),
) -> Result<usize> {
    let mut pos = 0;
    let n = get_uvarint(b, &mut pos)?;
    let mut prev: Option<&str> = None;
    for _ in 0..n {
        let (_, key, entry) = resource_record(b, &mut pos, index_len)?;
        if prev.is_some_and(|p| p >= key) {
            return Err(corrupt("resource keys not sorted"));
        }
        prev = Some(key);
        f(key, entry);
    }
    Ok(pos)
}

/// A block's byte range, checked to lie before the index.
fn block_ref(offset: u64, size: u64, crc: u32, blocks_end: u64) -> Result<BlockRef> {
    if offset.checked_add(size).is_none_or(|e| e > blocks_end) || size > u64::from(u32::MAX) {
        return Err(corrupt("block entry out of range"));
    }
    Ok(BlockRef {
        offset,
        size: size as u32,
        crc,
    })
}

fn count_in_range(n: u64) -> Result<u32> {
    if n == 0 || n > MAX_BLOCK_VALUES as u64 {
        return Err(corrupt("block entry out of range"));
    }
    Ok(n as u32)
}

/// Format v1: per field, blocks holding their own times.
pub(super) fn parse_entry_v1(b: &[u8], blocks_end: u64) -> Result<SeriesIndex> {
    let mut pos = 0;
    let key = get_str(b, &mut pos)?.to_owned();
    let nf = get_uvarint(b, &mut pos)?;
    let mut fields = Vec::with_capacity((nf as usize).min(b.len()));
    for _ in 0..nf {
        let (name, ty) = get_field(b, &mut pos)?;
        let name = name.to_owned();
        let nb = get_uvarint(b, &mut pos)?;
        let mut blocks = Vec::with_capacity((nb as usize).min(b.len()));
        for _ in 0..nb {
            let offset = get_uvarint(b, &mut pos)?;
            let size = get_uvarint(b, &mut pos)?;
            let count = count_in_range(get_uvarint(b, &mut pos)?)?;
            let min_time = unzigzag(get_uvarint(b, &mut pos)?);
            let span = get_uvarint(b, &mut pos)?;
            let crc = get_u32(b, &mut pos)?;
            blocks.push(BlockMeta {
                times: None,
                values: block_ref(offset, size, crc, blocks_end)?,
                rows: count,
                count,
                min_time,
                max_time: min_time.wrapping_add(span as i64),
                chunk_min: min_time,
                chunk_max: min_time.wrapping_add(span as i64),
                unit: 1,
                stats: None,
            });
        }
        fields.push(FieldIndex { name, ty, blocks });
    }
    Ok(SeriesIndex { key, fields })
}

/// Format v2: field names and types, then groups of fields sharing time blocks
/// (see the module documentation of `tsfile`).
/// `None` when the entry's key check says it is not `key`'s.
pub(super) fn parse_entry_v2(
    b: &[u8],
    blocks_end: u64,
    key: &str,
    seed: u32,
    dict: &[(Box<str>, FieldType)],
) -> Result<Option<SeriesIndex>> {
    let mut pos = 0;
    if get_u32(b, &mut pos)? != super::key_check(seed, key) {
        return Ok(None);
    }
    let key = key.to_owned();
    let nf = get_uvarint(b, &mut pos)?;
    let mut fields = Vec::with_capacity((nf as usize).min(b.len()));
    for _ in 0..nf {
        let (name, ty) = match get_uvarint(b, &mut pos)? {
            0 => {
                let (name, ty) = get_field(b, &mut pos)?;
                (name.to_owned(), ty)
            }
            id => {
                let (name, ty) = usize::try_from(id - 1)
                    .ok()
                    .and_then(|i| dict.get(i))
                    .ok_or_else(|| corrupt("field number not in the file's dictionary"))?;
                (name.to_string(), *ty)
            }
        };
        fields.push(FieldIndex {
            name,
            ty,
            blocks: Vec::new(),
        });
    }
    let ngroups = get_uvarint(b, &mut pos)?;
    for _ in 0..ngroups {
        let nm = get_uvarint(b, &mut pos)?;
        let mut members = Vec::with_capacity((nm as usize).min(fields.len()));
        for _ in 0..nm {
            let m = get_uvarint(b, &mut pos)?;
            let m = usize::try_from(m)
                .ok()
                .filter(|&m| m < fields.len() && !members.contains(&m))
                .ok_or_else(|| corrupt("bad field in a group"))?;
            members.push(m);
        }
        let nchunks = get_uvarint(b, &mut pos)?;
        for _ in 0..nchunks {
            let offset = get_uvarint(b, &mut pos)?;
            let size = get_uvarint(b, &mut pos)?;
            let rows = count_in_range(get_uvarint(b, &mut pos)?)?;
            let t0 = unzigzag(get_uvarint(b, &mut pos)?);
            let unit = get_uvarint(b, &mut pos)?;
            // Wrapping: a block may span the whole i64 range.
            let t1 = get_uvarint(b, &mut pos)?
                .checked_mul(unit)
                .map(|span| t0.wrapping_add(span as i64))
                .filter(|&t1| t1 >= t0)
                .ok_or_else(|| corrupt("block time range out of bounds"))?;
            let crc = get_u32(b, &mut pos)?;
            let times = block_ref(offset, size, crc, blocks_end)?;
            let mut next = offset + size;
            for &m in &members {
                let count = get_uvarint(b, &mut pos)?;
                if count == 0 {
                    continue;
                }
                if count > u64::from(rows) {
                    return Err(corrupt("more values than rows in a block"));
                }
                let size = get_uvarint(b, &mut pos)?;
                let crc = get_u32(b, &mut pos)?;
                let values = block_ref(next, size, crc, blocks_end)?;
                next += size;
                let stats = BlockStats::decode(fields[m].ty, count as u32, t0, unit, b, &mut pos)?;
                if stats.last_time > t1 {
                    return Err(corrupt("block statistics outside the block's times"));
                }
                fields[m].blocks.push(BlockMeta {
                    times: Some(times),
                    values,
                    rows,
                    count: count as u32,
                    min_time: stats.first_time,
                    max_time: stats.last_time,
                    chunk_min: t0,
                    chunk_max: t1,
                    unit,
                    stats: Some(stats),
                });
            }
        }
    }
    if pos != b.len() {
        return Err(corrupt("trailing bytes in an index entry"));
    }
    // A field may sit in several groups (a compaction copies chunks as they are
    // next to ones it wrote); its blocks must still not overlap in time.
    for f in &mut fields {
        f.blocks.sort_by_key(|b| b.min_time);
        if f.blocks.windows(2).any(|w| w[0].max_time >= w[1].min_time) {
            return Err(corrupt("blocks of a field overlap in time"));
        }
    }
    fields.retain(|f| !f.blocks.is_empty());
    Ok(Some(SeriesIndex { key, fields }))
}
