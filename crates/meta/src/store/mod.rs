//! [`MetaStore`]: every metadata operation, as compare-and-swap transactions over a
//! [`KvBackend`]. Stateless — any number of `MetaStore`s (in any number of processes)
//! may run against one backend; races are settled by the backend's transactions.
//!
//! Every mutation returns the store revision at which its effect is visible (0 when
//! it changed nothing and there is nothing to wait for).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::auth;
use crate::error::{Error, Result};
use crate::keys;
use crate::kv::{Compare, KeyValue, KvBackend, Txn, TxnOp, TxnOpResponse};
mod nodes;
mod users;

use crate::model::{
    group_bounds, valid_name, validate_policy_values, ContinuousQueryInfo, DatabaseInfo, NodeId,
    NodeInfo, PendingDelete, Privilege, RetentionPolicyInfo, RetentionPolicySpec,
    RetentionPolicyUpdate, ShardGroupInfo, ShardId, ShardInfo, UserInfo,
};

/// Attempts of one compare-and-swap loop before giving up with `Contention`.
const MAX_ATTEMPTS: usize = 200;

/// Metadata operations over a [`KvBackend`].
#[derive(Debug, Clone)]
pub struct MetaStore {
    kv: Arc<dyn KvBackend>,
    /// Replication factor of the `autogen` policy of databases created without one.
    default_replication: u32,
}

/// Keys one transaction changes at most (etcd's `--max-txn-ops` is 128 by default).
const TXN_OPS: usize = 100;

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| Error::Internal(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(kv: &KeyValue) -> Result<T> {
    serde_json::from_slice(&kv.value)
        .map_err(|e| Error::corrupt(&String::from_utf8_lossy(&kv.key), e))
}

fn validate_db_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::DatabaseNameRequired);
    }
    if !valid_name(name) {
        return Err(Error::InvalidName);
    }
    Ok(())
}

fn validate_user_name(name: &str) -> Result<()> {
    if name.is_empty() {
        return Err(Error::UsernameRequired);
    }
    if !valid_name(name) {
        return Err(Error::InvalidName);
    }
    Ok(())
}

/// Small randomised pause between CAS attempts, so racers spread out.
async fn backoff(attempt: usize) {
    let base = 1u64 << attempt.min(5);
    let jitter = rand::random::<u64>() % (base + 1);
    tokio::time::sleep(Duration::from_millis(base / 2 + jitter)).await;
}

enum Change<T> {
    Keep,
    Put(T),
    Delete,
}

impl MetaStore {
    /// Operations over `kv`.
    pub fn new(kv: Arc<dyn KvBackend>) -> Self {
        MetaStore {
            kv,
            default_replication: 1,
        }
    }

