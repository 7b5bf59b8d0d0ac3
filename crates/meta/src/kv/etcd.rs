//! [`KvBackend`] over a real etcd cluster (`etcd-client`).
//!
//! Every key is stored under an optional namespace (e.g. `/sundial/`): the backend
//! prepends it on the way in and strips it on the way out, so many Sundial clusters
//! (or test runs) can share one etcd without seeing each other.

use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare as ECompare, CompareOp as ECompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, PutOptions, Txn as ETxn, TxnOp as ETxnOp, TxnOpResponse as ETxnOpResponse,
    WatchOptions,
};
use futures::StreamExt;

use super::{
    Compare, CompareOp, CompareTarget, EventKind, KeyValue, KvBackend, LeaseId, RangeResponse, Txn,
    TxnOp, TxnOpResponse, TxnResponse, WatchEvent, WatchStream,
};
use crate::error::{Error, Result};

/// The etcd backend. Cheap to clone.
#[derive(Clone)]
pub struct EtcdBackend {
    client: Client,
    namespace: Vec<u8>,
    endpoints: Vec<String>,
}

impl std::fmt::Debug for EtcdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdBackend")
            .field("endpoints", &self.endpoints)
            .field("namespace", &String::from_utf8_lossy(&self.namespace))
            .finish()
    }
}

impl EtcdBackend {
    /// Connects to etcd at `endpoints` (e.g. `http://127.0.0.1:2379`), storing every key
    /// under `namespace`. Connecting is lazy: an unreachable etcd is reported by the
    /// first call, and the connection recovers by itself when etcd comes back.
    #[tracing::instrument(name = "etcd_backend_connect", skip_all, fields(endpoints = ?endpoints))]
    pub async fn connect(endpoints: &[String], namespace: impl Into<Vec<u8>>) -> Result<Self> {
        if endpoints.is_empty() {
            return Err(Error::InvalidArgument("no etcd endpoints given".into()));
        }
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3))
            .with_keep_alive_while_idle(true);
        let client = Client::connect(endpoints, Some(opts)).await?;
        Ok(EtcdBackend {
            client,
            namespace: namespace.into(),
            endpoints: endpoints.to_vec(),
        })
    }

    /// The namespace every key lives under.
    pub fn namespace(&self) -> &[u8] {
        &self.namespace
    }

    fn k(&self, key: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.namespace.len() + key.len());
        v.extend_from_slice(&self.namespace);
        v.extend_from_slice(key);
        v
    }

    fn kv(&self, kv: &etcd_client::KeyValue) -> KeyValue {
        KeyValue {
            key: strip(&self.namespace, kv.key()),
            value: kv.value().to_vec(),
            create_revision: kv.create_revision(),
            mod_revision: kv.mod_revision(),
            version: kv.version(),
            lease: kv.lease(),
        }
    }

    fn prefix_opts_get(&self, prefix: &[u8]) -> (Vec<u8>, GetOptions) {
        let key = self.k(prefix);
        if key.is_empty() {
            (vec![0], GetOptions::new().with_from_key())
        } else {
            (key, GetOptions::new().with_prefix())
        }
    }

    fn prefix_opts_delete(&self, prefix: &[u8]) -> (Vec<u8>, DeleteOptions) {
        let key = self.k(prefix);
        if key.is_empty() {
            (vec![0], DeleteOptions::new().with_from_key())
        } else {
            (key, DeleteOptions::new().with_prefix())
        }
    }

    fn compare(&self, c: &Compare) -> ECompare {
        let op = match c.op {
            CompareOp::Equal => ECompareOp::Equal,
            CompareOp::NotEqual => ECompareOp::NotEqual,
            CompareOp::Greater => ECompareOp::Greater,
            CompareOp::Less => ECompareOp::Less,
        };
        let key = self.k(&c.key);
        match &c.target {
            CompareTarget::Value(v) => ECompare::value(key, op, v.clone()),
            CompareTarget::Version(v) => ECompare::version(key, op, *v),
            CompareTarget::CreateRevision(v) => ECompare::create_revision(key, op, *v),
            CompareTarget::ModRevision(v) => ECompare::mod_revision(key, op, *v),
        }
    }

    fn op(&self, op: &TxnOp) -> ETxnOp {
        match op {
            TxnOp::Put { key, value, lease } => {
                let opts = lease.map(|l| PutOptions::new().with_lease(l));
                ETxnOp::put(self.k(key), value.clone(), opts)
            }
            TxnOp::Delete { key } => ETxnOp::delete(self.k(key), None),
            TxnOp::DeletePrefix { prefix } => {
                let (k, o) = self.prefix_opts_delete(prefix);
                ETxnOp::delete(k, Some(o))
            }
            TxnOp::Get { key } => ETxnOp::get(self.k(key), None),
        }
    }
}

