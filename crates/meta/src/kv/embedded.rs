//! Embedded [`KvBackend`]: an in-memory ordered map made durable on local disk.
//!
//! # File format
//!
//! A data directory holds `LOCK` (an exclusive `flock` held while open, so only one
//! handle in one process ever appends to the log; released by the OS on exit or
//! kill -9) and two data files:
//!
//! * `wal` — the magic `SDLWAL01` followed by frames. A frame is
//!   `[len: u32 LE][crc32c(payload): u32 LE][payload: len bytes]`; the payload is the
//!   JSON of one log record: a sequence number, the store revision after it and the
//!   primitive changes (put key/value/lease, delete key, grant lease, revoke lease).
//!   Every mutating call appends one frame and `fsync`s before it returns (and before
//!   the change becomes visible to readers and watchers), so an acknowledged change
//!   survives `kill -9` and power loss.
//! * `snapshot` — the magic `SDLSNAP1` and one frame (same framing) holding the JSON
//!   of the whole state (keys with their revisions, leases, revision, last sequence).
//!
//! When the log grows past [`EmbeddedOptions::compact_after_records`] records the state
//! is written to `snapshot.tmp`, fsynced, renamed over `snapshot` (directory fsynced),
//! and a fresh empty `wal` is installed the same way. Recovery loads the snapshot, then
//! replays log records with a sequence number above the snapshot's; a torn or corrupt
//! tail (short frame, CRC mismatch) is truncated away with a warning — it can only be a
//! change that was never acknowledged.
//!
//! Revisions are monotonic across restarts. Leases are persisted (id and TTL); after a
//! restart their deadline restarts at now + TTL (as etcd does). Watch history is kept
//! in memory for the last [`EmbeddedOptions::history_revisions`] revisions; older start
//! revisions (and any after a restart) get [`Error::Compacted`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::{
    prefix_end, EventKind, KeyValue, KvBackend, LeaseId, RangeResponse, Txn, TxnOp, TxnOpResponse,
    TxnResponse, WatchEvent, WatchStream,
};
use crate::error::{Error, Result};

const WAL_MAGIC: &[u8; 8] = b"SDLWAL01";
const SNAP_MAGIC: &[u8; 8] = b"SDLSNAP1";
const WAL_FILE: &str = "wal";
const SNAP_FILE: &str = "snapshot";
const LOCK_FILE: &str = "LOCK";

/// Tuning of the embedded backend.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Compact the log into a snapshot after this many records.
    pub compact_after_records: u64,
    /// Revisions of watch history kept in memory.
    pub history_revisions: usize,
    /// How often expired leases are checked.
    pub lease_check_interval: Duration,
    /// Fsync the log before acknowledging (only tests of throughput turn this off).
    pub fsync: bool,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            compact_after_records: 10_000,
            history_revisions: 10_000,
            lease_check_interval: Duration::from_millis(100),
            fsync: true,
        }
    }
}

/// One primitive change in the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum LogOp {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: LeaseId,
    },
    Delete {
        key: Vec<u8>,
    },
    Grant {
        id: LeaseId,
        ttl: i64,
    },
    Revoke {
        id: LeaseId,
    },
}

/// One frame of the log: a sequence number, the revision after applying, the changes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LogRecord {
    seq: u64,
    rev: i64,
    ops: Vec<LogOp>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotLease {
    id: LeaseId,
    ttl: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SnapshotFile {
    seq: u64,
    revision: i64,
    next_lease: LeaseId,
    kvs: Vec<KeyValue>,
    leases: Vec<SnapshotLease>,
}

#[derive(Debug)]
struct Lease {
    ttl: i64,
    deadline: Instant,
    keys: BTreeSet<Vec<u8>>,
}

type Batch = Arc<(i64, Vec<WatchEvent>)>;

#[derive(Debug)]
struct State {
    dir: PathBuf,
    opts: EmbeddedOptions,
    kvs: BTreeMap<Vec<u8>, KeyValue>,
    revision: i64,
    seq: u64,
    records_since_snapshot: u64,
    next_lease: LeaseId,
    leases: HashMap<LeaseId, Lease>,
    history: VecDeque<Batch>,
    /// Oldest revision a watch may start at (older ones are compacted).
    oldest_watchable: i64,
    wal: File,
    /// Set when a write to disk failed: memory and disk may disagree, refuse writes.
    poisoned: Option<String>,
    /// Exclusive `flock` on `dir/LOCK`, held while open (released by the OS on exit).
    _lock: File,
    tx: broadcast::Sender<Batch>,
}

/// The embedded backend. Cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct EmbeddedBackend {
    inner: Arc<Mutex<State>>,
    dir: PathBuf,
}

