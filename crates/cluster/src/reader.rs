//! The shard reader of a gateway: the query reads over gRPC to the shards'
//! owners. Each shard is read from one live owner (starting from a different
//! one per shard to spread the load), failing over to the next when a node is
//! out of reach or does not hold the shard; a shard no owner can answer for
//! fails the statement with an error naming it — never a silently partial
//! answer.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use sundial_common::ErrorClass;
use sundial_meta::{MetaClient, NodeId, ShardInfo};
use sundial_proto::store as pb;
use sundial_query::{
    Error, ReadRequest, Result, Schema, SeriesKey, SeriesRead, SeriesRequest, ShardReader,
};
use tracing::Instrument;

use crate::read_wire::{
    append_partials, append_series, append_series_keys, field_type, partials_from_pb, read_to_pb,
    series_request_to_pb,
};
use crate::remote::{status_error, Client, NodePool};
use sundial_query::partial::{PartialRequest, SeriesPartials};

/// A streaming call started on a store client.
type OpenStream<M> = futures::future::BoxFuture<
    'static,
    std::result::Result<tonic::Response<tonic::Streaming<M>>, tonic::Status>,
>;

#[derive(Debug, Clone)]
pub struct RemoteShardReader {
    meta: MetaClient,
    pool: Arc<NodePool>,
    schemas: Arc<SchemaCache>,
}

/// What a shard held of a measurement, under the shard's schema stamp (see
/// `sundial_engine`'s `SchemaStamp`): every read reports the stamp of the
/// shard it read, and one that differs from the cached one drops the entry and
/// has the statement planned again, so a cached schema is never used past a
/// change it would miss. Saves a round trip to a store per statement.
#[derive(Debug, Default)]
struct SchemaCache {
    map: std::sync::Mutex<std::collections::HashMap<(u64, String), ShardSchema>>,
    counts: SchemaCacheCounts,
}

/// How statements got their shards' schemas (for `/metrics`).
#[derive(Debug, Default)]
pub struct SchemaCacheCounts {
    /// A shard's schema taken from the cache.
    pub hits: AtomicU64,
    /// A shard's schema asked of a store.
    pub fetches: AtomicU64,
    /// A read that found its shard's schema changed (the statement planned again).
    pub stale: AtomicU64,
}

#[derive(Debug, Clone)]
struct ShardSchema {
    stamp: u64,
    fields: Vec<(String, sundial_query::FieldType)>,
    tags: Vec<String>,
}

/// Entries kept at most (then the cache starts over).
const SCHEMA_CACHE_ENTRIES: usize = 100_000;

impl SchemaCache {
    fn map(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(u64, String), ShardSchema>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, shard: u64, m: &str) -> Option<ShardSchema> {
        self.map().get(&(shard, m.to_string())).cloned()
    }

    fn put(&self, shard: u64, m: &str, s: ShardSchema) {
        let mut map = self.map();
        if map.len() >= SCHEMA_CACHE_ENTRIES {
            map.clear();
        }
        map.insert((shard, m.to_string()), s);
    }

    fn forget(&self, shard: u64, m: &str) {
        self.map().remove(&(shard, m.to_string()));
    }
}

impl ShardSchema {
    /// As a statement plans with it: reads check the stamp of a cached
    /// schema only (one just fetched is as fresh as a read could check).
    fn schema(&self, shard: u64, cached: bool) -> Schema {
        Schema {
            fields: self.fields.clone(),
            tags: self.tags.clone(),
            stamps: if cached {
                vec![(shard, self.stamp)]
            } else {
                Vec::new()
            },
            cached,
        }
    }
}

/// Whether another owner may answer where this one failed.
fn try_next(e: &crate::Error) -> bool {
    matches!(
        e.class(),
        ErrorClass::Unavailable | ErrorClass::NotFound | ErrorClass::Internal | ErrorClass::Timeout
    )
}

impl RemoteShardReader {
    pub fn new(meta: MetaClient, pool: Arc<NodePool>) -> Self {
        RemoteShardReader {
            meta,
            pool,
            schemas: Arc::default(),
        }
    }

    pub fn schema_cache_counts(&self) -> &SchemaCacheCounts {
        &self.schemas.counts
    }

