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
mod databases;
mod nodes;
mod shard_groups;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::shard_groups::build_group;

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
