//! [`MetaClient`]: what the gateway and the stores use.
//!
//! It holds the full [`MetaSnapshot`] in memory, kept fresh by a watch stream, and
//! serves every read from it — the write path asks nothing over the network for a
//! shard group that already exists. Mutations go through a [`MetaTransport`]:
//!
//! * [`MetaStore`] itself (local: direct over a [`KvBackend`], used by
//!   the all-in-one `sundial` with the embedded backend, or over etcd);
//! * [`RemoteTransport`](crate::remote::RemoteTransport) (gRPC to `sundial-meta`).
//!
//! Failure behaviour: every transport call is bounded by
//! [`ClientOptions::request_timeout`] (3 s by default) and fails with
//! [`Error::Unavailable`] when the meta service / etcd does not answer; cached reads
//! keep answering from the last snapshot meanwhile. A background task re-establishes
//! the watch from the last seen revision (or reloads the full snapshot when that
//! revision was compacted) with capped exponential backoff, so the client recovers by
//! itself. After a successful mutation the client waits (bounded) until its snapshot
//! has caught up with the mutation's revision, so a caller reads its own writes.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use futures::StreamExt;
use parking_lot::RwLock;

use sundial_common::metrics::{Collect, Emit, Registry};
use sundial_proto::meta as pb;
use sundial_proto::meta::command::Op;

use crate::command::{applied_group, applied_groups, applied_node};
use crate::error::{Error, Result};
use crate::kv::{EventKind, KvBackend};
use crate::model::{
    DatabaseInfo, NodeId, NodeInfo, PendingDelete, Privilege, RetentionPolicyInfo,
    RetentionPolicySpec, RetentionPolicyUpdate, ShardGroupInfo, ShardId, UserInfo,
};
use crate::snapshot::MetaSnapshot;
use crate::store::MetaStore;

/// One raw change pushed by a watch: key relative to the meta prefix and the new value
/// (`None` = deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// Key, e.g. `db/telegraf`.
    pub key: String,
    /// JSON value, `None` when deleted.
    pub value: Option<Vec<u8>>,
    /// Store revision of the change.
    pub revision: i64,
}

/// Stream of `(revision, changes)`; an `Err` ends it.
pub type RawWatchStream = BoxStream<'static, Result<(i64, Vec<RawEvent>)>>;

/// The transport seam under [`MetaClient`]: the same operations locally (over a
/// [`KvBackend`]) or remotely (gRPC). Every mutation is one [`pb::Command`]; its
/// answer holds the store revision at which its effect is visible (0 = nothing
/// changed).
#[async_trait]
pub trait MetaTransport: Send + Sync + std::fmt::Debug + 'static {
    /// Short name for logs.
    fn name(&self) -> &'static str;
    /// Every record: `(revision, [(key, value)])`.
    async fn snapshot(&self) -> Result<(i64, Vec<(String, Vec<u8>)>)>;
    /// Changes from `start_revision` on.
    async fn watch(&self, start_revision: i64) -> Result<RawWatchStream>;
    /// Applies one mutation (see [`MetaStore::apply`]).
    async fn apply(&self, cmd: pb::Command) -> Result<pb::Applied>;
}

/// The local transport: the operations run in this process over a `KvBackend`.
#[async_trait]
impl MetaTransport for MetaStore {
    fn name(&self) -> &'static str {
        "local"
    }
    async fn snapshot(&self) -> Result<(i64, Vec<(String, Vec<u8>)>)> {
        self.load_all().await
    }
    async fn watch(&self, start_revision: i64) -> Result<RawWatchStream> {
        let s = self.backend().watch(b"", start_revision).await?;
        Ok(s.map(|batch| {
            let batch = batch?;
            let rev = batch.iter().map(|e| e.kv.mod_revision).max().unwrap_or(0);
            let evs = batch
                .into_iter()
                .filter_map(|e| {
                    let key = String::from_utf8(e.kv.key).ok()?;
                    let value = match e.kind {
                        EventKind::Put => Some(e.kv.value),
                        EventKind::Delete => None,
                    };
                    Some(RawEvent {
                        key,
                        value,
                        revision: e.kv.mod_revision,
                    })
                })
                .collect();
            Ok((rev, evs))
        })
        .boxed())
    }
    async fn apply(&self, cmd: pb::Command) -> Result<pb::Applied> {
        MetaStore::apply(self, cmd).await
    }
}

