//! Hinted handoff (InfluxDB Enterprise's): points for an owner that could not be
//! reached go into a durable queue for that node on the gateway's disk, and a
//! drainer per node replays them, in order, once the node answers again.
//!
//! Queues are bounded by size (a full queue refuses new hints: the write gets 503)
//! and by age (hints older than `max_age` are dropped, logged and counted, never
//! silently). A hint the node refuses for good (bad payload, a shard it no longer
//! owns or meta no longer has) is dropped the same way; anything else is retried
//! with backoff.

mod queue;

pub use queue::Hint;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sundial_common::config::duration;
use sundial_common::ErrorClass;
use sundial_meta::NodeId;
use tokio::sync::Notify;

use crate::error::{Error, Result};
use queue::NodeQueue;

/// Where hints go and how long they may wait: the gateway's `[hinted-handoff]`
/// section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct HandoffOptions {
    /// The queues' directory, on this gateway's disk (a gateway replaced for good
    /// hands its queues over: `sundial-gateway handoff`).
    pub dir: PathBuf,
    /// Bytes one node's queue may hold (0: no limit); past it, writes that need a
    /// hint for that node get 503.
    pub max_size: u64,
    /// Hints older than this are dropped (counted and logged), not delivered.
    #[serde(with = "duration")]
    pub max_age: Duration,
    /// First wait after a failed delivery; doubles up to `retry-max-interval`.
    #[serde(with = "duration")]
    pub retry_interval: Duration,
    #[serde(with = "duration")]
    pub retry_max_interval: Duration,
}

impl Default for HandoffOptions {
    /// InfluxDB Enterprise's defaults: 10 GiB and 7 days per node.
    fn default() -> Self {
        HandoffOptions {
            dir: PathBuf::from("data/hh"),
            max_size: 10 << 30,
            max_age: Duration::from_secs(7 * 24 * 3600),
            retry_interval: Duration::from_millis(200),
            retry_max_interval: Duration::from_secs(10),
        }
    }
}

