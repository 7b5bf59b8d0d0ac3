//! The shard writer of a gateway: `WriteToShard` over gRPC to the shard's owners,
//! one pooled connection per node.
//!
//! A write goes to every owner at once; it is acknowledged when as many as its
//! consistency level needs have written it, and owners out of reach get the points
//! through hinted handoff — also those that answer only after the request was.

use crate::error::{Error, Result};
use crate::handoff::{Hint, HintSender, HintedHandoff};
use crate::read_wire::{delete_to_pb, DeleteId};
use crate::seam::{Batch, Consistency, ShardWriter};
use crate::secret::SecretInterceptor;
use crate::wire::encode_points;
use async_trait::async_trait;
use futures::stream::{FuturesUnordered, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use sundial_common::{ErrorClass, WriteOutcome};
use sundial_meta::{MetaClient, NodeId, PendingDelete, ShardInfo};
use sundial_proto::store as pb;
use sundial_proto::store::store_service_client::StoreServiceClient;
use sundial_query::DeleteRequest;
use tokio::sync::Mutex;
use tokio_util::task::TaskTracker;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tracing::Instrument;

/// A pooled store client.
pub type Client = StoreServiceClient<InterceptedService<Channel, SecretInterceptor>>;

/// How a gateway talks to stores.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    pub connect_timeout: Duration,
    /// Bound on one `WriteToShard` call, fsync included.
    pub request_timeout: Duration,
    /// Largest message sent or accepted.
    pub max_message_size: usize,
    /// The cluster's shared secret (see [`crate::secret`]).
    pub secret: Option<String>,
    /// PEM of the CA that signed the stores' certificates: calls go over TLS.
    pub tls_ca: Option<Vec<u8>>,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
            max_message_size: 64 << 20,
            secret: None,
            tls_ca: None,
        }
    }
}

/// One lazily connected channel per node, replaced when the node's address changes
/// (a store restarted elsewhere keeps its id).
#[derive(Debug)]
pub struct NodePool {
    opts: RemoteOptions,
    interceptor: SecretInterceptor,
    clients: Mutex<HashMap<NodeId, (String, Client)>>,
}