/// Client tuning.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Bound on every call to the transport (fail fast when meta is down).
    pub request_timeout: Duration,
    /// First pause before re-establishing a broken watch (doubles up to `max_backoff`).
    pub min_backoff: Duration,
    /// Longest pause between reconnection attempts.
    pub max_backoff: Duration,
    /// The cluster's shared secret, sent with every call to a remote `sundial-meta`.
    pub secret: Option<String>,
    /// PEM of the CA that signed `sundial-meta`'s certificate: calls go over TLS.
    pub tls_ca: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            request_timeout: Duration::from_secs(3),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            secret: None,
            tls_ca: None,
        }
    }
}

#[derive(Debug)]
struct Shared {
    transport: Arc<dyn MetaTransport>,
    opts: ClientOptions,
    snap: RwLock<Arc<MetaSnapshot>>,
    rev_tx: tokio::sync::watch::Sender<i64>,
    connected: AtomicBool,
    /// Watch health for `/metrics`: re-established after a loss, and when the
    /// last loss began (`None` while live or before the first connection).
    watch_reconnects: AtomicU64,
    lost_at: parking_lot::Mutex<Option<std::time::Instant>>,
    passwords: crate::auth::PasswordChecker,
}

#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The metadata client: cached reads, bounded mutations, self-healing watch.
/// Cheap to clone; the watch task stops when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct MetaClient {
    shared: Arc<Shared>,
    _task: Arc<AbortOnDrop>,
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Shared {
    fn revision(&self) -> i64 {
        self.snap.read().revision
    }

    /// Installs a freshly loaded snapshot unless the cache is already newer.
    fn replace(&self, s: MetaSnapshot) {
        let rev = {
            let mut guard = self.snap.write();
            if s.revision < guard.revision {
                return;
            }
            *guard = Arc::new(s);
            guard.revision
        };
        self.rev_tx.send_replace(rev);
    }

    /// Applies watch events; events at or below the cache's revision (already
    /// contained in a snapshot loaded meanwhile) are skipped.
    fn apply(&self, rev: i64, evs: &[RawEvent]) {
        let new_rev = {
            let mut guard = self.snap.write();
            let base = guard.revision;
            if rev <= base && evs.iter().all(|e| e.revision <= base) {
                return;
            }
            let s = Arc::make_mut(&mut guard);
            for e in evs.iter().filter(|e| e.revision > base) {
                s.apply(&e.key, e.value.as_deref());
            }
            s.revision = evs.iter().map(|e| e.revision).fold(base.max(rev), i64::max);
            s.revision
        };
        self.rev_tx.send_replace(new_rev);
    }

    async fn bounded<T>(&self, what: &str, fut: impl Future<Output = Result<T>>) -> Result<T> {
        let t = self.opts.request_timeout;
        match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable(format!(
                "{what}: no answer from the meta store ({}) within {t:?}",
                self.transport.name()
            ))),
        }
    }

    async fn resync(&self) -> Result<()> {
        let (rev, kvs) = self.bounded("snapshot", self.transport.snapshot()).await?;
        let s = MetaSnapshot::from_kvs(rev, kvs.iter().map(|(k, v)| (k.as_str(), v.as_slice())));
        self.replace(s);
        Ok(())
    }

    fn set_connected(&self, up: bool) {
        let was = self.connected.swap(up, Ordering::SeqCst);
        if was != up {
            if up {
                // A loss before means this connection is a reconnection.
                if self.lost_at.lock().take().is_some() {
                    self.watch_reconnects.fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(transport = self.transport.name(), "meta watch connected");
            } else {
                *self.lost_at.lock() = Some(std::time::Instant::now());
                tracing::warn!(
                    transport = self.transport.name(),
                    "meta watch lost; serving cached metadata, reconnecting"
                );
            }
        }
    }

    async fn run_watch(self: Arc<Self>) {
        let mut backoff = self.opts.min_backoff;
        let mut need_resync = false;
        loop {
            if need_resync {
                match self.resync().await {
                    Ok(()) => need_resync = false,
                    Err(e) => {
                        tracing::debug!(error = %e, "meta resync failed");
                        self.set_connected(false);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(self.opts.max_backoff);
                        continue;
                    }
                }
            }
            let start = self.revision() + 1;
            let stream = self.bounded("watch", self.transport.watch(start)).await;
            let mut stream = match stream {
                Ok(s) => s,
                Err(Error::Compacted { .. }) => {
                    need_resync = true;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "meta watch failed");
                    self.set_connected(false);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.opts.max_backoff);
                    continue;
                }
            };
            self.set_connected(true);
            backoff = self.opts.min_backoff;
            while let Some(item) = stream.next().await {
                match item {
                    Ok((rev, evs)) => self.apply(rev, &evs),
                    Err(Error::Compacted { .. }) => {
                        need_resync = true;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "meta watch stream ended");
                        break;
                    }
                }
            }
            self.set_connected(false);
            tokio::time::sleep(backoff).await;
        }
    }
}

