//! [`MetaClient`]'s mutations: each one command through the transport (bounded),
//! then read-your-writes; and the background liveness heartbeat.

use std::time::Duration;

use sundial_proto::meta as pb;
use sundial_proto::meta::command::Op;

use super::{AbortOnDrop, HeartbeatHandle, MetaClient};
use crate::command::{applied_group, applied_groups, applied_node};
use crate::error::{Error, Result};
use crate::model::{
    NodeId, NodeInfo, PendingDelete, Privilege, RetentionPolicySpec, RetentionPolicyUpdate,
    ShardGroupInfo, ShardId,
};

impl MetaClient {
    // ------------------------------------------------------------------ mutations

    /// Reloads the whole snapshot from the store now (bounded), for decisions that
    /// must not rest on a cache that may lag, like deleting data.
    pub async fn refresh(&self) -> Result<()> {
        self.shared.resync().await
    }

    /// Read-your-writes: waits until the cache holds revision `rev`. With the watch
    /// down (or too slow) the snapshot is reloaded instead (bounded); failing that the
    /// cache catches up when the watch is back.
    async fn settle(&self, rev: i64) {
        if rev <= 0 || self.revision() >= rev {
            return;
        }
        let t = self.shared.opts.request_timeout;
        if self.is_connected() && self.wait_for_revision(rev, t).await {
            return;
        }
        if let Err(e) = self.shared.resync().await {
            tracing::warn!(rev, error = %e, "meta cache could not catch up with own write");
        }
    }

    /// Sends one command (bounded), then waits until the cache shows its effect.
    async fn apply(&self, what: &str, op: Op) -> Result<pb::Applied> {
        let t = self.shared.transport.clone();
        let cmd = pb::Command { op: Some(op) };
        let applied = self.shared.bounded(what, t.apply(cmd)).await?;
        self.settle(applied.revision).await;
        Ok(applied)
    }

