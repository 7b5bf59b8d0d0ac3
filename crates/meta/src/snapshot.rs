//! The in-memory view of all metadata, built from the stored key-values and kept up to
//! date by applying watch events. Used by [`MetaClient`](crate::MetaClient) for every
//! read (no network on the write path for an existing shard group).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};
use crate::keys::{self, Key};
use crate::model::{
    DatabaseInfo, NodeId, NodeInfo, PendingDelete, RetentionPolicyInfo, ShardGroupInfo, ShardId,
    ShardInfo, UserInfo,
};

/// Every database, retention policy, shard group, node and user, at one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaSnapshot {
    /// The store revision this view reflects.
    pub revision: i64,
    /// Databases (with their retention policies) by name.
    pub databases: BTreeMap<String, DatabaseInfo>,
    /// Shard groups by database → retention policy → start time.
    pub shard_groups: BTreeMap<String, BTreeMap<String, BTreeMap<i64, ShardGroupInfo>>>,
    /// Registered nodes by id.
    pub nodes: BTreeMap<NodeId, NodeInfo>,
    /// Ids of nodes whose liveness lease is current.
    pub alive: BTreeSet<NodeId>,
    /// Users by name.
    pub users: BTreeMap<String, UserInfo>,
    /// Deletes owners have yet to apply, by (node, shard), then by id (ids
    /// are random: no order in time).
    pub pending_deletes: BTreeMap<(NodeId, ShardId), BTreeMap<u64, PendingDelete>>,
    /// Where each shard's group is in `shard_groups`: stores look a shard up on
    /// every WriteToShard.
    shard_index: HashMap<ShardId, (String, String, i64)>,
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| Error::corrupt(key, e))
}

