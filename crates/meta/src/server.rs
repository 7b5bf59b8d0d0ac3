//! The gRPC `MetaService` (served by the `sundial-meta` binary) and the conversions
//! between prost messages and domain types (shared with the remote client).
//!
//! The service keeps no state of its own: each rpc runs a [`MetaStore`] operation over
//! the backend (etcd), so any number of `sundial-meta` processes can serve one etcd.

use std::net::SocketAddr;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use sundial_common::secret::SecretCheck;
use sundial_proto::meta as pb;
use sundial_proto::meta::meta_service_server::{MetaService, MetaServiceServer};
use tokio::net::TcpListener;
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use crate::client::MetaTransport;
use crate::error::{Error, Result};
use crate::model::{
    NodeInfo, Privilege, RetentionPolicySpec, RetentionPolicyUpdate, ShardGroupInfo, ShardInfo,
};
use crate::store::MetaStore;

// ------------------------------------------------------------------ conversions

impl From<&ShardGroupInfo> for pb::ShardGroup {
    fn from(g: &ShardGroupInfo) -> Self {
        pb::ShardGroup {
            id: g.id,
            database: g.database.clone(),
            retention_policy: g.retention_policy.clone(),
            start: g.start,
            end: g.end,
            shards: g
                .shards
                .iter()
                .map(|s| pb::Shard {
                    id: s.id,
                    owners: s.owners.clone(),
                })
                .collect(),
        }
    }
}

impl From<pb::ShardGroup> for ShardGroupInfo {
    fn from(g: pb::ShardGroup) -> Self {
        ShardGroupInfo {
            id: g.id,
            database: g.database,
            retention_policy: g.retention_policy,
            start: g.start,
            end: g.end,
            shards: g
                .shards
                .into_iter()
                .map(|s| ShardInfo {
                    id: s.id,
                    owners: s.owners,
                })
                .collect(),
        }
    }
}

impl From<&NodeInfo> for pb::Node {
    fn from(n: &NodeInfo) -> Self {
        pb::Node {
            id: n.id,
            grpc_addr: n.grpc_addr.clone(),
            http_addr: n.http_addr.clone(),
        }
    }
}

impl From<pb::Node> for NodeInfo {
    fn from(n: pb::Node) -> Self {
        NodeInfo {
            id: n.id,
            grpc_addr: n.grpc_addr,
            http_addr: n.http_addr,
        }
    }
}

impl From<&RetentionPolicySpec> for pb::RetentionPolicySpec {
    fn from(s: &RetentionPolicySpec) -> Self {
        pb::RetentionPolicySpec {
            name: s.name.clone(),
            duration: s.duration,
            shard_group_duration: s.shard_group_duration,
            replication_factor: s.replication_factor,
        }
    }
}

impl From<pb::RetentionPolicySpec> for RetentionPolicySpec {
    fn from(s: pb::RetentionPolicySpec) -> Self {
        RetentionPolicySpec {
            name: s.name,
            duration: s.duration,
            shard_group_duration: s.shard_group_duration,
            replication_factor: s.replication_factor,
        }
    }
}

impl From<Privilege> for pb::Privilege {
    fn from(p: Privilege) -> Self {
        match p {
            Privilege::None => pb::Privilege::None,
            Privilege::Read => pb::Privilege::Read,
            Privilege::Write => pb::Privilege::Write,
            Privilege::All => pb::Privilege::All,
        }
    }
}

/// Decodes a wire privilege (unknown values are a bad request).
pub(crate) fn privilege_from_wire(v: i32) -> Result<Privilege> {
    match pb::Privilege::try_from(v) {
        Ok(pb::Privilege::None) => Ok(Privilege::None),
        Ok(pb::Privilege::Read) => Ok(Privilege::Read),
        Ok(pb::Privilege::Write) => Ok(Privilege::Write),
        Ok(pb::Privilege::All) => Ok(Privilege::All),
        Err(_) => Err(Error::InvalidArgument(format!("invalid privilege {v}"))),
    }
}

// ------------------------------------------------------------------ the service

