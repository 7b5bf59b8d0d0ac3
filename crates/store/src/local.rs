//! The shard writer of a single node: calls into the in-process engine.

use crate::shard_error;
use async_trait::async_trait;
use std::sync::Arc;
use sundial_cluster::{Batch, Consistency, Error, Result, ShardWriter};
use sundial_common::WriteOutcome;
use sundial_engine::Store;
use sundial_lineproto::Point;
use sundial_meta::ShardInfo;
use sundial_query::DeleteRequest;

/// The shard writer of a single node: the local engine.
#[derive(Debug, Clone)]
pub struct LocalShardWriter {
    store: Arc<Store>,
}

impl LocalShardWriter {
    pub fn new(store: Arc<Store>) -> Self {
        LocalShardWriter { store }
    }
}

#[async_trait]
impl ShardWriter for LocalShardWriter {
    async fn write_to_shard(
        &self,
        database: &str,
        shard: &ShardInfo,
        batch: Arc<Batch>,
        indices: Vec<u32>,
        // One owner, in this process: every level is met by the write itself.
        _consistency: Consistency,
    ) -> Result<WriteOutcome> {
        let store = self.store.clone();
        let id = shard.id;
        let database = database.to_owned();
        // The engine blocks (WAL fsync): run it on the blocking pool so the
        // request can time out while the write finishes in the background. The
        // caller's span goes along (the shard write joins its trace).
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || -> Result<WriteOutcome> {
            let _e = span.enter();
            let parsed = batch.parsed();
            let points: Vec<Point<'_>> = indices.iter().map(|&i| parsed.get(i as usize)).collect();
            // A shard group created a moment ago has no local shard yet.
            store.ensure_shard(id, &database).map_err(shard_error)?;
            store.write_to_shard(id, &points).map_err(shard_error)
        })
        .await
        .map_err(|e| Error::Internal(format!("shard write task failed: {e}")))?
    }

    async fn delete_series(
        &self,
        _database: &str,
        shards: &[ShardInfo],
        req: &DeleteRequest,
    ) -> Result<usize> {
        let store = self.store.clone();
        let (ids, req) = (shards.iter().map(|s| s.id).collect::<Vec<_>>(), req.clone());
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || -> Result<usize> {
            let _e = span.enter();
            for id in ids {
                crate::deletes::apply_local(&store, id, &req)
                    .map_err(|e| Error::shard(e.class(), e.to_string()))?;
            }
            Ok(0)
        })
        .await
        .map_err(|e| Error::Internal(format!("delete task failed: {e}")))?
    }
}
