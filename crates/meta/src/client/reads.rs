//! [`MetaClient`]'s reads, all served from the cached snapshot, and the write path's
//! shard-group lookup (from the cache, created through the store when missing).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use sundial_common::metrics::{Collect, Emit, Registry};

use super::{now_ns, MetaClient};
use crate::error::{Error, Result};
use crate::model::{
    DatabaseInfo, NodeId, NodeInfo, Privilege, RetentionPolicyInfo, ShardGroupInfo, UserInfo,
};
use crate::snapshot::MetaSnapshot;

impl MetaClient {
    // ------------------------------------------------------------------ cached reads

    /// The current snapshot (cheap: shared).
    pub fn snapshot(&self) -> Arc<MetaSnapshot> {
        self.shared.snap.read().clone()
    }

    /// Revision of the cached snapshot.
    pub fn revision(&self) -> i64 {
        self.shared.revision()
    }

    /// Registers the cache's metrics (`sundial_meta_…`): how stale it may be, its
    /// revision, whether the watch is live and how often it was re-established.
    pub fn register_metrics(&self, registry: &mut Registry) {
        let shared = self.shared.clone();
        let reg = registry.sub_registry_with_prefix("meta");
        reg.register_collector(Box::new(Collect(move |e: &mut Emit<'_>| {
            let connected = shared.connected.load(Ordering::SeqCst);
            let age = shared
                .lost_at
                .lock()
                .map_or(0.0, |t| t.elapsed().as_secs_f64());
            e.gauge_f64(
                "cache_age_seconds",
                "How far the cached metadata may lag the meta store: 0 while the watch is \
                 live, else the time since it was lost.",
                age,
            )?;
            e.gauge(
                "cache_revision",
                "Meta store revision the cache holds.",
                shared.revision(),
            )?;
            e.gauge(
                "watch_connected",
                "1 while the watch on the meta store is established.",
                i64::from(connected),
            )?;
            e.counter(
                "watch_reconnects",
                "Times the watch was re-established after it was lost.",
                shared.watch_reconnects.load(Ordering::Relaxed),
            )
        })));
    }

    /// Whether the watch stream is currently established (cache is live).
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::SeqCst)
    }

    /// Waits until the cache has reached `rev`; false on timeout.
    pub async fn wait_for_revision(&self, rev: i64, timeout: Duration) -> bool {
        let mut rx = self.shared.rev_tx.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|r| *r >= rev))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// A database.
    pub fn database(&self, name: &str) -> Option<DatabaseInfo> {
        self.snapshot().database(name).cloned()
    }

    /// All databases, by name.
    pub fn databases(&self) -> Vec<DatabaseInfo> {
        self.snapshot().databases.values().cloned().collect()
    }

    /// A retention policy (`""` = default) with InfluxDB's not-found errors.
    pub fn retention_policy(&self, db: &str, rp: &str) -> Result<RetentionPolicyInfo> {
        self.snapshot().retention_policy(db, rp).cloned()
    }

    /// Shard groups of a policy (`""` = default), by start time.
    pub fn shard_groups(&self, db: &str, rp: &str) -> Vec<ShardGroupInfo> {
        self.snapshot()
            .shard_groups(db, rp)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Every shard group.
    pub fn all_shard_groups(&self) -> Vec<ShardGroupInfo> {
        self.snapshot()
            .all_shard_groups()
            .into_iter()
            .cloned()
            .collect()
    }

    /// The cached group holding `t`, if any (never touches the network).
    pub fn cached_shard_group(&self, db: &str, rp: &str, t: i64) -> Option<ShardGroupInfo> {
        self.snapshot().shard_group_at(db, rp, t).cloned()
    }

    /// Registered nodes.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.snapshot().nodes.values().cloned().collect()
    }

    /// Nodes with a current liveness lease.
    pub fn live_nodes(&self) -> Vec<NodeInfo> {
        self.snapshot().live_nodes().into_iter().cloned().collect()
    }

    /// A node.
    pub fn node(&self, id: NodeId) -> Option<NodeInfo> {
        self.snapshot().nodes.get(&id).cloned()
    }

    /// Users, by name.
    pub fn users(&self) -> Vec<UserInfo> {
        self.snapshot().users.values().cloned().collect()
    }

    /// A user.
    pub fn user(&self, name: &str) -> Option<UserInfo> {
        self.snapshot().user(name).cloned()
    }

    /// Checks credentials against the cached hash (works while meta is down).
    /// Unknown user or wrong password: `authentication failed`, after the same
    /// argon2 work either way; repeated failures for one name are slowed down.
    /// A password that passed is remembered, so repeated requests skip argon2.
    pub async fn authenticate(&self, name: &str, password: &str) -> Result<UserInfo> {
        let hash = self.snapshot().user(name).map(|u| u.hash.clone());
        if !self
            .shared
            .passwords
            .check(name, hash.as_deref(), password)
            .await
        {
            return Err(Error::AuthenticationFailed);
        }
        // The check may have waited: the user must still be there, with that password.
        self.snapshot()
            .user(name)
            .filter(|u| Some(&u.hash) == hash.as_ref())
            .cloned()
            .ok_or(Error::AuthenticationFailed)
    }

    /// A user's privilege on `db` (admins: ALL).
    pub fn user_privilege(&self, user: &str, db: &str) -> Result<Privilege> {
        let u = self.user(user).ok_or(Error::UserNotFound)?;
        Ok(u.privilege(db))
    }

    /// Whether any user is defined (InfluxDB allows the first admin without auth).
    pub fn has_users(&self) -> bool {
        !self.snapshot().users.is_empty()
    }

    // ----------------------------------------------------------------- write path

    /// The shard group for a point at `t` (ns) in `db`/`rp` (`""` = default): from the
    /// cache when it exists (no network), else created through the meta store.
    /// `Ok(None)` when `t` is older than the policy keeps (the point is dropped).
    pub async fn shard_group_for(
        &self,
        db: &str,
        rp: &str,
        t: i64,
    ) -> Result<Option<ShardGroupInfo>> {
        let snap = self.snapshot();
        if let Ok(rpi) = snap.retention_policy(db, rp) {
            if t < rpi.min_time(now_ns()) {
                return Ok(None);
            }
            if let Some(g) = snap.shard_group_at(db, rp, t) {
                return Ok(Some(g.clone()));
            }
        }
        drop(snap);
        // Not cached (or the database/policy is unknown to the cache): ask the store,
        // which answers with the authoritative group or error.
        let g = self.create_shard_group(db, rp, t).await?;
        Ok(Some(g))
    }
}
