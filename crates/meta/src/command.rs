//! Mutations as one command type: [`pb::Command`] (a protobuf `oneof`, see
//! `proto/meta.proto`) applied by [`MetaStore::apply`]. The transports and the gRPC
//! service pass commands through unchanged, so a new mutation is one variant in the
//! proto, one arm here and one typed method on [`MetaClient`](crate::MetaClient).
//!
//! Also the conversions between prost messages and the domain types.

use sundial_proto::meta as pb;
use sundial_proto::meta::applied::Result as Out;
use sundial_proto::meta::command::Op;

use crate::error::{Error, Result};
use crate::model::{
    NodeInfo, PendingDelete, Privilege, RetentionPolicySpec, RetentionPolicyUpdate, ShardGroupInfo,
    ShardInfo,
};
use crate::store::MetaStore;

impl MetaStore {
    /// Applies one command: each is a single transaction (or nothing).
    pub async fn apply(&self, cmd: pb::Command) -> Result<pb::Applied> {
        let op = cmd
            .op
            .ok_or_else(|| Error::InvalidArgument("empty meta command".into()))?;
        let done = |revision: i64| pb::Applied {
            revision,
            result: None,
        };
        let group = |(g, revision): (ShardGroupInfo, i64)| pb::Applied {
            revision,
            result: Some(Out::Group(pb::ShardGroup::from(&g))),
        };
        let groups = |(gs, revision): (Vec<ShardGroupInfo>, i64)| pb::Applied {
            revision,
            result: Some(Out::Groups(pb::ShardGroupList {
                groups: gs.iter().map(pb::ShardGroup::from).collect(),
            })),
        };
        Ok(match op {
            Op::CreateDatabase(r) => done(
                self.create_database(&r.name, r.policy.map(RetentionPolicySpec::from))
                    .await?,
            ),
            Op::DropDatabase(r) => done(self.drop_database(&r.name).await?),
            Op::CreateRetentionPolicy(r) => {
                let spec = r.spec.ok_or_else(|| {
                    Error::InvalidArgument("retention policy spec required".into())
                })?;
                done(
                    self.create_retention_policy(&r.database, spec.into(), r.make_default)
                        .await?,
                )
            }
            Op::AlterRetentionPolicy(r) => {
                let update = RetentionPolicyUpdate {
                    duration: r.duration,
                    shard_group_duration: r.shard_group_duration,
                    replication_factor: r.replication_factor,
                    make_default: r.make_default,
                };
                done(
                    self.alter_retention_policy(&r.database, &r.name, update)
                        .await?,
                )
            }
            Op::DropRetentionPolicy(r) => {
                done(self.drop_retention_policy(&r.database, &r.name).await?)
            }
            Op::CreateShardGroup(r) => group(
                self.create_shard_group(&r.database, &r.retention_policy, r.timestamp)
                    .await?,
            ),
            Op::DeleteExpiredShardGroups(r) => {
                groups(self.delete_expired_shard_groups(r.now).await?)
            }
            Op::PrecreateShardGroups(r) => {
                groups(self.precreate_shard_groups(r.now, r.advance).await?)
            }
            Op::SetShardOwners(r) => group(self.set_shard_owners(r.shard_id, &r.owners).await?),
            Op::RegisterNode(r) => {
                let (n, revision) = self.register_node(r.id, &r.grpc_addr, &r.http_addr).await?;
                pb::Applied {
                    revision,
                    result: Some(Out::Node(pb::Node::from(&n))),
                }
            }
            Op::Heartbeat(r) => done(self.heartbeat(r.node_id, r.ttl_seconds).await?),
            Op::DeleteNode(r) => done(self.delete_node(r.node_id).await?),
            Op::CreateUser(r) => done(self.create_user(&r.name, &r.password, r.admin).await?),
            Op::DropUser(r) => done(self.drop_user(&r.name).await?),
            Op::SetPassword(r) => done(self.set_password(&r.name, &r.password).await?),
            Op::SetAdmin(r) => done(self.set_admin(&r.name, r.admin).await?),
            Op::GrantPrivilege(r) => {
                let p = privilege_from_wire(r.privilege)?;
                done(self.grant_privilege(&r.user, &r.database, p).await?)
            }
            Op::RevokePrivilege(r) => {
                let p = privilege_from_wire(r.privilege)?;
                done(self.revoke_privilege(&r.user, &r.database, p).await?)
            }
            Op::CreateContinuousQuery(r) => done(
                self.create_continuous_query(&r.database, &r.name, &r.query)
                    .await?,
            ),
            Op::DropContinuousQuery(r) => {
                done(self.drop_continuous_query(&r.database, &r.name).await?)
            }
            Op::HoldLease(r) => {
                let held = self.hold_lease(&r.name, &r.holder, r.ttl_seconds).await?;
                pb::Applied {
                    revision: 0,
                    result: Some(Out::Held(held)),
                }
            }
            Op::AddPendingDeletes(r) => {
                let ds: Vec<PendingDelete> =
                    r.deletes.into_iter().map(PendingDelete::from).collect();
                done(self.add_pending_deletes(&ds).await?)
            }
            Op::ClearPendingDeletes(r) => {
                let ks: Vec<(u64, u64, u64)> = r
                    .keys
                    .iter()
                    .map(|k| (k.node_id, k.shard_id, k.id))
                    .collect();
                done(self.clear_pending_deletes(&ks).await?)
            }
        })
    }
}