impl MetaClient {
    /// A client over the local transport (a [`MetaStore`] over `kv`).
    pub async fn local(kv: Arc<dyn KvBackend>, opts: ClientOptions) -> Result<Self> {
        Self::connect(Arc::new(MetaStore::new(kv)), opts).await
    }

    /// A local client over an [`EmbeddedBackend`](crate::EmbeddedBackend) in `dir`
    /// (what the all-in-one `sundial` uses).
    pub async fn embedded(dir: impl AsRef<std::path::Path>, opts: ClientOptions) -> Result<Self> {
        let kv = crate::kv::embedded::EmbeddedBackend::open(dir)?;
        Self::local(Arc::new(kv), opts).await
    }

    /// A client of `sundial-meta` (`http://host:port`, or several comma-separated:
    /// requests are balanced over the ones that are up).
    pub async fn remote(endpoint: &str, opts: ClientOptions) -> Result<Self> {
        let t = crate::remote::RemoteTransport::connect_with(
            endpoint,
            opts.secret.as_deref(),
            opts.tls_ca.as_deref(),
        )?;
        Self::connect(Arc::new(t), opts).await
    }

    /// Loads the snapshot (bounded by the request timeout) and starts the watch.
    #[tracing::instrument(name = "meta_client_open", skip_all, fields(transport = transport.name()))]
    pub async fn connect(transport: Arc<dyn MetaTransport>, opts: ClientOptions) -> Result<Self> {
        let (rev_tx, _) = tokio::sync::watch::channel(0);
        let shared = Arc::new(Shared {
            transport,
            opts,
            snap: RwLock::new(Arc::new(MetaSnapshot::default())),
            rev_tx,
            connected: AtomicBool::new(false),
            watch_reconnects: AtomicU64::new(0),
            lost_at: parking_lot::Mutex::new(None),
            passwords: crate::auth::PasswordChecker::new(),
        });
        shared.resync().await?;
        let task = tokio::spawn(shared.clone().run_watch());
        let client = MetaClient {
            shared,
            _task: Arc::new(AbortOnDrop(task)),
        };
        // Wait briefly for the watch so changes right after connect are not missed
        // (they would be anyway: the watch starts at snapshot revision + 1).
        Ok(client)
    }

    /// Stops the watch task (also happens when the last clone is dropped).
    #[tracing::instrument(name = "meta_client_close", skip_all)]
    pub fn close(&self) {
        self._task.0.abort();
    }

    /// The transport in use.
    pub fn transport(&self) -> &Arc<dyn MetaTransport> {
        &self.shared.transport
    }

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

    /// One liveness heartbeat (see [`MetaStore::heartbeat`]).
    pub async fn heartbeat(&self, node_id: NodeId, ttl: Duration) -> Result<()> {
        let ttl_seconds = i64::try_from(ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        let op = Op::Heartbeat(pb::HeartbeatRequest {
            node_id,
            ttl_seconds,
        });
        self.apply("heartbeat", op).await.map(drop)
    }

    /// Takes or renews the leadership `name` for `holder` for `ttl`; true
    /// while `holder` has it (see [`MetaStore::hold_lease`]).
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

/// Background heartbeat; stops when dropped.
#[derive(Debug)]
pub struct HeartbeatHandle(AbortOnDrop);

impl HeartbeatHandle {
    /// Stops heartbeating (the node leaves the live set when its lease expires).
    pub fn stop(self) {
        self.0 .0.abort();
    }
}