/// The `MetaService` implementation over a [`MetaStore`].
#[derive(Debug, Clone)]
pub struct MetaServer {
    store: MetaStore,
    secret: Option<String>,
    /// PEM certificate and key to serve TLS with.
    tls: Option<(Vec<u8>, Vec<u8>)>,
}

type GrpcResult<T> = std::result::Result<Response<T>, Status>;

fn mutation(r: Result<i64>) -> GrpcResult<pb::MutationResponse> {
    r.map(|revision| Response::new(pb::MutationResponse { revision }))
        .map_err(Status::from)
}

fn groups(r: Result<(Vec<ShardGroupInfo>, i64)>) -> GrpcResult<pb::ShardGroupsResponse> {
    let (gs, revision) = r?;
    Ok(Response::new(pb::ShardGroupsResponse {
        revision,
        groups: gs.iter().map(pb::ShardGroup::from).collect(),
    }))
}

impl MetaServer {
    /// A service over `store`.
    pub fn new(store: MetaStore) -> Self {
        MetaServer {
            store,
            secret: None,
            tls: None,
        }
    }

    /// Serves over TLS with this PEM certificate (chain) and key.
    pub fn with_tls(mut self, cert: Vec<u8>, key: Vec<u8>) -> Self {
        self.tls = Some((cert, key));
        self
    }

    /// Refuses calls that do not carry the cluster's shared secret.
    pub fn with_secret(mut self, secret: Option<String>) -> Self {
        self.secret = secret.filter(|s| !s.is_empty());
        self
    }

    /// The tonic service to add to a router.
    pub fn into_service(self) -> MetaServiceServer<Self> {
        MetaServiceServer::new(self)
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send,
    ) -> Result<()> {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let check = SecretCheck::new(self.secret.as_deref());
        let mut builder = tonic::transport::Server::builder();
        if let Some((cert, key)) = &self.tls {
            let identity = tonic::transport::Identity::from_pem(cert, key);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .map_err(|e| Error::InvalidArgument(format!("TLS configuration: {e}")))?;
        }
        builder
            .add_service(InterceptedService::new(self.into_service(), check))
            .serve_with_incoming_shutdown(incoming, shutdown)
            .await
            .map_err(|e| Error::Internal(format!("grpc server: {e}")))
    }

    /// Binds `addr` and returns the listener with its actual address (port 0 allowed).
    pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::InvalidArgument(format!("cannot listen on {addr}: {e}")))?;
        let local = l
            .local_addr()
            .map_err(|e| Error::Internal(format!("local addr: {e}")))?;
        Ok((l, local))
    }
}

#[tonic::async_trait]
impl MetaService for MetaServer {
    async fn get_snapshot(
        &self,
        _req: Request<pb::GetSnapshotRequest>,
    ) -> GrpcResult<pb::Snapshot> {
        let (revision, kvs) = self.store.load_all().await?;
        Ok(Response::new(pb::Snapshot {
            revision,
            kvs: kvs
                .into_iter()
                .map(|(key, value)| pb::KeyValue { key, value })
                .collect(),
        }))
    }

    type WatchStream =
        Pin<Box<dyn Stream<Item = std::result::Result<pb::WatchResponse, Status>> + Send>>;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> GrpcResult<Self::WatchStream> {
        let start = req.into_inner().start_revision;
        let s = MetaTransport::watch(&self.store, start).await?;
        let s = s.map(|item| match item {
            Ok((revision, evs)) => Ok(pb::WatchResponse {
                revision,
                events: evs
                    .into_iter()
                    .map(|e| pb::WatchEvent {
                        revision: e.revision,
                        key: e.key,
                        deleted: e.value.is_none(),
                        value: e.value.unwrap_or_default(),
                    })
                    .collect(),
            }),
            Err(e) => Err(Status::from(e)),
        });
        Ok(Response::new(Box::pin(s)))
    }

    async fn create_database(
        &self,
        req: Request<pb::CreateDatabaseRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        mutation(
            self.store
                .create_database(&r.name, r.policy.map(RetentionPolicySpec::from))
                .await,
        )
    }

    async fn drop_database(
        &self,
        req: Request<pb::DropDatabaseRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        mutation(self.store.drop_database(&req.into_inner().name).await)
    }