impl HandoffOptions {
    pub fn validate(&self) -> std::result::Result<(), sundial_common::config::ConfigError> {
        if self.retry_interval.is_zero() || self.retry_max_interval < self.retry_interval {
            return Err(sundial_common::config::ConfigError(
                "hinted-handoff.retry-interval must be longer than 0 and at most retry-max-interval"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The defaults with queues in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        HandoffOptions {
            dir: dir.into(),
            ..HandoffOptions::default()
        }
    }
}

/// Delivers a hint to its node (the gateway's gRPC writer).
#[async_trait]
pub trait HintSender: Send + Sync + std::fmt::Debug {
    async fn send(&self, node: NodeId, hint: &Hint) -> Result<()>;
}

/// One node's queue as the metrics see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueStats {
    pub node: NodeId,
    pub records: u64,
    pub bytes: u64,
    /// Age of the oldest hint, ms (0 when empty).
    pub oldest_age_ms: u64,
}

/// Counters over all queues.
#[derive(Debug, Default)]
pub struct HandoffCounters {
    pub enqueued: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped_expired: AtomicU64,
    pub dropped_rejected: AtomicU64,
    pub refused_full: AtomicU64,
}

#[derive(Debug)]
struct Node {
    queue: Mutex<NodeQueue>,
    wake: Notify,
    /// Enqueue time of the head hint (ms), or 0.
    oldest_ms: AtomicU64,
}

impl Node {
    fn queue(&self) -> MutexGuard<'_, NodeQueue> {
        // A panic while holding the lock cannot leave a queue half-updated in a way
        // the file format does not already tolerate.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// All nodes' queues and their drainers.
#[derive(Debug)]
pub struct HintedHandoff {
    opts: HandoffOptions,
    nodes: Mutex<HashMap<NodeId, Arc<Node>>>,
    pub counters: Arc<HandoffCounters>,
    sender: Mutex<Option<Arc<dyn HintSender>>>,
    drainers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Held (flock) while open: two processes draining one queue would deliver
    /// hints twice and corrupt its head.
    _lock: std::fs::File,
}

use sundial_common::now_ms;

impl HintedHandoff {
    /// Opens the queues left in `opts.dir` (a restarted gateway delivers them).
    pub fn open(opts: HandoffOptions) -> Result<Arc<HintedHandoff>> {
        let io = |e: std::io::Error| {
            Error::Internal(format!("hinted handoff {}: {e}", opts.dir.display()))
        };
        std::fs::create_dir_all(&opts.dir).map_err(io)?;
        let lock = std::fs::File::create(opts.dir.join("LOCK")).map_err(io)?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Internal(format!(
                    "hinted handoff {}: in use by another process",
                    opts.dir.display()
                )))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let hh = Arc::new(HintedHandoff {
            opts,
            nodes: Mutex::new(HashMap::new()),
            counters: Arc::new(HandoffCounters::default()),
            sender: Mutex::new(None),
            drainers: Mutex::new(Vec::new()),
            _lock: lock,
        });
        let entries = std::fs::read_dir(&hh.opts.dir)
            .map_err(|e| Error::Internal(format!("hinted handoff: {e}")))?;
        for e in entries.filter_map(|e| e.ok()) {
            if let Some(id) = e
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<NodeId>().ok())
            {
                hh.node(id)?;
            }
        }
        Ok(hh)
    }

    fn lock_nodes(&self) -> MutexGuard<'_, HashMap<NodeId, Arc<Node>>> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn node(self: &Arc<Self>, id: NodeId) -> Result<Arc<Node>> {
        let mut nodes = self.lock_nodes();
        if let Some(n) = nodes.get(&id) {
            return Ok(n.clone());
        }
        let mut q = NodeQueue::open(&self.opts.dir.join(id.to_string()))?;
        // The head's age, for the metrics and reports before the drainer runs.
        let oldest_ms = match q.peek() {
            Ok(Some((head, _))) => head.enqueued_ms.max(0) as u64,
            _ => 0,
        };
        if q.records > 0 {
            tracing::info!(
                node = id,
                records = q.records,
                bytes = q.bytes,
                "hinted handoff queue found"
            );
        }
        if q.damaged > 0 {
            self.counters
                .dropped_rejected
                .fetch_add(q.damaged, Ordering::Relaxed);
        }
        let n = Arc::new(Node {
            queue: Mutex::new(q),
            wake: Notify::new(),
            oldest_ms: AtomicU64::new(oldest_ms),
        });
        nodes.insert(id, n.clone());
        drop(nodes);
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(sender) = sender {
            self.spawn_drainer(id, n.clone(), sender);
        }
        Ok(n)
    }

