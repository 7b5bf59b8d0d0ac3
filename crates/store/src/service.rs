//! The gRPC `StoreService`: `WriteToShard` and `Health` over the node's engine.
//!
//! Every request is untrusted. The payload is decoded and checked on the blocking
//! pool (never a panic, memory bounded by the message size limit), the shard must
//! be one meta assigns to this node (a shard meta does not know yet is looked up
//! again after a refresh, so the first write of a new time window never fails on a
//! stale cache), and its database is taken from meta, not from the request.

use std::sync::Arc;

use std::borrow::Cow;

use sundial_cluster::read_wire;
use sundial_cluster::wire::{decode_points, encode_points, DecodeLimits};
use sundial_common::telemetry;
use sundial_common::ErrorClass;
use sundial_engine::Store;
use sundial_lineproto::{Field, OwnedPoint, Point, Tag};
use sundial_meta::{MetaClient, NodeId};
use sundial_proto::store as pb;
use sundial_proto::store::store_service_server::StoreService as Svc;
use tokio_stream::wrappers::ReceiverStream;

use crate::answer::{Answer, Chunks};
use crate::deletes::Deletes;
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
    /// Callers proved they are cluster nodes (a shared secret is required): their
    /// sampling decision stands. Otherwise a caller's sampled flag is capped like a
    /// client's.
    trusted_callers: bool,
    deletes: Arc<Deletes>,
}

impl StoreService {
    pub fn new(store: Arc<Store>, meta: MetaClient, node_id: NodeId) -> Self {
        StoreService {
            deletes: Deletes::unjournaled(store.clone()),
            store,
            meta,
            node_id,
            limits: DecodeLimits::default(),
            trusted_callers: false,
        }
    }

    /// Deletes are applied through `deletes` (the node's journal).
    pub fn with_deletes(mut self, deletes: Arc<Deletes>) -> Self {
        self.deletes = deletes;
        self
    }

    /// Calls are authenticated by the cluster's secret (see `trusted_callers`).
    pub fn with_authenticated_callers(mut self, yes: bool) -> Self {
        self.trusted_callers = yes;
        self
    }

    /// Whether `shard` can be read here: NotFound when this node does not
    /// hold it; the deletes meta holds for this node on it applied first
    /// (what a read answers must not hold what they delete), Unavailable
    /// while one cannot be, so the reader asks another owner.
    async fn readable(&self, shard: u64) -> Result<(), Status> {
        if !self.store.has_shard(shard) {
            return Err(status(
                ErrorClass::NotFound,
                format!("shard {shard} is not on node {}", self.node_id),
            ));
        }
        if !Deletes::has_pending(&self.meta, self.node_id, shard) {
            return Ok(());
        }
        let (deletes, meta, node) = (self.deletes.clone(), self.meta.clone(), self.node_id);
        tokio::task::spawn_blocking(move || deletes.catch_up(&meta, node, shard))
            .await
            .map_err(|e| status(ErrorClass::Internal, format!("delete task failed: {e}")))?
            .map_err(|e| status(e.class(), e.to_string()))
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
        let (database, mut owners) = found.ok_or_else(|| {
            status(
                ErrorClass::NotFound,
                format!("shard {id} not found in meta"),
            )
        })?;
        if !owners.contains(&self.node_id) {
            // Owners may have changed a moment ago (a shard copy to this node).
            self.meta
                .refresh()
                .await
                .map_err(|e| status(e.class(), e.to_string()))?;
            if let Some((_, o)) = lookup(&self.meta) {
                owners = o;
            }
        }
        if !owners.contains(&self.node_id) {
            return Err(Status::failed_precondition(format!(
                "shard {id} is not owned by node {} (owners: {owners:?})",
                self.node_id
            )));
        }
        Ok(database)
    }
}

/// Points per `ReadShard` message.
const READ_CHUNK: usize = 10_000;

