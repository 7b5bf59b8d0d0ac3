//! The shard reader of a gateway: the query reads over gRPC to the shards'
//! owners. Each shard is read from one live owner (starting from a different
//! one per shard to spread the load), failing over to the next when a node is
//! out of reach or does not hold the shard; a shard no owner can answer for
//! fails the statement with an error naming it — never a silently partial
//! answer.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use sundial_common::ErrorClass;
use sundial_meta::{MetaClient, NodeId, ShardInfo};
use sundial_proto::store as pb;
use sundial_query::{Error, ReadRequest, Result, Schema, SeriesRead, ShardReader};
use tracing::Instrument;

use crate::read_wire::{append_partials, append_series, field_type, partials_from_pb, read_to_pb};
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
        RemoteShardReader { meta, pool }
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
        // One call per shard keeps failover per shard; they run at once.
        let lists = futures::future::try_join_all(shards.iter().map(|s| {
            self.on_owner(s, move |node| async move {
                let mut c = self.client(node).await?;
                let r = c
                    .measurements(pb::MeasurementsRequest {
                        shard_ids: vec![s.id],
                    })
                    .await
                    .map_err(|st| status_error(node, &st))?;
                Ok(r.into_inner().names)
            })
        }))
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
        let answers = futures::future::try_join_all(shards.iter().map(|s| {
            self.on_owner(s, move |node| async move {
                let mut c = self.client(node).await?;
                let r = c
                    .schema(pb::SchemaRequest {
                        shard_ids: vec![s.id],
                        measurement: measurement.to_string(),
                    })
                    .await
                    .map_err(|st| status_error(node, &st))?;
                Ok(r.into_inner())
            })
        }))
        .await?;
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
            schema.merge(Schema { fields, tags });
        }
        Ok(schema)
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
        self.stream_from_owner(
            shard,
            move |mut c| {
                let msg = msg.clone();
                Box::pin(async move { c.read_series(msg).await })
            },
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
        self.stream_from_owner(
            shard,
            move |mut c| {
                let msg = msg.clone();
                Box::pin(async move { c.read_partials(msg).await })
            },
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
