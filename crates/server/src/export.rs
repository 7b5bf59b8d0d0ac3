//! `sundial export`: prints stored points as line protocol, like
//! `influx_inspect export`, straight from a data directory (WAL included, so it
//! works right after a crash). Run it while the server is stopped.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use sundial_engine::{EngineOptions, Store};
use sundial_meta::{ClientOptions, EmbeddedBackend, MetaClient};
use sundial_store::export::export_shard;

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
