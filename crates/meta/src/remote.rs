//! The remote [`MetaTransport`]: gRPC to a `sundial-meta` server.
//!
//! The channel connects lazily and reconnects by itself; the
//! [`MetaClient`](crate::MetaClient) bounds every call with its request timeout. Errors come back as
//! the exact [`Error`] the server produced (JSON in the status details).

use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use sundial_common::secret::SecretInterceptor;
use sundial_proto::meta as pb;
use sundial_proto::meta::meta_service_client::MetaServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::client::{MetaTransport, RawEvent, RawWatchStream};
use crate::error::{Error, Result};
use crate::model::{
    NodeId, NodeInfo, Privilege, RetentionPolicySpec, RetentionPolicyUpdate, ShardGroupInfo,
};

type Client = MetaServiceClient<InterceptedService<Channel, SecretInterceptor>>;

/// gRPC transport to `sundial-meta`.
#[derive(Debug, Clone)]
pub struct RemoteTransport {
    client: Client,
    endpoint: String,
}

/// The group and revision of a `ShardGroupResponse`.
fn group_response(r: pb::ShardGroupResponse) -> Result<(ShardGroupInfo, i64)> {
    let g = r
        .group
        .ok_or_else(|| Error::Internal("meta server returned no shard group".into()))?;
    Ok((g.into(), r.revision))
}

fn status(s: tonic::Status) -> Error {
    Error::from_status(&s)
}

impl RemoteTransport {
    /// A transport to `endpoints`: one `http://host:port` (or `host:port`), or several
    /// separated by commas — then requests are balanced over the servers that are up,
    /// so one `sundial-meta` going away does not interrupt the client. Does not connect
    /// yet: the first call does, and later calls reconnect as needed.
    pub fn connect(endpoints: &str) -> Result<Self> {
        Self::connect_with(endpoints, None, None)
    }

    /// Like [`RemoteTransport::connect`], sending the cluster's shared secret with
    /// every call, and over TLS verified against `tls_ca` (PEM) when given.
    pub fn connect_with(
        endpoints: &str,
        secret: Option<&str>,
        tls_ca: Option<&[u8]>,
    ) -> Result<Self> {
        let interceptor = SecretInterceptor::new(secret).map_err(Error::InvalidArgument)?;
        let scheme = if tls_ca.is_some() { "https" } else { "http" };
        let mut eps = Vec::new();
        for e in endpoints
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let url = if e.contains("://") {
                e.to_string()
            } else {
                format!("{scheme}://{e}")
            };
            let mut ep = Endpoint::from_shared(url)
                .map_err(|err| Error::InvalidArgument(format!("bad meta endpoint {e:?}: {err}")))?;
            if let Some(ca) = tls_ca {
                let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
                ep = ep
                    .tls_config(tls)
                    .map_err(|err| Error::InvalidArgument(format!("TLS for {e:?}: {err}")))?;
            }
            let ep = ep
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(5))
                .keep_alive_timeout(Duration::from_secs(3))
                .keep_alive_while_idle(true);
            eps.push(ep);
        }
        let channel = match eps.len() {
            0 => return Err(Error::InvalidArgument("no meta endpoint given".into())),
            1 => eps.remove(0).connect_lazy(),
            _ => Channel::balance_list(eps.into_iter()),
        };
        Ok(RemoteTransport {
            client: MetaServiceClient::with_interceptor(channel, interceptor),
            endpoint: endpoints.to_string(),
        })
    }

    /// The server address(es), as given.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    fn c(&self) -> Client {
        self.client.clone()
    }
}

fn privilege(p: Privilege) -> i32 {
    pb::Privilege::from(p) as i32
}