impl MetaSnapshot {
    /// Builds a snapshot from `(key, value)` pairs (keys relative to the meta prefix).
    pub fn from_kvs<'a>(revision: i64, kvs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let mut s = MetaSnapshot {
            revision,
            ..Default::default()
        };
        for (k, v) in kvs {
            s.apply(k, Some(v));
        }
        s
    }

    /// Applies one change (`None` = deleted). Unknown keys are ignored; undecodable
    /// values are logged and ignored (a newer writer's format must not crash readers).
    pub fn apply(&mut self, key: &str, value: Option<&[u8]>) {
        if let Err(e) = self.try_apply(key, value) {
            tracing::warn!(key, error = %e, "ignoring meta record");
        }
    }

    fn try_apply(&mut self, key: &str, value: Option<&[u8]>) -> Result<()> {
        match keys::parse(key) {
            Some(Key::Database(name)) => match value {
                Some(v) => {
                    let db: DatabaseInfo = decode(key, v)?;
                    self.databases.insert(name, db);
                }
                None => {
                    self.databases.remove(&name);
                }
            },
            Some(Key::ShardGroup { db, rp, start }) => match value {
                Some(v) => {
                    let sg: ShardGroupInfo = decode(key, v)?;
                    for s in &sg.shards {
                        self.shard_index
                            .insert(s.id, (db.clone(), rp.clone(), start));
                    }
                    let old = self
                        .shard_groups
                        .entry(db)
                        .or_default()
                        .entry(rp)
                        .or_default()
                        .insert(start, sg);
                    self.unindex_replaced(old);
                }
                None => {
                    if let Some(rps) = self.shard_groups.get_mut(&db) {
                        if let Some(groups) = rps.get_mut(&rp) {
                            if let Some(old) = groups.remove(&start) {
                                for s in &old.shards {
                                    self.shard_index.remove(&s.id);
                                }
                            }
                            if groups.is_empty() {
                                rps.remove(&rp);
                            }
                        }
                        if rps.is_empty() {
                            self.shard_groups.remove(&db);
                        }
                    }
                }
            },
            Some(Key::Node(id)) => match value {
                Some(v) => {
                    let n: NodeInfo = decode(key, v)?;
                    self.nodes.insert(id, n);
                }
                None => {
                    self.nodes.remove(&id);
                }
            },
            Some(Key::Alive(id)) => {
                if value.is_some() {
                    self.alive.insert(id);
                } else {
                    self.alive.remove(&id);
                }
            }
            Some(Key::User(name)) => match value {
                Some(v) => {
                    let u: UserInfo = decode(key, v)?;
                    self.users.insert(name, u);
                }
                None => {
                    self.users.remove(&name);
                }
            },
            Some(Key::PendingDelete { node, shard, id }) => match value {
                Some(v) => {
                    let d: PendingDelete = decode(key, v)?;
                    self.pending_deletes
                        .entry((node, shard))
                        .or_default()
                        .insert(id, d);
                }
                None => {
                    if let Some(m) = self.pending_deletes.get_mut(&(node, shard)) {
                        m.remove(&id);
                        if m.is_empty() {
                            self.pending_deletes.remove(&(node, shard));
                        }
                    }
                }
            },
            Some(Key::Counter(_)) | None => {}
        }
        Ok(())
    }

    /// The deletes `node` has yet to apply to `shard`, by id.
    pub fn pending_deletes_for(&self, node: NodeId, shard: ShardId) -> Vec<&PendingDelete> {
        self.pending_deletes
            .get(&(node, shard))
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }

    /// Every delete `node` has yet to apply, by shard then id.
    pub fn pending_deletes_of(&self, node: NodeId) -> Vec<&PendingDelete> {
        self.pending_deletes
            .range((node, 0)..=(node, ShardId::MAX))
            .flat_map(|(_, m)| m.values())
            .collect()
    }

    /// A database by name.
    pub fn database(&self, name: &str) -> Option<&DatabaseInfo> {
        self.databases.get(name)
    }

    /// A retention policy (`""` = the database's default), with InfluxDB's errors.
    pub fn retention_policy(&self, db: &str, rp: &str) -> Result<&RetentionPolicyInfo> {
        let d = self
            .databases
            .get(db)
            .ok_or_else(|| Error::DatabaseNotFound(db.to_string()))?;
        d.policy(rp).ok_or_else(|| {
            Error::RetentionPolicyNotFound(if rp.is_empty() {
                d.default_retention_policy.clone()
            } else {
                rp.to_string()
            })
        })
    }

    /// Shard groups of one policy (`""` = default), ordered by start time.
    pub fn shard_groups(&self, db: &str, rp: &str) -> Vec<&ShardGroupInfo> {
        let rp = self.resolve_rp(db, rp);
        self.shard_groups
            .get(db)
            .and_then(|m| m.get(rp))
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }

    /// Every shard group, ordered by database, policy, start.
    pub fn all_shard_groups(&self) -> Vec<&ShardGroupInfo> {
        self.shard_groups
            .values()
            .flat_map(|m| m.values())
            .flat_map(|m| m.values())
            .collect()
    }

    /// The shard group of `db`/`rp` (`""` = default) whose window holds `t`.
    pub fn shard_group_at(&self, db: &str, rp: &str, t: i64) -> Option<&ShardGroupInfo> {
        let rp = self.resolve_rp(db, rp);
        let groups = self.shard_groups.get(db)?.get(rp)?;
        // Groups are keyed by start; the candidate is the last one starting at or before t.
        // After an ALTER of the shard duration windows can differ, so scan back a little.
        groups
            .range(..=t)
            .rev()
            .take(4)
            .map(|(_, g)| g)
            .find(|g| g.contains(t))
    }

    fn resolve_rp<'a>(&'a self, db: &str, rp: &'a str) -> &'a str {
        if rp.is_empty() {
            self.databases
                .get(db)
                .map_or("", |d| d.default_retention_policy.as_str())
        } else {
            rp
        }
    }

    /// The shard with id `id` and its group.
    pub fn shard(&self, id: ShardId) -> Option<(&ShardGroupInfo, &ShardInfo)> {
        let (db, rp, start) = self.shard_index.get(&id)?;
        let g = self.shard_groups.get(db)?.get(rp)?.get(start)?;
        g.shards.iter().find(|s| s.id == id).map(|s| (g, s))
    }

    /// Forgets the shards of a group that was replaced and are not in its new
    /// version (a group keeps its shards; this only guards the index).
    fn unindex_replaced(&mut self, old: Option<ShardGroupInfo>) {
        for s in old.iter().flat_map(|g| &g.shards) {
            let still = self.shard_index.get(&s.id).is_some_and(|(db, rp, start)| {
                self.shard_groups
                    .get(db)
                    .and_then(|m| m.get(rp))
                    .and_then(|m| m.get(start))
                    .is_some_and(|g| g.shards.iter().any(|x| x.id == s.id))
            });
            if !still {
                self.shard_index.remove(&s.id);
            }
        }
    }

    /// Nodes whose liveness lease is current, ordered by id.
    pub fn live_nodes(&self) -> Vec<&NodeInfo> {
        self.nodes
            .values()
            .filter(|n| self.alive.contains(&n.id))
            .collect()
    }

    /// A user by name.
    pub fn user(&self, name: &str) -> Option<&UserInfo> {
        self.users.get(name)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn group(id: u64, start: i64, owners: &[u64]) -> (String, Vec<u8>) {
        let g = ShardGroupInfo {
            id,
            database: "db".into(),
            retention_policy: "autogen".into(),
            start,
            end: start + 10,
            shards: vec![
                ShardInfo {
                    id: id + 1,
                    owners: owners.to_vec(),
                },
                ShardInfo {
                    id: id + 2,
                    owners: owners.to_vec(),
                },
            ],
        };
        (
            keys::shard_group("db", "autogen", start),
            serde_json::to_vec(&g).unwrap(),
        )
    }

    #[test]
    fn shards_are_found_by_id_as_groups_come_change_and_go() {
        let (k1, v1) = group(10, 0, &[1]);
        let (k2, v2) = group(20, 10, &[2]);
        let mut s = MetaSnapshot::from_kvs(1, [(k1.as_str(), &v1[..]), (k2.as_str(), &v2[..])]);
        assert_eq!(s.shard(12).map(|(g, sh)| (g.id, sh.id)), Some((10, 12)));
        assert_eq!(s.shard(21).map(|(g, _)| g.start), Some(10));
        assert!(s.shard(30).is_none());
        // New owners (a shard copied elsewhere): the same ids, the new owners.
        let (_, moved) = group(10, 0, &[3]);
        s.apply(&k1, Some(&moved));
        assert_eq!(s.shard(11).map(|(_, sh)| sh.owners.clone()), Some(vec![3]));
        // A group deleted by retention takes its shards with it.
        s.apply(&k1, None);
        assert!(s.shard(11).is_none() && s.shard(12).is_none());
        assert_eq!(s.shard(22).map(|(g, _)| g.id), Some(20));
    }
}
