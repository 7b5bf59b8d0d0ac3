//! Shard groups: creation (race-free across processes), retention, owner changes,
//! precreation, and the layout of a new group.

use super::*;

impl MetaStore {
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
pub(super) fn build_group(
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
