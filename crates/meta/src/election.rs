//! Leader election over the [`KvBackend`] seam, so that one `sundial-meta` instance
//! among many runs the cluster-wide services (retention, shard precreation).
//!
//! * Campaign: read the leader key (`leader/services`); when it is absent, grant a
//!   lease and put the key, holding this instance's id and attached to the lease, in a
//!   transaction that requires the key to be absent. Exactly one candidate wins;
//!   the others try again every `retry_interval`.
//! * Lead: renew the lease every third of its TTL and check that the key still holds
//!   this instance's id. The leadership is lost when the lease is gone, when the key
//!   no longer names this instance, or when no renewal has succeeded for half the TTL
//!   (etcd unreachable). In that last case the lease may still be alive, but it
//!   could expire and another instance take over, so the leader gives up first: its
//!   last check ends (at most 5/6 TTL after the last renewal) before that lease can
//!   expire.
//! * A leader that dies stops renewing: its key vanishes with its lease and a
//!   follower takes over within TTL + `retry_interval`. A leader that stops cleanly
//!   revokes its lease ([`Leadership::resign`]), so the next attempt of a follower wins.
//!
//! The services' operations are compare-and-swap transactions, so a pass that a
//! former leader still has in flight does no harm; the election keeps the work in
//! one place, it is not needed for correctness.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};
use crate::kv::{Compare, KvBackend, LeaseId, Txn, TxnOp};

/// Election tuning.
#[derive(Debug, Clone)]
pub struct ElectionOptions {
    /// The leader key, relative to the meta prefix.
    pub key: String,
    /// The leader's lease TTL (whole seconds, at least 1; rounded up). A dead
    /// leader is replaced within TTL + `retry_interval`.
    pub ttl: Duration,
    /// How often a follower tries to become the leader.
    pub retry_interval: Duration,
}

impl Default for ElectionOptions {
    fn default() -> Self {
        ElectionOptions {
            key: crate::keys::LEADER_SERVICES.to_string(),
            ttl: Duration::from_secs(10),
            retry_interval: Duration::from_secs(3),
        }
    }
}

impl ElectionOptions {
    /// The TTL in whole seconds, as leases take it.
    fn ttl_secs(&self) -> i64 {
        let ms = self.ttl.as_millis().max(1);
        i64::try_from(ms.div_ceil(1000)).unwrap_or(i64::MAX)
    }

    /// The TTL the timing uses: what the backend was asked for.
    fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs().unsigned_abs())
    }
}

/// One candidate of an election.
#[derive(Debug, Clone)]
pub struct Election {
    kv: Arc<dyn KvBackend>,
    id: String,
    opts: ElectionOptions,
}

/// The outcome of one [`Election::try_acquire`].
#[derive(Debug)]
pub enum Attempt {
    /// This candidate is now the leader.
    Won(Leadership),
    /// Another instance leads (its id).
    Held(String),
}

impl Election {
    /// A candidate named `id` (unique among the candidates; it is what the leader
    /// key holds).
    pub fn new(kv: Arc<dyn KvBackend>, id: impl Into<String>, opts: ElectionOptions) -> Self {
        Election {
            kv,
            id: id.into(),
            opts,
        }
    }

    /// This candidate's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The options.
    pub fn options(&self) -> &ElectionOptions {
        &self.opts
    }

    /// The current leader's id, if any.
    pub async fn leader(&self) -> Result<Option<String>> {
        let kv = self
            .bounded("reading the leader", self.kv.get(self.opts.key.as_bytes()))
            .await?;
        Ok(kv.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()))
    }

    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        let t = self.opts.lease_ttl();
        match tokio::time::timeout(t, fut).await {
            Ok(r) => r,
            Err(_) => Err(Error::Unavailable(format!(
                "{what}: no answer from {} within {t:?}",
                self.kv.name()
            ))),
        }
    }

    /// One attempt: becomes the leader if nobody is. `Err` when the backend could
    /// not be asked (nothing is left behind but a lease that expires by itself).
    pub async fn try_acquire(&self) -> Result<Attempt> {
        let key = self.opts.key.as_bytes();
        // Reading first: while someone leads, followers grant no leases.
        if let Some(kv) = self.bounded("reading the leader", self.kv.get(key)).await? {
            return Ok(Attempt::Held(
                String::from_utf8_lossy(&kv.value).into_owned(),
            ));
        }
        // The lease lives at least TTL from before it was asked for.
        let asked = Instant::now();
        let lease = self
            .bounded(
                "granting the leader lease",
                self.kv.grant_lease(self.opts.ttl_secs()),
            )
            .await?;
        let txn = Txn::new()
            .when(vec![Compare::absent(key.to_vec())])
            .and_then(vec![TxnOp::Put {
                key: key.to_vec(),
                value: self.id.as_bytes().to_vec(),
                lease: Some(lease),
            }])
            .or_else(vec![TxnOp::get(key.to_vec())]);
        let res = self.bounded("claiming leadership", self.kv.txn(txn)).await;
        match res {
            Ok(r) if r.succeeded => Ok(Attempt::Won(Leadership::start(
                self.kv.clone(),
                self.opts.clone(),
                self.id.clone(),
                lease,
                asked,
            ))),
            Ok(r) => {
                self.revoke_quietly(lease).await;
                let holder = r.responses.into_iter().find_map(|op| match op {
                    crate::kv::TxnOpResponse::Get(Some(kv)) => {
                        Some(String::from_utf8_lossy(&kv.value).into_owned())
                    }
                    _ => None,
                });
                Ok(Attempt::Held(holder.unwrap_or_default()))
            }
            Err(e) => {
                // The claim may have landed: revoking deletes the key with the lease.
                self.revoke_quietly(lease).await;
                Err(e)
            }
        }
    }

    async fn revoke_quietly(&self, lease: LeaseId) {
        if let Err(e) = self
            .bounded("revoking a lease", self.kv.revoke_lease(lease))
            .await
        {
            tracing::debug!(lease, error = %e, "revoking an unused leader lease failed; it expires by itself");
        }
    }

    /// Waits until this candidate is the leader, trying every `retry_interval`.
    pub async fn campaign(&self) -> Leadership {
        let mut following: Option<String> = None;
        loop {
            match self.try_acquire().await {
                Ok(Attempt::Won(l)) => {
                    tracing::info!(id = %self.id, key = %self.opts.key, "became the services leader");
                    return l;
                }
                Ok(Attempt::Held(holder)) if holder == self.id => {
                    // A leadership this instance gave up: its lease may still be
                    // alive, so wait for it to expire rather than adopt it.
                    tracing::debug!(id = %self.id, "own former leader key still held");
                }
                Ok(Attempt::Held(holder)) => {
                    if following.as_deref() != Some(holder.as_str()) {
                        tracing::info!(id = %self.id, leader = %holder, "following the services leader");
                        following = Some(holder);
                    }
                }
                Err(e) => {
                    tracing::warn!(id = %self.id, error = %e, "leader election attempt failed");
                    following = None;
                }
            }
            tokio::time::sleep(self.opts.retry_interval).await;
        }
    }
}