    /// `call` on one owner of each of `shards`, all at once: one call per
    /// shard keeps failover per shard.
    async fn each_shard<T, F, Fut>(&self, shards: &[&ShardInfo], call: F) -> Result<Vec<T>>
    where
        F: Fn(Client, u64) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let call = &call;
        futures::future::try_join_all(shards.iter().map(|s| {
            self.on_owner(s, move |node| async move {
                let c = self.client(node).await?;
                call(c, s.id).await.map_err(|st| status_error(node, &st))
            })
        }))
        .await
    }

    /// Schemas of `shards` from their owners (one call per shard, at once),
    /// cached under their stamps.
    async fn fetch_schemas(&self, shards: &[&ShardInfo], measurement: &str) -> Result<Schema> {
        let answers = self
            .each_shard(shards, |mut c, id| {
                let measurement = measurement.to_string();
                async move {
                    let r = c
                        .schema(pb::SchemaRequest {
                            shard_ids: vec![id],
                            measurement,
                        })
                        .await?;
                    Ok(r.into_inner())
                }
            })
            .await?;
        self.schemas
            .counts
            .fetches
            .fetch_add(shards.len() as u64, Relaxed);
        let mut schema = Schema::default();
        for (s, r) in shards.iter().zip(answers) {
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in r.fields {
                let t = field_type(f.type_code).ok_or_else(|| Error::Shard {
                    shard: s.id,
                    message: format!("unknown field type {}", f.type_code),
                })?;
                fields.push((f.name, t));
            }
            fields.sort();
            let mut tags = r.tags;
            tags.sort();
            let stamp = r
                .stamps
                .iter()
                .find(|x| x.shard_id == s.id)
                .map_or(0, |x| x.stamp);
            let one = ShardSchema {
                stamp,
                fields,
                tags,
            };
            // Nothing is cached for a shard without the measurement: a
            // statement would read nothing there, so no read would tell.
            if stamp != 0 && !one.fields.is_empty() {
                self.schemas.put(s.id, measurement, one.clone());
            }
            schema.merge(one.schema(s.id, false));
        }
        Ok(schema)
    }

    /// A query read of `shard` ([`Self::stream_from_owner`]) whose stamp, sent
    /// in the stream's last message (`stamp` reads it), is checked against the
    /// one `req` was planned with.
    async fn stamped_read<M, T: Default>(
        &self,
        shard: &ShardInfo,
        req: &ReadRequest,
        open: impl Fn(Client) -> OpenStream<M>,
        stamp: fn(&M) -> u64,
        fold: impl Fn(&mut T, M) -> std::result::Result<(), String>,
    ) -> Result<T> {
        let (out, stamp) = self
            .stream_from_owner(shard, open, |out: &mut (T, u64), chunk: M| {
                if stamp(&chunk) != 0 {
                    out.1 = stamp(&chunk);
                }
                fold(&mut out.0, chunk)
            })
            .await
            .map_err(|e| match e {
                Error::MemoryLimit { .. } => Error::MemoryLimit {
                    limit: req.max_bytes,
                },
                e => e,
            })?;
        self.check_stamp(shard.id, req, stamp)?;
        Ok(out)
    }

    /// Fails a read whose shard reported another schema stamp than the one
    /// the statement was planned with, dropping the cached schema.
    fn check_stamp(&self, shard: u64, req: &ReadRequest, got: u64) -> Result<()> {
        if req.schema_stamp == 0 || req.schema_stamp == got {
            return Ok(());
        }
        self.schemas.forget(shard, &req.measurement);
        self.schemas.counts.stale.fetch_add(1, Relaxed);
        Err(Error::SchemaChanged { shard })
    }

    /// The shard's owners in the order to try them: live ones first, starting
    /// at a place that depends on the shard.
    fn owners(&self, shard: &ShardInfo) -> Vec<NodeId> {
        let live: Vec<NodeId> = self.meta.live_nodes().iter().map(|n| n.id).collect();
        let mut owners = shard.owners.clone();
        if !owners.is_empty() {
            let k = (shard.id as usize) % owners.len();
            owners.rotate_left(k);
        }
        owners.sort_by_key(|o| !live.contains(o));
        owners
    }

    async fn client(&self, node: NodeId) -> crate::Result<Client> {
        let info = self.meta.node(node).ok_or_else(|| {
            crate::Error::shard(
                ErrorClass::Unavailable,
                format!("node {node} is not registered in meta"),
            )
        })?;
        self.pool.client(node, &info.grpc_addr).await
    }

    /// A streamed read from one owner of `shard`: `open` starts the call on
    /// the owner's client, `fold` adds each message to the answer (a message
    /// that does not decode fails the read on that owner).
    async fn stream_from_owner<M, T: Default>(
        &self,
        shard: &ShardInfo,
        open: impl Fn(Client) -> OpenStream<M>,
        fold: impl Fn(&mut T, M) -> std::result::Result<(), String>,
    ) -> Result<T> {
        self.on_owner(shard, |node| {
            let (open, fold) = (&open, &fold);
            async move {
                let c = self.client(node).await?;
                let mut stream = open(c)
                    .await
                    .map_err(|st| status_error(node, &st))?
                    .into_inner();
                let mut out = T::default();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(|st| status_error(node, &st))?;
                    fold(&mut out, chunk).map_err(|m| {
                        crate::Error::shard(ErrorClass::Internal, format!("node {node}: {m}"))
                    })?;
                }
                Ok(out)
            }
        })
        .await
    }

    /// Runs `call` against the owners of `shard` until one answers.
    async fn on_owner<T, F, Fut>(&self, shard: &ShardInfo, call: F) -> Result<T>
    where
        F: Fn(NodeId) -> Fut,
        Fut: std::future::Future<Output = crate::Result<T>>,
    {
        let mut tried = Vec::new();
        for node in self.owners(shard) {
            match call(node).await {
                Ok(v) => return Ok(v),
                Err(e) if try_next(&e) => {
                    tracing::debug!(shard_id = shard.id, node, error = %e, "owner failed, trying the next");
                    tried.push(format!("node {node}: {e}"));
                }
                // A read past its memory bound: the caller may read less.
                Err(e) if e.class() == ErrorClass::TooLarge => {
                    return Err(Error::MemoryLimit { limit: 0 })
                }
                Err(e) => {
                    return Err(Error::Shard {
                        shard: shard.id,
                        message: e.to_string(),
                    })
                }
            }
        }
        Err(Error::Shard {
            shard: shard.id,
            message: if tried.is_empty() {
                "the shard has no owner".into()
            } else {
                format!("no owner could be read ({})", tried.join("; "))
            },
        })
    }
}

