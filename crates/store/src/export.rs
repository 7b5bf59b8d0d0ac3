//! Printing a store's points as line protocol, shard by shard, straight from its
//! data directory (WAL included, so it works right after a crash): the audit of
//! where points landed, and the body of `sundial export`.

use std::collections::BTreeMap;
use std::io::Write;

use crate::error::Result;
use sundial_engine::{Store, TagPredicate, Values};
use sundial_lineproto::{OwnedFieldValue, OwnedPoint};

/// Writes every shard of `store` (or only `only`) as `# SHARD <id> <database>`
/// followed by its points in canonical line protocol; returns the points written.
pub fn export_store(store: &Store, only: Option<u64>, out: &mut impl Write) -> Result<usize> {
    let mut ids = store.shard_ids();
    ids.sort_unstable();
    let mut n = 0;
    for id in ids.into_iter().filter(|id| only.is_none_or(|o| o == *id)) {
        let db = store.shard_database(id).unwrap_or_default();
        writeln!(out, "# SHARD {id} {db}")?;
        n += export_shard(store, id, i64::MIN, i64::MAX, out)?;
    }
    Ok(n)
}

/// Writes the points of `shard` within `[start, end]`; returns how many.
pub fn export_shard(
    store: &Store,
    shard: u64,
    start: i64,
    end: i64,
    out: &mut impl Write,
) -> Result<usize> {
    let mut res = Ok(());
    let n = for_each_point(store, shard, start, end, &mut |p| {
        if res.is_ok() {
            res = writeln!(out, "{}", p.to_line());
        }
        res.is_ok()
    })?;
    res?;
    Ok(n)
}

/// Calls `f` with every point of `shard` within `[start, end]`, series by series,
/// in time order; stops when `f` returns false. Returns the points visited.
pub fn for_each_point(
    store: &Store,
    shard: u64,
    start: i64,
    end: i64,
    f: &mut dyn FnMut(OwnedPoint) -> bool,
) -> Result<usize> {
    let mut n = 0;
    for m in store.measurements(shard)? {
        for series in store.scan(shard, &m, &TagPredicate::All, None, start, end)? {
            let series = series?;
            // Rows: timestamp -> fields present at that time.
            let mut rows: BTreeMap<i64, Vec<(String, OwnedFieldValue)>> = BTreeMap::new();
            for fd in &series.fields {
                let times = &fd.column.times;
                let mut put = |i: usize, v: OwnedFieldValue| {
                    rows.entry(times[i]).or_default().push((fd.name.clone(), v));
                };
                match &fd.column.values {
                    Values::Float(v) => v
                        .iter()
                        .enumerate()
                        .for_each(|(i, x)| put(i, OwnedFieldValue::Float(*x))),
                    Values::Integer(v) => v
                        .iter()
                        .enumerate()
                        .for_each(|(i, x)| put(i, OwnedFieldValue::Integer(*x))),
                    Values::Unsigned(v) => v
                        .iter()
                        .enumerate()
                        .for_each(|(i, x)| put(i, OwnedFieldValue::Unsigned(*x))),
                    Values::Boolean(v) => v
                        .iter()
                        .enumerate()
                        .for_each(|(i, x)| put(i, OwnedFieldValue::Boolean(*x))),
                    Values::String(v) => v
                        .iter()
                        .enumerate()
                        .for_each(|(i, x)| put(i, OwnedFieldValue::String(x.clone()))),
                }
            }
            for (timestamp, fields) in rows {
                let p = OwnedPoint {
                    measurement: series.measurement.clone(),
                    tags: series.tags.clone(),
                    fields,
                    timestamp,
                };
                n += 1;
                if !f(p) {
                    return Ok(n);
                }
            }
        }
    }
    Ok(n)
}