    async fn create_retention_policy(
        &self,
        req: Request<pb::CreateRetentionPolicyRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        let spec = r
            .spec
            .ok_or_else(|| Status::invalid_argument("retention policy spec required"))?;
        mutation(
            self.store
                .create_retention_policy(&r.database, spec.into(), r.make_default)
                .await,
        )
    }

    async fn alter_retention_policy(
        &self,
        req: Request<pb::AlterRetentionPolicyRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        let update = RetentionPolicyUpdate {
            duration: r.duration,
            shard_group_duration: r.shard_group_duration,
            replication_factor: r.replication_factor,
            make_default: r.make_default,
        };
        mutation(
            self.store
                .alter_retention_policy(&r.database, &r.name, update)
                .await,
        )
    }

    async fn drop_retention_policy(
        &self,
        req: Request<pb::DropRetentionPolicyRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        mutation(self.store.drop_retention_policy(&r.database, &r.name).await)
    }

    async fn create_shard_group(
        &self,
        req: Request<pb::CreateShardGroupRequest>,
    ) -> GrpcResult<pb::ShardGroupResponse> {
        let r = req.into_inner();
        let (g, revision) = self
            .store
            .create_shard_group(&r.database, &r.retention_policy, r.timestamp)
            .await?;
        Ok(Response::new(pb::ShardGroupResponse {
            revision,
            group: Some(pb::ShardGroup::from(&g)),
        }))
    }

    async fn set_shard_owners(
        &self,
        req: Request<pb::SetShardOwnersRequest>,
    ) -> GrpcResult<pb::ShardGroupResponse> {
        let r = req.into_inner();
        let (g, revision) = self.store.set_shard_owners(r.shard_id, &r.owners).await?;
        Ok(Response::new(pb::ShardGroupResponse {
            revision,
            group: Some(pb::ShardGroup::from(&g)),
        }))
    }

    async fn delete_expired_shard_groups(
        &self,
        req: Request<pb::DeleteExpiredShardGroupsRequest>,
    ) -> GrpcResult<pb::ShardGroupsResponse> {
        groups(
            self.store
                .delete_expired_shard_groups(req.into_inner().now)
                .await,
        )
    }

    async fn precreate_shard_groups(
        &self,
        req: Request<pb::PrecreateShardGroupsRequest>,
    ) -> GrpcResult<pb::ShardGroupsResponse> {
        let r = req.into_inner();
        groups(self.store.precreate_shard_groups(r.now, r.advance).await)
    }

    async fn register_node(
        &self,
        req: Request<pb::RegisterNodeRequest>,
    ) -> GrpcResult<pb::NodeResponse> {
        let r = req.into_inner();
        let (n, revision) = self
            .store
            .register_node(r.id, &r.grpc_addr, &r.http_addr)
            .await?;
        Ok(Response::new(pb::NodeResponse {
            revision,
            node: Some(pb::Node::from(&n)),
        }))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        mutation(self.store.heartbeat(r.node_id, r.ttl_seconds).await)
    }

    async fn delete_node(
        &self,
        req: Request<pb::DeleteNodeRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        mutation(self.store.delete_node(req.into_inner().node_id).await)
    }

    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        mutation(self.store.create_user(&r.name, &r.password, r.admin).await)
    }

    async fn drop_user(
        &self,
        req: Request<pb::DropUserRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        mutation(self.store.drop_user(&req.into_inner().name).await)
    }

    async fn set_password(
        &self,
        req: Request<pb::SetPasswordRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        mutation(self.store.set_password(&r.name, &r.password).await)
    }

    async fn set_admin(
        &self,
        req: Request<pb::SetAdminRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        mutation(self.store.set_admin(&r.name, r.admin).await)
    }

    async fn grant_privilege(
        &self,
        req: Request<pb::PrivilegeRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        let p = privilege_from_wire(r.privilege)?;
        mutation(self.store.grant_privilege(&r.user, &r.database, p).await)
    }

    async fn revoke_privilege(
        &self,
        req: Request<pb::PrivilegeRequest>,
    ) -> GrpcResult<pb::MutationResponse> {
        let r = req.into_inner();
        let p = privilege_from_wire(r.privilege)?;
        mutation(self.store.revoke_privilege(&r.user, &r.database, p).await)
    }
}