fn strip(ns: &[u8], key: &[u8]) -> Vec<u8> {
    key.strip_prefix(ns).unwrap_or(key).to_vec()
}

fn lease_err(e: etcd_client::Error, lease: LeaseId) -> Error {
    match &e {
        etcd_client::Error::LeaseKeepAliveError(m) if m.contains("not found") => {
            Error::LeaseNotFound(lease)
        }
        etcd_client::Error::GRpcStatus(s)
            if s.code() == tonic::Code::NotFound || s.message().contains("lease not found") =>
        {
            Error::LeaseNotFound(lease)
        }
        _ => Error::from(e),
    }
}

#[async_trait]
impl KvBackend for EtcdBackend {
    fn name(&self) -> &'static str {
        "etcd"
    }

    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        let resp = self.client.clone().get(self.k(key), None).await?;
        Ok(resp.kvs().first().map(|kv| self.kv(kv)))
    }

    async fn range(&self, prefix: &[u8]) -> Result<RangeResponse> {
        let (k, o) = self.prefix_opts_get(prefix);
        let resp = self.client.clone().get(k, Some(o)).await?;
        Ok(RangeResponse {
            kvs: resp.kvs().iter().map(|kv| self.kv(kv)).collect(),
            revision: resp.header().map_or(0, |h| h.revision()),
        })
    }

    async fn put(&self, key: &[u8], value: &[u8], lease: Option<LeaseId>) -> Result<i64> {
        let opts = lease.map(|l| PutOptions::new().with_lease(l));
        let resp = self
            .client
            .clone()
            .put(self.k(key), value.to_vec(), opts)
            .await
            .map_err(|e| lease_err(e, lease.unwrap_or(0)))?;
        Ok(resp.header().map_or(0, |h| h.revision()))
    }

    async fn delete(&self, key: &[u8]) -> Result<bool> {
        let resp = self.client.clone().delete(self.k(key), None).await?;
        Ok(resp.deleted() > 0)
    }

    async fn delete_prefix(&self, prefix: &[u8]) -> Result<u64> {
        let (k, o) = self.prefix_opts_delete(prefix);
        let resp = self.client.clone().delete(k, Some(o)).await?;
        Ok(u64::try_from(resp.deleted()).unwrap_or(0))
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        let lease = txn
            .success
            .iter()
            .chain(txn.failure.iter())
            .find_map(|o| match o {
                TxnOp::Put { lease: Some(l), .. } => Some(*l),
                _ => None,
            })
            .unwrap_or(0);
        let etxn = ETxn::new()
            .when(
                txn.compares
                    .iter()
                    .map(|c| self.compare(c))
                    .collect::<Vec<_>>(),
            )
            .and_then(txn.success.iter().map(|o| self.op(o)).collect::<Vec<_>>())
            .or_else(txn.failure.iter().map(|o| self.op(o)).collect::<Vec<_>>());
        let resp = self.client.clone().txn(etxn).await.map_err(|e| match &e {
            etcd_client::Error::GRpcStatus(s) if s.message().contains("duplicate key") => {
                Error::InvalidArgument(s.message().to_string())
            }
            _ => lease_err(e, lease),
        })?;
        let responses = resp
            .op_responses()
            .into_iter()
            .map(|r| match r {
                ETxnOpResponse::Put(_) => TxnOpResponse::Put,
                ETxnOpResponse::Delete(d) => {
                    TxnOpResponse::Delete(u64::try_from(d.deleted()).unwrap_or(0))
                }
                ETxnOpResponse::Get(g) => TxnOpResponse::Get(g.kvs().first().map(|kv| self.kv(kv))),
                ETxnOpResponse::Txn(_) => TxnOpResponse::Put,
            })
            .collect();
        Ok(TxnResponse {
            succeeded: resp.succeeded(),
            revision: resp.header().map_or(0, |h| h.revision()),
            responses,
        })
    }

    async fn watch(&self, prefix: &[u8], start_revision: i64) -> Result<WatchStream> {
        let key = self.k(prefix);
        let mut opts = if key.is_empty() {
            WatchOptions::new().with_from_key()
        } else {
            WatchOptions::new().with_prefix()
        };
        if start_revision > 0 {
            opts = opts.with_start_revision(start_revision);
        }
        let key = if key.is_empty() { vec![0] } else { key };
        let mut stream = self.client.clone().watch(key, Some(opts)).await?;
        // The first message confirms creation (or reports a compacted start revision).
        let first = stream.message().await?;
        match first {
            Some(r) if r.canceled() => {
                if r.compact_revision() > 0 {
                    return Err(Error::Compacted {
                        requested: start_revision,
                        oldest: r.compact_revision(),
                    });
                }
                return Err(Error::Unavailable(format!(
                    "etcd watch canceled: {}",
                    r.cancel_reason()
                )));
            }
            Some(_) => {}
            None => return Err(Error::Unavailable("etcd watch stream closed".into())),
        }
        let ns = self.namespace.clone();
        let s = futures::stream::unfold(Some(stream), move |st| {
            let ns = ns.clone();
            async move {
                let mut stream = st?;
                loop {
                    match stream.message().await {
                        Ok(Some(r)) => {
                            if r.canceled() {
                                let e = if r.compact_revision() > 0 {
                                    Error::Compacted {
                                        requested: start_revision,
                                        oldest: r.compact_revision(),
                                    }
                                } else {
                                    Error::Unavailable(format!(
                                        "etcd watch canceled: {}",
                                        r.cancel_reason()
                                    ))
                                };
                                return Some((Err(e), None));
                            }
                            let evs: Vec<WatchEvent> = r
                                .events()
                                .iter()
                                .filter_map(|e| {
                                    let kv = e.kv()?;
                                    let kind = match e.event_type() {
                                        EventType::Put => EventKind::Put,
                                        EventType::Delete => EventKind::Delete,
                                    };
                                    Some(WatchEvent {
                                        kind,
                                        kv: KeyValue {
                                            key: strip(&ns, kv.key()),
                                            value: kv.value().to_vec(),
                                            create_revision: kv.create_revision(),
                                            mod_revision: kv.mod_revision(),
                                            version: kv.version(),
                                            lease: kv.lease(),
                                        },
                                    })
                                })
                                .collect();
                            if !evs.is_empty() {
                                return Some((Ok(evs), Some(stream)));
                            }
                        }
                        Ok(None) => {
                            return Some((
                                Err(Error::Unavailable("etcd watch stream closed".into())),
                                None,
                            ))
                        }
                        Err(e) => return Some((Err(Error::from(e)), None)),
                    }
                }
            }
        });
        Ok(s.boxed())
    }

    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId> {
        if ttl_secs <= 0 {
            return Err(Error::InvalidArgument(format!(
                "lease TTL must be positive, got {ttl_secs}"
            )));
        }
        let resp = self.client.clone().lease_grant(ttl_secs, None).await?;
        Ok(resp.id())
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        // `lease_keep_alive` sends one keep-alive and checks the answer's TTL.
        self.client
            .clone()
            .lease_keep_alive(lease)
            .await
            .map_err(|e| lease_err(e, lease))?;
        Ok(())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.client
            .clone()
            .lease_revoke(lease)
            .await
            .map_err(|e| lease_err(e, lease))?;
        Ok(())
    }
}