#[async_trait]
impl MetaTransport for RemoteTransport {
    fn name(&self) -> &'static str {
        "remote"
    }

    async fn snapshot(&self) -> Result<(i64, Vec<(String, Vec<u8>)>)> {
        let r = self
            .c()
            .get_snapshot(pb::GetSnapshotRequest {})
            .await
            .map_err(status)?
            .into_inner();
        Ok((
            r.revision,
            r.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        ))
    }

    async fn watch(&self, start_revision: i64) -> Result<RawWatchStream> {
        let s = self
            .c()
            .watch(pb::WatchRequest { start_revision })
            .await
            .map_err(status)?
            .into_inner();
        Ok(s.map(|item| match item {
            Ok(r) => Ok((
                r.revision,
                r.events
                    .into_iter()
                    .map(|e| RawEvent {
                        key: e.key,
                        value: (!e.deleted).then_some(e.value),
                        revision: e.revision,
                    })
                    .collect(),
            )),
            Err(s) => Err(status(s)),
        })
        .boxed())
    }

    async fn create_database(
        &self,
        name: &str,
        policy: Option<RetentionPolicySpec>,
    ) -> Result<i64> {
        let r = self
            .c()
            .create_database(pb::CreateDatabaseRequest {
                name: name.to_string(),
                policy: policy.as_ref().map(pb::RetentionPolicySpec::from),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn drop_database(&self, name: &str) -> Result<i64> {
        let r = self
            .c()
            .drop_database(pb::DropDatabaseRequest {
                name: name.to_string(),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn create_retention_policy(
        &self,
        db: &str,
        spec: RetentionPolicySpec,
        make_default: bool,
    ) -> Result<i64> {
        let r = self
            .c()
            .create_retention_policy(pb::CreateRetentionPolicyRequest {
                database: db.to_string(),
                spec: Some(pb::RetentionPolicySpec::from(&spec)),
                make_default,
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn alter_retention_policy(
        &self,
        db: &str,
        name: &str,
        update: RetentionPolicyUpdate,
    ) -> Result<i64> {
        let r = self
            .c()
            .alter_retention_policy(pb::AlterRetentionPolicyRequest {
                database: db.to_string(),
                name: name.to_string(),
                duration: update.duration,
                shard_group_duration: update.shard_group_duration,
                replication_factor: update.replication_factor,
                make_default: update.make_default,
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn drop_retention_policy(&self, db: &str, name: &str) -> Result<i64> {
        let r = self
            .c()
            .drop_retention_policy(pb::DropRetentionPolicyRequest {
                database: db.to_string(),
                name: name.to_string(),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn create_shard_group(
        &self,
        db: &str,
        rp: &str,
        t: i64,
    ) -> Result<(ShardGroupInfo, i64)> {
        let r = self
            .c()
            .create_shard_group(pb::CreateShardGroupRequest {
                database: db.to_string(),
                retention_policy: rp.to_string(),
                timestamp: t,
            })
            .await
            .map_err(status)?
            .into_inner();
        group_response(r)
    }

    async fn set_shard_owners(
        &self,
        shard_id: crate::model::ShardId,
        owners: &[NodeId],
    ) -> Result<(ShardGroupInfo, i64)> {
        let r = self
            .c()
            .set_shard_owners(pb::SetShardOwnersRequest {
                shard_id,
                owners: owners.to_vec(),
            })
            .await
            .map_err(status)?
            .into_inner();
        group_response(r)
    }

    async fn delete_expired_shard_groups(&self, now: i64) -> Result<(Vec<ShardGroupInfo>, i64)> {
        let r = self
            .c()
            .delete_expired_shard_groups(pb::DeleteExpiredShardGroupsRequest { now })
            .await
            .map_err(status)?
            .into_inner();
        Ok((r.groups.into_iter().map(Into::into).collect(), r.revision))
    }

    async fn precreate_shard_groups(
        &self,
        now: i64,
        advance: i64,
    ) -> Result<(Vec<ShardGroupInfo>, i64)> {
        let r = self
            .c()
            .precreate_shard_groups(pb::PrecreateShardGroupsRequest { now, advance })
            .await
            .map_err(status)?
            .into_inner();
        Ok((r.groups.into_iter().map(Into::into).collect(), r.revision))
    }

    async fn register_node(
        &self,
        id: Option<NodeId>,
        grpc_addr: &str,
        http_addr: &str,
    ) -> Result<(NodeInfo, i64)> {
        let r = self
            .c()
            .register_node(pb::RegisterNodeRequest {
                id,
                grpc_addr: grpc_addr.to_string(),
                http_addr: http_addr.to_string(),
            })
            .await
            .map_err(status)?
            .into_inner();
        let n = r
            .node
            .ok_or_else(|| Error::Internal("meta server returned no node".into()))?;
        Ok((n.into(), r.revision))
    }

    async fn heartbeat(&self, node_id: NodeId, ttl_secs: i64) -> Result<i64> {
        let r = self
            .c()
            .heartbeat(pb::HeartbeatRequest {
                node_id,
                ttl_seconds: ttl_secs,
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn delete_node(&self, node_id: NodeId) -> Result<i64> {
        let r = self
            .c()
            .delete_node(pb::DeleteNodeRequest { node_id })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn create_user(&self, name: &str, password: &str, admin: bool) -> Result<i64> {
        let r = self
            .c()
            .create_user(pb::CreateUserRequest {
                name: name.to_string(),
                password: password.to_string(),
                admin,
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn drop_user(&self, name: &str) -> Result<i64> {
        let r = self
            .c()
            .drop_user(pb::DropUserRequest {
                name: name.to_string(),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn set_password(&self, name: &str, password: &str) -> Result<i64> {
        let r = self
            .c()
            .set_password(pb::SetPasswordRequest {
                name: name.to_string(),
                password: password.to_string(),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn set_admin(&self, name: &str, admin: bool) -> Result<i64> {
        let r = self
            .c()
            .set_admin(pb::SetAdminRequest {
                name: name.to_string(),
                admin,
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn grant_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<i64> {
        let r = self
            .c()
            .grant_privilege(pb::PrivilegeRequest {
                user: user.to_string(),
                database: db.to_string(),
                privilege: privilege(p),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }

    async fn revoke_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<i64> {
        let r = self
            .c()
            .revoke_privilege(pb::PrivilegeRequest {
                user: user.to_string(),
                database: db.to_string(),
                privilege: privilege(p),
            })
            .await
            .map_err(status)?;
        Ok(r.into_inner().revision)
    }
}