    /// Databases created without a policy get `autogen` with `n` copies of each
    /// shard (a cluster's `[meta] default-replication-factor`; at least 1).
    pub fn with_default_replication(mut self, n: u32) -> Self {
        self.default_replication = n.max(1);
        self
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn KvBackend> {
        &self.kv
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, i64)>> {
        match self.kv.get(key.as_bytes()).await? {
            Some(kv) => Ok(Some((decode(&kv)?, kv.mod_revision))),
            None => Ok(None),
        }
    }

    /// Read-modify-write of one key with a compare on its mod revision, retried on
    /// conflict. `extra` ops are added to the successful transaction.
    async fn update<T, F>(&self, key: &str, mut f: F) -> Result<i64>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> Result<(Change<T>, Vec<TxnOp>)>,
    {
        for attempt in 0..MAX_ATTEMPTS {
            let cur = self.read::<T>(key).await?;
            let rev = cur.as_ref().map_or(0, |(_, r)| *r);
            let (change, extra) = f(cur.map(|(v, _)| v))?;
            let mut ops = match change {
                Change::Keep => return Ok(rev),
                Change::Put(v) => vec![TxnOp::put(key, encode(&v)?)],
                Change::Delete => vec![TxnOp::delete(key)],
            };
            ops.extend(extra);
            let resp = self
                .kv
                .txn(
                    Txn::new()
                        .when(vec![Compare::mod_revision(key, rev)])
                        .and_then(ops),
                )
                .await?;
            if resp.succeeded {
                return Ok(resp.revision);
            }
            backoff(attempt).await;
        }
        Err(Error::Contention(key.to_string()))
    }

    /// Reads everything under the meta prefix: `(revision, [(key, value)])`.
    pub async fn load_all(&self) -> Result<(i64, Vec<(String, Vec<u8>)>)> {
        let r = self.kv.range(b"").await?;
        let kvs = r
            .kvs
            .into_iter()
            .filter_map(|kv| String::from_utf8(kv.key).ok().map(|k| (k, kv.value)))
            .collect();
        Ok((r.revision, kvs))
    }

    // ---------------------------------------------------------------- databases

    /// Creates a database with `autogen` (or with `policy` as its default policy).
    /// Creating an existing database is a no-op (with a policy: the same policy must
    /// exist, else `retention policy conflicts with an existing policy`).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_database(
        &self,
        name: &str,
        policy: Option<RetentionPolicySpec>,
    ) -> Result<i64> {
        validate_db_name(name)?;
        let rp = match &policy {
            Some(spec) => spec.validate()?,
            None => RetentionPolicyInfo {
                replication_factor: self.default_replication,
                ..RetentionPolicyInfo::autogen()
            },
        };
        let key = keys::database(name);
        self.update::<DatabaseInfo, _>(&key, |cur| match cur {
            Some(db) => {
                if policy.is_some() {
                    match db.retention_policies.get(&rp.name) {
                        Some(existing)
                            if *existing == rp && db.default_retention_policy == rp.name => {}
                        _ => return Err(Error::RetentionPolicyConflict),
                    }
                }
                Ok((Change::Keep, vec![]))
            }
            None => {
                let mut rps = BTreeMap::new();
                rps.insert(rp.name.clone(), rp.clone());
                Ok((
                    Change::Put(DatabaseInfo {
                        name: name.to_string(),
                        default_retention_policy: rp.name.clone(),
                        retention_policies: rps,
                        policy_order: vec![rp.name.clone()],
                        continuous_queries: Vec::new(),
                    }),
                    vec![],
                ))
            }
        })
        .await
    }

