//! Background services of a node (seed 000: the retention service and the shard
//! precreator), plus dropping local shards whose groups meta no longer has
//! (after DROP DATABASE / DROP RETENTION POLICY / retention).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use sundial_engine::Store;
use sundial_meta::{now_ns, MetaClient};
use tokio::task::JoinHandle;

/// Drops every local shard that no shard group in meta refers to.
pub fn drop_orphan_shards(meta: &MetaClient, store: &Store) -> usize {
    // Local ids first: a shard created after this read belongs to a group that
    // was already in meta's snapshot, read next.
    let local = store.shard_ids();
    let known: HashSet<u64> = meta
        .all_shard_groups()
        .iter()
        .flat_map(|g| g.shard_ids())
        .collect();
    let mut dropped = 0;
    for id in local.into_iter().filter(|id| !known.contains(id)) {
        match store.drop_shard(id) {
            Ok(()) => {
                tracing::info!(shard = id, "dropped shard no longer in meta");
                dropped += 1;
            }
            Err(e) => tracing::warn!(shard = id, error = %e, "dropping orphan shard failed"),
        }
    }
    dropped
}

/// Deletes expired shard groups every `every`, and their shards.
pub fn spawn_retention(meta: MetaClient, store: Arc<Store>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let span = tracing::info_span!("retention.check");
            let _g = span.enter();
            match meta.delete_expired_shard_groups(now_ns()).await {
                Ok(groups) => {
                    for g in groups {
                        tracing::info!(group = g.id, db = %g.database, rp = %g.retention_policy, "shard group expired");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "retention check failed"),
            }
            drop_orphan_shards(&meta, &store);
        }
    })
}

/// Creates the next shard group of every policy `advance` before it is needed.
pub fn spawn_precreator(meta: MetaClient, every: Duration, advance: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            match meta.precreate_shard_groups(now_ns(), advance).await {
                Ok(created) if !created.is_empty() => {
                    tracing::info!(count = created.len(), "precreated shard groups")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "shard precreation failed"),
            }
        }
    })
}

/// Drops orphan shards shortly after DDL changes meta (checked every `every`).
pub fn spawn_reconciler(meta: MetaClient, store: Arc<Store>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut seen_rev = -1;
        loop {
            tick.tick().await;
            let rev = meta.revision();
            if rev != seen_rev {
                seen_rev = rev;
                let store = store.clone();
                let meta = meta.clone();
                let _ =
                    tokio::task::spawn_blocking(move || drop_orphan_shards(&meta, &store)).await;
            }
        }
    })
}
