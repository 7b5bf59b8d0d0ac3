//! Background services of a node (seed 000: the retention service and the shard
//! precreator), plus dropping local shards whose groups meta no longer has
//! (after DROP DATABASE / DROP RETENTION POLICY / retention).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use sundial_engine::Store;
use sundial_meta::{now_ns, services, MetaClient};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// Local shards that no shard group in the cached meta snapshot refers to.
fn orphan_candidates(meta: &MetaClient, local: &[u64]) -> Vec<u64> {
    let known: HashSet<u64> = meta
        .all_shard_groups()
        .iter()
        .flat_map(|g| g.shard_ids())
        .collect();
    local
        .iter()
        .copied()
        .filter(|id| !known.contains(id))
        .collect()
}

/// Drops every local shard that no shard group in meta refers to.
///
/// The cache may lag behind meta (a group created a moment ago whose shard a write
/// has just made), so a shard is dropped only if a fresh read of meta, made after
/// the local shards were listed, does not know it either: a shard that exists
/// locally belongs to a group committed before that read.
/// `None` when meta could not be asked (nothing was dropped; try again later).
pub async fn drop_orphan_shards(meta: &MetaClient, store: &Arc<Store>) -> Option<usize> {
    let local = store.shard_ids();
    if orphan_candidates(meta, &local).is_empty() {
        return Some(0);
    }
    if let Err(e) = meta.refresh().await {
        tracing::warn!(error = %e, "meta unreachable; orphan shards are kept for now");
        return None;
    }
    let orphans = orphan_candidates(meta, &local);
    let store = store.clone();
    let dropped = tokio::task::spawn_blocking(move || {
        let mut dropped = 0;
        for id in orphans {
            match store.drop_shard(id) {
                Ok(()) => {
                    tracing::info!(shard = id, "dropped shard no longer in meta");
                    dropped += 1;
                }
                Err(e) => tracing::warn!(shard = id, error = %e, "dropping orphan shard failed"),
            }
        }
        dropped
    })
    .await;
    Some(dropped.unwrap_or(0))
}

/// Deletes expired shard groups every `every` (the pass `sundial-meta` runs in a
/// cluster), and their shards.
pub fn spawn_retention(meta: MetaClient, store: Arc<Store>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            // A span entered with a guard must not be held across an await.
            let check = async {
                let _ = services::enforce_retention(&meta, now_ns()).await;
                drop_orphan_shards(&meta, &store).await;
            };
            check
                .instrument(tracing::info_span!("retention.check"))
                .await;
        }
    })
}

/// Creates the next shard group of every policy `advance` before it is needed.
pub fn spawn_precreator(meta: MetaClient, every: Duration, advance: Duration) -> JoinHandle<()> {
    services::spawn_precreator(Arc::new(meta), every, advance)
}

/// Drops orphan shards shortly after DDL changes meta (checked every `every`).
pub fn spawn_reconciler(meta: MetaClient, store: Arc<Store>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        let mut seen_rev = -1;
        loop {
            tick.tick().await;
            let rev = meta.revision();
            if rev != seen_rev && drop_orphan_shards(&meta, &store).await.is_some() {
                seen_rev = rev;
            }
        }
    })
}