/// Encodes owned points in the wire format (their canonical keys built here).
fn encode_owned(points: &[OwnedPoint], out: &mut Vec<u8>) {
    let keys: Vec<String> = points.iter().map(OwnedPoint::series_key).collect();
    let tags: Vec<Vec<Tag<'_>>> = points
        .iter()
        .map(|p| {
            let mut t: Vec<Tag<'_>> = p
                .tags
                .iter()
                .map(|(k, v)| Tag {
                    key: Cow::Borrowed(k),
                    value: Cow::Borrowed(v),
                })
                .collect();
            t.sort_by(|a, b| a.key.cmp(&b.key));
            t
        })
        .collect();
    let fields: Vec<Vec<Field<'_>>> = points
        .iter()
        .map(|p| {
            p.fields
                .iter()
                .map(|(k, v)| Field {
                    key: Cow::Borrowed(k),
                    value: v.as_borrowed(),
                })
                .collect()
        })
        .collect();
    encode_points(
        (0..points.len()).map(|i| Point {
            measurement: &points[i].measurement,
            series_key: &keys[i],
            tags: &tags[i],
            fields: &fields[i],
            timestamp: points[i].timestamp,
        }),
        out,
    );
}

/// Values per `ReadSeries` message (a longer series continues in the next).
const SERIES_CHUNK_VALUES: usize = 64 * 1024;

/// A query read's error as a gRPC status.
fn query_status(e: sundial_query::Error) -> Status {
    status(e.class(), e.to_string())
}

/// Splits a series into messages of about [`SERIES_CHUNK_VALUES`] values per
/// field, cut at the same times in every field so each continues in order.
fn series_messages(s: &sundial_query::SeriesRead, out: &mut Vec<pb::SeriesData>) {
    let tags = read_wire::tags_to_pb(&s.tags);
    let longest = s
        .fields
        .iter()
        .map(|(_, c)| c.times.as_slice())
        .max_by_key(|t| t.len())
        .unwrap_or_default();
    // Where the second, third, … message starts.
    let cuts: Vec<i64> = longest
        .iter()
        .step_by(SERIES_CHUNK_VALUES)
        .skip(1)
        .copied()
        .collect();
    let mut from = i64::MIN;
    for k in 0..=cuts.len() {
        let to = cuts.get(k).copied();
        let fields = s
            .fields
            .iter()
            .filter_map(|(n, c)| {
                let lo = c.times.partition_point(|&t| t < from);
                let hi = to.map_or(c.len(), |to| c.times.partition_point(|&t| t < to));
                (lo < hi).then(|| read_wire::column_to_pb(n, c, lo, hi))
            })
            .collect();
        out.push(pb::SeriesData {
            tags: tags.clone(),
            fields,
        });
        if let Some(to) = to {
            from = to;
        }
    }
}

#[tonic::async_trait]
impl Svc for StoreService {
    type ReadShardStream = ReceiverStream<Result<pb::ReadShardResponse, Status>>;
    type ReadSeriesStream = Answer<pb::ReadSeriesResponse>;
    type ReadPartialsStream = Answer<pb::ReadPartialsResponse>;
    type ListSeriesStream =
        tokio_stream::Iter<std::vec::IntoIter<Result<pb::ListSeriesResponse, Status>>>;