fn io_err(ctx: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Storage(format!("{ctx} {}: {e}", path.display()))
}

fn encode_frame(payload: &[u8]) -> Result<Vec<u8>> {
    let len = u32::try_from(payload.len())
        .map_err(|_| Error::Storage("meta record larger than 4 GiB".into()))?;
    let mut buf = Vec::with_capacity(payload.len() + 8);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    buf.extend_from_slice(payload);
    Ok(buf)
}

/// Parses frames from `data` (after the magic); returns payloads and the byte length of
/// the valid prefix.
fn decode_frames(data: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while data.len() - pos >= 8 {
        let len =
            u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let crc = u32::from_le_bytes([data[pos + 4], data[pos + 5], data[pos + 6], data[pos + 7]]);
        let Some(end) = (pos + 8).checked_add(len) else {
            break;
        };
        if end > data.len() {
            break;
        }
        let payload = &data[pos + 8..end];
        if crc32c::crc32c(payload) != crc {
            break;
        }
        out.push(payload);
        pos = end;
    }
    (out, pos)
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("fsync dir", dir, e))
}

/// Writes `contents` to `dir/name` atomically (tmp + fsync + rename + dir fsync).
fn write_atomic(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
    f.write_all(contents)
        .map_err(|e| io_err("write", &tmp, e))?;
    f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, &dst).map_err(|e| io_err("rename", &dst, e))?;
    fsync_dir(dir)
}

impl State {
    fn check_writable(&self) -> Result<()> {
        match &self.poisoned {
            Some(m) => Err(Error::Storage(format!(
                "embedded meta store is read-only after a disk error: {m}"
            ))),
            None => Ok(()),
        }
    }

    /// Applies a primitive op to memory; returns the watch event it produced.
    fn apply_op(&mut self, op: &LogOp, rev: i64) -> Option<WatchEvent> {
        match op {
            LogOp::Put { key, value, lease } => {
                let (create_revision, version, old_lease) = match self.kvs.get(key) {
                    Some(old) => (old.create_revision, old.version + 1, old.lease),
                    None => (rev, 1, 0),
                };
                if old_lease != 0 && old_lease != *lease {
                    if let Some(l) = self.leases.get_mut(&old_lease) {
                        l.keys.remove(key);
                    }
                }
                if *lease != 0 {
                    if let Some(l) = self.leases.get_mut(lease) {
                        l.keys.insert(key.clone());
                    }
                }
                let kv = KeyValue {
                    key: key.clone(),
                    value: value.clone(),
                    create_revision,
                    mod_revision: rev,
                    version,
                    lease: *lease,
                };
                self.kvs.insert(key.clone(), kv.clone());
                Some(WatchEvent {
                    kind: EventKind::Put,
                    kv,
                })
            }
            LogOp::Delete { key } => {
                let old = self.kvs.remove(key)?;
                if old.lease != 0 {
                    if let Some(l) = self.leases.get_mut(&old.lease) {
                        l.keys.remove(key);
                    }
                }
                Some(WatchEvent {
                    kind: EventKind::Delete,
                    kv: KeyValue {
                        key: key.clone(),
                        value: Vec::new(),
                        create_revision: 0,
                        mod_revision: rev,
                        version: 0,
                        lease: 0,
                    },
                })
            }
            LogOp::Grant { id, ttl } => {
                self.leases.insert(
                    *id,
                    Lease {
                        ttl: *ttl,
                        deadline: Instant::now() + Duration::from_secs(ttl.unsigned_abs()),
                        keys: BTreeSet::new(),
                    },
                );
                self.next_lease = self.next_lease.max(id + 1);
                None
            }
            LogOp::Revoke { id } => {
                self.leases.remove(id);
                None
            }
        }
    }