    /// Creates a database with `autogen` (existing: no-op).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_database(&self, name: &str) -> Result<()> {
        let op = Op::CreateDatabase(pb::CreateDatabaseRequest {
            name: name.into(),
            policy: None,
        });
        self.apply("create database", op).await.map(drop)
    }

    /// `CREATE DATABASE .. WITH ..`: creates a database whose default policy is `spec`.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_database_with_policy(
        &self,
        name: &str,
        spec: RetentionPolicySpec,
    ) -> Result<()> {
        let op = Op::CreateDatabase(pb::CreateDatabaseRequest {
            name: name.into(),
            policy: Some((&spec).into()),
        });
        self.apply("create database", op).await.map(drop)
    }

    /// Drops a database (missing: no-op).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn drop_database(&self, name: &str) -> Result<()> {
        let op = Op::DropDatabase(pb::DropDatabaseRequest { name: name.into() });
        self.apply("drop database", op).await.map(drop)
    }

    /// Creates a retention policy.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_retention_policy(
        &self,
        db: &str,
        spec: RetentionPolicySpec,
        make_default: bool,
    ) -> Result<()> {
        let op = Op::CreateRetentionPolicy(pb::CreateRetentionPolicyRequest {
            database: db.into(),
            spec: Some((&spec).into()),
            make_default,
        });
        self.apply("create retention policy", op).await.map(drop)
    }

    /// Alters a retention policy.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn alter_retention_policy(
        &self,
        db: &str,
        name: &str,
        update: RetentionPolicyUpdate,
    ) -> Result<()> {
        let op = Op::AlterRetentionPolicy(pb::AlterRetentionPolicyRequest {
            database: db.into(),
            name: name.into(),
            duration: update.duration,
            shard_group_duration: update.shard_group_duration,
            replication_factor: update.replication_factor,
            make_default: update.make_default,
        });
        self.apply("alter retention policy", op).await.map(drop)
    }

    /// Makes `name` the default policy of `db`.
    pub async fn set_default_retention_policy(&self, db: &str, name: &str) -> Result<()> {
        self.alter_retention_policy(
            db,
            name,
            RetentionPolicyUpdate {
                make_default: true,
                ..Default::default()
            },
        )
        .await
    }

    /// Drops a retention policy and its shard groups.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn drop_retention_policy(&self, db: &str, name: &str) -> Result<()> {
        let op = Op::DropRetentionPolicy(pb::DropRetentionPolicyRequest {
            database: db.into(),
            name: name.into(),
        });
        self.apply("drop retention policy", op).await.map(drop)
    }

    /// Creates (or returns the existing) shard group holding `t`.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_shard_group(&self, db: &str, rp: &str, t: i64) -> Result<ShardGroupInfo> {
        let op = Op::CreateShardGroup(pb::CreateShardGroupRequest {
            database: db.into(),
            retention_policy: rp.into(),
            timestamp: t,
        });
        applied_group(self.apply("create shard group", op).await?)
    }

    /// Replaces a shard's owners (after its data was copied to the new ones).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn set_shard_owners(
        &self,
        shard_id: crate::model::ShardId,
        owners: &[NodeId],
    ) -> Result<ShardGroupInfo> {
        let op = Op::SetShardOwners(pb::SetShardOwnersRequest {
            shard_id,
            owners: owners.to_vec(),
        });
        applied_group(self.apply("set shard owners", op).await?)
    }

    /// Retention: deletes expired shard groups; returns them (drop their shards).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn delete_expired_shard_groups(&self, now: i64) -> Result<Vec<ShardGroupInfo>> {
        let op = Op::DeleteExpiredShardGroups(pb::DeleteExpiredShardGroupsRequest { now });
        applied_groups(self.apply("delete expired shard groups", op).await?)
    }

    /// Precreation: creates the next group of every policy whose newest group ends
    /// within `advance` of `now`. Returns the groups created.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn precreate_shard_groups(
        &self,
        now: i64,
        advance: Duration,
    ) -> Result<Vec<ShardGroupInfo>> {
        let advance = i64::try_from(advance.as_nanos()).unwrap_or(i64::MAX);
        let op = Op::PrecreateShardGroups(pb::PrecreateShardGroupsRequest { now, advance });
        applied_groups(self.apply("precreate shard groups", op).await?)
    }

    /// Registers this store node (or updates its addresses).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn register_node(
        &self,
        id: Option<NodeId>,
        grpc_addr: &str,
        http_addr: &str,
    ) -> Result<NodeInfo> {
        let op = Op::RegisterNode(pb::RegisterNodeRequest {
            id,
            grpc_addr: grpc_addr.into(),
            http_addr: http_addr.into(),
        });
        applied_node(self.apply("register node", op).await?)
    }

    /// One liveness heartbeat (see [`MetaStore::heartbeat`](crate::MetaStore::heartbeat)).
    pub async fn heartbeat(&self, node_id: NodeId, ttl: Duration) -> Result<()> {
        let ttl_seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let op = Op::Heartbeat(pb::HeartbeatRequest {
            node_id,
            ttl_seconds,
        });
        self.apply("heartbeat", op).await.map(drop)
    }

    /// Takes or renews the leadership `name` for `holder` for `ttl`; true
    /// while `holder` has it (see [`MetaStore::hold_lease`](crate::MetaStore::hold_lease)).
    pub async fn hold_lease(&self, name: &str, holder: &str, ttl: Duration) -> Result<bool> {
        let op = Op::HoldLease(pb::HoldLeaseRequest {
            name: name.into(),
            holder: holder.into(),
            ttl_seconds: i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX),
        });
        match self.apply("hold lease", op).await?.result {
            Some(sundial_proto::meta::applied::Result::Held(h)) => Ok(h),
            _ => Err(Error::Internal("hold lease: no answer".into())),
        }
    }

    /// Adds a continuous query (`query`: the normalised statement).
    pub async fn create_continuous_query(&self, db: &str, name: &str, query: &str) -> Result<()> {
        let op = Op::CreateContinuousQuery(pb::ContinuousQueryRequest {
            database: db.into(),
            name: name.into(),
            query: query.into(),
        });
        self.apply("create continuous query", op).await.map(drop)
    }

    /// Removes a continuous query (none there: no error).
    pub async fn drop_continuous_query(&self, db: &str, name: &str) -> Result<()> {
        let op = Op::DropContinuousQuery(pb::ContinuousQueryRequest {
            database: db.into(),
            name: name.into(),
            query: String::new(),
        });
        self.apply("drop continuous query", op).await.map(drop)
    }

    /// Registers deletes owners have yet to apply.
    pub async fn add_pending_deletes(&self, deletes: &[PendingDelete]) -> Result<()> {
        if deletes.is_empty() {
            return Ok(());
        }
        let op = Op::AddPendingDeletes(pb::PendingDeletes {
            deletes: deletes.iter().map(pb::PendingDelete::from).collect(),
        });
        self.apply("add pending deletes", op).await.map(drop)
    }

    /// Removes pending deletes by (node, shard, id).
    pub async fn clear_pending_deletes(&self, keys: &[(NodeId, ShardId, u64)]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let op = Op::ClearPendingDeletes(pb::PendingDeleteKeys {
            keys: keys
                .iter()
                .map(|&(node_id, shard_id, id)| pb::PendingDeleteKey {
                    id,
                    node_id,
                    shard_id,
                })
                .collect(),
        });
        self.apply("clear pending deletes", op).await.map(drop)
    }

    /// Removes a node that owns no shard any more.
    pub async fn delete_node(&self, node_id: NodeId) -> Result<()> {
        let op = Op::DeleteNode(pb::DeleteNodeRequest { node_id });
        self.apply("delete node", op).await.map(drop)
    }

    /// Heartbeats every `ttl / 3` in the background until the handle is dropped.
    pub fn start_heartbeat(&self, node_id: NodeId, ttl: Duration) -> HeartbeatHandle {
        let client = self.clone();
        let every = (ttl / 3).max(Duration::from_millis(100));
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = client.heartbeat(node_id, ttl).await {
                    tracing::warn!(node_id, error = %e, "meta heartbeat failed");
                }
            }
        });
        HeartbeatHandle(AbortOnDrop(task))
    }

    /// Creates a user.
    #[tracing::instrument(skip(self, password), err(level = "debug"))]
    pub async fn create_user(&self, name: &str, password: &str, admin: bool) -> Result<()> {
        let op = Op::CreateUser(pb::CreateUserRequest {
            name: name.into(),
            password: password.into(),
            admin,
        });
        self.apply("create user", op).await.map(drop)
    }

    /// Drops a user.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn drop_user(&self, name: &str) -> Result<()> {
        let op = Op::DropUser(pb::DropUserRequest { name: name.into() });
        self.apply("drop user", op).await.map(drop)
    }

    /// Sets a user's password.
    #[tracing::instrument(skip(self, password), err(level = "debug"))]
    pub async fn set_password(&self, name: &str, password: &str) -> Result<()> {
        let op = Op::SetPassword(pb::SetPasswordRequest {
            name: name.into(),
            password: password.into(),
        });
        self.apply("set password", op).await.map(drop)
    }

    /// Grants or removes admin.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn set_admin(&self, name: &str, admin: bool) -> Result<()> {
        let op = Op::SetAdmin(pb::SetAdminRequest {
            name: name.into(),
            admin,
        });
        self.apply("set admin", op).await.map(drop)
    }

    /// `GRANT p ON db TO user`.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn grant_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<()> {
        let op = Op::GrantPrivilege(privilege_request(user, db, p));
        self.apply("grant", op).await.map(drop)
    }

    /// `REVOKE p ON db FROM user`.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn revoke_privilege(&self, user: &str, db: &str, p: Privilege) -> Result<()> {
        let op = Op::RevokePrivilege(privilege_request(user, db, p));
        self.apply("revoke", op).await.map(drop)
    }
}

fn privilege_request(user: &str, db: &str, p: Privilege) -> pb::PrivilegeRequest {
    pb::PrivilegeRequest {
        user: user.into(),
        database: db.into(),
        privilege: pb::Privilege::from(p) as i32,
    }
}