impl NodePool {
    pub fn new(opts: RemoteOptions) -> Result<Self> {
        let interceptor =
            SecretInterceptor::new(opts.secret.as_deref()).map_err(Error::BadRequest)?;
        Ok(NodePool {
            opts,
            interceptor,
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The client for `node` at `addr` (`host:port` or a URL).
    pub async fn client(&self, node: NodeId, addr: &str) -> Result<Client> {
        let mut clients = self.clients.lock().await;
        if let Some((a, c)) = clients.get(&node) {
            if a == addr {
                return Ok(c.clone());
            }
        }
        let scheme = if self.opts.tls_ca.is_some() {
            "https"
        } else {
            "http"
        };
        let url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("{scheme}://{addr}")
        };
        let mut endpoint = Endpoint::from_shared(url).map_err(|e| {
            Error::BadRequest(format!("node {node} has a bad address {addr:?}: {e}"))
        })?;
        if let Some(ca) = &self.opts.tls_ca {
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
            endpoint = endpoint
                .tls_config(tls)
                .map_err(|e| Error::BadRequest(format!("TLS for node {node}: {e}")))?;
        }
        let channel = endpoint
            .connect_timeout(self.opts.connect_timeout)
            .timeout(self.opts.request_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        let client = StoreServiceClient::with_interceptor(channel, self.interceptor.clone())
            .max_decoding_message_size(self.opts.max_message_size)
            .max_encoding_message_size(self.opts.max_message_size);
        clients.insert(node, (addr.to_string(), client.clone()));
        Ok(client)
    }
}

/// A store's gRPC status as the cluster's error: its class from the code, its text.
pub fn status_error(node: NodeId, s: &tonic::Status) -> Error {
    let class = ErrorClass::from_grpc_code(s.code());
    let message = match s.code() {
        // Transport failures say little on their own.
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
            format!("node {node}: {}", s.message())
        }
        _ => s.message().to_string(),
    };
    Error::shard(class, message)
}

/// Sends `WriteToShard` calls to nodes by id (their address from meta): used by the
/// shard writer and by hinted handoff's drainers.
#[derive(Debug, Clone)]
pub struct Delivery {
    meta: MetaClient,
    pool: Arc<NodePool>,
}

impl Delivery {
    pub fn new(meta: MetaClient, pool: Arc<NodePool>) -> Self {
        Delivery { meta, pool }
    }

    pub fn meta(&self) -> &MetaClient {
        &self.meta
    }

    pub async fn write(&self, node: NodeId, req: pb::WriteToShardRequest) -> Result<WriteOutcome> {
        // Outside a request (hinted handoff retrying a node that is down) the call
        // is not a trace of its own.
        let span = if tracing::Span::current().is_none() {
            tracing::debug_span!(
                "store_client.WriteToShard",
                node_id = node,
                shard_id = req.shard_id,
                bytes = req.points.len(),
            )
        } else {
            tracing::info_span!(
                "store_client.WriteToShard",
                otel.kind = "client",
                node_id = node,
                shard_id = req.shard_id,
                bytes = req.points.len(),
            )
        };
        self.write_in_span(node, req).instrument(span).await
    }

    /// A client of node `node`, at the address meta has for it.
    async fn client(&self, node: NodeId) -> Result<Client> {
        let info = self.meta.node(node).ok_or_else(|| {
            Error::shard(
                ErrorClass::Unavailable,
                format!("node {node} is not registered in meta"),
            )
        })?;
        self.pool.client(node, &info.grpc_addr).await
    }

    async fn write_in_span(
        &self,
        node: NodeId,
        req: pb::WriteToShardRequest,
    ) -> Result<WriteOutcome> {
        let mut client = self.client(node).await?;
        let r = client
            .write_to_shard(req)
            .await
            .map_err(|s| status_error(node, &s))?
            .into_inner();
        Ok(WriteOutcome {
            points_written: r.points_written as usize,
            values_written: r.values_written as usize,
            points_dropped: r.points_dropped as usize,
            drop_reasons: r.drop_reasons,
        })
    }
}

#[async_trait]
impl HintSender for Delivery {
    async fn send(&self, node: NodeId, hint: &Hint) -> Result<()> {
        let req = pb::WriteToShardRequest {
            shard_id: hint.shard_id,
            database: hint.database.clone(),
            points: hint.points.clone(),
            // Deletes issued since the write was accepted take their points out.
            accepted_ms: hint.enqueued_ms.max(1),
        };
        self.write(node, req).await.map(|_| ())
    }
}

impl Delivery {
    /// One owner's part of a delete.
    pub async fn delete(&self, node: NodeId, req: pb::DeleteSeriesRequest) -> Result<u64> {
        let mut client = self.client(node).await?;
        let span = tracing::info_span!(
            "store_client.DeleteSeries",
            otel.kind = "client",
            node_id = node,
            shard_id = req.shard_id,
        );
        let r = client
            .delete_series(req)
            .instrument(span)
            .await
            .map_err(|s| status_error(node, &s))?;
        Ok(r.into_inner().series)
    }
}

/// Owners asked at once by one delete.
const DELETE_CONCURRENCY: usize = 8;

/// Whether an owner's error means the owner is out of reach (its points go to
/// hinted handoff) rather than that the request itself is wrong (the same on every
/// owner, so it is the answer).
fn owner_unreachable(e: &Error) -> bool {
    matches!(
        e.class(),
        ErrorClass::Unavailable | ErrorClass::Timeout | ErrorClass::Internal
    )
}

/// Writes shards through their owners' `StoreService`, as many as the consistency
/// level needs; owners that cannot be reached get the points through hinted
/// handoff (InfluxDB Enterprise's rules).
#[derive(Debug, Clone)]
pub struct RemoteShardWriter {
    delivery: Arc<Delivery>,
    handoff: Option<Arc<HintedHandoff>>,
    /// Owner writes still running after their request was answered; a stopping
    /// gateway waits for them ([`Self::close`]).
    tasks: TaskTracker,
}

/// How long a request that met its consistency level still waits for the other
/// owners: long enough for a healthy replica, short next to a write timeout.
const OTHER_OWNERS_GRACE: Duration = Duration::from_millis(200);

/// One owner's write, polled by the request and spawned if it outlives it.
type OwnerCall = std::pin::Pin<Box<dyn std::future::Future<Output = (NodeId, Owner)> + Send>>;

/// What one owner's write came to.
enum Owner {
    Wrote(WriteOutcome),
    /// Out of reach; its points are queued for it.
    Hinted(Error),
    /// Out of reach, and no queue to keep its points.
    Unreachable(Error),
    /// An answer for the whole request: a bad request, or a full queue.
    Refused(Error),
}

impl RemoteShardWriter {
    pub fn new(delivery: Arc<Delivery>) -> Self {
        RemoteShardWriter {
            delivery,
            handoff: None,
            tasks: TaskTracker::new(),
        }
    }

    /// Owner writes still running after their requests were answered.
    pub fn in_flight(&self) -> usize {
        self.tasks.len()
    }

    /// One owner's write; an owner out of reach gets the points queued.
    fn owner_write(
        &self,
        node: NodeId,
        shard_id: u64,
        database: &str,
        points: bytes::Bytes,
        accepted_ms: i64,
    ) -> OwnerCall {
        let delivery = self.delivery.clone();
        let handoff = self.handoff.clone();
        let database = database.to_string();
        let call = async move {
            let req = pb::WriteToShardRequest {
                shard_id,
                database: database.clone(),
                points: points.clone(),
                accepted_ms,
            };
            let r = match delivery.write(node, req).await {
                Ok(o) => Owner::Wrote(o),
                Err(e) if !owner_unreachable(&e) => Owner::Refused(e),
                Err(e) => match &handoff {
                    None => Owner::Unreachable(e),
                    Some(hh) => match hh
                        .enqueue(node, shard_id, &database, points, accepted_ms)
                        .await
                    {
                        Ok(()) => Owner::Hinted(e),
                        Err(full) => {
                            tracing::warn!(node, shard = shard_id, error = %full, "hinted handoff refused a write");
                            Owner::Refused(full)
                        }
                    },
                },
            };
            (node, r)
        };
        Box::pin(call.in_current_span())
    }

    /// Lets the calls a request no longer waits for run to their end.
    fn detach(&self, calls: FuturesUnordered<OwnerCall>) {
        for call in calls {
            self.tasks.spawn(call);
        }
    }

    /// Waits (at most `limit`) for owner writes still running after their
    /// requests were answered, so that their hints are queued before the
    /// process exits. False when some were still running.
    pub async fn close(&self, limit: Duration) -> bool {
        self.tasks.close();
        tokio::time::timeout(limit, self.tasks.wait()).await.is_ok()
    }

    /// The delete of `delete_series`: registered in meta for every owner of
    /// every shard first (so an owner that cannot be reached, or that fails
    /// half-way, applies it when it is back — a store refuses nothing while
    /// it catches up, it applies what meta holds for a shard before writing
    /// to it), then asked of every owner; the owners that answered are
    /// cleared from meta.
    async fn delete_everywhere(
        &self,
        database: &str,
        shards: &[ShardInfo],
        req: &DeleteRequest,
    ) -> Result<usize> {
        use prost::Message as _;
        let issued_ms = sundial_common::now_ms();
        let id = rand::random::<u64>().max(1);
        let mut calls = Vec::new();
        let mut pending = Vec::new();
        for shard in shards {
            let at = DeleteId {
                id,
                shard_id: shard.id,
                issued_ms,
            };
            let msg = delete_to_pb(at, database, req);
            for &node in &shard.owners {
                pending.push(PendingDelete {
                    id,
                    node,
                    shard: shard.id,
                    database: database.to_string(),
                    issued_ms,
                    request: String::new(),
                });
                calls.push((node, msg.clone()));
            }
        }
        let encoded: Vec<Vec<u8>> = calls.iter().map(|(_, m)| m.encode_to_vec()).collect();
        let wire: Vec<PendingDelete> = pending
            .iter()
            .zip(&encoded)
            .map(|(p, bytes)| p.clone().with_request(bytes))
            .collect();
        if let Err(e) = self.delivery.meta().add_pending_deletes(&wire).await {
            // Recorded in transactions of 100: take back what was recorded.
            let keys: Vec<(NodeId, u64, u64)> =
                wire.iter().map(|p| (p.node, p.shard, p.id)).collect();
            let undone = self
                .delivery
                .meta()
                .clear_pending_deletes(&keys)
                .await
                .is_ok();
            let what = if undone || wire.len() <= 100 {
                "the delete was not applied"
            } else {
                "the delete may have been applied on some owners (run it again)"
            };
            return Err(Error::shard(
                e.class(),
                format!("{what}: meta could not record it: {e}"),
            ));
        }
        let delivery = self.delivery.clone();
        let outcomes: Vec<(NodeId, u64, Result<u64>)> = futures::stream::iter(calls)
            .map(|(node, msg)| {
                let delivery = delivery.clone();
                async move {
                    let shard = msg.shard_id;
                    (node, shard, delivery.delete(node, msg).await)
                }
            })
            .buffer_unordered(DELETE_CONCURRENCY)
            .collect()
            .await;
        let mut done = Vec::new();
        let mut deferred = 0;
        let mut refused = None;
        for (node, shard, r) in outcomes {
            match r {
                Ok(_) => done.push((node, shard, id)),
                // Wrong on every owner alike (a bad request), or a shard the
                // node no longer has: nothing will ever apply it there.
                Err(e) if matches!(e.class(), ErrorClass::BadRequest | ErrorClass::NotFound) => {
                    done.push((node, shard, id));
                    if e.class() == ErrorClass::BadRequest {
                        refused.get_or_insert(e);
                    }
                }
                Err(e) => {
                    tracing::warn!(node, shard, error = %e, "delete deferred: the owner applies it when it is back");
                    deferred += 1;
                }
            }
        }
        if let Err(e) = self.delivery.meta().clear_pending_deletes(&done).await {
            // Harmless: each owner skips a delete it applied already.
            tracing::warn!(error = %e, "applied deletes stay listed in meta until their owners clear them");
        }
        match refused {
            Some(e) => Err(e),
            None => Ok(deferred),
        }
    }

    /// Queues the points of owners that cannot be reached in `hh`.
    pub fn with_handoff(mut self, hh: Arc<HintedHandoff>) -> Self {
        self.handoff = Some(hh);
        self
    }
}

#[async_trait]
impl ShardWriter for RemoteShardWriter {
    async fn delete_series(
        &self,
        database: &str,
        shards: &[ShardInfo],
        req: &DeleteRequest,
    ) -> Result<usize> {
        self.delete_everywhere(database, shards, req).await
    }

    async fn write_to_shard(
        &self,
        database: &str,
        shard: &ShardInfo,
        batch: Arc<Batch>,
        indices: Vec<u32>,
        consistency: Consistency,
    ) -> Result<WriteOutcome> {
        let n = shard.owners.len();
        if n == 0 {
            return Err(Error::shard(
                ErrorClass::Unavailable,
                format!("shard {} has no owners", shard.id),
            ));
        }
        let mut points = Vec::with_capacity(indices.len() * 64);
        {
            let parsed = batch.parsed();
            encode_points(indices.iter().map(|&i| parsed.get(i as usize)), &mut points);
        }
        let points = bytes::Bytes::from(points);
        // Every owner's copy carries when the write was accepted: a copy that
        // arrives after a delete issued since (a slow call, a hint) loses
        // what the delete covers, as the others did.
        let accepted_ms = sundial_common::now_ms();
        // One call per owner: it writes, and queues a hint when its owner is out
        // of reach. The request waits only until the consistency level is met
        // (plus a short grace so that the usual answer covers every owner); the
        // calls are polled right here and only those still running then become
        // tasks of their own, bounded by the write timeout, that queue their
        // hints when they fail (InfluxDB Enterprise's rule).
        let mut calls: FuturesUnordered<OwnerCall> = shard
            .owners
            .iter()
            .map(|&node| self.owner_write(node, shard.id, database, points.clone(), accepted_ms))
            .collect();
        let required = consistency.required(n);
        let met = |wrote: usize, hinted: usize| {
            wrote >= required || (consistency == Consistency::Any && wrote + hinted > 0)
        };
        let (mut outcome, mut wrote, mut hinted) = (None, 0, 0);
        let mut failures = Vec::new();
        let mut grace_until = None;
        loop {
            let next = match grace_until {
                None => calls.next().await,
                Some(t) => match tokio::time::timeout_at(t, calls.next()).await {
                    Ok(next) => next,
                    Err(_) => break,
                },
            };
            let Some((node, r)) = next else { break };
            match r {
                Owner::Wrote(o) => {
                    wrote += 1;
                    outcome.get_or_insert(o);
                }
                // The request is wrong (the same on every owner), or a queue is
                // full: the client retries later rather than have a replica
                // silently miss the points.
                Owner::Refused(e) => {
                    self.detach(calls);
                    return Err(e);
                }
                Owner::Hinted(e) => {
                    hinted += 1;
                    failures.push((node, e));
                }
                Owner::Unreachable(e) => failures.push((node, e)),
            }
            if grace_until.is_none() && met(wrote, hinted) {
                grace_until = Some(tokio::time::Instant::now() + OTHER_OWNERS_GRACE);
            }
        }
        // The rest finish (or queue their hints) on their own.
        self.detach(calls);
        if met(wrote, hinted) {
            // Met by hints alone (`any`): count what was queued.
            return Ok(outcome.unwrap_or_else(|| {
                let parsed = batch.parsed();
                WriteOutcome {
                    points_written: indices.len(),
                    values_written: indices
                        .iter()
                        .map(|&i| parsed.get(i as usize).fields.len())
                        .sum(),
                    ..WriteOutcome::default()
                }
            }));
        }
        let why: Vec<String> = failures
            .iter()
            .map(|(node, e)| format!("node {node}: {e}"))
            .collect();
        Err(Error::ConsistencyNotMet(format!(
            "consistency {} not met for shard {}: {wrote} of {n} owners wrote, {required} needed ({}); {hinted} queued for hinted handoff",
            consistency.as_str(),
            shard.id,
            why.join("; ")
        )))
    }
}