    /// Makes `ops` durable (one log frame, fsync) and then visible. Bumps the revision
    /// when the ops change keys. Returns the new revision.
    fn commit(&mut self, ops: Vec<LogOp>) -> Result<i64> {
        self.check_writable()?;
        if ops.is_empty() {
            return Ok(self.revision);
        }
        let changes_keys = ops
            .iter()
            .any(|o| matches!(o, LogOp::Put { .. } | LogOp::Delete { .. }));
        let rev = if changes_keys {
            self.revision + 1
        } else {
            self.revision
        };
        let record = LogRecord {
            seq: self.seq + 1,
            rev,
            ops,
        };
        let payload =
            serde_json::to_vec(&record).map_err(|e| Error::Internal(format!("encode: {e}")))?;
        let frame = encode_frame(&payload)?;
        let wal_path = self.dir.join(WAL_FILE);
        let res = self.wal.write_all(&frame).and_then(|_| {
            if self.opts.fsync {
                self.wal.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = res {
            let err = io_err("append", &wal_path, e);
            self.poisoned = Some(err.to_string());
            return Err(err);
        }
        self.seq = record.seq;
        self.revision = rev;
        self.records_since_snapshot += 1;
        let events: Vec<WatchEvent> = record
            .ops
            .iter()
            .filter_map(|op| self.apply_op(op, rev))
            .collect();
        if !events.is_empty() {
            let batch = Arc::new((rev, events));
            self.history.push_back(batch.clone());
            while self.history.len() > self.opts.history_revisions {
                if let Some(old) = self.history.pop_front() {
                    self.oldest_watchable = old.0 + 1;
                }
            }
            // No receivers is fine.
            let _ = self.tx.send(batch);
        }
        if self.records_since_snapshot >= self.opts.compact_after_records {
            if let Err(e) = self.write_snapshot() {
                // The log still holds everything; compaction is retried next time.
                tracing::warn!(error = %e, "embedded meta snapshot failed");
            }
        }
        Ok(rev)
    }

    fn snapshot_bytes(&self) -> Result<Vec<u8>> {
        let snap = SnapshotFile {
            seq: self.seq,
            revision: self.revision,
            next_lease: self.next_lease,
            kvs: self.kvs.values().cloned().collect(),
            leases: self
                .leases
                .iter()
                .map(|(id, l)| SnapshotLease {
                    id: *id,
                    ttl: l.ttl,
                })
                .collect(),
        };
        let payload =
            serde_json::to_vec(&snap).map_err(|e| Error::Internal(format!("encode: {e}")))?;
        let mut out = SNAP_MAGIC.to_vec();
        out.extend_from_slice(&encode_frame(&payload)?);
        Ok(out)
    }

    /// Writes the snapshot atomically, then replaces the log with an empty one.
    fn write_snapshot(&mut self) -> Result<()> {
        let bytes = self.snapshot_bytes()?;
        write_atomic(&self.dir, SNAP_FILE, &bytes)?;
        write_atomic(&self.dir, WAL_FILE, WAL_MAGIC)?;
        let path = self.dir.join(WAL_FILE);
        self.wal = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| io_err("open", &path, e))?;
        self.records_since_snapshot = 0;
        tracing::debug!(
            seq = self.seq,
            revision = self.revision,
            "embedded meta compacted"
        );
        Ok(())
    }

    fn expire_leases(&mut self) -> Result<()> {
        let now = Instant::now();
        let expired: Vec<LeaseId> = self
            .leases
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::debug!(lease = id, "embedded meta lease expired");
            self.revoke(id)?;
        }
        Ok(())
    }

    fn revoke(&mut self, id: LeaseId) -> Result<()> {
        let Some(lease) = self.leases.get(&id) else {
            return Err(Error::LeaseNotFound(id));
        };
        let mut ops: Vec<LogOp> = lease
            .keys
            .iter()
            .map(|k| LogOp::Delete { key: k.clone() })
            .collect();
        ops.push(LogOp::Revoke { id });
        self.commit(ops)?;
        Ok(())
    }

    fn range(&self, prefix: &[u8]) -> Vec<KeyValue> {
        let end = prefix_end(prefix);
        let iter = self.kvs.range(prefix.to_vec()..);
        iter.take_while(|(k, _)| end.is_empty() || k.as_slice() < end.as_slice())
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn txn(&mut self, txn: Txn) -> Result<TxnResponse> {
        self.check_writable()?;
        let succeeded = txn.compares.iter().all(|c| c.matches(self.kvs.get(&c.key)));
        let branch = if succeeded { txn.success } else { txn.failure };
        let mut ops = Vec::new();
        let mut responses = Vec::with_capacity(branch.len());
        let mut written: BTreeSet<Vec<u8>> = BTreeSet::new();
        let mut dup = |k: &[u8]| -> Result<()> {
            if !written.insert(k.to_vec()) {
                return Err(Error::InvalidArgument(
                    "duplicate key given in txn request".into(),
                ));
            }
            Ok(())
        };
        for op in branch {
            match op {
                TxnOp::Put { key, value, lease } => {
                    dup(&key)?;
                    let lease = lease.unwrap_or(0);
                    if lease != 0 && !self.leases.contains_key(&lease) {
                        return Err(Error::LeaseNotFound(lease));
                    }
                    ops.push(LogOp::Put { key, value, lease });
                    responses.push(TxnOpResponse::Put);
                }
                TxnOp::Delete { key } => {
                    dup(&key)?;
                    let n = u64::from(self.kvs.contains_key(&key));
                    if n > 0 {
                        ops.push(LogOp::Delete { key });
                    }
                    responses.push(TxnOpResponse::Delete(n));
                }
                TxnOp::DeletePrefix { prefix } => {
                    let keys: Vec<Vec<u8>> =
                        self.range(&prefix).into_iter().map(|kv| kv.key).collect();
                    for k in &keys {
                        dup(k)?;
                    }
                    responses.push(TxnOpResponse::Delete(keys.len() as u64));
                    ops.extend(keys.into_iter().map(|key| LogOp::Delete { key }));
                }
                TxnOp::Get { key } => {
                    responses.push(TxnOpResponse::Get(self.kvs.get(&key).cloned()));
                }
            }
        }
        let revision = self.commit(ops)?;
        Ok(TxnResponse {
            succeeded,
            revision,
            responses,
        })
    }
}

impl EmbeddedBackend {
    /// Opens (creating if needed) the store in `dir` with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    /// Opens (creating if needed) the store in `dir`.
    #[tracing::instrument(name = "embedded_meta_open", skip(opts), fields(dir = %dir.as_ref().display()))]
    pub fn open_with(dir: impl AsRef<Path>, opts: EmbeddedOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create dir", &dir, e))?;
        let lock = lock_dir(&dir)?;
        let (tx, _) = broadcast::channel(1024);
        let snap_path = dir.join(SNAP_FILE);
        let wal_path = dir.join(WAL_FILE);

        let mut kvs = BTreeMap::new();
        let mut leases = HashMap::new();
        let (mut seq, mut revision, mut next_lease) = (0u64, 0i64, 1i64);
        match std::fs::read(&snap_path) {
            Ok(bytes) => {
                let body = bytes
                    .strip_prefix(SNAP_MAGIC.as_slice())
                    .ok_or_else(|| Error::Storage(format!("{}: bad magic", snap_path.display())))?;
                let (frames, _) = decode_frames(body);
                let payload = frames.first().ok_or_else(|| {
                    Error::Storage(format!("{}: corrupt snapshot", snap_path.display()))
                })?;
                let snap: SnapshotFile = serde_json::from_slice(payload)
                    .map_err(|e| Error::Storage(format!("{}: {e}", snap_path.display())))?;
                seq = snap.seq;
                revision = snap.revision;
                next_lease = snap.next_lease;
                for l in snap.leases {
                    leases.insert(
                        l.id,
                        Lease {
                            ttl: l.ttl,
                            deadline: Instant::now() + Duration::from_secs(l.ttl.unsigned_abs()),
                            keys: BTreeSet::new(),
                        },
                    );
                }
                for kv in snap.kvs {
                    if kv.lease != 0 {
                        if let Some(l) = leases.get_mut(&kv.lease) {
                            l.keys.insert(kv.key.clone());
                        }
                    }
                    kvs.insert(kv.key.clone(), kv);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("read", &snap_path, e)),
        }

        // Read (or create) the log.
        let mut wal_bytes = Vec::new();
        match File::open(&wal_path) {
            Ok(mut f) => {
                f.read_to_end(&mut wal_bytes)
                    .map_err(|e| io_err("read", &wal_path, e))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_atomic(&dir, WAL_FILE, WAL_MAGIC)?;
                wal_bytes = WAL_MAGIC.to_vec();
            }
            Err(e) => return Err(io_err("open", &wal_path, e)),
        }
        if wal_bytes.len() < WAL_MAGIC.len() {
            // Crashed while creating the log: nothing in it was acknowledged.
            write_atomic(&dir, WAL_FILE, WAL_MAGIC)?;
            wal_bytes = WAL_MAGIC.to_vec();
        }
        if &wal_bytes[..WAL_MAGIC.len()] != WAL_MAGIC {
            return Err(Error::Storage(format!("{}: bad magic", wal_path.display())));
        }
        let body = &wal_bytes[WAL_MAGIC.len()..];
        let (frames, valid) = decode_frames(body);
        let mut records = Vec::with_capacity(frames.len());
        for f in frames {
            let r: LogRecord = serde_json::from_slice(f)
                .map_err(|e| Error::Storage(format!("{}: bad record: {e}", wal_path.display())))?;
            records.push(r);
        }
        let wal = OpenOptions::new()
            .write(true)
            .open(&wal_path)
            .map_err(|e| io_err("open", &wal_path, e))?;
        if valid < body.len() {
            tracing::warn!(
                path = %wal_path.display(),
                dropped_bytes = body.len() - valid,
                "embedded meta log has a torn/corrupt tail (unacknowledged write); truncating"
            );
            wal.set_len((WAL_MAGIC.len() + valid) as u64)
                .and_then(|_| wal.sync_all())
                .map_err(|e| io_err("truncate", &wal_path, e))?;
        }
        drop(wal);
        let wal = OpenOptions::new()
            .append(true)
            .open(&wal_path)
            .map_err(|e| io_err("open", &wal_path, e))?;

        let mut state = State {
            dir: dir.clone(),
            opts: opts.clone(),
            kvs,
            revision,
            seq,
            records_since_snapshot: 0,
            next_lease,
            leases,
            history: VecDeque::new(),
            oldest_watchable: 0,
            wal,
            poisoned: None,
            _lock: lock,
            tx,
        };
        let mut replayed = 0u64;
        for r in records {
            state.records_since_snapshot += 1;
            if r.seq <= state.seq {
                continue;
            }
            for op in &r.ops {
                state.apply_op(op, r.rev);
            }
            state.seq = r.seq;
            state.revision = r.rev;
            replayed += 1;
        }
        state.oldest_watchable = state.revision + 1;
        tracing::info!(
            revision = state.revision,
            keys = state.kvs.len(),
            replayed,
            "embedded meta store opened"
        );
        let inner = Arc::new(Mutex::new(state));
        spawn_lease_reaper(Arc::downgrade(&inner), opts.lease_check_interval);
        Ok(EmbeddedBackend { inner, dir })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.inner.lock().revision
    }

    /// Close: compacts the log into a snapshot so the next open is quick. Optional —
    /// every acknowledged change is already durable; dropping the last clone is enough.
    #[tracing::instrument(name = "embedded_meta_close", skip(self), fields(dir = %self.dir.display()))]
    pub fn close(&self) -> Result<()> {
        let mut st = self.inner.lock();
        if st.records_since_snapshot > 0 && st.poisoned.is_none() {
            st.write_snapshot()?;
        }
        Ok(())
    }

    /// Forces a snapshot + log compaction now.
    pub fn compact(&self) -> Result<()> {
        self.inner.lock().write_snapshot()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut State) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&mut inner.lock()))
            .await
            .map_err(|e| Error::Internal(format!("embedded meta task: {e}")))?
    }
}

