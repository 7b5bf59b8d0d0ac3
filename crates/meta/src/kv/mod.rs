//! The meta storage seam: an etcd-shaped key-value trait and its two implementations.
//!
//! * [`EtcdBackend`](etcd::EtcdBackend) — a real etcd cluster (optionally namespaced
//!   under a key prefix, so many users share one etcd).
//! * [`EmbeddedBackend`](embedded::EmbeddedBackend) — in memory, durable on local disk
//!   (append-only change log with CRC + fsync before ack, compacted into an atomically
//!   written snapshot).
//!
//! Both pass the same conformance suite (`sundial_meta::testing::conformance`).

use std::fmt::Debug;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::error::Result;

pub mod embedded;
pub mod etcd;

/// A lease id (etcd's `LeaseID`). Keys put with a lease are deleted when it expires.
pub type LeaseId = i64;

/// One stored key with etcd's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty in delete events).
    pub value: Vec<u8>,
    /// Revision of the last creation of the key.
    pub create_revision: i64,
    /// Revision of the last modification (for a delete event: the deletion revision).
    pub mod_revision: i64,
    /// Number of modifications since creation (1 after the first put).
    pub version: i64,
    /// Attached lease, 0 = none.
    pub lease: LeaseId,
}

/// Result of a prefix range: the matching keys (sorted by key) and the store revision
/// the read was served at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RangeResponse {
    /// Matching key-values, sorted by key.
    pub kvs: Vec<KeyValue>,
    /// The store's revision at the time of the read.
    pub revision: i64,
}

/// What a [`Compare`] looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompareTarget {
    /// The value (a missing key never matches `Equal`).
    Value(Vec<u8>),
    /// The key's version (0 = missing).
    Version(i64),
    /// The key's create revision (0 = missing).
    CreateRevision(i64),
    /// The key's mod revision (0 = missing).
    ModRevision(i64),
}

/// Comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Equal,
    /// `!=`
    NotEqual,
    /// `>`
    Greater,
    /// `<`
    Less,
}

/// One condition of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compare {
    /// The key compared.
    pub key: Vec<u8>,
    /// The operator.
    pub op: CompareOp,
    /// What is compared and against which value.
    pub target: CompareTarget,
}

impl Compare {
    /// True when `key` does not exist.
    pub fn absent(key: impl Into<Vec<u8>>) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::CreateRevision(0),
        }
    }

    /// True when `key`'s mod revision equals `rev` (0 = key absent).
    pub fn mod_revision(key: impl Into<Vec<u8>>, rev: i64) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::ModRevision(rev),
        }
    }

    /// True when `key` exists with exactly `value`.
    pub fn value(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Compare {
            key: key.into(),
            op: CompareOp::Equal,
            target: CompareTarget::Value(value.into()),
        }
    }

    /// Evaluates the compare against the current state of the key (used by the
    /// embedded backend; etcd evaluates server-side with the same semantics).
    pub fn matches(&self, kv: Option<&KeyValue>) -> bool {
        use std::cmp::Ordering;
        let ord = match (&self.target, kv) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(v), Some(kv)) => kv.value.as_slice().cmp(v.as_slice()),
            (CompareTarget::Version(v), kv) => kv.map_or(0, |k| k.version).cmp(v),
            (CompareTarget::CreateRevision(v), kv) => kv.map_or(0, |k| k.create_revision).cmp(v),
            (CompareTarget::ModRevision(v), kv) => kv.map_or(0, |k| k.mod_revision).cmp(v),
        };
        match self.op {
            CompareOp::Equal => ord == Ordering::Equal,
            CompareOp::NotEqual => ord != Ordering::Equal,
            CompareOp::Greater => ord == Ordering::Greater,
            CompareOp::Less => ord == Ordering::Less,
        }
    }
}

/// One operation of a transaction branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Put a key (optionally attached to a lease).
    Put {
        /// Key.
        key: Vec<u8>,
        /// Value.
        value: Vec<u8>,
        /// Lease to attach, if any.
        lease: Option<LeaseId>,
    },
    /// Delete one key.
    Delete {
        /// Key.
        key: Vec<u8>,
    },
    /// Delete every key with this prefix.
    DeletePrefix {
        /// Prefix.
        prefix: Vec<u8>,
    },
    /// Read one key. Reads see the state before the transaction's writes; do not
    /// read a key the same transaction writes.
    Get {
        /// Key.
        key: Vec<u8>,
    },
}