    /// Queues `points` of `shard_id` for `node`, durably, stamped with the
    /// time their write was accepted (`accepted_ms`: what deletes issued
    /// since are ordered against when the hint arrives, and its age).
    /// `HandoffFull` when its queue is at `max_size`.
    pub async fn enqueue(
        self: &Arc<Self>,
        node: NodeId,
        shard_id: u64,
        database: &str,
        points: bytes::Bytes,
        accepted_ms: i64,
    ) -> Result<()> {
        let hint = Hint {
            enqueued_ms: accepted_ms,
            shard_id,
            database: database.to_string(),
            points,
        };
        let hh = self.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let n = hh.node(node)?;
            let res = n.queue().append(&hint, hh.opts.max_size);
            match &res {
                Ok(()) => {
                    hh.counters.enqueued.fetch_add(1, Ordering::Relaxed);
                    n.wake.notify_one();
                }
                Err(Error::HandoffFull { .. }) => {
                    hh.counters.refused_full.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {}
            }
            res.map_err(|e| match e {
                Error::HandoffFull { bytes, max } => Error::shard(
                    ErrorClass::Unavailable,
                    format!("node {node} is unreachable and its hinted handoff queue is full ({bytes} bytes queued, max-size {max}); retry later"),
                ),
                e => e,
            })
        })
        .await
        .map_err(|e| Error::Internal(format!("hinted handoff task failed: {e}")))?
    }

    /// Starts a drainer for every queue, now and as queues appear.
    pub fn start(self: &Arc<Self>, sender: Arc<dyn HintSender>) {
        *self.sender.lock().unwrap_or_else(|p| p.into_inner()) = Some(sender.clone());
        let nodes: Vec<(NodeId, Arc<Node>)> = self
            .lock_nodes()
            .iter()
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        for (id, n) in nodes {
            self.spawn_drainer(id, n, sender.clone());
        }
    }

    fn spawn_drainer(self: &Arc<Self>, id: NodeId, node: Arc<Node>, sender: Arc<dyn HintSender>) {
        let weak = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut backoff = None;
            loop {
                let Some(hh) = weak.upgrade() else { return };
                match hh.drain_one(id, &node, sender.as_ref()).await {
                    Drained::Delivered | Drained::Dropped => backoff = None,
                    Drained::Empty => {
                        drop(hh);
                        // Woken by the next enqueue; the timeout re-checks expiry.
                        let _ = tokio::time::timeout(Duration::from_secs(1), node.wake.notified())
                            .await;
                        continue;
                    }
                    Drained::Failed => {
                        let o = &hh.opts;
                        let wait: Duration = backoff.map_or(o.retry_interval, |b: Duration| {
                            (b * 2).min(o.retry_max_interval)
                        });
                        backoff = Some(wait);
                        drop(hh);
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        });
        self.drainers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task);
    }

    async fn drain_one(&self, id: NodeId, node: &Arc<Node>, sender: &dyn HintSender) -> Drained {
        let peeked = {
            let n = node.clone();
            tokio::task::spawn_blocking(move || n.queue().peek()).await
        };
        let (hint, next) = match peeked {
            Ok(Ok(Some(p))) => p,
            Ok(Ok(None)) => {
                node.oldest_ms.store(0, Ordering::Relaxed);
                return Drained::Empty;
            }
            Ok(Err(e)) => {
                tracing::error!(node = id, error = %e, "hinted handoff: reading the queue failed");
                return Drained::Failed;
            }
            Err(_) => return Drained::Failed,
        };
        node.oldest_ms
            .store(hint.enqueued_ms.max(0) as u64, Ordering::Relaxed);
        let age = now_ms().saturating_sub(hint.enqueued_ms);
        let outcome = if age > self.opts.max_age.as_millis() as i64 {
            tracing::warn!(
                node = id,
                shard = hint.shard_id,
                age_ms = age,
                bytes = hint.points.len(),
                "hinted handoff: dropping a hint past max-age"
            );
            self.counters
                .dropped_expired
                .fetch_add(1, Ordering::Relaxed);
            Drained::Dropped
        } else {
            match sender.send(id, &hint).await {
                Ok(()) => {
                    self.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    Drained::Delivered
                }
                Err(e) if matches!(e.class(), ErrorClass::BadRequest | ErrorClass::NotFound) => {
                    tracing::error!(node = id, shard = hint.shard_id, error = %e, "hinted handoff: the node refused a hint for good; dropped");
                    self.counters
                        .dropped_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    Drained::Dropped
                }
                Err(e) => {
                    tracing::debug!(node = id, error = %e, "hinted handoff: node still unreachable");
                    return Drained::Failed;
                }
            }
        };
        let n = node.clone();
        match tokio::task::spawn_blocking(move || n.queue().advance(next)).await {
            Ok(Ok(())) => outcome,
            Ok(Err(e)) => {
                tracing::error!(node = id, error = %e, "hinted handoff: moving the queue head failed");
                Drained::Failed
            }
            Err(_) => Drained::Failed,
        }
    }

    /// Depth and oldest age of every queue.
    pub fn stats(&self) -> Vec<QueueStats> {
        let now = now_ms().max(0) as u64;
        let mut out: Vec<QueueStats> = self
            .lock_nodes()
            .iter()
            .map(|(id, n)| {
                let q = n.queue();
                let oldest = n.oldest_ms.load(Ordering::Relaxed);
                QueueStats {
                    node: *id,
                    records: q.records,
                    bytes: q.bytes,
                    oldest_age_ms: if q.is_empty() || oldest == 0 {
                        0
                    } else {
                        now.saturating_sub(oldest)
                    },
                }
            })
            .collect();
        out.sort_by_key(|s| s.node);
        out
    }
}

impl Drop for HintedHandoff {
    fn drop(&mut self) {
        for t in self
            .drainers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }
}

enum Drained {
    Delivered,
    Dropped,
    Empty,
    Failed,
}
