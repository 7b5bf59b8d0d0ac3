//! `sundial export`: prints stored points as line protocol, like
//! `influx_inspect export`, straight from a data directory (WAL included, so it
//! works right after a crash). Run it while the server is stopped.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use sundial_engine::{EngineOptions, Store, TagPredicate, Values};
use sundial_lineproto::{OwnedFieldValue, OwnedPoint};
use sundial_meta::{ClientOptions, EmbeddedBackend, MetaClient};

pub struct ExportArgs<'a> {
    pub data_dir: &'a Path,
    pub database: &'a str,
    pub retention_policy: Option<&'a str>,
    pub start: i64,
    pub end: i64,
}

pub async fn export(args: ExportArgs<'_>, out: &mut impl Write) -> Result<usize> {
    let meta_dir = args.data_dir.join("meta");
    let store_dir = args.data_dir.join("store");
    if !meta_dir.exists() {
        bail!(
            "no Sundial data in {} (missing meta/)",
            args.data_dir.display()
        );
    }
    let kv = EmbeddedBackend::open(&meta_dir)
        .context("opening meta (export reads the data directory offline: stop the server first)")?;
    let meta = MetaClient::local(std::sync::Arc::new(kv), ClientOptions::default())
        .await
        .context("reading meta")?;
    let db = meta
        .database(args.database)
        .with_context(|| format!("database not found: {:?}", args.database))?;
    let store = Store::open(
        &store_dir,
        EngineOptions::builder().auto_compaction(false).build(),
    )
    .context("opening store")?;
    writeln!(out, "# DML")?;
    writeln!(out, "# CONTEXT-DATABASE: {}", db.name)?;
    let mut n = 0;
    for rp in db.retention_policies.keys() {
        if args.retention_policy.is_some_and(|want| want != rp) {
            continue;
        }
        writeln!(out, "# CONTEXT-RETENTION-POLICY: {rp}")?;
        for g in meta.shard_groups(&db.name, rp) {
            if g.end <= args.start || g.start > args.end {
                continue;
            }
            for shard in g.shard_ids() {
                if !store.has_shard(shard) {
                    continue;
                }
                n += export_shard(&store, shard, args.start, args.end, out)?;
            }
        }
    }
    store.close().context("closing store")?;
    meta.close();
    Ok(n)
}

fn export_shard(
    store: &Store,
    shard: u64,
    start: i64,
    end: i64,
    out: &mut impl Write,
) -> Result<usize> {
    let mut n = 0;
    for m in store.measurements(shard)? {
        for series in store.scan(shard, &m, &TagPredicate::All, None, start, end)? {
            let series = series?;
            // Rows: timestamp -> fields present at that time.
            let mut rows: BTreeMap<i64, Vec<(String, OwnedFieldValue)>> = BTreeMap::new();
            for f in &series.fields {
                let times = &f.column.times;
                let mut put = |i: usize, v: OwnedFieldValue| {
                    rows.entry(times[i]).or_default().push((f.name.clone(), v));
                };
                match &f.column.values {
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
                writeln!(out, "{}", p.to_line())?;
                n += 1;
            }
        }
    }
    Ok(n)
}