#[async_trait]
impl ShardReader for RemoteShardReader {
    async fn measurements(&self, _database: &str, shards: &[ShardInfo]) -> Result<Vec<String>> {
        let shards: Vec<&ShardInfo> = shards.iter().collect();
        let lists = self
            .each_shard(&shards, |mut c, id| async move {
                let r = c
                    .measurements(pb::MeasurementsRequest {
                        shard_ids: vec![id],
                    })
                    .await?;
                Ok(r.into_inner().names)
            })
            .await?;
        let mut out: Vec<String> = lists.into_iter().flatten().collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    async fn schema(
        &self,
        _database: &str,
        shards: &[ShardInfo],
        measurement: &str,
    ) -> Result<Schema> {
        let mut schema = Schema::default();
        let mut missing = Vec::new();
        for s in shards {
            match self.schemas.get(s.id, measurement) {
                Some(c) => {
                    self.schemas.counts.hits.fetch_add(1, Relaxed);
                    schema.merge(c.schema(s.id, true));
                }
                None => missing.push(s),
            }
        }
        if !missing.is_empty() {
            schema.merge(self.fetch_schemas(&missing, measurement).await?);
        }
        Ok(schema)
    }

    async fn schema_fresh(
        &self,
        _database: &str,
        shards: &[ShardInfo],
        measurement: &str,
    ) -> Result<Schema> {
        let all: Vec<&ShardInfo> = shards.iter().collect();
        self.fetch_schemas(&all, measurement).await
    }

    async fn series(
        &self,
        _database: &str,
        shard: &ShardInfo,
        req: &SeriesRequest,
    ) -> Result<Vec<SeriesKey>> {
        let msg = series_request_to_pb(shard.id, req);
        let span = tracing::info_span!(
            "store_client.ListSeries",
            otel.kind = "client",
            shard_id = shard.id,
            measurements = req.measurements.len(),
        );
        // No schema stamp: a listing plans nothing.
        self.stream_from_owner(
            shard,
            move |mut c| {
                let msg = msg.clone();
                Box::pin(async move { c.list_series(msg).await })
            },
            append_series_keys,
        )
        .instrument(span)
        .await
        .map_err(|e| match e {
            Error::MemoryLimit { .. } => Error::MemoryLimit {
                limit: req.max_bytes,
            },
            e => e,
        })
    }

    async fn read(
        &self,
        _database: &str,
        shard: &ShardInfo,
        req: &ReadRequest,
    ) -> Result<Vec<SeriesRead>> {
        let msg = read_to_pb(shard.id, req);
        let span = tracing::info_span!(
            "store_client.ReadSeries",
            otel.kind = "client",
            shard_id = shard.id,
            measurement = %req.measurement,
        );
        self.stamped_read(
            shard,
            req,
            move |mut c| {
                let msg = msg.clone();
                Box::pin(async move { c.read_series(msg).await })
            },
            |m| m.schema_stamp,
            append_series,
        )
        .instrument(span)
        .await
    }

    async fn read_partials(
        &self,
        _database: &str,
        shard: &ShardInfo,
        req: &PartialRequest,
    ) -> Result<Vec<SeriesPartials>> {
        let msg = pb::ReadPartialsRequest {
            read: Some(read_to_pb(shard.id, &req.read)),
            interval: req.interval,
            offset: req.offset,
        };
        let span = tracing::info_span!(
            "store_client.ReadPartials",
            otel.kind = "client",
            shard_id = shard.id,
            measurement = %req.read.measurement,
        );
        self.stamped_read(
            shard,
            &req.read,
            move |mut c| {
                let msg = msg.clone();
                Box::pin(async move { c.read_partials(msg).await })
            },
            |m| m.schema_stamp,
            |out, chunk: pb::ReadPartialsResponse| {
                for s in chunk.series {
                    append_partials(out, partials_from_pb(s)?);
                }
                Ok(())
            },
        )
        .instrument(span)
        .await
    }
}