/// Takes an exclusive, non-blocking `flock` on `dir/LOCK`, so two processes (or two
/// opens in one process) never append to the same log.
fn lock_dir(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK_FILE);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_err("open", &path, e))?;
    #[cfg(unix)]
    {
        use rustix::fs::{flock, FlockOperation};
        // A handle being dropped in this process (e.g. by the lease reaper thread that
        // briefly holds it) releases the lock within moments: retry a little.
        let deadline = Instant::now() + Duration::from_millis(500);
        loop {
            match flock(&f, FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => break,
                Err(rustix::io::Errno::WOULDBLOCK) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    return Err(Error::Storage(format!(
                        "meta directory {} is in use by another process or handle",
                        dir.display()
                    )))
                }
                Err(e) => return Err(io_err("lock", &path, e.into())),
            }
        }
    }
    Ok(f)
}

fn spawn_lease_reaper(weak: Weak<Mutex<State>>, every: Duration) {
    let spawned = std::thread::Builder::new()
        .name("meta-lease-reaper".into())
        .spawn(move || loop {
            std::thread::sleep(every);
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let res = inner.lock().expire_leases();
            if let Err(e) = res {
                tracing::warn!(error = %e, "embedded meta lease expiry failed");
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the embedded meta lease reaper");
    }
}

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