/// The command's name, for spans and logs.
pub(crate) fn command_name(op: &Op) -> &'static str {
    match op {
        Op::CreateDatabase(_) => "create_database",
        Op::DropDatabase(_) => "drop_database",
        Op::CreateRetentionPolicy(_) => "create_retention_policy",
        Op::AlterRetentionPolicy(_) => "alter_retention_policy",
        Op::DropRetentionPolicy(_) => "drop_retention_policy",
        Op::CreateShardGroup(_) => "create_shard_group",
        Op::DeleteExpiredShardGroups(_) => "delete_expired_shard_groups",
        Op::PrecreateShardGroups(_) => "precreate_shard_groups",
        Op::SetShardOwners(_) => "set_shard_owners",
        Op::RegisterNode(_) => "register_node",
        Op::Heartbeat(_) => "heartbeat",
        Op::DeleteNode(_) => "delete_node",
        Op::CreateUser(_) => "create_user",
        Op::DropUser(_) => "drop_user",
        Op::SetPassword(_) => "set_password",
        Op::SetAdmin(_) => "set_admin",
        Op::GrantPrivilege(_) => "grant_privilege",
        Op::RevokePrivilege(_) => "revoke_privilege",
        Op::CreateContinuousQuery(_) => "create_continuous_query",
        Op::DropContinuousQuery(_) => "drop_continuous_query",
        Op::HoldLease(_) => "hold_lease",
        Op::AddPendingDeletes(_) => "add_pending_deletes",
        Op::ClearPendingDeletes(_) => "clear_pending_deletes",
    }
}

// ------------------------------------------------------------------ results

fn missing(what: &str) -> Error {
    Error::Internal(format!("meta command returned no {what}"))
}

/// The shard group a command returned.
pub(crate) fn applied_group(a: pb::Applied) -> Result<ShardGroupInfo> {
    match a.result {
        Some(Out::Group(g)) => Ok(g.into()),
        _ => Err(missing("shard group")),
    }
}

/// The shard groups a command returned.
pub(crate) fn applied_groups(a: pb::Applied) -> Result<Vec<ShardGroupInfo>> {
    match a.result {
        Some(Out::Groups(l)) => Ok(l.groups.into_iter().map(Into::into).collect()),
        _ => Err(missing("shard groups")),
    }
}

/// The node a command returned.
pub(crate) fn applied_node(a: pb::Applied) -> Result<NodeInfo> {
    match a.result {
        Some(Out::Node(n)) => Ok(n.into()),
        _ => Err(missing("node")),
    }
}

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

impl From<pb::PendingDelete> for PendingDelete {
    fn from(d: pb::PendingDelete) -> Self {
        use base64::Engine as _;
        PendingDelete {
            id: d.id,
            node: d.node_id,
            shard: d.shard_id,
            database: d.database,
            issued_ms: d.issued_ms,
            request: base64::engine::general_purpose::STANDARD.encode(&d.request),
        }
    }
}

impl PendingDelete {
    /// Sets the store's encoded `DeleteSeriesRequest`.
    pub fn with_request(mut self, bytes: &[u8]) -> Self {
        use base64::Engine as _;
        self.request = base64::engine::general_purpose::STANDARD.encode(bytes);
        self
    }

    /// The store's encoded `DeleteSeriesRequest`; `None` when `request` is not
    /// base64 (a damaged record).
    pub fn request_bytes(&self) -> Option<Vec<u8>> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&self.request)
            .ok()
    }

    fn to_wire(&self) -> pb::PendingDelete {
        pb::PendingDelete {
            id: self.id,
            node_id: self.node,
            shard_id: self.shard,
            database: self.database.clone(),
            issued_ms: self.issued_ms,
            request: self.request_bytes().unwrap_or_default(),
        }
    }
}

impl From<&PendingDelete> for pb::PendingDelete {
    fn from(d: &PendingDelete) -> Self {
        d.to_wire()
    }
}
