//! The [`KvBackend`] implementation of [`EmbeddedBackend`]: reads under the lock,
//! writes as transactions on a blocking thread, watches from the in-memory history
//! and the broadcast of new batches, leases.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::format::LogOp;
use super::{Batch, EmbeddedBackend};
use crate::error::{Error, Result};
use crate::kv::{
    KeyValue, KvBackend, LeaseId, RangeResponse, Txn, TxnOp, TxnOpResponse, TxnResponse,
    WatchEvent, WatchStream,
};

#[async_trait]
impl KvBackend for EmbeddedBackend {
    fn name(&self) -> &'static str {
        "embedded"
    }

    async fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        Ok(self.inner.lock().kvs.get(key).cloned())
    }

    async fn range(&self, prefix: &[u8]) -> Result<RangeResponse> {
        let st = self.inner.lock();
        Ok(RangeResponse {
            kvs: st.range(prefix),
            revision: st.revision,
        })
    }

    async fn put(&self, key: &[u8], value: &[u8], lease: Option<LeaseId>) -> Result<i64> {
        let op = TxnOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
        };
        self.blocking(move |st| st.txn(Txn::new().and_then(vec![op])).map(|r| r.revision))
            .await
    }

    async fn delete(&self, key: &[u8]) -> Result<bool> {
        let op = TxnOp::delete(key);
        let r = self
            .blocking(move |st| st.txn(Txn::new().and_then(vec![op])))
            .await?;
        Ok(matches!(r.responses.first(), Some(TxnOpResponse::Delete(n)) if *n > 0))
    }

    async fn delete_prefix(&self, prefix: &[u8]) -> Result<u64> {
        let op = TxnOp::delete_prefix(prefix);
        let r = self
            .blocking(move |st| st.txn(Txn::new().and_then(vec![op])))
            .await?;
        Ok(match r.responses.first() {
            Some(TxnOpResponse::Delete(n)) => *n,
            _ => 0,
        })
    }

    async fn txn(&self, txn: Txn) -> Result<TxnResponse> {
        self.blocking(move |st| st.txn(txn)).await
    }

    async fn watch(&self, prefix: &[u8], start_revision: i64) -> Result<WatchStream> {
        let (backlog, rx, last) = {
            let st = self.inner.lock();
            let rx = st.tx.subscribe();
            let mut backlog = Vec::new();
            if start_revision > 0 && start_revision <= st.revision {
                if start_revision < st.oldest_watchable {
                    return Err(Error::Compacted {
                        requested: start_revision,
                        oldest: st.oldest_watchable,
                    });
                }
                backlog.extend(st.history.iter().filter(|b| b.0 >= start_revision).cloned());
            }
            (backlog, rx, st.revision)
        };
        let prefix = prefix.to_vec();
        let filter = move |b: &Batch| -> Option<Vec<WatchEvent>> {
            let evs: Vec<WatchEvent> =
                b.1.iter()
                    .filter(|e| e.kv.key.starts_with(&prefix))
                    .cloned()
                    .collect();
            (!evs.is_empty()).then_some(evs)
        };
        let filter2 = filter.clone();
        let backlog =
            futures::stream::iter(backlog.into_iter().filter_map(move |b| filter(&b)).map(Ok));
        let live = futures::stream::unfold((rx, false), move |(mut rx, done)| {
            let filter = filter2.clone();
            async move {
                if done {
                    return None;
                }
                loop {
                    match rx.recv().await {
                        Ok(b) if b.0 <= last || b.0 < start_revision => continue,
                        Ok(b) => {
                            if let Some(evs) = filter(&b) {
                                return Some((Ok(evs), (rx, false)));
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let e = Error::Unavailable(format!(
                                "watch fell behind by {n} revisions; re-read and watch again"
                            ));
                            return Some((Err(e), (rx, true)));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        use futures::StreamExt;
        Ok(backlog.chain(live).boxed())
    }

    async fn grant_lease(&self, ttl_secs: i64) -> Result<LeaseId> {
        if ttl_secs <= 0 {
            return Err(Error::InvalidArgument(format!(
                "lease TTL must be positive, got {ttl_secs}"
            )));
        }
        self.blocking(move |st| {
            let id = st.next_lease;
            st.commit(vec![LogOp::Grant { id, ttl: ttl_secs }])?;
            Ok(id)
        })
        .await
    }

    async fn keep_alive(&self, lease: LeaseId) -> Result<()> {
        let mut st = self.inner.lock();
        let l = st
            .leases
            .get_mut(&lease)
            .ok_or(Error::LeaseNotFound(lease))?;
        if l.deadline <= Instant::now() {
            return Err(Error::LeaseNotFound(lease));
        }
        l.deadline = Instant::now() + Duration::from_secs(l.ttl.unsigned_abs());
        Ok(())
    }

    async fn revoke_lease(&self, lease: LeaseId) -> Result<()> {
        self.blocking(move |st| st.revoke(lease)).await
    }
}
