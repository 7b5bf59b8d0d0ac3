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

use sundial_proto::meta as pb;

use crate::error::{Error, Result};
use crate::kv::{EventKind, KvBackend};
use crate::snapshot::MetaSnapshot;
use crate::store::MetaStore;

mod mutations;
mod reads;

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
