//! Keeps a node's shards in line with meta: the shards of current and future
//! groups that meta assigns to this node are created ahead of their first write,
//! and local shards that meta no longer lists for this node (a dropped database or
//! policy, an expired group, a shard moved to other owners) are dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use sundial_engine::Store;
use sundial_meta::{now_ns, MetaClient, NodeId};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    pub created: usize,
    pub dropped: usize,
}

/// Shards meta assigns to `node`: id → (database, group end).
fn assigned(meta: &MetaClient, node: NodeId) -> HashMap<u64, (String, i64)> {
    meta.all_shard_groups()
        .iter()
        .flat_map(|g| {
            g.shards
                .iter()
                .filter(|s| s.owners.contains(&node))
                .map(|s| (s.id, (g.database.clone(), g.end)))
        })
        .collect()
}

/// One pass. `None` when meta could not be read (nothing is dropped on a guess).
pub async fn reconcile(meta: &MetaClient, store: &Arc<Store>, node: NodeId) -> Option<Reconciled> {
    // Local shards first, then a fresh read of meta: a shard that exists locally was
    // created for a group committed before that read, so "not in meta" is final.
    let local: HashSet<u64> = store.shard_ids().into_iter().collect();
    if let Err(e) = meta.refresh().await {
        tracing::warn!(error = %e, "meta unreachable; shards are left as they are for now");
        return None;
    }
    let mine = assigned(meta, node);
    let now = now_ns();
    let to_drop: Vec<u64> = local
        .iter()
        .copied()
        .filter(|id| !mine.contains_key(id))
        .collect();
    let to_create: Vec<(u64, String)> = mine
        .iter()
        .filter(|(id, (_, end))| *end > now && !local.contains(id))
        .map(|(id, (db, _))| (*id, db.clone()))
        .collect();
    let store = store.clone();
    let done = tokio::task::spawn_blocking(move || {
        let mut r = Reconciled::default();
        for id in to_drop {
            match store.drop_shard(id) {
                Ok(()) => {
                    tracing::info!(
                        shard = id,
                        "dropped a shard meta no longer assigns to this node"
                    );
                    r.dropped += 1;
                }
                Err(e) => tracing::warn!(shard = id, error = %e, "dropping a shard failed"),
            }
        }
        for (id, db) in to_create {
            match store.ensure_shard(id, &db) {
                Ok(()) => r.created += 1,
                Err(e) => {
                    tracing::warn!(shard = id, error = %e, "creating an assigned shard failed")
                }
            }
        }
        r
    })
    .await;
    done.ok()
}

/// Runs [`reconcile`] now and every `every`.
pub fn spawn_reconciler(
    meta: MetaClient,
    store: Arc<Store>,
    node: NodeId,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Every few seconds: logs at debug, not a trace of its own each time.
            let span = tracing::debug_span!("store.reconcile", node_id = node);
            if let Some(r) = reconcile(&meta, &store, node).instrument(span).await {
                if r != Reconciled::default() {
                    tracing::info!(
                        created = r.created,
                        dropped = r.dropped,
                        "shards reconciled with meta"
                    );
                }
            }
        }
    })
}