    async fn list_series(
        &self,
        req: Request<pb::ListSeriesRequest>,
    ) -> Result<Response<Self::ListSeriesStream>, Status> {
        let parent = telemetry::extract_metadata(req.metadata());
        let r = req.into_inner();
        let id = r.shard_id;
        self.readable(id).await?;
        let list =
            read_wire::series_request_from_pb(r).map_err(|m| status(ErrorClass::BadRequest, m))?;
        let span = tracing::info_span!(
            "store.ListSeries",
            otel.kind = "server",
            node_id = self.node_id,
            shard_id = id,
            series = tracing::field::Empty,
        );
        telemetry::set_parent(&span, parent, self.trusted_callers);
        // A big shard's listing (regexes over every key) would hold a
        // runtime worker: the blocking pool does it.
        let store = self.store.clone();
        let msgs = tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            let keys = crate::query::list_series(&store, id, &list).map_err(query_status)?;
            span.record("series", keys.len());
            Ok::<_, Status>(read_wire::series_key_messages(&keys))
        })
        .await
        .map_err(|e| status(ErrorClass::Internal, format!("listing task failed: {e}")))??;
        Ok(Response::new(tokio_stream::iter(
            msgs.into_iter().map(Ok).collect::<Vec<_>>(),
        )))
    }

    async fn read_partials(
        &self,
        req: Request<pb::ReadPartialsRequest>,
    ) -> Result<Response<Self::ReadPartialsStream>, Status> {
        let parent = telemetry::extract_metadata(req.metadata());
        let r = req.into_inner();
        let read = r
            .read
            .ok_or_else(|| status(ErrorClass::BadRequest, "ReadPartials without a read"))?;
        let id = read.shard_id;
        self.readable(id).await?;
        let preq = sundial_query::partial::PartialRequest {
            read: read_wire::read_from_pb(read).map_err(|m| status(ErrorClass::BadRequest, m))?,
            interval: r.interval,
            offset: r.offset,
        };
        let span = tracing::info_span!(
            "store.ReadPartials",
            otel.kind = "server",
            node_id = self.node_id,
            shard_id = id,
        );
        telemetry::set_parent(&span, parent, self.trusted_callers);
        let (mut out, rx) =
            Chunks::new(read_wire::PARTIAL_CHUNK_WINDOWS, |series, schema_stamp| {
                pb::ReadPartialsResponse {
                    series,
                    schema_stamp,
                }
            });
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            let series = match crate::query::partials(&store, id, &preq) {
                Ok(s) => s,
                Err(e) => return out.fail(query_status(e)),
            };
            for s in &series {
                let mut msgs = Vec::new();
                read_wire::partials_messages(s, &mut msgs);
                for m in msgs {
                    let windows = m.fields.iter().map(|f| f.windows.len()).sum();
                    if !out.push(m, windows) {
                        return;
                    }
                }
            }
            out.finish(store.schema_stamp(id).unwrap_or(0));
        });
        Ok(Response::new(Answer::first(rx).await))
    }

    async fn measurements(
        &self,
        req: Request<pb::MeasurementsRequest>,
    ) -> Result<Response<pb::MeasurementsResponse>, Status> {
        let ids = req.into_inner().shard_ids;
        let store = self.store.clone();
        let names = tokio::task::spawn_blocking(move || crate::query::measurements(&store, &ids))
            .await
            .map_err(|e| status(ErrorClass::Internal, format!("read task failed: {e}")))?
            .map_err(query_status)?;
        Ok(Response::new(pb::MeasurementsResponse { names }))
    }

    async fn schema(
        &self,
        req: Request<pb::SchemaRequest>,
    ) -> Result<Response<pb::SchemaResponse>, Status> {
        let r = req.into_inner();
        // In-memory lookups: no hop to the blocking pool. Stamps first, so a
        // stamp never names a state older than the schema read after it.
        let stamps = r
            .shard_ids
            .iter()
            .filter_map(|&id| {
                let stamp = self.store.schema_stamp(id).ok()?;
                Some(pb::ShardStamp {
                    shard_id: id,
                    stamp,
                })
            })
            .collect();
        let schema = crate::query::schema(&self.store, &r.shard_ids, &r.measurement)
            .map_err(query_status)?;
        Ok(Response::new(pb::SchemaResponse {
            stamps,
            fields: schema
                .fields
                .into_iter()
                .map(|(name, t)| pb::FieldSchema {
                    name,
                    type_code: read_wire::type_code(t),
                })
                .collect(),
            tags: schema.tags,
        }))
    }

    async fn read_series(
        &self,
        req: Request<pb::ReadSeriesRequest>,
    ) -> Result<Response<Self::ReadSeriesStream>, Status> {
        let parent = telemetry::extract_metadata(req.metadata());
        let r = req.into_inner();
        self.readable(r.shard_id).await?;
        let shard_id = r.shard_id;
        let read = read_wire::read_from_pb(r).map_err(|m| status(ErrorClass::BadRequest, m))?;
        let span = tracing::info_span!(
            "store.ReadSeries",
            otel.kind = "server",
            node_id = self.node_id,
            shard_id,
            series = tracing::field::Empty,
        );
        telemetry::set_parent(&span, parent, self.trusted_callers);
        // A small channel: the scan waits for the gateway instead of buffering.
        let (mut out, rx) = Chunks::new(SERIES_CHUNK_VALUES, |series, schema_stamp| {
            pb::ReadSeriesResponse {
                series,
                schema_stamp,
            }
        });
        let (store, id) = (self.store.clone(), shard_id);
        tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            let mut count = 0u64;
            let res = crate::query::for_each_series(&store, id, &read, &mut |s| {
                count += 1;
                let mut msgs = Vec::new();
                series_messages(&s, &mut msgs);
                msgs.into_iter().all(|m| {
                    let values = m.fields.iter().map(|c| c.times.len()).sum();
                    out.push(m, values)
                })
            });
            span.record("series", count);
            match res {
                Ok(()) => out.finish(store.schema_stamp(id).unwrap_or(0)),
                Err(e) => out.fail(query_status(e)),
            }
        });
        Ok(Response::new(Answer::first(rx).await))
    }

    async fn read_shard(
        &self,
        req: Request<pb::ReadShardRequest>,
    ) -> Result<Response<Self::ReadShardStream>, Status> {
        let r = req.into_inner();
        self.readable(r.shard_id).await?;
        let (start, end) = (r.start.unwrap_or(i64::MIN), r.end.unwrap_or(i64::MAX));
        // A small channel: the reader waits for the client instead of buffering the
        // whole shard.
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let (store, id) = (self.store.clone(), r.shard_id);
        let span = tracing::info_span!("store.ReadShard", node_id = self.node_id, shard_id = id);
        tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            let mut chunk: Vec<OwnedPoint> = Vec::with_capacity(READ_CHUNK);
            let send = |chunk: &mut Vec<OwnedPoint>| {
                let mut buf = Vec::new();
                encode_owned(chunk, &mut buf);
                chunk.clear();
                tx.blocking_send(Ok(pb::ReadShardResponse { points: buf.into() }))
                    .is_ok()
            };
            let res = crate::export::for_each_point(&store, id, start, end, &mut |p| {
                chunk.push(p);
                chunk.len() < READ_CHUNK || send(&mut chunk)
            });
            match res {
                Ok(_) if !chunk.is_empty() => {
                    send(&mut chunk);
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(status(e.class(), e.to_string())));
                }
            }
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    async fn write_to_shard(
        &self,
        req: Request<pb::WriteToShardRequest>,
    ) -> Result<Response<pb::WriteToShardResponse>, Status> {
        let parent = telemetry::extract_metadata(req.metadata());
        let r = req.into_inner();
        let span = tracing::info_span!(
            "store.WriteToShard",
            otel.kind = "server",
            node_id = self.node_id,
            shard_id = r.shard_id,
            bytes = r.points.len(),
            points = tracing::field::Empty,
        );
        telemetry::set_parent(&span, parent, self.trusted_callers);
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
        let (deletes, meta, node) = (self.deletes.clone(), self.meta.clone(), self.node_id);
        let outcome = tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            // A delete this node missed while it was down goes first.
            deletes
                .catch_up(&meta, node, id)
                .map_err(|e| status(e.class(), e.to_string()))?;
            let decoded = decode_points(&r.points, &limits)
                .map_err(|e| status(ErrorClass::BadRequest, e.to_string()))?;
            span.record("points", decoded.len());
            store
                .ensure_shard(id, &database)
                .map_err(|e| engine_status(&e))?;
            deletes.write_guarded(id, r.accepted_ms, decoded.points(), |points| {
                store
                    .write_to_shard(id, points)
                    .map_err(|e| engine_status(&e))
            })
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

    async fn delete_series(
        &self,
        req: Request<pb::DeleteSeriesRequest>,
    ) -> Result<Response<pb::DeleteSeriesResponse>, Status> {
        let parent = telemetry::extract_metadata(req.metadata());
        let r = req.into_inner();
        let span = tracing::info_span!(
            "store.DeleteSeries",
            otel.kind = "server",
            node_id = self.node_id,
            shard_id = r.shard_id,
            delete_id = r.delete_id,
        );
        telemetry::set_parent(&span, parent, self.trusted_callers);
        let deletes = self.deletes.clone();
        let series = tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            deletes.apply(&r)
        })
        .await
        .map_err(|e| status(ErrorClass::Internal, format!("delete task failed: {e}")))?
        .map_err(|e| status(e.class(), e.to_string()))?;
        Ok(Response::new(pb::DeleteSeriesResponse { series }))
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

#[cfg(test)]
mod tests;
