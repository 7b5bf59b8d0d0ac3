//! The gRPC `StoreService`: `WriteToShard` and `Health` over the node's engine.
//!
//! Every request is untrusted. The payload is decoded and checked on the blocking
//! pool (never a panic, memory bounded by the message size limit), the shard must
//! be one meta assigns to this node (a shard meta does not know yet is looked up
//! again after a refresh, so the first write of a new time window never fails on a
//! stale cache), and its database is taken from meta, not from the request.

use std::sync::Arc;

use sundial_cluster::wire::{decode_points, DecodeLimits};
use sundial_common::ErrorClass;
use sundial_engine::Store;
use sundial_meta::{MetaClient, NodeId};
use sundial_proto::store as pb;
use sundial_proto::store::store_service_server::StoreService as Svc;
use tonic::{Request, Response, Status};

/// A status of `class` with `message`: the one mapping to gRPC codes is the class's.
pub fn status(class: ErrorClass, message: impl Into<String>) -> Status {
    Status::new(class.grpc_code(), message)
}

/// An engine error as a gRPC status.
pub fn engine_status(e: &sundial_engine::Error) -> Status {
    status(e.class(), e.to_string())
}

#[derive(Debug, Clone)]
pub struct StoreService {
    store: Arc<Store>,
    meta: MetaClient,
    node_id: NodeId,
    limits: DecodeLimits,
}

impl StoreService {
    pub fn new(store: Arc<Store>, meta: MetaClient, node_id: NodeId) -> Self {
        StoreService {
            store,
            meta,
            node_id,
            limits: DecodeLimits::default(),
        }
    }

    /// The database of shard `id` if meta assigns it to this node.
    async fn owned_shard(&self, id: u64) -> Result<String, Status> {
        let lookup = |meta: &MetaClient| {
            meta.snapshot()
                .shard(id)
                .map(|(g, s)| (g.database.clone(), s.owners.clone()))
        };
        let found = match lookup(&self.meta) {
            Some(f) => Some(f),
            None => {
                // A group created a moment ago may not have reached this node's cache.
                self.meta
                    .refresh()
                    .await
                    .map_err(|e| status(e.class(), e.to_string()))?;
                lookup(&self.meta)
            }
        };
        let (database, owners) = found.ok_or_else(|| {
            status(
                ErrorClass::NotFound,
                format!("shard {id} not found in meta"),
            )
        })?;
        if !owners.contains(&self.node_id) {
            return Err(Status::failed_precondition(format!(
                "shard {id} is not owned by node {} (owners: {owners:?})",
                self.node_id
            )));
        }
        Ok(database)
    }
}

#[tonic::async_trait]
impl Svc for StoreService {
    async fn write_to_shard(
        &self,
        req: Request<pb::WriteToShardRequest>,
    ) -> Result<Response<pb::WriteToShardResponse>, Status> {
        let r = req.into_inner();
        let span = tracing::info_span!(
            "store.WriteToShard",
            node_id = self.node_id,
            shard_id = r.shard_id,
            bytes = r.points.len(),
            points = tracing::field::Empty,
        );
        let database = self.owned_shard(r.shard_id).await?;
        if !r.database.is_empty() && r.database != database {
            return Err(status(
                ErrorClass::BadRequest,
                format!(
                    "shard {} belongs to database {database:?}, not {:?}",
                    r.shard_id, r.database
                ),
            ));
        }
        let (store, limits, id) = (self.store.clone(), self.limits, r.shard_id);
        let outcome = tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            let decoded = decode_points(&r.points, &limits)
                .map_err(|e| status(ErrorClass::BadRequest, e.to_string()))?;
            span.record("points", decoded.len());
            let points = decoded.points();
            store
                .ensure_shard(id, &database)
                .map_err(|e| engine_status(&e))?;
            store
                .write_to_shard(id, &points)
                .map_err(|e| engine_status(&e))
        })
        .await
        .map_err(|e| {
            status(
                ErrorClass::Internal,
                format!("shard write task failed: {e}"),
            )
        })??;
        Ok(Response::new(pb::WriteToShardResponse {
            points_written: outcome.points_written as u64,
            values_written: outcome.values_written as u64,
            points_dropped: outcome.points_dropped as u64,
            drop_reasons: outcome.drop_reasons,
        }))
    }

    async fn health(
        &self,
        _req: Request<pb::HealthRequest>,
    ) -> Result<Response<pb::HealthResponse>, Status> {
        let checks = crate::health_checks(&self.store.health());
        let worst = |s: &str| checks.iter().any(|c| c.status == s);
        let overall = if worst("fail") {
            "fail"
        } else if worst("warn") {
            "warn"
        } else {
            "pass"
        };
        Ok(Response::new(pb::HealthResponse {
            node_id: self.node_id,
            status: overall.into(),
            checks: checks
                .into_iter()
                .map(|c| pb::HealthCheck {
                    name: c.name,
                    status: c.status.into(),
                    message: c.message,
                })
                .collect(),
        }))
    }
}