impl TxnOp {
    /// A put without lease.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        TxnOp::Put {
            key: key.into(),
            value: value.into(),
            lease: None,
        }
    }

    /// A single-key delete.
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        TxnOp::Delete { key: key.into() }
    }

    /// A prefix delete.
    pub fn delete_prefix(prefix: impl Into<Vec<u8>>) -> Self {
        TxnOp::DeletePrefix {
            prefix: prefix.into(),
        }
    }

    /// A single-key read.
    pub fn get(key: impl Into<Vec<u8>>) -> Self {
        TxnOp::Get { key: key.into() }
    }
}

/// A transaction: if every compare holds, run `success`, else `failure`. Atomic: all
/// writes of the branch get one new revision. A key may be written at most once.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Txn {
    /// Conditions (all must hold).
    pub compares: Vec<Compare>,
    /// Ops run when all compares hold.
    pub success: Vec<TxnOp>,
    /// Ops run otherwise.
    pub failure: Vec<TxnOp>,
}

impl Txn {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the conditions.
    pub fn when(mut self, compares: impl Into<Vec<Compare>>) -> Self {
        self.compares = compares.into();
        self
    }

    /// Sets the success branch.
    pub fn and_then(mut self, ops: impl Into<Vec<TxnOp>>) -> Self {
        self.success = ops.into();
        self
    }

    /// Sets the failure branch.
    pub fn or_else(mut self, ops: impl Into<Vec<TxnOp>>) -> Self {
        self.failure = ops.into();
        self
    }
}

/// The response of one transaction op, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOpResponse {
    /// A put happened.
    Put,
    /// Number of keys deleted.
    Delete(u64),
    /// The key read (`None` = missing).
    Get(Option<KeyValue>),
}

/// The result of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnResponse {
    /// Whether the compares held (success branch ran).
    pub succeeded: bool,
    /// The store revision after the transaction.
    pub revision: i64,
    /// One response per op of the branch that ran.
    pub responses: Vec<TxnOpResponse>,
}

/// Kind of a watch event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// Key created or updated.
    Put,
    /// Key deleted (explicitly or by lease expiry).
    Delete,
}

/// One change seen by a watch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The key-value after the change; for deletes only `key` and `mod_revision`
    /// (= the deletion revision) are meaningful.
    pub kv: KeyValue,
}

/// Stream of watch batches. Events are in revision order; a batch never splits one
/// revision. An `Err` ends the stream (e.g. [`Error::Compacted`](crate::Error) or the
/// backend became unavailable) — re-read and re-watch.
pub type WatchStream = BoxStream<'static, Result<Vec<WatchEvent>>>;

/// The etcd-shaped storage seam for all cluster metadata.
#[async_trait]
pub trait KvBackend: Send + Sync + Debug + 'static {
    /// Short name for logs ("etcd", "embedded").
    fn name(&self) -> &'static str;

    /// Reads one key.
    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>>;

    /// Reads all keys starting with `prefix` (sorted by key), with the read revision.
    async fn range(&self, prefix: &[u8]) -> Result<RangeResponse>;

    /// Writes a key; returns the new store revision.
    async fn put(&self, key: &[u8], value: &[u8], lease: Option<LeaseId>) -> Result<i64>;

    /// Deletes a key; true when it existed.
    async fn delete(&self, key: &[u8]) -> Result<bool>;

    /// Deletes every key with `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &[u8]) -> Result<u64>;

    /// Runs a transaction atomically.
    async fn txn(&self, txn: Txn) -> Result<TxnResponse>;

    /// Watches keys with `prefix`, starting at `start_revision` (0 = changes after
    /// now). A start revision older than the retained history fails with
    /// [`Error::Compacted`](crate::Error::Compacted).
    async fn watch(&self, prefix: &[u8], start_revision: i64) -> Result<WatchStream>;

    /// Grants a lease with a TTL in seconds.
    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId>;

    /// Renews a lease (its deadline becomes now + TTL).
    /// [`Error::LeaseNotFound`](crate::Error::LeaseNotFound) when it expired or never
    /// existed.
    async fn keep_alive(&self, lease: LeaseId) -> Result<()>;

    /// Revokes a lease, deleting its keys.
    async fn revoke_lease(&self, lease: LeaseId) -> Result<()>;
}

/// Smallest key greater than every key with `prefix` (etcd's range end for a prefix;
/// empty = no upper bound).
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    Vec::new()
}