/// Held while this instance leads. Dropping it stops renewing the lease (the key
/// vanishes when the lease expires); [`resign`](Self::resign) frees it at once.
#[derive(Debug)]
pub struct Leadership {
    kv: Arc<dyn KvBackend>,
    lease: LeaseId,
    ttl: Duration,
    lost: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl Leadership {
    fn start(
        kv: Arc<dyn KvBackend>,
        opts: ElectionOptions,
        id: String,
        lease: LeaseId,
        renewed: Instant,
    ) -> Self {
        let (tx, rx) = watch::channel(false);
        let ttl = opts.lease_ttl();
        let task = tokio::spawn(keep_leading(
            kv.clone(),
            opts.key,
            id,
            lease,
            ttl,
            renewed,
            tx,
        ));
        Leadership {
            kv,
            lease,
            ttl,
            lost: rx,
            task,
        }
    }

    /// The lease attached to the leader key.
    pub fn lease(&self) -> LeaseId {
        self.lease
    }

    /// Whether this instance still leads.
    pub fn is_leader(&self) -> bool {
        !*self.lost.borrow() && !self.task.is_finished()
    }

    /// Resolves when the leadership is lost (lease gone, key taken, or the backend
    /// unreachable for half the TTL).
    pub async fn lost(&mut self) {
        // An error means the renewing task is gone: not leading any more either.
        let _ = self.lost.wait_for(|lost| *lost).await;
    }

    /// Gives the leadership up: stops renewing and revokes the lease, which deletes
    /// the key, so another candidate wins its next attempt.
    pub async fn resign(self) {
        self.task.abort();
        let bound = self.ttl;
        match tokio::time::timeout(bound, self.kv.revoke_lease(self.lease)).await {
            Ok(Ok(())) | Ok(Err(Error::LeaseNotFound(_))) => {
                tracing::info!("resigned as the services leader");
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "resigning failed; the leader key expires with its lease")
            }
            Err(_) => tracing::warn!("resigning timed out; the leader key expires with its lease"),
        }
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Renews the lease every third of the TTL and checks the key; sets `lost` and ends
/// when the leadership cannot be vouched for any more.
async fn keep_leading(
    kv: Arc<dyn KvBackend>,
    key: String,
    id: String,
    lease: LeaseId,
    ttl: Duration,
    mut renewed: Instant,
    lost: watch::Sender<bool>,
) {
    let period = ttl / 3;
    // Past this, stop even if etcd might still hold the lease: a round that starts
    // before it ends (bounded by `period`) before the lease can expire.
    let give_up_after = ttl / 2;
    let mut pause = period;
    let reason = loop {
        tokio::time::sleep(pause).await;
        let sent = Instant::now();
        let round = async {
            kv.keep_alive(lease).await?;
            kv.get(key.as_bytes()).await
        };
        match tokio::time::timeout(period, round).await {
            Ok(Ok(Some(kv))) if kv.value == id.as_bytes() && kv.lease == lease => {
                renewed = sent;
                pause = period;
            }
            Ok(Ok(Some(kv))) => {
                break format!(
                    "the leader key now names {:?}",
                    String::from_utf8_lossy(&kv.value)
                );
            }
            Ok(Ok(None)) => break "the leader key was deleted".to_string(),
            Ok(Err(Error::LeaseNotFound(_))) => break "the leader lease expired".to_string(),
            res => {
                let e = match res {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("no answer within {period:?}"),
                };
                if renewed.elapsed() >= give_up_after {
                    break format!("the lease could not be renewed for {give_up_after:?}: {e}");
                }
                tracing::warn!(error = %e, "renewing the leader lease failed; retrying");
                pause = period / 2;
            }
        }
    };
    tracing::warn!(%reason, "lost the services leadership");
    let _ = lost.send(true);
    // Free the key if it is still ours (no-op when the lease is gone).
    let _ = tokio::time::timeout(period, kv.revoke_lease(lease)).await;
}