    /// Drops a database, its shard groups and users' privileges on it. Dropping a
    /// missing database is a no-op.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn drop_database(&self, name: &str) -> Result<i64> {
        validate_db_name(name)?;
        let key = keys::database(name);
        for attempt in 0..MAX_ATTEMPTS {
            let Some(db) = self.kv.get(key.as_bytes()).await? else {
                return Ok(0);
            };
            let users = self.kv.range(keys::USERS.as_bytes()).await?;
            let mut compares = vec![Compare::mod_revision(key.as_bytes(), db.mod_revision)];
            let mut ops = vec![
                TxnOp::delete(key.as_bytes()),
                TxnOp::delete_prefix(keys::shard_groups_of_db(name)),
            ];
            for kv in &users.kvs {
                let mut u: UserInfo = decode(kv)?;
                if u.privileges.remove(name).is_some() {
                    compares.push(Compare::mod_revision(kv.key.clone(), kv.mod_revision));
                    ops.push(TxnOp::put(kv.key.clone(), encode(&u)?));
                }
            }
            let r = self.kv.txn(Txn::new().when(compares).and_then(ops)).await?;
            if r.succeeded {
                return Ok(r.revision);
            }
            backoff(attempt).await;
        }
        Err(Error::Contention(key))
    }

    // ---------------------------------------------------------- retention policies

    /// Creates a retention policy. Same name and spec: no-op; different spec:
    /// `retention policy already exists`.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_retention_policy(
        &self,
        db: &str,
        spec: RetentionPolicySpec,
        make_default: bool,
    ) -> Result<i64> {
        validate_db_name(db)?;
        let rp = spec.validate()?;
        self.update::<DatabaseInfo, _>(&keys::database(db), |cur| {
            let mut d = cur.ok_or_else(|| Error::DatabaseNotFound(db.to_string()))?;
            if let Some(existing) = d.retention_policies.get(&rp.name) {
                if existing.duration != rp.duration
                    || existing.shard_group_duration != rp.shard_group_duration
                    || existing.replication_factor != rp.replication_factor
                {
                    return Err(Error::RetentionPolicyExists);
                }
                if make_default && d.default_retention_policy != rp.name {
                    return Err(Error::RetentionPolicyConflict);
                }
                return Ok((Change::Keep, vec![]));
            }
            // A database stored before the order was kept: its policies first,
            // by name.
            let mut unknown: Vec<String> = d
                .retention_policies
                .keys()
                .filter(|n| !d.policy_order.contains(n))
                .cloned()
                .collect();
            d.policy_order.append(&mut unknown);
            d.retention_policies.insert(rp.name.clone(), rp.clone());
            d.policy_order.retain(|n| n != &rp.name);
            d.policy_order.push(rp.name.clone());
            if make_default
                || d.default_retention_policy.is_empty() && d.retention_policies.len() == 1
            {
                d.default_retention_policy = rp.name.clone();
            }
            Ok((Change::Put(d), vec![]))
        })
        .await
    }

    /// Alters a retention policy (`ALTER RETENTION POLICY`), optionally making it the
    /// default.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn alter_retention_policy(
        &self,
        db: &str,
        name: &str,
        update: RetentionPolicyUpdate,
    ) -> Result<i64> {
        validate_db_name(db)?;
        if name.is_empty() {
            return Err(Error::RetentionPolicyNameRequired);
        }
        self.update::<DatabaseInfo, _>(&keys::database(db), |cur| {
            let mut d = cur.ok_or_else(|| Error::DatabaseNotFound(db.to_string()))?;
            let old = d
                .retention_policies
                .get(name)
                .ok_or_else(|| Error::RetentionPolicyNotFound(name.to_string()))?;
            let duration = update.duration.unwrap_or(old.duration);
            let sgd = update
                .shard_group_duration
                .unwrap_or(old.shard_group_duration);
            let rf = update.replication_factor.unwrap_or(old.replication_factor);
            let new = validate_policy_values(name, duration, sgd, rf)?;
            let changed =
                new != *old || (update.make_default && d.default_retention_policy != name);
            if !changed {
                return Ok((Change::Keep, vec![]));
            }
            d.retention_policies.insert(name.to_string(), new);
            if update.make_default {
                d.default_retention_policy = name.to_string();
            }
            Ok((Change::Put(d), vec![]))
        })
        .await
    }

    /// Makes `name` the default retention policy of `db`.
    pub async fn set_default_retention_policy(&self, db: &str, name: &str) -> Result<i64> {
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

    /// Drops a retention policy and its shard groups (missing policy: no-op).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn drop_retention_policy(&self, db: &str, name: &str) -> Result<i64> {
        validate_db_name(db)?;
        if name.is_empty() {
            return Err(Error::RetentionPolicyNameRequired);
        }
        self.update::<DatabaseInfo, _>(&keys::database(db), |cur| {
            let mut d = cur.ok_or_else(|| Error::DatabaseNotFound(db.to_string()))?;
            if d.retention_policies.remove(name).is_none() {
                return Ok((Change::Keep, vec![]));
            }
            d.policy_order.retain(|n| n != name);
            if d.default_retention_policy == name {
                d.default_retention_policy.clear();
            }
            Ok((
                Change::Put(d),
                vec![TxnOp::delete_prefix(keys::shard_groups_of_rp(db, name))],
            ))
        })
        .await
    }

    // ------------------------------------------------------- continuous queries

    /// Adds a continuous query to `db` (after its others). The same name with
    /// the same statement (compared case-insensitively, as 1.6 does) is a
    /// no-op; another statement is `continuous query already exists`.
    #[tracing::instrument(skip(self, query), err(level = "debug"))]
    pub async fn create_continuous_query(&self, db: &str, name: &str, query: &str) -> Result<i64> {
        validate_db_name(db)?;
        self.update::<DatabaseInfo, _>(&keys::database(db), |cur| {
            let mut d = cur.ok_or_else(|| Error::DatabaseNotFound(db.to_string()))?;
            if let Some(cq) = d.continuous_queries.iter().find(|c| c.name == name) {
                return if cq.query.to_lowercase() == query.to_lowercase() {
                    Ok((Change::Keep, vec![]))
                } else {
                    Err(Error::ContinuousQueryExists)
                };
            }
            d.continuous_queries.push(ContinuousQueryInfo {
                name: name.to_string(),
                query: query.to_string(),
            });
            Ok((Change::Put(d), vec![]))
        })
        .await
    }

    /// Removes a continuous query; a database or query that does not exist is
    /// no error (1.6).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn drop_continuous_query(&self, db: &str, name: &str) -> Result<i64> {
        self.update::<DatabaseInfo, _>(&keys::database(db), |cur| {
            let Some(mut d) = cur else {
                return Ok((Change::Keep, vec![]));
            };
            let before = d.continuous_queries.len();
            d.continuous_queries.retain(|c| c.name != name);
            if d.continuous_queries.len() == before {
                return Ok((Change::Keep, vec![]));
            }
            Ok((Change::Put(d), vec![]))
        })
        .await
    }

    // ---------------------------------------------------------------- shard groups

    async fn live_nodes(&self) -> Result<Vec<NodeId>> {
        let alive = self.kv.range(keys::ALIVE.as_bytes()).await?;
        let nodes = self.kv.range(keys::NODES.as_bytes()).await?;
        let mut registered = std::collections::BTreeSet::new();
        for kv in &nodes.kvs {
            let n: NodeInfo = decode(kv)?;
            registered.insert(n.id);
        }
        let mut live: Vec<NodeId> = alive
            .kvs
            .iter()
            .filter_map(|kv| match keys::parse(&String::from_utf8_lossy(&kv.key)) {
                Some(keys::Key::Alive(id)) if registered.contains(&id) => Some(id),
                _ => None,
            })
            .collect();
        live.sort_unstable();
        live.dedup();
        Ok(live)
    }

    /// Returns the shard group of `db`/`rp` (`""` = default) holding time `t`,
    /// creating it if needed. Idempotent and race-free across processes: the group key
    /// is created with a compare-absent transaction (together with the id counter and
    /// the database record), so concurrent callers all get the one group that won.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn create_shard_group(
        &self,
        db: &str,
        rp: &str,
        t: i64,
    ) -> Result<(ShardGroupInfo, i64)> {
        let db_key = keys::database(db);
        for attempt in 0..MAX_ATTEMPTS {
            let Some(dbkv) = self.kv.get(db_key.as_bytes()).await? else {
                return Err(Error::DatabaseNotFound(db.to_string()));
            };
            let dbi: DatabaseInfo = decode(&dbkv)?;
            let rpi = dbi.policy(rp).cloned().ok_or_else(|| {
                Error::RetentionPolicyNotFound(if rp.is_empty() {
                    dbi.default_retention_policy.clone()
                } else {
                    rp.to_string()
                })
            })?;
            let existing = self
                .kv
                .range(keys::shard_groups_of_rp(db, &rpi.name).as_bytes())
                .await?;
            let mut groups = Vec::with_capacity(existing.kvs.len());
            for kv in &existing.kvs {
                let g: ShardGroupInfo = decode(kv)?;
                if g.contains(t) {
                    return Ok((g, kv.mod_revision));
                }
                groups.push(g);
            }
            let live = self.live_nodes().await?;
            if live.is_empty() {
                return Err(Error::NoDataNodes);
            }
            let counter = self.kv.get(keys::SHARD_ID_COUNTER.as_bytes()).await?;
            let (next, counter_rev) = match &counter {
                Some(kv) => (
                    std::str::from_utf8(&kv.value)
                        .ok()
                        .and_then(|s| s.parse::<u64>().ok())
                        .ok_or_else(|| Error::corrupt(keys::SHARD_ID_COUNTER, "not a number"))?,
                    kv.mod_revision,
                ),
                None => (1, 0),
            };
            let (mut start, mut end) = group_bounds(t, rpi.shard_group_duration);
            // A group never overlaps one made before under another alignment
            // or duration (weekly groups started on Thursdays before they
            // started on Mondays): it is cut back to them. None holds `t`.
            for g in &groups {
                if g.end <= t && g.end > start {
                    start = g.end;
                }
                if g.start > t && g.start < end {
                    end = g.start;
                }
            }
            let group = build_group(next, db, &rpi, start, end, &live);
            let new_next = next + 1 + group.shards.len() as u64;
            let key = keys::shard_group(db, &rpi.name, start);
            let txn = Txn::new()
                .when(vec![
                    Compare::absent(key.as_bytes()),
                    Compare::mod_revision(keys::SHARD_ID_COUNTER, counter_rev),
                    Compare::mod_revision(db_key.as_bytes(), dbkv.mod_revision),
                ])
                .and_then(vec![
                    TxnOp::put(key.as_bytes(), encode(&group)?),
                    TxnOp::put(keys::SHARD_ID_COUNTER, new_next.to_string()),
                ])
                .or_else(vec![TxnOp::get(key.as_bytes())]);
            let r = self.kv.txn(txn).await?;
            if r.succeeded {
                tracing::info!(
                    db,
                    rp = %rpi.name,
                    id = group.id,
                    start = group.start,
                    shards = group.shards.len(),
                    "created shard group"
                );
                return Ok((group, r.revision));
            }
            if let Some(TxnOpResponse::Get(Some(kv))) = r.responses.first() {
                let g: ShardGroupInfo = decode(kv)?;
                if g.contains(t) {
                    return Ok((g, kv.mod_revision));
                }
            }
            backoff(attempt).await;
        }
        Err(Error::Contention(format!("shard group {db}/{rp}@{t}")))
    }

    /// Deletes shard groups whose data is entirely past their policy's retention at
    /// `now` (InfluxDB: `end + duration < now`). Returns the groups deleted by this
    /// call (so stores can drop those shards).
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn delete_expired_shard_groups(
        &self,
        now: i64,
    ) -> Result<(Vec<ShardGroupInfo>, i64)> {
        let dbs = self.kv.range(keys::DATABASES.as_bytes()).await?;
        let mut durations = BTreeMap::new();
        for kv in &dbs.kvs {
            let d: DatabaseInfo = decode(kv)?;
            for rp in d.retention_policies.values() {
                durations.insert((d.name.clone(), rp.name.clone()), rp.duration);
            }
        }
        let groups = self.kv.range(keys::SHARD_GROUPS.as_bytes()).await?;
        let mut deleted = Vec::new();
        let mut rev = 0;
        for kv in &groups.kvs {
            let g: ShardGroupInfo = decode(kv)?;
            let Some(&dur) = durations.get(&(g.database.clone(), g.retention_policy.clone()))
            else {
                continue;
            };
            if dur <= 0 || g.end.saturating_add(dur) >= now {
                continue;
            }
            let r = self
                .kv
                .txn(
                    Txn::new()
                        .when(vec![Compare::mod_revision(kv.key.clone(), kv.mod_revision)])
                        .and_then(vec![TxnOp::delete(kv.key.clone())]),
                )
                .await?;
            if r.succeeded {
                tracing::info!(db = %g.database, rp = %g.retention_policy, id = g.id, "deleted expired shard group");
                rev = r.revision;
                deleted.push(g);
            }
        }
        Ok((deleted, rev))
    }

    /// Replaces the owners of shard `shard_id` (registered nodes, at least one, no
    /// repeats); returns its group as changed.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn set_shard_owners(
        &self,
        shard_id: crate::model::ShardId,
        owners: &[NodeId],
    ) -> Result<(ShardGroupInfo, i64)> {
        let mut uniq = owners.to_vec();
        uniq.sort_unstable();
        uniq.dedup();
        if owners.is_empty() || uniq.len() != owners.len() {
            return Err(Error::InvalidArgument(format!(
                "a shard needs one or more distinct owners, got {owners:?}"
            )));
        }
        let nodes = self.kv.range(keys::NODES.as_bytes()).await?;
        let known: Vec<NodeId> = nodes
            .kvs
            .iter()
            .map(|kv| decode::<NodeInfo>(kv).map(|n| n.id))
            .collect::<Result<_>>()?;
        if let Some(n) = owners.iter().find(|n| !known.contains(n)) {
            return Err(Error::NodeNotFound(*n));
        }
        for attempt in 0..MAX_ATTEMPTS {
            let groups = self.kv.range(keys::SHARD_GROUPS.as_bytes()).await?;
            let mut found = None;
            for kv in &groups.kvs {
                let g: ShardGroupInfo = decode(kv)?;
                if g.shards.iter().any(|s| s.id == shard_id) {
                    found = Some((kv.key.clone(), kv.mod_revision, g));
                    break;
                }
            }
            let Some((key, rev, mut g)) = found else {
                return Err(Error::InvalidArgument(format!(
                    "shard {shard_id} not found"
                )));
            };
            for s in g.shards.iter_mut().filter(|s| s.id == shard_id) {
                s.owners = owners.to_vec();
            }
            let r = self
                .kv
                .txn(
                    Txn::new()
                        .when(vec![Compare::mod_revision(key.clone(), rev)])
                        .and_then(vec![TxnOp::put(key.clone(), encode(&g)?)]),
                )
                .await?;
            if r.succeeded {
                tracing::info!(shard = shard_id, ?owners, "shard owners set");
                return Ok((g, r.revision));
            }
            backoff(attempt).await;
        }
        Err(Error::Contention(format!("shard {shard_id}")))
    }

    /// Shard precreation (InfluxDB's `PrecreateShardGroups(now, now+advance)`): for
    /// each policy whose newest group ends within `(now, now + advance)`, creates the
    /// following group. Returns the groups created.
    #[tracing::instrument(skip(self), err(level = "debug"))]
    pub async fn precreate_shard_groups(
        &self,
        now: i64,
        advance: i64,
    ) -> Result<(Vec<ShardGroupInfo>, i64)> {
        let groups = self.kv.range(keys::SHARD_GROUPS.as_bytes()).await?;
        let mut latest: BTreeMap<(String, String), ShardGroupInfo> = BTreeMap::new();
        for kv in &groups.kvs {
            let g: ShardGroupInfo = decode(kv)?;
            let k = (g.database.clone(), g.retention_policy.clone());
            match latest.get(&k) {
                Some(cur) if cur.end >= g.end => {}
                _ => {
                    latest.insert(k, g);
                }
            }
        }
        let to = now.saturating_add(advance);
        let mut created = Vec::new();
        let mut rev = 0;
        for ((db, rp), g) in latest {
            if g.end < to && g.end > now {
                match self.create_shard_group(&db, &rp, g.end).await {
                    Ok((ng, r)) => {
                        if ng.id != g.id && ng.start >= g.end {
                            rev = rev.max(r);
                            created.push(ng);
                        }
                    }
                    // The policy may have been dropped meanwhile.
                    Err(Error::DatabaseNotFound(_) | Error::RetentionPolicyNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok((created, rev))
    }
}

/// Lays out a new group: `live / rf` shards (at least 1), each with `min(rf, live)`
/// owners, assigned round-robin starting at `id % live` (InfluxDB's algorithm).
fn build_group(
    id: u64,
    db: &str,
    rpi: &RetentionPolicyInfo,
    start: i64,
    end: i64,
    live: &[NodeId],
) -> ShardGroupInfo {
    let rf = rpi.replication_factor.max(1) as usize;
    let n = live.len().max(1);
    let shard_n = (live.len() / rf).max(1);
    let replica_n = rf.min(live.len());
    let mut idx = (id % n as u64) as usize;
    let shards = (0..shard_n)
        .map(|i| {
            let owners = (0..replica_n)
                .map(|_| {
                    let o = live[idx % n];
                    idx += 1;
                    o
                })
                .collect();
            ShardInfo {
                id: id + 1 + i as u64,
                owners,
            }
        })
        .collect();
    ShardGroupInfo {
        id,
        database: db.to_string(),
        retention_policy: rpi.name.clone(),
        start,
        end,
        shards,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A named lease has one holder at a time; another gets it once the
    /// holder stops renewing.
    #[tokio::test]
    async fn a_lease_has_one_holder_until_it_lapses() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::MetaClient::embedded(dir.path(), crate::ClientOptions::default())
            .await
            .unwrap();
        let ttl = std::time::Duration::from_secs(1);
        assert!(c.hold_lease("cq", "a", ttl).await.unwrap());
        assert!(!c.hold_lease("cq", "b", ttl).await.unwrap());
        assert!(c.hold_lease("cq", "a", ttl).await.unwrap());
        assert!(c.hold_lease("other", "b", ttl).await.unwrap());
        let mut took = false;
        for _ in 0..50 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if c.hold_lease("cq", "b", ttl).await.unwrap() {
                took = true;
                break;
            }
        }
        assert!(took, "b never got the lease a stopped renewing");
        assert!(!c.hold_lease("cq", "a", ttl).await.unwrap());
        c.close();
    }

    /// CREATE/DROP CONTINUOUS QUERY as 1.6's meta keeps them: in creation
    /// order, the same statement again a no-op, another one refused,
    /// dropping what is not there no error.
    #[tokio::test]
    async fn continuous_queries_as_influxdb_keeps_them() {
        let dir = tempfile::tempdir().unwrap();
        let client = crate::MetaClient::embedded(dir.path(), crate::ClientOptions::default())
            .await
            .unwrap();
        let q = |n: &str| {
            format!("CREATE CONTINUOUS QUERY {n} ON db BEGIN SELECT count(v) INTO db.autogen.x FROM db.autogen.m GROUP BY time(1m) END")
        };
        assert!(matches!(
            client.create_continuous_query("db", "a", &q("a")).await,
            Err(Error::DatabaseNotFound(_))
        ));
        client.create_database("db").await.unwrap();
        client
            .create_continuous_query("db", "b", &q("b"))
            .await
            .unwrap();
        client
            .create_continuous_query("db", "a", &q("a"))
            .await
            .unwrap();
        client
            .create_continuous_query("db", "a", &q("a").to_uppercase())
            .await
            .unwrap();
        assert!(matches!(
            client.create_continuous_query("db", "a", &q("other")).await,
            Err(Error::ContinuousQueryExists)
        ));
        let names = |c: &crate::MetaClient| -> Vec<String> {
            c.database("db")
                .unwrap()
                .continuous_queries
                .iter()
                .map(|c| c.name.clone())
                .collect()
        };
        assert_eq!(names(&client), ["b", "a"]);
        client.drop_continuous_query("db", "zzz").await.unwrap();
        client.drop_continuous_query("nodb", "a").await.unwrap();
        client.drop_continuous_query("db", "b").await.unwrap();
        assert_eq!(names(&client), ["a"]);
        client.close();
    }

    #[test]
    fn layout_spreads_owners() {
        let rp = RetentionPolicyInfo {
            replication_factor: 2,
            ..RetentionPolicyInfo::autogen()
        };
        let g = build_group(10, "db", &rp, 0, 1, &[1, 2, 3, 4]);
        assert_eq!(g.shards.len(), 2);
        assert_eq!(g.shard_ids(), vec![11, 12]);
        let mut owners: Vec<u64> = g.shards.iter().flat_map(|s| s.owners.clone()).collect();
        owners.sort_unstable();
        assert_eq!(owners, vec![1, 2, 3, 4]);
        let g = build_group(
            1,
            "db",
            &RetentionPolicyInfo {
                replication_factor: 3,
                ..rp
            },
            0,
            1,
            &[7],
        );
        assert_eq!(g.shards.len(), 1);
        assert_eq!(g.shards[0].owners, vec![7]);
    }
}
