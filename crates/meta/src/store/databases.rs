//! Databases and what their record holds: retention policies and continuous
//! queries.

use super::*;

impl MetaStore {
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
}
